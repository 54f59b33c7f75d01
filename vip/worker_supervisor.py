"""`vip worker` without --stage: one child process per stage (`vip worker --stage X`, its own
consumer group), started again when it exits (README, "Workers").

A child that recycled itself (drained, committed, exit 75) is replaced at once; one that
crashed or was killed is replaced after a backoff that grows over consecutive crashes. On
SIGTERM or SIGINT the children get SIGTERM and their own soft and hard limits; any still running
2 s past the longest hard limit is killed, so the supervisor is stopped by then.
``run_dir/workers.json`` says which child runs which stage (what `vip stack status` reports).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Protocol

from streams.app import app_id_for
from vip.settings import Settings

__all__ = [
    "EXIT_HARD_LIMIT",
    "EXIT_RECYCLED",
    "EXIT_SOFT_LIMIT",
    "Supervisor",
    "child_env",
    "restart_delay",
    "state_path",
]

log = logging.getLogger(__name__)

# Kept in step with agents.lifecycle's exit codes (a unit test checks): importing the agents
# here would load every model client into the supervisor.
EXIT_RECYCLED = 75
EXIT_SOFT_LIMIT = 76
EXIT_HARD_LIMIT = 77
# What a child's exit at one of its shutdown limits means for its events.
LIMIT_EXITS = {
    EXIT_SOFT_LIMIT: "at its soft limit: events in flight abandoned, redelivered",
    EXIT_HARD_LIMIT: "at its hard limit: ended mid-event, uncommitted events redelivered",
}
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# A child that ran this long before exiting starts a fresh count of consecutive crashes.
STABLE_AFTER_S = 60.0
POLL_INTERVAL_S = 0.5
# Beyond the children's own hard limit, before they are killed.
KILL_GRACE_S = 2.0


def restart_delay(exit_code: int, consecutive_crashes: int) -> float:
    """Seconds before a stage's child is started again after exiting with ``exit_code``: none
    after a recycle; 1, 2, 4 … up to 30 s over consecutive crashes (a negative code is the
    signal that killed it)."""
    if exit_code == EXIT_RECYCLED:
        return 0.0
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(0, consecutive_crashes - 1))


def child_env(settings: Settings, index: int) -> dict[str, str]:
    """What differs in the environment of the ``index``-th child: its own metrics port."""
    base = settings.worker_metrics_port
    return {"VIP_WORKER_METRICS_PORT": str(base + index if base else 0)}


def state_path(settings: Settings) -> Path:
    return settings.run_dir / "workers.json"


class Child(Protocol):
    """What the supervisor uses of a child process (subprocess.Popen has it)."""

    pid: int

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int, /) -> None: ...

    def kill(self) -> None: ...


Spawn = Callable[[str, dict[str, str]], Child]


def spawn_stage(stage: str, env: dict[str, str]) -> Child:
    """`vip worker --stage STAGE` in the supervisor's process group and output."""
    return subprocess.Popen(
        [sys.executable, "-m", "vip", "worker", "--stage", stage],
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


@dataclass
class StageState:
    stage: str
    group: str
    pid: int | None = None
    starts: int = 0
    last_exit: int | None = None
    consecutive_crashes: int = 0
    started_at: float = 0.0
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        stages: Sequence[str],
        spawn: Spawn = spawn_stage,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.stages = list(dict.fromkeys(stages))
        self._spawn = spawn
        self._clock = clock
        self.states = {s: StageState(s, app_id_for(s)) for s in self.stages}
        self.children: dict[str, Child] = {}
        self.stopping = False

    def start(self) -> None:
        for stage in self.stages:
            self._start(stage)

    def _start(self, stage: str) -> None:
        state = self.states[stage]
        child = self._spawn(stage, child_env(self.settings, self.stages.index(stage)))
        self.children[stage] = child
        state.pid, state.restart_at = child.pid, None
        state.starts += 1
        state.started_at = self._clock()
        log.info("supervisor: %s worker started, pid %d (group %s)", stage, child.pid, state.group)
        self._write_state()

    def poll(self) -> None:
        """Notice children that exited and start those whose restart is due."""
        now = self._clock()
        for stage, state in self.states.items():
            child = self.children.get(stage)
            if child is not None:
                code = child.poll()
                if code is None:
                    continue
                del self.children[stage]
                self._exited(state, code, now)
            if not self.stopping and state.restart_at is not None and now >= state.restart_at:
                self._start(stage)

    def _exited(self, state: StageState, code: int, now: float) -> None:
        state.pid, state.last_exit = None, code
        if self.stopping:
            if code in LIMIT_EXITS:
                log.warning(
                    "supervisor: %s worker stopped (exit %d) %s",
                    state.stage,
                    code,
                    LIMIT_EXITS[code],
                )
            else:
                log.info("supervisor: %s worker stopped (exit %d)", state.stage, code)
            return
        if code == EXIT_RECYCLED:
            state.consecutive_crashes = 0
        elif now - state.started_at >= STABLE_AFTER_S:
            state.consecutive_crashes = 1
        else:
            state.consecutive_crashes += 1
        delay = restart_delay(code, state.consecutive_crashes)
        state.restart_at = now + delay
        how = "recycled" if code == EXIT_RECYCLED else f"exited with {code}"
        if code in LIMIT_EXITS:
            how += f" ({LIMIT_EXITS[code]})"
        log.warning("supervisor: %s worker %s; starting again in %.0fs", state.stage, how, delay)
        self._write_state()

    def stop(self, wait_s: float | None = None) -> None:
        """SIGTERM every child and wait out their hard limits; kill what is left."""
        self.stopping = True
        if wait_s is None:
            limits = [self.settings.stage_worker(s).shutdown_hard_s for s in self.stages]
            wait_s = max(limits, default=0.0) + KILL_GRACE_S
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        deadline = self._clock() + wait_s
        while self.children and self._clock() < deadline:
            self.poll()
            time.sleep(POLL_INTERVAL_S / 5)
        for stage, child in list(self.children.items()):
            log.error("supervisor: %s worker did not stop in %.1fs; killing it", stage, wait_s)
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        self.children.clear()
        state_path(self.settings).unlink(missing_ok=True)

    def run(self) -> None:
        """Start the children and keep them running until SIGTERM or SIGINT."""

        def request_stop(signum: int, frame: FrameType | None) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        self.start()
        while not self.stopping:
            self.poll()
            time.sleep(POLL_INTERVAL_S)
        self.stop()

    def _write_state(self) -> None:
        path = state_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "supervisor": os.getpid(),
            "stages": {s: asdict(state) for s, state in self.states.items()},
        }
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        temporary.replace(path)


def read_state(settings: Settings) -> dict[str, dict[str, object]]:
    """The running supervisor's stages (empty when none has written its state)."""
    try:
        stages: dict[str, dict[str, object]] = json.loads(state_path(settings).read_text())[
            "stages"
        ]
    except (OSError, ValueError, KeyError):
        return {}
    return stages
