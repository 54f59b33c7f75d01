"""The pure parts of the embedding stage: ids, ConSE weights and mixes, fusion."""

from __future__ import annotations

import numpy as np
import pytest

from agents.embedding.conse import concept_weights, conse_vector, fuse, unit, visual_concepts
from agents.embedding.core import keyframe_id, keyframe_labels, moment_id, words_in_moment
from streams.records import (
    ChunkAnalysed,
    ChunkSpan,
    KeyframeRef,
    ObjectDetection,
    OcrLine,
    Tag,
    TranscriptSegment,
)

SPAN = ChunkSpan(
    source="/m/bikes.mp4", upload_id="u1", chunk_index=3, chunk_count=4,
    start=30.0, end=40.0, video_duration=40.0,
)  # fmt: skip
BOX = (0.1, 0.1, 0.2, 0.2)


def _analysis(**fields: object) -> ChunkAnalysed:
    frames = tuple(
        KeyframeRef(time=t, uri=f"file:///k/{t}.jpg", width=64, height=48) for t in (30.0, 32.0)
    )
    return ChunkAnalysed(video_id="v1", span=SPAN, keyframes=frames, **fields)  # type: ignore[arg-type]


def test_ids_are_stable_and_name_the_chunk_and_keyframe_millisecond() -> None:
    assert moment_id("v1", 3) == "v1:00003"
    assert keyframe_id("v1", 3, 32.0) == "v1:00003:00032000"
    assert keyframe_id("v1", 3, 31.9996) == "v1:00003:00032000"
    assert keyframe_id("v1", 0, 0.04) == "v1:00000:00000040"


def test_concept_weights_average_over_frames_keep_the_top_and_sum_to_one() -> None:
    observations = [
        (0.0, "bicycle", 0.9), (0.0, "bicycle", 0.5), (2.0, "bicycle", 0.7),
        (0.0, "person", 0.6), (2.0, "car", 0.2),
    ]  # fmt: skip

    weights = concept_weights(observations, frames=2, top=2)

    # bicycle: (0.9 + 0.7) / 2 = 0.8; person: 0.6 / 2 = 0.3; car (0.1) falls out of the top 2.
    assert weights == pytest.approx({"bicycle": 0.8 / 1.1, "person": 0.3 / 1.1})


def test_concept_weights_refuse_zero_frames_and_give_nothing_for_nothing() -> None:
    assert concept_weights([], frames=1) == {}
    with pytest.raises(ValueError, match="frames must be positive, got 0"):
        concept_weights([(0.0, "cat", 1.0)], frames=0)


def test_visual_concepts_split_imagenet_tags_from_coco_detections() -> None:
    analysis = _analysis(
        tags=(Tag(label="mountain bike", score=0.8, time=30.0),
              Tag(label="unicycle", score=0.2, time=32.0)),
        objects=(ObjectDetection(label="bicycle", score=0.9, box=BOX, time=32.0),),
    )  # fmt: skip

    tags, objects = visual_concepts(analysis)

    assert tags == pytest.approx({"mountain bike": 0.8, "unicycle": 0.2})
    assert objects == {"bicycle": 1.0}


def test_conse_vector_is_the_normalised_probability_weighted_mix() -> None:
    vectors = {"a": np.array([1.0, 0.0, 0.0]), "b": np.array([0.0, 1.0, 0.0])}

    mixed = conse_vector({"a": 0.75, "b": 0.25}, vectors)

    assert mixed == pytest.approx(np.array([3.0, 1.0, 0.0]) / np.sqrt(10))
    with pytest.raises(KeyError):
        conse_vector({"c": 1.0}, vectors)


def test_fusion_weights_unit_parts_and_drops_missing_ones() -> None:
    seen, said = np.array([2.0, 0.0]), np.array([0.0, 5.0])

    assert fuse([(0.6, seen), (0.4, said)]) == pytest.approx(unit(np.array([0.6, 0.4])))
    assert fuse([(0.6, seen), (0.4, None)]) == pytest.approx(np.array([1.0, 0.0]))
    assert fuse([(0.6, None), (0.4, None)]) is None


def test_a_keyframe_is_labelled_with_its_own_objects_then_tags() -> None:
    analysis = _analysis(
        tags=(Tag(label="mountain bike", score=0.8, time=32.0),
              Tag(label="espresso", score=0.9, time=30.0)),
        objects=(ObjectDetection(label="person", score=0.5, box=BOX, time=32.0),
                 ObjectDetection(label="bicycle", score=0.9, box=BOX, time=32.0)),
    )  # fmt: skip

    assert keyframe_labels(analysis, 32.0) == ("bicycle", "person", "mountain bike")
    assert keyframe_labels(analysis, 30.0) == ("espresso",)


def test_the_moments_words_are_its_screen_text_then_its_speech() -> None:
    analysis = _analysis(
        ocr=(OcrLine(text="EXIT", score=0.9, box=BOX, time=30.0),
             OcrLine(text=" exit ", score=0.9, box=BOX, time=32.0)),
        transcript=(TranscriptSegment(text=" Set white ", start=30.0, end=31.0),
                    TranscriptSegment(text="with P2 soon.", start=31.0, end=32.0)),
    )  # fmt: skip

    assert words_in_moment(analysis) == "EXIT Set white with P2 soon."
    assert words_in_moment(_analysis()) == ""
