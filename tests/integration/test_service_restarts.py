"""The stack recovers when a store restarts underneath the running agents and API."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import wait_for_job
from tests.integration.media_copies import unique_copy
from tests.integration.test_pipeline_end_to_end import upload
from vip.settings import Settings
from vip.stack import stack

pytestmark = pytest.mark.stack


def test_search_and_ingest_work_again_after_milvus_restarts(
    running_stack: Settings, api: httpx.Client, tmp_path: Path, media: Path
):
    before = unique_copy(media / "video" / "bikes.mp4", tmp_path)
    before_id = upload(before)
    assert wait_for_job(api, before_id)["status"] == "completed"
    manager = stack.manager(running_stack, echo=lambda _: None)

    assert manager.down(["milvus"]) == ["milvus"]
    assert manager.up(["milvus"]) == ["milvus"]

    # Milvus comes back with its collections released; the API must load it again itself.
    response = api.post(
        "/v1/search", json={"query": "cars in a street", "top_k": 3, "video_ids": [before_id]}
    )
    assert response.status_code == 200, response.text
    assert [hit["video_id"] for hit in response.json()["data"]] == [before_id]
    after = unique_copy(media / "video" / "bikes.mp4", tmp_path)
    after_id = upload(after)
    assert wait_for_job(api, after_id)["status"] == "completed"
