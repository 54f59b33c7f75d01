"""The evaluation's metrics on known inputs, and a floor on a real run over a subset."""

from __future__ import annotations

import pytest

from tests.eval.metrics import first_relevant, mean_reciprocal_rank, recall_at
from tests.eval.run import Scores, by_split, load_set, split_of


def test_recall_and_mrr_count_the_first_relevant_rank():
    ranks = [1, 2, None, 5, 1]

    assert recall_at(ranks, 1) == pytest.approx(2 / 5)
    assert recall_at(ranks, 5) == pytest.approx(4 / 5)
    assert mean_reciprocal_rank(ranks) == pytest.approx((1 + 1 / 2 + 0 + 1 / 5 + 1) / 5)


def test_a_result_is_relevant_only_in_the_expected_video_and_time_range():
    results = [("other", 0.0, 10.0), ("v1", 20.0, 30.0), ("v1", 5.0, 15.0)]

    assert first_relevant(results, "v1", 12.0, 14.0) == 3
    assert first_relevant(results, "v1", 30.0, 40.0) == 2
    assert first_relevant(results, "v2", 0.0, 99.0) is None


def test_metrics_of_no_queries_are_zero_and_k_must_be_positive():
    assert recall_at([], 5) == 0.0 and mean_reciprocal_rank([]) == 0.0
    with pytest.raises(ValueError, match="k must be at least 1, got 0"):
        recall_at([1], 0)


def test_queries_without_a_split_are_tuning_and_each_split_is_scored_apart():
    spec = {"queries": [{"query": "a"}, {"query": "b", "split": "heldout"}, {"query": "c"}]}

    parts = by_split(spec, Scores("search", (1, None, 2)))

    assert [split_of(q) for q in spec["queries"]] == ["tuning", "heldout", "tuning"]
    assert {name: s.ranks for name, s in parts.items()} == {
        "all": (1, None, 2),
        "tuning": (1, 2),
        "heldout": (None,),
    }


def test_the_eval_set_has_a_held_out_split_written_apart():
    tuning, heldout = load_set(split="tuning"), load_set(split="heldout")

    assert len(tuning["queries"]) == 22 and len(heldout["queries"]) >= 30
    assert all(q["video"] in heldout["corpus"] for q in heldout["queries"])


@pytest.mark.stack
def test_the_first_queries_of_the_eval_set_are_found(running_stack):
    from tests.eval.run import run

    scores = run(only=6)

    for endpoint in scores:
        assert endpoint.r5 >= 0.8, endpoint
        assert endpoint.r1 >= 0.5, endpoint
