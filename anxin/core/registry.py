"""The registry of residents, devices, geofences and family contacts (DESIGN.md contract).

Every worker loads the same YAML file (setting ``registry``) and re-reads it when it changes on
disk (checked every ``registry_reload_s``): edit the file, or replace it atomically, and the
running processes pick it up. An invalid new version is refused with its errors logged and the
previous one stays in force, so a typo never blinds the pipeline.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Circle(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(gt=0)


class Geofence(_Strict):
    name: str = Field(min_length=1)
    circle: Circle | None = None
    polygon: list[tuple[float, float]] | None = None
    active: str = "00:00-24:00"

    @field_validator("active")
    @classmethod
    def _window(cls, v: str) -> str:
        if not _WINDOW.match(v):
            raise ValueError('must look like "HH:MM-HH:MM" (24:00 allowed as an end)')
        return v

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


class Resident(_Strict):
    name: str = Field(min_length=1)
    timezone: str = "UTC"
    language: str = "zh-CN"
    address: str | None = None
    devices: dict[str, Device] = Field(default_factory=dict)
    geofences: list[Geofence] = Field(default_factory=list)
    vitals: VitalsOverrides = Field(default_factory=VitalsOverrides)
    family: list[Contact] = Field(default_factory=list)
    escalation: str = "default"
    check_timeout_s: int = Field(default=30, ge=5)  # at most FALL_WAIT_MAX_S
    fall_confirm: FallConfirm = Field(default_factory=FallConfirm)

    @field_validator("check_timeout_s")
    @classmethod
    def _check_within(cls, v: int) -> int:
        return int(_fall_wait(v))

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return known_timezone(v)

    @field_validator("devices")
    @classmethod
    def _device_ids(cls, v: dict[str, Device]) -> dict[str, Device]:
        for device_id in v:
            if not _ID.match(device_id):
                raise ValueError(f"device id {device_id!r} must match {ID_PATTERN}")
        return v


class Registry(_Strict):
    residents: dict[str, Resident] = Field(default_factory=dict)
    _device_index: dict[str, tuple[str, Device]] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_devices(self) -> Registry:
        seen: dict[str, str] = {}
        for resident_id, resident in self.residents.items():
            if not _ID.match(resident_id):
                raise ValueError(f"resident id {resident_id!r} must match {ID_PATTERN}")
            for device_id in resident.devices:
                if device_id in seen:
                    raise ValueError(
                        f"device {device_id} belongs to both {seen[device_id]} and {resident_id}"
                    )
                seen[device_id] = resident_id
        return self

    def device_owner(self, device_id: str) -> tuple[str, Resident, Device] | None:
        """The resident id, resident and device entry of a device, or None when unknown."""
        index = self._index()
        found = index.get(device_id)
        if found is None:
            return None
        resident_id, device = found
        return resident_id, self.residents[resident_id], device

    def _index(self) -> dict[str, tuple[str, Device]]:
        if self._device_index is None:
            self._device_index = {
                device_id: (resident_id, device)
                for resident_id, resident in self.residents.items()
                for device_id, device in resident.devices.items()
            }
        return self._device_index


def load_registry(path: Path) -> Registry:
    """Load and validate a registry file; raises ConfigError naming file, line and field."""
    return load_yaml_model(path, Registry)


class RegistryWatcher:
    """The current registry of a running process, re-read when its file changes."""

    def __init__(self, path: Path, reload_every_s: float = 5.0):
        self.path = path
        self.reload_every_s = reload_every_s
        self._registry = load_registry(path)
        self._mtime = self._stat()
        self._checked = time.monotonic()

    def _stat(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    @property
    def current(self) -> Registry:
        now = time.monotonic()
        if now - self._checked >= self.reload_every_s:
            self._checked = now
            mtime = self._stat()
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self._registry = load_registry(self.path)
                    log.info("registry reloaded: %d residents", len(self._registry.residents))
                except ConfigError as exc:
                    log.error("registry change refused, keeping the previous one:\n%s", exc)
        return self._registry
