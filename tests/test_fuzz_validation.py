"""Property-based tests (hypothesis) of telemetry validation, dead-letter records and the throttle.

``tests/test_telemetry.py`` checks that anything gives a verdict; these check which verdict: good
data is kept exactly, one bad field costs only that field, the envelope rules hold for every
value, and the dead-letter record always keeps (a bounded prefix of) the raw bytes.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from anxin.core.records import dead_letter
from ingest.telemetry import (
    EPOCH_2000,
    Accepted,
    Rejected,
    validate_decoded,
    validate_telemetry,
)
from ingest.throttle import Throttle

NOW = 1_795_000_000.0
T = "anxin/v1/devices/W001/telemetry"


def num(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False) | st.integers(
        math.ceil(lo), math.floor(hi)
    )


vitals = st.fixed_dictionaries(
    {},
    optional={
        "hr": num(20, 300),
        "spo2": num(50, 100),
        "sbp": num(40, 300),
        "dbp": num(20, 200),
        "rr": num(2, 80),
        "temp": num(25, 45),
        "o2": st.booleans(),
        "acvpu": st.sampled_from(["A", "C", "V", "P", "U"]),
    },
).filter(bool)
good_fields = {
    "seq": st.integers(0, 2**53),
    "battery": num(0, 1),
    "worn": st.booleans(),
    "vitals": vitals,
    "accel": st.fixed_dictionaries(
        {
            "rate": num(1, 2000),
            "g": st.lists(st.lists(num(-16, 16), min_size=3, max_size=3), min_size=1, max_size=20),
        }
    ),
    "location": st.fixed_dictionaries(
        {"lat": num(-90, 90), "lon": num(-180, 180)}, optional={"acc": num(0, 100_000)}
    ),
    "event": st.sampled_from(["sos", "fall", "ok", "removed"]),
}
good_ts = num(EPOCH_2000, NOW + 3600)
good_message = st.fixed_dictionaries({"ts": good_ts}, optional=good_fields).filter(
    lambda m: len(m) > 1
)
# Values of the wrong type (or out of range) for each field.
bad_values = {
    "seq": st.sampled_from([-1, 1.5, "1", True, [1], {}]),
    "battery": st.sampled_from([-0.1, 1.01, "0.5", True, [0.5], 1e300]),
    "worn": st.sampled_from([0, 1, "true", "yes", [True]]),
    "vitals": st.sampled_from([[72], "hr=72", 72, True]),
    "accel": st.sampled_from(
        [{"rate": 50}, {"rate": 0, "g": [[0, 0, 1]]}, {"rate": 50, "g": [[0, 1]]}, [[0, 0, 1]]]
    ),
    "location": st.sampled_from(
        [{"lat": 91, "lon": 0}, {"lat": 0}, {"lat": "37.5", "lon": 122.1}, [37.5, 122.1]]
    ),
    "event": st.sampled_from(["S.O.S", "help", 1, True, ["sos"]]),  # "SOS" is the press
}


def verdict(message: dict[str, Any], topic: str = T, now: float = NOW) -> Accepted | Rejected:
    return validate_telemetry(topic, orjson.dumps(message), now)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON numbers (ints come out as floats)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


@settings(max_examples=400, deadline=None)
@given(good_message)
def test_a_good_message_is_kept_exactly(message: dict[str, Any]) -> None:
    result = verdict(message)
    assert isinstance(result, Accepted), result
    assert result.dropped == []
    reading = dict(result.reading)
    assert reading.pop("device_id") == "W001" and reading.pop("received_at") == NOW
    assert same(message, reading)
    # What comes out validates again to itself (the detectors may re-check it).
    again = verdict(reading)
    assert isinstance(again, Accepted) and same(again.reading, result.reading)


@settings(max_examples=400, deadline=None)
@given(good_message, st.data())
def test_one_bad_field_costs_only_that_field(message: dict[str, Any], data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(sorted(bad_values)))
    message = {**message, name: data.draw(bad_values[name])}
    result = verdict(message)
    others = set(message) - {"ts", name}
    if not others:
        assert isinstance(result, Rejected) and "no usable field" in result.reason
        return
    assert isinstance(result, Accepted), result
    assert [d.field for d in result.dropped] == [name]
    assert name not in result.reading
    for key in others:
        assert same(message[key], result.reading[key])


@settings(max_examples=300, deadline=None)
@given(good_message, st.floats(allow_nan=True, allow_infinity=True) | st.integers())
def test_the_envelope_time_rule_holds_for_every_ts(message: dict[str, Any], ts: float) -> None:
    raw = orjson.dumps({**message, "ts": 0}).replace(b'"ts":0', b'"ts":' + repr(ts).encode(), 1)
    raw = raw.replace(b"nan", b"NaN").replace(b"inf", b"Infinity")
    result = validate_telemetry(T, raw, NOW)
    ok = isinstance(ts, int | float) and math.isfinite(ts) and EPOCH_2000 <= ts <= NOW + 3600
    # Without a usable ts, what means as much at the arrival time still flows (an SOS press of a
    # watch whose clock is not set yet); a message with nothing of that kind is rejected whole.
    clockless = bool(message.keys() & {"battery", "worn", "vitals", "location", "event"})
    json_number = not (isinstance(ts, float) and not math.isfinite(ts))  # NaN is not JSON
    if not (isinstance(ts, float) and math.isfinite(ts) and ts > 1e300):  # 1e308-ish: overflow
        assert isinstance(result, Accepted) == (ok or (clockless and json_number)), (ts, result)
    if ok:
        assert isinstance(result, Accepted) and result.reading["ts"] == float(ts)
    elif isinstance(result, Accepted):
        assert result.reading["ts"] == NOW and result.dropped[0].field == "ts"
        assert "accel" not in result.reading and "arrival time" in result.dropped[0].reason
        for key in message.keys() & {"battery", "worn", "vitals", "location", "event", "seq"}:
            assert same(message[key], result.reading[key])
    else:
        assert re.search(r"ts:|NaN|invalid JSON", result.reason), result.reason


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=0, max_size=70).filter(lambda s: "/" not in s))
def test_the_topic_id_decides(device_id: str) -> None:
    result = verdict({"ts": NOW, "battery": 0.5}, f"anxin/v1/devices/{device_id}/telemetry")
    valid = re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", device_id) is not None
    assert isinstance(result, Accepted) == valid
    if valid:
        assert isinstance(result, Accepted) and result.device_id == device_id


@settings(max_examples=50, deadline=None)
@given(good_message, st.integers(1, 5000))
def test_oversize_is_rejected_whatever_it_holds(message: dict[str, Any], extra: int) -> None:
    raw = orjson.dumps(message)
    padded = raw[:-1] + b', "pad": "' + b"x" * (64 * 1024 - len(raw) + extra) + b'"}'
    assert len(padded) > 64 * 1024
    result = validate_telemetry(T, padded, NOW)
    assert isinstance(result, Rejected) and "too large" in result.reason


@settings(max_examples=300, deadline=None)
@given(good_message, st.data(), st.booleans(), st.integers(0, 200))
def test_an_already_decoded_payload_gets_the_same_verdict(
    message: dict[str, Any], data: st.DataObject, spoil: bool, pad: int
) -> None:
    """The in-process replay validates the object it read from its scenario line."""
    if spoil:
        name = data.draw(st.sampled_from(sorted(bad_values)))
        message = {**message, name: data.draw(bad_values[name])}
    raw = orjson.dumps(message)
    limit = len(raw) + pad - 100  # sometimes too large
    for topic in (T, "anxin/v1/devices/W 1/telemetry"):
        expected = validate_telemetry(topic, raw, NOW, max_bytes=limit)
        got = validate_decoded(topic, orjson.loads(raw), len(raw), NOW, max_bytes=limit)
        assert got == expected


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 2000))
def test_a_dead_letter_keeps_a_bounded_prefix_of_the_raw_bytes(raw: bytes, limit: int) -> None:
    record = dead_letter(
        "why", "ingest", NOW, payload=raw, topic=T, device_id="W001", max_payload=limit
    )
    decoded = orjson.loads(orjson.dumps(record))
    kept = (
        base64.b64decode(decoded["payload"])
        if decoded["payload_encoding"] == "base64"
        else decoded["payload"].encode("utf-8")
    )
    assert kept == raw[:limit]
    assert decoded["payload_bytes"] == len(raw)
    assert decoded["payload_truncated"] == (len(raw) > limit)


@settings(max_examples=300, deadline=None)
@given(
    st.floats(0.5, 100),
    st.integers(1, 50),
    st.lists(st.floats(0, 0.2), min_size=1, max_size=400),
)
def test_the_throttle_never_lets_more_than_burst_plus_rate(
    rate: float, burst: int, gaps: list[float]
) -> None:
    throttle = Throttle(rate, burst)
    times, t = [], 0.0
    for gap in gaps:
        t += gap
        times.append(t)
    allowed = [t for t in times if throttle.allow("D", t)]
    for i, start in enumerate(allowed):  # every window starting at an allowed message
        for j in range(i, len(allowed)):
            assert j - i + 1 <= burst + rate * (allowed[j] - start) + 1e-6


@settings(max_examples=100, deadline=None)
@given(st.floats(1, 100), st.integers(1, 50), st.integers(1, 300))
def test_a_device_within_its_rate_is_never_throttled(rate: float, burst: int, n: int) -> None:
    throttle = Throttle(rate, burst)
    assert all(throttle.allow("D", k / rate) for k in range(n))
    other = Throttle(rate, burst)
    for k in range(n):  # a flooding device does not touch another device's bucket
        other.allow("flood", k * 1e-6)
    assert other.allow("calm", n * 1e-6)
