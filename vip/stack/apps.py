"""The project's own processes under the stack manager: the Faust worker and the query API."""

from __future__ import annotations

import sys
from typing import Any

import httpx

from vip.settings import Settings
from vip.stack.service import Launch

PYTHON_ENV = {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}


class WorkerService:
    """`vip worker`: every stage's agent in one Faust worker (one consumer group, "vip")."""

    name = "worker"
    start_timeout_s = 90.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.port = 0  # the worker listens on nothing; it is only a Kafka client
        self._admin: Any = None

    def prepare(self) -> None:
        pass

    def launch(self) -> Launch:
        return Launch(argv=[sys.executable, "-m", "vip", "worker"], env=PYTHON_ENV)

    def is_ready(self) -> bool:
        """Ready once its consumer group is stable with at least one member."""
        from confluent_kafka import ConsumerGroupState
        from confluent_kafka.admin import AdminClient

        from streams.app import APP_ID

        if self._admin is None:
            self._admin = AdminClient(
                {
                    "bootstrap.servers": self._settings.kafka_bootstrap,
                    "socket.connection.setup.timeout.ms": 1000,
                    "log_level": 3,
                }
            )
        admin = self._admin
        try:
            futures = admin.describe_consumer_groups([APP_ID], request_timeout=2)
            group = futures[APP_ID].result(timeout=3)
        except Exception:
            return False
        return bool(group.state == ConsumerGroupState.STABLE and group.members)

    def version(self) -> str:
        from importlib.metadata import version

        return f"faust-streaming {version('faust-streaming')}"


class ApiService:
    name = "api"
    start_timeout_s = 60.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.port = settings.api_port

    def prepare(self) -> None:
        pass

    def launch(self) -> Launch:
        return Launch(argv=[sys.executable, "-m", "vip", "api"], env=PYTHON_ENV)

    def is_ready(self) -> bool:
        try:
            return httpx.get(f"{self._settings.api_url}/health", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False

    def version(self) -> str:
        try:
            spec = httpx.get(f"{self._settings.api_url}/openapi.json", timeout=2).json()
            return f"vip-api {spec['info']['version']}"
        except (httpx.HTTPError, ValueError, KeyError):
            return "?"
