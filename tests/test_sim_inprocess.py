"""In-process runs: shared out over processes, they raise exactly the alerts of one run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml

from anxin.core.registry import load_registry
from anxin.replay_inprocess import assign_shards, device_counts, run_scenario
from tests.signals import chunks, clear_fall

T = 1_711_814_400.0
RESIDENTS = {"R1": ("W1",), "R2": ("W2", "P2"), "R3": ("W3",), "R4": ("W4",)}


def _scenario(folder: Path) -> None:
    """Four residents, every kind of output: an SOS (R1), vitals over two devices (R2), two
    watches falling silent at once (R3, R4: one timer sweep, two shards), a status, a broken
    message and an unknown device."""
    folder.mkdir()
    registry = {
        "residents": {
            rid: {
                "name": f"P {rid}",
                "timezone": "Asia/Shanghai",
                "devices": {dev: {"placement": "wrist"} for dev in devices},
                "family": [{"name": "F", "phone": "+8613800000001"}],
            }
            for rid, devices in RESIDENTS.items()
        }
    }
    (folder / "registry.yaml").write_text(yaml.safe_dump(registry, allow_unicode=True))
    msgs: list[dict[str, Any]] = []

    def send(t: float, device: str, payload: Any, kind: str = "telemetry") -> None:
        msgs.append({"t": T + t, "topic": f"anxin/v1/devices/{device}/{kind}", "payload": payload})

    for i, t in enumerate(range(0, 2400, 60)):
        for n, device in enumerate(("W1", "W2", "P2", "W3", "W4")):
            if device in ("W3", "W4") and t > 900:
                continue  # silent from +900: both due at the same sweep
            vitals = {"hr": 72 + 60 * (device == "W2" and t > 600), "spo2": 97}
            if device == "P2":
                vitals = {"rr": 26 if t > 600 else 16}
            send(t + n * 0.01, device, {"ts": T + t, "seq": i, "worn": True, "vitals": vitals})
    send(500.5, "W1", {"ts": T + 500, "seq": 999, "event": "sos"})
    g, _impact = clear_fall(after_s=10.0)  # a fall prompt (suspicion) from R1's watch
    for ts, accel in chunks(g, 50.0, T + 1200.0):
        send(ts - T + 1.0, "W1", {"ts": ts, "accel": accel})
    send(700.5, "W2", "offline", "status")
    send(701.0, "W1", '{"ts": NaN}')
    send(702.0, "X9", {"ts": T + 702, "battery": 0.5})
    msgs.sort(key=lambda m: m["t"])
    (folder / "messages.jsonl").write_bytes(b"".join(orjson.dumps(m) + b"\n" for m in msgs))


def test_shards_raise_the_alerts_of_one_run(tmp_path: Path) -> None:
    folder = tmp_path / "four"
    _scenario(folder)
    one = run_scenario(folder)
    shared = run_scenario(folder, jobs=3)
    assert shared.processes == 3
    counts = ("messages", "first_t", "last_t", "rejected")
    assert [getattr(shared, c) for c in counts] == [getattr(one, c) for c in counts]
    assert one.rejected == 2  # the broken message (W1) and the unknown device (X9)
    # One record each: the SOS, R2's vitals, the two silent watches; R1's fall is a prompt only
    # (a suspicion, below), W2's "offline" status raises nothing by itself.
    assert sorted((a.resident_id, a.kind) for a in one.alerts) == [
        ("R1", "sos"),
        ("R2", "vitals"),
        ("R3", "device"),
        ("R4", "device"),
    ]

    # The same records; the order too, but among one timer sweep's outputs (shard order there).
    def key(a: dict[str, Any]) -> tuple[float, str, str]:
        return a["detected_at"], a["alert_id"], a["severity"]

    records = [a.model_dump() for a in one.alerts]
    assert sorted(records, key=key) == sorted((a.model_dump() for a in shared.alerts), key=key)
    assert sorted(map(orjson.dumps, one.updates)) == sorted(map(orjson.dumps, shared.updates))
    assert shared.emitted_at["alerts"] == sorted(shared.emitted_at["alerts"])
    # Fall prompts merge the same way: the records and their order of one run.
    assert one.suspicions and {s["resident_id"] for s in one.suspicions} == {"R1"}
    assert shared.suspicions == one.suspicions


def test_a_resident_stays_in_one_shard_and_shards_are_balanced(tmp_path: Path) -> None:
    folder = tmp_path / "four"
    _scenario(folder)
    counts = device_counts(folder / "messages.jsonl")
    assert counts["W1"] == 42 + 17 and counts["W3"] == 16 and counts["X9"] == 1
    assignment = assign_shards(load_registry(folder / "registry.yaml"), counts, 2)
    assert assignment["W2"] == assignment["P2"]
    load = [sum(counts[d] for d, s in assignment.items() if s == shard) for shard in (0, 1)]
    assert sorted(load) == [41 + 40, 59 + 16 + 16]  # R2 (two devices) alone; the rest together
