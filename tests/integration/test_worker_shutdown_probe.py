"""The probe stage that tests/integration/test_worker_shutdown.py runs as each worker process:
`python -m tests.integration.test_worker_shutdown_probe TOPIC JOURNAL`. It holds no tests; it is
a module of its own so that a worker imports Faust and the lifecycle, not pytest and the test's
clients (a second or more of start-up on a loaded machine).

It consumes TOPIC as the stage ``shutdown-probe`` (group ``vip-shutdown-probe``) under the real
``agents.lifecycle.run_stage_app``, with the limits ``VIP_WORKER_BY_STAGE`` gives it, and notes
in the JOURNAL file, one line each, when it starts and finishes an event. On an event's first
delivery a ``slow-`` event awaits SLOW_S (inside the soft limit), a ``stuck-`` event awaits
STUCK_S (past both limits) and a ``blocking-`` event blocks the event loop for STUCK_S; any
other event, and any redelivery, finishes at once.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

import faust

from agents.lifecycle import Limits, run_stage_app
from streams.app import app_id_for, create_app
from vip.settings import load_settings

STAGE = "shutdown-probe"
GROUP = app_id_for(STAGE)
SLOW_S = 1.0
STUCK_S = 60.0


def note(journal: Path, what: str, event: str) -> None:
    with journal.open("a") as lines:
        lines.write(f"{os.getpid()} {what} {event}\n")


def journal_entries(journal: Path, what: str) -> list[str]:
    """The events the journal says were ``what`` ("started" or "finished"), in order."""
    if not journal.exists():
        return []
    rows = [line.split() for line in journal.read_text().splitlines()]
    return [event for _, done, event in rows if done == what]


def run_probe_stage(topic: str, journal: Path) -> NoReturn:
    settings = load_settings()
    app = create_app(settings, GROUP)
    source = app.topic(
        topic, key_type=bytes, value_type=bytes, value_serializer="raw", internal=False
    )

    @app.agent(source, name="probe")
    async def probe(events: faust.StreamT) -> None:
        async for value in events:
            event = value.decode()
            first_delivery = event not in journal_entries(journal, "started")
            note(journal, "started", event)
            if first_delivery and event.startswith("slow-"):
                await asyncio.sleep(SLOW_S)
            elif first_delivery and event.startswith("stuck-"):
                await asyncio.sleep(STUCK_S)
            elif first_delivery and event.startswith("blocking-"):
                # What the hard limit is for: a handler running blocking work on the loop.
                time.sleep(STUCK_S)  # noqa: ASYNC251
            note(journal, "finished", event)

    run_stage_app(app, Limits.for_stages(settings, [STAGE]))


if __name__ == "__main__":
    run_probe_stage(sys.argv[1], Path(sys.argv[2]))
