"""API keys and request limits of the query service, on a small app with the same wiring."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from query_service import security
from vip.settings import Settings


def make_app(**overrides: object) -> TestClient:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    app = FastAPI(dependencies=[security.CheckApiKey])
    security.install(app, settings)
    admin = APIRouter(dependencies=[security.RequireApiKey])

    @app.get("/read")
    def read() -> dict[str, str]:
        return {"ok": "read"}

    @app.post("/echo")
    def echo(body: dict[str, str]) -> dict[str, str]:
        return body

    @admin.post("/admin")
    def admin_route() -> dict[str, str]:
        return {"ok": "admin"}

    app.include_router(admin)
    return TestClient(app)


def test_an_admin_route_needs_the_key() -> None:
    client = make_app(api_key="s3cret-key")

    assert client.post("/admin").status_code == 401
    assert client.post("/admin").json()["detail"].startswith("an API key is required")
    assert client.post("/admin", headers={"X-API-Key": "wrong"}).json() == {
        "detail": "invalid API key"
    }
    assert client.post("/admin", headers={"X-API-Key": "s3cret-key"}).json() == {"ok": "admin"}


def test_an_admin_route_is_refused_while_no_key_is_configured() -> None:
    response = make_app().post("/admin", headers={"X-API-Key": "anything"})

    assert response.status_code == 403
    assert "none is configured" in response.json()["detail"]


def test_reads_need_no_key_but_a_wrong_one_is_refused() -> None:
    client = make_app(api_key="s3cret-key")

    assert client.get("/read").status_code == 200
    assert client.get("/read", headers={"X-API-Key": "s3cret-key"}).status_code == 200
    assert client.get("/read", headers={"X-API-Key": "stale"}).status_code == 401


def test_reads_can_be_made_to_need_the_key() -> None:
    client = make_app(api_key="s3cret-key", api_key_required_on_reads=True)

    assert client.get("/read").status_code == 401
    assert client.get("/read", headers={"X-API-Key": "s3cret-key"}).status_code == 200


def test_placeholder_keys_are_rejected_by_settings() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        Settings(api_key="changeme")  # type: ignore[arg-type]


def test_a_body_over_the_limit_gets_413_before_the_route_runs() -> None:
    client = make_app(api_max_body_bytes=1024)

    response = client.post("/echo", json={"text": "x" * 2000})

    assert response.status_code == 413
    assert response.json() == {"detail": "request body larger than 1024 bytes"}
    assert client.post("/echo", json={"text": "small"}).json() == {"text": "small"}


def test_a_streamed_body_over_the_limit_gets_413() -> None:
    client = make_app(api_max_body_bytes=1024)

    def chunks():  # no Content-Length: the size is only seen while reading
        for _ in range(4):
            yield b"x" * 400

    response = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})

    assert response.status_code == 413


def test_a_url_over_the_limit_gets_414() -> None:
    response = make_app(api_max_url_chars=256).get("/read", params={"q": "x" * 300})

    assert response.status_code == 414


def test_cors_is_off_by_default_and_on_for_listed_origins() -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}

    closed = make_app().options("/echo", headers=preflight)
    opened = make_app(api_cors_origins=("https://app.example",)).options("/echo", headers=preflight)

    assert "access-control-allow-origin" not in closed.headers
    assert opened.headers["access-control-allow-origin"] == "https://app.example"
