"""The console without services: accounts, sessions, CSRF, roles, languages and the SVG drawings.

The app is built on the test registry; nothing here reaches the database (every request is
refused or answered before it would), so these run in well under a second each.
"""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from alerts.clock import ManualClock
from anxin.core.registry import load_registry
from anxin.core.settings import ConsoleSettings, Settings
from console.app import Console
from console.geo import distance_m, in_polygon, nearest_fence
from console.i18n import Translator, pick_language
from console.sessions import SessionIds
from console.svg import map_svg, vitals_svg
from console.throttle import LoginThrottle
from console.users import UserStore, add_user, load_users

REGISTRY = Path(__file__).parent / "data" / "registry.yaml"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    path = tmp_path / "users.yaml"
    add_user(path, "li", "nurse", "correct horse 1", "nurse-li")
    add_user(path, "op", "operator", "correct horse 2")
    return path


@pytest.fixture
def client(users_file: Path) -> TestClient:
    settings = Settings(
        registry=REGISTRY,
        postgres={"dsn": "postgresql://nobody@127.0.0.1:1/none"},  # type: ignore[arg-type]
        influx={"url": "http://127.0.0.1:1"},  # type: ignore[arg-type]
    )
    cs = ConsoleSettings(users=users_file, session_secret=SecretStr("s" * 48))
    console = Console(settings, cs, ManualClock())
    return TestClient(console.app(), base_url="http://console.test", follow_redirects=False)


def login(client: TestClient, name: str, password: str) -> str:
    page = client.get("/login")
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    resp = client.post("/login", data={"username": name, "password": password, "csrf": token})
    assert resp.status_code == 303, resp.text
    return session(client)["csrf"]


def session(client: TestClient) -> dict[str, str]:
    """The signed session cookie's content (readable, not forgeable)."""
    value = client.cookies.get("anxin_console") or ""
    data = value.split(".")[0]
    return json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))


def test_users_file_holds_argon2id_hashes_only_and_is_private(users_file: Path) -> None:
    text = users_file.read_text()
    assert "correct horse" not in text
    assert text.count("$argon2id$") == 2
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    store = UserStore(users_file)
    assert store.verify("li", "correct horse 1").by == "duty_nurse:nurse-li"  # type: ignore[union-attr]
    assert store.verify("li", "wrong") is None
    assert store.verify("nobody", "correct horse 1") is None
    assert store.get("op").by == "operator:op" and not store.get("op").can_act  # type: ignore[union-attr]
    with pytest.raises(ValueError):
        add_user(users_file, "x y", "nurse", "long enough")
    with pytest.raises(ValueError):
        add_user(users_file, "z", "admin", "long enough")
    with pytest.raises(ValueError):
        add_user(users_file, "z", "nurse", "short")
    assert set(load_users(users_file).users) == {"li", "op"}


def test_nothing_but_the_login_page_without_a_session(client: TestClient) -> None:
    for path in ("/", "/residents", "/alerts/sos-1"):
        resp = client.get(path)
        assert resp.status_code == 303 and resp.headers["location"] == "/login", path
    for path in ("/events", "/board/rows", "/alerts/sos-1/live"):
        assert client.get(path).status_code == 403, path
    assert client.post("/alerts/sos-1/ack", data={"note": "x"}).status_code == 403
    assert client.post("/alerts/sos-1/resolve").status_code == 403
    page = client.get("/login")
    assert page.status_code == 200 and 'name="password"' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert client.get("/static/console.css").status_code == 200


def test_login_needs_the_csrf_token_and_the_right_password(client: TestClient) -> None:
    client.get("/login")
    assert (
        client.post("/login", data={"username": "li", "password": "correct horse 1"}).status_code
        == 403
    )
    token = CSRF.search(client.get("/login").text).group(1)  # type: ignore[union-attr]
    bad = client.post("/login", data={"username": "li", "password": "nope", "csrf": token})
    assert bad.status_code == 401
    good = client.post(
        "/login", data={"username": "li", "password": "correct horse 1", "csrf": token}
    )
    assert good.status_code == 303 and good.headers["location"] == "/"
    cookie = good.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    # A new session and a new CSRF token at login (no fixation).
    assert session(client)["u"] == "li" and session(client)["csrf"] != token


def test_state_changes_need_the_sessions_csrf_token_and_a_nurse(client: TestClient) -> None:
    token = login(client, "li", "correct horse 1")
    # No token, a wrong token, or another site's Origin: refused before anything is touched.
    assert client.post("/alerts/sos-1/ack", data={"note": "x"}).status_code == 403
    assert client.post("/alerts/sos-1/ack", data={"csrf": "forged"}).status_code == 403
    assert (
        client.post(
            "/alerts/sos-1/resolve",
            data={"csrf": token},
            headers={"Origin": "https://evil.example"},
        ).status_code
        == 403
    )
    assert client.post("/logout", data={}).status_code == 403
    out = client.post("/logout", data={"csrf": token})
    assert out.status_code == 303
    assert client.get("/").status_code == 303  # logged out
    # An operator sees but does not act.
    token = login(client, "op", "correct horse 2")
    resp = client.post("/alerts/sos-1/ack", data={"csrf": token}, headers={"X-CSRF-Token": token})
    assert resp.status_code == 403


def test_a_tampered_or_removed_users_session_is_no_session(
    client: TestClient, users_file: Path
) -> None:
    login(client, "li", "correct horse 1")
    name = "anxin_console"
    value = client.cookies.get(name)
    assert value
    tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    client.cookies.set(name, tampered, domain="console.test")  # replaces the console's own
    assert client.get("/board/rows").status_code == 403
    client.cookies.clear()
    login(client, "li", "correct horse 1")
    users_file.write_text("users: {}\n")  # the account is removed: its sessions end
    assert client.get("/board/rows").status_code == 403


def test_language_from_the_browser_or_the_switch() -> None:
    assert pick_language(None, "en-GB,en;q=0.8") == "en"
    assert pick_language(None, "zh-TW,zh;q=0.9") == "zh-CN"
    assert pick_language("en", "zh-CN") == "en"
    assert pick_language(None, None) == "zh-CN"
    assert Translator("en")("acked_by", by="x") == "Acknowledged by x"
    assert Translator("zh-CN")("kind.fall") == "跌倒"
    assert Translator("en").duration(125) == "2 min 05 s"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANXIN_CONSOLE__PORT", "9123")
    monkeypatch.setenv("ANXIN_CONSOLE__SESSION_SECRET", "z" * 40)
    cs = Settings().console
    assert cs.port == 9123 and cs.session_secret.get_secret_value() == "z" * 40  # type: ignore[union-attr]
    assert "z" * 40 not in repr(cs)


def test_geofences_and_the_map_are_drawn_from_coordinates() -> None:
    r001 = load_registry(REGISTRY).residents["R001"]
    _, centre = r001.geofences
    assert in_polygon(37.511, 122.112, centre.polygon)  # type: ignore[arg-type]
    assert nearest_fence(37.5135, 122.1203, r001.geofences) == ("home", 0.0)
    name, metres = nearest_fence(37.5165, 122.1203, r001.geofences)  # type: ignore[misc]
    assert name == "home" and 200 < metres < 230  # 333 m north of the centre, radius 120
    assert 330 < distance_m(37.5135, 122.1203, 37.5165, 122.1203) < 336
    pos = [
        SimpleNamespace(lat=37.5140, lon=122.1190, acc=None),
        SimpleNamespace(lat=37.5160, lon=122.1210, acc=15.0),
    ]
    svg = map_svg(pos, r001.geofences)
    assert svg is not None
    assert svg.count("<polygon") == 1 and 'class="fence"' in svg and 'class="last"' in svg
    assert ">home<" in svg and ">day-centre<" in svg and "<polyline" in svg
    assert map_svg([], []) is None


def test_vitals_chart_in_the_residents_time_zone() -> None:
    start = 1_767_225_600.0  # 2026-01-01 00:00 UTC = 08:00 in Shanghai
    series = {
        "hr": [SimpleNamespace(ts=start + i * 300, value=70 + i % 7) for i in range(288)],
        "sbp": [SimpleNamespace(ts=start + i * 3600, value=130.0) for i in range(24)],
        "dbp": [SimpleNamespace(ts=start + i * 3600, value=80.0) for i in range(24)],
    }
    svg = vitals_svg(series, start, start + 86400, "Asia/Shanghai", Translator("en"))
    assert svg is not None
    assert "Heart rate" in svg and "Blood pressure" in svg and "SpO" not in svg
    # 00:00 UTC is 08:00 in Shanghai: ticks every 6 h of local time, 12:00 first.
    assert [">12:00<" in svg, ">18:00<" in svg, ">00:00<" in svg, ">06:00<" in svg] == [True] * 4
    assert ">08:00<" not in svg
    assert vitals_svg({}, start, start + 1, "UTC", Translator("en")) is None


def test_login_back_off_doubles_per_account_and_spares_clean_addresses() -> None:
    now = [0.0]
    throttle = LoginThrottle(10, 300.0, 3, 1.0, 8.0, clock=lambda: now[0])
    assert ConsoleSettings().trusted_proxies == []  # forwarded headers believed from nobody
    for _ in range(3):
        assert throttle.wait("a", "li") == 0.0
        throttle.failed("a", "li")
    assert throttle.wait("a", "li") == 1.0  # 1 s after the third failure in a row
    assert throttle.wait("b", "li") == 0.0  # an address that never failed is not held back
    waits = []
    for _ in range(5):  # each further failure, as soon as it is allowed
        now[0] += throttle.wait("a", "li")
        throttle.failed("a", "li")
        waits.append(throttle.wait("a", "li"))
    assert waits == [2.0, 4.0, 8.0, 8.0, 8.0]  # doubling, capped at backoff_max_s
    throttle.succeeded("li")
    assert throttle.wait("a", "li") == 0.0  # li got in: her back-off ends
    assert throttle.wait("a", "zhou") == 0.0  # 8 failures from "a": under the address limit
    throttle.failed("a", "x")
    throttle.failed("a", "y")
    assert throttle.wait("a", "zhou") == 300.0 - now[0]  # 10 across accounts: "a" waits
    now[0] = 300.0
    assert throttle.wait("a", "zhou") == 0.0  # the first failures left the window


def test_session_ids_end_at_revocation_and_expiry() -> None:
    now = [0.0]
    ids = SessionIds(100.0, clock=lambda: now[0])
    a, b = ids.new("li"), ids.new("li")
    assert a != b and ids.user(a) == "li" and ids.user(None) is None
    ids.revoke(a)
    assert ids.user(a) is None and ids.user(b) == "li"
    now[0] = 100.5
    assert ids.user(b) is None
