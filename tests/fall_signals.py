"""Falls that page: physically simulated (simulators/motion.py), for end-to-end tests.

``tests/signals.py``'s clear fall is a clean cartoon: every sensible detector suspects it, but a
learned model may not be sure enough to page on silence. A simulated backward fall from standing
(hip 1.9-3.4 m/s into the floor, bounce, the body's rotation, sensor noise) is; seeded, so it is
the same every run.
"""

from __future__ import annotations

import numpy as np

from simulators import motion

RATE = 50.0


def physical_fall(placement: str, lying_s: float = 0.0, seed: int = 1) -> tuple[np.ndarray, float]:
    """(g, impact offset in s): a backward fall, then ``lying_s`` more of lying still."""
    rng = np.random.default_rng([seed, 15])
    seg = motion.segment("fall_backward", placement, rng, RATE, 8.0)
    g = seg.g
    if lying_s > 0:
        g = np.concatenate([g, motion.lying_still(seg, lying_s, rng)])
    assert seg.impact_s is not None
    return g, float(seg.impact_s)


def walking(seconds: float) -> np.ndarray:
    """Upright, |a| swinging at a 1.8 Hz step rhythm: someone walking away."""
    t = np.arange(int(seconds * RATE)) / RATE
    mag = 1.0 + 0.35 * np.sin(2 * np.pi * 1.8 * t)
    return np.column_stack([0.05 * np.sin(2 * np.pi * 0.9 * t), -mag, np.zeros_like(t)])
