"""Pure parts of the query service: byte ranges, keyframe names, graph traversal schemas."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from query_service.graph_queries import PATHS
from query_service.graph_schemas import (
    MAX_PATH_HOPS,
    AroundQuery,
    GraphQuery,
    PathQuery,
)
from query_service.media import (
    ByteRange,
    RangeNotSatisfiable,
    keyframe_key,
    parse_range,
    read_span,
    thumbnail_url,
)

QUERY = TypeAdapter(GraphQuery)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", ByteRange(0, 99)),
        ("bytes=100-", ByteRange(100, 999)),
        ("bytes=-10", ByteRange(990, 999)),
        ("bytes=-5000", ByteRange(0, 999)),
        ("bytes=990-5000", ByteRange(990, 999)),
        ("BYTES = 5 - 5", ByteRange(5, 5)),
    ],
)
def test_a_single_byte_range_is_read_as_rfc_9110_says(header: str, expected: ByteRange) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", [None, "bytes=5-1", "items=0-1", "bytes=0-1,5-9", "bytes=-"])
def test_a_range_the_server_may_ignore_sends_the_whole_file(header: str | None) -> None:
    assert parse_range(header, 1000) is None


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_is_not_satisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 1000)


def test_a_range_of_an_empty_file_is_not_satisfiable() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=-10", 0)


def test_content_range_names_the_inclusive_end_and_the_size() -> None:
    assert ByteRange(100, 199).content_range(5000) == "bytes 100-199/5000"
    assert ByteRange(100, 199).length == 100


def test_read_span_yields_exactly_the_requested_bytes(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(bytes(range(256)) * 10)

    assert b"".join(read_span(path, 250, 20, block=7)) == path.read_bytes()[250:270]


def test_keyframe_blob_uris_become_api_thumbnail_urls() -> None:
    uri = "file:///state/blobs/keyframes/v0123456789abcdef/00001_000012000.jpg"
    s3 = "s3://bucket/vip/keyframes/v0123456789abcdef/00000_000000000.jpg"

    assert thumbnail_url(uri) == "/v1/keyframes/v0123456789abcdef/00001_000012000.jpg"
    assert thumbnail_url(s3) == "/v1/keyframes/v0123456789abcdef/00000_000000000.jpg"
    assert thumbnail_url("file:///state/blobs/strips/v1/00000.npy") is None
    assert thumbnail_url(None) is None


@pytest.mark.parametrize(
    ("video_id", "name"),
    [
        ("..", "00000_000000000.jpg"),
        ("v1", "../00000_000000000.jpg"),
        ("v1", "..%2F00000_000000000.jpg"),
        ("v1/..", "00000_000000000.jpg"),
        ("v1", "00000_000000000.png"),
        ("v1", "/etc/passwd"),
    ],
)
def test_keyframe_names_outside_the_keyframe_pattern_are_refused(video_id: str, name: str) -> None:
    with pytest.raises(ValueError, match="no keyframe is named"):
        keyframe_key(video_id, name)


def test_an_entity_given_by_name_is_matched_by_its_normal_form_in_every_kind() -> None:
    query = QUERY.validate_python({"kind": "appears", "entity": "  The Bicycle! "})

    assert query.entity.normalised == "bicycle"
    assert "object:bicycle" in query.entity.candidate_keys()
    assert "person:bicycle" in query.entity.candidate_keys()


def test_an_entity_given_with_a_kind_is_matched_in_that_kind_only() -> None:
    query = QUERY.validate_python({"kind": "with", "entity": {"name": "Bicycle", "kind": "object"}})

    assert query.entity.candidate_keys() == ["object:bicycle"]


def test_a_path_query_takes_from_and_to() -> None:
    query = QUERY.validate_python({"kind": "path", "from": "bicycle", "to": "car"})

    assert isinstance(query, PathQuery)
    assert (query.source.name, query.target.name, query.max_hops) == ("bicycle", "car", 6)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "teleport"}, "does not match any of the expected tags"),
        ({"kind": "appears", "entity": "?!"}, "names no entity once normalised"),
        ({"kind": "appears", "entity": "x" * 201}, "at most 200 characters"),
        ({"kind": "appears", "entity": {"name": "car", "kind": "vehicle"}}, "Input should be"),
        ({"kind": "appears", "entity": "car", "limit": 10_000}, "less than or equal to 200"),
        ({"kind": "appears", "entity": "car", "video_ids": ["' OR 1=1"]}, "should match pattern"),
        ({"kind": "appears", "entity": "car", "cypher": "MATCH (n)"}, "Extra inputs"),
        ({"kind": "path", "from": "a", "to": "b", "max_hops": 50}, "less than or equal to 8"),
        ({"kind": "around", "video_id": "v1"}, "give exactly one of time or shot"),
        ({"kind": "around", "video_id": "v1", "time": 1, "shot": "v1:shot:000000000"}, "exactly"),
        ({"kind": "around", "video_id": "v1", "shot": "v2:shot:000001000"}, "not a shot of"),
        ({"kind": "around", "video_id": "v1", "time": -1}, "greater than or equal to 0"),
        ({"kind": "around", "video_id": "v1", "time": 1, "after": 11}, "less than or equal"),
    ],
)
def test_invalid_traversals_are_refused_with_the_reason(body: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        QUERY.validate_python(body)


def test_around_a_shot_of_the_same_video_is_valid() -> None:
    query = QUERY.validate_python(
        {"kind": "around", "video_id": "v1", "shot": "v1:shot:000003040", "before": 0}
    )

    assert isinstance(query, AroundQuery) and (query.before, query.after) == (0, 2)


def test_every_path_length_bound_has_its_own_constant_query() -> None:
    assert sorted(PATHS) == list(range(1, MAX_PATH_HOPS + 1))
    assert "*..3]" in PATHS[3] and "$" not in PATHS[3].split("shortestPath")[1].split(")")[0]
