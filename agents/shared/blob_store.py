"""Where keyframe images live: a local directory by default, S3 (boto3) when configured.

Keys are validated so that no key or URI can escape the store's root.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

_KEY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
S3_DELETE_BATCH = 1000  # the most keys one DeleteObjects call takes
# The folders a video's blobs live in, each as "<folder>/<video id>/…".
VIDEO_FOLDERS = ("keyframes", "strips", "audio", "features", "analysis-cache")


class BlobError(Exception):
    """Root of blob store errors."""


class BlobNotFound(BlobError):
    pass


class InvalidBlobKey(BlobError):
    pass


def _check_key(key: str) -> str:
    if not _KEY.match(key) or any(part in {".", ".."} for part in key.split("/")):
        raise InvalidBlobKey(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store bytes under key; returns the blob's URI."""

    def get(self, uri: str) -> bytes:
        """Read a blob by the URI that put() returned."""

    def uri_for(self, key: str) -> str:
        """The URI that put(key, …) returns, without writing anything."""

    def delete_under(self, prefix: str, older_than: datetime | None = None) -> int:
        """Delete the blobs under the folder ``prefix`` (all, or those last written before
        ``older_than``); returns how many were deleted."""


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def uri_for(self, key: str) -> str:
        return (self.root / _check_key(key)).as_uri()

    def put(self, key: str, data: bytes, content_type: str) -> str:
        path = self.root / _check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename so a crash never leaves a half-written keyframe behind.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        return path.as_uri()

    def path_of(self, uri: str) -> Path:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise InvalidBlobKey(f"not a file URI: {uri!r}")
        path = Path(unquote(parsed.path)).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidBlobKey(f"{uri!r} is outside the blob store")
        return path

    def get(self, uri: str) -> bytes:
        path = self.path_of(uri)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(uri) from exc

    def delete_under(self, prefix: str, older_than: datetime | None = None) -> int:
        folder = self.root / _check_key(prefix.strip("/"))
        if not folder.is_dir():
            return 0
        cutoff = older_than.timestamp() if older_than else None
        deleted = 0
        for path in sorted(folder.rglob("*"), reverse=True):  # files before their folders
            if path.is_dir():
                with contextlib.suppress(OSError):  # not empty: something newer is kept
                    path.rmdir()
            elif cutoff is None or path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                deleted += 1
        with contextlib.suppress(OSError):
            folder.rmdir()
        return deleted


class S3BlobStore:
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def _full_key(self, key: str) -> str:
        return f"{self.prefix}/{_check_key(key)}" if self.prefix else _check_key(key)

    def uri_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full_key(key)}"

    def put(self, key: str, data: bytes, content_type: str) -> str:
        full = self._full_key(key)
        self.client.put_object(Bucket=self.bucket, Key=full, Body=data, ContentType=content_type)
        return f"s3://{self.bucket}/{full}"

    def get(self, uri: str) -> bytes:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            raise InvalidBlobKey(f"{uri!r} is not in bucket {self.bucket!r}")
        key = parsed.path.lstrip("/")
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey as exc:
            raise BlobNotFound(uri) from exc
        body: bytes = response["Body"].read()
        return body

    def delete_under(self, prefix: str, older_than: datetime | None = None) -> int:
        folder = self._full_key(prefix.strip("/")) + "/"
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder
        )
        keys = [
            item["Key"]
            for page in pages
            for item in page.get("Contents", ())
            if older_than is None or item["LastModified"] < older_than
        ]
        for start in range(0, len(keys), S3_DELETE_BATCH):
            batch = [{"Key": key} for key in keys[start : start + S3_DELETE_BATCH]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(keys)


def create_blob_store(
    kind: str,
    root: Path,
    bucket: str | None = None,
    prefix: str = "vip",
    endpoint_url: str | None = None,
) -> BlobStore:
    if kind == "file":
        return LocalBlobStore(root)
    if kind == "s3":
        if not bucket:
            raise ValueError("blob_store=s3 needs s3_bucket")
        import boto3

        return S3BlobStore(boto3.client("s3", endpoint_url=endpoint_url), bucket, prefix)
    raise ValueError(f"unknown blob store {kind!r}")
