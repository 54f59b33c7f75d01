"""Errors of live feeds; every one derives from :class:`LiveError`."""

from __future__ import annotations

__all__ = ["LiveError", "PublishFailed", "SourceDropped", "SourceUnavailable"]


class LiveError(Exception):
    """Root of the live feed errors."""


class SourceUnavailable(LiveError):
    """The source could not be opened (not there, refused, unreadable, no video stream)."""


class SourceDropped(LiveError):
    """The source stopped delivering packets before its end (a dropped connection, a read
    error, a file source cut short)."""


class PublishFailed(LiveError):
    """A segment could not be written to the blob store or published to Kafka."""
