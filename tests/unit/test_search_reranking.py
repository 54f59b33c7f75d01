"""Re-ranking merged search results and matching query terms literally, on plain values."""

from __future__ import annotations

import pytest

from query_service.retrieval.fusion import (
    Candidate,
    Fused,
    demote_duplicates,
    diversify,
    keyword_hits,
    lexical_boost,
    rank_vector_hits,
)
from query_service.retrieval.terms import entity_names, search_forms, term_coverage


def moment(
    key: str, video: str, score: float, text: str = "A scene.", labels: tuple[str, ...] = ()
) -> Candidate:
    return Candidate(key, video, f"/{video}.mp4", 0.0, 10.0, text, labels, "", score)


def fused(*candidates: Candidate) -> list[Fused]:
    return [Fused(c, c.score, {"text": c.score}) for c in candidates]


def order(entries: list[Fused]) -> list[str]:
    return [entry.moment.id for entry in entries]


def test_terms_count_as_whole_words_in_their_singular_and_detector_forms():
    text = "A scene showing two cars and a person. It looks like cartoon."

    assert term_coverage(["car"], text) == 1.0
    assert term_coverage(["bicycles"], "A scene showing a bicycle.") == 1.0
    assert term_coverage(["man", "airplane"], "", ("person", "aeroplane")) == 1.0
    assert term_coverage(["cart"], text) == 0.0
    assert term_coverage(["dog", "bed"], "A scene showing a dog.") == 0.5
    assert term_coverage([], text) == 0.0


def test_a_literal_search_also_looks_for_the_other_forms_of_each_term():
    assert search_forms(["cars", "man", "frame"]) == ["cars", "car", "man", "person", "frame"]


def test_everyday_words_name_the_detectors_classes():
    assert "aeroplane" in entity_names("a jet airplane in the sky")
    assert "sofa" in entity_names("a cat on the couch")


def test_the_lexical_boost_moves_a_score_part_of_the_way_to_one():
    plain = moment("plain", "v1", 0.42, "A scene showing a sheep.")
    literal = moment("literal", "v2", 0.40, "A scene showing a dog.", ("dog",))

    boosted = lexical_boost(fused(plain, literal), ["dog", "bed"], weight=0.1)

    assert order(boosted) == ["literal", "plain"]
    assert boosted[0].score == pytest.approx(0.40 + 0.1 * 0.5 * 0.60)
    assert boosted[1].score == 0.42 and boosted[0].scores == {"text": 0.40}


def test_the_lexical_boost_keeps_a_cosine_at_most_one_and_checks_its_weight():
    [top] = lexical_boost(fused(moment("a", "v1", 1.0, "a dog")), ["dog"], weight=1.0)

    assert top.score == 1.0
    with pytest.raises(ValueError, match=r"weight must lie in \[0, 1\], got 1.5"):
        lexical_boost([], ["dog"], weight=1.5)


def test_a_second_chunk_of_a_video_yields_to_a_close_other_video():
    ranked = diversify(
        fused(moment("v1:0", "v1", 0.50), moment("v1:1", "v1", 0.49), moment("v2:0", "v2", 0.46)),
        penalty=0.05,
    )

    assert order(ranked) == ["v1:0", "v2:0", "v1:1"]
    assert [entry.score for entry in ranked] == [0.50, 0.46, 0.49]


def test_a_second_chunk_well_ahead_of_other_videos_keeps_its_place():
    ranked = diversify(
        fused(moment("v1:0", "v1", 0.50), moment("v1:1", "v1", 0.49), moment("v2:0", "v2", 0.40)),
        penalty=0.05,
    )

    assert order(ranked) == ["v1:0", "v1:1", "v2:0"]
    with pytest.raises(ValueError, match=r"penalty must not be negative, got -0\.1"):
        diversify([], penalty=-0.1)


def test_copies_of_a_moment_in_other_videos_come_after_every_distinct_moment():
    same = "A scene showing a person. Speech: set white with p two soon."
    ranked = demote_duplicates(
        fused(
            moment("a:0", "a", 0.50, same, ("person",)),
            moment("b:0", "b", 0.50, same, ("person",)),
            moment("c:0", "c", 0.30, "A scene showing a dog.", ("dog",)),
        )
    )

    assert order(ranked) == ["a:0", "c:0", "b:0"]


def test_the_search_order_boosts_literal_matches_then_spreads_videos_and_demotes_copies():
    copy_text = "A scene showing a car."
    ranked = rank_vector_hits(
        fused(
            moment("a:0", "a", 0.50, copy_text, ("car",)),
            moment("b:0", "b", 0.50, copy_text, ("car",)),
            moment("a:1", "a", 0.49, "A scene showing a road."),
            moment("c:0", "c", 0.45, "A scene showing a truck."),
        ),
        ["car"],
    )

    assert order(ranked) == ["a:0", "c:0", "a:1", "b:0"]


def test_keyword_hits_must_hold_half_the_terms_as_whole_words():
    found = [
        moment("one-word", "v1", 0.9, "Speech: set white with p two soon."),
        moment("two-words", "v2", 0.1, "A black and white film."),
        moment("prefix-only", "v3", 0.5, "A scene showing a cartoon."),
    ]

    hits = keyword_hits(found, ["black", "white", "car", "film"])

    assert [(c.id, c.score) for c in hits] == [("two-words", 0.75)]
