"""From pipeline events to a fresh cache: reading changes off real records, waiting for the
graph sink, and the counters (query_service/events)."""

from __future__ import annotations

import orjson
import pytest

from agents.graph.core import moment_delta
from query_service.cache import EVERYTHING, TaggedCache
from query_service.events.activity import Activity
from query_service.events.changes import read_change, video_of
from query_service.events.freshness import Freshness
from query_service.events.pending import PendingWrites
from streams import topics
from streams.errors import MalformedEvent, UnknownEventVersion
from streams.records import (
    ChunkAnalysed,
    ChunkSpan,
    GraphUpdated,
    KeyframeRef,
    MomentEmbedded,
    NodeDelta,
    ObjectDetection,
    Shot,
    encode,
)

SPAN = ChunkSpan(
    source="/m/a.mp4",
    upload_id="u1",
    chunk_index=1,
    chunk_count=3,
    start=10.0,
    end=20.0,
    video_duration=30.0,
)
KEYFRAME = KeyframeRef(time=12.0, uri="file:///k/12.jpg", width=640, height=360)


def moment(video_id: str = "v1", index: int = 1, **analysis: object) -> MomentEmbedded:
    span = SPAN.model_copy(update={"chunk_index": index})
    chunk = ChunkAnalysed(
        video_id=video_id,
        span=span,
        keyframes=(KEYFRAME,),
        shots=(Shot(start=10.0, end=20.0, keyframe=KEYFRAME),),
        **analysis,  # type: ignore[arg-type]
    )
    return MomentEmbedded(
        video_id=video_id,
        moment_id=f"{video_id}:{index:05d}",
        span=span,
        text="a bicycle",
        model="text_embedding:1",
        vector=(0.6, 0.8),
        analysis=chunk,
    )


BIKE = ObjectDetection(label="bicycle", score=0.9, box=(0.1, 0.1, 0.5, 0.5), time=12.0)


# Reading changes -----------------------------------------------------------------------------
def test_an_embedded_moment_changes_its_video_at_once() -> None:
    event = moment("v1", 2)

    change = read_change(topics.EMBEDDINGS, 1, 41, encode(event))

    assert (change.video_id, change.moment_id, change.videos) == ("v1", "v1:00002", {"v1"})
    assert (change.partition, change.offset, change.pending_write) == (1, 41, False)
    assert change.occurred_at == event.occurred_at


def test_a_graph_delta_changes_its_video_and_those_it_links_to() -> None:
    delta = moment_delta(moment("v1", objects=(BIKE,)), similar=[("v2:00004", 0.8)])

    change = read_change(topics.GRAPH_UPDATES, 0, 7, encode(delta))

    assert change.videos == {"v1", "v2"} and change.also == {"v2"}
    assert change.pending_write is True and change.everywhere is False
    assert (change.nodes, change.edges) == (len(delta.nodes), len(delta.edges))


def test_a_delta_with_a_new_alias_may_change_every_video() -> None:
    canonical = {"object:bicycle": "object:bike"}
    delta = moment_delta(moment("v1", objects=(BIKE,)), canonical=canonical)
    assert any(node.label == "Alias" for node in delta.nodes)

    change = read_change(topics.GRAPH_UPDATES, 0, 8, encode(delta))

    assert change.everywhere is True


def test_a_malformed_event_or_an_unknown_version_is_refused_with_its_reason() -> None:
    with pytest.raises(MalformedEvent, match="value is not JSON"):
        read_change(topics.GRAPH_UPDATES, 0, 1, b'{"type": "GraphUpd')
    with pytest.raises(MalformedEvent, match="expected a MomentEmbedded event, got type='X'"):
        read_change(topics.EMBEDDINGS, 0, 1, b'{"type": "X", "version": 1}')
    newer = {**orjson.loads(encode(GraphUpdated(video_id="v1"))), "version": 2}
    with pytest.raises(UnknownEventVersion, match="GraphUpdated version 2 is not supported"):
        read_change(topics.GRAPH_UPDATES, 0, 1, orjson.dumps(newer))
    with pytest.raises(MalformedEvent, match="empty message value"):
        read_change(topics.EMBEDDINGS, 0, 1, None)


def test_node_keys_name_their_video() -> None:
    assert video_of("Chunk", "v1:00003") == "v1"
    assert video_of("Shot", "v1:shot:000002000") == "v1"
    assert video_of("ChunkBoundary", "v1:boundary:000010000") == "v1"
    assert video_of("Video", "v1") == "v1"
    assert video_of("Entity", "object:bicycle") is None
    assert video_of("Chunk", "no-index") is None


# Waiting for the graph sink ------------------------------------------------------------------
def test_a_scope_is_pending_until_the_sink_commits_past_every_delta() -> None:
    pending = PendingWrites()
    assert pending.add("v1", {0: 5}) is True
    assert pending.add("v1", {0: 3, 1: 9}) is False
    assert pending.add("v2", {1: 2}) is True

    assert pending.settled({0: 5, 1: 8}) == ["v2"]
    assert pending.settled({0: -1001, 1: 9}) == []
    assert pending.settled({0: 5, 1: 9}) == ["v1"]
    assert not pending


def test_an_empty_partition_leaves_nothing_pending() -> None:
    pending = PendingWrites()

    assert pending.add(EVERYTHING, {0: 0, 1: 0}) is False
    assert pending.scopes() == []


class Tracked:
    def __init__(self) -> None:
        self.cache = TaggedCache(32, 60.0)
        self.activity = Activity()
        self.freshness = Freshness(self.cache, self.activity)

    def store(self, key: str, videos: list[str] | None) -> bool:
        return self.cache.put(key, key, videos, self.cache.begin())

    def has(self, key: str) -> bool:
        return self.cache.get(key, str) is not None


def graph_change(video_id: str, partition: int, offset: int) -> list:
    update = GraphUpdated(video_id=video_id, nodes=(NodeDelta(label="Video", key=video_id),))
    return [read_change(topics.GRAPH_UPDATES, partition, offset, encode(update))]


def test_the_cache_waits_for_the_sink_to_write_what_was_on_the_topic_at_start() -> None:
    tracked = Tracked()
    tracked.freshness.started({0: 10, 1: 0})

    assert tracked.store("moments:v1", ["v1"]) is False
    assert tracked.freshness.settle({0: 9}) == []
    assert tracked.freshness.settle({0: 10}) == [EVERYTHING]
    assert tracked.store("moments:v1", ["v1"]) is True


def test_an_embedded_moment_drops_its_video_at_once_and_counts() -> None:
    tracked = Tracked()
    tracked.freshness.started({})
    assert tracked.store("moments:v1", ["v1"]) and tracked.store("moments:v2", ["v2"])

    tracked.freshness.apply([read_change(topics.EMBEDDINGS, 0, 3, encode(moment("v1", 1)))])

    assert (tracked.has("moments:v1"), tracked.has("moments:v2")) == (False, True)
    assert tracked.store("moments:v1", ["v1"]) is True
    assert tracked.freshness.waiting_for_sink is False


def test_a_graph_delta_holds_its_video_until_the_sink_has_written_it() -> None:
    tracked = Tracked()
    tracked.freshness.started({})
    assert tracked.store("moments:v1", ["v1"]) and tracked.store("videos", None)

    tracked.freshness.apply(graph_change("v1", 1, 20))

    assert (tracked.has("moments:v1"), tracked.has("videos")) == (False, False)
    assert tracked.store("moments:v1", ["v1"]) is False
    assert tracked.store("videos", None) is False
    assert tracked.store("moments:v2", ["v2"]) is True
    assert tracked.freshness.pending() == ["v1"]

    assert tracked.freshness.settle({1: 20}) == []
    assert tracked.freshness.settle({0: 100, 1: 21}) == ["v1"]
    assert tracked.store("moments:v1", ["v1"]) is True
    assert tracked.store("videos", None) is True


def test_when_the_feed_stops_the_cache_is_off() -> None:
    tracked = Tracked()
    tracked.freshness.started({})
    tracked.freshness.apply(graph_change("v1", 0, 1))
    assert tracked.store("moments:v2", ["v2"])

    tracked.freshness.stopped()

    assert tracked.has("moments:v2") is False
    assert tracked.store("moments:v2", ["v2"]) is False
    assert tracked.freshness.pending() == [] and tracked.cache.stats().held == []


# Counters ------------------------------------------------------------------------------------
def test_counters_count_distinct_moments_deltas_and_rejections() -> None:
    activity = Activity()
    again = moment("v1", 1)
    changes = [
        read_change(topics.EMBEDDINGS, 0, 1, encode(moment("v1", 0))),
        read_change(topics.EMBEDDINGS, 0, 2, encode(again)),
        read_change(topics.EMBEDDINGS, 0, 3, encode(again)),  # a redelivery
        read_change(topics.EMBEDDINGS, 1, 1, encode(moment("v2", 0))),
        *graph_change("v1", 0, 4),
    ]

    activity.record(changes)
    activity.reject(topics.EMBEDDINGS)

    v1 = activity.video("v1")
    assert v1 is not None
    assert (v1.moments_indexed, v1.embedding_events, v1.graph_deltas) == (2, 3, 1)
    assert (v1.graph_nodes, v1.graph_edges) == (1, 0)
    totals = activity.totals()
    assert totals.events == {topics.EMBEDDINGS: 4, topics.GRAPH_UPDATES: 1}
    assert totals.rejected == {topics.EMBEDDINGS: 1}
    assert (totals.moments_indexed, totals.graph_deltas, totals.videos) == (3, 1, 2)
    assert activity.video("v3") is None


def test_counters_keep_the_most_recently_active_videos() -> None:
    activity = Activity(max_videos=2)
    for video in ("v1", "v2", "v3"):
        activity.record([read_change(topics.EMBEDDINGS, 0, 1, encode(moment(video, 0)))])

    assert [video for video, _ in activity.recent(10)] == ["v3", "v2"]
    assert activity.video("v1") is None
