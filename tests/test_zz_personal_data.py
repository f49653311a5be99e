"""Personal data (names, phone numbers, addresses) never leaves the registry.

Named to run last: it scans everything the session's processes wrote (logs, every topic).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from anxin.core.registry import load_registry
from anxin.processes import ProcessGroup
from anxin.services import Endpoints
from tests.conftest import TEST_REGISTRY


def personal_values() -> list[str]:
    registry = load_registry(TEST_REGISTRY)
    values: list[str] = []
    for resident in registry.residents.values():
        values.append(resident.name)
        if resident.address:
            values.append(resident.address)
        for contact in resident.family:
            values += [contact.name, contact.phone, contact.phone.lstrip("+")]
    return values


async def _all_records(bootstrap: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = [t for t in await consumer.topics() if t != "registry"]
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[bytes] = []
        while True:
            batch = await consumer.getmany(timeout_ms=1500)
            if not batch:
                return out
            out += [
                (m.key or b"") + b" " + (m.value or b"") for msgs in batch.values() for m in msgs
            ]
    finally:
        await consumer.stop()


def test_no_personal_data_in_logs_or_topics(
    services: Endpoints, pipeline: ProcessGroup, run_root: Path
) -> None:
    values = personal_values()
    assert len(values) >= 9
    logs = [p for p in run_root.rglob("*.log")]
    assert any(p.name == "bridge.log" for p in logs) and any(p.name == "worker.log" for p in logs)
    for path in logs:
        text = path.read_text(errors="replace")
        for value in values:
            assert value not in text, f"personal data in {path.name}"
    records = asyncio.run(_all_records(services.kafka_bootstrap))
    assert records, "the session produced no records to scan"
    blob = b"\n".join(records).decode("utf-8", "replace")
    for value in values:
        assert value not in blob, "personal data on a topic"
