"""Webhook deliveries: each alert POSTed as JSON to its rule's URL, signed with the rule's
secret, tried again with backoff when the receiver fails or cannot be reached.

``X-VIP-Signature: sha256=<hex HMAC-SHA256 of the body with the rule's secret>``;
``X-VIP-Timestamp`` is when this attempt was sent (Unix seconds). The body carries the alert's
own ``occurred_at`` and ``alert_id``, signed with it: receivers reject stale alerts by the
first and drop repeats by the second (delivery is at least once).

SSRF: the URL is checked when the rule is made (:func:`url_problem`) and again, with its name
resolved, at every delivery (:func:`address_problem`); the request then goes to the address
that was checked (the Host header and TLS SNI keep the name), so a name that re-resolves to an
inside address between check and call is not followed, and neither are redirects.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import random
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from agents.alerts.exceptions import DeliveryFailed, UnsafeWebhook
from agents.shared import sources
from agents.shared.endpoints import base_url_problem
from vip.settings import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-VIP-Signature"
TIMESTAMP_HEADER = "X-VIP-Timestamp"
ALERT_ID_HEADER = "X-VIP-Alert-Id"
ATTEMPT_HEADER = "X-VIP-Delivery-Attempt"
MAX_BACKOFF_S = 30.0
_RETRIED_STATUSES = frozenset({408, 425, 429})
_LOOPBACK_HOSTS = frozenset({"localhost", "localhost.localdomain"})


def sign(secret: str, body: bytes) -> str:
    """The ``X-VIP-Signature`` value of ``body``."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    """What a receiver checks (constant time)."""
    return hmac.compare_digest(sign(secret, body), header)


def loopback_allowed(settings: Settings) -> bool:
    """``alert_webhooks_allow_loopback`` when set; otherwise only on a stack bound to loopback,
    whose callers are on the machine already (a loopback webhook reaches nothing new)."""
    if settings.alert_webhooks_allow_loopback is not None:
        return settings.alert_webhooks_allow_loopback
    return _is_loopback_host(settings.host)


def _is_loopback_host(host: str) -> bool:
    if host.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_problem(address: str, allow_loopback: bool) -> str | None:
    """Why a webhook must not be sent to ``address`` (an IP), or None: the shared SSRF guard
    (agents/shared/sources.address_problem), with no private ranges ever."""
    problem = sources.address_problem(
        address,
        allow_private=False,
        allow_loopback=allow_loopback,
        loopback_switch="alert_webhooks_allow_loopback",
        private_switch=None,
    )
    return None if problem is None else f"{sources.unmapped(address)} {problem}"


def url_problem(url: str, allow_loopback: bool) -> str | None:
    """What is wrong with a webhook URL as written (no name is resolved), or None."""
    problem = base_url_problem(url)
    if problem is not None:
        return problem
    host = urlsplit(url).hostname or ""
    if host.lower() in _LOOPBACK_HOSTS:
        return None if allow_loopback else f"{host} is a loopback host"
    try:
        return address_problem(host, allow_loopback)
    except ValueError:
        return None  # a name: resolved and checked at every delivery


@dataclass(frozen=True)
class Target:
    """Where one request goes: the URL with the checked address in place of the name."""

    url: str
    host_header: str
    sni_hostname: str | None


async def resolve(url: str, allow_loopback: bool) -> Target:
    """Resolve the URL's host and check every address it has; raises UnsafeWebhook."""
    problem = url_problem(url, allow_loopback)
    if problem is not None:
        raise UnsafeWebhook(f"webhook {url!r} {problem}")
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeWebhook(f"webhook host {host!r} does not resolve: {exc}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        problem = address_problem(address, allow_loopback)
        if problem is not None:
            raise UnsafeWebhook(f"webhook host {host!r} resolves to {problem}")
    chosen = addresses[0]
    literal = f"[{chosen}]" if ":" in chosen else chosen
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    host_header = parts.netloc  # no credentials: url_problem refuses them
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
    return Target(pinned, host_header, host if parts.scheme == "https" else None)


@dataclass(frozen=True)
class RetryPlan:
    attempts: int
    backoff_s: float

    def delay_s(self, failed_attempt: int, jitter: float) -> float:
        """Before the next try: backoff doubling per failure, capped, with jitter."""
        ceiling = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (failed_attempt - 1))
        return ceiling * (0.5 + jitter / 2)


def is_retried(status: int) -> bool:
    return status >= 500 or status in _RETRIED_STATUSES


class WebhookSender:
    def __init__(self, settings: Settings) -> None:
        self._plan = RetryPlan(settings.alert_webhook_attempts, settings.alert_webhook_backoff_s)
        self._allow_loopback = loopback_allowed(settings)
        self._client = httpx.AsyncClient(
            timeout=settings.alert_webhook_timeout_s, follow_redirects=False, trust_env=False
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(self, url: str, secret: str | None, alert_id: str, body: bytes) -> int:
        """POST ``body`` until the receiver takes it (2xx); returns the attempts made. Raises
        UnsafeWebhook for an address it must not call, DeliveryFailed when every try failed
        or the receiver refused it for good (a 4xx other than 408, 425 and 429)."""
        last = "no attempt made"
        for attempt in range(1, self._plan.attempts + 1):
            target = await resolve(url, self._allow_loopback)
            headers = {
                "Content-Type": "application/json",
                "Host": target.host_header,
                "User-Agent": "vip-alerts/1",
                TIMESTAMP_HEADER: str(int(time.time())),
                ALERT_ID_HEADER: alert_id,
                ATTEMPT_HEADER: str(attempt),
            }
            if secret:
                headers[SIGNATURE_HEADER] = sign(secret, body)
            extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
            try:
                response = await self._client.post(
                    target.url, content=body, headers=headers, extensions=extensions
                )
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return attempt
                last = f"HTTP {response.status_code}"
                if not is_retried(response.status_code):
                    raise DeliveryFailed(f"{url} refused alert {alert_id}: {last}")
            if attempt < self._plan.attempts:
                delay = self._plan.delay_s(attempt, random.random())  # noqa: S311 - jitter
                log.info(
                    "alerts: webhook %s failed (%s) on try %d; again in %.1fs",
                    url,
                    last,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
        raise DeliveryFailed(
            f"{url} did not take alert {alert_id} in {self._plan.attempts} tries: {last}"
        )
