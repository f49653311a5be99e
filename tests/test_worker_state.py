"""Issue 16: two detector workers share the partitions; one is SIGKILLed mid-load and restarted.

The worker keeps its state live and writes it to Kafka as snapshots, acknowledging readings only
once a snapshot holding them is delivered (``anxin/live_state.py``). So a worker that dies loses
nothing: the survivor takes its partitions over from the last snapshot plus the readings after
it, raising every alert exactly once (one alert id for each press, each fall), and the timers of
the dead worker's state fire on the new owner.

Private everything: two workers of their own consumer group, their own topics and registry (12
residents spread over the 4 partitions), readings produced straight to the private readings
topic as the bridge writes them (keyed by resident). Own seq range 9.6M.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from anxin.processes import Child, ProcessGroup
from anxin.services import Endpoints
from tests.fall_signals import physical_fall
from tests.kafka_helpers import collect
from tests.signals import chunks

RESIDENTS = [f"T{600 + i}" for i in range(1, 13)]
PARTITIONS = 4
SEQ = 9_600_000
RATE = 50.0


def device(resident: str) -> str:
    return "X" + resident[1:]


def partition_of(resident: str) -> int:
    """The partition the bridge's producer (aiokafka's default partitioner) puts a key in."""
    parts = list(range(PARTITIONS))
    return int(DefaultPartitioner()(resident.encode(), parts, parts))


def write_registry(path: Path, expected_interval_s: float = 600) -> None:
    lines = ["residents:"]
    for i, resident in enumerate(RESIDENTS):
        lines += [
            f"  {resident}:",
            f"    name: Worker State Test {i}",
            "    timezone: Europe/London",
            "    check_timeout_s: 20",
            "    devices:",
            f"      {device(resident)}: {{placement: pendant, expected_interval_s: {expected_interval_s:g}}}",
        ]
    path.write_text("\n".join(lines) + "\n")


@dataclass
class Workers:
    group: ProcessGroup
    env: dict[str, str]
    folder: Path
    topics: dict[str, str]
    bootstrap: str

    def start(self, name: str) -> Child:
        ready = self.folder / f"{name}.ready"
        ready.unlink(missing_ok=True)
        env = {
            **self.env,
            "ANXIN_FAUST__DATA_DIR": str(self.folder / f"faust-{name}"),
            "ANXIN_FAUST__STATS_FILE": str(self.stats_path(name)),
        }
        child = self.group.spawn(name, "worker", "--ready-file", str(ready), env=env)
        self.group.wait_until(child, ready.exists, timeout=120)
        return child

    def stats_path(self, name: str) -> Path:
        return self.folder / f"{name}.stats.json"

    def partitions(self, name: str) -> list[int]:
        try:
            return list(json.loads(self.stats_path(name).read_text())["partitions"])
        except (OSError, ValueError, KeyError):
            return []

    def wait_split(self, names: list[str], child: Child) -> dict[str, list[int]]:
        """Until ``names`` hold every partition between them, each at least one."""

        def split() -> bool:
            held = [self.partitions(n) for n in names]
            return all(held) and sorted(p for h in held for p in h) == list(range(PARTITIONS))

        self.group.wait_until(child, split, timeout=120)
        return {n: self.partitions(n) for n in names}

    def produce(self, records: list[tuple[str, dict[str, Any]]]) -> None:
        async def go() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
            await producer.start()
            try:
                for key, value in records:
                    await producer.send(
                        self.topics["readings"], orjson.dumps(value), key=key.encode()
                    )
                await producer.flush()
            finally:
                await producer.stop()

        asyncio.run(go())

    def collect(
        self, topic: str, match: Callable[[Any], bool], done: Callable[[list[Any]], bool]
    ) -> list[Any]:
        return collect(self.bootstrap, self.topics[topic], match, done, timeout=180)


@pytest.fixture
def workers(
    services: Endpoints, anxin_env: dict[str, str], run_root: Path, personal_data: Any
) -> Iterator[Workers]:
    tag = uuid.uuid4().hex[:6]
    folder = run_root / f"worker-state-{tag}"
    folder.mkdir()
    registry = folder / "registry.yaml"
    write_registry(registry)
    personal_data.add_registry(registry)
    topics = {
        name: f"{name}-{tag}"
        for name in (
            "readings",
            "device-status",
            "alerts",
            "alert-updates",
            "readings-rejected",
            "device-commands",
            "fall-suspicions",
            "detector-state",
        )
    }
    env = {
        **anxin_env,
        "ANXIN_REGISTRY": str(registry),
        "ANXIN_FAUST__APP_ID": f"anxin-state-{tag}",
        "ANXIN_FAUST__SNAPSHOT_INTERVAL_S": "1",
        # A takeover waits for the dead member's session to time out, and a join for half the
        # rebalance timeout (Tansu): shorter than the service's 10 s, still far above a beat.
        "ANXIN_FAUST__SESSION_TIMEOUT": "6",
        "ANXIN_FAUST__REBALANCE_TIMEOUT": "6",
        "ANXIN_KAFKA__READINGS_TOPIC": topics["readings"],
        "ANXIN_KAFKA__STATUS_TOPIC": topics["device-status"],
        "ANXIN_KAFKA__ALERTS_TOPIC": topics["alerts"],
        "ANXIN_KAFKA__ALERT_UPDATES_TOPIC": topics["alert-updates"],
        "ANXIN_KAFKA__REJECTED_TOPIC": topics["readings-rejected"],
        "ANXIN_KAFKA__COMMANDS_TOPIC": topics["device-commands"],
        "ANXIN_KAFKA__SUSPICIONS_TOPIC": topics["fall-suspicions"],
        "ANXIN_KAFKA__STATE_TOPIC": topics["detector-state"],
    }
    group = ProcessGroup(folder, env=env)
    try:
        yield Workers(group, env, folder, topics, services.kafka_bootstrap)
    finally:
        group.stop()


def reading(resident: str, seq: int, ts: float, **fields: Any) -> tuple[str, dict[str, Any]]:
    body = {
        "device_id": device(resident),
        "resident_id": resident,
        "received_at": time.time(),
        "ts": round(ts, 3),
        "seq": seq,
        **fields,
    }
    return resident, body


def presses(residents: list[str], seq: int) -> list[tuple[str, dict[str, Any]]]:
    now = time.time()
    return [reading(r, seq, now, event="sos", battery=0.9) for r in residents]


def test_a_killed_worker_loses_no_alert_and_its_timers_fire_on_the_new_owner(
    workers: Workers,
) -> None:
    a = workers.start("worker-a")
    b = workers.start("worker-b")
    a_log = a.log_path
    split = workers.wait_split(["worker-a", "worker-b"], b)
    on_a = [r for r in RESIDENTS if partition_of(r) in split["worker-a"]]
    assert on_a, split  # 12 residents cover all 4 partitions
    faller, pressing = on_a[0], [r for r in RESIDENTS if r != on_a[0]]

    # 1. Both up: every resident but the faller presses SOS; the faller's pendant records a fall
    #    and then nothing more (unanswered: its 20 s check window is open when A dies).
    g, impact_s = physical_fall("pendant")
    t0 = round(time.time() - len(g) / RATE, 3)
    fall = [
        reading(faller, SEQ + k, ts, worn=True, accel=accel)
        for k, (ts, accel) in enumerate(chunks(g, RATE, t0))
    ]
    workers.produce(presses(pressing, SEQ + 101) + fall)
    impact = t0 + impact_s
    (opened,) = workers.collect(
        "fall-suspicions",
        lambda s: s["device_id"] == device(faller) and s["outcome"] == "open",
        lambda found: len(found) >= 1,
    )
    assert abs(opened["ts"] - impact) < 0.5

    # 2. A dies with the suspicion open; presses go on while B takes A's partitions over.
    workers.group.stop(a, sig=signal.SIGKILL)
    workers.produce(presses(pressing, SEQ + 102))
    workers.group.wait_until(b, lambda: workers.partitions("worker-b") == [0, 1, 2, 3], 120)
    workers.produce(presses(pressing, SEQ + 103))

    # 3. A comes back and takes its share again; more presses.
    a = workers.start("worker-a")
    workers.wait_split(["worker-a", "worker-b"], b)
    workers.produce(presses(pressing, SEQ + 104))

    seqs = {SEQ + 101, SEQ + 102, SEQ + 103, SEQ + 104}
    wanted = {(device(r), s) for r in pressing for s in seqs}

    def key(a: dict[str, Any]) -> tuple[str, int]:
        return a["device_id"], a["details"].get("seq")

    sos = workers.collect(
        "alerts",
        lambda a: a.get("kind") == "sos",
        lambda found: {key(a) for a in found} >= wanted,
    )
    ids: dict[tuple[str, int], set[str]] = {}
    for alert in sos:
        ids.setdefault(key(alert), set()).add(alert["alert_id"])
    assert set(ids) == wanted, f"lost: {sorted(wanted - set(ids))}"
    assert all(len(v) == 1 for v in ids.values())  # a redelivered press repeats its id only

    # The open check outlived its worker: the new owner's timer confirms it, once.
    falls = workers.collect(
        "alerts",
        lambda a: a.get("kind") == "fall" and a.get("device_id") == device(faller),
        lambda found: len(found) >= 1,
    )
    assert {f["alert_id"] for f in falls} == {opened["suspicion_id"]}
    (fall_alert,) = {f["alert_id"]: f for f in falls}.values()
    assert fall_alert["details"]["confirmed_by"] in {
        "no answer",
        "device silent since the suspicion",
    }
    assert fall_alert["detected_at"] - fall_alert["ts"] <= 60

    # A worker asked to stop snapshots, acknowledges what it holds and exits by itself (Faust
    # waits for every event in hand: without the final snapshot it would wait forever).
    workers.group.stop(sig=signal.SIGTERM, timeout=60)  # both at once: no handover between
    assert a.proc.returncode == 0, a_log.read_text()[-3000:]
    assert b.proc.returncode == 0, b.log_path.read_text()[-3000:]


def test_a_paused_worker_reads_what_arrived_before_it_judges_a_device_silent(
    workers: Workers,
) -> None:
    """A worker stopped (SIGSTOP: a frozen VM, a stall) for longer than the devices' silence
    interval while they keep reporting into Kafka must, once resumed, read those readings before
    it calls a device silent: judged at the wall clock, every resident's device looked silent
    until its backlog was read (a ``device`` alert each). The device that did stop still gets
    its alert (``anxin/arrival_clock.py``)."""
    write_registry(workers.folder / "registry.yaml", expected_interval_s=4)
    workers.env["ANXIN_FAUST__SESSION_TIMEOUT"] = "30"  # the pause must not cost the partitions
    worker = workers.start("worker-p")
    reporting, stopping = RESIDENTS[:6], RESIDENTS[6:]
    seq = iter(range(SEQ + 500, SEQ + 900))

    def report(residents: list[str]) -> None:
        now = time.time()
        workers.produce([reading(r, next(seq), now, battery=0.9) for r in residents])

    def readings_done() -> int:
        try:
            return int(json.loads(workers.stats_path("worker-p").read_text())["readings"])
        except (OSError, ValueError, KeyError):
            return 0

    report(RESIDENTS)  # everyone once; then only ``reporting`` goes on
    workers.group.wait_until(worker, lambda: readings_done() >= len(RESIDENTS))
    os.kill(worker.proc.pid, signal.SIGSTOP)
    try:
        end = time.monotonic() + 10  # 2.5 times the interval: every device is "due"
        while time.monotonic() < end:
            report(reporting)
            time.sleep(1)  # a device's reporting period, not a wait for anything
    finally:
        os.kill(worker.proc.pid, signal.SIGCONT)
    for _ in range(3):  # the resumed worker reads the backlog and these
        report(reporting)
        time.sleep(1)
    press = reading(reporting[0], next(seq), time.time(), event="sos", battery=0.9)
    workers.produce([press])  # read after every reading before it: the end of the test

    def ended(found: list[dict[str, Any]]) -> bool:
        silent = {a["resident_id"] for a in found if a["kind"] == "device"}
        return silent >= set(stopping) and any(a["kind"] == "sos" for a in found)

    found = workers.collect("alerts", lambda a: a["kind"] in ("device", "sos"), ended)
    silent = sorted(a["resident_id"] for a in found if a["kind"] == "device")
    assert silent == sorted(stopping), silent  # each stopped device once; no reporting one
    assert all(a["details"]["reason"] == "silent" for a in found if a["kind"] == "device")
