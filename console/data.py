"""What the console shows, read from PostgreSQL (alerts, events, outbox), the registry, the
contacts file and the time-series store. Synchronous: the web layer calls it in a thread pool.

Names, numbers and addresses come from the registry and the contacts file when a page is built;
they go to the browser only, never to a log.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from alerts import store
from alerts.db import Database
from anxin.core.logs import get_logger
from anxin.core.registry import Registry, Resident
from console.geo import nearest_fence

log = get_logger(__name__)

OK_OUTCOMES = ("acknowledged",)
BAD_OUTCOMES = ("no-answer", "busy", "failed", "canceled", "hung-up-without-keypress")


def local_time(ts: float | None, tz: str, fmt: str = "%m-%d %H:%M:%S") -> str:
    if ts is None:
        return ""
    try:
        zone = ZoneInfo(tz)
    except Exception:
        zone = ZoneInfo("UTC")
    return datetime.fromtimestamp(ts, zone).strftime(fmt)


@dataclass
class Call:
    """One outbox row of an alert's chain, as the board shows it."""

    step: int
    repeat: int
    who: str
    role: str
    channel: str
    label: str  # i18n key of the state/outcome
    tone: str  # ok | bad | wait


@dataclass
class SuspectedFall:
    """A fall suspicion (the wearer is being asked "are you OK?"): shown apart from alerts,
    since nobody was notified."""

    suspicion_id: str
    resident_id: str
    resident_name: str
    device_id: str
    tz: str
    detected_at: float
    age_s: float
    outcome: str  # open | confirmed | cancelled
    reason: str


@dataclass
class BoardAlert:
    alert_id: str
    kind: str
    severity: str
    state: str
    resident_id: str
    resident_name: str
    device_id: str
    tz: str
    opened_at: float
    age_s: float
    acked_by: str | None
    acked_by_label: str | None
    calls: list[Call] = field(default_factory=list)
    position: dict[str, Any] | None = None


class _TTLCache:
    def __init__(self, ttl: float):
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}
        self._lock = threading.Lock()
        self._loading: set[Any] = set()

    def peek(self, key: Any, make: Callable[[], Any], default: Any) -> Any:
        """What is cached now (even if old); a missing or old entry is refreshed in the
        background, so a page never waits for the store."""
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            stale = hit is None or now - hit[0] >= self.ttl
            start = stale and key not in self._loading
            if start:
                self._loading.add(key)
        if start:

            def load() -> None:
                try:
                    value = make()
                    with self._lock:
                        self._data[key] = (time.monotonic(), value)
                finally:
                    with self._lock:
                        self._loading.discard(key)

            threading.Thread(target=load, daemon=True, name="store-read").start()
        return hit[1] if hit else default

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        value = make()
        with self._lock:
            self._data[key] = (now, value)
        return value


class ConsoleData:
    def __init__(
        self,
        db: Database,
        registry: Callable[[], Registry],
        directory: Callable[[], Any] | None,
        reader: Any,
        clock: Any,
        positions: int = 30,
        cache_s: float = 5.0,
    ):
        self.db = db
        self.registry = registry
        self.directory = directory
        self.reader = reader
        self.clock = clock
        self.positions = positions
        self._cache = _TTLCache(cache_s)
        self._local = threading.local()

    @contextlib.contextmanager
    def _read(self) -> Iterator[Any]:
        """A read-only autocommit connection kept per worker thread: a page does not pay for a
        new PostgreSQL backend each time (the board is re-read at every alert event)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.db.dsn, autocommit=True, row_factory=dict_row)
            self._local.conn = conn
        try:
            yield conn
        except psycopg.OperationalError:
            with contextlib.suppress(Exception):
                conn.close()
            self._local.conn = None
            raise

    # -- who is who ----------------------------------------------------------------------------

    def resident(self, resident_id: str) -> Resident | None:
        return self.registry().residents.get(resident_id)

    def contact_name(self, contact_id: str) -> str:
        if self.directory is not None:
            try:
                found = self.directory().find(contact_id)
            except Exception:
                found = None
            if found is not None:
                return str(found.name)
        return contact_id

    def by_label(self, by: str | None) -> str | None:
        """``duty_nurse:nurse-li`` → ``李护士 (duty_nurse)``; wearers and detectors as they are."""
        if not by:
            return by
        role, _, who = by.partition(":")
        if role in ("wearer", "detector") or not who:
            return by
        name = self.contact_name(who)
        return f"{name} ({role})" if name != who else by

    # -- the board -----------------------------------------------------------------------------

    def open_alerts(self, with_positions: bool = True) -> list[BoardAlert]:
        now = self.clock.now()
        with self._read() as conn:
            alerts = store.board_alerts(conn)
            rows = store.current_chain(conn, [a["alert_id"] for a in alerts])
        calls: dict[str, list[Call]] = {}
        for n in rows:
            calls.setdefault(n["alert_id"], []).append(self._call(n))
        return [self._board(a, calls.get(a["alert_id"], []), now, with_positions) for a in alerts]

    def suspected_falls(self, closed_within_s: float = 900.0) -> list[SuspectedFall]:
        """Open fall suspicions, and those confirmed or cancelled in the last ``closed_within_s``,
        newest first (the board's "suspected falls (wearer prompted)" list)."""
        now = self.clock.now()
        with self._read() as conn:
            rows = store.recent_suspicions(conn, now - closed_within_s)
        out = []
        for r in rows:
            resident = self.resident(r["resident_id"])
            out.append(
                SuspectedFall(
                    suspicion_id=r["suspicion_id"],
                    resident_id=r["resident_id"],
                    resident_name=resident.name if resident else r["resident_id"],
                    device_id=r["device_id"],
                    tz=resident.timezone if resident else "UTC",
                    detected_at=r["detected_at"],
                    age_s=max(0.0, now - r["detected_at"]),
                    outcome=r["outcome"],
                    reason=r["reason"],
                )
            )
        return out

    def _call(self, n: dict[str, Any], acked: bool = False) -> Call:
        outcome, state = n["outcome"], n["state"]
        if outcome == "acknowledged":
            label, tone = "n.acknowledged", "ok"
        elif outcome == "hung-up-without-keypress":
            label, tone = "n.answered", "bad"
        elif outcome in ("no-answer", "canceled"):
            label, tone = "n.no_answer", "bad"
        elif outcome == "busy":
            label, tone = "n.busy", "bad"
        elif outcome is not None or state == "failed":
            label, tone = "n.failed", "bad"
        elif state == "sent" and n["channel"] == "voice":
            label, tone = "n.ringing", "wait"
        elif state == "sent":
            label, tone = "n.sent", "ok"
        else:
            label, tone = f"n.{state}", "wait" if state in ("pending", "sending") else "bad"
        return Call(
            n["step"],
            n["repeat"],
            self.contact_name(n["contact_id"]),
            n["role"],
            n["channel"],
            label,
            tone,
        )

    def _board(
        self,
        a: dict[str, Any],
        calls: list[Call],
        now: float,
        with_positions: bool,
        board: bool = True,
    ) -> BoardAlert:
        resident = self.resident(a["resident_id"])
        row = BoardAlert(
            alert_id=a["alert_id"],
            kind=a["kind"],
            severity=a["severity"],
            state=a["state"],
            resident_id=a["resident_id"],
            resident_name=resident.name if resident else a["resident_id"],
            device_id=a["device_id"],
            tz=resident.timezone if resident else "UTC",
            opened_at=a["opened_at"],
            age_s=max(0.0, now - a["opened_at"]),
            acked_by=a["acked_by"],
            acked_by_label=self.by_label(a["acked_by"]),
            calls=calls,
        )
        if a["state"] == "acknowledged":
            # After an acknowledgement, calls still "ringing" are just sent.
            for c in row.calls:
                if c.label == "n.ringing":
                    c.label, c.tone = "n.sent", "ok"
        if with_positions:
            row.position = self.last_position(a, resident, wait=not board)
        return row

    # -- positions and vitals from the store ---------------------------------------------------

    def _positions(self, device_id: str, limit: int, wait: bool = True) -> list[Any]:
        def read() -> list[Any]:
            try:
                return list(self.reader.last_positions(device_id, limit))
            except Exception as exc:
                log.warning("store read of positions failed: %s", type(exc).__name__)
                return []

        if not wait:  # the board: never wait for the store; the next refresh has it
            return list(self._cache.peek(("pos", device_id, limit), read, []))
        return list(self._cache.get(("pos", device_id, limit), read))

    def last_position(
        self, alert: dict[str, Any], resident: Resident | None, wait: bool = False
    ) -> dict[str, Any] | None:
        found = self._positions(alert["device_id"], 1, wait) if self.reader else []
        if found:
            p = found[-1]
            pos = {"lat": p.lat, "lon": p.lon, "acc": p.acc, "ts": p.ts}
        else:
            loc = (alert.get("details") or {}).get("location")
            if not isinstance(loc, dict) or "lat" not in loc:
                return None
            pos = {
                "lat": loc["lat"],
                "lon": loc["lon"],
                "acc": loc.get("acc"),
                "ts": alert["event_ts"],
            }
        if resident and resident.geofences:
            near = nearest_fence(pos["lat"], pos["lon"], resident.geofences)
            if near:
                pos["fence"], pos["fence_m"] = near[0], round(near[1])
        pos["age_s"] = max(0.0, time.time() - pos["ts"])
        return pos

    def resident_positions(self, resident: Resident | None, device_id: str) -> list[Any]:
        if not self.reader:
            return []
        return self._positions(device_id, self.positions)

    def vitals(self, resident_id: str, start: float, end: float) -> dict[str, list[Any]] | None:
        """24 h of vitals averaged per 5 minutes; None when the store did not answer."""
        if not self.reader:
            return None
        try:
            return dict(self.reader.vitals_series(resident_id, start, end, step=300))
        except Exception as exc:
            log.warning("store read of vitals failed: %s", type(exc).__name__)
            return None

    # -- one alert -----------------------------------------------------------------------------

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        with self._read() as conn:
            a = store.alert_row(conn, alert_id)
            if a is None:
                return None
            events = store.alert_timeline(conn, alert_id)
            notes = store.alert_chain(conn, alert_id)
        resident = self.resident(a["resident_id"])
        tz = resident.timezone if resident else "UTC"
        board = self._board(
            a,
            [self._call(n) for n in notes if n["round"] == a["round"]],
            self.clock.now(),
            with_positions=True,
            board=False,
        )
        timeline = [
            {
                "at": local_time(e["at"], tz),
                "event": e["event"],
                "state": e["state"],
                "by": self.by_label(e["by"]),
                "channel": e["channel"],
                "note": e["note"],
            }
            for e in events
        ]
        return {"row": board, "alert": a, "timeline": timeline, "resident": resident, "tz": tz}

    # -- residents and devices -----------------------------------------------------------------

    def device_readings(self) -> dict[str, dict[str, float]]:
        """device id → battery, worn, last_seen from the store (VictoriaMetrics only)."""
        query = getattr(self.reader, "query", None)
        if query is None:
            return {}

        def read() -> dict[str, dict[str, float]]:
            at = time.time() + 300
            window = "[25h]"
            out: dict[str, dict[str, float]] = {}
            try:
                for r in query(
                    f'last_over_time({{__name__=~"device_(battery|worn)"}}{window})'
                    " keep_metric_names",
                    at,
                ):
                    dev = r["metric"].get("device")
                    if dev:
                        field_ = r["metric"]["__name__"].removeprefix("device_")
                        out.setdefault(dev, {})[field_] = float(r["value"][1])
                for r in query(
                    'max(tlast_over_time({__name__=~"(device|vitals|location)_.+"}'
                    f"{window})) by (device)",
                    at,
                ):
                    dev = r["metric"].get("device")
                    if dev:
                        out.setdefault(dev, {})["last_seen"] = float(r["value"][1])
            except Exception as exc:
                log.warning("store read of device readings failed: %s", type(exc).__name__)
            return out

        return dict(self._cache.get(("devices",), read))


def policies_file(settings: Any) -> Path | None:
    from alerts.policies import policies_path

    path = policies_path(settings.alerts.policies, settings.registry)
    return path if path.exists() else None
