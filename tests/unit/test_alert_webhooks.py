"""Webhook signing, the SSRF checks of webhook URLs, and the retry schedule."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

from agents.alerts.exceptions import UnsafeWebhook
from agents.alerts.webhooks import (
    RetryPlan,
    address_problem,
    is_retried,
    loopback_allowed,
    resolve,
    sign,
    signature_matches,
    url_problem,
)
from vip.settings import Settings

SECRET = "s3cret-s3cret-s3cret"
BODY = b'{"alert_id":"a1","score":0.9}'
METADATA = "is link-local or a cloud metadata address"


def test_the_signature_is_the_hex_hmac_sha256_of_the_body() -> None:
    expected = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()

    assert sign(SECRET, BODY) == f"sha256={expected}"
    assert sign(SECRET, BODY) == (
        "sha256=" + hmac.new(b"s3cret-s3cret-s3cret", BODY, "sha256").hexdigest()
    )


def test_a_receiver_accepts_the_signed_body_only() -> None:
    header = sign(SECRET, BODY)

    assert signature_matches(SECRET, BODY, header)
    assert not signature_matches(SECRET, BODY + b" ", header)
    assert not signature_matches("another-secret-000", BODY, header)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://hooks.example.com/x", "must be http(s), got scheme 'ftp'"),
        ("https://user:pw@hooks.example.com/x", "must not embed credentials; set the API key"),
        ("https://hooks.example.com/x?token=1", "must not have a query or fragment"),
        ("http://10.0.0.8/hook", "10.0.0.8 is private"),
        ("http://169.254.169.254/latest", f"169.254.169.254 {METADATA}"),
        ("http://[::ffff:192.168.1.1]/", "192.168.1.1 is private"),
        ("http://127.0.0.1:9000/hook",
         "127.0.0.1 is loopback (allowed by alert_webhooks_allow_loopback)"),
        ("http://localhost:9000/hook", "localhost is a loopback host"),
        ("http://0.0.0.0/", "0.0.0.0 is not a unicast address"),
        ("https://hooks.example.com/services/T1/B2", None),
        ("https://93.184.215.14/hook", None),
    ],
)  # fmt: skip
def test_webhook_urls_inside_the_deployment_are_refused(url: str, problem: str | None) -> None:
    assert url_problem(url, allow_loopback=False) == problem


def test_loopback_webhooks_are_allowed_only_when_settings_allow() -> None:
    assert url_problem("http://127.0.0.1:9000/hook", allow_loopback=True) is None
    assert address_problem("::1", allow_loopback=True) is None
    assert address_problem("10.1.2.3", allow_loopback=True) is not None
    assert loopback_allowed(Settings(host="127.0.0.1"))
    assert not loopback_allowed(Settings(host="0.0.0.0"))
    assert not loopback_allowed(Settings(host="127.0.0.1", alert_webhooks_allow_loopback=False))
    assert loopback_allowed(Settings(host="api.internal", alert_webhooks_allow_loopback=True))


def test_a_name_is_resolved_and_the_request_pinned_to_the_checked_address() -> None:
    target = asyncio.run(resolve("http://localhost:8123/in/box", allow_loopback=True))

    assert target.url in {"http://127.0.0.1:8123/in/box", "http://[::1]:8123/in/box"}
    assert (target.host_header, target.sni_hostname) == ("localhost:8123", None)


def test_a_name_that_resolves_inside_is_refused_at_delivery() -> None:
    with pytest.raises(UnsafeWebhook, match="localhost is a loopback host"):
        asyncio.run(resolve("http://localhost:8123/", allow_loopback=False))


def test_retries_back_off_doubling_with_jitter_up_to_a_cap() -> None:
    plan = RetryPlan(attempts=4, backoff_s=1.0)

    assert [plan.delay_s(n, jitter=1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert plan.delay_s(1, jitter=0.0) == 0.5
    assert RetryPlan(attempts=10, backoff_s=10.0).delay_s(5, jitter=1.0) == 30.0


@pytest.mark.parametrize(
    ("status", "retried"), [(500, True), (503, True), (429, True), (408, True), (400, False),
                            (401, False), (404, False), (301, False)],
)  # fmt: skip
def test_server_errors_and_throttling_are_retried_other_refusals_are_not(
    status: int, retried: bool
) -> None:
    assert is_retried(status) is retried
