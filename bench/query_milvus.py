"""Private vector stores for the query benches, each started and stopped by the bench with its
data in a directory of its own:

* ``milvus-lite``: the stack's own (``milvus-lite server``, Milvus Lite 3.x, pure Python);
* ``milvus-lite-2.5``: Milvus Lite 2.5.1, the last of the C++ line (Milvus's segcore and
  knowhere in one ``milvus`` binary, "local mode"), from PyPI into a virtual environment of its
  own under ~/.cache/vip/bench (it is the same distribution name as the stack's 3.x, so the two
  cannot share one environment); it serves FLAT and IVF_FLAT, and takes infix ``LIKE``;
* ``milvus-embedded``: the embedded Milvus 2.3 standalone server from PyPI (``milvus``, the
  optional dependency group ``bench-milvus``: ``uv sync --inexact --group bench-milvus``).

The last two are real Milvus: multi-threaded search over sealed segments with a built index, no
per-row Python. The embedded 2.3 server's gRPC servers listen on every interface (Milvus 2.3
has no listen-address setting); Milvus Lite 2.5 listens on the address it is given
(127.0.0.1). Collections are made by agents/shared/milvus_store with the index each bench asks
for (agents.shared.milvus_store.VectorIndex, the project's ``milvus_index`` setting).
"""

from __future__ import annotations

import contextlib
import os
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

from agents.shared.milvus_store import VectorIndex
from tests.ports import free_port

FLAT = VectorIndex()
HNSW = VectorIndex("HNSW", {"M": 16, "efConstruction": 200}, {"ef": 64})
IVF = VectorIndex("IVF_FLAT", {"nlist": 1024}, {"nprobe": 32})
INDEXES: Mapping[str, VectorIndex] = {"flat": FLAT, "hnsw": HNSW, "ivf": IVF}
STORES = ("milvus-lite", "milvus-lite-2.5", "milvus-embedded")
# The approximate index bench/query_index.py sets against FLAT on each store. Milvus Lite 2.5
# refuses HNSW ("local mode only support FLAT IVF_FLAT AUTOINDEX") and never builds the index
# it accepts (indexed_rows stays 0): sealed segments get segcore's interim IVF index, whose
# nprobe is fixed (recall@10 0.70 at 100k whatever the search asks), so the load bench keeps
# FLAT there (LOAD_INDEX).
APPROXIMATE: Mapping[str, str] = {
    "milvus-lite": "hnsw",
    "milvus-lite-2.5": "ivf",
    "milvus-embedded": "hnsw",
}
LOAD_INDEX: Mapping[str, str] = {"milvus-lite-2.5": "flat", "milvus-embedded": "hnsw"}
TIME_TICK_MS = 10
LITE_25 = "milvus-lite==2.5.1"
LITE_25_ENV = Path.home() / ".cache" / "vip" / "bench" / "milvus-lite-2.5.1"


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
def _served(
    argv: list[str], data_dir: Path, port: int, name: str, version: str, **popen: Any
) -> Iterator[Server]:
    """``argv`` running with its log in ``data_dir``, until it answers on ``port``; stopped
    (terminated, then killed) after the block."""
    log = (data_dir / "server.log").open("ab")
    process = subprocess.Popen(argv, stdout=log, stderr=log, **popen)
    uri = f"http://127.0.0.1:{port}"
    try:
        _await(uri, process, 120)
        yield Server(uri, psutil.Process(process.pid), name, version)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


@contextlib.contextmanager
def milvus_lite(data_dir: Path, port: int | None = None) -> Iterator[Server]:
    from importlib.metadata import version

    port = port or free_port()
    exe = Path(sys.executable).parent / "milvus-lite"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [str(exe), "server", "--data-dir", str(data_dir), "--host", "127.0.0.1"]
    with _served(
        [*argv, "--port", str(port)], data_dir, port, "milvus-lite", version("milvus-lite")
    ) as server:
        yield server


def lite_25_lib() -> Path:
    """The ``milvus_lite/lib`` folder (the ``milvus`` binary and its libraries) of Milvus Lite
    2.5.1, installed on first use into a virtual environment outside the source tree."""
    lib = LITE_25_ENV / "lib" / "milvus_lite" / "lib"
    if not (lib / "milvus").is_file():
        uv = shutil.which("uv")
        if uv is None:
            raise SystemExit("uv is needed to install Milvus Lite 2.5 for the bench")
        target = LITE_25_ENV / "lib"
        subprocess.run([uv, "pip", "install", "--quiet", "--target", str(target), LITE_25],
                       check=True)  # fmt: skip
    return lib


@contextlib.contextmanager
def milvus_lite_25(data_dir: Path, port: int | None = None) -> Iterator[Server]:
    port = port or free_port()
    lib = lite_25_lib()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "LD_LIBRARY_PATH": f"{lib}:{os.environ.get('LD_LIBRARY_PATH', '')}"}
    # argv as milvus_lite.server.Server gives it: the database file, the address, the log level.
    argv = [str(lib / "milvus"), str(data_dir / "bench.db"), f"127.0.0.1:{port}", "ERROR"]
    version = LITE_25.split("==")[1]
    with _served(argv, data_dir, port, "milvus-lite-2.5", version, env=env, cwd=data_dir) as server:
        yield server


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
    start = {
        "milvus-lite": milvus_lite,
        "milvus-lite-2.5": milvus_lite_25,
        "milvus-embedded": milvus_embedded,
    }[name]
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
