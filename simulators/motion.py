"""Generated accelerometer signals (units of g, device frame) for falls and daily activities.

Why a body model rather than templates: the sensor reading is the specific force
``R_device^T (a_world + up)``, so gravity, orientation and movement interact the way they do in
real recordings (a tilted trunk moves gravity to other axes, free fall drops |a| towards 0,
an impact pushes along the floor's normal). Each activity scripts a trunk orientation
(pitch/roll), a world-frame acceleration and, for the wrist, an arm orientation and arm
acceleration; per-person and per-trial parameters are drawn from ``rng`` so no two are alike.
Sensor effects follow: a per-device mounting rotation, bias, white noise, per-axis clipping
at the sensor range and 1 mg rounding. Everything is numpy and deterministic for a given
``numpy.random.Generator``; only short segments are generated (background wear is
:func:`quiet`, which is cheap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[np.float64]

FALLS = (
    "fall_forward",
    "fall_backward",
    "fall_lateral",
    "fall_from_chair",
    "slow_slide",
    "fall_recover",
)
ADLS = (
    "walking",
    "running_for_bus",
    "stairs",
    "sit_down_hard",
    "lie_down_bed",
    "clapping",
    "waving",
    "typing",
    "jumping",
    "bump_table",
    "drop_device",
)
KINDS = FALLS + ADLS
PLACEMENTS = ("wrist", "waist", "pendant")


@dataclass(frozen=True)
class Segment:
    """One generated recording: ``g`` is N x 3 in g at ``rate`` Hz from t = 0."""

    kind: str
    placement: str
    rate: float
    g: Arr
    is_fall: bool
    impact_s: float | None  # time of the impact from the start (falls only)


@dataclass
class _Track:
    """Time courses that make up one segment (all N long)."""

    t: Arr
    pitch: Arr  # trunk pitch (rad), + forward
    roll: Arr  # trunk roll (rad), + to the left
    a_world: Arr  # N x 3 linear acceleration (g), z up
    arm_el: Arr  # wrist: forearm elevation (rad) relative to the trunk
    arm_tw: Arr  # wrist: forearm twist (rad)
    a_arm: Arr  # N x 3 arm-only acceleration (g) in the device frame (wrist, pendant swing)
    off_body: Arr | None = None  # N x 3 specific force of a device not worn (drop), else None


def _rot_x(a: Arr) -> Arr:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], 1)


def _rot_y(a: Arr) -> Arr:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], 1)


def random_mount(placement: str, rng: np.random.Generator) -> Arr:
    """Fixed device-in-body rotation: a belt clip, a pendant or a watch is worn a bit askew."""
    ang = rng.uniform(-np.pi, np.pi, 3) * np.array([0.15, 0.15, 1.0])
    if placement == "wrist":
        ang[:2] = rng.uniform(-0.4, 0.4, 2)
    m = _rot_x(ang[:1])[0] @ _rot_y(ang[1:2])[0]
    c, s = np.cos(ang[2]), np.sin(ang[2])
    return np.asarray(m @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]), dtype=np.float64)


def _smooth(x: Arr, k: int) -> Arr:
    if k <= 1:
        return x
    ker = np.ones(k) / k
    pad = np.pad(x, (k // 2, k - 1 - k // 2), mode="edge")
    return np.convolve(pad, ker, mode="valid")


def _ramp_to(t: Arr, t0: float, dur: float, a: float, b: float, power: float = 1.0) -> Arr:
    """a before t0, b after t0+dur, eased in between (power > 1: accelerating like a topple)."""
    u = np.clip((t - t0) / max(dur, 1e-3), 0.0, 1.0)
    e = u**power if power != 1.0 else 0.5 - 0.5 * np.cos(np.pi * u)
    return a + (b - a) * e


def _pulse(t: Arr, t0: float, width: float, peak: float) -> Arr:
    """Half-sine impact pulse of ``width`` seconds."""
    u = (t - t0) / width
    return np.where((u >= 0) & (u <= 1), peak * np.sin(np.pi * np.clip(u, 0, 1)), 0.0)


def _wobble(t: Arr, rng: np.random.Generator, amp: float, hz: float) -> Arr:
    """Smooth random motion: a few sines with random phases."""
    f = hz * rng.uniform(0.5, 1.5, 3)
    ph = rng.uniform(0, 2 * np.pi, 3)
    w = rng.uniform(0.3, 1.0, 3)
    return np.asarray(
        amp * (w[:, None] * np.sin(2 * np.pi * f[:, None] * t + ph[:, None])).sum(0) / w.sum()
    )


def _new(n: int, rate: float) -> _Track:
    t = np.arange(n) / rate
    z = np.zeros(n)
    return _Track(t, z.copy(), z.copy(), np.zeros((n, 3)), z - 1.2, z.copy(), np.zeros((n, 3)))


def _steps(
    tr: _Track,
    rng: np.random.Generator,
    t0: float,
    t1: float,
    hz: float,
    amp: float,
    heel: float,
    arm: float,
) -> None:
    """Gait between t0 and t1: vertical bounce, heel strikes, sway and (wrist) arm swing."""
    t = tr.t
    on = ((t >= t0) & (t < t1)).astype(float)
    on = _smooth(on, max(1, int(0.3 / (t[1] - t[0]))))
    ph = rng.uniform(0, 2 * np.pi)
    tr.a_world[:, 2] += on * amp * np.sin(2 * np.pi * hz * t + ph)
    strikes = np.arange(t0 + rng.uniform(0, 1 / hz), t1, 1 / hz)
    for ts in strikes:
        tr.a_world[:, 2] += _pulse(t, ts, rng.uniform(0.03, 0.06), heel * rng.uniform(0.6, 1.3))
    tr.a_world[:, 0] += on * 0.4 * amp * np.sin(2 * np.pi * hz * t + ph + 1.0)
    tr.a_world[:, 1] += on * 0.25 * amp * np.sin(np.pi * hz * t + ph)
    tr.pitch += on * (rng.uniform(0.02, 0.12) + 0.03 * np.sin(2 * np.pi * hz * t))
    tr.roll += on * 0.04 * np.sin(np.pi * hz * t + ph)
    swing = arm * np.sin(np.pi * hz * t + ph)
    tr.arm_el += on * swing
    tr.a_arm[:, 0] += on * arm * 1.2 * (np.pi * hz) ** 2 * 0.35 / 9.81 * np.sin(np.pi * hz * t + ph)


def _fall(
    tr: _Track,
    rng: np.random.Generator,
    placement: str,
    t_start: float,
    dur: float,
    pitch1: float,
    roll1: float,
    drop: float,
    peak: float,
) -> float:
    """Topple to the floor: orientation change, partial free fall, impact; returns impact time."""
    t = tr.t
    t_imp = t_start + dur
    tr.pitch += _ramp_to(t, t_start, dur, 0.0, pitch1 - tr.pitch[t < t_start][-1:].sum(), 2.2)
    tr.roll += _ramp_to(t, t_start, dur, 0.0, roll1, 2.2)
    # descending: specific force falls towards `drop` g in the last part before the impact
    fall_in = _ramp_to(t, t_start + 0.3 * dur, 0.55 * dur, 0.0, 1.0) * (t < t_imp)
    tr.a_world[:, 2] += fall_in * (drop - 1.0)
    w = rng.uniform(0.05, 0.12)
    tr.a_world[:, 2] += _pulse(t, t_imp, w, peak)
    tr.a_world[:, 2] += _pulse(
        t, t_imp + w + rng.uniform(0.05, 0.15), w * 1.5, peak * rng.uniform(0.1, 0.35)
    )
    tr.a_world[:, :2] += _pulse(t, t_imp, w, peak * 0.4)[:, None] * rng.normal(0, 1, 2)
    if placement == "wrist":  # arms flail, then the hand meets the floor first, hard
        tr.arm_el += _ramp_to(t, t_start, dur, 0.0, rng.uniform(-1.5, 1.5), 1.5)
        tr.arm_tw += _ramp_to(t, t_start, dur, 0.0, rng.uniform(-1.5, 1.5), 1.5)
        hand = _pulse(
            t, t_imp - rng.uniform(0.0, 0.08), rng.uniform(0.02, 0.05), peak * rng.uniform(0.5, 1.2)
        )
        tr.a_arm += hand[:, None] * rng.normal(0, 1, 3) / np.sqrt(3)
    return t_imp


def _after(tr: _Track, rng: np.random.Generator, t0: float, moving: float) -> None:
    """Lying after the fall: breathing, and some movement (``moving`` in g) if conscious."""
    t = tr.t
    after = t >= t0
    tr.a_world[:, 2] += after * (
        0.004 * np.sin(2 * np.pi * 0.25 * t) + moving * _wobble(t, rng, 1.0, 0.8)
    )
    tr.pitch += after * moving * _wobble(t, rng, 0.6, 0.3)
    tr.arm_el += after * moving * _wobble(t, rng, 1.5, 0.4)


def _kind(
    kind: str, placement: str, rng: np.random.Generator, rate: float
) -> tuple[_Track, float | None]:
    """Script one activity; returns its track and the impact time (falls)."""
    u = rng.uniform
    elderly_gait = u(1.4, 2.0)
    arm_swing = u(0.15, 0.45)
    fall_peak = {"waist": u(2.2, 7.0), "pendant": u(2.0, 6.0), "wrist": u(2.5, 8.0)}[placement]
    if kind in ("fall_forward", "fall_backward", "fall_lateral"):
        walk = u(0, 1) < 0.5
        n = int(u(10, 14) * rate)
        tr = _new(n, rate)
        t_f = u(3.5, 5.0)
        if walk:
            _steps(tr, rng, 0.0, t_f + 0.3, elderly_gait, u(0.1, 0.3), u(0.3, 0.8), arm_swing)
        target = {
            "fall_forward": (u(1.3, 1.75), u(-0.3, 0.3)),
            "fall_backward": (-u(1.3, 1.75), u(-0.3, 0.3)),
            "fall_lateral": (u(-0.3, 0.3), float(rng.choice([-1, 1])) * u(1.2, 1.7)),
        }[kind]
        t_imp = _fall(
            tr, rng, placement, t_f, u(0.6, 1.1), target[0], target[1], u(0.25, 0.7), fall_peak
        )
        _after(tr, rng, t_imp + 0.4, u(0.0, 0.15) if u(0, 1) < 0.7 else u(0.15, 0.4))
        return tr, t_imp
    if kind == "fall_from_chair":
        n = int(u(10, 14) * rate)
        tr = _new(n, rate)
        tr.pitch += -u(0.2, 0.45)  # seated, leaning back
        t_f = u(3.5, 5.0)
        tgt = float(rng.choice([-1, 1])) * u(1.2, 1.7)
        lat = u(0, 1) < 0.4
        t_imp = _fall(
            tr,
            rng,
            placement,
            t_f,
            u(0.5, 0.9),
            0.0 if lat else tgt,
            tgt if lat else 0.0,
            u(0.3, 0.7),
            fall_peak * u(0.6, 1.0),
        )
        _after(tr, rng, t_imp + 0.4, u(0.0, 0.3))
        return tr, t_imp
    if kind == "slow_slide":  # slides off a chair onto the floor: slow turn, small bump
        n = int(u(12, 16) * rate)
        tr = _new(n, rate)
        tr.pitch += -u(0.2, 0.45)
        t_f = u(3.0, 4.0)
        t_imp = _fall(
            tr,
            rng,
            placement,
            t_f,
            u(1.5, 3.0),
            -u(1.2, 1.6),
            u(-0.5, 0.5),
            u(0.5, 0.8),
            u(1.0, 2.5) if placement != "wrist" else u(1.5, 3.5),
        )
        _after(tr, rng, t_imp + 0.4, u(0.0, 0.2))
        return tr, t_imp
    if kind == "fall_recover":  # fall, lie a while moving, then get up and walk off
        n = int(u(22, 30) * rate)
        tr = _new(n, rate)
        t_f = u(3.0, 4.0)
        sign = float(rng.choice([-1, 1]))
        t_imp = _fall(
            tr,
            rng,
            placement,
            t_f,
            u(0.6, 1.0),
            sign * u(1.3, 1.7),
            u(-0.3, 0.3),
            u(0.2, 0.6),
            fall_peak,
        )
        _after(tr, rng, t_imp + 0.4, u(0.1, 0.35))
        t_up = t_imp + u(4.0, 8.0)
        tr.pitch = np.where(
            tr.t > t_up,
            _ramp_to(tr.t, t_up, u(2.0, 4.0), tr.pitch[min(n - 1, int(t_up * rate))], 0.0),
            tr.pitch,
        )
        _steps(tr, rng, t_up + 4.0, tr.t[-1], elderly_gait, u(0.1, 0.25), u(0.2, 0.6), arm_swing)
        return tr, t_imp
    n = int(u(12, 25) * rate)
    tr = _new(n, rate)
    t = tr.t
    end = float(t[-1])
    if kind == "walking":
        _steps(
            tr,
            rng,
            u(0.5, 2.0),
            end - u(0.5, 2.0),
            elderly_gait,
            u(0.1, 0.35),
            u(0.3, 1.0),
            arm_swing,
        )
    elif kind == "running_for_bus":  # stance pulses peak pi/(2*duty) g so the mean stays 1 g
        hz, duty = u(2.4, 3.0), u(0.4, 0.6)
        t0, t1 = u(1.0, 3.0), end - u(2.0, 4.0)
        ph = np.mod((t - t0) * hz, 1.0)
        run = (t >= t0) & (t < t1)
        stance = np.where(ph < duty, np.pi / (2 * duty) * np.sin(np.pi * ph / duty), 0.0)
        tr.a_world[:, 2] += run * (stance - 1.0) + run * rng.normal(0, 0.08, n)
        tr.pitch += run * u(0.1, 0.3)
        tr.arm_el += run * (0.9 + u(0.4, 0.8) * np.sin(np.pi * hz * t))
        tr.a_arm[:, 0] += run * u(0.8, 2.0) * np.sin(np.pi * hz * t)
        _steps(tr, rng, t1, end, elderly_gait, 0.3, 0.6, arm_swing)
    elif kind == "stairs":
        down = u(0, 1) < 0.5
        _steps(
            tr,
            rng,
            1.0,
            end - 1.0,
            u(1.1, 1.6),
            u(0.2, 0.4),
            u(0.8, 1.5) if down else u(0.3, 0.7),
            arm_swing,
        )
    elif kind == "sit_down_hard":  # drops onto a low chair: dip, seat impact, leans back
        _steps(tr, rng, 0.0, 2.0, elderly_gait, 0.2, 0.5, arm_swing)
        t_s = u(3.0, 4.0)
        dur = u(0.5, 0.9)
        tr.pitch += _ramp_to(t, t_s - 0.6, 0.6, 0.0, u(0.3, 0.6)) - _ramp_to(
            t, t_s, dur, 0.0, u(0.5, 1.0)
        )
        tr.a_world[:, 2] += (_ramp_to(t, t_s, dur * 0.6, 0.0, 1.0) * (t < t_s + dur)) * (
            u(0.3, 0.7) - 1.0
        )
        tr.a_world[:, 2] += _pulse(t, t_s + dur, u(0.06, 0.12), u(1.0, 3.0))
        tr.arm_el += _ramp_to(t, t_s, dur, 0.0, u(0.5, 1.2))
        tr.a_world[:, 2] += _wobble(t, rng, 0.02, 0.5) * (t > t_s + dur + 0.5)
    elif kind == "lie_down_bed":  # sits on the edge, then lies back or on a side
        tr.pitch += -u(0.1, 0.3)
        t_l = u(3.0, 5.0)
        tr.pitch += _ramp_to(t, t_l, u(1.5, 3.0), 0.0, -u(1.2, 1.6))
        tr.roll += _ramp_to(t, t_l, u(1.5, 3.0), 0.0, u(-0.8, 0.8))
        tr.a_world[:, 2] += _pulse(t, t_l + u(1.5, 2.5), u(0.1, 0.2), u(0.2, 0.8))
        tr.arm_el += _ramp_to(t, t_l, 2.0, 0.0, u(-1.0, 1.5))
        tr.a_world[:, 2] += _wobble(t, rng, 0.02, 0.4) * (t > t_l + 3.5)
    elif kind == "clapping":
        hz = u(1.5, 3.5)
        t0, t1 = u(1.0, 3.0), end - u(1.0, 3.0)
        tr.arm_el += _ramp_to(t, t0 - 0.8, 0.8, 0.0, u(0.8, 1.4))
        tr.arm_tw += _ramp_to(t, t0 - 0.8, 0.8, 0.0, u(-1.2, 1.2))
        claps = np.arange(t0, t1, 1 / hz)
        on = ((t >= t0) & (t < t1)).astype(float)
        tr.a_arm[:, 1] += on * u(0.3, 1.0) * np.sin(2 * np.pi * hz * t)
        sharp = u(1.5, 6.0) if placement == "wrist" else u(0.05, 0.2)
        for tc in claps:
            tr.a_arm[:, 1] += _pulse(t, tc, u(0.015, 0.04), sharp * u(0.7, 1.2))
    elif kind == "waving":
        hz = u(1.5, 3.0)
        t0, t1 = u(1.0, 3.0), end - u(1.0, 3.0)
        on = _smooth(((t >= t0) & (t < t1)).astype(float), int(0.3 * rate))
        tr.arm_el += on * u(1.8, 2.6)
        amp = u(0.5, 1.1)
        tr.arm_tw += on * amp * np.sin(2 * np.pi * hz * t)
        if placement == "wrist":
            tr.a_arm[:, 1] += (
                on * amp * 0.1 * (2 * np.pi * hz) ** 2 / 9.81 * np.sin(2 * np.pi * hz * t)
            )
    elif kind == "typing":
        tr.pitch += u(0.0, 0.3)
        tr.arm_el += 1.2 + u(-0.2, 0.2)
        taps = np.sort(u(1.0, end - 1.0, int(u(5, 9) * end)))
        for tk in taps:
            tr.a_arm[:, 2] += _pulse(t, tk, 0.02, u(0.02, 0.2) if placement == "wrist" else 0.005)
    elif kind == "jumping":  # crouch, push-off, flight (|a| ~ 0), landing
        tj = u(2.0, 3.0)
        for _ in range(int(rng.integers(1, 5))):
            push, fly = u(0.2, 0.3), u(0.2, 0.38)
            tr.a_world[:, 2] += -0.3 * ((t > tj - 0.5) & (t < tj - push)) + _pulse(
                t, tj - push, push, u(0.8, 1.5)
            )
            tr.a_world[:, 2] += -0.97 * ((t >= tj) & (t < tj + fly))
            land = {"waist": u(2.0, 6.0), "pendant": u(2.0, 5.0), "wrist": u(1.5, 4.0)}[placement]
            tr.a_world[:, 2] += _pulse(t, tj + fly, u(0.05, 0.1), land)
            tr.arm_el += _pulse(t, tj - push, push + fly, u(0.5, 1.5))
            tj += fly + u(0.8, 2.0)
    elif kind == "bump_table":  # knocks the wrist on a table edge
        tr.arm_el += 1.2 + _wobble(t, rng, 0.3, 0.5)
        tb = u(3.0, end - 3.0)
        spike = u(2.0, 10.0) if placement == "wrist" else u(0.05, 0.3)
        tr.a_arm += (
            _pulse(t, tb, u(0.008, 0.025), spike)[:, None] * rng.normal(0, 1, 3) / np.sqrt(3)
        )
    elif kind == "drop_device":  # slips from the hand, tumbles, bounces, lies still on the floor
        off = (
            np.tile(np.array([0.0, 0.0, 1.0]), (n, 1))
            + rng.normal(0, 0.05, (n, 3)) * (t < 2.0)[:, None]
        )
        td, fly = u(2.0, 3.0), u(0.3, 0.45)
        rest = rng.normal(0, 1, 3)
        rest /= np.linalg.norm(rest)
        off[(t >= td) & (t < td + fly)] = rng.normal(0, 0.03, 3)
        after = t >= td + fly
        off[after] = rest
        imp = _pulse(t, td + fly, u(0.005, 0.02), u(8.0, 40.0))
        imp += _pulse(t, td + fly + u(0.1, 0.2), 0.01, u(1.0, 6.0))
        off += imp[:, None] * rest
        tr.off_body = off
    else:
        raise ValueError(f"unknown activity {kind!r}")
    return tr, None


def _sense(tr: _Track, placement: str, mount: Arr, rng: np.random.Generator, range_g: float) -> Arr:
    """Specific force in the device frame, with bias, noise, clipping and 1 mg rounding."""
    n = tr.t.size
    if tr.off_body is not None:
        f = tr.off_body
    else:
        f_world = tr.a_world + np.array([0.0, 0.0, 1.0])
        r_body = np.einsum("nij,njk->nik", _rot_y(tr.pitch), _rot_x(tr.roll))
        f = np.einsum("nji,nj->ni", r_body, f_world)
        if placement == "wrist":
            # the arm hangs from the shoulder: trunk jolts reach the wrist damped (~0.08 s)
            k = max(1, int(0.08 * tr.t.size / max(tr.t[-1], 1e-3)))
            f_damped = np.column_stack([_smooth(f[:, j], k) for j in range(3)])
            r_arm = np.einsum("nij,njk->nik", _rot_y(tr.arm_el), _rot_x(tr.arm_tw))
            f = np.einsum("nji,nj->ni", r_arm, f_damped) + tr.a_arm
        elif placement == "pendant":  # swings on its cord
            swing = 0.15 * _wobble(tr.t, rng, 1.0, 1.2) * (np.abs(tr.a_world).sum(1) > 0.05)
            f = np.einsum("nji,nj->ni", _rot_x(swing), f) + 0.3 * tr.a_arm
        else:
            f = f + 0.05 * tr.a_arm
        f = f @ mount
    f = f + rng.normal(0, 0.03, 3) + rng.normal(0, rng.uniform(0.005, 0.02), (n, 3))
    return np.asarray(np.round(np.clip(f, -range_g, range_g), 3), dtype=np.float64)


def segment(
    kind: str,
    placement: str,
    rng: np.random.Generator,
    rate: float = 50.0,
    range_g: float = 8.0,
    mount: Arr | None = None,
) -> Segment:
    """Generate one activity segment (10-30 s) of ``kind`` (see FALLS, ADLS) for a placement."""
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}")
    m = random_mount(placement, rng) if mount is None else mount
    tr, t_imp = _kind(kind, placement, rng, rate)
    return Segment(
        kind, placement, rate, _sense(tr, placement, m, rng, range_g), kind in FALLS, t_imp
    )


def quiet(
    duration_s: float,
    placement: str,
    rng: np.random.Generator,
    rate: float = 50.0,
    mount: Arr | None = None,
) -> Arr:
    """Cheap background wear: gravity in a slowly drifting posture plus sensor noise."""
    n = max(1, int(duration_s * rate))
    m = random_mount(placement, rng) if mount is None else mount
    tilt = rng.uniform(-0.3, 0.3, 2) + (np.array([1.2, 0.0]) if placement == "wrist" else 0.0)
    g = _rot_y(tilt[:1])[0] @ _rot_x(tilt[1:])[0]
    base = (g.T @ np.array([0.0, 0.0, 1.0])) @ m
    drift = np.linspace(0.0, 1.0, n)[:, None] * rng.normal(0, 0.02, 3)
    return np.asarray(np.round(base + drift + rng.normal(0, 0.008, (n, 3)), 3), dtype=np.float64)


# Daily counts of each activity for an older person living at home (rough, from activity
# studies: many sit-downs and short walks, few vigorous events).
DAILY_RATE: dict[str, float] = {
    "walking": 40.0,
    "sit_down_hard": 6.0,
    "stairs": 4.0,
    "lie_down_bed": 3.0,
    "clapping": 1.0,
    "waving": 3.0,
    "typing": 2.0,
    "running_for_bus": 0.2,
    "jumping": 0.1,
    "bump_table": 2.0,
    "drop_device": 0.1,
}


@dataclass(frozen=True)
class Placed:
    """A segment placed at ``start_s`` seconds into the day."""

    start_s: float
    segment: Segment


def day(
    rng: np.random.Generator,
    placement: str,
    falls: int = 1,
    hours: float = 24.0,
    rate: float = 50.0,
    range_g: float = 8.0,
    rates: dict[str, float] | None = None,
) -> list[Placed]:
    """One resident-day of activity segments (Poisson counts per DAILY_RATE) plus ``falls``.

    Only the segments are generated; the gaps between them are the caller's (quiet wear or no
    accel at all), so a whole fleet-day stays cheap.
    """
    mount = random_mount(placement, rng)
    kinds: list[str] = []
    for k, lam in (rates or DAILY_RATE).items():
        kinds += [k] * int(rng.poisson(lam * hours / 24.0))
    kinds += list(rng.choice(np.array(FALLS), size=falls)) if falls else []
    order = rng.permutation(len(kinds))
    slot = hours * 3600.0 / max(1, len(kinds))
    out = []
    for j, i in enumerate(order):
        s = segment(str(kinds[i]), placement, rng, rate, range_g, mount)
        start = j * slot + rng.uniform(0, max(0.0, slot - s.g.shape[0] / rate - 60.0))
        out.append(Placed(float(start), s))
    return sorted(out, key=lambda p: p.start_s)
