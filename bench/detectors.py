"""bench/detectors: the pure detectors over arrays, each against a plain numpy op of the same size.

Single-threaded (BLAS/OpenMP threads pinned to 1), so "per core" is what it says. Every figure is
measured twice: per wall second and per CPU second of this process (the CPU-second figure is the
one to trust on a loaded, shared machine; the ratio to the numpy reference is taken from the same
clock). The reference is measured in the same run, interleaved with the detector, so the ratio
shows how far a detector is from a memory-bandwidth-bound numpy floor whatever the machine's load.

Sections:
- fall: ``FallDetector.feed`` streaming 2 s chunks at 25 Hz (50 samples, the watch's shape) from
  many devices in turn (as the worker sees them), and one device fed 60 s chunks; reference
  ``np.linalg.norm(chunk, axis=1)`` over the same chunks (same call count) and over all at once;
- geofence: ``Circle/Polygon.distances_m`` over N fixes, ``GeofenceMonitor.observe`` per fix (the
  pipeline's per-reading path); reference ``np.hypot`` over the same N;
- news2: ``score_arrays`` over N readings, ``score`` and ``VitalsMonitor.observe`` per reading;
  reference one ``np.searchsorted`` band lookup over the same N;
- pipeline in-process: ``DetectorPipeline`` (all detectors, the state mappings as dicts, no Kafka,
  no Faust, detectors kept live as in the worker) over fleet telemetry made by
  ``simulators.fleet.Fleet.telemetry``, split by stage (generate, bridge validation, JSON codec,
  detectors reading by reading and ``process_batch`` in batches of 500), the memory the worker
  holds per device (and where it goes: each kind of live detector, the state dicts, the
  pipeline's own caches) and the state each device's snapshot stores.

Usage: bench/detectors [--devices 200] [--minutes 5] [--fixes 1000000] [--quick]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import orjson  # noqa: E402
from _common import Timer, fmt_rate, machine_line, verdict  # noqa: E402

from anxin.live_state import state_json  # noqa: E402

TARGET_ACCEL = 1_000_000  # accel samples/s per core (issue 9)
TARGET_STATE = 4096  # bytes of state per device


def best_of(fn: Callable[[], Any], repeat: int) -> Timer:
    """The run with the least CPU time out of ``repeat`` (the least disturbed by neighbours)."""
    best: Timer | None = None
    for _ in range(repeat):
        gc.collect()
        with Timer() as t:
            fn()
        if best is None or t.cpu < best.cpu:
            best = t
    assert best is not None
    return best


def line(
    name: str, n: float, unit: str, t: Timer, ref: Timer | None = None, target: float | None = None
) -> None:
    cpu_rate = n / max(t.cpu, 1e-9)
    wall_rate = n / max(t.wall, 1e-9)
    text = f"{name:<44} {fmt_rate(cpu_rate):>13} {unit}/CPU-s  ({fmt_rate(wall_rate)} /wall-s)"
    if ref is not None:
        ref_rate = n / max(ref.cpu, 1e-9)
        text += f"  numpy ref {fmt_rate(ref_rate)}/CPU-s  ratio {cpu_rate / ref_rate:.3f}"
    if target is not None:
        text += f"  target >= {fmt_rate(target)}: {verdict(cpu_rate >= target)}"
    print(text, flush=True)


# -- fall ----------------------------------------------------------------------------------------
def bench_fall(devices: int, minutes: float, repeat: int) -> float:
    from detectors.fall import FallDetector
    from simulators import motion

    rng = np.random.default_rng(7)
    rate, chunk_s = 25, 2.0
    n = int(rate * chunk_s)
    chunks_per_dev = int(minutes * 60 / chunk_s)
    # The simulator's own generator: quiet wear, and a fall segment in every tenth device.
    streams: list[list[np.ndarray]] = []
    for d in range(devices):
        mount = motion.random_mount("wrist", rng)
        g = motion.quiet(minutes * 60, "wrist", rng, rate, mount)
        if d % 10 == 0:
            seg = motion.segment(
                str(rng.choice(np.array(motion.FALLS))), "wrist", rng, rate, 8.0, mount
            )
            k = min(len(seg.g), len(g) // 2)
            g[len(g) // 2 : len(g) // 2 + k] = seg.g[:k]
        streams.append(
            [np.ascontiguousarray(g[i * n : (i + 1) * n]) for i in range(chunks_per_dev)]
        )
    samples = devices * chunks_per_dev * n
    t0 = 1.7e9

    def run_fall() -> int:
        dets = [FallDetector("wrist") for _ in range(devices)]
        found = 0
        for i in range(chunks_per_dev):  # round-robin over devices, as the worker sees them
            ts = t0 + i * chunk_s
            for d in range(devices):
                found += len(dets[d].feed(ts, rate, streams[d][i]))
        for det in dets:
            found += len(det.flush())
        return found

    def run_ref() -> None:
        for i in range(chunks_per_dev):
            for d in range(devices):
                np.linalg.norm(streams[d][i], axis=1)

    whole = [np.concatenate(s) for s in streams]

    def run_ref_whole() -> None:
        for g in whole:
            np.linalg.norm(g, axis=1)

    findings = run_fall()
    t_fall = best_of(run_fall, repeat)
    t_ref = best_of(run_ref, repeat)
    print(
        f"fall: {devices} wrist devices x {chunks_per_dev} chunks of {n} samples "
        f"({rate} Hz, {chunk_s:g} s), {samples:,} samples, {findings} findings "
        f"(falls inserted in {len(range(0, devices, 10))} devices)"
    )
    line("  FallDetector.feed, 50-sample chunks", samples, "samples", t_fall, t_ref, TARGET_ACCEL)

    # One device, 60 s chunks: the detector's own cost without the per-call overhead.
    big = int(rate * 60)

    def run_big() -> None:
        for g in whole[: max(1, devices // 4)]:
            det = FallDetector("wrist")
            for j in range(0, len(g), big):
                det.feed(t0 + j / rate, rate, g[j : j + big])
            det.flush()

    def run_big_ref() -> None:
        for g in whole[: max(1, devices // 4)]:
            for j in range(0, len(g), big):
                np.linalg.norm(g[j : j + big], axis=1)

    big_samples = sum(len(g) for g in whole[: max(1, devices // 4)])
    line(
        "  FallDetector.feed, 1500-sample chunks",
        big_samples,
        "samples",
        best_of(run_big, repeat),
        best_of(run_big_ref, repeat),
        TARGET_ACCEL,
    )
    t_whole = best_of(run_ref_whole, repeat)
    print(
        f"  (floor: np.linalg.norm over each device's {len(whole[0]):,} samples at once: "
        f"{fmt_rate(samples / max(t_whole.cpu, 1e-9))} samples/CPU-s)"
    )
    return samples / max(t_fall.cpu, 1e-9)


# -- geofence ------------------------------------------------------------------------------------
def bench_geofence(fixes: int, repeat: int) -> None:
    from zoneinfo import ZoneInfo

    from detectors.geofence import Circle, GeofenceMonitor, Polygon
    from simulators import gps

    rng = np.random.default_rng(3)
    home = (37.5135, 122.1203)
    east, north = rng.normal(0, 150, fixes), rng.normal(0, 150, fixes)
    lats, lons = gps.offset(home[0], home[1], east, north)
    lats, lons = np.asarray(lats, np.float64), np.asarray(lons, np.float64)
    circle = Circle("home", home[0], home[1], 120.0)
    poly = Polygon(
        "day-centre",
        ((37.5101, 122.1101), (37.5122, 122.1101), (37.5122, 122.1135), (37.5101, 122.1135)),
    )
    print(f"geofence: {fixes:,} fixes around one home")
    t_ref = best_of(lambda: np.hypot(lats, lons), repeat)
    line(
        "  Circle.distances_m (vectorised)",
        fixes,
        "fixes",
        best_of(lambda: circle.distances_m(lats, lons), repeat),
        t_ref,
    )
    sub = min(fixes, 200_000)  # the polygon makes an N x vertices matrix
    t_ref_sub = best_of(lambda: np.hypot(lats[:sub], lons[:sub]), repeat)
    line(
        "  Polygon(4).distances_m (vectorised)",
        sub,
        "fixes",
        best_of(lambda: poly.distances_m(lats[:sub], lons[:sub]), repeat),
        t_ref_sub,
    )
    per = min(fixes, 50_000)
    la, lo = lats[:per].tolist(), lons[:per].tolist()
    acc = rng.uniform(5, 60, per).tolist()

    def run_monitor() -> None:
        m = GeofenceMonitor([circle], ZoneInfo("Asia/Shanghai"))
        ts = 1.7e9
        for i in range(per):
            m.observe(ts + i * 10.0, la[i], lo[i], acc[i])

    t_ref_per = best_of(lambda: np.hypot(lats[:per], lons[:per]), repeat)
    line(
        "  GeofenceMonitor.observe (per fix, streaming)",
        per,
        "fixes",
        best_of(run_monitor, repeat),
        t_ref_per,
    )


# -- NEWS2 ---------------------------------------------------------------------------------------
def bench_news2(n: int, repeat: int) -> None:
    from detectors import news2

    rng = np.random.default_rng(5)
    rr = np.round(rng.normal(17, 3, n))
    spo2 = np.clip(np.round(rng.normal(96, 2, n)), 70, 100)
    o2 = (rng.random(n) < 0.1).astype(np.float64)
    sbp = np.round(rng.normal(125, 20, n))
    hr = np.round(rng.normal(75, 12, n))
    acvpu = (rng.random(n) < 0.02).astype(np.float64)
    temp = np.round(rng.normal(36.8, 0.5, n), 1)
    edges = np.array([40.0, 50.0, 90.0, 110.0, 130.0])
    print(f"news2: {n:,} readings (7 parameters each)")
    t_ref = best_of(lambda: np.searchsorted(edges, hr), repeat)
    line(
        "  score_arrays (vectorised)",
        n,
        "scores",
        best_of(lambda: news2.score_arrays(rr, spo2, o2, sbp, hr, acvpu, temp), repeat),
        t_ref,
    )
    per = min(n, 50_000)
    dicts = [
        {"rr": rr[i], "spo2": spo2[i], "hr": hr[i], "sbp": sbp[i], "temp": temp[i]}
        for i in range(per)
    ]
    dicts = [{k: float(v) for k, v in d.items()} for d in dicts]
    t_ref_per = best_of(lambda: np.searchsorted(edges, hr[:per]), repeat)
    line(
        "  score (per reading dict)",
        per,
        "scores",
        best_of(lambda: [news2.score(d) for d in dicts], repeat),
        t_ref_per,
    )
    obs = min(per, 20_000)

    def run_monitor() -> None:
        m = news2.VitalsMonitor()
        for i in range(obs):
            m.observe(1.7e9 + i * 10.0, dicts[i], "W001")

    line(
        "  VitalsMonitor.observe (per reading, streaming)",
        obs,
        "readings",
        best_of(run_monitor, repeat),
        best_of(lambda: np.searchsorted(edges, hr[:obs]), repeat),
    )


# -- the whole detector pipeline in-process ------------------------------------------------------
def bench_pipeline_inprocess(devices: int, minutes: float, repeat: int) -> None:
    from anxin.core.registry import Registry
    from detectors.pipeline import DetectorPipeline
    from ingest.telemetry import Accepted, validate_telemetry
    from simulators.fleet import Fleet, demo_registry

    reg_dict = demo_registry(devices)
    registry = Registry.model_validate(reg_dict)
    fleet = Fleet(reg_dict, "127.0.0.1", 1, interval_s=10.0, sos_rate=0.0)
    for dev in fleet.devices.values():
        dev.rate, dev.chunk_s, dev.interval_s = 25, 2.0, 10.0
    devs = list(fleet.devices.values())
    per_dev = max(1, int(minutes * 6))  # one report per 10 s
    t0 = time.time() - per_dev * 10.0
    payloads: list[tuple[str, bytes, float]] = []
    with Timer() as t_gen:
        for i in range(per_dev):
            for d in devs:
                now = t0 + i * 10.0
                p = fleet.telemetry(d, now)
                p["seq"] = i
                topic = f"anxin/v1/devices/{d.device_id}/telemetry"
                payloads.append((topic, orjson.dumps(p, option=orjson.OPT_SERIALIZE_NUMPY), now))
    fleet.pool.sel.close()
    n = len(payloads)
    print(
        f"pipeline in-process: {devices} devices x {per_dev} reports (every 10 s, 2 s of 25 Hz "
        f"accel, vitals, GPS), {n:,} messages of ~{sum(len(p[1]) for p in payloads) // n} B"
    )
    line("  generate (Fleet.telemetry + orjson)", n, "msgs", t_gen)

    readings: list[bytes] = []

    def run_validate() -> None:
        readings.clear()
        for topic, raw, now in payloads:
            v = validate_telemetry(topic, raw, now + 2.0)
            assert isinstance(v, Accepted)
            r = v.reading
            r["resident_id"] = "R" + v.device_id[1:]
            readings.append(orjson.dumps(r))

    line("  bridge: validate_telemetry + dumps", n, "msgs", best_of(run_validate, repeat))
    line(
        "  codec: orjson.loads of the Kafka record",
        n,
        "msgs",
        best_of(lambda: [orjson.loads(r) for r in readings], repeat),
    )
    decoded = [orjson.loads(r) for r in readings]
    states: dict[str, dict[str, Any]] = {}
    batch = 500  # the worker's stream.take batch (faust batch_size)

    def run_detect(batched: bool = False) -> None:
        nonlocal states
        dev_state: dict[str, Any] = {}
        res_state: dict[str, Any] = {}
        # As the worker runs it: detectors live, their state written only when saved.
        pipe = DetectorPipeline(lambda: registry, dev_state, res_state, fall_save_every_s=math.inf)
        if batched:
            for i in range(0, n, batch):
                taken = [dict(r) for r in decoded[i : i + batch]]
                pipe.process_batch(taken, float(taken[-1]["received_at"]))
        else:
            for r in decoded:
                now = float(r["received_at"])
                pipe.process(dict(r), now)
        for device_id in dev_state:
            pipe.save_live_state(device_id)  # what a snapshot writes
        states = {"device": dev_state, "resident": res_state}

    t_det = best_of(run_detect, repeat)
    line("  detectors: DetectorPipeline.process (NEWS2 fused)", n, "msgs", t_det)
    accel_samples = n * 50
    print(
        f"    = {fmt_rate(accel_samples / max(t_det.cpu, 1e-9))} accel samples/CPU-s through "
        f"all detectors"
    )
    t_batch = best_of(lambda: run_detect(True), repeat)
    line(f"  detectors: process_batch, batches of {batch}", n, "msgs", t_batch)
    # Memory the worker keeps per device: the live state dicts (device and resident, as Python
    # objects) plus the live detectors and monitors, measured with tracemalloc over a fresh
    # pass; between snapshots, with every device's snapshot form made (what a snapshot makes
    # for one record at a time: the states with their forms, new dicts), and after a snapshot
    # (the forms let go once serialised, anxin/live_state.py).
    import tracemalloc

    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    dev_state2: dict[str, Any] = {}
    res_state2: dict[str, Any] = {}
    pipe2 = DetectorPipeline(lambda: registry, dev_state2, res_state2, fall_save_every_s=math.inf)
    for r in decoded:
        now = float(r["received_at"])
        pipe2.process(dict(r), now)
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - base
    owners = {d: registry.device_owner(d) for d in dev_state2}
    forms = [
        (pipe2.device_form(device_id), pipe2.resident_form(owner[0]) if owner else None)
        for device_id, owner in owners.items()
    ]
    gc.collect()
    saved = tracemalloc.get_traced_memory()[0] - base
    del owners, forms
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] - base
    pipe2._live.clear()
    pipe2._resident_live.clear()
    gc.collect()
    dicts = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    nd = max(1, len(dev_state2))
    mem_per_device = max(held, after) / nd
    print(
        f"  worker memory per device (tracemalloc: live state dicts + live detectors, "
        f"{len(res_state2) / nd:.2f} residents per device): {held / nd:,.0f} B between "
        f"snapshots, {after / nd:,.0f} B after one  target <= {TARGET_STATE:,}: "
        f"{verdict(mem_per_device <= TARGET_STATE)} (live detectors "
        f"{(after - dicts) / nd:,.0f} B, state dicts {dicts / nd:,.0f} B); "
        f"{saved / nd:,.0f} B while a record is serialised (its forms made, let go after)"
    )
    print("    of which: " + _breakdown(registry, decoded), flush=True)
    dev_bytes = [len(state_json(s)) for s in states["device"].values()]
    res_bytes = [len(state_json(s)) for s in states["resident"].values()]
    per_device = (sum(dev_bytes) + sum(res_bytes)) / max(1, len(dev_bytes))
    print(
        f"  snapshot state per device (JSON as the worker's snapshots store it): device "
        f"{np.mean(dev_bytes):,.0f} B (max {max(dev_bytes):,}), "
        f"resident {np.mean(res_bytes):,.0f} B; "
        f"{per_device:,.0f} B per device  target <= {TARGET_STATE:,}: "
        f"{verdict(per_device <= TARGET_STATE)}"
    )


def _breakdown(registry: Any, decoded: list[dict[str, Any]]) -> str:
    """Where the worker's memory per device goes: a fresh pipeline over the same readings,
    its parts let go one by one (tracemalloc, bytes per device)."""
    import tracemalloc

    from detectors.pipeline import DetectorPipeline

    dev: dict[str, Any] = {}
    res: dict[str, Any] = {}
    gc.collect()
    tracemalloc.start()
    pipe = DetectorPipeline(lambda: registry, dev, res, fall_save_every_s=math.inf)
    for r in decoded:
        pipe.process(dict(r), float(r["received_at"]))
    nd = max(1, len(dev))
    devices, residents = pipe._live, pipe._resident_live

    def drop(holders: dict[str, Any], attr: str) -> Callable[[], None]:
        def let_go() -> None:
            for holder in holders.values():
                setattr(holder, attr, None)

        return let_go

    def holders() -> None:
        devices.clear()
        residents.clear()

    parts: dict[str, float] = {}
    for name, let_go in (
        ("fall detectors", drop(devices, "fall")),
        ("wander monitors", drop(devices, "wander")),
        ("device health", drop(devices, "health")),
        ("NEWS2 monitors", drop(residents, "monitor")),
        ("live holders", holders),
        ("resident states", res.clear),
        ("device states", dev.clear),
    ):
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        let_go()
        gc.collect()
        parts[name] = (before - tracemalloc.get_traced_memory()[0]) / nd
    rest = tracemalloc.get_traced_memory()[0] / nd  # what the pipeline object still holds
    tracemalloc.stop()
    text = ", ".join(f"{k} {v:,.0f} B" for k, v in parts.items())
    return f"{text}, the pipeline's caches and timers (and allocator free lists) {rest:,.0f} B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=200, help="fall: devices fed in turn")
    ap.add_argument("--minutes", type=float, default=5.0, help="fall: minutes of accel each")
    ap.add_argument("--fixes", type=int, default=1_000_000, help="geofence/news2 array size")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (best CPU time kept)")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    a = ap.parse_args()
    if a.quick:
        a.devices, a.minutes, a.fixes, a.repeat = 10, 0.5, 10_000, 1
    print(machine_line("before"), flush=True)
    w0 = time.perf_counter()
    bench_fall(a.devices, a.minutes, a.repeat)
    bench_geofence(a.fixes, a.repeat)
    bench_news2(a.fixes, a.repeat)
    bench_pipeline_inprocess(a.devices, a.minutes, a.repeat)
    print(f"# took {time.perf_counter() - w0:.0f} s")
    print(machine_line("after"))


if __name__ == "__main__":
    main()
