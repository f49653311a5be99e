"""Contacts, the duty rota and escalation policies: the YAML file beside the registry.

Family comes from the registry; nurses, backup nurses and emergency responders are defined here,
with a rota by local time of day for the duty nurse. A policy is a list of steps (who, how, how long
to wait for an acknowledgement) repeated a number of times; each resident picks a policy by name
(``escalation:`` in the registry), per severity. See ``alerts/README.md``.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from anxin.core.registry import ID_PATTERN, Registry, Resident, known_timezone
from anxin.core.yamlfile import load_yaml_model

Channel = Literal["voice", "sms", "device"]
UNTIL_ACK = "until_acknowledged"
BUILTIN_ROLES = ("family", "wearer")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
# Names defined in the file being validated, so references fail at their own line and field.
_CONTACTS: ContextVar[frozenset[str] | None] = ContextVar("contacts", default=None)
_NOTIFIABLE: ContextVar[frozenset[str] | None] = ContextVar("notifiable", default=None)
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-(([01]\d|2[0-3]):([0-5]\d)|24:00)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContactEntry(_Strict):
    name: str = Field(min_length=1)  # personal data: said on the phone, never logged
    phone: str
    language: str | None = None  # default: the resident's language

    @field_validator("phone")
    @classmethod
    def _e164(cls, v: str) -> str:
        if not _PHONE.match(v):
            raise ValueError("must be an E.164 number such as +8613800000001")
        return v


def _known_contacts(v: list[str]) -> list[str]:
    known = _CONTACTS.get()
    if known is not None:
        for contact_id in v:
            if contact_id not in known:
                raise ValueError(f"unknown contact {contact_id!r} (define it under contacts)")
    return v


class Shift(_Strict):
    hours: str  # local "HH:MM-HH:MM", may wrap midnight
    contacts: list[str] = Field(min_length=1)

    _check_contacts = field_validator("contacts")(_known_contacts)

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str) -> str:
        if not _HOURS.match(v):
            raise ValueError('must look like "HH:MM-HH:MM" (24:00 allowed as an end)')
        return v

    def covers(self, minute_of_day: int) -> bool:
        start_s, end_s = self.hours.split("-")
        start = int(start_s[:2]) * 60 + int(start_s[3:])
        end = int(end_s[:2]) * 60 + int(end_s[3:])
        if start <= end:
            return start <= minute_of_day < end
        return minute_of_day >= start or minute_of_day < end  # wraps midnight


class Role(_Strict):
    contacts: list[str] = Field(default_factory=list)  # always on
    rota: list[Shift] = Field(default_factory=list)  # on by time of day

    _check_contacts = field_validator("contacts")(_known_contacts)

    @model_validator(mode="after")
    def _someone(self) -> Role:
        if not self.contacts and not self.rota:
            raise ValueError("give contacts or a rota")
        return self


class Step(_Strict):
    notify: list[str] = Field(min_length=1)  # role names or contact ids
    via: list[Channel] = Field(min_length=1)
    wait_s: float = Field(gt=0)  # for an acknowledgement before the next step

    @field_validator("notify")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        known = _NOTIFIABLE.get()
        if known is not None:
            for who in v:
                if who not in known:
                    raise ValueError(f"{who!r} is neither a role nor a contact")
        return v


class Chain(_Strict):
    steps: list[Step] = Field(min_length=1)
    # Extra passes through the chain after the first, or "until_acknowledged".
    repeat: int | Literal["until_acknowledged"] = 0

    @field_validator("repeat")
    @classmethod
    def _repeat(cls, v: int | str) -> int | str:
        if isinstance(v, int) and v < 0:
            raise ValueError("must be >= 0 or until_acknowledged")
        return v

    def passes(self) -> int | None:
        """How many passes in all; None means until acknowledged."""
        return None if self.repeat == UNTIL_ACK else int(self.repeat) + 1


class Policy(_Strict):
    critical: Chain
    warning: Chain


class PolicyFile(_Strict):
    timezone: str = "UTC"  # of the rota
    contacts: dict[str, ContactEntry] = Field(default_factory=dict)
    roles: dict[str, Role] = Field(default_factory=dict)
    policies: dict[str, Policy] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return known_timezone(v)

    @field_validator("contacts")
    @classmethod
    def _ids(cls, v: dict[str, ContactEntry]) -> dict[str, ContactEntry]:
        for contact_id in v:
            if not re.match(ID_PATTERN, contact_id) or ":" in contact_id:
                raise ValueError(f"contact id {contact_id!r} must match {ID_PATTERN}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: object) -> object:
        """Publish this file's contact and role names to the nested validators."""
        if isinstance(data, dict):
            contacts = data.get("contacts") or {}
            roles = data.get("roles") or {}
            c = frozenset(contacts) if isinstance(contacts, dict) else frozenset()
            r = frozenset(roles) if isinstance(roles, dict) else frozenset()
            _CONTACTS.set(c)
            _NOTIFIABLE.set(c | r | frozenset(BUILTIN_ROLES))
        return data

    @field_validator("roles")
    @classmethod
    def _builtin(cls, v: dict[str, Role]) -> dict[str, Role]:
        for name in v:
            if name in BUILTIN_ROLES:
                raise ValueError(f"{name} is built in (taken from the registry)")
        return v

    @field_validator("policies")
    @classmethod
    def _default(cls, v: dict[str, Policy]) -> dict[str, Policy]:
        if "default" not in v:
            raise ValueError("a policy named 'default' is required")
        return v


def load_policies(path: Path) -> PolicyFile:
    """Load and validate; raises ConfigError naming file, line and field."""
    tokens = (_CONTACTS.set(None), _NOTIFIABLE.set(None))
    try:
        return load_yaml_model(path, PolicyFile)
    finally:
        _CONTACTS.reset(tokens[0])
        _NOTIFIABLE.reset(tokens[1])


@dataclass(frozen=True)
class Recipient:
    """Someone to tell: ``role`` and ``contact_id`` are what logs and topics carry."""

    role: str
    contact_id: str
    name: str
    phone: str | None  # None for the wearer's device
    language: str | None

    @property
    def by(self) -> str:
        return f"{self.role}:{self.contact_id}"


def family_contact_id(resident_id: str, index: int, explicit: str | None) -> str:
    """Stable id of a family member: their own ``id`` or ``R001-0``."""
    return explicit or f"{resident_id}-{index}"


class Directory:
    """Who is who: contacts of the policy file plus each resident's family from the registry."""

    def __init__(self, policies: PolicyFile, registry: Registry):
        self.policies = policies
        self.registry = registry
        self._tz = ZoneInfo(policies.timezone)

    def policy_for(self, resident: Resident | None, severity: str) -> tuple[str, Chain]:
        name = resident.escalation if resident else "default"
        policy = self.policies.policies.get(name)
        if policy is None:
            name, policy = "default", self.policies.policies["default"]
        return name, policy.critical if severity == "critical" else policy.warning

    def chain(self, policy_name: str, severity: str) -> Chain:
        policy = self.policies.policies.get(policy_name) or self.policies.policies["default"]
        return policy.critical if severity == "critical" else policy.warning

    def _contact(self, role: str, contact_id: str) -> Recipient:
        entry = self.policies.contacts[contact_id]
        return Recipient(role, contact_id, entry.name, entry.phone, entry.language)

    def resolve(self, who: str, resident_id: str, now: float) -> list[Recipient]:
        """The people a step's ``notify`` entry means at time ``now``."""
        resident = self.registry.residents.get(resident_id)
        if who == "family":
            if resident is None:
                return []
            return [
                Recipient(
                    "family",
                    family_contact_id(resident_id, i, member.id),
                    member.name,
                    member.phone,
                    None,
                )
                for i, member in enumerate(resident.family)
            ]
        if who == "wearer":
            return []  # the wearer is reached through the device channel
        if who in self.policies.roles:
            role = self.policies.roles[who]
            ids = list(role.contacts)
            if role.rota:
                local = datetime.fromtimestamp(now, self._tz)
                minute = local.hour * 60 + local.minute
                for shift in role.rota:
                    if shift.covers(minute):
                        ids.extend(shift.contacts)
            return [self._contact(who, c) for c in dict.fromkeys(ids)]
        if who in self.policies.contacts:
            return [self._contact("contact", who)]
        return []

    def find(self, contact_id: str) -> Recipient | None:
        """A contact by id (policy contacts or ``family:R:i`` / explicit family ids)."""
        if contact_id in self.policies.contacts:
            return self._contact("contact", contact_id)
        for resident_id, resident in self.registry.residents.items():
            for i, member in enumerate(resident.family):
                if family_contact_id(resident_id, i, member.id) == contact_id:
                    return Recipient("family", contact_id, member.name, member.phone, None)
        return None

    def by_phone(self, phone: str) -> list[str]:
        """Contact ids with this number (an inbound SMS names only its sender's number)."""
        out = [cid for cid, c in self.policies.contacts.items() if c.phone == phone]
        for resident_id, resident in self.registry.residents.items():
            for i, member in enumerate(resident.family):
                if member.phone == phone:
                    out.append(family_contact_id(resident_id, i, member.id))
        return out


def policies_path(configured: Path, registry_path: Path) -> Path:
    """A relative policies path is taken beside the registry."""
    return configured if configured.is_absolute() else registry_path.parent / configured


class DirectorySource:
    """The current Directory of a running process: registry and policy file re-read on change;
    an invalid new policy file is refused (logged) and the previous one stays in force."""

    def __init__(self, policies_file: Path, registry_file: Path, reload_every_s: float = 5.0):
        from anxin.core.registry import RegistryWatcher

        self.policies_file = policies_file
        self._registry = RegistryWatcher(registry_file, reload_every_s)
        self._policies = load_policies(policies_file)  # at start: an error is fatal
        self._mtime = self._stat()
        self._directory = Directory(self._policies, self._registry.current)

    def _stat(self) -> float:
        try:
            return self.policies_file.stat().st_mtime
        except OSError:
            return 0.0

    def __call__(self) -> Directory:
        from anxin.core.logs import get_logger
        from anxin.core.yamlfile import ConfigError

        registry = self._registry.current
        mtime = self._stat()
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self._policies = load_policies(self.policies_file)
                get_logger(__name__).info("policies reloaded")
            except ConfigError as exc:
                get_logger(__name__).error("policy change refused, keeping the previous:\n%s", exc)
        if (
            registry is not self._directory.registry
            or self._policies is not self._directory.policies
        ):
            self._directory = Directory(self._policies, registry)
        return self._directory
