"""What the stack manager needs to know about one local server."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx


@dataclass(frozen=True)
class Launch:
    """How to start a service process: argv, extra environment and working directory."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None


class Service(Protocol):
    """One local server that `vip stack up` starts and `vip stack down` stops.

    Implementations are small, side-effect-free until called, and bound to loopback.
    """

    name: str
    port: int
    start_timeout_s: float

    def prepare(self) -> None:
        """Install or download what the service needs; idempotent, fast when already done."""

    def launch(self) -> Launch:
        """The command that runs the service in the foreground (the manager daemonises it)."""

    def is_ready(self) -> bool:
        """A quick readiness probe (short timeouts); False until the service answers."""

    def version(self) -> str:
        """The running service's version, or "?" when it cannot be told."""


def answers_ok(url: str, timeout_s: float = 1.0) -> bool:
    """Whether a GET of ``url`` answers 200: the readiness check of an HTTP service."""
    try:
        return httpx.get(url, timeout=timeout_s).status_code == httpx.codes.OK
    except httpx.HTTPError:
        return False
