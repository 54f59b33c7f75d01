"""Merging ranked lists of moments: by best score, and by reciprocal-rank fusion (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Candidate:
    """A moment one retriever found, with that retriever's score (higher is better)."""

    id: str
    video_id: str
    source: str
    start: float
    end: float
    text: str
    labels: tuple[str, ...]
    thumbnail: str
    score: float
    entities: tuple[str, ...] = ()


@dataclass
class Fused:
    """A moment after merging: its details, its final score, and each retriever's share."""

    moment: Candidate
    score: float
    scores: dict[str, float] = field(default_factory=dict)
    entities: tuple[str, ...] = ()

    @property
    def retrievers(self) -> list[str]:
        return list(self.scores)


def _absorb(fused: Fused, candidate: Candidate) -> None:
    if candidate.entities:
        fused.entities = tuple(dict.fromkeys([*fused.entities, *candidate.entities]))


def merge_best(ranked: Mapping[str, Sequence[Candidate]]) -> list[Fused]:
    """One entry per moment id, scored by its best score over the lists; each entry keeps
    every list's score. Best first; ties keep the order the lists were given in."""
    merged: dict[str, Fused] = {}
    for name, candidates in ranked.items():
        for candidate in candidates:
            entry = merged.get(candidate.id)
            if entry is None:
                entry = merged[candidate.id] = Fused(candidate, candidate.score)
            elif candidate.score > entry.score:
                entry.moment, entry.score = candidate, candidate.score
            entry.scores[name] = max(entry.scores.get(name, candidate.score), candidate.score)
            _absorb(entry, candidate)
    return sorted(merged.values(), key=lambda f: -f.score)


def competition_ranks(scores: Sequence[float]) -> list[int]:
    """1-based ranks of scores given best first, equal scores sharing the best rank
    (1, 2, 2, 4): a retriever that cannot tell two moments apart does not order them."""
    ranks: list[int] = []
    for position, score in enumerate(scores):
        if position and score == scores[position - 1]:
            ranks.append(ranks[-1])
        else:
            ranks.append(position + 1)
    return ranks


def reciprocal_rank_fusion(
    ranked: Mapping[str, Sequence[Candidate]], weights: Mapping[str, float], k: int = 60
) -> list[Fused]:
    """Each moment scores ``sum(weight / (k + rank))`` over the lists that hold it (Cormack
    et al., 2009). Lists must be sorted best first; a list with weight 0 is left out."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    fused: dict[str, Fused] = {}
    for name, candidates in ranked.items():
        weight = weights.get(name, 0.0)
        if weight <= 0:
            continue
        ranks = competition_ranks([c.score for c in candidates])
        for candidate, rank in zip(candidates, ranks, strict=True):
            share = weight / (k + rank)
            entry = fused.setdefault(candidate.id, Fused(candidate, 0.0))
            if name in entry.scores:  # the same moment twice in one list: keep its best rank
                continue
            entry.scores[name] = share
            entry.score += share
            _absorb(entry, candidate)
    return sorted(fused.values(), key=lambda f: -f.score)
