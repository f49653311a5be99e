"""Real services for the tests: started once per session by the same supervisor as the CLI.

The services, the bridge and the worker are shared by every test, so each test keeps to its own
data: its own devices where it reads series back (the storage tests have R051-R053), and its own
``seq`` range where it counts records (skeleton 900k, 777k; faults 3M, 4M; storage 5M, 6M;
shared bridges 7M; alerts and simulators their own).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from anxin.core.settings import Settings
from anxin.processes import ProcessGroup
from anxin.services import Endpoints, Supervisor

TEST_REGISTRY = Path(__file__).parent / "data" / "registry.yaml"


@pytest.fixture(scope="session")
def run_root() -> Iterator[Path]:
    # Not pytest's tmp_path: that is mode 700 and PostgreSQL runs as another user when we are root.
    root = Path(tempfile.mkdtemp(prefix="anxin-test-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def supervisor(run_root: Path) -> Iterator[Supervisor]:
    """The session's services; fault tests stop and start single services through it."""
    sup = Supervisor(run_root / "services")
    sup.start()
    try:
        yield sup
    finally:
        sup.stop()


@pytest.fixture(scope="session")
def services(supervisor: Supervisor) -> Endpoints:
    assert supervisor.endpoints is not None
    return supervisor.endpoints


@pytest.fixture(scope="session")
def registry_file(run_root: Path) -> Path:
    """A writable copy of the test registry (tests may change it while workers run)."""
    path = run_root / "registry.yaml"
    shutil.copy(TEST_REGISTRY, path)
    return path


@pytest.fixture(scope="session")
def anxin_env(services: Endpoints, run_root: Path, registry_file: Path) -> dict[str, str]:
    return {
        **services.env(),
        "ANXIN_RUN_DIR": str(run_root / "services"),
        "ANXIN_REGISTRY": str(registry_file),
        "ANXIN_FAUST__DATA_DIR": str(run_root / "faust"),
        "ANXIN_REGISTRY_RELOAD_S": "0.5",
        "ANXIN_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def settings(services: Endpoints, registry_file: Path) -> Settings:
    return Settings(registry=registry_file, **services.settings())  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def pipeline(anxin_env: dict[str, str], run_root: Path) -> Iterator[ProcessGroup]:
    """The bridge and one detector worker, running against the session's services."""
    group = ProcessGroup(run_root / "logs", env=anxin_env)
    ready = run_root / "worker.ready"
    bridge_ready = run_root / "bridge.ready"
    try:
        bridge = group.spawn("bridge", "ingest", "--ready-file", str(bridge_ready))
        worker = group.spawn("worker", "worker", "--ready-file", str(ready))
        group.wait_until(bridge, bridge_ready.exists)
        group.wait_until(worker, ready.exists)
        yield group
    finally:
        group.stop()
