"""The Faust application: topics, the per-device table and the detector agent.

``readings`` is keyed by device id at ingest, so the agent needs no ``group_by`` (a repartition is
the costliest thing Faust does). Messages are taken in batches (``stream.take``) and run through
``DetectorPipeline``, the same code ``anxin evaluate`` runs in-process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import faust

from anxin.core.logs import get_logger
from anxin.core.records import dead_letter, dumps, loads
from anxin.core.registry import RegistryWatcher
from anxin.core.settings import Settings
from detectors.pipeline import DetectorPipeline, Outputs

log = get_logger(__name__)


class _BytesKeyed(MutableMapping[str, dict[str, Any]]):
    """A str-keyed view of a bytes-keyed Faust table."""

    def __init__(self, table: Any):
        self.table = table

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self.table[key.encode()]

    def __setitem__(self, key: str, value: dict[str, Any]) -> None:
        self.table[key.encode()] = value

    def __delitem__(self, key: str) -> None:
        del self.table[key.encode()]

    def __iter__(self) -> Iterator[str]:
        return (k.decode() for k in self.table)

    def __len__(self) -> int:
        return len(self.table)

    def get(self, key: str, default: Any = None) -> Any:
        return self.table.get(key.encode(), default)


def create_app(settings: Settings, ready_file: Path | None = None) -> faust.App:
    f, k = settings.faust, settings.kafka
    app = faust.App(
        f.app_id,
        broker=[f"kafka://{host}" for host in k.bootstrap.split(",")],
        store="memory://",
        processing_guarantee="at_least_once",
        broker_rebalance_timeout=f.rebalance_timeout,
        broker_session_timeout=f.session_timeout,
        broker_heartbeat_interval=f.heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        topic_partitions=k.partitions,
        web_enabled=f.web_enabled,
        web_port=f.web_port,
        datadir=str(f.data_dir),
        producer_acks=-1,
        producer_linger_ms=f.producer_linger_ms,
    )
    registry = RegistryWatcher(settings.registry, settings.registry_reload_s)

    def raw_topic(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, value_serializer="raw")

    readings = raw_topic(k.readings_topic)
    statuses = raw_topic(k.status_topic)
    vitals = raw_topic(k.vitals_topic)
    alerts = raw_topic(k.alerts_topic)
    updates = raw_topic(k.alert_updates_topic)
    rejected = raw_topic(k.rejected_topic)
    commands = raw_topic(k.commands_topic)
    suspicions = raw_topic(k.suspicions_topic)

    def state_table(name: str) -> Any:
        # Keys are id bytes, as on the topics: with the producer's partitioner a key's changelog
        # lands in the same partition number as its messages (state follows the device).
        # ``use_partitioner`` is also what lets batches (``stream.take``) and timers update it.
        return app.Table(
            name, default=dict, partitions=k.partitions, key_type=bytes, use_partitioner=True
        )

    device_table = state_table("device-state")
    resident_table = state_table("resident-state")
    pipeline = DetectorPipeline(
        lambda: registry.current, _BytesKeyed(device_table), _BytesKeyed(resident_table)
    )

    async def publish(out: Outputs) -> None:
        for alert in out.alerts:
            await alerts.send(key=alert.resident_id.encode(), value=alert.to_json())
            log.info(
                "alert %s %s %s resident=%s",
                alert.alert_id,
                alert.kind,
                alert.severity,
                alert.resident_id,
            )
        for update in out.updates:
            await updates.send(key=str(update["resident_id"]).encode(), value=dumps(update))
        for command in out.commands:
            await commands.send(key=str(command["device_id"]).encode(), value=dumps(command))
        for dead in out.rejected:
            await rejected.send(key=str(dead["device_id"] or "-").encode(), value=dumps(dead))
        for record in out.vitals:
            await vitals.send(key=str(record["resident_id"]).encode(), value=dumps(record))
        for suspicion in out.suspicions:
            await suspicions.send(key=suspicion["resident_id"].encode(), value=dumps(suspicion))

    def guarded(step: Any, raw: bytes, now: float, out: Outputs, stage: str) -> None:
        try:
            out.extend(step(loads(raw), now))
        except Exception as exc:  # one poisoned record must not stop the partition
            log.exception("%s: record could not be processed", stage)
            out.rejected.append(
                dead_letter(f"{stage} error: {type(exc).__name__}", stage, now, payload=raw)
            )

    def batch_agent(topic: Any, name: str, step: Any) -> None:
        """An agent running ``step`` over batches of its topic (``stream.take``)."""

        async def agent(stream: Any) -> None:
            async for batch in stream.take(f.batch_size, within=f.batch_timeout):
                out, now = Outputs(), time.time()
                for raw in batch:
                    guarded(step, raw, now, out, name)
                await publish(out)

        app.agent(topic, name=name)(agent)

    batch_agent(readings, "detect", pipeline.process)
    batch_agent(statuses, "device-status", pipeline.process_status)
    batch_agent(vitals, "news2", pipeline.process_vitals)

    @app.timer(interval=f.tick_interval)
    async def timers() -> None:
        """Silence, grace periods, check windows: fire even when nothing arrives."""
        now, out = time.time(), Outputs()
        for table, tick in (
            (device_table, pipeline.tick_device),
            (resident_table, pipeline.tick_resident),
        ):
            for key in list(table.keys()):
                try:
                    out.extend(tick(key.decode(), now))
                except Exception:  # one bad state must not stop every timer of the worker
                    log.exception("timer of %s failed", key.decode(errors="replace"))
        await publish(out)

    if ready_file is not None:
        ready = ready_file

        @app.on_rebalance_complete.connect  # type: ignore[arg-type]
        async def _ready(sender: Any, **kwargs: Any) -> None:
            ready.parent.mkdir(parents=True, exist_ok=True)
            ready.write_text(str(time.time()))
            log.info("worker ready: partitions assigned")

    return app


def _cap_fetch_wait(ms: int) -> None:
    """Faust builds its consumer with ``fetch_max_wait_ms=1500`` and no setting to change it.

    Tansu does not answer a waiting fetch early when records arrive, so a caught-up worker saw
    each record up to 1.5 s late (bench/pipeline: reading p99 2.5 s → 0.41 s, alert p99 2.1 s →
    0.73 s with 100 ms). This caps the value for the worker process only.
    """
    import aiokafka

    original = aiokafka.AIOKafkaConsumer.__init__
    if getattr(original, "_anxin_capped", False):
        return

    def capped(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["fetch_max_wait_ms"] = min(int(kwargs.get("fetch_max_wait_ms", 500)), ms)
        original(self, *args, **kwargs)

    capped._anxin_capped = True  # type: ignore[attr-defined]
    aiokafka.AIOKafkaConsumer.__init__ = capped


def run_worker(settings: Settings, ready_file: Path | None = None) -> None:
    """Run one detector worker in the foreground until SIGINT/SIGTERM."""
    from anxin.core import logs

    settings.faust.data_dir.mkdir(parents=True, exist_ok=True)
    _cap_fetch_wait(settings.faust.fetch_max_wait_ms)
    app = create_app(settings, ready_file)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    logs.configure(settings.log_level)
    worker.execute_from_commandline()
