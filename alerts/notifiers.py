"""Twilio voice and SMS through the official ``twilio`` package.

Each send returns a ``SendResult`` instead of raising: ``retry`` for 429, 5xx and network errors
(the outbox row becomes claimable again after a backoff), ``failed`` for a permanent 4xx (the chain
moves on). Twilio's error text can quote the number, so only status and error code are kept.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from anxin.core.settings import TwilioSettings
from anxin.core.yamlfile import ConfigError

# The twilio package logs request bodies (numbers, texts) at INFO: keep that logger quiet.
_HTTP_LOG = logging.getLogger("alerts.twilio_http")
_HTTP_LOG.setLevel(logging.WARNING)


@dataclass(frozen=True)
class SendResult:
    kind: Literal["sent", "retry", "failed"]
    sid: str | None = None
    http_status: int | None = None
    error: str | None = None


class _StatusRecordingClient(TwilioHttpClient):
    """Remembers, per thread, the HTTP status of the last response (201 is what we expect)."""

    def __init__(self, timeout: float):
        super().__init__(pool_connections=False, timeout=timeout, logger=_HTTP_LOG)
        self.local = threading.local()

    def request(self, *args: Any, **kwargs: Any) -> Response:
        self.local.status = None
        response = super().request(*args, **kwargs)
        self.local.status = response.status_code
        return response


DEFAULT_ACCOUNT_SID = TwilioSettings.model_fields["account_sid"].default
DEFAULT_AUTH_TOKEN = TwilioSettings.model_fields["auth_token"].default.get_secret_value()


def check_credentials(settings: TwilioSettings) -> None:
    """Refuse the shipped placeholder credentials against real Twilio (``base_url`` unset):
    a known auth token would let anyone sign webhook requests that acknowledge alerts."""
    if settings.base_url is not None:
        return  # the local mock: placeholders are fine
    problems = []
    if settings.auth_token.get_secret_value() in ("", DEFAULT_AUTH_TOKEN):
        problems.append(
            "twilio.auth_token: the default test token is refused with real Twilio"
            " (twilio.base_url unset); set ANXIN_TWILIO__AUTH_TOKEN"
        )
    if settings.account_sid == DEFAULT_ACCOUNT_SID:
        problems.append(
            "twilio.account_sid: the placeholder account is refused with real Twilio"
            " (twilio.base_url unset); set ANXIN_TWILIO__ACCOUNT_SID"
        )
    if problems:
        raise ConfigError("settings", problems)


class TwilioNotifier:
    def __init__(self, settings: TwilioSettings, timeout_s: float = 10.0):
        self.http = _StatusRecordingClient(timeout_s)
        self.client = Client(
            settings.account_sid, settings.auth_token.get_secret_value(), http_client=self.http
        )
        if settings.base_url:
            self.client.api.base_url = settings.base_url.rstrip("/")
        self.from_number = settings.from_number

    def call(self, to: str, twiml: str, status_callback: str) -> SendResult:
        return self._do(
            lambda: (
                self.client.calls.create(
                    to=to,
                    from_=self.from_number,
                    twiml=twiml,
                    status_callback=status_callback,
                    status_callback_method="POST",
                    # No StatusCallbackEvent: "completed" (the final status) is the default.
                    timeout=30,
                ).sid
            )
        )

    def sms(self, to: str, body: str) -> SendResult:
        return self._do(
            lambda: self.client.messages.create(to=to, from_=self.from_number, body=body).sid
        )

    def _do(self, send: Callable[[], str | None]) -> SendResult:
        try:
            sid = send()
        except TwilioRestException as exc:
            status = int(exc.status)
            error = f"HTTP {status}, Twilio code {exc.code}"
            if status == 429 or status >= 500:
                return SendResult("retry", http_status=status, error=error)
            return SendResult("failed", http_status=status, error=error)
        except (requests.RequestException, TwilioException, OSError) as exc:
            return SendResult("retry", error=f"network: {type(exc).__name__}")
        return SendResult("sent", sid=sid, http_status=getattr(self.http.local, "status", None))
