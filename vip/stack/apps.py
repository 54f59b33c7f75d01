"""The project's own processes under the stack manager: the Faust worker and the query API."""

from __future__ import annotations

import sys
from typing import Any

import httpx

from vip.settings import Settings
from vip.stack.service import Launch, answers_ok

PYTHON_ENV = {"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}


class WorkerService:
    """`vip worker`: a supervisor with one child process per stage, each its own consumer group
    (streams.app.app_id_for); see vip.worker_supervisor."""

    name = "worker"
    # Five Python processes load their agents and models at once, on two cores.
    start_timeout_s = 180.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.port = 0  # the workers listen on nothing (but metrics); they are Kafka clients
        self._admin: Any = None

    def prepare(self) -> None:
        pass

    def launch(self) -> Launch:
        return Launch(argv=[sys.executable, "-m", "vip", "worker"], env=PYTHON_ENV)

    def is_ready(self) -> bool:
        """Ready once every stage's consumer group is stable with at least one member."""
        from confluent_kafka import ConsumerGroupState
        from confluent_kafka.admin import AdminClient

        from streams.app import WORKER_STAGES, app_id_for

        if self._admin is None:
            self._admin = AdminClient(
                {
                    "bootstrap.servers": self._settings.kafka_bootstrap,
                    "socket.connection.setup.timeout.ms": 1000,
                    "log_level": 3,
                }
            )
        groups = [app_id_for(stage) for stage in WORKER_STAGES]
        try:
            futures = self._admin.describe_consumer_groups(groups, request_timeout=2)
            described = [futures[group].result(timeout=3) for group in groups]
        except Exception:
            return False
        return all(g.state == ConsumerGroupState.STABLE and g.members for g in described)

    def version(self) -> str:
        """faust-streaming's version and the supervisor's children: how many run, and how
        often they were started again (recycled or crashed)."""
        from importlib.metadata import version

        from vip.worker_supervisor import read_state

        stages = read_state(self._settings)
        running = sum(1 for state in stages.values() if state.get("pid"))
        restarts = sum(max(0, int(str(state.get("starts", 1))) - 1) for state in stages.values())
        return (
            f"faust-streaming {version('faust-streaming')} · "
            f"{running}/{len(stages)} stages, {restarts} restarts"
        )


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
        return answers_ok(f"{self._settings.api_url}/health", timeout_s=3)

    def version(self) -> str:
        try:
            spec = httpx.get(f"{self._settings.api_url}/openapi.json", timeout=2).json()
            return f"vip-api {spec['info']['version']}"
        except (httpx.HTTPError, ValueError, KeyError):
            return "?"


class FeedsService:
    """`vip feeds run`: the live feed runner (vip/feeds), a Kafka client like the worker. Every
    runner joins one consumer group, which shares the registered feeds out among them."""

    name = "feeds"
    start_timeout_s = 60.0

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.port = 0
        self._admin: Any = None

    def prepare(self) -> None:
        pass

    def launch(self) -> Launch:
        return Launch(argv=[sys.executable, "-m", "vip", "feeds", "run"], env=PYTHON_ENV)

    def is_ready(self) -> bool:
        """Ready once the runners' consumer group is stable with a member."""
        from vip.feeds.runner import GROUP_ID

        group = self._group(GROUP_ID)
        return group is not None and bool(group.members)

    def version(self) -> str:
        from vip.feeds.runner import GROUP_ID

        group = self._group(GROUP_ID)
        return f"feed runner · {len(group.members)} in {GROUP_ID}" if group is not None else "?"

    def _group(self, group_id: str) -> Any:
        """The consumer group's description while it is stable, else None."""
        from confluent_kafka import ConsumerGroupState
        from confluent_kafka.admin import AdminClient

        if self._admin is None:
            self._admin = AdminClient(
                {
                    "bootstrap.servers": self._settings.kafka_bootstrap,
                    "socket.connection.setup.timeout.ms": 1000,
                    "log_level": 3,
                }
            )
        try:
            futures = self._admin.describe_consumer_groups([group_id], request_timeout=2)
            described = futures[group_id].result(timeout=3)
        except Exception:
            return None
        return described if described.state == ConsumerGroupState.STABLE else None
