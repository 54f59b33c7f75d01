"""The alerts package's errors, all under one root."""

from __future__ import annotations


class AlertsError(Exception):
    """Root of the alert rules' errors."""


class MalformedRule(AlertsError):
    """A record on ``alerts.rules`` that is not a valid rule of a known version."""


class UnsafeWebhook(AlertsError):
    """A webhook URL that must not be called: wrong scheme, credentials, or an address inside
    the deployment (loopback, private, link-local) where those are not allowed."""


class DeliveryFailed(AlertsError):
    """A webhook did not take an alert after every try."""
