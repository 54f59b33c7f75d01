"""API keys, CORS and request size limits of the query service.

* Write and admin routes depend on :data:`RequireApiKey`: without the server's key (header
  ``X-API-Key``) they answer 401, and while no key is configured (``VIP_API_KEY``) they are
  refused with 403 rather than left open.
* Reads are open, but a key that is sent must be right (a client with a stale key hears so);
  ``VIP_API_KEY_REQUIRED_ON_READS=true`` makes reads require it too.
* CORS is off unless ``VIP_API_CORS_ORIGINS`` lists origins.
* Bodies over ``api_max_body_bytes`` get 413 and URLs over ``api_max_url_chars`` get 414,
  before any route runs.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vip.settings import Settings

API_KEY_HEADER = "X-API-Key"
_api_key_header = APIKeyHeader(
    name=API_KEY_HEADER, auto_error=False, description="the server's API key (VIP_API_KEY)"
)
ApiKeyHeader = Annotated[str | None, Security(_api_key_header)]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _matches(given: str, expected: SecretStr) -> bool:
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def require_api_key(request: Request, api_key: ApiKeyHeader) -> None:
    """For write and admin routes: the server's key must be sent."""
    settings = _settings(request)
    if settings.api_key is None:
        raise HTTPException(
            status_code=403,
            detail="this route needs an API key and none is configured on the server "
            "(set VIP_API_KEY)",
        )
    if not api_key:
        raise HTTPException(
            status_code=401,
            detail=f"an API key is required: send it in the {API_KEY_HEADER} header",
            headers={"WWW-Authenticate": API_KEY_HEADER},
        )
    if not _matches(api_key, settings.api_key):
        raise HTTPException(
            status_code=401, detail="invalid API key", headers={"WWW-Authenticate": API_KEY_HEADER}
        )


def check_api_key(request: Request, api_key: ApiKeyHeader) -> None:
    """For read routes: a key is optional (unless configured otherwise) but checked if sent."""
    settings = _settings(request)
    if settings.api_key_required_on_reads or (api_key and settings.api_key is not None):
        require_api_key(request, api_key)


RequireApiKey = Depends(require_api_key)
CheckApiKey = Depends(check_api_key)


class RequestLimits:
    """ASGI middleware refusing over-long URLs (414) and over-large bodies (413), whether the
    size is declared (Content-Length) or only seen while the body streams in."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_url_chars: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_url_chars = max_url_chars

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        url_chars = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        if url_chars > self.max_url_chars:
            await _refuse(414, f"URL longer than {self.max_url_chars} characters", scope, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _refuse(413, self._too_large, scope, send)
            return

        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes and not started:
                    # Answer now and tell the app the client has gone, so it stops reading.
                    refused = True
                    await _refuse(413, self._too_large, scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not refused:
                raise

    @property
    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes"


async def _refuse(status: int, detail: str, scope: Scope, send: Send) -> None:
    async def no_body() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    await JSONResponse({"detail": detail}, status_code=status)(scope, no_body, send)


def install(app: FastAPI, settings: Settings) -> None:
    """Add the limits and, when origins are configured, CORS to the app."""
    app.state.settings = settings
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.api_max_body_bytes,
        max_url_chars=settings.api_max_url_chars,
    )
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.api_cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Range", API_KEY_HEADER],
            expose_headers=["Content-Range", "Accept-Ranges", "Content-Length"],
        )
