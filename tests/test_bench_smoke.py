"""The bench scripts run end to end at a tiny size (figures are printed, never asserted).

They start their own services in their own run folders (as `bench/README.md` describes), so
these tests only check that each script finishes and prints its sections: a renamed setting, a
changed CLI flag or a moved function breaks the benchmark here rather than on the day someone
needs its figures. Their temporary folders are made under the session's run root (``TMPDIR``)
and kept (``--keep``), so the session-end personal-data check reads their logs too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def run(script: str, *args: str, timeout: float, tmp: Path) -> str:
    tmp.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, str(BENCH / f"{script}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TMPDIR": str(tmp)},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_bench_detectors_quick(run_root: Path) -> None:
    out = run("detectors", "--quick", timeout=120, tmp=run_root / "bench")
    for section in ("fall:", "geofence:", "news2:", "pipeline in-process:", "numpy ref"):
        assert section in out


def test_bench_scenario_quick(run_root: Path) -> None:
    out = run("scenario", "--quick", timeout=180, tmp=run_root / "bench")
    for section in (
        "generate:",
        "ceiling (read + orjson decode)",
        "evaluate in-process, 1 process",
    ):
        assert section in out


def test_bench_registry_quick(run_root: Path) -> None:
    out = run("registry", "--quick", timeout=180, tmp=run_root / "bench")
    assert "per resident" in out


def test_bench_ceiling_quick(run_root: Path) -> None:
    out = run("ceiling", "--quick", "--keep", timeout=180, tmp=run_root / "bench")
    for section in ("mqtt:", "kafka: aiokafka produce", "framework ceiling", "victoriametrics:"):
        assert section in out


@pytest.mark.timeout(300)
def test_bench_pipeline_tiny(run_root: Path) -> None:
    out = run(
        "pipeline",
        "--keep",
        "--devices",
        "30",
        "--minutes",
        "0.2",
        "--burst-s",
        "0",
        "--drain-s",
        "20",
        "--no-ceilings",
        "--sos-per-min",
        "30",
        timeout=280,
        tmp=run_root / "bench",
    )
    for section in (
        "steady window",
        "publish -> alert record",
        "first Twilio request",
        "CPU (%",
        "framework ceiling",
        "=== summary",
    ):
        assert section in out
