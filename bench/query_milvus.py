"""Private vector stores for the query benches: Milvus Lite (the stack's, ``milvus-lite server``)
or the embedded Milvus 2.3 standalone server from PyPI (``milvus``, the optional dependency
group ``bench-milvus``: ``uv sync --inexact --group bench-milvus``), each started and stopped
by the bench with its data in a directory of its own, and the collections made with another
index than the project's default (agents/shared/milvus_store.INDEXES).

The embedded server is a real Milvus (Go proxy and coordinators, C++ segcore and knowhere):
multi-threaded search over sealed segments with a built index, no per-row Python. Its gRPC
servers listen on every interface (Milvus 2.3 has no listen-address setting); its clients here
only use 127.0.0.1. The ``milvus`` wrapper only checks that its ports are free on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil
from pymilvus import MilvusClient

from agents.shared import milvus_store
from tests.ports import free_port

HNSW: Mapping[str, Any] = {
    "index_type": "HNSW",
    "metric_type": "COSINE",
    "params": {"M": 16, "efConstruction": 200},
}
HNSW_SEARCH: Mapping[str, Any] = {"metric_type": "COSINE", "params": {"ef": 64}}
FLAT: Mapping[str, Any] = {"index_type": "FLAT", "metric_type": "COSINE"}
STORES = ("milvus-lite", "milvus-embedded")
TIME_TICK_MS = 10


@contextlib.contextmanager
def index_for_new_collections(index: Mapping[str, Any]) -> Iterator[None]:
    """Collections that agents/shared/milvus_store creates in the block get ``index`` for every
    kind. The project's INDEXES is a module constant with no parameter to pass it through, so
    the bench swaps it for the block (this process only)."""
    saved = milvus_store.INDEXES
    milvus_store.INDEXES = {kind: dict(index) for kind in milvus_store.KINDS}  # type: ignore[misc]
    try:
        yield
    finally:
        milvus_store.INDEXES = saved  # type: ignore[misc]


class Server:
    """A running private vector store: ``uri`` to connect, ``process`` for its CPU time."""

    def __init__(self, uri: str, process: psutil.Process, name: str, version: str) -> None:
        self.uri, self.process, self.name, self.version = uri, process, name, version

    def cpu_s(self) -> float:
        try:
            with self.process.oneshot():
                times = [
                    self.process.cpu_times(),
                    *(c.cpu_times() for c in self.process.children(recursive=True)),
                ]
        except psutil.Error:
            return float("nan")
        return sum(t.user + t.system for t in times)


def _await(uri: str, process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"vector store exited with {process.returncode}")
        try:
            client = MilvusClient(uri=uri, timeout=5)
            client.list_collections()
            client.close()
            return
        except Exception:  # not up yet
            time.sleep(0.5)
    raise TimeoutError(f"no vector store at {uri} after {timeout_s} s")


@contextlib.contextmanager
def milvus_lite(data_dir: Path, port: int | None = None) -> Iterator[Server]:
    port = port or free_port()
    exe = Path(sys.executable).parent / "milvus-lite"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir / "server.log").open("ab")
    argv = [str(exe), "server", "--data-dir", str(data_dir), "--host", "127.0.0.1"]
    process = subprocess.Popen([*argv, "--port", str(port)], stdout=log, stderr=log)
    uri = f"http://127.0.0.1:{port}"
    try:
        _await(uri, process, 120)
        from importlib.metadata import version

        yield Server(uri, psutil.Process(process.pid), "milvus-lite", version("milvus-lite"))
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


@contextlib.contextmanager
def milvus_embedded(data_dir: Path, port: int | None = None) -> Iterator[Server]:
    """The ``milvus`` package's standalone server (etcd and rocksmq inside, local storage).

    A Strong read waits until the query node has seen a time tick past the request, and the
    proxy ticks every 200 ms by default, so every search the query service makes (Strong: a
    completed job is searchable at once) would wait 0-200 ms, about 200 ms when idle; the
    bench ticks every TIME_TICK_MS instead."""
    try:
        from milvus import MilvusServer, MilvusServerConfig, __version__
    except ImportError as exc:
        raise SystemExit(
            "the embedded Milvus is an optional dependency: uv sync --inexact --group bench-milvus"
        ) from exc
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = MilvusServer(MilvusServerConfig(data_dir=str(data_dir)))
    server.listen_port = port
    server.config.set("proxy.timeTickInterval", TIME_TICK_MS)
    began = time.monotonic()
    server.start()  # waits for /healthz
    uri = f"http://127.0.0.1:{port}"
    try:
        _await(uri, None, 120)
        print(f"  [embedded Milvus {__version__} up in {time.monotonic() - began:.0f} s on {uri},"
              f" data in {data_dir}]", flush=True)  # fmt: skip
        yield Server(uri, psutil.Process(server.server_proc.pid), "milvus-embedded", __version__)
    finally:
        # The wrapper's stop() gives the server 1 s before SIGKILL; give it more to flush.
        proc = server.server_proc
        if proc is not None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
        server.stop()


@contextlib.contextmanager
def vector_store(
    name: str, data_dir: Path | None = None, port: int | None = None
) -> Iterator[Server]:
    """``name`` (one of STORES) in ``data_dir``, or in a temporary directory removed after."""
    tmp = None
    if data_dir is None:
        tmp = data_dir = Path(tempfile.mkdtemp(prefix=f"vip-{name}-"))
    start = milvus_lite if name == "milvus-lite" else milvus_embedded
    try:
        with start(data_dir, port) as server:
            yield server
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def wait_indexed(client: MilvusClient, collection: str, timeout_s: float = 1800) -> None:
    """Until every row of ``collection`` is in the built vector index (the embedded Milvus
    builds it asynchronously after a flush; Milvus Lite answers at once)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = client.describe_index(collection, "vector")
        total, indexed = info.get("total_rows"), info.get("indexed_rows")
        state = str(info.get("state", ""))
        if total is None or indexed is None or (indexed >= total and "Fail" not in state):
            return
        if "Fail" in state:
            raise RuntimeError(f"{collection}: index build failed: {info}")
        time.sleep(1)
    raise TimeoutError(f"{collection}: index not built after {timeout_s} s")
