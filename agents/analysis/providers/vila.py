"""A hosted vision-language model (NVIDIA NIM / VILA style) behind an OpenAI-compatible
``/chat/completions`` endpoint that accepts images as ``data:`` URLs.

The endpoint comes from the operator's settings, never from an event: only http(s) URLs without
embedded credentials are accepted, and redirects are not followed (no SSRF). The API key is sent
as a Bearer token and never appears in messages or ``repr``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self

import httpx
from pydantic import SecretStr

from agents.analysis.providers.base import (
    KeyframeImage,
    ProviderRejected,
    ProviderResult,
    ProviderUnavailable,
)
from agents.shared.endpoints import base_url_problem
from streams.records import Caption

__all__ = ["CAPTION_PROMPT", "VilaProvider", "check_base_url"]

NAME: Final = "vila"
CAPTION_PROMPT: Final = (
    "Describe this video frame in one factual sentence: who or what is visible and what is "
    "happening. Do not guess names, brands or anything that is not visible."
)
_MAX_ERROR_CHARS: Final = 500
_MAX_QUESTION_CHARS: Final = 4000


def check_base_url(base_url: str) -> str:
    """The endpoint's base URL without a trailing slash, or ProviderRejected if unsafe."""
    problem = base_url_problem(base_url)
    if problem is not None:
        raise ProviderRejected(f"vila base_url {problem}")
    return base_url.rstrip("/")


def _image_part(jpeg: bytes) -> dict[str, Any]:
    encoded = base64.b64encode(jpeg).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{encoded}"}}


def _server_message(response: httpx.Response) -> str:
    """The reason a server gave: OpenAI's ``error.message``, FastAPI's ``detail``, or text."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])[:_MAX_ERROR_CHARS]
        for field in ("error", "detail", "message"):
            if isinstance(body.get(field), str) and body[field]:
                return str(body[field])[:_MAX_ERROR_CHARS]
    return response.text[:_MAX_ERROR_CHARS] or response.reason_phrase


def _content(body: Any) -> str:
    """``choices[0].message.content`` as non-empty text, or ProviderRejected."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise ProviderRejected(
            "vila: malformed answer, expected choices[0].message.content"
        ) from exc
    if not isinstance(content, str) or not content.strip():
        raise ProviderRejected("vila: malformed answer, message content is empty or not text")
    return content.strip()


class VilaProvider:
    """Captions keyframes and answers questions about them, one HTTP request per call."""

    name = NAME

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "nvidia/vila",
        api_key: SecretStr | None = None,
        timeout_s: float = 60.0,
        connect_timeout_s: float = 5.0,
        max_tokens: int = 128,
        max_images: int = 8,
    ) -> None:
        if timeout_s <= 0 or connect_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if max_tokens <= 0 or max_images <= 0:
            raise ValueError("max_tokens and max_images must be positive")
        if not model.strip():
            raise ValueError("model must not be empty")
        self.base_url = check_base_url(base_url)
        self.model = model
        self.max_tokens = max_tokens
        self.max_images = max_images
        self._api_key = api_key
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"VilaProvider(base_url={self.base_url!r}, model={self.model!r})"

    # Lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # Provider -------------------------------------------------------------------------------
    def version(self) -> str:
        return self.model

    @property
    def source(self) -> str:
        return f"{NAME}:{self.model}"

    def analyse_keyframes(self, frames: Sequence[KeyframeImage]) -> ProviderResult:
        return self.caption(frames)

    def caption(self, frames: Sequence[KeyframeImage]) -> ProviderResult:
        """One factual sentence per keyframe, each from its own request."""
        captions = tuple(
            Caption(
                text=self._complete(CAPTION_PROMPT, [frame]), time=frame.time, source=self.source
            )
            for frame in frames
        )
        return ProviderResult(captions=captions, models={NAME: self.version()})

    def answer(self, question: str, frames: Sequence[KeyframeImage]) -> str:
        """The model's answer to a question about these keyframes, shown in one request."""
        if not question.strip():
            raise ProviderRejected("vila: the question is empty")
        if len(question) > _MAX_QUESTION_CHARS:
            raise ProviderRejected(f"vila: the question is over {_MAX_QUESTION_CHARS} characters")
        if len(frames) > self.max_images:
            raise ProviderRejected(
                f"vila: {len(frames)} images in one question, at most {self.max_images}"
            )
        return self._complete(question, frames)

    # HTTP -----------------------------------------------------------------------------------
    def _complete(self, prompt: str, frames: Sequence[KeyframeImage]) -> str:
        url = f"{self.base_url}/chat/completions"
        payload = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": prompt},
                        *(_image_part(frame.jpeg) for frame in frames),
                    ],
                }
            ],
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
            "stream": False,
        }
        headers = {"Accept": "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        try:
            response = self._client.post(url, json=payload, headers=headers)
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"vila {url}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"vila {url}: cannot connect: {exc}") from exc
        status = response.status_code
        if status == 429 or status == 408 or status >= 500:
            raise ProviderUnavailable(f"vila {url}: HTTP {status}: {_server_message(response)}")
        if status >= 300:
            raise ProviderRejected(f"vila {url}: HTTP {status}: {_server_message(response)}")
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderRejected(f"vila {url}: malformed answer, not JSON") from exc
        return _content(body)
