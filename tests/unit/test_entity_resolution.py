"""Entity resolution decisions (agents/graph/resolution.py) over a small in-memory index.

The embeddings here are hand-made unit vectors standing in for name embeddings, so that each
decision's similarity is known exactly; the real embeddings and the real Neo4j index are
exercised in tests/integration/test_knowledge_graph.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from agents.graph.resolution import EntityResolver, aliases, family

VECTORS = {
    "bicycle": [1.0, 0.0, 0.0],
    "bike": [0.95, 0.31, 0.0],  # cosine 0.95 with bicycle
    "tricycle": [0.6, 0.8, 0.0],  # cosine 0.6 with bicycle
    "paris": [0.0, 0.0, 1.0],
}


def embed(names: Sequence[str]) -> np.ndarray:
    return np.array([VECTORS[n] for n in names], dtype=np.float32)


class Index:
    def __init__(self) -> None:
        self.entities: dict[str, tuple[str, list[float]]] = {}

    def canonical_of(self, keys: Sequence[str]) -> dict[str, str]:
        return {k: k for k in keys if k in self.entities}

    def nearest(self, vector: Sequence[float], kinds: Sequence[str]) -> tuple[str, float] | None:
        scored = [
            (key, float(np.dot(vec, vector)) / float(np.linalg.norm(vec)))
            for key, (kind, vec) in self.entities.items()
            if kind in kinds
        ]
        return max(scored, key=lambda kv: kv[1]) if scored else None


def test_a_similar_name_joins_the_known_entity_and_a_different_one_does_not() -> None:
    index = Index()
    index.entities["object:bicycle"] = ("object", VECTORS["bicycle"])
    resolver = EntityResolver(embed, index)

    result = resolver.resolve(
        {"tag:bike": ("tag", "bike"), "object:tricycle": ("object", "tricycle")}
    )

    assert result.canonical == {"tag:bike": "object:bicycle", "object:tricycle": "object:tricycle"}
    assert list(result.new_vectors) == ["object:tricycle"]
    assert list(aliases(result)) == [("tag:bike", "object:bicycle")]


def test_entities_created_in_earlier_deltas_count_before_the_graph_has_them() -> None:
    resolver = EntityResolver(embed, Index())
    first = resolver.resolve({"object:bicycle": ("object", "bicycle")})
    second = resolver.resolve({"object:bike": ("object", "bike")})
    assert first.canonical == {"object:bicycle": "object:bicycle"}
    assert second.canonical == {"object:bike": "object:bicycle"}
    assert resolver.resolve({"object:bike": ("object", "bike")}) == type(second)(
        {"object:bike": "object:bicycle"}, {}
    )


def test_faces_and_other_families_never_merge() -> None:
    index = Index()
    index.entities["gpe:paris"] = ("gpe", VECTORS["paris"])
    resolver = EntityResolver(embed, index)
    result = resolver.resolve({"org:paris": ("org", "paris"), "face:v1:00000:1": ("face", "x")})
    assert result.canonical == {"org:paris": "org:paris", "face:v1:00000:1": "face:v1:00000:1"}
    assert family("face") is None and family("tag") == family("object") == "visual"
