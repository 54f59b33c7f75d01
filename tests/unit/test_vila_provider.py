"""The VILA provider against a real HTTP server on 127.0.0.1.

FAKE VLM, labelled as such: no hosted model is reachable from this machine, so the server below
speaks the OpenAI chat-completions protocol over real HTTP but "describes" each image by
naming the bytes it received. These tests prove the requests we send (Bearer key, model, prompt,
``data:`` URL images) and how we map answers and failures, not the quality of any caption.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from agents.analysis.providers.base import (
    KeyframeImage,
    ProviderRejected,
    ProviderResult,
    ProviderUnavailable,
)
from agents.analysis.providers.config import ProviderSettings, build_providers
from agents.analysis.providers.vila import CAPTION_PROMPT, VilaProvider
from streams.records import Caption

API_KEY = "nvapi-fake-key-for-tests"
DATA_URL = re.compile(r"^data:image/jpeg;base64,(?P<payload>[A-Za-z0-9+/=]+)$")


def fake_caption(jpeg: bytes) -> str:
    return f"A frame of {len(jpeg)} bytes, digest {hashlib.sha256(jpeg).hexdigest()[:8]}."


@dataclass
class FakeVlm:
    """What the fake server received, and what it should answer next (default: a caption)."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[int, bytes]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    stall: bool = False

    def reply(self, status: int, body: bytes | dict[str, Any]) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.replies.append((status, raw))


def completion(content: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "nvidia/vila",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }


def _handler(vlm: FakeVlm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            vlm.requests.append(
                {"path": self.path, "authorization": self.headers.get("Authorization"), **body}
            )
            if vlm.stall:
                vlm.release.wait(timeout=10)
            if vlm.replies:
                status, raw = vlm.replies.pop(0)
            else:
                images = [
                    base64.b64decode(DATA_URL.match(part["image_url"]["url"])["payload"])
                    for part in body["messages"][0]["content"]
                    if part["type"] == "image_url"
                ]
                status, raw = 200, json.dumps(completion(fake_caption(images[0]))).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


@pytest.fixture
def vlm() -> Iterator[FakeVlm]:
    fake = FakeVlm(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def provider_for(vlm: FakeVlm, **kwargs: Any) -> VilaProvider:
    return VilaProvider(vlm.url, model="nvidia/vila", api_key=SecretStr(API_KEY), **kwargs)


def frame(time: float, jpeg: bytes) -> KeyframeImage:
    return KeyframeImage(time=time, jpeg=jpeg, width=640, height=360)


def test_each_keyframe_is_captioned_by_its_own_request(vlm):
    frames = [frame(0.0, b"\xff\xd8first\xff\xd9"), frame(2.5, b"\xff\xd8second frame\xff\xd9")]

    with provider_for(vlm) as provider:
        result = provider.caption(frames)

    assert result == ProviderResult(
        captions=(
            Caption(text=fake_caption(frames[0].jpeg), time=0.0, source="vila:nvidia/vila"),
            Caption(text=fake_caption(frames[1].jpeg), time=2.5, source="vila:nvidia/vila"),
        ),
        models={"vila": "nvidia/vila"},
    )
    first = vlm.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["authorization"] == f"Bearer {API_KEY}"
    assert first["model"] == "nvidia/vila"
    [message] = first["messages"]
    assert message["role"] == "user"
    text, image = message["content"]
    assert text == {"type": "text", "text": CAPTION_PROMPT}
    assert image["type"] == "image_url"
    sent = DATA_URL.match(image["image_url"]["url"])
    assert sent is not None and base64.b64decode(sent["payload"]) == frames[0].jpeg
    assert len(vlm.requests) == 2


def test_a_question_is_asked_about_all_its_keyframes_in_one_request(vlm):
    vlm.reply(200, completion("  Two people shake hands.\n"))
    frames = [frame(0.0, b"one"), frame(1.0, b"two")]

    with provider_for(vlm) as provider:
        answer = provider.answer("What happens?", frames)

    assert answer == "Two people shake hands."
    [request] = vlm.requests
    parts = request["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "What happens?"}
    assert [
        base64.b64decode(DATA_URL.match(p["image_url"]["url"])["payload"]) for p in parts[1:]
    ] == [
        b"one",
        b"two",
    ]


def test_a_throttled_request_is_unavailable(vlm):
    vlm.reply(429, {"error": {"message": "Rate limit exceeded", "type": "rate_limit"}})

    with (
        provider_for(vlm) as provider,
        pytest.raises(ProviderUnavailable, match=r"HTTP 429: Rate limit exceeded$"),
    ):
        provider.caption([frame(0.0, b"img")])


def test_a_server_error_is_unavailable(vlm):
    vlm.reply(503, {"detail": "model is loading"})

    with (
        provider_for(vlm) as provider,
        pytest.raises(ProviderUnavailable, match=r"HTTP 503: model is loading$"),
    ):
        provider.caption([frame(0.0, b"img")])


def test_a_refused_request_is_rejected_with_the_servers_message(vlm):
    vlm.reply(400, {"error": {"message": "image_url must be a data URL", "code": 400}})

    with (
        provider_for(vlm) as provider,
        pytest.raises(
            ProviderRejected,
            match=rf"^vila {re.escape(vlm.url)}/chat/completions: HTTP 400: "
            r"image_url must be a data URL$",
        ),
    ):
        provider.caption([frame(0.0, b"img")])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>not json</html>", "malformed answer, not JSON"),
        (json.dumps({"choices": []}).encode(), "expected choices[0].message.content"),
        (json.dumps({"object": "error"}).encode(), "expected choices[0].message.content"),
        (json.dumps(completion(None)).encode(), "message content is empty or not text"),
        (json.dumps(completion("   ")).encode(), "message content is empty or not text"),
    ],
)
def test_a_malformed_answer_is_rejected(vlm, body, reason):
    vlm.reply(200, body)

    with provider_for(vlm) as provider, pytest.raises(ProviderRejected, match=re.escape(reason)):
        provider.caption([frame(0.0, b"img")])


def test_a_refused_connection_is_unavailable():
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        provider = VilaProvider(f"http://127.0.0.1:{port}/v1", api_key=SecretStr(API_KEY))
        with provider, pytest.raises(ProviderUnavailable, match=r": cannot connect: "):
            provider.caption([frame(0.0, b"img")])


def test_a_server_slower_than_the_timeout_is_unavailable(vlm):
    vlm.stall = True

    with (
        provider_for(vlm, timeout_s=0.3) as provider,
        pytest.raises(ProviderUnavailable, match=r": timed out \(ReadTimeout\)$"),
    ):
        provider.caption([frame(0.0, b"img")])


@pytest.mark.parametrize(
    ("base_url", "reason"),
    [
        ("file:///etc/passwd", "must be http(s), got scheme 'file'"),
        ("ftp://models.example/v1", "must be http(s), got scheme 'ftp'"),
        ("gopher://127.0.0.1:70/", "must be http(s), got scheme 'gopher'"),
        ("http:///v1", "has no host"),
        ("https://user:pw@models.example/v1", "must not embed credentials"),
    ],
)
def test_an_unsafe_base_url_is_refused(base_url, reason):
    with pytest.raises(ProviderRejected, match=re.escape(reason)):
        VilaProvider(base_url)


def test_the_api_key_never_appears_in_repr_or_settings():
    settings = ProviderSettings(vila_base_url="https://nim.example/v1", vila_api_key=API_KEY)
    [provider] = build_providers(["vila"], settings)
    assert isinstance(provider, VilaProvider)
    provider.close()

    assert API_KEY not in repr(provider)
    assert API_KEY not in repr(settings)
    assert repr(provider) == "VilaProvider(base_url='https://nim.example/v1', model='nvidia/vila')"


def test_vila_must_be_configured_before_an_upload_can_ask_for_it():
    with pytest.raises(
        ProviderRejected, match=r"^provider 'vila' is not configured: set VIP_VILA_BASE_URL$"
    ):
        build_providers(["local", "vila"], ProviderSettings(vila_base_url=None))


def test_an_unknown_provider_is_refused_by_name():
    with pytest.raises(
        ProviderRejected, match=r"^unknown provider 'gpt'; known: local, rekognition, vila$"
    ):
        build_providers(["local", "gpt"], ProviderSettings())


def test_the_settings_refuse_a_base_url_that_is_not_http():
    with pytest.raises(ValueError, match="URL scheme should be 'http' or 'https'"):
        ProviderSettings(vila_base_url="file:///etc/passwd")
