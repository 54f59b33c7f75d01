"""One chunk's analysis: cache lookup, then our models and any external providers."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence

import numpy as np

from agents.analysis.cache import AnalysisCache, cache_key
from agents.analysis.core import assemble, within
from agents.analysis.local import ChunkMedia, LocalModels
from agents.analysis.providers.base import KeyframeImage, Provider, ProviderResult, merge_results
from agents.analysis.providers.config import LOCAL
from agents.shared.blob_store import BlobStore
from streams.records import ChunkAnalysed, ChunkCut

MAX_VIDEO_JOBS_KEPT = 32


class ChunkAnalyser:
    def __init__(
        self,
        blobs: BlobStore,
        local: LocalModels,
        external: Callable[[Sequence[str]], list[Provider]],
        video_poll_interval_s: float = 5.0,
        video_timeout_s: float = 900.0,
    ) -> None:
        self._blobs = blobs
        self._cache = AnalysisCache(blobs)
        self._local = local
        self._external = external
        self._poll_s = video_poll_interval_s
        self._video_timeout_s = video_timeout_s
        # Whole-video provider jobs, once per (provider, upload): every chunk of the upload
        # takes its slice. Chunks of one video share a partition, hence this worker.
        # Chunks are analysed concurrently, so the job table is locked (one job per upload).
        self._videos: dict[tuple[str, str], ProviderResult] = {}
        self._videos_lock = threading.Lock()

    def warm_up(self) -> None:
        """Ask Triton for the local models' versions (this connects the client)."""
        self._local.versions()

    def analyse(self, chunk: ChunkCut) -> ChunkAnalysed:
        providers = list(chunk.providers)
        external = self._external(providers)
        versions = self._local.versions() if LOCAL in providers else {}
        for provider in external:
            versions[provider.name] = provider.version()
        key = cache_key(chunk, versions, providers)
        cached = self._cache.get(key, chunk)
        if cached is not None:
            return cached
        frames = [
            KeyframeImage(time=k.time, jpeg=self._blobs.get(k.uri), width=k.width, height=k.height)
            for k in chunk.keyframes
        ]
        found: list[ProviderResult] = []
        if LOCAL in providers:
            media = ChunkMedia(
                frames=frames,
                strip=self._blobs.get(chunk.strip_uri) if chunk.strip_uri else None,
                audio=self._blobs.get(chunk.audio_uri) if chunk.audio_uri else None,
                start=chunk.span.start,
                end=chunk.span.end,
            )
            found.append(self._local.analyse(media))
        for provider in external:
            found.append(provider.analyse_keyframes(frames))
            video_level = self._video_level(provider, chunk)
            if video_level is not None:
                found.append(video_level)
        merged = merge_results(found)
        result = assemble(chunk, merged)
        if merged.keyframe_features is not None and len(merged.keyframe_features):
            result = result.model_copy(
                update={"keyframe_features_uri": self._store_features(chunk, merged)}
            )
        self._cache.put(key, result)
        return result

    def _store_features(self, chunk: ChunkCut, found: ProviderResult) -> str:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(found.keyframe_features, dtype=np.float32), allow_pickle=False)
        key = f"features/{chunk.video_id}/{chunk.span.chunk_index:05d}.npy"
        return self._blobs.put(key, buffer.getvalue(), "application/octet-stream")

    def _video_level(self, provider: Provider, chunk: ChunkCut) -> ProviderResult | None:
        """Providers that analyse a whole stored video (Rekognition's S3 video jobs) run once
        per upload; this chunk gets the part of the result inside its span."""
        analyse_video = getattr(provider, "analyse_video", None)
        source = chunk.span.source
        if analyse_video is None or not source.startswith("s3://"):
            return None
        bucket, _, key = source.removeprefix("s3://").partition("/")
        job = (provider.name, chunk.span.upload_id)
        with self._videos_lock:
            result = self._video_job(job, analyse_video, bucket, key)
        return within(result, chunk.span.start, chunk.span.end)

    def _video_job(
        self,
        job: tuple[str, str],
        analyse_video: Callable[..., ProviderResult],
        bucket: str,
        key: str,
    ) -> ProviderResult:
        if job not in self._videos:
            if len(self._videos) >= MAX_VIDEO_JOBS_KEPT:
                self._videos.pop(next(iter(self._videos)))  # the oldest upload's result
            self._videos[job] = analyse_video(
                bucket,
                key,
                poll_interval_s=self._poll_s,
                timeout_s=self._video_timeout_s,
                job_token=job[1],
            )
        return self._videos[job]
