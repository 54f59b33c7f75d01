"""graph.updates deltas that the graph sink has yet to write to Neo4j, per scope.

The query service sees a delta on Kafka at about the moment the graph sink does; Neo4j holds
it only once the sink has written it. The sink's consumer group commits an offset after the
write, so a delta at offset ``o`` of partition ``p`` is in Neo4j once the group's committed
offset on ``p`` is past ``o``. Until then its scope (a video id, or everything) is held.
"""

from __future__ import annotations

from collections.abc import Mapping


class PendingWrites:
    def __init__(self) -> None:
        # scope -> partition -> the offset the sink must have committed (last seen + 1)
        self._needed: dict[str, dict[int, int]] = {}

    def add(self, scope: str, needed: Mapping[int, int]) -> bool:
        """Wait for the sink to commit ``needed`` (partition -> offset) for ``scope``; True
        when the scope was not pending before (the caller holds it then)."""
        wanted = {p: offset for p, offset in needed.items() if offset > 0}
        if not wanted:
            return False
        fresh = scope not in self._needed
        current = self._needed.setdefault(scope, {})
        for partition, offset in wanted.items():
            current[partition] = max(current.get(partition, 0), offset)
        return fresh

    def settled(self, committed: Mapping[int, int]) -> list[str]:
        """The scopes whose deltas the sink has all committed; they stop being pending. A
        partition the sink never committed on (absent, or Kafka's negative "no offset") holds
        its scope until it does."""
        done = [
            scope
            for scope, needed in self._needed.items()
            if all(committed.get(p, -1) >= offset for p, offset in needed.items())
        ]
        for scope in done:
            del self._needed[scope]
        return sorted(done)

    def scopes(self) -> list[str]:
        return sorted(self._needed)

    def __len__(self) -> int:
        return len(self._needed)

    def __bool__(self) -> bool:
        return bool(self._needed)
