"""API keys, CORS and request size limits of the query service.

* Write and admin routes depend on :data:`RequireApiKey`: without the server's key (header
  ``X-API-Key``) they answer 401, and while no key is configured (``VIP_API_KEY``) they are
  refused with 403 rather than left open.
* Reads are open, but a key that is sent must be right (a client with a stale key hears so);
  ``VIP_API_KEY_REQUIRED_ON_READS=true`` makes reads require it too.
* CORS is off unless ``VIP_API_CORS_ORIGINS`` lists origins.
* A route declaring :func:`body_as` answers a body of another media type with 415, naming the
  one it takes (rather than a 422 about a body it could not read as fields).
* Bodies over ``api_max_body_bytes`` get 413 and URLs over ``api_max_url_chars`` get 414,
  before any route runs.

The OpenAPI document says the same: reads list the key as optional (``security: [{}, ...]``)
unless it is required on reads, and every operation documents the refusals above.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator
from typing import Annotated, Any

import fastapi.routing
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from query_service.schemas import ErrorPublic
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


def body_as(*media_types: str) -> Any:
    """A route dependency: a body declared as any other media type gets 415. A body with no
    Content-Type is left to the route, as FastAPI reads it (JSON)."""
    wanted = " or ".join(media_types)

    def check_media_type(request: Request) -> None:
        declared = request.headers.get("content-type")
        if declared is None:
            return
        media_type = declared.split(";", 1)[0].strip().lower()
        if media_type in media_types:
            return
        if media_type.endswith("+json") and "application/json" in media_types:
            return
        raise HTTPException(
            status_code=415,
            detail=f"{request.method} {request.url.path} takes a body of {wanted}, "
            f"not {media_type or 'an empty Content-Type'}",
        )

    return Depends(check_media_type)


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


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _operations(app: FastAPI) -> Iterator[tuple[str, str, bool]]:
    """(path, method, whether the key is required) for each documented route."""
    # FastAPI 0.165 keeps included routers whole; iter_route_contexts flattens them with their
    # dependencies. Before it, app.routes held the flattened APIRoutes themselves.
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    routes: Iterable[Any] = flatten(app.routes) if flatten else app.routes
    for route in routes:
        original = getattr(route, "original_route", route)
        if not isinstance(original, APIRoute) or not original.include_in_schema:
            continue
        required = require_api_key in set(_calls(route.dependant))
        for method in route.methods or ():
            yield route.path_format, method.lower(), required


def _error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorPublic"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _document(app: FastAPI, settings: Settings) -> None:
    """Make the OpenAPI document say what the key check and the limits do."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("schemas", {}).setdefault(
            "ErrorPublic", ErrorPublic.model_json_schema()
        )
        for path, method, required in _operations(app):
            operation = schema["paths"].get(path, {}).get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            if "security" in operation:
                responses.setdefault("401", _error("a wrong API key, or none where one is needed"))
                if required or settings.api_key_required_on_reads:
                    responses.setdefault("403", _error("no API key is configured on the server"))
                else:
                    operation["security"] = [{}, *operation["security"]]
            if "requestBody" in operation:
                responses.setdefault("400", _error("a body that cannot be parsed at all"))
                responses.setdefault(
                    "413", _error(f"a body over {settings.api_max_body_bytes} bytes")
                )
            responses.setdefault(
                "414", _error(f"a URL over {settings.api_max_url_chars} characters")
            )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI, settings: Settings) -> None:
    """Add the limits and, when origins are configured, CORS to the app."""
    app.state.settings = settings
    _document(app, settings)
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
