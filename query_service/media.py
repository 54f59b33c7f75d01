"""Pure helpers for serving media: keyframe names and URLs, and HTTP byte ranges (RFC 9110)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

# The chunker stores keyframes as keyframes/<video id>/<chunk index>_<time in ms>.jpg.
KEYFRAME_NAME_PATTERN = r"^[0-9]{5}_[0-9]{9}\.jpg$"
_KEYFRAME_NAME = re.compile(KEYFRAME_NAME_PATTERN)
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_RANGE = re.compile(r"^\s*bytes\s*=\s*(?P<first>[0-9]*)\s*-\s*(?P<last>[0-9]*)\s*$", re.IGNORECASE)
STREAM_BLOCK = 256 * 1024


def keyframe_key(video_id: str, name: str) -> str:
    """The blob key of a keyframe; raises ValueError unless both parts are well formed."""
    if not _VIDEO_ID.match(video_id) or not _KEYFRAME_NAME.match(name):
        raise ValueError(f"no keyframe is named {video_id!r}/{name!r}")
    return f"keyframes/{video_id}/{name}"


def thumbnail_url(blob_uri: str | None) -> str | None:
    """The API path serving a keyframe blob (file:// or s3:// URI), or None if it is not one."""
    if not blob_uri:
        return None
    parts = urlparse(blob_uri).path.rstrip("/").split("/")
    if len(parts) < 3 or parts[-3] != "keyframes":
        return None
    video_id, name = parts[-2], parts[-1]
    try:
        keyframe_key(video_id, name)
    except ValueError:
        return None
    return f"/v1/keyframes/{video_id}/{name}"


class RangeNotSatisfiable(ValueError):
    """The Range header asks only for bytes beyond the end of the representation."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as Content-Range writes it

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a Range header asks for, or None to send the whole file.

    A server may ignore Range (RFC 9110 §14.2), so a header that is not a single well-formed
    ``bytes`` range is ignored; a well-formed one that starts past the end raises
    :class:`RangeNotSatisfiable` (416).
    """
    if header is None:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first, last = match["first"], match["last"]
    if not first and not last:
        return None
    if not first:  # a suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"bytes=-{suffix} of {size} bytes")
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid syntax: ignore
    if start >= size:
        raise RangeNotSatisfiable(f"bytes={start}- of {size} bytes")
    end = min(int(last), size - 1) if last else size - 1
    return ByteRange(start, end)


def read_span(path: Path, start: int, length: int, block: int = STREAM_BLOCK) -> Iterator[bytes]:
    """The file's bytes from start, length of them, in blocks (for a streaming response)."""
    with path.open("rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            data = handle.read(min(block, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data
