"""The supervisor's side of the shutdown limits, with real child processes (no Kafka): a child
that ended at a limit is reported as such and started again, and stopping the supervisor ends
even a child that ignores SIGTERM, at its hard limit plus the supervisor's grace.
tests/integration/test_worker_shutdown.py hits the limits inside real Faust workers."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agents import lifecycle
from vip import worker_supervisor
from vip.settings import Settings, StageWorkerOverride
from vip.worker_supervisor import KILL_GRACE_S, Supervisor

STAGE = "jobs"
HARD_S = 1.0


def wait_until(check: Callable[[], bool], deadline_s: float, what: str) -> None:
    give_up = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > give_up:
            pytest.fail(f"timed out after {deadline_s:.0f}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        state_dir=tmp_path,
        worker_metrics_port=0,
        worker_by_stage={STAGE: StageWorkerOverride(shutdown_soft_s=0.5, shutdown_hard_s=HARD_S)},
    )


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    spawned: list[subprocess.Popen[bytes]] = []
    yield spawned
    for child in spawned:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)


def spawning(
    children: list[subprocess.Popen[bytes]], code: str
) -> Callable[[str, dict[str, str]], subprocess.Popen[bytes]]:
    """A spawn that runs ``code`` in a fresh Python for each start of a stage's child."""

    def spawn(stage: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        children.append(subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL))
        return children[-1]

    return spawn


def test_the_supervisor_and_the_workers_agree_on_the_limit_exit_codes() -> None:
    assert (worker_supervisor.EXIT_SOFT_LIMIT, worker_supervisor.EXIT_HARD_LIMIT) == (
        lifecycle.EXIT_SOFT_LIMIT,
        lifecycle.EXIT_HARD_LIMIT,
    )


def test_a_child_ended_at_its_hard_limit_is_reported_and_started_again(
    settings: Settings, children: list[subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    supervisor = Supervisor(settings, [STAGE], spawn=spawning(children, "raise SystemExit(77)"))
    supervisor.start()

    def started_again() -> bool:
        supervisor.poll()
        return len(children) == 2

    wait_until(started_again, 10, "the child started again")

    assert supervisor.states[STAGE].last_exit == lifecycle.EXIT_HARD_LIMIT
    assert children[0].returncode == lifecycle.EXIT_HARD_LIMIT
    assert next(r.getMessage() for r in caplog.records if r.levelname == "WARNING") == (
        "supervisor: jobs worker exited with 77 (at its hard limit: ended mid-event, "
        "uncommitted events redelivered); starting again in 1s"
    )
    supervisor.stop()


@pytest.mark.allow_error_logs
def test_stopping_the_supervisor_kills_a_child_past_its_hard_limit_and_grace(
    settings: Settings,
    children: list[subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    ready = tmp_path / "ignoring-sigterm"
    deaf = (
        "import pathlib, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    supervisor = Supervisor(settings, [STAGE], spawn=spawning(children, deaf))
    supervisor.start()
    wait_until(ready.exists, 10, "the child to ignore SIGTERM")

    began = time.monotonic()
    supervisor.stop()
    took = time.monotonic() - began

    assert HARD_S + KILL_GRACE_S <= took < HARD_S + KILL_GRACE_S + 1, f"stopped in {took:.1f}s"
    assert children[0].wait(timeout=5) == -signal.SIGKILL
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "supervisor: jobs worker did not stop in 3.0s; killing it"
    ]
