"""The one check of a configured HTTP endpoint's base URL (hosted VLMs, LLM answer servers)."""

from __future__ import annotations

from urllib.parse import urlsplit


def base_url_problem(base_url: str) -> str | None:
    """What makes ``base_url`` unsafe to call (as a phrase after its name), or None if it is
    fine: only http(s) with a host, no embedded credentials, no query or fragment."""
    parts = urlsplit(base_url)
    if parts.scheme not in {"http", "https"}:
        return f"must be http(s), got scheme {parts.scheme!r}"
    if not parts.hostname:
        return "has no host"
    if parts.username or parts.password:
        return "must not embed credentials; set the API key"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    return None
