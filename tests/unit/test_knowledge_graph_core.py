"""The pure knowledge-graph construction: entities, shots, scene graphs, relations."""

from __future__ import annotations

import pytest

from agents.graph.knowledge import entity_key, knowledge_delta, normalise, shot_key
from agents.graph.spatial import gap, relations
from agents.graph.tracks import iou, track_faces
from streams.records import (
    ChunkAnalysed,
    ChunkSpan,
    EntityMention,
    FaceDetection,
    KeyframeRef,
    ObjectDetection,
    Shot,
    Tag,
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
KEYFRAMES = tuple(
    KeyframeRef(time=t, uri=f"file:///k/{t}.jpg", width=640, height=360)
    for t in (10.0, 12.0, 14.0, 16.0, 18.0)
)
LEFT = (0.05, 0.3, 0.25, 0.9)
RIGHT = (0.26, 0.4, 0.5, 0.95)
FAR_RIGHT = (0.8, 0.1, 0.95, 0.3)


def analysis(**fields: object) -> ChunkAnalysed:
    shots = (
        Shot(start=10.0, end=14.5, keyframe=KEYFRAMES[1]),
        Shot(start=14.5, end=20.0, keyframe=KEYFRAMES[3]),
    )
    return ChunkAnalysed(
        video_id="v1",
        span=SPAN,
        keyframes=KEYFRAMES,
        shots=shots,
        **fields,  # type: ignore[arg-type]
    )


def test_names_are_normalised_for_matching_across_videos() -> None:
    assert normalise("  The  Eiffel_Tower. ") == "eiffel tower"
    assert normalise("\u201cNASA\u201d") == "nasa"
    assert entity_key("object", "Bicycle") == "object:bicycle"
    assert shot_key("v1", 14.5) == "v1:shot:000014500"


def test_spatial_relations_follow_the_larger_offset_and_nearness() -> None:
    assert relations(LEFT, RIGHT) == [("LEFT_OF", True), ("NEAR", True)]
    assert relations(RIGHT, LEFT) == [("LEFT_OF", False), ("NEAR", True)]
    above = relations((0.4, 0.0, 0.6, 0.2), (0.45, 0.6, 0.55, 0.9))
    assert above == [("ABOVE", True)]
    assert relations(LEFT, LEFT) == [("NEAR", True)]  # same place: no direction
    assert gap(LEFT, RIGHT) == pytest.approx(0.01)
    assert gap(LEFT, FAR_RIGHT) == pytest.approx(0.55)
    assert relations(LEFT, FAR_RIGHT) == [("LEFT_OF", True)]


def test_faces_are_tracked_by_overlap_and_split_by_gaps() -> None:
    a1 = FaceDetection(score=0.9, box=(0.1, 0.1, 0.2, 0.3), time=10.0)
    a2 = FaceDetection(score=0.8, box=(0.11, 0.1, 0.21, 0.3), time=12.0)
    b1 = FaceDetection(score=0.7, box=(0.6, 0.1, 0.7, 0.3), time=12.0)
    a3 = FaceDetection(score=0.9, box=(0.1, 0.1, 0.2, 0.3), time=19.0)  # 7 s later
    tracks = track_faces([a1, b1, a2, a3])
    assert [[f.time for f in t.faces] for t in tracks] == [[10.0, 12.0], [12.0], [19.0]]
    assert iou(a1.box, a2.box) > 0.8 and iou(a1.box, b1.box) == 0.0


def test_a_chunk_becomes_shots_entities_and_scene_graphs() -> None:
    found = analysis(
        objects=(
            ObjectDetection(label="person", score=0.9, box=LEFT, time=12.0),
            ObjectDetection(label="bicycle", score=0.8, box=RIGHT, time=12.0),
            ObjectDetection(label="person", score=0.6, box=FAR_RIGHT, time=16.0),
        ),
        tags=(Tag(label="mountain bike", score=0.5, time=12.0),),
        mentions=(EntityMention(text="Paris", label="GPE", source="transcript", time=15.0),),
        faces=(FaceDetection(score=0.9, box=(0.1, 0.3, 0.15, 0.4), time=12.0),),
    )
    nodes, edges = knowledge_delta(found, "v1:00001")
    by_label: dict[str, set[str]] = {}
    for node in nodes:
        by_label.setdefault(node.label, set()).add(node.key)
    assert by_label["Shot"] == {"v1:shot:000010000", "v1:shot:000014500"}
    assert by_label["Entity"] == {
        "object:person",
        "object:bicycle",
        "tag:mountain bike",
        "gpe:paris",
        "face:v1:00001:1",
    }
    rels = {(e.type, e.start_key, e.end_key) for e in edges}
    first, second = "v1:shot:000010000", "v1:shot:000014500"
    assert ("NEXT", first, second) in rels
    assert ("NEXT", second, "v1:shot:000020000") in rels  # the next chunk's first shot
    assert ("HAS_SHOT", "v1:00001", first) in rels
    assert ("APPEARS_IN", "object:bicycle", first) in rels
    assert ("APPEARS_IN", "object:person", second) in rels
    assert ("MENTIONS", second, "gpe:paris") in rels
    # Scene graph of the first shot: person left of and near the bicycle on keyframe 12 s.
    person, bike = f"{first}:obj:00", f"{first}:obj:01"
    assert {("LEFT_OF", person, bike), ("NEAR", person, bike)} <= rels
    assert ("INSTANCE_OF", bike, "object:bicycle") in rels
    co = {(e.start_key, e.end_key, e.key) for e in edges if e.type == "CO_OCCURS"}
    assert ("object:bicycle", "object:person", first) in co
    assert all(key == first for _, _, key in co if key != second)
    appears = next(
        e
        for e in edges
        if e.type == "APPEARS_IN" and e.start_key == "object:person" and e.end_key == first
    )
    assert appears.props["times"] == [12.0] and appears.props["count"] == 1


def test_the_same_analysis_always_gives_the_same_delta() -> None:
    found = analysis(
        objects=(
            ObjectDetection(label="car", score=0.9, box=LEFT, time=10.0),
            ObjectDetection(label="car", score=0.7, box=RIGHT, time=10.0),
        )
    )
    assert knowledge_delta(found, "c") == knowledge_delta(found, "c")
    _nodes, edges = knowledge_delta(found, "c")
    appears = [e for e in edges if e.type == "APPEARS_IN"]
    assert [e.props["count"] for e in appears] == [2]


def test_the_last_shot_of_a_video_has_no_successor() -> None:
    last = ChunkAnalysed(
        video_id="v1",
        span=SPAN.model_copy(update={"start": 20.0, "end": 30.0, "chunk_index": 2}),
        keyframes=(),
        shots=(Shot(start=20.0, end=30.0),),
    )
    _, edges = knowledge_delta(last, "v1:00002")
    assert not [e for e in edges if e.type == "NEXT"]


def test_similar_moments_are_the_best_of_other_videos_above_the_floor() -> None:
    from agents.graph.core import nearest_elsewhere

    hits = [("v1:00000", "v1", 0.99), ("v2:00003", "v2", 0.8), ("v3:00001", "v3", 0.7)]
    hits += [("v4:00000", "v4", 0.65), ("v5:00002", "v5", 0.4)]
    assert nearest_elsewhere("v1", hits, 2, 0.6) == [("v2:00003", 0.8), ("v3:00001", 0.7)]
    assert nearest_elsewhere("v1", hits, 9, 0.6)[-1] == ("v4:00000", 0.65)


def test_face_tracks_at_chunk_edges_meet_at_boundary_nodes() -> None:
    found = analysis(
        faces=(
            FaceDetection(score=0.9, box=(0.1, 0.1, 0.2, 0.3), time=10.0),  # at the start
            FaceDetection(score=0.9, box=(0.6, 0.1, 0.7, 0.3), time=18.0),  # near the end
        )
    )
    _, edges = knowledge_delta(found, "v1:00001")
    meets = {
        (e.type, e.start_key, e.end_key, e.props["time"])
        for e in edges
        if e.end_label == "ChunkBoundary"
    }
    assert meets == {
        ("STARTS_AT", "face:v1:00001:1", "v1:boundary:000010000", 10.0),
        ("ENDS_AT", "face:v1:00001:2", "v1:boundary:000020000", 18.0),
    }


def test_copies_of_one_clip_tied_on_score_are_picked_by_moment_id_whatever_their_order() -> None:
    from agents.graph.core import nearest_elsewhere

    ties = [("v9:00000", "v9", 0.99991), ("v3:00000", "v3", 0.99993), ("v7:00000", "v7", 0.9999)]
    ties += [("v2:00000", "v2", 0.5)]
    picked = nearest_elsewhere("v1", ties, 2, 0.6)
    assert [mid for mid, _ in picked] == ["v3:00000", "v7:00000"]
    assert nearest_elsewhere("v1", list(reversed(ties)), 2, 0.6) == picked


def test_a_moments_delta_names_its_similar_set_whole_even_when_empty() -> None:
    from agents.graph.core import moment_delta
    from streams.records import EdgeSet, MomentEmbedded

    moment = MomentEmbedded(
        video_id="v1", moment_id="v1:00001", span=SPAN, text="t", model="m:1", vector=(0.0,) * 4
    )
    want = EdgeSet(type="SIMILAR_TO", start_label="Chunk", start_key=moment.moment_id)
    with_one = moment_delta(moment, similar=[("v2:00000", 0.9)])
    assert with_one.replaces == (want,)
    assert [e.end_key for e in with_one.edges if e.type == "SIMILAR_TO"] == ["v2:00000"]
    assert moment_delta(moment, similar=[]).replaces == (want,)
