from pathlib import Path

from agents.analysis.cache import AnalysisCache, cache_key
from agents.shared.blob_store import LocalBlobStore
from streams.records import ChunkAnalysed, ChunkCut, ChunkSpan, KeyframeRef, ObjectDetection


def _chunk(upload_id: str, start: float = 0.0, end: float = 10.0) -> ChunkCut:
    span = ChunkSpan(
        source="/m/a.mp4",
        upload_id=upload_id,
        chunk_index=0,
        chunk_count=1,
        start=start,
        end=end,
        video_duration=10.0,
    )
    frames = (KeyframeRef(time=start, uri="file:///k/0.jpg", width=64, height=36),)
    return ChunkCut(video_id="vabc", span=span, keyframes=frames)


def _analysis(chunk: ChunkCut) -> ChunkAnalysed:
    car = ObjectDetection(label="car", score=0.9, box=(0.1, 0.2, 0.3, 0.4), time=0.0)
    return ChunkAnalysed(
        video_id=chunk.video_id,
        span=chunk.span,
        keyframes=chunk.keyframes,
        objects=(car,),
        models={"object_detection": "yolo-1"},
    )


def test_a_reupload_hits_the_cache_and_says_so(tmp_path: Path):
    cache = AnalysisCache(LocalBlobStore(tmp_path))
    first = _chunk("upload-1")
    key = cache_key(first, {"object_detection": "yolo-1"}, ["local"])
    cache.put(key, _analysis(first))

    again = _chunk("upload-2")
    hit = cache.get(cache_key(again, {"object_detection": "yolo-1"}, ["local"]), again)

    assert hit is not None and hit.cache_hit is True
    assert hit.span.upload_id == "upload-2"
    assert [o.label for o in hit.objects] == ["car"]
    assert hit.models == {"object_detection": "yolo-1"}


def test_a_new_model_version_range_or_provider_misses():
    chunk = _chunk("u")
    base = cache_key(chunk, {"object_detection": "yolo-1"}, ["local"])
    assert cache_key(chunk, {"object_detection": "yolo-2"}, ["local"]) != base
    assert cache_key(_chunk("u", 0.0, 9.0), {"object_detection": "yolo-1"}, ["local"]) != base
    assert cache_key(chunk, {"object_detection": "yolo-1"}, ["local", "vila"]) != base
    assert cache_key(_chunk("other-upload"), {"object_detection": "yolo-1"}, ["local"]) == base


def test_a_missing_or_corrupt_entry_is_a_miss(tmp_path: Path):
    store = LocalBlobStore(tmp_path)
    cache = AnalysisCache(store)
    chunk = _chunk("u")
    key = cache_key(chunk, {}, ["local"])
    assert cache.get(key, chunk) is None
    store.put(key, b"{not json", "application/json")
    assert cache.get(key, chunk) is None
