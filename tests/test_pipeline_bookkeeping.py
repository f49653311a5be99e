"""The pipeline's bookkeeping per device and per resident (issue 16, the worker's RSS per device):
tokens, the ids every structure is keyed by, the timers' index, and the states' tables after a
snapshot. Compact, and the same behaviour."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from anxin.core.registry import load_registry
from detectors.pipeline import DetectorPipeline

REGISTRY = load_registry(Path(__file__).parent / "data" / "registry.yaml")
T0 = 1_795_800_000.0


def fresh(text: str) -> str:
    """An equal string that is another object, as each decoded Kafka record brings."""
    copy = "".join(list(text))
    assert copy == text and copy is not text
    return copy


def reading(device: str, resident: str, ts: float) -> dict[str, Any]:
    return {
        "device_id": fresh(device),
        "resident_id": fresh(resident),
        "ts": ts,
        "received_at": ts,
        "seq": int(ts - T0),
        "battery": 0.9,
        "accel": {"rate": 25.0, "g": [[0.0, 0.0, 1.0]] * 25},
        "vitals": {"hr": 72.0, "spo2": 97.0, "rr": 16.0},
        "location": {"lat": 31.2304, "lon": 121.4737, "acc": 10.0},
    }


def pipeline() -> DetectorPipeline:
    return DetectorPipeline(lambda: REGISTRY, fall_save_every_s=float("inf"))


def test_tokens_are_ints_of_ranges_that_do_not_meet() -> None:
    a, b = pipeline(), pipeline()
    for p in (a, b):
        for i in range(3):
            p.process(reading("W001", "R001", T0 + i), T0 + i)
    token = a.device_state["W001"]["token"]
    assert isinstance(token, int) and token == a._live["W001"].token
    assert a.resident_state["R001"]["token"] == a._resident_live["R001"].token
    assert token != b.device_state["W001"]["token"]


def test_a_state_of_another_process_is_continued_from_its_forms() -> None:
    """A state whose token is not this pipeline's (another worker's, or the text tokens written
    before) builds the live detectors from the state's forms, as before."""
    a = pipeline()
    for i in range(5):
        a.process(reading("W001", "R001", T0 + i), T0 + i)
    a.save_live_state("W001")
    for state, old in (
        (a.device_state["W001"], "7f0a1b2c:3"),
        (a.resident_state["R001"], "7f0a:4"),
    ):
        state["token"] = old
    b = pipeline()
    b.device_state, b.resident_state = dict(a.device_state), dict(a.resident_state)
    b.process(reading("W001", "R001", T0 + 5), T0 + 5)
    assert isinstance(b.device_state["W001"]["token"], int)
    assert len(b._live["W001"].health.gap_s) == 5  # the gaps learned before, and this one
    assert b._resident_live["R001"].monitor.now == T0 + 5

    c = pipeline()  # what a state without forms gives: nothing learned
    c.process(reading("W001", "R001", T0 + 5), T0 + 5)
    assert len(c._live["W001"].health.gap_s) == 0


def own(ids: Any, text: str) -> str:
    """The registry's own string object equal to ``text``."""
    (found,) = (key for key in ids if key == text)
    return found


def test_every_structure_holds_the_registrys_ids_not_each_readings_copies() -> None:
    p = pipeline()
    resident = own(REGISTRY.residents, "R001")
    device = own(REGISTRY.residents["R001"].devices, "W001")
    for i in range(6):
        p.process(reading("W001", "R001", T0 + i), T0 + i)
    live = p._live["W001"]
    assert live.device_id is device and live.resident_id is resident
    assert REGISTRY.own_ids(fresh("W001"), fresh("R001")) == ("W001", "R001")
    assert own(p.device_state, "W001") is device and own(p.resident_state, "R001") is resident
    assert p.resident_state["R001"]["device"] is device
    assert all(key is device for _, which, key in p._timers if which == 0)
    (key,) = p._scheduled[0]
    assert key is device
    monitor = p._resident_live["R001"].monitor
    assert all(held[2] is device for held in monitor.latest.values())


def test_an_unregistered_device_or_a_resident_the_registry_does_not_give_it_keeps_its_ids() -> None:
    unknown, other = fresh("X999"), fresh("R002")
    assert REGISTRY.own_ids(unknown, other)[0] is unknown
    device, resident = REGISTRY.own_ids(fresh("W001"), other)  # W001 is R001's
    assert resident is other and device == "W001"


def test_timers_index_by_kind_and_id() -> None:
    p = pipeline()
    p.process(reading("W001", "R001", T0), T0)
    assert set(p._scheduled[0]) == {"W001"} and p._scheduled[1] == {}
    due = p._scheduled[0]["W001"]
    assert p.tick(due + 1).alerts  # the watch fell silent: its timer fired
    assert p._scheduled[0] == {} or p._scheduled[0]["W001"] > due


def test_a_snapshot_takes_the_forms_beside_the_states_and_leaves_them_as_they_were() -> None:
    """A snapshot's form of a state holds the live detectors' forms; the state itself is not
    touched (writing the forms in and out again grew its table, and rebuilt it every time)."""
    p = pipeline()
    for i in range(12):
        p.process(reading("W001", "R001", T0 + i), T0 + i)
    state = p.device_state["W001"]
    items, size = list(state.items()), sys.getsizeof(state)
    form = p.device_form("W001")
    assert form is not None and form is not state
    assert {"fall_detector", "health", "wander"} <= set(form)
    assert list(form.items())[: len(items)] == items
    assert list(state.items()) == items and sys.getsizeof(state) == size
    assert form["health"] == p._live["W001"].health.to_state()

    resident = p.resident_state["R001"]
    items, size = list(resident.items()), sys.getsizeof(resident)
    form_r = p.resident_form("R001")
    assert form_r is not None and form_r["news2"] == p._resident_live["R001"].monitor.to_state()
    assert list(resident.items()) == items and sys.getsizeof(resident) == size

    p.save_live_state("W001")  # what an in-process evaluation writes: the same forms
    assert p.device_state["W001"] == form and p.resident_state["R001"] == form_r


def test_a_state_no_live_object_continues_is_its_own_form() -> None:
    """A snapshot loaded and not read on yet: its forms are the state (no live detectors)."""
    a = pipeline()
    for i in range(5):
        a.process(reading("W001", "R001", T0 + i), T0 + i)
    a.save_live_state("W001")
    b = pipeline()
    b.device_state, b.resident_state = dict(a.device_state), dict(a.resident_state)
    assert b.device_form("W001") is b.device_state["W001"]
    assert b.resident_form("R001") is b.resident_state["R001"]
    assert b.device_form("W404") is None and b.resident_form("R404") is None


def test_no_open_alerts_dict_for_a_device_that_never_had_a_device_alert() -> None:
    p = pipeline()
    p.process(reading("W001", "R001", T0), T0)
    assert "health_alerts" not in p.device_state["W001"]
    due = p._scheduled[0]["W001"]
    (alert,) = p.tick(due + 1).alerts  # silent
    assert p.device_state["W001"]["health_alerts"] == {"silent": alert.alert_id}
    p.process(reading("W001", "R001", due + 2), due + 2)  # back: resolved
    assert p.device_state["W001"]["health_alerts"] == {}
