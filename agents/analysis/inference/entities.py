"""Find named entities in text through the ``named_entities`` Triton model
(``triton_models/named_entities``: spaCy's ``en_core_web_sm``).

The model takes one UTF-8 text per item and answers one JSON list of
``{"text", "label", "start", "end"}`` per text, with character offsets into that text.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

from agents.shared.errors import InferenceError
from agents.shared.triton_client import TritonClient

__all__ = ["KNOWLEDGE_LABELS", "NER_MODEL", "NamedEntity", "recognise"]

NER_MODEL: Final = "named_entities"
_TEXT_INPUT: Final = "TEXT"

# The OntoNotes labels that name something a knowledge graph can hold as a node: people,
# groups, places, organisations, things and works. Dates, times, amounts and numbers
# (DATE, TIME, PERCENT, MONEY, QUANTITY, ORDINAL, CARDINAL) are values, not entities.
KNOWLEDGE_LABELS: Final = frozenset(
    {
        "PERSON",
        "NORP",  # nationalities, religious or political groups
        "FAC",  # buildings, airports, highways, bridges
        "ORG",
        "GPE",  # countries, cities, states
        "LOC",  # other places: mountain ranges, bodies of water
        "PRODUCT",
        "EVENT",
        "WORK_OF_ART",
        "LAW",
        "LANGUAGE",
    }
)


@dataclass(frozen=True, slots=True)
class NamedEntity:
    """One entity in a text; ``text[start:end]`` of the text it was found in is ``text``."""

    text: str
    label: str
    start: int
    end: int


def recognise(
    client: TritonClient,
    texts: Sequence[str],
    labels: Collection[str] = KNOWLEDGE_LABELS,
) -> list[list[NamedEntity]]:
    """The entities of each text, in text order, keeping those whose label is in ``labels``.
    An empty or blank text has none; no texts make no call."""
    if not texts:
        return []
    answers = client.call_json(NER_MODEL, _TEXT_INPUT, [text.encode("utf-8") for text in texts])
    if len(answers) != len(texts):
        raise InferenceError(f"{NER_MODEL} answered {len(answers)} results for {len(texts)} texts")
    return [
        [entity for entity in map(_entity, _entries(answer)) if entity.label in labels]
        for answer in answers
    ]


def _entries(answer: Any) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(entry, dict) for entry in answer):
        raise InferenceError(f"{NER_MODEL} answered {answer!r:.200}, not a JSON list of objects")
    return answer


def _entity(entry: dict[str, Any]) -> NamedEntity:
    return NamedEntity(
        text=str(entry["text"]),
        label=str(entry["label"]),
        start=int(entry["start"]),
        end=int(entry["end"]),
    )
