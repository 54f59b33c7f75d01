"""The running query API against bad input: schemathesis over its own OpenAPI document (no
input may get a 5xx or a response its schema does not describe), then named bad inputs, each
refused with a 4xx that says what was wrong."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import BaseSchema
from schemathesis.specs.openapi.checks import response_schema_conformance

from query_service.main import create_app
from query_service.schemas import (
    MAX_FILTER_LABELS,
    MAX_FILTER_VALUES,
    MAX_QUERY_CHARS,
    MAX_TIME_S,
    MAX_TOP_K,
)
from query_service.security import API_KEY_HEADER
from vip.settings import Settings, load_settings

pytestmark = pytest.mark.stack

# Examples per operation and phase, sized so the whole module runs in about a minute on 2 cores
# (every search example embeds its query on Triton). `docs/api_hardening.md` runs far more.
EXAMPLES_PER_OPERATION = 8
SEED = 20261129
# A video id no ingestion makes (ids are "v" and 16 hex digits), but one the routes accept.
UNKNOWN_VIDEO = "vnot0a0video0id0"


def key_headers(settings: Settings) -> dict[str, str]:
    """The server's API key, for routes that need it (none while no key is configured)."""
    if settings.api_key is None:
        return {}
    return {API_KEY_HEADER: settings.api_key.get_secret_value()}


def openapi_schema() -> BaseSchema:
    """The query service's OpenAPI document, as the code makes it (the running API serves the
    same). Built in process, with no connection, so collection does not need the stack; the
    tests send every case to the running API."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"deterministic": True, "database": "none"},
            "phases": {
                "examples": {"enabled": True},
                # Well-formed requests at the edges of the schema: each bound, each optional
                # field, each kind of traversal.
                "coverage": {"enabled": True, "generation": {"mode": "positive"}},
                # Requests at random, well-formed or not (most malformed ones are answered by
                # validation, so they are cheap).
                "fuzzing": {
                    "enabled": True,
                    "generation": {"max-examples": EXAMPLES_PER_OPERATION},
                },
            },
            "operations": [
                {
                    # Every well-formed request here runs a real search (a second or so on 2
                    # busy cores): only the random ones, not every edge; the edges that matter
                    # are named below.
                    "include-tag": ["search", "answer", "chat"],
                    "phases": {"coverage": {"enabled": False}},
                }
            ],
            "request-timeout": 30,
        }
    )
    document = create_app(load_settings()).openapi()
    # An SSE stream answers forever (a keep-alive every 15 s): a request to it never ends.
    # tests/integration/test_alerts.py reads it.
    return schemathesis.openapi.from_dict(document, config=config).exclude(path_regex=r"/stream$")


schema = openapi_schema()


@schema.parametrize()
def test_no_input_gets_a_server_error_or_an_undescribed_response(
    case: Case, running_stack: Settings
) -> None:
    case.call_and_validate(
        base_url=running_stack.api_url,
        headers=key_headers(running_stack),
        checks=[not_a_server_error, response_schema_conformance],
    )


# Named bad inputs ---------------------------------------------------------------------------


def errors_of(response: httpx.Response) -> list[tuple[tuple[Any, ...], str]]:
    """(location, message) of each error in a 422 body, as FastAPI writes them."""
    assert response.status_code == 422, response.text
    return [(tuple(e["loc"]), e["msg"]) for e in response.json()["detail"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "String should have at least 1 character"),
        (" \t\n ", "Value error, query is blank"),
        ("x" * 100_000, "String should have at most 1000 characters"),
    ],
    ids=["empty", "blank", "100k characters"],
)
@pytest.mark.parametrize("route", ["/v1/search", "/v1/search/hybrid"])
def test_an_empty_blank_or_huge_query_is_refused_with_the_reason(
    api: httpx.Client, route: str, query: str, message: str
) -> None:
    response = api.post(route, json={"query": query})

    assert errors_of(response) == [(("body", "query"), message)]


@pytest.mark.parametrize(
    "query",
    ["7" * MAX_QUERY_CHARS, " ".join(["bicycle"] * (MAX_QUERY_CHARS // 8))],
    ids=["one longest word", "longest sentence"],
)
@pytest.mark.parametrize("route", ["/v1/search", "/v1/search/hybrid"])
def test_a_search_with_every_field_at_its_limit_is_answered(
    api: httpx.Client, route: str, query: str
) -> None:
    at_the_limits = {
        "query": query,
        "top_k": MAX_TOP_K,
        "filters": {
            "video_ids": [f"v{n:016x}" for n in range(MAX_FILTER_VALUES)],
            "time_range": {"start": 0, "end": MAX_TIME_S},
            "labels": ["x" * 64, *(f"label {n}" for n in range(MAX_FILTER_LABELS - 1))],
        },
    }

    response = api.post(route, json=at_the_limits)

    assert response.status_code == 200, response.text
    assert response.json() == {"data": [], "count": 0}


@pytest.mark.parametrize(
    "path",
    [f"/v1/videos/{UNKNOWN_VIDEO}", f"/v1/videos/{UNKNOWN_VIDEO}/moments"],
)
def test_an_unknown_video_is_404_naming_it(api: httpx.Client, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 404
    assert response.json() == {"detail": f"video {UNKNOWN_VIDEO} not found"}


@pytest.mark.parametrize(
    ("filters", "location", "message"),
    [
        (
            {"time_range": {"start": 10, "end": 5}},
            ("body", "filters", "time_range"),
            "Value error, end (5.0) is before start (10.0)",
        ),
        ({"video_ids": []}, ("body", "filters", "video_ids"), "List should have at least 1 item"),
        (
            {"labels": ["car%"]},
            ("body", "filters", "labels", 0),
            "Value error, not a label: 'car%' (a letter or digit, then up to 63 letters, "
            "digits, spaces, ' and -)",
        ),
        ({"colour": "red"}, ("body", "filters", "colour"), "Extra inputs are not permitted"),
        (
            "video_ids=v1",
            ("body", "filters"),
            "Input should be a valid dictionary or object to extract fields from",
        ),
    ],
    ids=[
        "time range backwards",
        "no video ids",
        "LIKE wildcard",
        "unknown filter",
        "not an object",
    ],
)
def test_malformed_filters_are_refused_where_they_are_wrong(
    api: httpx.Client, filters: object, location: tuple[Any, ...], message: str
) -> None:
    response = api.post("/v1/search", json={"query": "a car", "filters": filters})

    [(where, what)] = errors_of(response)
    assert (where, what[: len(message)]) == (location, message)


def test_a_number_sent_as_a_string_is_refused_not_coerced(api: httpx.Client) -> None:
    response = api.post("/v1/search", json={"query": "a car", "top_k": "5"})

    assert errors_of(response) == [(("body", "top_k"), "Input should be a valid integer")]


@pytest.mark.parametrize(
    ("filters", "location", "message"),
    [
        (
            {"video_ids": ['v1"] or video_id != "']},
            ("body", "filters", "video_ids", 0),
            """Value error, not a video id: 'v1"] or video_id != "'""",
        ),
        (
            {"labels": ['car" or labels like "%']},
            ("body", "filters", "labels", 0),
            """Value error, not a label: 'car" or labels like "%'""",
        ),
        (
            {"labels": ["car\n"]},
            ("body", "filters", "labels", 0),
            "Value error, not a label: 'car\\n'",
        ),
    ],
    ids=["video id closing the list", "label closing the string", "label with a newline"],
)
def test_milvus_filter_injection_is_refused_before_any_expression_is_built(
    api: httpx.Client, filters: dict[str, list[str]], location: tuple[Any, ...], message: str
) -> None:
    response = api.post("/v1/search/hybrid", json={"query": "a car", "filters": filters})

    [(where, what)] = errors_of(response)
    assert (where, what[: len(message)]) == (location, message)


def test_a_cypher_injection_in_an_entity_name_is_only_a_name_nobody_has(
    api: httpx.Client,
) -> None:
    videos_before = api.get("/v1/videos", params={"limit": 1}).json()["count"]
    name = "bicycle'}) MATCH (n) DETACH DELETE n RETURN 1 //"

    response = api.post("/v1/graph/query", json={"kind": "with", "entity": name})

    assert response.status_code == 404
    assert response.json()["detail"].startswith(f"unknown entity: no entity named {name!r}")
    assert api.get("/v1/videos", params={"limit": 1}).json()["count"] >= videos_before


def test_an_injection_in_the_query_text_is_searched_as_text(api: httpx.Client) -> None:
    query = 'car" or video_id != "" \' }) MATCH (n) DETACH DELETE n //'

    response = api.post("/v1/search/hybrid", json={"query": query, "top_k": 3})

    assert response.status_code == 200, response.text
    assert response.json()["count"] == len(response.json()["data"]) <= 3


@pytest.mark.parametrize(
    ("route", "content", "content_type", "wanted"),
    [
        ("/v1/search", b'{"query": "a car"}', "text/plain", "application/json"),
        (
            "/v1/search/hybrid",
            b"query=a+car",
            "application/x-www-form-urlencoded",
            "application/json",
        ),
        ("/v1/graph/query", b"<kind>appears</kind>", "application/xml", "application/json"),
        ("/v1/search/image", b'{"top_k": 3}', "application/json", "multipart/form-data"),
    ],
)
def test_a_body_of_the_wrong_media_type_is_415_naming_the_right_one(
    api: httpx.Client, route: str, content: bytes, content_type: str, wanted: str
) -> None:
    response = api.post(route, content=content, headers={"Content-Type": content_type})

    assert response.status_code == 415
    assert response.json() == {
        "detail": f"POST {route} takes a body of {wanted}, not {content_type}"
    }


def test_a_body_that_is_not_json_says_where_it_breaks(api: httpx.Client) -> None:
    response = api.post(
        "/v1/search", content=b'{"query": "a car",', headers={"Content-Type": "application/json"}
    )

    assert errors_of(response) == [(("body", 18), "JSON decode error")]


def test_image_search_filters_that_are_not_json_are_a_422_on_the_filters_field(
    api: httpx.Client,
) -> None:
    response = api.post(
        "/v1/search/image",
        files={"image": ("shot.jpg", b"\xff\xd8\xff", "image/jpeg")},
        data={"filters": "{video_ids: [v1]}"},
    )

    [(where, what)] = errors_of(response)
    assert where == ("body", "filters") and what.startswith("Invalid JSON")


def test_an_empty_image_is_a_422_on_the_image_field(api: httpx.Client) -> None:
    response = api.post("/v1/search/image", files={"image": ("shot.jpg", b"", "image/jpeg")})

    assert errors_of(response) == [(("body", "image"), "the image is empty")]


@pytest.mark.parametrize(
    ("path", "location"),
    [
        (f"/v1/keyframes/{UNKNOWN_VIDEO}/..%5C..%5C..%5Cetc%5Cpasswd", ("path", "name")),
        (f"/v1/keyframes/{UNKNOWN_VIDEO}/..%5C00000_000000000.jpg", ("path", "name")),
        ("/v1/keyframes/..%5Cblobs/00000_000000000.jpg", ("path", "video_id")),
        ("/v1/videos/..%5C..%5Cetc/media", ("path", "video_id")),
    ],
    ids=["backslashes in the name", "a parent of a keyframe", "backslashes in the id", "media"],
)
def test_traversal_in_a_media_path_is_refused_naming_the_parameter(
    api: httpx.Client, path: str, location: tuple[str, ...]
) -> None:
    response = api.get(path)

    [(where, what)] = errors_of(response)
    assert where == location and what.startswith("String should match pattern")
