"""The notification outbox: claim due rows, send them, record the result.

A row is written (by a step, an acknowledgement or a closing) before any request. ``claim`` takes
due rows with ``FOR UPDATE SKIP LOCKED`` and marks them ``sending`` under a wall-clock lease, in
a committed transaction, so two workers never send the same row. After the request the row is
``sent``, back to ``pending`` with a backoff (429/5xx/network), or ``failed`` (permanent 4xx).
A worker that dies mid-send leaves its row ``sending``; when the lease runs out the row is sent
again (``pending`` at once): the request may or may not have gone out, and a contact hearing an
alarm twice is far better than a call that never went out. The lease is renewed just before each
request and outlasts it (``lease_s`` > ``request_timeout_s``), so a live worker never loses a
row it is sending. After ``max_attempts`` the row is left ``unknown``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from alerts import messages, store
from alerts.clock import Clock
from alerts.db import Database
from alerts.escalation import attempt_ended
from alerts.notifiers import SendResult, TwilioNotifier
from alerts.policies import Directory
from alerts.store import UNACKED_STATES, record_event
from anxin.core.logs import get_logger
from anxin.core.settings import AlertsSettings

log = get_logger(__name__)

PHONE_CHANNELS = ("voice", "sms")


def backoff(attempts: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: between half and all of min(cap, base * 2^(n-1))."""
    r = rng or random
    return min(cap, base * 2 ** max(0, attempts - 1)) * r.uniform(0.5, 1.0)


class Outbox:
    def __init__(
        self,
        db: Database,
        directory: Callable[[], Directory],
        settings: AlertsSettings,
        clock: Clock,
        worker_id: str,
        public_base_url: str = "http://127.0.0.1:8000",
        notifier: TwilioNotifier | None = None,
    ):
        self.db = db
        self.directory = directory
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id
        self.public_base_url = public_base_url.rstrip("/")
        self.notifier = notifier

    def claim(self, channels: tuple[str, ...] = PHONE_CHANNELS) -> list[dict[str, Any]]:
        """Due rows of these channels, marked ``sending`` for this worker (committed)."""
        now, wall = self.clock.now(), time.time()
        with self.db.transaction() as conn:
            lost = store.give_up_lost_sends(
                conn, self.settings.max_attempts, now, wall, list(channels)
            )
            for row in lost:
                log.warning(
                    "notification %d to %s via %s: worker lost mid-send, %s",
                    row["id"],
                    row["contact_id"],
                    row["channel"],
                    "sending again" if row["state"] == "pending" else "attempts used up",
                )
            rows = store.lock_due_notifications(
                conn, now, list(channels), self.settings.claim_batch
            )
            claimed = []
            for row in rows:
                if row["purpose"] == "alert" and (
                    row["alert_state"] not in UNACKED_STATES or row["round"] != row["alert_round"]
                ):
                    store.skip_notification(conn, row["id"], "alert closed")
                    continue
                store.mark_sending(conn, row["id"], wall + self.settings.lease_s, self.worker_id)
                row["attempts"] += 1
                claimed.append(row)
        return claimed

    def finish(self, row: dict[str, Any], result: SendResult) -> None:
        """Record a send's result; a permanent failure of a call moves the chain on."""
        now = self.clock.now()
        who = f"{row['role']}:{row['contact_id']}"
        with self.db.transaction() as conn:
            current = store.lock_notification(conn, row["id"])
            if (
                not current
                or current["state"] != "sending"
                or current["claimed_by"] != self.worker_id
            ):
                return  # our lease ran out and the row was given up meanwhile
            if result.kind == "sent":
                store.mark_sent(conn, row["id"], now, result.sid, result.http_status)
                record_event(
                    conn,
                    row["alert_id"],
                    "notified" if row["purpose"] == "alert" else row["purpose"],
                    row["alert_state"],
                    now,
                    who,
                    row["channel"],
                    f"step {row['step'] + 1}" if row["step"] >= 0 else None,
                )
                return
            if result.kind == "retry" and row["attempts"] < self.settings.max_attempts:
                delay = backoff(
                    row["attempts"], self.settings.retry_base_s, self.settings.retry_max_s
                )
                store.mark_retry(conn, row["id"], now + delay, result.http_status, result.error)
                log.warning(
                    "notification %d to %s via %s: %s; retry %d in %.1f s",
                    row["id"],
                    who,
                    row["channel"],
                    result.error,
                    row["attempts"],
                    delay,
                )
                return
            store.mark_failed(conn, row["id"], result.http_status, result.error)
            log.warning(
                "notification %d to %s via %s failed for good: %s",
                row["id"],
                who,
                row["channel"],
                result.error,
            )
            if row["purpose"] == "alert":
                attempt_ended(conn, row["id"], "failed", now)

    # -- phone channels ------------------------------------------------------------------------

    def render(self, row: dict[str, Any]) -> tuple[str, str] | None:
        """(number, TwiML or SMS text) for a row, or None when the contact is unknown now."""
        directory = self.directory()
        contact = directory.find(row["contact_id"])
        if contact is None or contact.phone is None:
            return None
        resident = directory.registry.residents.get(row["resident_id"])
        name = resident.name if resident else row["resident_id"]
        address = resident.address if resident else None
        lang = messages.language(contact.language, resident.language if resident else None)
        if row["purpose"] == "closed_notice":
            with self.db.connect() as conn:
                state = store.alert_state(conn, row["alert_id"])
            return contact.phone, messages.closed_text(state or "resolved", name, lang)
        if row["channel"] == "voice":
            base = self.public_base_url
            twiml = messages.voice_twiml(
                row, name, address, lang, f"{base}/twilio/voice/gather?n={row['id']}"
            )
            return contact.phone, twiml
        with self.db.transaction() as conn:
            code = store.sms_code(conn, row["contact_id"], row["alert_id"], self.clock.now())
        return contact.phone, messages.sms_text(row, name, address, lang, code)

    def renew(self, row: dict[str, Any]) -> bool:
        """Extend this worker's lease on a claimed row just before its request; False if lost,
        or if the alert was acknowledged or closed since the claim (the row is then skipped:
        an acknowledgement stops a send that was already claimed)."""
        with self.db.transaction() as conn:
            kept = store.renew_lease(
                conn, row["id"], time.time() + self.settings.lease_s, self.worker_id
            )
            if kept is None:
                return False
            if row["purpose"] == "alert" and (
                kept["state"] not in UNACKED_STATES or kept["round"] != row["round"]
            ):
                store.skip_notification(conn, row["id"], f"alert {kept['state']} before the send")
                log.info(
                    "notification %d to %s:%s via %s skipped: alert %s before the send",
                    row["id"],
                    row["role"],
                    row["contact_id"],
                    row["channel"],
                    kept["state"],
                )
                return False
        return True

    def deliver(self, row: dict[str, Any]) -> SendResult | None:
        """Send one claimed phone row and record the result (None: the row was given up)."""
        if not self.renew(row):
            return None
        rendered = self.render(row)
        if rendered is None:
            result = SendResult("failed", error="contact no longer in the directory")
        elif self.notifier is None:
            result = SendResult("retry", error="no notifier configured")
        else:
            to, content = rendered
            if row["channel"] == "voice":
                callback = f"{self.public_base_url}/twilio/voice/status?n={row['id']}"
                result = self.notifier.call(to, content, callback)
            else:
                result = self.notifier.sms(to, content)
        self.finish(row, result)
        return result

    def run_once(self) -> int:
        """Claim and send what is due now (one thread); returns how many rows were tried."""
        rows = self.claim()
        for row in rows:
            self.deliver(row)
        return len(rows)
