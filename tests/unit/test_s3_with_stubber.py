"""S3 paths against botocore's Stubber.

FAKE, labelled as such: AWS cannot be reached from this machine, so these tests check the
requests we make and how we map the answers, not a real bucket.
"""

from __future__ import annotations

import io

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from agents.shared.blob_store import InvalidBlobKey, S3BlobStore
from vip.settings import load_settings
from vip.upload import UploadError, build_event


@pytest.fixture
def s3():
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def test_an_s3_upload_is_identified_by_its_etag_and_size(s3):
    client, stubber = s3
    stubber.add_response(
        "head_object",
        {"ContentLength": 1234, "ETag": '"abc"', "ContentType": "video/mp4"},
        {"Bucket": "videos", "Key": "clips/a.mp4"},
    )
    event = build_event("s3://videos/clips/a.mp4", load_settings(), s3_client=client)
    assert event.source == "s3://videos/clips/a.mp4"
    assert event.size_bytes == 1234
    assert event.video_id.startswith("v") and len(event.video_id) == 17


def test_an_s3_object_that_is_not_a_video_is_refused(s3):
    client, stubber = s3
    stubber.add_response(
        "head_object",
        {"ContentLength": 10, "ETag": '"x"', "ContentType": "text/html"},
        {"Bucket": "videos", "Key": "index.html"},
    )
    with pytest.raises(UploadError, match=r"not a video \(Content-Type text/html\)"):
        build_event("s3://videos/index.html", load_settings(), s3_client=client)


def test_a_missing_s3_object_is_refused_with_the_reason(s3):
    client, stubber = s3
    stubber.add_client_error("head_object", service_error_code="404", http_status_code=404)
    with pytest.raises(UploadError, match=r"s3://videos/missing.mp4: cannot be read"):
        build_event("s3://videos/missing.mp4", load_settings(), s3_client=client)


def test_keyframes_are_written_under_the_prefix_and_read_back(s3):
    client, stubber = s3
    stubber.add_response(
        "put_object",
        {},
        {
            "Bucket": "blobs",
            "Key": "vip/keyframes/v1/0.jpg",
            "Body": b"jpeg",
            "ContentType": "image/jpeg",
        },
    )
    stubber.add_response(
        "get_object",
        {"Body": StreamingBody(io.BytesIO(b"jpeg"), 4)},
        {"Bucket": "blobs", "Key": "vip/keyframes/v1/0.jpg"},
    )
    store = S3BlobStore(client, "blobs", "vip")
    uri = store.put("keyframes/v1/0.jpg", b"jpeg", "image/jpeg")
    assert uri == "s3://blobs/vip/keyframes/v1/0.jpg"
    assert store.get(uri) == b"jpeg"


def test_blob_uris_from_another_bucket_are_refused(s3):
    client, _ = s3
    with pytest.raises(InvalidBlobKey, match="is not in bucket 'blobs'"):
        S3BlobStore(client, "blobs", "vip").get("s3://elsewhere/secret.jpg")
