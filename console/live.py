"""Live updates: alert events polled from PostgreSQL and fanned out to every open page (SSE),
a ``suspicions`` event when a fall suspicion opens or closes, and device online/offline from
the Kafka ``device-status`` topic.

The console polls ``alert_events`` (the table the alerts worker writes in the same transaction as
every change) rather than the ``alert-events`` topic: that is the system of record, it needs no
worker to have published yet, and the console's own acknowledgements show at once. One poll per
console process (every ``poll_s``), however many browsers are open.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from alerts import store
from anxin.core.logs import get_logger

log = get_logger(__name__)


class EventHub:
    def __init__(self, dsn: str, poll_s: float):
        self.dsn = dsn
        self.poll_s = poll_s
        self.last_id = 0
        self.suspicions: tuple[int, float] | None = None  # store.suspicions_mark, last seen
        self.subscribers: set[asyncio.Queue[bytes]] = set()
        self._conn: psycopg.Connection[dict[str, Any]] | None = None

    def _connection(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True, row_factory=dict_row)
        return self._conn

    def start_at_end(self) -> None:
        conn = self._connection()
        self.last_id = store.last_event_id(conn)
        self.suspicions = store.suspicions_mark(conn)

    def poll(self) -> list[dict[str, Any]]:
        """Alert events since the last poll; a ``{"event": "suspicions"}`` row at the end when a
        fall suspicion opened or closed (suspicions make no alert events)."""
        try:
            conn = self._connection()
            rows = store.events_after(conn, self.last_id)
            mark = store.suspicions_mark(conn)
        except psycopg.Error as exc:
            log.warning("polling alert events failed: %s", type(exc).__name__)
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
            self._conn = None
            return []
        if rows:
            self.last_id = int(rows[-1]["event_id"])
        if mark != self.suspicions:
            self.suspicions = mark
            rows.append({"event": "suspicions"})
        return rows

    def subscribe(self) -> asyncio.Queue[bytes]:
        q: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1000)
        self.subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[bytes]) -> None:
        self.subscribers.discard(q)

    def publish(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            data = orjson.dumps(r)
            if "event_id" in r:
                frame = b"id: %d\ndata: %s\n\n" % (r["event_id"], data)
            else:  # no id: a reconnecting page resumes after the last alert event
                frame = b"data: %s\n\n" % data
            for q in list(self.subscribers):
                try:
                    q.put_nowait(frame)
                except asyncio.QueueFull:
                    self.subscribers.discard(q)  # a stuck page: it reconnects and reloads

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.to_thread(self.start_at_end)
        while not stop.is_set():
            rows = await asyncio.to_thread(self.poll)
            if rows:
                self.publish(rows)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.poll_s)
        if self._conn is not None:
            self._conn.close()


class DeviceStatus:
    """device id → (status, received_at), from every ``device-status`` record since the start of
    the topic (no consumer group: each console reads it all)."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap = bootstrap
        self.topic = topic
        self.status: dict[str, tuple[str, float]] = {}

    async def run(self, stop: asyncio.Event) -> None:
        from aiokafka import AIOKafkaConsumer

        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                self.topic,
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            try:
                await consumer.start()
                while not stop.is_set():
                    batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                    for msgs in batches.values():
                        for m in msgs:
                            self._apply(m.value)
            except Exception as exc:  # Kafka away: the overview shows "unknown"; try again
                log.warning("device status consumer: %s", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 5)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)

    def _apply(self, raw: bytes | None) -> None:
        try:
            rec = orjson.loads(raw or b"")
            device, status = str(rec["device_id"]), str(rec["status"])
            at = float(rec.get("received_at") or 0)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return
        old = self.status.get(device)
        if old is None or at >= old[1]:
            self.status[device] = (status, at)
