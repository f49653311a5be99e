"""The detector worker's live state, and its snapshots on the ``detector-state`` topic.

Writing every device's and resident's state to a changelog after each reading made two Kafka
records per reading and most of the broker's work (issue 16). Here the state lives in plain
dicts in the worker, and the topic gets **snapshots**:

- every ``snapshot_interval_s`` (and at once at a rebalance or a stop), the residents whose
  state changed, in ``slices``: residents are dealt into slices by hash and one slice is written
  at each of the interval's ticks, so the work is spread over the interval (one cut of 10,000
  devices' detectors held the worker for 0.7 s of CPU: the alert latency's p99);
- within a fraction of a second, the residents whose batch or timer changed an alert or a check
  (a suspicion opened or closed, an alert raised or resolved, a command sent).

A snapshot takes each state together with its live detectors' forms (``device_form`` /
``resident_form``, new dicts): the states themselves never hold the forms the live objects hold.

**Records are a log, not fixed buckets.** Each partition has ``bucket_count`` keys
(``partition/k``) used in turn: a write takes the partition's next key and its record holds the
residents being written **and every resident whose newest copy is in that key's previous
record** (carried forward, serialised again from its live objects). So

- a resident is serialised once per change (fixed hash buckets rewrote every member of a bucket
  whenever one changed: each resident of a fleet reporting every 10 s twice a reading with a 5 s
  interval, a fifth of the worker's CPU), and a quiet one once per turn of the keys;
- the last record of each key holds every resident whose home is that key, so a compacted topic
  (Apache Kafka keeps the last record per key) still holds every resident's newest copy, and a
  reader that applies the keys' last records in offset order gets it (an older copy in another
  key's record comes earlier and is overwritten).

Each snapshot is a consistent cut (``anxin/app.py``): the state is taken between batches, and
sent only once every output made before it is delivered, so a snapshot never runs ahead of the
alerts it implies.

The recovery bound: the reading agents acknowledge their events only after a snapshot that
includes them has been delivered (and their outputs with it): an event waits for its resident's
slice (an event of no resident, a dead letter, for the next slice). Kafka's committed offsets
never run ahead of the snapshots, so a worker that dies loses nothing: the next owner loads the
last snapshot and is re-delivered at most the readings of one snapshot interval (plus a tick
and the batch in hand), which the pipeline's duplicate memory and deterministic alert ids make
harmless.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import lz4.frame
import orjson

from anxin.core.logs import get_logger

log = get_logger(__name__)
State = dict[str, Any]
Bucket = tuple[int, int]
# A resident's devices: the device id itself for the usual resident with one device (a set of
# one was 216 bytes a resident, the worker's largest piece of bookkeeping), a tuple for more.
Members = str | tuple[str, ...]


def member_ids(held: Members | None) -> tuple[str, ...]:
    """The device ids of a ``members`` entry (none for no entry)."""
    if held is None:
        return ()
    return (held,) if isinstance(held, str) else held


class Tracked(dict[str, State]):
    """A dict of states that remembers which keys were set since the last snapshot."""

    def __init__(self) -> None:
        super().__init__()
        self.dirty: set[str] = set()

    def __setitem__(self, key: str, value: State) -> None:
        super().__setitem__(key, value)
        self.dirty.add(key)


def bucket_key(bucket: Bucket) -> bytes:
    return f"{bucket[0]}/{bucket[1]}".encode()


def parse_bucket_key(key: bytes) -> Bucket | None:
    try:
        p, b = key.decode().split("/")
        return int(p), int(b)
    except ValueError:
        return None


_LZ4_MAGIC = b"\x04\x22\x4d\x18"  # an LZ4 frame's first bytes (JSON starts with "{", zlib "x")


def encode_bucket(body: dict[str, Any]) -> bytes:
    """JSON in an LZ4 frame: a state is mostly repeated keys and base64 (1.9 KB a device ->
    0.6 KB), and the broker's load follows the bytes it is sent. zlib (level 1) made 0.43 KB
    but took 10 us a device against LZ4's 2, and every changed device is written twice a
    reading (issue 16)."""
    return lz4.frame.compress(state_json(body), store_size=False)


def _as_text(value: Any) -> str:
    """A state's bytes (a device's message hashes) as base64 text; nothing else is expected."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} in a detector state")


def state_json(body: Any) -> bytes:
    """Detector states as JSON: their bytes as base64 text (what ``seen_hashes`` reads back)."""
    return orjson.dumps(body, default=_as_text)


def decode_bucket(value: bytes) -> Any:
    """A snapshot record: LZ4 (now), zlib-deflated (the previous version's records, still on
    the changelog after an upgrade) or plain JSON."""
    if value[:4] == _LZ4_MAGIC:
        return orjson.loads(lz4.frame.decompress(value))
    return orjson.loads(value if value[:1] == b"{" else zlib.decompress(value))


RECORD_RESIDENTS = 256  # residents written into one record at most (a rebalance writes all)


@dataclass
class LiveState:
    """Devices and residents of the partitions this worker owns, and where their snapshots are.

    ``device_form(device_id)`` and ``resident_form(resident_id)`` give a state as a snapshot
    stores it (the pipeline's: with the live detectors' forms; None for none).
    """

    bucket_count: int  # snapshot keys per partition, used in turn
    device_form: Callable[[str], State | None]
    resident_form: Callable[[str], State | None]
    slices: int = 1
    # the registry's own objects for a device's and its resident's ids (``Registry.own_ids``):
    # what ``note`` keeps, so the worker holds each id once
    own_ids: Callable[[str, str], tuple[str, str]] = lambda device_id, resident_id: (
        device_id,
        resident_id,
    )
    devices: Tracked = field(default_factory=Tracked)
    residents: Tracked = field(default_factory=Tracked)
    owner: dict[str, str] = field(default_factory=dict)  # device -> resident
    members: dict[str, Members] = field(default_factory=dict)  # resident -> devices
    partition: dict[str, int] = field(default_factory=dict)  # resident -> partition
    # resident -> the key (of its partition) whose last record holds its newest copy; none yet
    # for a resident never written
    home: dict[str, int] = field(default_factory=dict)
    # (partition, key) -> the residents of its last record: those still at home there (``home``)
    # and some that have moved since, dropped at the key's next write (a list of them is 8 bytes
    # a resident; a dict kept up to date grew to 160 with the churn)
    buckets: dict[Bucket, list[str]] = field(default_factory=dict)
    cursor: dict[int, int] = field(default_factory=dict)  # partition -> the key written next
    # changed residents by slice: the keys marked in ``devices.dirty`` and ``residents.dirty``
    # are sorted in here once (``_sort_dirty``), not scanned again at every tick
    _dirty: dict[int, set[str]] = field(default_factory=dict)

    def bucket_of(self, resident_id: str) -> Bucket | None:
        """(partition, key) of the record holding the resident's newest copy (None: none yet)."""
        key = self.home.get(resident_id)
        return None if key is None else (self.partition[resident_id], key)

    def slice_of(self, resident_id: str) -> int:
        """The slice (the snapshot tick in an interval) the resident is written at."""
        return zlib.crc32(resident_id.encode()) % self.slices

    def note(self, device_id: str, resident_id: str, partition: int) -> None:
        """The reading of ``device_id`` arrived for ``resident_id`` on ``partition``."""
        if self.owner.get(device_id) == resident_id and resident_id in self.partition:
            return
        device_id, resident_id = self.own_ids(device_id, resident_id)
        old = self.owner.get(device_id)
        if old is not None and old != resident_id:  # moved to another resident (registry)
            self._discard_member(old, device_id)
            self.residents.dirty.add(old)
        self.owner[device_id] = resident_id
        self._add_member(resident_id, device_id)
        if self.partition.get(resident_id) != partition:
            self._leave_home(resident_id)
            self.partition[resident_id] = partition
        self.residents.dirty.add(resident_id)

    def _leave_home(self, resident_id: str) -> None:
        self.home.pop(resident_id, None)  # its entry in ``buckets`` goes at that key's next write

    def at_home(self, bucket: Bucket) -> list[str]:
        """The residents whose newest copy is in the last record of ``bucket``."""
        partition, key = bucket
        return [
            r
            for r in self.buckets.get(bucket, ())
            if self.home.get(r) == key and self.partition.get(r) == partition
        ]

    def devices_of(self, resident_id: str) -> tuple[str, ...]:
        """The devices held for ``resident_id``."""
        return member_ids(self.members.get(resident_id))

    def _add_member(self, resident_id: str, device_id: str) -> None:
        held = self.members.get(resident_id)
        if held is None:
            self.members[resident_id] = device_id
        elif device_id not in member_ids(held):
            self.members[resident_id] = (*member_ids(held), device_id)

    def _discard_member(self, resident_id: str, device_id: str) -> None:
        held = member_ids(self.members.get(resident_id))
        if device_id not in held:
            return
        rest = tuple(d for d in held if d != device_id)
        if not rest:
            del self.members[resident_id]
        else:
            self.members[resident_id] = rest[0] if len(rest) == 1 else rest

    def _sort_dirty(self) -> None:
        for device_id in self.devices.dirty:
            resident_id = self.owner.get(device_id)
            if resident_id is not None:
                self._dirty.setdefault(self.slice_of(resident_id), set()).add(resident_id)
        self.devices.dirty.clear()
        for resident_id in self.residents.dirty:
            self._dirty.setdefault(self.slice_of(resident_id), set()).add(resident_id)
        self.residents.dirty.clear()

    def dirty_residents(self, part: int | None = None) -> set[str]:
        """Residents whose own state or a device's state changed since the last snapshot (of
        slice ``part`` only, if given)."""
        self._sort_dirty()
        if part is None:
            return set().union(*self._dirty.values())
        return set(self._dirty.get(part, ()))

    def snapshot(self, residents: Iterable[str]) -> list[tuple[int, bytes, bytes]]:
        """(partition, key, value) records holding ``residents``; clears them dirty.

        Each partition's residents go into its next key's record (more keys for more than
        ``RECORD_RESIDENTS``), with the residents at home in that key carried forward, every
        one serialised from its live objects (its forms saved, serialised and dropped again)."""
        wanted = {r for r in residents if r in self.partition}
        self._sort_dirty()
        for resident_id in wanted:
            self._dirty.get(self.slice_of(resident_id), set()).discard(resident_id)
        by_partition: dict[int, list[str]] = {}
        for resident_id in sorted(wanted):
            by_partition.setdefault(self.partition[resident_id], []).append(resident_id)
        records = []
        for partition, chosen in sorted(by_partition.items()):
            for at in range(0, len(chosen), RECORD_RESIDENTS):
                records.append(self._write(partition, chosen[at : at + RECORD_RESIDENTS]))
        return records

    def _write(self, partition: int, chosen: list[str]) -> tuple[int, bytes, bytes]:
        """One record: ``chosen`` and the residents carried forward, in the partition's next key."""
        key = self.cursor.get(partition, 0)
        self.cursor[partition] = (key + 1) % self.bucket_count
        bucket = (partition, key)
        held = sorted({*self.at_home(bucket), *chosen})
        for resident_id in chosen:
            self.home[resident_id] = key
        self.buckets[bucket] = held
        value = encode_bucket({r: self._resident_blob(r) for r in held})
        return partition, bucket_key(bucket), value

    def _resident_blob(self, resident_id: str) -> dict[str, Any]:
        devices = {}
        for device_id in sorted(self.devices_of(resident_id)):
            form = self.device_form(device_id)
            if form is not None:
                devices[device_id] = form
        return {"r": self.resident_form(resident_id), "d": devices}

    def load(self, items: Iterable[tuple[bytes, bytes]], partitions: set[int]) -> int:
        """Take the snapshots of ``partitions`` that this worker does not hold live yet.

        ``items``: each key's last record, in the order they were written (offset order within
        a partition): a resident's newest copy is the last one read."""
        held = set(self.partition.values())
        loaded: set[str] = set()
        for key, value in items:
            bucket = parse_bucket_key(key)
            if bucket is None or bucket[0] not in partitions or bucket[0] in held:
                continue
            try:
                body = decode_bucket(value)
            except (orjson.JSONDecodeError, zlib.error, RuntimeError):
                log.error("snapshot %s unreadable: its residents start afresh", key.decode())
                continue
            partition, home = bucket
            self.cursor[partition] = (home + 1) % self.bucket_count
            self.buckets[bucket] = list(body)
            for resident_id, blob in body.items():
                if resident_id in loaded:  # an older copy read before: this one replaces it
                    self._unload(resident_id)
                self.partition[resident_id] = partition
                self.home[resident_id] = home
                if blob.get("r") is not None:
                    dict.__setitem__(self.residents, resident_id, blob["r"])
                for device_id, state in (blob.get("d") or {}).items():
                    dict.__setitem__(self.devices, device_id, state)
                    self.owner[device_id] = resident_id
                    self._add_member(resident_id, device_id)
                loaded.add(resident_id)
        return len(loaded)

    def _unload(self, resident_id: str) -> None:
        """Forget a loaded copy of the resident (a newer one follows)."""
        self._leave_home(resident_id)
        dict.pop(self.residents, resident_id, None)
        for device_id in member_ids(self.members.pop(resident_id, None)):
            if self.owner.get(device_id) == resident_id:
                del self.owner[device_id]
                dict.pop(self.devices, device_id, None)

    def moved(self, owner_of: Callable[[str], str | None]) -> list[str]:
        """Forget the devices the registry now gives to another resident (or to nobody): their
        readings go to the new resident's partition, whose owner starts them afresh, and a
        state left here would go on ticking (a stale ``silent`` alert). Returns their ids."""
        gone = [d for d, r in self.owner.items() if owner_of(d) != r]
        for device_id in gone:
            resident_id = self.owner.pop(device_id)
            self._discard_member(resident_id, device_id)
            self.devices.dirty.discard(device_id)
            self.residents.dirty.add(resident_id)  # its snapshot no longer holds the device
        return gone

    def drop(self, partitions: set[int]) -> tuple[list[str], list[str]]:
        """Forget the partitions another worker now owns: (device ids, resident ids) dropped."""
        residents = [r for r, p in self.partition.items() if p in partitions]
        devices: list[str] = []
        for resident_id in residents:
            self._leave_home(resident_id)
            del self.partition[resident_id]
            self.residents.dirty.discard(resident_id)
            self._dirty.get(self.slice_of(resident_id), set()).discard(resident_id)
            for device_id in member_ids(self.members.pop(resident_id, None)):
                if self.owner.get(device_id) == resident_id:
                    del self.owner[device_id]
                    self.devices.dirty.discard(device_id)
                    devices.append(device_id)
        for partition in partitions:
            self.cursor.pop(partition, None)
        self.buckets = {b: m for b, m in self.buckets.items() if b[0] not in partitions}
        return devices, residents
