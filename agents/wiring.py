"""The one bootstrap point: builds adapters lazily from Settings and hands them to agents."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import faust

from agents.shared.blob_store import BlobStore, create_blob_store
from agents.shared.stage import Stage
from streams.app import PipelineTopics
from vip.settings import Settings

if TYPE_CHECKING:
    from agents.analysis.analyser import ChunkAnalyser
    from agents.analysis.providers.base import Provider
    from agents.embedding.embedder import MomentEmbedder
    from agents.graph.resolution import EntityResolver
    from agents.shared.graph_store import Neo4jGraph
    from agents.shared.milvus_store import MilvusMoments, MomentCollections
    from agents.shared.triton_client import TritonClient


class Dependencies:
    """Adapters are created on first use (never at import) and shared by the agents."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()  # factories may ask for other adapters
        self._made: dict[str, Any] = {}
        # Triton's HTTP client is not thread-safe: each worker thread gets its own.
        self._local = threading.local()
        self._tritons: list[TritonClient] = []

    def _once(self, name: str, factory: Any) -> Any:
        with self._lock:
            if name not in self._made:
                self._made[name] = factory()
            return self._made[name]

    def blobs(self) -> BlobStore:
        s = self.settings
        store: BlobStore = self._once(
            "blobs",
            lambda: create_blob_store(
                s.blob_store, s.blobs_dir, s.s3_bucket, s.s3_prefix, s.s3_endpoint_url
            ),
        )
        return store

    def triton(self) -> TritonClient:
        from agents.shared.triton_client import TritonClient

        client: TritonClient | None = getattr(self._local, "triton", None)
        if client is None:
            client = TritonClient(
                self.settings.triton_url, inference_timeout_s=self.settings.triton_timeout_s
            )
            self._local.triton = client
            with self._lock:
                self._tritons.append(client)
        return client

    def milvus(self) -> MilvusMoments:
        from agents.shared.milvus_store import MilvusMoments, index_of

        def make() -> MilvusMoments:
            s = self.settings
            store = MilvusMoments(
                s.milvus_uri,
                s.milvus_collection,
                index=index_of(s),
                consistency=s.milvus_consistency,
            )
            store.ensure_collection()
            return store

        moments: MilvusMoments = self._once("milvus", make)
        return moments

    def milvus_collections(self) -> MomentCollections:
        """Every kind of moment vector (text, visual, multimodal), one collection each."""
        from agents.shared.milvus_store import moment_collections

        def make() -> MomentCollections:
            stores = moment_collections(self.settings)
            stores.ensure_collections()
            return stores

        collections: MomentCollections = self._once("milvus_collections", make)
        return collections

    def embedder(self) -> MomentEmbedder:
        from agents.embedding.embedder import MomentEmbedder

        def make() -> MomentEmbedder:
            return MomentEmbedder(
                self.triton,
                self.blobs(),
                self.milvus_collections(),
                multimodal_source=self.settings.multimodal_model,
            )

        embedder: MomentEmbedder = self._once("embedder", make)
        return embedder

    def graph(self) -> Neo4jGraph:
        from agents.shared.graph_store import Neo4jGraph

        def make() -> Neo4jGraph:
            graph = Neo4jGraph(self.settings.neo4j_uri, auth=self.settings.neo4j_auth)
            graph.ensure_schema()
            return graph

        store: Neo4jGraph = self._once("graph", make)
        return store

    def resolver(self) -> EntityResolver:
        """Entity resolution against the graph, by name embeddings from Triton."""
        from agents.graph.resolution import EntityResolver

        def make() -> EntityResolver:
            return EntityResolver(lambda names: self.triton().embed_texts(names), self.graph())

        resolver: EntityResolver = self._once("resolver", make)
        return resolver

    def providers(self, names: Sequence[str]) -> list[Provider]:
        """The external providers an upload asked for, built once per distinct choice."""
        from agents.analysis.providers.config import build_providers

        key = "providers:" + ",".join(sorted(set(names)))
        built: list[Provider] = self._once(key, lambda: build_providers(names, self.settings))
        return built

    def analyser(self) -> ChunkAnalyser:
        from concurrent.futures import ThreadPoolExecutor

        from agents.analysis.analyser import ChunkAnalyser
        from agents.analysis.local import LocalModels, LocalOptions

        def make() -> ChunkAnalyser:
            options = LocalOptions(detection_min_score=self.settings.detection_min_score)
            pool = ThreadPoolExecutor(self.settings.analysis_threads, "analysis")
            local = LocalModels(self.triton, options, pool)
            return ChunkAnalyser(
                self.blobs(),
                local,
                self.providers,
                video_poll_interval_s=self.settings.rekognition_poll_interval_s,
                video_timeout_s=self.settings.rekognition_video_timeout_s,
            )

        analyser: ChunkAnalyser = self._once("analyser", make)
        return analyser

    def warm_up(self, stages: Sequence[str]) -> None:
        """Connect what the given stages use now, so the first event pays no set-up cost."""
        self.blobs()
        if "analysis" in stages:
            self.analyser().warm_up()
        if "embedding" in stages:
            from agents.embedding.embedder import check_features_model

            self.embedder()
            self.triton().model_version("text_embedding")
            check_features_model(self.triton())
        if "graph" in stages:
            self.graph()

    def stage(
        self,
        name: str,
        topic: str,
        app: faust.App,
        pipeline: PipelineTopics,
        report_job_failure: bool = True,
    ) -> Stage:
        source = getattr(pipeline, topic.replace(".", "_"))
        return Stage(
            name=name,
            topic=topic,
            dead_letters=pipeline.dead_letters(app, source),
            graph_updates=pipeline.graph_updates,
            report_job_failure=report_job_failure,
        )

    def close(self) -> None:
        for triton in self._tritons:
            triton.close()
        self._tritons.clear()
        for adapter in self._made.values():
            close = getattr(adapter, "close", None)
            if callable(close):
                close()
        self._made.clear()
