"""The alerts worker as a real process: killed with SIGKILL mid-chain and restarted, and end to end
from an SOS published with mosquitto_pub to a keypress that stops the chain and a `notify` on the
wearer's MQTT commands topic. Time is a file clock the test moves: no waiting for minutes."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from psycopg.rows import dict_row

from alerts.clock import FileClock
from alerts.db import Database
from alerts.lifecycle import Lifecycle
from alerts.testing import TwilioRecorder, fresh_database, sign
from anxin.demo import spawn_on_own_port, webhook_env
from anxin.processes import Child, ProcessGroup
from anxin.services import Endpoints, free_port
from tests.kafka_helpers import collect
from tests.mqtt_helpers import mosquitto_pub

POLICIES = Path(__file__).parent / "data" / "alerts" / "alerts.yaml"
REGISTRY = Path(__file__).parent / "data" / "registry.yaml"
TOKEN = "worker-test-token-0123456789"
T0 = 1_767_225_600.0  # 08:00 in Asia/Shanghai: the day nurse is on duty
NURSE_DAY, BACKUP, RESPONDER = "+8613700000011", "+8613700000013", "+8612000000120"
SON_R001, DAUGHTER_R003 = "+8613800000001", "+8613900000003"


class AlertsWorker:
    """One alerts worker configuration (database, clock, ports); start/kill/restart it.

    Its webhook port is a candidate until ``start`` returns: started, the worker itself holds it
    (``spawn_on_own_port``), or it moved to another candidate because someone took that one;
    ``port``, ``public`` and ``env`` follow it. A restart tries the same port first."""

    def __init__(self, group: ProcessGroup, services: Endpoints, twilio: TwilioRecorder, tmp: Path):
        self.group = group
        self.dsn = fresh_database(services.pg_dsn)
        self.clock = FileClock(tmp / "clock")
        self.clock.set(T0)
        self.ready = tmp / "alerts.ready"
        self.name = f"alerts-{uuid.uuid4().hex[:6]}"
        self.env = {
            "ANXIN_POSTGRES__DSN": self.dsn,
            "ANXIN_ALERTS__POLICIES": str(POLICIES),
            "ANXIN_ALERTS__GROUP_ID": f"alerts-test-{uuid.uuid4().hex[:8]}",
            "ANXIN_ALERTS__TICK_S": "0.1",
            # A restart joins the group once the killed worker's session times out: shorter.
            "ANXIN_FAUST__SESSION_TIMEOUT": "6",
            "ANXIN_FAUST__REBALANCE_TIMEOUT": "6",
            "ANXIN_TWILIO__BASE_URL": twilio.url,
            "ANXIN_TWILIO__AUTH_TOKEN": TOKEN,
        }
        self._use_port(free_port())
        self.child: Child | None = None

    def _use_port(self, port: int) -> None:
        self.port = port
        self.public = f"http://127.0.0.1:{port}"
        self.env.update(webhook_env(port))

    def start(self) -> None:
        self.child, port = spawn_on_own_port(
            self.group,
            self.name,
            ("alerts", "run", "--clock", f"file:{self.clock.path}"),
            self.ready,
            webhook_env,
            env=self.env,
            timeout=60,
            first=self.port,
        )
        self._use_port(port)

    def kill(self) -> None:
        assert self.child is not None
        self.child.proc.send_signal(signal.SIGKILL)
        self.child.proc.wait()
        self.group.children.remove(self.child)

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with psycopg.connect(self.dsn, row_factory=dict_row) as conn:
            return conn.execute(sql.encode(), args).fetchall()

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 30) -> None:
        assert self.child is not None
        deadline = time.monotonic() + timeout
        self.group.wait_until(self.child, check, timeout=max(0.1, deadline - time.monotonic()))

    def webhook(self, path: str, form: dict[str, str]) -> httpx.Response:
        headers = {"X-Twilio-Signature": sign(TOKEN, self.public + path, form)}
        return httpx.post(self.public + path, data=form, headers=headers, timeout=10)


@pytest.fixture
def twilio(services: Endpoints) -> Iterator[TwilioRecorder]:
    recorder = TwilioRecorder(services.twilio_url).start()
    yield recorder
    recorder.stop()


@pytest.fixture
def alerts_worker(
    services: Endpoints,
    anxin_env: dict[str, str],
    twilio: TwilioRecorder,
    run_root: Path,
) -> Iterator[AlertsWorker]:
    folder = run_root / f"alerts-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    group = ProcessGroup(folder, env=anxin_env)
    worker = AlertsWorker(group, services, twilio, folder)
    try:
        yield worker
    finally:
        group.stop()
        keep = os.environ.get("ANXIN_KEEP_TEST_LOGS")  # a folder to keep the worker logs in
        if keep:
            shutil.copytree(folder, Path(keep) / folder.name, dirs_exist_ok=True)


def produce(bootstrap: str, topic: str, key: str, value: dict[str, Any]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topic, orjson.dumps(value), key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(go())


def marker_passes(worker: AlertsWorker, bootstrap: str, passes: int = 3) -> None:
    """Proof that the engine ran at the clock's current time, ``passes`` times over (what a
    sleep only hoped for): each pass is a fresh warning of R004 of a kind of its own (so no open
    episode, from this test or from the earlier records a fresh group reads, can absorb it),
    produced after the clock was set; its first SMS is sent, then it is cancelled. Its step ran
    in an engine pass that read the clock after it was set, and the engine claims the next pass's
    SMS only after this one was sent: after three, every step due at this time has had its rows
    made and its requests sent (as ``engine_passes`` of tests/test_console_e2e.py)."""
    lc = Lifecycle(Database(worker.dsn), worker.clock)
    for _ in range(passes):
        marker = f"tick-{uuid.uuid4().hex[:8]}"
        now = worker.clock.now()
        record = {
            "alert_id": marker,
            "kind": f"marker_{uuid.uuid4().hex[:8]}",
            "severity": "warning",
            "resident_id": "R004",
            "device_id": "Q004",
            "ts": now,
            "detected_at": now,
            "details": {},
        }
        produce(bootstrap, "alerts", "R004", record)

        def sent(marker: str = marker) -> bool:
            return bool(
                worker.rows(
                    "select 1 from notifications where alert_id = %s and state = 'sent'"
                    " and purpose = 'alert'",
                    marker,
                )
            )

        worker.wait_for(f"marker {marker} sent", sent)
        lc.cancel(marker, "detector:test", "detector", "engine pass marker")


def steps_sent(worker: AlertsWorker, alert_id: str) -> dict[tuple[int, int], list[str]]:
    """(repeat, step) -> sorted "contact channel" of the sent rows of an alert's chain."""
    out: dict[tuple[int, int], list[str]] = {}
    for r in worker.rows(
        "select * from notifications where alert_id = %s and purpose = 'alert' and state = 'sent'",
        alert_id,
    ):
        out.setdefault((r["repeat"], r["step"]), []).append(f"{r['contact_id']} {r['channel']}")
    return {k: sorted(v) for k, v in out.items()}


def calls_by_notification(twilio: TwilioRecorder) -> dict[int, int]:
    """How many call requests the Twilio mock got per outbox row (from the callback URL)."""
    counts: dict[int, int] = {}
    for e in twilio.sent("call"):
        match = re.search(r"[?&]n=(\d+)", e.form.get("StatusCallback", ""))
        assert match, e.form.get("StatusCallback")
        counts[int(match.group(1))] = counts.get(int(match.group(1)), 0) + 1
    return counts


def assert_nothing_twice(worker: AlertsWorker, twilio: TwilioRecorder) -> None:
    """Every request the mock got is a sent outbox row, each row sent once, all answered 201."""

    def settled() -> bool:
        """No phone send in flight or due now (a request the mock recorded may belong to a row
        whose worker has not yet written ``sent``)."""
        busy = worker.rows(
            "select count(*) as c from notifications where channel in ('voice', 'sms')"
            " and (state = 'sending' or (state = 'pending' and next_attempt_at <= %s))",
            worker.clock.now(),
        )
        return busy[0]["c"] == 0

    worker.wait_for("no send in flight", settled)
    assert all(e.status == 201 for e in twilio.exchanges), [e.status for e in twilio.exchanges]
    sent = worker.rows("select id, channel, attempts from notifications where state = 'sent'")
    assert all(r["attempts"] == 1 for r in sent)
    voice_ids = {r["id"] for r in sent if r["channel"] == "voice"}
    by_row = calls_by_notification(twilio)
    assert set(by_row) == voice_ids and set(by_row.values()) == {1}, by_row
    sms_rows = worker.rows(
        "select id, alert_id, contact_id, purpose, state, attempts, error from notifications"
        " where channel = 'sms' order by id"
    )
    assert len(twilio.sent("sms")) == sum(1 for r in sent if r["channel"] == "sms"), sms_rows


def test_sigkill_mid_chain_then_restart_continues_without_doubles_or_gaps(
    services: Endpoints, alerts_worker: AlertsWorker, twilio: TwilioRecorder
) -> None:
    w = alerts_worker
    w.start()
    alert_id = f"fall-crash-{uuid.uuid4().hex[:8]}"
    record = {
        "alert_id": alert_id,
        "kind": "fall",
        "severity": "critical",
        "resident_id": "R003",
        "device_id": "B003",
        "ts": T0,
        "detected_at": T0,
        "details": {},
    }
    produce(services.kafka_bootstrap, "alerts", "R003", record)
    step1 = ["nurse-li sms", "nurse-li voice"]
    w.wait_for("step 1", lambda: steps_sent(w, alert_id).get((0, 0)) == step1)
    w.kill()  # SIGKILL while waiting for an acknowledgement of step 1
    w.clock.set(T0 + 60)  # the step-2 time passes while the worker is dead
    w.start()
    step2 = sorted(f"{c} {ch}" for c in ("R003-0", "nurse-backup") for ch in ("sms", "voice"))
    w.wait_for("step 2", lambda: steps_sent(w, alert_id).get((0, 1)) == step2)
    w.kill()
    w.start()  # a restart with nothing due sends nothing
    w.clock.set(T0 + 180)
    w.wait_for(
        "step 3",
        lambda: steps_sent(w, alert_id).get((0, 2)) == ["responder-120 sms", "responder-120 voice"],
    )
    marker_passes(w, services.kafka_bootstrap)  # a wrongly repeated send would be made by now
    assert steps_sent(w, alert_id) == {
        (0, 0): step1,
        (0, 1): step2,
        (0, 2): ["responder-120 sms", "responder-120 voice"],
    }
    assert_nothing_twice(w, twilio)
    mine = [e.form["To"] for e in twilio.sent("call")]
    for number in (NURSE_DAY, DAUGHTER_R003, BACKUP, RESPONDER):
        assert number in mine
    escalated = w.rows(
        "select note from alert_events where alert_id = %s and event = 'escalated'", alert_id
    )
    assert [r["note"][:13] for r in escalated] == [
        "step 1/3 pass",
        "step 2/3 pass",
        "step 3/3 pass",
    ]


def test_sos_end_to_end_keypress_stops_the_chain_and_the_wearer_hears_help_is_coming(
    services: Endpoints,
    pipeline: ProcessGroup,
    alerts_worker: AlertsWorker,
    twilio: TwilioRecorder,
) -> None:
    w = alerts_worker
    w.start()
    commands: list[dict[str, Any]] = []
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:6]}")
    subscribed = threading.Event()
    sub.on_message = lambda c, u, m: commands.append(orjson.loads(m.payload))
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect(services.host, services.mqtt_port)
    sub.subscribe("anxin/v1/devices/W001/commands", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        seq = 700_000 + int(time.time()) % 100_000
        payload = {"ts": round(time.time(), 3), "seq": seq, "event": "sos"}
        mosquitto_pub(services, "anxin/v1/devices/W001/telemetry", [orjson.dumps(payload)])

        def sos_alert() -> str | None:
            rows = w.rows(
                "select a.alert_id from alerts a where resident_id = 'R001' and kind = 'sos'"
                " and state in ('open', 'notifying')"
            )
            return rows[0]["alert_id"] if rows else None

        w.wait_for("the SOS alert", lambda: sos_alert() is not None, timeout=60)
        alert_id = sos_alert()
        assert alert_id is not None
        sources = w.rows("select source_alert_id from alert_sources where alert_id = %s", alert_id)
        assert sources  # the detector's alert record(s) of this episode

        # A call and an SMS to the duty nurse, the mock answering 201.
        step1 = ["nurse-li sms", "nurse-li voice"]
        w.wait_for("step 1", lambda: steps_sent(w, alert_id).get((0, 0)) == step1)
        voice = w.rows(
            "select id, http_status from notifications where alert_id = %s and channel = 'voice'",
            alert_id,
        )
        assert voice[0]["http_status"] == 201
        # No keypress: the nurse's phone was not answered -> family and backup nurse at once.
        resp = w.webhook(f"/twilio/voice/status?n={voice[0]['id']}", {"CallStatus": "no-answer"})
        assert resp.status_code == 204
        step2 = sorted(f"{c} {ch}" for c in ("R001-0", "nurse-backup") for ch in ("sms", "voice"))
        w.wait_for("step 2", lambda: steps_sent(w, alert_id).get((0, 1)) == step2)
        # Nobody presses anything: emergency responders at 180 s.
        w.clock.set(T0 + 180)
        responders = ["responder-120 sms", "responder-120 voice"]
        w.wait_for("step 3", lambda: steps_sent(w, alert_id).get((0, 2)) == responders)

        # The son presses 1 (a signed Twilio request): the chain stops, the wearer is told.
        son_call = w.rows(
            "select id from notifications where alert_id = %s and channel = 'voice'"
            " and contact_id = 'R001-0'",
            alert_id,
        )[0]["id"]
        bad = httpx.post(
            f"{w.public}/twilio/voice/gather?n={son_call}",
            data={"Digits": "1"},
            headers={"X-Twilio-Signature": "forged"},
            timeout=10,
        )
        assert bad.status_code == 403
        resp = w.webhook(f"/twilio/voice/gather?n={son_call}", {"Digits": "1", "CallSid": "CA1"})
        assert resp.status_code == 200 and "<Say" in resp.text
        state = w.rows("select state, acked_by from alerts where alert_id = %s", alert_id)[0]
        assert state == {"state": "acknowledged", "acked_by": "family:R001-0"}

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            c.get("cmd") == "notify" and c.get("alert_id") == alert_id for c in commands
        ):
            time.sleep(0.1)  # poll interval for the MQTT message
        notify = [c for c in commands if c.get("cmd") == "notify" and c.get("alert_id") == alert_id]
        assert notify and "帮助" in notify[0]["text"], commands  # "help is coming", in zh-CN

        def my_rows() -> int:
            return len(w.rows("select id from notifications where alert_id = %s", alert_id))

        rows = my_rows()
        w.clock.set(T0 + 1200)  # long past every step and repeat
        marker_passes(w, services.kafka_bootstrap)  # the engine ran at T0 + 1200, three times
        assert my_rows() == rows
        events = w.rows(
            "select event, published_at from alert_events where alert_id = %s order by event_id",
            alert_id,
        )
        assert "acknowledged" in [e["event"] for e in events]
        w.wait_for(
            "events published",
            lambda: all(
                r["published_at"] is not None
                for r in w.rows(
                    "select published_at from alert_events where alert_id = %s", alert_id
                )
            ),
        )
        assert_nothing_twice(w, twilio)
    finally:
        sub.loop_stop()
        sub.disconnect()

    # No name, phone number or address in anything the alerts worker logged.
    assert w.child is not None
    log_text = w.child.log_path.read_text(errors="replace")
    assert "ready" in log_text
    personal = ["王秀兰", "王伟", "文化西路", "Margaret", "Thornbury", "李德明", "李强"]
    personal += [SON_R001, "+447700900123", DAUGHTER_R003, NURSE_DAY, BACKUP, RESPONDER]
    personal += ["李护士", "陈护士长", "急救调度", "13800000001", "13700000011"]
    leaked = [p for p in personal if p in log_text]
    assert not leaked, leaked


def test_two_workers_at_once_send_every_notification_exactly_once(
    services: Endpoints, alerts_worker: AlertsWorker, twilio: TwilioRecorder
) -> None:
    """Two alerts worker processes on one database and one clock: each row sent by one of them."""
    a = alerts_worker
    a.start()
    b, _ = spawn_on_own_port(
        a.group,
        f"{a.name}-b",
        ("alerts", "run", "--clock", f"file:{a.clock.path}"),
        a.ready.with_name("alerts-b.ready"),
        lambda port: {"ANXIN_ALERTS__WEBHOOK_PORT": str(port)},  # its own webhooks, a's URL
        env=a.env,
        timeout=60,
    )
    tag = uuid.uuid4().hex[:6]
    ids = []
    # Residents and kinds no other test raises: a fresh group reads the topic from the start, and
    # another test's open episode of the same resident and kind would absorb ours (dedup), or a
    # wearer's "ok" from another test would cancel it.
    for resident, device in (
        ("R004", "Q004"),
        ("R051", "V051"),
        ("R052", "V052"),
        ("R053", "V053"),
    ):
        for kind in ("fall", "wander"):
            alert_id = f"{kind}-two-{tag}-{resident}"
            ids.append(alert_id)
            produce(
                services.kafka_bootstrap,
                "alerts",
                resident,
                {
                    "alert_id": alert_id,
                    "kind": kind,
                    "severity": "critical",
                    "resident_id": resident,
                    "device_id": device,
                    "ts": T0,
                    "detected_at": T0,
                    "details": {},
                },
            )
    for now, step in ((T0, 0), (T0 + 60, 1), (T0 + 180, 2)):
        a.clock.set(now)

        def every_alert_at(step: int = step) -> bool:
            return all((0, step) in steps_sent(a, i) for i in ids)

        a.wait_for(f"step {step + 1} of every alert", every_alert_at, timeout=60)
    assert b.alive() and a.child is not None and a.child.alive()
    assert_nothing_twice(a, twilio)
    per_alert = {i: steps_sent(a, i) for i in ids}
    assert all(set(s) == {(0, 0), (0, 1), (0, 2)} for s in per_alert.values()), per_alert
    senders = a.rows("select distinct claimed_by from notifications where state = 'sent'")
    print(f"two alerts workers: {len(senders)} of them sent rows")


def produce_raw(bootstrap: str, topic: str, key: str, values: list[bytes]) -> None:
    async def go() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(go())


def alert_record(alert_id: str, kind: str, resident: str, device: str, at: float) -> bytes:
    severity = "critical" if kind == "sos" else "warning"
    return orjson.dumps(
        {
            "alert_id": alert_id,
            "kind": kind,
            "severity": severity,
            "resident_id": resident,
            "device_id": device,
            "ts": at,
            "detected_at": at,
            "details": {},
        }
    )


def test_a_second_sos_ten_minutes_after_the_acknowledgement_rings_the_nurse_again(
    services: Endpoints, alerts_worker: AlertsWorker, twilio: TwilioRecorder
) -> None:
    """Issue 18.5: the second press merged silently into the acknowledged alert."""
    w = alerts_worker
    w.start()
    tag = uuid.uuid4().hex[:8]
    first, second = f"sos-again-{tag}-1", f"sos-again-{tag}-2"
    # R052: no other test raises an SOS for her (a fresh group reads the whole topic).
    produce_raw(
        services.kafka_bootstrap, "alerts", "R052", [alert_record(first, "sos", "R052", "V052", T0)]
    )
    step1 = ["nurse-li sms", "nurse-li voice"]

    def nurse_calls() -> int:
        """Calls to the nurse about this alert (a fresh group also reads earlier tests' alerts)."""
        mine = w.rows(
            "select id from notifications where alert_id = %s and contact_id = 'nurse-li'"
            " and channel = 'voice'",
            first,
        )
        by_row = calls_by_notification(twilio)
        return sum(by_row.get(r["id"], 0) for r in mine)

    w.wait_for("step 1", lambda: steps_sent(w, first).get((0, 0)) == step1)
    call = w.rows("select id from notifications where alert_id = %s and channel = 'voice'", first)
    resp = w.webhook(
        f"/twilio/voice/gather?n={call[0]['id']}", {"Digits": "1", "CallSid": f"CA{tag}1"}
    )
    assert resp.status_code == 200
    assert w.rows("select state from alerts where alert_id = %s", first) == [
        {"state": "acknowledged"}
    ]
    assert nurse_calls() == 1
    w.clock.set(T0 + 600)
    produce_raw(
        services.kafka_bootstrap,
        "alerts",
        "R052",
        [alert_record(second, "sos", "R052", "V052", T0 + 600)],
    )

    def round_1() -> list[str]:
        return sorted(
            f"{r['contact_id']} {r['channel']}"
            for r in w.rows(
                "select contact_id, channel from notifications where alert_id = %s"
                " and round = 1 and purpose = 'alert' and state = 'sent'",
                first,
            )
        )

    w.wait_for("the nurse called again", lambda: round_1() == step1)
    assert nurse_calls() == 2  # her phone rings again
    events = w.rows(
        "select event, state, by, note from alert_events where alert_id = %s"
        " and event in ('acknowledged', 'recurred', 'escalated') order by event_id",
        first,
    )
    assert [(e["event"], e["state"]) for e in events] == [
        ("escalated", "notifying"),
        ("acknowledged", "acknowledged"),
        ("recurred", "open"),
        ("escalated", "notifying"),
    ]
    assert events[1]["by"] == "duty_nurse:nurse-li"
    assert events[2]["note"] == f"sos {second} after acknowledgement by duty_nurse:nurse-li"
    assert_nothing_twice(w, twilio)


def test_a_poison_record_on_alerts_is_dead_lettered_and_the_next_alert_is_notified(
    services: Endpoints, alerts_worker: AlertsWorker, twilio: TwilioRecorder
) -> None:
    """Issue 17: invalid records were only logged; an unknown kind must pass through.

    On an alerts topic of its own: the poison must not reach any other test's consumers."""
    w = alerts_worker
    tag = uuid.uuid4().hex[:8]
    topic = f"alerts-poison-{tag}"
    w.env["ANXIN_KAFKA__ALERTS_TOPIC"] = topic
    good, checkin = f"sos-after-poison-{tag}", f"checkin-{tag}"
    poison = [
        b'{"alert_id": "poison-' + tag.encode() + b'", "kind": "sos"',  # cut short
        alert_record(f"poison-{tag}-severity", "sos", "R053", "V053", T0).replace(
            b'"critical"', b'"urgent"'
        ),
        alert_record(f"poison-{tag}-nul\u0000", "sos", "R053", "V053", T0),  # PostgreSQL: no NUL
    ]
    produce_raw(
        services.kafka_bootstrap,
        topic,
        "R053",
        [
            *poison,
            alert_record(good, "sos", "R053", "V053", T0),
            alert_record(checkin, "checkin", "R053", "V053", T0),
        ],
    )
    w.start()  # the topic exists now; a new consumer group reads it from the start
    w.wait_for(
        "the SOS notified",
        lambda: steps_sent(w, good).get((0, 0)) == ["nurse-li sms", "nurse-li voice"],
    )
    w.wait_for(
        "the check-in notified", lambda: steps_sent(w, checkin).get((0, 0)) == ["nurse-li sms"]
    )
    assert w.rows("select kind, severity from alerts where alert_id = %s", checkin) == [
        {"kind": "checkin", "severity": "warning"}
    ]
    letters = collect(
        services.kafka_bootstrap,
        "readings-rejected",
        match=lambda r: r.get("stage") == "alerts" and tag in (r.get("payload") or ""),
        until=lambda found: len(found) >= 3,
    )
    # (the one dead-letter topic has several partitions: compare in payload order)
    letters.sort(key=lambda r: poison.index(r["payload"].encode()))
    assert [(r["reason"], r["stage"], r["topic"], r["device_id"]) for r in letters] == [
        ("invalid JSON", "alerts", topic, None),
        (
            "invalid alert record: severity: Input should be 'warning' or 'critical'",
            "alerts",
            topic,
            "V053",
        ),
        ("alerts could not store it: DataError", "alerts", topic, "V053"),
    ]
    assert w.child is not None and w.child.alive()
    assert_nothing_twice(w, twilio)


def test_a_fall_suspicion_is_kept_for_the_console_and_notifies_nobody(
    services: Endpoints, alerts_worker: AlertsWorker, twilio: TwilioRecorder, registry_file: Path
) -> None:
    """Issue 15: a suspicion prompts the wearer only; the console lists it apart from alerts."""
    from anxin.core.registry import load_registry
    from console.data import ConsoleData

    w = alerts_worker
    w.start()
    tag = uuid.uuid4().hex[:8]

    def suspicion(sid: str, outcome: str, reason: str = "") -> bytes:
        return orjson.dumps(
            {
                "suspicion_id": sid,
                "resident_id": "R004",
                "device_id": "Q004",
                "ts": T0 - 5,
                "detected_at": T0 - 3,
                "outcome": outcome,
                "reason": reason,
                "details": {"peak_g": 3.1},
            }
        )

    a, b, bad = f"fall-sus-{tag}-a", f"fall-sus-{tag}-b", f"fall-sus-{tag}-bad"
    produce_raw(
        services.kafka_bootstrap,
        "fall-suspicions",
        "R004",
        [
            suspicion(a, "open"),
            suspicion(b, "open"),
            suspicion(b, "cancelled", "wearer pressed I'm OK"),
            suspicion(b, "open"),  # a late redelivery never reopens it
            suspicion(bad, "maybe"),
        ],
    )
    letters = collect(
        services.kafka_bootstrap,
        "readings-rejected",
        match=lambda r: r.get("stage") == "alerts" and tag in (r.get("payload") or ""),
        until=lambda found: len(found) >= 1,
    )
    assert [(r["reason"], r["topic"]) for r in letters] == [
        (
            "invalid fall suspicion: outcome: Input should be 'open', 'confirmed' or 'cancelled'",
            "fall-suspicions",
        )
    ]
    rows = w.rows(
        "select suspicion_id, resident_id, outcome, reason from fall_suspicions"
        " where suspicion_id like %s order by suspicion_id",
        f"fall-sus-{tag}%",
    )
    assert rows == [
        {"suspicion_id": a, "resident_id": "R004", "outcome": "open", "reason": ""},
        {
            "suspicion_id": b,
            "resident_id": "R004",
            "outcome": "cancelled",
            "reason": "wearer pressed I'm OK",
        },
    ]
    # Nobody notified: no alert record came of it, so no outbox row and no request to Twilio.
    assert w.rows(
        "select count(*) as c from alert_sources where source_alert_id like 'fall-sus-%%'"
    ) == [{"c": 0}]
    assert w.rows(
        "select count(*) as c from alerts where resident_id = 'R004' and kind = 'fall' and detected_at = %s",
        T0 - 3,
    ) == [{"c": 0}]
    data = ConsoleData(Database(w.dsn), lambda: load_registry(registry_file), None, None, w.clock)
    shown = [
        (s.suspicion_id, s.resident_name, s.outcome)
        for s in data.suspected_falls()
        if tag in s.suspicion_id
    ]
    assert shown == [(a, "赵凤英", "open"), (b, "赵凤英", "cancelled")]
