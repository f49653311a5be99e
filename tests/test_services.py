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

from anxin.services import Endpoints, ServiceError, Supervisor, http_ready


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) is not a running process.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
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
