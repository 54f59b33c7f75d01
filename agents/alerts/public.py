"""An alert as clients see it (the webhook body and the SSE ``alert`` event): the record's
fields with API paths instead of internal blob URIs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

# Pure helpers (no I/O, nothing started): the API serves keyframes at the paths they make.
from query_service.media import thumbnail_url
from streams.records import AlertRaised


def media_url(video_id: str, start: float, end: float) -> str:
    """The source through ``GET /v1/videos/{id}/media``, with a W3C media fragment
    (``#t=start,end``) that players honour by playing just the clip."""
    return f"/v1/videos/{quote(video_id, safe='')}/media#t={start:g},{end:g}"


def alert_public(alert: AlertRaised) -> dict[str, Any]:
    clip = alert.clip
    return {
        "alert_id": alert.alert_id,
        "rule_id": alert.rule_id,
        "rule_name": alert.rule_name,
        "video_id": alert.video_id,
        "moment_id": alert.moment_id,
        "clip": {
            "video_id": clip.video_id,
            "start": clip.start,
            "end": clip.end,
            "media_url": media_url(clip.video_id, clip.start, clip.end),
            "thumbnail_url": thumbnail_url(alert.thumbnail_uri),
        },
        "matched": alert.matched.model_dump(mode="json", exclude_none=True),
        "score": alert.score,
        "occurred_at": alert.occurred_at.isoformat(),
        "moment_at": alert.moment_at.isoformat(),
    }


def alert_body(alert: AlertRaised) -> bytes:
    """The exact bytes POSTed to webhooks (and signed)."""
    return orjson.dumps(alert_public(alert))
