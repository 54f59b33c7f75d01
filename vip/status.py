"""`vip status [ID]` and `vip upload --wait`: jobs as GET /v1/jobs shows them, with a live
progress bar per stage (chunks cut, analysed, embedded, graphed out of those planned)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from vip.settings import Settings

FINISHED = frozenset({"completed", "failed"})
STAGE_LABELS = {
    "chunking": "cut",
    "analysis": "analysed",
    "embedding": "embedded",
    "graph": "graphed",
}
POLL_S = 1.0
# How long a just-published upload may stay out of the jobs view before waiting gives up.
UNSEEN_GRACE_S = 120.0
Job = dict[str, Any]


class StatusError(Exception):
    """The jobs API could not answer, or a job did not finish in time; the message says why."""


class JobsClient:
    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        headers = {}
        if settings.api_key is not None:
            headers["X-API-Key"] = settings.api_key.get_secret_value()
        self._base = settings.api_url
        self._http = httpx.Client(base_url=settings.api_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def get(self, video_id: str) -> Job | None:
        """The job, or None when the view has none (yet) for the video."""
        response = self._call("GET", f"/v1/jobs/{video_id}")
        if response.status_code in (404, 503):
            return None
        body: Job = response.json()
        return body

    def page(self, status: str | None = None, limit: int = 50) -> tuple[list[Job], int]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        response = self._call("GET", "/v1/jobs", params=params)
        if response.status_code == 503:
            raise StatusError(f"the jobs view is still loading: {response.json()['detail']}")
        body = response.json()
        return body["data"], body["count"]

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StatusError(f"the query API at {self._base} is unreachable: {exc}") from exc
        if response.status_code not in (200, 404, 503):
            raise StatusError(f"{method} {path} answered {response.status_code}: {response.text}")
        return response


def follow_job(
    client: JobsClient,
    video_id: str,
    on_update: Callable[[Job], None],
    upload_id: str | None = None,
    timeout_s: float = 1800.0,
    poll_s: float = POLL_S,
) -> Job:
    """Poll the job until it is completed or failed; returns it. With ``upload_id``, an
    earlier upload's job (a re-upload of the same bytes) does not count."""
    started = time.monotonic()
    seen: Job | None = None
    while True:
        job = client.get(video_id)
        if job is not None and (upload_id is None or job.get("upload_id") == upload_id):
            if job != seen:
                on_update(job)
                seen = job
            if job["status"] in FINISHED:
                return job
        waited = time.monotonic() - started
        if seen is None and waited > UNSEEN_GRACE_S:
            raise StatusError(f"no job for {video_id} after {waited:.0f}s: is the worker running?")
        if waited > timeout_s:
            state = seen["status"] if seen else "unseen"
            raise StatusError(f"job {video_id} still {state} after {timeout_s:.0f}s")
        time.sleep(poll_s)


# Rendering --------------------------------------------------------------------------------


class StageBars:
    """One progress bar per stage, chunks done out of chunks planned."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<9}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {
            name: self.progress.add_task(label, total=None, note="")
            for name, label in STAGE_LABELS.items()
        }

    def update(self, job: Job) -> None:
        planned = job["chunks"]["planned"]
        for stage in job["stages"]:
            duration = stage["duration_s"]
            self.progress.update(
                self._tasks[stage["name"]],
                total=planned,
                completed=stage["done"],
                note=f"{duration:.1f}s" if duration is not None else "",
            )


@contextmanager
def stage_bars(console: Console) -> Iterator[StageBars]:
    bars = StageBars(console)
    with bars.progress:
        yield bars


def headline(job: Job) -> str:
    chunks = job["chunks"]
    elapsed = f" in {job['elapsed_s']:.1f}s" if job.get("elapsed_s") is not None else ""
    line = f"{job['video_id']} {job['status']}{elapsed}: {chunks['graphed']}/"
    line += f"{chunks['planned'] if chunks['planned'] is not None else '?'} chunks"
    if job["analysis_cache_hits"]:
        line += f", {job['analysis_cache_hits']} from the analysis cache"
    if job["status"] == "failed":
        line += f"; {job['failed_stage']} failed: {job['error']}"
    return line


def jobs_table(jobs: list[Job], total: int) -> Table:
    table = Table(title=f"{len(jobs)} of {total} jobs, newest first")
    for column in ("video", "status", "graphed", "elapsed", "source", "error"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        chunks = job["chunks"]
        planned = chunks["planned"] if chunks["planned"] is not None else "?"
        elapsed = f"{job['elapsed_s']:.1f}s" if job.get("elapsed_s") is not None else "-"
        table.add_row(
            job["video_id"],
            job["status"],
            f"{chunks['graphed']}/{planned}",
            elapsed,
            job.get("source") or "-",
            job.get("error") or "",
        )
    return table


# Commands ---------------------------------------------------------------------------------


def show_status(
    settings: Settings,
    video_id: str | None,
    as_json: bool = False,
    watch: bool = False,
    status: str | None = None,
    limit: int = 50,
    timeout_s: float = 1800.0,
) -> int:
    """`vip status`: one job (bars; with --watch until it finishes: exit 1 if it failed) or
    the list (a table; with --watch refreshed until interrupted)."""
    client = JobsClient(settings)
    out = Console()
    try:
        if video_id is None:
            return _show_list(client, out, as_json, watch, status, limit)
        if not watch:
            job = client.get(video_id)
            if job is None:
                raise StatusError(f"no job for video {video_id}")
            if as_json:
                print(json.dumps(job, indent=2))
            else:
                with stage_bars(out) as bars:
                    bars.update(job)
                out.print(headline(job), markup=False, soft_wrap=True)
            return 0
        return watch_job(client, video_id, as_json=as_json, timeout_s=timeout_s)
    finally:
        client.close()


def watch_job(
    client: JobsClient,
    video_id: str,
    upload_id: str | None = None,
    as_json: bool = False,
    timeout_s: float = 1800.0,
    console: Console | None = None,
) -> int:
    """Follow a job to its end: 0 when it completed, 1 when it failed."""
    console = console or Console()
    if as_json:
        job = follow_job(
            client, video_id, lambda j: print(json.dumps(j), flush=True), upload_id, timeout_s
        )
    else:
        with stage_bars(console) as bars:
            job = follow_job(client, video_id, bars.update, upload_id, timeout_s)
        console.print(headline(job), markup=False, soft_wrap=True)
    return 0 if job["status"] == "completed" else 1


def _show_list(
    client: JobsClient, out: Console, as_json: bool, watch: bool, status: str | None, limit: int
) -> int:
    if as_json:
        jobs, total = client.page(status, limit)
        print(json.dumps({"data": jobs, "count": total}, indent=2))
        return 0
    if not watch:
        out.print(jobs_table(*client.page(status, limit)))
        return 0
    with Live(jobs_table(*client.page(status, limit)), console=out) as live:
        try:
            while True:
                time.sleep(POLL_S)
                live.update(jobs_table(*client.page(status, limit)))
        except KeyboardInterrupt:
            return 0


def wait_for_upload(settings: Settings, video_id: str, upload_id: str, timeout_s: float) -> int:
    """`vip upload --wait`: bars on stderr until the upload's job ends; 0 completed, 1 failed."""
    client = JobsClient(settings)
    try:
        return watch_job(
            client, video_id, upload_id, timeout_s=timeout_s, console=Console(stderr=True)
        )
    finally:
        client.close()
