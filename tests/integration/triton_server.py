"""A real tritonserver for the model tests, started the way `vip stack up` starts it.

:class:`vip.stack.manager.StackManager` does the process handling (log file, readiness polling
against the service's deadline, SIGTERM to the server so that it unloads its models and stubs
itself, then SIGKILL to whatever is left), and :class:`vip.stack.triton.TritonService` builds
the command line, on free loopback ports with a temporary state directory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psutil
import pytest

from tests.ports import free_port
from vip.settings import Settings, load_settings
from vip.stack.errors import ServiceFailedToStart
from vip.stack.manager import StackManager
from vip.stack.triton import TritonService


def isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with a fresh state directory and free Triton ports, all on 127.0.0.1."""
    return load_settings(
        host="127.0.0.1",
        state_dir=tmp_path_factory.mktemp("state"),
        triton_http_port=free_port(),
        triton_grpc_port=free_port(),
        triton_metrics_port=free_port(),
    )


@contextlib.contextmanager
def running_triton(settings: Settings, models: list[str] | None = None) -> Iterator[psutil.Process]:
    """Serve ``models`` (default: every model in the repository) until the block ends; yields
    the server process. A server that exits or is not ready in time fails the test with the
    tail of its log."""
    manager = StackManager(
        [TritonService(settings, models=models)],
        settings.run_dir,
        settings.logs_dir,
        host=settings.host,
        echo=lambda _: None,
    )
    try:
        failure = None
        try:
            manager.up()
        except ServiceFailedToStart as exc:
            failure = str(exc)  # failed outside the handler: the log tail is shown once
        if failure is not None:
            pytest.fail(failure)
        process = manager.owned_process(TritonService.name)
        if process is None:
            pytest.fail(
                f"tritonserver is ready but no live process is recorded in {manager.run_dir}"
            )
        yield process
    finally:
        manager.down()
