"""The registry: valid files load, invalid ones are refused with file, line and field path."""

from __future__ import annotations

import copy
import gc
import os
import pickle
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

import anxin.core.registry as registry_module
from anxin.core.registry import Registry, RegistryWatcher, load_registry
from anxin.core.yamlfile import ConfigError, load_yaml_model
from tests.conftest import TEST_REGISTRY

EXAMPLE = Path(__file__).parent.parent / "examples" / "registry.yaml"


def test_example_and_test_registries_load() -> None:
    for path in (EXAMPLE, TEST_REGISTRY):
        registry = load_registry(path)
        assert registry.residents
    registry = load_registry(EXAMPLE)
    owner = registry.device_owner("W001")
    assert owner is not None and owner[0] == "R001" and owner[2].placement == "wrist"
    assert registry.device_owner("nope") is None
    assert registry.residents["R001"].vitals.spo2_scale == 2


def errors_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "registry.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_registry(path)
    return info.value.problems


def test_errors_name_file_line_and_path(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("radius_m: 120", "radius_m: 0")
    text = text.replace('active: "08:00-17:30"', 'active: "8 to 5"')
    problems = errors_of(tmp_path, text)
    assert any(
        p.endswith("residents.R001.geofences[0].circle.radius_m: must be > 0") for p in problems
    ), problems
    assert any("residents.R001.geofences[1].active:" in p for p in problems), problems
    circle_line = next(i for i, line in enumerate(text.splitlines(), 1) if "radius_m: 0" in line)
    assert any(p.startswith(f"{tmp_path / 'registry.yaml'}:{circle_line}:") for p in problems), (
        problems
    )


def test_other_mistakes(tmp_path: Path) -> None:
    cases = {
        "residents: {R1: {name: A, devices: {W1: {placement: ankle}}}}": "residents.R1.devices.W1.placement",
        "residents: {R1: {name: A, timezone: Mars/Olympus}}": "not a known IANA time zone",
        "residents: {R1: {name: A, family: [{name: B, phone: '12345'}]}}": "residents.R1.family[0].phone: must be an E.164",
        "residents: {R1: {name: A, devices: {W1: {placement: wrist}}}, R2: {name: B, devices: {W1: {placement: wrist}}}}": "belongs to both",
        "residents: {R1: {name: A, geofences: [{name: g}]}}": "exactly one of circle or polygon",
        "residents: {R1: {name: A, colour: red}}": "residents.R1.colour: is not a known field",
        "residents: {R1: {devices: {}}}": "residents.R1.name: is required",
        "residents: [": "not valid YAML",
    }
    for text, needle in cases.items():
        problems = errors_of(tmp_path, text)
        assert any(needle in p for p in problems), (text, problems)


def test_errors_never_echo_personal_values(tmp_path: Path) -> None:
    problems = errors_of(
        tmp_path, "residents: {R1: {name: 王秀兰, family: [{name: 王伟, phone: '+86 138 0000'}]}}"
    )
    joined = "\n".join(problems)
    assert "138" not in joined and "王" not in joined


def test_watcher_reloads_a_changed_file_and_keeps_the_old_one_when_invalid(tmp_path: Path) -> None:
    path = tmp_path / "registry.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    watcher = RegistryWatcher(path, reload_every_s=0)
    assert set(watcher.current.residents) == {"R001"}

    path.write_text(
        "residents: {R9: {name: X, devices: {Z9: {placement: waist}}}}", encoding="utf-8"
    )
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert set(watcher.current.residents) == {"R9"}

    path.write_text(
        "residents: {R9: {name: X, devices: {Z9: {placement: knee}}}}", encoding="utf-8"
    )
    os.utime(path, (time.time() + 10, time.time() + 10))
    assert set(watcher.current.residents) == {"R9"}  # refused; previous version stays


# -- compactness (issue 16: the registry held in every process, at most 2 KB per resident) -----


def demo_file(tmp_path: Path, residents: int) -> Path:
    from simulators.fleet import demo_registry

    path = tmp_path / "registry.yaml"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(
        yaml.dump(demo_registry(residents), Dumper=dumper, allow_unicode=True), encoding="utf-8"
    )
    return path


def traced_per_resident(load: Callable[[], Registry], residents: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        registry = load()
        assert registry.device_owner("W001") is not None  # the index counts too
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(registry.residents) == residents
    return held / residents


def test_a_loaded_registry_holds_at_most_2_kb_per_resident(tmp_path: Path) -> None:
    """Live Python objects per demo resident (one watch, one fence, one family contact): the
    deterministic part of the RSS slope bench/registry.py measures (1.6 KB there, 4.6 before)."""
    from simulators.fleet import demo_registry

    path = demo_file(tmp_path, 1000)
    load_registry(EXAMPLE)  # imports and caches first
    assert traced_per_resident(lambda: load_registry(path), 1000) <= 2048
    data = demo_registry(1000)
    assert traced_per_resident(lambda: Registry.model_validate(data), 1000) <= 2048


def test_equal_immutable_parts_are_one_instance(tmp_path: Path) -> None:
    # (parts taken apart first: a failure prints no resident's repr, so no name)
    registry = load_registry(demo_file(tmp_path, 3))
    a, b = registry.residents["R001"], registry.residents["R002"]
    vitals, fall, devices = (
        (a.vitals, b.vitals),
        (a.fall_confirm, b.fall_confirm),
        (a.devices, b.devices),
    )
    assert vitals[0] is vitals[1] and fall[0] is fall[1]  # the defaults
    assert devices[0]["W001"] is devices[1]["W002"]  # {placement: wrist}
    fences, family = (a.geofences[0], b.geofences[0]), (a.family[0], b.family[0])
    assert a.timezone is b.timezone and fences[0].active is fences[1].active
    assert family[0].relation is family[1].relation
    assert fences[0].circle is not fences[1].circle  # different places
    given = (a.model_fields_set, b.model_fields_set)
    assert given[0] is given[1]
    explicit = Registry.model_validate(
        {"residents": {"R1": {"name": "A", "vitals": {"spo2_scale": 1}}, "R2": {"name": "B"}}}
    )
    one, two = explicit.residents["R1"].vitals, explicit.residents["R2"].vitals
    assert one == two and one is not two  # equal values, but only one was given explicitly
    assert one.model_fields_set == {"spo2_scale"} and two.model_fields_set == set()
    # a copy never changes the shared parts
    copied = a.model_copy(update={"address": "x"})
    assert copied.address == "x" and a.address is None and b.address is None
    assert "address" in copied.model_fields_set and "address" not in given[0]
    again = pickle.loads(pickle.dumps(registry))
    assert again == registry
    assert copy.deepcopy(registry) == registry
    with pytest.raises(ValidationError):
        a.address = "x"  # type: ignore[misc]


SHAPES = {
    "merge_and_alias": "residents:\n  R1: &r {name: A, timezone: Asia/Shanghai, vitals: &v {spo2_scale: 2}}\n"
    "  R2: {<<: *r, name: B, vitals: *v, devices: {W2: {type: monitor}}}\n",
    "polygon_and_circle": "residents: {R1: {name: A, geofences: [{name: g, polygon: [[1, 2], [1, 3], [2, 3]]},"
    " {name: c, circle: {lat: 1, lon: 2, radius_m: 5}, active: '22:00-06:00'}]}}",
    "defaults_given": "residents: {R1: {name: A, vitals: {}, fall_confirm: {still_s: 15}},"
    " R2: {name: B, devices: {W1: {placement: wrist, expected_interval_s: 600}}}}",
    "duplicate_resident": "residents: {R1: {name: A}, R1: {name: B}}",
    "residents_merge_key": "residents:\n  <<: {R9: {name: Z}}\n",
    "tagged": "residents: !!map {R1: {name: A}}",
    "empty": "",
    "only_comment": "# nothing yet\n",
    "empty_residents": "residents: {}",
}


def test_the_resident_by_resident_load_is_the_whole_document_load(tmp_path: Path) -> None:
    """load_registry parses one resident at a time (its parser nodes never all in memory at
    once); whatever it accepts, the whole-document path gives equal models with equal fields
    given, and whatever it refuses that path words (the other tests: same errors)."""

    def given(m: object) -> object:
        if isinstance(m, BaseModel):
            return (sorted(m.model_fields_set), {k: given(v) for k, v in m.__dict__.items()})
        if isinstance(m, dict):
            return {k: given(v) for k, v in m.items()}
        if isinstance(m, list):
            return [given(v) for v in m]
        return m

    texts = {"example": EXAMPLE.read_text(encoding="utf-8")}
    texts["test"] = TEST_REGISTRY.read_text(encoding="utf-8")
    texts.update(SHAPES)
    for name, text in texts.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text, encoding="utf-8")
        fast, whole = load_registry(path), load_yaml_model(path, Registry)
        same = fast.model_dump() == whole.model_dump() and given(fast) == given(whole)
        assert same, name  # (no diff printed: it would show names)


def test_the_usual_file_is_never_parsed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    def whole(*_args: object) -> None:
        raise AssertionError("parsed as one document")

    monkeypatch.setattr(registry_module, "load_yaml_model", whole)
    for path in (EXAMPLE, TEST_REGISTRY):
        assert load_registry(path).residents


def test_a_reload_keeps_the_residents_it_leaves_as_they_were(tmp_path: Path) -> None:
    """Only what changed is held twice during a reload (and caches keyed by the resident stay)."""
    path = demo_file(tmp_path, 3)
    watcher = RegistryWatcher(path, reload_every_s=0)
    first = watcher.current
    changed = yaml.safe_load(path.read_text(encoding="utf-8"))
    changed["residents"]["R002"]["vitals"] = {"spo2_scale": 2}
    changed["residents"]["R003"]["family"][0]["relation"] = "daughter"
    path.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
    os.utime(path, (time.time() + 5, time.time() + 5))
    second = watcher.current
    assert second is not first
    kept = [second.residents[r] is first.residents[r] for r in ("R001", "R002", "R003")]
    assert kept == [True, False, False]
    owner = second.device_owner("W002")
    assert owner is not None and owner[1].vitals.spo2_scale == 2
    # equal values, but one more field given: a new instance (model_fields_set stays exact)
    before = load_registry(EXAMPLE)
    given = tmp_path / "given.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    given.write_text(text.replace("    escalation: default\n", ""), encoding="utf-8")
    fewer = load_registry(given, previous=before).residents["R001"]
    assert fewer is not before.residents["R001"]
    assert fewer == before.residents["R001"]  # "default" given or not
    assert load_registry(EXAMPLE, previous=before).residents["R001"] is before.residents["R001"]


def test_a_process_that_pages_nobody_holds_no_names_addresses_or_contacts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bridge and the detector worker load the registry ``strip``ped: every other field as
    loaded, by both load paths and on a reload (unchanged residents kept), in less memory."""
    from simulators.fleet import demo_registry

    def unusual(*args: object) -> Registry:
        raise registry_module._Unusual

    full = load_registry(EXAMPLE)
    for whole_document in (False, True):
        if whole_document:
            monkeypatch.setattr(registry_module, "_load_by_resident", unusual)
        stripped = load_registry(EXAMPLE, strip=True)
        assert stripped.residents.keys() == full.residents.keys()
        for resident_id, resident in stripped.residents.items():
            assert (resident.name, resident.address, resident.family) == ("-", None, [])
            whole = full.residents[resident_id].model_dump(exclude={"name", "address", "family"})
            assert resident.model_dump(exclude={"name", "address", "family"}) == whole
        personal = {c.phone for r in full.residents.values() for c in r.family}
        personal |= {r.name for r in full.residents.values()}
        assert personal and not personal & set(str(stripped.model_dump()).split("'"))
    monkeypatch.undo()

    path = demo_file(tmp_path, 3)
    watcher = RegistryWatcher(path, reload_every_s=0, strip=True)
    first = watcher.current
    changed = yaml.safe_load(path.read_text(encoding="utf-8"))
    changed["residents"]["R002"]["family"][0]["relation"] = "daughter"  # not held here
    changed["residents"]["R003"]["vitals"] = {"spo2_scale": 2}
    path.write_text(yaml.safe_dump(changed, allow_unicode=True), encoding="utf-8")
    os.utime(path, (time.time() + 5, time.time() + 5))
    second = watcher.current
    kept = [second.residents[r] is first.residents[r] for r in ("R001", "R002", "R003")]
    assert kept == [True, True, False] and second.residents["R003"].family == []

    big = demo_file(tmp_path, 1000)
    load_registry(EXAMPLE, strip=True)  # imports and caches first
    held = traced_per_resident(lambda: load_registry(big), 1000)
    assert traced_per_resident(lambda: load_registry(big, strip=True), 1000) < held - 200
    assert demo_registry(1)  # the demo residents have a contact each (what is saved)


def test_a_file_saved_in_another_encoding_is_refused_and_the_version_in_force_stays(
    tmp_path: Path,
) -> None:
    """Saved as UTF-16 (an editor's choice): a clear error, never an exception that would stop
    the process reading it."""
    path = tmp_path / "registry.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    watcher = RegistryWatcher(path, reload_every_s=0)
    first = watcher.current
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-16")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert watcher.current is first
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_registry(path)
