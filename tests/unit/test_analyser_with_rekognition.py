"""The analysis stage's use of Rekognition for a video stored in S3, against botocore's Stubber.

FAKE, labelled as such: AWS cannot be reached from here. The responses are invented, shaped like
Rekognition's documented ones; what is tested is that each chunk gets the keyframe results and
its own slice of ONE whole-video job, and that the result is cached.
"""

from __future__ import annotations

from pathlib import Path

import boto3
from botocore.stub import Stubber

from agents.analysis.analyser import ChunkAnalyser
from agents.analysis.providers.rekognition import RekognitionProvider
from agents.shared.blob_store import LocalBlobStore
from streams.records import ChunkCut, ChunkSpan, KeyframeRef

VIDEO = {"S3Object": {"Bucket": "videos", "Name": "clips/a.mp4"}}
UPLOAD = "0123456789abcdef0123456789abcdef"


def chunk(blobs: LocalBlobStore, index: int, start: float, end: float) -> ChunkCut:
    uri = blobs.put(f"keyframes/v1/{index}.jpg", b"\xff\xd8jpeg\xff\xd9", "image/jpeg")
    span = ChunkSpan(
        source="s3://videos/clips/a.mp4",
        upload_id=UPLOAD,
        chunk_index=index,
        chunk_count=2,
        start=start,
        end=end,
        video_duration=20.0,
    )
    return ChunkCut(
        video_id="v1",
        span=span,
        providers=("rekognition",),
        keyframes=(KeyframeRef(time=start, uri=uri, width=64, height=36),),
    )


def stub_keyframe(stubber: Stubber) -> None:
    image = {"Bytes": b"\xff\xd8jpeg\xff\xd9"}
    stubber.add_response("detect_labels", {"Labels": []}, {"Image": image, "MinConfidence": 50.0})
    stubber.add_response("detect_text", {"TextDetections": []}, {"Image": image})
    stubber.add_response("detect_faces", {"FaceDetails": []}, {"Image": image})


def test_each_chunk_gets_its_slice_of_one_video_job(tmp_path: Path):
    client = boto3.client(
        "rekognition",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    provider = RekognitionProvider(client, sleep=lambda _: None)
    blobs = LocalBlobStore(tmp_path)
    analyser = ChunkAnalyser(
        blobs,
        local=None,  # type: ignore[arg-type] - "local" not chosen
        external=lambda names: [provider],
        video_poll_interval_s=0,
    )
    with Stubber(client) as stubber:
        stub_keyframe(stubber)
        stubber.add_response(
            "start_segment_detection",
            {"JobId": "seg"},
            {"Video": VIDEO, "SegmentTypes": ["SHOT"], "ClientRequestToken": f"{UPLOAD}-shots"},
        )
        stubber.add_response(
            "start_label_detection",
            {"JobId": "lab"},
            {"Video": VIDEO, "MinConfidence": 50.0, "ClientRequestToken": f"{UPLOAD}-labels"},
        )
        stubber.add_response(
            "get_segment_detection",
            {
                "JobStatus": "SUCCEEDED",
                "Segments": [
                    {"Type": "SHOT", "StartTimestampMillis": 0, "EndTimestampMillis": 12000},
                    {"Type": "SHOT", "StartTimestampMillis": 12000, "EndTimestampMillis": 20000},
                ],
            },
            {"JobId": "seg", "MaxResults": 1000},
        )
        stubber.add_response(
            "get_label_detection",
            {
                "JobStatus": "SUCCEEDED",
                "Labels": [
                    {
                        "Timestamp": 3000,
                        "Label": {"Name": "Car", "Confidence": 90.0, "Instances": []},
                    },
                    {
                        "Timestamp": 15000,
                        "Label": {"Name": "Dog", "Confidence": 80.0, "Instances": []},
                    },
                ],
            },
            {"JobId": "lab", "MaxResults": 1000, "SortBy": "TIMESTAMP"},
        )
        stub_keyframe(stubber)  # the second chunk: keyframes only, no second job

        first = analyser.analyse(chunk(blobs, 0, 0.0, 10.0))
        second = analyser.analyse(chunk(blobs, 1, 10.0, 20.0))
        stubber.assert_no_pending_responses()

    assert [t.label for t in first.tags] == ["car"]
    assert [t.label for t in second.tags] == ["dog"]
    assert [(s.start, s.end) for s in first.shots] == [(0.0, 10.0)]
    assert [(s.start, s.end) for s in second.shots] == [(10.0, 12.0), (12.0, 20.0)]
    assert "rekognition" in first.models
    again = analyser.analyse(chunk(blobs, 1, 10.0, 20.0))  # no stub left: must be the cache
    assert again.cache_hit is True and [t.label for t in again.tags] == ["dog"]
