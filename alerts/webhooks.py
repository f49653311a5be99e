"""Twilio's requests to us: voice keypress, call status, inbound SMS (an ASGI app, Starlette).

Every request must carry a valid ``X-Twilio-Signature`` for the public URL it was sent to
(``twilio.public_base_url`` + path + query) and its form fields; anything else gets 403 and
changes nothing. Notification ids in our callback URLs are covered by the signature, so a caller
cannot point a keypress at another alert. A signature does not expire, so each request acts once:
its ``CallSid``/``MessageSid`` is stored (unique) in the transaction of its action, and a replay
changes nothing. An SMS reply names its alert by the code it was sent (``1a``), never "the latest".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from alerts import messages, store
from alerts.clock import Clock
from alerts.db import Conn, Database
from alerts.escalation import VOICE_ENDED, attempt_ended
from alerts.lifecycle import Outcome, acknowledge_in, resolve_in
from alerts.policies import Directory
from anxin.core.logs import get_logger

log = get_logger(__name__)

TWIML = "application/xml"


class Webhooks:
    def __init__(
        self,
        db: Database,
        directory: Callable[[], Directory],
        clock: Clock,
        auth_token: str,
        public_base_url: str,
    ):
        self.db = db
        self.directory = directory
        self.clock = clock
        self.validator = RequestValidator(auth_token)
        self.public_base_url = public_base_url.rstrip("/")

    async def _verified(self, request: Request) -> dict[str, str] | None:
        form = await request.form()
        params = {k: str(v) for k, v in form.items()}
        url = self.public_base_url + request.url.path
        if request.url.query:
            url += "?" + request.url.query
        signature = request.headers.get("X-Twilio-Signature", "")
        if not signature or not self.validator.validate(url, params, signature):
            log.warning("refused unsigned or badly signed request to %s", request.url.path)
            return None
        return params

    def _notification(self, request: Request) -> dict[str, Any] | None:
        try:
            notification_id = int(request.query_params.get("n", ""))
        except ValueError:
            return None
        with self.db.connect() as conn:
            return store.notification_with_resident(conn, notification_id)

    def _language(self, contact_id: str, resident_id: str | None) -> str:
        directory = self.directory()
        contact = directory.find(contact_id)
        resident = directory.registry.residents.get(resident_id) if resident_id else None
        return messages.language(
            contact.language if contact else None, resident.language if resident else None
        )

    def _sid(self, params: dict[str, str], *names: str) -> str | None:
        for name in names:
            value = params.get(name, "").strip()
            if value:
                return value
        return None

    async def voice_gather(self, request: Request) -> Response:
        params = await self._verified(request)
        if params is None:
            return PlainTextResponse("forbidden", status_code=403)
        sid = self._sid(params, "CallSid")
        if sid is None:
            return PlainTextResponse("CallSid missing", status_code=400)
        row = await run_in_threadpool(self._notification, request)
        if row is None:
            return PlainTextResponse("unknown notification", status_code=404)
        lang = self._language(row["contact_id"], row["resident_id"])
        if params.get("Digits", "").strip() != "1":
            return Response(messages.gather_reply(False, False, lang), media_type=TWIML)
        replayed, outcome = await run_in_threadpool(self._keypress, row, sid)
        if replayed:
            return Response(messages.hangup(), media_type=TWIML)
        first = bool(outcome and outcome.first)
        return Response(messages.gather_reply(True, first, lang), media_type=TWIML)

    def _keypress(self, row: dict[str, Any], sid: str) -> tuple[bool, Outcome | None]:
        """Acknowledge for the notification's contact, once per CallSid: (replayed, outcome)."""
        now = self.clock.now()
        with self.db.transaction() as conn:
            if not store.first_request(conn, "gather", sid, now):
                log.warning("replayed keypress request for notification %d ignored", row["id"])
                return True, None
            outcome = acknowledge_in(
                conn, row["alert_id"], row["role"], row["contact_id"], "voice", "keypress 1", now
            )
            store.set_outcome(conn, row["id"], "acknowledged", now)
        return False, outcome

    async def voice_status(self, request: Request) -> Response:
        params = await self._verified(request)
        if params is None:
            return PlainTextResponse("forbidden", status_code=403)
        row = await run_in_threadpool(self._notification, request)
        if row is None:
            return PlainTextResponse("unknown notification", status_code=404)
        status = params.get("CallStatus", "")
        sid = self._sid(params, "CallSid")
        if status in VOICE_ENDED:
            outcome = "hung-up-without-keypress" if status == "completed" else status

            def ended() -> None:
                now = self.clock.now()
                with self.db.transaction() as conn:
                    # Acting twice changes nothing anyway; a known CallSid is not even looked at.
                    if sid is None or store.first_request(conn, "status", sid, now):
                        attempt_ended(conn, row["id"], outcome, now)

            await run_in_threadpool(ended)
        return Response(status_code=204)

    async def sms_inbound(self, request: Request) -> Response:
        params = await self._verified(request)
        if params is None:
            return PlainTextResponse("forbidden", status_code=403)
        sid = self._sid(params, "MessageSid", "SmsSid")
        if sid is None:
            return PlainTextResponse("MessageSid missing", status_code=400)
        sender, body = params.get("From", ""), params.get("Body", "")
        contact_ids = self.directory().by_phone(sender)
        if not contact_ids:
            log.info("SMS from a number not in the directory ignored")
            return Response(
                messages.sms_reply(messages.reply_text("none", "zh-CN")), media_type=TWIML
            )
        text = await run_in_threadpool(self._sms_reply, sid, contact_ids, body)
        if text is None:
            return Response(messages.sms_reply(None), media_type=TWIML)
        return Response(messages.sms_reply(text), media_type=TWIML)

    def _sms_reply(self, sid: str, contact_ids: list[str], body: str) -> str | None:
        """Act on an SMS reply once per MessageSid and say what happened (None: a replay, no
        answer). ``1a``/``2a`` name the alert; a bare ``1`` acts only when exactly one open alert
        was told to this number, and otherwise asks which one, listing the codes."""
        now = self.clock.now()
        directory = self.directory()
        with self.db.transaction() as conn:
            if not store.first_request(conn, "sms", sid, now):
                log.warning("replayed SMS webhook ignored (contact %s)", contact_ids[0])
                return None
            told = store.open_alerts_told(conn, contact_ids)
            # The contact's language, else that of the newest open alert the sender was told of.
            lang = self._language(contact_ids[0], told[-1]["resident_id"] if told else None)
            parsed = messages.parse_reply(body)
            if parsed is None:
                return messages.reply_text("help", lang)
            action, code = parsed
            if code is not None:
                named = store.alerts_by_code(conn, contact_ids, code)
                targets = [(r["alert_id"], r["contact_id"], r["role"]) for r in named]
                if not targets:
                    return messages.reply_text("unknown_code", lang)
            else:
                if not told:
                    return messages.reply_text("none", lang)
                if len(told) > 1:
                    choices = []
                    for r in told:
                        c = store.sms_code(conn, r["contact_id"], r["alert_id"], now)
                        resident = directory.registry.residents.get(r["resident_id"])
                        choices.append((c, resident.name if resident else "", r["kind"]))
                    return messages.which_text(choices, action, lang)
                targets = [(told[0]["alert_id"], told[0]["contact_id"], told[0]["role"])]
            if len(targets) > 1:  # two contacts sharing this phone got the same code
                return messages.reply_text("help", lang)
            alert_id, contact_id, role = targets[0]
            return self._act(conn, action, alert_id, contact_id, role or "contact", lang, now)

    def _act(
        self,
        conn: Conn,
        action: str,
        alert_id: str,
        contact_id: str,
        role: str,
        lang: str,
        now: float,
    ) -> str:
        if action == "acknowledge":
            outcome = acknowledge_in(conn, alert_id, role, contact_id, "sms", "SMS reply", now)
            if outcome is None:
                return messages.reply_text("unknown_code", lang)
            if outcome.first:
                store.mark_replied(conn, alert_id, contact_id, "acknowledged", now)
                return messages.reply_text("first", lang)
            if outcome.state in ("resolved", "cancelled"):
                return messages.reply_text("closed", lang)
            return messages.reply_text("later", lang)
        outcome = resolve_in(conn, alert_id, role, contact_id, "sms", "SMS reply", now)
        if outcome is None:
            return messages.reply_text("unknown_code", lang)
        return messages.reply_text("resolved" if outcome.first else "closed", lang)

    async def health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/twilio/voice/gather", self.voice_gather, methods=["POST"]),
                Route("/twilio/voice/status", self.voice_status, methods=["POST"]),
                Route("/twilio/sms", self.sms_inbound, methods=["POST"]),
                Route("/healthz", self.health, methods=["GET"]),
            ]
        )
