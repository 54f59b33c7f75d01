"""A bounded TTL + LRU cache of read responses, each tagged with the videos it depends on.

An entry is either scoped to given videos (``videos=["v1", "v2"]``) or global (``videos=None``):
an answer over all videos can change when any video changes, so every change drops every
global entry. The cache is kept fresh by the change feed (query_service/events), never by
polling the stores:

* ``invalidate_video(v)`` drops what depends on ``v`` (and every global entry);
* ``hold(v)`` ... ``release(v)`` brackets a change that is on its way into the stores (seen on
  Kafka, not yet written by the graph sink): meanwhile nothing that depends on ``v`` is stored,
  so a read cannot cache the view from before the write;
* ``put`` refuses a value whose read started before the last change of what it depends on (the
  read may have seen the old data);
* a disabled cache (no change feed yet, or the feed died) answers every ``get`` with a miss.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from cachetools import TTLCache
from pydantic import BaseModel

from query_service.answer.schemas import AnswerRequest, AnswerResponse

T = TypeVar("T")
EVERYTHING = "*"  # a change that may touch any entry (video ids never contain * or ?)
_ANY_VIDEO = "?"  # when any video last changed: what global entries watch
# A read that took longer than this is not stored: the change log only reaches back this far.
MAX_READ_S = 120.0


@dataclass(frozen=True)
class _Entry:
    value: object
    videos: frozenset[str] | None  # None: global


class CacheStats(BaseModel):
    enabled: bool
    entries: int
    max_entries: int
    ttl_s: float
    hits: int
    misses: int
    stored: int
    refused: int
    dropped: int
    held: list[str]


class TaggedCache:
    """Thread-safe: requests read and fill it on the event loop, the consumer thread drops."""

    def __init__(
        self, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self._entries: TTLCache[str, _Entry] = TTLCache(max_entries, ttl_s, timer=clock)
        self._clock = clock
        self._lock = threading.Lock()
        self._enabled = False
        self._held: Counter[str] = Counter()
        # video id, EVERYTHING or _ANY_VIDEO -> when it last changed, oldest first; kept for
        # MAX_READ_S (an older read is refused anyway)
        self._changed: OrderedDict[str, float] = OrderedDict()
        self._tally: Counter[str] = Counter()

    # Reads -----------------------------------------------------------------------------------
    def begin(self) -> float:
        """Call before reading the stores; hand the result to :meth:`put`."""
        return self._clock()

    def get(self, key: str, kind: type[T]) -> T | None:
        with self._lock:
            entry = self._entries.get(key) if self._enabled else None
            if entry is not None and isinstance(entry.value, kind):
                self._tally["hits"] += 1
                return entry.value
            self._tally["misses"] += 1
            return None

    def put(
        self, key: str, value: object, videos: Collection[str] | None, read_started: float
    ) -> bool:
        """Store ``value`` unless something it depends on changed since ``read_started``
        (or is changing now). ``videos=None`` (or empty) makes a global entry."""
        scope = frozenset(videos) if videos else None
        with self._lock:
            too_slow = self._clock() - read_started > MAX_READ_S
            if not self._enabled or too_slow or self._stale(scope, read_started):
                self._tally["refused"] += 1
                return False
            self._entries[key] = _Entry(value, scope)
            self._tally["stored"] += 1
            return True

    def _stale(self, scope: frozenset[str] | None, read_started: float) -> bool:
        if self._held[EVERYTHING] or (scope is None and sum(self._held.values())):
            return True
        if scope is not None and any(self._held[video] for video in scope):
            return True
        watched = (_ANY_VIDEO,) if scope is None else (EVERYTHING, *scope)
        return any(self._changed.get(name, -float("inf")) >= read_started for name in watched)

    # Changes ---------------------------------------------------------------------------------
    def invalidate_video(self, video_id: str) -> int:
        """Drop every entry that depends on ``video_id`` and every global entry."""
        with self._lock:
            self._mark_changed(video_id)
            return self._drop(lambda entry: entry.videos is None or video_id in entry.videos)

    def invalidate_all(self) -> int:
        with self._lock:
            self._mark_changed(EVERYTHING)
            return self._drop(lambda entry: True)

    def invalidate(self, scope: str) -> int:
        """``invalidate_video(scope)``, or ``invalidate_all()`` for EVERYTHING."""
        return self.invalidate_all() if scope == EVERYTHING else self.invalidate_video(scope)

    def hold(self, scope: str) -> None:
        """A change to ``scope`` (a video id, or EVERYTHING) is on its way into the stores:
        drop what depends on it, and store nothing that does until :meth:`release`."""
        with self._lock:
            self._held[scope] += 1
        self.invalidate(scope)

    def release(self, scope: str) -> None:
        """The held change is in the stores now."""
        with self._lock:
            self._held[scope] -= 1
            if self._held[scope] <= 0:
                del self._held[scope]
        self.invalidate(scope)

    def _mark_changed(self, name: str) -> None:
        now = self._clock()
        for changed in (name, _ANY_VIDEO):
            self._changed.pop(changed, None)
            self._changed[changed] = now
        while self._changed and next(iter(self._changed.values())) < now - MAX_READ_S:
            self._changed.popitem(last=False)
        self._tally["changes"] += 1

    def _drop(self, matches: Callable[[_Entry], bool]) -> int:
        with self._entries.timer:  # one instant: nothing expires halfway through
            doomed = [key for key, entry in self._entries.items() if matches(entry)]
            for key in doomed:
                self._entries.pop(key, None)
        self._tally["dropped"] += len(doomed)
        return len(doomed)

    # Life cycle ------------------------------------------------------------------------------
    def enable(self) -> None:
        """The change feed is live: from now on every change reaches the cache."""
        with self._lock:
            self._enabled = True

    def disable(self) -> None:
        """The change feed stopped: cached values can no longer be trusted."""
        with self._lock:
            self._enabled = False
            self._entries.clear()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def stats(self) -> CacheStats:
        with self._lock:
            self._entries.expire()
            return CacheStats(
                enabled=self._enabled,
                entries=len(self._entries),
                max_entries=int(self._entries.maxsize),
                ttl_s=float(self._entries.ttl),
                hits=self._tally["hits"],
                misses=self._tally["misses"],
                stored=self._tally["stored"],
                refused=self._tally["refused"],
                dropped=self._tally["dropped"],
                held=sorted(self._held),
            )


class Answers(Protocol):
    def answer(self, request: AnswerRequest) -> AnswerResponse: ...


class CachedAnswers:
    """``POST /v1/answer`` through the cache: a drop-in for AnswerService. Keyed by the
    request (``stream`` aside: it changes the transport, not the answer), scoped to
    ``filters.video_ids`` or global. Every other attribute is the service's own, uncached."""

    def __init__(self, service: Answers, cache: TaggedCache) -> None:
        self._service = service
        self._cache = cache

    @staticmethod
    def key(request: AnswerRequest) -> str:
        return "answer:" + request.model_dump_json(exclude={"stream"})

    def answer(self, request: AnswerRequest) -> AnswerResponse:
        key = self.key(request)
        cached = self._cache.get(key, AnswerResponse)
        if cached is not None:
            return cached
        started = self._cache.begin()
        result = self._service.answer(request)
        self._cache.put(key, result, request.filters.video_ids, started)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)
