"""Server-side session ids, so that logging out ends a session for good.

The session cookie is signed, not secret from its holder: a copy taken before logout would stay
valid until it expires. So each login gets a random id, kept here and in the cookie; a request
is in a session only while its id is here, and logout removes it.

Kept in memory, per console process: a restart of the console ends every session (the nurses
log in again), and several console processes behind one address need sticky sessions. Ids live
at most ``max_age_s``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

MAX_SESSIONS = 100_000


class SessionIds:
    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.monotonic):
        self.max_age_s = max_age_s
        self.clock = clock
        self._lock = threading.Lock()
        self._ids: dict[str, tuple[str, float]] = {}  # id -> (user name, created)

    def new(self, user: str) -> str:
        sid = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            if len(self._ids) >= MAX_SESSIONS:
                self._prune(now)
            self._ids[sid] = (user, now)
        return sid

    def user(self, sid: object) -> str | None:
        """The user of a live session id; None if unknown, revoked or expired."""
        if not isinstance(sid, str):
            return None
        with self._lock:
            found = self._ids.get(sid)
            if found is None:
                return None
            if self.clock() - found[1] > self.max_age_s:
                del self._ids[sid]
                return None
            return found[0]

    def revoke(self, sid: object) -> None:
        if isinstance(sid, str):
            with self._lock:
                self._ids.pop(sid, None)

    def _prune(self, now: float) -> None:
        for sid in [s for s, (_, t) in self._ids.items() if now - t > self.max_age_s]:
            del self._ids[sid]
        if len(self._ids) >= MAX_SESSIONS:  # all live: the oldest tenth go
            for sid in sorted(self._ids, key=lambda s: self._ids[s][1])[: MAX_SESSIONS // 10]:
                del self._ids[sid]
