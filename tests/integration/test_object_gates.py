"""The issue's object-detection gates, on keyframes taken exactly as the pipeline takes them.

Each video is cut into chunks and sampled with the chunker's own functions (``plan_chunks``,
``sample_times``: every ``keyframe_every_s`` seconds plus the stream's keyframes) and decoded
with ``take_keyframes(max_side=keyframe_max_side)``, all at the default settings, so the model
sees the same JPEGs the analysis stage sends. A gate holds when its label is detected on at
least one of those keyframes at the pipeline's ``detection_min_score`` (0.3) or more.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from agents.chunking.core import plan_chunks, sample_times
from agents.chunking.decoder import probe, take_keyframes
from agents.shared.triton_client import DETECTION_MODEL, TritonClient
from tests.integration.triton_server import isolated_settings, running_triton
from vip.settings import Settings

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
MIN_SCORE = 0.3


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(tmp_path_factory)


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[psutil.Process]:
    with running_triton(settings, models=[DETECTION_MODEL]) as process:
        yield process


@pytest.fixture(scope="module")
def client(settings: Settings, server: psutil.Process) -> Iterator[TritonClient]:
    with TritonClient(settings.triton_url, inference_timeout_s=settings.triton_timeout_s) as client:
        client.wait_for_ready(deadline_s=30, models=(DETECTION_MODEL,))
        yield client


def _pipeline_keyframes(name: str, settings: Settings) -> tuple[list[float], list[bytes]]:
    path = MEDIA / "video" / name
    info = probe(path)
    times = [
        t
        for chunk in plan_chunks(info.keyframe_times, info.duration, settings.chunk_seconds)
        for t in sample_times(
            chunk.start, chunk.end, settings.keyframe_every_s, info.keyframe_times
        )
    ]
    frames = take_keyframes(path, times, settings.keyframe_max_side)
    return times, [frame.jpeg for frame in frames]


def test_the_gates_use_the_pipeline_defaults(settings: Settings) -> None:
    assert settings.detection_min_score == MIN_SCORE
    assert (settings.chunk_seconds, settings.keyframe_every_s, settings.keyframe_max_side) == (
        10.0,
        2.0,
        640,
    )


@pytest.mark.parametrize(
    ("video", "label"),
    [
        ("bikes.mp4", "person"),
        ("bikes.mp4", "bicycle"),
        ("car-detection.mp4", "car"),
        ("bottle-detection.mp4", "bottle"),
    ],
)
def test_the_issue_gate_label_is_found_on_a_sampled_keyframe(
    client: TritonClient, settings: Settings, video: str, label: str
) -> None:
    times, jpegs = _pipeline_keyframes(video, settings)

    detections = client.detect_objects(jpegs, min_score=0.05)

    best = {
        t: max((d.score for d in found if d.label == label), default=0.0)
        for t, found in zip(times, detections, strict=True)
    }
    assert max(best.values()) >= MIN_SCORE, (
        f"no {label} at >= {MIN_SCORE} on {video}'s keyframes; best score per keyframe: "
        f"{ {round(t, 2): round(s, 3) for t, s in best.items()} }"
    )
