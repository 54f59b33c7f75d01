"""Counters kept fresh by the change feed: what this API instance has seen happen, per video
and in total, since it started (it reads the topics from their end, see docs/query_events.md)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cachetools import LRUCache
from pydantic import BaseModel, Field

from query_service.events.changes import VideoChange
from streams import topics

MAX_VIDEOS = 10_000


class VideoActivity(BaseModel):
    """Events about one video seen by this instance since ``since``."""

    moments_indexed: int = Field(description="Distinct moments whose vectors were indexed")
    embedding_events: int = Field(description="MomentEmbedded events (redeliveries included)")
    graph_deltas: int = Field(description="GraphUpdated deltas about the video")
    graph_nodes: int
    graph_edges: int
    last_event_at: datetime = Field(description="When the latest event occurred (its own time)")
    last_seen_at: datetime = Field(description="When this instance received it")


class ActivityTotals(BaseModel):
    since: datetime
    events: dict[str, int] = Field(description="Valid events read, per topic")
    rejected: dict[str, int] = Field(description="Malformed or unknown-version events, skipped")
    moments_indexed: int
    graph_deltas: int
    graph_nodes: int
    graph_edges: int
    videos: int = Field(description="Videos with activity (the most recent are kept)")
    last_event_at: datetime | None


@dataclass
class _Tally:
    last_event_at: datetime
    last_seen_at: datetime
    sequence: int  # orders videos by their latest event
    moments: set[str] = field(default_factory=set)
    embedding_events: int = 0
    graph_deltas: int = 0
    graph_nodes: int = 0
    graph_edges: int = 0

    def public(self) -> VideoActivity:
        return VideoActivity(
            moments_indexed=len(self.moments),
            embedding_events=self.embedding_events,
            graph_deltas=self.graph_deltas,
            graph_nodes=self.graph_nodes,
            graph_edges=self.graph_edges,
            last_event_at=self.last_event_at,
            last_seen_at=self.last_seen_at,
        )


class Activity:
    """Thread-safe: the consumer thread records, requests read."""

    def __init__(self, max_videos: int = MAX_VIDEOS) -> None:
        self.since = datetime.now(UTC)
        self._videos: LRUCache[str, _Tally] = LRUCache(max_videos)
        self._events: Counter[str] = Counter()
        self._rejected: Counter[str] = Counter()
        self._totals: Counter[str] = Counter()
        self._last_event_at: datetime | None = None
        self._sequence = 0
        self._lock = threading.Lock()

    def record(self, changes: Iterable[VideoChange]) -> None:
        seen_at = datetime.now(UTC)
        with self._lock:
            for change in changes:
                tally = self._videos.get(change.video_id)
                self._sequence += 1
                if tally is None:
                    tally = _Tally(change.occurred_at, seen_at, self._sequence)
                    self._videos[change.video_id] = tally
                self._events[change.topic] += 1
                if change.topic == topics.EMBEDDINGS and change.moment_id is not None:
                    before = len(tally.moments)
                    tally.moments.add(change.moment_id)
                    tally.embedding_events += 1
                    self._totals["moments_indexed"] += len(tally.moments) - before
                elif change.topic == topics.GRAPH_UPDATES:
                    tally.graph_deltas += 1
                    tally.graph_nodes += change.nodes
                    tally.graph_edges += change.edges
                    self._totals["graph_deltas"] += 1
                    self._totals["graph_nodes"] += change.nodes
                    self._totals["graph_edges"] += change.edges
                tally.last_event_at = max(tally.last_event_at, change.occurred_at)
                tally.last_seen_at = seen_at
                tally.sequence = self._sequence
                self._last_event_at = seen_at

    def reject(self, topic: str) -> None:
        with self._lock:
            self._rejected[topic] += 1

    def video(self, video_id: str) -> VideoActivity | None:
        with self._lock:
            tally = self._videos.get(video_id)
            return tally.public() if tally is not None else None

    def recent(self, limit: int) -> list[tuple[str, VideoActivity]]:
        """The ``limit`` most recently active videos, most recent first."""
        with self._lock:
            tallies = [(vid, self._videos[vid]) for vid in self._videos]
        tallies.sort(key=lambda item: item[1].sequence, reverse=True)
        return [(vid, tally.public()) for vid, tally in tallies[:limit]]

    def totals(self) -> ActivityTotals:
        with self._lock:
            return ActivityTotals(
                since=self.since,
                events=dict(self._events),
                rejected=dict(self._rejected),
                moments_indexed=self._totals["moments_indexed"],
                graph_deltas=self._totals["graph_deltas"],
                graph_nodes=self._totals["graph_nodes"],
                graph_edges=self._totals["graph_edges"],
                videos=len(self._videos),
                last_event_at=self._last_event_at,
            )

    def rejected(self) -> int:
        with self._lock:
            return sum(self._rejected.values())
