"""A stage worker's life: recycled after N events or above an RSS threshold, and stopped within
a soft then a hard time limit (README, "Workers").

Both ways out go through Faust's own stop, which pauses the partitions (no new events), waits
for the events in flight to be acked, flushes the producer and commits. A recycle is the same
stop as SIGTERM's; only the exit code differs, so the supervisor knows to start a fresh worker
at once. The time limits run in threads and start when the signal arrives, so an event loop
blocked by a handler can neither delay them nor hold them off: the hard limit still ends it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

import faust
import psutil
from faust.sensors import Sensor

from vip.settings import Settings

__all__ = [
    "EXIT_HARD_LIMIT",
    "EXIT_RECYCLED",
    "EXIT_SOFT_LIMIT",
    "EXIT_STOPPED",
    "Limits",
    "RecycleSensor",
    "RecyclingWorker",
    "recycle_reason",
    "run_stage_app",
]

log = logging.getLogger(__name__)

EXIT_STOPPED = 0
# EX_TEMPFAIL: drained and committed on purpose; start a fresh worker now.
EXIT_RECYCLED = 75
# The soft limit abandoned events in flight (redelivered to the next worker; nothing lost).
EXIT_SOFT_LIMIT = 76
# The hard limit ended the process wherever it was (uncommitted events are redelivered).
EXIT_HARD_LIMIT = 77

MB = 2**20
# How often an idle worker looks at its memory (a busy one looks after every event).
IDLE_CHECK_S = 15.0
# Each of the producer's flush and the commit at the soft limit gets this long.
SOFT_LIMIT_STEP_S = 5.0


@dataclass(frozen=True)
class Limits:
    """One worker process's limits; 0 turns a recycle trigger off."""

    max_events: int
    max_rss_bytes: int
    shutdown_soft_s: float
    shutdown_hard_s: float

    @classmethod
    def for_stages(cls, settings: Settings, stages: Sequence[str]) -> Limits:
        """A process running several stages recycles at the tightest of their triggers and
        gives in-flight work the longest of their time limits."""
        rows = [settings.stage_worker(stage) for stage in stages]
        return cls(
            max_events=min((r.max_events for r in rows if r.max_events), default=0),
            max_rss_bytes=min((r.max_rss_mb for r in rows if r.max_rss_mb), default=0) * MB,
            shutdown_soft_s=max(r.shutdown_soft_s for r in rows),
            shutdown_hard_s=max(r.shutdown_hard_s for r in rows),
        )


def recycle_reason(limits: Limits, events: int, rss_bytes: int) -> str | None:
    """Why a worker that handled ``events`` events and holds ``rss_bytes`` should be recycled
    now, or None while it is within its limits."""
    if limits.max_events and events >= limits.max_events:
        return f"{events} events handled (max_events {limits.max_events})"
    if limits.max_rss_bytes and rss_bytes > limits.max_rss_bytes:
        return (
            f"resident memory {rss_bytes / MB:.0f} MB above max_rss_mb {limits.max_rss_bytes // MB}"
        )
    return None


def _own_rss() -> int:
    return int(psutil.Process().memory_info().rss)


class RecycleSensor(Sensor):
    """Counts the events the app's streams finish and calls ``on_due`` once, with the reason,
    when the worker passes a limit (checked after each event, and by :meth:`check` on a timer
    so that an idle worker over its memory limit is recycled too)."""

    def __init__(
        self,
        limits: Limits,
        on_due: Callable[[str], None],
        rss: Callable[[], int] = _own_rss,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.limits = limits
        self.events = 0
        self.due: str | None = None
        self._on_due = on_due
        self._rss = rss

    def on_stream_event_out(
        self, tp: Any, offset: int, stream: Any, event: Any, state: Any = None
    ) -> None:
        self.events += 1
        self.check()

    def check(self) -> None:
        if self.due is not None:
            return
        reason = recycle_reason(self.limits, self.events, self._rss())
        if reason is not None:
            self.due = reason
            self._on_due(reason)


class RecyclingWorker(faust.Worker):
    """Faust's worker with recycling and the two shutdown limits."""

    def __init__(self, app: faust.App, limits: Limits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits
        self.recycled: str | None = None
        self.sensor = RecycleSensor(limits, self.recycle)
        app.sensors.add(self.sensor)

        async def check_idle_memory() -> None:
            self.sensor.check()

        app.timer(interval=IDLE_CHECK_S, name="vip.recycle_check")(check_idle_memory)
        app.on_before_shutdown.connect(self._drained)
        self._deadlines: list[threading.Timer] = []

    def recycle(self, reason: str) -> None:
        """Stop as on SIGTERM (drain, commit) and exit with :data:`EXIT_RECYCLED`."""
        if self.recycled is None:
            self.recycled = reason
            log.warning("recycling this worker: %s", reason)
            os.kill(os.getpid(), signal.SIGTERM)

    @property
    def exit_code(self) -> int:
        return EXIT_RECYCLED if self.recycled is not None else EXIT_STOPPED

    def install_signal_handlers(self) -> None:
        super().install_signal_handlers()
        # The loop runs its SIGTERM handler (Faust's stop) only once it gets control back, which a
        # handler blocking the loop never gives it. Python runs this one in the main thread as
        # the signal arrives, so the limits count from then; the loop still learns of the signal
        # through its wakeup fd, which any Python-level handler keeps.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_stop_signal)
            signal.siginterrupt(sig, False)  # as the loop's own handler: restart system calls

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._arm_deadlines()

    async def on_stop(self) -> None:
        self._arm_deadlines()  # a stop that no signal started
        await super().on_stop()

    def _arm_deadlines(self) -> None:
        if self._deadlines:
            return
        loop = self.loop
        soft = threading.Timer(
            self.limits.shutdown_soft_s,
            lambda: asyncio.run_coroutine_threadsafe(self._abandon_in_flight(), loop),
        )
        hard = threading.Timer(self.limits.shutdown_hard_s, self._exit_now)
        self._deadlines = [soft, hard]
        for timer in (soft, hard):
            timer.daemon = True  # a worker that stopped in time exits without waiting on them
            timer.start()

    async def _drained(self, app: Any, /, *args: Any, **kwargs: Any) -> None:
        # Faust sends on_before_shutdown once the events in flight are acked and committed:
        # nothing is left for the soft limit to abandon, and the rest of the stop (flushing the
        # producer, leaving the group) is bounded by the hard limit alone.
        if self._deadlines:
            self._deadlines[0].cancel()

    async def _abandon_in_flight(self) -> None:
        log.warning(
            "soft limit: still draining after %.0fs; events in flight are abandoned "
            "(the next worker gets them again), committing what is done",
            self.limits.shutdown_soft_s,
        )
        # Flushed before the commit: a committed event's output must not be lost in the buffer.
        for step in (self.app.producer.flush, self.app.consumer.commit):
            try:
                await asyncio.wait_for(step(), timeout=SOFT_LIMIT_STEP_S)
            except Exception as exc:  # nothing is committed; the hard limit still ends it
                log.error(
                    "%s at the soft limit failed: %s: %s", step.__name__, type(exc).__name__, exc
                )
                break
        logging.shutdown()
        os._exit(EXIT_SOFT_LIMIT)

    def _exit_now(self) -> None:
        log.error("hard limit: not stopped after %.0fs; exiting now", self.limits.shutdown_hard_s)
        logging.shutdown()
        os._exit(EXIT_HARD_LIMIT)

    def run(self) -> NoReturn:
        """Run until stopped; exit with :attr:`exit_code` when Faust stopped cleanly."""
        try:
            self.execute_from_commandline()
        except SystemExit as done:
            if done.code in (None, 0):
                raise SystemExit(self.exit_code) from None
            raise


def run_stage_app(app: faust.App, limits: Limits) -> NoReturn:
    """Run a stage's app in this process until SIGTERM or a recycle, within ``limits``; exits
    with the code for how it ended."""
    app.conf.datadir.parent.mkdir(parents=True, exist_ok=True)  # Faust makes only the last part
    # Faust's worker traps SIGTERM/SIGINT: in-flight events finish and offsets are committed.
    RecyclingWorker(app, limits, loglevel="INFO").run()
