"""The one check of a feed's source, with the settings' policy: the API runs it before it
registers a feed, the runner again before every run (the registry topic may have been written
by something else, and a host name may resolve differently by then)."""

from __future__ import annotations

from agents.shared.sources import LiveSource, Resolver, parse_live_source, resolve_host
from vip.settings import Settings

__all__ = ["check_source"]


def check_source(settings: Settings, raw: str, resolve: Resolver = resolve_host) -> LiveSource:
    """The parsed source, or SourceError saying why a feed may not read it."""
    return parse_live_source(
        raw,
        settings.allowed_source_roots,
        allow_private=settings.feed_sources_allow_private,
        allow_loopback=settings.feed_sources_allow_loopback,
        resolve=resolve,
    )
