"""One configured logger for every Anxin process, with a last-line guard against personal data.

Code must never log names, phone numbers or addresses in the first place (ids only). As defence
in depth, every log record is passed through a redaction of anything that looks like a phone
number when it is created, so it holds for Faust's and the libraries' handlers too.
"""

from __future__ import annotations

import logging
import re
from typing import Any

_PHONE = re.compile(r"\+\d[\d \-]{6,}\d|\b1[3-9]\d{9}\b")
_installed = False


def redact(text: str) -> str:
    return _PHONE.sub("[redacted]", text)


def _install_redacting_factory() -> None:
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string: leave it to the handler to report
            return record
        if _PHONE.search(message):
            record.msg, record.args = redact(message), None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def configure(level: str = "INFO") -> None:
    """Configure the root logger once per process (idempotent)."""
    _install_redacting_factory()
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
        root.addHandler(handler)
    for noisy in ("aiokafka", "kafka", "faust", "mode", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
