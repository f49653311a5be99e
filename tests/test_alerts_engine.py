"""The alerts engine in-process against the real PostgreSQL and the real Twilio mock (Prism,
behind a recording proxy), driven by a manual clock: minutes of escalation run in milliseconds."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from alerts import store
from alerts.clock import ManualClock
from alerts.db import Database, migrate
from alerts.escalation import run_due
from alerts.lifecycle import Lifecycle, apply_update, ingest_alert
from alerts.notifiers import TwilioNotifier, check_credentials
from alerts.outbox import Outbox
from alerts.policies import Directory, load_policies
from alerts.testing import TwilioRecorder, fresh_database, sign
from alerts.webhooks import Webhooks
from anxin.core.records import AlertRecord
from anxin.core.registry import load_registry
from anxin.core.settings import AlertsSettings, TwilioSettings
from anxin.core.yamlfile import ConfigError
from anxin.services import Endpoints

POLICIES = Path(__file__).parent / "data" / "alerts" / "alerts.yaml"
TOKEN = "test-auth-token-0123456789"
PUBLIC = "https://anxin.example.org/hooks"
T0 = 1_767_225_600.0  # 2026-01-01 08:00 in Asia/Shanghai: the day nurse is on duty
NURSE_DAY, NURSE_NIGHT = "+8613700000011", "+8613700000012"
BACKUP, RESPONDER, SON = "+8613700000013", "+8612000000120", "+8613800000001"


@pytest.fixture(scope="module")
def twilio(services: Endpoints) -> Iterator[TwilioRecorder]:
    recorder = TwilioRecorder(services.twilio_url).start()
    yield recorder
    recorder.stop()


class Engine:
    """One alerts engine: what the worker's loops do, stepped by hand."""

    def __init__(self, db: Database, directory: Directory, twilio: TwilioRecorder, sid: str):
        self.db = db
        self.directory = directory
        self.clock = ManualClock(T0)
        self.settings = AlertsSettings(retry_base_s=2, retry_max_s=30, max_attempts=6)
        tw = TwilioSettings(
            account_sid=sid,
            auth_token=SecretStr(TOKEN),
            base_url=twilio.url,
            public_base_url=PUBLIC,
        )
        self.outbox = Outbox(
            db, lambda: directory, self.settings, self.clock, "test", PUBLIC, TwilioNotifier(tw)
        )
        self.lifecycle = Lifecycle(db, self.clock)
        self.webhooks = TestClient(Webhooks(db, lambda: directory, self.clock, TOKEN, PUBLIC).app())

    def ingest(self, **fields: Any) -> str:
        base = {
            "alert_id": "sos-1",
            "kind": "sos",
            "severity": "critical",
            "resident_id": "R001",
            "device_id": "W001",
            "ts": self.clock.now(),
            "detected_at": self.clock.now(),
            "details": {"location": {"lat": 37.5136, "lon": 122.1204}},
        }
        record = AlertRecord.model_validate({**base, **fields})
        with self.db.transaction() as conn:
            return ingest_alert(conn, record, self.directory, self.clock.now())

    def update(self, update: dict[str, Any]) -> str:
        with self.db.transaction() as conn:
            return apply_update(conn, update, self.clock.now())

    def tick(self) -> None:
        """Run due steps and send due notifications, as one pass of the worker loop."""
        run_due(self.db, self.directory, self.clock.now())
        self.outbox.run_once()

    def at(self, seconds: float) -> None:
        self.clock.set(T0 + seconds)
        self.tick()

    def rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            return conn.execute(sql.encode(), args).fetchall()

    def alert(self, alert_id: str = "sos-1") -> dict[str, Any]:
        return self.rows("select * from alerts where alert_id = %s", alert_id)[0]

    def post(self, path: str, form: dict[str, str], signature: str | None = "good") -> Any:
        headers = {}
        if signature == "good":
            headers["X-Twilio-Signature"] = sign(TOKEN, PUBLIC + path, form)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return self.webhooks.post(path, data=form, headers=headers)


@pytest.fixture
def engine(services: Endpoints, twilio: TwilioRecorder, registry_file: Path) -> Engine:
    db = Database(fresh_database(services.pg_dsn))
    assert migrate(db) == 3
    assert migrate(db) == 3  # idempotent
    directory = Directory(load_policies(POLICIES), load_registry(registry_file))
    twilio.exchanges.clear()
    twilio.outage = False
    twilio.invalid_numbers.clear()
    return Engine(db, directory, twilio, services.twilio_account_sid)


def numbers(twilio: TwilioRecorder, kind: str) -> list[str]:
    return sorted(e.form["To"] for e in twilio.sent(kind))


def test_invalid_policy_file_is_refused_naming_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "alerts.yaml"
    text = POLICIES.read_text().replace(
        "via: [voice, sms], wait_s: 120}", "via: [fax], wait_s: 120}", 1
    )
    bad.write_text(text.replace("[responders]", "[respondres]", 1))
    with pytest.raises(ConfigError) as err:
        load_policies(bad)
    problems = err.value.problems
    line_fax = next(i for i, line in enumerate(text.splitlines(), 1) if "[fax]" in line)
    assert f"{bad}:{line_fax}: policies.default.critical.steps[1].via[0]:" in problems[0]
    assert any(
        "policies.default.critical.steps[2].notify: 'respondres' is neither a role nor a contact"
        in p
        for p in problems
    ), problems


def test_three_minute_chain_runs_on_the_manual_clock(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    assert engine.ingest() == "opened"
    engine.at(0)
    # Critical: duty nurse (the day shift at 08:00 Shanghai) by voice and SMS at once.
    assert numbers(twilio, "call") == [NURSE_DAY]
    assert numbers(twilio, "sms") == [NURSE_DAY]
    assert all(e.status == 201 for e in twilio.exchanges), twilio.exchanges
    call = twilio.sent("call")[0].form
    assert "<Gather" in call["Twiml"] and 'numDigits="1"' in call["Twiml"]
    assert 'language="zh-CN"' in call["Twiml"] and "文化西路 88 号" in call["Twiml"]  # where
    assert "王秀兰" in call["Twiml"]  # who (said on the phone, never logged)
    assert call["StatusCallback"].startswith(f"{PUBLIC}/twilio/voice/status?n=")
    sent = engine.rows("select http_status, state from notifications")
    assert {(r["http_status"], r["state"]) for r in sent} == {(201, "sent")}

    engine.at(59.9)
    assert len(twilio.sent("call")) == 1  # not yet
    engine.at(60)  # no acknowledgement in 60 s: family and backup nurse
    assert numbers(twilio, "call") == sorted([NURSE_DAY, SON, BACKUP])
    assert numbers(twilio, "sms") == sorted([NURSE_DAY, SON, BACKUP])
    engine.at(179)
    assert len(twilio.sent("call")) == 3
    engine.at(180)  # none in 180 s: emergency responders
    assert numbers(twilio, "call") == sorted([NURSE_DAY, SON, BACKUP, RESPONDER])
    engine.at(300)  # reminders: the chain starts over until someone acknowledges
    assert len(twilio.sent("call", NURSE_DAY)) == 2
    engine.tick()
    assert len(twilio.sent("call", NURSE_DAY)) == 2  # a due row is sent once

    out = engine.lifecycle.acknowledge("sos-1", "duty_nurse", "nurse-li", "console", "on my way")
    assert out is not None and out.first and out.by == "duty_nurse:nurse-li"
    later = engine.lifecycle.acknowledge("sos-1", "family", "R001-0", "sms")
    assert later is not None and not later.first and later.by == "duty_nurse:nurse-li"
    calls = len(twilio.sent("call"))
    for t in (360, 420, 600, 1200):
        engine.at(t)
    assert len(twilio.sent("call")) == calls  # the acknowledgement stopped the chain
    events = [r["event"] for r in engine.rows("select event from alert_events order by event_id")]
    assert events[0] == "opened" and events.count("escalated") == 4
    assert "acknowledged" in events and events[-1] == "ack_recorded"
    acks = engine.rows("select by_contact_id, first from acknowledgements order by id")
    assert [(a["by_contact_id"], a["first"]) for a in acks] == [
        ("nurse-li", True),
        ("R001-0", False),
    ]
    device = engine.rows("select * from notifications where channel = 'device'")
    assert [(d["purpose"], d["contact_id"]) for d in device] == [("ack_notice", "device:W001")]


def test_rota_picks_the_night_nurse_at_night(engine: Engine, twilio: TwilioRecorder) -> None:
    engine.clock.set(T0 + 13 * 3600)  # 21:00 in Shanghai
    engine.ingest(severity="warning", kind="vitals", alert_id="vitals-1")
    engine.tick()
    # Warning: duty nurse by SMS, then voice after 5 minutes.
    assert numbers(twilio, "sms") == [NURSE_NIGHT] and numbers(twilio, "call") == []
    engine.clock.advance(299)
    engine.tick()
    assert numbers(twilio, "call") == []
    engine.clock.advance(1)
    engine.tick()
    assert numbers(twilio, "call") == [NURSE_NIGHT]


def test_duplicates_merge_and_a_severity_rise_renotifies(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    assert engine.ingest(kind="fall", alert_id="fall-1", severity="warning") == "opened"
    engine.at(0)
    assert numbers(twilio, "sms") == [NURSE_DAY] and numbers(twilio, "call") == []
    # The same record again (a redelivery), and another fall of the same episode.
    assert engine.ingest(kind="fall", alert_id="fall-1", severity="warning") == "duplicate"
    assert engine.ingest(kind="fall", alert_id="fall-2", severity="warning") == "merged"
    engine.at(10)
    assert len(twilio.sent("sms")) == 1
    assert len(engine.rows("select * from alerts")) == 1
    # The detector re-publishes fall-1 as critical: a fresh round from the critical chain's start.
    assert engine.ingest(kind="fall", alert_id="fall-1", severity="critical") == "raised"
    assert engine.ingest(kind="fall", alert_id="fall-1", severity="critical") == "duplicate"
    engine.at(11)
    assert numbers(twilio, "call") == [NURSE_DAY] and len(twilio.sent("sms")) == 2
    alert = engine.alert("fall-1")
    assert (alert["severity"], alert["round"], alert["state"]) == ("critical", 1, "notifying")
    # A fall of another resident is a different alert.
    assert engine.ingest(kind="fall", alert_id="fall-9", resident_id="R002", device_id="W002") == (
        "opened"
    )


def test_wearer_ok_cancels_and_those_told_hear_false_alarm(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    engine.ingest()
    engine.at(0)
    engine.at(60)  # nurse, son and backup nurse told
    assert engine.update({"action": "wearer_ok", "resident_id": "R001", "device_id": "W001"}) == (
        "wearer_ok: 1 cancelled"
    )
    assert engine.update({"action": "wearer_ok", "resident_id": "R001", "device_id": "W001"}) == (
        "wearer_ok: 0 cancelled"
    )
    twilio.exchanges.clear()
    engine.at(61)
    assert numbers(twilio, "sms") == sorted([NURSE_DAY, SON, BACKUP])
    assert all("误报" in e.form["Body"] for e in twilio.sent("sms"))  # "false alarm"
    engine.at(400)
    assert numbers(twilio, "call") == []
    alert = engine.alert()
    assert (alert["state"], alert["closed_by"]) == ("cancelled", "wearer:W001")
    device = engine.rows("select purpose from notifications where channel = 'device'")
    assert [d["purpose"] for d in device] == ["closed_notice"]  # a `cancel` downlink
    with engine.db.connect() as conn:  # `anxin alerts list` [--all]
        assert store.list_alerts(conn, include_closed=False) == []
        listed = store.list_alerts(conn, include_closed=True)
    assert [(r["alert_id"], r["state"], r["sent"]) for r in listed] == [("sos-1", "cancelled", 9)]

    # A detector's cancel of an acknowledged alert resolves it; of an unacknowledged, cancels it.
    engine.ingest(alert_id="sos-2", ts=T0 + 500)
    engine.at(500)
    engine.lifecycle.acknowledge("sos-2", "duty_nurse", "nurse-li", "console")
    assert engine.update({"action": "resolve", "alert_id": "sos-2", "kind": "sos"}) == "resolved"
    assert engine.update({"action": "resolve", "alert_id": "sos-2"}) == "already closed"
    assert engine.update({"action": "cancel", "alert_id": "nope"}) == "unknown alert"


def test_webhook_signature_good_acks_bad_gets_403_and_changes_nothing(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    engine.ingest()
    engine.at(0)
    n = engine.rows("select id from notifications where channel = 'voice'")[0]["id"]
    path = f"/twilio/voice/gather?n={n}"
    form = {"CallSid": "CA" + "1" * 32, "Digits": "1", "From": "+15005550006", "To": NURSE_DAY}
    forged = sign("not-the-token", PUBLIC + path, form)
    for signature in (None, "", forged, sign(TOKEN, PUBLIC + path, {**form, "Digits": "2"})):
        resp = engine.post(path, form, signature)
        assert resp.status_code == 403
    other = sign(TOKEN, PUBLIC + f"/twilio/voice/gather?n={n + 1}", form)
    assert engine.post(path, form, other).status_code == 403  # signed for another notification
    assert engine.alert()["state"] == "notifying"
    assert engine.rows("select count(*) as c from acknowledgements")[0]["c"] == 0

    resp = engine.post(path, form)
    assert resp.status_code == 200 and "<Say" in resp.text and "已确认" in resp.text
    alert = engine.alert()
    assert (alert["state"], alert["acked_by"], alert["acked_channel"]) == (
        "acknowledged",
        "duty_nurse:nurse-li",
        "voice",
    )
    # The status callback after the keypress does not move anything on.
    status = {"CallSid": "CA" + "1" * 32, "CallStatus": "completed"}
    assert engine.post(f"/twilio/voice/status?n={n}", status).status_code == 204
    assert engine.post(f"/twilio/voice/status?n={n}", status, "bad").status_code == 403


def test_no_answer_moves_to_the_next_step_at_once(engine: Engine, twilio: TwilioRecorder) -> None:
    engine.ingest()
    engine.at(0)
    n = engine.rows("select id from notifications where channel = 'voice'")[0]["id"]
    resp = engine.post(f"/twilio/voice/status?n={n}", {"CallStatus": "no-answer"})
    assert resp.status_code == 204
    engine.at(5)  # not 60: nobody answered, so family and backup now
    assert numbers(twilio, "call") == sorted([NURSE_DAY, SON, BACKUP])
    # The son hangs up without a keypress; the backup nurse's phone still rings: wait.
    son, backup = (
        engine.rows(
            "select id from notifications where channel = 'voice' and contact_id = %s", cid
        )[0]["id"]
        for cid in ("R001-0", "nurse-backup")
    )
    engine.post(f"/twilio/voice/status?n={son}", {"CallStatus": "completed"})
    engine.at(6)
    assert len(twilio.sent("call")) == 3
    engine.post(f"/twilio/voice/status?n={backup}", {"CallStatus": "busy"})
    engine.at(7)
    assert numbers(twilio, "call") == sorted([NURSE_DAY, SON, BACKUP, RESPONDER])
    outcomes = engine.rows(
        "select contact_id, outcome from notifications where outcome is not null order by id"
    )
    assert [o["outcome"] for o in outcomes] == ["no-answer", "hung-up-without-keypress", "busy"]


def sms_to(twilio: TwilioRecorder, number: str) -> list[str]:
    return [e.form["Body"] for e in twilio.sent("sms", number)]


def test_sms_reply_names_its_alert_by_code_and_a_bare_1_asks_which(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    engine.ingest()
    engine.at(0)
    engine.ingest(alert_id="wander-1", kind="wander", resident_id="R002", device_id="W002")
    engine.at(1)  # the day nurse was told about R001's SOS (code a), then R002's wander (code b)
    bodies = sms_to(twilio, NURSE_DAY)
    assert len(bodies) == 2
    assert "回复 1a 确认由您处理，2a 表示已处理完毕。" in bodies[0]
    assert "回复 1b 确认由您处理，2b 表示已处理完毕。" in bodies[1]
    unknown = engine.post(
        "/twilio/sms", {"From": "+8613999999999", "Body": "收到", "MessageSid": "SMu"}
    )
    assert unknown.status_code == 200 and "<Message>" in unknown.text
    chatter = engine.post(
        "/twilio/sms", {"From": NURSE_DAY, "Body": "who is this?", "MessageSid": "SMc"}
    )
    assert chatter.status_code == 200 and "1a" in chatter.text  # how to answer
    signed = {"From": NURSE_DAY, "Body": " 收到 ", "MessageSid": "SM1"}
    assert engine.post("/twilio/sms", signed, "x").status_code == 403
    assert engine.post("/twilio/sms", {"From": NURSE_DAY, "Body": "1"}).status_code == 400  # no sid
    which = engine.post("/twilio/sms", signed)  # two open alerts told to this number: which one?
    assert which.status_code == 200
    assert "您有2条警报，请回复编号：1a 王秀兰按下紧急呼救；1b " in which.text
    assert engine.rows("select count(*) as c from acknowledgements")[0]["c"] == 0
    resp = engine.post("/twilio/sms", {"From": NURSE_DAY, "Body": " 1B。", "MessageSid": "SM2"})
    assert resp.status_code == 200 and "已确认" in resp.text
    assert engine.alert("wander-1")["state"] == "acknowledged"
    assert engine.alert("sos-1")["state"] == "notifying"
    nope = engine.post("/twilio/sms", {"From": NURSE_DAY, "Body": "1z", "MessageSid": "SM3"})
    assert "没有这个编号的警报" in nope.text
    later = engine.post("/twilio/sms", {"From": SON, "Body": "1", "MessageSid": "SM4"})
    assert "没有需要您确认的警报" in later.text  # the son was told nothing yet
    engine.post("/twilio/sms", {"From": NURSE_DAY, "Body": "2b", "MessageSid": "SM5"})
    assert engine.alert("wander-1")["state"] == "resolved"
    # One open alert told to the nurse now: a bare "OK" means that one.
    engine.post("/twilio/sms", {"From": NURSE_DAY, "Body": "OK", "MessageSid": "SM6"})
    acks = engine.rows("select alert_id, action, channel, first from acknowledgements order by id")
    assert [(a["alert_id"], a["action"], a["first"]) for a in acks] == [
        ("wander-1", "acknowledge", True),
        ("wander-1", "resolve", True),
        ("sos-1", "acknowledge", True),
    ]
    assert {a["channel"] for a in acks} == {"sms"}


def test_a_replayed_signed_sms_reply_acts_once_and_never_on_a_later_alert(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    """Issue 18.3: the same validly signed "1" replayed 50 s later, after a second alert was sent
    to the nurse, acknowledged that second alert and stopped its escalation."""
    engine.ingest()
    engine.at(0)
    reply = {"From": NURSE_DAY, "Body": "1", "MessageSid": "SM" + "a" * 32, "To": "+15005550006"}
    first = engine.post("/twilio/sms", reply)
    assert first.status_code == 200 and "已确认" in first.text
    assert engine.alert("sos-1")["state"] == "acknowledged"
    engine.ingest(alert_id="wander-7", kind="wander", resident_id="R002", device_id="W002")
    engine.at(50)
    assert len(twilio.sent("call", NURSE_DAY)) == 2  # the nurse was told about the second alert
    replay = engine.post("/twilio/sms", reply)  # the very same signed request
    assert replay.status_code == 200 and "<Message>" not in replay.text
    assert engine.alert("wander-7")["state"] == "notifying"
    engine.at(110)  # its escalation goes on: 60 s without acknowledgement, family and backup
    assert engine.alert("wander-7")["step"] == 2
    assert len(twilio.sent("call", BACKUP)) == 1
    acks = engine.rows("select alert_id from acknowledgements order by id")
    assert [a["alert_id"] for a in acks] == ["sos-1"]
    assert engine.rows("select route, sid from webhook_requests") == [
        {"route": "sms", "sid": "SM" + "a" * 32}
    ]


def test_a_replayed_keypress_request_acts_once(engine: Engine, twilio: TwilioRecorder) -> None:
    engine.ingest()
    engine.at(0)
    n = engine.rows("select id from notifications where channel = 'voice'")[0]["id"]
    form = {"CallSid": "CA" + "2" * 32, "Digits": "1"}
    assert "已确认" in engine.post(f"/twilio/voice/gather?n={n}", form).text
    replay = engine.post(f"/twilio/voice/gather?n={n}", form)
    assert replay.status_code == 200 and "<Hangup" in replay.text and "<Say" not in replay.text
    assert engine.post(f"/twilio/voice/gather?n={n}", {"Digits": "1"}).status_code == 400
    acks = engine.rows("select alert_id, first from acknowledgements")
    assert acks == [{"alert_id": "sos-1", "first": True}]


def test_twilio_outage_retries_with_backoff_and_sends_once_recovered(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    twilio.outage = True
    engine.ingest()
    engine.at(0)
    assert [e.status for e in twilio.exchanges] == [500, 500]
    rows = engine.rows("select state, attempts, next_attempt_at, http_status from notifications")
    assert all(r["state"] == "pending" and r["http_status"] == 500 for r in rows)
    assert all(T0 + 1 <= r["next_attempt_at"] <= T0 + 2 for r in rows)  # 2 s, half jittered
    engine.at(0.5)
    assert len(twilio.exchanges) == 2  # not before the backoff
    for t in (2, 6, 14):
        engine.at(t)
    assert len(twilio.exchanges) == 8 and all(e.status == 500 for e in twilio.exchanges)
    twilio.outage = False
    engine.at(45)
    ok = sorted(
        (e.path.rsplit("/", 1)[-1], e.form["To"]) for e in twilio.exchanges if e.status == 201
    )
    assert ok == [("Calls.json", NURSE_DAY), ("Messages.json", NURSE_DAY)]
    assert [e.status for e in twilio.exchanges][-2:] == [201, 201]
    rows = engine.rows("select state, attempts from notifications order by id")
    assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 5), ("sent", 5)]
    engine.at(50)
    assert len(twilio.exchanges) == 10  # sent once, never again


def test_invalid_number_is_logged_by_contact_id_and_the_chain_moves_on(
    engine: Engine, twilio: TwilioRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    twilio.invalid_numbers.add(NURSE_DAY)
    caplog.set_level(logging.INFO)
    engine.ingest()
    engine.at(0)
    assert [e.status for e in twilio.exchanges] == [400, 400]
    failed = engine.rows("select state, error from notifications order by id")
    assert all(r["state"] == "failed" and "21211" in r["error"] for r in failed)
    assert "duty_nurse:nurse-li" in caplog.text and "failed for good" in caplog.text
    engine.at(1)  # the call could not be placed: the next step at once
    assert numbers(twilio, "call") == sorted([NURSE_DAY, SON, BACKUP])
    for value in (NURSE_DAY, SON, "王秀兰", "王伟", "文化西路"):
        assert value not in caplog.text


def test_two_senders_never_send_a_row_twice(engine: Engine, twilio: TwilioRecorder) -> None:
    for i in range(6):
        engine.ingest(
            alert_id=f"sos-{i}",
            resident_id=["R001", "R002", "R003"][i % 3],
            kind=("sos" if i < 3 else "fall"),
        )
    run_due(engine.db, engine.directory, T0)
    other = Outbox(
        engine.db,
        lambda: engine.directory,
        AlertsSettings(claim_batch=3),
        engine.clock,
        "other",
        PUBLIC,
        engine.outbox.notifier,
    )
    engine.outbox.settings = AlertsSettings(claim_batch=3)
    threads = [
        threading.Thread(target=lambda o=o: [o.run_once() for _ in range(6)])
        for o in (engine.outbox, other, engine.outbox, other)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = engine.rows("select state, claimed_by from notifications")
    assert len(rows) == 12 and all(r["state"] == "sent" for r in rows)
    assert len(twilio.sent("call")) + len(twilio.sent("sms")) == 12
    assert {r["claimed_by"] for r in rows} == {"test", "other"}


def test_a_send_lost_with_its_worker_is_sent_again_after_the_lease(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    """A worker claims the nurse's call and SMS and dies before any request: once its lease has
    run out another worker sends both, once, and a live worker's renewed lease is respected."""
    engine.ingest()
    run_due(engine.db, engine.directory, T0)
    vanished = Outbox(
        engine.db, lambda: engine.directory, engine.settings, engine.clock, "gone", PUBLIC
    )
    claimed = vanished.claim()
    assert len(claimed) == 2 and not twilio.exchanges
    engine.tick()  # the lease still runs: nothing is sent twice
    assert not twilio.exchanges
    # the lease runs out (moved into the past rather than waited for)
    engine.rows("update notifications set lease_until = 0 where state = 'sending' returning id")
    engine.tick()
    assert numbers(twilio, "call") == [NURSE_DAY] and numbers(twilio, "sms") == [NURSE_DAY]
    rows = engine.rows("select state, attempts, claimed_by from notifications order by id")
    assert [(r["state"], r["attempts"], r["claimed_by"]) for r in rows] == [("sent", 2, "test")] * 2
    # the vanished worker comes back with its stale rows: it may not send them
    assert all(vanished.deliver(row) is None for row in claimed)
    assert len(twilio.exchanges) == 2


def test_a_lease_shorter_than_a_request_is_refused() -> None:
    with pytest.raises(ValueError, match="lease_s"):
        AlertsSettings(lease_s=5, request_timeout_s=10)


def test_policy_example_is_valid() -> None:
    example = Path(__file__).parent.parent / "alerts" / "policies.example.yaml"
    assert shutil.which("true") and load_policies(example).policies["default"]


def test_a_second_sos_after_acknowledgement_calls_who_acknowledged_and_the_chain_again(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    """Issue 18.5: a new press on an acknowledged alert merged silently and paged nobody."""
    engine.ingest()
    engine.at(0)
    out = engine.lifecycle.acknowledge("sos-1", "family", "R001-0", "console", "on my way")
    assert out is not None and out.first
    engine.at(600)
    assert numbers(twilio, "call") == [NURSE_DAY]  # nothing since the acknowledgement
    assert engine.ingest(alert_id="sos-2", ts=T0 + 600, detected_at=T0 + 600) == "recurred"
    assert engine.ingest(alert_id="sos-2", ts=T0 + 600, detected_at=T0 + 600) == "duplicate"
    engine.at(600)
    # The son who acknowledged, and the chain's first step (the duty nurse), at once.
    assert numbers(twilio, "call") == sorted([NURSE_DAY, NURSE_DAY, SON])
    alert = engine.alert()
    assert (alert["state"], alert["round"], alert["acked_by"]) == ("notifying", 1, None)
    events = engine.rows(
        "select event, state, by, note from alert_events where event in"
        " ('acknowledged', 'recurred', 'escalated') order by event_id"
    )
    assert [(e["event"], e["state"]) for e in events] == [
        ("escalated", "notifying"),
        ("acknowledged", "acknowledged"),
        ("recurred", "open"),
        ("escalated", "notifying"),
    ]
    assert events[2]["note"] == "sos sos-2 after acknowledgement by family:R001-0"
    assert events[3]["note"] == (
        "step 1/3 pass 1: family:R001-0 voice+sms; duty_nurse:nurse-li voice+sms"
    )
    engine.at(660)  # nobody acknowledged the new press in 60 s: the chain goes on
    assert len(twilio.sent("call", BACKUP)) == 1
    engine.lifecycle.acknowledge("sos-1", "duty_nurse", "nurse-li", "console")
    calls = len(twilio.sent("call"))
    engine.at(1200)
    assert len(twilio.sent("call")) == calls


def test_an_acknowledgement_between_claim_and_send_stops_that_send(
    engine: Engine, twilio: TwilioRecorder
) -> None:
    """Issue 18.6: a row claimed before the acknowledgement was still sent after it."""
    engine.ingest()
    run_due(engine.db, engine.directory, T0)
    claimed = engine.outbox.claim()
    assert sorted(r["channel"] for r in claimed) == ["sms", "voice"]
    engine.lifecycle.acknowledge("sos-1", "duty_nurse", "nurse-li", "console")
    assert [engine.outbox.deliver(r) for r in claimed] == [None, None]
    assert twilio.exchanges == []
    rows = engine.rows(
        "select channel, state, error from notifications where purpose = 'alert' order by id"
    )
    assert rows == [
        {"channel": "voice", "state": "skipped", "error": "alert acknowledged before the send"},
        {"channel": "sms", "state": "skipped", "error": "alert acknowledged before the send"},
    ]


def test_default_twilio_secrets_are_refused_against_real_twilio(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        check_credentials(TwilioSettings())
    assert err.value.problems == [
        "twilio.auth_token: the default test token is refused with real Twilio"
        " (twilio.base_url unset); set ANXIN_TWILIO__AUTH_TOKEN",
        "twilio.account_sid: the placeholder account is refused with real Twilio"
        " (twilio.base_url unset); set ANXIN_TWILIO__ACCOUNT_SID",
    ]
    with pytest.raises(ConfigError, match="auth_token"):
        check_credentials(TwilioSettings(account_sid="AC" + "1" * 32))
    check_credentials(TwilioSettings(base_url="http://127.0.0.1:9"))  # the local mock
    check_credentials(TwilioSettings(account_sid="AC" + "1" * 32, auth_token=SecretStr(TOKEN)))
    # The worker (and its webhook server) refuses to start, with the reason.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANXIN_")}
    env["ANXIN_REGISTRY"] = str(Path(__file__).parent / "data" / "registry.yaml")
    env["ANXIN_ALERTS__POLICIES"] = str(POLICIES)
    done = subprocess.run(
        [sys.executable, "-m", "anxin.cli", "alerts", "run", "--no-webhooks"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "twilio.auth_token: the default test token is refused" in done.stdout
