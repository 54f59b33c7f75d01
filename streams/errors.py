"""Errors about events on the wire; all derive from :class:`EventError`."""

from __future__ import annotations


class EventError(ValueError):
    """Root of the stream errors. Events that raise these are permanent failures."""


class MalformedEvent(EventError):
    """The message could not be parsed or does not match its schema."""


class UnknownEventVersion(EventError):
    """The message declares a schema version this code does not know."""
