"""The registry: valid files load, invalid ones are refused with file, line and field path."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from anxin.core.registry import RegistryWatcher, load_registry
from anxin.core.yamlfile import ConfigError
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
