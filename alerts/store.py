"""Every SQL statement of the alerts room, beside the code that runs it (as GoAlert keeps a
``db.go`` per manager): the lifecycle, escalation, outbox, webhooks, worker, CLI and the console
call these functions and hold no SQL text of their own, and the ``notifications`` table is written
from here only. Each takes an open connection, so the caller decides what one transaction covers;
the schema itself is in ``migrations/*.sql``.
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg

Conn = psycopg.Connection[dict[str, Any]]
Row = dict[str, Any]

OPEN_STATES = ("open", "notifying", "acknowledged")
UNACKED_STATES = ("open", "notifying")
# Reply codes: letters that are not mistaken for digits (no i, l, o), one letter first.
CODE_LETTERS = "abcdefghjkmnpqrstuvwxyz"


# -- schema bookkeeping (db.migrate) -----------------------------------------------------------


def applied_versions(conn: Conn, lock_key: int) -> set[int]:
    """Take the migrators' lock (one at a time across workers) and return what is applied."""
    conn.execute("select pg_advisory_xact_lock(%s)", (lock_key,))
    conn.execute(
        "create table if not exists schema_version ("
        " version int primary key, name text not null,"
        " applied_at timestamptz not null default now())"
    )
    return {int(r["version"]) for r in conn.execute("select version from schema_version")}


def apply_migration(conn: Conn, version: int, name: str, sql: str) -> None:
    conn.execute(sql.encode())
    conn.execute("insert into schema_version (version, name) values (%s, %s)", (version, name))


def schema_version(conn: Conn) -> int:
    row = conn.execute("select coalesce(max(version), 0) as v from schema_version").fetchone()
    return int(row["v"]) if row else 0


def create_database(conn: Conn, name: str) -> None:
    """A new empty database (tests: one per test); ``name`` is generated, never user input."""
    conn.execute(f'create database "{name}"'.encode())


# -- alerts and their sources (lifecycle) ------------------------------------------------------


def lock_alert(conn: Conn, alert_id: str) -> Row | None:
    row: Row | None = conn.execute(
        "select * from alerts where alert_id = %s for update", (alert_id,)
    ).fetchone()
    return row


def lock_source(conn: Conn, source_alert_id: str) -> Row | None:
    """The episode an alert record id belongs to (locked: a redelivery waits for the first)."""
    row: Row | None = conn.execute(
        "select alert_id, severity from alert_sources where source_alert_id = %s for update",
        (source_alert_id,),
    ).fetchone()
    return row


def source_episode(conn: Conn, source_alert_id: str) -> str | None:
    row = conn.execute(
        "select alert_id from alert_sources where source_alert_id = %s", (source_alert_id,)
    ).fetchone()
    return str(row["alert_id"]) if row else None


def add_source(conn: Conn, source_alert_id: str, alert_id: str, severity: str, now: float) -> None:
    conn.execute(
        "insert into alert_sources values (%s, %s, %s, %s)",
        (source_alert_id, alert_id, severity, now),
    )


def set_source_severity(conn: Conn, source_alert_id: str, severity: str) -> None:
    conn.execute(
        "update alert_sources set severity = %s where source_alert_id = %s",
        (severity, source_alert_id),
    )


def lock_open_episode(conn: Conn, resident_id: str, kind: str) -> Row | None:
    row: Row | None = conn.execute(
        "select * from alerts where resident_id = %s and kind = %s and state = any(%s) for update",
        (resident_id, kind, list(OPEN_STATES)),
    ).fetchone()
    return row


def insert_alert(conn: Conn, record: Any, policy: str, now: float) -> None:
    """A new episode from an alert record (``anxin.core.records.AlertRecord``), due at once."""
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


def reopen(conn: Conn, alert_id: str, severity: str, now: float) -> None:
    """A withdrawn alert that a detector now calls worse: a new round from the first step."""
    conn.execute(
        "update alerts set state = 'open', severity = %s, round = round + 1, step = 0,"
        " repeat = 0, next_due_at = %s, acked_at = null, acked_by = null,"
        " acked_channel = null, closed_at = null, closed_by = null, close_note = null,"
        " updated_at = %s where alert_id = %s",
        (severity, now, now, alert_id),
    )


def recur(conn: Conn, alert_id: str, severity: str, now: float) -> None:
    """An acknowledged alert pressed again: open, a new round that also calls who acknowledged."""
    conn.execute(
        "update alerts set state = 'open', severity = %s, round = round + 1, step = 0,"
        " repeat = 0, next_due_at = %s, recall_by = acked_by, acked_at = null, acked_by = null,"
        " acked_channel = null, updated_at = %s where alert_id = %s",
        (severity, now, now, alert_id),
    )


def set_severity(conn: Conn, alert_id: str, severity: str, now: float, new_round: bool) -> None:
    """A severity rise; ``new_round`` restarts the chain from its first step."""
    if new_round:
        conn.execute(
            "update alerts set severity = %s, round = round + 1, step = 0, repeat = 0,"
            " next_due_at = %s, updated_at = %s where alert_id = %s",
            (severity, now, now, alert_id),
        )
    else:
        conn.execute(
            "update alerts set severity = %s, updated_at = %s where alert_id = %s",
            (severity, now, alert_id),
        )


def lock_unacked_of_resident(conn: Conn, resident_id: str) -> list[str]:
    rows = conn.execute(
        "select alert_id from alerts where resident_id = %s and state = any(%s)"
        " order by alert_id for update",
        (resident_id, list(UNACKED_STATES)),
    ).fetchall()
    return [str(r["alert_id"]) for r in rows]


def set_acknowledged(conn: Conn, alert_id: str, by: str, channel: str, now: float) -> None:
    conn.execute(
        "update alerts set state = 'acknowledged', acked_at = %s, acked_by = %s,"
        " acked_channel = %s, next_due_at = null, recall_by = null, updated_at = %s"
        " where alert_id = %s",
        (now, by, channel, now, alert_id),
    )


def set_closed(
    conn: Conn, alert_id: str, state: str, by: str, note: str | None, now: float
) -> None:
    conn.execute(
        "update alerts set state = %s, closed_at = %s, closed_by = %s, close_note = %s,"
        " next_due_at = null, updated_at = %s where alert_id = %s",
        (state, now, by, note, now, alert_id),
    )


def add_person_action(
    conn: Conn,
    alert_id: str,
    action: str,
    who: tuple[str, str, str, str | None],
    first: bool,
    now: float,
) -> None:
    """A person's acknowledge/resolve (``who`` = role, contact id, channel, note)."""
    by_role, by_contact_id, channel, note = who
    conn.execute(
        "insert into acknowledgements (alert_id, action, by_role, by_contact_id, channel, note,"
        " at, first) values (%s, %s, %s, %s, %s, %s, %s, %s)",
        (alert_id, action, by_role, by_contact_id, channel, note, now, first),
    )


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
    """An ``alert_events`` row, in the transaction of the change it records."""
    conn.execute(
        "insert into alert_events (alert_id, event, state, at, by, channel, note)"
        " values (%s, %s, %s, %s, %s, %s, %s)",
        (alert_id, event, state, at, by, channel, note),
    )


def list_alerts(conn: Conn, include_closed: bool, limit: int = 100) -> list[Row]:
    """Newest alerts with how many notifications were sent (``anxin alerts list``)."""
    rows: list[Row] = conn.execute(
        "select a.*, (select count(*) from notifications n where n.alert_id = a.alert_id"
        " and n.state = 'sent') as sent from alerts a where %s or state = any(%s)"
        " order by opened_at desc limit %s",
        (include_closed, list(OPEN_STATES), limit),
    ).fetchall()
    return rows


# -- escalation --------------------------------------------------------------------------------


def lock_due_alerts(conn: Conn, now: float, limit: int) -> list[Row]:
    rows: list[Row] = conn.execute(
        "select * from alerts where state = any(%s) and next_due_at <= %s"
        " order by next_due_at limit %s for update skip locked",
        (list(UNACKED_STATES), now, limit),
    ).fetchall()
    return rows


def set_nothing_due(conn: Conn, alert_id: str, now: float) -> None:
    conn.execute(
        "update alerts set next_due_at = null, updated_at = %s where alert_id = %s",
        (now, alert_id),
    )


def set_step_done(
    conn: Conn, alert_id: str, next_step: int, repeat: int, due: float, now: float
) -> None:
    conn.execute(
        "update alerts set state = 'notifying', step = %s, repeat = %s, next_due_at = %s,"
        " updated_at = %s where alert_id = %s",
        (next_step, repeat, due, now, alert_id),
    )


def set_due_now(conn: Conn, alert_id: str, now: float) -> None:
    conn.execute(
        "update alerts set next_due_at = %s, updated_at = %s where alert_id = %s",
        (now, now, alert_id),
    )


def calls_still_ringing(conn: Conn, alert_id: str, round_: int, step: int, repeat: int) -> int:
    """Calls of a step that may still be answered (no outcome yet, not given up)."""
    row = conn.execute(
        "select count(*) as c from notifications where alert_id = %s and round = %s"
        " and step = %s and repeat = %s and purpose = 'alert' and channel = 'voice'"
        " and outcome is null and state in ('pending', 'sending', 'sent')",
        (alert_id, round_, step, repeat),
    ).fetchone()
    return int(row["c"]) if row else 0


# -- the notification outbox (the only writer of ``notifications``) ----------------------------


def add_notification(
    conn: Conn,
    alert: Row,
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


def skip_pending_chain(conn: Conn, alert_id: str) -> None:
    """Pending chain notifications of a closed alert are moot."""
    conn.execute(
        "update notifications set state = 'skipped', error = 'alert closed'"
        " where alert_id = %s and purpose = 'alert' and state = 'pending'",
        (alert_id,),
    )


def contacts_told(conn: Conn, alert_id: str) -> list[Row]:
    """Contacts a phone notification of the alert reached (or may have): told of its closing."""
    rows: list[Row] = conn.execute(
        "select distinct contact_id, role from notifications where alert_id = %s"
        " and purpose = 'alert' and channel in ('voice', 'sms')"
        " and state in ('sent', 'unknown') order by contact_id",
        (alert_id,),
    ).fetchall()
    return rows


def give_up_lost_sends(
    conn: Conn, max_attempts: int, now: float, wall: float, channels: list[str]
) -> list[Row]:
    """Rows left ``sending`` by a worker whose lease ran out: pending again, or ``unknown``."""
    rows: list[Row] = conn.execute(
        "update notifications set state = case when attempts < %s then 'pending'"
        " else 'unknown' end, next_attempt_at = %s, lease_until = null,"
        " error = 'worker lost during send' where state = 'sending'"
        " and lease_until < %s and channel = any(%s)"
        " returning id, contact_id, channel, state",
        (max_attempts, now, wall, channels),
    ).fetchall()
    return rows


def lock_due_notifications(conn: Conn, now: float, channels: list[str], limit: int) -> list[Row]:
    """Due pending rows with what a send needs of their alert (locked, skipping others')."""
    rows: list[Row] = conn.execute(
        "select n.*, a.state as alert_state, a.round as alert_round, a.resident_id,"
        " a.device_id, a.kind, a.severity, a.details from notifications n"
        " join alerts a using (alert_id)"
        " where n.state = 'pending' and n.next_attempt_at <= %s and n.channel = any(%s)"
        " order by n.next_attempt_at, n.id limit %s for update of n skip locked",
        (now, channels, limit),
    ).fetchall()
    return rows


def skip_notification(conn: Conn, notification_id: int, error: str) -> None:
    conn.execute(
        "update notifications set state = 'skipped', error = %s, lease_until = null where id = %s",
        (error, notification_id),
    )


def mark_sending(conn: Conn, notification_id: int, lease_until: float, worker_id: str) -> None:
    conn.execute(
        "update notifications set state = 'sending', attempts = attempts + 1,"
        " lease_until = %s, claimed_by = %s where id = %s",
        (lease_until, worker_id, notification_id),
    )


def renew_lease(conn: Conn, notification_id: int, lease_until: float, worker_id: str) -> Row | None:
    """Extend a worker's lease on its ``sending`` row; the alert's state and round now (None:
    the row is no longer this worker's)."""
    row: Row | None = conn.execute(
        "update notifications n set lease_until = %s from alerts a"
        " where n.id = %s and n.state = 'sending' and n.claimed_by = %s"
        " and a.alert_id = n.alert_id returning a.state, a.round",
        (lease_until, notification_id, worker_id),
    ).fetchone()
    return row


def lock_notification(conn: Conn, notification_id: int) -> Row | None:
    row: Row | None = conn.execute(
        "select * from notifications where id = %s for update", (notification_id,)
    ).fetchone()
    return row


def mark_sent(
    conn: Conn, notification_id: int, now: float, sid: str | None, http_status: int | None
) -> None:
    conn.execute(
        "update notifications set state = 'sent', sent_at = %s, provider_sid = %s,"
        " http_status = %s, error = null, lease_until = null where id = %s",
        (now, sid, http_status, notification_id),
    )


def mark_retry(
    conn: Conn, notification_id: int, at: float, http_status: int | None, error: str | None
) -> None:
    conn.execute(
        "update notifications set state = 'pending', next_attempt_at = %s,"
        " http_status = %s, error = %s, lease_until = null where id = %s",
        (at, http_status, error, notification_id),
    )


def mark_failed(
    conn: Conn, notification_id: int, http_status: int | None, error: str | None
) -> None:
    conn.execute(
        "update notifications set state = 'failed', http_status = %s, error = %s,"
        " lease_until = null where id = %s",
        (http_status, error, notification_id),
    )


def set_outcome(conn: Conn, notification_id: int, outcome: str, now: float) -> None:
    """How a call or message ended (the first outcome stays)."""
    conn.execute(
        "update notifications set outcome = %s, outcome_at = %s where id = %s and outcome is null",
        (outcome, now, notification_id),
    )


def alert_state(conn: Conn, alert_id: str) -> str | None:
    row = conn.execute("select state from alerts where alert_id = %s", (alert_id,)).fetchone()
    return str(row["state"]) if row else None


def notification_with_resident(conn: Conn, notification_id: int) -> Row | None:
    """An outbox row and its alert's resident (a webhook names its notification)."""
    row: Row | None = conn.execute(
        "select n.*, a.resident_id from notifications n join alerts a using (alert_id)"
        " where n.id = %s",
        (notification_id,),
    ).fetchone()
    return row


# -- alert events (the publisher) --------------------------------------------------------------


def claim_events(conn: Conn, wall: float, lease_until: float, limit: int = 500) -> list[Row]:
    """Unpublished events no live worker is publishing, leased to this one, in order."""
    rows: list[Row] = conn.execute(
        "with c as (select event_id from alert_events where published_at is null"
        " and (lease_until is null or lease_until < %s) order by event_id limit %s"
        " for update skip locked)"
        " update alert_events e set lease_until = %s from c, alerts a"
        " where e.event_id = c.event_id and a.alert_id = e.alert_id"
        " returning e.*, a.resident_id, a.kind, a.severity",
        (wall, limit, lease_until),
    ).fetchall()
    return sorted(rows, key=lambda r: r["event_id"])


def mark_published(conn: Conn, event_ids: list[int], now: float) -> None:
    conn.execute(
        "update alert_events set published_at = %s where event_id = any(%s)", (now, event_ids)
    )


# -- the console's reads -----------------------------------------------------------------------


def board_alerts(conn: Conn, limit: int = 500) -> list[Row]:
    """Open alerts, critical first, then oldest first."""
    rows: list[Row] = conn.execute(
        "select a.* from alerts a where a.state = any(%s)"
        " order by case a.severity when 'critical' then 0 else 1 end, a.opened_at, a.alert_id"
        " limit %s",
        (list(OPEN_STATES), limit),
    ).fetchall()
    return rows


def current_chain(conn: Conn, alert_ids: list[str]) -> list[Row]:
    """The chain notifications of these alerts' current rounds, in order."""
    if not alert_ids:
        return []
    rows: list[Row] = conn.execute(
        "select n.* from notifications n join alerts a using (alert_id)"
        " where n.alert_id = any(%s) and n.purpose = 'alert' and n.round = a.round"
        " order by n.id",
        (alert_ids,),
    ).fetchall()
    return rows


def alert_row(conn: Conn, alert_id: str) -> Row | None:
    row: Row | None = conn.execute(
        "select * from alerts where alert_id = %s", (alert_id,)
    ).fetchone()
    return row


def alert_timeline(conn: Conn, alert_id: str) -> list[Row]:
    rows: list[Row] = conn.execute(
        "select * from alert_events where alert_id = %s order by event_id", (alert_id,)
    ).fetchall()
    return rows


def alert_chain(conn: Conn, alert_id: str) -> list[Row]:
    """Every chain notification of an alert, every round."""
    rows: list[Row] = conn.execute(
        "select * from notifications where alert_id = %s and purpose = 'alert'"
        " order by round, repeat, step, id",
        (alert_id,),
    ).fetchall()
    return rows


def last_event_id(conn: Conn) -> int:
    row = conn.execute("select coalesce(max(event_id), 0) as m from alert_events").fetchone()
    return int(row["m"]) if row else 0


def events_after(conn: Conn, event_id: int, limit: int = 1000) -> list[Row]:
    """Events after ``event_id`` with their alert's kind and severity (the live board)."""
    rows: list[Row] = conn.execute(
        "select e.event_id, e.alert_id, e.event, e.state, e.at, a.kind, a.severity"
        " from alert_events e join alerts a using (alert_id)"
        " where e.event_id > %s order by e.event_id limit %s",
        (event_id, limit),
    ).fetchall()
    return rows


# -- webhook replay guard ----------------------------------------------------------------------


def first_request(conn: Conn, route: str, sid: str, now: float) -> bool:
    """Record a Twilio request by its CallSid/MessageSid; False when that request was seen
    (a replay: it must change nothing)."""
    cur = conn.execute(
        "insert into webhook_requests (route, sid, at) values (%s, %s, %s) on conflict do nothing",
        (route, sid, now),
    )
    return cur.rowcount == 1


# -- SMS reply codes ---------------------------------------------------------------------------


def code_name(n: int) -> str:
    """The n-th code: ``a`` .. ``z`` (23 letters), then ``aa``, ``ab``, ..."""
    k = len(CODE_LETTERS)
    out = CODE_LETTERS[n % k]
    n //= k
    while n:
        n -= 1
        out = CODE_LETTERS[n % k] + out
        n //= k
    return out


def sms_code(conn: Conn, contact_id: str, alert_id: str, now: float) -> str:
    """This recipient's code for this alert, assigned on first use: a code never used yet among
    the first 23, else the least recently assigned one whose alert is closed, else a longer one.
    A code is never moved while its alert is open, so a reply can only name what it was sent."""
    found = conn.execute(
        "select code from sms_codes where contact_id = %s and alert_id = %s",
        (contact_id, alert_id),
    ).fetchone()
    if found:
        return str(found["code"])
    conn.execute("select pg_advisory_xact_lock(hashtext(%s))", (f"sms_codes:{contact_id}",))
    rows = conn.execute(
        "select s.code, s.alert_id, s.assigned_at, a.state from sms_codes s"
        " join alerts a using (alert_id) where s.contact_id = %s order by s.assigned_at, s.code",
        (contact_id,),
    ).fetchall()
    for r in rows:
        if r["alert_id"] == alert_id:  # assigned by a concurrent send before we got the lock
            return str(r["code"])
    used = {r["code"] for r in rows}
    fresh = next((code_name(i) for i in range(len(CODE_LETTERS)) if code_name(i) not in used), None)
    if fresh is None:
        closed = [r for r in rows if r["state"] not in OPEN_STATES]
        if closed:
            code = str(closed[0]["code"])
            conn.execute(
                "update sms_codes set alert_id = %s, assigned_at = %s"
                " where contact_id = %s and code = %s",
                (alert_id, now, contact_id, code),
            )
            return code
        i = len(CODE_LETTERS)
        while code_name(i) in used:
            i += 1
        fresh = code_name(i)
    conn.execute(
        "insert into sms_codes (contact_id, code, alert_id, assigned_at) values (%s, %s, %s, %s)",
        (contact_id, fresh, alert_id, now),
    )
    return fresh


def alerts_by_code(conn: Conn, contact_ids: list[str], code: str) -> list[dict[str, Any]]:
    """The alert(s) a reply code names for these contacts (one, unless two contacts share the
    phone), with the role the contact was told in."""
    rows: list[dict[str, Any]] = conn.execute(
        "select s.code, s.contact_id, a.alert_id, a.kind, a.resident_id, a.state,"
        " (select n.role from notifications n where n.alert_id = a.alert_id"
        "  and n.contact_id = s.contact_id order by n.id desc limit 1) as role"
        " from sms_codes s join alerts a using (alert_id)"
        " where s.contact_id = any(%s) and s.code = %s order by s.contact_id",
        (contact_ids, code),
    ).fetchall()
    return rows


def open_alerts_told(conn: Conn, contact_ids: list[str]) -> list[dict[str, Any]]:
    """Open alerts these contacts were told about (by voice or SMS), oldest first, with the
    contact and role of the latest notification."""
    rows: list[dict[str, Any]] = conn.execute(
        "select * from (select distinct on (a.alert_id) a.alert_id, a.kind, a.resident_id,"
        " a.state, a.opened_at, n.contact_id, n.role from notifications n"
        " join alerts a using (alert_id) where n.contact_id = any(%s) and n.purpose = 'alert'"
        " and n.channel in ('voice', 'sms') and n.state in ('sent', 'unknown')"
        " and a.state = any(%s) order by a.alert_id, n.id desc) t order by opened_at, alert_id",
        (contact_ids, list(OPEN_STATES)),
    ).fetchall()
    return rows


def mark_replied(conn: Conn, alert_id: str, contact_id: str, outcome: str, now: float) -> None:
    """The contact's latest SMS about the alert got an answer (shown on the console)."""
    conn.execute(
        "update notifications set outcome = %s, outcome_at = %s where id = (select id from"
        " notifications where alert_id = %s and contact_id = %s and channel = 'sms'"
        " and purpose = 'alert' and outcome is null order by id desc limit 1)",
        (outcome, now, alert_id, contact_id),
    )


# -- fall suspicions ---------------------------------------------------------------------------


def upsert_suspicion(conn: Conn, s: dict[str, Any], now: float) -> str:
    """Insert or move a suspicion on; an outcome only ever leaves ``open`` (a redelivered or late
    ``open`` never reopens a confirmed or cancelled one). Returns the outcome now stored."""
    row = conn.execute(
        "insert into fall_suspicions (suspicion_id, resident_id, device_id, ts, detected_at,"
        " outcome, reason, details, received_at, updated_at)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " on conflict (suspicion_id) do update set outcome = excluded.outcome,"
        " reason = excluded.reason, details = excluded.details, updated_at = excluded.updated_at"
        " where fall_suspicions.outcome = 'open' and excluded.outcome <> 'open'"
        " returning outcome",
        (
            s["suspicion_id"],
            s["resident_id"],
            s["device_id"],
            s["ts"],
            s["detected_at"],
            s["outcome"],
            s["reason"],
            orjson.dumps(s["details"]).decode(),
            now,
            now,
        ),
    ).fetchone()
    if row is not None:
        return str(row["outcome"])
    kept = conn.execute(
        "select outcome from fall_suspicions where suspicion_id = %s", (s["suspicion_id"],)
    ).fetchone()
    return str(kept["outcome"]) if kept else "unknown"


def suspicions_mark(conn: Conn) -> tuple[int, float]:
    """(open suspicions, latest change): moves whenever one is opened or closed, so the console
    can tell its pages to refresh the list without reading it (both come from an index)."""
    row = conn.execute(
        "select (select count(*) from fall_suspicions where outcome = 'open') as open,"
        " (select coalesce(max(updated_at), 0) from fall_suspicions) as latest"
    ).fetchone()
    return (int(row["open"]), float(row["latest"])) if row else (0, 0.0)


def recent_suspicions(conn: Conn, since: float, limit: int = 200) -> list[dict[str, Any]]:
    """Open suspicions and those closed since ``since``, newest first (the console's list)."""
    rows: list[dict[str, Any]] = conn.execute(
        "select * from fall_suspicions where outcome = 'open' or updated_at >= %s"
        " order by detected_at desc, suspicion_id limit %s",
        (since, limit),
    ).fetchall()
    return rows
