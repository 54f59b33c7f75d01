"""Recycling decisions and per-stage worker settings (agents.lifecycle, Settings.stage_worker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from agents import lifecycle
from agents.lifecycle import EXIT_RECYCLED, Limits, RecycleSensor, recycle_reason
from streams.app import WORKER_STAGES, app_id_for
from vip import worker_supervisor
from vip.settings import Settings

MB = 2**20


def limits(max_events: int = 0, max_rss_mb: int = 0) -> Limits:
    return Limits(max_events, max_rss_mb * MB, shutdown_soft_s=1, shutdown_hard_s=2)


def test_a_worker_within_its_limits_is_not_recycled() -> None:
    assert recycle_reason(limits(max_events=10, max_rss_mb=512), 9, 512 * MB) is None


def test_a_worker_is_recycled_after_max_events() -> None:
    reason = recycle_reason(limits(max_events=10), 10, 0)
    assert reason == "10 events handled (max_events 10)"


def test_a_worker_is_recycled_above_its_rss_threshold() -> None:
    reason = recycle_reason(limits(max_rss_mb=512), 0, 512 * MB + MB)
    assert reason == "resident memory 513 MB above max_rss_mb 512"


def test_zero_turns_both_triggers_off() -> None:
    assert recycle_reason(limits(), 10**9, 10**12) is None


def test_the_sensor_asks_for_one_recycle_when_the_count_is_reached() -> None:
    asked: list[str] = []
    sensor = RecycleSensor(limits(max_events=3), asked.append, rss=lambda: 0)
    for offset in range(5):
        sensor.on_stream_event_out(None, offset, None, None)
    assert sensor.events == 5
    assert asked == ["3 events handled (max_events 3)"]


def test_an_idle_worker_over_its_memory_limit_is_recycled_by_the_periodic_check() -> None:
    asked: list[str] = []
    sensor = RecycleSensor(limits(max_rss_mb=100), asked.append, rss=lambda: 200 * MB)
    sensor.check()
    sensor.check()
    assert asked == ["resident memory 200 MB above max_rss_mb 100"]


def test_a_process_with_several_stages_takes_the_tightest_triggers_and_longest_limits() -> None:
    settings = Settings.model_validate(
        {
            "worker_by_stage": {
                "analysis": {"max_events": 40, "max_rss_mb": 900},
                "embedding": {"max_events": 0, "max_rss_mb": 700, "shutdown_soft_s": 12},
            }
        }
    )
    assert Limits.for_stages(settings, ["analysis", "embedding"]) == Limits(
        max_events=40, max_rss_bytes=700 * MB, shutdown_soft_s=20, shutdown_hard_s=25
    )


def test_stage_settings_merge_overrides_over_the_table() -> None:
    settings = Settings.model_validate(
        {"analysis_concurrency": 3, "worker_by_stage": {"graph": {"max_rss_mb": 2048}}}
    )
    analysis = settings.stage_worker("analysis")
    graph = settings.stage_worker("graph")
    assert (analysis.concurrency, analysis.nice, analysis.max_rss_mb) == (3, 10, 1536)
    assert (graph.max_rss_mb, graph.max_events, graph.concurrency) == (2048, 5000, 1)


def test_an_ordered_stage_refuses_concurrency() -> None:
    with pytest.raises(ValidationError, match="the graph stage handles its events in order"):
        Settings.model_validate({"worker_by_stage": {"graph": {"concurrency": 2}}})


def test_the_soft_limit_must_come_before_the_hard_one() -> None:
    with pytest.raises(ValidationError, match="shutdown_soft_s must be below shutdown_hard_s"):
        Settings.model_validate({"worker_by_stage": {"jobs": {"shutdown_soft_s": 15}}})


def test_each_stage_has_its_own_consumer_group() -> None:
    assert [app_id_for(stage) for stage in WORKER_STAGES] == [
        "vip-chunking",
        "vip-analysis",
        "vip-embedding",
        "vip-graph",
        "vip-jobs",
        "vip-live",
        "vip-alerts",
    ]
    # The query service reads what Neo4j holds from the graph sink's commits.
    assert Settings().query_events_sink_group == app_id_for("graph")


def test_the_worker_registry_and_the_supervisor_agree() -> None:
    from agents.worker import STAGES

    assert tuple(STAGES) == WORKER_STAGES
    assert worker_supervisor.EXIT_RECYCLED == lifecycle.EXIT_RECYCLED == EXIT_RECYCLED


def test_a_stage_app_is_its_own_group_with_the_stage_concurrency(tmp_path: Path) -> None:
    from agents.worker import build_worker_app

    settings = Settings.model_validate(
        {"state_dir": tmp_path, "worker_by_stage": {"embedding": {"concurrency": 3}}}
    )
    app = build_worker_app(settings, ["embedding"])
    assert app.conf.id == "vip-embedding"
    assert app.agents["vip.embedding"].concurrency == 3
    assert "vip.analysis" not in app.agents
    assert app.conf.datadir == tmp_path / "faust" / "vip-embedding"


def test_a_worker_refuses_an_unknown_stage(tmp_path: Path) -> None:
    from agents.worker import build_worker_app

    with pytest.raises(ValueError, match=r"unknown stage\(s\) \['indexing'\]"):
        build_worker_app(Settings(state_dir=tmp_path), ["indexing"])
