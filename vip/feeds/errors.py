"""Errors of the feed registry; every one derives from :class:`FeedsError`."""

from __future__ import annotations

__all__ = ["FeedsError", "RegistryUnavailable"]


class FeedsError(Exception):
    """Root of the feed registry's errors."""


class RegistryUnavailable(FeedsError):
    """The registry's topics could not be read or written (Kafka is down or refused)."""
