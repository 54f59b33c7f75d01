import orjson
import pytest

from streams.errors import MalformedEvent, UnknownEventVersion
from streams.records import VideoUploaded, decode, encode


def _upload(**overrides):
    fields = {
        "video_id": "v0123456789abcdef",
        "source": "/data/a.mp4",
        "size_bytes": 10,
        "content_hash": "0123456789abcdef0123",
    }
    return VideoUploaded(**{**fields, **overrides})


def test_an_event_survives_a_round_trip_through_bytes():
    event = _upload(chunk_seconds=5.0)
    assert decode(encode(event), VideoUploaded) == event


def test_an_unknown_version_is_refused_by_name():
    raw = orjson.loads(encode(_upload()))
    raw["version"] = 2
    with pytest.raises(UnknownEventVersion, match="VideoUploaded version 2 is not supported"):
        decode(orjson.dumps(raw), VideoUploaded)


def test_non_json_is_malformed():
    with pytest.raises(MalformedEvent, match="value is not JSON"):
        decode(b"\x00not json", VideoUploaded)


def test_a_json_array_is_malformed():
    with pytest.raises(MalformedEvent, match="JSON list, expected an object"):
        decode(b"[1,2]", VideoUploaded)


def test_a_wrong_field_type_names_the_field():
    raw = orjson.loads(encode(_upload()))
    raw["size_bytes"] = "big"
    with pytest.raises(MalformedEvent, match="size_bytes"):
        decode(orjson.dumps(raw), VideoUploaded)


def test_an_event_of_another_type_is_refused():
    raw = orjson.loads(encode(_upload()))
    raw["type"] = "ChunkCut"
    with pytest.raises(MalformedEvent, match="expected a VideoUploaded event, got type='ChunkCut'"):
        decode(orjson.dumps(raw), VideoUploaded)


def test_an_empty_value_is_malformed():
    with pytest.raises(MalformedEvent, match="empty message value"):
        decode(None, VideoUploaded)


def test_video_ids_cannot_carry_injection_characters():
    with pytest.raises(ValueError, match="video_id"):
        _upload(video_id="x'}) DETACH DELETE n //")
