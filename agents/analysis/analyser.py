"""One chunk's analysis: cache lookup, then our models and any external providers."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agents.analysis.cache import AnalysisCache, cache_key
from agents.analysis.core import assemble
from agents.analysis.local import ChunkMedia, LocalModels
from agents.analysis.providers.base import KeyframeImage, Provider, ProviderResult, merge_results
from agents.analysis.providers.config import LOCAL
from agents.shared.blob_store import BlobStore
from streams.records import ChunkAnalysed, ChunkCut


class ChunkAnalyser:
    def __init__(
        self,
        blobs: BlobStore,
        local: LocalModels,
        external: Callable[[Sequence[str]], list[Provider]],
    ) -> None:
        self._blobs = blobs
        self._cache = AnalysisCache(blobs)
        self._local = local
        self._external = external

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
        found.extend(provider.analyse_keyframes(frames) for provider in external)
        result = assemble(chunk, merge_results(found))
        self._cache.put(key, result)
        return result
