"""The supervisor: clear errors with the log tail, and no orphan processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import anxin.services
from anxin.services import Endpoints, ServiceError, Supervisor, http_ready, listens_on


def test_a_service_that_cannot_start_gives_its_log_tail(run_root: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        sup = Supervisor(
            run_root / "fail", only=("victoriametrics",), ports={"victoriametrics": port}
        )
        with pytest.raises(ServiceError) as info:
            sup.start()
    message = str(info.value)
    assert "victoriametrics" in message
    assert "address already in use" in message.lower()
    assert not sup.children


@pytest.mark.parametrize("service", anxin.services.SERVICE_NAMES)
def test_a_port_taken_before_the_service_binds_it_moves_the_service(
    run_root: Path, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race of a free port: another process binds it between choosing and binding. The
    service must end up on a port it holds itself, never pass readiness on the other's port."""
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        taken = thief.getsockname()[1]
        candidates = iter([taken] * len(anxin.services.SERVICE_NAMES))  # start's first picks
        real = anxin.services.free_port
        # The first candidates are the stolen port (what the race produces, made certain here).
        monkeypatch.setattr(anxin.services, "free_port", lambda: next(candidates, None) or real())
        sup = Supervisor(run_root / f"moved-{service}", only=(service,))
        ep = sup.start()
        try:
            field = {
                "mosquitto": "mqtt_port",
                "kafka": "kafka_port",
                "victoriametrics": "vm_port",
                "postgres": "pg_port",
                "twilio": "twilio_port",
            }[service]
            port = getattr(ep, field)
            child = sup._child(service)
            assert port != taken and sup._moves[service] == 1
            assert anxin.services.bind_failed(child.log_path)  # the first try said so
            assert listens_on(child.proc.pid, port)
            assert not listens_on(child.proc.pid, taken)
            state = (run_root / f"moved-{service}" / "services.json").read_text()
            assert json.loads(state)["endpoints"][field] == port
        finally:
            sup.stop()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not a running process.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped between the two looks: gone
        return False


def test_services_up_writes_addresses_and_a_killed_supervisor_leaves_no_orphans(
    run_root: Path,
) -> None:
    run_dir = run_root / "orphans"
    proc = subprocess.Popen(
        [sys.executable, "-m", "anxin.cli", "services", "up", "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:  # the command prints "services up" once every service answered
        lines.append(line)
        if "services up" in line:
            break
    state = json.loads((run_dir / "services.json").read_text())
    ep = Endpoints(**state["endpoints"])
    assert http_ready(f"{ep.vm_url}/health")
    status = subprocess.run(
        [sys.executable, "-m", "anxin.cli", "services", "status", "--run-dir", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and status.stdout.count("yes") == 5, status.stdout
    children = list(state["pids"].values())
    assert len(children) == 5 and all(_pid_alive(p) for p in children)

    proc.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel must take the children
    proc.wait()
    deadline = time.monotonic() + 20
    while any(_pid_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the process table until the kernel has delivered SIGTERM
    assert not [pid for pid in children if _pid_alive(pid)], "children outlived their supervisor"
