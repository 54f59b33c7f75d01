"""Pure description of a moment in words, the text that gets embedded."""

from __future__ import annotations

from collections import Counter, defaultdict

from streams.records import ChunkAnalysed

MAX_TEXT_CHARS = 4000
_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def moment_id(video_id: str, chunk_index: int) -> str:
    """Primary key of a moment: stable across redeliveries, so Milvus upserts are idempotent."""
    return f"{video_id}:{chunk_index:05d}"


def keyframe_id(video_id: str, chunk_index: int, time: float) -> str:
    """Primary key of one keyframe's vector, ``video_id:chunk:time_ms``."""
    return f"{moment_id(video_id, chunk_index)}:{round(time * 1000):08d}"


def keyframe_labels(analysis: ChunkAnalysed, time: float) -> tuple[str, ...]:
    """What was seen in the keyframe at ``time``: detected objects, then image tags, each
    strongest first."""
    objects = sorted((o for o in analysis.objects if o.time == time), key=lambda o: -o.score)
    tags = sorted((t for t in analysis.tags if t.time == time), key=lambda t: -t.score)
    return tuple(dict.fromkeys([*(o.label for o in objects), *(t.label for t in tags)]))


def words_in_moment(analysis: ChunkAnalysed) -> str:
    """The moment's own words, on screen and spoken: the text part of the multimodal vector."""
    on_screen = _unique([line.text for line in analysis.ocr], 10)
    speech = " ".join(segment.text.strip() for segment in analysis.transcript).strip()
    return " ".join([*on_screen, speech]).strip()[:MAX_TEXT_CHARS]


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


def _listed(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def top_tags(analysis: ChunkAnalysed, limit: int = 5) -> list[str]:
    """Tag labels by their best score in the chunk, strongest first."""
    best: dict[str, float] = {}
    for tag in analysis.tags:
        best[tag.label] = max(best.get(tag.label, 0.0), tag.score)
    return [label for label, _ in sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def _unique(texts: list[str], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        cleaned = " ".join(text.split())
        if cleaned and cleaned.lower() not in {s.lower() for s in seen}:
            seen[cleaned] = None
    return list(seen)[:limit]


def describe(analysis: ChunkAnalysed) -> tuple[str, tuple[str, ...]]:
    """The moment in words, most telling first (the embedding model reads 256 tokens), and its
    labels: detected objects (most prominent first), then image tags."""
    counts = label_counts(analysis)
    tags = top_tags(analysis)
    parts = []
    if counts:
        parts.append(
            f"A scene showing {_listed([_plural(label, n) for label, n in counts.items()])}."
        )
    faces = max(Counter(face.time for face in analysis.faces).values(), default=0)
    if faces:
        parts.append(
            "A face is visible."
            if faces == 1
            else f"{_plural('face', faces)} are visible.".capitalize()
        )
    if tags:
        parts.append(f"It looks like {_listed(tags)}.")
    parts.extend(_unique([c.text for c in analysis.captions], 3))
    on_screen = _unique([line.text for line in analysis.ocr], 10)
    if on_screen:
        parts.append(f"On-screen text: {' / '.join(on_screen)}.")
    speech = " ".join(segment.text.strip() for segment in analysis.transcript).strip()
    if speech:
        parts.append(f"Speech: {speech}")
    text = " ".join(parts) if parts else "A scene with no recognised objects."
    labels = tuple(dict.fromkeys([*counts, *tags]))
    return text[:MAX_TEXT_CHARS], labels
