"""A timestamping proxy in front of the Twilio mock, in a process of its own.

``alerts.testing.TwilioRecorder`` forwards each request to Prism; this subclass also notes when
each request arrived and, for calls, the outbox row id the status callback carries (``n=``), so
a call can be traced to its alert through the ``notifications`` table. Only arrival time, path
and that id are kept (the form holds names and numbers: personal data stays out of bench files).
"""

from __future__ import annotations

import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any


def serve(upstream: str, out_path: str, port_q: Any, stop: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from alerts.testing import TwilioRecorder

    lock = threading.Lock()
    out = open(out_path, "w", buffering=1)  # noqa: SIM115 - closed at exit

    class Timed(TwilioRecorder):
        def _answer(self, handler: Any, body: bytes, form: dict[str, str]) -> Any:
            t = time.time()
            n = ""
            cb = form.get("StatusCallback", "")
            if cb:
                n = urllib.parse.parse_qs(urllib.parse.urlsplit(cb).query).get("n", [""])[0]
            result = super()._answer(handler, body, form)
            kind = (
                "call"
                if handler.path.endswith("/Calls.json")
                else ("sms" if handler.path.endswith("/Messages.json") else "other")
            )
            with lock:
                out.write(
                    f"{t:.6f} {time.time():.6f} {handler.command} {kind} {n or '-'} {result[0]}\n"
                )
            return result

    rec = Timed(upstream).start()
    port_q.put(rec.url)
    stop.wait()
    rec.stop()
    out.close()
