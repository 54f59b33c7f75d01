"""Where an uploaded video comes from: a local path or an ``s3://bucket/key`` URI.

Only those two forms are accepted: no http(s) or other schemes (no SSRF), and local paths are
resolved and, when roots are configured, must lie inside one of them (no path traversal).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_S3 = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\x00]+)$")
HASH_CHUNK = 1 << 20


class SourceError(ValueError):
    """The upload source is invalid or cannot be read; the message says why."""


@dataclass(frozen=True)
class LocalSource:
    path: Path

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class S3Source:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


Source = LocalSource | S3Source


def parse_source(raw: str, allowed_roots: Sequence[Path] = ()) -> Source:
    text = raw.strip()
    if not text:
        raise SourceError("empty source")
    if "://" in text:
        match = _S3.match(text)
        if match is None:
            scheme = text.split("://", 1)[0]
            if scheme == "s3":
                raise SourceError(f"malformed S3 URI {text!r}; expected s3://bucket/key")
            raise SourceError(
                f"unsupported source scheme {scheme!r}: give a local file path or s3://bucket/key"
            )
        return S3Source(match["bucket"], match["key"])
    path = Path(text).expanduser().resolve()
    if allowed_roots and not any(path.is_relative_to(r.resolve()) for r in allowed_roots):
        raise SourceError(f"{path} is outside the allowed upload roots")
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if not path.is_file():
        raise SourceError(f"{path}: not a regular file")
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise SourceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    return LocalSource(path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def local_copy(source: Source, s3_client: Any = None) -> Iterator[Path]:
    """A local path for the source's bytes: the file itself, or a temporary S3 download."""
    if isinstance(source, LocalSource):
        yield source.path
        return
    if s3_client is None:
        import boto3

        s3_client = boto3.client("s3")
    with tempfile.TemporaryDirectory(prefix="vip-s3-") as tmp:
        target = Path(tmp) / Path(source.key).name
        try:
            s3_client.download_file(source.bucket, source.key, str(target))
        except Exception as exc:
            raise SourceError(f"{source}: download failed ({exc})") from exc
        yield target
