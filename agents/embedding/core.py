"""Pure description of a moment in words, the text that gets embedded."""

from __future__ import annotations

from collections import Counter, defaultdict

from streams.records import ChunkAnalysed

_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def moment_id(video_id: str, chunk_index: int) -> str:
    """Primary key of a moment: stable across redeliveries, so Milvus upserts are idempotent."""
    return f"{video_id}:{chunk_index:05d}"


def label_counts(analysis: ChunkAnalysed) -> dict[str, int]:
    """For each label, the most instances seen together in one keyframe."""
    per_frame: dict[float, Counter[str]] = defaultdict(Counter)
    for obj in analysis.objects:
        per_frame[obj.time][obj.label] += 1
    best: Counter[str] = Counter()
    for counts in per_frame.values():
        for label, n in counts.items():
            best[label] = max(best[label], n)
    return dict(sorted(best.items(), key=lambda item: (-item[1], item[0])))


def _plural(label: str, n: int) -> str:
    if n == 1:
        return f"a {label}"
    word = _NUMBERS.get(n, str(n))
    noun = "people" if label == "person" else (label if label.endswith("s") else f"{label}s")
    return f"{word} {noun}"


def describe(analysis: ChunkAnalysed) -> tuple[str, tuple[str, ...]]:
    """A sentence naming what the moment shows, and its labels (most prominent first)."""
    counts = label_counts(analysis)
    labels = tuple(counts)
    if not counts:
        return "A scene with no recognised objects.", labels
    phrases = [_plural(label, n) for label, n in counts.items()]
    listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return f"A scene showing {listed}.", labels
