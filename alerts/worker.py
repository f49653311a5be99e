"""The alerts worker: wires the room's steps into one asyncio process: Kafka intake
(``intake.Intake``, dead letters to ``readings-rejected``), the escalation engine, the outbox
senders, the event publisher and the Twilio webhook server. Run several for scale: they share the
Kafka partitions (one consumer group) and the database work (SKIP LOCKED claims).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from alerts import messages, store
from alerts.clock import Clock
from alerts.db import Database, migrate
from alerts.escalation import run_due
from alerts.intake import Intake, dead_letter_for
from alerts.notifiers import SendResult, TwilioNotifier, check_credentials
from alerts.outbox import Outbox
from alerts.policies import DirectorySource, policies_path
from alerts.webhooks import Webhooks
from anxin.core.logs import get_logger
from anxin.core.settings import Settings
from anxin.core.topics import ensure_topics

log = get_logger(__name__)


class _QuietServer(uvicorn.Server):
    """Leaves SIGINT/SIGTERM to the worker, which stops every task, the server included."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Worker:
    def __init__(self, settings: Settings, clock: Clock, worker_id: str | None = None):
        check_credentials(settings.twilio)  # before anything can send or answer a webhook
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.db = Database(settings.postgres.dsn.get_secret_value())
        self.directory = DirectorySource(
            policies_path(settings.alerts.policies, settings.registry),
            settings.registry,
            settings.registry_reload_s,
        )
        self.outbox = Outbox(
            self.db,
            self.directory,
            settings.alerts,
            clock,
            self.worker_id,
            settings.twilio.public_base_url,
            TwilioNotifier(settings.twilio, settings.alerts.request_timeout_s),
        )
        self.webhooks = Webhooks(
            self.db,
            self.directory,
            clock,
            settings.twilio.auth_token.get_secret_value(),
            settings.twilio.public_base_url,
        )
        self.records = Intake(self.db, self.directory, clock, settings.kafka)
        self.stop = asyncio.Event()

    # -- intake --------------------------------------------------------------------------------

    async def intake(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        # Starting joins the group, which can take the session timeout after an unclean exit:
        # done here, so the engine and the webhooks do not wait for it.
        await consumer.start()
        assigned = False
        while not self.stop.is_set():
            if not assigned and consumer.assignment():
                assigned = True
                log.info("intake: %d partitions assigned", len(consumer.assignment()))
            batches = await consumer.getmany(timeout_ms=300, max_records=200)
            for tp, msgs in batches.items():
                for msg in msgs:
                    if msg.value is None:
                        continue
                    applied = await asyncio.to_thread(self.records.apply, tp.topic, msg.value)
                    if applied.reason is not None:
                        await self._dead_letter(
                            producer, tp.topic, msg.offset, msg.value, applied.reason
                        )
                # Offsets only after the database committed: a crash replays, never loses.
                await consumer.commit({tp: msgs[-1].offset + 1})

    async def _dead_letter(
        self, producer: AIOKafkaProducer, topic: str, offset: int, raw: bytes, reason: str
    ) -> None:
        """A record the alerts room cannot apply goes to the one dead-letter topic with its
        reason (before its offset is committed), and the next record is handled as usual."""
        letter, key = dead_letter_for(topic, raw, reason)
        await producer.send_and_wait(
            self.settings.kafka.rejected_topic,
            orjson.dumps(letter),
            key=key.encode() if key else None,
        )
        log.warning("record at %s offset %d dead-lettered: %s", topic, offset, reason)

    # -- engine and senders --------------------------------------------------------------------

    async def _pause(self) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), self.settings.alerts.tick_s)
        except TimeoutError:
            pass

    async def engine(self) -> None:
        while not self.stop.is_set():
            await asyncio.to_thread(
                run_due,
                self.db,
                self.directory(),
                self.clock.now(),
                self.settings.alerts.claim_batch,
            )
            rows = await asyncio.to_thread(self.outbox.claim)
            if rows:
                await asyncio.gather(*(asyncio.to_thread(self.outbox.deliver, r) for r in rows))
            await self._pause()

    def _claim_events(self) -> list[dict[str, Any]]:
        wall = time.time()
        with self.db.transaction() as conn:
            return store.claim_events(conn, wall, wall + self.settings.alerts.lease_s)

    def _mark_published(self, ids: list[int]) -> None:
        with self.db.transaction() as conn:
            store.mark_published(conn, ids, self.clock.now())

    async def publisher(self, producer: AIOKafkaProducer) -> None:
        """Alert events to ``alert-events`` and device prompts to ``device-commands``."""
        k = self.settings.kafka
        while not self.stop.is_set():
            events = await asyncio.to_thread(self._claim_events)
            for e in events:
                record = {
                    "event_id": e["event_id"],
                    "alert_id": e["alert_id"],
                    "state": e["state"],
                    "event": e["event"],
                    "at": e["at"],
                    "by": e["by"],
                    "channel": e["channel"],
                    "note": e["note"],
                    "resident_id": e["resident_id"],
                    "kind": e["kind"],
                    "severity": e["severity"],
                }
                await producer.send(
                    k.alert_events_topic, orjson.dumps(record), key=e["alert_id"].encode()
                )
            if events:
                await producer.flush()
                await asyncio.to_thread(self._mark_published, [e["event_id"] for e in events])
            rows = await asyncio.to_thread(self.outbox.claim, ("device",))
            for row in rows:
                directory = self.directory()
                resident = directory.registry.residents.get(row["resident_id"])
                command = messages.device_command(row, resident.language if resident else None)
                await producer.send_and_wait(
                    k.commands_topic, orjson.dumps(command), key=row["device_id"].encode()
                )
                await asyncio.to_thread(self.outbox.finish, row, SendResult("sent"))
            await self._pause()

    # -- the whole process ---------------------------------------------------------------------

    async def run(self, ready_file: Path | None = None, webhooks: bool = True) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        version = await asyncio.to_thread(migrate, self.db)
        log.info("database schema at version %d", version)
        await ensure_topics(s.kafka)
        producer = AIOKafkaProducer(bootstrap_servers=s.kafka.bootstrap, acks="all")
        consumer = AIOKafkaConsumer(
            s.kafka.alerts_topic,
            s.kafka.alert_updates_topic,
            s.kafka.suspicions_topic,
            bootstrap_servers=s.kafka.bootstrap,
            group_id=s.alerts.group_id,
            enable_auto_commit=False,
            auto_offset_reset=s.alerts.auto_offset_reset,
            session_timeout_ms=int(s.faust.session_timeout * 1000),
            rebalance_timeout_ms=int(s.faust.rebalance_timeout * 1000),
            heartbeat_interval_ms=int(s.faust.heartbeat_interval * 1000),
        )
        await producer.start()
        server: uvicorn.Server | None = None
        tasks = [
            asyncio.create_task(self.intake(consumer, producer), name="intake"),
            asyncio.create_task(self.engine(), name="engine"),
            asyncio.create_task(self.publisher(producer), name="publisher"),
        ]
        if webhooks:
            config = uvicorn.Config(
                self.webhooks.app(),
                host=s.alerts.webhook_host,
                port=s.alerts.webhook_port,
                log_level="warning",
                lifespan="off",
                access_log=False,
            )
            server = _QuietServer(config)
            tasks.append(asyncio.create_task(server.serve(), name="webhooks"))
        try:
            # Ready once the database is migrated, the producer started and the webhooks listen.
            # The group join may take a few seconds more (longer after an unclean exit); the
            # engine and the senders work meanwhile, and nothing on the topics is skipped: a new
            # group starts at the earliest offset, a known one at its committed offsets.
            while server is not None and not server.started:
                done = [t for t in tasks if t.done()]
                if done:
                    done[0].result()
                    raise RuntimeError(f"{done[0].get_name()} ended while starting")
                await asyncio.sleep(0.05)  # poll interval while uvicorn binds
            if ready_file is not None:
                ready_file.parent.mkdir(parents=True, exist_ok=True)
                ready_file.write_text(str(time.time()))
            log.info(
                "alerts worker %s ready: webhooks %s",
                self.worker_id,
                f"on port {s.alerts.webhook_port}" if webhooks else "off",
            )
            stop_task = asyncio.create_task(self.stop.wait())
            done_set, _ = await asyncio.wait([*tasks, stop_task], return_when="FIRST_COMPLETED")
            for t in done_set:
                if t is not stop_task and t.exception():
                    raise t.exception()  # type: ignore[misc]
        finally:
            self.stop.set()
            if server is not None:
                server.should_exit = True
            _, pending = await asyncio.wait(tasks, timeout=3)
            for t in pending:
                t.cancel()  # e.g. intake still joining the group: nothing to finish there
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await asyncio.wait_for(consumer.stop(), 5)
            except (TimeoutError, Exception) as exc:  # leaving anyway; the group times us out
                log.warning("consumer did not stop cleanly: %s", type(exc).__name__)
            await producer.stop()
            log.info("alerts worker stopped")
