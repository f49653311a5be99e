"""The MQTT ⇄ Kafka bridge: telemetry and status in, device commands out.

Uplink: a shared subscription (several bridges split the load) on a persistent MQTT v5 session;
each message is validated, produced to ``readings`` keyed by device id (or to
``readings-rejected`` with its reason), and only acknowledged to the broker (paho manual ack)
once Kafka has acknowledged the produce, so a killed bridge loses nothing.
A device over its rate limit (``ingest/throttle.py``) has its excess dead-lettered with the reason
``rate limit``, acknowledged like any other message once that record is in Kafka; SOS and fall
events always pass. The over-rate messages of one device in one batch share a dead-letter record
(``count``; the first message's fields at the top, the others under ``messages``), so setting a
flood aside costs one produce per batch, not one per message.
Downlink: records on ``device-commands`` are published to ``{prefix}/devices/{id}/commands`` at
QoS 1, and their Kafka offsets are committed only once the broker has acknowledged them (PUBACK):
a bridge stopped or killed in between leaves them uncommitted, and the next bridge of the group
publishes them again (at least once; a device may see a command twice, never zero times).

Robustness: no message can stop the uplink. A message that makes routing fail unexpectedly is
dead-lettered with the error's type; if even that produce fails, it stays unacknowledged (the
broker redelivers it to the next session). If one of the bridge's tasks dies anyway, the process
exits non-zero instead of running on deaf.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from anxin.core.logs import get_logger
from anxin.core.records import dead_letter, dumps, loads, pack_accel
from anxin.core.rules import RulesWatcher
from anxin.core.settings import KafkaSettings, MqttSettings, Settings
from anxin.core.topics import ensure_topics
from ingest.telemetry import (
    Rejected,
    decode_json,
    topic_device,
    validate_status,
    validate_telemetry,
)
from ingest.throttle import Throttle

log = get_logger(__name__)

SESSION_EXPIRY_S = 24 * 3600


@dataclass
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float


MAX_NAMED_DROPS = 50  # dropped field names kept in a reading
THROTTLED_RECORD_BYTES = 256 * 1024  # raw payload bytes per dead-letter record of a flood
# MQTT v5 Receive Maximum: unacknowledged QoS 1 messages the broker may send us, below the queue
# size so that a QoS 1 message always finds room (unset, the broker may send 65,535).
RECEIVE_MAXIMUM = 10_000


def downlink_group(settings: Settings) -> str:
    """The downlink's consumer group: one per (prefix, commands topic), so that bridges of another
    prefix (another broker, a test) neither steal commands nor stall this group's rebalances."""
    k, m = settings.kafka, settings.mqtt
    if (m.prefix, k.commands_topic) == (MqttSettings().prefix, KafkaSettings().commands_topic):
        return "anxin-downlink"
    return f"anxin-downlink-{m.prefix}-{k.commands_topic}".replace("/", "_")


class Bridge:
    def __init__(self, settings: Settings, ready_file: Path | None = None):
        self.settings = settings
        self.ready_file = ready_file
        self.registry = RulesWatcher(settings.registry, settings.registry_reload_s)
        self.ingest = settings.ingest
        self.throttle = Throttle(self.ingest.rate_per_s, self.ingest.burst)
        self._throttle_reported: dict[str, tuple[float, int]] = {}  # device: (last log, since)
        self.counts: Counter[str] = Counter()
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue(maxsize=50_000)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.producer: AIOKafkaProducer | None = None
        self.client = self._mqtt_client()
        self.stopping = asyncio.Event()
        self.connected = asyncio.Event()
        self._pubacks: dict[int, asyncio.Future[Any]] = {}  # downlink mid -> its PUBACK

    # -- MQTT side (paho's network thread) ------------------------------------------------------
    def _mqtt_client(self) -> mqtt.Client:
        m = self.settings.mqtt
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=m.session_id(),
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if m.username:
            client.username_pw_set(
                m.username, m.password.get_secret_value() if m.password else None
            )
        if m.tls_ca:
            client.tls_set(ca_certs=str(m.tls_ca))
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        return client

    def _subscriptions(self) -> list[tuple[str, int]]:
        m = self.settings.mqtt
        share = f"$share/{m.share_group}/" if m.share_group else ""
        return [
            (f"{share}{m.prefix}/devices/+/telemetry", 1),
            (f"{share}{m.prefix}/devices/+/status", 1),
        ]

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT connect refused: %s", reason)
            return
        client.subscribe(self._subscriptions())
        log.info("MQTT connected (session present: %s)", flags.session_present)
        if self.loop:
            self.loop.call_soon_threadsafe(self.connected.set)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any
    ) -> None:
        failed = [c for c in codes if c.is_failure]
        if failed:
            log.error("MQTT subscription refused: %s", failed)
            return
        if self.ready_file is not None:
            self.ready_file.parent.mkdir(parents=True, exist_ok=True)
            self.ready_file.write_text(str(time.time()))
        log.info("bridge ready: subscribed")

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        log.warning("MQTT disconnected (%s); paho reconnects with backoff", reason)

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        """The broker's PUBACK of a downlink command: handed to the loop that awaits it."""
        if self.loop:
            self.loop.call_soon_threadsafe(self._puback, mid, reason)

    def _puback(self, mid: int, reason: Any) -> None:
        # Runs on the loop: ``_publish_command`` registered the mid in the same loop turn as the
        # publish, so a PUBACK that raced ahead of the registration still finds it here.
        fut = self._pubacks.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        item = Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos, time.time())
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self._enqueue, item)

    def _enqueue(self, item: Incoming) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            # Only QoS 0 can overrun the queue (QoS 1 is bounded by the broker's in-flight
            # window): that message is lost, as QoS 0 allows. Counted, never a crash.
            self.counts["dropped_queue_full"] += 1
            if self.counts["dropped_queue_full"] % 1000 == 1:
                log.warning(
                    "bridge queue full: %d messages dropped", self.counts["dropped_queue_full"]
                )

    # -- Kafka side (asyncio) -------------------------------------------------------------------
    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        k = self.settings.kafka
        await ensure_topics(k)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=k.bootstrap, linger_ms=5, acks="all", enable_idempotence=False
        )
        await self.producer.start()
        m = self.settings.mqtt
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        self.client.connect_async(
            m.host, m.port, keepalive=m.keepalive, clean_start=False, properties=props
        )
        self.client.loop_start()
        tasks = [
            asyncio.create_task(self._uplink(), name="uplink"),
            asyncio.create_task(self._downlink(), name="downlink"),
            asyncio.create_task(self._report(), name="report"),
        ]
        stopping = asyncio.create_task(self.stopping.wait(), name="stopping")
        try:
            done, _ = await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopping:
                    exc = t.exception()
                    log.error("bridge task %s ended (%r); exiting", t.get_name(), exc)
                    raise SystemExit(1)
        finally:
            stopping.cancel()
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            self.client.disconnect()
            self.client.loop_stop()
            await self.producer.stop()
            log.info("bridge stopped: %s", dict(self.counts))

    async def _uplink(self) -> None:
        assert self.producer is not None
        while True:
            # Everything that is waiting, up to the broker's in-flight window: a message of a
            # calm device is handled in the same pass as the flood queued before it.
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < RECEIVE_MAXIMUM:
                batch.append(self.queue.get_nowait())
            sends: list[tuple[Incoming, list[asyncio.Future[Any]]]] = []
            throttled: dict[str, list[Incoming]] = {}
            for item in batch:
                try:
                    device_id = self._over_rate(item)
                except Exception:  # never let the throttle stop the uplink: route it normally
                    log.exception("throttle check failed on a message of %s", item.topic)
                    device_id = None
                if device_id is None:
                    sends.append((item, await self._route_safely(item)))
                else:
                    throttled.setdefault(device_id, []).append(item)
            for device_id, items in throttled.items():
                sends += await self._reject_throttled(device_id, items)
            for item, futures in sends:
                try:
                    for fut in futures:
                        await fut
                except Exception:
                    # Not acknowledged: the broker redelivers it on the next session.
                    log.exception("Kafka produce failed; MQTT message left unacknowledged")
                    self.counts["produce_failed"] += 1
                    continue
                if item.qos > 0:
                    self.client.ack(item.mid, item.qos)

    async def _reject_throttled(
        self, device_id: str, items: list[Incoming]
    ) -> list[tuple[Incoming, list[asyncio.Future[Any]]]]:
        """Dead-letter a device's over-rate messages of one batch, many to a record: a flood is
        cheap to set aside, so the bridge keeps up with it and others' messages do not wait."""
        assert self.producer is not None
        self.counts["throttled"] += len(items)
        self._report_throttled(device_id, len(items))
        out: list[tuple[Incoming, list[asyncio.Future[Any]]]] = []
        reason = f"rate limit: over {self.ingest.rate_per_s:g} msgs/s (burst {self.ingest.burst})"
        limit = self.ingest.deadletter_payload_max
        chunk: list[Incoming] = []
        size = 0
        for i, item in enumerate(items):
            chunk.append(item)
            size += min(len(item.payload), limit)
            if i + 1 < len(items) and size < THROTTLED_RECORD_BYTES and len(chunk) < 1000:
                continue
            messages = [
                dead_letter(
                    reason,
                    "ingest",
                    m.received_at,
                    payload=m.payload,
                    topic=m.topic,
                    device_id=device_id,
                    max_payload=limit,
                )
                for m in chunk
            ]
            record = {
                **messages[0],
                "partial": False,
                "count": len(chunk),
                "messages": messages[1:],
            }
            try:
                fut = await self.producer.send(
                    self.settings.kafka.rejected_topic, dumps(record), key=device_id.encode()
                )
            except Exception as exc:  # left unacknowledged: redelivered to the next session
                log.exception("could not dead-letter throttled messages of %s", device_id)
                fut = asyncio.get_running_loop().create_future()
                fut.set_exception(exc)
            out += [(m, [fut]) for m in chunk]
            chunk, size = [], 0
        return out

    async def _route_safely(self, item: Incoming) -> list[asyncio.Future[Any]]:
        """Route one message; an unexpected error dead-letters it instead of stopping the uplink."""
        try:
            return await self._route(item)
        except Exception as exc:
            log.exception("bridge error routing a message of %s", item.topic)
            self.counts["errors"] += 1
            try:
                return [await self._reject(item, Rejected(f"bridge error: {type(exc).__name__}"))]
            except Exception:
                log.exception("could not dead-letter it either; left unacknowledged")
                failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                failed.set_exception(exc)
                return [failed]

    def _over_rate(self, item: Incoming) -> str | None:
        """The device id if this message is over its device's rate and may be throttled."""
        if not self.throttle.enabled:
            return None
        kind = "status" if item.topic.endswith("/status") else "telemetry"
        device_id = topic_device(item.topic, self.settings.mqtt.prefix, kind)
        if device_id is None or self.throttle.allow(device_id):
            return None
        if kind == "telemetry":
            data = decode_json(item.payload, self.settings.max_payload_bytes)
            if isinstance(data, dict) and data.get("event") in self.ingest.unthrottled_events:
                self.counts["unthrottled_events"] += 1
                return None
        return device_id

    def _report_throttled(self, device_id: str, n: int) -> None:
        now = time.monotonic()
        last, since = self._throttle_reported.get(device_id, (-1e9, 0))
        since += n
        if now - last >= self.ingest.throttle_log_interval_s:
            log.warning(
                "device %s over the rate limit (%g msgs/s, burst %d): %d messages dead-lettered",
                device_id,
                self.ingest.rate_per_s,
                self.ingest.burst,
                since,
            )
            last, since = now, 0
        self._throttle_reported[device_id] = (last, since)
        if len(self._throttle_reported) > 10_000:
            self._throttle_reported.clear()

    async def _route(self, item: Incoming) -> list[asyncio.Future[Any]]:
        assert self.producer is not None
        k, m = self.settings.kafka, self.settings.mqtt
        if item.topic.endswith("/status"):
            status = validate_status(item.topic, item.payload, m.prefix)
            if isinstance(status, Rejected):
                return [await self._reject(item, status)]
            device_id = item.topic.split("/")[-2]
            self.counts["status"] += 1
            record = {"device_id": device_id, "status": status, "received_at": item.received_at}
            # Keyed like the device's readings (by its resident), so the one worker that holds
            # the device's state sees its status too; an unknown device by its own id.
            owner = self.registry.current.device_owner(device_id)
            key = owner[0] if owner else device_id
            return [await self.producer.send(k.status_topic, dumps(record), key=key.encode())]
        result = validate_telemetry(
            item.topic, item.payload, item.received_at, m.prefix, self.settings.max_payload_bytes
        )
        if isinstance(result, Rejected):
            return [await self._reject(item, result)]
        owner = self.registry.current.device_owner(result.device_id)
        if owner is None:
            return [
                await self._reject(
                    item, Rejected("unknown device: not in the registry", result.device_id)
                )
            ]
        reading = result.reading
        reading["resident_id"] = owner[0]
        futures = []
        if result.dropped:
            # Named in full up to a bound: a payload of thousands of junk keys makes no huge record.
            reading["dropped"] = [d.field[:64] for d in result.dropped[:MAX_NAMED_DROPS]]
            reason = "; ".join(f"{d.field[:64]}: {d.reason}" for d in result.dropped[:10])
            if len(result.dropped) > 10:
                reason += f"; and {len(result.dropped) - 10} more"
            futures.append(
                await self._reject(
                    item, Rejected(f"fields dropped: {reason}", result.device_id), partial=True
                )
            )
        self.counts["readings"] += 1
        # Keyed by resident (DESIGN.md's 2026-12 extension): a resident's devices meet in one
        # partition, so NEWS2 runs beside the device detectors with no second topic; each
        # device's order holds because one partition keeps the order of its messages. The
        # accelerometer rows travel packed (``pack_accel``): the same numbers, read in one pass.
        futures.append(
            await self.producer.send(
                k.readings_topic, dumps(pack_accel(reading)), key=owner[0].encode()
            )
        )
        return futures

    async def _reject(
        self, item: Incoming, rejected: Rejected, partial: bool = False
    ) -> asyncio.Future[Any]:
        assert self.producer is not None
        self.counts["rejected_partial" if partial else "rejected"] += 1
        record = dead_letter(
            rejected.reason,
            "ingest",
            item.received_at,
            payload=item.payload,
            topic=item.topic,
            device_id=rejected.device_id,
            partial=partial,
            max_payload=self.ingest.deadletter_payload_max,
        )
        key = (rejected.device_id or "-").encode()
        return await self.producer.send(self.settings.kafka.rejected_topic, dumps(record), key=key)

    async def _downlink(self) -> None:
        """Commands out, a batch at a time: publish, await every PUBACK, then commit."""
        k = self.settings.kafka
        consumer = AIOKafkaConsumer(
            k.commands_topic,
            bootstrap_servers=k.bootstrap,
            group_id=downlink_group(self.settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # The group timeouts the worker and the alerts worker use: a restarted bridge takes
            # the downlink over in seconds (Tansu's join waits half the rebalance timeout).
            session_timeout_ms=int(self.settings.faust.session_timeout * 1000),
            rebalance_timeout_ms=int(self.settings.faust.rebalance_timeout * 1000),
            heartbeat_interval_ms=int(self.settings.faust.heartbeat_interval * 1000),
        )
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=500)
                acks: list[asyncio.Future[Any]] = []
                offsets: dict[TopicPartition, int] = {}
                for tp, records in batches.items():
                    for record in records:
                        fut = self._publish_command(record)
                        if fut is not None:
                            acks.append(fut)
                    offsets[tp] = records[-1].offset + 1
                for fut in acks:
                    reason = await fut  # paho resends across reconnects until the broker acks
                    if getattr(reason, "is_failure", False):
                        self.counts["commands_refused"] += 1
                        log.error("the broker refused a device command: %s", reason)
                if offsets:
                    try:
                        await consumer.commit(offsets)
                    except (CommitFailedError, IllegalStateError) as exc:
                        # Partitions moved to another bridge: it publishes these again.
                        log.warning("downlink commit failed (%s); commands may repeat", exc)
        finally:
            await consumer.stop()

    def _publish_command(self, record: ConsumerRecord[Any, Any]) -> asyncio.Future[Any] | None:
        """Publish one command at QoS 1; the future completes with the broker's PUBACK."""
        try:
            command = loads(record.value)
            device_id = command.pop("device_id")
            topic = f"{self.settings.mqtt.prefix}/devices/{device_id}/commands"
            info = self.client.publish(topic, dumps(command), qos=1)
        except Exception:
            log.error("undeliverable device command dropped (offset %s)", record.offset)
            self.counts["commands_dropped"] += 1
            return None
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN: sent later
            # Not queued by paho: no PUBACK will come. Uncommitted, so the next bridge resends.
            raise RuntimeError(f"downlink publish not queued: {mqtt.error_string(info.rc)}")
        assert self.loop is not None
        fut: asyncio.Future[Any] = self.loop.create_future()
        self._pubacks[info.mid] = fut
        self.counts["commands"] += 1
        return fut

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(30)
            log.info("bridge counts: %s", dict(self.counts))


async def run_bridge(settings: Settings, ready_file: Path | None = None) -> None:
    bridge = Bridge(settings, ready_file)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, bridge.stopping.set)
    await bridge.run()
