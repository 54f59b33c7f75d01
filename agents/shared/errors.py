"""Errors raised by the inference client; all derive from :class:`InferenceError`.

The split tells an agent what to do with the event that failed: retry it later
(:class:`InferenceUnavailable`) or send it to the dead-letter topic (:class:`InferenceRejected`).
"""

from __future__ import annotations

__all__ = ["InferenceError", "InferenceRejected", "InferenceUnavailable"]


class InferenceError(RuntimeError):
    """Root of the inference client's errors; raised as is when the server fails internally."""


class InferenceUnavailable(InferenceError):
    """Transient: the server is unreachable, timed out, or is not ready yet. Retrying may help."""


class InferenceRejected(InferenceError):
    """Permanent: the server refused this input (bad image bytes, invalid argument)."""
