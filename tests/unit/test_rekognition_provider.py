"""The Rekognition provider against botocore's Stubber.

FAKE, labelled as such: AWS cannot be reached from this machine. Every response below is
invented, shaped like the ones Rekognition's API reference documents (DetectLabels, DetectText,
DetectFaces, Start/GetSegmentDetection, Start/GetLabelDetection), and the Stubber checks both
our requests and these responses against botocore's real service model. So these tests prove
the requests we make and how we map the answers, not what Rekognition would find in an image.
"""

from __future__ import annotations

import socket

import boto3
import botocore
import pytest
from botocore.stub import Stubber

from agents.analysis.providers.base import (
    KeyframeImage,
    ProviderRejected,
    ProviderResult,
    ProviderUnavailable,
)
from agents.analysis.providers.config import ProviderSettings, build_providers
from agents.analysis.providers.rekognition import RekognitionProvider, create_rekognition_client
from streams.records import FaceDetection, ObjectDetection, OcrLine, Shot, Tag

VERSION = f"aws-rekognition:{botocore.__version__}"
VIDEO = {"S3Object": {"Bucket": "videos", "Name": "clips/a.mp4"}}


def keyframe(time: float, jpeg: bytes = b"\xff\xd8fake-jpeg\xff\xd9") -> KeyframeImage:
    return KeyframeImage(time=time, jpeg=jpeg, width=640, height=360)


def box(left: float, top: float, width: float, height: float) -> dict[str, float]:
    return {"Left": left, "Top": top, "Width": width, "Height": height}


@pytest.fixture
def stubbed():
    client = boto3.client(
        "rekognition",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    sleeps: list[float] = []
    with Stubber(client) as stubber:
        yield RekognitionProvider(client, sleep=sleeps.append), stubber, sleeps
        stubber.assert_no_pending_responses()


def stub_empty_text_and_faces(stubber: Stubber, image: dict[str, bytes]) -> None:
    stubber.add_response("detect_text", {"TextDetections": []}, {"Image": image})
    stubber.add_response("detect_faces", {"FaceDetails": []}, {"Image": image})


def test_labels_with_instances_become_objects_and_labels_without_become_tags(stubbed):
    provider, stubber, _ = stubbed
    frame = keyframe(4.0)
    image = {"Bytes": frame.jpeg}
    labels = [
        {
            "Name": "Person",
            "Confidence": 99.5,
            "Instances": [
                {"BoundingBox": box(0.1, 0.2, 0.25, 0.5), "Confidence": 98.0},
                # Rekognition boxes may overshoot the image edge; ours are clipped to it.
                {"BoundingBox": box(0.9, -0.05, 0.2, 0.6), "Confidence": 80.25},
            ],
            "Parents": [],
        },
        {"Name": "Outdoors", "Confidence": 91.0, "Instances": [], "Parents": []},
    ]
    stubber.add_response(
        "detect_labels",
        {"Labels": labels, "LabelModelVersion": "3.0"},
        {"Image": image, "MinConfidence": 50.0},
    )
    stub_empty_text_and_faces(stubber, image)

    result = provider.analyse_keyframes([frame])

    assert result == ProviderResult(
        objects=(
            ObjectDetection(label="person", score=0.98, box=(0.1, 0.2, 0.35, 0.7), time=4.0),
            ObjectDetection(label="person", score=0.8025, box=(0.9, 0.0, 1.0, 0.55), time=4.0),
        ),
        tags=(Tag(label="outdoors", score=0.91, time=4.0),),
        models={"rekognition": VERSION, "rekognition.labels": "3.0"},
    )


def test_text_lines_become_ocr_lines_and_words_are_ignored(stubbed):
    provider, stubber, _ = stubbed
    frame = keyframe(2.0)
    image = {"Bytes": frame.jpeg}
    stubber.add_response("detect_labels", {"Labels": []}, {"Image": image, "MinConfidence": 50.0})
    line_box = {"BoundingBox": box(0.05, 0.8, 0.4, 0.1), "Polygon": []}
    stubber.add_response(
        "detect_text",
        {
            "TextDetections": [
                {
                    "DetectedText": "EXIT 12",
                    "Type": "LINE",
                    "Id": 0,
                    "Confidence": 97.5,
                    "Geometry": line_box,
                },
                {
                    "DetectedText": "EXIT",
                    "Type": "WORD",
                    "Id": 1,
                    "ParentId": 0,
                    "Confidence": 98.0,
                    "Geometry": {"BoundingBox": box(0.05, 0.8, 0.25, 0.1)},
                },
                {
                    "DetectedText": "12",
                    "Type": "WORD",
                    "Id": 2,
                    "ParentId": 0,
                    "Confidence": 96.0,
                    "Geometry": {"BoundingBox": box(0.32, 0.8, 0.13, 0.1)},
                },
            ],
            "TextModelVersion": "3.0",
        },
        {"Image": image},
    )
    stubber.add_response(
        "detect_faces",
        {"FaceDetails": [{"BoundingBox": box(0.4, 0.1, 0.2, 0.3), "Confidence": 99.99}]},
        {"Image": image},
    )

    result = provider.analyse_keyframes([frame])

    assert result.ocr == (
        OcrLine(text="EXIT 12", score=0.975, box=(0.05, 0.8, 0.45, 0.9), time=2.0),
    )
    assert result.faces == (FaceDetection(score=0.9999, box=(0.4, 0.1, 0.6, 0.4), time=2.0),)
    assert result.objects == () and result.tags == ()
    assert result.models == {"rekognition": VERSION, "rekognition.text": "3.0"}


def test_each_keyframe_is_analysed_at_its_own_time(stubbed):
    provider, stubber, _ = stubbed
    frames = [keyframe(0.0, b"first"), keyframe(2.0, b"second")]
    for frame, name in zip(frames, ["Dog", "Cat"], strict=True):
        image = {"Bytes": frame.jpeg}
        stubber.add_response(
            "detect_labels",
            {"Labels": [{"Name": name, "Confidence": 60.0, "Instances": []}]},
            {"Image": image, "MinConfidence": 50.0},
        )
        stub_empty_text_and_faces(stubber, image)

    result = provider.analyse_keyframes(frames)

    assert result.tags == (
        Tag(label="dog", score=0.6, time=0.0),
        Tag(label="cat", score=0.6, time=2.0),
    )


def test_an_s3_video_is_polled_until_done_and_every_page_is_read(stubbed):
    provider, stubber, sleeps = stubbed
    stubber.add_response(
        "start_segment_detection",
        {"JobId": "seg-1"},
        {"Video": VIDEO, "SegmentTypes": ["SHOT"], "ClientRequestToken": "up-42-shots"},
    )
    stubber.add_response(
        "start_label_detection",
        {"JobId": "lab-1"},
        {"Video": VIDEO, "MinConfidence": 50.0, "ClientRequestToken": "up-42-labels"},
    )
    segment_query = {"JobId": "seg-1", "MaxResults": 1000}
    stubber.add_response("get_segment_detection", {"JobStatus": "IN_PROGRESS"}, segment_query)
    stubber.add_response(
        "get_segment_detection",
        {
            "JobStatus": "SUCCEEDED",
            "Segments": [
                {"Type": "SHOT", "StartTimestampMillis": 0, "EndTimestampMillis": 4200},
                {"Type": "TECHNICAL_CUE", "StartTimestampMillis": 0, "EndTimestampMillis": 120},
            ],
            "NextToken": "page-2",
        },
        segment_query,
    )
    stubber.add_response(
        "get_segment_detection",
        {
            "JobStatus": "SUCCEEDED",
            "Segments": [
                {"Type": "SHOT", "StartTimestampMillis": 4200, "EndTimestampMillis": 9960}
            ],
        },
        {**segment_query, "NextToken": "page-2"},
    )
    stubber.add_response(
        "get_label_detection",
        {
            "JobStatus": "SUCCEEDED",
            "LabelModelVersion": "3.0",
            "Labels": [
                {
                    "Timestamp": 0,
                    "Label": {
                        "Name": "Car",
                        "Confidence": 90.0,
                        "Instances": [
                            {"BoundingBox": box(0.5, 0.5, 0.25, 0.25), "Confidence": 88.0}
                        ],
                    },
                },
                {
                    "Timestamp": 4500,
                    "Label": {"Name": "Road", "Confidence": 75.5, "Instances": []},
                },
            ],
        },
        {"JobId": "lab-1", "MaxResults": 1000, "SortBy": "TIMESTAMP"},
    )

    result = provider.analyse_video(
        "videos", "clips/a.mp4", poll_interval_s=0, timeout_s=60, job_token="up-42"
    )

    assert result == ProviderResult(
        objects=(ObjectDetection(label="car", score=0.88, box=(0.5, 0.5, 0.75, 0.75), time=0.0),),
        tags=(Tag(label="road", score=0.755, time=4.5),),
        shots=(Shot(start=0.0, end=4.2), Shot(start=4.2, end=9.96)),
        models={"rekognition": VERSION, "rekognition.labels": "3.0"},
    )
    assert sleeps == [0]


def start_both_jobs(stubber: Stubber) -> None:
    stubber.add_response(
        "start_segment_detection", {"JobId": "seg-1"}, {"Video": VIDEO, "SegmentTypes": ["SHOT"]}
    )
    stubber.add_response(
        "start_label_detection", {"JobId": "lab-1"}, {"Video": VIDEO, "MinConfidence": 50.0}
    )


def test_a_failed_video_job_is_rejected_with_rekognitions_reason(stubbed):
    provider, stubber, _ = stubbed
    start_both_jobs(stubber)
    stubber.add_response(
        "get_segment_detection",
        {"JobStatus": "FAILED", "StatusMessage": "Unsupported codec/format."},
        {"JobId": "seg-1", "MaxResults": 1000},
    )

    with pytest.raises(
        ProviderRejected,
        match=r"^rekognition GetSegmentDetection job seg-1 failed: Unsupported codec/format\.$",
    ):
        provider.analyse_video("videos", "clips/a.mp4", poll_interval_s=0, timeout_s=60)


def test_a_video_job_still_running_at_the_deadline_is_unavailable(stubbed):
    provider, stubber, sleeps = stubbed
    start_both_jobs(stubber)
    stubber.add_response(
        "get_segment_detection",
        {"JobStatus": "IN_PROGRESS"},
        {"JobId": "seg-1", "MaxResults": 1000},
    )

    with pytest.raises(
        ProviderUnavailable,
        match=r"^rekognition GetSegmentDetection job seg-1 for s3://videos/clips/a\.mp4 "
        r"still IN_PROGRESS after 0s$",
    ):
        provider.analyse_video("videos", "clips/a.mp4", poll_interval_s=0, timeout_s=0)
    assert sleeps == []


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("ThrottlingException", 400, ProviderUnavailable),
        ("ProvisionedThroughputExceededException", 400, ProviderUnavailable),
        ("InternalServerError", 500, ProviderUnavailable),
        ("ServiceUnavailable", 503, ProviderUnavailable),
        ("InvalidImageFormatException", 400, ProviderRejected),
        ("ImageTooLargeException", 400, ProviderRejected),
        ("AccessDeniedException", 403, ProviderRejected),
        ("InvalidS3ObjectException", 400, ProviderRejected),
        ("InvalidParameterException", 400, ProviderRejected),
    ],
)
def test_rekognition_errors_say_whether_a_retry_can_help(stubbed, code, status, error):
    provider, stubber, _ = stubbed
    frame = keyframe(0.0)
    stubber.add_client_error(
        "detect_labels",
        service_error_code=code,
        service_message="the service said no",
        http_status_code=status,
        expected_params={"Image": {"Bytes": frame.jpeg}, "MinConfidence": 50.0},
    )

    with pytest.raises(error, match=rf"^rekognition DetectLabels: {code}: the service said no$"):
        provider.analyse_keyframes([frame])


def test_an_unreachable_endpoint_is_unavailable():
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        client = create_rekognition_client(
            "us-east-1",
            access_key_id="test",
            secret_access_key="test",
            endpoint_url=f"http://127.0.0.1:{port}",
            connect_timeout_s=2,
            max_attempts=1,
        )
        with pytest.raises(ProviderUnavailable, match=r"^rekognition DetectLabels: Could not"):
            RekognitionProvider(client).analyse_keyframes([keyframe(0.0)])


def test_rekognition_is_built_only_when_credentials_are_configured():
    configured = ProviderSettings(
        aws_region="eu-west-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="s3cr3t"
    )
    missing = ProviderSettings(aws_region="eu-west-1", aws_access_key_id=None)

    [provider] = build_providers(["local", "rekognition"], configured)

    assert isinstance(provider, RekognitionProvider)
    assert provider.client.meta.region_name == "eu-west-1"
    assert provider.version() == VERSION
    with pytest.raises(ProviderRejected, match=r"^provider 'rekognition' is not configured: set"):
        build_providers(["rekognition"], missing)
