"""The search use cases: text, image and hybrid search over the materialised stores.

Blocking (gRPC, Bolt, Triton HTTP): call these from a worker thread. A store that times out or
cannot be reached raises :class:`~query_service.retrieval.errors.StoreUnavailable` (a 503).
"""

from __future__ import annotations

import io
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from neo4j import Driver, GraphDatabase
from PIL import Image, UnidentifiedImageError

from agents.shared.milvus_store import GRPC_OPTIONS, index_of
from query_service.media import thumbnail_url
from query_service.retrieval.errors import ImageRejected, ImageTooLarge
from query_service.retrieval.filters import milvus_expression
from query_service.retrieval.fusion import (
    Candidate,
    Fused,
    demote_duplicates,
    diversify,
    keyword_hits,
    merge_best,
    rank_vector_hits,
    reciprocal_rank_fusion,
)
from query_service.retrieval.graph import GraphMoments
from query_service.retrieval.index import MomentIndex, call_milvus
from query_service.retrieval.keyword import KeywordMoments
from query_service.retrieval.terms import entity_names, keywords, search_forms
from query_service.schemas import (
    HybridSearchRequest,
    MomentPublic,
    MomentsPublic,
    SearchFilters,
    SearchRequest,
)

if TYPE_CHECKING:
    from agents.wiring import Dependencies
    from vip.settings import Settings

# Each retriever is asked for this many times top_k (at least MIN_POOL) before merging, so a
# moment ranked low by one and high by another can still surface.
POOL_FACTOR = 4
MIN_POOL = 20
# Keyframes per moment come close together in time: fetch enough to fill top_k moments.
KEYFRAMES_PER_MOMENT = 6
MAX_IMAGE_PIXELS = 40_000_000
# A request's retrievers wait on different servers (Triton, Milvus, Neo4j), so they run side by
# side: up to three store calls per request in flight, for several requests at once.
RETRIEVAL_THREADS = 16
# Milvus calls this process has in flight at once; more wait here, before their deadline starts.
# A store that shares its CPU among the calls it holds (Milvus Lite: two cores) answers each
# call later the more it holds: with the retrievers of 8 requests all in flight, calls ran past
# their 10 s timeout (and at 4, the 1 s keyword scans of the time still did); see
# docs/benchmarks.md.
MILVUS_CALLS_IN_FLIGHT = 2
# Hybrid scores are RRF sums, not cosines: a further moment of a listed video must beat a new
# video by this share of the best score (about what fusion.SAME_VIDEO_PENALTY is to a cosine).
HYBRID_SAME_VIDEO_SHARE = 0.1


def check_image(data: bytes, max_bytes: int) -> None:
    """Raise unless ``data`` is an image of at most ``max_bytes`` that decodes."""
    if len(data) > max_bytes:
        raise ImageTooLarge(f"the image is {len(data)} bytes; the limit is {max_bytes}")
    if not data:
        raise ImageRejected("the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ImageRejected(f"the image is {image.width}x{image.height}; too large")
                image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRejected(f"the upload is not a decodable image: {exc}") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"the image is too large to decode: {exc}") from exc


def _public(fused: Fused, named: set[str], score: float | None = None) -> MomentPublic:
    moment = fused.moment
    return MomentPublic(
        id=moment.id,
        video_id=moment.video_id,
        source=moment.source,
        start=moment.start,
        end=moment.end,
        score=round(fused.score if score is None else score, 6),
        text=moment.text,
        labels=list(moment.labels),
        matched_labels=[label for label in moment.labels if label in named],
        entities=list(fused.entities),
        retrievers=fused.retrievers,  # type: ignore[arg-type]
        scores={name: round(value, 6) for name, value in fused.scores.items()},
        thumbnail_url=thumbnail_url(moment.thumbnail),
    )


def _answer(moments: list[MomentPublic]) -> MomentsPublic:
    return MomentsPublic(data=moments, count=len(moments))


class SearchService:
    """Holds its own Milvus client and Neo4j driver (made on first use), whose deadlines are
    the query side's (``query_milvus_timeout_s``, ``query_neo4j_timeout_s``: connecting,
    waiting for a pooled connection and retrying included), not the ingestion adapters' (10 s
    to connect, 10 s of retries); the Triton clients (one per thread) come from the shared
    dependencies."""

    def __init__(self, settings: Settings, stores: Dependencies) -> None:
        self._settings = settings
        self._stores = stores
        self._lock = threading.Lock()
        self._milvus: Any = None
        self._neo4j: Driver | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._milvus_slots = threading.BoundedSemaphore(MILVUS_CALLS_IN_FLIGHT)

    @property
    def max_image_bytes(self) -> int:
        return self._settings.search_max_image_bytes

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:  # outside the lock: a retriever still running may need it
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self._milvus is not None:
                self._milvus.close()
            if self._neo4j is not None:
                self._neo4j.close()
            self._milvus = self._neo4j = None

    def index(self) -> MomentIndex:
        timeout_s = self._settings.query_milvus_timeout_s
        with self._lock:
            if self._milvus is None:
                from pymilvus import MilvusClient

                self._milvus = call_milvus(
                    "connect",
                    timeout_s,
                    lambda: MilvusClient(
                        uri=self._settings.milvus_uri, timeout=timeout_s, grpc_options=GRPC_OPTIONS
                    ),
                )
            return MomentIndex(
                self._milvus,
                self._settings.milvus_collection,
                timeout_s=timeout_s,
                slots=self._milvus_slots,
                index=index_of(self._settings),
                consistency=self._settings.milvus_consistency,
            )

    def _driver(self) -> Driver:
        s = self._settings
        with self._lock:
            if self._neo4j is None:  # connects on its first query
                self._neo4j = GraphDatabase.driver(
                    s.neo4j_uri,
                    auth=s.neo4j_auth,
                    connection_timeout=s.query_neo4j_timeout_s,
                    connection_acquisition_timeout=s.query_neo4j_timeout_s,
                    max_transaction_retry_time=s.query_neo4j_timeout_s,
                )
            return self._neo4j

    def graph(self) -> GraphMoments:
        s = self._settings
        return GraphMoments(
            self._driver(), s.query_neo4j_timeout_s, s.query_graph_appearances_per_entity
        )

    def keywords(self) -> KeywordMoments:
        return KeywordMoments(self._driver(), self._settings.query_neo4j_timeout_s)

    def _executor(self) -> ThreadPoolExecutor:
        """Threads for the store calls that run beside the request's own thread. Those calls
        never wait on this pool themselves, so it cannot deadlock however busy it is."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(RETRIEVAL_THREADS, "retrieval")
            return self._pool

    # Retrievers ------------------------------------------------------------------------------
    def _vector(self, query: str, filters: SearchFilters, limit: int) -> list[Fused]:
        """Text and multimodal nearest moments (the two searches at once), merged by best
        cosine."""
        vector = [float(v) for v in self._stores.triton().embed_texts([query])[0]]
        expression = milvus_expression(filters)
        index = self.index()
        multimodal = self._executor().submit(index.nearest, "multimodal", vector, limit, expression)
        text = index.nearest("text", vector, limit, expression)
        return merge_best({"text": text, "multimodal": multimodal.result()})

    def _keyword(self, query: str, filters: SearchFilters, pool: int) -> list[Candidate]:
        terms = keywords(query)
        forms = search_forms(terms)  # "man" also finds the person label; re-scored by words
        found = self.keywords().moments(forms, filters, pool * POOL_FACTOR)
        return keyword_hits(found, terms)[:pool]

    # Use cases -------------------------------------------------------------------------------
    def search(self, request: SearchRequest) -> MomentsPublic:
        named = set(entity_names(request.query)) | set(request.filters.labels or [])
        pool = max(MIN_POOL, request.top_k * POOL_FACTOR)  # room to re-rank
        found = self._vector(request.query, request.filters, pool)
        ranked = rank_vector_hits(found, keywords(request.query))
        return _answer([_public(f, named) for f in ranked[: request.top_k]])

    def search_image(self, image: bytes, top_k: int, filters: SearchFilters) -> MomentsPublic:
        check_image(image, self._settings.search_max_image_bytes)
        [features] = self._stores.triton().image_features([image])
        keyframes = self.index().nearest(
            "visual",
            [float(v) for v in features],
            top_k * KEYFRAMES_PER_MOMENT,
            milvus_expression(filters),
        )
        # The best keyframe stands for its moment (video and chunk), so one shot's
        # neighbouring keyframes do not fill the page.
        best: dict[str, Candidate] = {}
        for keyframe in keyframes:
            moment_key = keyframe.id.rsplit(":", 1)[0]
            best.setdefault(moment_key, keyframe)
        ranked = [Fused(k, k.score, {"visual": k.score}) for k in best.values()][:top_k]
        return _answer([_public(f, set(filters.labels or [])) for f in ranked])

    def hybrid(self, request: HybridSearchRequest) -> MomentsPublic:
        pool = max(MIN_POOL, request.top_k * POOL_FACTOR)
        filters = request.filters
        weights = request.weights
        names = entity_names(request.query)
        # Graph and keyword retrieval run on the pool while this thread embeds and searches
        # the vectors; the lists are then taken in the same order as ever (ties in RRF keep it).
        later: dict[str, Future[list[Candidate]]] = {}
        if weights.graph > 0:
            later["graph"] = self._executor().submit(self.graph().moments, names, filters, pool)
        if weights.keyword > 0:
            later["keyword"] = self._executor().submit(self._keyword, request.query, filters, pool)
        lists: dict[str, list[Candidate]] = {}
        vector_hits: dict[str, Fused] = {}
        if weights.vector > 0:
            merged = self._vector(request.query, filters, pool)
            vector_hits = {f.moment.id: f for f in merged}
            lists["vector"] = [replace(f.moment, score=f.score) for f in merged]
        for name, retrieved in later.items():
            lists[name] = retrieved.result()
        fused = reciprocal_rank_fusion(lists, weights.model_dump(), request.rrf_k)
        if fused:  # one video's chunks spread out (penalty relative to RRF's scale), copies last
            fused = demote_duplicates(diversify(fused, HYBRID_SAME_VIDEO_SHARE * fused[0].score))
        answers = [_public(entry, set(names)) for entry in fused[: request.top_k]]
        for answer in answers:  # which vector collections matched, and how closely
            if answer.id in vector_hits:
                for kind, score in vector_hits[answer.id].scores.items():
                    answer.scores[f"{kind}_cosine"] = round(score, 6)
        return _answer(answers)
