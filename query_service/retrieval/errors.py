"""The retrieval package's errors, all under one root."""

from __future__ import annotations


class RetrievalError(Exception):
    """Root of the errors the search routes translate into 4xx answers."""


class ImageRejected(RetrievalError):
    """An uploaded query image is empty or does not decode."""


class ImageTooLarge(RetrievalError):
    """An uploaded query image is over the size limit."""
