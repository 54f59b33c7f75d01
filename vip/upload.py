"""`vip upload`: validate a video source and publish a VideoUploaded event."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from typing import Any

import av
import av.error
from confluent_kafka import KafkaException, Producer

from agents.analysis.providers.base import ProviderRejected
from agents.analysis.providers.config import build_providers
from agents.chunking.core import video_id_for
from agents.shared.sources import LocalSource, S3Source, SourceError, parse_source, sha256_of
from streams import topics
from streams.records import VideoUploaded, encode
from vip.settings import Settings


class UploadError(Exception):
    """The upload was refused; nothing was published. The message says why."""


def _check_local_video(source: LocalSource) -> None:
    try:
        with av.open(str(source.path), mode="r") as container:
            if not container.streams.video:
                raise UploadError(f"{source.path}: not a video (no video stream found)")
    except av.error.FFmpegError as exc:
        raise UploadError(f"{source.path}: not a readable video ({exc})") from exc


def build_event(
    raw_source: str,
    settings: Settings,
    providers: Sequence[str] = ("local",),
    chunk_seconds: float | None = None,
    s3_client: Any = None,
) -> VideoUploaded:
    if not providers:
        raise UploadError("choose at least one provider (local, rekognition, vila)")
    try:
        build_providers(providers, settings, check_only=True)
    except ProviderRejected as exc:
        raise UploadError(str(exc)) from exc
    try:
        source = parse_source(raw_source, settings.allowed_source_roots)
    except SourceError as exc:
        raise UploadError(str(exc)) from exc
    if isinstance(source, LocalSource):
        _check_local_video(source)
        size = source.path.stat().st_size
        if size == 0:
            raise UploadError(f"{source.path}: empty file")
        content_hash = sha256_of(source.path)
    else:
        size, content_hash = _head_s3(source, s3_client)
    return VideoUploaded(
        video_id=video_id_for(content_hash),
        source=str(source),
        size_bytes=size,
        content_hash=content_hash,
        providers=tuple(providers),
        chunk_seconds=chunk_seconds,
    )


def _head_s3(source: S3Source, client: Any) -> tuple[int, str]:
    if client is None:
        import boto3

        client = boto3.client("s3")
    try:
        head = client.head_object(Bucket=source.bucket, Key=source.key)
    except Exception as exc:
        raise UploadError(f"{source}: cannot be read ({exc})") from exc
    content_type = str(head.get("ContentType", ""))
    if content_type and not content_type.startswith(("video/", "application/octet-stream")):
        raise UploadError(f"{source}: not a video (Content-Type {content_type})")
    identity = f"{source}|{head.get('ETag', '')}|{head.get('ContentLength', 0)}"
    return int(head.get("ContentLength", 0)), hashlib.sha256(identity.encode()).hexdigest()


class Publisher:
    """A producer of VideoUploaded events, shared by the uploads of one command (thread-safe).

    Keys are hashed with murmur2, as Faust's (and Java's) producers hash them, so a video's
    upload lands on the partition number its chunks, analyses and job will have.
    """

    def __init__(self, settings: Settings, timeout_s: float = 15.0) -> None:
        self._bootstrap = settings.kafka_bootstrap
        self._timeout_s = timeout_s
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                # One message per upload: idempotence would cost a ~0.5 s producer-id handshake
                # and protect nothing (it dedupes retries within one producer session only). A
                # rare duplicate from a retry is absorbed downstream: every sink is idempotent.
                "enable.idempotence": False,
                "acks": "all",
                "partitioner": "murmur2_random",
                "message.timeout.ms": int(timeout_s * 1000),
                "socket.connection.setup.timeout.ms": 3000,
                "log_level": 3,
            }
        )

    def publish(self, event: VideoUploaded) -> None:
        """Send the event and wait until Kafka has it; UploadError says why it did not."""
        self.send(topics.VIDEOS_UPLOADED, event.video_id, encode(event))

    def send(self, topic: str, video_id: str, value: bytes) -> None:
        """Send one record keyed by its video and wait until Kafka has it."""
        # Another thread's flush may serve this message's callback: wait for it, not the flush.
        done = threading.Event()
        failures: list[str] = []

        def delivered(err: Any, msg: Any) -> None:
            if err is not None:
                failures.append(str(err))
            done.set()

        try:
            self._producer.produce(topic, key=video_id.encode(), value=value, on_delivery=delivered)
        except (KafkaException, BufferError) as exc:
            raise UploadError(f"could not publish to Kafka at {self._bootstrap}: {exc}") from exc
        self._producer.flush(self._timeout_s + 2)
        if not done.wait(1.0) or failures:
            reason = failures[0] if failures else "delivery timed out"
            raise UploadError(f"could not publish to Kafka at {self._bootstrap}: {reason}")


def publish(event: VideoUploaded, settings: Settings, timeout_s: float = 15.0) -> None:
    Publisher(settings, timeout_s).publish(event)
