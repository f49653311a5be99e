"""Counter resets never cost an SOS or a reading (issue 18.1), in-process, by property.

A device counts ``seq`` from 1 again after every reboot, with a new ``ts``; at-least-once
delivery repeats messages (an MQTT QoS 1 copy soon after, or a Kafka tail re-processed after a
worker crash). Whatever the mix: every distinct SOS press gives exactly one alert and every
distinct reading is processed exactly once (its vitals record goes out once).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from anxin.core.registry import load_registry
from detectors.pipeline import DetectorPipeline, Outputs

REGISTRY = load_registry(Path(__file__).parent / "data" / "registry.yaml")
T0 = 1_795_600_000.0
REPEAT_WITHIN = 30  # copies arrive within this many distinct messages of the first (< SEEN_KEEP)


class Scoring(DetectorPipeline):
    """The pipeline, noting the ts of every reading whose vitals NEWS2 scored."""

    def __init__(self) -> None:
        super().__init__(lambda: REGISTRY)
        self.scored: list[float] = []

    def _vitals(self, record: Any, now: float, out: Outputs, config: Any = None) -> None:
        self.scored.append(float(record["ts"]))
        super()._vitals(record, now, out, config)


def message(seq: int, ts: float, sos: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {"event": "sos"} if sos else {"vitals": {"hr": 70}}
    return {"device_id": "W001", "resident_id": "R001", "seq": seq, "ts": ts, **fields}


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(distinct messages, what arrived): boots counting from 1, copies and re-processed tails."""
    boots = draw(st.lists(st.integers(1, 25), min_size=1, max_size=6))
    distinct: list[dict[str, Any]] = []
    ts = T0
    for length in boots:
        for seq in range(1, length + 1):
            ts += draw(st.sampled_from([0.5, 1.0, 10.0]))
            distinct.append(message(seq, ts, draw(st.booleans())))
    arrived: list[dict[str, Any]] = []
    for i, m in enumerate(distinct):
        arrived.append(dict(m, received_at=m["ts"] + 0.1))
        kind = draw(st.sampled_from(["none", "none", "copy", "tail"]))
        if kind == "copy":  # an MQTT QoS 1 duplicate of a recent message, arriving later
            j = draw(st.integers(max(0, i - REPEAT_WITHIN + 1), i))
            arrived.append(dict(distinct[j], received_at=m["ts"] + 0.2))
        elif kind == "tail":  # a worker crash: the uncommitted tail is processed again
            n = draw(st.integers(1, min(REPEAT_WITHIN, i + 1)))
            arrived += [dict(x, received_at=x["ts"] + 0.1) for x in distinct[i + 1 - n : i + 1]]
    return distinct, arrived


@settings(max_examples=150, deadline=None)
@given(deliveries())
def test_every_distinct_press_and_reading_exactly_once(
    case: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    distinct, arrived = case
    p = Scoring()
    out = Outputs()
    for m in arrived:
        out.extend(p.process(m, m["received_at"]))
    presses = sorted(m["ts"] for m in distinct if m.get("event") == "sos")
    readings = sorted(m["ts"] for m in distinct if "vitals" in m)
    sos = [a for a in out.alerts if a.kind == "sos"]
    assert sorted(a.ts for a in sos) == presses
    assert len({a.alert_id for a in sos}) == len(presses)
    assert sorted(p.scored) == readings


def test_the_reported_reboot_keeps_both_sos_presses() -> None:
    """seq 1-20, SOS at 21; reboot; seq 1-4, SOS at 5 with a new ts: two alerts."""
    p = Scoring()
    stream = [message(s, T0 + s, False) for s in range(1, 21)] + [message(21, T0 + 21, True)]
    stream += [message(s, T0 + 100 + s, False) for s in range(1, 5)]
    stream += [message(5, T0 + 105, True)]
    out = Outputs()
    for m in stream:
        out.extend(p.process(m, m["ts"] + 0.1))
    assert [(a.kind, a.ts, a.details["seq"]) for a in out.alerts] == [
        ("sos", T0 + 21, 21),
        ("sos", T0 + 105, 5),
    ]
    assert len(p.scored) == 24
