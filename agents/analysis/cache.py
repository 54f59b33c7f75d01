"""Analysis cache: re-uploading the same video skips inference.

An analysis is keyed by the video's content (its id is the content hash), the chunk's time
range, the providers asked for and the name and version of every model involved. Any model
upgrade therefore misses the cache by construction. Entries live in the blob store (a local
directory or S3), so every worker shares them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import orjson
from pydantic import ValidationError

from agents.shared.blob_store import BlobError, BlobStore
from streams.records import ChunkAnalysed, ChunkCut

CACHE_PREFIX = "analysis-cache"
# Fields that describe this delivery rather than the analysis itself.
_PER_EVENT = {"event_id", "occurred_at", "span", "keyframes", "cache_hit"}


def cache_key(chunk: ChunkCut, models: Mapping[str, str], providers: Sequence[str]) -> str:
    identity = {
        "video": chunk.video_id,
        "start": round(chunk.span.start, 3),
        "end": round(chunk.span.end, 3),
        "keyframes": [round(frame.time, 3) for frame in chunk.keyframes],
        "models": dict(sorted(models.items())),
        "providers": sorted(providers),
    }
    digest = hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{CACHE_PREFIX}/{chunk.video_id}/{digest}.json"


class AnalysisCache:
    def __init__(self, blobs: BlobStore) -> None:
        self._blobs = blobs

    def get(self, key: str, chunk: ChunkCut) -> ChunkAnalysed | None:
        """The cached analysis re-addressed to this chunk event, or None on a miss."""
        try:
            raw = self._blobs.get(self._blobs.uri_for(key))
        except BlobError:
            return None
        try:
            cached = orjson.loads(raw)
            fields = {k: v for k, v in cached.items() if k not in _PER_EVENT}
            return ChunkAnalysed.model_validate(
                {
                    **fields,
                    "span": chunk.span.model_dump(mode="json"),
                    "keyframes": [k.model_dump(mode="json") for k in chunk.keyframes],
                    "video_id": chunk.video_id,
                    "cache_hit": True,
                }
            )
        except (orjson.JSONDecodeError, ValidationError):
            return None  # a stale or foreign entry is a miss, never an error

    def put(self, key: str, analysis: ChunkAnalysed) -> None:
        data = orjson.dumps(analysis.model_dump(mode="json"))
        self._blobs.put(key, data, "application/json")
