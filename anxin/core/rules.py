"""The registry as the processes that page nobody read it (the bridge, the detector worker):
a resident's devices and the rules its detectors follow, in slotted objects.

The file is read and validated one resident at a time, as every process reads it
(``residents_one_by_one``), and each resident is kept at once as a ``ResidentRules``: its
devices (the validated entries), its fences, time zone, vitals settings and fall confirmation;
its models are dropped before the next resident is read. A resident with a watch and a fence
held ~1,060 B as frozen pydantic models without personal data (a model object and a dict of its
values each for the resident, its fence and the fence's circle) and ~500 B so, its one device
held as a ``OneDevice`` (issue 16: the memory per device of the worker and of the bridge). No
name, address or contact is kept.

A reload keeps the ``ResidentRules`` of every resident whose rules did not change (the same
object), as ``load_registry`` keeps unchanged models: what the detectors cached for a resident
(its fences) stays valid.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anxin.core.registry import (
    Device,
    FallConfirm,
    FileWatcher,
    Geofence,
    Registry,
    Resident,
    VitalsOverrides,
    check_ids,
    device_index,
    load_registry,
    own_ids,
    owner_of,
    residents_one_by_one,
)


class OneDevice(Mapping[str, Device]):
    """A resident's only device as a read-only mapping: most residents wear one, and a dict of
    one key takes 184 bytes where this takes 48 (its key is the registry's own id string)."""

    __slots__ = ("_device", "_id")

    def __init__(self, device_id: str, device: Device):
        self._id, self._device = device_id, device

    def __getitem__(self, key: str) -> Device:
        if key == self._id:
            return self._device
        raise KeyError(key)

    def get(self, key: str, default: Any = None, /) -> Any:  # Mapping.get without a raise
        return self._device if key == self._id else default

    def __contains__(self, key: object) -> bool:
        return key == self._id

    def __iter__(self) -> Iterator[str]:
        yield self._id

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return repr({self._id: self._device})


def devices_rules(devices: dict[str, Device]) -> Mapping[str, Device]:
    """``devices`` as held in the rules: one device as a ``OneDevice``, else the dict itself."""
    if len(devices) == 1:
        ((device_id, device),) = devices.items()
        return OneDevice(device_id, device)
    return devices


@dataclass(frozen=True, slots=True)
class CircleRules:
    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class FenceRules:
    name: str
    circle: CircleRules | None
    polygon: tuple[tuple[float, float], ...] | None
    active: str


@dataclass(frozen=True, slots=True)
class ResidentRules:
    """What the detectors read of a resident (the fields of ``Resident`` of the same names)."""

    timezone: str
    devices: Mapping[str, Device]  # ``OneDevice`` for the usual one, else a dict
    geofences: tuple[FenceRules, ...]
    vitals: VitalsOverrides
    check_timeout_s: int
    fall_confirm: FallConfirm


def fence_rules(fence: Geofence) -> FenceRules:
    circle = fence.circle
    return FenceRules(
        fence.name,
        None if circle is None else CircleRules(circle.lat, circle.lon, circle.radius_m),
        None if fence.polygon is None else tuple(fence.polygon),
        fence.active,
    )


def fence_dict(fence: Geofence | FenceRules) -> dict[str, Any]:
    """A fence in the registry file's shape (what ``Geofence.model_dump(exclude_none=True)``
    gives), from either form."""
    out: dict[str, Any] = {"name": fence.name}
    if fence.circle is not None:
        c = fence.circle
        out["circle"] = {"lat": c.lat, "lon": c.lon, "radius_m": c.radius_m}
    if fence.polygon is not None:
        out["polygon"] = [tuple(p) for p in fence.polygon]
    out["active"] = fence.active
    return out


def resident_rules(resident: Resident) -> ResidentRules:
    return ResidentRules(
        resident.timezone,
        devices_rules(resident.devices),
        tuple(fence_rules(f) for f in resident.geofences),
        resident.vitals,
        resident.check_timeout_s,
        resident.fall_confirm,
    )


class Rules:
    """Every resident's ``ResidentRules``, and which resident each device belongs to."""

    __slots__ = ("_device_index", "residents")

    def __init__(self, residents: dict[str, ResidentRules] | None = None):
        self.residents: dict[str, ResidentRules] = residents or {}
        self._device_index = device_index(self.residents)

    def device_owner(self, device_id: str) -> tuple[str, ResidentRules, Device] | None:
        """The resident id, resident and device entry of a device, or None when unknown."""
        return owner_of(self.residents, self._device_index, device_id)

    def own_ids(self, device_id: str, resident_id: str) -> tuple[str, str]:
        """The string objects held here equal to ``device_id`` and ``resident_id``
        (``Registry.own_ids``)."""
        return own_ids(self.residents, self._device_index, device_id, resident_id)


def rules_of(registry: Registry, previous: Rules | None = None) -> Rules:
    """``registry``'s rules; a resident whose rules equal those in ``previous`` keeps them."""
    before = previous.residents if previous is not None else {}
    residents: dict[str, ResidentRules] = {}
    for resident_id, resident in registry.residents.items():
        rules = resident_rules(resident)
        same = before.get(resident_id)
        residents[resident_id] = same if same is not None and same == rules else rules
    return Rules(residents)


def load_rules(path: Path, previous: Rules | None = None) -> Rules:
    """The rules of a registry file, each resident's kept as soon as it is validated (its models
    freed before the next is read, so the process never holds the file as models too); a file
    that does not load so is loaded as ``load_registry`` loads it, for the same rules or the
    same errors (``ConfigError``)."""
    before = previous.residents if previous is not None else {}

    def keep(resident_id: str, resident: Resident) -> ResidentRules:
        rules = resident_rules(resident)
        same = before.get(resident_id)
        return same if same is not None and same == rules else rules

    try:
        with path.open("rb") as stream:
            residents = residents_one_by_one(stream, keep)
        check_ids(residents or {})
        return Rules(residents)
    except Exception:  # invalid or unusual: the registry's own path decides, and words errors
        return rules_of(load_registry(path, strip=True), previous)


class RulesWatcher(FileWatcher[Rules]):
    """The current rules of a running bridge or detector worker, re-read when the registry
    changes."""

    def _load(self, previous: Rules | None) -> Rules:
        return load_rules(self.path, previous)


AnyRegistry = Registry | Rules
AnyResident = Resident | ResidentRules
