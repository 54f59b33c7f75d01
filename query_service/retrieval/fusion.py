"""Merging ranked lists of moments (by best score, by reciprocal-rank fusion) and re-ranking
a merged list (lexical boost, per-video diversity, copies last). Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from query_service.retrieval.terms import term_coverage


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


# Re-ranking a merged list (pure) -----------------------------------------------------------------
# Chosen on the tuning split of tests/eval (docs/retrieval_quality.md): any weight in
# 0.05-0.3 gave the same ranks there, and the same gain on the held-out split.
LEXICAL_WEIGHT: Final = 0.1
# In cosine units: a second moment of a video already listed must beat a new video by this
# much. 0.05 lifted the tuning split's R@5 without costing the held-out split; at 0.1 and
# above, queries about one part of a video lose the right moment behind other videos.
SAME_VIDEO_PENALTY: Final = 0.05
# Lucene's "minimum should match": in RRF a list's mere presence outweighs every rank of the
# vector list, so a moment that holds one common word of a long query ("white" in "old black
# and white film of a man in a bowler hat") must not enter the keyword list.
MIN_SHOULD_MATCH: Final = 0.5


def lexical_boost(
    fused: Sequence[Fused], terms: Sequence[str], weight: float = LEXICAL_WEIGHT
) -> list[Fused]:
    """Each moment's score moves ``weight * coverage`` of the way from where it is to 1, where
    coverage is the share of the query's terms its text or labels hold as words
    (:func:`~query_service.retrieval.terms.term_coverage`): literal evidence breaks ties
    between moments the embedding scores alike, and a cosine stays at most 1. Best first."""
    if not 0 <= weight <= 1:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    boosted = []
    for entry in fused:
        coverage = term_coverage(terms, entry.moment.text, entry.moment.labels) if terms else 0.0
        score = entry.score + weight * coverage * (1.0 - entry.score)
        boosted.append(replace(entry, score=score, scores=dict(entry.scores)))
    return sorted(boosted, key=lambda f: -f.score)


def diversify(fused: Sequence[Fused], penalty: float = SAME_VIDEO_PENALTY) -> list[Fused]:
    """The same moments, re-ordered greedily: each next one maximises its score minus
    ``penalty`` times the number of moments of its video already placed, so one video's
    several chunks do not push every other video off the page (scores are left as they are;
    ties keep the given order)."""
    if penalty < 0:
        raise ValueError(f"penalty must not be negative, got {penalty}")
    remaining = list(fused)
    placed: list[Fused] = []
    per_video: Counter[str] = Counter()
    while remaining:
        best = max(
            range(len(remaining)),
            key=lambda i: (
                remaining[i].score - penalty * per_video[remaining[i].moment.video_id],
                -i,
            ),
        )
        chosen = remaining.pop(best)
        per_video[chosen.moment.video_id] += 1
        placed.append(chosen)
    return placed


def content_key(moment: Candidate) -> tuple[str, tuple[str, ...], float, float]:
    """What the pipeline saw in a moment: a copy of a video (same frames, another file, so
    another video id) gives the same description, labels and times."""
    return (moment.text, moment.labels, round(moment.start, 3), round(moment.end, 3))


def demote_duplicates(fused: Sequence[Fused]) -> list[Fused]:
    """The first moment of each content (:func:`content_key`) in the given order, then the
    copies, in the given order: a page shows distinct moments before copies of them."""
    seen: set[tuple[str, tuple[str, ...], float, float]] = set()
    first: list[Fused] = []
    copies: list[Fused] = []
    for entry in fused:
        key = content_key(entry.moment)
        (copies if key in seen else first).append(entry)
        seen.add(key)
    return first + copies


def keyword_hits(
    found: Sequence[Candidate], terms: Sequence[str], min_share: float = MIN_SHOULD_MATCH
) -> list[Candidate]:
    """The keyword retriever's moments scored by the share of the terms they hold as whole
    words (:func:`~query_service.retrieval.terms.term_coverage`), keeping those that hold at
    least ``min_share`` of them, best first (ties by video and time)."""
    scored = [replace(c, score=term_coverage(terms, c.text, c.labels)) for c in found]
    kept = [c for c in scored if c.score > 0 and c.score >= min_share]
    return sorted(kept, key=lambda c: (-c.score, c.video_id, c.start))


def rank_vector_hits(fused: Sequence[Fused], terms: Sequence[str]) -> list[Fused]:
    """The order of /v1/search: best cosine with a lexical boost, one video's chunks spread
    out, copies after distinct moments."""
    return demote_duplicates(diversify(lexical_boost(fused, terms)))
