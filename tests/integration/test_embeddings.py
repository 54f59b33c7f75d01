"""Text, visual and multimodal moment vectors from real analyses of the shared media, written
to an isolated Milvus Lite and searched.

An isolated tritonserver (every model in ``triton_models/``, free loopback ports) analyses
bikes.mp4 and bottle-detection.mp4 as the analysis stage does; the embedding stage's own
code then embeds the moments into uniquely named collections of an isolated Milvus Lite.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

from agents.embedding.embedder import JOINT_MODEL, MomentEmbedder
from agents.shared.blob_store import LocalBlobStore
from agents.shared.milvus_store import (
    GRPC_OPTIONS,
    KINDS,
    MilvusMoments,
    MomentCollections,
    collection_name,
)
from agents.shared.triton_client import TritonClient
from streams.records import ChunkAnalysed
from tests.integration.embedding_services import analyse_videos, running_milvus, thread_clients
from tests.integration.triton_server import isolated_settings, running_triton
from vip.settings import Settings

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def triton(settings: Settings) -> Iterator[Callable[[], TritonClient]]:
    with running_triton(settings):
        clients = thread_clients(settings.triton_url)
        clients().wait_for_ready(deadline_s=60, models=("image_tags", "text_embedding"))
        yield clients


@pytest.fixture(scope="module")
def milvus_uri(settings: Settings) -> Iterator[str]:
    with running_milvus(settings) as server:
        yield server.uri


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> LocalBlobStore:
    return LocalBlobStore(tmp_path_factory.mktemp("blobs"))


@pytest.fixture(scope="module")
def analyses(
    triton: Callable[[], TritonClient], blobs: LocalBlobStore, settings: Settings
) -> list[ChunkAnalysed]:
    videos = [MEDIA / "video" / "bikes.mp4", MEDIA / "video" / "bottle-detection.mp4"]
    return analyse_videos(videos, triton, blobs, settings, video_ids=["bikes", "bottles"])


@pytest.fixture(scope="module")
def stores(milvus_uri: str) -> Iterator[MomentCollections]:
    stores = MomentCollections(milvus_uri, f"test_{uuid.uuid4().hex[:12]}")
    stores.ensure_collections()
    yield stores
    client = MilvusClient(uri=milvus_uri, grpc_options=GRPC_OPTIONS)
    for store in stores.by_kind.values():
        client.drop_collection(store.collection)
    client.close()
    stores.close()


@pytest.fixture(scope="module")
def embedded(
    triton: Callable[[], TritonClient],
    blobs: LocalBlobStore,
    stores: MomentCollections,
    analyses: list[ChunkAnalysed],
) -> list[ChunkAnalysed]:
    embedder = MomentEmbedder(triton, blobs, stores)
    for analysis in analyses:
        embedder.embed(analysis)
    return analyses


def test_image_features_are_unit_length_and_tell_images_apart(
    triton: Callable[[], TritonClient],
) -> None:
    images = [(MEDIA / "image" / name).read_bytes() for name in ("chelsea.png", "coffee.png")]

    features = triton().image_features([images[0], images[1], images[0]])

    assert features.shape == (3, 1280) and features.dtype == np.float32
    assert np.linalg.norm(features, axis=1) == pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    assert float(features[0] @ features[2]) == pytest.approx(1.0, abs=1e-5)
    assert float(features[0] @ features[1]) < 0.5


def test_upserting_the_same_moments_twice_leaves_one_row_per_id(
    triton: Callable[[], TritonClient],
    blobs: LocalBlobStore,
    stores: MomentCollections,
    embedded: list[ChunkAnalysed],
) -> None:
    before = {kind: stores[kind].ids("bikes") for kind in KINDS}

    embedder = MomentEmbedder(triton, blobs, stores)
    for analysis in embedded:
        if analysis.video_id == "bikes":
            embedder.embed(analysis)

    bikes = [a for a in embedded if a.video_id == "bikes"]
    moments = [f"bikes:{a.span.chunk_index:05d}" for a in bikes]
    keyframes = sorted(
        f"bikes:{a.span.chunk_index:05d}:{round(k.time * 1000):08d}"
        for a in bikes
        for k in a.keyframes
    )
    after = {kind: stores[kind].ids("bikes") for kind in KINDS}
    assert after == before
    assert after == {"text": moments, "visual": keyframes, "multimodal": moments}
    assert [stores[kind].count("bikes") for kind in KINDS] == [
        len(moments),
        len(keyframes),
        len(moments),
    ]


def test_the_event_carries_the_multimodal_vector_and_its_analysis(
    triton: Callable[[], TritonClient], blobs: LocalBlobStore, embedded: list[ChunkAnalysed]
) -> None:
    analysis = embedded[0]

    moment = MomentEmbedder(triton, blobs, None).vectors(analysis).event

    assert moment.analysis == analysis
    assert moment.multimodal_vector is not None and len(moment.multimodal_vector) == 384
    assert np.linalg.norm(moment.multimodal_vector) == pytest.approx(1.0, abs=1e-5)
    assert moment.moment_id == f"{analysis.video_id}:{analysis.span.chunk_index:05d}"


def test_the_word_bicycle_finds_the_bikes_by_what_was_seen(
    triton: Callable[[], TritonClient], stores: MomentCollections, embedded: list[ChunkAnalysed]
) -> None:
    [query] = triton().embed_texts(["bicycle"])

    hits = stores["multimodal"].search(query.tolist(), top_k=5)

    assert hits[0].video_id == "bikes", [(h.video_id, h.score, h.labels) for h in hits]
    assert hits[0].kind == "multimodal"


def test_a_bikes_keyframe_finds_the_bikes_keyframes_first(
    triton: Callable[[], TritonClient],
    blobs: LocalBlobStore,
    stores: MomentCollections,
    embedded: list[ChunkAnalysed],
) -> None:
    keyframe = next(a for a in embedded if a.video_id == "bikes").keyframes[-1]
    [query] = triton().image_features([blobs.get(keyframe.uri)])

    hits = stores["visual"].search(query.tolist(), top_k=3)

    assert [h.video_id for h in hits] == ["bikes"] * 3, [(h.id, h.score) for h in hits]
    assert hits[0].thumbnail == keyframe.uri and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].start == hits[0].end == keyframe.time


def test_the_empty_joint_slot_falls_back_to_conse(
    triton: Callable[[], TritonClient],
    blobs: LocalBlobStore,
    embedded: list[ChunkAnalysed],
    caplog: pytest.LogCaptureFixture,
) -> None:
    analysis = embedded[0]
    conse = MomentEmbedder(triton, blobs, None, multimodal_source="conse")
    joint = MomentEmbedder(triton, blobs, None, multimodal_source=JOINT_MODEL)

    with caplog.at_level(logging.WARNING):
        from_joint = joint.vectors(analysis).event.multimodal_vector
        joint.vectors(analysis)

    assert from_joint == conse.vectors(analysis).event.multimodal_vector
    [warning] = [r.getMessage() for r in caplog.records if "fall back" in r.getMessage()]
    assert warning.startswith("multimodal vectors fall back to ConSE: image_text_embedding: ")
    assert "no image-text weights installed" in warning


def test_a_text_collection_from_before_kinds_is_rebuilt_with_its_rows(milvus_uri: str) -> None:
    name = f"test_old_{uuid.uuid4().hex[:12]}"
    client = MilvusClient(uri=milvus_uri, grpc_options=GRPC_OPTIONS)
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=128)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=384)
    for field in ("video_id", "source", "text", "labels", "thumbnail"):
        schema.add_field(field, DataType.VARCHAR, max_length=2048)
    schema.add_field("chunk_index", DataType.INT64)
    schema.add_field("start", DataType.DOUBLE)
    schema.add_field("end", DataType.DOUBLE)
    index = client.prepare_index_params()
    index.add_index(field_name="vector", index_type="FLAT", metric_type="COSINE")
    client.create_collection(name, schema=schema, index_params=index)
    row = {"id": "v:00000", "vector": [1.0] + [0.0] * 383, "video_id": "v", "source": "s",
           "text": "a bicycle", "labels": "bicycle", "thumbnail": "t", "chunk_index": 0,
           "start": 0.0, "end": 10.0}  # fmt: skip
    client.upsert(name, [row])
    store = MilvusMoments(milvus_uri, collection_name(name, "text"))
    try:
        store.ensure_collection()

        [hit] = store.search([1.0] + [0.0] * 383, top_k=5)
        assert (hit.id, hit.kind, hit.text, hit.end) == ("v:00000", "text", "a bicycle", 10.0)
    finally:
        client.drop_collection(name)
        client.close()
        store.close()


def test_the_analysis_stores_keyframe_features_that_match_a_fresh_computation(
    triton: Callable[[], TritonClient], blobs: LocalBlobStore, analyses: list[ChunkAnalysed]
) -> None:
    # The tagger's features come with the tags (one inference); the embedding stage reads
    # them back instead of running the network again. They must equal what it would compute.
    import io

    import numpy as np

    analysis = analyses[0]
    assert analysis.keyframe_features_uri is not None
    stored = np.load(io.BytesIO(blobs.get(analysis.keyframe_features_uri)))
    fresh = triton().image_features([blobs.get(k.uri) for k in analysis.keyframes])
    assert stored.shape == fresh.shape == (len(analysis.keyframes), 1280)
    assert np.allclose(stored, fresh, atol=1e-5)
