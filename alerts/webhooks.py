"""Twilio's requests to us: voice keypress, call status, inbound SMS (an ASGI app, Starlette).

Every request must carry a valid ``X-Twilio-Signature`` for the public URL it was sent to
(``twilio.public_base_url`` + path + query) and its form fields; anything else gets 403 and
changes nothing. Notification ids in our callback URLs are covered by the signature, so a caller
cannot point a keypress at another alert.
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

from alerts import messages
from alerts.clock import Clock
from alerts.db import Database
from alerts.escalation import VOICE_ENDED, attempt_ended
from alerts.lifecycle import Lifecycle
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
        self.lifecycle = Lifecycle(db, clock)
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
            row: dict[str, Any] | None = conn.execute(
                "select n.*, a.resident_id from notifications n join alerts a using (alert_id)"
                " where n.id = %s",
                (notification_id,),
            ).fetchone()
        return row

    def _language(self, contact_id: str, resident_id: str | None) -> str:
        directory = self.directory()
        contact = directory.find(contact_id)
        resident = directory.registry.residents.get(resident_id) if resident_id else None
        return messages.language(
            contact.language if contact else None, resident.language if resident else None
        )

    async def voice_gather(self, request: Request) -> Response:
        params = await self._verified(request)
        if params is None:
            return PlainTextResponse("forbidden", status_code=403)
        row = await run_in_threadpool(self._notification, request)
        if row is None:
            return PlainTextResponse("unknown notification", status_code=404)
        lang = self._language(row["contact_id"], row["resident_id"])
        if params.get("Digits", "").strip() != "1":
            return Response(messages.gather_reply(False, False, lang), media_type=TWIML)
        outcome = await run_in_threadpool(self._ack, row, "voice", "keypress 1")
        first = bool(outcome and outcome.first)
        return Response(messages.gather_reply(True, first, lang), media_type=TWIML)

    def _ack(self, row: dict[str, Any], channel: str, note: str) -> Any:
        outcome = self.lifecycle.acknowledge(
            row["alert_id"], row["role"], row["contact_id"], channel, note
        )
        with self.db.transaction() as conn:
            conn.execute(
                "update notifications set outcome = 'acknowledged', outcome_at = %s"
                " where id = %s and outcome is null",
                (self.clock.now(), row["id"]),
            )
        return outcome

    async def voice_status(self, request: Request) -> Response:
        params = await self._verified(request)
        if params is None:
            return PlainTextResponse("forbidden", status_code=403)
        row = await run_in_threadpool(self._notification, request)
        if row is None:
            return PlainTextResponse("unknown notification", status_code=404)
        status = params.get("CallStatus", "")
        if status in VOICE_ENDED:
            outcome = "hung-up-without-keypress" if status == "completed" else status

            def ended() -> None:
                with self.db.transaction() as conn:
                    attempt_ended(conn, row["id"], outcome, self.clock.now())

            await run_in_threadpool(ended)
        return Response(status_code=204)

    async def sms_inbound(self, request: Request) -> Response:
        params = await self._verified(request)
        if params is None:
            return PlainTextResponse("forbidden", status_code=403)
        sender, body = params.get("From", ""), params.get("Body", "")
        contact_ids = self.directory().by_phone(sender)
        if not contact_ids:
            log.info("SMS from a number not in the directory ignored")
            return Response(
                messages.sms_reply(messages.reply_text("none", "zh-CN")), media_type=TWIML
            )
        row = await run_in_threadpool(self._last_told, contact_ids)
        lang = self._language(contact_ids[0], row["resident_id"] if row else None)
        if not messages.is_ack_word(body):
            return Response(messages.sms_reply(messages.reply_text("help", lang)), media_type=TWIML)
        if row is None:
            return Response(messages.sms_reply(messages.reply_text("none", lang)), media_type=TWIML)
        outcome = await run_in_threadpool(self._ack, row, "sms", "SMS reply")
        text = messages.reply_text("first" if outcome and outcome.first else "later", lang)
        return Response(messages.sms_reply(text), media_type=TWIML)

    def _last_told(self, contact_ids: list[str]) -> dict[str, Any] | None:
        """The notification about the alert these contacts were told about last."""
        with self.db.connect() as conn:
            row: dict[str, Any] | None = conn.execute(
                "select n.*, a.resident_id from notifications n join alerts a using (alert_id)"
                " where n.contact_id = any(%s) and n.purpose = 'alert'"
                " and n.channel in ('voice', 'sms') and n.state in ('sent', 'unknown')"
                " order by n.sent_at desc nulls last, n.id desc limit 1",
                (contact_ids,),
            ).fetchone()
        return row

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
