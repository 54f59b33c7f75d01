"""The alert rules' pure core: which moments each kind of rule fires on, and what it says."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agents.alerts.core import (
    alert_id_for,
    cosine,
    evaluate,
    find_phrase,
    label_key,
)
from agents.alerts.exceptions import MalformedRule
from agents.alerts.public import alert_public, media_url
from agents.alerts.rules import (
    AlertRule,
    LabelCondition,
    SemanticCondition,
    TextCondition,
    decode_rule,
    encode_rule,
)
from query_service.alerts.schemas import AlertPublic
from streams.records import (
    AlertClip,
    AlertMatch,
    ChunkAnalysed,
    ChunkSpan,
    KeyframeRef,
    MomentEmbedded,
    ObjectDetection,
    OcrLine,
    TranscriptSegment,
    Word,
)

CREATED_AT = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
EMBEDDED_AT = datetime(2026, 5, 1, 12, 0, 4, tzinfo=UTC)
NOW = datetime(2026, 5, 1, 12, 0, 5, tzinfo=UTC)
MODEL = "text_embedding:1"
BOX = (0.1, 0.1, 0.2, 0.2)


def _span(index: int = 2) -> ChunkSpan:
    return ChunkSpan(
        source="rtsp://cam", upload_id="u1", chunk_index=index, chunk_count=index + 1,
        start=20.0, end=30.0, video_duration=30.0,
    )  # fmt: skip


def _moment(
    video_id: str = "feed-1",
    objects: tuple[tuple[str, float, float], ...] = (),
    ocr: tuple[str, ...] = (),
    speech: str = "",
    vector: tuple[float, ...] = (1.0, 0.0, 0.0),
    model: str = MODEL,
) -> MomentEmbedded:
    span = _span()
    analysis = ChunkAnalysed(
        video_id=video_id,
        span=span,
        keyframes=(KeyframeRef(time=20.0, uri="file:///b/keyframes/v/00002_000020000.jpg",
                               width=64, height=48),),
        objects=tuple(
            ObjectDetection(label=label, score=score, box=BOX, time=time)
            for label, score, time in objects
        ),
        ocr=tuple(OcrLine(text=text, score=0.8, box=BOX, time=20.0) for text in ocr),
        transcript=(
            (TranscriptSegment(text=speech, start=20.0, end=24.0,
                               words=(Word(word="x", start=20.0, end=21.0, probability=0.9),)),)
            if speech else ()
        ),
    )  # fmt: skip
    return MomentEmbedded(
        video_id=video_id,
        occurred_at=EMBEDDED_AT,
        moment_id=f"{video_id}:00002",
        span=span,
        text="A scene.",
        model=model,
        vector=vector,
        thumbnail_uri="file:///b/keyframes/v/00002_000020000.jpg",
        analysis=analysis,
    )


def _rule(condition: object, feed_id: str | None = None, rule_id: str = "r1") -> AlertRule:
    return AlertRule(
        rule_id=rule_id, name=f"rule {rule_id}", feed_id=feed_id, condition=condition,
        created_at=CREATED_AT,
    )  # type: ignore[arg-type]  # fmt: skip


def test_a_label_rule_counts_the_most_seen_in_one_keyframe_not_across_keyframes() -> None:
    moment = _moment(objects=(("person", 0.9, 20.0), ("person", 0.7, 22.0), ("person", 0.6, 24.0)))
    rule = _rule(LabelCondition(label="person", min_count=2))

    assert evaluate([rule], moment, NOW) == []


def test_a_label_rule_fires_with_the_count_and_best_score_and_the_moments_clip() -> None:
    moment = _moment(objects=(("person", 0.9, 20.0), ("person", 0.7, 20.0), ("car", 0.95, 20.0)))
    rule = _rule(LabelCondition(label="People", min_count=2))

    [alert] = evaluate([rule], moment, NOW)

    assert alert.matched == AlertMatch(kind="label", label="person", count=2)
    assert alert.score == 0.9
    assert alert.clip == AlertClip(video_id="feed-1", start=20.0, end=30.0)
    assert (alert.video_id, alert.rule_id, alert.moment_id) == ("feed-1", "r1", "feed-1:00002")
    assert (alert.occurred_at, alert.moment_at) == (NOW, EMBEDDED_AT)
    assert alert.alert_id == alert.event_id == alert_id_for("r1", "feed-1:00002")


@pytest.mark.parametrize(
    ("written", "detected"),
    [("bikes", "bicycle"), ("Bicycle", "bicycle"), ("persons", "person"),
     ("mobile  phone", "cell phone"), ("bus", "bus"), ("glass", "glass")],
)  # fmt: skip
def test_labels_meet_in_any_case_singular_or_plural_and_through_synonyms(
    written: str, detected: str
) -> None:
    assert label_key(written) == label_key(detected)


def test_a_different_label_does_not_match() -> None:
    assert label_key("cat") != label_key("car")


def test_a_rule_ignores_moments_embedded_before_it_was_made() -> None:
    moment = _moment(objects=(("car", 0.8, 20.0),))
    later = _rule(LabelCondition(label="car")).model_copy(update={"created_at": NOW})

    assert evaluate([later], moment, NOW) == []


def test_alert_ids_depend_on_rule_and_moment_only() -> None:
    first = alert_id_for("r1", "v:00001")

    assert first == alert_id_for("r1", "v:00001")
    assert len({first, alert_id_for("r2", "v:00001"), alert_id_for("r1", "v:00002")}) == 3
    assert first.startswith("a") and len(first) == 32


def test_a_scoped_rule_watches_its_feed_only_and_a_global_rule_every_one() -> None:
    scoped = _rule(LabelCondition(label="car"), feed_id="feed-2", rule_id="scoped")
    everywhere = _rule(LabelCondition(label="car"), rule_id="global")
    moment = _moment(objects=(("car", 0.8, 20.0),))

    assert [a.rule_id for a in evaluate([scoped, everywhere], moment, NOW)] == ["global"]


@pytest.mark.parametrize(
    ("phrase", "text", "found"),
    [("exit", "EMERGENCY  Exit ->", 10), ("fire exit", "the fire\nexit", 4),
     ("cat", "education", None), ("cat", "a cat.", 2), ("exit!", "exit!!", 0),
     ("(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", None), ("", "anything", None)],
)  # fmt: skip
def test_phrases_match_whole_words_in_any_case_and_are_never_patterns(
    phrase: str, text: str, found: int | None
) -> None:
    assert find_phrase(phrase, text) == found


def test_a_text_rule_fires_on_speech_with_an_excerpt_and_the_words_confidence() -> None:
    moment = _moment(ocr=("SALE",), speech="Please leave by the fire exit now.")
    rule = _rule(TextCondition(phrase="Fire Exit"))

    [alert] = evaluate([rule], moment, NOW)

    assert alert.matched == AlertMatch(
        kind="text",
        phrase="Fire Exit",
        source="transcript",
        excerpt="please leave by the fire exit now.",
    )
    assert alert.score == 0.9


def test_a_text_rule_reads_only_the_sources_it_names() -> None:
    moment = _moment(ocr=("FIRE EXIT",))
    ocr_only = _rule(TextCondition(phrase="fire exit", sources=("transcript",)))

    assert evaluate([ocr_only], moment, NOW) == []
    [alert] = evaluate([_rule(TextCondition(phrase="fire exit", sources=("ocr",)))], moment, NOW)
    assert (alert.matched.source, alert.score) == ("ocr", 0.8)


def test_a_semantic_rule_fires_at_or_above_its_threshold_by_cosine() -> None:
    moment = _moment(vector=(0.6, 0.8, 0.0))
    near = SemanticCondition(query="q", min_score=0.6, model=MODEL, vector=(1.0, 0.0, 0.0))
    far = SemanticCondition(query="q", min_score=0.61, model=MODEL, vector=(1.0, 0.0, 0.0))

    [alert] = evaluate([_rule(near)], moment, NOW)

    assert (alert.matched, alert.score) == (AlertMatch(kind="semantic", query="q"), 0.6)
    assert evaluate([_rule(far)], moment, NOW) == []


def test_a_semantic_rule_ignores_moments_embedded_by_another_model() -> None:
    moment = _moment(vector=(1.0, 0.0, 0.0), model="text_embedding:2")
    rule = _rule(SemanticCondition(query="q", min_score=0.1, model=MODEL, vector=(1.0, 0.0, 0.0)))

    assert evaluate([rule], moment, NOW) == []


def test_cosine_is_none_for_vectors_that_cannot_be_compared() -> None:
    assert cosine((1.0, 0.0), (1.0, 0.0, 0.0)) is None
    assert cosine((0.0, 0.0), (1.0, 0.0)) is None
    assert cosine((1.0, 1.0), (-2.0, -2.0)) == pytest.approx(-1.0)


def test_a_rule_survives_its_topic_and_bad_records_say_why() -> None:
    rule = _rule(SemanticCondition(query="q", min_score=0.5, model=MODEL, vector=(0.5, 0.5)))

    assert decode_rule(encode_rule(rule)) == rule
    with pytest.raises(MalformedRule, match="version 2 is not supported"):
        decode_rule(encode_rule(rule).replace(b'"version":1', b'"version":2'))
    with pytest.raises(MalformedRule, match="expected an AlertRuleSaved record, got 'JobState'"):
        decode_rule(b'{"type": "JobState"}')
    with pytest.raises(MalformedRule, match=r"condition\.label\.min_count: Input should be"):
        decode_rule(
            encode_rule(_rule(LabelCondition(label="car"))).replace(
                b'"min_count":1', b'"min_count":0'
            )
        )


def test_the_public_alert_has_the_clip_to_play_and_matches_the_published_schema() -> None:
    moment = _moment(objects=(("car", 0.8, 20.0),))
    [alert] = evaluate([_rule(LabelCondition(label="car"))], moment, NOW)

    public = alert_public(alert)

    assert AlertPublic.model_validate(public).model_dump(mode="json")["clip"] == {
        "video_id": "feed-1",
        "start": 20.0,
        "end": 30.0,
        "media_url": "/v1/videos/feed-1/media#t=20,30",
        "thumbnail_url": "/v1/keyframes/v/00002_000020000.jpg",
    }
    assert public["matched"] == {"kind": "label", "label": "car", "count": 1}
    assert media_url("a:b", 1.5, 12.25) == "/v1/videos/a%3Ab/media#t=1.5,12.25"
