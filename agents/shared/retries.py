"""The retry policy's pure parts: how long retry n waits, and where a failed try goes next.

An event that fails for a reason a retry may cure leaves its partition at once: it is
published to a retry level of its topic (``<topic>.retry.<level>``) and tried again there when
due. Retry n waits on level n, and every retry from the one whose wait reaches the cap onwards
waits on the last level: every event on one level waits about as long, so a level's arrival
order is its due order and its consumer only ever waits for the event at its head. After the
last try, or a failure no retry can cure, the event goes to ``<topic>.dlq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vip.settings import Settings

__all__ = ["DEAD_LETTER", "RetryPolicy", "RetryStep", "next_step", "policy_for", "retry_levels"]

DEAD_LETTER: Literal["dead-letter"] = "dead-letter"


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all, the first included. Retry n waits between half and all of
    ``backoff_s * 2**(n-1)`` capped at ``max_backoff_s`` ("equal jitter": never more than the
    cap, and never a burst of retries at one instant)."""

    attempts: int = 3
    backoff_s: float = 5.0
    max_backoff_s: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.backoff_s <= 0 or self.max_backoff_s <= 0:
            raise ValueError("backoff_s and max_backoff_s must be positive")

    @property
    def levels(self) -> int:
        """Retry topics this policy uses: one per retry until the wait reaches the cap."""
        if self.attempts == 1:
            return 0
        level = 1
        while level < self.attempts - 1 and self.ceiling_s(level) < self.max_backoff_s:
            level += 1
        return level

    def ceiling_s(self, retry: int) -> float:
        """The longest wait before the ``retry``-th retry."""
        if retry < 1:
            raise ValueError(f"retries count from 1, got {retry}")
        return min(self.max_backoff_s, self.backoff_s * 2 ** (retry - 1))

    def delay_s(self, retry: int, jitter: float) -> float:
        """The wait before the ``retry``-th retry for a ``jitter`` drawn uniformly from [0, 1)."""
        if not 0 <= jitter <= 1:
            raise ValueError(f"jitter must be in [0, 1], got {jitter}")
        ceiling = self.ceiling_s(retry)
        return ceiling / 2 + jitter * ceiling / 2


@dataclass(frozen=True)
class RetryStep:
    """The ``retry``-th retry, waiting on retry level ``level``."""

    retry: int
    level: int


def next_step(
    policy: RetryPolicy, attempts: int, transient: bool
) -> RetryStep | Literal["dead-letter"]:
    """Where an event goes after its ``attempts``-th try failed: a retry level to wait on, or
    the dead-letter topic when the failure is permanent or the tries are used up."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    if not transient or attempts >= policy.attempts:
        return DEAD_LETTER
    return RetryStep(retry=attempts, level=min(attempts, policy.levels))


def policy_for(settings: Settings, stage: str) -> RetryPolicy:
    """The global retry settings with the stage's own exceptions (``retry_by_stage``)."""
    override = settings.retry_by_stage.get(stage)
    attempts = settings.retry_attempts
    backoff_s = settings.retry_backoff_s
    max_backoff_s = settings.retry_max_backoff_s
    if override is not None:
        attempts = override.attempts or attempts
        backoff_s = override.backoff_s or backoff_s
        max_backoff_s = override.max_backoff_s or max_backoff_s
    return RetryPolicy(attempts, backoff_s, max_backoff_s)


def retry_levels(settings: Settings) -> int:
    """Retry topics each pipeline topic needs: as many as the stage with the most levels."""
    stages = [policy_for(settings, stage) for stage in settings.retry_by_stage]
    return max(policy.levels for policy in [policy_for(settings, ""), *stages])
