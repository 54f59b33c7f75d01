"""Blob retention: each folder named in ``Settings.blob_retention_days`` loses the blobs last
written longer ago than its retention (docs/operations.md, "Cleanup")."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from agents.shared.blob_store import BlobStore


def sweep(
    blobs: BlobStore, retention_days: Iterable[tuple[str, float]], now: datetime
) -> dict[str, int]:
    """Delete what outlived its retention (folder, days); how many blobs went, per folder."""
    return {
        folder: blobs.delete_under(folder, older_than=now - timedelta(days=days))
        for folder, days in sorted(retention_days)
    }
