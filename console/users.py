"""Console accounts: a YAML users file with argon2id hashes (argon2-cffi).

```yaml
users:
  li:                          # login name
    role: nurse                # nurse | operator
    contact_id: nurse-li       # who this is in alerts.yaml: acks say duty_nurse:nurse-li
    password_hash: "$argon2id$v=19$m=65536,t=3,p=4$..."
```

Written by ``anxin console add-user``; re-read when it changes, so removing a user ends their
sessions at their next request.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field

ROLES = ("nurse", "operator")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) defaults
# Verified against when the user does not exist, so a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash("not a password of anyone")


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["nurse", "operator"]
    password_hash: str = Field(min_length=20)
    contact_id: str | None = Field(default=None, pattern=NAME.pattern)


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    users: dict[str, UserEntry] = Field(default_factory=dict)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    contact_id: str

    @property
    def by_role(self) -> str:
        """The role an acknowledgement is recorded under (``by = role:contact-id``)."""
        return "duty_nurse" if self.role == "nurse" else self.role

    @property
    def by(self) -> str:
        return f"{self.by_role}:{self.contact_id}"

    @property
    def can_act(self) -> bool:
        """Nurses acknowledge and resolve; operators see everything but change nothing."""
        return self.role == "nurse"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def load_users(path: Path) -> UsersFile:
    if not path.exists():
        return UsersFile()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return UsersFile.model_validate(data)


def add_user(
    path: Path, name: str, role: str, password: str, contact_id: str | None = None
) -> None:
    """Add or replace one account; the file is rewritten atomically with mode 600."""
    if not NAME.match(name):
        raise ValueError(f"user name must match {NAME.pattern}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise ValueError("the password needs at least 8 characters")
    current = load_users(path)
    users = {k: v.model_dump(exclude_none=True) for k, v in current.users.items()}
    entry: dict[str, str] = {"role": role, "password_hash": hash_password(password)}
    if contact_id:
        entry["contact_id"] = contact_id
    users[name] = entry
    UsersFile.model_validate({"users": users})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".users-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump({"users": users}, f, allow_unicode=True, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UserStore:
    """The current users file of a running console, re-read when its file changes."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._users = UsersFile()
        self._reload()

    def _reload(self) -> None:
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            mtime = 0.0
        if mtime == self._mtime:
            return
        with self._lock:
            self._users = load_users(self.path)
            self._mtime = mtime

    def get(self, name: str) -> User | None:
        self._reload()
        entry = self._users.users.get(name)
        if entry is None:
            return None
        return User(name, entry.role, entry.contact_id or name)

    def verify(self, name: str, password: str) -> User | None:
        """The user when the password matches; None otherwise (in about the same time)."""
        self._reload()
        entry = self._users.users.get(name)
        try:
            _hasher.verify(entry.password_hash if entry else _DUMMY, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if entry is None:
            return None
        return User(name, entry.role, entry.contact_id or name)

    def __len__(self) -> int:
        self._reload()
        return len(self._users.users)
