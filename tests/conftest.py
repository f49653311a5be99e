"""Real services for the tests: started once per session by the same supervisor as the CLI.

The services, the bridge and the worker are shared by every test, so each test keeps to its own
data: its own devices where it reads series back (the storage tests have R051-R053), and its own
``seq`` range where it counts records (skeleton 900k, 777k; faults 3M, 4M, 9.1M; storage 5M,
6M, 6.5M; shared bridges 7M; dead letters 9.3M; registry 9.4M; alerts and simulators their own),
or its own MQTT prefix (simulators, private bridges).

At the end of the session, while the services still answer, ``personal_data`` scans every log
under the run root, every topic and PostgreSQL for the registry's and the policy file's personal
values (``tests/personal_data.py``); tests register private run folders and Kafka brokers with it.
With ``CI=true`` a skipped test fails the run: a skip must never pass silently in CI.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from anxin.core.settings import Settings
from anxin.processes import ProcessGroup
from anxin.services import Endpoints, Supervisor, which
from tests.personal_data import (
    Findings,
    Value,
    personal_values,
    scan_kafka,
    scan_logs,
    scan_postgres,
)

TEST_REGISTRY = Path(__file__).parent / "data" / "registry.yaml"
TEST_POLICIES = Path(__file__).parent / "data" / "alerts" / "alerts.yaml"


# --------------------------------------------------------------------------- skips in CI

_SKIPPED: list[str] = []
_SCANNED: list[str] = []  # the personal-data check's summary, for the terminal


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        _SKIPPED.append(report.nodeid or "(collection)")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPPED.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI a skip is a failure: a missing browser or package must not pass as green."""
    if _in_ci() and _SKIPPED and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _SCANNED:
        terminalreporter.write_line(line)
    if _in_ci() and _SKIPPED:
        terminalreporter.section("skipped in CI (CI=true): the run fails", red=True)
        for nodeid in _SKIPPED:
            terminalreporter.write_line(f"SKIPPED {nodeid}")


# --------------------------------------------------------------------------- personal data


@dataclass
class PersonalData:
    """What the session-end personal-data check reads; tests add their private places.

    ``add_run_dir``: a folder whose logs are scanned at the end (private services and bridges
    under the run root need nothing: everything there is scanned). ``add_kafka``: a private
    broker still running at the end. A folder, broker or database that goes away before the end
    is scanned at once with ``scan_dir_now`` / ``scan_kafka_now`` / ``scan_postgres_now``; its
    findings are reported at the end with the rest. ``add_registry``: a registry copy whose values count as personal too.
    """

    run_root: Path
    run_dirs: list[Path] = field(default_factory=list)
    kafka: list[str] = field(default_factory=list)
    registries: list[Path] = field(default_factory=lambda: [TEST_REGISTRY])
    policies: list[Path] = field(default_factory=lambda: [TEST_POLICIES])
    findings: Findings = field(default_factory=Findings)
    scanned: dict[str, int] = field(default_factory=dict)
    done: bool = False

    def values(self) -> list[Value]:
        return personal_values([p for p in self.registries if p.exists()], self.policies)

    def add_run_dir(self, path: Path) -> None:
        self.run_dirs.append(path)

    def add_kafka(self, bootstrap: str) -> None:
        self.kafka.append(bootstrap)

    def add_registry(self, path: Path) -> None:
        self.registries.append(path)

    def _count(self, what: str, n: int) -> None:
        self.scanned[what] = self.scanned.get(what, 0) + n

    def scan_dir_now(self, path: Path) -> None:
        self._count("log files", scan_logs(path, self.values(), self.findings))

    def scan_kafka_now(self, bootstrap: str) -> None:
        self._count("topic records", scan_kafka(bootstrap, self.values(), self.findings))

    def scan_postgres_now(self, host: str, port: int) -> None:
        pg_dumpall = which("pg_dumpall", "/usr/lib/postgresql/*/bin/pg_dumpall")
        rows = scan_postgres(pg_dumpall, host, port, self.values(), self.findings)
        self._count("PostgreSQL rows", rows)

    def finish(self, endpoints: Endpoints | None) -> None:
        """Scan everything (once); fail with where and which kind of value, never the value."""
        if self.done:
            return
        self.done = True
        for folder in [self.run_root, *self.run_dirs]:
            if folder.exists():
                self.scan_dir_now(folder)
        bootstraps = [*([endpoints.kafka_bootstrap] if endpoints else []), *self.kafka]
        for bootstrap in dict.fromkeys(bootstraps):
            self.scan_kafka_now(bootstrap)
        if endpoints is not None:
            self.scan_postgres_now(endpoints.host, endpoints.pg_port)
        lines = self.findings.lines()
        assert not lines, "personal data found (kind of value, where):\n" + "\n".join(lines)


@pytest.fixture(scope="session")
def personal_data(run_root: Path) -> Iterator[PersonalData]:
    guard = PersonalData(run_root)
    yield guard
    guard.finish(None)  # sessions without services: the logs and registered brokers only
    if guard.scanned:
        counts = ", ".join(f"{n:,} {what}" for what, n in guard.scanned.items())
        found = "FOUND personal data (above)" if guard.findings.where else "nothing found"
        _SCANNED.append(f"personal-data check: {counts} scanned, {found}")


@pytest.fixture(scope="session")
def run_root() -> Iterator[Path]:
    # Not pytest's tmp_path: that is mode 700 and PostgreSQL runs as another user when we are root.
    root = Path(tempfile.mkdtemp(prefix="anxin-test-"))
    os.chmod(root, 0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def supervisor(run_root: Path, personal_data: PersonalData) -> Iterator[Supervisor]:
    """The session's services; fault tests stop and start single services through it.

    At its end, before the services stop (every process of the tests has stopped by then), the
    personal-data check reads every log, topic and table."""
    sup = Supervisor(run_root / "services")
    sup.start()
    try:
        yield sup
        personal_data.finish(sup.endpoints)
    finally:
        sup.stop()


@pytest.fixture(scope="session")
def services(supervisor: Supervisor) -> Endpoints:
    assert supervisor.endpoints is not None
    return supervisor.endpoints


@pytest.fixture(scope="session")
def registry_file(run_root: Path, personal_data: PersonalData) -> Path:
    """A writable copy of the test registry (tests may change it while workers run)."""
    path = run_root / "registry.yaml"
    shutil.copy(TEST_REGISTRY, path)
    personal_data.add_registry(path)
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
    return Settings(registry=registry_file, **services.settings())


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
