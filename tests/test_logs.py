"""The last-line guard: phone numbers are masked in every log record, whoever logs it."""

from __future__ import annotations

import logging

import pytest

from anxin.core import logs


def test_phone_numbers_are_redacted_in_any_logger(caplog: pytest.LogCaptureFixture) -> None:
    logs.configure("INFO")
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("calling %s now", "+86 138 0000 0001")
        logging.getLogger("anxin.x").warning(
            "sms to 13800000001 failed at 1795390492.25 seq 123456"
        )
    text = caplog.text
    assert "138" not in text
    assert text.count("[redacted]") == 2
    assert "1795390492.25" in text and "123456" in text  # timestamps and counters survive
