"""The supervisor of one worker process per stage: restarts, backoff, stop (fake children)."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from vip.settings import Settings
from vip.worker_supervisor import EXIT_RECYCLED, Supervisor, restart_delay, state_path


class FakeChild:
    def __init__(self, pid: int, env: dict[str, str]) -> None:
        self.pid = pid
        self.env = env
        self.code: int | None = None
        self.signals: list[int] = []
        self.exits_on_sigterm = True

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, sig: int, /) -> None:
        self.signals.append(sig)
        if self.exits_on_sigterm:
            self.code = 0

    def kill(self) -> None:
        self.code = -signal.SIGKILL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 0.01  # stop() waits on this clock
        return self.now


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path, worker_metrics_port=9464)


def supervised(settings: Settings, stages: list[str]) -> tuple[Supervisor, list[FakeChild], Clock]:
    spawned: list[FakeChild] = []
    clock = Clock()

    def spawn(stage: str, env: dict[str, str]) -> FakeChild:
        spawned.append(FakeChild(100 + len(spawned), {"stage": stage, **env}))
        return spawned[-1]

    supervisor = Supervisor(settings, stages, spawn=spawn, clock=clock)
    supervisor.start()
    return supervisor, spawned, clock


def test_restarts_are_immediate_after_a_recycle_and_back_off_after_crashes() -> None:
    assert restart_delay(EXIT_RECYCLED, 0) == 0
    assert [restart_delay(-9, n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_each_stage_gets_its_own_child_and_metrics_port(settings: Settings) -> None:
    _, spawned, _ = supervised(settings, ["chunking", "analysis", "graph"])
    assert [(c.env["stage"], c.env["VIP_WORKER_METRICS_PORT"]) for c in spawned] == [
        ("chunking", "9464"),
        ("analysis", "9465"),
        ("graph", "9466"),
    ]
    record = json.loads(state_path(settings).read_text())
    assert {s: v["pid"] for s, v in record["stages"].items()} == {
        "chunking": 100,
        "analysis": 101,
        "graph": 102,
    }
    assert record["stages"]["analysis"]["group"] == "vip-analysis"


def test_a_recycled_worker_is_replaced_at_once(settings: Settings) -> None:
    supervisor, spawned, _ = supervised(settings, ["analysis"])
    spawned[0].code = EXIT_RECYCLED
    supervisor.poll()
    assert [c.pid for c in spawned] == [100, 101]
    assert supervisor.states["analysis"].starts == 2
    assert supervisor.states["analysis"].last_exit == EXIT_RECYCLED


def test_a_killed_worker_is_replaced_after_a_growing_backoff(settings: Settings) -> None:
    supervisor, spawned, clock = supervised(settings, ["analysis", "graph"])
    spawned[0].code = -signal.SIGKILL
    supervisor.poll()
    assert len(spawned) == 2  # not yet: one second of backoff
    clock.now += 1.0
    supervisor.poll()
    assert [c.env["stage"] for c in spawned] == ["analysis", "graph", "analysis"]
    spawned[2].code = 1  # crashed again within a minute: two seconds
    supervisor.poll()
    clock.now += 1.5
    supervisor.poll()
    assert len(spawned) == 3
    clock.now += 0.6
    supervisor.poll()
    assert len(spawned) == 4
    assert supervisor.states["analysis"].consecutive_crashes == 2


@pytest.mark.allow_error_logs
def test_stopping_terms_every_child_and_kills_those_that_stay(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    supervisor, spawned, _ = supervised(settings, ["analysis", "graph"])
    spawned[1].exits_on_sigterm = False
    supervisor.stop(wait_s=0.2)
    assert [c.signals for c in spawned] == [[signal.SIGTERM], [signal.SIGTERM]]
    assert [c.code for c in spawned] == [0, -signal.SIGKILL]
    assert len(spawned) == 2  # nothing restarted while stopping
    assert not state_path(settings).exists()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["supervisor: graph worker did not stop in 0.2s; killing it"]
