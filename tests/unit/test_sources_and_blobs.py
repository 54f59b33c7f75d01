from pathlib import Path

import pytest

from agents.shared.blob_store import InvalidBlobKey, LocalBlobStore
from agents.shared.sources import LocalSource, S3Source, SourceError, parse_source


def test_a_local_file_is_resolved_to_an_absolute_path(tmp_path: Path):
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x")
    assert parse_source(str(video)) == LocalSource(video.resolve())


def test_a_missing_file_is_named(tmp_path: Path):
    with pytest.raises(SourceError, match=r"missing\.mp4: no such file"):
        parse_source(str(tmp_path / "missing.mp4"))


def test_a_directory_is_not_a_video(tmp_path: Path):
    with pytest.raises(SourceError, match="not a regular file"):
        parse_source(str(tmp_path))


def test_s3_uris_are_parsed():
    assert parse_source("s3://my-bucket/videos/a.mp4") == S3Source("my-bucket", "videos/a.mp4")


@pytest.mark.parametrize(
    "uri", ["http://169.254.169.254/latest/meta-data", "file:///etc/passwd", "ftp://host/a.mp4"]
)
def test_other_schemes_are_refused(uri):
    with pytest.raises(SourceError, match="unsupported source scheme"):
        parse_source(uri)


def test_paths_outside_the_allowed_roots_are_refused(tmp_path: Path):
    allowed = tmp_path / "uploads"
    allowed.mkdir()
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"x")
    sneaky = allowed / ".." / "secret.mp4"
    with pytest.raises(SourceError, match="outside the allowed upload roots"):
        parse_source(str(sneaky), allowed_roots=[allowed])


def test_blobs_round_trip_through_their_uri(tmp_path: Path):
    store = LocalBlobStore(tmp_path)
    uri = store.put("keyframes/v1/00000_000000000.jpg", b"jpeg", "image/jpeg")
    assert uri.startswith("file://") and store.get(uri) == b"jpeg"


@pytest.mark.parametrize("key", ["../escape.jpg", "a/../../b.jpg", "/abs.jpg", "a//b.jpg"])
def test_blob_keys_cannot_escape_the_store(tmp_path: Path, key):
    with pytest.raises(InvalidBlobKey):
        LocalBlobStore(tmp_path / "blobs").put(key, b"x", "image/jpeg")


def test_blob_uris_outside_the_store_are_refused(tmp_path: Path):
    store = LocalBlobStore(tmp_path / "blobs")
    with pytest.raises(InvalidBlobKey, match="outside the blob store"):
        store.get((tmp_path / "other.jpg").as_uri())
