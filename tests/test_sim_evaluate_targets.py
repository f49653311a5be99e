"""The detector targets of issues 4 and 11, measured by ``anxin evaluate`` on a generated
20-resident, 24-hour scenario (seed 1). Honest thresholds: a failure here is a finding."""

from __future__ import annotations

import pytest

from anxin import evaluation
from simulators import scenario
from simulators.scoring import Score

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Score:
    folder = tmp_path_factory.mktemp("targets") / "seed1"
    scenario.generate(folder, residents=20, hours=24.0, seed=1, jobs=2)
    ev = evaluation.evaluate_inprocess(folder, jobs=2)
    evaluation.add_context(ev, folder)
    evaluation.write_outputs(ev, folder / "evaluation", "targets seed 1")
    print((folder / "evaluation" / "report.md").read_text())
    return ev.result


def test_falls(result: Score) -> None:
    """Falls that need someone page them; "I'm OK" falls are only prompts (issue 15).

    The recall floor is the measured trade-off, not the 0.95 of the single-stage detector: an
    unanswered suspicion pages only from the model's ALERT_P (chosen under the budget of real
    everyday wrist wear, detectors/FALL_MODEL.md) or, from SILENT_P, when the device stops
    reporting. Seed 1 (2026-12-06): 9 of 14 falls paged; the misses are two slow slides with
    little impact and three wrist falls the model scores between SUSPECT_P and ALERT_P whose
    watch streams on (they are prompts: the wearer is asked, nobody else). A lower figure is a
    regression; a higher one a reason to raise the floor.
    """
    fall = result.kinds["fall"]
    assert fall.labels >= 10  # falls whose wearer did not answer "I'm OK"
    assert fall.recall is not None and fall.recall >= 0.6
    assert fall.false_alarms == 0  # nothing pages a nurse for a fall that did not happen
    # impact to alert, the "are you OK?" window and its confirmation included (labels: + 60 s)
    p95 = fall.latency(95)
    assert p95 is not None and p95 <= 60.0
    # The prompt stage is scored over every fall, "I'm OK" ones too: the wearer is asked about
    # at least 80 % of them (seed 1: 17 of 21; the misses have too little impact to suspect).
    prompts = result.prompts
    assert prompts is not None and prompts.labels >= fall.labels
    assert prompts.prompted >= 0.8 * prompts.labels


@pytest.mark.parametrize("kind", ["wander", "vitals", "device"])
def test_wander_vitals_device(result: Score, kind: str) -> None:
    ks = result.kinds[kind]
    assert ks.labels >= 1
    assert ks.recall == 1.0, [m for m in result.misses if m.kind == kind]
    assert ks.false_per_resident_day is not None and ks.false_per_resident_day <= 0.05, [
        (a.resident_id, a.details.get("reason"), a.details.get("news2"))
        for a in result.false_alarms
        if a.kind == kind
    ]


def test_sos(result: Score) -> None:
    sos = result.kinds["sos"]
    assert sos.recall == 1.0 and sos.false_alarms == 0
