"""Shared test fixtures. Media is read in place from ../shared/media, never copied in."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MEDIA = Path(__import__("os").environ.get("VIP_MEDIA_DIR", REPO_ROOT.parent / "shared" / "media"))


@pytest.fixture(scope="session")
def media() -> Path:
    if not (MEDIA / "manifest.json").exists():
        pytest.fail(f"shared media not found at {MEDIA}; set VIP_MEDIA_DIR")
    return MEDIA


@pytest.fixture(autouse=True)
def _no_error_logs(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest):
    """Fail any test that logged an ERROR it did not expect (PySceneDetect's rule)."""
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    assert not errors, f"unexpected ERROR logs: {[r.getMessage() for r in errors]}"
