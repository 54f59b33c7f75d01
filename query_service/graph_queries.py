"""Read-side queries over the knowledge graph: typed traversals and video moments.

Every value is a query parameter; the only text that varies is chosen from constants (the
path length bound, which Cypher cannot take as a parameter). Results and traversal depths are
bounded by the request schemas.
"""

from __future__ import annotations

from typing import Any, Protocol

from neo4j import Query, RoutingControl

from query_service.graph_schemas import (
    MAX_NEIGHBOUR_SHOTS,
    MAX_PATH_HOPS,
    QUERY_TIMEOUT_S,
    Appearance,
    AppearsQuery,
    AppearsResult,
    AroundQuery,
    AroundResult,
    ChunkMoment,
    CoOccurrence,
    EntityNode,
    EntityPublic,
    EntityRef,
    Neighbour,
    PathQuery,
    PathResult,
    ShotMoment,
    ShotNode,
    VideoMoments,
    WithQuery,
    WithResult,
)
from query_service.media import thumbnail_url

# Entities shown per shot, most confident first.
ENTITIES_PER_SHOT = 20
SAMPLE_MOMENTS = 3


class GraphQueryError(Exception):
    """Root of the query side's errors."""


class UnknownEntity(GraphQueryError):
    pass


class UnknownMoment(GraphQueryError):
    pass


class UnknownVideo(GraphQueryError):
    pass


class ReadDriver(Protocol):
    """The part of neo4j.Driver the query side uses."""

    def execute_query(self, query_: Any, parameters_: Any = None, **kwargs: Any) -> Any: ...


# What the response tells about each shot, fetched for all of a result's shots at once: the
# entities seen or mentioned in it, most confident first (a face track's name is an id; its
# display name is what people read).
SHOTS = """
UNWIND $shots AS shot_key
MATCH (s:Shot {key: shot_key})
OPTIONAL MATCH (v:Video {key: s.video_id})
CALL (s) {
  MATCH (s)-[link:APPEARS_IN|MENTIONS]-(found:Entity) WHERE found.kind IS NOT NULL
  WITH found, max(link.score) AS confidence ORDER BY confidence DESC, found.key LIMIT $per_shot
  RETURN collect({key: found.key, kind: found.kind, name: coalesce(found.display, found.name)})
         AS entities
}
RETURN s.key AS key, s.video_id AS video_id, v.source AS source, s.start AS start, s.end AS end,
       s.keyframe AS keyframe, entities
"""

RESOLVE = """
UNWIND $keys AS k
OPTIONAL MATCH (e:Entity {key: k})
OPTIONAL MATCH (:Alias {key: k})-[:ALIAS_OF]->(c:Entity)
WITH coalesce(e, c) AS entity WHERE entity IS NOT NULL AND entity.kind IS NOT NULL
RETURN DISTINCT entity.key AS key, entity.kind AS kind,
       coalesce(entity.display, entity.name) AS name
ORDER BY key
"""

APPEARS = """
MATCH (e:Entity) WHERE e.key IN $keys
CALL (e) {
  MATCH (e)-[a:APPEARS_IN]->(s:Shot) RETURN s, a, 'seen' AS how
  UNION ALL
  MATCH (s:Shot)-[a:MENTIONS]->(e) RETURN s, a, 'mentioned' AS how
}
WITH s, a, how WHERE s.start IS NOT NULL AND ($video_ids IS NULL OR s.video_id IN $video_ids)
WITH s, max(a.score) AS score, collect(a.times) AS times, collect(DISTINCT how) AS how
RETURN s.key AS shot, score, times, how
ORDER BY score DESC, s.video_id, s.start LIMIT $limit
"""

WITH_ENTITY = """
MATCH (e:Entity) WHERE e.key IN $keys
MATCH (e)-[c:CO_OCCURS]-(other:Entity)
WHERE other.kind IS NOT NULL AND NOT other.key IN $keys
  AND ($video_ids IS NULL OR c.video_id IN $video_ids)
WITH other, count(DISTINCT c.key) AS shots, count(DISTINCT c.video_id) AS videos,
     collect(DISTINCT c.key) AS keys
RETURN {key: other.key, kind: other.kind, name: coalesce(other.display, other.name)} AS entity,
       shots, videos, keys[..$samples] AS sample
ORDER BY shots DESC, entity.key LIMIT $limit
"""

# One query text per length bound: variable-length bounds cannot be parameters. Paths go
# through shots (seen in, mentioned in, next shot), so each step says where and when.
PATHS = {
    hops: f"""
MATCH (a:Entity) WHERE a.key IN $sources
MATCH (b:Entity) WHERE b.key IN $targets AND a <> b
MATCH p = shortestPath((a)-[:APPEARS_IN|MENTIONS|NEXT*..{hops}]-(b))
WITH p ORDER BY length(p) LIMIT 1
RETURN length(p) AS hops, [r IN relationships(p) | type(r)] AS relationships,
       [n IN nodes(p) | CASE WHEN n:Shot THEN {{shot: n.key}}
        ELSE {{entity: {{key: n.key, kind: n.kind, name: coalesce(n.display, n.name)}}}} END
       ] AS nodes
"""
    for hops in range(1, MAX_PATH_HOPS + 1)
}

AROUND = f"""
MATCH (anchor:Shot {{video_id: $video_id}})
WHERE ($shot IS NOT NULL AND anchor.key = $shot)
   OR ($shot IS NULL AND anchor.start <= $time AND $time <= anchor.end)
WITH anchor ORDER BY anchor.start DESC LIMIT 1
CALL (anchor) {{
  MATCH p = (s:Shot)-[:NEXT*1..{MAX_NEIGHBOUR_SHOTS}]->(anchor) WHERE length(p) <= $before
  RETURN s, -length(p) AS offset
  UNION
  RETURN anchor AS s, 0 AS offset
  UNION
  MATCH p = (anchor)-[:NEXT*1..{MAX_NEIGHBOUR_SHOTS}]->(s:Shot) WHERE length(p) <= $after
  RETURN s, length(p) AS offset
}}
WITH anchor, s, offset WHERE s.start IS NOT NULL
RETURN anchor.key AS anchor, offset, s.key AS shot ORDER BY offset
"""

VIDEO_MOMENTS = """
MATCH (v:Video {key: $video_id})
CALL (v) {
  MATCH (v)-[:HAS_CHUNK]->(c:Chunk) WHERE c.start IS NOT NULL RETURN count(c) AS total
}
CALL (v) {
  MATCH (v)-[:HAS_CHUNK]->(c:Chunk) WHERE c.start IS NOT NULL
  WITH c ORDER BY c.index SKIP $skip LIMIT $limit
  CALL (c) {
    MATCH (c)-[:HAS_SHOT]->(s:Shot) WHERE s.start IS NOT NULL
    WITH s ORDER BY s.start RETURN collect(s.key) AS shots
  }
  RETURN collect({index: c.index, start: c.start, end: c.end, text: c.text, labels: c.labels,
                  thumbnail: c.thumbnail, shots: shots}) AS chunks
}
RETURN v.source AS source, total, chunks
"""

VIDEO_SOURCE = "MATCH (v:Video {key: $video_id}) RETURN v.source AS source"


def _entity(row: dict[str, Any]) -> EntityPublic:
    return EntityPublic(key=row["key"], kind=row["kind"], name=str(row["name"]))


def _times(nested: list[list[float] | None]) -> list[float]:
    return sorted({float(t) for times in nested for t in times or ()})


class GraphReader:
    def __init__(self, driver: ReadDriver, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        self._driver = driver
        self._timeout_s = timeout_s

    def _rows(self, text: str, **params: Any) -> list[dict[str, Any]]:
        records, _, _ = self._driver.execute_query(
            Query(text, timeout=self._timeout_s),
            params,
            routing_=RoutingControl.READ,
        )
        return [record.data() for record in records]

    def _shots(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Shot key -> the ShotMoment fields of that shot (keys with no shot are left out)."""
        if not keys:
            return {}
        rows = self._rows(SHOTS, shots=sorted(set(keys)), per_shot=ENTITIES_PER_SHOT)
        return {
            row["key"]: {
                "video_id": row["video_id"],
                "source": row["source"],
                "shot": row["key"],
                "start": row["start"],
                "end": row["end"],
                "thumbnail_url": thumbnail_url(row["keyframe"]),
                "entities": [_entity(e) for e in row["entities"]],
            }
            for row in rows
        }

    def resolve(self, ref: EntityRef) -> list[EntityPublic]:
        """The entities a name names (through aliases too); UnknownEntity if none."""
        found = [_entity(row) for row in self._rows(RESOLVE, keys=ref.candidate_keys())]
        if not found:
            raise UnknownEntity(f"unknown entity: no {ref.describe()} in the graph")
        return found

    def appears(self, query: AppearsQuery) -> AppearsResult:
        entities = self.resolve(query.entity)
        rows = self._rows(
            APPEARS, keys=[e.key for e in entities], video_ids=query.video_ids, limit=query.limit
        )
        shots = self._shots([row["shot"] for row in rows])
        data = [
            Appearance(
                **shots[row["shot"]],
                score=row["score"],
                times=_times(row["times"]),
                how=sorted(row["how"]),
            )
            for row in rows
            if row["shot"] in shots
        ]
        return AppearsResult(entities=entities, data=data, count=len(data))

    def appears_with(self, query: WithQuery) -> WithResult:
        entities = self.resolve(query.entity)
        rows = self._rows(
            WITH_ENTITY,
            keys=[e.key for e in entities],
            video_ids=query.video_ids,
            limit=query.limit,
            samples=SAMPLE_MOMENTS,
        )
        shots = self._shots([key for row in rows for key in row["sample"]])
        data = [
            CoOccurrence(
                entity=_entity(row["entity"]),
                shots=row["shots"],
                videos=row["videos"],
                moments=sorted(
                    (ShotMoment(**shots[key]) for key in row["sample"] if key in shots),
                    key=lambda m: (m.video_id, m.start),
                ),
            )
            for row in rows
        ]
        return WithResult(entities=entities, data=data, count=len(data))

    def path(self, query: PathQuery) -> PathResult:
        sources, targets = self.resolve(query.source), self.resolve(query.target)
        shared = sorted({e.key for e in sources} & {e.key for e in targets})
        if shared:  # the same entity at both ends: a path of no steps
            entity = next(e for e in sources if e.key == shared[0])
            return PathResult(
                source=sources,
                target=targets,
                found=True,
                hops=0,
                nodes=[EntityNode(entity=entity)],
                relationships=[],
            )
        rows = self._rows(
            PATHS[query.max_hops],
            sources=[e.key for e in sources],
            targets=[e.key for e in targets],
        )
        if not rows:
            return PathResult(
                source=sources, target=targets, found=False, hops=None, nodes=[], relationships=[]
            )
        [row] = rows
        shots = self._shots([n["shot"] for n in row["nodes"] if "shot" in n])
        nodes: list[EntityNode | ShotNode] = [
            ShotNode(moment=ShotMoment(**shots[n["shot"]]))
            if "shot" in n
            else EntityNode(entity=_entity(n["entity"]))
            for n in row["nodes"]
        ]
        return PathResult(
            source=sources,
            target=targets,
            found=True,
            hops=row["hops"],
            nodes=nodes,
            relationships=row["relationships"],
        )

    def around(self, query: AroundQuery) -> AroundResult:
        rows = self._rows(
            AROUND,
            video_id=query.video_id,
            shot=query.shot,
            time=query.time,
            before=query.before,
            after=query.after,
        )
        if not rows:
            where = f"shot {query.shot}" if query.shot else f"{query.time}s"
            raise UnknownMoment(f"no shot of video {query.video_id} at {where}")
        shots = self._shots([row["shot"] for row in rows])
        data = [
            Neighbour(**shots[row["shot"]], offset=row["offset"])
            for row in rows
            if row["shot"] in shots
        ]
        return AroundResult(
            video_id=query.video_id, anchor=rows[0]["anchor"], data=data, count=len(data)
        )

    def video_moments(self, video_id: str, skip: int, limit: int) -> VideoMoments:
        rows = self._rows(VIDEO_MOMENTS, video_id=video_id, skip=skip, limit=limit)
        if not rows:
            raise UnknownVideo(f"video {video_id} not found")
        [row] = rows
        chunks = sorted(row["chunks"], key=lambda c: c["index"])
        shots = self._shots([key for chunk in chunks for key in chunk["shots"]])
        data = []
        for chunk in chunks:
            moments = [ShotMoment(**shots[key]) for key in chunk["shots"] if key in shots]
            entities: dict[str, EntityPublic] = {}
            for moment in moments:
                for entity in moment.entities:
                    entities.setdefault(entity.key, entity)
            data.append(
                ChunkMoment(
                    video_id=video_id,
                    source=row["source"],
                    index=chunk["index"],
                    start=chunk["start"],
                    end=chunk["end"],
                    text=chunk["text"],
                    labels=list(chunk["labels"] or []),
                    thumbnail_url=thumbnail_url(chunk["thumbnail"]),
                    entities=list(entities.values()),
                    shots=moments,
                )
            )
        return VideoMoments(video_id=video_id, data=data, count=row["total"])

    def video_source(self, video_id: str) -> str | None:
        rows = self._rows(VIDEO_SOURCE, video_id=video_id)
        if not rows:
            raise UnknownVideo(f"video {video_id} not found")
        source: str | None = rows[0]["source"]
        return source
