"""The registry as the detector worker holds it (``anxin/core/rules.py``): the same rules as the
validated registry, the same detector outputs, no personal data, less memory, and reloads that
keep what did not change."""

from __future__ import annotations

import gc
import math
import os
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

import anxin.core.registry as registry_module
import anxin.core.rules as rules_module
from anxin.core.registry import load_registry
from anxin.core.rules import OneDevice, Rules, RulesWatcher, fence_dict, load_rules, rules_of
from anxin.core.yamlfile import ConfigError
from detectors.pipeline import DetectorPipeline, Outputs
from tests.conftest import TEST_REGISTRY
from tests.signals import chunks, clear_fall
from tests.test_pipeline_batch import dump
from tests.test_registry import EXAMPLE, demo_file

T0 = 1_795_900_000.0


def test_every_rule_is_the_registrys() -> None:
    for path in (EXAMPLE, TEST_REGISTRY):
        registry = load_registry(path)
        rules = load_rules(path)
        assert rules.residents.keys() == registry.residents.keys()
        for resident_id, resident in registry.residents.items():
            held = rules.residents[resident_id]
            for name in ("timezone", "devices", "vitals", "check_timeout_s", "fall_confirm"):
                assert getattr(held, name) == getattr(resident, name), name
            assert [fence_dict(f) for f in held.geofences] == [
                g.model_dump(exclude_none=True) for g in resident.geofences
            ]
            for device_id in resident.devices:
                device = resident.devices[device_id]
                assert rules.device_owner(device_id) == (resident_id, held, device)
                assert registry.device_owner(device_id) == (resident_id, resident, device)
        assert rules.device_owner("nope") is None


def test_a_residents_one_device_reads_as_the_registrys_dict() -> None:
    registry, rules = load_registry(TEST_REGISTRY), load_rules(TEST_REGISTRY)
    sizes = {len(r.devices) for r in registry.residents.values()}
    assert 1 in sizes and max(sizes) > 1, sizes  # both kinds
    for resident_id, resident in registry.residents.items():
        held, entries = rules.residents[resident_id].devices, resident.devices
        assert isinstance(held, OneDevice if len(entries) == 1 else dict)
        assert held == entries and entries == held and dict(held) == entries
        assert list(held) == list(entries) and len(held) == len(entries)
        assert list(held.items()) == list(entries.items())
        for device_id, device in entries.items():
            assert device_id in held and held[device_id] == device
            assert held.get(device_id) == device and held.get(device_id, None) == device
        assert "nope" not in held and held.get("nope") is None
        with pytest.raises(KeyError):
            held["nope"]
    one = next(r.devices for r in rules.residents.values() if len(r.devices) == 1)
    assert one != {"other": next(iter(one.values()))}
    assert sys.getsizeof(one) < sys.getsizeof({"W001": None}) / 2


def strings_in(obj: object) -> set[str]:
    """Every string reachable from ``obj``."""
    found: set[str] = set()
    seen: set[int] = set()
    stack = [obj]
    while stack:
        x = stack.pop()
        if id(x) in seen or isinstance(x, type):
            continue
        seen.add(id(x))
        if isinstance(x, str):
            found.add(x)
            continue
        stack.extend(gc.get_referents(x))
    return found


def test_the_rules_hold_no_names_addresses_or_contacts() -> None:
    full = load_registry(TEST_REGISTRY)
    personal = {r.name for r in full.residents.values()}
    personal |= {r.address for r in full.residents.values() if r.address}
    personal |= {c.phone for r in full.residents.values() for c in r.family}
    personal |= {c.name for r in full.residents.values() for c in r.family}
    held = strings_in(load_rules(TEST_REGISTRY))
    assert "R001" in held and "home" in held and "Asia/Shanghai" in held
    assert personal and not personal & held


def reading(device: str, resident: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"device_id": device, "resident_id": resident, "ts": ts, "received_at": ts, **fields}


def outputs(registry: Any) -> bytes:
    """A fall at the waist, a pendant away from home with poor vitals, a monitor spot check and
    the silences after them, through a pipeline reading ``registry``."""
    p = DetectorPipeline(lambda: registry, fall_save_every_s=math.inf)
    out = Outputs()
    g, _ = clear_fall(after_s=8.0)
    for i, (ts, accel) in enumerate(chunks(g, 50.0, T0)):
        out.extend(p.process(reading("B003", "R003", ts, seq=i, accel=accel), ts + 0.5))
        away = {"lat": 51.52, "lon": -0.1246, "acc": 8.0}  # 2 km from R002's home
        pendant = reading("P002", "R002", ts, seq=i, location=away, vitals={"spo2": 90, "rr": 25})
        out.extend(p.process(pendant, ts + 0.5))
    out.extend(p.process(reading("M001", "R001", T0, seq=1, vitals={"spo2": 86}), T0 + 1))
    for t in (60.0, 600.0, 3600.0):
        out.extend(p.tick(T0 + t))
    return dump(out)


def test_the_detectors_decide_alike_on_the_rules_and_on_the_registry() -> None:
    registry = load_registry(TEST_REGISTRY, strip=True)
    on_registry = outputs(registry)
    kinds = [a["kind"] for a in orjson.loads(on_registry)["alerts"]]
    assert {"fall", "wander", "vitals", "device"} <= set(kinds)
    assert outputs(rules_of(registry)) == on_registry


def test_a_reload_keeps_the_residents_whose_rules_did_not_change(tmp_path: Path) -> None:
    path = demo_file(tmp_path, 3)
    watcher = RulesWatcher(path, reload_every_s=0)
    first = watcher.current
    assert isinstance(first, Rules)
    changed = yaml.safe_load(path.read_text(encoding="utf-8"))
    changed["residents"]["R002"]["vitals"] = {"spo2_scale": 2}
    changed["residents"]["R003"]["family"][0]["relation"] = "daughter"  # not a rule
    path.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
    os.utime(path, (time.time() + 5, time.time() + 5))
    second = watcher.current
    kept = [second.residents[r] is first.residents[r] for r in ("R001", "R002", "R003")]
    assert kept == [True, False, True]
    owner = second.device_owner("W002")
    assert owner is not None and owner[1].vitals.spo2_scale == 2

    path.write_text("residents: {R9: {name: X, devices: {Z9: {placement: knee}}}}", "utf-8")
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert watcher.current is second  # refused: the rules in force stay


def traced(build: Any) -> tuple[Any, int]:
    gc.collect()
    tracemalloc.start()
    try:
        value = build()
        gc.collect()
        return value, tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def test_the_rules_take_less_memory_than_the_stripped_registry(tmp_path: Path) -> None:
    path = demo_file(tmp_path, 1000)
    load_rules(EXAMPLE)  # imports and caches first
    registry, as_models = traced(lambda: load_registry(path, strip=True))
    del registry
    rules, as_rules = traced(lambda: load_rules(path))
    assert len(rules.residents) == 1000 and rules.device_owner("W001") is not None
    print(f"per resident: {as_models / 1000:,.0f} B as models, {as_rules / 1000:,.0f} B as rules")
    assert as_rules < as_models - 300 * 1000
    assert sys.getsizeof(next(iter(rules.residents.values()))) < 100  # slotted, no dict


def test_a_file_the_one_by_one_reader_does_not_take_loads_alike_or_fails_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file the one-by-one reader gives up on (an unusual shape) is loaded by the registry's
    own path, for the same rules; an invalid one fails with the registry's own errors."""

    def unusual(*args: object) -> None:
        raise registry_module._Unusual

    expected = load_rules(TEST_REGISTRY)
    monkeypatch.setattr(rules_module, "residents_one_by_one", unusual)
    assert load_rules(TEST_REGISTRY).residents == expected.residents
    monkeypatch.undo()
    twice = tmp_path / "twice.yaml"
    twice.write_text(
        "residents:\n  R1: {name: A, devices: {W1: {placement: wrist}}}\n"
        "  R2: {name: B, devices: {W1: {placement: waist}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="W1 belongs to both R1 and R2") as info:
        load_rules(twice)
    assert "twice.yaml" in str(info.value)
    utf16 = tmp_path / "utf16.yaml"
    utf16.write_text(TEST_REGISTRY.read_text(encoding="utf-8"), encoding="utf-16")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_rules(utf16)
