"""Real analyses of the shared media and an isolated Milvus Lite, for the embedding tests and
benches (bench/index_recall.py, bench/embedding_throughput.py).

Milvus is started by :class:`vip.stack.milvus.MilvusService` (the way `vip stack up` starts
it) on a free loopback port with its own data directory; analyses are made by the analysis
stage's own code (cut as the chunking agent cuts, then every local model on Triton).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agents.analysis.analyser import ChunkAnalyser
from agents.analysis.local import LocalModels, LocalOptions
from agents.chunking.cutter import CutOptions, cut_video
from agents.shared.blob_store import BlobStore
from agents.shared.triton_client import TritonClient
from streams.records import ChunkAnalysed, VideoUploaded
from tests.ports import free_port
from vip.settings import Settings
from vip.stack.errors import ServiceFailedToStart
from vip.stack.manager import StackManager
from vip.stack.milvus import MilvusService

SHARED_MEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "media"


def shared_videos() -> list[Path]:
    """Every video of the shared media that decodes (not the GRID alignment file)."""
    return sorted(p for p in (SHARED_MEDIA / "video").iterdir() if p.suffix != ".align")


@dataclass(frozen=True)
class MilvusServer:
    uri: str
    data_dir: Path


@contextlib.contextmanager
def running_milvus(settings: Settings) -> Iterator[MilvusServer]:
    """A Milvus Lite server on a free port under ``settings.state_dir``."""
    own = settings.model_copy(update={"milvus_port": free_port()})
    service = MilvusService(own)
    manager = StackManager([service], own.run_dir, own.logs_dir, host=own.host, echo=lambda _: None)
    try:
        try:
            manager.up()
        except ServiceFailedToStart as exc:
            raise RuntimeError(str(exc)) from None
        yield MilvusServer(own.milvus_uri, service.data_dir)
    finally:
        manager.down()


@contextlib.contextmanager
def triton_at(url: str | None, settings: Settings) -> Iterator[str]:
    """``url`` when given, else an isolated tritonserver serving every model (for benches)."""
    if url:
        yield url
        return
    from tests.integration.triton_server import running_triton

    with running_triton(settings):
        yield settings.triton_url


def thread_clients(url: str, timeout_s: float = 120.0) -> Callable[[], TritonClient]:
    """One Triton client per thread (they are not thread-safe), as agents.wiring hands out."""
    local = threading.local()

    def client() -> TritonClient:
        if not hasattr(local, "client"):
            local.client = TritonClient(url, inference_timeout_s=timeout_s)
        made: TritonClient = local.client
        return made

    return client


def analyse_videos(
    videos: Sequence[Path],
    triton: Callable[[], TritonClient],
    blobs: BlobStore,
    settings: Settings,
    video_ids: Sequence[str] | None = None,
) -> list[ChunkAnalysed]:
    """Every chunk of every video, analysed by the local models as the analysis stage does."""
    options = LocalOptions(detection_min_score=settings.detection_min_score)
    analyses: list[ChunkAnalysed] = []
    with ThreadPoolExecutor(settings.analysis_threads) as pool:
        analyser = ChunkAnalyser(blobs, LocalModels(triton, options, pool), lambda _: [])
        for index, video in enumerate(videos):
            video_id = video_ids[index] if video_ids else video.stem.replace(" ", "_")[:64]
            upload = VideoUploaded(
                video_id=video_id,
                source=str(video),
                size_bytes=video.stat().st_size,
                content_hash=f"{index:064d}",
            )
            cut = cut_video(
                upload,
                video,
                blobs,
                CutOptions(
                    settings.chunk_seconds, settings.keyframe_every_s, settings.keyframe_max_side
                ),
            )
            analyses.extend(analyser.analyse(chunk) for chunk in cut.chunks)
    return analyses
