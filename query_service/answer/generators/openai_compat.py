"""A generator that asks any OpenAI-compatible ``/chat/completions`` endpoint: a hosted model
("openai") or the local llama.cpp server that `vip stack up llm` runs ("local").

The endpoint comes from the operator's settings only: http(s) URLs without embedded
credentials, no redirects followed. The API key is sent as a Bearer token and never appears in
messages or ``repr``. With ``stream`` the request asks for server-sent events and the tokens
are passed on as they arrive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any, Final

import httpx
import orjson
from pydantic import SecretStr

from agents.shared.endpoints import base_url_problem
from query_service.answer.generators.base import Context, GeneratorName
from query_service.answer.generators.errors import GeneratorRejected, GeneratorUnavailable
from query_service.answer.generators.prompt import build_messages

__all__ = ["OpenAICompatGenerator", "check_base_url", "stream_delta"]

_MAX_ERROR_CHARS: Final = 300
_CONNECT_TIMEOUT_S: Final = 5.0


def check_base_url(base_url: str) -> str:
    """The endpoint's base URL without a trailing slash, or GeneratorRejected if unsafe."""
    problem = base_url_problem(base_url)
    if problem is not None:
        raise GeneratorRejected(f"LLM base URL {problem}")
    return base_url.rstrip("/")


def stream_delta(line: str) -> str | None:
    """The text one line of a streamed completion adds: None for blank lines, comments,
    ``data: [DONE]`` and chunks without content (the role, the finish reason)."""
    if not line.startswith("data:"):
        return None
    data = line.removeprefix("data:").strip()
    if data == "[DONE]":
        return None
    try:
        chunk = orjson.loads(data)
        choices = chunk["choices"]
        content = choices[0].get("delta", {}).get("content") if choices else None
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise GeneratorRejected(f"malformed stream chunk: {data[:_MAX_ERROR_CHARS]}") from exc
    return content if isinstance(content, str) else None


def completion_text(body: Any) -> str:
    """``choices[0].message.content`` of a completion, or GeneratorRejected."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise GeneratorRejected("malformed completion: no choices[0].message.content") from exc
    if not isinstance(content, str):
        raise GeneratorRejected("malformed completion: the content is not text")
    return content


def _server_message(response: httpx.Response) -> str:
    """The reason a server gave: OpenAI's ``error.message``, or the start of the body."""
    try:
        body = orjson.loads(response.read())
    except (orjson.JSONDecodeError, httpx.HTTPError):
        body = None
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])[:_MAX_ERROR_CHARS]
        if isinstance(error, str) and error:
            return error[:_MAX_ERROR_CHARS]
    return response.text[:_MAX_ERROR_CHARS] or response.reason_phrase


class OpenAICompatGenerator:
    needs_grounding_check = True

    def __init__(
        self,
        name: GeneratorName,
        base_url: str,
        model: str,
        *,
        api_key: SecretStr | None = None,
        timeout_s: float = 60.0,
        max_tokens: int = 128,
    ) -> None:
        if timeout_s <= 0 or max_tokens <= 0:
            raise ValueError("timeout_s and max_tokens must be positive")
        self.name = name
        self.url = f"{check_base_url(base_url)}/chat/completions"
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"OpenAICompatGenerator({self.name!r}, {self.url!r}, model={self.model!r})"

    def payload(self, context: Context, *, stream: bool) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": build_messages(context.question, context.moments),
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
            "stream": stream,
        }

    def generate(self, context: Context, *, stream: bool) -> Iterator[str]:
        headers = {"Accept": "text/event-stream" if stream else "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        timeout = httpx.Timeout(self.timeout_s, connect=min(_CONNECT_TIMEOUT_S, self.timeout_s))
        deadline = time.monotonic() + self.timeout_s
        try:
            with (
                httpx.Client(timeout=timeout, follow_redirects=False) as client,
                client.stream(
                    "POST", self.url, json=self.payload(context, stream=stream), headers=headers
                ) as response,
            ):
                self._check_status(response)
                if not stream:
                    yield completion_text(self._json(response))
                    return
                for line in response.iter_lines():
                    if time.monotonic() > deadline:
                        raise GeneratorUnavailable(
                            f"{self.url}: no complete answer within {self.timeout_s:.0f}s"
                        )
                    piece = stream_delta(line)
                    if piece:
                        yield piece
        except httpx.TimeoutException as exc:
            raise GeneratorUnavailable(f"{self.url}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise GeneratorUnavailable(f"{self.url}: cannot connect: {exc}") from exc

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise GeneratorUnavailable(f"{self.url}: HTTP {status}: {_server_message(response)}")
        if status >= 300:
            raise GeneratorRejected(f"{self.url}: HTTP {status}: {_server_message(response)}")

    def _json(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.read())
        except orjson.JSONDecodeError as exc:
            raise GeneratorRejected(f"{self.url}: malformed completion, not JSON") from exc
