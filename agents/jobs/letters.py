"""What a dead letter says about its job: which upload and chunk its original event was for.

The original value travels as text inside the letter. It is read leniently: a poisoned event
may not be JSON at all, and then the letter belongs to the video's current upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from streams import topics
from streams.records import DeadLettered, JobDeadLetter


@dataclass(frozen=True)
class LetterOrigin:
    upload_id: str | None
    chunk_index: int | None
    event_id: str | None


def base_topic(name: str) -> str:
    """The pipeline topic behind a retry topic (``chunks.retry.2`` -> ``chunks``)."""
    head, infix, _ = name.partition(topics.RETRY_INFIX)
    return head if infix else name


def letter_origin(letter: DeadLettered) -> LetterOrigin:
    try:
        value = orjson.loads(letter.original_value())
    except (ValueError, orjson.JSONDecodeError):  # not base64, or not JSON
        return LetterOrigin(None, None, None)
    if not isinstance(value, dict):
        return LetterOrigin(None, None, None)
    event_id = _text(value.get("event_id"))
    if value.get("type") == "VideoUploaded":
        return LetterOrigin(event_id, None, event_id)
    span = value.get("span")
    if isinstance(span, dict):
        return LetterOrigin(_text(span.get("upload_id")), _index(span.get("chunk_index")), event_id)
    for node in value.get("nodes") or ():
        if isinstance(node, dict) and node.get("label") == "Chunk":
            props = node.get("props") or {}
            if isinstance(props, dict):
                return LetterOrigin(
                    _text(props.get("upload_id")), _index(props.get("index")), event_id
                )
    return LetterOrigin(None, None, event_id)


def job_letter(letter: DeadLettered, origin: LetterOrigin, at: Any) -> JobDeadLetter:
    return JobDeadLetter(
        letter_id=letter.event_id,
        stage=letter.stage,
        reason=letter.reason,
        error_type=letter.error_type,
        attempts=letter.attempts,
        original_topic=letter.original_topic,
        original_partition=letter.original_partition,
        original_offset=letter.original_offset,
        original_event_id=origin.event_id,
        chunk_index=origin.chunk_index,
        at=at,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _index(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
