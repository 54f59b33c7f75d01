"""Search filters, query terms and rank fusion, on plain values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from query_service.retrieval.filters import milvus_expression
from query_service.retrieval.fusion import Candidate, merge_best, reciprocal_rank_fusion
from query_service.retrieval.keyword import UnsafeKeyword, lucene_query
from query_service.retrieval.terms import entity_names, keywords
from query_service.schemas import SearchFilters, SearchRequest


def moment(key: str, score: float) -> Candidate:
    return Candidate(key, "v1", "/m.mp4", 0.0, 10.0, "text", ("car",), "", score)


def test_filters_become_an_expression_of_quoted_validated_values():
    filters = SearchFilters.model_validate(
        {"video_ids": ["v1", "v2"], "time_range": {"start": 5, "end": 12.5}, "labels": ["Car"]}
    )

    assert milvus_expression(filters) == (
        'video_id in ["v1", "v2"] and end >= 5.0 and start <= 12.5 and (labels == "car" or '
        'labels like "car,%" or labels like "%,car" or labels like "%,car,%")'
    )


@pytest.mark.parametrize(
    "filters",
    [
        {"video_ids": ['v1"] or id != "']},
        {"labels": ["car%"]},
        {"labels": ['car" or 1==1']},
        {"time_range": {"start": 10, "end": 5}},
        {"time_range": {"start": "nan"}},
    ],
)
def test_filters_that_could_change_the_expression_are_refused(filters):
    with pytest.raises(ValidationError):
        SearchFilters.model_validate(filters)


def test_top_level_video_ids_are_still_accepted_as_a_filter():
    request = SearchRequest.model_validate({"query": "a car", "video_ids": ["v1"]})

    assert request.filters.video_ids == ["v1"] and request.video_ids is None


def test_keywords_reach_lucene_as_plain_words_any_of_which_may_match():
    assert lucene_query(["frame", "counter", "42"]) == "frame counter 42"
    # Lucene syntax (fields, wildcards, operators, grouping) never gets through.
    for term in ("text:frame", "fram*", "AND", "a b", "(x)", "", "é", "x" * 41):
        with pytest.raises(UnsafeKeyword):
            lucene_query(["frame", term])


def test_query_terms_name_singulars_synonyms_and_compound_names():
    assert keywords("Two people riding bicycles") == ["two", "people", "riding", "bicycles"]
    assert {"bicycle", "person", "water bottle"} <= set(
        entity_names("people with bicycles and a water bottle")
    )


def test_merge_keeps_the_best_score_and_every_list_that_found_the_moment():
    merged = merge_best({"text": [moment("a", 0.4)], "multimodal": [moment("a", 0.6)]})

    assert [(m.moment.id, m.score, m.scores) for m in merged] == [
        ("a", 0.6, {"text": 0.4, "multimodal": 0.6})
    ]


def test_rrf_sums_weighted_reciprocal_ranks_and_ties_share_a_rank():
    fused = reciprocal_rank_fusion(
        {
            "vector": [moment("a", 0.9), moment("b", 0.8)],
            "graph": [moment("b", 1.0), moment("a", 1.0)],
        },
        {"vector": 1.0, "graph": 0.5},
        k=60,
    )

    assert [(f.moment.id, round(f.score, 6)) for f in fused] == [
        ("a", round(1 / 61 + 0.5 / 61, 6)),
        ("b", round(1 / 62 + 0.5 / 61, 6)),
    ]
