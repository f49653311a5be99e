"""``anxin evaluate``: run a scenario through the detectors and score the alerts.

In-process (default) the scenario goes through ``anxin.replay_inprocess.run_scenario``: the
bridge's validation and the worker's ``DetectorPipeline``, with ``detected_at`` = the arrival
time ``t`` of the triggering message, so the result is exact and repeatable; ``anxin evaluate``
shares a large scenario out by resident over one process per CPU, with the same alerts.
``--live`` replays the folder over MQTT into the real bridge, Kafka and Faust worker and
collects the ``alerts`` topic; there ``detected_at`` is the wall clock, so it is mapped back onto
scenario time through the replay's own log of (wall time, scenario ``t``) pairs before the same
scoring.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from simulators import scoring


@dataclass
class Evaluation:
    result: scoring.Score
    records: list[dict[str, Any]]
    resident_days: float
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    suspicions: list[dict[str, Any]] = field(default_factory=list)  # fall prompts, as emitted


def resident_days(folder: Path, first_t: float | None, last_t: float | None) -> float:
    """Residents in the registry x the scenario's span in days."""
    from anxin.core.registry import load_registry

    n = len(load_registry(folder / "registry.yaml").residents)
    span = (last_t - first_t) if first_t is not None and last_t is not None else 0.0
    return n * span / 86_400.0


def wear_days(folder: Path, first_t: float | None, last_t: float | None) -> float:
    """Worn devices with an accelerometer (not spot monitors or trackers) x the span in days:
    the denominator of fall prompts, which the wearer feels."""
    from anxin.core.registry import load_registry

    registry = load_registry(folder / "registry.yaml")
    n = sum(
        1
        for r in registry.residents.values()
        for d in r.devices.values()
        if d.placement is not None or d.type in ("watch", "pendant")
    )
    span = (last_t - first_t) if first_t is not None and last_t is not None else 0.0
    return n * span / 86_400.0


# Below this size of messages.jsonl (about 6,500 messages) starting a process pool (~1 s) costs
# more than sharing the work saves.
PARALLEL_FROM_BYTES = 8 * 2**20


def auto_jobs(folder: Path) -> int:
    """Processes for an in-process run: one per usable CPU, for a scenario worth sharing."""
    size = (folder / "messages.jsonl").stat().st_size
    if size < PARALLEL_FROM_BYTES:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, cpus or 1)


def evaluate_inprocess(folder: Path, jobs: int = 1) -> Evaluation:
    """Score the pipeline's alerts. ``jobs`` > 1 processes share the residents and raise the
    alerts of one run (``replay_inprocess``); their start re-imports the caller's main module,
    which must then be guarded by ``if __name__ == "__main__"``."""
    from anxin.replay_inprocess import run_scenario

    started = time.perf_counter()
    res = run_scenario(folder, jobs=jobs)
    took = time.perf_counter() - started
    records = [a.model_dump() for a in res.alerts]
    days = resident_days(folder, res.first_t, res.last_t)
    worn = wear_days(folder, res.first_t, res.last_t)
    labels = scoring.read_labels(folder / "labels.jsonl")
    result = scoring.score(labels, records, days, res.suspicions, worn)
    procs = f" in {res.processes} processes" if res.processes > 1 else ""
    timings = {
        "pipeline_s": round(took, 2),
        "messages": res.messages,
        "rejected": res.rejected,
        "processes": res.processes,
    }
    note = (
        f"In-process: {res.messages} messages through the detector pipeline in {took:.1f} s"
        f"{procs} ({res.rejected} rejected)."
    )
    return Evaluation(result, records, days, timings, [note], res.suspicions)


def wall_to_scenario(log: list[tuple[float, float]]) -> Callable[[float], float]:
    """Map a wall-clock instant to the scenario time the replay had reached (step function:
    the ``t`` of the last message published at or before it)."""
    walls = np.array([w for w, _t in log])
    ts = np.maximum.accumulate(np.array([t for _w, t in log]))

    def f(wall: float) -> float:
        i = int(np.searchsorted(walls, wall, side="right")) - 1
        return float(ts[max(i, 0)])

    return f


def evaluate_live(
    folder: Path,
    run_dir: Path,
    speed: float | None,
    quiet_s: float = 20.0,
    progress: bool = True,
) -> Evaluation:
    """Start the services, bridge and worker; replay; collect alerts until quiet; score."""
    from anxin.processes import ProcessGroup
    from anxin.services import Supervisor
    from simulators.replay import replay

    run_dir = run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    sup = Supervisor(run_dir / "services")
    group = ProcessGroup(run_dir / "logs")
    try:
        ep = sup.start()
        timings["services_s"] = round(time.perf_counter() - t_start, 1)
        group.env = {
            **ep.env(),
            "ANXIN_RUN_DIR": str(run_dir / "services"),
            "ANXIN_REGISTRY": str((folder / "registry.yaml").resolve()),
            "ANXIN_FAUST__DATA_DIR": str(run_dir / "faust"),
            # A replay sends a device's hours in seconds: that is not a flooding device.
            "ANXIN_INGEST__RATE_PER_S": "0",
        }
        ready, bridge_ready = run_dir / "worker.ready", run_dir / "bridge.ready"
        ready.unlink(missing_ok=True)
        bridge_ready.unlink(missing_ok=True)
        bridge = group.spawn("bridge", "ingest", "--ready-file", str(bridge_ready))
        worker = group.spawn("worker", "worker", "--ready-file", str(ready))
        group.wait_until(bridge, bridge_ready.exists)
        group.wait_until(worker, ready.exists)
        timings["pipeline_start_s"] = round(time.perf_counter() - t_start, 1)
        t0 = time.perf_counter()
        stats = replay(folder, "127.0.0.1", ep.mqtt_port, speed=speed, progress=progress)
        timings["replay_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        raw = asyncio.run(_collect_alerts(ep.kafka_bootstrap, quiet_s))
        # Every prompt was raised before the alerts went quiet: a short wait reads them all.
        raw_suspicions = asyncio.run(_collect_alerts(ep.kafka_bootstrap, 2.0, "fall-suspicions"))
        timings["collect_s"] = round(time.perf_counter() - t0, 1)
    finally:
        group.stop()
        sup.stop()
    to_scn = wall_to_scenario(stats.log)
    records = []
    for rec in raw:
        rec = dict(rec)
        rec["detected_at_wall"] = rec["detected_at"]
        if speed is None:
            # The worker lags a --fast replay by an unknown amount: match on the event time
            # (device rules stamp it with the arrival wall clock, so map theirs).
            ts = float(rec["ts"])
            rec["detected_at"] = to_scn(ts) if rec["kind"] == "device" else ts
        else:
            rec["detected_at"] = to_scn(float(rec["detected_at"]))
        records.append(rec)
    suspicions = []
    for s in raw_suspicions:
        s = dict(s)
        s["detected_at_wall"] = s["detected_at"]
        s["detected_at"] = float(s["ts"]) if speed is None else to_scn(float(s["detected_at"]))
        suspicions.append(s)
    days = resident_days(folder, stats.first_t, stats.last_t)
    worn = wear_days(folder, stats.first_t, stats.last_t)
    labels = scoring.read_labels(folder / "labels.jsonl")
    result = scoring.score(labels, records, days, suspicions, worn)
    mapping = (
        "--fast: the worker lags the replay, so alerts are matched on their event time ts "
        "(device rules: the arrival wall clock mapped to scenario time); the latency columns "
        "are ts - start, not detection delay."
        if speed is None
        else "detected_at mapped from the wall clock to the scenario time the replay had reached."
    )
    notes = [
        f"Live: {stats.published} messages replayed over MQTT in {timings['replay_s']} s "
        f"({'as fast as possible' if speed is None else f'speed x{speed:g}'}); " + mapping,
        "Timer rules (silent 600 s, offline 120 s, removed 300 s, the fall check window) run on "
        "the wall clock live: at a replay speed above 1 they fire late in scenario time or not "
        "at all, so compare those kinds at --speed 1 only.",
    ]
    return Evaluation(result, records, days, timings, notes, suspicions)


async def _collect_alerts(
    bootstrap: str, quiet_s: float, topic: str = "alerts"
) -> list[dict[str, Any]]:
    """Every record of ``topic`` from the beginning, until none arrived for ``quiet_s``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partitions: set[int] | None = None
        deadline = time.monotonic() + 60
        while not partitions and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                await asyncio.sleep(0.5)
        if not partitions:
            return []
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: list[dict[str, Any]] = []
        last_new = time.monotonic()
        while time.monotonic() - last_new < quiet_s:
            batches = await consumer.getmany(timeout_ms=1000)
            new = [orjson.loads(m.value) for msgs in batches.values() for m in msgs]
            if new:
                found += new
                last_new = time.monotonic()
        return found
    finally:
        await consumer.stop()


def add_context(ev: Evaluation, folder: Path) -> None:
    """Attach the generator's activity log to false alarms, when the folder has one."""
    info = folder / "scenario.json"
    if info.exists():
        scoring.annotate(ev.result, orjson.loads(info.read_bytes()).get("people", []))


def write_outputs(ev: Evaluation, out: Path, title: str) -> None:
    """alerts.jsonl (unique alerts, highest severity), suspicions.jsonl (every fall prompt
    record, in the order raised), report.json, report.md, latency.png."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "alerts.jsonl").open("wb") as f:
        for a in ev.result.alerts:
            rec = dict(a.record)
            rec["severity"] = a.severity
            f.write(orjson.dumps(rec) + b"\n")
    with (out / "suspicions.jsonl").open("wb") as f:
        for s in ev.suspicions:
            f.write(orjson.dumps(s) + b"\n")
    report = {"title": title, **ev.result.to_json(), "timings": ev.timings, "notes": ev.notes}
    (out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    (out / "report.md").write_text(scoring.markdown(ev.result, title, ev.notes), encoding="utf-8")
    scoring.plot_latency(ev.result, out / "latency.png")
