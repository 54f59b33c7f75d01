"""The pure parts of generated answers: the prompt, citation renumbering, the grounding rule,
the OpenAI stream parser and the generator settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr, ValidationError

from query_service.answer.generators import (
    ExtractiveGenerator,
    GeneratorRejected,
    OpenAICompatGenerator,
    build_generator,
)
from query_service.answer.generators.openai_compat import (
    check_base_url,
    completion_text,
    stream_delta,
)
from query_service.answer.generators.prompt import SYSTEM, build_messages, passage_lines
from query_service.answer.grounding import (
    CitedSentence,
    Evidence,
    Renumbering,
    Verdict,
    cited_sentences,
    judge,
    numbers_in,
    renumber,
    says_dont_know,
)
from query_service.schemas import MomentPublic
from vip.settings import Settings, load_settings
from vip.stack import llm
from vip.stack.llm import LlmService
from vip.stack.stack import default_names, services


def moment(mid: str, video: str, start: float, text: str) -> MomentPublic:
    return MomentPublic(
        id=mid, video_id=video, source=f"/m/{video}.mp4", start=start, end=start + 10,
        score=0.5, text=text, labels=[], matched_labels=[], entities=[], retrievers=["vector"],
        scores={}, thumbnail_url=None,
    )  # fmt: skip


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, np.float32)
    return vector / np.linalg.norm(vector)


# The prompt ---------------------------------------------------------------------------------
def test_the_prompt_numbers_each_moment_with_its_video_in_order_of_appearance_and_time() -> None:
    moments = [
        moment("vb:0", "vb", 0, "A scene showing a dog.\nSpeech: sit."),
        moment("va:3", "va", 30, "A scene showing a car."),
        moment("vb:1", "vb", 10, "On-screen text: EXIT 12."),
    ]
    assert passage_lines(moments) == [
        "[1] video 1, 0.0-10.0 s: A scene showing a dog. Speech: sit.",
        "[2] video 2, 30.0-40.0 s: A scene showing a car.",
        "[3] video 1, 10.0-20.0 s: On-screen text: EXIT 12.",
    ]
    messages = build_messages("  What does  the dog do? ", moments)
    assert [m["role"] for m in messages] == ["system", *["user", "assistant"] * 2, "user"]
    assert messages[0]["content"] == SYSTEM and "reply exactly: I don't know." in SYSTEM
    assert messages[4]["content"] == "I don't know."
    assert messages[-1]["content"] == (
        "Passages:\n" + "\n".join(passage_lines(moments)) + "\n\nQuestion: What does the dog do?"
    )


# Citations ----------------------------------------------------------------------------------
def test_markers_are_renumbered_by_first_citation_and_those_outside_the_context_dropped() -> None:
    text, numbering = renumber("A [3]. B [1][3]. C [9]. D [1, 3] and [2,9]", context_size=3)
    assert text == "A [1]. B [2][1]. C. D [2][1] and [3]"
    assert numbering.cited == [2, 0, 1] and numbering.dropped == [9, 9]


def test_a_streamed_draft_renumbers_markers_split_across_pieces_like_the_whole_text() -> None:
    pieces = ["The man [", "2", "] says", " hi [1", "].", " Then [7", "]", ". Set white. [1] x - y"]
    numbering = Renumbering(context_size=2)
    words: list[str] = []
    for piece in pieces:
        words += numbering.feed(piece)
    words += numbering.finish()
    assert " ".join(words) == "The man [1] says hi [2]. Then. Set white. [2] x - y"
    assert " ".join(words) == renumber("".join(pieces), 2)[0]
    assert numbering.cited == [1, 0] and numbering.dropped == [7]


def test_sentences_carry_the_markers_written_after_their_full_stop() -> None:
    assert cited_sentences("Set white. [1] He waves [2]. Done. [1][2] Then more") == [
        CitedSentence("Set white.", [1]),
        CitedSentence("He waves.", [2]),
        CitedSentence("Done.", [1, 2]),
        CitedSentence("Then more", []),
    ]
    assert cited_sentences("[1]") == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I don't know.", True),
        ("i do not know what he said", True),
        ("I don\u2019t know", True),
        ("The speaker says he knows [1].", False),
        ("I know the answer [1].", False),
    ],
)
def test_a_draft_that_does_not_know_says_so(text: str, expected: bool) -> None:
    assert says_dont_know(text) is expected


def test_numbers_are_read_as_digits_and_number_words_but_not_one() -> None:
    assert numbers_in("Five bottles, 2 cars at 3.5 s, one dog; P2 and 00:04") == {
        "5",
        "2",
        "3.5",
        "00",
        "04",
    }


# The grounding rule -------------------------------------------------------------------------
QUESTION = unit(1, 0, 0, 0)
# Context sentences: rows 0-1 belong to the first cited moment, row 2 to the second.
PASSAGES = np.stack([unit(1, 1, 0, 0), unit(0, 0, 1, 0), unit(0, 0, 0, 1)])
EVIDENCE = [Evidence([0, 1], frozenset({"3"})), Evidence([2], frozenset())]


def verdict_for(
    sentences: list[CitedSentence], vectors: list[np.ndarray], question: str = "q"
) -> Verdict:
    return judge(sentences, np.stack(vectors), EVIDENCE, PASSAGES, question, QUESTION)


def test_a_sentence_close_to_a_passage_it_cites_and_to_the_question_is_grounded() -> None:
    verdict = verdict_for([CitedSentence("There are three cups.", [1])], [unit(1, 1, 0.1, 0)])
    assert verdict.accepted and verdict.reason is None


def test_a_sentence_unlike_the_moments_it_cites_is_rejected_even_if_another_matches() -> None:
    verdict = verdict_for([CitedSentence("Invented.", [2])], [unit(1, 1, 0, 0)])
    assert not verdict.accepted
    assert (
        verdict.reason == "sentence 1 is not supported by the moments it cites (cosine 0.00 < 0.5)"
    )


def test_a_sentence_without_a_marker_may_lean_on_any_cited_moment() -> None:
    sentences = [CitedSentence("Cups.", [1]), CitedSentence("And a sign.", [])]
    verdict = verdict_for(sentences, [unit(1, 1, 0, 0), unit(0.2, 0, 0, 1)])
    assert verdict.accepted


def test_a_number_the_cited_moment_does_not_state_is_rejected_unless_the_question_has_it() -> None:
    sentence = [CitedSentence("There are five cups at 3 s.", [1])]
    verdict = verdict_for(sentence, [unit(1, 1, 0, 0)])
    assert verdict.reason == "sentence 1 states 5, which its moments do not"
    assert verdict_for(sentence, [unit(1, 1, 0, 0)], question="five cups?").accepted


def test_a_grounded_draft_unrelated_to_the_question_is_rejected() -> None:
    sentences = [CitedSentence("A sign.", [1])]
    verdict = judge(sentences, np.stack([unit(0, 0, 0, 1)]), EVIDENCE[1:], PASSAGES, "q", QUESTION)
    assert verdict.reason == "the answer does not address the question (cosine 0.00 < 0.2)"


def test_a_draft_citing_nothing_is_rejected() -> None:
    sentences = [CitedSentence("Paris.", [])]
    verdict = judge(sentences, np.stack([QUESTION]), [], PASSAGES, "q", QUESTION)
    assert verdict.reason == "the answer cites no passage of the context"


# The OpenAI protocol ------------------------------------------------------------------------
def test_stream_lines_give_their_content_and_nothing_for_the_rest() -> None:
    chunk = '{"choices":[{"index":0,"delta":{"content":" soon [1]"}}]}'
    assert stream_delta(f"data: {chunk}") == " soon [1]"
    assert stream_delta('data: {"choices":[{"delta":{"role":"assistant"}}]}') is None
    assert stream_delta('data: {"choices":[]}') is None
    for line in ("", ": keep-alive", "data: [DONE]", "event: ping"):
        assert stream_delta(line) is None
    with pytest.raises(GeneratorRejected, match=r"^malformed stream chunk: \{oops$"):
        stream_delta("data: {oops")


def test_a_completion_without_text_is_rejected() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": "Hi [1]."}}]}
    assert completion_text(body) == "Hi [1]."
    with pytest.raises(GeneratorRejected, match="no choices"):
        completion_text({"error": "x"})
    with pytest.raises(GeneratorRejected, match="not text"):
        completion_text({"choices": [{"message": {"content": None}}]})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://llm.example/v1", "must be http"),
        ("https://user:pw@llm.example/v1", "must not embed credentials"),
        ("https://llm.example/v1?key=1", "query or fragment"),
    ],
)
def test_unsafe_endpoints_are_refused(url: str, message: str) -> None:
    with pytest.raises(GeneratorRejected, match=message):
        check_base_url(url)
    assert check_base_url("https://llm.example/v1/") == "https://llm.example/v1"


# Settings -----------------------------------------------------------------------------------
def test_the_generator_follows_the_settings() -> None:
    assert isinstance(build_generator(Settings()), ExtractiveGenerator)
    local = build_generator(Settings(answer_generator="local", llm_port=18090))
    assert isinstance(local, OpenAICompatGenerator) and local.name == "local"
    assert local.url == "http://127.0.0.1:18090/v1/chat/completions"
    hosted = build_generator(
        load_settings(
            answer_generator="openai",
            answer_llm_url="https://llm.example/v1/",
            answer_llm_model="gpt-4o-mini",
            answer_llm_api_key=SecretStr("sk-test-not-a-placeholder"),
        )
    )
    assert isinstance(hosted, OpenAICompatGenerator)
    assert (hosted.name, hosted.url, hosted.model) == (
        "openai",
        "https://llm.example/v1/chat/completions",
        "gpt-4o-mini",
    )
    assert "sk-test" not in repr(hosted)


def test_a_hosted_generator_needs_an_endpoint_and_a_real_key() -> None:
    with pytest.raises(ValidationError, match="answer_generator 'openai' needs answer_llm_url"):
        Settings(answer_generator="openai")
    with pytest.raises(ValidationError, match="is a placeholder"):
        Settings(answer_llm_api_key=SecretStr("changeme"))


# The local LLM service ----------------------------------------------------------------------
def test_plain_stack_up_starts_the_llm_only_when_answers_use_it() -> None:
    assert "llm" not in default_names(Settings())
    assert default_names(Settings(answer_generator="local"))[-1] == "llm"
    assert "llm" in [service.name for service in services(Settings())]


def test_the_llm_server_runs_from_its_own_environment_on_loopback(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path, llm_port=18090, llm_threads=1)
    launch = LlmService(settings).launch()
    venv = tmp_path / "venvs" / "llm"
    assert launch.argv == [
        str(venv / "bin" / "python"),
        str(Path(llm.__file__).with_name("llm_server.py")),
        "--model", str(venv / "lib" / "python3.11" / "site-packages" / llm.BUNDLED_MODEL),
        "--alias", "SmolLM2-135M-Instruct",
        "--host", "127.0.0.1",
        "--port", "18090",
        "--threads", "1",
        "--ctx-size", "4096",
    ]  # fmt: skip
    assert LlmService(settings).is_ready() is False  # nothing listens on 18090
