"""Resolving a chat message against the earlier turns (pure).

Three kinds of follow-up are recognised, by their words:

* **after / before** ("and what happens after that?", "what came before?"): the answer is
  about the moments next to the one the previous answer was most about (its best-scored
  citation), in the same video;
* **reference** (a short message with it, they, that, there…): the message is read together
  with the previous question, and searched in the videos the previous answer cited;
* otherwise the message stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final

from query_service.chat.schemas import ChatTurn, FollowUp
from query_service.schemas import MomentPublic

_REFERRING = r"(that|this|it|then|those|these)"
_AFTER: Final = re.compile(
    rf"\b(after\s+{_REFERRING}\b|afterwards?\b|after\s*[?.!]*$|next\b(?!\s+to\b)|"
    r"then\s*[?.!]*$|later\b|subsequently\b)",
    re.IGNORECASE,
)
_BEFORE: Final = re.compile(
    rf"\b(before\s+{_REFERRING}\b|before\s*[?.!]*$|beforehand\b|earlier\b|previously\b|"
    rf"leading up to\s+{_REFERRING}\b)",
    re.IGNORECASE,
)
_REFERENCE: Final = re.compile(
    r"\b(it|its|they|them|their|that|this|those|these|there|he|she|him|her|his|one)\b",
    re.IGNORECASE,
)
# A longer message that happens to contain "it" usually says what it is about.
MAX_REFERENCE_WORDS: Final = 12


@dataclass(frozen=True)
class Resolution:
    kind: FollowUp
    question: str
    anchor: MomentPublic | None = None
    # For a reference: the videos the earlier answer cited (None: search everywhere).
    video_ids: tuple[str, ...] | None = None


def _last_cited(history: Sequence[ChatTurn]) -> ChatTurn | None:
    for turn in reversed(history):
        if turn.citations:
            return turn
    return None


def anchor_of(turn: ChatTurn) -> MomentPublic:
    """The cited moment a temporal follow-up starts from: the one the previous answer was most
    about (its best-scored citation; the earliest of equals)."""
    return min(turn.citations, key=lambda c: (-c.score, c.video_id, c.start))


def resolve(message: str, history: Sequence[ChatTurn]) -> Resolution:
    text = " ".join(message.split())
    if not history:
        return Resolution("none", text)
    cited = _last_cited(history)
    direction: FollowUp | None = None
    if _AFTER.search(text):
        direction = "after"
    elif _BEFORE.search(text):
        direction = "before"
    if direction is not None and cited is not None:
        anchor = anchor_of(cited)
        name = PurePosixPath(anchor.source).name or anchor.video_id
        where = f"{name} {anchor.start:.1f}-{anchor.end:.1f}s"
        return Resolution(direction, f"What happens {direction} {where}?", anchor)
    if _REFERENCE.search(text) and len(text.split()) <= MAX_REFERENCE_WORDS:
        previous = history[-1]
        videos = tuple(dict.fromkeys(c.video_id for c in previous.citations)) or None
        return Resolution("reference", f"{text} ({previous.resolved_question})", None, videos)
    return Resolution("none", text)
