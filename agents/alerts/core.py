"""Pure evaluation of alert rules against one embedded moment (no I/O, no clock).

* label rules count detections per keyframe (the most seen at once, so one person seen in five
  keyframes is one person), matching labels in any case, singular or plural, and through a
  short list of synonyms;
* text rules look for the phrase as whole words, ignoring case and runs of white space: a plain
  scan, never a user-supplied regular expression;
* semantic rules compare the query's vector with the moment's description vector by cosine.

A rule judges the moments embedded after it was made: a replayed topic, or a consumer group
started afresh, does not raise alerts about the past.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from agents.alerts.rules import (
    AlertRule,
    LabelCondition,
    SemanticCondition,
    TextCondition,
    TextSource,
)
from streams.records import AlertClip, AlertMatch, AlertRaised, ChunkAnalysed, MomentEmbedded

EXCERPT_CHARS = 160
# What people type for the detector's (COCO) class names. Kept short on purpose: a synonym
# that is not one makes a rule fire where it should not.
SYNONYMS = {
    "people": "person",
    "human": "person",
    "pedestrian": "person",
    "bike": "bicycle",
    "cycle": "bicycle",
    "automobile": "car",
    "motorbike": "motorcycle",
    "phone": "cell phone",
    "mobile phone": "cell phone",
    "cellphone": "cell phone",
    "television": "tv",
}


@dataclass(frozen=True)
class Matched:
    match: AlertMatch
    score: float


def label_key(label: str) -> str:
    """The form two labels are compared in: lower case, single spaces, synonyms resolved,
    a plural ``s`` dropped (on both sides, so "bus" and "bus" still meet)."""
    words = " ".join(label.lower().split())
    for form in (words, _singular(words)):
        if form in SYNONYMS:
            return SYNONYMS[form]
    return _singular(words)


def _singular(words: str) -> str:
    if words.endswith("s") and not words.endswith("ss") and len(words) > 3:
        return words[:-1]
    return words


def alert_id_for(rule_id: str, moment_id: str) -> str:
    """The same rule and moment always make the same alert id."""
    digest = hashlib.sha256(f"{rule_id}\x00{moment_id}".encode()).hexdigest()
    return f"a{digest[:31]}"


def match_label(condition: LabelCondition, analysis: ChunkAnalysed) -> Matched | None:
    wanted = label_key(condition.label)
    per_keyframe: dict[float, Counter[str]] = defaultdict(Counter)
    best_score: dict[str, float] = {}
    for detection in analysis.objects:
        if label_key(detection.label) != wanted:
            continue
        per_keyframe[detection.time][detection.label] += 1
        best_score[detection.label] = max(best_score.get(detection.label, 0.0), detection.score)
    seen = [(n, label) for counts in per_keyframe.values() for label, n in counts.items()]
    if not seen:
        return None
    count, label = max(seen, key=lambda item: (item[0], best_score[item[1]]))
    if count < condition.min_count:
        return None
    return Matched(AlertMatch(kind="label", label=label, count=count), best_score[label])


def normalise_text(text: str) -> str:
    return " ".join(text.casefold().split())


def find_phrase(phrase: str, text: str) -> int | None:
    """Where ``phrase`` starts in ``text`` as whole words (both normalised), or None."""
    needle, haystack = normalise_text(phrase), normalise_text(text)
    if not needle:
        return None
    start = haystack.find(needle)
    while start >= 0:
        end = start + len(needle)
        before_ok = start == 0 or not _is_word_char(haystack[start - 1], needle[0])
        after_ok = end == len(haystack) or not _is_word_char(haystack[end], needle[-1])
        if before_ok and after_ok:
            return start
        start = haystack.find(needle, start + 1)
    return None


def _is_word_char(neighbour: str, edge: str) -> bool:
    # A phrase that ends in punctuation ("exit!") may touch anything; a word must not run on.
    return edge.isalnum() and neighbour.isalnum()


def excerpt(text: str, at: int, length: int, width: int = EXCERPT_CHARS) -> str:
    """Up to ``width`` characters of normalised ``text`` around the match at ``at``."""
    normal = normalise_text(text)
    margin = max(0, (width - length) // 2)
    start, end = max(0, at - margin), min(len(normal), at + length + margin)
    return ("…" if start else "") + normal[start:end] + ("…" if end < len(normal) else "")


def _texts(analysis: ChunkAnalysed, source: TextSource) -> Iterable[tuple[str, float]]:
    if source == "ocr":
        return ((line.text, line.score) for line in analysis.ocr)
    speech = " ".join(segment.text.strip() for segment in analysis.transcript)
    probabilities = [w.probability for s in analysis.transcript for w in s.words]
    known = [p for p in probabilities if p is not None]
    return [(speech, sum(known) / len(known) if known else 1.0)] if speech.strip() else []


def match_text(condition: TextCondition, analysis: ChunkAnalysed) -> Matched | None:
    for source in condition.sources:
        for text, score in _texts(analysis, source):
            at = find_phrase(condition.phrase, text)
            if at is not None:
                found = excerpt(text, at, len(normalise_text(condition.phrase)))
                match = AlertMatch(
                    kind="text", phrase=condition.phrase, source=source, excerpt=found
                )
                return Matched(match, score)
    return None


def cosine(a: Sequence[float], b: Sequence[float]) -> float | None:
    """None when the vectors cannot be compared (other lengths, or a zero vector)."""
    if len(a) != len(b):
        return None
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norms == 0:
        return None
    return max(-1.0, min(1.0, dot / norms))


def match_semantic(condition: SemanticCondition, moment: MomentEmbedded) -> Matched | None:
    if moment.model != condition.model:
        return None
    score = cosine(condition.vector, moment.vector)
    if score is None or score < condition.min_score:
        return None
    return Matched(AlertMatch(kind="semantic", query=condition.query), score)


def match(rule: AlertRule, moment: MomentEmbedded) -> Matched | None:
    """What of the moment ``rule`` matches, or None."""
    if not rule.watches(moment.video_id) or moment.occurred_at < rule.created_at:
        return None  # another feed's, or embedded before the rule existed (a replay)
    condition = rule.condition
    if isinstance(condition, SemanticCondition):
        return match_semantic(condition, moment)
    if moment.analysis is None:
        return None
    if isinstance(condition, LabelCondition):
        return match_label(condition, moment.analysis)
    return match_text(condition, moment.analysis)


def evaluate(
    rules: Iterable[AlertRule], moment: MomentEmbedded, now: datetime
) -> list[AlertRaised]:
    """The alerts ``moment`` raises under ``rules``, in the rules' order."""
    alerts = []
    span = moment.span
    for rule in rules:
        found = match(rule, moment)
        if found is None:
            continue
        alert_id = alert_id_for(rule.rule_id, moment.moment_id)
        alerts.append(
            AlertRaised(
                event_id=alert_id,
                occurred_at=now,
                video_id=moment.video_id,
                alert_id=alert_id,
                rule_id=rule.rule_id,
                rule_name=rule.name,
                moment_id=moment.moment_id,
                clip=AlertClip(video_id=moment.video_id, start=span.start, end=span.end),
                matched=found.match,
                score=round(found.score, 6),
                moment_at=moment.occurred_at,
                thumbnail_uri=moment.thumbnail_uri,
            )
        )
    return alerts
