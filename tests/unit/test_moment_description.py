from agents.embedding.core import describe, label_counts, moment_id
from agents.graph.core import moment_delta
from streams.records import (
    ChunkAnalysed,
    ChunkSpan,
    KeyframeRef,
    MomentEmbedded,
    ObjectDetection,
)

SPAN = ChunkSpan(
    source="/m/bikes.mp4",
    upload_id="u1",
    chunk_index=1,
    chunk_count=3,
    start=10.0,
    end=20.0,
    video_duration=30.0,
)


def _obj(label, t):
    return ObjectDetection(label=label, score=0.9, box=(0.1, 0.1, 0.2, 0.2), time=t)


def _analysis(*objects):
    frames = (
        KeyframeRef(time=10.0, uri="file:///k/1.jpg", width=64, height=48),
        KeyframeRef(time=12.0, uri="file:///k/2.jpg", width=64, height=48),
    )
    return ChunkAnalysed(video_id="v1", span=SPAN, keyframes=frames, objects=objects)


def test_counts_are_the_most_seen_together_in_one_frame():
    analysis = _analysis(
        _obj("person", 10.0), _obj("person", 12.0), _obj("person", 12.0), _obj("bicycle", 10.0)
    )
    assert label_counts(analysis) == {"person": 2, "bicycle": 1}


def test_a_moment_is_described_in_words_most_prominent_first():
    analysis = _analysis(
        _obj("person", 12.0), _obj("person", 12.0), _obj("bicycle", 10.0), _obj("car", 10.0)
    )
    assert describe(analysis) == (
        "A scene showing two people, a bicycle and a car.",
        ("person", "bicycle", "car"),
    )


def test_a_moment_without_objects_says_so():
    assert describe(_analysis()) == ("A scene with no recognised objects.", ())


def test_moment_ids_are_stable_keys():
    assert moment_id("v1", 7) == "v1:00007"


def test_a_moment_links_to_its_video_and_both_neighbours():
    moment = MomentEmbedded(
        video_id="v1",
        moment_id="v1:00001",
        span=SPAN,
        text="t",
        labels=("car",),
        model="m:1",
        vector=(0.0,) * 4,
    )
    delta = moment_delta(moment)
    assert [(n.label, n.key) for n in delta.nodes] == [("Video", "v1"), ("Chunk", "v1:00001")]
    assert [(e.type, e.start_key, e.end_key) for e in delta.edges] == [
        ("HAS_CHUNK", "v1", "v1:00001"),
        ("NEXT", "v1:00000", "v1:00001"),
        ("NEXT", "v1:00001", "v1:00002"),
    ]


def test_tags_text_and_speech_join_the_description_in_order_of_weight():
    from streams.records import FaceDetection, OcrLine, Tag, TranscriptSegment

    analysis = _analysis(_obj("person", 10.0)).model_copy(
        update={
            "faces": (FaceDetection(score=0.8, box=(0.1, 0.1, 0.3, 0.3), time=10.0),),
            "tags": (
                Tag(label="bicycle-built-for-two", score=0.2, time=10.0),
                Tag(label="mountain bike", score=0.7, time=12.0),
            ),
            "ocr": (
                OcrLine(text="Frame = 12", score=0.9, box=(0.5, 0.8, 0.9, 0.9), time=10.0),
                OcrLine(text="frame =  12", score=0.8, box=(0.5, 0.8, 0.9, 0.9), time=12.0),
            ),
            "transcript": (
                TranscriptSegment(text=" Ask not what your country can do.", start=10.0, end=12.0),
            ),
        }
    )
    text, labels = describe(analysis)
    assert text == (
        "A scene showing a person. A face is visible. It looks like mountain bike and "
        "bicycle-built-for-two. On-screen text: Frame = 12. "
        "Speech: Ask not what your country can do."
    )
    assert labels == ("person", "mountain bike", "bicycle-built-for-two")
