"""`vip batch DIR | manifest.csv | s3://bucket/prefix`: many uploads, at most ``concurrency``
at a time, with progress and a summary (ok, failed, skipped, each with its reason).

Without ``--wait`` an upload is done once Kafka has its VideoUploaded; with it, once its job
has completed or failed, so ``concurrency`` bounds the videos in the pipeline at once.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from vip.settings import Settings
from vip.status import JobsClient, StatusError, follow_job
from vip.upload import Publisher, UploadError, build_event

VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".flv", ".wmv"}
    | {".3gp", ".ogv", ".gif"}
)
Result = Literal["ok", "failed", "skipped"]


class BatchError(Exception):
    """The batch cannot start (no such directory, a manifest without a source column, …)."""


@dataclass(frozen=True)
class BatchItem:
    source: str
    origin: str  # where it was listed: a path, "manifest.csv:3 clips/a.mp4", an S3 URI
    providers: tuple[str, ...] = ()  # none: the command's (--provider, else local)
    chunk_seconds: float | None = None


@dataclass(frozen=True)
class Outcome:
    origin: str
    result: Result
    reason: str = ""
    video_id: str | None = None


# Listing ----------------------------------------------------------------------------------


def from_directory(directory: Path) -> tuple[list[BatchItem], list[Outcome]]:
    """Video files under ``directory`` (recursively, by name), and the other files skipped."""
    if not directory.is_dir():
        raise BatchError(f"{directory}: not a directory")
    items, skipped = [], []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if any(part.startswith(".") for part in path.relative_to(directory).parts):
            continue
        if path.suffix.lower() in VIDEO_SUFFIXES:
            items.append(BatchItem(str(path.resolve()), str(path)))
        else:
            skipped.append(Outcome(str(path), "skipped", "not a video file name"))
    return items, skipped


def from_manifest(manifest: Path) -> tuple[list[BatchItem], list[Outcome]]:
    """Rows of a CSV with a ``source`` column and optional ``providers`` (comma-separated)
    and ``chunk_seconds``; relative paths are relative to the manifest. Blank rows and rows
    starting with ``#`` are ignored; a row that cannot be read fails on its own."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BatchError(f"{manifest}: cannot be read ({exc.strerror or exc})") from exc
    reader = csv.DictReader(text.splitlines())  # skips blank rows; line_num counts them
    columns = [c.strip() for c in reader.fieldnames or []]
    if "source" not in columns:
        raise BatchError(f"{manifest}: the header must name a 'source' column (got {columns})")
    items, failed = [], []
    for raw in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        source = row.get("source", "")
        if source.startswith("#"):
            continue
        line = f"{manifest.name}:{reader.line_num}"
        origin = f"{line} {source}" if source else line
        try:
            items.append(_manifest_item(manifest, origin, row))
        except ValueError as exc:
            failed.append(Outcome(origin, "failed", str(exc)))
    return items, failed


def _manifest_item(manifest: Path, origin: str, row: dict[str, str]) -> BatchItem:
    source = row["source"]
    if not source:
        raise ValueError("empty source")
    if "://" not in source and not Path(source).is_absolute():
        source = str((manifest.parent / source).resolve())
    providers = tuple(p.strip() for p in row.get("providers", "").split(",") if p.strip())
    raw_seconds = row.get("chunk_seconds", "")
    try:
        seconds = float(raw_seconds) if raw_seconds else None
    except ValueError:
        raise ValueError(f"chunk_seconds {raw_seconds!r} is not a number") from None
    if seconds is not None and not seconds > 0:
        raise ValueError(f"chunk_seconds must be positive, got {raw_seconds}")
    return BatchItem(source, origin, providers, seconds)


def from_s3(uri: str, client: Any) -> tuple[list[BatchItem], list[Outcome]]:
    """Objects under an S3 prefix: those with a video file name, and the others skipped."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if not bucket:
        raise BatchError(f"malformed S3 prefix {uri!r}; expected s3://bucket/prefix")
    items, skipped = [], []
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    except Exception as exc:
        raise BatchError(f"{uri}: cannot be listed ({exc})") from exc
    for key in keys:
        source = f"s3://{bucket}/{key}"
        if key.endswith("/"):
            continue
        if Path(key).suffix.lower() in VIDEO_SUFFIXES:
            items.append(BatchItem(source, source))
        else:
            skipped.append(Outcome(source, "skipped", "not a video file name"))
    return items, skipped


def collect(target: str, s3_client: Any = None) -> tuple[list[BatchItem], list[Outcome]]:
    if target.startswith("s3://"):
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return from_s3(target, s3_client)
    path = Path(target)
    if path.is_file() and path.suffix.lower() == ".csv":
        return from_manifest(path)
    if path.is_dir():
        return from_directory(path)
    raise BatchError(f"{target}: give a directory, a .csv manifest or s3://bucket/prefix")


# Running ----------------------------------------------------------------------------------


def run_batch(
    items: Sequence[BatchItem],
    process: Callable[[BatchItem], Outcome],
    concurrency: int,
    on_done: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """``process`` every item, at most ``concurrency`` at once; outcomes in the items' order.
    An exception from ``process`` fails its item, not the batch."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")

    def guarded(item: BatchItem) -> Outcome:
        try:
            outcome = process(item)
        except Exception as exc:
            outcome = Outcome(item.origin, "failed", f"{type(exc).__name__}: {exc}")
        on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="vip-batch") as pool:
        return list(pool.map(guarded, items))


class Uploader:
    """Validates, publishes and (with ``wait``) follows one item; the same content listed
    twice is uploaded once."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        jobs: JobsClient | None,
        timeout_s: float,
        s3_client: Any = None,
    ) -> None:
        self._settings, self._publisher, self._jobs = settings, publisher, jobs
        self._timeout_s, self._s3 = timeout_s, s3_client
        self._seen: dict[str, str] = {}
        self._lock = threading.Lock()

    def __call__(self, item: BatchItem) -> Outcome:
        try:
            providers = item.providers or ("local",)
            event = build_event(
                item.source, self._settings, providers, item.chunk_seconds, self._s3
            )
        except UploadError as exc:
            return Outcome(item.origin, "failed", str(exc))
        with self._lock:
            first = self._seen.setdefault(event.video_id, item.origin)
        if first != item.origin:
            return Outcome(item.origin, "skipped", f"same content as {first}", event.video_id)
        try:
            self._publisher.publish(event)
        except UploadError as exc:
            return Outcome(item.origin, "failed", str(exc), event.video_id)
        if self._jobs is None:
            return Outcome(item.origin, "ok", "queued", event.video_id)
        try:
            job = follow_job(
                self._jobs, event.video_id, lambda job: None, event.event_id, self._timeout_s
            )
        except StatusError as exc:
            return Outcome(item.origin, "failed", str(exc), event.video_id)
        if job["status"] == "failed":
            reason = f"{job['failed_stage']} failed: {job['error']}"
            return Outcome(item.origin, "failed", reason, event.video_id)
        chunks = job["chunks"]["graphed"]
        reason = f"completed, {chunks} chunk{'' if chunks == 1 else 's'}"
        return Outcome(item.origin, "ok", reason, event.video_id)


def summary_table(outcomes: Iterable[Outcome]) -> Table:
    rows = list(outcomes)
    counts = {r: sum(1 for o in rows if o.result == r) for r in ("ok", "failed", "skipped")}
    title = ", ".join(f"{n} {result}" for result, n in counts.items())
    table = Table(title=f"batch: {title}")
    for column in ("result", "source", "video", "reason"):
        table.add_column(column, overflow="fold")
    for outcome in rows:
        table.add_row(outcome.result, outcome.origin, outcome.video_id or "-", outcome.reason)
    return table


def batch_command(
    settings: Settings,
    target: str,
    concurrency: int = 4,
    wait: bool = False,
    providers: tuple[str, ...] | None = None,
    chunk_seconds: float | None = None,
    timeout_s: float = 1800.0,
    s3_client: Any = None,
) -> int:
    """Exit code 0 when nothing failed, 1 otherwise. A manifest row's providers and chunk
    length win over ``providers`` and ``chunk_seconds``."""
    items, listed = collect(target, s3_client)
    items = [
        replace(
            item,
            providers=item.providers or providers or (),
            chunk_seconds=item.chunk_seconds or chunk_seconds,
        )
        for item in items
    ]
    console = Console(stderr=True)
    jobs = JobsClient(settings) if wait else None
    uploader = Uploader(settings, Publisher(settings), jobs, timeout_s, s3_client)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    )
    task = progress.add_task("uploading" + (" and waiting" if wait else ""), total=len(items))
    try:
        with progress:
            done = run_batch(items, uploader, concurrency, lambda _: progress.advance(task))
    finally:
        if jobs is not None:
            jobs.close()
    outcomes = [*done, *listed]
    Console().print(summary_table(outcomes))
    return 1 if any(o.result == "failed" for o in outcomes) else 0
