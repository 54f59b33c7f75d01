"""Synthetic moments at scale for bench/query_load.py: texts, labels and entities shaped like
the pipeline's own, and query streams (pure and deterministic for a seed).

A moment's text follows agents/embedding/core.describe ("A scene showing two cars and a
person. It looks like cab and minivan. On-screen text: ... Speech: ..."). Videos pick a theme
(Zipf over themes, so a few kinds of footage dominate, as in a real archive), a theme holds a
few scene captions over its objects and ImageNet-style tags; about a third of moments carry
speech and a few on-screen text. Vectors are made in bench/query_stores.py from real MiniLM
embeddings of these captions, sentences and label names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# COCO classes, most often detected first (person dominates every real archive).
OBJECTS = (
    "person", "car", "chair", "bottle", "cup", "truck", "dog", "bicycle", "cell phone",
    "handbag", "bus", "traffic light", "laptop", "book", "tv", "bench", "motorcycle", "backpack",
    "dining table", "potted plant", "couch", "bird", "cat", "clock", "umbrella", "horse",
    "boat", "bowl", "sports ball", "tie", "suitcase", "keyboard", "airplane", "train",
    "wine glass", "remote", "vase", "sink", "oven", "refrigerator", "knife", "skateboard",
    "surfboard", "kite", "fire hydrant", "stop sign", "cow", "sheep", "elephant", "pizza",
)  # fmt: skip
# ImageNet classes of the kind the tagger reports on everyday footage.
TAGS = (
    "jinrikisha", "minivan", "cab", "mountain bike", "suit", "water bottle", "cellular telephone",
    "street sign", "traffic light", "parking meter", "moving van", "trolleybus", "police van",
    "sports car", "convertible", "pickup", "limousine", "tricycle", "unicycle", "moped",
    "crutch", "jean", "miniskirt", "military uniform", "lab coat", "sweatshirt", "cardigan",
    "desk", "monitor", "screen", "notebook", "library", "bookcase", "restaurant", "grocery store",
    "barbershop", "home theater", "television", "studio couch", "dining table", "patio",
    "lakeside", "seashore", "alp", "valley", "cliff", "volcano", "sandbar", "golf cart",
    "lawn mower", "scoreboard", "stage", "microphone", "loudspeaker", "guitar", "drum",
    "king penguin", "albatross", "golden retriever", "tabby", "impala", "gazelle", "ox",
    "sorrel", "balance beam", "parallel bars", "ski", "snowmobile", "speedboat", "canoe",
)  # fmt: skip
PLACES = (
    "the station", "the office", "the parking lot", "the kitchen", "the stadium", "the bridge",
    "the harbour", "the school", "the market", "the airport", "the hospital", "the park",
)  # fmt: skip
TOPICS = (
    "the budget", "the schedule", "the weather", "the delivery", "the match", "the election",
    "the new product", "the safety check", "the traffic", "the concert", "the repairs",
    "the harvest", "the flight", "the training plan", "the quarterly results", "the festival",
)  # fmt: skip
VERBS = ("review", "move", "cancel", "finish", "announce", "check", "discuss", "postpone")
TIMES = ("noon", "Friday", "the weekend", "tomorrow", "the next meeting", "six o'clock")
FIRST = ("Anna", "Brian", "Chen", "Dmitri", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas")
LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski")
OVERLAYS = ("CAM {n:02d}", "EXIT", "SALE {n}%", "GATE {n}", "LIVE", "Platform {n}", "ROUTE {n}")
_NUMBERS = {2: "two", 3: "three", 4: "four", 5: "five"}

MOMENT_SECONDS = 10.0
CAPTIONS_PER_THEME = 3


@dataclass(frozen=True)
class Theme:
    objects: tuple[str, ...]
    tags: tuple[str, ...]
    captions: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (text, objects, tags)


@dataclass(frozen=True)
class Moment:
    video_id: str
    chunk_index: int
    start: float
    end: float
    text: str
    labels: tuple[str, ...]
    objects: tuple[str, ...]
    tags: tuple[str, ...]
    caption: int  # index into Corpus.captions
    speech: int | None  # index into Corpus.sentences
    overlay: int | None  # index into Corpus.overlays
    people: tuple[str, ...] = ()  # names the speech mentions


@dataclass
class Corpus:
    captions: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    speakers: list[tuple[str, ...]] = field(default_factory=list)  # names in each sentence
    overlays: list[str] = field(default_factory=list)
    moments: list[Moment] = field(default_factory=list)
    videos: dict[str, str] = field(default_factory=dict)  # video id -> source


def _plural(label: str, n: int) -> str:
    if n == 1:
        return f"a {label}"
    noun = "people" if label == "person" else (label if label.endswith("s") else f"{label}s")
    return f"{_NUMBERS.get(n, str(n))} {noun}"


def _listed(phrases: Sequence[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _zipf(rng: np.random.Generator, n: int, size: int, a: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** a
    return rng.choice(n, size=size, p=weights / weights.sum())


def _theme(rng: np.random.Generator) -> Theme:
    objects = tuple(dict.fromkeys(OBJECTS[i] for i in _zipf(rng, len(OBJECTS), 4, 0.9)))
    if rng.random() < 0.55 and "person" not in objects:
        objects = ("person", *objects[:3])
    tags = tuple(dict.fromkeys(TAGS[i] for i in rng.choice(len(TAGS), 4, replace=False)))
    captions = []
    for _ in range(CAPTIONS_PER_THEME):
        seen = [o for o in objects if rng.random() < 0.7] or [objects[0]]
        counts = [int(min(5, rng.geometric(0.6))) for _ in seen]
        shown = [t for t in tags if rng.random() < 0.6] or [tags[0]]
        phrases = [_plural(o, n) for o, n in zip(seen, counts, strict=True)]
        text = f"A scene showing {_listed(phrases)}. It looks like {_listed(shown)}."
        captions.append((text, tuple(seen), tuple(shown)))
    return Theme(objects, tags, tuple(captions))


def _sentence(rng: np.random.Generator) -> tuple[str, tuple[str, ...]]:
    who = f"{FIRST[rng.integers(len(FIRST))]} {LAST[rng.integers(len(LAST))]}"
    verb, topic = VERBS[rng.integers(len(VERBS))], TOPICS[rng.integers(len(TOPICS))]
    place, when = PLACES[rng.integers(len(PLACES))], TIMES[rng.integers(len(TIMES))]
    forms = (
        (f"{who} said we should {verb} {topic} before {when}.", (who,)),
        (f"Okay, let's {verb} {topic} at {place} by {when}.", ()),
        (f"We are live from {place}, where {topic} is on everyone's mind.", ()),
        (f"Thanks {who.split()[0]}, and now {topic}: we {verb} it after {when}.", (who,)),
    )
    return forms[int(rng.integers(len(forms)))]


def build_corpus(moments: int, themes: int, seed: int) -> Corpus:
    """``moments`` 10 s moments over videos of lognormal length (median about 5 minutes)."""
    rng = np.random.default_rng(seed)
    corpus = Corpus()
    made = [_theme(rng) for _ in range(themes)]
    for theme in made:
        corpus.captions.extend(text for text, _, _ in theme.captions)
    for _ in range(max(50, themes // 2)):
        sentence, names = _sentence(rng)
        corpus.sentences.append(sentence)
        corpus.speakers.append(names)
    corpus.overlays = [
        OVERLAYS[i % len(OVERLAYS)].format(n=int(rng.integers(1, 99))) for i in range(150)
    ]
    video = 0
    while len(corpus.moments) < moments:
        video_id = f"vsyn{video:012x}"
        corpus.videos[video_id] = f"s3://bench-archive/footage/{video_id}.mp4"
        theme_index = int(_zipf(rng, themes, 1, 0.8)[0])
        theme = made[theme_index]
        talky = rng.random() < 0.4
        length = max(1, min(360, int(rng.lognormal(np.log(30), 0.9))))
        for chunk in range(min(length, moments - len(corpus.moments))):
            pick = int(rng.integers(CAPTIONS_PER_THEME))
            text, objects, tags = theme.captions[pick]
            speech = (
                int(rng.integers(len(corpus.sentences)))
                if rng.random() < (0.75 if talky else 0.08)
                else None
            )
            overlay = int(rng.integers(len(corpus.overlays))) if rng.random() < 0.06 else None
            if overlay is not None:
                text += f" On-screen text: {corpus.overlays[overlay]}."
            if speech is not None:
                text += f" Speech: {corpus.sentences[speech]}"
            corpus.moments.append(
                Moment(
                    video_id=video_id,
                    chunk_index=chunk,
                    start=chunk * MOMENT_SECONDS,
                    end=(chunk + 1) * MOMENT_SECONDS,
                    text=text,
                    labels=tuple(dict.fromkeys([*objects, *tags])),
                    objects=objects,
                    tags=tags,
                    caption=theme_index * CAPTIONS_PER_THEME + pick,
                    speech=speech,
                    overlay=overlay,
                    people=corpus.speakers[speech] if speech is not None else (),
                )
            )
        video += 1
    return corpus


def search_queries(count: int, seed: int) -> list[str]:
    """Distinct free-text queries of the kinds users type, in a fixed shuffled order."""
    rng = np.random.default_rng(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        a, b = OBJECTS[int(_zipf(rng, len(OBJECTS), 1)[0])], OBJECTS[rng.integers(len(OBJECTS))]
        tag, place = TAGS[rng.integers(len(TAGS))], PLACES[rng.integers(len(PLACES))]
        topic = TOPICS[rng.integers(len(TOPICS))]
        who = f"{FIRST[rng.integers(len(FIRST))]} {LAST[rng.integers(len(LAST))]}"
        forms = (
            f"a {a} and a {b}",
            f"{_plural(a, int(rng.integers(2, 5)))} near {place}",
            f"a {a} next to a {tag}",
            f"someone talking about {topic}",
            f"{who} at {place}",
            f"{tag} with a {b}",
            f"a {a} in {place} talking about {topic}",
        )
        found[forms[int(rng.integers(len(forms)))]] = None
    return list(found)


def questions(count: int, seed: int) -> list[str]:
    """Distinct questions for /v1/answer, in a fixed shuffled order."""
    rng = np.random.default_rng(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        obj, topic = OBJECTS[int(_zipf(rng, len(OBJECTS), 1)[0])], TOPICS[rng.integers(len(TOPICS))]
        who = f"{FIRST[rng.integers(len(FIRST))]} {LAST[rng.integers(len(LAST))]}"
        place = PLACES[rng.integers(len(PLACES))]
        forms = (
            f"What did {who} say about {topic}?",
            f"When should we {VERBS[rng.integers(len(VERBS))]} {topic}?",
            f"Where is the {obj} near {place}?",
            f"What is said about {topic} at {place}?",
            f"Who mentions {topic}?",
            f"Is there a {obj} next to a {TAGS[rng.integers(len(TAGS))]}?",
        )
        found[forms[int(rng.integers(len(forms)))]] = None
    return list(found)


# Queries whose answer is known in the shared media (as the pipeline describes it): the video
# whose moments should rank first, with or without 100,000 synthetic moments around them.
QUALITY_QUERIES: tuple[tuple[str, str], ...] = (
    ("Brandon Castellano copyright notice", "testvideo.mp4"),
    ("set white with P2 soon", "id2_vcd_swwp2s.mpg"),
    ("frame counter with PTS timestamps", "counter.mp4"),
    ("a horse with gazelle and impala", "testvideo.mp4"),
    ("three bottles and a person", "bottle-detection.mp4"),
    ("six chairs, four people and a sofa", "classroom.gif"),
    ("a bicycle, a person and two cars", "bikes.mp4"),
    ("airliner and warplane", "video_with_failing_audio.mp4"),
    ("a car and a cell phone", "car-detection.mp4"),
    ("a king penguin by the lakeside", "big_buck_bunny_0_30.webm"),
    ("scoreboard with a timecode", "smpte-2997.mp4"),
    ("a dog and a person watching television", "fire2.mp4"),
)
