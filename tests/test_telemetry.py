"""Telemetry v1 validation: strict, field by field, never losing the good part."""

from __future__ import annotations

import json
import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.telemetry import Accepted, Rejected, validate_status, validate_telemetry

T = "anxin/v1/devices/W001/telemetry"
NOW = 1_795_000_000.0


def check(payload: bytes | dict, topic: str = T) -> Accepted | Rejected:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return validate_telemetry(topic, raw, NOW)


def test_full_valid_message_is_kept_whole() -> None:
    msg = {
        "ts": NOW - 5,
        "seq": 12,
        "battery": 0.55,
        "worn": True,
        "vitals": {
            "hr": 72,
            "spo2": 96,
            "sbp": 128,
            "dbp": 80,
            "rr": 16,
            "temp": 36.7,
            "o2": False,
            "acvpu": "A",
        },
        "accel": {"rate": 50, "g": [[0.0, 0.0, -1.0], [0.01, 0.02, -0.99]]},
        "location": {"lat": 37.5, "lon": 122.1, "acc": 12.5},
        "event": "sos",
    }
    result = check(msg)
    assert isinstance(result, Accepted)
    assert result.dropped == []
    assert result.reading["vitals"]["acvpu"] == "A"
    assert result.reading["accel"]["g"][1] == [0.01, 0.02, -0.99]
    assert result.reading["device_id"] == "W001"
    assert result.reading["received_at"] == NOW


def test_integer_numbers_are_numbers() -> None:
    result = check({"ts": int(NOW), "vitals": {"temp": 37}, "location": {"lat": 37, "lon": 122}})
    assert isinstance(result, Accepted) and result.dropped == []


def test_bad_optional_fields_are_dropped_and_named() -> None:
    result = check(
        {"ts": NOW, "battery": 2, "worn": "yes", "vitals": {"hr": 0, "spo2": 95}, "colour": "red"}
    )
    assert isinstance(result, Accepted)
    assert {d.field for d in result.dropped} == {"battery", "worn", "vitals.hr", "colour"}
    assert result.reading["vitals"] == {"spo2": 95.0}
    assert "battery" not in result.reading


def test_an_event_in_other_letter_case_is_still_the_event() -> None:
    """A device sending "SOS" (or " Sos ") pressed the button: dropped as an unknown value, the
    press would page nobody; an ACVPU of "v" is a V (3 points). Anything else outside the four
    events is still dropped, named."""
    for sent in ("SOS", " Sos ", "sos\n"):
        result = check({"ts": NOW, "event": sent})
        assert isinstance(result, Accepted) and result.reading["event"] == "sos", sent
        assert result.dropped == []
    assert check({"ts": NOW, "event": "FALL"}).reading["event"] == "fall"  # type: ignore[union-attr]
    vitals = check({"ts": NOW, "vitals": {"acvpu": " v", "hr": 80}})
    assert isinstance(vitals, Accepted) and vitals.reading["vitals"] == {"acvpu": "V", "hr": 80.0}
    result = check({"ts": NOW, "seq": 3, "event": "panic"})
    assert isinstance(result, Accepted) and "event" not in result.reading
    assert [d.field for d in result.dropped] == ["event"]


def test_a_watch_whose_clock_is_not_set_still_gets_its_sos_through() -> None:
    """A watch restarted with its clock at 1970 (or far ahead) pressing SOS: the press, its
    position and its vitals flow on at the arrival time, the ts and the accelerometer chunk
    (whose samples need the device's own clock) named; a message with nothing that means as
    much without the clock is still rejected whole."""
    accel = {"rate": 50, "g": [[0.0, 0.0, 1.0]] * 5}
    where = {"lat": 37.5, "lon": 122.1, "acc": 9.0}
    for ts in (0, 12345.0, NOW + 7200, "2026-12-07T12:00:00Z", None):
        msg = {"ts": ts, "seq": 4, "event": "sos", "location": where, "accel": accel}
        result = check({k: v for k, v in msg.items() if v is not None})
        assert isinstance(result, Accepted), (ts, result)
        assert result.reading["ts"] == NOW and result.reading["event"] == "sos"
        assert result.reading["seq"] == 4 and result.reading["location"] == where
        assert [d.field for d in result.dropped] == ["ts", "accel"]
        assert "the arrival time stands in" in result.dropped[0].reason
    for msg in ({"ts": 0, "seq": 4}, {"ts": 0, "accel": accel}, {"ts": 0, "colour": "red"}):
        result = check(msg)
        assert isinstance(result, Rejected) and result.reason.startswith("ts: before 2000"), msg


def test_bool_is_not_a_number_and_string_is_not_a_bool() -> None:
    result = check({"ts": NOW, "seq": True, "battery": False, "vitals": {"o2": "true"}})
    assert isinstance(result, Rejected)
    assert "no usable field" in result.reason


def test_envelope_errors_reject_the_whole_message() -> None:
    cases = {
        b"{": "invalid JSON",
        b'{"ts": NaN}': "NaN/Infinity",
        b'{"ts": -Infinity}': "NaN/Infinity",
        b"\xff\xfe": "not UTF-8",
        b"[]": "JSON object",
        b'"x"': "JSON object",
        b'{"seq": 1}': "ts",
        b'{"ts": true}': "ts",
        b'{"ts": 100}': "before 2000",
        orjson.dumps({"ts": NOW + 86400}): "future",
        b'{"ts": 1767225600, "x": "' + b"a" * 70_000 + b'"}': "too large",
    }
    for raw, needle in cases.items():
        result = check(raw)
        assert isinstance(result, Rejected), raw[:40]
        assert needle in result.reason, (raw[:40], result.reason)


def test_topic_ids_are_checked() -> None:
    for topic in (
        "anxin/v1/devices/a b/telemetry",
        "anxin/v1/devices//telemetry",
        f"anxin/v1/devices/{'x' * 65}/telemetry",
        "other/v1/devices/W001/telemetry",
        "anxin/v1/devices/W001/status",
    ):
        assert isinstance(check({"ts": NOW}, topic), Rejected), topic
    assert isinstance(check({"ts": NOW}, "anxin/v1/devices/a.B_9-z/telemetry"), Accepted)


def test_accel_shape_and_values() -> None:
    bad = [
        {"rate": 50, "g": [[0, 0]]},
        {"rate": 50, "g": []},
        {"rate": 0, "g": [[0, 0, 1]]},
        {"rate": 50, "g": [[0, 0, "1"]]},
        {"rate": 50},
    ]
    for accel in bad:
        result = check({"ts": NOW, "battery": 0.5, "accel": accel})
        assert isinstance(result, Accepted) and [d.field for d in result.dropped] == ["accel"], (
            accel
        )


def test_status_payloads() -> None:
    assert validate_status("anxin/v1/devices/W001/status", b"online") == "online"
    assert validate_status("anxin/v1/devices/W001/status", b'"offline"') == "offline"
    assert isinstance(validate_status("anxin/v1/devices/W001/status", b"dead"), Rejected)
    assert isinstance(validate_status("anxin/v1/devices/W 1/status", b"online"), Rejected)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["ts", "seq", "battery", "worn", "vitals", "accel", "location", "event", "zz"]
        ),
        json_values,
        max_size=8,
    )
)
def test_any_json_object_gives_a_verdict_never_an_exception(payload: dict) -> None:
    result = validate_telemetry(T, json.dumps(payload).encode(), NOW)
    assert isinstance(result, Accepted | Rejected)
    if isinstance(result, Accepted):
        assert math.isfinite(result.reading["ts"])
        # Every key that came in is either kept or named as dropped.
        kept = set(result.reading) - {"device_id", "received_at"}
        dropped = {d.field.split(".")[0] for d in result.dropped}
        assert set(payload) - {k for k, v in payload.items() if v is None} <= kept | dropped


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_a_verdict(raw: bytes) -> None:
    assert isinstance(validate_telemetry(T, raw, NOW), Accepted | Rejected)
