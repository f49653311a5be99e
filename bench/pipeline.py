"""bench/pipeline: the simulated fleet through bridge -> Faust worker(s) -> storage -> alerts.

One phase per device count (``--devices 1000,3000`` runs two, in fresh services each):
1. services (the supervisor the demo uses) in a temporary run folder; the first phase measures
   the ceilings (bench/_ceilings.py) before any Anxin process runs;
2. the bridge, K detector workers, the alerts worker (Twilio through a timestamping proxy in
   front of the Prism mock) and the storage writer, as ``anxin`` child processes;
3. the load (``--load``): by default ``bench/_loadgen.py``, the fleet's messages pre-generated
   and published by one process per ``--gen-devices-per-proc`` devices, one MQTT client per
   device (devices the main Mosquitto has no file descriptors for go through an edge Mosquitto
   bridged to it); ``--load fleet``: ``simulators.fleet.Fleet`` in one process (up to ~3,000
   devices). Either way every watch reports every 10 s on average with 2 s of 25 Hz accel,
   vitals and a GPS fix, and SOS presses and falls (streamed as accel bursts) at
   ``--sos-per-min`` / ``--falls-per-min`` over the whole fleet, plus the simulator's usual
   wandering and device trouble; every publish is logged with its wall time;
4. during the load the bench consumes ``readings`` (counted: what the bridge produced) and
   ``alerts``, and reads the workers' stats files (``ANXIN_FAUST__STATS_FILE``, one per worker,
   summed: readings processed, records out); with an app that writes none it counts ``vitals``
   instead (one record per processed reading with vitals: (device, ts) ties it to its publish,
   giving per-reading latency); psutil samples CPU and RSS of every process;
5. capacities (the steady load alone cannot show a rate above the offered one): at the end of
   the load the bridge is paused (SIGSTOP) for ``--burst-s`` while the fleet keeps publishing
   into Mosquitto, then resumed: its best 4 s catch-up is the bridge's capacity (the worker can
   only follow it); after ``--settle-s`` for the pipeline to catch up, every worker process is
   paused for ``--worker-burst-s`` while the fleet and the bridge go on, so the readings pile up
   in Kafka, then resumed as the fleet stops: the workers' catch-up (best 4 s, or backlog / time
   to drain when the drain is shorter than 6 s) is the worker's capacity, the figure divided by
   the framework ceiling. The workers get a session timeout longer than their pause so the group
   keeps them (a rebalance in the figure is reported);
6. after a drain, the alerts database (PostgreSQL) and the proxy's log give alert -> first
   Twilio request; a plain aiokafka consume-and-decode loop over the same ``readings`` topic
   gives the framework ceiling; ``--profile`` has py-spy sample the worker(s) and the bridge.

Lag is measured as counts and as seconds, without broker offsets (Tansu under-reports end
offsets): lag = messages published - readings the worker processed (stats file), or
vitals-bearing messages published - vitals records seen (fallback).

Usage: bench/pipeline --devices N[,N2,...] --minutes M [--workers K] [--profile]
       [--load loadgen|fleet] [--gen-devices-per-proc 5000] [--mqtt-auth]
       [--burst-s 20] [--settle-s 30] [--worker-burst-s 60] [--worker-session-timeout S]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common  # noqa: F401
import orjson
import yaml
from _ceilings import Rate, kafka_ceiling, kafka_consume, mqtt_ceiling, sample_messages, vm_ceiling
from _common import machine_line, median, pct, verdict

from anxin.demo import pipeline_env, spawn_on_own_port, webhook_env
from anxin.processes import ProcessGroup
from anxin.services import PROJECT_ROOT, Supervisor
from simulators.fleet import demo_registry

TARGET_DEVICES_ONE_WORKER = 10_000
TARGET_KNEE_TWO_WORKERS = 3_000
TARGET_FRAMEWORK_RATIO = 0.10  # issue 16 (0.5 before it)
TARGET_ALERT_P99 = 1.0
TARGET_TWILIO_P99 = 2.0
TARGET_STATE_PER_DEVICE = 4096
INTERVAL_S = 10.0


# t, published, readings seen, vitals seen, storage written, worker readings (stats file, -1:
# none), worker records out (stats file, -1: none)
Row = tuple[float, int, int, int, int, int, int]
STATS_KEYS = ("readings", "statuses", "alerts", "records_out", "snapshots", "dead_letters")


def read_worker_stats(paths: list[Path]) -> dict[str, float] | None:
    """The workers' stats files summed (written atomically about once a second); None when no
    worker writes one (an app without the stats file: the bench falls back to ``vitals``)."""
    out: dict[str, float] = {}
    for path in paths:
        try:
            d = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for k in STATS_KEYS:
            if isinstance(d.get(k), int | float):
                out[k] = out.get(k, 0) + d[k]
        out["files"] = out.get("files", 0) + 1
    return out if "readings" in out else None


# (the worker's own write time `at`, its `readings` count, its partitions)
StatsPoint = tuple[float, float, tuple[int, ...]]


class StatsTrace(threading.Thread):
    """Every write of each worker's stats file, with the time the worker wrote it (``at``).

    The timeline samples the files every ``--sample-s`` at the bench's own clock, and a file
    can be up to a second old when read: a 4 s rate from those samples could count up to 5 s of
    work. Catch-up rates use these points instead: each is the worker's count at the moment it
    wrote it. A stopped worker writes nothing, so its series has a gap over the pause (see
    ``freeze_gap``). The partitions it names show an assignment change (a rebalance)."""

    def __init__(self, paths: list[Path], every_s: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.paths = paths
        self.every_s = every_s
        self.points: list[list[StatsPoint]] = [[] for _ in paths]
        self.stop_flag = threading.Event()

    def run(self) -> None:
        while not self.stop_flag.wait(self.every_s):
            for k, path in enumerate(self.paths):
                try:
                    d = json.loads(path.read_bytes())  # replaced atomically by the worker
                    at, n = float(d["at"]), float(d["readings"])
                    parts = tuple(int(p) for p in d.get("partitions") or ())
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                pts = self.points[k]
                if not pts or at > pts[-1][0]:
                    pts.append((at, n, parts))


def freeze_gap(pts: list[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    """A worker's (time, count) series with its stop from ``t0`` to ``t1`` made explicit: its last
    write before the stop is up to a second old, so its count at ``t0`` is extrapolated at the
    rate of the writes before (not above its first count after the resume), held flat until
    ``t1``. Plain interpolation across the gap would instead spread the work done in the first
    second after the resume over the whole pause."""
    before = [p for p in pts if p[0] <= t0]
    after = [p for p in pts if p[0] > t1]
    if not before or not after:
        return pts
    n0 = before[-1][1]
    if len(before) >= 2 and before[-1][0] > before[-2][0]:
        (ta, na), (tb, nb) = before[-2], before[-1]
        n0 += (nb - na) / (tb - ta) * (t0 - tb)
    n0 = min(n0, after[0][1])
    return [*before, (t0, n0), (t1, n0), *after]


def interp(pts: list[tuple[float, float]], t: float) -> float | None:
    """The count at ``t``, linear between points; None outside the series."""
    if not pts or t < pts[0][0] or t > pts[-1][0]:
        return None
    i = bisect.bisect_left(pts, (t, float("-inf")))
    if pts[i][0] == t or i == 0:
        return pts[i][1]
    (ta, na), (tb, nb) = pts[i - 1], pts[i]
    return na + (nb - na) * (t - ta) / (tb - ta)


def total_at(series: list[list[tuple[float, float]]], t: float) -> float | None:
    vals = [interp(s, t) for s in series]
    return None if any(v is None for v in vals) else sum(v or 0.0 for v in vals)


def best_window(
    series: list[list[tuple[float, float]]], t0: float, t1: float, width: float
) -> float:
    """The best rate over a ``width`` window inside [t0, t1] of the summed (piecewise linear)
    counts: exact, since the best window starts or ends at a point of some series."""
    if t1 - t0 < width:
        return 0.0
    starts = {t0, t1 - width}
    for pts in series:
        for t, _ in pts:
            starts.update((t, t - width))
    best = 0.0
    for t in starts:
        if t0 <= t <= t1 - width:
            a, b = total_at(series, t), total_at(series, t + width)
            if a is not None and b is not None:
                best = max(best, (b - a) / width)
    return best


def first_reach(
    series: list[list[tuple[float, float]]], target: float, t0: float
) -> tuple[float, float] | None:
    """When the summed counts reach ``target`` from ``t0`` on, as far as the points tell: (the
    last point before, the first point at or above it). A worker writes its count once a second,
    so the two can be a second apart."""
    times = sorted({t for s in series for t, _ in s if t >= t0} | {t0})
    prev = t0
    for t in times:
        n = total_at(series, t)
        if n is None:
            continue
        if n >= target:
            return prev, t
        prev = t
    return None


def count_lines(path: Path, needle: str, offset: int = 0) -> tuple[int, list[str]]:
    """Lines of a log from byte ``offset`` on that contain ``needle``: (count, the lines)."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace")
    except OSError:
        return 0, []
    lines = [ln for ln in text.splitlines() if needle in ln]
    return len(lines), lines


def tree_pids(pid: int) -> list[int]:
    """A process and all its descendants (the root first)."""
    import psutil

    try:
        return [pid] + [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return [pid]


def signal_pids(pids: list[int], sig: int) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


# Each assignment the worker takes logs this (anxin/app.py, `_assigned`).
ASSIGNED = "snapshots loaded"
# aiokafka's group coordinator, when it logs: a member thrown out or rejoining.
# aiokafka's INFO lines are not in the worker's log; Faust warns "Missing sensor state for
# rebalance #N" at each rebalance.
REBALANCE_HINTS = ("Heartbeat session expired", "Heartbeat failed", "for rebalance #")
APP_SESSION_TIMEOUT_S = 10.0  # FaustSettings.session_timeout (anxin/core/settings.py)
FAUST_REQUEST_TIMEOUT_S = 90.0  # Faust refuses a session timeout above broker_request_timeout


def worker_session_timeout(a: argparse.Namespace) -> float:
    """The bench's workers' consumer-group session timeout (``ANXIN_FAUST__SESSION_TIMEOUT``).

    A stopped process sends no heartbeats. Apache Kafka evicts a member whose session times out
    on a timer; Tansu 0.6.0 when any member of the group calls (`missed_heartbeat` in
    tansu-broker/src/coordinator/group/administrator.rs): it evicts the others whose last contact
    is older than the session timeout. With the app's 10 s the first of two workers to resume
    threw the other out (`--workers 2 --worker-session-timeout 10`: "Heartbeat session expired",
    both reassigned, a 6 s drain instead of 1 s; one worker alone is not evicted by Tansu, it
    refreshes itself first), and the catch-up then includes a rebalance: not the worker's
    capacity. A pause under 10 s leaves too small a backlog at ~1,000 readings/s for a catch-up
    at ~6,000/s to be measured, so the workers get ``--worker-burst-s`` + 20 s instead (the
    rebalance timeout, on which Tansu's join time depends, and the heartbeat interval stay the
    app's). A longer session only delays noticing a worker that dies without leaving the group,
    which the bench does not do."""
    if a.worker_session_timeout > 0:
        return float(a.worker_session_timeout)
    if a.worker_burst_s <= 0:
        return APP_SESSION_TIMEOUT_S
    return min(FAUST_REQUEST_TIMEOUT_S, max(APP_SESSION_TIMEOUT_S, a.worker_burst_s + 20.0))


@dataclass
class Pauses:
    """When the bench stopped the bridge and the workers (wall times), and what it saw."""

    session_timeout: float = APP_SESSION_TIMEOUT_S
    bridge_at: float | None = None
    bridge_end: float | None = None
    steady_again: float | None = None  # caught up again after the bridge pause
    workers_at: float | None = None
    workers_end: float | None = None
    trace: list[list[StatsPoint]] = field(default_factory=list)  # StatsTrace.points
    assignments: list[int] = field(default_factory=list)  # per worker, whole run
    assigned_since_pause: list[int] = field(default_factory=list)  # per worker
    rebalance_lines: list[str] = field(default_factory=list)

    @property
    def first(self) -> float | None:
        """The start of the first pause: the steady window and the latency figures end here."""
        starts = [t for t in (self.bridge_at, self.workers_at) if t is not None]
        return min(starts) if starts else None


# -- measurement consumer (a thread with its own event loop) -------------------------------------
@dataclass
class Seen:
    readings: int = 0
    vitals: list[tuple[str, float, float]] = field(default_factory=list)  # device, ts, t_recv
    alerts: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Watcher(threading.Thread):
    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.seen = Seen()
        self.stop_flag = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # reported with the figures
            self.seen.errors.append(repr(exc))
            self.ready.set()

    async def _main(self) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        c = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=16 << 20,
            max_partition_fetch_bytes=4 << 20,
            fetch_max_wait_ms=50,
        )
        await c.start()
        try:
            tps = []
            for topic in ("readings", "vitals", "alerts"):
                for _ in range(50):
                    parts = c.partitions_for_topic(topic)
                    if parts:
                        break
                    await c._client.force_metadata_update()
                    await asyncio.sleep(0.1)
                tps += [TopicPartition(topic, p) for p in sorted(parts or ())]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            self.ready.set()
            s = self.seen
            while not self.stop_flag.is_set():
                batches = await c.getmany(timeout_ms=100, max_records=10_000)
                now = time.time()
                for tp, msgs in batches.items():
                    if tp.topic == "readings":
                        s.readings += len(msgs)
                    elif tp.topic == "vitals":
                        for m in msgs:
                            v = orjson.loads(m.value)
                            s.vitals.append((v["device_id"], round(float(v["ts"]), 3), now))
                    else:
                        for m in msgs:
                            s.alerts.append((orjson.loads(m.value), now))
        finally:
            await c.stop()


# -- per-process CPU and memory ------------------------------------------------------------------
class ProcSampler:
    """CPU (% of one core) and RSS of named process trees, sampled together."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        self.roots: dict[str, int] = {}
        self.alone: set[str] = set()  # counted without their children
        self.cache: dict[int, Any] = {}
        self.samples: list[tuple[float, dict[str, tuple[float, float]]]] = []

    def add(self, name: str, pid: int, alone: bool = False) -> None:
        self.roots[name] = pid
        if alone:
            self.alone.add(name)

    def _procs(self, pid: int, alone: bool = False) -> list[Any]:
        ps = self.psutil
        try:
            root = self.cache.get(pid) or ps.Process(pid)
            self.cache[pid] = root
            out = [root]
            for ch in [] if alone else root.children(recursive=True):
                out.append(self.cache.setdefault(ch.pid, ch))
            return out
        except ps.Error:
            return []

    def sample(self) -> dict[str, tuple[float, float]]:
        now = time.time()
        row: dict[str, tuple[float, float]] = {}
        for name, pid in self.roots.items():
            cpu = rss = 0.0
            for p in self._procs(pid, name in self.alone):
                try:
                    cpu += p.cpu_percent(None)
                    rss += p.memory_info().rss
                except self.psutil.Error:
                    pass
            row[name] = (cpu, rss / 2**20)
        self.samples.append((now, row))
        return row

    def window(self, t0: float, t1: float) -> dict[str, dict[str, float]]:
        rows = [r for t, r in self.samples if t0 < t <= t1]
        out: dict[str, dict[str, float]] = {}
        for name in self.roots:
            vals = [r[name] for r in rows if name in r]
            if vals:
                out[name] = {
                    "cpu": sum(v[0] for v in vals) / len(vals),
                    "rss_max": max(v[1] for v in vals),
                    "rss_end": vals[-1][1],
                }
        return out

    def rss_at(self, name: str, t: float) -> float:
        best = None
        for ts, r in self.samples:
            if name in r and ts <= t:
                best = r[name][1]
        return best if best is not None else float("nan")


# -- py-spy --------------------------------------------------------------------------------------
def pyspy_start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("# --profile: py-spy not installed (pip install py-spy); no profile", flush=True)
        return None
    return subprocess.Popen(
        [
            exe,
            "record",
            "-p",
            str(pid),
            "-d",
            str(max(1, int(seconds))),
            "-r",
            "49",
            "--nonblocking",
            "-f",
            "raw",
            "-o",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


LAYERS = (  # self time: the module of the innermost frame
    ("detectors (numpy detectors, pipeline.py)", ("(detectors/",)),
    ("numpy", ("(numpy/",)),
    ("JSON codec (orjson via anxin/records.py)", ("(anxin/records.py", "orjson")),
    ("ingest validation (pydantic)", ("(ingest/", "(pydantic/")),
    ("Faust", ("(faust/",)),
    ("mode (Faust's service framework)", ("(mode/",)),
    ("aiokafka client", ("(aiokafka/",)),
    ("paho-mqtt", ("(paho/",)),
    ("asyncio event loop, sockets", ("(asyncio/",)),
    ("epoll wait (idle in select)", ("EpollSelector.select",)),
    ("anxin (app, bridge glue)", ("(anxin/", "(alerts/", "(storage/")),
)
ENTRIES = (  # inclusive time: a stack counts for each of these it passes through
    ("agent detect: readings (anxin/app.py)", "detect (anxin/app.py"),
    ("  of which DetectorPipeline.process", "DetectorPipeline.process ("),
    ("agent news2: vitals (anxin/app.py)", "vitals_agent (anxin/app.py"),
    ("timer sweep over all devices (anxin/app.py)", "timers (anxin/app.py"),
    ("publish outputs (alerts, vitals, commands)", "publish (anxin/app.py"),
    ("table writes + changelog", "on_key_set"),
    ("Kafka producer (aiokafka Sender, requests)", "Sender"),
    ("Kafka consumer (aiokafka Fetcher)", "Fetcher"),
    ("Faust stream iteration", "Stream._c_aiter"),
    ("bridge: paho network loop thread", "Client._loop ("),
    ("bridge: validation + routing", "Bridge._route ("),
    ("bridge: uplink task", "Bridge._uplink ("),
)


def pyspy_summary(path: Path, top: int = 12) -> list[str]:
    """Where the time goes: self time by layer and function, inclusive time by entry point."""
    if not path.exists():
        return [f"(no profile at {path})"]
    leaf: dict[str, int] = defaultdict(int)
    layer: dict[str, int] = defaultdict(int)
    entry: dict[str, int] = defaultdict(int)
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        leaf[frames[-1]] += n
        for label, needles in LAYERS:
            if any(nd in frames[-1] for nd in needles):
                layer[label] += n
                break
        else:
            layer["other"] += n
        for label, needle in ENTRIES:
            if any(needle in f for f in frames):
                entry[label] += n
    if not total:
        return ["(empty profile)"]
    out = [f"{total:,} samples (49 Hz, every thread that was not idle); self time by layer:"]
    for label, _ in (*LAYERS, ("other", ())):
        if layer.get(label):
            out.append(f"    {100 * layer[label] / total:5.1f} %  {label}")
    out.append("  inclusive time by entry point:")
    for label, _ in ENTRIES:
        if entry.get(label):
            out.append(f"    {100 * entry[label] / total:5.1f} %  {label}")
    out.append(f"  top {top} functions by self time:")
    for fn, n in sorted(leaf.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"    {100 * n / total:5.1f} %  {fn[:110]}")
    return out


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "--summarise":
    for _p in sys.argv[2:]:
        print(_p)
        print("\n".join("  " + ln for ln in pyspy_summary(Path(_p))))
    sys.exit(0)


# -- one phase -----------------------------------------------------------------------------------
@dataclass
class Phase:
    devices: int
    workers: int
    lines: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def say(self, text: str = "") -> None:
        print(text, flush=True)
        self.lines.append(text)


def measure_ceilings(ep: Any, n: int, mqtt: bool = True) -> dict[str, Rate]:
    samples = sample_messages(200, 3)
    out: dict[str, Rate] = {}
    if mqtt:  # anonymous clients: not with --mqtt-auth
        mq_pub, mq_del = mqtt_ceiling(ep.host, ep.mqtt_port, [s[1] for s in samples], n)
        out["mqtt_pub"], out["mqtt"] = mq_pub, mq_del
    produce, raw, dec = asyncio.run(
        kafka_ceiling(ep.kafka_bootstrap, [(s[0].encode(), s[2]) for s in samples], n)
    )
    out["kafka_produce"], out["kafka_consume"], out["kafka_decode"] = produce, raw, dec
    out["vm"] = vm_ceiling(ep.vm_url, [s[2] for s in samples], n)
    return out


def run_phase(
    a: argparse.Namespace, devices: int, ceilings: dict[str, Rate] | None, want_ceilings: bool
) -> tuple[Phase, dict[str, Rate] | None]:
    ph = Phase(devices, a.workers)
    run_dir = Path(tempfile.mkdtemp(prefix=f"anxin-bench-{devices}-"))
    registry = demo_registry(devices)
    reg_path = run_dir / "registry.yaml"
    reg_path.write_text(yaml.safe_dump(registry, allow_unicode=True, sort_keys=False))
    passwords: dict[str, str] | None = None
    bridge_env: dict[str, str] | None = None
    if a.mqtt_auth:  # a password per device and the ACL, as the demo (and production) runs
        from anxin.core.registry import load_registry
        from anxin.services import MqttAuth
        from ingest.credentials import read_passwords, write_credentials

        creds = write_credentials(load_registry(reg_path), run_dir / "credentials", rotate=True)
        passwords = read_passwords(creds.provisioning)
        bridge_env = {"ANXIN_SETTINGS_FILE": str(creds.bridge_settings)}
        sup = Supervisor(run_dir, mqtt_auth=MqttAuth(creds.passwd, creds.acl))
    else:
        sup = Supervisor(run_dir)
    group = ProcessGroup(run_dir / "logs")
    sampler = ProcSampler()
    stop_rec = mp.get_context("spawn").Event()
    rec_proc = None
    watcher = None
    trace: StatsTrace | None = None
    stopped: list[int] = []  # processes this bench holds stopped (SIGSTOP)
    edge: subprocess.Popen[bytes] | None = None
    try:
        ep = sup.start()
        for c in sup.children:
            sampler.add(c.name, c.proc.pid)
        sampler.add("bench", os.getpid(), alone=True)
        if want_ceilings:
            ph.say(f"ceilings ({a.ceiling_messages:,} messages each, services idle, same run):")
            ceilings = measure_ceilings(ep, a.ceiling_messages, mqtt=not a.mqtt_auth)
            for r in ceilings.values():
                ph.say("  " + r.text())

        ctx = mp.get_context("spawn")
        from _recorder import serve

        port_q = ctx.Queue()
        rec_log = run_dir / "twilio-requests.log"
        rec_proc = ctx.Process(
            target=serve, args=(ep.twilio_url, str(rec_log), port_q, stop_rec), daemon=True
        )
        rec_proc.start()
        rec_url = port_q.get(timeout=30)
        sampler.add("twilio-proxy", rec_proc.pid or 0)

        shutil.copy(PROJECT_ROOT / "alerts" / "policies.example.yaml", run_dir / "alerts.yaml")
        group.env = {
            **pipeline_env(ep, run_dir, reg_path),
            "ANXIN_TWILIO__BASE_URL": rec_url,
        }

        def start(
            name: str, *args: str, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
        ) -> Any:
            ready = run_dir / f"{name}.ready"
            child = group.spawn(name, *args, "--ready-file", str(ready), *extra, env=env)
            group.wait_until(child, ready.exists, timeout=180)
            sampler.add(name, child.proc.pid)
            return child

        bridge = start("bridge", "ingest", env=bridge_env)
        workers = []
        # One stats file per worker (the worker writes it about once a second; summed here).
        worker_stats = [run_dir / f"worker-{k}-stats.json" for k in range(1, a.workers + 1)]
        session = worker_session_timeout(a)
        for k in range(1, a.workers + 1):
            workers.append(
                start(
                    f"worker-{k}",
                    "worker",
                    env={
                        "ANXIN_FAUST__DATA_DIR": str(run_dir / f"faust-{k}"),
                        "ANXIN_FAUST__STATS_FILE": str(worker_stats[k - 1]),
                        # Longer than the worker pause (see worker_session_timeout): the group
                        # must not throw the stopped workers out.
                        "ANXIN_FAUST__SESSION_TIMEOUT": f"{session:g}",
                    },
                )
            )
        # Its webhooks on a port it holds itself (another candidate if that one was taken).
        alerts, _ = spawn_on_own_port(
            group, "alerts", ("alerts", "run"), run_dir / "alerts.ready", webhook_env, timeout=180
        )
        sampler.add("alerts", alerts.proc.pid)
        stats_file = run_dir / "storage-stats.json"
        start("storage", "storage", "run", extra=("--stats-file", str(stats_file)))
        if a.workers > 1:  # let the group settle: each join rebalances the others
            for k in range(1, len(workers) + 1):
                (run_dir / f"worker-{k}.ready").unlink(missing_ok=True)
            deadline = time.time() + 60
            while time.time() < deadline and not all(
                (run_dir / f"worker-{k}.ready").exists() for k in range(1, a.workers + 1)
            ):
                time.sleep(0.5)
            time.sleep(3)

        watcher = Watcher(ep.kafka_bootstrap)
        watcher.start()
        watcher.ready.wait(60)
        trace = StatsTrace(worker_stats)
        trace.start()

        per_hour = 60.0 / devices
        connected, published = ctx.Event(), ctx.Value("q", 0)
        fleet_log = run_dir / "fleet.pkl"
        load_s = a.minutes * 60.0
        # The fleet goes on through both pauses: the steady load, the bridge pause, the time the
        # pipeline gets to catch up again, the worker pause; it stops as the workers resume.
        settle_s = a.settle_s if a.burst_s > 0 and a.worker_burst_s > 0 else 0.0
        fleet_s = load_s + a.burst_s + settle_s + a.worker_burst_s
        load_args = (
            registry,
            ep.host,
            ep.mqtt_port,
            INTERVAL_S,
            a.sos_per_min * per_hour,
            a.falls_per_min * per_hour,
            fleet_s,
            str(fleet_log),
            connected,
            published,
            a.seed,
        )
        if a.load == "fleet":
            from _fleetproc import run_fleet

            fleet = ctx.Process(target=run_fleet, args=(*load_args, passwords))
            load_what = "simulators.fleet.Fleet in one process"
        else:
            from _loadgen import brokers_for, procs_for, run_loadgen

            procs = procs_for(devices, a.gen_devices_per_proc)
            brokers, edge, text = brokers_for(devices, sup, ep, run_dir, auth=a.mqtt_auth)
            ph.say(text)
            if edge is not None:
                sampler.add("mosquitto-edge", edge.pid)
            fleet = ctx.Process(target=run_loadgen, args=(*load_args, procs, passwords, brokers))
            load_what = (
                f"bench/_loadgen: {procs} process(es), messages pre-generated, "
                "one MQTT client per device"
            )
        sampler.sample()
        fleet.start()
        # The generator processes are the coordinator's children: sampled with it.
        sampler.add("fleet", fleet.pid or 0)
        t_conn0 = time.time()
        while not connected.wait(1.0):
            sampler.sample()
            if not fleet.is_alive():
                raise RuntimeError("fleet process exited while connecting")
            if time.time() - t_conn0 > 1200:
                raise RuntimeError("fleet did not connect within 20 min")
        t_start = time.time()
        offered = devices / INTERVAL_S
        ph.say(
            f"load: {devices:,} devices ({offered:,.0f} msgs/s offered + fall bursts), "
            f"{a.workers} worker(s), {a.minutes:g} min; load: {load_what}; devices "
            f"{'pre-generated and ' if a.load == 'loadgen' else ''}connected in "
            f"{t_start - t_conn0:.0f} s"
            + (" (each with its own password)" if passwords is not None else "")
        )
        rss_ready = {n: sampler.rss_at(n, t_start) for n in sampler.roots}
        warm = min(30.0, load_s * 0.2)
        spies = []
        if a.profile:
            for name, child in [("bridge", bridge)] + [
                (f"worker-{k}", w) for k, w in enumerate(workers, 1)
            ]:
                out = run_dir / f"pyspy-{name}.txt"
                sp = pyspy_start(child.proc.pid, load_s - warm, out)
                if sp:
                    spies.append((name, sp, out))
        timeline: list[Row] = []
        last_print = t_start

        def sample_row() -> Row:
            stored = 0
            if stats_file.exists():
                try:
                    stored = int(json.loads(stats_file.read_text())["records_written"])
                except (ValueError, KeyError):
                    pass
            ws = read_worker_stats(worker_stats)
            s = watcher.seen
            return (
                time.time(),
                published.value,
                s.readings,
                len(s.vitals),
                stored,
                int(ws["readings"]) if ws else -1,
                int(ws["records_out"]) if ws and "records_out" in ws else -1,
            )

        # The schedule: steady load; the bridge paused for --burst-s (the bridge's capacity: its
        # catch-up from a backlog in Mosquitto); --settle-s for the pipeline to catch up again;
        # the workers paused for --worker-burst-s while the fleet and the bridge go on (the
        # worker's capacity: its catch-up from a backlog in Kafka); the fleet stops as the
        # workers resume, and the drain is their catch-up.
        pz = Pauses(session_timeout=session)
        t_bridge_due = t_start + load_s
        t_workers_due = t_start + load_s + a.burst_s + settle_s
        worker_pids: list[int] = []
        wlog_at: list[int] = []

        def caught_up(row: Row) -> tuple[bool, str]:
            bridge_behind = row[1] - row[2]
            worker_behind = row[2] - row[5] if row[5] >= 0 else 0
            ok = bridge_behind <= max(100, 2 * offered) and worker_behind <= max(100, 5 * offered)
            txt = f"bridge behind {bridge_behind:,}" + (
                f", worker behind {worker_behind:,}" if row[5] >= 0 else ""
            )
            return ok, txt

        while True:
            time.sleep(a.sample_s)
            sampler.sample()
            row = sample_row()
            now = row[0]
            timeline.append(row)
            if a.burst_s > 0 and pz.bridge_at is None and now >= t_bridge_due:
                os.kill(bridge.proc.pid, signal.SIGSTOP)
                stopped.append(bridge.proc.pid)
                pz.bridge_at = time.time()
                ph.say(
                    f"  +{now - t_start:5.0f} s  bridge paused (SIGSTOP) for {a.burst_s:g} s: "
                    "the fleet's messages queue in Mosquitto"
                )
            elif pz.bridge_at is not None and pz.bridge_end is None:
                if now >= pz.bridge_at + a.burst_s:
                    os.kill(bridge.proc.pid, signal.SIGCONT)
                    stopped.remove(bridge.proc.pid)
                    pz.bridge_end = time.time()
                    ph.say(f"  +{now - t_start:5.0f} s  bridge resumed: catch-up")
            elif pz.bridge_end is not None and pz.steady_again is None and pz.workers_at is None:
                ok, txt = caught_up(row)
                if ok:
                    pz.steady_again = now
                    ph.say(
                        f"  +{now - t_start:5.0f} s  caught up again {now - pz.bridge_end:.0f} s "
                        f"after the bridge resumed ({txt})"
                    )
            if (
                a.worker_burst_s > 0
                and pz.workers_at is None
                and now >= t_workers_due
                and (a.burst_s <= 0 or pz.bridge_end is not None)
            ):
                ok, txt = caught_up(row)
                if not ok:
                    ph.say(
                        f"  WARNING: the pipeline is behind as the workers are paused ({txt}); "
                        "their backlog adds to it"
                    )
                wlog_at = [w.log_path.stat().st_size for w in workers]
                # Every process of every worker tree, all at once.
                worker_pids = [p for w in workers for p in tree_pids(w.proc.pid)]
                stopped.extend(worker_pids)
                signal_pids(worker_pids, signal.SIGSTOP)
                pz.workers_at = time.time()
                ph.say(
                    f"  +{now - t_start:5.0f} s  worker(s) paused (SIGSTOP, {len(worker_pids)} "
                    f"process(es)) for {a.worker_burst_s:g} s: the readings queue in Kafka"
                )
            elif (
                pz.workers_at is not None
                and pz.workers_end is None
                and now >= pz.workers_at + a.worker_burst_s
            ):
                signal_pids(worker_pids, signal.SIGCONT)
                pz.workers_end = time.time()
                stopped[:] = [p for p in stopped if p not in worker_pids]
                ph.say(f"  +{now - t_start:5.0f} s  worker(s) resumed: catch-up")
            if now - last_print >= 10:
                last_print = now
                prev = next((r for r in reversed(timeline) if r[0] <= now - 10), timeline[0])
                dt = max(1e-6, now - prev[0])
                rate = (row[1] - prev[1]) / dt
                if row[5] >= 0 and prev[5] >= 0:  # the worker's stats file: every reading
                    wtxt = f"{(row[5] - prev[5]) / dt:7,.0f} readings/s (stats file)"
                    behind = f"worker {row[2] - row[5]:,}"
                else:
                    wtxt = f"{(row[3] - prev[3]) / dt:7,.0f} vitals-readings/s"
                    behind = f"worker {row[2] - row[3]:,} (incl. readings without vitals)"
                ph.say(
                    f"  +{now - t_start:5.0f} s  fleet {rate:7,.0f}/s"
                    f"  bridge {(row[2] - prev[2]) / dt:7,.0f}/s  worker {wtxt}  storage "
                    f"{(row[4] - prev[4]) / dt:7,.0f} rec/s  | behind: bridge "
                    f"{row[1] - row[2]:,}, {behind}"
                )
            if not fleet.is_alive():
                break
            if now - t_start > fleet_s + 300:
                raise RuntimeError("fleet did not stop")
        if pz.bridge_at is not None and pz.bridge_end is None:
            os.kill(bridge.proc.pid, signal.SIGCONT)
            stopped.remove(bridge.proc.pid)
            pz.bridge_end = time.time()
            ph.say(f"  +{pz.bridge_end - t_start:5.0f} s  bridge resumed: catch-up")
        if pz.workers_at is not None and pz.workers_end is None:
            signal_pids(worker_pids, signal.SIGCONT)
            stopped[:] = [p for p in stopped if p not in worker_pids]
            pz.workers_end = time.time()
            ph.say(f"  +{pz.workers_end - t_start:5.0f} s  worker(s) resumed: catch-up")
        fleet.join(120)
        if fleet.exitcode != 0:
            raise RuntimeError(f"the load process failed (exit code {fleet.exitcode})")
        flog = pickle.loads(fleet_log.read_bytes())
        t_stop = flog["stopped"]
        n_vitals = sum(1 for r in flog["log"] if r[4] & 1)
        n_all = len(flog["log"])
        # drain: until every message was processed (stats file) or every vitals-bearing one
        # (vitals topic), or no progress for 15 s
        t_d0 = time.time()
        last_n, last_change = -1, time.time()
        while time.time() - t_d0 < a.drain_s:
            sampler.sample()
            row = sample_row()
            timeline.append(row)
            n, want = (row[5], n_all) if row[5] >= 0 else (row[3], n_vitals)
            if n >= want:
                break
            if n != last_n:
                last_n, last_change = n, time.time()
            elif time.time() - last_change > 15:
                break
            time.sleep(a.sample_s)
        time.sleep(5)  # the last alerts reach PostgreSQL and the Twilio mock
        for _name, sp, _out in spies:
            try:
                sp.wait(timeout=60)
            except subprocess.TimeoutExpired:
                sp.terminate()
        watcher.stop_flag.set()
        watcher.join(10)
        trace.stop_flag.set()
        trace.join(5)
        pz.trace = trace.points
        # Assignments (each logs "partitions [...]: N residents' snapshots loaded") in the whole
        # run and since the workers were paused: any after the pause is a rebalance.
        for k, w in enumerate(workers):
            pz.assignments.append(count_lines(w.log_path, ASSIGNED)[0])
            if wlog_at:
                n, lines = count_lines(w.log_path, ASSIGNED, wlog_at[k])
                pz.assigned_since_pause.append(n)
                pz.rebalance_lines += [f"worker-{k + 1}: {ln.strip()}" for ln in lines]
                for needle in REBALANCE_HINTS:
                    pz.rebalance_lines += [
                        f"worker-{k + 1}: {ln.strip()}"
                        for ln in count_lines(w.log_path, needle, wlog_at[k])[1]
                    ]

        # -- figures -----------------------------------------------------------------------------
        analyse(
            ph,
            a,
            flog,
            watcher.seen,
            timeline,
            sampler,
            t_start,
            t_stop,
            pz,
            rss_ready,
            ceilings,
            ep,
            rec_log,
        )
        fw = asyncio.run(
            kafka_consume(ep.kafka_bootstrap, "readings", watcher.seen.readings, decode=True)
        )
        ph.figures["framework_ceiling"] = fw.per_s
        ph.say(
            "  "
            + fw.text().replace(
                "kafka: aiokafka consume + orjson decode (framework ceiling)",
                "framework ceiling: consume+decode `readings`",
            )
        )
        cap = ph.figures.get("worker_capacity")
        bcap = ph.figures.get("bridge_capacity")
        if cap:
            ratio = cap / fw.per_s
            ph.figures["framework_ratio"] = ratio
            ph.say(
                f"  pipeline capacity / framework ceiling: {cap:,.0f} / {fw.per_s:,.0f} = "
                f"{ratio:.3f}  target >= {TARGET_FRAMEWORK_RATIO}: "
                f"{verdict(ratio >= TARGET_FRAMEWORK_RATIO)}  (worker capacity: "
                f"{ph.figures.get('worker_capacity_how', '?')})"
            )
        if bcap:
            ph.figures["bridge_framework_ratio"] = bcap / fw.per_s
            ph.say(
                f"  bridge capacity {bcap:,.0f} msgs/s (catch-up from Mosquitto after its own "
                f"pause) = {bcap / fw.per_s:.3f} of the framework ceiling"
            )
        for name, _sp, out in spies:
            ph.say(f"  profile of {name} (py-spy, {out}):")
            for ln in pyspy_summary(out):
                ph.say("    " + ln)
            if a.keep_profiles:
                dest = Path(a.keep_profiles)
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy(out, dest / f"pyspy-{devices}-{name}.txt")
        return ph, ceilings
    finally:
        if stopped:  # an error while a pause was on: let them run so they can stop
            signal_pids(stopped, signal.SIGCONT)
        if watcher is not None:
            watcher.stop_flag.set()
        if trace is not None:
            trace.stop_flag.set()
        group.stop()
        if edge is not None:
            edge.terminate()
            edge.wait(10)
        stop_rec.set()
        if rec_proc is not None:
            rec_proc.join(5)
        sup.stop()
        if a.keep:
            print(f"# run folder kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


CATCHUP_WINDOW_S = 4.0


def row_at(timeline: list[Row], t: float, c: int) -> float:
    """Column ``c`` of the last timeline row at or before ``t``."""
    i = bisect.bisect_right([r[0] for r in timeline], t) - 1
    return max(0, timeline[max(i, 0)][c])


def bridge_catchup(
    ph: Phase, pz: Pauses, timeline: list[Row], col: int, share: float, pub_v_times: list[float]
) -> None:
    """The bridge's capacity: its best 4 s after its pause, from the backlog in Mosquitto. The
    worker follows at most as fast as the bridge refills Kafka, so its rate here is not its own
    capacity (unless there is no worker pause: then it is the only worker figure)."""
    if pz.bridge_at is None or pz.bridge_end is None:
        return
    t0, t1 = pz.bridge_at, pz.bridge_end
    t_end = pz.workers_at if pz.workers_at is not None else float("inf")
    rows = [r for r in timeline if t1 <= r[0] <= t_end]
    best_b = best_w = 0.0
    for i in range(len(rows)):
        for j in range(i + 1, len(rows)):
            if rows[j][0] - rows[i][0] >= CATCHUP_WINDOW_S:
                dt = rows[j][0] - rows[i][0]
                best_b = max(best_b, (rows[j][2] - rows[i][2]) / dt)
                best_w = max(best_w, (rows[j][col] - rows[i][col]) / dt / share)
                break
    backlog = row_at(timeline, t1, 1) - row_at(timeline, t1, 2)
    caught = next((r[0] for r in rows if r[col] >= bisect.bisect_right(pub_v_times, t1)), None)
    if caught is not None and caught - t1 < CATCHUP_WINDOW_S + 2:
        best_b = best_w = 0.0  # over before a window could measure it: no capacity figure
    f = ph.figures
    f.update(bridge_capacity=best_b, worker_after_bridge_pause=best_w)
    ph.say(
        f"  bridge capacity: catch-up after a {t1 - t0:.0f} s bridge pause (backlog "
        f"{backlog:,.0f} msgs in Mosquitto): bridge peak {best_b:,.0f} msgs/s (best "
        f"{CATCHUP_WINDOW_S:g} s window; 0: backlog too small to tell); the worker followed at "
        f"{best_w:,.0f} readings/s (bounded by the bridge), caught up "
        + (f"{caught - t1:.0f} s after the resume" if caught else "not before the workers' pause")
    )
    if pz.workers_at is None:
        f.update(
            worker_capacity=best_w,
            worker_capacity_how="its peak after the bridge pause: bounded by the bridge "
            "(no worker pause, --worker-burst-s 0)",
        )


def worker_catchup(
    ph: Phase, pz: Pauses, timeline: list[Row], stats_mode: bool, share: float
) -> None:
    """The worker's capacity: its catch-up from a backlog in Kafka after the workers' pause."""
    assert pz.workers_at is not None and pz.workers_end is not None
    t0, t1 = pz.workers_at, pz.workers_end
    w = CATCHUP_WINDOW_S
    if stats_mode:  # each write at the worker's own time, the pause made explicit
        series = [freeze_gap([(at, n) for at, n, _ in pts], t0, t1) for pts in pz.trace if pts]
        src = "the workers' stats files, each write at its own time"
    else:
        series = [[(r[0], r[3] / share) for r in timeline]]
        src = "`vitals` records seen, scaled by the share of readings with vitals"
    in_kafka = interp([(r[0], float(r[2])) for r in timeline], t1)  # the bridge's, so far
    done = total_at(series, t1) if series else None
    f = ph.figures
    head = (
        f"  worker capacity: catch-up after a {t1 - t0:.0f} s pause of {ph.workers} worker(s) "
        f"(SIGSTOP; session timeout {pz.session_timeout:g} s"
        + (
            f", raised from the app's {APP_SESSION_TIMEOUT_S:g} s so the group keeps them"
            if pz.session_timeout > APP_SESSION_TIMEOUT_S
            else ""
        )
        + ")"
    )
    if in_kafka is None or done is None:
        ph.say(head + f": no figure (no worker progress around the resume in {src})")
        return
    backlog = in_kafka - done
    # Drained: the workers' count reached what the bridge had put in Kafka by the resume. The
    # drain time is taken to the first write that shows it (the worker writes once a second),
    # so backlog / drain time is a lower bound of the mean drain rate.
    reach = first_reach(series, in_kafka, t1)
    last_t = min(s[-1][0] for s in series)
    drain = reach[1] - t1 if reach is not None else None
    best = best_window(series, t1, reach[1] if reach is not None else last_t, w)
    mean = backlog / drain if drain else 0.0
    if drain is None:
        cap, how = best, f"best {w:g} s window; the backlog was not drained by the end"
    elif drain >= w + 2:
        cap, how = best, f"best {w:g} s window of a {drain:.1f} s drain from Kafka"
    elif drain >= 2.5:
        cap, how = mean, f"backlog / time to drain: {drain:.1f} s, too short for a {w:g} s window"
    else:  # within two writes of the count: the figure is mostly the writes' spacing
        cap = mean
        how = (
            f"backlog / time to drain, a lower bound only: drained within {drain:.1f} s and "
            "the worker writes its count once a second (a longer --worker-burst-s or more "
            "devices for a figure)"
        )
    f.update(
        worker_capacity=cap,
        worker_capacity_how=how,
        worker_backlog=backlog,
        worker_drain_s=drain,
        worker_best_window=best,
        worker_drain_mean=mean,
        worker_pause_s=t1 - t0,
        worker_session_timeout=pz.session_timeout,
    )
    ph.say(
        head
        + f", backlog {backlog:,.0f} readings in Kafka: "
        + (
            f"drained within {drain:.1f} s (the first write of the count that shows it)"
            if drain is not None
            else "not drained by the end"
        )
        + f"; best {w:g} s window "
        + (f"{best:,.0f}/s" if best else "-")
        + (f", backlog / time to drain >= {mean:,.0f}/s" if drain else "")
        + f" (rates from {src})"
    )
    ph.say(f"    worker capacity {cap:,.0f} readings/s ({how})")
    # A rebalance in the pause or the catch-up (a worker thrown out of the group, the snapshots
    # loaded again) would be in the figure: an assignment logged since the pause, or partitions
    # that changed in the stats files.
    moved = []
    for k, pts in enumerate(pz.trace):
        before = [p[2] for p in pts if p[0] <= t0]
        after = {p[2] for p in pts if p[0] > t0}
        if before and after - {before[-1]}:
            moved.append(f"worker-{k + 1} partitions {list(before[-1])} -> {sorted(after)}")
    since = sum(pz.assigned_since_pause)
    rebalanced = bool(since or moved or pz.rebalance_lines)
    f["worker_rebalanced"] = rebalanced
    if rebalanced:
        f["worker_capacity_how"] = how + "; WITH A REBALANCE in the catch-up"
        ph.say(
            f"    WARNING: a rebalance during the workers' pause or catch-up ({since} "
            "assignment(s) logged since the pause"
            + (f"; {'; '.join(moved)}" if moved else "")
            + "): the capacity includes it"
        )
        for ln in pz.rebalance_lines[:6]:
            ph.say(f"      {ln[:160]}")
    else:
        ph.say(
            "    no rebalance: no assignment logged since the pause (assignments in the whole run "
            f"per worker: {', '.join(str(n) for n in pz.assignments)}), partitions unchanged"
        )


def analyse(
    ph: Phase,
    a: argparse.Namespace,
    flog: dict[str, Any],
    seen: Seen,
    timeline: list[Row],
    sampler: ProcSampler,
    t_start: float,
    t_stop: float,
    pz: Pauses,
    rss_ready: dict[str, float],
    ceilings: dict[str, Rate] | None,
    ep: Any,
    rec_log: Path,
) -> None:
    log = flog["log"]
    devices = ph.devices
    # Neither pause nor what follows it is steady: the window, the lag and the latency figures
    # end where the first pause starts.
    t_pause = pz.first
    steady_end = t_pause or t_stop
    warm = min(30.0, (steady_end - t_start) * 0.2)
    w0, w1 = t_start + warm, steady_end
    span = max(1e-6, w1 - w0)
    pub_at = {(d, round(ts, 3)): wall for d, ts, _seq, wall, _f in log}
    by_dev: dict[str, list[float]] = defaultdict(list)
    for d, _ts, _seq, wall, _f in log:
        by_dev[d].append(wall)
    n_pub = sum(1 for r in log if w0 <= r[3] < w1)
    # The worker's progress: its stats file (every reading) when it writes one, else the
    # `vitals` records it emits (one per reading with vitals, tied to its publish by (device, ts)).
    stats_mode = any(r[5] >= 0 for r in timeline)
    col = 5 if stats_mode else 3
    share_v = max(1e-9, sum(1 for r in log if r[4] & 1) / max(1, len(log)))
    share = 1.0 if stats_mode else share_v
    n_pub_v = sum(1 for r in log if w0 <= r[3] < w1 and (stats_mode or r[4] & 1))
    lat = [(pub_at[(d, ts)], t - pub_at[(d, ts)]) for d, ts, t in seen.vitals if (d, ts) in pub_at]
    # what the lag counts: every message (stats file) or the vitals-bearing ones
    pub_v_times = sorted(r[3] for r in log if stats_mode or r[4] & 1)

    def at(t: float, c: int) -> float:
        i = bisect.bisect_left([r[0] for r in timeline], t)
        i = min(max(i, 0), len(timeline) - 1)
        return max(0, timeline[i][c])

    if stats_mode:  # processed by the end of the drain, of all published
        processed_v = int(max(0, timeline[-1][5]))
    else:
        processed_v = sum(1 for p, _ in lat if w0 <= p < w1)
    fleet_rate = n_pub / span
    bridge_rate = (at(w1, 2) - at(w0, 2)) / span
    worker_rate_v = (at(w1, col) - at(w0, col)) / span
    worker_rate = worker_rate_v / share
    stored_rate = (at(w1, 4) - at(w0, 4)) / span
    offered = devices / INTERVAL_S
    # lag over the steady window: messages published and not yet processed, in messages and
    # in seconds (how long ago the message the worker has reached was published)
    lag_pts = []
    lag_s: list[tuple[float, float]] = []
    for r in timeline:
        t = r[0]
        if w0 <= t <= w1:
            n_done = int(max(0, r[col]))
            lag_pts.append((t, bisect.bisect_right(pub_v_times, t) - n_done))
            reached = pub_v_times[min(n_done, len(pub_v_times) - 1)] if pub_v_times else t
            lag_s.append((t, max(0.0, t - reached) if n_done < len(pub_v_times) else 0.0))
    slope = 0.0
    if len(lag_pts) >= 3:
        xs = [p[0] - w0 for p in lag_pts]
        ys = [p[1] for p in lag_pts]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs) or 1e-9
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
    steady = [v for p, v in lat if w0 <= p < w1]
    thirds = [
        [v for p, v in lat if w0 + k * span / 3 <= p < w0 + (k + 1) * span / 3] for k in range(3)
    ]
    last_p99 = pct(thirds[2], 99)
    lag_thirds = [
        [v for t, v in lag_s if w0 + k * span / 3 <= t <= w0 + (k + 1) * span / 3] for k in range(3)
    ]
    last_lag = max(lag_thirds[2] or [float("nan")])
    if stats_mode:  # no per-reading latency: the lag in seconds by counts instead
        last_p99 = last_lag
        sustained = slope < 0.02 * offered and last_lag < 5.0 and processed_v >= 0.97 * len(log)
    else:
        sustained = (
            slope / share_v < 0.02 * offered and last_p99 < 5.0 and processed_v >= 0.97 * n_pub_v
        )
    f = ph.figures
    f.update(
        offered=offered,
        fleet_rate=fleet_rate,
        bridge_rate=bridge_rate,
        worker_rate=worker_rate,
        stored_rate=stored_rate,
        lag_slope=slope / share,
        progress="stats file" if stats_mode else "vitals topic",
        sustained=sustained,
        reading_p50=median(steady),
        reading_p99=pct(steady, 99),
        last_third_p99=last_p99,
    )
    ph.say(
        f"steady window {span:.0f} s (after {warm:.0f} s warm-up), {len(log):,} messages "
        f"published in all ({100 * share_v:.0f} % with vitals); fleet events: "
        f"{dict(sorted(flog['counts'].items()))}"
    )
    from _loadgen import generator_lines

    gen_lines, gen_figs = generator_lines(flog, offered)
    f.update(gen_figs)
    for line in gen_lines:
        ph.say(line)
    ph.say(
        "  worker progress from: "
        + (
            "its stats file (readings processed, every message)"
            if stats_mode
            else "the `vitals` topic (no stats file: the worker does not write one yet)"
        )
    )
    ph.say(
        f"  offered {offered:,.0f} msgs/s + bursts; fleet published {fleet_rate:,.0f}/s, "
        f"bridge produced {bridge_rate:,.0f}/s, worker processed {worker_rate:,.0f} "
        + (
            "readings/s"
            if stats_mode
            else f"readings/s ({worker_rate_v:,.0f} with vitals, scaled by their share)"
        )
        + f", storage wrote {stored_rate:,.0f} records/s"
    )
    if stats_mode:
        ph.say(
            f"  lag (published - processed): slope {slope:+,.1f} msgs/s; processed "
            f"{processed_v:,}/{len(log):,} published readings by the end of the drain"
        )
    else:
        ph.say(
            f"  lag (published - processed): slope {slope / share_v:+,.1f} msgs/s; "
            f"processed {processed_v:,}/{n_pub_v:,} vitals-bearing readings of the window"
        )
    ph.say(
        "  lag in seconds by counts (now - publish time of the message the worker has reached), "
        "max by third of the window: "
        + ", ".join(f"{max(t or [float('nan')]):.2f} s" for t in lag_thirds)
    )
    if stats_mode:
        ph.say(
            "  reading latency publish -> detector output: not per reading (no `vitals` "
            "records); publish -> alert record below is the latency figure"
        )
        ph.say(
            f"  sustained (lag slope < 2 % of offered, last-third lag < 5 s, >= 97 % "
            f"processed): {'YES' if sustained else 'NO'}"
        )
    else:
        ph.say(
            f"  reading latency publish -> detector output (vitals record seen): "
            f"p50 {median(steady):.3f} s, p99 {pct(steady, 99):.3f} s; by third of the window: "
            + ", ".join(f"p50 {median(t):.2f}/p99 {pct(t, 99):.2f}" for t in thirds)
        )
        ph.say(
            f"  sustained (lag slope < 2 % of offered, last third p99 < 5 s, >= 97 % "
            f"processed): {'YES' if sustained else 'NO'}"
        )
    # Kafka records per reading: what the bridge wrote to `readings` and the worker wrote
    # (outputs, snapshots), per reading the worker processed, over the whole run with the drain
    # (a window under lag would count readings the worker has not reached yet)
    last = timeline[-1]
    if stats_mode and last[6] >= 0 and last[5] > 0:
        n_readings = min(last[2], last[5])  # `readings` records of the processed readings
        per = (last[6] + n_readings) / last[5]
        f["kafka_records_per_reading"] = per
        ph.say(
            f"  Kafka records per reading (whole run): {per:.2f} = (worker records_out "
            f"{last[6]:,} + `readings` {n_readings:,}) / readings processed {last[5]:,}"
            + (
                f" ({last[2] - last[5]:,} readings not processed by the end of the drain)"
                if last[2] > last[5]
                else ""
            )
        )
    else:
        ph.say(
            "  Kafka records per reading: TODO, needs the worker's stats file "
            "(records_out; settings.faust.stats_file) and this app does not write it yet"
        )
    if devices >= TARGET_DEVICES_ONE_WORKER and ph.workers == 1:
        ph.say(
            f"  target: {TARGET_DEVICES_ONE_WORKER:,} devices sustained by one worker: "
            f"{verdict(sustained)}"
        )

    # catch-up capacities: the bridge's after its pause, the worker's after theirs
    bridge_catchup(ph, pz, timeline, col, share, pub_v_times)
    if pz.workers_at is not None and pz.workers_end is not None:
        worker_catchup(ph, pz, timeline, stats_mode, share)

    # alerts: publish -> alert record on the topic
    first: dict[str, tuple[dict[str, Any], float]] = {}
    for rec, t in seen.alerts:
        first.setdefault(rec["alert_id"], (rec, t))
    kinds: dict[str, int] = defaultdict(int)
    sos, falls, sos_det = [], [], []
    for rec, t in first.values():
        kinds[f"{rec['kind']}/{rec['severity']}"] += 1
        if t_pause and rec["detected_at"] >= t_pause:
            continue  # the pauses and what follows: latency includes a pause, not counted
        if rec["kind"] == "sos":
            p = pub_at.get((rec["device_id"], round(float(rec["ts"]), 3)))
            if p is not None:
                sos.append(t - p)
                sos_det.append(rec["detected_at"] - p)
        elif rec["kind"] == "fall" and rec["details"].get("detected_by") == "pipeline":
            walls = by_dev.get(rec["device_id"], [])
            i = bisect.bisect_right(walls, rec["detected_at"]) - 1
            if i >= 0:
                falls.append(t - walls[i])
    e2e = sos + falls
    f.update(alert_p50=median(e2e), alert_p99=pct(e2e, 99))
    ph.say(f"  alerts on the topic: {dict(sorted(kinds.items()))}")
    ph.say(
        f"  publish -> alert record (on `alerts`): SOS n={len(sos)} p50 {median(sos):.3f} s "
        f"p99 {pct(sos, 99):.3f} s (worker's detected_at: p50 {median(sos_det):.3f} s); "
        f"accel falls n={len(falls)} p50 {median(falls):.3f} s p99 {pct(falls, 99):.3f} s "
        "(from the chunk that completed the evidence)"
    )
    ph.say(
        f"  publish -> alert record, SOS and falls together: p50 {median(e2e):.3f} s, "
        f"p99 {pct(e2e, 99):.3f} s  target p99 < {TARGET_ALERT_P99:g} s: "
        f"{verdict(pct(e2e, 99) < TARGET_ALERT_P99 if e2e else None)}"
    )
    twilio_figures(ph, first, ep, t_pause, rec_log)

    # CPU and memory
    win = sampler.window(w0, w1)
    ph.say("  CPU (% of one core, mean over the steady window) and RSS (MiB, end of window):")
    total_cpu = 0.0
    for name, v in sorted(win.items(), key=lambda kv: -kv[1]["cpu"]):
        total_cpu += v["cpu"]
        ph.say(
            f"    {name:<16} {v['cpu']:6.1f} %  {v['rss_end']:8.1f} MiB"
            f"  (at load start {rss_ready.get(name, float('nan')):.1f})"
        )
    ph.say(f"    {'all':<16} {total_cpu:6.1f} %  of {100 * (os.cpu_count() or 1)} %")
    # Per CPU-second of the process itself: what a process would do with a core of its own,
    # the figure that survives a shared, loaded machine.
    wcpu = sum(win[n]["cpu"] for n in win if n.startswith("worker-")) / 100.0
    bcpu = win.get("bridge", {}).get("cpu", 0.0) / 100.0
    fcpu = win.get("fleet", {}).get("cpu", 0.0) / 100.0
    per_cpu = {
        "worker": worker_rate / wcpu if wcpu > 0.02 else float("nan"),
        "bridge": bridge_rate / bcpu if bcpu > 0.02 else float("nan"),
        "fleet": fleet_rate / fcpu if fcpu > 0.02 else float("nan"),
    }
    f.update(
        worker_per_cpu_s=per_cpu["worker"],
        bridge_per_cpu_s=per_cpu["bridge"],
        fleet_per_cpu_s=per_cpu["fleet"],
    )
    ph.say(
        f"  per CPU-second of the process: worker(s) {per_cpu['worker']:,.0f} readings, "
        f"bridge {per_cpu['bridge']:,.0f} msgs, load generator {per_cpu['fleet']:,.0f} msgs"
        " (all its processes, sampled; a core of its own would carry about this much)"
    )
    workers = [n for n in win if n.startswith("worker-")]
    w_end = sum(win[n]["rss_end"] for n in workers)
    w_ready = sum(rss_ready.get(n, 0.0) for n in workers)
    per_dev = (w_end - w_ready) * 2**20 / max(1, devices)
    f.update(
        worker_rss_end=w_end,
        worker_rss_ready=w_ready,
        rss_per_device=per_dev,
        worker_cpu=sum(win[n]["cpu"] for n in workers),
        cpu=win,
    )
    ph.say(
        f"  worker memory grown during the load: {w_end - w_ready:,.1f} MiB = "
        f"{per_dev:,.0f} B per device (an upper bound: includes warm-up allocations; the "
        "slope over several --devices is the per-device figure)"
    )
    if ceilings:
        mq = ceilings.get("mqtt")
        ph.say(
            "  ratio to the ceilings of this run: "
            + (f"fleet/MQTT delivered {fleet_rate / mq.per_s:.3f}, " if mq else "")
            + f"bridge/Kafka produce {bridge_rate / ceilings['kafka_produce'].per_s:.3f}, "
            f"worker/consume+decode {worker_rate / ceilings['kafka_decode'].per_s:.3f}, "
            f"storage/VictoriaMetrics {stored_rate / ceilings['vm'].per_s:.3f}"
        )


def twilio_figures(
    ph: Phase,
    first: dict[str, tuple[dict[str, Any], float]],
    ep: Any,
    t_pause: float | None,
    rec_log: Path,
) -> None:
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(ep.pg_dsn, row_factory=dict_row) as conn:
        sources = {
            r["source_alert_id"]: r["alert_id"]
            for r in conn.execute("select source_alert_id, alert_id from alert_sources").fetchall()
        }
        notes = conn.execute(
            "select id, alert_id, channel, sent_at from notifications "
            "where purpose = 'alert' and channel <> 'device'"
        ).fetchall()
    by_alert: dict[str, list[dict[str, Any]]] = defaultdict(list)
    note_alert = {}
    for r in notes:
        by_alert[r["alert_id"]].append(r)
        note_alert[str(r["id"])] = r["alert_id"]
    calls: dict[str, float] = {}
    first_req: dict[str, float] = {}
    sms_done: list[tuple[float, float]] = []  # (answered, arrived) of SMS requests
    n_req = 0
    if rec_log.exists():
        for line in rec_log.read_text().splitlines():
            t_req, t_end, _method, kind, n, _status = line.split()
            n_req += 1
            if kind == "call" and n in note_alert:
                aid = note_alert[n]
                calls[aid] = min(calls.get(aid, float("inf")), float(t_req))
                first_req[aid] = min(first_req.get(aid, float("inf")), float(t_req))
            elif kind == "sms":
                sms_done.append((float(t_end), float(t_req)))
    # An SMS request carries no id: match each sent SMS row to the request the proxy answered
    # last before the row's sent_at (the worker writes sent_at right after the answer).
    sms_done.sort()
    used: set[int] = set()
    for r in sorted(
        (r for r in notes if r["channel"] == "sms" and r["sent_at"]), key=lambda r: r["sent_at"]
    ):
        i = bisect.bisect_right(sms_done, (r["sent_at"] + 0.002, float("inf"))) - 1
        while i >= 0 and i in used:
            i -= 1
        if i >= 0 and r["sent_at"] - sms_done[i][0] < 1.0:
            used.add(i)
            aid = r["alert_id"]
            first_req[aid] = min(first_req.get(aid, float("inf")), sms_done[i][1])
    to_call, to_sent, to_first = [], [], []
    opened = 0
    for aid, (rec, t) in first.items():
        if t_pause and rec["detected_at"] >= t_pause:
            continue
        if sources.get(aid) != aid:
            continue  # merged into an open episode: nobody is called again for it
        opened += 1
        if aid in calls and rec["severity"] == "critical":
            to_call.append(calls[aid] - t)
        if aid in first_req:
            to_first.append(first_req[aid] - t)
        sent = [r["sent_at"] for r in by_alert.get(aid, []) if r["sent_at"] is not None]
        if sent:
            to_sent.append(min(sent) - t)
    ph.figures.update(
        twilio_p50=median(to_first),
        twilio_p99=pct(to_first, 99),
        call_p99=pct(to_call, 99),
        sent_p99=pct(to_sent, 99),
    )
    ph.say(
        f"  alert record -> first Twilio request: {opened} alerts opened an episode, "
        f"{n_req} requests reached the proxy"
    )
    ph.say(
        f"    first request of any channel (calls traced by outbox id, SMS matched by answer "
        f"time) n={len(to_first)} p50 {median(to_first):.3f} s p99 {pct(to_first, 99):.3f} s"
        f"  target p99 < {TARGET_TWILIO_P99:g} s: "
        f"{verdict(pct(to_first, 99) < TARGET_TWILIO_P99 if to_first else None)}"
    )
    ph.say(
        f"    first call of a critical alert n={len(to_call)} p50 {median(to_call):.3f} s "
        f"p99 {pct(to_call, 99):.3f} s"
    )
    ph.say(
        f"    first notification answered by Twilio (any channel, SMS-only "
        f"warnings too; outbox sent_at): n={len(to_sent)} p50 {median(to_sent):.3f} s "
        f"p99 {pct(to_sent, 99):.3f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", default="1000", help="device count, or a list: 1000,3000,6000")
    ap.add_argument("--minutes", type=float, default=2.0, help="steady load per phase")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="py-spy the worker(s) and the bridge")
    ap.add_argument(
        "--load",
        choices=("loadgen", "fleet"),
        default="loadgen",
        help="loadgen: pre-generated messages from several processes (bench/_loadgen.py); "
        "fleet: simulators.fleet.Fleet in one process (tops out near 3,000 devices)",
    )
    ap.add_argument(
        "--gen-devices-per-proc",
        type=int,
        default=5000,
        help="loadgen: devices per generator process",
    )
    ap.add_argument(
        "--mqtt-auth",
        action="store_true",
        help="a password per device and the ACL, as the demo (no MQTT ceiling: it is anonymous)",
    )
    ap.add_argument("--sos-per-min", type=float, default=20.0, help="SOS presses/min, whole fleet")
    ap.add_argument("--falls-per-min", type=float, default=6.0, help="falls/min, whole fleet")
    ap.add_argument(
        "--burst-s",
        type=float,
        default=20.0,
        help="bridge pause at the end of the load (0: none): the bridge's catch-up capacity",
    )
    ap.add_argument(
        "--settle-s",
        type=float,
        default=30.0,
        help="after the bridge pause, time for the pipeline to catch up before the workers' pause",
    )
    ap.add_argument(
        "--worker-burst-s",
        type=float,
        default=60.0,
        help="worker pause (all workers, SIGSTOP) while the fleet and the bridge go on (0: none): "
        "the worker's catch-up capacity from a backlog in Kafka",
    )
    ap.add_argument(
        "--worker-session-timeout",
        type=float,
        default=0.0,
        help="the workers' consumer-group session timeout, s (0: --worker-burst-s + 20, at most "
        f"{FAUST_REQUEST_TIMEOUT_S:g}; the app's is {APP_SESSION_TIMEOUT_S:g})",
    )
    ap.add_argument("--drain-s", type=float, default=90.0)
    ap.add_argument("--sample-s", type=float, default=2.0)
    ap.add_argument("--ceiling-messages", type=int, default=30_000)
    ap.add_argument("--no-ceilings", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep run folders (logs)")
    ap.add_argument("--keep-profiles", default="", help="copy py-spy raw profiles here")
    ap.add_argument("--json", default="", help="also write the figures here")
    a = ap.parse_args()
    sizes = [int(x) for x in a.devices.split(",") if x.strip()]
    # Mosquitto inherits it (one socket a device); raising the hard limit needs CAP_SYS_RESOURCE,
    # and past it the devices go to an edge broker (bench/_loadgen.brokers_for).
    from _loadgen import raise_nofile

    nofile = raise_nofile(max(sizes) + 4096)
    print(f"# open files limit (inherited by Mosquitto): {nofile[0]:,}", flush=True)
    print(machine_line("before"), flush=True)
    t0 = time.time()
    phases: list[Phase] = []
    ceilings: dict[str, Rate] | None = None
    for i, n in enumerate(sizes):
        print(
            f"\n=== phase {i + 1}/{len(sizes)}: {n:,} devices, {a.workers} worker(s) ===",
            flush=True,
        )
        ph, ceilings = run_phase(a, n, ceilings, want_ceilings=(i == 0 and not a.no_ceilings))
        phases.append(ph)
        print(machine_line(f"after phase {i + 1}"), flush=True)
    summary(phases, a)
    print(f"# took {time.time() - t0:.0f} s")
    print(machine_line("after"))
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                [{"devices": p.devices, "workers": p.workers, **p.figures} for p in phases],
                indent=1,
                default=str,
            )
        )


def summary(phases: list[Phase], a: argparse.Namespace) -> None:
    print(f"\n=== summary ({a.workers} worker(s), {a.minutes:g} min per phase) ===")
    print(
        f"{'devices':>8} {'offered/s':>10} {'fleet/s':>8} {'bridge/s':>9} {'worker/s':>9} "
        f"{'lag slope':>10} {'p99 read¹':>9} {'p99 alert':>10} {'p99 twilio':>11} "
        f"{'capacity':>9} {'brg cap':>8} {'sustained':>9} {'wkr CPU':>8} {'wkr RSS':>8} "
        f"{'gen msg/CPU-s':>13} {'gen kept':>8} {'rec/read':>8}"
    )
    for p in phases:
        f = p.figures
        p99_read = f.get(
            "last_third_p99" if f.get("progress") == "stats file" else "reading_p99", float("nan")
        )
        print(
            f"{p.devices:>8,} {f.get('offered', 0):>10,.0f} {f.get('fleet_rate', 0):>8,.0f} "
            f"{f.get('bridge_rate', 0):>9,.0f} {f.get('worker_rate', 0):>9,.0f} "
            f"{f.get('lag_slope', 0):>+10,.1f} "
            f"{p99_read:>8.2f}s "
            f"{f.get('alert_p99', float('nan')):>9.2f}s "
            f"{f.get('twilio_p99', float('nan')):>10.2f}s {f.get('worker_capacity', 0):>9,.0f} "
            f"{f.get('bridge_capacity', 0):>8,.0f} "
            f"{'yes' if f.get('sustained') else 'NO':>9} "
            f"{f.get('worker_cpu', 0):>7.0f}% {f.get('worker_rss_end', 0):>6.0f}MiB "
            f"{f.get('gen_per_cpu_s', f.get('fleet_per_cpu_s', float('nan'))):>13,.0f} "
            f"{({1.0: 'yes', 0.0: 'NO'}).get(f.get('gen_kept', -1), '-'):>8} "
            f"{f.get('kafka_records_per_reading', float('nan')):>8.2f}"
        )
    print(
        "¹ per reading (vitals topic), or the worst lag in seconds of the last third (stats "
        "file); gen: the load generator's own sending (CPU of its processes), kept = sent on "
        "schedule; rec/read: Kafka records per reading (needs the worker's stats file); "
        "capacity: the worker's catch-up from a backlog in Kafka (its own pause), brg cap: the "
        "bridge's from Mosquitto (its pause)"
    )
    ok = [p for p in phases if p.figures.get("sustained")]
    bad = [p for p in phases if not p.figures.get("sustained")]
    if ok:
        best = max(ok, key=lambda p: p.devices)
        after = [p for p in bad if p.devices > best.devices]
        knee_txt = (
            f"knee: sustained up to {best.devices:,} devices "
            f"({best.figures['worker_rate']:,.0f} readings/s)"
        )
        knee_txt += (
            f"; lag grows at {after[0].devices:,}"
            if after
            else "; no phase above it lagged (knee at least this)"
        )
    else:
        knee_txt = "knee: below the smallest phase (every phase lagged)"
    caps = [p.figures.get("worker_capacity", 0) for p in phases]
    print(knee_txt)
    top = max(phases, key=lambda p: p.figures.get("worker_capacity", 0))
    tf = top.figures
    print(
        f"worker catch-up capacity (best over phases): {max(caps or [0]):,.0f} readings/s with "
        f"{a.workers} worker(s) ({tf.get('worker_capacity_how', 'no figure')}"
        + (
            f"; {tf['framework_ratio']:.3f} of the framework ceiling"
            if "framework_ratio" in tf
            else ""
        )
        + f"); bridge {tf.get('bridge_capacity', 0):,.0f} msgs/s  target (2 workers) >= "
        f"{TARGET_KNEE_TWO_WORKERS:,}: "
        + (verdict(max(caps or [0]) >= TARGET_KNEE_TWO_WORKERS) if a.workers == 2 else "n/a")
    )
    if len(phases) >= 2:
        xs = [p.devices for p in phases]
        ys = [p.figures.get("worker_rss_end", 0) * 2**20 for p in phases]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        den = sum((x - mx) ** 2 for x in xs) or 1e-9
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den
        print(
            f"worker RSS slope over N: {slope:,.0f} B per device  target <= "
            f"{TARGET_STATE_PER_DEVICE:,}: {verdict(slope <= TARGET_STATE_PER_DEVICE)}"
        )


if __name__ == "__main__":
    main()
