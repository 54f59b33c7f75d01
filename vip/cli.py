"""The `vip` command line: stack management, uploads, workers, the API and the demo."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from vip import lag_cli, worker_cli
from vip.feeds import cli as feeds_cli
from vip.live import cli as live_cli
from vip.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Video Intelligence Platform")
stack_app = typer.Typer(
    no_args_is_help=True,
    help="Run the local stack (Kafka, Neo4j, Milvus, Triton, worker, API) on loopback.",
)
app.add_typer(stack_app, name="stack")
graph_app = typer.Typer(
    no_args_is_help=True, help="The knowledge graph: a materialised view of graph.updates"
)
app.add_typer(graph_app, name="graph")
app.command("lag")(lag_cli.lag)
app.command("live")(live_cli.live)
app.add_typer(feeds_cli.app, name="feeds")


def _settings() -> Settings:
    return load_settings()


def _fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


ServiceNames = Annotated[list[str] | None, typer.Argument(help="Services (default: all)")]


@stack_app.command("up")
def stack_up(names: ServiceNames = None) -> None:
    """Start the stack (idempotent); returns when every service answers."""
    from vip.stack import stack
    from vip.stack.errors import StackError

    started = time.monotonic()
    try:
        stack.up(_settings(), names)
    except (StackError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"stack up in {time.monotonic() - started:.1f}s")


@stack_app.command("bootstrap")
def stack_bootstrap() -> None:
    """Create topics, the Milvus collection and Neo4j constraints on running servers."""
    from vip.stack import stack

    stack.bootstrap(_settings())
    typer.echo("bootstrapped")


@stack_app.command("down")
def stack_down(names: ServiceNames = None) -> None:
    """Stop what `vip stack up` started (and nothing else)."""
    from vip.stack import stack

    stopped = stack.manager(_settings()).down(names)
    typer.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@stack_app.command("status")
def stack_status(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each service's version, port, pid, memory and health."""
    from vip.stack import stack

    rows = stack.manager(_settings()).status()
    if as_json:
        typer.echo(json.dumps([row.__dict__ for row in rows], indent=2))
    else:
        typer.echo(f"{'service':<8} {'health':<8} {'port':>6} {'pid':>8} {'rss MB':>8}  version")
        for row in rows:
            health = "ok" if row.healthy else ("down" if row.pid is None else "starting")
            rss = f"{row.rss_mb:.0f}" if row.rss_mb is not None else "-"
            port = row.port or "-"
            typer.echo(
                f"{row.name:<8} {health:<8} {port:>6} {row.pid or '-':>8} {rss:>8}  {row.version}"
            )
    if not all(row.healthy for row in rows):
        raise typer.Exit(3)


@stack_app.command("logs")
def stack_logs(
    name: Annotated[str, typer.Argument(help="Service name")],
    lines: Annotated[int, typer.Option("-n", "--lines")] = 50,
    follow: Annotated[bool, typer.Option("-f", "--follow")] = False,
) -> None:
    """Print the tail of a service's log."""
    from vip.stack import stack
    from vip.stack.manager import tail

    path = stack.manager(_settings()).log_path(name)
    if not path.exists():
        _fail(f"no log for {name!r} at {path}")
    typer.echo(tail(path, lines))
    if follow:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            while True:
                chunk = handle.read()
                if chunk:
                    sys.stdout.write(chunk.decode("utf-8", errors="replace"))
                    sys.stdout.flush()
                else:
                    time.sleep(0.5)


@app.command()
def upload(
    source: Annotated[str, typer.Argument(help="A local video path or s3://bucket/key")],
    provider: Annotated[str, typer.Option(help="Comma-separated providers")] = "local",
    chunk_seconds: Annotated[float | None, typer.Option(min=0.5)] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the job to its end; exit 1 if it failed")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds --wait waits at most")] = 1800.0,
) -> None:
    """Validate a video and publish a VideoUploaded event; prints the video id."""
    from vip.upload import UploadError, build_event, publish

    settings = _settings()
    try:
        event = build_event(
            source, settings, [p.strip() for p in provider.split(",") if p], chunk_seconds
        )
        publish(event, settings)
    except UploadError as exc:
        _fail(str(exc))
    typer.echo(event.video_id)
    if wait:
        from vip.status import StatusError, wait_for_upload

        try:
            code = wait_for_upload(settings, event.video_id, event.event_id, timeout)
        except StatusError as exc:
            _fail(str(exc), 2)
        raise typer.Exit(code)


@app.command()
def status(
    video_id: Annotated[str | None, typer.Argument(help="A video id (default: every job)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of bars")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Live until the job ends (the list: until Ctrl-C)")
    ] = False,
    status_filter: Annotated[
        str | None, typer.Option("--status", help="queued, processing, completed or failed")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds --watch waits at most")] = 1800.0,
) -> None:
    """Jobs from GET /v1/jobs: per-stage progress of one video, or the list of jobs."""
    from vip.status import StatusError, show_status

    try:
        code = show_status(_settings(), video_id, as_json, watch, status_filter, limit, timeout)
    except StatusError as exc:
        _fail(str(exc), 2)
    raise typer.Exit(code)


@app.command()
def delete(
    video_id: Annotated[str, typer.Argument(help="The video id `vip upload` printed")],
    force: Annotated[
        bool, typer.Option("--force", help="Delete even while processing, or if unknown")
    ] = False,
    wait: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the graph sink to apply it")
    ] = 60.0,
) -> None:
    """Delete a video's vectors, graph nodes and blobs (docs/operations.md, "Cleanup")."""
    from vip.deletion import DeletionError, delete_video

    try:
        report = delete_video(_settings(), video_id, force=force, wait_s=wait)
    except DeletionError as exc:
        _fail(str(exc))
    vectors = ", ".join(f"{n} {kind}" for kind, n in report.vectors.items())
    typer.echo(f"deleted {video_id}: vectors {vectors}; {report.blobs} blobs; graph removed")


@app.command()
def cleanup() -> None:
    """Apply blob retention now (Settings.blob_retention_days); the jobs stage does it hourly."""
    from datetime import UTC, datetime

    from agents.shared.blob_retention import sweep
    from agents.wiring import Dependencies

    settings = _settings()
    swept = sweep(
        Dependencies(settings).blobs(), settings.blob_retention_days.items(), datetime.now(UTC)
    )
    for folder, count in swept.items():
        typer.echo(f"{folder}: {count} blobs past retention deleted")


@app.command()
def batch(
    target: Annotated[
        str, typer.Argument(help="A directory, a manifest .csv or s3://bucket/prefix")
    ],
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Uploads at once")] = 4,
    wait: Annotated[
        bool, typer.Option("--wait", help="An upload ends when its job does (bounds the jobs)")
    ] = False,
    provider: Annotated[str | None, typer.Option(help="Comma-separated providers")] = None,
    chunk_seconds: Annotated[float | None, typer.Option(min=0.5)] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each job")] = 1800.0,
) -> None:
    """Upload many videos with a concurrency limit; a summary at the end (exit 1 if any failed)."""
    from vip.batch import BatchError, batch_command

    providers = tuple(p.strip() for p in provider.split(",") if p.strip()) if provider else None
    try:
        code = batch_command(
            _settings(), target, concurrency, wait, providers, chunk_seconds, timeout
        )
    except BatchError as exc:
        _fail(str(exc), 2)
    raise typer.Exit(code)


app.command("worker")(worker_cli.worker)


@app.command()
def api() -> None:
    """Serve the query API (FastAPI) on the configured host and port."""
    import uvicorn

    from query_service.main import create_app

    settings = _settings()
    uvicorn.run(create_app(settings), host=settings.host, port=settings.api_port, log_level="info")


@app.command()
def search(
    query: Annotated[str, typer.Argument()],
    top_k: Annotated[int, typer.Option(min=1, max=100)] = 5,
) -> None:
    """Ask the running query API for the moments that best match a text query."""
    import httpx

    settings = _settings()
    try:
        response = httpx.post(
            f"{settings.api_url}/v1/search", json={"query": query, "top_k": top_k}, timeout=30
        )
    except httpx.HTTPError as exc:
        _fail(f"query service at {settings.api_url} is unreachable: {exc}")
    if response.status_code != 200:
        _fail(f"search failed ({response.status_code}): {response.text}")
    for hit in response.json()["data"]:
        typer.echo(
            f"{hit['score']:.3f}  {hit['start']:7.2f}s - {hit['end']:7.2f}s  "
            f"{hit['video_id']}  {hit['source']}  | {hit['text']}"
        )


@app.command()
def demo(
    video: Annotated[Path, typer.Option(help="Video to ingest")] = Path(
        "../shared/media/video/bikes.mp4"
    ),
    query: Annotated[str, typer.Option()] = "people and cars in a street",
    timeout_s: Annotated[float, typer.Option()] = 300.0,
) -> None:
    """Bring the stack up, ingest one real clip, wait until it is indexed, run a search."""
    from vip.demo import run_demo

    try:
        run_demo(_settings(), video, query, timeout_s)
    except Exception as exc:
        _fail(str(exc))


@graph_app.command("snapshot")
def graph_snapshot(
    neo4j_url: Annotated[str | None, typer.Option(help="Default: the configured Neo4j")] = None,
) -> None:
    """Print the graph's node and relationship counts and its content checksum."""
    from agents.shared.graph_store import Neo4jGraph

    settings = _settings()
    graph = Neo4jGraph(neo4j_url or settings.neo4j_uri, auth=settings.neo4j_auth)
    try:
        shot = graph.snapshot()
    finally:
        graph.close()
    typer.echo(f"nodes {shot.nodes}  relationships {shot.edges}  checksum {shot.checksum}")


@graph_app.command("replay")
def graph_replay(
    neo4j_url: Annotated[str | None, typer.Option(help="Default: the configured Neo4j")] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Delete the whole graph first (a full rebuild)")
    ] = False,
) -> None:
    """Apply every delta on graph.updates, from the first, to Neo4j."""
    from agents.shared.graph_store import Neo4jGraph
    from vip.graph_replay import replay_graph_updates

    settings = _settings()
    graph = Neo4jGraph(neo4j_url or settings.neo4j_uri, auth=settings.neo4j_auth)
    try:
        graph.ensure_schema()
        if clear:
            graph.clear()
        result = replay_graph_updates(settings.kafka_bootstrap, graph)
        shot = graph.snapshot()
    except Exception as exc:
        _fail(f"replay failed: {exc}")
    finally:
        graph.close()
    typer.echo(
        f"applied {result.applied} deltas (skipped {result.skipped}); nodes {shot.nodes}  "
        f"relationships {shot.edges}  checksum {shot.checksum}"
    )


dlq_app = typer.Typer(
    no_args_is_help=True,
    help="Dead letters (<topic>.dlq): list them, and replay them once the cause is fixed.",
)
app.add_typer(dlq_app, name="dlq")
DlqStage = Annotated[
    str | None, typer.Option(help="Only this stage's letters (chunking, analysis, embedding, …)")
]
DlqSince = Annotated[
    str | None, typer.Option(help="Only letters since an ISO time or a duration ago (2h, 3d)")
]
DlqVideo = Annotated[str | None, typer.Option(help="Only this video's letters")]


def _dead_letters(stage: str | None, since: str | None, video: str | None) -> list[Any]:
    from datetime import UTC, datetime

    from vip.dlq import DlqError, parse_since, read_letters, select

    try:
        cutoff = parse_since(since, datetime.now(UTC)) if since else None
        found = read_letters(_settings())
    except (ValueError, DlqError) as exc:
        _fail(str(exc))
    if found.unreadable:
        typer.secho(f"skipped {found.unreadable} unreadable message(s)", err=True)
    return select(found.letters, stage=stage, since=cutoff, video=video)


@dlq_app.command("list")
def dlq_list(
    stage: DlqStage = None,
    since: DlqSince = None,
    video: DlqVideo = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Every dead letter: time, stage, video, tries, original offset, error and reason."""
    from vip.dlq import format_table

    letters = _dead_letters(stage, since, video)
    if as_json:
        typer.echo(json.dumps([letter.as_json() for letter in letters], indent=2))
    else:
        typer.echo(format_table(letters))


@dlq_app.command("replay")
def dlq_replay(
    stage: DlqStage = None,
    since: DlqSince = None,
    video: DlqVideo = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be sent")] = False,
) -> None:
    """Send letters' original events back to their topics (each letter once)."""
    from vip.dlq import DlqError, format_table, replay

    chosen = [letter for letter in _dead_letters(stage, since, video) if not letter.replayed]
    if dry_run:
        typer.echo(format_table(chosen))
        typer.echo(f"would replay {len(chosen)} letter(s)")
        return
    try:
        sent = replay(_settings(), chosen)
    except DlqError as exc:
        _fail(str(exc))
    typer.echo(format_table(sent))
    typer.echo(f"replayed {len(sent)} letter(s)")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app()
