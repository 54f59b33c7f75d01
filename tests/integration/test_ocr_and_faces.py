"""The ``ocr`` and ``face_detection`` Triton models read real media correctly.

A real tritonserver serves the real ``triton_models/`` repository, started through
:class:`vip.stack.triton.TritonService` as the stack manager starts it, on free loopback ports
with a temporary state directory. Video frames are prepared exactly as the chunker prepares
keyframes: scaled in swscale to at most 640 px on the longer side and JPEG-encoded by Pillow at
the chunker's quality, so these gates measure what production sees.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import av
import psutil
import pytest

from agents.analysis.inference.ocr_faces import (
    FACE_MODEL,
    OCR_MODEL,
    Face,
    detect_faces,
    read_text,
)
from agents.chunking.decoder import JPEG_QUALITY, scaled_size
from agents.shared.errors import InferenceRejected
from agents.shared.triton_client import TritonClient
from tests.integration.triton_server import isolated_settings, running_triton
from vip.settings import Settings

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
KEYFRAME_MAX_SIDE = 640  # Settings.keyframe_max_side's default, what the chunker sends
FRAME_NUMBER = re.compile(r"Frame\s*=\s*(\d+)")


def _image(name: str) -> bytes:
    return (MEDIA / "image" / name).read_bytes()


def _keyframes(name: str, max_side: int = KEYFRAME_MAX_SIDE) -> list[bytes]:
    """Every frame of the video, scaled and encoded the way agents/chunking/decoder.py does."""
    encoded = []
    with av.open(str(MEDIA / "video" / name)) as container:
        for frame in container.decode(video=0):
            width, height = scaled_size(frame.width, frame.height, max_side)
            buffer = io.BytesIO()
            frame.to_image(width=width, height=height).save(
                buffer, format="JPEG", quality=JPEG_QUALITY
            )
            encoded.append(buffer.getvalue())
    return encoded


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[psutil.Process]:
    # Only the two models under test load: faster to start, and another model's trouble
    # cannot fail these gates.
    with running_triton(settings, models=[OCR_MODEL, FACE_MODEL]) as process:
        yield process


@pytest.fixture(scope="module")
def client(settings: Settings, server: psutil.Process) -> Iterator[TritonClient]:
    with TritonClient(settings.triton_url, inference_timeout_s=settings.triton_timeout_s) as client:
        client.wait_for_ready(deadline_s=30, models=(OCR_MODEL, FACE_MODEL))
        yield client


def test_models_report_their_weights_versions(client: TritonClient) -> None:
    assert client.model_version(OCR_MODEL) == (
        "PP-OCRv6-small-det-rec+PP-OCR-mobile-v2.0-cls+rapidocr-3.10.0"
    )
    assert client.model_version(FACE_MODEL) == (
        "haarcascade-frontalface-default+opencv-python-headless-4.11.0.86"
    )


# OCR -------------------------------------------------------------------------------------------
def test_ocr_reads_the_frame_number_on_counter_keyframes(client: TritonClient) -> None:
    # Frame i (0-based) of counter.mp4 shows "Frame = i+1" (SOURCES.md, checked by eye).
    frames = _keyframes("counter.mp4")
    assert len(frames) == 30

    pages = read_text(client, frames)

    misread = {}
    for index, lines in enumerate(pages):
        numbers = [int(m.group(1)) for line in lines if (m := FRAME_NUMBER.search(line.text))]
        if numbers != [index + 1]:
            misread[index] = [line.text for line in lines]
    assert len(frames) - len(misread) >= 0.9 * len(frames), f"misread frames: {misread}"


def test_ocr_reads_the_printed_lines_of_page_png(client: TritonClient) -> None:
    [lines] = read_text(client, [_image("page.png")])

    texts = [line.text for line in lines]
    assert texts[0] == "Region-based segmentation"
    assert len(lines) >= 6
    words = set(re.findall(r"[a-z]+", " ".join(texts).lower()))
    assert {"markers", "coins", "background", "unambiguously", "histogram"} <= words
    assert any("np.zeros" in text for text in texts)
    for line in lines:
        x1, y1, x2, y2 = line.box
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1
        assert 0.5 <= line.score <= 1
    tops = [line.box[1] for line in lines]
    assert tops == sorted(tops), "lines come in reading order, top to bottom"


def test_ocr_min_score_drops_uncertain_lines(client: TritonClient) -> None:
    [everything] = read_text(client, [_image("page.png")], min_score=0.0)
    scores = sorted({line.score for line in everything})
    assert len(scores) >= 2, f"page.png's lines all scored {scores}"
    threshold = scores[-1]  # the best line's score: every other line falls below it
    [confident] = read_text(client, [_image("page.png")], min_score=threshold)

    assert all(line.score >= threshold for line in confident)
    assert 0 < len(confident) < len(everything)


def test_ocr_rejects_bytes_that_are_not_an_image(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected) as caught:
        read_text(client, [b"this is not an image"])

    assert "IMAGE[0] is not a decodable image (20 bytes starting b'this is '" in str(caught.value)


def test_ocr_rejects_a_min_score_outside_zero_to_one(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected, match=r"MIN_SCORE must lie in \[0, 1\], got \[1\.5\]"):
        client.call_json(OCR_MODEL, "IMAGE", [_image("page.png")], scalars={"MIN_SCORE": 1.5})


# Faces -----------------------------------------------------------------------------------------
def _is_the_speakers_face(face: Face) -> bool:
    # The GRID speaker sits centred, head and shoulders: his face spans about 0.4 of the width.
    x1, y1, x2, y2 = face.box
    centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
    return 0.35 <= centre_x <= 0.65 and 0.35 <= centre_y <= 0.8 and 0.2 <= x2 - x1 <= 0.6


def test_finds_the_speakers_face_across_the_grid_clip(client: TritonClient) -> None:
    frames = _keyframes("id2_vcd_swwp2s.mpg")
    sampled = [frames[round(i * (len(frames) - 1) / 4)] for i in range(5)]

    found = detect_faces(client, sampled)

    with_face = [faces for faces in found if faces and _is_the_speakers_face(faces[0])]
    assert len(with_face) >= 0.8 * len(sampled), f"faces per frame: {found}"
    assert all(len(faces) == 1 for faces in with_face), "one speaker, one face"


@pytest.mark.parametrize("name", ["rocket.jpg", "coffee.png"])
def test_finds_no_face_at_all_in_photos_without_people(client: TritonClient, name: str) -> None:
    # min_score 0: not even a weak candidate, so the default threshold is not what hides one.
    assert detect_faces(client, [_image(name)], min_score=0.0) == [[]]


def test_face_scores_lie_in_zero_to_one_and_respect_min_score(client: TritonClient) -> None:
    frame = _keyframes("id2_vcd_swwp2s.mpg")[37]

    [[face]] = detect_faces(client, [frame], min_score=0.0)
    [above] = detect_faces(client, [frame], min_score=min(1.0, face.score + 0.001))

    assert 0.5 < face.score < 1
    assert above == []


def test_face_detection_rejects_bytes_that_are_not_an_image(client: TritonClient) -> None:
    with pytest.raises(InferenceRejected) as caught:
        detect_faces(client, [_image("rocket.jpg"), b"GIF89a-but-not-really"])

    assert "IMAGE[1] is not a decodable image (21 bytes starting b'GIF89a-b'" in str(caught.value)
