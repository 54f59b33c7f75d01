"""The OpenAI-compatible generator and the grounding check, with real MiniLM embeddings
(Triton) judging each draft.

STAND-IN FOR A HOSTED LLM, labelled as such: no hosted model is reachable from this machine, so
the endpoint below is a real HTTP server on 127.0.0.1 that speaks the chat-completions protocol
(JSON and server-sent events) and replies with scripted drafts. These tests prove what we send
(Bearer key, model, numbered passages, stream flag), how streamed tokens are passed on, and that
drafts are kept or rejected by the grounding rule; not the quality of any model.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import SecretStr

from agents.wiring import Dependencies
from query_service.answer.extractive import DONT_KNOW
from query_service.answer.generators import OpenAICompatGenerator
from query_service.answer.service import (
    Answered,
    AnswerEvent,
    AnswerPiece,
    AnswerService,
    CitationsFound,
    DraftRejected,
)
from query_service.retrieval.service import SearchService
from query_service.schemas import MomentPublic
from tests.ports import free_port
from vip.settings import Settings

pytestmark = pytest.mark.stack

API_KEY = "sk-stand-in-key-for-tests"
MODEL = "hosted-model"


@dataclass
class HostedStandIn:
    """What the stand-in received, and what it answers next: (status, JSON body) for a plain
    request, or the list of tokens it streams as chunks when the request asks for a stream."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[int, Any]] = field(default_factory=list)

    def answer(self, text: str | list[str]) -> None:
        self.replies.append((200, text))


def _chunk(delta: dict[str, str]) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _handler(hosted: HostedStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            hosted.requests.append(
                {"path": self.path, "authorization": self.headers.get("Authorization"), **body}
            )
            status, reply = hosted.replies.pop(0)
            if status == 200 and body.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                self.wfile.write(_chunk({"role": "assistant"}))
                for token in reply:
                    self.wfile.write(_chunk({"content": token}))
                    self.wfile.flush()
                self.wfile.write(b": keep-alive\n\ndata: [DONE]\n\n")
                return
            if status == 200:
                reply = {"choices": [{"index": 0, "message": {"content": "".join(reply)}}]}
            raw = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


@pytest.fixture
def hosted() -> Iterator[HostedStandIn]:
    stand_in = HostedStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
    server.daemon_threads = True
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield stand_in
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def stores(running_stack: Settings) -> Iterator[Dependencies]:
    deps = Dependencies(running_stack)
    yield deps
    deps.close()


def service_for(stores: Dependencies, url: str) -> AnswerService:
    generator = OpenAICompatGenerator(
        "openai", url, MODEL, api_key=SecretStr(API_KEY), timeout_s=10, max_tokens=64
    )
    return AnswerService(SearchService(stores.settings, stores), stores, generator)


def moment(mid: str, video: str, end: float, text: str) -> MomentPublic:
    return MomentPublic(
        id=mid, video_id=video, source=f"/m/{video}.mp4", start=0.0, end=end, score=0.5,
        text=text, labels=[], matched_labels=[], entities=[], retrievers=["vector"], scores={},
        thumbnail_url=None,
    )  # fmt: skip


# What the pipeline wrote for two shared clips (bottle-detection.mp4, id2_vcd_swwp2s.mpg).
BOTTLES = moment("va:0", "va", 10.0, "A scene showing three bottles and a person.")
SPEAKER = moment(
    "vb:0",
    "vb",
    2.98,
    "A scene showing a person. A face is visible. It looks like tench. "
    "Speech: Set white with P2 soon.",
)
CONTEXT = [SPEAKER, BOTTLES]  # the context puts them in video order: [1] bottles, [2] speaker


def test_a_hosted_answer_citing_its_passage_is_kept_with_exactly_that_moment(
    stores: Dependencies, hosted: HostedStandIn
) -> None:
    hosted.answer("The speaker says: set white with P2 soon [2].")
    result = service_for(stores, hosted.url).answer_over("What does the speaker say?", CONTEXT)
    assert result.answer == "The speaker says: set white with P2 soon [1]."
    assert result.citations == [SPEAKER] and result.grounded is True
    assert (result.generator, result.fallback_from, result.fallback_reason) == (
        "openai",
        None,
        None,
    )
    [sent] = hosted.requests
    assert sent["path"] == "/v1/chat/completions"
    assert sent["authorization"] == f"Bearer {API_KEY}"
    assert (sent["model"], sent["stream"], sent["max_tokens"], sent["temperature"]) == (
        MODEL,
        False,
        64,
        0.0,
    )
    assert sent["messages"][-1]["content"] == (
        "Passages:\n[1] video 1, 0.0-10.0 s: A scene showing three bottles and a person.\n"
        "[2] video 2, 0.0-3.0 s: A scene showing a person. A face is visible. It looks like "
        "tench. Speech: Set white with P2 soon.\n\nQuestion: What does the speaker say?"
    )


def test_a_streamed_hosted_answer_passes_its_words_on_before_the_citations(
    stores: Dependencies, hosted: HostedStandIn
) -> None:
    hosted.answer(["The", " speaker", " says", ": set", " white with P2 soon [", "2", "]."])
    events = list(
        service_for(stores, hosted.url).events_over(
            "What does the speaker say?", CONTEXT, stream=True
        )
    )
    pieces = [e.text for e in events if isinstance(e, AnswerPiece)]
    *words, citations, answered = events
    assert len(pieces) >= 3 and all(isinstance(e, AnswerPiece) for e in words)
    assert citations == CitationsFound([SPEAKER]) and isinstance(answered, Answered)
    done = answered.response
    assert " ".join(pieces) == done.answer == "The speaker says: set white with P2 soon [1]."
    assert done.generator == "openai" and done.citations == [SPEAKER]
    assert hosted.requests[0]["stream"] is True


def test_an_ungrounded_hosted_answer_is_retracted_for_the_extractive_one(
    stores: Dependencies, hosted: HostedStandIn
) -> None:
    hosted.answer(["The speaker", " wears a blue", " shirt [2]."])
    events: list[AnswerEvent] = list(
        service_for(stores, hosted.url).events_over(
            "set white with p two soon", CONTEXT, stream=True
        )
    )
    [rejected] = [e for e in events if isinstance(e, DraftRejected)]
    assert rejected.reason.startswith("sentence 1 is not supported by the moments it cites")
    draft = events[: events.index(rejected)]
    assert " ".join(e.text for e in draft if isinstance(e, AnswerPiece)) == (
        "The speaker wears a blue shirt [1]."
    )
    answered = events[-1]
    assert isinstance(answered, Answered)
    done = answered.response
    assert done.answer == "Speech: Set white with P2 soon. [1]" and done.citations == [SPEAKER]
    assert (done.generator, done.fallback_from) == ("extractive", "openai")
    assert done.fallback_reason == rejected.reason and done.grounded is True


@pytest.mark.parametrize(
    ("draft", "reason"),
    [
        ("There are five bottles [1].", "sentence 1 states 5, which its moments do not"),
        (
            "There are three bottles [7].",
            "the answer cites no passage of the context (dropped [7])",
        ),
        ("There are three bottles.", "the answer cites no passage of the context"),
    ],
)
def test_a_draft_with_a_wrong_number_or_no_valid_citation_falls_back(
    stores: Dependencies, hosted: HostedStandIn, draft: str, reason: str
) -> None:
    hosted.answer(draft)
    result = service_for(stores, hosted.url).answer_over("How many bottles are there?", CONTEXT)
    assert (result.generator, result.fallback_from, result.fallback_reason) == (
        "extractive",
        "openai",
        reason,
    )
    assert result.answer == "A scene showing three bottles and a person. [1]"
    assert result.citations == [BOTTLES]


def test_a_hosted_dont_know_is_the_dont_know_answer(
    stores: Dependencies, hosted: HostedStandIn
) -> None:
    hosted.answer("I don't know.")
    result = service_for(stores, hosted.url).answer_over("Who won the match?", CONTEXT)
    assert result.model_dump(include={"answer", "citations", "grounded", "generator"}) == {
        "answer": DONT_KNOW,
        "citations": [],
        "grounded": False,
        "generator": "openai",
    }


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (503, {"error": {"message": "overloaded"}}, "HTTP 503: overloaded"),
        (401, {"error": {"message": "bad key"}}, "HTTP 401: bad key"),
    ],
)
def test_an_endpoint_error_falls_back_with_its_reason(
    stores: Dependencies, hosted: HostedStandIn, status: int, body: Any, reason: str
) -> None:
    hosted.replies.append((status, body))
    result = service_for(stores, hosted.url).answer_over("set white with p two soon", CONTEXT)
    assert result.fallback_reason == (
        f"the openai generator failed: {hosted.url}/chat/completions: {reason}"
    )
    assert result.generator == "extractive" and result.citations == [SPEAKER]


def test_an_unreachable_endpoint_falls_back(stores: Dependencies) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = service_for(stores, url).answer_over("set white with p two soon", CONTEXT)
    assert result.fallback_reason is not None
    assert result.fallback_reason.startswith(
        f"the openai generator failed: {url}/chat/completions: cannot connect"
    )
    assert result.answer == "Speech: Set white with P2 soon. [1]"


def test_i_dont_know_quoted_from_a_cited_moment_is_an_answer(
    stores: Dependencies, hosted: HostedStandIn
) -> None:
    keys = moment(
        "vc:0", "vc", 5.0, "A scene showing a person. Speech: I don't know where the keys are."
    )
    hosted.answer("The person says: I don't know where the keys are [3].")
    result = service_for(stores, hosted.url).answer_over(
        "What does the person say about the keys?", [*CONTEXT, keys]
    )
    assert result.answer == "The person says: I don't know where the keys are [1]."
    assert result.citations == [keys] and result.grounded is True
    assert result.generator == "openai"
