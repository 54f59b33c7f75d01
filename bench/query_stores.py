"""The stores behind bench/query_load.py: their own Milvus Lite and Neo4j (and an API process
over them) under ``~/.cache/vip/bench/query_load/<key>``, filled once per build spec and
reused by later runs. The dev stack is only read: Triton embeds the synthetic texts, and the
real media's moments (Milvus rows with their vectors, and their part of the graph) are copied
from it.

Vectors: real MiniLM embeddings of the generated captions, sentences and on-screen texts,
mixed per moment (caption + 0.5 speech + 0.3 on-screen text, the multimodal one as 0.6 ConSE
over the label names + 0.4 the words, as agents/embedding does) plus Gaussian noise at about
cosine 0.9 to the noise-free vector, so moments of one theme form a cluster without being
identical. FLAT search time does not depend on the distribution, but what comes back (and so
the keyword, graph and answer work, and the quality check) does, and an approximate index
measured later needs clustered data, not uniform noise.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pymilvus import MilvusClient

from agents.shared.graph_store import Neo4jGraph
from agents.shared.milvus_store import (
    GRPC_OPTIONS,
    OUTPUT_FIELDS,
    MomentCollections,
    VectorIndex,
)
from agents.shared.triton_client import TritonClient
from bench.query_corpus import Corpus, build_corpus
from bench.query_graph import copy_real, write_synthetic
from vip.settings import Settings
from vip.stack.manager import StackManager
from vip.stack.milvus import MilvusService
from vip.stack.neo4j import Neo4jService
from vip.stack.service import Launch

GENERATOR_VERSION = 1
NOISE_PER_DIM = 0.025  # |noise| ~ 0.025 * sqrt(384) ~ 0.49: cosine ~ 0.9 to the clean vector
INSERT_BATCH = 2000
SHARED_MEDIA_MARK = "/shared/media/"


@dataclass(frozen=True)
class BuildSpec:
    moments: int
    themes: int
    seed: int

    def key(self) -> str:
        text = json.dumps({**asdict(self), "version": GENERATOR_VERSION}, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        return f"m{self.moments}-t{self.themes}-s{self.seed}-{digest}"


class BenchApi:
    """`vip api` over the bench's own Milvus and Neo4j (Triton and Kafka: the dev stack's)."""

    name = "api"
    start_timeout_s = 90.0

    def __init__(
        self, settings: Settings, index: VectorIndex | None = None, consistency: str | None = None
    ) -> None:
        self._settings = settings
        self.port = settings.api_port
        self._index, self._consistency = index, consistency

    def prepare(self) -> None:
        pass

    def launch(self) -> Launch:
        s = self._settings
        env = {
            "PYTHONUNBUFFERED": "1",
            "HF_HUB_OFFLINE": "1",
            "VIP_STATE_DIR": str(s.state_dir),
            "VIP_MILVUS_PORT": str(s.milvus_port),
            "VIP_NEO4J_PORT": str(s.neo4j_port),
            "VIP_API_PORT": str(s.api_port),
            # The change feed watches the dev stack's topics, which say nothing about these
            # stores: without it the response cache is off and every request is retrieved.
            "VIP_QUERY_EVENTS_ENABLED": "false",
            "VIP_ANSWER_GENERATOR": "extractive",
        }
        if self._index is not None:  # the project's setting, as a deployment sets it
            env["VIP_MILVUS_INDEX"] = json.dumps(
                {"type": self._index.type, "build": self._index.build, "search": self._index.search}
            )
        if self._consistency is not None:
            env["VIP_MILVUS_CONSISTENCY"] = self._consistency
        return Launch(argv=[sys.executable, "-m", "vip", "api"], env=env)

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self._settings.api_url}/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def version(self) -> str:
        return "vip-api"


@contextlib.contextmanager
def servers(
    settings: Settings,
    names: Sequence[str],
    index: VectorIndex | None = None,
    consistency: str | None = None,
) -> Iterator[StackManager]:
    """The named bench servers (milvus, neo4j, api) up for the block, stopped after it.
    ``index``, ``consistency``: the API's ``milvus_index`` and ``milvus_consistency`` settings
    (how it searches), if not the defaults."""
    manager = StackManager(
        [MilvusService(settings), Neo4jService(settings), BenchApi(settings, index, consistency)],
        settings.run_dir,
        settings.logs_dir,
        host=settings.host,
        echo=lambda line: print(f"  [{line}]", flush=True),
    )
    try:
        # The API connects to the stores as it starts: they come up first.
        manager.up([name for name in names if name != "api"])
        if "neo4j" in names:  # a build from before an index was added gets it (and waits)
            ensure_graph_schema(settings)
        if "api" in names:
            manager.up(["api"])
        yield manager
    finally:
        manager.down()


def ensure_graph_schema(settings: Settings) -> None:
    """The sink's schema on the bench's Neo4j, every index online."""
    graph = Neo4jGraph(settings.neo4j_uri, timeout_s=120)
    try:
        graph.ensure_schema()
        graph.driver.execute_query("CALL db.awaitIndexes(1800)")
    finally:
        graph.close()


def manifest_path(settings: Settings) -> Path:
    return settings.state_dir / "built.json"


def load_manifest(settings: Settings, spec: BuildSpec) -> dict[str, Any] | None:
    path = manifest_path(settings)
    if not path.is_file():
        return None
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest if manifest.get("spec") == asdict(spec) else None


def wipe(settings: Settings) -> None:
    """An interrupted build leaves half-filled stores: start again from nothing."""
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    manifest_path(settings).unlink(missing_ok=True)


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1, norms)).astype(np.float32)


def embed_all(triton: TritonClient, texts: Sequence[str]) -> np.ndarray:
    return _unit(np.asarray(triton.embed_texts(list(texts)), np.float32))


def moment_vectors(corpus: Corpus, triton: TritonClient, seed: int) -> tuple[np.ndarray, ...]:
    """(text, multimodal) vectors, one row per moment."""
    labels = sorted({label for m in corpus.moments for label in m.labels})
    captions = embed_all(triton, corpus.captions)
    sentences = embed_all(triton, corpus.sentences)
    overlays = embed_all(triton, corpus.overlays)
    named = dict(zip(labels, embed_all(triton, labels), strict=True))
    rng = np.random.default_rng(seed + 1)
    dim = captions.shape[1]
    text = np.zeros((len(corpus.moments), dim), np.float32)
    multimodal = np.zeros_like(text)
    for row, moment in enumerate(corpus.moments):
        words = np.zeros(dim, np.float32)
        if moment.speech is not None:
            words += sentences[moment.speech]
        if moment.overlay is not None:
            words += 0.6 * overlays[moment.overlay]
        text[row] = captions[moment.caption] + 0.5 * words
        seen = _unit(np.mean([named[label] for label in moment.labels], axis=0)[None])[0]
        multimodal[row] = 0.6 * seen + (0.4 * _unit(words[None])[0] if words.any() else 0)
    text = _unit(text) + rng.normal(0, NOISE_PER_DIM, text.shape).astype(np.float32)
    multimodal = _unit(multimodal) + rng.normal(0, NOISE_PER_DIM, text.shape).astype(np.float32)
    return _unit(text), _unit(multimodal)


def _row(corpus: Corpus, index: int, vector: np.ndarray, kind: str) -> dict[str, Any]:
    m = corpus.moments[index]
    return {
        "id": f"{m.video_id}:{m.chunk_index:05d}",
        "vector": vector.tolist(),
        "kind": kind,
        "video_id": m.video_id,
        "source": corpus.videos[m.video_id],
        "chunk_index": m.chunk_index,
        "start": m.start,
        "end": m.end,
        "text": m.text,
        "labels": ",".join(m.labels),
        "thumbnail": "",
    }


def fill_milvus(
    client: MilvusClient, corpus: Corpus, vectors: tuple[np.ndarray, ...], real: dict[str, list]
) -> None:
    kinds = (("moments", "text"), ("moments_multimodal", "multimodal"))
    for index, (collection, kind) in enumerate(kinds):
        for start in range(0, len(corpus.moments), INSERT_BATCH):
            matrix = vectors[index]
            stop = min(start + INSERT_BATCH, len(corpus.moments))
            client.insert(
                collection, [_row(corpus, i, matrix[i], kind) for i in range(start, stop)]
            )
        if real[collection]:
            client.insert(collection, real[collection])
        client.flush(collection)


def real_rows(source: Settings) -> tuple[dict[str, list], dict[str, str]]:
    """The dev stack's moments of the shared media (one video id per file), with vectors."""
    client = MilvusClient(uri=source.milvus_uri, timeout=30, grpc_options=GRPC_OPTIONS)
    try:
        found: dict[str, list] = {}
        for collection in ("moments", "moments_multimodal"):
            found[collection] = client.query(
                collection,
                filter=f'source like "%{SHARED_MEDIA_MARK}%"',
                output_fields=["id", "vector", *OUTPUT_FIELDS],
                limit=16384,
            )
    finally:
        client.close()
    per_source: dict[str, dict[str, int]] = {}
    for row in found["moments"]:
        videos = per_source.setdefault(row["source"], {})
        videos[row["video_id"]] = videos.get(row["video_id"], 0) + 1
    chosen = {
        max(sorted(videos), key=lambda v: videos[v]): src for src, videos in per_source.items()
    }
    for collection, rows in found.items():
        found[collection] = [
            {**row, "vector": [float(v) for v in row["vector"]]}
            for row in rows
            if row["video_id"] in chosen
        ]
    return found, chosen


def build(spec: BuildSpec, settings: Settings, source: Settings, triton_url: str) -> dict:
    """Fill the bench's Milvus and Neo4j (already running) and write the manifest."""
    began = time.perf_counter()
    corpus = build_corpus(spec.moments, spec.themes, spec.seed)
    print(
        f"  {len(corpus.moments)} moments in {len(corpus.videos)} videos, "
        f"{len(corpus.captions)} captions",
        flush=True,
    )
    vectors: tuple[np.ndarray, ...] = ()
    if corpus.moments:
        with TritonClient(triton_url) as triton:
            vectors = moment_vectors(corpus, triton, spec.seed)
    embedded = time.perf_counter()
    real, videos = real_rows(source)
    print(
        f"  embedded in {embedded - began:.0f} s; {len(real['moments'])} real moments "
        f"of {len(videos)} shared-media videos",
        flush=True,
    )
    collections = MomentCollections(settings.milvus_uri, settings.milvus_collection, 60)
    try:
        collections.ensure_collections()
    finally:
        collections.close()
    client = MilvusClient(uri=settings.milvus_uri, timeout=600, grpc_options=GRPC_OPTIONS)
    try:
        fill_milvus(client, corpus, vectors, real)
    finally:
        client.close()
    indexed = time.perf_counter()
    print(f"  Milvus filled and flushed in {indexed - embedded:.0f} s", flush=True)
    graph = Neo4jGraph(settings.neo4j_uri, timeout_s=120)
    try:
        graph.ensure_schema()
        written = write_synthetic(graph.driver, corpus)
        written += copy_real(source, graph, videos)
    finally:
        graph.close()
    print(
        f"  graph written ({written} nodes and relationships) in "
        f"{time.perf_counter() - indexed:.0f} s",
        flush=True,
    )
    manifest = {
        "spec": asdict(spec),
        "moments": len(corpus.moments) + len(real["moments"]),
        "synthetic_videos": len(corpus.videos),
        "real_videos": videos,
        "real_moments": len(real["moments"]),
        "graph_writes": written,
        "build_s": round(time.perf_counter() - began, 1),
    }
    manifest_path(settings).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def process_cpu_s(manager: StackManager, name: str) -> float:
    process = manager.owned_process(name)
    if process is None:
        return float("nan")
    with process.oneshot():
        times = [process.cpu_times(), *(c.cpu_times() for c in process.children(recursive=True))]
    return sum(t.user + t.system for t in times)


def environment_note() -> str:
    return f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores"
