"""Entity resolution across videos: a new entity name that means the same as a known one
("bike" after "bicycle", "television" after "tv") joins the known entity instead of starting
a second one.

Names are first matched exactly after :func:`~agents.graph.knowledge.normalise` (keys); a key
never seen before is compared by its name's text embedding with the known entities of its
family (visual concepts: detected objects and image tags together; named entities: only the
same NER label; face tracks never merge). A cosine similarity of at least ``threshold`` makes
it an alias of the most similar one. The decision is written into the graph delta (an Alias
node, ALIAS_OF the canonical entity), so a replay reproduces it without re-deciding.

The threshold was set on MiniLM similarities of label pairs: 0.85 merges bicycle/bike (0.92),
tv/television (0.96), car/automobile (0.86), sofa/couch (0.86), usa/united states (0.89), and
keeps apart bottle/water bottle (0.82), bicycle/mountain bike (0.62), dog/cat (0.66).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

THRESHOLD: Final = 0.85
VISUAL_KINDS: Final = frozenset({"object", "tag"})
NEVER_MERGED: Final = frozenset({"face"})


def family(kind: str) -> str | None:
    """Kinds whose entities may be merged with each other; None: never merged."""
    if kind in NEVER_MERGED:
        return None
    return "visual" if kind in VISUAL_KINDS else kind


@dataclass(frozen=True)
class Known:
    key: str
    kind: str
    vector: np.ndarray


@dataclass(frozen=True)
class Resolution:
    canonical: dict[str, str]  # entity key -> the key it is recorded under
    new_vectors: dict[str, list[float]]  # embeddings of entities created by this delta


class EntityIndex(Protocol):
    """Where known entities are looked up (Neo4j in production)."""

    def canonical_of(self, keys: Sequence[str]) -> dict[str, str]:
        """Keys already known, as entities or aliases -> their canonical entity key."""
        ...

    def nearest(self, vector: Sequence[float], kinds: Sequence[str]) -> tuple[str, float] | None:
        """The most similar entity of these kinds with its cosine similarity."""
        ...


class EntityResolver:
    """Decides, for the entity keys of one delta, which are new and which join a known entity.
    Thread-safe; remembers its own decisions, including entities it created that the graph
    sink has not written yet."""

    def __init__(
        self,
        embed: Callable[[Sequence[str]], np.ndarray],
        index: EntityIndex,
        threshold: float = THRESHOLD,
    ) -> None:
        self._embed = embed
        self._index = index
        self._threshold = threshold
        self._decided: dict[str, str] = {}
        self._pending: list[Known] = []
        self._lock = threading.Lock()

    def resolve(self, entities: Mapping[str, tuple[str, str]]) -> Resolution:
        """``entities``: key -> (kind, name) for every entity in a delta."""
        with self._lock:
            unknown = [k for k in sorted(entities) if k not in self._decided]
            if unknown:
                self._decided.update(self._index.canonical_of(unknown))
            fresh = [k for k in unknown if k not in self._decided]
            mergeable = [k for k in fresh if family(entities[k][0]) is not None]
            vectors = self._vectors([entities[k][1] for k in mergeable])
            created: dict[str, list[float]] = {}
            for key, vector in zip(mergeable, vectors, strict=True):
                kind = entities[key][0]
                match = self._match(vector, kind)
                if match is None:
                    self._decided[key] = key
                    self._pending.append(Known(key, kind, vector))
                    created[key] = [round(float(v), 6) for v in vector]
                else:
                    self._decided[key] = match
            for key in fresh:
                self._decided.setdefault(key, key)
            return Resolution({k: self._decided[k] for k in entities}, created)

    def _vectors(self, names: list[str]) -> list[np.ndarray]:
        if not names:
            return []
        matrix = np.asarray(self._embed(names), dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return list(matrix / np.maximum(norms, 1e-12))

    def _match(self, vector: np.ndarray, kind: str) -> str | None:
        group = family(kind)
        kinds = sorted(VISUAL_KINDS) if group == "visual" else [kind]
        best: tuple[str, float] | None = self._index.nearest(vector.tolist(), kinds)
        for known in self._pending:
            if family(known.kind) == group:
                score = float(known.vector @ vector)
                if best is None or score > best[1]:
                    best = (known.key, score)
        if best is None or best[1] < self._threshold:
            return None
        return self._decided.get(best[0], best[0])


def aliases(resolution: Resolution) -> Iterable[tuple[str, str]]:
    """(alias key, canonical key) for every key recorded under another entity."""
    return ((k, c) for k, c in sorted(resolution.canonical.items()) if k != c)
