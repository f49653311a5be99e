"""Every SQL statement of the alerts room, beside the code that runs it (as GoAlert keeps a
``db.go`` per manager): the lifecycle, escalation, outbox, webhooks, worker and the console call
these functions and hold no SQL text of their own. Each takes an open connection, so the caller
decides what one transaction covers.
"""

from __future__ import annotations

from typing import Any

import orjson

from alerts.db import Conn

OPEN_STATES = ("open", "notifying", "acknowledged")
UNACKED_STATES = ("open", "notifying")
# Reply codes: letters that are not mistaken for digits (no i, l, o), one letter first.
CODE_LETTERS = "abcdefghjkmnpqrstuvwxyz"


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


def recent_suspicions(conn: Conn, since: float, limit: int = 200) -> list[dict[str, Any]]:
    """Open suspicions and those closed since ``since``, newest first (the console's list)."""
    rows: list[dict[str, Any]] = conn.execute(
        "select * from fall_suspicions where outcome = 'open' or updated_at >= %s"
        " order by detected_at desc, suspicion_id limit %s",
        (since, limit),
    ).fetchall()
    return rows
