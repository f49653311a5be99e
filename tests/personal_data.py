"""The session-end check that personal data never left the registry and the policy file.

Why a session-end check rather than a test named to run last: a test sees only what survived
until it ran, and only when it runs last. The conftest runs this while the session's services
still answer, after every test's processes stopped: it reads every log file under the session's
run root (and any folder a test registered), every record of every topic of the session's Kafka
broker (and any private broker a test registered), and a ``pg_dumpall`` of PostgreSQL, looking
for every name, phone number and address of the test registry and the alerts policy file.

A finding names the file, topic or table (and column) and the KIND of value, never the value.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from aiokafka import AIOKafkaConsumer, TopicPartition

REGISTRY_TOPIC = "registry"  # the registry's own topic, if it ever gets one, may hold it


@dataclass(frozen=True)
class Value:
    kind: str  # "resident name", "family phone", ... (what a finding may say)
    forms: tuple[bytes, ...]  # the encodings looked for: UTF-8 and JSON-escaped


def _value(kind: str, text: str) -> Value:
    forms = {text}
    forms.add(json.dumps(text)[1:-1])  # "\u738b..." as json.dumps (ensure_ascii) writes it
    if kind.endswith("phone"):
        forms.add(text.lstrip("+"))
    return Value(kind, tuple(sorted(f.encode() for f in forms)))


def personal_values(registries: Iterable[Path], policies: Iterable[Path]) -> list[Value]:
    """Every name, phone number and address of these registry and policy files."""
    found: dict[tuple[str, str], Value] = {}

    def add(kind: str, text: object) -> None:
        if isinstance(text, str) and text.strip():
            found.setdefault((kind, text), _value(kind, text))

    for path in registries:
        data = yaml.safe_load(path.read_text()) or {}
        for resident in (data.get("residents") or {}).values():
            add("resident name", resident.get("name"))
            add("resident address", resident.get("address"))
            for contact in resident.get("family") or []:
                add("family name", contact.get("name"))
                add("family phone", str(contact.get("phone", "")))
    for path in policies:
        data = yaml.safe_load(path.read_text()) or {}
        for contact in (data.get("contacts") or {}).values():
            add("contact name", contact.get("name"))
            add("contact phone", str(contact.get("phone", "")))
    return list(found.values())


def _hits(blob: bytes, values: list[Value]) -> set[str]:
    return {v.kind for v in values if any(form in blob for form in v.forms)}


@dataclass
class Findings:
    """Where personal data was found and which kinds of value (never the values)."""

    where: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, where: str, kinds: set[str]) -> None:
        if kinds:
            with self.lock:
                self.where.setdefault(where, set()).update(kinds)

    def lines(self) -> list[str]:
        return [f"{w}: {', '.join(sorted(k))}" for w, k in sorted(self.where.items())]


# --------------------------------------------------------------------------- logs


def log_files(root: Path) -> list[Path]:
    """Every log a process of the session wrote: ``*.log`` (also rotated ``*.log.N``) and
    whatever sits in a ``logs`` folder."""
    out = {p for p in root.rglob("*.log*") if p.is_file()}
    out |= {p for d in root.rglob("logs") if d.is_dir() for p in d.rglob("*") if p.is_file()}
    return sorted(out)


def scan_logs(root: Path, values: list[Value], findings: Findings) -> int:
    files = log_files(root)
    for path in files:
        findings.add(f"log {path}", _hits(path.read_bytes(), values))
    return len(files)


# --------------------------------------------------------------------------- topics


async def _scan_kafka(bootstrap: str, values: list[Value], findings: Findings) -> int:
    """Read every topic from offset 0 to its end (reported end offsets, then until a fetch comes
    back empty: Tansu under-reports ends of multi-record batches)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=30_000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    await consumer.start()
    records = 0
    try:
        await consumer._client.force_metadata_update()
        topics = sorted(t for t in await consumer.topics() if t != REGISTRY_TOPIC)
        tps = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        if not tps:
            return 0
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        hit: dict[str, set[str]] = {}
        deadline = time.monotonic() + 540
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading every topic of {bootstrap} took over 9 min")
            batch = await consumer.getmany(timeout_ms=1000, max_records=20_000)
            if not batch and await _all_at_end(consumer, ends):
                break
            for tp, msgs in batch.items():
                records += len(msgs)
                parts: list[bytes] = []
                for m in msgs:
                    parts += [m.key or b"", m.value or b""]
                    parts += [h[1] or b"" for h in m.headers or ()]
                kinds = _hits(b"\n".join(parts), values)
                if kinds:
                    hit.setdefault(tp.topic, set()).update(kinds)
        for topic, kinds in sorted(hit.items()):
            findings.add(f"topic {topic} on {bootstrap}", kinds)
        return records
    finally:
        await consumer.stop()


async def _all_at_end(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


def scan_kafka(bootstrap: str, values: list[Value], findings: Findings) -> int:
    """Records read; in a thread of its own, since a caller may hold an event loop (Playwright)."""
    result: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(asyncio.run(_scan_kafka(bootstrap, values, findings)))
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(600)
    if errors:
        raise errors[0]
    if not result:
        raise TimeoutError(f"reading every topic of {bootstrap} took over 10 min")
    return result[0]


# --------------------------------------------------------------------------- PostgreSQL


def scan_postgres(
    pg_dumpall: str, host: str, port: int, values: list[Value], findings: Findings
) -> int:
    """``pg_dumpall --data-only``: a hit names the database, table and column. Returns rows."""
    dump = subprocess.run(
        [pg_dumpall, "--data-only", "-h", host, "-p", str(port), "-U", "anxin"],
        capture_output=True,
        timeout=300,
        check=True,
    ).stdout
    rows = 0
    database, table, columns = "?", "", [""]
    copying = False
    for line in dump.split(b"\n"):
        if copying:
            if line == b"\\.":
                copying = False
                continue
            rows += 1
            cells = line.split(b"\t")
            for i, cell in enumerate(cells):
                kinds = _hits(cell, values)
                column = columns[i] if i < len(columns) else f"#{i}"
                findings.add(f"PostgreSQL {database}.{table} column {column}", kinds)
        elif line.startswith(b"\\connect "):
            database = line.split()[-1].decode(errors="replace").strip('"')
        elif line.startswith(b"COPY ") and line.endswith(b"FROM stdin;"):
            head = line.decode(errors="replace")
            table = head.split()[1]
            inside = head[head.index("(") + 1 : head.rindex(")")] if "(" in head else ""
            columns = [c.strip().strip('"') for c in inside.split(",")]
            copying = True
        else:
            findings.add(f"PostgreSQL {database} (outside table data)", _hits(line, values))
    return rows
