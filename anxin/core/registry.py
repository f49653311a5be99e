"""The registry of residents, devices, geofences and family contacts (DESIGN.md contract).

Every worker loads the same YAML file (setting ``registry``) and re-reads it when it changes on
disk (checked every ``registry_reload_s``): edit the file, or replace it atomically, and the
running processes pick it up. An invalid new version is refused with its errors logged and the
previous one stays in force, so a typo never blinds the pipeline.

Every process holds the registry, so it is kept compact (bench/registry.py; issue 16: at most
2 KB per resident, 1.6-1.8 KB for a resident with a watch, a fence and a contact): the file is
parsed one resident at a time (the whole YAML document at once held ~18 KB per resident of
parser nodes at its peak, which the process then kept as RSS); equal immutable parts (a device
``{placement: wrist}``, the default ``vitals`` and ``fall_confirm``) are one shared instance;
repeated strings (time zones, languages, escalations, relations, fence names and windows) are
interned; the models of a kind given the same fields share one ``model_fields_set``; each
model's field values live in a key-sharing dict (PEP 412). Models stay frozen pydantic models:
attribute access, ``model_dump``, copies and validation are unchanged. The processes that page
nobody (the bridge, the detector worker) keep only each resident's rules, in slotted objects
(``anxin/core/rules.py``: ~650 B a resident).
"""

from __future__ import annotations

import re
import sys
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, Generic, Literal, Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from anxin.core.logs import get_logger
from anxin.core.yamlfile import ConfigError, load_yaml_model

log = get_logger(__name__)

ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_ID = re.compile(ID_PATTERN)
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-(([01]\d|2[0-3]):[0-5]\d|24:00)$")


def known_timezone(name: str) -> str:
    """A validator: ``name`` must be an IANA time zone."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not a known IANA time zone (e.g. Asia/Shanghai)") from None
    return name


# One ``model_fields_set`` per set of field names given: pydantic makes a set per instance (216
# bytes, 728 from six names), the same few sets for every resident. Never mutated in place:
# models are frozen, and ``model_copy`` copies the set before it updates it.
_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
# Equal immutable sub-models, one instance each while any registry holds it.
_SHARED: weakref.WeakValueDictionary[tuple[Any, ...], _Strict] = weakref.WeakValueDictionary()
S = TypeVar("S", bound="_Strict")


def _interned(v: str) -> str:
    """A repeated, non-personal string (time zone, language, ...): one object for every resident."""
    return sys.intern(v)


_NUMBERS: dict[float, float] = {}


def _number(v: float) -> float:
    """A repeated number (a fence's radius): one float object for the first 1,024 values seen."""
    if len(_NUMBERS) < 1024:
        return _NUMBERS.setdefault(v, v)
    return _NUMBERS.get(v, v)


def _canonical(model: S) -> S:
    """An equal instance already held (same class, values and fields given), else ``model``."""
    try:
        values = ((type(v), v) for v in model.__dict__.values())  # 1 and 1.0 stay apart
        key = (type(model), frozenset(model.model_fields_set), *values)
        return _SHARED.setdefault(key, model)  # type: ignore[return-value]
    except TypeError:  # unhashable values (a polygon's list): keep its own
        return model


# A plain class per model, whose instances' attribute dicts share one table of keys (PEP 412):
# such a dict holds only its values (11 fields: 160 bytes instead of 464).
_HOLDERS: dict[type, type] = {}


def _key_sharing(values: dict[str, Any], model: type) -> dict[str, Any]:
    """``values`` as a key-sharing dict when that is smaller (CPython), else ``values``."""
    holder = _HOLDERS.get(model)
    if holder is None:
        holder = _HOLDERS.setdefault(model, type(f"_{model.__name__}Fields", (), {}))
    instance = holder()
    for name, value in values.items():  # not dict.update: that copies the other's key table
        setattr(instance, name, value)
    compact: dict[str, Any] = instance.__dict__
    return compact if sys.getsizeof(compact) < sys.getsizeof(values) else values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _compact(self: S) -> S:
        """Hold the same fields in less memory (never changes a value or what was given)."""
        given = self.__pydantic_fields_set__
        one = _FIELDS_SETS.setdefault(frozenset(given), given)
        if one is not given:
            object.__setattr__(self, "__pydantic_fields_set__", one)
        values = self.__dict__
        compact = _key_sharing(values, type(self))
        if compact is not values:
            object.__setattr__(self, "__dict__", compact)
        return self


class Circle(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0)

    @field_validator("radius_m")
    @classmethod
    def _radius(cls, v: float) -> float:
        return _number(v)


class Geofence(_Strict):
    name: str = Field(min_length=1)
    circle: Circle | None = None
    polygon: list[tuple[float, float]] | None = None
    active: str = "00:00-24:00"

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _interned(v)

    @field_validator("active")
    @classmethod
    def _window(cls, v: str) -> str:
        if not _WINDOW.match(v):
            raise ValueError('must look like "HH:MM-HH:MM" (24:00 allowed as an end)')
        return _interned(v)

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if v is None:
            return v
        if len(v) < 3:
            raise ValueError("a polygon needs at least 3 [lat, lon] points")
        for lat, lon in v:
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise ValueError("polygon points must be [lat, lon] in degrees")
        return v

    @model_validator(mode="after")
    def _one_shape(self) -> Geofence:
        if (self.circle is None) == (self.polygon is None):
            raise ValueError("give exactly one of circle or polygon")
        return self


# A device the registry gives no interval: a spot-check monitor reports when it is used, so it is
# never expected (None); anything worn is expected every 600 s until the detectors have learned
# its own cadence (detectors/device_health.py).
DEFAULT_EXPECTED_INTERVAL_S = 600.0
TYPE_EXPECTED_INTERVAL_S: dict[str, float | None] = {"monitor": None}


class Device(_Strict):
    placement: Literal["wrist", "waist", "pendant"] | None = None
    type: Literal["watch", "pendant", "monitor", "tracker"] | None = None
    # Silence longer than this is a ``device`` alert. None (the default): the detectors decide
    # from the type (a spot-check monitor is never "silent") and the device's learned cadence.
    expected_interval_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _kind(self) -> Device:
        if self.placement is None and self.type is None:
            raise ValueError("give a placement (wrist, waist, pendant) or a type (e.g. monitor)")
        return self

    @property
    def nominal_interval_s(self) -> float | None:
        """The registry's interval, else the type's default (None: reports only when used)."""
        if self.expected_interval_s is not None:
            return self.expected_interval_s
        return TYPE_EXPECTED_INTERVAL_S.get(self.type or "", DEFAULT_EXPECTED_INTERVAL_S)


class Contact(_Strict):
    name: str = Field(min_length=1)
    phone: str
    relation: str | None = None
    id: str | None = Field(default=None, pattern=ID_PATTERN)

    @field_validator("phone")
    @classmethod
    def _e164(cls, v: str) -> str:
        if not _PHONE.match(v):
            raise ValueError("must be an E.164 number: +, country code, then 7 to 15 digits in all")
        return v

    @field_validator("relation")
    @classmethod
    def _relation(cls, v: str | None) -> str | None:
        return v if v is None else _interned(v)


class VitalsOverrides(_Strict):
    spo2_scale: Literal[1, 2] = 1
    freshness_s: float = Field(default=900, gt=0)


# A fall suspected by the accelerometer must page within this of the impact (alarm practice:
# answered within 60 s); detecting it (data after the impact, transport, the timer tick) takes
# up to FALL_DETECT_BUDGET_S, so no confirmation wait may exceed the difference.
FALL_ALERT_WITHIN_S = 60
FALL_DETECT_BUDGET_S = 15
FALL_WAIT_MAX_S = FALL_ALERT_WITHIN_S - FALL_DETECT_BUDGET_S


def _fall_wait(v: float) -> float:
    if v > FALL_WAIT_MAX_S:
        raise ValueError(
            f"at most {FALL_WAIT_MAX_S} s: with up to {FALL_DETECT_BUDGET_S} s to detect the fall, "
            f"a longer wait would page later than {FALL_ALERT_WITHIN_S} s after the impact"
        )
    return v


class FallConfirm(_Strict):
    """How a suspected fall is confirmed early (detectors/fall_confirm.py); the window itself is
    ``check_timeout_s``."""

    still_s: float = Field(default=15, gt=0)  # lying still this long after the impact: page
    silence_s: float = Field(default=20, gt=0)  # device silent this long after it: page
    # A suspicion too weak to page unanswered, but strong enough to page when the device stops
    # reporting, waits this long after it was raised for that silence.
    silence_hold_s: float = Field(default=45, gt=0)

    @field_validator("still_s", "silence_s", "silence_hold_s")
    @classmethod
    def _within(cls, v: float) -> float:
        return _fall_wait(v)


_DEFAULT_VITALS = VitalsOverrides()
_DEFAULT_FALL_CONFIRM = FallConfirm()


class Resident(_Strict):
    name: str = Field(min_length=1)
    timezone: str = "UTC"
    language: str = "zh-CN"
    address: str | None = None
    devices: dict[str, Device] = Field(default_factory=dict)
    geofences: list[Geofence] = Field(default_factory=list)
    # the defaults: one shared (frozen) instance for every resident
    vitals: VitalsOverrides = Field(default_factory=lambda: _DEFAULT_VITALS)
    family: list[Contact] = Field(default_factory=list)
    escalation: str = "default"
    check_timeout_s: int = Field(default=30, ge=5)  # at most FALL_WAIT_MAX_S
    fall_confirm: FallConfirm = Field(default_factory=lambda: _DEFAULT_FALL_CONFIRM)

    @field_validator("check_timeout_s")
    @classmethod
    def _check_within(cls, v: int) -> int:
        return int(_fall_wait(v))

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return _interned(known_timezone(v))

    @field_validator("language", "escalation")
    @classmethod
    def _repeated(cls, v: str) -> str:
        return _interned(v)

    @field_validator("vitals", "fall_confirm")
    @classmethod
    def _shared(cls, v: S) -> S:
        return _canonical(v)

    @field_validator("devices")
    @classmethod
    def _device_ids(cls, v: dict[str, Device]) -> dict[str, Device]:
        for device_id in v:
            if not _ID.match(device_id):
                raise ValueError(f"device id {device_id!r} must match {ID_PATTERN}")
        for device_id, device in v.items():
            v[device_id] = _canonical(device)
        return v


class Registry(_Strict):
    residents: dict[str, Resident] = Field(default_factory=dict)
    # device id -> resident id (both strings already held by ``residents``)
    _device_index: dict[str, str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_devices(self) -> Registry:
        check_ids(self.residents)
        return self

    def device_owner(self, device_id: str) -> tuple[str, Resident, Device] | None:
        """The resident id, resident and device entry of a device, or None when unknown."""
        return owner_of(self.residents, self._index(), device_id)

    def own_ids(self, device_id: str, resident_id: str) -> tuple[str, str]:
        """The registry's own string objects equal to ``device_id`` and ``resident_id`` (the
        given ones where it has none): a process keeping per-device structures keyed by them
        holds each id once, not once more than the registry (two strings, ~110 B a device)."""
        return own_ids(self.residents, self._index(), device_id, resident_id)

    def _index(self) -> dict[str, str]:
        if self._device_index is None:
            self._device_index = device_index(self.residents)
        return self._device_index


class _HasDevices(Protocol):
    @property
    def devices(self) -> Mapping[str, Device]: ...


R = TypeVar("R", bound=_HasDevices)


def check_ids(residents: dict[str, R]) -> None:
    """Raise ValueError unless every resident id is well formed and no device has two owners."""
    seen: dict[str, str] = {}
    for resident_id, resident in residents.items():
        if not _ID.match(resident_id):
            raise ValueError(f"resident id {resident_id!r} must match {ID_PATTERN}")
        for device_id in resident.devices:
            if device_id in seen:
                raise ValueError(
                    f"device {device_id} belongs to both {seen[device_id]} and {resident_id}"
                )
            seen[device_id] = resident_id


def device_index(residents: dict[str, R]) -> dict[str, str]:
    """device id -> resident id (both strings already held by ``residents``)."""
    return {
        device_id: resident_id
        for resident_id, resident in residents.items()
        for device_id in resident.devices
    }


def owner_of(
    residents: dict[str, R], index: dict[str, str], device_id: str
) -> tuple[str, R, Device] | None:
    """The resident id, resident and device entry of a device, or None when unknown."""
    resident_id = index.get(device_id)
    if resident_id is None:
        return None
    resident = residents[resident_id]
    return resident_id, resident, resident.devices[device_id]


def own_ids(
    residents: dict[str, R], index: dict[str, str], device_id: str, resident_id: str
) -> tuple[str, str]:
    """The string objects ``residents`` holds equal to ``device_id`` and ``resident_id``."""
    owner = index.get(device_id)
    if owner is None or owner != resident_id:
        return device_id, resident_id
    for own in residents[owner].devices:  # one key for most residents
        if own == device_id:
            return own, owner
    return device_id, owner


def without_personal_data(resident: Resident) -> Resident:
    """``resident`` without its name, address and contacts, for a process that pages nobody
    (``anxin/core/rules.py`` reads the bridge's and the worker's rules from such residents when
    a file is not read one resident at a time): what it does not hold it cannot leak.

    In place, on a resident just validated and not yet shared: its own (key-sharing) dict keeps
    the other fields as they are. The name becomes "-" (the schema wants one)."""
    values = resident.__dict__
    values["name"], values["address"], values["family"] = "-", None, _NO_CONTACTS
    return resident


_NO_CONTACTS: list[Contact] = []  # shared by every resident stripped (never appended to)


def load_registry(path: Path, previous: Registry | None = None, strip: bool = False) -> Registry:
    """Load and validate a registry file; raises ConfigError naming file, line and field.

    A resident of ``previous`` (the version in force) that the file leaves as it was is kept:
    the same instance, so a reload holds only what changed twice. ``strip``: every resident
    ``without_personal_data`` (``previous`` must have been loaded so too).
    """
    try:
        # read by the parser as it goes: the file's text is never all in memory at once
        with path.open("rb") as stream:
            return _load_by_resident(stream, previous, strip)
    except Exception:  # invalid or unusual: the whole-document path decides, and words errors
        registry = load_yaml_model(path, Registry)
        for resident in registry.residents.values() if strip else ():
            without_personal_data(resident)
        return registry


def _identical(a: Any, b: Any) -> bool:
    """Equal values of the same types, and the same fields given, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, BaseModel):
        if a.model_fields_set != b.model_fields_set:
            return False
        a, b = a.__dict__, b.__dict__
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(v, b[k]) for k, v in a.items())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(map(_identical, a, b))
    return bool(a == b)


class _Unusual(Exception):
    """A shape the resident-by-resident path leaves to the whole-document path."""


# libyaml's events (the pure-Python parser when PyYAML was built without it) ...
_EVENTS: tuple[type, ...]
try:
    from yaml._yaml import CParser

    _EVENTS = (CParser,)
except ImportError:  # pragma: no cover
    _EVENTS = (yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser)


class _ResidentLoader(
    *_EVENTS,  # type: ignore[misc]
    yaml.composer.Composer,  # ... composed into nodes in Python, one resident at a time
    yaml.constructor.SafeConstructor,
    yaml.resolver.Resolver,
):
    def __init__(self, stream: BinaryIO):
        if len(_EVENTS) == 1:
            CParser.__init__(self, stream)
        else:  # pragma: no cover
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def next_object(self) -> Any:
        return self.construct_document(self.compose_node(None, None))  # type: ignore[arg-type]

    def start_mapping(self) -> None:
        """Enter a plain mapping (no anchor, tag or alias), else leave it to the other path."""
        event = self.peek_event()
        if not isinstance(event, yaml.MappingStartEvent) or event.anchor or event.tag:
            raise _Unusual
        self.get_event()


def _load_by_resident(
    stream: BinaryIO, previous: Registry | None = None, strip: bool = False
) -> Registry:
    """The registry of a document ``{residents: {id: {...}, ...}}``, parsed and validated one
    resident at a time (``residents_one_by_one``); ``previous``'s unchanged residents kept."""
    before = previous.residents if previous is not None else {}

    def keep(resident_id: str, resident: Resident) -> Resident:
        if strip:
            without_personal_data(resident)
        same = before.get(resident_id)
        return resident if same is None or not _identical(same, resident) else same

    residents = residents_one_by_one(stream, keep)
    return Registry() if residents is None else Registry(residents=residents)


V = TypeVar("V")


def residents_one_by_one(
    stream: BinaryIO, keep: Callable[[str, Resident], V]
) -> dict[str, V] | None:
    """``keep(id, resident)`` of every resident of a document ``{residents: {id: {...}, ...}}``,
    parsed and validated one at a time, so no more than one resident's parser nodes, dicts and
    models exist at once (None: an empty file).

    Anything else (another shape, anchors or merge keys at the top, a duplicate key) raises
    ``_Unusual``, an invalid resident its ValidationError: the caller then loads the whole
    document the usual way, for the same result or the usual errors (file, line and field).
    """
    if stream.read(2) in (b"\xff\xfe", b"\xfe\xff"):
        raise _Unusual  # UTF-16: this path reads UTF-8 only, and the other one says so
    stream.seek(0)
    loader = _ResidentLoader(stream)
    try:
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return None  # an empty file, as yaml.load's None
        loader.get_event()  # document start
        loader.start_mapping()
        kept: dict[str, V] | None = None
        while not loader.check_event(yaml.MappingEndEvent):
            key = loader.next_object()
            if key != "residents" or kept is not None:
                raise _Unusual
            kept = {}
            loader.start_mapping()
            while not loader.check_event(yaml.MappingEndEvent):
                resident_id = loader.next_object()
                if not isinstance(resident_id, str) or resident_id in kept:
                    raise _Unusual  # a duplicate or merge key, a number as id
                kept[resident_id] = keep(resident_id, Resident.model_validate(loader.next_object()))
            loader.get_event()  # mapping end
        loader.get_event()  # mapping end
        loader.get_event()  # document end
        if not loader.check_event(yaml.StreamEndEvent):
            raise _Unusual  # more than one document: an error the other path words
        return {} if kept is None else kept
    finally:
        loader.dispose()


class _HasResidents(Protocol):
    @property
    def residents(self) -> Mapping[str, object]: ...


W = TypeVar("W", bound=_HasResidents)


class FileWatcher(Generic[W]):
    """A value loaded from a file, loaded again when the file changes (checked at most every
    ``reload_every_s``); a new version that does not load is refused and the last one kept."""

    def __init__(self, path: Path, reload_every_s: float = 5.0):
        self.path = path
        self.reload_every_s = reload_every_s
        self._value = self._load(None)
        self._mtime = self._stat()
        self._checked = time.monotonic()

    def _load(self, previous: W | None) -> W:
        raise NotImplementedError

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    @property
    def current(self) -> W:
        now = time.monotonic()
        if now - self._checked >= self.reload_every_s:
            self._checked = now
            mtime = self._stat()
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self._value = self._load(self._value)
                    log.info("registry reloaded: %d residents", len(self._value.residents))
                except ConfigError as exc:
                    log.error("registry change refused, keeping the previous one:\n%s", exc)
        return self._value


class RegistryWatcher(FileWatcher[Registry]):
    """The current registry of a running process, re-read when its file changes."""

    def __init__(self, path: Path, reload_every_s: float = 5.0, strip: bool = False):
        """``strip``: residents ``without_personal_data`` (a process that pages nobody)."""
        self.strip = strip
        super().__init__(path, reload_every_s)

    def _load(self, previous: Registry | None) -> Registry:
        return load_registry(self.path, previous, strip=self.strip)
