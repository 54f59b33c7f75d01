from typing import Literal

import pytest

from agents.analysis.core import (
    EntitySource,
    assemble,
    clip_shots,
    entity_sources,
    keyframe_for,
    mentions_in,
    representatives,
    within,
)
from agents.analysis.inference.entities import NamedEntity
from agents.analysis.providers.base import ProviderResult, merge_results
from streams.records import (
    ChunkCut,
    ChunkSpan,
    EntityMention,
    KeyframeRef,
    OcrLine,
    Shot,
    TranscriptSegment,
)

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


def a_chunk(start: float = 0.0, end: float = 10.0) -> ChunkCut:
    span = ChunkSpan(
        source="/v.mp4",
        upload_id="u",
        chunk_index=0,
        chunk_count=1,
        start=start,
        end=end,
        video_duration=max(end, 10.0),
    )
    return ChunkCut(video_id="v1", span=span, keyframes=FRAMES)


def mention(
    text: str,
    time: float,
    source: Literal["transcript", "ocr"] = "transcript",
    label: str = "GPE",
) -> EntityMention:
    return EntityMention(text=text, label=label, source=source, time=time)


def test_assembly_gives_every_shot_a_keyframe_and_sorted_provenance():
    chunk = a_chunk()
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


def test_assembly_carries_the_mentions_of_every_provider_in_order():
    local = ProviderResult(mentions=(mention("Berlin", 1.0), mention("Apple", 2.0, "ocr", "ORG")))
    other = ProviderResult(mentions=(mention("Paris", 3.0),))

    analysis = assemble(a_chunk(), merge_results([local, other]))

    assert analysis.mentions == (
        mention("Berlin", 1.0),
        mention("Apple", 2.0, "ocr", "ORG"),
        mention("Paris", 3.0),
    )


def test_a_whole_video_result_keeps_only_the_mentions_inside_the_chunk():
    found = ProviderResult(
        mentions=(mention("Rome", 4.9), mention("Oslo", 5.0), mention("Nice", 10.0))
    )

    assert within(found, 5.0, 10.0).mentions == (mention("Oslo", 5.0),)


def test_entity_sources_are_the_spoken_then_the_shown_texts_without_blank_ones():
    transcript = (
        TranscriptSegment(text="My fellow Americans", start=1.5, end=3.0),
        TranscriptSegment(text=" ", start=3.0, end=4.0),
    )
    ocr = (
        OcrLine(text="", score=0.9, box=(0, 0, 1, 1), time=0.0),
        OcrLine(text="Berlin", score=0.9, box=(0, 0, 1, 1), time=2.0),
    )

    assert entity_sources(transcript, ocr) == [
        EntitySource("transcript", "My fellow Americans", 1.5),
        EntitySource("ocr", "Berlin", 2.0),
    ]
    assert entity_sources((), ()) == []


def test_each_entity_becomes_a_mention_at_its_texts_time_and_source():
    sources = [EntitySource("transcript", "Tim Cook in Berlin", 1.5), EntitySource("ocr", "x", 2.0)]
    found = [
        [NamedEntity("Tim Cook", "PERSON", 0, 8), NamedEntity("Berlin", "GPE", 12, 18)],
        [NamedEntity("A" * 201, "ORG", 0, 201), NamedEntity("Apple", "ORG", 0, 5)],
    ]

    assert mentions_in(sources, found) == (
        mention("Tim Cook", 1.5, label="PERSON"),
        mention("Berlin", 1.5),
        mention("Apple", 2.0, "ocr", "ORG"),  # the 201-character run is not a name
    )


def test_mentions_need_one_entity_list_per_text():
    with pytest.raises(ValueError, match="1 entity lists for 2 texts"):
        mentions_in([EntitySource("ocr", "a", 0.0), EntitySource("ocr", "b", 0.0)], [[]])
