"""Run a scenario folder through the detectors in-process: the code the Faust agents run.

Each message goes through the same ingest validation as the bridge and the same
``DetectorPipeline`` as the worker, with ``detected_at`` = the message's arrival time ``t``;
timers tick on that clock too: at most every ``TICK_S`` on a message, and, as the live worker's
one-second ticks would, on the first ``TICK_S`` grid point at or after a timer's due time when no
message comes by then (a fall confirmed by the device going silent, between two recordings an
hour apart), and for ``FLUSH_S`` after the last message. No services needed.

With ``jobs`` > 1 the residents are split into shards, one process each, as the worker's Kafka
partitions split devices: every shard reads every message for the clock (its timers tick at the
same instants as in one run) but handles only its own residents' devices, whose state depends on
nothing else. So each shard raises exactly the alerts one run raises for those residents; they
are merged back in arrival order.

With ``batch_size``, readings are taken as the worker takes them: up to ``batch_size``
consecutive readings per batch (a status message ends one), timers ticking only before a batch,
and each batch through ``DetectorPipeline.process_batch`` (``batch_mode="batch"``) or through
``process`` reading by reading (``"messages"``): the two give the same outputs, byte for byte
(tests/test_pipeline_batch.py). The outputs of a batch count as emitted at its last message.
"""

from __future__ import annotations

import math
import multiprocessing
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import orjson

from anxin.core.records import AlertRecord
from anxin.core.registry import Registry, load_registry
from anxin.core.scenario_files import Message, encode, scenario_lines
from detectors.pipeline import DetectorPipeline, Outputs
from ingest.telemetry import (
    Accepted,
    Rejected,
    validate_decoded,
    validate_status,
    validate_telemetry,
)

TICK_S = 1.0
FLUSH_S = 60.0  # timers still fire this long after the last message (a fall label's deadline)
OUTPUTS = ("alerts", "updates", "commands", "suspicions")


@dataclass
class InProcessResult:
    alerts: list[AlertRecord] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    commands: list[dict[str, Any]] = field(default_factory=list)
    suspicions: list[dict[str, Any]] = field(default_factory=list)  # fall prompts (records)
    rejected: int = 0
    dead_letters: list[dict[str, Any]] = field(default_factory=list)  # the pipeline's own
    messages: int = 0
    first_t: float | None = None
    last_t: float | None = None
    processes: int = 1
    # index of the message during which each alert / update / command was emitted (merging)
    emitted_at: dict[str, list[int]] = field(default_factory=lambda: {k: [] for k in OUTPUTS})


def validate(topic: str, payload: Any, t: float, prefix: str) -> Accepted | Rejected:
    """The bridge's verdict on a telemetry message. A JSON object read from a scenario line is
    checked as decoded (it is what decoding its encoding gives back), not decoded again."""
    if type(payload) is dict:
        return validate_decoded(topic, payload, len(orjson.dumps(payload)), t, prefix)
    return validate_telemetry(topic, encode(payload), t, prefix)


def run_scenario(
    folder: Path,
    prefix: str = "anxin/v1",
    jobs: int = 1,
    batch_size: int | None = None,
    batch_mode: str = "batch",
) -> InProcessResult:
    """Every message of the folder through the pipeline, in ``jobs`` processes (module doc)."""
    registry = load_registry(folder / "registry.yaml")
    path = folder / "messages.jsonl"
    shards = max(1, min(jobs, len(registry.residents)))
    if shards == 1:
        return run_messages(
            registry, scenario_lines(path), prefix, batch_size=batch_size, batch_mode=batch_mode
        )
    assignment = assign_shards(registry, device_counts(path), shards)
    with ProcessPoolExecutor(shards, mp_context=multiprocessing.get_context("spawn")) as pool:
        parts = list(
            pool.map(
                _run_shard,
                repeat(folder),
                repeat(prefix),
                repeat(assignment),
                range(shards),
                repeat(batch_size),
                repeat(batch_mode),
            )
        )
    return merge(parts)


def _run_shard(
    folder: Path,
    prefix: str,
    assignment: Mapping[str, int],
    shard: int,
    batch_size: int | None = None,
    batch_mode: str = "batch",
) -> InProcessResult:
    """One shard's run (in a pool process): its devices; unknown ones go to shard 0."""
    registry = load_registry(folder / "registry.yaml")
    return run_messages(
        registry,
        scenario_lines(folder / "messages.jsonl"),
        prefix,
        mine=lambda device_id: assignment.get(device_id, 0) == shard,
        batch_size=batch_size,
        batch_mode=batch_mode,
    )


_TOPIC_DEVICE = re.compile(rb'"topic"\s*:\s*"[^"]*/devices/([^/"]+)/')


def device_counts(path: Path) -> Counter[str]:
    """Messages per device, estimated from the raw lines without decoding them: it only
    balances the shards (a miscount costs balance, never a result)."""
    counts: Counter[str] = Counter()
    with path.open("rb") as f:
        for line in f:
            m = _TOPIC_DEVICE.search(line)
            if m:
                counts[m.group(1).decode(errors="replace")] += 1
    return counts


def assign_shards(registry: Registry, load: Mapping[str, int], shards: int) -> dict[str, int]:
    """Device id -> shard: residents heaviest first onto the lightest shard. A resident's
    devices stay together, because NEWS2 combines them."""
    weight = {
        rid: sum(load.get(d, 0) for d in resident.devices)
        for rid, resident in registry.residents.items()
    }
    totals = [0] * shards
    assignment: dict[str, int] = {}
    for rid in sorted(weight, key=lambda r: (-weight[r], r)):
        shard = totals.index(min(totals))
        totals[shard] += weight[rid]
        for device_id in registry.residents[rid].devices:
            assignment[device_id] = shard
    return assignment


def merge(parts: list[InProcessResult]) -> InProcessResult:
    """One result from the shards': outputs in the order of the message that emitted them
    (shard order among outputs of the same message), counts added up."""
    first = parts[0]  # every shard saw every message
    result = InProcessResult(
        rejected=sum(p.rejected for p in parts),
        dead_letters=[d for p in parts for d in p.dead_letters],
        messages=first.messages,
        first_t=first.first_t,
        last_t=first.last_t,
        processes=len(parts),
    )
    for name in OUTPUTS:
        keyed = sorted(
            (at, shard, k, item)
            for shard, part in enumerate(parts)
            for k, (at, item) in enumerate(
                zip(part.emitted_at[name], getattr(part, name), strict=True)
            )
        )
        getattr(result, name).extend(item for *_, item in keyed)
        result.emitted_at[name].extend(at for at, *_ in keyed)
    return result


def run_messages(
    registry: Registry,
    messages: Iterable[Message],
    prefix: str = "anxin/v1",
    mine: Callable[[str], bool] | None = None,
    batch_size: int | None = None,
    batch_mode: str = "batch",
) -> InProcessResult:
    """Messages in arrival order through one pipeline. ``mine``: whether this run handles a
    device's messages (a shard); every message still advances the clock. ``batch_size``:
    readings in batches (module doc)."""
    run = _Run(registry, prefix, mine, batch_size, batch_mode)
    for t, topic, payload in messages:
        run.message(t, topic, payload)
    run.flush()
    if run.result.last_t is not None:
        run.advance(run.result.last_t + FLUSH_S, inclusive=True)
    return run.result


class _Run:
    """One pass: the clock, the pipeline and what it emitted."""

    def __init__(
        self,
        registry: Registry,
        prefix: str,
        mine: Callable[[str], bool] | None,
        batch_size: int | None = None,
        batch_mode: str = "batch",
    ):
        if batch_mode not in ("batch", "messages"):
            raise ValueError(f"batch_mode {batch_mode!r}: 'batch' or 'messages'")
        self.registry, self.prefix = registry, prefix
        self.batch_size, self.batch_mode = batch_size, batch_mode
        self.batch: list[tuple[float, dict[str, Any]]] = []  # (t, reading) not yet processed
        # The fall detector's window is kept live; no other worker will take the device over
        # here, so the table snapshot (a restart's starting point) is not taken every 10 s.
        self.pipeline = DetectorPipeline(lambda: registry, fall_save_every_s=math.inf)
        self.result = InProcessResult()
        self.index = -1
        self.now = 0.0
        self.next_tick = -math.inf
        self._mine = mine
        self._topics: dict[str, bool] = {}  # topic -> handled here
        self._owners: dict[str, str | None] = {}  # device -> resident (the registry is fixed)

    def advance(self, t: float, inclusive: bool = False) -> None:
        """Fire the timers due before ``t`` at the tick the live worker would fire them on.

        Only this shard's own timers decide these ticks, and a timer fires at the first grid
        point at or after its due time in any sharding, so shards still raise what one run does.
        """
        while True:
            due = self.pipeline.next_due
            if not math.isfinite(due) or due > t:
                return  # unknown until the first tick, none set, or not yet
            at = math.ceil(due / TICK_S) * TICK_S
            if at > t or (at == t and not inclusive):
                return
            self.now = at
            self.take(self.pipeline.tick(at))
            if self.pipeline.next_due <= at:
                return  # nothing moved on (cannot happen with well-formed states): no busy loop

    def message(self, t: float, topic: str, payload: Any) -> None:
        result = self.result
        self.index += 1
        if not self.batch:  # timers tick between batches only (every message without batches)
            self.advance(t)
        self.now = t
        result.messages += 1
        result.first_t = t if result.first_t is None else result.first_t
        result.last_t = t
        if t >= self.next_tick and not self.batch:
            self.take(self.pipeline.tick(t))
            self.next_tick = t + TICK_S
        if not self._handles(topic):
            return
        if topic.endswith("/status"):
            self.flush()
            self.status(t, topic, payload)
            return
        verdict = validate(topic, payload, t, self.prefix)
        if not isinstance(verdict, Accepted):
            result.rejected += 1
            return
        resident_id = self.owner(verdict.device_id)
        if resident_id is None:
            result.rejected += 1
            return
        reading = verdict.reading
        reading["resident_id"] = resident_id
        if self.batch_size is None:
            self.take(self.pipeline.process(reading, t))
            return
        self.batch.append((t, reading))
        if len(self.batch) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Process the readings of the batch in hand."""
        if not self.batch:
            return
        nows = [t for t, _ in self.batch]
        readings = [r for _, r in self.batch]
        self.batch = []
        if self.batch_mode == "batch":
            self.take(self.pipeline.process_batch(readings, nows[-1], nows))
            return
        out = Outputs()
        for now, reading in zip(nows, readings, strict=True):
            out.extend(self.pipeline.process(reading, now))
        self.take(out)

    def status(self, t: float, topic: str, payload: Any) -> None:
        status = validate_status(topic, encode(payload), self.prefix)
        if not isinstance(status, str):
            self.result.rejected += 1
            return
        device_id = topic.split("/")[-2]
        record = {"device_id": device_id, "status": status, "received_at": t}
        self.take(self.pipeline.process_status(record, t))

    def take(self, out: Outputs) -> None:
        result = self.result
        for name in OUTPUTS:
            items = getattr(out, name)
            getattr(result, name).extend(items)
            result.emitted_at[name].extend([self.index] * len(items))
        result.rejected += len(out.rejected)
        result.dead_letters.extend(dict(d) for d in out.rejected)

    def owner(self, device_id: str) -> str | None:
        if device_id not in self._owners:
            owner = self.registry.device_owner(device_id)
            self._owners[device_id] = owner[0] if owner else None
        return self._owners[device_id]

    def _handles(self, topic: str) -> bool:
        if self._mine is None:
            return True
        handled = self._topics.get(topic)
        if handled is None:
            parts = topic.split("/")
            handled = self._topics[topic] = self._mine(parts[-2] if len(parts) > 1 else "")
        return handled
