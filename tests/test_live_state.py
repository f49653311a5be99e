"""The worker's live state (anxin/live_state.py): snapshots of buckets, and devices that move.

A device the registry gives to another resident is read on the new resident's partition, maybe
by another worker; the state left behind would go on ticking and raise a stale ``silent``
alert. The worker forgets it when the registry is reloaded.
"""

from __future__ import annotations

from pathlib import Path

from anxin.core.registry import load_registry
from anxin.live_state import LiveState, decode_bucket
from detectors.pipeline import DetectorPipeline

REGISTRY = load_registry(Path(__file__).parent / "data" / "registry.yaml")
T0 = 1_795_700_000.0


def worker_state() -> tuple[DetectorPipeline, LiveState]:
    pipeline = DetectorPipeline(lambda: REGISTRY, fall_save_every_s=float("inf"))
    live = LiveState(8, pipeline.save_fall_window)
    pipeline.device_state, pipeline.resident_state = live.devices, live.residents
    return pipeline, live


def reading(device: str, resident: str, ts: float) -> dict[str, object]:
    return {"device_id": device, "resident_id": resident, "ts": ts, "received_at": ts}


def test_a_snapshot_holds_the_resident_and_all_its_devices() -> None:
    pipeline, live = worker_state()
    for device in ("W002", "P002"):
        live.note(device, "R002", 1)
        pipeline.process({**reading(device, "R002", T0), "battery": 0.9}, T0)
    (record,) = live.snapshot(live.dirty_residents())
    partition, key, value = record
    body = decode_bucket(value)
    assert partition == 1 and key.decode().startswith("1/")
    assert sorted(body["R002"]["d"]) == ["P002", "W002"]
    assert live.dirty_residents() == set()  # written: nothing changed since


def test_a_device_moved_to_another_resident_is_forgotten_and_raises_nothing() -> None:
    pipeline, live = worker_state()
    live.note("Q004", "R004", 2)
    pipeline.process({**reading("Q004", "R004", T0), "battery": 0.9}, T0)  # expected every 3 s
    live.snapshot(live.dirty_residents())

    moved = live.moved(lambda device: "R003" if device == "Q004" else None)

    assert moved == ["Q004"]
    pipeline.forget(moved, [])
    assert "Q004" not in live.devices and "Q004" not in live.owner
    assert live.dirty_residents() == {"R004"}  # its snapshot is rewritten without the device
    assert pipeline.tick(T0 + 600).alerts == []  # no stale silence for the moved device


def test_devices_that_stay_are_kept() -> None:
    pipeline, live = worker_state()
    live.note("W001", "R001", 0)
    pipeline.process({**reading("W001", "R001", T0), "battery": 0.9}, T0)
    assert live.moved(lambda device: "R001") == []
    assert "W001" in live.devices and live.owner == {"W001": "R001"}
