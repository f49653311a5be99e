"""The main job, as README.md runs it: ``anxin demo`` (what ``scripts/demo`` execs after setup).

Its own services, bridge, detector worker, alerts worker, storage writer, console and simulated
fleet, started by the command itself: an SOS from a simulated watch must come out as an alert
on the terminal and reach the duty nurse's phone (the Twilio mock), Ctrl-C (or a service
manager's SIGTERM) must stop every process it started, in order, and nothing it wrote (logs,
topics, PostgreSQL) may hold personal data.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import psutil
import pytest

from anxin.demo import POLICIES_EXAMPLE
from tests.conftest import PersonalData

ROOT = Path(__file__).resolve().parent.parent
DEMO = [sys.executable, "-m", "anxin.cli", "demo"]
NOTIFIED = "notified by duty_nurse:nurse-li via voice"
ALERT_FIELDS = {"alert_id", "kind", "severity", "resident_id", "device_id", "ts", "detected_at"}


def _lines(stream: Iterable[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _wait_for(lines: queue.Queue[str | None], seen: list[str], text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            return False
        seen.append(line)
        if text in line:
            return True
    return False


def _started_by(run_dir: Path) -> list[str]:
    """Processes still running with the run folder in their command line."""
    left: list[str] = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(str(run_dir) in part for part in p.info["cmdline"] or ()):
                left.append(f"{p.info['pid']}: {' '.join(p.info['cmdline'])[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return left


@pytest.mark.timeout(300)
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_the_demo_pages_the_duty_nurse_and_ctrl_c_stops_everything(
    run_root: Path, personal_data: PersonalData, stop: signal.Signals
) -> None:
    run_dir = run_root / f"demo-{stop.name}"
    personal_data.add_registry(run_dir / "registry.yaml")  # written by the demo: its names
    personal_data.policies.append(POLICIES_EXAMPLE)  # and the phone numbers it escalates to
    demo = subprocess.Popen(
        [*DEMO, "--residents", "3", "--sos-rate", "720", "--run-dir", str(run_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_lines, args=(demo.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        assert _wait_for(lines, seen, NOTIFIED, timeout=200), "no call reached the nurse:\n" + (
            "".join(seen[-40:])
        )
        state = json.loads((run_dir / "services.json").read_text())["endpoints"]
        # The demo's own broker and database stop with it: read them now.
        personal_data.scan_kafka_now(f"{state['host']}:{state['kafka_port']}")
        personal_data.scan_postgres_now(state["host"], state["pg_port"])
        demo.send_signal(stop)
        assert demo.wait(timeout=90) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert _wait_for(lines, seen, "stopped; alerts were saved to", timeout=10), "".join(seen[-20:])
    assert not _started_by(run_dir), _started_by(run_dir)
    assert not (run_dir / "services.json").exists()
    alerts = [json.loads(line) for line in (run_dir / "alerts.jsonl").read_text().splitlines()]
    assert alerts and all(a.keys() >= ALERT_FIELDS for a in alerts)
    assert {a["kind"] for a in alerts} >= {"sos"}
    assert any(a["alert_id"] in line and "CRITICAL" in line for a in alerts for line in seen)
