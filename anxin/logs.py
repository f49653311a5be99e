"""One configured logger for every Anxin process, with a last-line guard against personal data.

Code must never log names, phone numbers or addresses in the first place (ids only); the filter
below masks anything that still looks like a phone number, as defence in depth.
"""

from __future__ import annotations

import logging
import re

_PHONE = re.compile(r"\+\d[\d \-]{6,}\d|\b1[3-9]\d{9}\b")


class RedactPhoneNumbers(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _PHONE.search(message):
            record.msg = _PHONE.sub("[redacted]", message)
            record.args = None
        return True


def configure(level: str = "INFO") -> None:
    """Configure the root logger once per process (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    if not any(getattr(h, "_anxin", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler._anxin = True  # type: ignore[attr-defined]
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
        handler.addFilter(RedactPhoneNumbers())
        root.addHandler(handler)
    for noisy in ("aiokafka", "kafka", "faust", "mode", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)
