"""Burrow-style consumer status over a sliding window of lag samples (pure: no I/O).

Burrow (LinkedIn's lag checker) judges a consumer by how its committed offsets and lag move
over a window instead of by a lag threshold; see its wiki, "Consumer Lag Evaluation Rules",
and ``core/internal/evaluator/caching.go``. Its rules, in the order it applies them, each
partition's status being the first that holds:

1. the lag is zero now or anywhere in the window: OK;
2. the committed offset went backwards: REWIND (here ERR);
3. no commits for longer than the window: STOP;
4. the committed offset never changes over the window while there is lag: STALL;
5. the offsets advance but the lag never decreases over the window: WARN;
6. otherwise OK.

Burrow reads every commit from ``__consumer_offsets``; we poll, and Faust commits only when an
offset moves, so rule 3's "commits" are read from what polling can see: a commit is an offset
that moved between samples, and a consumer still able to commit is a live group member owning
the partition (Kafka's group coordinator tracks that by heartbeats). A partition is STOPPED
when neither was seen for longer than the window. A group Kafka does not know is ERR.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from pydantic import BaseModel

from vip.lag import GroupLag, LagSnapshot


class LagStatus(StrEnum):
    OK = "OK"
    WARN = "WARN"
    STALL = "STALL"
    STOP = "STOP"
    ERR = "ERR"

    @property
    def code(self) -> int:
        """0 (OK) to 4 (ERR): the Prometheus gauge's value, worse is higher."""
        return list(LagStatus).index(self)


@dataclass(frozen=True, slots=True)
class OffsetSample:
    """One partition of one group at one moment."""

    at: float
    committed: int | None
    lag: int
    owned: bool


def partition_status(history: Sequence[OffsetSample], now: float, window_s: float) -> LagStatus:
    """The status of one partition from its samples, oldest first. Rules 1, 2, 4 and 5 look
    at the samples of the last ``window_s`` seconds; rule 3 needs the history before them, to
    tell when a commit or an owner was last seen."""
    window = [s for s in history if s.at >= now - window_s]
    if not window:
        return LagStatus.OK
    if any(s.lag == 0 for s in window):
        return LagStatus.OK
    offsets = [-1 if s.committed is None else s.committed for s in window]
    if any(later < earlier for earlier, later in pairwise(offsets)):
        return LagStatus.ERR
    if now - _last_sign_of_life(history) > window_s:
        return LagStatus.STOP
    if len(window) < 2:
        return LagStatus.OK
    if len(set(offsets)) == 1:
        return LagStatus.STALL
    lags = [s.lag for s in window]
    if all(later >= earlier for earlier, later in pairwise(lags)):
        return LagStatus.WARN
    return LagStatus.OK


def _last_sign_of_life(history: Sequence[OffsetSample]) -> float:
    """When a commit (an offset that moved) or an owning member was last seen; the first
    sample's time when neither ever was (watching since then, no sign yet)."""
    last = history[0].at
    for previous, sample in pairwise(history):
        if sample.committed != previous.committed:
            last = sample.at
    owned = [s.at for s in history if s.owned]
    return max(last, owned[-1]) if owned else last


def group_status(partitions: Sequence[LagStatus], known: bool) -> LagStatus:
    """The worst of the group's partitions; ERR for a group Kafka does not know."""
    if not known:
        return LagStatus.ERR
    return max(partitions, key=lambda status: status.code, default=LagStatus.OK)


class PartitionReport(BaseModel):
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    time_lag_s: float | None
    owned: bool
    status: LagStatus


class GroupReport(BaseModel):
    group: str
    state: str
    members: int
    status: LagStatus
    lag: int
    max_time_lag_s: float | None
    partitions: list[PartitionReport]


class LagReport(BaseModel):
    """Every watched group's latest offsets and its status over the window."""

    sampled_at: float | None
    window_s: float
    samples: int
    groups: list[GroupReport]
    error: str | None = None


class LagWindow:
    """The snapshots of the last two windows (rule 3 looks back past the first) and their
    evaluation."""

    def __init__(self, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.window_s = window_s
        self._snapshots: deque[LagSnapshot] = deque()

    def add(self, snapshot: LagSnapshot) -> None:
        self._snapshots.append(snapshot)
        while self._snapshots[0].at < snapshot.at - 2 * self.window_s:
            self._snapshots.popleft()

    def report(self, now: float | None = None, error: str | None = None) -> LagReport:
        if not self._snapshots:
            return LagReport(
                sampled_at=None, window_s=self.window_s, samples=0, groups=[], error=error
            )
        latest = self._snapshots[-1]
        at = latest.at if now is None else now
        histories: dict[tuple[str, str, int], list[OffsetSample]] = {}
        for snapshot in self._snapshots:
            for g in snapshot.groups:
                for p in g.partitions:
                    histories.setdefault((g.group, p.topic, p.partition), []).append(
                        OffsetSample(snapshot.at, p.committed, p.lag, p.owned)
                    )
        return LagReport(
            sampled_at=latest.at,
            window_s=self.window_s,
            samples=sum(1 for s in self._snapshots if s.at >= at - self.window_s),
            groups=[self._group_report(g, at, histories) for g in latest.groups],
            error=error,
        )

    def _group_report(
        self,
        group: GroupLag,
        now: float,
        histories: dict[tuple[str, str, int], list[OffsetSample]],
    ) -> GroupReport:
        partitions = [
            PartitionReport(
                topic=p.topic, partition=p.partition, committed=p.committed, end=p.end,
                lag=p.lag, time_lag_s=p.time_lag_s, owned=p.owned,
                status=partition_status(
                    histories[(group.group, p.topic, p.partition)], now, self.window_s
                ),
            )
            for p in group.partitions
        ]  # fmt: skip
        time_lags = [p.time_lag_s for p in partitions if p.time_lag_s is not None]
        return GroupReport(
            group=group.group,
            state=group.state,
            members=group.members,
            status=group_status([p.status for p in partitions], group.known),
            lag=sum(p.lag for p in partitions),
            max_time_lag_s=max(time_lags, default=None),
            partitions=partitions,
        )
