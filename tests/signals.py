"""Constructed accelerometer signals for end-to-end tests (the detector's own tests go further)."""

from __future__ import annotations

import numpy as np


def clear_fall(rate: float = 50.0, before_s: float = 6.0, after_s: float = 14.0, seed: int = 7):
    """Standing, a 0.7 s topple (partial free fall), a 6 g impact, then lying still on the back.

    Returns (g, impact_offset_s): an N×3 array in g, and the impact's time from the first sample.
    """
    n_pre, n_fall, n_post = int(before_s * rate), int(0.7 * rate), int(after_s * rate)
    pre = np.tile([0.0, -1.0, 0.0], (n_pre, 1))  # gravity on -y when upright
    ang = np.linspace(0, np.pi / 2, n_fall) ** 1.5 / (np.pi / 2) ** 0.5
    mag = np.linspace(1.0, 0.3, n_fall)
    fall = np.column_stack([np.zeros(n_fall), -np.cos(ang), np.sin(ang)]) * mag[:, None]
    lying = np.tile([0.0, 0.0, 1.0], (n_post, 1))
    k = max(3, int(0.06 * rate))
    lying[:k] *= 1 + 5.0 * np.sin(np.linspace(0, np.pi, k))[:, None]
    g = np.vstack([pre, fall, lying])
    return g + np.random.default_rng(seed).normal(0, 0.01, g.shape), (n_pre + n_fall) / rate


def chunks(g: np.ndarray, rate: float, t0: float, seconds: float = 1.0):
    """Split a signal into telemetry ``accel`` chunks: (ts, {"rate", "g"})."""
    step = int(rate * seconds)
    for i in range(0, len(g), step):
        yield t0 + i / rate, {"rate": rate, "g": np.round(g[i : i + step], 3).tolist()}
