"""The retrieval package's errors, all under one root."""

from __future__ import annotations

from typing import Final, Literal

Store = Literal["milvus", "neo4j"]

# What a 503 tells the client to wait before asking again: a store that is restarting or
# working off a queue of slow calls is usually back within seconds.
RETRY_AFTER_S: Final = 5


class RetrievalError(Exception):
    """Root of the errors the search routes translate into 4xx and 503 answers."""


class ImageRejected(RetrievalError):
    """An uploaded query image is empty or does not decode."""


class ImageTooLarge(RetrievalError):
    """An uploaded query image is over the size limit."""


class StoreUnavailable(RetrievalError):
    """A store could not be reached (refused, reset, not ready). Retrying later may help.
    ``operation`` names the call for logs and metrics; the message leaves it out, so a client
    sees the same words whichever of a request's calls failed first."""

    def __init__(self, store: Store, operation: str, message: str | None = None) -> None:
        self.store = store
        self.operation = operation
        super().__init__(message or f"{store} is unavailable")


class StoreTimedOut(StoreUnavailable):
    """A store did not answer within the call's deadline."""

    def __init__(self, store: Store, operation: str, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(store, operation, f"{store} did not answer within {timeout_s:g} s")
