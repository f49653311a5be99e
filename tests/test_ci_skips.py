"""In CI (``CI=true``) a skipped test fails the run (tests/conftest.py): a missing browser or
package must never pass as green there. Outside CI a skip is only reported."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
HOOKS = (
    "from tests.conftest import (pytest_collectreport, pytest_runtest_logreport,\n"
    "    pytest_sessionfinish, pytest_terminal_summary)\n"
)
TESTS = """
import pytest

@pytest.mark.skip(reason="chromium not installed")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known", strict=True)
def test_expected_failure():
    assert False

def test_passes():
    pass
"""


@pytest.mark.parametrize(("ci", "exit_code"), [("true", 1), ("", 0)])
def test_a_skip_fails_the_run_only_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, exit_code: int
) -> None:
    monkeypatch.setenv("CI", ci)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(HOOKS)
    pytester.makepyfile(
        test_some=TESTS,
        test_browser="import pytest\npytest.importorskip('no_such_browser_api')\n",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=2, xfailed=1)  # an xfail is no skip
    assert result.ret == exit_code
    summary = "skipped in CI (CI=true): the run fails"
    if ci:
        result.stdout.fnmatch_lines(
            [f"*{summary}*", "SKIPPED test_browser.py", "SKIPPED test_some.py::test_skipped"]
        )
    else:
        assert summary not in result.stdout.str()
