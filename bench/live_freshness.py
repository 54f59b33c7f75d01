"""Freshness of live feeds on the running local stack: seconds from a segment's end to its
moment being searchable, and to the alert a rule raises about it.

    uv run vip stack up
    uv run python bench/live_freshness.py [--video PATH] [--label bicycle] \
        [--segment-seconds 3] [--runs 3]

Each run plays the video as a live feed at real-time pace under a fresh feed id
(``vip.live.publisher.run_feed``, as `vip live` does), with a label rule scoped to that feed
published straight to ``alerts.rules`` (what ``POST /v1/alerts`` publishes). A segment's end
is the wall-clock moment its record was on ``live.segments`` (``on_segment``): at real-time
pace that is when the feed reached the segment's end. Then, per segment:

* searchable: the first poll of Milvus (every 0.1 s, by moment id) that finds its moment;
* alert: the rule's ``AlertRaised`` read off the ``alerts`` topic.

The baseline, in the same process, is the segment's own duration: ratio = latency / segment
duration, so below 1.0 the pipeline turns a segment into a moment faster than the feed
records the next one (it keeps up), and the goal, latency <= segment seconds + 2 s, reads as
a ratio of about 1.4-1.7 for 3-5 s segments. Percentiles are nearest-rank.
"""

from __future__ import annotations

import argparse
import itertools
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from pymilvus import MilvusClient

from agents.alerts.rules import AlertRule, LabelCondition, encode_rule
from query_service.alerts.publisher import RulePublisher
from streams import topics
from streams.records import AlertRaised, ChunkAnalysed, ChunkCut, LiveSegmentRecorded, decode
from vip.live.publisher import FeedSpec, run_feed
from vip.settings import Settings, load_settings

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media" / "video"
SEARCH_POLL_S = 0.1
SETTLE_DEADLINE_S = 90.0
ALERT_GRACE_S = 5.0


@dataclass
class Run:
    feed_id: str
    segments: list[LiveSegmentRecorded] = field(default_factory=list)
    ended_at: dict[int, float] = field(default_factory=dict)
    searchable_at: dict[str, float] = field(default_factory=dict)
    alerted_at: dict[str, float] = field(default_factory=dict)
    alerts: dict[str, AlertRaised] = field(default_factory=dict)
    # topic -> moment id -> when the stage made the record (its occurred_at)
    stage_at: dict[str, dict[str, datetime]] = field(default_factory=dict)

    def moment_id(self, segment: LiveSegmentRecorded) -> str:
        return f"{self.feed_id}:{segment.segment_index:05d}"

    def searchable(self) -> bool:
        ids = [self.moment_id(s) for s in self.segments]
        return bool(ids) and all(i in self.searchable_at for i in ids)

    def alerted_last(self) -> bool:
        return bool(self.segments) and self.moment_id(self.segments[-1]) in self.alerted_at


class Tail:
    """Reads ``chunks``, ``analyses`` and ``alerts`` from their current ends on a thread: the
    rule's alerts (timed as they arrive), and when each stage made the feed's records."""

    TOPICS = (topics.CHUNKS, topics.ANALYSES, topics.ALERTS)

    def __init__(self, settings: Settings, run: Run, rule_id: str) -> None:
        self._run, self._rule_id = run, rule_id
        self._consumer = Consumer(
            {"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"b-{uuid.uuid4().hex}",
             "enable.auto.commit": False, "fetch.wait.max.ms": 50}
        )  # fmt: skip
        starts = []
        for topic in self.TOPICS:
            found = self._consumer.list_topics(topic, timeout=10).topics[topic]
            starts += [TopicPartition(topic, p, self._end(topic, p)) for p in found.partitions]
        self._consumer.assign(starts)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _end(self, topic: str, partition: int) -> int:
        tp = TopicPartition(topic, partition)
        return int(self._consumer.get_watermark_offsets(tp, timeout=10)[1])

    def _read(self) -> None:
        while not self._stop.is_set():
            message = self._consumer.poll(0.2)
            if message is None or message.error():
                continue
            if message.key() != self._run.feed_id.encode():
                continue
            if message.topic() != topics.ALERTS:
                kind = ChunkCut if message.topic() == topics.CHUNKS else ChunkAnalysed
                record = decode(message.value(), kind)
                moment = f"{record.video_id}:{record.span.chunk_index:05d}"
                self._run.stage_at.setdefault(message.topic(), {})[moment] = record.occurred_at
                continue
            alert = decode(message.value(), AlertRaised)
            if alert.rule_id == self._rule_id:
                self._run.alerted_at.setdefault(alert.moment_id, time.time())
                self._run.alerts.setdefault(alert.moment_id, alert)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._consumer.close()


def play(settings: Settings, video: Path, label: str, segment_s: float) -> Run:
    run = Run(f"bench-fresh-{uuid.uuid4().hex[:10]}")
    rule = AlertRule(
        rule_id=f"r{uuid.uuid4().hex[:24]}",
        name=f"bench {label}",
        feed_id=run.feed_id,
        condition=LabelCondition(label=label),
    )
    publisher = RulePublisher(settings.kafka_bootstrap)
    publisher.publish(rule.rule_id, encode_rule(rule))
    tail = Tail(settings, run, rule.rule_id)
    moments = MilvusClient(uri=settings.milvus_uri, timeout=10)

    def published(record: LiveSegmentRecorded) -> None:
        run.ended_at.setdefault(record.segment_index, time.time())
        run.segments.append(record)

    stop = threading.Event()
    feed = threading.Thread(
        target=run_feed,
        args=(settings, FeedSpec(run.feed_id, str(video), segment_s), stop),
        kwargs={"on_segment": published},
        daemon=True,
    )
    try:
        feed.start()
        give_up = None
        while give_up is None or (
            time.monotonic() < give_up and not (run.searchable() and run.alerted_last())
        ):
            if give_up is not None and run.searchable():
                # Alerts follow embedding within milliseconds: a moment searchable for a few
                # seconds without one did not show the label.
                give_up = min(give_up, time.monotonic() + ALERT_GRACE_S)
            waiting = [run.moment_id(s) for s in run.segments]
            waiting = [m for m in waiting if m not in run.searchable_at]
            if waiting:  # by primary key: a filter on video_id scans the whole collection
                rows = moments.get(settings.milvus_collection, ids=waiting, output_fields=["id"])
                for row in rows:
                    run.searchable_at.setdefault(str(row["id"]), time.time())
            if give_up is None and not feed.is_alive():
                give_up = time.monotonic() + SETTLE_DEADLINE_S
            time.sleep(SEARCH_POLL_S)
    finally:
        stop.set()
        feed.join(10)
        tail.close()
        moments.close()
        publisher.publish(rule.rule_id, None)
        publisher.close()
    return run


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def report(runs: list[Run], segment_s: float) -> None:
    print(f"{'feed':<28} {'seg':>3} {'span s':>13} {'dur s':>6} {'search s':>9} "
          f"{'alert s':>8} {'embed→alert s':>14}")  # fmt: skip
    searchable: list[float] = []
    alerted: list[float] = []
    # Seconds each hop took, from the records' own times: segment published → chunk cut
    # (live stage) → analysed → embedded (MomentEmbedded, the alert's moment_at) → alert.
    hops: dict[str, list[float]] = {"live": [], "analysis": [], "embedding": [], "alerts": []}
    ratios: list[float] = []
    missing = 0
    for run in runs:
        for segment in run.segments:
            moment = run.moment_id(segment)
            ended = run.ended_at[segment.segment_index]
            duration = segment.end - segment.start
            search = run.searchable_at.get(moment, math.nan) - ended
            alert = run.alerted_at.get(moment, math.nan) - ended
            raised = run.alerts.get(moment)
            inner = (raised.occurred_at - raised.moment_at).total_seconds() if raised else math.nan
            print(
                f"{run.feed_id:<28} {segment.segment_index:>3} "
                f"{f'[{segment.start:.2f},{segment.end:.2f})':>13} {duration:>6.2f} "
                f"{search:>9.2f} {alert:>8.2f} {inner:>14.3f}"
            )
            if math.isnan(search):
                missing += 1
                continue
            searchable.append(search)
            ratios.append(search / duration)
            if not math.isnan(alert):
                alerted.append(alert)
            cut = run.stage_at.get(topics.CHUNKS, {}).get(moment)
            analysed = run.stage_at.get(topics.ANALYSES, {}).get(moment)
            if raised and cut and analysed:
                marks = [segment.occurred_at, cut, analysed, raised.moment_at, raised.occurred_at]
                for name, (a, b) in zip(hops, itertools.pairwise(marks), strict=True):
                    hops[name].append((b - a).total_seconds())
    goal = segment_s + 2.0
    print(
        f"\nsegments: {len(searchable)} searchable ({missing} never were), "
        f"{len(alerted)} alerted (the others did not show the label)"
    )
    if not searchable or not alerted:
        return
    for name, values in (
        ("segment end → searchable", searchable),
        ("segment end → alert", alerted),
    ):
        print(
            f"{name:<26} p50 {percentile(values, 50):5.2f} s   p95 {percentile(values, 95):5.2f} s"
            f"   max {max(values):5.2f} s   goal ≤ {goal:.1f} s: "
            f"{'met' if percentile(values, 95) <= goal else 'missed'} at p95"
        )
    if hops["live"]:
        print(
            "hops, p50 / p95 s:  "
            + ",  ".join(
                f"{name} {percentile(v, 50):.2f} / {percentile(v, 95):.2f}"
                for name, v in hops.items()
            )
        )
    print(
        f"{'searchable / segment dur':<26} p50 {percentile(ratios, 50):5.2f}     "
        f"p95 {percentile(ratios, 95):5.2f}   (< 1.0: keeps up with the feed)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--video", type=Path, default=MEDIA / "bikes.mp4")
    parser.add_argument(
        "--label", default="person", help="the rule's label: in every segment of bikes.mp4"
    )
    parser.add_argument("--segment-seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = load_settings()
    runs = []
    for n in range(args.runs):
        print(
            f"run {n + 1}/{args.runs}: {args.video.name} as a live feed, {args.segment_seconds} s"
        )
        runs.append(play(settings, args.video, args.label, args.segment_seconds))
    report(runs, args.segment_seconds)


if __name__ == "__main__":
    main()
