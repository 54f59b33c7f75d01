"""Deleting a video: which nodes a deletion marker guards, blob folders and their retention,
and the jobs stage forgetting a deleted video's job."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agents.jobs.store import Delivered, JobStore
from agents.shared.blob_retention import sweep
from agents.shared.blob_store import InvalidBlobKey, LocalBlobStore
from agents.shared.graph_tombstones import owner, starts_upload
from streams import topics
from streams.records import GraphUpdated, NodeDelta, decode, encode
from tests.unit.test_jobs_core import VIDEO, whole_video

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_node_keys_name_the_video_they_belong_to():
    assert owner("Video", "v1") == "v1"
    assert owner("Chunk", "v1:00003") == "v1"
    assert owner("Shot", "v1:shot:000004800") == "v1"
    assert owner("SceneObject", "v1:shot:000004800:obj:00") == "v1"
    assert owner("ChunkBoundary", "v1:boundary:000005000") == "v1"
    # Entities are shared across videos: no single owner.
    assert owner("Entity", "object:bicycle") is None
    assert owner("Alias", "tag:bike") is None


def test_only_a_new_uploads_processing_delta_lifts_a_deletion():
    new_upload = GraphUpdated(
        video_id="v1",
        nodes=(
            NodeDelta(label="Video", key="v1", props={"status": "processing", "upload_id": "u2"}),
        ),
    )
    moment = GraphUpdated(
        video_id="v1", nodes=(NodeDelta(label="Video", key="v1", props={"chunk_count": 3}),)
    )
    replayed_letter = GraphUpdated(
        video_id="v1",
        nodes=(NodeDelta(label="Video", key="v1", props={"status": "processing", "error": None}),),
    )
    assert starts_upload(new_upload)
    assert not starts_upload(moment)
    assert not starts_upload(replayed_letter)


def test_a_removal_is_a_graph_update_that_older_readers_of_the_topic_can_decode():
    removal = GraphUpdated(video_id="v1", removed=True)
    assert decode(encode(removal), GraphUpdated).removed
    legacy = b'{"type": "GraphUpdated", "version": 1, "video_id": "v1", "nodes": [], "edges": []}'
    assert decode(legacy, GraphUpdated).removed is False


def write(root: Path, key: str, age: timedelta) -> Path:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    stamp = (NOW - age).timestamp()
    os.utime(path, (stamp, stamp))
    return path


def test_deleting_a_videos_folder_removes_only_that_video(tmp_path: Path):
    store = LocalBlobStore(tmp_path)
    mine = [write(tmp_path, f"keyframes/v1/0000{i}.jpg", timedelta(0)) for i in range(3)]
    other = write(tmp_path, "keyframes/v10/00000.jpg", timedelta(0))

    assert store.delete_under("keyframes/v1") == 3
    assert not any(p.exists() for p in mine) and not (tmp_path / "keyframes/v1").exists()
    assert other.exists()
    assert store.delete_under("keyframes/v1") == 0  # idempotent
    with pytest.raises(InvalidBlobKey):
        store.delete_under("keyframes/../..")


def test_retention_sweeps_only_the_named_folders_and_only_old_blobs(tmp_path: Path):
    store = LocalBlobStore(tmp_path)
    old_strip = write(tmp_path, "strips/v1/00000.npz", timedelta(days=8))
    new_strip = write(tmp_path, "strips/v2/00000.npz", timedelta(days=1))
    old_keyframe = write(tmp_path, "keyframes/v1/00000.jpg", timedelta(days=400))

    swept = sweep(store, {"strips": 7.0, "audio": 7.0}.items(), NOW)

    assert swept == {"audio": 0, "strips": 1}
    assert not old_strip.exists() and not old_strip.parent.exists()
    assert new_strip.exists() and old_keyframe.exists()


def test_the_jobs_stage_forgets_a_deleted_videos_job():
    store = JobStore(lambda: {})
    store.reload()
    steps = whole_video(count=1)
    messages = [Delivered(t, 1, when.timestamp(), encode(r)) for t, r, when in steps]
    store.apply(messages)
    assert store.get(VIDEO) is not None

    removal = GraphUpdated(video_id=VIDEO, removed=True)
    changed = store.apply([Delivered(topics.GRAPH_UPDATES, 1, NOW.timestamp(), encode(removal))])

    assert changed == [] and store.get(VIDEO) is None
    assert store.take_deleted() == [VIDEO]
    assert store.take_deleted() == []
