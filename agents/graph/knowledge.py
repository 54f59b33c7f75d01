"""Pure construction of the knowledge graph of one analysed chunk: shots with their scene
graphs, entities, and the relationships between them (docs/graph.md draws the schema).

Every node and relationship is keyed by what it describes (video, time, label, name), never by
arrival order, so the same analysis always yields the same delta and applying it twice (a
redelivery, a re-upload of the same bytes) changes nothing.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from agents.graph.spatial import relations
from agents.graph.tracks import MAX_GAP_S, Track, track_faces
from streams.records import ChunkAnalysed, EdgeDelta, NodeDelta, ObjectDetection, Shot

# Scene graphs keep the most confident objects of a shot's keyframe; co-occurrence the most
# confident entities of a shot (pairs grow quadratically).
MAX_SCENE_OBJECTS: Final = 10
MAX_COOCCURRING: Final = 12
_SPACES = re.compile(r"\s+")
_EDGE_PUNCTUATION = "\"'`.,;:!?()[]{}<>\u00ab\u00bb\u201c\u201d\u2018\u2019"


def normalise(name: str) -> str:
    """The form entity names are matched by across videos: Unicode NFKC, lower case, single
    spaces, no surrounding punctuation, no leading article."""
    text = unicodedata.normalize("NFKC", name).lower().replace("_", " ")
    text = _SPACES.sub(" ", text).strip().strip(_EDGE_PUNCTUATION).strip()
    for article in ("the ", "a ", "an "):
        if text.startswith(article) and len(text) > len(article):
            text = text[len(article) :]
            break
    return text


def entity_key(kind: str, name: str) -> str:
    return f"{kind}:{normalise(name)}"


def shot_key(video_id: str, start: float) -> str:
    return f"{video_id}:shot:{round(start * 1000):09d}"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass
class _Sighting:
    """One entity in one shot: when and how confidently it was seen."""

    kind: str
    name: str
    display: str
    times: set[float] = field(default_factory=set)
    score: float = 0.0
    count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    raw: set[str] = field(default_factory=set)  # the keys it was seen under, before resolution

    def add(self, time: float, score: float) -> None:
        self.times.add(round(time, 3))
        self.score = max(self.score, score)


class _Builder:
    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], dict[str, Any]] = {}
        self.edges: dict[tuple[str, str, str, str, str, str | None], dict[str, Any]] = {}

    def node(self, label: str, key: str, props: dict[str, Any]) -> None:
        self.nodes.setdefault((label, key), {}).update(props)

    def edge(
        self,
        rel: str,
        start: tuple[str, str],
        end: tuple[str, str],
        props: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> None:
        ident = (rel, start[0], start[1], end[0], end[1], key)
        self.edges.setdefault(ident, {}).update(props or {})

    def build(self) -> tuple[tuple[NodeDelta, ...], tuple[EdgeDelta, ...]]:
        nodes = tuple(
            NodeDelta(label=label, key=key, props=props)
            for (label, key), props in sorted(self.nodes.items())
        )
        edges = tuple(
            EdgeDelta(
                type=rel,
                start_label=sl,
                start_key=sk,
                end_label=el,
                end_key=ek,
                key=key,
                props=props,
            )
            for (rel, sl, sk, el, ek, key), props in sorted(
                self.edges.items(), key=lambda item: tuple(str(part) for part in item[0])
            )
        )
        return nodes, edges


def _in(shot: Shot, time: float, last: bool) -> bool:
    return shot.start <= time < shot.end or (last and time == shot.end)


def _shot_of(shots: tuple[Shot, ...], time: float) -> int | None:
    for index, shot in enumerate(shots):
        if _in(shot, time, index == len(shots) - 1):
            return index
    return None


def _face_name(analysis: ChunkAnalysed, number: int) -> str:
    """A face track's name: unique in its video (tracks are numbered within a chunk)."""
    return f"{analysis.video_id}:{analysis.span.chunk_index:05d}:{number}"


def _sightings(
    analysis: ChunkAnalysed,
    canonical: Mapping[str, str] | None = None,
    tracks: Sequence[Track] | None = None,
) -> dict[int, dict[str, _Sighting]]:
    """Entities seen or mentioned in each shot (by index) of the chunk, under their canonical
    keys (see agents/graph/resolution.py)."""
    per_shot: dict[int, dict[str, _Sighting]] = defaultdict(dict)
    shots = analysis.shots
    canonical = canonical or {}

    def see(
        time: float, kind: str, name: str, score: float, display: str | None = None
    ) -> _Sighting | None:
        shot = _shot_of(shots, time)
        if shot is None or not normalise(name):
            return None
        raw = entity_key(kind, name)
        key = canonical.get(raw, raw)
        sighting = per_shot[shot].setdefault(key, _Sighting(kind, normalise(name), display or name))
        sighting.raw.add(raw)
        sighting.add(time, score)
        return sighting

    per_frame: dict[tuple[float, str], int] = defaultdict(int)
    for obj in analysis.objects:
        per_frame[(obj.time, obj.label)] += 1
        found = see(obj.time, "object", obj.label, obj.score)
        if found is not None:
            found.count = max(found.count, per_frame[(obj.time, obj.label)])
    for tag in analysis.tags:
        see(tag.time, "tag", tag.label, tag.score)
    for mention in analysis.mentions:
        found = see(mention.time, mention.label.lower(), mention.text, 1.0, mention.text)
        if found is not None:
            found.extra.setdefault("sources", set()).add(mention.source)
    if tracks is None:
        tracks = track_faces(analysis.faces)
    for number, track in enumerate(tracks, start=1):
        name = _face_name(analysis, number)
        for face in track.faces:
            found = see(face.time, "face", name, face.score, f"person {number}")
            if found is not None:
                found.extra["boxes"] = [*found.extra.get("boxes", []), list(face.box)]
    return per_shot


def _scene_objects(analysis: ChunkAnalysed, index: int) -> list[ObjectDetection]:
    """The objects of the shot's keyframe (or, if it has none, of the shot's keyframe with
    the most), most confident first."""
    shot = analysis.shots[index]
    inside = [o for o in analysis.objects if _shot_of(analysis.shots, o.time) == index]
    if not inside:
        return []
    by_time: dict[float, list[ObjectDetection]] = defaultdict(list)
    for obj in inside:
        by_time[obj.time].append(obj)
    wanted = shot.keyframe.time if shot.keyframe else None
    time = wanted if wanted in by_time else max(by_time, key=lambda t: (len(by_time[t]), -t))
    return sorted(by_time[time], key=lambda o: (-o.score, o.label, o.box))[:MAX_SCENE_OBJECTS]


def entity_names(analysis: ChunkAnalysed) -> dict[str, tuple[str, str]]:
    """Every entity of the chunk: key -> (kind, normalised name), for resolution."""
    return {
        key: (s.kind, s.name) for seen in _sightings(analysis).values() for key, s in seen.items()
    }


def knowledge_delta(
    analysis: ChunkAnalysed,
    chunk_key: str,
    canonical: Mapping[str, str] | None = None,
    embeddings: Mapping[str, list[float]] | None = None,
) -> tuple[tuple[NodeDelta, ...], tuple[EdgeDelta, ...]]:
    """Shots (with NEXT order and a scene graph each), entities, and APPEARS_IN, MENTIONS and
    CO_OCCURS relationships for one analysed chunk. ``canonical`` maps entity keys to the
    known entity they were resolved to (an Alias node records each such decision);
    ``embeddings`` holds the name embeddings of entities this delta creates."""
    b = _Builder()
    video_id = analysis.video_id
    canonical = canonical or {}
    embeddings = embeddings or {}
    tracks = track_faces(analysis.faces)
    sightings = _sightings(analysis, canonical, tracks)
    for index, shot in enumerate(analysis.shots):
        skey = shot_key(video_id, shot.start)
        shot_node = ("Shot", skey)
        b.node(
            "Shot",
            skey,
            {
                "video_id": video_id,
                "chunk": chunk_key,
                "start": shot.start,
                "end": shot.end,
                "keyframe": shot.keyframe.uri if shot.keyframe else None,
                "keyframe_time": shot.keyframe.time if shot.keyframe else None,
            },
        )
        b.edge("HAS_SHOT", ("Chunk", chunk_key), shot_node, {"start": shot.start})
        # Shots tile the video: the next one starts where this one ends, in this chunk or the
        # next, so it is named by that time even before it has been seen.
        if shot.end < analysis.span.video_duration - 1e-6:
            b.edge("NEXT", shot_node, ("Shot", shot_key(video_id, shot.end)))
        seen = sightings.get(index, {})
        for key, s in seen.items():
            if key in s.raw:  # recorded under its own name
                b.node("Entity", key, {"kind": s.kind, "name": s.name})
            else:
                b.node("Entity", key, {})
            if key in embeddings:
                b.node("Entity", key, {"embedding": list(embeddings[key])})
            for raw in sorted(s.raw - {key}):
                b.node("Alias", raw, {"kind": s.kind, "name": raw.partition(":")[2]})
                b.edge("ALIAS_OF", ("Alias", raw), ("Entity", key))
            props: dict[str, Any] = {
                "video_id": video_id,
                "first": min(s.times),
                "last": max(s.times),
                "times": sorted(s.times),
                "score": round(s.score, 4),
            }
            if s.kind == "object":
                props["count"] = s.count
            if "sources" in s.extra:
                b.edge(
                    "MENTIONS",
                    shot_node,
                    ("Entity", key),
                    {**props, "text": s.display, "sources": sorted(s.extra["sources"])},
                )
            else:
                b.edge("APPEARS_IN", ("Entity", key), shot_node, props)
            if s.kind == "face":
                b.node("Entity", key, {"display": s.display, "video_id": video_id})
        strongest = sorted(seen.items(), key=lambda kv: (-kv[1].score, kv[0]))[:MAX_COOCCURRING]
        for ka, kb in itertools.combinations(sorted(k for k, _ in strongest), 2):
            b.edge(
                "CO_OCCURS",
                ("Entity", ka),
                ("Entity", kb),
                {"video_id": video_id, "start": shot.start, "end": shot.end},
                key=skey,
            )
        _scene_graph(b, analysis, index, shot_node, canonical)
    _face_boundaries(b, analysis, tracks)
    return b.build()


def boundary_key(video_id: str, time: float) -> str:
    return f"{video_id}:boundary:{round(time * 1000):09d}"


def _face_boundaries(b: _Builder, analysis: ChunkAnalysed, tracks: Sequence[Track]) -> None:
    """Face tracks that reach a chunk's edge meet at that edge's ChunkBoundary node: a track
    ending near the end ENDS_AT it, one starting near the start STARTS_AT it, each with the
    face box there. The graph sink links an ending and a starting track whose boxes overlap
    (SAME_PERSON), whichever chunk arrives second, so people are followed across chunks."""
    span = analysis.span
    for number, track in enumerate(tracks, start=1):
        key = entity_key("face", _face_name(analysis, number))
        first, last = track.faces[0], track.last
        if span.start > 0 and first.time - span.start <= MAX_GAP_S:
            b.edge(
                "STARTS_AT",
                ("Entity", key),
                ("ChunkBoundary", boundary_key(analysis.video_id, span.start)),
                {"time": first.time, "box": list(first.box)},
            )
        if span.end < span.video_duration - 1e-6 and span.end - last.time <= MAX_GAP_S:
            b.edge(
                "ENDS_AT",
                ("Entity", key),
                ("ChunkBoundary", boundary_key(analysis.video_id, span.end)),
                {"time": last.time, "box": list(last.box)},
            )


def _scene_graph(
    b: _Builder,
    analysis: ChunkAnalysed,
    index: int,
    shot_node: tuple[str, str],
    canonical: Mapping[str, str],
) -> None:
    objects = _scene_objects(analysis, index)
    keys = []
    for index, obj in enumerate(objects):
        okey = f"{shot_node[1]}:obj:{index:02d}"
        keys.append(okey)
        b.node(
            "SceneObject",
            okey,
            {
                "label": obj.label,
                "score": obj.score,
                "box": list(obj.box),
                "time": obj.time,
                "video_id": analysis.video_id,
            },
        )
        b.edge("HAS_OBJECT", shot_node, ("SceneObject", okey))
        entity = entity_key("object", obj.label)
        b.edge("INSTANCE_OF", ("SceneObject", okey), ("Entity", canonical.get(entity, entity)))
    for (ia, a), (ib, c) in itertools.combinations(enumerate(objects), 2):
        for relation, forward in relations(a.box, c.box):
            first, second = (keys[ia], keys[ib]) if forward else (keys[ib], keys[ia])
            b.edge(relation, ("SceneObject", first), ("SceneObject", second))
