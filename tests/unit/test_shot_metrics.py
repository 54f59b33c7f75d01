"""Precision, recall and F1 of shot boundaries against points and transition intervals."""

from __future__ import annotations

import pytest

from agents.analysis.inference.shot_metrics import CutScore, cut_f1, score_cuts


def test_exact_predictions_score_one() -> None:
    assert score_cuts([30, 76, 137], [30, 76, 137], tolerance=0) == CutScore(3, 0, 0)
    assert cut_f1([30, 76, 137], [30, 76, 137], tolerance=0) == 1.0


def test_predictions_within_the_tolerance_match() -> None:
    assert score_cuts([28, 78], [30, 76], tolerance=2) == CutScore(2, 0, 0)


def test_predictions_beyond_the_tolerance_are_false_positives_and_misses() -> None:
    score = score_cuts([27, 80], [30, 76], tolerance=2)

    assert score == CutScore(true_positives=0, false_positives=2, false_negatives=2)
    assert score.f1 == 0.0


def test_one_boundary_takes_only_one_of_two_nearby_predictions() -> None:
    score = score_cuts([29, 31], [30], tolerance=2)

    assert score == CutScore(true_positives=1, false_positives=1, false_negatives=0)
    assert score.precision == 0.5
    assert score.recall == 1.0
    assert score.f1 == pytest.approx(2 / 3)


def test_a_prediction_anywhere_inside_a_transition_interval_matches() -> None:
    published_fades = [(185, 217), (364, 400)]

    assert score_cuts([198, 377], published_fades, tolerance=2) == CutScore(2, 0, 0)
    assert score_cuts([183, 402], published_fades, tolerance=2) == CutScore(2, 0, 0)
    assert score_cuts([182, 403], published_fades, tolerance=2) == CutScore(0, 2, 2)


def test_an_unpublished_extra_boundary_costs_precision() -> None:
    # Two published boundaries found, plus one the ground truth does not list.
    assert cut_f1([198, 377, 540], [(185, 217), (364, 400)], tolerance=2) == pytest.approx(0.8)


def test_a_nested_interval_does_not_lose_its_prediction_to_a_wide_one() -> None:
    assert score_cuts([2.5, 8], [(0, 10), (2, 3)], tolerance=0) == CutScore(2, 0, 0)


def test_nothing_expected_and_nothing_found_is_perfect() -> None:
    assert cut_f1([], [], tolerance=2) == 1.0


def test_missing_every_boundary_scores_zero() -> None:
    assert score_cuts([], [30, 76], tolerance=2) == CutScore(0, 0, 2)
    assert cut_f1([], [30, 76], tolerance=2) == 0.0


def test_a_negative_tolerance_is_rejected() -> None:
    with pytest.raises(ValueError, match="tolerance must not be negative, got -1"):
        score_cuts([1], [1], tolerance=-1)


def test_an_interval_that_ends_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"boundary interval \(5, 3\) ends before it starts"):
        score_cuts([4], [(5, 3)], tolerance=0)
