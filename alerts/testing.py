"""Test support that is real, not a mock: a recording (and fault-injecting) HTTP proxy in front of
the Twilio mock, Twilio-style request signing, and a fresh database per test.

The proxy forwards every request to Prism (which validates it against Twilio's OpenAPI spec and
answers 201) and records what was asked and answered; told to, it answers 500 like a Twilio outage,
or 400 with code 21211 for a given number, as Twilio does for an invalid "To".
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row
from twilio.request_validator import RequestValidator

from alerts.store import create_database


@dataclass
class Exchange:
    method: str
    path: str
    form: dict[str, str]
    status: int


@dataclass
class TwilioRecorder:
    upstream: str
    exchanges: list[Exchange] = field(default_factory=list)
    outage: bool = False  # answer 500 to everything
    invalid_numbers: set[str] = field(default_factory=set)  # answer 400 / 21211
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> TwilioRecorder:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line holds nothing personal, but stay quiet

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                form = dict(urllib.parse.parse_qsl(body.decode()))
                status, payload, ctype = recorder._answer(self, body, form)
                with recorder._lock:
                    recorder.exchanges.append(Exchange(self.command, self.path, form, status))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _handle
            do_POST = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _answer(
        self, handler: BaseHTTPRequestHandler, body: bytes, form: dict[str, str]
    ) -> tuple[int, bytes, str]:
        if self.outage:
            return (
                500,
                orjson.dumps({"code": 20500, "message": "Internal Server Error"}),
                "application/json",
            )
        if form.get("To") in self.invalid_numbers:
            error = {
                "code": 21211,
                "message": "The 'To' number is not a valid phone number.",
                "status": 400,
            }
            return 400, orjson.dumps(error), "application/json"
        headers = {
            k: v
            for k, v in handler.headers.items()
            if k.lower() in ("authorization", "content-type", "accept", "user-agent")
        }
        request = urllib.request.Request(
            self.upstream + handler.path, data=body or None, headers=headers, method=handler.command
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return (
                    resp.status,
                    resp.read(),
                    resp.headers.get("Content-Type", "application/json"),
                )
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "application/json")

    def sent(self, kind: str, to: str | None = None) -> list[Exchange]:
        """Requests that created a call (``kind="call"``) or message (``"sms"``), optionally to
        one number."""
        suffix = "/Calls.json" if kind == "call" else "/Messages.json"
        with self._lock:
            return [
                e
                for e in self.exchanges
                if e.method == "POST"
                and e.path.endswith(suffix)
                and (to is None or e.form.get("To") == to)
            ]


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for this URL and form."""
    return str(RequestValidator(auth_token).compute_signature(url, params))


def fresh_database(admin_dsn: str) -> str:
    """Create an empty database next to ``admin_dsn``'s and return its DSN."""
    name = f"alerts_{uuid.uuid4().hex[:12]}"
    base = admin_dsn.rsplit("/", 1)[0]
    with psycopg.connect(base + "/postgres", autocommit=True, row_factory=dict_row) as conn:
        create_database(conn, name)
    return f"{base}/{name}"
