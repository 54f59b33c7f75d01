"""`vip worker`: one stage worker (--stage), or the supervisor of one per stage (README,
"Workers")."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from streams.app import WORKER_STAGES
from vip.settings import StageWorkerOverride, load_settings

__all__ = ["worker"]


def worker(
    stage: Annotated[
        list[str] | None,
        typer.Option(
            help="Run these stages in this process, as one consumer group (repeatable). "
            "Without it: supervise one process per stage, restarting any that exits."
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=16, help="Events each given stage handles at once."),
    ] = None,
) -> None:
    """Run the ingestion agents: one stage's worker, or a supervisor of one worker per stage."""
    unknown = set(stage or []) - set(WORKER_STAGES)
    if unknown:
        typer.secho(
            f"error: unknown stage(s) {sorted(unknown)}; known: {', '.join(WORKER_STAGES)}",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    if not stage:
        if concurrency is not None:
            typer.secho("error: --concurrency needs --stage", fg=typer.colors.RED, err=True)
            raise typer.Exit(2)
        from vip.worker_supervisor import Supervisor

        logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] %(message)s")
        Supervisor(load_settings(), WORKER_STAGES).run()
        return

    settings = load_settings()
    if concurrency is not None:
        overrides = dict(settings.worker_by_stage)
        for name in stage:
            current = overrides.get(name, StageWorkerOverride())
            overrides[name] = current.model_copy(update={"concurrency": concurrency})
        try:
            settings = load_settings(worker_by_stage=overrides)
        except ValueError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc
    from agents.worker import run_worker

    run_worker(settings, stage)
