"""Chat sessions: the recent turns of each conversation, in memory, expiring when idle.

Sessions are per API process: run one replica, or route a session's requests to the same one.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable

from cachetools import TTLCache

from query_service.chat.schemas import ChatTurn


class UnknownSession(LookupError):
    pass


class SessionStore:
    def __init__(
        self,
        max_sessions: int,
        ttl_s: float,
        max_turns: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions: TTLCache[str, deque[ChatTurn]] = TTLCache(max_sessions, ttl_s, clock)
        self._max_turns = max_turns
        self._lock = threading.Lock()

    def start(self) -> str:
        session_id = uuid.uuid4().hex
        with self._lock:
            self._sessions[session_id] = deque(maxlen=self._max_turns)
        return session_id

    def history(self, session_id: str) -> list[ChatTurn]:
        """The session's turns, oldest first; reading a session keeps it alive."""
        with self._lock:
            turns = self._sessions.get(session_id)
            if turns is None:
                raise UnknownSession(f"chat session {session_id} is unknown or has expired")
            self._sessions[session_id] = turns  # refresh its time to live
            return list(turns)

    def append(self, session_id: str, turn: ChatTurn) -> None:
        with self._lock:
            turns = self._sessions.get(session_id)
            if turns is None:
                raise UnknownSession(f"chat session {session_id} is unknown or has expired")
            turns.append(turn)
            self._sessions[session_id] = turns

    def next_turn(self, session_id: str) -> int:
        with self._lock:
            turns = self._sessions.get(session_id)
            return (turns[-1].turn if turns else 0) + 1

    def delete(self, session_id: str) -> None:
        with self._lock:
            if self._sessions.pop(session_id, None) is None:
                raise UnknownSession(f"chat session {session_id} is unknown or has expired")
