"""The console's login throttle and sessions, over real HTTP against real uvicorn consoles.

Two console processes on the session's PostgreSQL: one with the default settings (no trusted
proxy) and one that trusts 127.0.0.1 as its reverse proxy. Each test speaks from its own
loopback source address (127.0.0.x; Linux routes all of 127/8 to lo), so what one test's
failures hold back never reaches another's.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from anxin.demo import spawn_on_own_port
from anxin.processes import ProcessGroup
from console.users import add_user

PASSWORDS = {"li": "li-password-1", "zhou": "zhou-password-2"}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
STRANGER, NURSE = "203.0.113.7", "198.51.100.2"  # client addresses as a proxy reports them


@dataclass
class Consoles:
    default: str  # base URLs
    proxied: str


@pytest.fixture(scope="module")
def consoles(anxin_env: dict[str, str], run_root: Path) -> Iterator[Consoles]:
    # Under the run root, kept to the session's end: the personal-data check reads its logs.
    folder = run_root / f"console-sec-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    users = folder / "users.yaml"
    for name, password in PASSWORDS.items():
        add_user(users, name, "nurse", password, f"nurse-{name}")
    group = ProcessGroup(folder / "logs", env=anxin_env)
    common = {
        "ANXIN_CONSOLE__SESSION_SECRET": uuid.uuid4().hex * 2,
        # Deterministic back-off: past 3 failures in a row an account waits 10 minutes.
        "ANXIN_CONSOLE__LOGIN_BACKOFF_S": "600",
    }
    urls = []
    try:
        for name, extra in (
            ("default", {}),
            ("proxied", {"ANXIN_CONSOLE__TRUSTED_PROXIES": '["127.0.0.1"]'}),
        ):
            # On a port the console holds itself (another candidate if that one was taken).
            _, port = spawn_on_own_port(
                group,
                f"console-{name}",
                ("console", "--users", str(users)),
                folder / f"{name}.ready",
                lambda port: {"ANXIN_CONSOLE__PORT": str(port)},
                env={**common, **extra},
                timeout=60,
            )
            urls.append(f"http://127.0.0.1:{port}")
        yield Consoles(*urls)
    finally:
        group.stop()


def client(base: str, source: str) -> httpx.Client:
    """A browser on ``source`` (a loopback address of its own)."""
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=base, transport=transport, follow_redirects=False, timeout=30)


def attempt(c: httpx.Client, name: str, password: str, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    page = c.get("/login", headers=headers)
    token = CSRF.search(page.text)
    assert token, page.status_code
    resp = c.post(
        "/login",
        data={"username": name, "password": password, "csrf": token.group(1)},
        headers=headers,
    )
    if resp.status_code == 429:
        assert int(resp.headers["retry-after"]) >= 1
    return resp.status_code


def test_forged_forwarded_headers_do_not_escape_the_address_limit(consoles: Consoles) -> None:
    """Default settings: 20 wrong passwords, each with another X-Forwarded-For, from one local
    connection: the address is the connection's, so after 10 failures (spread over accounts, so
    that no account back-off is involved) the rest are refused unchecked, the right password too."""
    with client(consoles.default, "127.0.0.1") as c:
        codes = [attempt(c, f"guess{i}", "wrong", forwarded=f"198.51.100.{i}") for i in range(20)]
        assert codes == [401] * 10 + [429] * 10
        assert attempt(c, "zhou", PASSWORDS["zhou"], forwarded="192.0.2.1") == 429


def test_a_stranger_cannot_lock_a_nurse_out(consoles: Consoles) -> None:
    """Behind the trusted proxy: a stranger guessing li's password is backed off after three
    failures, even with the right one; li from her own address gets in, and so does zhou from
    the stranger's own address (the ward is not locked out)."""
    with client(consoles.proxied, "127.0.0.1") as c:
        codes = [attempt(c, "li", f"guess-{i}", forwarded=STRANGER) for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        assert attempt(c, "li", PASSWORDS["li"], forwarded=STRANGER) == 429
    with client(consoles.proxied, "127.0.0.1") as c:
        assert attempt(c, "li", PASSWORDS["li"], forwarded=NURSE) == 303
    with client(consoles.proxied, "127.0.0.1") as c:
        assert attempt(c, "zhou", PASSWORDS["zhou"], forwarded=STRANGER) == 303


def test_the_address_limit_counts_failures_across_accounts(consoles: Consoles) -> None:
    """Behind the trusted proxy: one client spraying ten accounts is stopped at the eleventh
    attempt; a forwarded header from a peer that is not the proxy is not believed."""
    spray = "203.0.113.50"
    with client(consoles.proxied, "127.0.0.1") as c:
        codes = [attempt(c, f"spray{i}", "password1", forwarded=spray) for i in range(11)]
        assert codes == [401] * 10 + [429]
    # From 127.0.0.4, not a trusted proxy: its own address counts, whatever it claims.
    with client(consoles.proxied, "127.0.0.4") as c:
        codes = [attempt(c, f"other{i}", "wrong", forwarded=f"192.0.2.{i}") for i in range(11)]
        assert codes == [401] * 10 + [429]
    with client(consoles.proxied, "127.0.0.1") as c:
        assert attempt(c, "zhou", PASSWORDS["zhou"], forwarded="198.51.100.77") == 303


def test_a_cookie_copied_before_logout_is_refused_after(consoles: Consoles) -> None:
    with client(consoles.default, "127.0.0.3") as c, client(consoles.default, "127.0.0.3") as d:
        assert attempt(c, "li", PASSWORDS["li"]) == 303
        assert attempt(d, "li", PASSWORDS["li"]) == 303  # li on a second device
        copied = dict(c.cookies)
        assert c.get("/board/rows").status_code == 200
        token = CSRF.search(c.get("/").text)
        assert token
        assert c.post("/logout", data={"csrf": token.group(1)}).status_code == 303
        with client(consoles.default, "127.0.0.3") as thief:
            thief.cookies.update(copied)
            assert thief.get("/board/rows").status_code == 403
            assert thief.get("/").headers.get("location") == "/login"
        assert d.get("/board/rows").status_code == 200  # her other session goes on
