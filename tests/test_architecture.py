"""The house rules hold: kernel at the bottom, rooms apart, only the wiring imports rooms.

The contracts are ``[tool.importlinter]`` in pyproject.toml; these tests run import-linter on the
tree, and once on a copy with a deliberately wrong import to show that the contract bites.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("anxin", "ingest", "detectors", "alerts", "storage", "simulators", "console")
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def test_the_import_contracts_are_kept(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_room_importing_another_room_breaks_the_contract(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    sos = tree / "detectors" / "sos.py"
    sos.write_text(sos.read_text() + "\nimport alerts.lifecycle  # noqa: E402,F401\n")
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Rooms import only the kernel and themselves BROKEN" in result.stdout
    assert "detectors.sos -> alerts.lifecycle" in result.stdout


def test_the_kernel_importing_a_room_breaks_the_contract(tmp_path: Path) -> None:
    tree = _copy(tmp_path)
    records = tree / "anxin" / "core" / "records.py"
    records.write_text(records.read_text() + "\nimport storage.writer  # noqa: E402,F401\n")
    result = _lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "The kernel imports no room and none of the wiring BROKEN" in result.stdout
