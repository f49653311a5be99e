"""The worker's live state (anxin/live_state.py): snapshots of buckets, and devices that move.

A device the registry gives to another resident is read on the new resident's partition, maybe
by another worker; the state left behind would go on ticking and raise a stale ``silent``
alert. The worker forgets it when the registry is reloaded.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import orjson

from anxin.core.registry import load_registry
from anxin.live_state import RECORD_RESIDENTS, LiveState, decode_bucket, encode_bucket
from detectors.pipeline import DetectorPipeline

REGISTRY = load_registry(Path(__file__).parent / "data" / "registry.yaml")
T0 = 1_795_700_000.0


def worker_state() -> tuple[DetectorPipeline, LiveState]:
    pipeline = DetectorPipeline(lambda: REGISTRY, fall_save_every_s=float("inf"))
    live = LiveState(8, pipeline.device_form, pipeline.resident_form)
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


def walk(device: str, resident: str, seconds: int) -> list[dict[str, object]]:
    """Readings with accel (1 s chunks at rest), vitals and battery: every detector has state."""
    out: list[dict[str, object]] = []
    for i in range(seconds):
        g = [[0.0, 0.0, 1.0]] * 25
        out.append(
            {
                **reading(device, resident, T0 + i),
                "battery": 0.9,
                "accel": {"rate": 25.0, "g": g},
                "vitals": {"heart_rate": 70 + i % 3, "spo2": 97},
            }
        )
    return out


def test_a_snapshot_drops_the_forms_it_wrote_and_writes_only_what_changed() -> None:
    """The forms go once serialised (the live objects hold them); a resident that did not
    change is not written again while its copy is in a key's last record; and a worker that
    reads the records in the order written holds the same states."""
    pipeline, live = worker_state()
    for device, resident in (("W001", "R001"), ("W002", "R002")):
        live.note(device, resident, 0)
        for r in walk(device, resident, 12):
            pipeline.process(r, float(r["ts"]))  # type: ignore[arg-type]
    (first,) = live.snapshot(live.dirty_residents())
    assert first[1] == b"0/0" and sorted(decode_bucket(first[2])) == ["R001", "R002"]
    for device in ("W001", "W002"):
        assert not {"fall_detector", "health"} & set(live.devices[device])
    assert "news2" not in live.residents["R001"]

    for r in walk("W002", "R002", 3):  # only R002 changes
        pipeline.process({**r, "ts": float(r["ts"]) + 20}, float(r["ts"]) + 20)  # type: ignore[arg-type]
    assert live.dirty_residents() == {"R002"}
    (second,) = live.snapshot(live.dirty_residents())
    assert second[1] == b"0/1"  # the partition's next key
    body = decode_bucket(second[2])
    assert list(body) == ["R002"]  # R001's newest copy is still the last record of 0/0
    assert {"fall_detector", "health"} <= set(body["R002"]["d"]["W002"])
    assert "news2" in body["R002"]["r"]
    assert live.bucket_of("R001") == (0, 0) and live.bucket_of("R002") == (0, 1)

    _, loaded = worker_state()
    assert loaded.load([(first[1], first[2]), (second[1], second[2])], {0}) == 2
    assert loaded.devices["W001"] == decode_bucket(first[2])["R001"]["d"]["W001"]
    assert loaded.devices["W002"] == body["R002"]["d"]["W002"]  # the newer copy
    assert loaded.cursor == {0: 2} and loaded.bucket_of("R002") == (0, 1)
    again = loaded.snapshot(["R001", "R002"])  # kept: no live objects continue them yet
    assert decode_bucket(again[0][2]) == {**decode_bucket(first[2]), **body}


def test_a_key_written_again_carries_its_residents_forward() -> None:
    """With the keys used in turn, a key's last record must still hold every resident at home
    there: a compacted topic keeps only that record. Read in order, the last records of the
    keys give every resident's newest state, whichever key it is in."""
    pipeline, live = worker_state()
    live.bucket_count = 2
    for device, resident in (("W001", "R001"), ("W002", "R002")):
        live.note(device, resident, 0)
        pipeline.process({**reading(device, resident, T0), "battery": 0.9}, T0)
    live.snapshot(live.dirty_residents())  # 0/0: R001, R002
    written = []
    for i, battery in enumerate((0.8, 0.7)):  # R002 changes twice: 0/1, then 0/0 again
        t = T0 + 10 * (i + 1)
        pipeline.process({**reading("W002", "R002", t), "battery": battery}, t)
        (record,) = live.snapshot(live.dirty_residents())
        written.append(record)
    assert [r[1] for r in written] == [b"0/1", b"0/0"]
    assert list(decode_bucket(written[0][2])) == ["R002"]
    last = decode_bucket(written[1][2])
    assert sorted(last) == ["R001", "R002"]  # R001 carried forward: its home is 0/0
    assert live.bucket_of("R002") == (0, 0) and live.at_home((0, 1)) == []

    _, loaded = worker_state()  # a compacted topic: the last record of each key, in order
    loaded.bucket_count = 2
    assert loaded.load([(r[1], r[2]) for r in written], {0}) == 2
    assert loaded.devices["W002"] == last["R002"]["d"]["W002"]  # not 0/1's older copy
    assert loaded.cursor == {0: 1}


def test_an_older_copy_read_first_leaves_nothing_behind() -> None:
    """A device given to another resident: the resident's older copy (with the device) is
    replaced whole by its newer one (without it)."""
    pipeline, live = worker_state()
    for device in ("W002", "P002"):
        live.note(device, "R002", 1)
        pipeline.process({**reading(device, "R002", T0), "battery": 0.9}, T0)
    (old,) = live.snapshot(live.dirty_residents())
    pipeline.forget(live.moved(lambda device: "R002" if device == "W002" else None), [])
    (new,) = live.snapshot(live.dirty_residents())

    _, loaded = worker_state()
    assert loaded.load([(old[1], old[2]), (new[1], new[2])], {1}) == 1
    assert loaded.devices_of("R002") == ("W002",)
    assert "P002" not in loaded.devices and loaded.owner == {"W002": "R002"}
    assert loaded.at_home((1, 0)) == [] and loaded.bucket_of("R002") == (1, 1)


def test_many_residents_are_split_over_records() -> None:
    _, live = worker_state()
    n = RECORD_RESIDENTS + 10
    for i in range(n):
        live.note(f"X{i}", f"Q{i:04d}", 3)
    records = live.snapshot(live.dirty_residents())
    assert [r[1] for r in records] == [b"3/0", b"3/1"]
    assert [len(decode_bucket(r[2])) for r in records] == [RECORD_RESIDENTS, 10]
    _, loaded = worker_state()
    assert loaded.load([(r[1], r[2]) for r in records], {3}) == n


def test_slices_deal_the_residents_and_filter_the_changed_ones() -> None:
    _, live = worker_state()
    live.slices = 4
    residents = ["R001", "R002", "R003"]
    for i, resident in enumerate(residents):
        live.note(f"X{i}", resident, 0)
    parts = {r: live.slice_of(r) for r in residents}
    assert all(0 <= p < 4 for p in parts.values())
    assert parts == {r: zlib.crc32(r.encode()) % 4 for r in residents}
    for part in range(4):
        assert live.dirty_residents(part) == {r for r, p in parts.items() if p == part}
    assert set().union(*(live.dirty_residents(p) for p in range(4))) == set(residents)


def test_a_residents_devices_are_held_without_a_set_each() -> None:
    """``members`` holds a one-device resident's device id itself (a set of one was 216 bytes a
    resident, the largest piece of the worker's bookkeeping) and several as a tuple; a device
    that moves, or a dropped partition, leaves nothing behind."""
    _, live = worker_state()
    live.note("W002", "R002", 1)
    assert live.members == {"R002": "W002"} and live.devices_of("R002") == ("W002",)
    live.note("P002", "R002", 1)
    live.note("P002", "R002", 1)  # again: held once
    assert live.devices_of("R002") == ("W002", "P002")
    live.note("P002", "R003", 2)  # given to another resident by the registry
    assert live.members == {"R002": "W002", "R003": "P002"}
    assert live.devices_of("R004") == ()
    assert live.moved(lambda device: None) == ["W002", "P002"]
    assert live.members == {} and live.owner == {}

    live.note("W002", "R002", 1)
    live.note("W003", "R003", 2)
    live.snapshot(live.dirty_residents())
    assert live.drop({1}) == (["W002"], ["R002"])
    assert live.members == {"R003": "W003"} and list(live.partition) == ["R003"]
    assert list(live.buckets) == [(2, 0)] and live.at_home((2, 0)) == ["R003"]


def test_a_loaded_snapshot_gives_each_resident_its_devices() -> None:
    pipeline, live = worker_state()
    live.bucket_count = 1
    for device, resident in (("W001", "R001"), ("W002", "R002"), ("P002", "R002")):
        live.note(device, resident, 0)
        pipeline.process({**reading(device, resident, T0), "battery": 0.9}, T0)
    (record,) = live.snapshot(live.dirty_residents())

    _, loaded = worker_state()
    loaded.bucket_count = 1
    assert loaded.load([(record[1], record[2])], {0}) == 2
    assert loaded.devices_of("R001") == ("W001",)
    assert sorted(loaded.devices_of("R002")) == ["P002", "W002"]
    assert loaded.owner == {"W001": "R001", "P002": "R002", "W002": "R002"}


def test_a_bucket_is_lz4_and_the_previous_versions_records_still_load() -> None:
    body = {"R001": {"r": {"token": 7}, "d": {"W001": {"seen": "abc", "gaps": [10, 10]}}}}
    value = encode_bucket(body)
    assert value[:4] == b"\x04\x22\x4d\x18"  # an LZ4 frame
    assert decode_bucket(value) == body
    assert decode_bucket(zlib.compress(orjson.dumps(body), 1)) == body  # written before LZ4
    assert decode_bucket(orjson.dumps(body)) == body  # plain JSON


def test_the_ids_noted_are_the_registrys_own_objects() -> None:
    """A reading's ids are new string objects each time: what the worker keeps per device and
    resident is the registry's (``Registry.own_ids``), so it holds each id once."""
    pipeline = DetectorPipeline(lambda: REGISTRY, fall_save_every_s=float("inf"))
    live = LiveState(8, pipeline.device_form, pipeline.resident_form, 1, REGISTRY.own_ids)
    device, resident = "".join(["W", "001"]), "".join(["R", "001"])
    live.note(device, resident, 0)
    ((kept_device, kept_resident),) = live.owner.items()
    (own_resident,) = (r for r in REGISTRY.residents if r == "R001")
    (own_device,) = (d for d in REGISTRY.residents["R001"].devices if d == "W001")
    assert kept_device is own_device and kept_resident is own_resident
    assert next(iter(live.partition)) is own_resident and live.members["R001"] is own_device
