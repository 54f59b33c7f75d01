"""Pure rules for placing a live segment in the pipeline: its chunk's span on the feed's
timeline, and the feed's Video node. No I/O.

A feed is a video whose end is not known until its last segment. Downstream code reads
``chunk_count`` and ``video_duration`` as "what follows this chunk": while a feed runs, each
chunk says one more chunk follows (``segment_index + 2`` chunks, a duration one segment past
its end), so the graph links it to the next chunk, shot and face track before that chunk
exists. The final segment says the truth, which lets the graph sink complete the video.
"""

from __future__ import annotations

from datetime import timedelta

from streams.records import ChunkSpan, GraphUpdated, LiveSegmentRecorded, NodeDelta

__all__ = ["feed_upload_id", "feed_video_delta", "segment_span"]

LIVE_STATUS = "live"


def feed_upload_id(feed_id: str) -> str:
    """The "upload" every chunk of a feed belongs to: one per feed, whatever the connection,
    so a reconnect or a restarted publisher adds chunks to the same job and Video node."""
    return f"live:{feed_id}"


def segment_span(segment: LiveSegmentRecorded) -> ChunkSpan:
    if segment.end <= segment.start:
        raise ValueError(
            f"segment {segment.segment_index} of {segment.video_id} is empty: "
            f"[{segment.start}, {segment.end})"
        )
    index = segment.segment_index
    if segment.final:
        count, duration = index + 1, segment.end
    else:
        count, duration = index + 2, segment.end + (segment.end - segment.start)
    return ChunkSpan(
        source=segment.source,
        upload_id=feed_upload_id(segment.video_id),
        chunk_index=index,
        chunk_count=count,
        start=segment.start,
        end=segment.end,
        video_duration=round(duration, 6),
    )


def feed_video_delta(
    segment: LiveSegmentRecorded, width: int, height: int, codec: str
) -> GraphUpdated:
    """The feed's Video node: "live" while it runs; at its final segment "processing" with its
    chunk count, which the graph sink turns into "completed" once every chunk is indexed."""
    props: dict[str, object] = {
        "source": segment.source,
        "status": "processing" if segment.final else LIVE_STATUS,
        "upload_id": feed_upload_id(segment.video_id),
        "error": None,
        "duration": segment.end,
        "width": width,
        "height": height,
        "codec": codec,
        "live": True,
    }
    if segment.final:
        props["chunk_count"] = segment.segment_index + 1
    if segment.segment_index == 0:
        started = segment.started_at - timedelta(seconds=segment.start)
        props["uploaded_at"] = started.isoformat()
    video = NodeDelta(label="Video", key=segment.video_id, props=props)
    return GraphUpdated(video_id=segment.video_id, nodes=(video,))
