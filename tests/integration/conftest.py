"""The real local stack for integration tests: the same `vip stack up` the README runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from vip.settings import Settings, load_settings

INGEST_DEADLINE_S = 240.0


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def running_stack(settings: Settings) -> Iterator[Settings]:
    """Bring the stack up (a no-op when `make test` already did) and hand out its settings."""
    from vip.stack import stack

    stack.up(settings)
    yield settings


@pytest.fixture(scope="session")
def api(running_stack: Settings) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=running_stack.api_url, timeout=30) as client:
        yield client


def poll(check: Callable[[], Any], deadline_s: float, what: str, interval_s: float = 0.5) -> Any:
    """Call check() until it returns something truthy, failing with `what` at the deadline."""
    give_up = time.monotonic() + deadline_s
    last: Any = None
    while time.monotonic() < give_up:
        last = check()
        if last:
            return last
        time.sleep(interval_s)
    pytest.fail(f"timed out after {deadline_s:.0f}s waiting for {what} (last: {last!r})")


def wait_for_job(
    api: httpx.Client, video_id: str, deadline_s: float = INGEST_DEADLINE_S
) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        response = api.get(f"/v1/videos/{video_id}")
        if response.status_code == 200 and response.json()["status"] in {"completed", "failed"}:
            body: dict[str, Any] = response.json()
            return body
        return None

    result: dict[str, Any] = poll(finished, deadline_s, f"job {video_id} to finish")
    return result
