"""Anxin's own processes (bridge, workers, fleet) as children that die with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from anxin.services import ServiceError, _die_with_parent, _tail


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class ProcessGroup:
    """Spawns ``anxin`` subcommands with the given environment; ``stop`` ends them all."""

    run_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / f"{name}.log"
        logf = open(log_path, "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "anxin.cli", *args],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops us in order
            env={**os.environ, **self.env, **(env or {})},
        )
        logf.close()
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def wait_until(self, child: Child, ready: Callable[[], bool], timeout: float = 90.0) -> None:
        """Poll ``ready`` until true; fail with the child's log if it exits or times out."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while not ready():
            if not child.alive():
                raise ServiceError(
                    f"{child.name} exited with code {child.proc.returncode}; "
                    f"last lines of {child.log_path}:\n{_tail(child.log_path)}"
                )
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{child.name} not ready within {timeout:.0f} s; "
                    f"last lines of {child.log_path}:\n{_tail(child.log_path)}"
                )
            time.sleep(delay)  # poll interval between readiness probes
            delay = min(delay * 1.5, 0.5)

    def stop(
        self, child: Child | None = None, sig: int = signal.SIGTERM, timeout: float = 20
    ) -> None:
        targets = [child] if child else list(reversed(self.children))
        for c in targets:
            if c.alive():
                c.proc.send_signal(sig)
        for c in targets:
            try:
                c.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                c.proc.kill()
                c.proc.wait()
            if c in self.children:
                self.children.remove(c)
