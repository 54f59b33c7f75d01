"""Start, stop and inspect the local stack.

Each service runs as its own process group, started with its stdout and stderr in
``state_dir/logs/<name>.log``. A pid file records the pid *and* the process's creation time, so
``down`` only ever signals a process that ``up`` started (a recycled pid is not ours).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from vip.stack.errors import PortInUse, ServiceFailedToStart
from vip.stack.service import Service

POLL_INTERVAL_S = 0.25


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    port: int
    pid: int | None
    rss_mb: float | None
    healthy: bool
    version: str


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return "(no log written)"
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 64 * 1024))
        text = handle.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def port_is_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.3):
        return True
    return False


class StackManager:
    def __init__(
        self,
        services: Sequence[Service],
        run_dir: Path,
        logs_dir: Path,
        host: str = "127.0.0.1",
        echo: Callable[[str], None] = print,
    ) -> None:
        self.services = list(services)
        self.run_dir = run_dir
        self.logs_dir = logs_dir
        self.host = host
        self.echo = echo

    # Files ----------------------------------------------------------------------------------
    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def _pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid.json"

    def owned_process(self, name: str) -> psutil.Process | None:
        """The live process that `up` started for this service, if any."""
        path = self._pid_path(name)
        try:
            record = json.loads(path.read_text())
            process = psutil.Process(int(record["pid"]))
            if abs(process.create_time() - float(record["create_time"])) > 0.5:
                return None
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            return process
        except (OSError, ValueError, KeyError, psutil.Error):
            return None

    # Up -------------------------------------------------------------------------------------
    def up(self, names: Iterable[str] | None = None) -> list[str]:
        """Start the selected services (all by default); returns the names it started.

        Everything is prepared first (downloads, formatting), then every process is spawned,
        then all are polled together, so each readiness time is the service's own."""
        selected = self._select(names)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        pending: list[Service] = []
        for service in selected:
            if self.owned_process(service.name) is not None and service.is_ready():
                self.echo(f"{service.name}: already running")
                continue
            if (
                self.owned_process(service.name) is None
                and service.port
                and port_is_open(self.host, service.port)
            ):
                raise PortInUse(service.name, self.host, service.port)
            self.echo(f"{service.name}: preparing")
            service.prepare()
            pending.append(service)
        started = [(service, self._spawn(service), time.monotonic()) for service in pending]
        self._await_ready(started)
        return [service.name for service in pending]

    def _spawn(self, service: Service) -> psutil.Process:
        existing = self.owned_process(service.name)
        if existing is not None:  # up but not answering: replace it
            self._terminate(service.name, existing)
        launch = service.launch()
        log = self.log_path(service.name).open("ab")
        log.write(f"\n===== vip stack up {time.strftime('%Y-%m-%dT%H:%M:%S')} =====\n".encode())
        log.flush()
        env = {**os.environ, **launch.env}
        popen = psutil.Popen(
            launch.argv,
            env=env,
            cwd=str(launch.cwd) if launch.cwd else None,
            stdin=open(os.devnull, "rb"),  # noqa: SIM115 - handed to the child
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        record = {"pid": popen.pid, "create_time": popen.create_time(), "argv": launch.argv}
        self._pid_path(service.name).write_text(json.dumps(record))
        self.echo(f"{service.name}: started pid {popen.pid}")
        return popen

    def _await_ready(self, started: list[tuple[Service, psutil.Process, float]]) -> None:
        waiting = list(started)
        while waiting:
            for entry in list(waiting):
                service, process, began = entry
                if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                    code = process.wait(timeout=1) if process.is_running() else None
                    raise ServiceFailedToStart(
                        service.name,
                        f"process exited (code {code})",
                        tail(self.log_path(service.name)),
                    )
                if service.is_ready():
                    self.echo(f"{service.name}: ready in {time.monotonic() - began:.1f}s")
                    waiting.remove(entry)
                elif time.monotonic() > began + service.start_timeout_s:
                    raise ServiceFailedToStart(
                        service.name,
                        f"not ready within {service.start_timeout_s:.0f}s",
                        tail(self.log_path(service.name)),
                    )
            if waiting:
                time.sleep(POLL_INTERVAL_S)

    # Down -----------------------------------------------------------------------------------
    def down(self, names: Iterable[str] | None = None, timeout_s: float = 30.0) -> list[str]:
        stopped = []
        for service in reversed(self._select(names)):
            process = self.owned_process(service.name)
            if process is not None:
                self._terminate(service.name, process, timeout_s)
                stopped.append(service.name)
            self._pid_path(service.name).unlink(missing_ok=True)
        return stopped

    def _terminate(self, name: str, process: psutil.Process, timeout_s: float = 30.0) -> None:
        """SIGTERM the service's own process first: it shuts its children down in order (Triton
        stops its model processes; signalling the whole group at once can stall it). Whatever
        is left of the group after the grace period is killed."""
        self.echo(f"{name}: stopping pid {process.pid}")
        group = [process, *process.children(recursive=True)]
        with contextlib.suppress(psutil.Error):
            process.terminate()
        psutil.wait_procs([process], timeout=timeout_s)
        leftovers = [member for member in group if member.is_running()]
        for member in leftovers:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(leftovers, timeout=5)

    # Status ---------------------------------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        rows = []
        for service in self.services:
            process = self.owned_process(service.name)
            healthy = process is not None and service.is_ready()
            rss = None
            if process is not None:
                with contextlib.suppress(psutil.Error):
                    members = [process, *process.children(recursive=True)]
                    rss = sum(member.memory_info().rss for member in members) / 2**20
            rows.append(
                ServiceStatus(
                    name=service.name,
                    port=service.port,
                    pid=process.pid if process else None,
                    rss_mb=rss,
                    healthy=healthy,
                    version=service.version() if healthy else "-",
                )
            )
        return rows

    def _select(self, names: Iterable[str] | None) -> list[Service]:
        if names is None:
            return list(self.services)
        wanted = set(names)
        unknown = wanted - {service.name for service in self.services}
        if unknown:
            known = ", ".join(service.name for service in self.services)
            raise ValueError(f"unknown service(s) {sorted(unknown)}; known: {known}")
        return [service for service in self.services if service.name in wanted]
