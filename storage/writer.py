"""The storage writer: readings, alerts and alert events from Kafka into the time-series store.

A process of its own (``anxin storage run``), so that the detector worker keeps raising alerts
while the store is down. Kafka is the buffer: one fetch (at most ``batch_size`` records) becomes
one write through influxdb-client's ``write_api`` (line protocol on ``/api/v2/write``, which both
InfluxDB 2.x and VictoriaMetrics accept), and the offsets are committed only after the store
acknowledged it. While the store is unreachable the partitions are paused and the same batch is
retried with exponential backoff, forever: memory stays at one batch, nothing is dropped for an
outage, and the writer catches up from the committed offsets when the store returns. The client's
own batching ``WriteApi`` is not used because it acknowledges through callbacks from a background
thread and keeps its own buffer and retries, which would let offsets be committed for points not
yet written.

Every record yields the same points every time, and a point is identified by measurement, tags
and timestamp, so a replay (a restart before the commit, a re-sent MQTT message) overwrites
instead of doubling (VictoriaMetrics needs ``-dedup.minScrapeInterval=1ms`` for that).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from influxdb_client import Point

from anxin.core.logs import get_logger
from anxin.core.settings import Settings
from storage.points import (
    PRECISION,
    AlertTags,
    Unusable,
    alert_event_points,
    alert_points,
    reading_points,
)

log = get_logger(__name__)


class StoreUnavailable(Exception):
    """The store did not take the write but may later (down, timeout, 5xx, 429, auth): retry."""


class StoreRejected(Exception):
    """The store refused the data itself (4xx): retrying the same points cannot help."""


class Sink(Protocol):
    async def write(self, points: Sequence[Point]) -> None: ...

    async def close(self) -> None: ...


class InfluxSink:
    """influxdb-client's async ``write_api``: one HTTP write per call, errors classified."""

    def __init__(self, settings: Settings) -> None:
        from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync

        self._bucket = settings.influx.bucket
        self._org = settings.influx.org
        self._client = InfluxDBClientAsync(
            url=settings.influx.url,
            token=settings.influx.token.get_secret_value(),
            org=settings.influx.org,
            timeout=settings.storage.write_timeout_ms,
        )
        self._write_api = self._client.write_api()

    async def write(self, points: Sequence[Point]) -> None:
        from influxdb_client.rest import ApiException

        try:
            await self._write_api.write(
                bucket=self._bucket,
                org=self._org,
                record=list(points),
                write_precision=cast(Any, PRECISION),
            )
        except ApiException as exc:
            status = exc.status or 0
            # 401/403/404 mean a wrong token, bucket or URL: an operator fixes it, data waits.
            if 400 <= status < 500 and status not in (401, 403, 404, 408, 429):
                raise StoreRejected(f"HTTP {status}: {str(exc.body)[:200]}") from exc
            raise StoreUnavailable(f"HTTP {status}") from exc
        except (TimeoutError, OSError) as exc:
            raise StoreUnavailable(type(exc).__name__) from exc
        except Exception as exc:  # aiohttp's ClientError and kin: the connection, not the data
            if type(exc).__module__.startswith("aiohttp"):
                raise StoreUnavailable(type(exc).__name__) from exc
            raise

    async def close(self) -> None:
        await self._client.close()


@dataclass
class Stats:
    """What the writer did; logged periodically and written to the stats file."""

    records_written: int = 0
    points_written: int = 0
    batches_written: int = 0
    retries: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    events_untagged: int = 0
    commit_failures: int = 0
    store_up: bool = True
    last_error: str | None = None
    outages: int = 0
    started_at: float = field(default_factory=time.time)
    write_seconds: float = 0.0

    def snapshot(self) -> dict[str, Any]:
        return {
            "records_written": self.records_written,
            "points_written": self.points_written,
            "batches_written": self.batches_written,
            "retries": self.retries,
            "dropped": dict(self.dropped),
            "dropped_total": sum(self.dropped.values()),
            "events_untagged": self.events_untagged,
            "commit_failures": self.commit_failures,
            "store_up": self.store_up,
            "outages": self.outages,
            "last_error": self.last_error,
            "uptime_s": round(time.time() - self.started_at, 3),
            "write_seconds": round(self.write_seconds, 3),
        }


@dataclass
class _Pending:
    """The points of one consumed record (empty when the record was dropped)."""

    points: list[Point]


class _Ready(ConsumerRebalanceListener):
    def __init__(self, ready_file: Path | None) -> None:
        self.ready_file = ready_file

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        if assigned and self.ready_file is not None:
            self.ready_file.parent.mkdir(parents=True, exist_ok=True)
            self.ready_file.touch()
        log.info("storage writer assigned %d partitions", len(assigned))


class StorageWriter:
    """Consume, convert, write, then commit; see the module docstring for the guarantees."""

    def __init__(
        self,
        settings: Settings,
        sink: Sink,
        stats: Stats | None = None,
        stats_file: Path | None = None,
    ) -> None:
        self.settings = settings
        self.cfg = settings.storage
        self.sink = sink
        self.stats = stats or Stats()
        self.stats_file = stats_file
        self._alert_tags: OrderedDict[str, AlertTags] = OrderedDict()
        self._last_stats_write = 0.0
        k = settings.kafka
        self._kinds = {k.readings_topic: "reading", k.alerts_topic: "alert"}
        self._kinds[k.alert_events_topic] = "event"

    # -- conversion ----------------------------------------------------------------------------
    def convert(self, topic: str, value: bytes | None) -> list[Point]:
        """The points of one record; raises ``Unusable`` with the reason it is dropped."""
        try:
            record = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            raise Unusable("invalid JSON") from None
        if not isinstance(record, Mapping):
            raise Unusable("not a JSON object")
        kind = self._kinds.get(topic)
        if kind == "reading":
            return reading_points(record, raw_accel=self.cfg.raw_accel)
        if kind == "alert":
            points = alert_points(record, string_fields=self.cfg.string_fields)
            self._remember(record)
            return points
        if kind == "event":
            tags = self._alert_tags.get(str(record.get("alert_id")))
            if tags is None and not record.get("resident_id"):
                self.stats.events_untagged += 1
            return alert_event_points(record, tags, string_fields=self.cfg.string_fields)
        raise Unusable(f"unexpected topic {topic}")

    def _remember(self, alert: Mapping[str, Any]) -> None:
        alert_id = alert.get("alert_id")
        if isinstance(alert_id, str):
            self._alert_tags[alert_id] = AlertTags(
                str(alert["resident_id"]), str(alert["device_id"])
            )
            self._alert_tags.move_to_end(alert_id)
            while len(self._alert_tags) > self.cfg.alert_cache_size:
                self._alert_tags.popitem(last=False)

    def convert_batch(self, batch: Mapping[TopicPartition, list[ConsumerRecord]]) -> list[_Pending]:
        """Alerts before events, so an event in the same fetch as its alert finds its tags."""
        order = {"alert": 0, "event": 2}
        pending: list[_Pending] = []
        for tp in sorted(batch, key=lambda tp: order.get(self._kinds.get(tp.topic, ""), 1)):
            for msg in batch[tp]:
                try:
                    pending.append(_Pending(self.convert(tp.topic, msg.value)))
                except Unusable as exc:
                    self.stats.dropped[f"{self._kinds.get(tp.topic, tp.topic)}: {exc}"] += 1
                    pending.append(_Pending([]))
        return pending

    # -- writing -------------------------------------------------------------------------------
    async def write_all(
        self, pending: list[_Pending], stop: asyncio.Event, waiting: Any = None
    ) -> bool:
        """Write the batch, retrying until it is in the store; False if stopped first.

        ``waiting`` is awaited between retries (the consumer uses it to keep polling while its
        partitions are paused).
        """
        todo = [p for p in pending if p.points]
        delay = self.cfg.retry_initial_s
        down_since: float | None = None
        while todo:
            if stop.is_set():
                return False
            try:
                await self._write_splitting(todo)
                todo = []
            except StoreUnavailable as exc:
                self.stats.retries += 1
                self.stats.last_error = str(exc)
                if self.stats.store_up:
                    self.stats.store_up = False
                    self.stats.outages += 1
                    down_since = time.monotonic()
                    log.warning(
                        "store unavailable (%s): holding %d records, retrying", exc, len(todo)
                    )
                self._write_stats()
                pause = delay * random.uniform(0.8, 1.2)
                delay = min(delay * 2, self.cfg.retry_max_s)
                if waiting is not None:
                    await waiting(pause)
                else:
                    try:
                        await asyncio.wait_for(stop.wait(), pause)
                    except TimeoutError:
                        pass
        if not self.stats.store_up:
            self.stats.store_up = True
            took = time.monotonic() - down_since if down_since else 0.0
            log.warning("store back after %.1f s; catching up", took)
        return True

    async def _write_splitting(self, todo: list[_Pending]) -> None:
        """Write all; on a rejection write record by record and drop only what is refused.

        Records written before an outage interrupts are removed from ``todo``.
        """
        points = [p for rec in todo for p in rec.points]
        t0 = time.perf_counter()
        try:
            await self.sink.write(points)
        except StoreRejected as exc:
            if len(todo) == 1:
                self.stats.dropped[f"rejected by store: {str(exc)[:80]}"] += 1
                log.warning("store rejected a record: %s", exc)
                todo.clear()
                return
            while todo:
                await self._write_splitting([todo[0]])
                todo.pop(0)
            return
        self.stats.write_seconds += time.perf_counter() - t0
        self.stats.records_written += len(todo)
        self.stats.points_written += len(points)
        self.stats.batches_written += 1

    # -- the consumer loop ---------------------------------------------------------------------
    async def run(self, stop: asyncio.Event, ready_file: Path | None = None) -> None:
        k = self.settings.kafka
        consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap,
            group_id=self.cfg.group_id,
            client_id=f"anxin-storage-{os.getpid()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=self.cfg.fetch_max_bytes,
            max_partition_fetch_bytes=min(self.cfg.fetch_max_bytes, 1024 * 1024),
            session_timeout_ms=self.cfg.session_timeout_ms,
            rebalance_timeout_ms=self.cfg.rebalance_timeout_ms,
            heartbeat_interval_ms=self.cfg.heartbeat_interval_ms,
        )
        await consumer.start()
        consumer.subscribe(
            [k.readings_topic, k.alerts_topic, k.alert_events_topic], listener=_Ready(ready_file)
        )
        last_log = time.monotonic()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(
                    timeout_ms=self.cfg.flush_interval_ms, max_records=self.cfg.batch_size
                )
                if batch and not await self._handle(consumer, batch, stop):
                    break
                now = time.monotonic()
                if now - last_log >= self.cfg.stats_interval_s:
                    last_log = now
                    log.info("storage writer: %s", json.dumps(self.stats.snapshot()))
                self._write_stats()
        finally:
            self._write_stats(force=True)
            log.info("storage writer stopping: %s", json.dumps(self.stats.snapshot()))
            await consumer.stop()

    async def _handle(
        self,
        consumer: AIOKafkaConsumer,
        batch: Mapping[TopicPartition, list[ConsumerRecord]],
        stop: asyncio.Event,
    ) -> bool:
        pending = self.convert_batch(batch)
        stray: dict[TopicPartition, int] = {}

        async def waiting(seconds: float) -> None:
            # Keep polling (the group must see us alive) but fetch nothing: partitions paused.
            deadline = time.monotonic() + seconds
            while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
                consumer.pause(*consumer.assignment())
                more = await consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
                for tp, msgs in more.items():  # only after a rebalance; re-read them later
                    stray[tp] = min(stray.get(tp, msgs[0].offset), msgs[0].offset)

        written = await self.write_all(pending, stop, waiting)
        consumer.resume(*consumer.assignment())
        for tp, offset in stray.items():
            consumer.seek(tp, offset)
        if not written:
            return False  # stopped while the store was down: uncommitted, re-read next time
        offsets = {tp: msgs[-1].offset + 1 for tp, msgs in batch.items() if msgs}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # Partitions moved during the write: another member re-reads and rewrites them,
            # which only overwrites the same points.
            self.stats.commit_failures += 1
            log.warning("offset commit failed (%s); records will be rewritten", exc)
        self._write_stats(force=True)
        return True

    def _write_stats(self, force: bool = False) -> None:
        if self.stats_file is None:
            return
        now = time.monotonic()
        if not force and now - self._last_stats_write < 0.2:
            return
        self._last_stats_write = now
        tmp = self.stats_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stats.snapshot()))
        os.replace(tmp, self.stats_file)


async def run_writer(
    settings: Settings, ready_file: Path | None = None, stats_file: Path | None = None
) -> Stats:
    """Run until SIGINT/SIGTERM; returns the final counters."""
    import signal

    from anxin.core.topics import ensure_topics

    await ensure_topics(settings.kafka)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    sink = InfluxSink(settings)
    writer = StorageWriter(settings, sink, stats_file=stats_file)
    try:
        await writer.run(stop, ready_file)
    finally:
        await sink.close()
    return writer.stats
