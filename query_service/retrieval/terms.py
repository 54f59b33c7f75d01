"""What a free-text query names: keyword terms and candidate entity names (pure)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Final

MAX_TERMS: Final = 12
# Longer runs of letters and digits are no words (a hash, a long number) and are not searched;
# filters.keyword_expression accepts no longer term.
MAX_TERM_CHARS: Final = 40
MAX_NGRAM: Final = 3
_WORD = re.compile(r"[a-z0-9]+")

STOP_WORDS: Final = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "find",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "just",
        "me",
        "more",
        "most",
        "my",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "show",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "you",
        "your",
        "video",
        "clip",
        "scene",
        "moment",
        "shows",
        "showing",
    ]
)
# Everyday words for what the detector calls by its class name: the graph keys entities by
# those names, so "a man" finds the person entity. The detector (yolov4-tiny's darknet
# coco.names) spells some classes the VOC way: aeroplane, sofa, tvmonitor, motorbike.
SYNONYMS: Final = {
    "people": "person",
    "persons": "person",
    "man": "person",
    "men": "person",
    "woman": "person",
    "women": "person",
    "guy": "person",
    "pedestrian": "person",
    "bike": "bicycle",
    "cyclist": "bicycle",
    "automobile": "car",
    "doggy": "dog",
    "puppy": "dog",
    "kitten": "cat",
    "plane": "aeroplane",
    "airplane": "aeroplane",
    "couch": "sofa",
    "tv": "tvmonitor",
    "telly": "tvmonitor",
    "motorcycle": "motorbike",
}


def words(query: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFKC", query).lower())


def singular(word: str) -> str:
    """A naive English singular: enough for "bicycles", "buses", "glasses", "ladies"."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes", "ses")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def keywords(query: str) -> list[str]:
    """The content words of the query, each once, at most :data:`MAX_TERMS`."""
    found = [
        w
        for w in words(query)
        if len(w) <= MAX_TERM_CHARS and ((w not in STOP_WORDS and len(w) > 1) or w.isdigit())
    ]
    return list(dict.fromkeys(found))[:MAX_TERMS]


def entity_names(query: str) -> list[str]:
    """Normalised names the query may mean: runs of up to three content words ("water
    bottle", "mountain bike"), their singulars and everyday synonyms."""
    runs: list[list[str]] = [[]]
    for word in words(query):
        if word in STOP_WORDS:
            runs.append([])
        else:
            runs[-1].append(word)
    names: list[str] = []
    for run in runs:
        for size in range(min(MAX_NGRAM, len(run)), 0, -1):
            for start in range(len(run) - size + 1):
                gram = run[start : start + size]
                last = singular(gram[-1])
                names.append(" ".join(gram))
                names.append(" ".join([*gram[:-1], last]))
                if size == 1:
                    names.extend(SYNONYMS[w] for w in (gram[0], last) if w in SYNONYMS)
    return list(dict.fromkeys(names))[: MAX_TERMS * 3]


def word_forms(word: str) -> frozenset[str]:
    """The word, its singular and the detector's name for it (:data:`SYNONYMS`)."""
    forms = {word, singular(word)}
    return frozenset(forms | {SYNONYMS[form] for form in forms if form in SYNONYMS})


def term_coverage(terms: Sequence[str], text: str, labels: Sequence[str] = ()) -> float:
    """The share of the query's terms that the moment's text or labels contain as a whole word,
    compared by :func:`word_forms` ("bicycles" finds "bicycle", "man" finds "person", but "car"
    does not find "cartoon")."""
    if not terms:
        return 0.0
    present: set[str] = set()
    for word in [*words(text), *words(" ".join(labels))]:
        present |= word_forms(word)
    return sum(1 for term in terms if word_forms(term) & present) / len(terms)


def search_forms(terms: Sequence[str]) -> list[str]:
    """Each term followed by its other :func:`word_forms`, each once: what a literal search
    looks for so that "cars" finds "a car" and "man" finds the person label."""
    return list(
        dict.fromkeys(f for term in terms for f in (term, *sorted(word_forms(term) - {term})))
    )
