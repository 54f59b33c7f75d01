"""``vip lag``: per consumer group, topic and partition the committed offset, the end offset,
the lag, the time lag and a Burrow-style status over a sliding window of samples."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import click
import typer

if TYPE_CHECKING:
    from vip.lag_status import LagReport

# Statuses that mean a consumer needs attention: the command then exits with this code.
UNHEALTHY_EXIT = 3


def lag(
    group: Annotated[
        list[str] | None,
        typer.Option("--group", "-g", help="Consumer groups (default: every pipeline group)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document per report")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Report every interval, for ever")] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between samples")] = 2.0,
    window: Annotated[
        float, typer.Option(min=0.1, help="Seconds of samples each status is judged over")
    ] = 10.0,
) -> None:
    """Consumer lag with OK / WARN / STALL / STOP / ERR per partition and group (Burrow's
    rules, docs/operations.md). Without --watch: samples for one window, reports once, and
    exits 3 when a group is STALL, STOP or ERR."""
    from confluent_kafka import KafkaException

    from vip.lag import LagReader
    from vip.lag_status import LagWindow
    from vip.settings import load_settings

    settings = load_settings()
    reader = LagReader(settings.kafka_bootstrap)
    sliding = LagWindow(window)
    groups = tuple(group or settings.lag_groups)
    # A little past one window, so that rule 3 (no sign of life for longer than the window)
    # can be decided in a single run.
    deadline = time.monotonic() + window + interval / 2
    try:
        while True:
            started = time.monotonic()
            sliding.add(reader.snapshot(groups))
            if watch:
                _show(sliding.report(), as_json, clear=not as_json and sys.stdout.isatty())
            elif started >= deadline:
                break
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KafkaException as exc:
        typer.secho(
            f"error: Kafka at {settings.kafka_bootstrap}: {exc}", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    finally:
        reader.close()
    report = sliding.report()
    _show(report, as_json, clear=False)
    if any(g.status in ("STALL", "STOP", "ERR") for g in report.groups):
        raise typer.Exit(UNHEALTHY_EXIT)


def _show(report: LagReport, as_json: bool, clear: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json")))
        return
    if clear:
        click.clear()
    typer.echo(render(report))


def render(report: LagReport) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(report.sampled_at or time.time()))
    lines = [f"{when}  window {report.window_s:g}s, {report.samples} samples"]
    if not report.groups:
        lines.append("no consumer groups on the pipeline's topics")
    for g in report.groups:
        members = f"{g.members} member{'s' if g.members != 1 else ''}"
        lines.append(f"\n{g.group}  {g.status}  ({g.state.lower()}, {members}, lag {g.lag})")
        if g.partitions:
            lines.append(
                f"  {'topic':<24} {'part':>4} {'committed':>10} {'end':>10} {'lag':>8} "
                f"{'time lag':>9}  {'owned':<5}  status"
            )
        for p in g.partitions:
            committed = "-" if p.committed is None else str(p.committed)
            time_lag = "?" if p.time_lag_s is None else f"{p.time_lag_s:.1f}s"
            lines.append(
                f"  {p.topic:<24} {p.partition:>4} {committed:>10} {p.end:>10} {p.lag:>8} "
                f"{time_lag:>9}  {'yes' if p.owned else 'no':<5}  {p.status}"
            )
    return "\n".join(lines)
