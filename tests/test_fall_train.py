"""The training script's device variants (augmentation), on constructed records only (no
recorded data in the test suite; scikit-learn is not needed for these)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import fall_train as T

T0 = 1_767_225_600.0


def _record(peak: float = 6.0, seconds: int = 6) -> T.Record:
    """A 50 Hz trunk record in 1 s messages: rest, then one ``peak`` g impact on z."""
    rng = np.random.default_rng(3)
    g = np.tile([0.0, -1.0, 0.0], (50 * seconds, 1)) + rng.normal(0, 0.01, (50 * seconds, 3))
    g[150:155, 2] = peak
    msgs = [(T0 + s + 1.2, T0 + s, 50.0, g[50 * s : 50 * s + 50].tolist()) for s in range(seconds)]
    rec = T.Record("sisfall", "D1", "waist", "sisfall:S1", True, T0 + 3.0, T0 + 63.0, seconds)
    return T._with_samples(rec, msgs)


def test_clip_variant_saturates_each_axis_and_keeps_the_timing() -> None:
    rec = _record()
    c = T.variant(rec, "clip2")
    assert c is not None and c.aug == "clip2" and rec.aug == ""
    assert float(np.abs(c.samples).max()) <= 2.0
    assert c.samples.shape == rec.samples.shape
    assert [(t, ts, r) for t, ts, r, _ in c.msgs] == [(t, ts, r) for t, ts, r, _ in rec.msgs]  # type: ignore[attr-defined]
    # the copy is the same subject and the same fall: it follows its recording into a fold
    assert (c.group, c.fall, c.start, c.deadline) == (rec.group, rec.fall, rec.start, rec.deadline)
    # a device that never reached the rail gives no copy (it would duplicate the recording)
    assert T.variant(_record(peak=1.5), "clip2") is None
    assert T.variant(rec, "clip8") is None


def test_rate_variant_halves_the_samples_at_the_same_times() -> None:
    rec = _record()
    c = T.variant(rec, "r25")
    assert c is not None and c.rate == 25.0
    # the first sample needs a whole period of data before it; then one in two, in each message
    assert c.samples.shape[0] == rec.samples.shape[0] // 2 - 1
    assert [ts for _, ts, _, _ in c.msgs][1:] == [ts for _, ts, _, _ in rec.msgs][1:]  # type: ignore[attr-defined]
    both = T.variant(rec, "clip4r25")
    assert both is not None and both.rate == 25.0 and float(np.abs(both.samples).max()) <= 4.0


@pytest.mark.parametrize("target", [20.0, 25.0, 33.0, 40.0])
def test_a_slower_device_averages_over_its_sample_period(target: float) -> None:
    """Samples on the 1/target grid, within each message; each the mean over the period
    before it: a steady signal stays as it is and an impact keeps its area (velocity)."""
    rec = _record()
    c = T.variant(rec, f"r{target:g}")
    assert c is not None and c.rate == target and c.aug == f"r{target:g}"
    times = np.concatenate([ts + np.arange(len(g)) / target for _, ts, _, g in c.msgs])  # type: ignore[attr-defined]
    np.testing.assert_allclose(times * target, np.round(times * target), atol=1e-6)
    assert len(times) == pytest.approx(rec.seconds * target, abs=len(c.msgs))  # type: ignore[attr-defined]
    np.testing.assert_allclose(c.samples[:40].mean(axis=0), [0.0, -1.0, 0.0], atol=0.01)
    area = (rec.samples[:, 2].sum() / rec.rate, c.samples[:, 2].sum() / target)
    assert area[1] == pytest.approx(area[0], abs=0.02)
    assert float(c.samples[:, 2].max()) <= 6.0  # a mean: never above the signal
    assert T.variant(rec, "r50") is None and T.variant(rec, "r100") is None  # not slower


@pytest.mark.parametrize("bad", ["", "clip", "r", "clip2x", "rate25", "r0"])
def test_variant_names_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="augmentation variant"):
        T.parse_variant(bad)


def test_copies_train_only_with_their_subject() -> None:
    """Every copy belongs to its recording's subject, and so to that subject's fold."""
    recs = [_record()]
    (copies,) = T.augment(recs, ["clip2", "clip4", "r25"])
    assert [c.aug for c in copies] == ["clip2", "clip4", "r25"]
    fold = T.folds_of(recs)
    assert all(fold[c.group] == fold[recs[0].group] for c in copies)
    assert all(c.cand_ts for c in copies), "the replayed copies have the impact as a candidate"
