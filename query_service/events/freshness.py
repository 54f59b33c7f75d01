"""What the change feed does with what it reads: count it, and keep the cache honest.

* an ``embeddings`` event: the moment is in Milvus already, so what depends on its video is
  dropped at once;
* a ``graph.updates`` delta: Neo4j has it only once the graph sink has written it, so its
  videos are *held* (dropped, and nothing about them is cached) until the sink's committed
  offset passes the delta; then they are dropped once more and caching resumes;
* at start, everything is held until the sink has written what was on graph.updates already.

Called from the consumer thread only.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from query_service.cache import EVERYTHING, TaggedCache
from query_service.events.activity import Activity
from query_service.events.changes import VideoChange
from query_service.events.pending import PendingWrites


class Freshness:
    def __init__(self, cache: TaggedCache, activity: Activity) -> None:
        self.cache = cache
        self.activity = activity
        self._pending = PendingWrites()
        self._lock = threading.Lock()  # health() reads the pending scopes from other threads

    def started(self, graph_ends: Mapping[int, int]) -> None:
        """The feed reads from ``graph_ends`` (partition -> end offset of graph.updates) on."""
        with self._lock:
            if self._pending.add(EVERYTHING, graph_ends):
                self.cache.hold(EVERYTHING)
        self.cache.enable()

    def apply(self, changes: Sequence[VideoChange]) -> None:
        self.activity.record(changes)
        with self._lock:
            for change in changes:
                scopes = [EVERYTHING] if change.everywhere else sorted(change.videos)
                for scope in scopes:
                    if not change.pending_write:
                        self.cache.invalidate(scope)
                    elif self._pending.add(scope, {change.partition: change.offset + 1}):
                        self.cache.hold(scope)

    def reject(self, topic: str) -> None:
        self.activity.reject(topic)

    @property
    def waiting_for_sink(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def settle(self, committed: Mapping[int, int]) -> list[str]:
        """The graph sink has committed ``committed`` (partition -> offset) on graph.updates:
        release what it has written. Returns the released scopes."""
        with self._lock:
            done = self._pending.settled(committed)
            for scope in done:
                self.cache.release(scope)
            return done

    def pending(self) -> list[str]:
        with self._lock:
            return self._pending.scopes()

    def stopped(self) -> None:
        """The feed is gone: nothing cached can be trusted any more."""
        self.cache.disable()
        with self._lock:
            for scope in self._pending.scopes():
                self.cache.release(scope)
            self._pending = PendingWrites()
