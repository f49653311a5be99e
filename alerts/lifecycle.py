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

from alerts import store
from alerts.clock import Clock
from alerts.db import Conn, Database
from alerts.policies import Directory
from alerts.store import OPEN_STATES, UNACKED_STATES, add_notification, record_event
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


# -- intake ------------------------------------------------------------------------------------


def ingest_alert(conn: Conn, record: AlertRecord, directory: Directory, now: float) -> str:
    """Apply one alert record; returns what happened (``opened``, ``duplicate``, ``merged``,
    ``raised``). A redelivered record is a ``duplicate`` and changes nothing."""
    src = store.lock_source(conn, record.alert_id)
    if src is not None:
        if _RANK[record.severity] <= _RANK[src["severity"]]:
            return "duplicate"
        store.set_source_severity(conn, record.alert_id, record.severity)
        alert = store.lock_alert(conn, src["alert_id"])
        assert alert is not None
        if alert["state"] in OPEN_STATES:
            _raise_severity(conn, alert, record, now)
            return "raised"
        # A withdrawn alert that a detector now calls worse: a new episode, unless one is open.
    open_alert = store.lock_open_episode(conn, record.resident_id, record.kind)
    if open_alert is not None:
        if src is None:
            store.add_source(conn, record.alert_id, open_alert["alert_id"], record.severity, now)
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
        store.reopen(conn, src["alert_id"], record.severity, now)
        record_event(conn, src["alert_id"], "reopened", "open", now, note=record.severity)
        return "raised"
    store.insert_alert(conn, record, policy, now)
    store.add_source(conn, record.alert_id, record.alert_id, record.severity, now)
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
    store.recur(conn, alert["alert_id"], severity, now)
    note = f"{record.kind} {record.alert_id} after acknowledgement by {alert['acked_by']}"
    record_event(conn, alert["alert_id"], "recurred", "open", now, note=note)
    log.info(
        "alert %s: %s again after acknowledgement, notifying again", alert["alert_id"], record.kind
    )


def _raise_severity(conn: Conn, alert: dict[str, Any], record: AlertRecord, now: float) -> None:
    """A rise re-notifies from the first step of the new severity's chain (a new round)."""
    # Acknowledged: a person already has it; the rise is only recorded and published.
    new_round = alert["state"] in UNACKED_STATES
    store.set_severity(conn, alert["alert_id"], record.severity, now, new_round)
    record_event(
        conn, alert["alert_id"], "severity_raised", alert["state"], now, note=record.severity
    )
    log.info("alert %s raised to %s", alert["alert_id"], record.severity)


def apply_update(conn: Conn, update: dict[str, Any], now: float) -> str:
    """Apply a detector-side change from ``alert-updates``: ``cancel``/``resolve`` of an alert,
    or ``wearer_ok`` (cancels the resident's alerts nobody acknowledged yet)."""
    action = update.get("action")
    if action == "wearer_ok":
        ids = store.lock_unacked_of_resident(conn, str(update.get("resident_id")))
        for alert_id in ids:
            close(
                conn,
                alert_id,
                "cancelled",
                f"wearer:{update.get('device_id', '-')}",
                "device",
                "wearer pressed I'm OK",
                now,
            )
        return f"wearer_ok: {len(ids)} cancelled"
    if action in ("cancel", "resolve"):
        episode = store.source_episode(conn, str(update.get("alert_id")))
        if episode is None:
            return "unknown alert"
        alert = store.lock_alert(conn, episode)
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
    alert = store.lock_alert(conn, alert_id)
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
    store.set_acknowledged(conn, alert_id, by, channel, now)
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
    alert = store.lock_alert(conn, alert_id)
    if alert is None or alert["state"] not in OPEN_STATES:
        return False
    store.set_closed(conn, alert_id, state, by, note, now)
    record_event(conn, alert_id, state, state, now, by, channel, note)
    # Pending chain notifications are now moot.
    store.skip_pending_chain(conn, alert_id)
    told = store.contacts_told(conn, alert_id)
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
    alert = store.lock_alert(conn, alert_id)
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
    by_role, by_contact_id, channel, _ = who
    store.add_person_action(conn, alert["alert_id"], action, who, first, now)
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
