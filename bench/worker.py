"""bench/worker: the detector worker's own capacity, with nothing else running.

Usage: bench/worker [DEVICES=2000] [REPORTS_PER_DEVICE=10] [ENV=VALUE ...]

Fleet telemetry (2 s of 25 Hz accel, vitals and GPS per report) is validated as the bridge does
and produced to `readings` first (keyed by resident); then one worker starts on its own Kafka
(Tansu) and the bench reads its stats file until every reading is processed: readings per
CPU-second of the worker, readings per second, its RSS, and the Kafka records it wrote. ENV=VALUE
pairs go to the worker (e.g. ANXIN_FAUST__SNAPSHOT_INTERVAL_S=10); WB_SPY=seconds has py-spy
sample the worker into /tmp/w.spy; WB_TRACEMALLOC=path runs it under tracemalloc, and creating
path.go makes it write its live allocations by file and line to path (bench/_tracemalloc_worker.py);
with WB_RATE, the bench creates path.go itself when 90 % of the readings have been produced.
WB_RATE=readings/s produces them at that rate once the worker
has started instead (its CPU per reading at a steady load: small batches); WB_IDLE=seconds
measures the worker's CPU once it has caught up (its fixed cost: timers, fetches).
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import orjson
import psutil
import yaml

from anxin.core.records import pack_accel
from anxin.core.registry import Registry
from anxin.services import Supervisor
from ingest.telemetry import Accepted, validate_telemetry
from simulators.fleet import Fleet, demo_registry

devices = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
per_dev = int(sys.argv[2]) if len(sys.argv) > 2 else 10
run = Path(tempfile.mkdtemp(prefix="wbench-"))
reg = demo_registry(devices)
(run / "registry.yaml").write_text(yaml.safe_dump(reg, allow_unicode=True))
registry = Registry.model_validate(reg)
fleet = Fleet(reg, "127.0.0.1", 1, interval_s=10.0, sos_rate=0.0)
for d in fleet.devices.values():
    d.rate, d.chunk_s, d.interval_s = 25, 2.0, 10.0
devs = list(fleet.devices.values())
t0 = time.time() - per_dev * 10
recs = []
for i in range(per_dev):
    for d in devs:
        p = fleet.telemetry(d, t0 + i * 10)
        p["seq"] = i
        v = validate_telemetry(
            f"anxin/v1/devices/{d.device_id}/telemetry",
            orjson.dumps(p, option=orjson.OPT_SERIALIZE_NUMPY),
            t0 + i * 10 + 1,
        )
        assert isinstance(v, Accepted), v  # the fleet sends valid telemetry
        r = v.reading
        owner = registry.device_owner(d.device_id)
        assert owner is not None
        rid = owner[0]
        r["resident_id"] = rid
        recs.append((rid.encode(), orjson.dumps(pack_accel(r))))  # as the bridge sends it
fleet.pool.sel.close()
print(f"{len(recs)} readings of {devices} devices, ~{sum(len(v) for _, v in recs) // len(recs)} B")
sup = Supervisor(run / "services", only=("kafka",))
ep = sup.start()
try:
    from aiokafka import AIOKafkaProducer

    from anxin.core.settings import KafkaSettings
    from anxin.core.topics import ensure_topics

    async def produce(rate: float = 0.0) -> None:
        """Every reading to ``readings``: at once, or ``rate`` a second (WB_RATE)."""
        await ensure_topics(KafkaSettings(bootstrap=ep.kafka_bootstrap))
        pr = AIOKafkaProducer(
            bootstrap_servers=ep.kafka_bootstrap, linger_ms=20, max_batch_size=262144
        )
        await pr.start()
        start = time.monotonic()
        dump_at = int(0.9 * len(recs)) if traced and rate else -1
        for i, (k, v) in enumerate(recs):
            if rate and (delay := start + i / rate - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            if i == dump_at:  # the live allocations at a steady load, ~90 % of the way
                Path(traced + ".go").touch()
            await pr.send("readings", v, key=k)
        await pr.flush()
        await pr.stop()

    rate = float(os.environ.get("WB_RATE", "0"))
    traced = os.environ.get("WB_TRACEMALLOC")  # the worker under tracemalloc (slower)
    if not rate:
        asyncio.run(produce())
    stats = run / "w.stats.json"
    env = {
        **os.environ,
        **ep.env(),
        "ANXIN_REGISTRY": str(run / "registry.yaml"),
        "ANXIN_FAUST__DATA_DIR": str(run / "faust"),
        "ANXIN_FAUST__STATS_FILE": str(stats),
        "ANXIN_LOG_LEVEL": "WARNING",
    }
    extra = dict(a.split("=", 1) for a in sys.argv[3:])
    env.update(extra)
    command = [str(Path(__file__).with_name("_tracemalloc_worker.py"))] if traced else []
    w = subprocess.Popen(
        [sys.executable, *command] if traced else [sys.executable, "-m", "anxin.cli", "worker"],
        env=env,
        stdout=open(run / "w.log", "wb"),  # noqa: SIM115 - handed to the child
        stderr=subprocess.STDOUT,
    )
    pw = psutil.Process(w.pid)

    def spy() -> None:
        if os.environ.get("WB_SPY"):
            subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    str(w.pid),
                    "-d",
                    os.environ["WB_SPY"],
                    "-f",
                    "raw",
                    "-o",
                    "/tmp/w.spy",
                    "-r",
                    "200",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )

    if rate:  # the worker at a steady load: its CPU per reading with small batches
        while True:
            time.sleep(0.2)
            try:
                if json.loads(stats.read_text())["partitions"]:
                    break
            except Exception:
                continue
        c = pw.cpu_times()
        cpu0, t_paced = c.user + c.system, time.time()
        spy()
        asyncio.run(produce(rate))
        while json.loads(stats.read_text())["readings"] < len(recs):
            time.sleep(0.2)
        c = pw.cpu_times()
        used, wall = c.user + c.system - cpu0, time.time() - t_paced
        print(
            f"paced: {len(recs):,} readings at {rate:,.0f}/s in {wall:.1f} s, worker "
            f"{100 * used / wall:.1f} % CPU -> {len(recs) / used:,.0f} readings/CPU-s"
        )
    first = None
    while not rate:  # catch-up: the whole backlog was produced before the worker started
        time.sleep(0.2)
        try:
            s = json.loads(stats.read_text())
        except Exception:
            continue
        if s["readings"] and first is None:
            c = pw.cpu_times()
            first = (time.time(), c.user + c.system, s["readings"])
            spy()
        if s["readings"] >= len(recs) and first is not None:
            break
    s = json.loads(stats.read_text())
    if first is not None:
        c = pw.cpu_times()
        cpu = c.user + c.system
        wall = time.time() - first[0]
        n = s["readings"] - first[2]
        per_cpu = n / max(1e-6, cpu - first[1])
        print(
            f"worker: {n:,} readings in {wall:.1f} s wall, {cpu - first[1]:.1f} CPU-s -> "
            f"{per_cpu:,.0f} readings/CPU-s "
            f"(target >= 5,000: {'MET' if per_cpu >= 5000 else 'NO'}), {n / max(wall, 1e-6):,.0f}/s"
        )
    print(
        f"worker RSS {pw.memory_info().rss / 1e6:.0f} MB; records_out {s['records_out']:,}, "
        f"snapshots {s['snapshots']:,}"
    )
    idle_s = float(os.environ.get("WB_IDLE", "0"))
    if idle_s > 0:  # the fixed cost: the worker's CPU with nothing left to read
        c0 = pw.cpu_times()
        time.sleep(idle_s)
        c1 = pw.cpu_times()
        used = (c1.user + c1.system) - (c0.user + c0.system)
        print(f"idle: {100 * used / idle_s:.1f} % of a core over {idle_s:.0f} s")
    t_stop = time.time()
    w.terminate()
    try:
        w.wait(60)
        print(f"stopped in {time.time() - t_stop:.1f} s, rc {w.returncode}")
    except subprocess.TimeoutExpired:
        print("NOT STOPPED in 60 s")
        w.kill()
finally:
    sup.stop()
