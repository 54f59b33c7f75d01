"""The grounding rule for generated answers (pure).

A generated draft is accepted only when
1. it cites at least one passage of the context with ``[n]`` (markers outside the context are
   dropped first; the rest are renumbered in order of first citation, so ``[k]`` in the answer
   is the response's k-th citation);
2. every sentence is supported by the moments it cites (or, without a marker, by any moment the
   answer cites): its MiniLM cosine with one of their sentences is at least ``MIN_SUPPORT``, and
   every number it states appears in them or in the question;
3. it is about the question: the question's cosine with one of the answer's sentences, or
   with one of the cited moments' sentences, is at least ``MIN_RELEVANCE`` (a draft that
   restates an unrelated passage, however well cited, does not answer).
A draft that says "I don't know" and cites nothing is the don't-know outcome. Anything else is
rejected, with the reason, and the service answers extractively instead (docs/answers.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np

# Both measured with MiniLM on moments of the shared clips (docs/answers.md). Faithful
# paraphrases of a passage sentence score 0.58-0.82 against it; invented facts ("the shirt is
# white / blue", "Paris") 0.00-0.40. A changed count still scores high ("five bottles" against
# "three bottles" 0.59), hence the number rule.
MIN_SUPPORT: Final = 0.5
# Questions against faithful answers or the passages they came from: 0.24-0.72; against
# unrelated ones ("What is the capital of France?" and the GRID moment): 0.00-0.14.
MIN_RELEVANCE: Final = 0.2
# A "[" further back than this is not a citation marker still being streamed.
_MAX_MARKER_CHARS: Final = 24
_DROPPED: Final = "\x00"  # stands where a marker outside the context was

_MARKER = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")
_SINGLE_MARKER = re.compile(r"\[(\d+)\]")
_LEADING_MARKERS = re.compile(r"^(?:\[\d+\])+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_DONT_KNOW = re.compile(r"\bI\s+(?:don['\u2019]?t|do\s+not)\s+know\b", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])|\b[a-z]+\b", re.IGNORECASE)
# "one" is left out: it is more often a pronoun than a count.
_NUMBER_WORDS: Final = {
    "zero": "0", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20",
    "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
}  # fmt: skip


class Renumbering:
    """Rewrites a draft's ``[n]`` markers (n: the context's numbering) as ``[k]`` (k: order
    of first citation) and drops markers outside the context, word by word as text streams in.

    ``feed`` returns the words completed so far; ``finish`` the rest. The answer is the words
    joined by single spaces, so a stream of pieces and the final text always agree. One word is
    held back so that what a dropped marker leaves ("." of "Paris [9].") joins the word before."""

    def __init__(self, context_size: int) -> None:
        self.context_size = context_size
        self.cited: list[int] = []  # 0-based context indices; citation k is cited[k - 1]
        self.dropped: list[int] = []  # numbers that point outside the context
        self._buffer = ""
        self._held: str | None = None

    def feed(self, piece: str) -> list[str]:
        self._buffer += piece
        cut = self._safe_cut(self._buffer)
        ready, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return self._words(ready)

    def finish(self) -> list[str]:
        ready, self._buffer = self._buffer, ""
        words = self._words(ready)
        if self._held is not None:
            words.append(self._held)
            self._held = None
        return words

    @staticmethod
    def _safe_cut(text: str) -> int:
        """Where the completed words end: the last white space, moved back before a marker
        that may still be open."""
        cut = max((m.start() for m in re.finditer(r"\s", text)), default=0)
        opened, closed = text.rfind("[", 0, cut), text.rfind("]", 0, cut)
        if opened > closed and cut - opened < _MAX_MARKER_CHARS:
            cut = max((m.start() for m in re.finditer(r"\s", text[:opened])), default=0)
        return cut

    def _words(self, text: str) -> list[str]:
        done = []
        for marked in _MARKER.sub(self._rewrite, text).split():
            word = marked.replace(_DROPPED, "")
            if not word:
                continue
            if marked != word and self._held is not None and not any(c.isalnum() for c in word):
                self._held += word  # the "." of "Paris [9]." goes back to "Paris"
                continue
            if self._held is not None:
                done.append(self._held)
            self._held = word
        return done

    def _rewrite(self, marker: re.Match[str]) -> str:
        kept = []
        for number in (int(n) for n in marker[1].split(",")):
            if not 1 <= number <= self.context_size:
                self.dropped.append(number)
                continue
            if number - 1 not in self.cited:
                self.cited.append(number - 1)
            kept.append(f"[{self.cited.index(number - 1) + 1}]")
        return "".join(dict.fromkeys(kept)) or _DROPPED


def renumber(text: str, context_size: int) -> tuple[str, Renumbering]:
    """A whole draft renumbered (see :class:`Renumbering`)."""
    numbering = Renumbering(context_size)
    words = numbering.feed(text) + numbering.finish()
    return " ".join(words), numbering


def says_dont_know(text: str) -> bool:
    return _DONT_KNOW.search(text) is not None


@dataclass(frozen=True)
class CitedSentence:
    text: str  # without its markers
    citations: list[int] = field(default_factory=list)  # 1-based, as in the answer


def cited_sentences(answer: str) -> list[CitedSentence]:
    """The answer's sentences with the citations each ends with. A marker written after the
    full stop ("… soon. [1] The …") belongs to the sentence before it."""
    parts: list[tuple[str, list[int]]] = []
    for raw in _SENTENCE_END.split(answer.strip()):
        leading = _LEADING_MARKERS.match(raw)
        if leading and parts:
            parts[-1][1].extend(int(n) for n in _SINGLE_MARKER.findall(leading[0]))
            raw = raw[leading.end() :]
        parts.append((raw, [int(n) for n in _SINGLE_MARKER.findall(raw)]))
    found = []
    for raw, citations in parts:
        text = " ".join(_SINGLE_MARKER.sub(" ", raw).split())
        text = re.sub(r"\s+([.,;:!?])", r"\1", text)
        if any(ch.isalnum() for ch in text):
            found.append(CitedSentence(text, list(dict.fromkeys(citations))))
    return found


def numbers_in(text: str) -> set[str]:
    """The counts and figures a text states: digits as written, number words as digits."""
    found = set()
    for token in _NUMBER.findall(text):
        if token[0].isdigit():
            found.add(token)
        elif token.lower() in _NUMBER_WORDS:
            found.add(_NUMBER_WORDS[token.lower()])
    return found


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str | None = None


@dataclass(frozen=True)
class Evidence:
    """What one cited moment offers: the rows of its sentences in the context, and the numbers
    it shows (in its text and in its place in the video, as the prompt wrote them)."""

    rows: list[int]
    numbers: frozenset[str]


def judge(
    sentences: Sequence[CitedSentence],
    sentence_vectors: np.ndarray,
    evidence: Sequence[Evidence],
    passage_vectors: np.ndarray,
    question: str,
    question_vector: np.ndarray,
    *,
    min_support: float = MIN_SUPPORT,
    min_relevance: float = MIN_RELEVANCE,
) -> Verdict:
    """Whether a renumbered draft is grounded: ``sentences[i]`` is embedded as
    ``sentence_vectors[i]``, citation k is ``evidence[k - 1]``, whose rows index
    ``passage_vectors`` (all vectors L2-normalised)."""
    if not evidence:
        return Verdict(False, "the answer cites no passage of the context")
    if not sentences:
        return Verdict(False, "the answer is empty")
    passage_vectors = np.asarray(passage_vectors, np.float32)
    sentence_vectors = np.asarray(sentence_vectors, np.float32)
    asked = numbers_in(question)
    for i, sentence in enumerate(sentences, start=1):
        cited = [evidence[k - 1] for k in sentence.citations if 1 <= k <= len(evidence)]
        sources = cited or list(evidence)
        rows = sorted({row for source in sources for row in source.rows})
        support = float(np.max(passage_vectors[rows] @ sentence_vectors[i - 1])) if rows else 0.0
        if support < min_support:
            return Verdict(
                False,
                f"sentence {i} is not supported by the moments it cites "
                f"(cosine {support:.2f} < {min_support})",
            )
        unknown = numbers_in(sentence.text) - asked.union(*(s.numbers for s in sources))
        if unknown:
            return Verdict(
                False, f"sentence {i} states {', '.join(sorted(unknown))}, which its moments do not"
            )
    question_vector = np.asarray(question_vector, np.float32)
    cited_rows = sorted({row for source in evidence for row in source.rows})
    relevance = max(
        float(np.max(sentence_vectors @ question_vector)),
        float(np.max(passage_vectors[cited_rows] @ question_vector, initial=-1.0)),
    )
    if relevance < min_relevance:
        return Verdict(
            False,
            f"the answer does not address the question (cosine {relevance:.2f} < {min_relevance})",
        )
    return Verdict(True)
