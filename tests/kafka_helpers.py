"""Reading the real topics in tests: collect what a test produced, identified by a predicate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


def record(raw: bytes | None) -> dict[str, Any] | None:
    """A topic record as a JSON object, or None: the fault tests put poison records (cut-short
    JSON, non-objects) on the shared topics, and they match nothing a test looks for."""
    try:
        value = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


async def _collect(
    bootstrap: str,
    topic: str,
    match: Callable[[dict[str, Any]], bool],
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float,
    settle_ms: int,
) -> list[dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        partitions: set[int] | None = None
        while not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} does not exist")
            if not partitions:
                await asyncio.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: list[dict[str, Any]] = []
        done = False
        while time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=settle_ms if done else 500)
            new = [record(m.value) for msgs in batches.values() for m in msgs]
            matched = [v for v in new if v is not None and match(v)]
            found.extend(matched)
            if done and not matched:
                return found  # nothing more arrived within the settle window
            done = until(found)
        return found
    finally:
        await consumer.stop()


def collect(
    bootstrap: str,
    topic: str,
    match: Callable[[dict[str, Any]], bool],
    until: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 60.0,
    settle_ms: int = 1500,
) -> list[dict[str, Any]]:
    """Every record of ``topic`` that ``match``es, read until ``until(found)`` holds and then
    for ``settle_ms`` more, so that a record too many is seen too."""
    return asyncio.run(_collect(bootstrap, topic, match, until, timeout, settle_ms))


async def _first(
    bootstrap: str,
    topics: list[str],
    match: Callable[[str, dict[str, Any]], bool],
    timeout: float,
) -> tuple[str, dict[str, Any]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        tps: list[TopicPartition] = []
        while len({tp.topic for tp in tps}) < len(topics):
            await consumer._client.force_metadata_update()
            tps = [
                TopicPartition(t, p)
                for t in topics
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics {topics} do not all exist")
            if len({tp.topic for tp in tps}) < len(topics):
                await asyncio.sleep(0.2)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while time.monotonic() < deadline:
            for tp, msgs in (await consumer.getmany(timeout_ms=500)).items():
                for m in msgs:
                    value = record(m.value)
                    if value is not None and match(tp.topic, value):
                        return tp.topic, value
        raise TimeoutError(f"no matching record on {topics} within {timeout:.0f} s")
    finally:
        await consumer.stop()


def first_of(
    bootstrap: str,
    topics: list[str],
    match: Callable[[str, dict[str, Any]], bool],
    timeout: float = 60.0,
) -> tuple[str, dict[str, Any]]:
    """The first record of any of ``topics`` that ``match``es, as (topic, record): for outcomes
    that land on one topic or another (a reading or its dead letter), so that neither is ever
    concluded from the other's absence after a wait."""
    return asyncio.run(_first(bootstrap, topics, match, timeout))
