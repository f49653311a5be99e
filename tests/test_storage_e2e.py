"""Storage end to end: MQTT → bridge → Kafka → ``anxin storage run`` → VictoriaMetrics → readers.

The writer runs as its own process (as in production) against a VictoriaMetrics of this module,
started by the same supervisor with the flags the writer needs (``VICTORIAMETRICS_FLAGS``:
``-dedup.minScrapeInterval=1ms`` makes a replayed point overwrite). The outage test stops a real
VictoriaMetrics process and starts it again on the same port and data folder.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from anxin.processes import Child, ProcessGroup
from anxin.services import Endpoints, Supervisor
from storage.config import VICTORIAMETRICS_FLAGS
from storage.points import motion_summary
from storage.readers import VictoriaMetricsReader
from tests.kafka_helpers import collect
from tests.test_e2e_skeleton import PREFIX, mosquitto_pub

DEVICES = {"V051": "R051", "V052": "R052", "V053": "R053"}


@dataclass
class StorageVM(Supervisor):
    """The supervisor's VictoriaMetrics, with the flags the storage writer needs."""

    def _spawn(self, name: str, argv: list[str], *args: Any, **kwargs: Any) -> Any:
        if name == "victoriametrics":
            names = {flag.split("=")[0] for flag in VICTORIAMETRICS_FLAGS}
            argv = [a for a in argv if a.split("=")[0] not in names] + list(VICTORIAMETRICS_FLAGS)
        return super()._spawn(name, argv, *args, **kwargs)


@dataclass
class Store:
    vm_url: str
    writer: Child
    stats_file: Path
    reader: VictoriaMetricsReader

    def stats(self) -> dict[str, Any]:
        try:  # written atomically (tmp + rename): whole or not there yet
            data: dict[str, Any] = json.loads(self.stats_file.read_text())
            return data
        except FileNotFoundError:  # before the writer's first report
            return {}

    def export(self, selector: str, start: float, end: float) -> list[dict[str, Any]]:
        flush(self.vm_url)
        return list(self.reader.export(selector, start, end))


def flush(vm_url: str) -> None:
    """Make just-written points searchable now instead of in ~30 s (DESIGN.md)."""
    urllib.request.urlopen(urllib.request.Request(f"{vm_url}/internal/force_flush"), timeout=10)


def wait_for(what: str, check: Any, timeout: float = 90.0) -> Any:
    """Poll ``check`` until it returns something truthy (a probe loop, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    delay = 0.1
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def start_writer(
    pipeline: ProcessGroup, run_root: Path, name: str, vm_url: str, **env: str
) -> tuple[Child, Path]:
    ready = run_root / f"{name}.ready"
    stats = run_root / f"{name}.stats.json"
    child = pipeline.spawn(
        name,
        "storage",
        "run",
        "--ready-file",
        str(ready),
        "--stats-file",
        str(stats),
        env={"ANXIN_INFLUX__URL": vm_url, "ANXIN_STORAGE__GROUP_ID": f"anxin-{name}", **env},
    )
    pipeline.wait_until(child, ready.exists)
    return child, stats


@pytest.fixture(scope="module")
def store(pipeline: ProcessGroup, run_root: Path) -> Iterator[Store]:
    sup = StorageVM(run_root / "storage-vm", only=("victoriametrics",))
    ep = sup.start()
    try:
        writer, stats = start_writer(pipeline, run_root, "storage-writer", ep.vm_url)
        reader = VictoriaMetricsReader(ep.vm_url)
        yield Store(ep.vm_url, writer, stats, reader)
        reader.close()
        pipeline.stop(writer)
    finally:
        sup.stop()


def payload(i: int, t: float, seq: int) -> dict[str, Any]:
    """A plausible reading: slow waves in every vital, BP every 10th, an accel chunk."""
    chunk = [[0.02 * math.sin(i + k), 0.01, 1.0 + 0.3 * math.sin(k / 3 + i)] for k in range(25)]
    vitals: dict[str, Any] = {
        "hr": round(72 + 9 * math.sin(i / 9) + 3 * math.sin(i * 1.7)),
        "spo2": round(96 + 1.5 * math.sin(i / 13)),
        "rr": round(16 + 2 * math.sin(i / 11)),
        "temp": round(36.8 + 0.3 * math.sin(i / 30), 1),
    }
    if i % 10 == 0:
        vitals |= {
            "sbp": round(128 + 8 * math.sin(i / 20)),
            "dbp": round(80 + 4 * math.sin(i / 20)),
        }
    return {
        "ts": round(t, 3),
        "seq": seq,
        "battery": round(0.9 - i * 0.001, 3),
        "worn": i % 17 != 0,
        "vitals": vitals,
        "accel": {"rate": 25, "g": chunk},
        "location": {"lat": 37.5135 + i * 1e-5, "lon": 122.1203 - i * 1e-5, "acc": 5 + i % 7},
    }


def publish(services: Endpoints, by_device: dict[str, list[dict[str, Any]]]) -> None:
    for device, payloads in by_device.items():
        mosquitto_pub(
            services, f"{PREFIX}/devices/{device}/telemetry", [orjson.dumps(p) for p in payloads]
        )


def seqs_in(store: Store, lo: int, hi: int, start: float, end: float) -> list[int]:
    """Every stored ``seq`` in [lo, hi) of the test devices (one per stored reading)."""
    found: list[int] = []
    for s in store.export('{__name__="device_seq",device=~"V051|V052|V053"}', start, end):
        found += [int(v) for v in s["values"] if lo <= v < hi]
    return found


N_PER_DEVICE = 120
SEQ0 = 5_000_000


@pytest.fixture(scope="module")
def published(services: Endpoints, store: Store) -> dict[str, list[dict[str, Any]]]:
    """120 readings a device, 10 s apart, the newest now: the last 20 minutes of three watches."""
    t0 = time.time()
    by_device = {
        device: [
            payload(i, t0 - (N_PER_DEVICE - 1 - i) * 10 + d * 0.25, SEQ0 + d * 1000 + i)
            for i in range(N_PER_DEVICE)
        ]
        for d, device in enumerate(DEVICES)
    }
    publish(services, by_device)
    return by_device


def window(by_device: dict[str, list[dict[str, Any]]]) -> tuple[float, float]:
    ts = [p["ts"] for ps in by_device.values() for p in ps]
    return min(ts) - 1, max(ts) + 1


def test_every_reading_published_over_mqtt_is_in_victoriametrics(
    store: Store, published: dict[str, list[dict[str, Any]]]
) -> None:
    start, end = window(published)
    total = N_PER_DEVICE * len(DEVICES)
    wait_for(
        "all readings stored", lambda: len(seqs_in(store, SEQ0, SEQ0 + 3000, start, end)) >= total
    )
    seqs = seqs_in(store, SEQ0, SEQ0 + 3000, start, end)
    expected = sorted(p["seq"] for ps in published.values() for p in ps)
    assert sorted(seqs) == expected  # each reading exactly once

    # Spot checks: values, tags (resident and device only) and times (device ts, ms precision).
    series = store.export(
        '{__name__=~"vitals_.*|motion_peak|location_lat",device="V052"}', start, end
    )
    by_name = {s["metric"]["__name__"]: s for s in series}
    assert {frozenset(s["metric"]) for s in series} == {
        frozenset({"__name__", "resident", "device"})
    }
    assert all(s["metric"]["resident"] == "R052" for s in series)
    sent = published["V052"]
    hr = dict(zip(by_name["vitals_hr"]["timestamps"], by_name["vitals_hr"]["values"], strict=True))
    assert len(hr) == N_PER_DEVICE
    for p in sent[::17]:
        assert hr[round(p["ts"] * 1000)] == p["vitals"]["hr"]
    sbp = by_name["vitals_sbp"]
    assert len(sbp["values"]) == N_PER_DEVICE // 10
    temp = dict(
        zip(by_name["vitals_temp"]["timestamps"], by_name["vitals_temp"]["values"], strict=True)
    )
    assert temp[round(sent[-1]["ts"] * 1000)] == sent[-1]["vitals"]["temp"]
    peak = dict(
        zip(by_name["motion_peak"]["timestamps"], by_name["motion_peak"]["values"], strict=True)
    )
    want = motion_summary(sent[5]["accel"]["g"])
    assert want is not None
    assert peak[round(sent[5]["ts"] * 1000)] == pytest.approx(want["peak"])
    lat = by_name["location_lat"]
    assert lat["values"][-1] == pytest.approx(sent[-1]["location"]["lat"])

    stats = store.stats()
    assert stats["records_written"] >= total and stats["store_up"] is True


def test_readers_give_latest_vitals_series_and_positions(
    store: Store, published: dict[str, list[dict[str, Any]]]
) -> None:
    start, end = window(published)
    total = N_PER_DEVICE * len(DEVICES)
    wait_for("stored", lambda: len(seqs_in(store, SEQ0, SEQ0 + 3000, start, end)) >= total)
    last = published["V051"][-1]
    latest = store.reader.latest_vitals("R051")
    assert latest["hr"].value == last["vitals"]["hr"]
    assert latest["hr"].ts == pytest.approx(last["ts"], abs=1e-3)
    assert latest["hr"].device == "V051"
    assert latest["temp"].value == last["vitals"]["temp"]
    assert latest["sbp"].value == published["V051"][-10]["vitals"]["sbp"]

    series = store.reader.vitals_series("R051", start, end)
    w001 = [s for s in series["hr"] if s.device == "V051"]
    assert [s.value for s in w001] == [p["vitals"]["hr"] for p in published["V051"]]
    assert [round(s.ts, 3) for s in w001] == [p["ts"] for p in published["V051"]]

    coarse = store.reader.vitals_series("R051", start, end, step=300)
    assert 3 <= len(coarse["hr"]) <= 6
    assert all(60 <= s.value <= 85 for s in coarse["hr"])

    positions = store.reader.last_positions("V051", limit=5, since=start)
    assert [(round(p.ts, 3), p.lat, p.lon, p.acc) for p in positions] == [
        (p["ts"], p["location"]["lat"], p["location"]["lon"], p["location"]["acc"])
        for p in published["V051"][-5:]
    ]


async def _produce(bootstrap: str, topic: str, records: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    try:
        for r in records:
            await producer.send(topic, orjson.dumps(r), key=r["device_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


def test_a_replay_of_the_same_readings_does_not_double_them(
    services: Endpoints, store: Store, published: dict[str, list[dict[str, Any]]]
) -> None:
    start, end = window(published)
    total = N_PER_DEVICE * len(DEVICES)
    wait_for("stored", lambda: len(seqs_in(store, SEQ0, SEQ0 + 3000, start, end)) >= total)
    # The very records the bridge put on Kafka, delivered a second time (as after a writer crash
    # before its commit, or a bridge redelivery).
    records = collect(
        services.kafka_bootstrap,
        "readings",
        match=lambda r: SEQ0 <= r.get("seq", -1) < SEQ0 + 3000,
        until=lambda found: len(found) >= total,
    )
    assert len(records) == total
    before = store.stats()["records_written"]
    asyncio.run(_produce(services.kafka_bootstrap, "readings", records))
    wait_for("replay written", lambda: store.stats().get("records_written", 0) >= before + total)
    seqs = seqs_in(store, SEQ0, SEQ0 + 3000, start, end)
    assert len(seqs) == total and len(set(seqs)) == total
    hr = store.export('{__name__="vitals_hr",device="V051"}', start, end)
    assert len(hr[0]["values"]) == N_PER_DEVICE


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_store_down_loses_nothing_and_alerts_keep_flowing(
    services: Endpoints, pipeline: ProcessGroup, run_root: Path
) -> None:
    """A real VictoriaMetrics stopped while readings (and SOS presses) flow, then restarted."""
    vm_dir = run_root / "storage-vm-outage"
    sup = StorageVM(vm_dir, only=("victoriametrics",))
    ep = sup.start()
    port = ep.vm_port  # the restart must come back here: the writer knows this address
    writer, stats_file = start_writer(
        pipeline, run_root, "storage-writer-outage", ep.vm_url, ANXIN_STORAGE__RETRY_MAX_S="2"
    )
    store = Store(ep.vm_url, writer, stats_file, VictoriaMetricsReader(ep.vm_url))
    seq0, waves, per_wave = 6_000_000, 10, 20
    sent: dict[str, list[dict[str, Any]]] = {"V051": [], "V052": []}
    try:
        sup.stop()  # the store is gone: SIGTERM, process exited
        outage_start = time.monotonic()
        rss = [_rss_kib(writer.proc.pid)]
        t0 = time.time()
        for w in range(waves):
            wave: dict[str, list[dict[str, Any]]] = {}
            for d, device in enumerate(sent):
                batch = []
                for k in range(per_wave):
                    i = w * per_wave + k
                    p = payload(i, t0 - 600 + i * 2 + d * 0.5, seq0 + d * 10_000 + i)
                    if device == "V051" and k == 0:
                        p["event"] = "sos"  # one SOS press a wave
                    batch.append(p)
                wave[device] = batch
                sent[device] += batch
            publish(services, wave)
            rss.append(_rss_kib(writer.proc.pid))
            time.sleep(1)  # pacing: readings keep flowing through the whole outage
        sos_seqs = {p["seq"] for p in sent["V051"] if p.get("event") == "sos"}
        # Alerts were raised while the store was down.
        alerts = collect(
            services.kafka_bootstrap,
            "alerts",
            match=lambda a: a.get("kind") == "sos" and a.get("details", {}).get("seq") in sos_seqs,
            until=lambda found: len(found) >= len(sos_seqs),
        )
        assert {a["details"]["seq"] for a in alerts} == sos_seqs
        stats = store.stats()
        assert stats["store_up"] is False and stats["retries"] >= 3, stats
        # Nothing set aside for the outage. (The writer reads the shared topics from the start,
        # where the alerts poison-record test left unusable records: those it drops, by reason.)
        assert [r for r in stats["dropped"] if not r.startswith("alert: ")] == [], stats["dropped"]
        outage_s = time.monotonic() - outage_start  # a figure: ten waves a second apart

        sup2 = StorageVM(vm_dir, only=("victoriametrics",), ports={"victoriametrics": port})
        sup2.start()
        back = time.monotonic()
        try:
            total = waves * per_wave * len(sent)
            start = t0 - 601
            end = t0 + 1
            wait_for(
                "catch-up after the outage",
                lambda: len(seqs_in(store, seq0, seq0 + 20_000, start, end)) >= total,
                timeout=120,
            )
            caught_up = time.monotonic() - back
            seqs = seqs_in(store, seq0, seq0 + 20_000, start, end)
            assert sorted(seqs) == sorted(p["seq"] for ps in sent.values() for p in ps)
            sos = store.export('{__name__="alert_sos",device="V051"}', start, end)
            assert sos and len(sos[0]["values"]) == len(sos_seqs)
            assert all(v == 2 for v in sos[0]["values"])  # critical
            stats = store.stats()
            assert stats["store_up"] is True and stats["outages"] >= 1
            print(
                f"\noutage {outage_s:.0f} s, {total} readings and {len(sos_seqs)} SOS alerts "
                f"during it, all stored {caught_up:.1f} s after the store returned; "
                f"writer retries {stats['retries']}, RSS KiB during outage {min(rss)}–{max(rss)}"
            )
        finally:
            sup2.stop()
    finally:
        store.reader.close()
        pipeline.stop(writer)
        sup.stop()


def test_history_prints_vitals_and_writes_a_png(
    services: Endpoints,
    store: Store,
    published: dict[str, list[dict[str, Any]]],
    anxin_env: dict[str, str],
    run_root: Path,
) -> None:
    start, end = window(published)
    total = N_PER_DEVICE * len(DEVICES)
    wait_for("stored", lambda: len(seqs_in(store, SEQ0, SEQ0 + 3000, start, end)) >= total)
    # Two SOS presses inside the window, so the chart has alert marks.
    presses = [
        {"ts": published["V051"][40]["ts"] + 1, "seq": SEQ0 + 900, "event": "sos"},
        {"ts": published["V051"][95]["ts"] + 1, "seq": SEQ0 + 901, "event": "sos"},
    ]
    publish(services, {"V051": presses})
    wait_for(
        "alerts stored",
        lambda: (
            sum(
                len(s["values"])
                for s in store.export('{__name__="alert_sos",resident="R051"}', start, end)
            )
            >= 2
        ),
    )
    png = run_root / "history-R051.png"
    env = {**os.environ, **anxin_env, "ANXIN_INFLUX__URL": store.vm_url}
    result = subprocess.run(
        [sys.executable, "-m", "anxin.cli", "history", "R051", "--hours", "1", "--plot", str(png)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Resident R051" in out and "Latest" in out and "Alerts" in out
    assert "sos" in out and "critical" in out
    assert "王秀兰" not in out  # ids only
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 40_000, len(data)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1100, 1200)
    if os.environ.get("ANXIN_TEST_KEEP_PNG"):  # to look at the chart after the session
        Path(os.environ["ANXIN_TEST_KEEP_PNG"]).write_bytes(data)


def test_write_rate(services: Endpoints, store: Store) -> None:
    """Figure for the README: readings a second through the writer (Kafka → VictoriaMetrics)."""
    n = 6000
    t0 = time.time() - 2 * 86400
    records = [
        {"device_id": "V052", "resident_id": "R052", "received_at": t0 + i * 0.1}
        | payload(i, t0 + i * 0.1, 6_500_000 + i)
        for i in range(n)
    ]
    before = store.stats()
    start = time.monotonic()
    asyncio.run(_produce(services.kafka_bootstrap, "readings", records))
    wait_for(
        "bench written",
        lambda: store.stats().get("records_written", 0) >= before["records_written"] + n,
    )
    took = time.monotonic() - start
    after = store.stats()
    points = after["points_written"] - before["points_written"]
    print(
        f"\nwrite rate: {n / took:.0f} readings/s ({points / took:.0f} points/s), "
        f"{n} in {took:.1f} s"
    )

    # The figure counts only if the readings are really there: each one, once. Written is not
    # yet searchable (VictoriaMetrics makes new rows visible within about a second).
    def stored() -> list[int]:
        return seqs_in(store, 6_500_000, 6_500_000 + n, t0 - 1, t0 + n * 0.1 + 1)

    wait_for("bench readings searchable", lambda: len(stored()) >= n)
    seqs = stored()
    assert sorted(seqs) == list(range(6_500_000, 6_500_000 + n))
