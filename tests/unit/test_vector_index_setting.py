"""The deployment's vector index setting (``milvus_index``): parsed from the environment as a
deployment sets it, refused when malformed, and turned into Milvus's index and search
parameters."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agents.shared.milvus_store import DEFAULT_INDEX, VectorIndex, index_of
from vip.settings import MilvusIndex, load_settings


def test_the_default_is_exact_search_with_strong_reads() -> None:
    settings = load_settings()
    assert index_of(settings) == DEFAULT_INDEX
    assert DEFAULT_INDEX.index_params() == {"index_type": "FLAT", "metric_type": "COSINE"}
    assert DEFAULT_INDEX.search_params() == {"metric_type": "COSINE"}
    assert settings.milvus_consistency == "Strong"


def test_an_index_set_in_the_environment_reaches_milvus_parameters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "VIP_MILVUS_INDEX",
        '{"type": "IVF_FLAT", "build": {"nlist": 1024}, "search": {"nprobe": 32}}',
    )
    monkeypatch.setenv("VIP_MILVUS_CONSISTENCY", "Bounded")
    settings = load_settings()
    index = index_of(settings)
    assert index.index_params() == {
        "index_type": "IVF_FLAT",
        "metric_type": "COSINE",
        "params": {"nlist": 1024},
    }
    assert index.search_params() == {"metric_type": "COSINE", "params": {"nprobe": 32}}
    assert settings.milvus_consistency == "Bounded"


@pytest.mark.parametrize(
    "value",
    [
        '{"type": "DISKANN"}',  # accepted by Milvus Lite at create, never built
        '{"type": "HNSW", "search": {"ef": 0}}',
        '{"type": "HNSW", "search": {"ef": "many"}}',
        '{"type": "HNSW", "metric": "L2"}',
        "HNSW",
    ],
)
def test_a_malformed_index_setting_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("VIP_MILVUS_INDEX", value)
    with pytest.raises((ValidationError, ValueError)):
        load_settings()


def test_the_adapter_refuses_an_unknown_index_type_too() -> None:
    with pytest.raises(ValueError, match="index type"):
        VectorIndex("SCANN")
    assert MilvusIndex(type="HNSW").search == {}
