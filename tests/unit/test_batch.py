"""`vip batch`: listing a directory, a manifest and an S3 prefix; the concurrency limit; the
summary. Validation runs on real shared media; Kafka is replaced by a recording publisher."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from streams.records import VideoUploaded
from vip.batch import (
    BatchError,
    BatchItem,
    Outcome,
    Uploader,
    from_directory,
    from_manifest,
    from_s3,
    run_batch,
    summary_table,
)
from vip.settings import load_settings


class RecordingPublisher:
    def __init__(self) -> None:
        self.events: list[VideoUploaded] = []
        self._lock = threading.Lock()

    def publish(self, event: VideoUploaded) -> None:
        with self._lock:
            self.events.append(event)


def uploader(publisher: RecordingPublisher, s3_client: object = None) -> Uploader:
    return Uploader(load_settings(), publisher, None, 10.0, s3_client)


def test_a_directory_lists_its_videos_and_skips_other_files(tmp_path: Path):
    (tmp_path / "day1").mkdir()
    (tmp_path / "day1" / "b.MP4").write_bytes(b"x")
    (tmp_path / "a.webm").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / ".hidden.mp4").write_bytes(b"x")

    items, skipped = from_directory(tmp_path)

    assert [i.origin for i in items] == [str(tmp_path / "a.webm"), str(tmp_path / "day1/b.MP4")]
    assert items[0].source == str((tmp_path / "a.webm").resolve())
    assert skipped == [Outcome(str(tmp_path / "notes.txt"), "skipped", "not a video file name")]


def test_a_missing_directory_is_refused(tmp_path: Path):
    with pytest.raises(BatchError, match="not a directory"):
        from_directory(tmp_path / "nope")


def test_a_manifest_gives_sources_providers_and_chunk_lengths(tmp_path: Path):
    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "source,providers,chunk_seconds\n"
        "clips/a.mp4,,\n"
        "\n"
        "# a comment row,,\n"
        '/abs/b.mp4,"local,vila",5\n'
        "s3://bucket/c.mp4,rekognition,\n"
        "d.mp4,,-2\n"
        "e.mp4,,ten\n"
    )

    items, failed = from_manifest(manifest)

    assert items == [
        BatchItem(str((tmp_path / "clips/a.mp4").resolve()), "list.csv:2 clips/a.mp4", (), None),
        BatchItem("/abs/b.mp4", "list.csv:5 /abs/b.mp4", ("local", "vila"), 5.0),
        BatchItem("s3://bucket/c.mp4", "list.csv:6 s3://bucket/c.mp4", ("rekognition",), None),
    ]
    assert failed == [
        Outcome("list.csv:7 d.mp4", "failed", "chunk_seconds must be positive, got -2"),
        Outcome("list.csv:8 e.mp4", "failed", "chunk_seconds 'ten' is not a number"),
    ]


def test_a_manifest_without_a_source_column_is_refused(tmp_path: Path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("path,providers\na.mp4,local\n")

    with pytest.raises(
        BatchError, match=r"must name a 'source' column \(got \['path', 'providers'\]\)"
    ):
        from_manifest(manifest)


def test_no_more_items_run_at_once_than_the_concurrency_limit():
    limit = 3
    together = threading.Barrier(limit, timeout=10)  # passes only when `limit` run at once
    lock = threading.Lock()
    running, most = 0, 0

    def process(item: BatchItem) -> Outcome:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        together.wait()
        with lock:
            running -= 1
        return Outcome(item.origin, "ok")

    items = [BatchItem(f"/v/{i}.mp4", f"item-{i}") for i in range(2 * limit)]
    outcomes = run_batch(items, process, concurrency=limit)

    assert most == limit
    assert [o.origin for o in outcomes] == [f"item-{i}" for i in range(2 * limit)]
    assert {o.result for o in outcomes} == {"ok"}


def test_an_item_that_raises_fails_alone_and_progress_sees_every_item():
    seen: list[str] = []

    def process(item: BatchItem) -> Outcome:
        if item.origin == "bad":
            raise RuntimeError("disk on fire")
        return Outcome(item.origin, "ok")

    items = [BatchItem("/a.mp4", "good"), BatchItem("/b.mp4", "bad")]
    outcomes = run_batch(items, process, concurrency=2, on_done=lambda o: seen.append(o.origin))

    assert outcomes == [
        Outcome("good", "ok"),
        Outcome("bad", "failed", "RuntimeError: disk on fire"),
    ]
    assert sorted(seen) == ["bad", "good"]


def test_the_same_content_listed_twice_is_uploaded_once(tmp_path: Path, media: Path):
    first = tmp_path / "a.mp4"
    shutil.copy(media / "video" / "counter.mp4", first)
    shutil.copy(first, tmp_path / "b.mp4")
    (tmp_path / "c.mp4").write_text("not a video at all")
    items, _ = from_directory(tmp_path)
    publisher = RecordingPublisher()

    outcomes = run_batch(items, uploader(publisher), concurrency=1)

    (event,) = publisher.events
    assert event.source == str(first.resolve())
    assert [(o.result, o.video_id) for o in outcomes[:2]] == [
        ("ok", event.video_id),
        ("skipped", event.video_id),
    ]
    assert outcomes[1].reason == f"same content as {first}"
    assert outcomes[2].result == "failed"
    assert "not a readable video" in outcomes[2].reason


@pytest.fixture
def s3():
    """botocore's Stubber: a stand-in for AWS, which this machine cannot reach. It checks the
    requests we make and how we read the answers, not a real bucket."""
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_an_s3_prefix_lists_every_page_and_skips_non_videos(s3):
    client, stubber = s3
    stubber.add_response(
        "list_objects_v2",
        {
            "Contents": [{"Key": "in/a.mp4"}, {"Key": "in/"}, {"Key": "in/readme.md"}],
            "IsTruncated": True,
            "NextContinuationToken": "page-2",
        },
        {"Bucket": "videos", "Prefix": "in/"},
    )
    stubber.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "in/deep/b.MOV"}], "IsTruncated": False},
        {"Bucket": "videos", "Prefix": "in/", "ContinuationToken": "page-2"},
    )

    items, skipped = from_s3("s3://videos/in/", client)

    assert [i.source for i in items] == ["s3://videos/in/a.mp4", "s3://videos/in/deep/b.MOV"]
    assert skipped == [Outcome("s3://videos/in/readme.md", "skipped", "not a video file name")]


def test_s3_items_are_checked_and_published_with_their_etag_identity(s3):
    client, stubber = s3
    for key, content_type in (("a.mp4", "video/mp4"), ("b.mp4", "text/html")):
        stubber.add_response(
            "head_object",
            {"ContentLength": 99, "ETag": f'"{key}"', "ContentType": content_type},
            {"Bucket": "videos", "Key": key},
        )
    items = [BatchItem("s3://videos/a.mp4", "a"), BatchItem("s3://videos/b.mp4", "b")]
    publisher = RecordingPublisher()

    outcomes = run_batch(items, uploader(publisher, client), concurrency=1)

    assert [e.source for e in publisher.events] == ["s3://videos/a.mp4"]
    assert [o.result for o in outcomes] == ["ok", "failed"]
    assert outcomes[1].reason == "s3://videos/b.mp4: not a video (Content-Type text/html)"


def test_an_unlistable_s3_prefix_is_refused(s3):
    client, stubber = s3
    stubber.add_client_error("list_objects_v2", service_error_code="NoSuchBucket")

    with pytest.raises(BatchError, match=r"s3://nope/x: cannot be listed"):
        from_s3("s3://nope/x", client)


def test_the_summary_counts_each_result():
    table = summary_table(
        [
            Outcome("a", "ok", "completed, 2 chunks", "v1"),
            Outcome("b", "failed", "chunking failed: truncated", "v2"),
            Outcome("c", "skipped", "not a video file name"),
        ]
    )

    assert table.title == "batch: 1 ok, 1 failed, 1 skipped"
    assert table.row_count == 3
