"""The alert lifecycle in PostgreSQL: intake, dedup, acknowledgement, resolution, cancellation.

States: ``open`` → ``notifying`` → ``acknowledged`` → ``resolved``, or ``cancelled`` (the wearer
pressed "I'm OK", or a detector withdrew the alert before anyone acknowledged it). Every change
writes an ``alert_events`` row in the same transaction; a publisher puts those on ``alert-events``.
Every acknowledgement source (keypress, SMS reply, console, device) ends in ``acknowledge``: the
first one wins, later ones are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from alerts.clock import Clock
from alerts.db import Conn, Database
from alerts.policies import Directory
from alerts.store import OPEN_STATES, UNACKED_STATES
from anxin.core.logs import get_logger
from anxin.core.records import AlertRecord

log = get_logger(__name__)

_RANK = {"warning": 0, "critical": 1}
# Outbox rows that are not part of a chain step use this step/repeat.
NOTICE = -1
# Kinds where a new record on an acknowledged alert is the wearer asking again (another SOS press,
# another fall): it must reach people again, not merge silently.
RECUR_KINDS = ("sos", "fall")


@dataclass(frozen=True)
class Outcome:
    """What an acknowledge/resolve call did: ``first`` is False when someone was there before."""

    alert_id: str
    first: bool
    by: str | None  # who was first ("role:contact-id")
    state: str
    at: float | None


def record_event(
    conn: Conn,
    alert_id: str,
    event: str,
    state: str,
    at: float,
    by: str | None = None,
    channel: str | None = None,
    note: str | None = None,
) -> None:
    conn.execute(
        "insert into alert_events (alert_id, event, state, at, by, channel, note)"
        " values (%s, %s, %s, %s, %s, %s, %s)",
        (alert_id, event, state, at, by, channel, note),
    )


def add_notification(
    conn: Conn,
    alert: dict[str, Any],
    step: int,
    repeat: int,
    role: str,
    contact_id: str,
    channel: str,
    purpose: str,
    now: float,
) -> bool:
    """Write an outbox row (before any request); False if that very row already existed."""
    cur = conn.execute(
        "insert into notifications (alert_id, round, step, repeat, contact_id, role, channel,"
        " purpose, next_attempt_at, created_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict do nothing",
        (
            alert["alert_id"],
            alert["round"],
            step,
            repeat,
            contact_id,
            role,
            channel,
            purpose,
            now,
            now,
        ),
    )
    return cur.rowcount == 1


def _lock(conn: Conn, alert_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "select * from alerts where alert_id = %s for update", (alert_id,)
    ).fetchone()


# -- intake ------------------------------------------------------------------------------------


def ingest_alert(conn: Conn, record: AlertRecord, directory: Directory, now: float) -> str:
    """Apply one alert record; returns what happened (``opened``, ``duplicate``, ``merged``,
    ``raised``). A redelivered record is a ``duplicate`` and changes nothing."""
    src = conn.execute(
        "select alert_id, severity from alert_sources where source_alert_id = %s for update",
        (record.alert_id,),
    ).fetchone()
    if src is not None:
        if _RANK[record.severity] <= _RANK[src["severity"]]:
            return "duplicate"
        conn.execute(
            "update alert_sources set severity = %s where source_alert_id = %s",
            (record.severity, record.alert_id),
        )
        alert = _lock(conn, src["alert_id"])
        assert alert is not None
        if alert["state"] in OPEN_STATES:
            _raise_severity(conn, alert, record, now)
            return "raised"
        # A withdrawn alert that a detector now calls worse: a new episode, unless one is open.
    open_alert = conn.execute(
        "select * from alerts where resident_id = %s and kind = %s and state = any(%s) for update",
        (record.resident_id, record.kind, list(OPEN_STATES)),
    ).fetchone()
    if open_alert is not None:
        if src is None:
            conn.execute(
                "insert into alert_sources values (%s, %s, %s, %s)",
                (record.alert_id, open_alert["alert_id"], record.severity, now),
            )
            if open_alert["state"] == "acknowledged" and record.kind in RECUR_KINDS:
                _recur(conn, open_alert, record, now)
                return "recurred"
        if _RANK[record.severity] > _RANK[open_alert["severity"]]:
            _raise_severity(conn, open_alert, record, now)
            return "raised"
        record_event(
            conn,
            open_alert["alert_id"],
            "merged",
            open_alert["state"],
            now,
            note=f"duplicate {record.alert_id}",
        )
        return "merged"
    resident = directory.registry.residents.get(record.resident_id)
    policy, _ = directory.policy_for(resident, record.severity)
    if src is not None:  # reopen the withdrawn alert as a new round
        conn.execute(
            "update alerts set state = 'open', severity = %s, round = round + 1, step = 0,"
            " repeat = 0, next_due_at = %s, acked_at = null, acked_by = null,"
            " acked_channel = null, closed_at = null, closed_by = null, close_note = null,"
            " updated_at = %s where alert_id = %s",
            (record.severity, now, now, src["alert_id"]),
        )
        record_event(conn, src["alert_id"], "reopened", "open", now, note=record.severity)
        return "raised"
    conn.execute(
        "insert into alerts (alert_id, resident_id, device_id, kind, severity, state, policy,"
        " next_due_at, opened_at, event_ts, detected_at, details, updated_at)"
        " values (%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s, %s, %s)",
        (
            record.alert_id,
            record.resident_id,
            record.device_id,
            record.kind,
            record.severity,
            policy,
            now,
            now,
            record.ts,
            record.detected_at,
            orjson.dumps(record.details).decode(),
            now,
        ),
    )
    conn.execute(
        "insert into alert_sources values (%s, %s, %s, %s)",
        (record.alert_id, record.alert_id, record.severity, now),
    )
    record_event(conn, record.alert_id, "opened", "open", now, note=record.severity)
    log.info(
        "alert %s opened: %s %s resident=%s policy=%s",
        record.alert_id,
        record.kind,
        record.severity,
        record.resident_id,
        policy,
    )
    return "opened"


def _recur(conn: Conn, alert: dict[str, Any], record: AlertRecord, now: float) -> None:
    """A new press (or fall) after an acknowledgement: a new round from the chain's first step,
    which also calls whoever acknowledged (``recall_by``), until somebody acknowledges again."""
    severity = max(alert["severity"], record.severity, key=lambda s: _RANK.get(s, 0))
    conn.execute(
        "update alerts set state = 'open', severity = %s, round = round + 1, step = 0,"
        " repeat = 0, next_due_at = %s, recall_by = acked_by, acked_at = null, acked_by = null,"
        " acked_channel = null, updated_at = %s where alert_id = %s",
        (severity, now, now, alert["alert_id"]),
    )
    note = f"{record.kind} {record.alert_id} after acknowledgement by {alert['acked_by']}"
    record_event(conn, alert["alert_id"], "recurred", "open", now, note=note)
    log.info(
        "alert %s: %s again after acknowledgement, notifying again", alert["alert_id"], record.kind
    )


def _raise_severity(conn: Conn, alert: dict[str, Any], record: AlertRecord, now: float) -> None:
    """A rise re-notifies from the first step of the new severity's chain (a new round)."""
    if alert["state"] in UNACKED_STATES:
        conn.execute(
            "update alerts set severity = %s, round = round + 1, step = 0, repeat = 0,"
            " next_due_at = %s, updated_at = %s where alert_id = %s",
            (record.severity, now, now, alert["alert_id"]),
        )
    else:  # acknowledged: a person already has it; the raise is recorded and published
        conn.execute(
            "update alerts set severity = %s, updated_at = %s where alert_id = %s",
            (record.severity, now, alert["alert_id"]),
        )
    record_event(
        conn, alert["alert_id"], "severity_raised", alert["state"], now, note=record.severity
    )
    log.info("alert %s raised to %s", alert["alert_id"], record.severity)


def apply_update(conn: Conn, update: dict[str, Any], now: float) -> str:
    """Apply a detector-side change from ``alert-updates``: ``cancel``/``resolve`` of an alert,
    or ``wearer_ok`` (cancels the resident's alerts nobody acknowledged yet)."""
    action = update.get("action")
    if action == "wearer_ok":
        rows = conn.execute(
            "select alert_id from alerts where resident_id = %s and state = any(%s)"
            " order by alert_id for update",
            (str(update.get("resident_id")), list(UNACKED_STATES)),
        ).fetchall()
        for row in rows:
            close(
                conn,
                row["alert_id"],
                "cancelled",
                f"wearer:{update.get('device_id', '-')}",
                "device",
                "wearer pressed I'm OK",
                now,
            )
        return f"wearer_ok: {len(rows)} cancelled"
    if action in ("cancel", "resolve"):
        src = conn.execute(
            "select alert_id from alert_sources where source_alert_id = %s",
            (str(update.get("alert_id")),),
        ).fetchone()
        if src is None:
            return "unknown alert"
        alert = _lock(conn, src["alert_id"])
        if alert is None or alert["state"] not in OPEN_STATES:
            return "already closed"
        # Withdrawn before a person acknowledged: cancelled; after: resolved.
        state = "cancelled" if alert["state"] in UNACKED_STATES else "resolved"
        by = f"detector:{update.get('kind') or alert['kind']}"
        close(conn, alert["alert_id"], state, by, "detector", update.get("reason"), now)
        return state
    return f"ignored action {action!r}"


# -- acknowledgement and closing ---------------------------------------------------------------


def acknowledge_in(
    conn: Conn,
    alert_id: str,
    by_role: str,
    by_contact_id: str,
    channel: str,
    note: str | None,
    now: float,
) -> Outcome | None:
    """Acknowledge inside a transaction; None when the alert does not exist."""
    alert = _lock(conn, alert_id)
    if alert is None:
        return None
    by = f"{by_role}:{by_contact_id}"
    first = alert["state"] in UNACKED_STATES
    earlier = _record_person(
        conn,
        alert,
        "acknowledge",
        (by_role, by_contact_id, channel, note),
        first,
        (alert["acked_by"] or alert["closed_by"], alert["acked_at"]),
        now,
    )
    if earlier is not None:
        return earlier
    conn.execute(
        "update alerts set state = 'acknowledged', acked_at = %s, acked_by = %s,"
        " acked_channel = %s, next_due_at = null, recall_by = null, updated_at = %s"
        " where alert_id = %s",
        (now, by, channel, now, alert_id),
    )
    record_event(conn, alert_id, "acknowledged", "acknowledged", now, by, channel, note)
    # "Help is coming" to the wearer's device.
    add_notification(
        conn,
        alert,
        NOTICE,
        NOTICE,
        "wearer",
        f"device:{alert['device_id']}",
        "device",
        "ack_notice",
        now,
    )
    log.info("alert %s acknowledged by %s via %s", alert_id, by, channel)
    return Outcome(alert_id, True, by, "acknowledged", now)


def close(
    conn: Conn,
    alert_id: str,
    state: str,
    by: str,
    channel: str,
    note: str | None,
    now: float,
) -> bool:
    """Close an open alert as ``resolved`` or ``cancelled``; tell those already told and the
    device. False when it was already closed."""
    alert = _lock(conn, alert_id)
    if alert is None or alert["state"] not in OPEN_STATES:
        return False
    conn.execute(
        "update alerts set state = %s, closed_at = %s, closed_by = %s, close_note = %s,"
        " next_due_at = null, updated_at = %s where alert_id = %s",
        (state, now, by, note, now, alert_id),
    )
    record_event(conn, alert_id, state, state, now, by, channel, note)
    # Pending chain notifications are now moot.
    conn.execute(
        "update notifications set state = 'skipped', error = 'alert closed'"
        " where alert_id = %s and purpose = 'alert' and state = 'pending'",
        (alert_id,),
    )
    told = conn.execute(
        "select distinct contact_id, role from notifications where alert_id = %s"
        " and purpose = 'alert' and channel in ('voice', 'sms')"
        " and state in ('sent', 'unknown') order by contact_id",
        (alert_id,),
    ).fetchall()
    closer = by.split(":", 1)[-1]
    for row in told:
        if row["contact_id"] != closer:
            add_notification(
                conn,
                alert,
                NOTICE,
                NOTICE,
                row["role"],
                row["contact_id"],
                "sms",
                "closed_notice",
                now,
            )
    add_notification(
        conn,
        alert,
        NOTICE,
        NOTICE,
        "wearer",
        f"device:{alert['device_id']}",
        "device",
        "closed_notice",
        now,
    )
    log.info("alert %s %s by %s (%d told)", alert_id, state, by, len(told))
    return True


def resolve_in(
    conn: Conn,
    alert_id: str,
    by_role: str,
    by_contact_id: str,
    channel: str,
    note: str | None,
    now: float,
) -> Outcome | None:
    alert = _lock(conn, alert_id)
    if alert is None:
        return None
    by = f"{by_role}:{by_contact_id}"
    first = alert["state"] in OPEN_STATES
    earlier = _record_person(
        conn,
        alert,
        "resolve",
        (by_role, by_contact_id, channel, note),
        first,
        (alert["closed_by"], alert["closed_at"]),
        now,
    )
    if earlier is not None:
        return earlier
    close(conn, alert_id, "resolved", by, channel, note, now)
    return Outcome(alert_id, True, by, "resolved", now)


def _record_person(
    conn: Conn,
    alert: dict[str, Any],
    action: str,
    who: tuple[str, str, str, str | None],
    first: bool,
    earlier: tuple[str | None, float | None],
    now: float,
) -> Outcome | None:
    """Keep a person's acknowledge/resolve in ``acknowledgements``; when somebody was first,
    record that this one came late and return the earlier outcome (None: this one is first)."""
    by_role, by_contact_id, channel, note = who
    conn.execute(
        "insert into acknowledgements (alert_id, action, by_role, by_contact_id, channel, note,"
        " at, first) values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (alert["alert_id"], action, by_role, by_contact_id, channel, note, now, first),
    )
    if first:
        return None
    first_by, first_at = earlier
    record_event(
        conn,
        alert["alert_id"],
        "ack_recorded" if action == "acknowledge" else "resolve_recorded",
        alert["state"],
        now,
        f"{by_role}:{by_contact_id}",
        channel,
        f"already {alert['state']} by {first_by}",
    )
    return Outcome(alert["alert_id"], False, first_by, alert["state"], first_at)


class Lifecycle:
    """The API the webhooks and the nurse console call: each call is one transaction."""

    def __init__(self, db: Database, clock: Clock):
        self.db = db
        self.clock = clock

    def acknowledge(
        self,
        alert_id: str,
        by_role: str,
        by_contact_id: str,
        channel: str,
        note: str | None = None,
    ) -> Outcome | None:
        """First acknowledgement stops the escalation; returns who was first (None: no alert)."""
        with self.db.transaction() as conn:
            return acknowledge_in(
                conn, alert_id, by_role, by_contact_id, channel, note, self.clock.now()
            )

    def resolve(
        self,
        alert_id: str,
        by_role: str,
        by_contact_id: str,
        channel: str,
        note: str | None = None,
    ) -> Outcome | None:
        """Close the alert as resolved; those told get a short "resolved" message."""
        with self.db.transaction() as conn:
            return resolve_in(
                conn, alert_id, by_role, by_contact_id, channel, note, self.clock.now()
            )

    def cancel(self, alert_id: str, by: str, channel: str, note: str | None = None) -> bool:
        """Withdraw an alert ("false alarm"); False when it was already closed."""
        with self.db.transaction() as conn:
            return close(conn, alert_id, "cancelled", by, channel, note, self.clock.now())
