"""Errors raised by the stack manager; all derive from :class:`StackError`."""

from __future__ import annotations


class StackError(RuntimeError):
    """Root of the stack manager's errors."""


class ServiceFailedToStart(StackError):
    def __init__(self, service: str, reason: str, log_tail: str) -> None:
        super().__init__(
            f"{service} failed to start: {reason}\n--- last lines of its log ---\n{log_tail}"
        )
        self.service = service
        self.reason = reason
        self.log_tail = log_tail


class PortInUse(StackError):
    def __init__(self, service: str, host: str, port: int) -> None:
        super().__init__(
            f"{service}: {host}:{port} is already in use by a process "
            "that `vip stack up` did not start"
        )
        self.service = service
        self.port = port


class SetupFailed(StackError):
    """Installing or downloading a service's dependencies failed."""
