from agents.analysis.core import assemble, clip_shots, keyframe_for, representatives
from agents.analysis.providers.base import ProviderResult
from streams.records import ChunkCut, ChunkSpan, KeyframeRef, Shot

FRAMES = tuple(
    KeyframeRef(time=t, uri=f"file:///k/{t}.jpg", width=64, height=36)
    for t in (0.0, 1.2, 3.04, 5.48, 7.48, 9.68)
)


def test_each_shot_is_represented_by_the_keyframe_nearest_its_middle():
    shots = [Shot(start=0.0, end=1.2), Shot(start=1.2, end=3.04), Shot(start=3.04, end=10.0)]
    assert representatives(shots, [f.time for f in FRAMES]) == [0, 1, 4]
    assert keyframe_for(shots[2], FRAMES) == FRAMES[4]  # 7.48 is nearest 6.52


def test_a_shot_without_a_keyframe_inside_borrows_the_nearest():
    assert keyframe_for(Shot(start=2.0, end=2.5), FRAMES) == FRAMES[2]
    assert representatives([Shot(start=2.0, end=2.5)], [f.time for f in FRAMES]) == [2]


def test_shots_are_clipped_to_the_chunk_and_never_empty():
    whole_video = (Shot(start=0.0, end=4.0), Shot(start=4.0, end=30.0))
    assert clip_shots(whole_video, 10.0, 20.0) == (Shot(start=10.0, end=20.0),)
    assert clip_shots((), 10.0, 20.0) == (Shot(start=10.0, end=20.0),)


def test_assembly_gives_every_shot_a_keyframe_and_sorted_provenance():
    span = ChunkSpan(
        source="/v.mp4",
        upload_id="u",
        chunk_index=0,
        chunk_count=1,
        start=0.0,
        end=10.0,
        video_duration=10.0,
    )
    chunk = ChunkCut(video_id="v1", span=span, keyframes=FRAMES)
    found = ProviderResult(
        shots=(Shot(start=0.0, end=1.2), Shot(start=1.2, end=10.0)),
        models={"ocr": "2", "face_detection": "1"},
        unavailable={"captioner": "no weights"},
    )
    analysis = assemble(chunk, found)
    assert [s.keyframe.time for s in analysis.shots if s.keyframe] == [0.0, 5.48]
    assert list(analysis.models) == ["face_detection", "ocr"]
    assert analysis.unavailable == {"captioner": "no weights"}
    assert analysis.cache_hit is False
