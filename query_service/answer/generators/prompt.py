"""The chat prompt for generated answers (pure): numbered context passages, the rules (cite
passages as [n], add nothing, say "I don't know" when the passages do not answer), and one
worked example of each outcome, which small models follow far better than rules alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from query_service.schemas import MomentPublic

SYSTEM: Final = (
    "You answer questions about videos using only the numbered passages the user gives. "
    "Each passage describes one moment of a video. End every sentence of your answer with the "
    "numbers of the passages it comes from, like [1] or [2][3]. Never add anything that the "
    "passages do not say. If the passages do not contain the answer, reply exactly: "
    "I don't know."
)
_EXAMPLE_PASSAGES: Final = (
    "[1] video 1, 0.0-10.0 s: A scene showing a dog and a person. Speech: Good boy, sit down.\n"
    "[2] video 2, 20.0-30.0 s: A scene showing a car. On-screen text: EXIT 12."
)
EXAMPLES: Final = (
    ("What does the person tell the dog?", "The person tells the dog: good boy, sit down [1]."),
    ("Who won the match?", "I don't know."),
)


def passage_lines(moments: Sequence[MomentPublic]) -> list[str]:
    """One line per moment: ``[n] video k, start-end s: text``. Videos are numbered in order
    of appearance (their ids mean nothing to a model and would make its output vary)."""
    videos: dict[str, int] = {}
    lines = []
    for n, moment in enumerate(moments, start=1):
        video = videos.setdefault(moment.video_id, len(videos) + 1)
        text = " ".join(moment.text.split())
        lines.append(f"[{n}] video {video}, {moment.start:.1f}-{moment.end:.1f} s: {text}")
    return lines


def user_message(question: str, block: str) -> str:
    return f"Passages:\n{block}\n\nQuestion: {' '.join(question.split())}"


def build_messages(question: str, moments: Sequence[MomentPublic]) -> list[dict[str, str]]:
    """The chat messages for ``question`` over ``moments`` (passage ``[n]`` is moments[n-1])."""
    messages = [{"role": "system", "content": SYSTEM}]
    for example_question, example_answer in EXAMPLES:
        messages.append(
            {"role": "user", "content": user_message(example_question, _EXAMPLE_PASSAGES)}
        )
        messages.append({"role": "assistant", "content": example_answer})
    block = "\n".join(passage_lines(moments))
    messages.append({"role": "user", "content": user_message(question, block)})
    return messages
