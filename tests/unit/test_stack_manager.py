"""The stack manager on real processes (a tiny HTTP server stands in for a service)."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.ports import free_port
from vip.stack.errors import PortInUse, ServiceFailedToStart
from vip.stack.manager import StackManager
from vip.stack.service import Launch


@dataclass
class HttpService:
    """A real process: python's http.server, ready when it answers."""

    port: int
    name: str = "web"
    start_timeout_s: float = 20.0
    argv_override: list[str] | None = None
    prepared: list[bool] = field(default_factory=list)

    def prepare(self) -> None:
        self.prepared.append(True)

    def launch(self) -> Launch:
        argv = self.argv_override or [
            sys.executable,
            "-m",
            "http.server",
            str(self.port),
            "--bind",
            "127.0.0.1",
        ]
        return Launch(argv=argv)

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/", timeout=0.5).status_code == 200
        except httpx.HTTPError:
            return False

    def version(self) -> str:
        return "test"


def manager(tmp_path: Path, *services: HttpService) -> StackManager:
    return StackManager(list(services), tmp_path / "run", tmp_path / "logs", echo=lambda _: None)


def test_up_waits_until_ready_and_a_second_up_starts_nothing(tmp_path: Path):
    service = HttpService(free_port())
    stack = manager(tmp_path, service)
    try:
        assert stack.up() == ["web"]
        assert service.is_ready()
        first_pid = stack.owned_process("web").pid  # type: ignore[union-attr]
        assert stack.up() == []
        assert stack.owned_process("web").pid == first_pid  # type: ignore[union-attr]
        (row,) = stack.status()
        assert (row.name, row.port, row.pid, row.healthy) == ("web", service.port, first_pid, True)
        assert row.rss_mb is not None and row.rss_mb > 1
    finally:
        stack.down()
    assert not service.is_ready()
    assert stack.owned_process("web") is None


def test_down_leaves_alone_a_process_it_did_not_start(tmp_path: Path):
    port = free_port()
    foreign = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        stack = manager(tmp_path, HttpService(port))
        # A stale pid file naming the foreign pid (e.g. a recycled pid) must not make it ours.
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "web.pid.json").write_text(
            f'{{"pid": {foreign.pid}, "create_time": 1.0, "argv": []}}'
        )
        assert stack.down() == []
        assert foreign.poll() is None
    finally:
        foreign.terminate()
        foreign.wait(10)


def test_up_refuses_a_port_held_by_someone_else(tmp_path: Path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUse, match=rf"web: 127.0.0.1:{port} is already in use"):
            manager(tmp_path, HttpService(port)).up()


def test_a_service_that_dies_is_named_with_the_tail_of_its_log(tmp_path: Path):
    dying = HttpService(
        free_port(),
        name="broken",
        argv_override=[
            sys.executable,
            "-c",
            "import sys; print('cannot bind: no such luck'); sys.exit(3)",
        ],
    )
    with pytest.raises(ServiceFailedToStart) as failure:
        manager(tmp_path, dying).up()
    assert failure.value.service == "broken"
    assert "process exited (code 3)" in str(failure.value)
    assert "cannot bind: no such luck" in failure.value.log_tail


def test_a_service_that_never_answers_times_out(tmp_path: Path):
    silent = HttpService(
        free_port(),
        name="silent",
        start_timeout_s=1.5,
        argv_override=[
            sys.executable,
            "-c",
            "import time; print('starting slowly', flush=True); time.sleep(60)",
        ],
    )
    stack = manager(tmp_path, silent)
    with pytest.raises(ServiceFailedToStart, match="silent failed to start: not ready within 2s"):
        stack.up()
    stack.down()
    assert stack.owned_process("silent") is None


def test_unknown_service_names_are_refused(tmp_path: Path):
    with pytest.raises(ValueError, match=r"unknown service\(s\) \['nope'\]; known: web"):
        manager(tmp_path, HttpService(free_port())).up(["nope"])
