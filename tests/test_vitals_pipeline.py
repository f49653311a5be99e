"""Vitals trends need evidence, through ``DetectorPipeline`` as the worker and evaluation run it."""

from __future__ import annotations

from anxin.core.records import AlertRecord
from anxin.core.registry import Registry
from detectors.pipeline import DetectorPipeline, Outputs

T0 = 1_795_400_000.0
REGISTRY = Registry.model_validate(
    {
        "residents": {
            "R1": {
                "name": "test resident one",
                "devices": {"M1": {"type": "monitor"}, "W1": {"placement": "wrist"}},
            }
        }
    }
)


def send(p: DetectorPipeline, device: str, t: float, vitals: dict) -> list[AlertRecord]:
    reading = {
        "device_id": device,
        "resident_id": "R1",
        "ts": t,
        "received_at": t,
        "vitals": vitals,
    }
    out = Outputs()
    out.extend(p.process(reading, t))
    out.extend(p.tick_resident("R1", t))
    return [a for a in out.alerts if a.kind == "vitals"]


def test_two_spot_readings_an_hour_apart_with_news2_0_give_no_alert() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    assert send(p, "M1", T0, {"hr": 61, "spo2": 98, "sbp": 132, "dbp": 80}) == []
    assert send(p, "M1", T0 + 3600, {"hr": 80, "spo2": 97, "sbp": 135, "dbp": 82}) == []
    alerts = []
    for k in range(1, 180):  # three hours of timer ticks afterwards
        alerts += p.tick(T0 + 3600 + 60 * k).alerts
    assert [a for a in alerts if a.kind == "vitals"] == []


def test_a_sustained_rise_through_the_pipeline_is_a_trend_warning() -> None:
    p = DetectorPipeline(lambda: REGISTRY)
    ordinary = {"hr": 70, "spo2": 97, "rr": 16, "temp": 36.7}
    raised = {"hr": 88, "spo2": 95, "rr": 22, "temp": 37.9}  # 0 + 1 + 2 + 0 = 3
    for k in range(120):  # two ordinary hours, a reading a minute
        assert send(p, "W1", T0 + 60 * k, ordinary) == []
    alerts = []
    for k in range(120, 170):
        alerts += send(p, "W1", T0 + 60 * k, raised)
    (alert,) = alerts
    assert alert.severity == "warning" and alert.details["reason"] == "trend"
    assert alert.details["news2"] == 3 and alert.details["trend"]["baseline_24h_max"] == 0
    # The median turns with the second raised reading; then the rise must hold 30 min.
    assert alert.detected_at == T0 + 60 * 121 + 1800


def test_an_impossible_value_costs_only_itself() -> None:
    """An impossible value next to a real pulse of 131 (``spo2: 0``, which the bridge drops
    first; a systolic not above the diastolic, which only the detectors see): it is
    dead-lettered with its reason and the rest still counts (the pulse pages: a single
    parameter scoring 3); before, the whole reading's vitals were dropped for it."""
    p = DetectorPipeline(lambda: REGISTRY)
    reading = {"device_id": "W1", "resident_id": "R1", "ts": T0, "received_at": T0}
    out = p.process({**reading, "vitals": {"hr": 131, "spo2": 0}}, T0)
    assert [d["reason"] for d in out.rejected] == ["vitals: spo2=0 outside 40..100"]
    assert all(d["partial"] for d in out.rejected)
    (alert,) = [a for a in out.alerts if a.kind == "vitals"]
    assert alert.details["scores"] == {"hr": 3} and alert.details["values"] == {"hr": 131.0}
    out = p.process({**reading, "ts": T0 + 60, "vitals": {"sbp": 80, "dbp": 90, "rr": 16}}, T0)
    assert [d["reason"] for d in out.rejected] == ["vitals: sbp=80 not above dbp=90"]
    form = p.resident_form("R1")
    assert form is not None and set(form["news2"]["latest"]) == {"hr", "rr"}  # the rr was taken
