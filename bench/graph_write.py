"""Neo4j write rate of the graph sink: batched UNWIND … MERGE vs one MERGE per row.

    make up && uv run python bench/ingest_realtime.py     # any ingest, to fill `analyses`
    uv run python bench/graph_write.py [--deltas 200] [--repeat 3]

The deltas are the real knowledge-graph deltas of the real analyses on the running stack's
`analyses` topic (the pipeline's own output for the shared media). They are written to a
second, empty Neo4j started for the bench on a free loopback port (the stack's graph is never
touched), alternately by the sink's batched writer (one UNWIND … MERGE per label or
relationship shape, one transaction per delta) and row at a time (one MERGE statement per
node or relationship, also one transaction per delta), the graph cleared before each pass.
Rate = (nodes + relationships) / second; latency is per delta.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from neo4j import ManagedTransaction

from agents.graph.knowledge import knowledge_delta
from agents.shared.graph_store import Neo4jGraph
from streams import topics
from streams.records import ChunkAnalysed, GraphUpdated, NodeDelta
from tests.integration.services import started
from tests.ports import free_port
from vip.settings import Settings, load_settings
from vip.stack.neo4j import Neo4jService


def real_analyses(settings: Settings, limit: int) -> list[ChunkAnalysed]:
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka_bootstrap, "group.id": "bench-graph-write"}
    )
    found: list[ChunkAnalysed] = []
    try:
        topic = topics.ANALYSES
        for partition in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 10)
            consumer.assign([TopicPartition(topic, partition, max(low, high - limit))])
            for _ in range(min(limit, high - low)):
                message = consumer.poll(10)
                if message is None or message.error():
                    break
                found.append(ChunkAnalysed.model_validate_json(message.value()))
    finally:
        consumer.close()
    return found[-limit:]


def delta(analysis: ChunkAnalysed) -> GraphUpdated:
    chunk = f"{analysis.video_id}:{analysis.span.chunk_index:05d}"
    nodes, edges = knowledge_delta(analysis, chunk)
    video = NodeDelta(label="Video", key=analysis.video_id, props={"source": analysis.span.source})
    chunk_node = NodeDelta(label="Chunk", key=chunk, props={"start": analysis.span.start})
    return GraphUpdated(video_id=analysis.video_id, nodes=(video, chunk_node, *nodes), edges=edges)


def row_at_a_time(graph: Neo4jGraph, update: GraphUpdated) -> None:
    def write(tx: ManagedTransaction) -> None:
        for node in update.nodes:
            tx.run(
                f"MERGE (n:{node.label} {{key: $key}}) SET n += $props",
                key=node.key,
                props=node.props,
            ).consume()
        for edge in update.edges:
            identity = " {key: $ekey}" if edge.key is not None else ""
            tx.run(
                f"MERGE (a:{edge.start_label} {{key: $start}}) "
                f"MERGE (b:{edge.end_label} {{key: $end}}) "
                f"MERGE (a)-[r:{edge.type}{identity}]->(b) SET r += $props",
                start=edge.start_key,
                end=edge.end_key,
                ekey=edge.key,
                props=edge.props,
            ).consume()

    with graph.driver.session() as session:
        session.execute_write(write)


def timed(graph: Neo4jGraph, deltas: list[GraphUpdated], batched: bool) -> list[float]:
    graph.clear()
    spent = []
    for update in deltas:
        began = time.perf_counter()
        if batched:
            graph.apply(update)
        else:
            row_at_a_time(graph, update)
        spent.append(time.perf_counter() - began)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deltas", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    analyses = real_analyses(load_settings(), args.deltas)
    if not analyses:
        raise SystemExit("no analyses on the stack's topic: ingest some media first")
    deltas = [delta(a) for a in analyses]
    items = sum(len(d.nodes) + len(d.edges) for d in deltas)
    with tempfile.TemporaryDirectory(prefix="vip-graph-bench-") as tmp:
        settings = Settings(state_dir=Path(tmp), neo4j_port=free_port())
        server = started(Neo4jService(settings), Path(tmp) / "neo4j.log")
        graph = Neo4jGraph(settings.neo4j_uri)
        try:
            graph.ensure_schema()
            timed(graph, deltas[:10], True)  # warm-up: query plans, page cache
            timed(graph, deltas[:10], False)
            runs: dict[bool, list[list[float]]] = {True: [], False: []}
            for _ in range(args.repeat):
                for batched in (True, False):
                    runs[batched].append(timed(graph, deltas, batched))
        finally:
            graph.close()
            server.stop()
    print(f"{len(deltas)} real deltas, {items} nodes + relationships; {args.repeat} passes each")
    rates = {}
    for batched, passes in runs.items():
        totals = [sum(p) for p in passes]
        rate = items / statistics.median(totals)
        rates[batched] = rate
        latencies = sorted(t for p in passes for t in p)
        p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
        print(
            f"{'batched UNWIND' if batched else 'row at a time':<15} {rate:9.0f} items/s   "
            f"per delta p50 {statistics.median(latencies) * 1000:6.1f} ms  "
            f"p99 {p99 * 1000:6.1f} ms"
        )
    print(f"batched / row-at-a-time: {rates[True] / rates[False]:.2f}x")


if __name__ == "__main__":
    main()
