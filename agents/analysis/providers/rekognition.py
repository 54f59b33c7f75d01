"""Amazon Rekognition as an analysis provider (boto3).

Keyframes go to DetectLabels, DetectText and DetectFaces; videos already in S3 go to the
asynchronous shot-segment and label-detection jobs, polled until they finish. Rekognition's
boxes are ``Left/Top/Width/Height`` fractions; ours are ``(x1, y1, x2, y2)`` fractions.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import botocore
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from agents.analysis.providers.base import (
    KeyframeImage,
    ProviderRejected,
    ProviderResult,
    ProviderUnavailable,
    clip_box,
)
from streams.records import FaceDetection, ObjectDetection, OcrLine, Shot, Tag

__all__ = ["RekognitionProvider", "create_rekognition_client"]

NAME: Final = "rekognition"
# Rekognition takes at most 5 MB of raw image bytes per call.
MAX_IMAGE_BYTES: Final = 5 * 1024 * 1024
_PAGE_SIZE: Final = 1000
# ClientRequestToken allows 64 characters; leave room for the "-labels" suffix.
_JOB_TOKEN: Final = re.compile(r"^[A-Za-z0-9_-]{1,57}$")
_UNAVAILABLE_CODES: Final = frozenset(
    {
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "LimitExceededException",
    }
)
_REJECTED_CODES: Final = frozenset(
    {
        "InvalidImageFormatException",
        "ImageTooLargeException",
        "AccessDeniedException",
        "InvalidS3ObjectException",
        "InvalidParameterException",
        "VideoTooLargeException",
        "ResourceNotFoundException",
        "InvalidPaginationTokenException",
    }
)
# Connection refused/timed out, proxy and TLS failures, read timeouts, dropped connections.
_NETWORK_ERRORS: Final = (BotoConnectionError, HTTPClientError)


def _score(confidence: Any) -> float:
    return round(min(1.0, max(0.0, float(confidence) / 100.0)), 4)


def _box(bounding_box: Mapping[str, Any]) -> tuple[float, float, float, float]:
    left, top = float(bounding_box["Left"]), float(bounding_box["Top"])
    return clip_box(
        left, top, left + float(bounding_box["Width"]), top + float(bounding_box["Height"])
    )


def labels_to_records(
    labels: Sequence[Mapping[str, Any]], at: float
) -> tuple[list[ObjectDetection], list[Tag]]:
    """Labels with located instances become objects; labels without any become tags."""
    objects: list[ObjectDetection] = []
    tags: list[Tag] = []
    for label in labels:
        name = str(label["Name"]).lower()
        boxed = [i for i in label.get("Instances", ()) if "BoundingBox" in i]
        if not boxed:
            tags.append(Tag(label=name, score=_score(label["Confidence"]), time=at))
        for instance in boxed:
            confidence = instance.get("Confidence", label["Confidence"])
            objects.append(
                ObjectDetection(
                    label=name, score=_score(confidence), box=_box(instance["BoundingBox"]), time=at
                )
            )
    return objects, tags


def text_to_records(detections: Sequence[Mapping[str, Any]], at: float) -> list[OcrLine]:
    """Only LINE entries: each WORD repeats part of a line."""
    return [
        OcrLine(
            text=str(d["DetectedText"]),
            score=_score(d["Confidence"]),
            box=_box(d["Geometry"]["BoundingBox"]),
            time=at,
        )
        for d in detections
        if d.get("Type") == "LINE"
    ]


def faces_to_records(details: Sequence[Mapping[str, Any]], at: float) -> list[FaceDetection]:
    return [
        FaceDetection(score=_score(d["Confidence"]), box=_box(d["BoundingBox"]), time=at)
        for d in details
    ]


def segments_to_shots(segments: Sequence[Mapping[str, Any]]) -> list[Shot]:
    return [
        Shot(start=s["StartTimestampMillis"] / 1000.0, end=s["EndTimestampMillis"] / 1000.0)
        for s in segments
        if s.get("Type") == "SHOT"
    ]


@dataclass(frozen=True, slots=True)
class _Wait:
    """How long to keep polling the jobs of one video, and how often."""

    source: str
    deadline: float
    poll_interval_s: float
    timeout_s: float


class RekognitionProvider:
    """Calls Rekognition through an injected boto3 client (``create_rekognition_client``)."""

    name = NAME

    def __init__(
        self,
        client: Any,
        *,
        min_confidence: float = 50.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 <= min_confidence <= 100:
            raise ValueError(f"min_confidence is a percentage, got {min_confidence}")
        self.client = client
        self.min_confidence = min_confidence
        self._sleep = sleep

    def version(self) -> str:
        return f"aws-rekognition:{botocore.__version__}"

    # Keyframes ------------------------------------------------------------------------------
    def analyse_keyframes(self, frames: Sequence[KeyframeImage]) -> ProviderResult:
        objects: list[ObjectDetection] = []
        tags: list[Tag] = []
        ocr: list[OcrLine] = []
        faces: list[FaceDetection] = []
        models = {NAME: self.version()}
        for frame in frames:
            if len(frame.jpeg) > MAX_IMAGE_BYTES:
                raise ProviderRejected(
                    f"rekognition: keyframe at {frame.time}s is {len(frame.jpeg)} bytes, "
                    f"over Rekognition's {MAX_IMAGE_BYTES}"
                )
            image = {"Bytes": frame.jpeg}
            labels = self._call("DetectLabels", Image=image, MinConfidence=self.min_confidence)
            found_objects, found_tags = labels_to_records(labels.get("Labels", ()), frame.time)
            objects += found_objects
            tags += found_tags
            text = self._call("DetectText", Image=image)
            ocr += text_to_records(text.get("TextDetections", ()), frame.time)
            face_details = self._call("DetectFaces", Image=image)
            faces += faces_to_records(face_details.get("FaceDetails", ()), frame.time)
            if labels.get("LabelModelVersion"):
                models[f"{NAME}.labels"] = str(labels["LabelModelVersion"])
            if text.get("TextModelVersion"):
                models[f"{NAME}.text"] = str(text["TextModelVersion"])
        return ProviderResult(
            objects=tuple(objects),
            ocr=tuple(ocr),
            faces=tuple(faces),
            tags=tuple(tags),
            models=models,
        )

    # Videos in S3 ---------------------------------------------------------------------------
    def analyse_video(
        self,
        bucket: str,
        key: str,
        poll_interval_s: float = 5.0,
        timeout_s: float = 900.0,
        job_token: str | None = None,
    ) -> ProviderResult:
        """Shots and labels over a whole S3 video; times are seconds from the video's start.

        ``job_token`` (letters, digits, ``-``, ``_``; e.g. the upload's event id) makes a retry
        join the jobs already started instead of paying for new ones.
        """
        if poll_interval_s < 0 or timeout_s < 0:
            raise ValueError("poll_interval_s and timeout_s must be >= 0")
        video = {"S3Object": {"Bucket": bucket, "Name": key}}
        source = f"s3://{bucket}/{key}"
        deadline = time.monotonic() + timeout_s
        segment_args: dict[str, Any] = {"Video": video, "SegmentTypes": ["SHOT"]}
        label_args: dict[str, Any] = {"Video": video, "MinConfidence": self.min_confidence}
        if job_token is not None:
            if not _JOB_TOKEN.match(job_token):
                raise ValueError(f"job_token must match {_JOB_TOKEN.pattern}, got {job_token!r}")
            segment_args["ClientRequestToken"] = f"{job_token}-shots"
            label_args["ClientRequestToken"] = f"{job_token}-labels"
        # Start both before waiting on either: Rekognition runs them side by side.
        segment_job = str(self._call("StartSegmentDetection", **segment_args)["JobId"])
        label_job = str(self._call("StartLabelDetection", **label_args)["JobId"])

        segments: list[Mapping[str, Any]] = []
        wait = _Wait(source, deadline, poll_interval_s, timeout_s)
        for page in self._job_pages("GetSegmentDetection", segment_job, wait):
            segments += page.get("Segments", ())
        objects: list[ObjectDetection] = []
        tags: list[Tag] = []
        models = {NAME: self.version()}
        for page in self._job_pages("GetLabelDetection", label_job, wait, SortBy="TIMESTAMP"):
            if page.get("LabelModelVersion"):
                models[f"{NAME}.labels"] = str(page["LabelModelVersion"])
            for detection in page.get("Labels", ()):
                found_objects, found_tags = labels_to_records(
                    [detection["Label"]], detection["Timestamp"] / 1000.0
                )
                objects += found_objects
                tags += found_tags
        return ProviderResult(
            objects=tuple(objects),
            tags=tuple(tags),
            shots=tuple(segments_to_shots(segments)),
            models=models,
        )

    def _job_pages(
        self,
        operation: str,
        job_id: str,
        wait: _Wait,
        **extra: Any,
    ) -> Iterator[Mapping[str, Any]]:
        """Poll until the job leaves IN_PROGRESS, then yield every page of its results."""
        args: dict[str, Any] = {"JobId": job_id, "MaxResults": _PAGE_SIZE, **extra}
        while True:
            page = self._call(operation, **args)
            status = page.get("JobStatus")
            if status == "SUCCEEDED":
                break
            if status == "FAILED":
                reason = page.get("StatusMessage") or "no reason given"
                raise ProviderRejected(f"rekognition {operation} job {job_id} failed: {reason}")
            if time.monotonic() >= wait.deadline:
                raise ProviderUnavailable(
                    f"rekognition {operation} job {job_id} for {wait.source} still {status} "
                    f"after {wait.timeout_s}s"
                )
            self._sleep(wait.poll_interval_s)
        yield page
        while page.get("NextToken"):
            page = self._call(operation, **args, NextToken=page["NextToken"])
            yield page

    def _call(self, operation: str, **kwargs: Any) -> Mapping[str, Any]:
        method = getattr(self.client, botocore.xform_name(operation))
        try:
            response: Mapping[str, Any] = method(**kwargs)
        except ClientError as exc:
            raise _mapped(operation, exc) from exc
        except _NETWORK_ERRORS as exc:
            raise ProviderUnavailable(f"rekognition {operation}: {exc}") from exc
        except BotoCoreError as exc:  # missing credentials, bad parameters, ...
            raise ProviderRejected(f"rekognition {operation}: {exc}") from exc
        return response


def _mapped(operation: str, exc: ClientError) -> ProviderUnavailable | ProviderRejected:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = f"rekognition {operation}: {code}: {error.get('Message') or exc}"
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in _UNAVAILABLE_CODES or (code not in _REJECTED_CODES and status >= 500):
        return ProviderUnavailable(message)
    return ProviderRejected(message)


def create_rekognition_client(
    region: str,
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = None,
    endpoint_url: str | None = None,
    connect_timeout_s: float = 5.0,
    read_timeout_s: float = 30.0,
    max_attempts: int = 2,
) -> Any:
    """A real boto3 client; without keys it uses boto3's default credential chain."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region,
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        # Our stage retries transient failures itself; keep botocore's own retries few.
        retries={"mode": "standard", "max_attempts": max_attempts},
    )
    return boto3.client(
        "rekognition",
        config=config,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=session_token,
        endpoint_url=endpoint_url,
    )
