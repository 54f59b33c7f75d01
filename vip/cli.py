"""The `vip` command line: stack management, uploads, workers, the API and the demo."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

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


@app.command()
def worker(
    stage: Annotated[list[str] | None, typer.Option(help="Stages to run (default: all)")] = None,
) -> None:
    """Run the Faust worker with the ingestion agents."""
    from agents.worker import STAGES, build_worker_app

    unknown = set(stage or []) - set(STAGES)
    if unknown:
        _fail(f"unknown stage(s) {sorted(unknown)}; known: {', '.join(STAGES)}")
    from faust import Worker

    faust_app = build_worker_app(_settings(), stage)
    # Worker installs SIGTERM/SIGINT handlers: in-flight events finish and offsets are committed.
    Worker(faust_app, loglevel="INFO").execute_from_commandline()


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


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app()
