"""`vip upload`: validate a video source and publish a VideoUploaded event."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import av
import av.error

from agents.analysis.providers.base import ProviderRejected
from agents.analysis.providers.config import build_providers
from agents.chunking.core import video_id_for
from agents.shared.delivery import NotDelivered, deliver, keyed_producer
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
        self._producer = keyed_producer(settings.kafka_bootstrap, timeout_s)

    def publish(self, event: VideoUploaded) -> None:
        """Send the event and wait until Kafka has it; UploadError says why it did not."""
        self.send(topics.VIDEOS_UPLOADED, event.video_id, encode(event))

    def send(self, topic: str, video_id: str, value: bytes) -> None:
        """Send one record keyed by its video and wait until Kafka has it."""
        try:
            deliver(self._producer, topic, video_id, value, self._timeout_s + 2)
        except NotDelivered as exc:
            raise UploadError(f"could not publish to Kafka at {self._bootstrap}: {exc}") from exc


def publish(event: VideoUploaded, settings: Settings, timeout_s: float = 15.0) -> None:
    Publisher(settings, timeout_s).publish(event)
