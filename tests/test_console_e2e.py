"""The console in a real browser (Debian chromium through Playwright) against real services:
Mosquitto → bridge → detector worker → Kafka → alerts worker (PostgreSQL, Twilio mock behind the
recording proxy) → console server, each a child process.

Time of the alerts engine is a file clock both the worker and the console read, so "twenty minutes
later, nobody else was called" takes a second.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from alerts.db import Database
from alerts.lifecycle import Lifecycle
from alerts.testing import TwilioRecorder
from anxin.processes import Child, ProcessGroup
from anxin.services import (
    MAX_PORT_MOVES,
    Endpoints,
    ServiceError,
    _die_with_parent,
    bind_failed,
    free_port,
    listens_on,
    log_size,
)
from console.users import add_user
from tests.mqtt_helpers import mosquitto_pub
from tests.test_alerts_worker import T0, AlertsWorker, calls_by_notification

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
PASSWORDS = {"li": "li-password-1", "zhou": "zhou-password-2", "op": "op-password-3"}
PERSONAL = ["王秀兰", "李德明", "赵凤英", "Margaret", "Thornbury", "李护士", "周护士", "文化西路"]

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason="Debian chromium not installed"
)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``check`` until truthy (a probe, not a sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # poll interval


def produce(
    bootstrap: str, records: list[tuple[str, dict[str, Any]]], topic: str = "alerts"
) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(topic, orjson.dumps(value), key=key.encode())
        finally:
            await producer.stop()

    # Playwright's sync API keeps an event loop in this thread: produce from another one.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(go())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if errors:
        raise errors[0]


class ConsoleServer:
    """``python -m console`` on a port it holds itself: a candidate port taken by another process
    before uvicorn bound it means another candidate, never a console answering on someone's port."""

    def __init__(self, group: ProcessGroup, worker: AlertsWorker, users: Path, folder: Path):
        self.ready = folder / "console.ready"
        self.log_path = folder / "console.log"
        for _attempt in range(MAX_PORT_MOVES):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            offset = log_size(self.log_path)
            self._start(group, worker, users)
            child = self.child

            def listening(pid: int = child.proc.pid) -> bool:
                return self.ready.exists() and listens_on(pid, self.port)

            try:
                group.wait_until(child, listening, timeout=60)
                return
            except ServiceError:
                if child.alive() or not bind_failed(self.log_path, offset):
                    raise
                group.children.remove(child)
        raise ServiceError(f"console: no free port in {MAX_PORT_MOVES} candidates")

    def _start(self, group: ProcessGroup, worker: AlertsWorker, users: Path) -> None:
        self.ready.unlink(missing_ok=True)
        env = {
            **os.environ,
            **group.env,
            **worker.env,
            "ANXIN_CONSOLE__SESSION_SECRET": uuid.uuid4().hex * 2,
            "ANXIN_CONSOLE__POLL_S": "0.1",
            "ANXIN_CONSOLE__STORE_CACHE_S": "0.5",
        }
        argv = [
            sys.executable,
            "-m",
            "console",
            "--port",
            str(self.port),
            "--users",
            str(users),
            "--ready-file",
            str(self.ready),
            "--clock",
            f"file:{worker.clock.path}",
        ]
        with open(self.log_path, "ab") as logf:
            proc = subprocess.Popen(
                argv,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
                start_new_session=True,
                env=env,
            )
        self.child = Child("console", proc, self.log_path)
        group.children.append(self.child)


@pytest.fixture(scope="module")
def stack(
    services: Endpoints, pipeline: ProcessGroup, anxin_env: dict[str, str], run_root: Path
) -> Iterator[dict[str, Any]]:
    folder = run_root / f"console-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    twilio = TwilioRecorder(services.twilio_url).start()
    group = ProcessGroup(folder, env=anxin_env)
    try:
        worker = AlertsWorker(group, services, twilio, folder)
        worker.start()
        users = folder / "console-users.yaml"
        add_user(users, "li", "nurse", PASSWORDS["li"], "nurse-li")
        add_user(users, "zhou", "nurse", PASSWORDS["zhou"], "nurse-zhou")
        add_user(users, "op", "operator", PASSWORDS["op"])
        console = ConsoleServer(group, worker, users, folder)
        yield {"worker": worker, "console": console, "twilio": twilio, "folder": folder}
    finally:
        group.stop()
        twilio.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def logged_in(
    browser: Any,
    url: str,
    user: str,
    viewport: tuple[int, int] = (1400, 900),
    locale: str = "zh-CN",
) -> Any:
    context = browser.new_context(
        viewport={"width": viewport[0], "height": viewport[1]}, locale=locale
    )
    page = context.new_page()
    page.goto(url + "/")
    assert page.url.endswith("/login")  # nothing but the login page without a session
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.wait_for_selector("#live:not([hidden])")  # the event stream is open
    return page


def isolate(worker: AlertsWorker, bootstrap: str) -> None:
    """The worker's fresh database took in every alert of this session's topic: once a marker
    behind them is in, close them all, so the board starts empty."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    record = {
        "alert_id": marker,
        "kind": "device",
        "severity": "warning",
        "resident_id": "R001",
        "device_id": "W001",
        "ts": T0,
        "detected_at": T0,
        "details": {"reason": "marker"},
    }
    produce(bootstrap, [("R001", record)])
    wait_for(
        "the marker",
        lambda: worker.rows("select 1 from alert_sources where source_alert_id = %s", marker),
    )
    for key in ("R002", "R003", "R004"):  # the other residents' partitions too
        m = f"marker-{uuid.uuid4().hex[:8]}"
        produce(bootstrap, [(key, {**record, "alert_id": m, "resident_id": key})])

        def arrived(m: str = m) -> list[dict[str, Any]]:
            return worker.rows("select 1 from alert_sources where source_alert_id = %s", m)

        wait_for("a marker", arrived)
    lc = Lifecycle(Database(worker.dsn), worker.clock)
    for r in worker.rows(
        "select alert_id from alerts where state in ('open', 'notifying', 'acknowledged')"
    ):
        lc.cancel(r["alert_id"], "detector:test", "detector", "test isolation")


def engine_passes(worker: AlertsWorker, bootstrap: str, passes: int = 3) -> None:
    """Proof that the engine ran at the clock's current time, ``passes`` times over: each pass
    is a fresh alert (``wander`` of R004, a resident without fences, so no detector's alert
    merges with it) whose first SMS is sent, then cancelled so the next one is fresh again. The
    engine claims a pass's SMS only after the previous pass was sent, so after three every
    chain step due at this time has had its rows made and its requests answered."""
    lc = Lifecycle(Database(worker.dsn), worker.clock)
    for _ in range(passes):
        marker = f"tick-{uuid.uuid4().hex[:8]}"
        record = {
            "alert_id": marker,
            "kind": "wander",
            "severity": "warning",
            "resident_id": "R004",
            "device_id": "Q004",
            "ts": worker.clock.now(),
            "detected_at": worker.clock.now(),
            "details": {},
        }
        produce(bootstrap, [("R004", record)])

        def sent(marker: str = marker) -> list[dict[str, Any]]:
            return worker.rows(
                "select n.alert_id from notifications n join alert_sources s using (alert_id)"
                " where s.source_alert_id = %s and n.state = 'sent' and n.purpose = 'alert'",
                marker,
            )

        alert = wait_for(f"marker {marker} sent", sent, 15)[0]["alert_id"]
        lc.cancel(alert, "detector:test", "detector", "engine pass marker")


def sos(services: Endpoints, seq: int) -> None:
    payload = {
        "ts": round(time.time(), 3),
        "seq": seq,
        "event": "sos",
        "location": {"lat": 37.5168, "lon": 122.1231, "acc": 12},
    }
    mosquitto_pub(services, "anxin/v1/devices/W001/telemetry", [orjson.dumps(payload)])


def test_sos_shows_live_ack_stops_the_calls_and_the_second_nurse_sees_it(
    services: Endpoints, stack: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    w: AlertsWorker = stack["worker"]
    c: ConsoleServer = stack["console"]
    twilio: TwilioRecorder = stack["twilio"]
    isolate(w, services.kafka_bootstrap)
    nurse_a = logged_in(browser, c.url, "li")
    nurse_b = logged_in(browser, c.url, "zhou")
    for page in (nurse_a, nurse_b):
        page.wait_for_selector("#rows[data-count='0']")
    nurse_b.evaluate("window.__sameDocument = true")

    sos(services, 8_800_000 + int(time.time()) % 100_000)

    def my_alert() -> str | None:
        rows = w.rows(
            "select alert_id from alerts where resident_id = 'R001' and kind = 'sos'"
            " and state in ('open', 'notifying')"
        )
        return rows[0]["alert_id"] if rows else None

    alert_id = wait_for("the SOS in the database", my_alert, timeout=60)
    in_db = time.monotonic()
    row_a = nurse_a.locator(f'article[data-alert="{alert_id}"]')
    row_a.wait_for(timeout=5000)
    seen = time.monotonic() - in_db
    browser_ms = nurse_a.evaluate("window.anxin.lastLatencyMs")
    # a figure, not an assertion (timing belongs to bench/): printed with the test's output
    print(
        f"board showed the alert {seen:.2f} s after it was written (event to row {browser_ms} ms)"
    )
    assert "王秀兰" in row_a.inner_text() and "紧急呼叫" in row_a.inner_text()
    assert nurse_a.title().startswith("(!) 新的紧急警报")
    assert nurse_a.evaluate("window.anxin.beeps") >= 1
    # Escalation progress: the duty nurse was called and texted (live, from the outbox).
    wait_for(
        "step 1 on the board",
        lambda: "李护士 · 电话" in row_a.inner_text() and "李护士 · 短信" in row_a.inner_text(),
        15,
    )
    wait_for(
        "the call placed",
        lambda: w.rows(
            "select 1 from notifications where alert_id = %s"
            " and channel = 'voice' and state = 'sent'",
            alert_id,
        ),
        15,
    )
    calls_before = {n: k for n, k in calls_by_notification(twilio).items()}
    my_ids = {r["id"] for r in w.rows("select id from notifications where alert_id = %s", alert_id)}
    assert my_ids & set(calls_before), "the duty nurse's call went to the Twilio mock"

    # Nurse A acknowledges with a note from the board.
    row_a.locator("input.note").fill("到现场处理")
    row_a.locator("button.ack").click()
    wait_for("A's answer", lambda: "已确认" in row_a.locator(".msg").inner_text(), 5)
    state = w.rows("select state, acked_by from alerts where alert_id = %s", alert_id)[0]
    assert state == {"state": "acknowledged", "acked_by": "duty_nurse:nurse-li"}
    note = w.rows("select note from acknowledgements where alert_id = %s and first", alert_id)
    assert note == [{"note": "到现场处理"}]

    # Nurse B's board shows it live, without a reload.
    row_b = nurse_b.locator(f'article[data-alert="{alert_id}"]')
    wait_for(
        "B sees the acknowledgement",
        lambda: "已由 李护士 (duty_nurse) 确认" in row_b.inner_text(),
        5,
    )
    assert nurse_b.evaluate("window.__sameDocument === true")  # no reload happened
    assert row_b.locator("button.ack").count() == 0
    # B's acknowledgement sent a moment too late (a stale page): recorded, and B is told who was first.
    answer = nurse_b.evaluate(
        """async (id) => {
            const f = new FormData();
            f.append('csrf', document.querySelector('meta[name=csrf-token]').content);
            const r = await fetch('/alerts/' + id + '/ack', {method: 'POST', body: f, headers: {Accept: 'application/json'}});
            return await r.json();
        }""",
        alert_id,
    )
    assert answer["first"] is False and answer["by"] == "duty_nurse:nurse-li"
    assert "李护士" in answer["message"]
    acks = w.rows(
        "select by_contact_id, first from acknowledgements where alert_id = %s order by id",
        alert_id,
    )
    assert acks == [
        {"by_contact_id": "nurse-li", "first": True},
        {"by_contact_id": "nurse-zhou", "first": False},
    ]

    # Twenty minutes later by the engine's clock: nobody else was called or texted for it.
    rows_before = len(
        w.rows("select id from notifications where alert_id = %s and purpose = 'alert'", alert_id)
    )
    sms_before = len(twilio.sent("sms"))
    w.clock.set(T0 + 1200)
    engine_passes(w, services.kafka_bootstrap)  # then: what it did not do, it will not do
    after = calls_by_notification(twilio)
    assert {n: k for n, k in after.items() if n in my_ids} == {
        n: k for n, k in calls_before.items() if n in my_ids
    }
    assert (
        len(
            w.rows(
                "select id from notifications where alert_id = %s and purpose = 'alert'", alert_id
            )
        )
        == rows_before
    )
    sms_mine = [
        e
        for e in twilio.sent("sms")[sms_before:]
        if "SOS" in e.form.get("Body", "") or "紧急" in e.form.get("Body", "")
    ]
    assert not [e for e in sms_mine if e.form.get("To") != "+8613700000011"], sms_mine

    # The alert page: timeline, map and the live state; resolving from there closes it.
    nurse_a.goto(f"{c.url}/alerts/{alert_id}")
    assert nurse_a.locator(".timeline li").count() >= 3
    assert nurse_a.locator("svg.map circle.last").count() == 1
    assert "已确认" in nurse_a.locator("#alert-live .state").inner_text()
    nurse_a.locator("input.note").fill("家属已到")
    nurse_a.locator("button.resolve").click()
    wait_for(
        "resolved",
        lambda: (
            w.rows("select state from alerts where alert_id = %s", alert_id)[0]["state"]
            == "resolved"
        ),
        5,
    )
    wait_for(
        "the page shows it",
        lambda: "已处理" in nurse_a.locator("#alert-live .state").inner_text(),
        5,
    )
    wait_for("gone from B's board", lambda: row_b.count() == 0, 5)

    log = c.log_path.read_text(errors="replace")
    assert "console listening" in log
    assert not [p for p in PERSONAL if p in log]
    nurse_a.context.close()
    nurse_b.context.close()


def test_a_fall_suspicion_shows_on_the_open_board_and_its_outcome_follows(
    services: Endpoints, stack: dict[str, Any], browser: Any
) -> None:
    """Suspicions make no alert events: the hub tells open pages when one opens or closes."""
    c: ConsoleServer = stack["console"]
    nurse = logged_in(browser, c.url, "li")
    sid = f"fall-board-{uuid.uuid4().hex[:8]}"
    now = time.time()
    suspicion = {
        "suspicion_id": sid,
        "resident_id": "R002",
        "device_id": "P002",
        "ts": now - 3,
        "detected_at": now,
        "outcome": "open",
        "reason": "suspected by the accelerometer",
        "details": {"probability": 0.8},
    }
    produce(services.kafka_bootstrap, [("R002", suspicion)], topic="fall-suspicions")
    item = nurse.locator(f'li[data-suspicion="{sid}"]')
    item.wait_for(timeout=15000)  # no reload: the page was opened before the suspicion
    assert "正在询问老人" in item.inner_text()
    assert nurse.locator(f'article[data-alert="{sid}"]').count() == 0  # never an alert row
    closed = {**suspicion, "outcome": "cancelled", "reason": "wearer pressed I'm OK"}
    produce(services.kafka_bootstrap, [("R002", closed)], topic="fall-suspicions")
    nurse.locator(f'li[data-suspicion="{sid}"] .tag.sus-cancelled').wait_for(timeout=15000)
    assert "老人表示无事" in item.inner_text()
    nurse.context.close()


def test_no_session_or_no_csrf_token_is_refused(services: Endpoints, stack: dict[str, Any]) -> None:
    c: ConsoleServer = stack["console"]
    w: AlertsWorker = stack["worker"]
    own = f"csrf-{uuid.uuid4().hex[:8]}"  # an alert of this test's own to try to act on
    record = {
        "alert_id": own,
        "kind": "vitals",
        "severity": "warning",
        "resident_id": "R002",
        "device_id": "W002",
        "ts": T0,
        "detected_at": T0,
        "details": {"news2": 5},
    }
    produce(services.kafka_bootstrap, [("R002", record)])
    alert = wait_for(
        "the alert in the database",
        lambda: w.rows("select alert_id from alert_sources where source_alert_id = %s", own),
    )[0]["alert_id"]
    with httpx.Client(base_url=c.url, follow_redirects=False, timeout=10) as anon:
        assert anon.get("/").status_code == 303 and anon.get("/").headers["location"] == "/login"
        assert anon.get(f"/alerts/{alert}").status_code == 303
        assert anon.get("/events").status_code == 403
        assert anon.post(f"/alerts/{alert}/ack", data={"note": "x"}).status_code == 403
    with httpx.Client(base_url=c.url, follow_redirects=False, timeout=10) as s:
        token = re.search(r'name="csrf" value="([^"]+)"', s.get("/login").text).group(1)  # type: ignore[union-attr]
        r = s.post("/login", data={"username": "li", "password": PASSWORDS["li"], "csrf": token})
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        board = s.get("/")
        assert board.status_code == 200
        before = w.rows("select count(*) as n from acknowledgements")[0]["n"]
        assert s.post(f"/alerts/{alert}/ack", data={"note": "no token"}).status_code == 403
        assert s.post(f"/alerts/{alert}/resolve", data={"csrf": "guess"}).status_code == 403
        assert w.rows("select count(*) as n from acknowledgements")[0]["n"] == before
        assert s.get("/residents").status_code == 200


def write_points(vm_url: str, lines: list[str]) -> None:
    req = urllib.request.Request(
        f"{vm_url}/write?precision=ms", data="\n".join(lines).encode(), method="POST"
    )
    urllib.request.urlopen(req, timeout=10).close()
    urllib.request.urlopen(
        urllib.request.Request(f"{vm_url}/internal/force_flush"), timeout=10
    ).close()


def test_board_with_a_few_alerts_screenshot_and_the_alert_page(
    services: Endpoints, stack: dict[str, Any], browser: Any, tmp_path: Path
) -> None:
    w: AlertsWorker = stack["worker"]
    c: ConsoleServer = stack["console"]
    isolate(w, services.kafka_bootstrap)
    now = time.time()
    ms = lambda t: int(t * 1000)  # noqa: E731
    lines = []
    for i in range(288):  # a day of vitals for R001, every 5 minutes
        t = now - 86400 + i * 300
        hr = 72 + 8 * math.sin(i / 20) + (25 if i > 280 else 0)
        lines.append(
            f"vitals,resident=R001,device=M001 hr={hr:.1f},spo2={96 - (4 if i > 280 else 0) + math.sin(i / 9):.1f},"
            f"sbp={128 + 6 * math.sin(i / 30):.1f},dbp={80 + 3 * math.sin(i / 30):.1f},rr={16 + math.sin(i / 15):.1f},temp={36.6 + 0.3 * math.sin(i / 40):.2f} {ms(t)}"
        )
    track = [
        (37.5140, 122.1208),
        (37.5147, 122.1214),
        (37.5155, 122.1220),
        (37.5162, 122.1226),
        (37.5168, 122.1231),
    ]
    for j, (lat, lon) in enumerate(track):
        lines.append(
            f"location,resident=R001,device=W001 lat={lat},lon={lon},acc=12 {ms(now - 600 + j * 120)}"
        )
    lines.append(
        f"location,resident=R003,device=B003 lat=37.5201,lon=122.1302,acc=8 {ms(now - 60)}"
    )
    lines.append(
        f"location,resident=R002,device=W002 lat=51.5011,lon=-0.1241,acc=20 {ms(now - 300)}"
    )
    for dev, res, batt, worn in (
        ("W001", "R001", 0.81, True),
        ("M001", "R001", 0.64, True),
        ("B003", "R003", 0.55, True),
        ("W002", "R002", 0.42, False),
        ("Q004", "R004", 0.07, True),
    ):
        lines.append(
            f"device,resident={res},device={dev} battery={batt},worn={str(worn).lower()},seq=1i {ms(now - 120)}"
        )
    write_points(services.vm_url, lines)
    produce(
        services.kafka_bootstrap,
        [
            ("W001", {"device_id": "W001", "status": "online", "received_at": now}),
            ("W002", {"device_id": "W002", "status": "offline", "received_at": now}),
        ],
        topic="device-status",
    )

    w.clock.set(T0 + 1300)
    tag = uuid.uuid4().hex[:6]
    records = [
        (
            "R001",
            {
                "alert_id": f"sos-{tag}",
                "kind": "sos",
                "severity": "critical",
                "resident_id": "R001",
                "device_id": "W001",
                "ts": now,
                "detected_at": now,
                "details": {
                    "source": "button",
                    "location": {"lat": 37.5168, "lon": 122.1231, "acc": 12},
                },
            },
        ),
        (
            "R003",
            {
                "alert_id": f"fall-{tag}",
                "kind": "fall",
                "severity": "critical",
                "resident_id": "R003",
                "device_id": "B003",
                "ts": now,
                "detected_at": now,
                "details": {},
            },
        ),
        (
            "R002",
            {
                "alert_id": f"vitals-{tag}",
                "kind": "vitals",
                "severity": "warning",
                "resident_id": "R002",
                "device_id": "W002",
                "ts": now,
                "detected_at": now,
                "details": {"news2": 5},
            },
        ),
        (
            "R004",
            {
                "alert_id": f"device-{tag}",
                "kind": "device",
                "severity": "warning",
                "resident_id": "R004",
                "device_id": "Q004",
                "ts": now,
                "detected_at": now,
                "details": {"reason": "battery_low"},
            },
        ),
    ]
    page = logged_in(browser, c.url, "li")
    produce(services.kafka_bootstrap, records[:2])
    wait_for(
        "two alerts notified",
        lambda: (
            len(
                w.rows(
                    "select distinct alert_id from notifications where state = 'sent'"
                    " and alert_id = any(%s)",
                    [f"sos-{tag}", f"fall-{tag}"],
                )
            )
            == 2
        ),
        30,
    )
    w.clock.set(T0 + 1300 + 75)  # SOS unanswered for 75 s: step 2 (family, backup nurse)
    wait_for(
        "step 2",
        lambda: w.rows(
            "select 1 from notifications where alert_id = %s and step = 1 and state = 'sent'",
            f"sos-{tag}",
        ),
        30,
    )
    voice = w.rows(
        "select id from notifications where alert_id = %s and step = 0 and channel = 'voice'",
        f"sos-{tag}",
    )[0]["id"]
    w.webhook(f"/twilio/voice/status?n={voice}", {"CallStatus": "no-answer"})
    produce(services.kafka_bootstrap, records[2:])
    Lifecycle(Database(w.dsn), w.clock).acknowledge(
        f"fall-{tag}", "duty_nurse", "nurse-zhou", "console", "on the way"
    )
    page.wait_for_selector("#rows[data-count='4']", timeout=15000)
    wait_for(
        "the board settled",
        lambda: (
            "周护士" in page.locator(f'article[data-alert="fall-{tag}"]').inner_text()
            and "无人接听" in page.locator(f'article[data-alert="sos-{tag}"]').inner_text()
        ),
        10,
    )
    order = page.eval_on_selector_all("article.alert", "els => els.map(e => e.dataset.severity)")
    assert order == ["critical", "critical", "warning", "warning"]
    shot = tmp_path / "console-board.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000

    # A phone-sized screen: the same board as cards, nothing wider than the screen.
    phone = logged_in(browser, c.url, "zhou", viewport=(390, 844), locale="en-US")
    phone.wait_for_selector("#rows[data-count='4']")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert "Acknowledged by" in phone.locator(f'article[data-alert="fall-{tag}"]').inner_text()
    phone.screenshot(path=str(tmp_path / "console-board-phone.png"), full_page=True)

    # The alert page: map with fences and the track, 24 h chart from the store, times in Shanghai.
    page.goto(f"{c.url}/alerts/sos-{tag}")
    assert (
        page.locator("svg.map .fence").count() == 2
        and page.locator("svg.map polyline").count() == 1
    )
    assert page.locator("svg.chart polyline").count() >= 5
    page.screenshot(path=str(tmp_path / "console-alert.png"), full_page=True)
    # Residents and devices: status from the topic, battery/worn/last seen from the store.
    page.goto(f"{c.url}/residents")
    table = page.locator("table.devices").inner_text()
    assert "王秀兰" in table and "81%" in table and "7%" in table
    assert page.locator("tr:has-text('W002') .dot.offline").count() == 1
    page.screenshot(path=str(tmp_path / "console-residents.png"), full_page=True)
    page.context.close()
    phone.context.close()
