"""Graph traversals, moments, keyframes and media ranges through the running query API.

Fresh copies of shared media go through the real pipeline (as `vip upload` sends them); the
test then reads only through HTTP.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.media_copies import unique_copy
from vip.demo import wait_for_video
from vip.settings import Settings
from vip.upload import build_event, publish

pytestmark = pytest.mark.stack

DEADLINE_S = 240.0
CLIPS = ("bikes.mp4", "person-bicycle-car-detection.gif")


def ingest(settings: Settings, path: Path) -> str:
    event = build_event(str(path), settings)
    publish(event, settings)
    detail = wait_for_video(settings, event.video_id, event.event_id, DEADLINE_S)
    assert detail["status"] == "completed", detail
    return event.video_id


@pytest.fixture(scope="module")
def videos(
    running_stack: Settings, media: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[str, Path]]:
    tmp = tmp_path_factory.mktemp("graph-api-media")
    copies = {name: unique_copy(media / "video" / name, tmp) for name in CLIPS}
    return {name: (ingest(running_stack, path), path) for name, path in copies.items()}


def graph_query(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/graph/query", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def ids(videos: dict[str, tuple[str, Path]]) -> list[str]:
    return [vid for vid, _ in videos.values()]


def test_a_bicycle_appears_in_both_clips_with_times_and_thumbnails(
    api: httpx.Client, videos: dict[str, tuple[str, Path]]
) -> None:
    body = graph_query(api, {"kind": "appears", "entity": "The Bicycle", "video_ids": ids(videos)})

    assert [e["key"] for e in body["entities"]] == ["object:bicycle"]
    assert {m["video_id"] for m in body["data"]} == set(ids(videos))
    for moment in body["data"]:
        assert moment["source"] in {str(path.resolve()) for _, path in videos.values()}
        assert moment["start"] <= min(moment["times"]) <= max(moment["times"]) <= moment["end"]
        assert 0 < moment["score"] <= 1 and "seen" in moment["how"]
        assert moment["thumbnail_url"].startswith(f"/v1/keyframes/{moment['video_id']}/")


def test_a_person_appears_with_a_bicycle(
    api: httpx.Client, videos: dict[str, tuple[str, Path]]
) -> None:
    body = graph_query(
        api,
        {"kind": "with", "entity": {"name": "bicycle", "kind": "object"}, "video_ids": ids(videos)},
    )

    by_key = {row["entity"]["key"]: row for row in body["data"]}
    assert "object:person" in by_key, by_key.keys()
    person = by_key["object:person"]
    assert person["videos"] == 2 and person["shots"] >= 2
    assert all("object:bicycle" in {e["key"] for e in m["entities"]} for m in person["moments"])


def test_a_path_leads_from_bicycle_to_car_through_shots(
    api: httpx.Client, videos: dict[str, tuple[str, Path]]
) -> None:
    body = graph_query(api, {"kind": "path", "from": "bicycle", "to": "car", "max_hops": 6})

    assert body["found"] is True and 2 <= body["hops"] <= 6
    nodes = body["nodes"]
    assert len(nodes) == body["hops"] + 1 == len(body["relationships"]) + 1
    assert nodes[0]["entity"]["key"] == "object:bicycle"
    assert nodes[-1]["entity"]["key"] == "object:car"
    assert all(n["type"] == "shot" for n in nodes[1:-1])
    assert set(body["relationships"]) <= {"APPEARS_IN", "MENTIONS", "NEXT"}


def test_around_a_moment_gives_the_shots_before_and_after_in_order(
    api: httpx.Client, videos: dict[str, tuple[str, Path]]
) -> None:
    vid, _ = videos["bikes.mp4"]

    body = graph_query(
        api, {"kind": "around", "video_id": vid, "time": 3.5, "before": 1, "after": 2}
    )

    # bikes.mp4's shots start at 0, 1.2, 3.04, 5.48, 7.48 and 9.68 s (its five cuts).
    assert body["anchor"] == f"{vid}:shot:000003040"
    assert [(m["offset"], m["start"]) for m in body["data"]] == [
        (-1, 1.2),
        (0, 3.04),
        (1, 5.48),
        (2, 7.48),
    ]
    anchor = body["data"][1]
    assert {"object:bicycle", "object:person"} <= {e["key"] for e in anchor["entities"]}


def test_a_videos_moments_carry_shots_entities_and_a_served_jpeg_thumbnail(
    api: httpx.Client, videos: dict[str, tuple[str, Path]]
) -> None:
    vid, path = videos["bikes.mp4"]

    body = api.get(f"/v1/videos/{vid}/moments").json()

    assert body["count"] == 1 and len(body["data"]) == 1
    [chunk] = body["data"]
    assert (chunk["video_id"], chunk["source"]) == (vid, str(path.resolve()))
    assert (chunk["start"], len(chunk["shots"])) == (0.0, 6)
    assert "object:bicycle" in {e["key"] for e in chunk["entities"]}
    image = api.get(chunk["shots"][2]["thumbnail_url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:3] == b"\xff\xd8\xff"


def test_a_range_request_returns_206_with_exactly_those_bytes(
    api: httpx.Client, videos: dict[str, tuple[str, Path]]
) -> None:
    vid, path = videos["bikes.mp4"]
    data = path.read_bytes()

    part = api.get(f"/v1/videos/{vid}/media", headers={"Range": "bytes=1000-4999"})
    tail = api.get(f"/v1/videos/{vid}/media", headers={"Range": "bytes=-100"})
    beyond = api.get(f"/v1/videos/{vid}/media", headers={"Range": f"bytes={len(data)}-"})
    whole = api.get(f"/v1/videos/{vid}/media")

    assert part.status_code == 206 and part.content == data[1000:5000]
    assert part.headers["content-range"] == f"bytes 1000-4999/{len(data)}"
    assert part.headers["content-type"] == "video/mp4"
    assert tail.status_code == 206 and tail.content == data[-100:]
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes"


@pytest.mark.parametrize(
    "url",
    [
        "/v1/keyframes/{vid}/..%2F..%2F..%2Fetc%2Fpasswd",
        "/v1/keyframes/{vid}/..%2F00000_000000000.jpg",
        "/v1/keyframes/..%2F..%2Fkeyframes%2F{vid}/00000_000000000.jpg",
        "/v1/keyframes/{vid}/00000_000000000.jpg%00.png",
        "/v1/keyframes/{vid}/%2e%2e",
        "/v1/videos/..%2F{vid}/media",
    ],
)
def test_path_traversal_attempts_are_refused(
    api: httpx.Client, videos: dict[str, tuple[str, Path]], url: str
) -> None:
    vid, _ = videos["bikes.mp4"]

    response = api.get(url.format(vid=vid))

    assert response.status_code in {404, 422}, response.text
    assert response.headers["content-type"] == "application/json"


def test_a_missing_keyframe_is_404(api: httpx.Client, videos: dict[str, tuple[str, Path]]) -> None:
    vid, _ = videos["bikes.mp4"]

    response = api.get(f"/v1/keyframes/{vid}/00099_000099000.jpg")

    assert response.status_code == 404
    assert response.json() == {"detail": f"no keyframe 00099_000099000.jpg for video {vid}"}


def test_an_unknown_entity_is_404_with_a_clear_message(api: httpx.Client) -> None:
    response = api.post("/v1/graph/query", json={"kind": "appears", "entity": "Flying Unicorn"})

    assert response.status_code == 404
    assert response.json() == {
        "detail": "unknown entity: no entity named 'Flying Unicorn' "
        "(normalised 'flying unicorn') in the graph"
    }


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "appears", "entity": "car' }) MATCH (n) DETACH DELETE n //"},
        {"kind": "appears", "entity": "car", "video_ids": ["x' OR 1=1"]},
        {"kind": "path", "from": "bicycle", "to": "car", "max_hops": 100},
        {"kind": "around", "video_id": "v1"},
        {"kind": "nearest"},
        {"entity": "car"},
    ],
)
def test_bad_or_hostile_queries_get_4xx(api: httpx.Client, body: dict[str, Any]) -> None:
    response = api.post("/v1/graph/query", json=body)

    assert response.status_code in {404, 422}, response.text


def test_around_an_unknown_moment_is_404(api: httpx.Client) -> None:
    response = api.post(
        "/v1/graph/query", json={"kind": "around", "video_id": "vnotavideo", "time": 1.0}
    )

    assert response.status_code == 404
    assert response.json() == {"detail": "no shot of video vnotavideo at 1.0s"}
