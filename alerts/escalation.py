"""Escalation: run the steps that are due, and move on at once when nobody answered.

Each open alert has a due time in the database (``next_due_at``, engine clock). ``run_due``
claims due alerts with ``FOR UPDATE SKIP LOCKED`` (several workers share the work), writes the
step's outbox rows and sets the next due time, all in one transaction: a crash before the commit
leaves the step due, a crash after it leaves the rows for any worker to send.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from alerts import store
from alerts.db import Conn, Database
from alerts.policies import Directory, Recipient
from alerts.store import UNACKED_STATES, add_notification, record_event
from anxin.core.logs import get_logger

log = get_logger(__name__)

VOICE_ENDED = ("no-answer", "busy", "failed", "canceled", "completed", "rejected")


def run_due(db: Database, directory: Directory, now: float, limit: int = 20) -> int:
    """Run every step due at ``now``; returns how many steps ran."""
    ran = 0
    with db.transaction() as conn:
        for alert in store.lock_due_alerts(conn, now, limit):
            ran += run_step(conn, alert, directory, now)
    return ran


def _recipients(
    directory: Directory, notify: list[str], resident_id: str, now: float
) -> list[Recipient]:
    seen: dict[str, Recipient] = {}
    for who in notify:
        for r in directory.resolve(who, resident_id, now):
            seen.setdefault(r.contact_id, r)
    return list(seen.values())


def _with_recall(directory: Directory, by: str, recipients: list[Recipient]) -> list[Recipient]:
    """Whoever acknowledged before a new press, first, on the step's channels (once, if the step
    names them too); a device or detector acknowledgement names nobody to call."""
    role, _, contact_id = by.partition(":")
    found = directory.find(contact_id) if role not in ("wearer", "detector") else None
    if found is None or found.phone is None:
        return recipients
    rest = [r for r in recipients if r.contact_id != contact_id]
    return [replace(found, role=role), *rest]


def run_step(conn: Conn, alert: dict[str, Any], directory: Directory, now: float) -> int:
    """Run the alert's next step (the row is locked by the caller); 1 if a step ran."""
    chain = directory.chain(alert["policy"], alert["severity"])
    step, repeat = alert["step"], alert["repeat"]
    if step >= len(chain.steps):
        step, repeat = 0, repeat + 1
    passes = chain.passes()
    if passes is not None and repeat >= passes:
        store.set_nothing_due(conn, alert["alert_id"], now)
        record_event(
            conn,
            alert["alert_id"],
            "exhausted",
            alert["state"],
            now,
            note=f"no acknowledgement after {passes} passes of the chain",
        )
        log.warning("alert %s: chain exhausted without acknowledgement", alert["alert_id"])
        return 0
    st = chain.steps[step]
    told: list[str] = []
    recipients = _recipients(directory, st.notify, alert["resident_id"], now)
    if step == 0 and repeat == 0 and alert.get("recall_by"):
        recipients = _with_recall(directory, alert["recall_by"], recipients)
    for r in recipients:
        channels = [c for c in st.via if c != "device"]
        for channel in channels:
            add_notification(conn, alert, step, repeat, r.role, r.contact_id, channel, "alert", now)
        if channels:
            told.append(f"{r.by} {'+'.join(channels)}")
    if "device" in st.via:
        add_notification(
            conn,
            alert,
            step,
            repeat,
            "wearer",
            f"device:{alert['device_id']}",
            "device",
            "alert",
            now,
        )
        told.append(f"wearer:device:{alert['device_id']} device")
    if not told:
        log.warning(
            "alert %s: step %d of policy %s reaches nobody now",
            alert["alert_id"],
            step + 1,
            alert["policy"],
        )
    store.set_step_done(conn, alert["alert_id"], step + 1, repeat, now + st.wait_s, now)
    note = f"step {step + 1}/{len(chain.steps)} pass {repeat + 1}: " + "; ".join(told)
    record_event(conn, alert["alert_id"], "escalated", "notifying", now, note=note)
    log.info("alert %s %s", alert["alert_id"], note)
    return 1


def attempt_ended(conn: Conn, notification_id: int, outcome: str, now: float) -> bool:
    """A call ended without an acknowledgement (no-answer, busy, failed, hang-up) or a send
    failed for good: when no call of the current step is still ringing, the next step is due now.
    Returns True when that moved the chain on."""
    n = store.lock_notification(conn, notification_id)
    if n is None:
        return False
    store.set_outcome(conn, notification_id, outcome, now)
    alert = store.lock_alert(conn, n["alert_id"])
    if alert is None or n["purpose"] != "alert":
        return False
    if n["outcome"] is None:
        record_event(
            conn,
            alert["alert_id"],
            "not_reached",
            alert["state"],
            now,
            f"{n['role']}:{n['contact_id']}",
            n["channel"],
            outcome,
        )
    current = (
        alert["state"] in UNACKED_STATES
        and n["round"] == alert["round"]
        and n["repeat"] == alert["repeat"]
        and n["step"] == alert["step"] - 1
    )
    if not current or n["channel"] != "voice":
        return False
    ringing = store.calls_still_ringing(
        conn, alert["alert_id"], alert["round"], n["step"], n["repeat"]
    )
    if ringing == 0 and (alert["next_due_at"] or 0) > now:
        store.set_due_now(conn, alert["alert_id"], now)
        record_event(
            conn,
            alert["alert_id"],
            "no_answer",
            alert["state"],
            now,
            note=f"step {n['step'] + 1}: nobody answered; next step now",
        )
        log.info("alert %s: nobody answered step %d, moving on", alert["alert_id"], n["step"] + 1)
        return True
    return False
