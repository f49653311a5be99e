"""Scenario generator: deterministic for a seed, and every byte it writes obeys the contracts."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import orjson
import pytest

from anxin.core.registry import load_registry
from ingest.telemetry import Accepted, validate_status, validate_telemetry
from simulators import scenario

RESIDENTS, HOURS = 12, 14.0  # 12 residents cover every forced kind (see _ResidentGen)


def _digest(folder: Path) -> dict[str, str]:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("registry.yaml", "messages.jsonl", "labels.jsonl")
    }


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scn") / "a"
    scenario.generate(out, RESIDENTS, HOURS, seed=7)
    return out


def test_same_seed_same_bytes_other_seed_differs(folder: Path, tmp_path: Path) -> None:
    # The same seed in two processes (each resident from its own seed): the same bytes too.
    scenario.generate(tmp_path / "b", RESIDENTS, HOURS, seed=7, jobs=2)
    assert _digest(folder) == _digest(tmp_path / "b")
    # Another seed: R001's own messages differ (a resident does not depend on fleet size, so
    # two residents are enough to see it).
    scenario.generate(tmp_path / "c", 2, HOURS, seed=8)

    def r001_lines(f: Path) -> list[bytes]:
        devices = load_registry(f / "registry.yaml").residents["R001"].devices
        marks = [b"/devices/" + d.encode() + b"/" for d in devices]
        return [
            ln
            for ln in (f / "messages.jsonl").read_bytes().splitlines()
            if any(m in ln for m in marks)
        ]

    mine, other = r001_lines(folder), r001_lines(tmp_path / "c")
    assert mine and other and mine != other


def test_a_resident_does_not_depend_on_fleet_size(folder: Path, tmp_path: Path) -> None:
    scenario.generate(tmp_path / "small", 3, HOURS, seed=7)

    def lines_of(f: Path, device_prefix: str) -> list[bytes]:
        return [
            line
            for line in (f / "messages.jsonl").read_bytes().splitlines()
            if f"/devices/{device_prefix}".encode() in line
        ]

    registry = load_registry(folder / "registry.yaml")
    for device in registry.residents["R002"].devices:
        assert lines_of(folder, device) == lines_of(tmp_path / "small", device)


def test_registry_loads_with_the_promised_mix(folder: Path) -> None:
    registry = load_registry(folder / "registry.yaml")
    assert list(registry.residents) == [f"R{i:03d}" for i in range(1, RESIDENTS + 1)]
    residents = registry.residents.values()
    assert {r.timezone for r in residents} >= {"Asia/Shanghai", "Europe/Berlin"}
    assert any(r.vitals.spo2_scale == 2 for r in residents)
    assert any(d.type == "monitor" for r in residents for d in r.devices.values())
    assert any(any(f.polygon for f in r.geofences) for r in residents)
    centre = next(f for r in residents for f in r.geofences if f.name == "day-centre")
    assert centre.active == "08:00-17:30"


def test_every_message_obeys_telemetry_v1(folder: Path) -> None:
    last_t: dict[str, float] = {}
    last_seq: dict[str, int] = {}
    prev_t = -np.inf
    kinds: dict[str, int] = defaultdict(int)
    registry = load_registry(folder / "registry.yaml")
    for line in (folder / "messages.jsonl").read_bytes().splitlines():
        msg = orjson.loads(line)
        t, topic = msg["t"], msg["topic"]
        assert t >= prev_t, "messages.jsonl is in arrival order"
        prev_t = t
        device = topic.split("/")[-2]
        assert registry.device_owner(device) is not None
        assert t > last_t.get(device, -np.inf), "per-device arrival strictly increasing"
        last_t[device] = t
        if topic.endswith("/status"):
            assert validate_status(topic, msg["payload"].encode()) in ("online", "offline")
            continue
        raw = orjson.dumps(msg["payload"])
        verdict = validate_telemetry(topic, raw, t)
        assert isinstance(verdict, Accepted), (verdict, line[:200])
        assert verdict.dropped == [], verdict.dropped
        p = msg["payload"]
        assert p["ts"] <= t, "sent after it was measured"
        assert p["seq"] > last_seq.get(device, -1)
        last_seq[device] = p["seq"]
        if "accel" in p:
            assert p["accel"]["rate"] in (25, 50)
            assert len(p["accel"]["g"]) <= 50
        for key in ("event", "vitals", "location", "accel"):
            if key in p:
                kinds[key if key != "event" else f"event:{p['event']}"] += 1
    assert {"vitals", "location", "accel", "event:sos", "event:ok", "event:removed"} <= set(kinds)


def test_labels_follow_the_contract(folder: Path) -> None:
    messages = [orjson.loads(x) for x in (folder / "messages.jsonl").read_bytes().splitlines()]
    first, last = messages[0]["t"], messages[-1]["t"]
    labels = [orjson.loads(x) for x in (folder / "labels.jsonl").read_bytes().splitlines()]
    assert {lab["kind"] for lab in labels} == {"fall", "wander", "vitals", "sos", "device"}
    notes = {lab.get("note", "") for lab in labels}
    assert {"silent", "offline", "battery_low"} <= notes
    for lab in labels:
        assert set(lab) >= {"resident", "kind", "start", "deadline"}
        assert first <= lab["start"] < lab["deadline"] <= last + 3600
        width = lab["deadline"] - lab["start"]
        expected = {
            "sos": [10],
            "wander": [120],
            "vitals": [1800],
            "device": [120],
            "fall": [60, 90],
        }[lab["kind"]]
        assert any(abs(width - w) < 1e-3 for w in expected), lab


def test_wander_label_is_the_first_confident_fix_outside(folder: Path) -> None:
    """Recompute a wander label from the messages: first fix outside home by > 2 x acc."""
    registry = load_registry(folder / "registry.yaml")
    labels = [orjson.loads(x) for x in (folder / "labels.jsonl").read_bytes().splitlines()]
    wander = next(lab for lab in labels if lab["kind"] == "wander")
    resident = registry.residents[wander["resident"]]
    home = resident.geofences[0].circle
    assert home is not None
    device = next(d for d, v in resident.devices.items() if v.placement)
    fixes = []
    for line in (folder / "messages.jsonl").read_bytes().splitlines():
        msg = orjson.loads(line)
        if f"/{device}/telemetry" in msg["topic"] and "location" in msg["payload"]:
            fixes.append((msg["payload"]["ts"], msg["payload"]["location"]))
    first = None
    for ts, loc in fixes:
        if ts < wander["start"] - 3600:
            continue
        e, n = scenario._en(home.lat, home.lon, np.array([loc["lat"]]), np.array([loc["lon"]]))
        if float(np.hypot(e, n)[0]) - home.radius_m > 2 * loc["acc"]:
            first = ts
            break
    assert first == pytest.approx(wander["start"], abs=1e-3)


def test_dst_windows_are_local_time() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    # 2024-03-31: clocks go from 02:00 CET to 03:00 CEST; 07:00 local is 05:00 UTC after it.
    windows = scenario.local_windows(
        berlin, scenario.DEFAULT_T0, scenario.DEFAULT_T0 + 86_400, "07:00", "22:00"
    )
    # t0 is 17:00 CET on the 30th: the first window is clipped to 17:00-22:00 local.
    assert windows[0] == (scenario.DEFAULT_T0, scenario.DEFAULT_T0 + 5 * 3600)
    assert windows[1][0] == pytest.approx(1_711_861_200.0)  # 2024-03-31 05:00 UTC
    assert windows[1][1] == scenario.DEFAULT_T0 + 86_400  # clipped at the end
