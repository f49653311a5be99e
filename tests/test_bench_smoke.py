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


def start(script: str, *args: str, tmp: Path) -> subprocess.Popen[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(BENCH / f"{script}.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp)},
    )


def finish(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"timed out: {out[-3000:]}{err[-3000:]}") from None
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    return out


def run(script: str, *args: str, timeout: float, tmp: Path) -> str:
    return finish(start(script, *args, tmp=tmp), timeout)


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


@pytest.mark.timeout(300)
def test_bench_ceiling_quick_and_pipeline_tiny(run_root: Path) -> None:
    """Both start their own services (most of their time): run side by side."""
    ceiling = start("ceiling", "--quick", "--keep", tmp=run_root / "bench")
    pipeline = start(
        "pipeline",
        "--keep",
        "--devices",
        "30",
        "--minutes",
        "0.1",
        "--burst-s",
        "0",
        "--worker-burst-s",  # the catch-up path runs; its default 60 s is for real backlogs
        "5",
        "--drain-s",
        "20",
        "--no-ceilings",
        "--sos-per-min",
        "30",
        tmp=run_root / "bench",
    )
    out = finish(ceiling, timeout=180)
    for section in ("mqtt:", "kafka: aiokafka produce", "framework ceiling", "victoriametrics:"):
        assert section in out
    out = finish(pipeline, timeout=280)
    for section in (
        "steady window",
        "publish -> alert record",
        "first Twilio request",
        "CPU (%",
        "framework ceiling",
        "=== summary",
    ):
        assert section in out
