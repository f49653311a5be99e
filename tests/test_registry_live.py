"""The registry changed under running processes (README: every process re-reads the file):

- a device added to the file is taken by the running bridge, and its SOS raises an alert;
- a family phone changed in the file is the number the running alerts worker calls;
- a file that does not validate is refused with its error in the log, and the previous registry
  stays in force (the added device still works, although the invalid file lacks it).

It edits the session's ``registry_file`` (atomically, as the README says to) and puts the
original back at the end: it only ever adds a resident of its own (R061, device L061), so no
other test sees a difference. Own ``seq`` range 9.4M. The personal values it makes up are handed
to the session-end personal-data check.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from alerts.testing import TwilioRecorder
from anxin.processes import ProcessGroup
from anxin.services import Endpoints, log_size
from tests.conftest import PersonalData
from tests.kafka_helpers import collect, first_of
from tests.mqtt_helpers import mosquitto_pub
from tests.test_alerts_worker import T0, AlertsWorker

SEQ = 9_400_000
PHONE_BEFORE, PHONE_AFTER = "+8613600000611", "+8613600000612"
REFUSED = "registry change refused, keeping the previous one:"
RELOADED = "registry reloaded:"


def with_r061(original: str, phone: str) -> str:
    """The original registry plus a resident of this test's own."""
    return original.rstrip("\n") + (
        "\n  R061:\n"
        "    name: 钱桂英\n"
        "    timezone: Asia/Shanghai\n"
        "    devices:\n"
        "      L061: {placement: wrist}\n"
        f'    family: [{{name: 钱志强, phone: "{phone}", relation: son}}]\n'
    )


def replace_file(path: Path, text: str) -> None:
    """Write ``path`` atomically (a reader sees the old file or the new, never half of one)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:6]}")
    tmp.write_text(text)
    os.replace(tmp, path)


def log_since(path: Path, offset: int) -> str:
    with path.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


@pytest.fixture
def live_registry(
    registry_file: Path, run_root: Path, personal_data: PersonalData
) -> Iterator[tuple[Path, str]]:
    original = registry_file.read_text()
    folder = run_root / f"registry-live-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    for phone in (PHONE_BEFORE, PHONE_AFTER):  # what this test adds counts as personal data
        copy = folder / f"registry-{phone.lstrip('+')}.yaml"
        copy.write_text(with_r061(original, phone))
        personal_data.add_registry(copy)
    try:
        yield registry_file, original
    finally:
        replace_file(registry_file, original)


def press_sos(services: Endpoints, seq: int) -> dict[str, Any]:
    """An SOS of L061; returns what the bridge made of it: the reading or the dead letter."""
    payload = {"ts": round(time.time(), 3), "seq": seq, "event": "sos"}
    mosquitto_pub(services, "anxin/v1/devices/L061/telemetry", [orjson.dumps(payload)])

    def ours(topic: str, r: dict[str, Any]) -> bool:
        if r.get("device_id") != "L061":
            return False
        if topic == "readings":
            return bool(r.get("seq") == seq)
        return bool(orjson.loads(r.get("payload") or "{}").get("seq") == seq)

    return first_of(services.kafka_bootstrap, ["readings", "readings-rejected"], ours)[1]


def test_registry_changes_reach_the_running_bridge_detectors_and_alerts_worker(
    services: Endpoints,
    pipeline: ProcessGroup,
    anxin_env: dict[str, str],
    run_root: Path,
    live_registry: tuple[Path, str],
) -> None:
    registry_file, original = live_registry
    bridge_log = next(c for c in pipeline.children if c.name == "bridge").log_path
    folder = run_root / f"registry-live-alerts-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    twilio = TwilioRecorder(services.twilio_url).start()
    group = ProcessGroup(folder, env=anxin_env)
    try:
        worker = AlertsWorker(group, services, twilio, folder)
        worker.start()
        assert worker.child is not None
        alerts_log = worker.child.log_path

        # 1. A device added while everything runs: the bridge takes it, its SOS is an alert.
        mark = log_size(alerts_log)
        replace_file(registry_file, with_r061(original, PHONE_BEFORE))
        worker.wait_for(
            "the alerts worker's reload", lambda: RELOADED in log_since(alerts_log, mark)
        )
        # The bridge re-reads the file when a message comes (at most every 0.5 s here), so a
        # press racing the reload may still meet the old registry: press again until taken.
        seq, verdicts = SEQ, []
        while True:
            seq += 1
            verdicts.append(press_sos(services, seq))
            if "resident_id" in verdicts[-1] or len(verdicts) == 10:
                break
        assert verdicts[-1]["resident_id"] == "R061", verdicts
        assert all(v["reason"] == "unknown device: not in the registry" for v in verdicts[:-1])
        alert = collect(
            services.kafka_bootstrap,
            "alerts",
            lambda a: a.get("device_id") == "L061" and a.get("details", {}).get("seq") == seq,
            lambda f: len(f) >= 1,
        )
        assert [(a["kind"], a["severity"], a["resident_id"]) for a in alert] == [
            ("sos", "critical", "R061")
        ]

        def opened() -> list[dict[str, Any]]:
            return worker.rows(
                "select a.alert_id from alerts a join alert_sources s using (alert_id)"
                " where s.source_alert_id = %s",
                alert[0]["alert_id"],
            )

        worker.wait_for("the alert in the alerts worker", lambda: bool(opened()))
        alert_id = opened()[0]["alert_id"]

        # 2. The family phone changes before the family's step is due: the new number is called.
        mark = log_size(alerts_log)
        replace_file(registry_file, with_r061(original, PHONE_AFTER))
        worker.wait_for(
            "the alerts worker's reload", lambda: RELOADED in log_since(alerts_log, mark)
        )
        worker.clock.set(T0 + 75)  # no one acknowledged for 75 s: step 2, family and backup

        def family_sent() -> list[dict[str, Any]]:
            return worker.rows(
                "select channel from notifications where alert_id = %s and contact_id = 'R061-0'"
                " and state = 'sent' order by channel",
                alert_id,
            )

        worker.wait_for("the family called and texted", lambda: len(family_sent()) == 2)
        assert family_sent() == [{"channel": "sms"}, {"channel": "voice"}]
        assert len(twilio.sent("call", PHONE_AFTER)) == 1
        assert len(twilio.sent("sms", PHONE_AFTER)) == 1
        assert twilio.sent("call", PHONE_BEFORE) == [] and twilio.sent("sms", PHONE_BEFORE) == []

        # 3. An invalid file (and one without R061): refused, the previous registry stays.
        bad = original.replace("radius_m: 120}", "radius_m: -5}", 1)
        assert bad != original
        bridge_mark, alerts_mark = log_size(bridge_log), log_size(alerts_log)
        replace_file(registry_file, bad)
        why = f"{registry_file}:13: residents.R001.geofences[0].circle.radius_m: must be > 0"
        worker.wait_for(
            "the alerts worker's refusal", lambda: REFUSED in log_since(alerts_log, alerts_mark)
        )
        # The bridge looks at the file when a message comes: press until it has looked.
        pressed: list[dict[str, Any]] = []
        while REFUSED not in log_since(bridge_log, bridge_mark) and len(pressed) < 10:
            seq += 1
            pressed.append(press_sos(services, seq))
        assert REFUSED in log_since(bridge_log, bridge_mark)
        assert [v.get("resident_id") for v in pressed] == ["R061"] * len(pressed)  # still known
        for text in (log_since(bridge_log, bridge_mark), log_since(alerts_log, alerts_mark)):
            assert f"{REFUSED}\n{why}" in text
            assert RELOADED not in text
    finally:
        group.stop()
        twilio.stop()
