"""The issue's object-detection gates, on keyframes taken exactly as the pipeline takes them.

Each video is cut into chunks and sampled with the chunker's own functions (``plan_chunks``,
``sample_times``: every ``keyframe_every_s`` seconds plus the stream's keyframes) and decoded
with ``take_keyframes(max_side=keyframe_max_side)``, all at the default settings, so the model
sees the same JPEGs the analysis stage sends. A gate holds when its label is detected on at
least one of those keyframes at the pipeline's ``detection_min_score`` (0.3) or more.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.chunking.core import plan_chunks, sample_times
from agents.chunking.decoder import probe, take_keyframes
from agents.shared.triton_client import DETECTION_MODEL, TritonClient
from vip.settings import Settings, load_settings
from vip.stack.triton import TritonService

pytestmark = pytest.mark.stack

MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"
POLL_INTERVAL_S = 0.2
MIN_SCORE = 0.3


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(
        host="127.0.0.1",
        state_dir=tmp_path_factory.mktemp("state"),
        triton_http_port=_free_port(),
        triton_grpc_port=_free_port(),
        triton_metrics_port=_free_port(),
    )


@pytest.fixture(scope="module")
def server(settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    service = TritonService(settings, models=[DETECTION_MODEL])
    service.prepare()
    launch = service.launch()
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / "triton.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            launch.argv,
            env={**os.environ, **launch.env},
            cwd=launch.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + service.start_timeout_s
        while not service.is_ready():
            if process.poll() is not None:
                pytest.fail(
                    f"tritonserver exited with {process.returncode}:\n{_log_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"tritonserver not ready in {service.start_timeout_s} s:\n{_log_tail(log_path)}"
                )
            time.sleep(POLL_INTERVAL_S)
        yield process
    finally:
        # SIGTERM first so the server unloads its models and their stubs itself.
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # any stub left behind


@pytest.fixture(scope="module")
def client(settings: Settings, server: subprocess.Popen[bytes]) -> Iterator[TritonClient]:
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
