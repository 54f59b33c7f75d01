"""Live feeds: cut a live (or real-time-paced) source into segments and publish them to the
``live.segments`` topic. :func:`vip.live.publisher.run_feed` is the entry point; it is loaded
on first use, so that `vip --help` does not import PyAV and Kafka."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vip.live.publisher import FeedSpec, FeedStats, run_feed

__all__ = ["FeedSpec", "FeedStats", "run_feed"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from vip.live import publisher

        return getattr(publisher, name)
    raise AttributeError(f"module 'vip.live' has no attribute {name!r}")
