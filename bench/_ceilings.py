"""The services' own rates on this machine, measured against running services (bench/ceiling and
bench/pipeline both use these, so a pipeline figure can be divided by a ceiling of the same run).

Every ceiling uses the same message the pipeline carries: a watch report made by
``simulators.fleet.Fleet.telemetry`` (2 s of 25 Hz accel, vitals, GPS; ~1.2 KB) on MQTT, the
bridge's validated reading on Kafka, and the storage writer's points of that reading on
VictoriaMetrics.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
import uuid
from dataclasses import dataclass
from typing import Any

import _common  # noqa: F401  (puts the repository on sys.path)
import orjson


@dataclass
class Rate:
    name: str
    count: int
    seconds: float
    unit: str = "msgs"
    note: str = ""

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("nan")

    def text(self) -> str:
        extra = f"  ({self.note})" if self.note else ""
        return (
            f"{self.name:<58} {self.per_s:>10,.0f} {self.unit}/s   "
            f"[{self.count:,} in {self.seconds:.2f} s]{extra}"
        )


def sample_messages(n_devices: int = 200, per_device: int = 3) -> list[tuple[str, bytes, bytes]]:
    """(device_id, MQTT payload, Kafka reading) made by the fleet simulator's generator."""
    from anxin.core.records import pack_accel
    from ingest.telemetry import Accepted, validate_telemetry
    from simulators.fleet import Fleet, demo_registry

    reg = demo_registry(n_devices)
    fleet = Fleet(reg, "127.0.0.1", 1, interval_s=10.0, sos_rate=0.0)
    fleet.pool.sel.close()
    out = []
    now = time.time()
    for i in range(per_device):
        for j, d in enumerate(fleet.devices.values()):
            d.rate, d.chunk_s = 25, 2.0
            p = fleet.telemetry(d, now - 60 + i * 10.0)
            p["seq"] = i
            raw = orjson.dumps(p, option=orjson.OPT_SERIALIZE_NUMPY)
            v = validate_telemetry(f"anxin/v1/devices/{d.device_id}/telemetry", raw, now)
            assert isinstance(v, Accepted)
            reading = v.reading
            reading["resident_id"] = f"R{j + 1:03d}"
            out.append((d.device_id, raw, orjson.dumps(pack_accel(reading))))  # as bridged
    return out


# -- MQTT ----------------------------------------------------------------------------------------
def _mqtt_subscriber(host: str, port: int, topic: str, n: int, ready: Any, result: Any) -> None:
    import paho.mqtt.client as mqtt

    state = {"n": 0, "first": 0.0, "last": 0.0}

    def on_message(c: Any, u: Any, msg: Any) -> None:
        now = time.perf_counter()
        if state["n"] == 0:
            state["first"] = now
        state["n"] += 1
        state["last"] = now

    def on_subscribe(*a: Any) -> None:
        ready.set()

    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"bench-sub-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv311,
    )
    c.max_inflight_messages_set(1000)
    c.on_message = on_message
    c.on_subscribe = on_subscribe
    c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
    c.connect(host, port, 60)
    deadline = time.monotonic() + 120
    while state["n"] < n and time.monotonic() < deadline:
        c.loop(0.05)
        if state["n"] and time.perf_counter() - state["last"] > 5:
            break  # the rest is not coming
    c.disconnect()
    result.put((state["n"], state["first"], state["last"]))


def mqtt_ceiling(host: str, port: int, msgs: list[bytes], n: int) -> tuple[Rate, Rate]:
    """One paho QoS 1 publisher (its own loop thread) -> Mosquitto -> one QoS 1 subscriber
    in another process. Returns (publish acknowledged rate, delivered rate)."""
    import paho.mqtt.client as mqtt

    topic = f"bench/{uuid.uuid4().hex[:8]}/devices/W001/telemetry"
    ctx = mp.get_context("spawn")
    ready, result = ctx.Event(), ctx.Queue()
    sub = ctx.Process(
        target=_mqtt_subscriber, args=(host, port, topic, n, ready, result), daemon=True
    )
    sub.start()
    if not ready.wait(30):
        raise RuntimeError("MQTT subscriber did not subscribe")
    pub = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"bench-pub-{uuid.uuid4().hex[:6]}",
        protocol=mqtt.MQTTv311,
    )
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    acked = {"n": 0}
    pub.on_publish = lambda *a: acked.__setitem__("n", acked["n"] + 1)
    pub.connect(host, port, 60)
    pub.loop_start()
    t0 = time.perf_counter()
    for i in range(n):
        pub.publish(topic, msgs[i % len(msgs)], qos=1)
    while acked["n"] < n and time.perf_counter() - t0 < 120:
        time.sleep(0.005)
    t_pub = time.perf_counter() - t0
    got, first, last = result.get(timeout=180)
    sub.join(10)
    pub.loop_stop()
    pub.disconnect()
    return (
        Rate("mqtt: paho QoS 1 publish (acknowledged), 1 client", acked["n"], t_pub),
        Rate(
            "mqtt: QoS 1 publish -> subscribe (delivered), 1 sub",
            got,
            last - first,
            note=f"{got}/{n} delivered",
        ),
    )


# -- Kafka ---------------------------------------------------------------------------------------
async def kafka_produce(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], n: int
) -> Rate:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        acks="all",
        enable_idempotence=False,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        t0 = time.perf_counter()
        futures = []
        for i in range(n):
            key, value = records[i % len(records)]
            futures.append(await producer.send(topic, value, key=key))
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
        took = time.perf_counter() - t0
    finally:
        await producer.stop()
    return Rate("kafka: aiokafka produce (acks=all, keyed, linger 5 ms)", n, took)


async def kafka_consume(
    bootstrap: str, topic: str, n: int, decode: bool, timeout_s: float = 60.0
) -> Rate:
    """Consume ``n`` records from the beginning (no group: all partitions), optionally decoding
    each value with orjson (and a reading's packed accelerometer samples into their array, so
    the numbers are out as the JSON lists gave them before ``pack_accel``): the plain aiokafka
    consume-and-decode loop (framework ceiling)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from anxin.core.records import accel_samples

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=16 << 20,
    )
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        got, decoded = 0, 0
        t0 = time.perf_counter()
        deadline = t0 + timeout_s
        idle_since = None
        while got < n and time.perf_counter() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            if not batches:
                idle_since = idle_since or time.perf_counter()
                if time.perf_counter() - idle_since > 3:
                    break
                continue
            idle_since = None
            for msgs in batches.values():
                got += len(msgs)
                if decode:
                    for m in msgs:
                        value = orjson.loads(m.value)
                        if type(value) is dict and type(value.get("accel")) is dict:
                            accel_samples(value["accel"])
                        decoded += 1
        took = time.perf_counter() - t0 - (3 if idle_since else 0)
    finally:
        await consumer.stop()
    what = "consume + orjson decode (framework ceiling)" if decode else "consume (raw bytes)"
    return Rate(f"kafka: aiokafka {what}", got, max(took, 1e-6), note=f"{got:,}/{n:,}")


async def kafka_ceiling(
    bootstrap: str, records: list[tuple[bytes, bytes]], n: int, partitions: int = 4
) -> list[Rate]:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"bench-readings-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()
    produce = await kafka_produce(bootstrap, topic, records, n)
    raw = await kafka_consume(bootstrap, topic, n, decode=False)
    dec = await kafka_consume(bootstrap, topic, n, decode=True)
    return [produce, raw, dec]


async def kafka_latency_text(bootstrap: str) -> list[str]:
    from _common import median, pct
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    lines = []
    for wait in (500, 100, 20):
        lat = await kafka_latency(bootstrap, topic, wait)
        lines.append(
            f"kafka: produce -> consume latency, one record at a time, fetch_max_wait_ms"
            f" {wait:>3}: p50 {1000 * median(lat):6.1f} ms  p99 {1000 * pct(lat, 99):6.1f}"
            f" ms  (n={len(lat)})"
        )
    return lines


# -- VictoriaMetrics through influxdb-client -----------------------------------------------------
def vm_ceiling(url: str, readings: list[bytes], n: int, batch: int = 2000) -> Rate:
    """influxdb-client's synchronous write_api, line protocol in batches of ``batch`` readings'
    points (the storage writer's own points of each reading, serialised before timing)."""
    from influxdb_client import InfluxDBClient
    from influxdb_client.client.write_api import SYNCHRONOUS

    from storage.points import PRECISION, reading_points

    base_ms = int(time.time() * 1000) - 3_600_000
    lines_per_reading = []
    for raw in readings:
        r = orjson.loads(raw)
        pts = reading_points(r)
        lines_per_reading.append([p.to_line_protocol(PRECISION) for p in pts])
    points = 0
    batches: list[str] = []
    cur: list[str] = []
    for i in range(n):
        lines = lines_per_reading[i % len(lines_per_reading)]
        # a distinct timestamp per reading so nothing dedups away
        ts = str(base_ms + i)
        cur.extend(ln.rsplit(" ", 1)[0] + " " + ts for ln in lines)
        points += len(lines)
        if (i + 1) % batch == 0:
            batches.append("\n".join(cur))
            cur = []
    if cur:
        batches.append("\n".join(cur))
    client = InfluxDBClient(url=url, token="bench", org="anxin", timeout=30_000)
    try:
        w = client.write_api(write_options=SYNCHRONOUS)
        t0 = time.perf_counter()
        for body in batches:
            w.write(bucket="bench", record=body, write_precision=PRECISION)
        took = time.perf_counter() - t0
    finally:
        client.close()
    return Rate(
        f"victoriametrics: influxdb-client line protocol, {batch}/write",
        n,
        took,
        unit="readings",
        note=f"{points / took:,.0f} points/s, {points / n:.1f} points per reading",
    )


async def kafka_latency(bootstrap: str, topic: str, wait_ms: int, n: int = 60) -> list[float]:
    """One record at a time, 50 ms apart: produce -> seen by a consumer whose fetch waits at most
    ``wait_ms`` (aiokafka's default, which Faust keeps, is 500 ms)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=0, acks="all", enable_idempotence=False
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="latest",
        fetch_max_wait_ms=wait_ms,
    )
    await producer.start()
    await consumer.start()
    out: list[float] = []
    try:
        await consumer._client.force_metadata_update()
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        sent: dict[bytes, float] = {}

        async def reader() -> None:
            while len(out) < n:
                for msgs in (await consumer.getmany(timeout_ms=1000)).values():
                    now = time.perf_counter()
                    for m in msgs:
                        if m.value in sent:
                            out.append(now - sent.pop(m.value))

        task = asyncio.create_task(reader())
        await asyncio.sleep(1.0)
        for i in range(n):
            value = f"probe-{i}".encode()
            sent[value] = time.perf_counter()
            await producer.send_and_wait(topic, value, key=b"W001")
            await asyncio.sleep(0.05)
        try:
            await asyncio.wait_for(task, 10)
        except TimeoutError:
            task.cancel()
    finally:
        await consumer.stop()
        await producer.stop()
    return out
