"""Milvus Lite run as a gRPC server, reached through pymilvus like a real Milvus."""

from __future__ import annotations

import shutil
import socket
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

from vip.settings import Settings
from vip.stack.errors import SetupFailed
from vip.stack.service import Launch


class MilvusService:
    name = "milvus"
    start_timeout_s = 60.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.port = settings.milvus_port
        self.data_dir = settings.data_dir / "milvus"

    def _executable(self) -> str:
        beside_python = Path(sys.executable).parent / "milvus-lite"
        if beside_python.exists():
            return str(beside_python)
        found = shutil.which("milvus-lite")
        if found is None:
            raise SetupFailed("milvus-lite is not installed in the project environment")
        return found

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def launch(self) -> Launch:
        return Launch(
            argv=[
                self._executable(),
                "server",
                "--data-dir",
                str(self.data_dir),
                "--host",
                self._settings.host,
                "--port",
                str(self.port),
            ]
        )

    def is_ready(self) -> bool:
        # A TCP accept is not enough: the gRPC servicer must answer a real call.
        try:
            with socket.create_connection((self._settings.host, self.port), timeout=0.5):
                pass
        except OSError:
            return False
        try:
            from pymilvus import MilvusClient

            from agents.shared.milvus_store import GRPC_OPTIONS

            client = MilvusClient(
                uri=self._settings.milvus_uri, timeout=2, grpc_options=GRPC_OPTIONS
            )
            try:
                client.list_collections()
            finally:
                client.close()
        except Exception:
            return False
        return True

    def version(self) -> str:
        try:
            return f"milvus-lite {package_version('milvus-lite')}"
        except PackageNotFoundError:
            return "?"
