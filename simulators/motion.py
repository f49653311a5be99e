"""Generated accelerometer signals (units of g, device frame) for falls and daily activities.

Why a body model rather than templates: the sensor reads the specific force ``R^T (a + g up)``,
so gravity, orientation and movement interact the way they do in recordings (a tilted trunk
moves gravity to other axes, a fall's descent pulls |a| below 1 g, an impact pushes along the
floor's normal). Each activity scripts a trunk orientation (pitch/roll), the world acceleration
of the sensor's body point (hip, sternum or hand) and, for the wrist, an arm orientation and
hand-only accelerations; per-person and per-trial parameters are drawn from ``rng``.

Why kinematics first: every movement is built from position courses (exact second differences)
or from velocity changes with known integrals, so the vertical acceleration integrates to a
rest-to-rest motion of the right size (:func:`kinematics` shows it). Figures used:
- sitting down hard on a low chair lowers the hip 0.40-0.50 m, peak downward speed 0.9-1.45
  m/s, the seat stopping the rest (Bourke et al. 2008: ADLs stay under ~1.3 m/s);
- a fall from standing drops the hip 0.70-0.90 m (sternum 0.9-1.1, hand 0.6-0.85) and hits the
  floor at 0.45-0.85 of the free-fall speed, about 1.7-3.6 m/s at the hip, never faster than
  free fall (Choi et al. 2015, 25 filmed falls in care homes: pelvis 2.1 +- 0.6, hand
  2.9 +- 1.6 m/s, descent 0.58 +- 0.26 s; 21 of 25 with a hand impact);
- an impact is a main contact 60-160 ms wide at the hip, 10-40 ms at the hand (sharper and,
  unless clipped, larger), rebounds of decreasing size (restitution 0.1-0.3), other body parts
  landing in sequence, and often movement seconds later (Kangas et al. 2008; Klenk et al.
  2011: real falls vary more and have higher jerk than simulated ones).
A worn device is never still: physiological tremor (wrist 0.005-0.02 g, 6-11 Hz), breathing,
slow orientation drift and occasional small gestures. Sensor: physics at >= 200 Hz averaged
down to the output rate, 20-200 Hz (the sensor's own low-pass), a per-device gain, bias and
noise (0.003-0.01 g rms, derived from the device's mount so they stay the same for the device),
per-axis clipping at the range and 1 mg rounding. Deterministic for a given generator.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[np.float64]
G = 9.80665  # m/s^2 per g
PHYS_HZ = 200.0  # physics rate: impacts of 10-40 ms need several samples
RATE_RANGE = (20.0, 200.0)

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
    "busy_hands",
)
KINDS = FALLS + ADLS
PLACEMENTS = ("wrist", "waist", "pendant")

# Height (m) the sensor's body point loses falling from standing / from a seat to the floor.
_DROP_M = {
    "waist": ((0.70, 0.90), (0.30, 0.42)),
    "pendant": ((0.90, 1.10), (0.55, 0.75)),
    "wrist": ((0.60, 0.85), (0.40, 0.60)),
}
_CONTACT_S = {"waist": (0.06, 0.16), "pendant": (0.05, 0.14), "wrist": (0.01, 0.04)}
_TREMOR_SHARE = {"wrist": 1.0, "waist": 0.12, "pendant": 0.2}  # of the wrist's tremor
_BREATH_RAD = {"wrist": (0.002, 0.006), "waist": (0.004, 0.012), "pendant": (0.01, 0.03)}


@dataclass(frozen=True)
class Segment:
    """One generated recording: ``g`` is N x 3 in g at ``rate`` Hz from t = 0."""

    kind: str
    placement: str
    rate: float
    g: Arr
    is_fall: bool
    impact_s: float | None  # first floor contact of the body from the start (falls only)
    noise_g: float = 0.005  # the device's white noise (rms g), to continue the recording


@dataclass(frozen=True)
class Kinematics:
    """Vertical motion of the sensor's body point (world frame, gravity excluded)."""

    t: Arr
    a: Arr  # m/s^2, up positive
    v: Arr  # m/s
    z: Arr  # m, from the start
    impact_s: float | None


@dataclass(frozen=True)
class _Device:
    """Fixed properties of one device and its wearer."""

    noise_g: float
    bias: Arr
    gain: Arr
    tremor_g: float  # wrist tremor (rms g) of the wearer


@dataclass(frozen=True)
class _Ctx:
    placement: str
    rate: float  # physics rate (Hz)
    k: int  # physics samples per output sample
    dev: _Device


@dataclass
class _Track:
    """Time courses that make up one segment (all N long, at the physics rate)."""

    t: Arr
    rate: float
    pitch: Arr  # trunk pitch (rad), + forward
    roll: Arr  # trunk roll (rad), + to the left
    a_world: Arr  # N x 3 (g) acceleration of the sensor's own body point, z up
    a_trunk: Arr  # N x 3 (g) trunk motion; reaches the wrist damped through the arm
    arm_el: Arr  # wrist: forearm elevation (rad) relative to the trunk
    arm_tw: Arr  # wrist: forearm twist (rad)
    a_arm: Arr  # N x 3 (g) hand-only acceleration in the device frame (wrist, pendant swing)
    off_body: Arr | None = None  # N x 3 specific force of a device not worn (drop), else None

    @property
    def end(self) -> float:
        return float(self.t[-1])


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


def _device(mount: Arr) -> _Device:
    """Gain, bias and noise belong to the device: derived from its mount, so every segment and
    every quiet chunk of one device agree without the callers carrying more state."""
    return _device_from(zlib.crc32(np.round(mount, 9).tobytes()))


@functools.lru_cache(maxsize=4096)
def _device_from(seed: int) -> _Device:
    r = np.random.default_rng(seed)
    return _Device(
        noise_g=float(r.uniform(0.003, 0.01)),
        bias=np.clip(r.normal(0.0, 0.01, 3), -0.025, 0.025),
        gain=1.0 + np.clip(r.normal(0.0, 0.01, 3), -0.025, 0.025),
        tremor_g=float(r.uniform(0.005, 0.02)),
    )


def _ctx(placement: str, rate: float, dev: _Device, oversample: bool = True) -> _Ctx:
    if placement not in PLACEMENTS:
        raise ValueError(f"unknown placement {placement!r}")
    if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
        raise ValueError(f"rate {rate} Hz outside {RATE_RANGE}")
    k = max(1, int(np.ceil(PHYS_HZ / rate - 1e-9))) if oversample else 1
    return _Ctx(placement, rate * k, k, dev)


def _track(c: _Ctx, dur_s: float) -> _Track:
    n = max(1, int(dur_s * c.rate / c.k)) * c.k
    z = np.zeros(n)
    return _Track(
        np.arange(n) / c.rate,
        c.rate,
        z.copy(),
        z.copy(),
        np.zeros((n, 3)),
        np.zeros((n, 3)),
        z - 1.2,
        z.copy(),
        np.zeros((n, 3)),
    )


# -- motion primitives: each one starts and ends at rest (or hands over an exact velocity) ----


def _mj(u: Arr) -> Arr:
    """Minimum-jerk step 0 -> 1: zero velocity and acceleration at both ends."""
    u = np.clip(u, 0.0, 1.0)
    return np.asarray(u**3 * (10.0 - 15.0 * u + 6.0 * u**2))


def _env(t: Arr, t0: float, t1: float, ramp: float) -> Arr:
    """1 inside [t0, t1], minimum-jerk edges of ``ramp`` s, 0 outside."""
    return _mj((t - t0) / ramp) * _mj((t1 - t) / ramp)


def _ramp_to(t: Arr, t0: float, dur: float, a: float, b: float, power: float = 1.0) -> Arr:
    """a before t0, b after t0+dur, eased in between (power > 1: accelerating like a topple)."""
    u = np.clip((t - t0) / max(dur, 1e-3), 0.0, 1.0)
    e = u**power if power != 1.0 else 0.5 - 0.5 * np.cos(np.pi * u)
    return np.asarray(a + (b - a) * e)


def _idx(tr: _Track, t: float) -> int:
    return int(np.ceil(t * tr.rate - 1e-9))


def _from_pos(col: Arr, tr: _Track, t0: float, t1: float, fn: Callable[[Arr], Arr]) -> None:
    """Add the acceleration (g) of the position course ``fn`` (m), held outside [t0, t1].

    An exact second difference: the summed velocity and position are exactly those of ``fn``.
    """
    n = tr.t.size
    j0, j1 = max(0, int(np.floor(t0 * tr.rate)) - 2), min(n, int(np.ceil(t1 * tr.rate)) + 3)
    if j1 - j0 < 3:
        return
    p = fn(np.clip(tr.t[j0:j1], t0, t1))
    col[j0 + 1 : j1 - 1] += np.diff(p, 2) * tr.rate**2 / G


def _move(col: Arr, tr: _Track, t0: float, dur: float, dz: float) -> None:
    """Rest-to-rest displacement ``dz`` (m) in ``dur`` s (peak speed 1.875 dz/dur)."""
    _from_pos(col, tr, t0, t0 + dur, lambda t: dz * _mj((t - t0) / dur))


def _excursion(col: Arr, tr: _Track, t0: float, dur: float, dz: float) -> None:
    """Out by ``dz`` (m) and back in ``dur`` s: a gesture, a push-up attempt."""

    def pos(t: Arr) -> Arr:
        u = np.clip((t - t0) / dur, 0.0, 1.0)
        return np.asarray(dz * 64.0 * (u * (1.0 - u)) ** 3)

    _from_pos(col, tr, t0, t0 + dur, pos)


def _blips(col: Arr, tr: _Track, tc: Arr, sigma: Arr, peak_g: Arr) -> None:
    """Jolts with ``peak_g`` at times ``tc`` and no net velocity or displacement (brief
    compressions: heel strikes, a body part landing elsewhere, taps); one call for many.
    Each Gaussian dip of position is evaluated on its own +-4 sigma only."""
    if tc.size == 0:
        return
    half = int(np.ceil(4 * float(sigma.max()) * tr.rate)) + 1
    idx = np.round(tc * tr.rate).astype(np.int64)[:, None] + np.arange(-half, half + 1)
    dip = -(peak_g * G * sigma**2)[:, None] * np.exp(
        -0.5 * ((idx / tr.rate - tc[:, None]) / sigma[:, None]) ** 2
    )
    j0, j1 = max(0, int(idx.min()) - 2), min(tr.t.size, int(idx.max()) + 3)
    keep = (idx >= j0) & (idx < j1)
    pos = np.zeros(j1 - j0)
    np.add.at(pos, idx[keep] - j0, dip[keep])
    if pos.size >= 3:
        col[j0 + 1 : j1 - 1] += np.diff(pos, 2) * tr.rate**2 / G


def _blip(col: Arr, tr: _Track, tc: float, sigma: float, peak_g: float) -> None:
    """One jolt (see :func:`_blips`)."""
    _blips(col, tr, np.array([tc]), np.array([sigma]), np.array([peak_g]))


def _dv(
    col: Arr, tr: _Track, t0: float, dur: float, dv: float, shape: str = "sine", p: float = 1.0
) -> None:
    """Add an acceleration on [t0, t0+dur) whose samples change the velocity by exactly ``dv``
    (m/s): ``sine`` an impact, ``hann`` a smooth push, ``flat`` constant, ``rise`` u**p (a
    topple accelerating towards the floor)."""
    i0, i1 = max(0, _idx(tr, t0)), min(tr.t.size, _idx(tr, t0 + dur))
    if i1 <= i0:
        i = min(tr.t.size - 1, max(0, round(t0 * tr.rate)))
        col[i] += dv * tr.rate / G
        return
    u = np.clip((tr.t[i0:i1] - t0 + 0.5 / tr.rate) / max(dur, 1e-9), 0.0, 1.0)  # mid-sample
    w = {
        "sine": lambda: np.sin(np.pi * u),
        "hann": lambda: 1.0 - np.cos(2 * np.pi * u),
        "flat": lambda: np.ones_like(u),
        "rise": lambda: u**p,
    }[shape]()
    if float(w.sum()) < 1e-6:  # a window of a sample or two
        w = np.ones_like(u)
    col[i0:i1] += w * (dv * tr.rate / G / float(w.sum()))


def _height(col: Arr, tr: _Track, t: float) -> float:
    """Displacement (m) at ``t`` of the motion in ``col`` so far."""
    i = min(tr.t.size, _idx(tr, t))
    return float(np.cumsum(col[:i] * G / tr.rate).sum() / tr.rate)


def _contact(
    col: Arr, tr: _Track, t0: float, v: float, w: float, e: float, f_unload: float
) -> list[float]:
    """Hitting a surface at ``v`` m/s: a main contact of ``w`` s, then rebounds leaving at ``e``
    times the speed they came in with (partly unloaded, specific force ``f_unload`` g, until
    they come back down); the velocity ends at exactly 0. Returns the contact times."""
    times: list[float] = []
    t = t0
    while True:
        times.append(t)
        out = e * v if e * v >= 0.06 else 0.0
        _dv(col, tr, t, w, v + out, "sine")
        if out == 0.0:
            return times
        t += w
        air = 2.0 * out / ((1.0 - f_unload) * G)
        _dv(col, tr, t, air, -2.0 * out, "flat")
        t += air
        v, w = out, w * 0.75


def _drop(
    col: Arr,
    tr: _Track,
    t0: float,
    drop: float,
    speed: float,
    w: float,
    e: float,
    power: float,
    pre: float = 0.0,
    pre_lead: float = 0.1,
) -> tuple[float, float]:
    """Fall ``drop`` m from rest, accelerating (u**power) to ``speed`` at the floor, never
    faster than free fall, then the contacts; knees or hands landing ``pre_lead`` s earlier
    may take a share ``pre`` of the speed first. Returns (contact time, speed)."""
    d = max(0.05, drop - speed * w / np.pi)  # the last part is the compression on contact
    r = 0.95 * G * d / speed**2  # (p+1)/(p+2) must stay under r: at most 0.95 g downwards
    if r <= 0.55:
        speed = float(np.sqrt(0.95 * G * d / 0.55))
        r = 0.55
    p = max(0.0, min(power, (2 * r - 1) / (1 - r) if r < 1 else power))
    dur = d * (p + 2) / speed
    h0 = _height(col, tr, t0)
    _dv(col, tr, t0, dur, -speed, "rise", p)
    if pre > 0.0:
        _dv(col, tr, t0 + dur - pre_lead, min(0.05, pre_lead), pre * speed, "sine")
    times = _contact(col, tr, t0 + dur, (1.0 - pre) * speed, w, e, 0.2 + 0.4 * e / 0.3)
    t_end = times[-1] + w
    _move(col, tr, t_end, 0.3, -drop - (_height(col, tr, t_end) - h0))  # settles on the floor
    return t0 + dur, speed


def _lower(
    col: Arr,
    tr: _Track,
    t0: float,
    drop: float,
    v_pk: float,
    v_c: float,
    a_acc_g: float,
    w: float,
    e: float,
) -> float:
    """Controlled lowering by ``drop`` m (onto a seat, a mattress): speed up to ``v_pk`` at
    ``a_acc_g`` peak, the legs brake to ``v_c``, the surface stops the rest. Returns contact."""
    d_c = v_c * w / np.pi
    if v_pk**2 / (a_acc_g * G) > 0.65 * (drop - d_c):  # keep a third of the way for braking
        v_pk = float(np.sqrt(0.65 * (drop - d_c) * a_acc_g * G))
        v_c = min(v_c, 0.8 * v_pk)
        d_c = v_c * w / np.pi
    t_acc = 2 * v_pk / (a_acc_g * G)
    t_brake = 2 * (drop - d_c - v_pk * t_acc / 2) / (v_pk + v_c)
    _dv(col, tr, t0, t_acc, -v_pk, "hann")
    _dv(col, tr, t0 + t_acc, t_brake, v_pk - v_c, "hann")
    t_c = t0 + t_acc + t_brake
    _contact(col, tr, t_c, v_c, w, e, 0.5)
    return t_c


def _periodic(a_cycle: Arr) -> Arr:
    """Position over one unit-period cycle whose acceleration is ``a_cycle`` (mean removed),
    closed for interpolation: multiply by amplitude / frequency**2."""
    m = a_cycle.size
    v = np.cumsum(a_cycle - a_cycle.mean()) / m
    z = np.cumsum(v - v.mean()) / m
    z -= z.mean()
    return np.append(z, z[0])


def _cyclic(
    col: Arr, tr: _Track, t0: float, t1: float, hz: float, cycle: Arr, scale: float, ramp: float
) -> None:
    """A repeated movement (``cycle`` from :func:`_periodic`, times ``scale`` m) faded in and
    out over ``ramp`` s, so it starts and ends at rest."""
    m = cycle.size - 1

    def pos(t: Arr) -> Arr:
        ph = np.mod((t - t0) * hz, 1.0) * m
        return np.asarray(_env(t, t0, t1, ramp) * scale * np.interp(ph, np.arange(m + 1), cycle))

    _from_pos(col, tr, t0, t1, pos)


def _unit(v: Arr) -> Arr:
    return np.asarray(v / max(float(np.linalg.norm(v)), 1e-9))


# -- wear at rest -------------------------------------------------------------------------------


def _tremor(t: Arr, rng: np.random.Generator, rms_g: float) -> Arr:
    """Physiological tremor: narrow-band 6-11 Hz, waxing and waning, random directions."""
    f, ph = rng.uniform(6.0, 11.0, 3), rng.uniform(0, 2 * np.pi, 3)
    dirs = rng.normal(size=(3, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    wax = 1.0 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6.3))
    waves = np.sin(2 * np.pi * t[:, None] * f + ph) * (wax * rms_g * np.sqrt(2.0 / 3.0))[:, None]
    return np.asarray(waves @ dirs)


def _worn(tr: _Track, rng: np.random.Generator, c: _Ctx) -> None:
    """A worn device is never still: breathing and slow drift of the orientation (the tremor
    is added by :func:`_sense`, at the output rate: it is far below it; these slow courses are
    computed at the output rate too)."""
    t = tr.t[:: c.k]

    def slow(amp: float, lo: float, hi: float) -> Arr:
        x = amp * np.sin(2 * np.pi * rng.uniform(lo, hi) * t + rng.uniform(0, 6.3))
        return np.repeat(x, c.k)[: tr.t.size]

    tr.pitch += slow(rng.uniform(*_BREATH_RAD[c.placement]), 0.2, 0.33)
    drift = 0.03 if c.placement != "wrist" else 0.08
    for ang in (tr.pitch, tr.roll) if c.placement != "wrist" else (tr.arm_el, tr.arm_tw):
        ang += slow(drift * rng.uniform(0.3, 1.0), 1 / 120, 1 / 20)


def _gestures(
    tr: _Track, rng: np.random.Generator, c: _Ctx, t0: float, t1: float, per_s: float
) -> None:
    """Occasional small movements while resting: reaching, scratching, shifting the posture."""
    u = rng.uniform
    for _ in range(int(rng.poisson(max(0.0, per_s * (t1 - t0))))):
        tg, dur = u(t0, max(t0, t1 - 1.5)), u(0.6, 1.5)
        keep = rng.random() < 0.5
        if c.placement == "wrist":  # 2-6 cm: peaks of 0.05-0.4 g
            d = _unit(rng.normal(size=3)) * u(0.02, 0.06)
            for j in range(3):
                _excursion(tr.a_arm[:, j], tr, tg, dur, float(d[j]))
            for ang in (tr.arm_el, tr.arm_tw):
                delta = rng.normal(0.0, 0.2)
                ang += _ramp_to(tr.t, tg, dur / 2, 0.0, delta)
                if not keep:
                    ang -= _ramp_to(tr.t, tg + dur / 2, dur / 2, 0.0, delta)
        else:
            _excursion(tr.a_trunk[:, int(rng.integers(3))], tr, tg, dur, u(-0.03, 0.03))
            tr.pitch += _ramp_to(tr.t, tg, dur, 0.0, rng.normal(0.0, 0.04))


# -- activities ---------------------------------------------------------------------------------


def _gait(
    tr: _Track,
    rng: np.random.Generator,
    t0: float,
    t1: float,
    hz: float,
    bounce_g: float,
    heel_g: float,
    arm: float,
    speed: float = 0.8,
) -> None:
    """Walking between t0 and t1 (steps at ``hz``): vertical bounce, heel strikes, sway, forward
    speed up and down, a slight lean and (wrist) arm swing; starts and ends at rest."""
    if t1 - t0 < 1.5:
        return
    u = rng.uniform
    ph, w = u(0, 2 * np.pi), 2 * np.pi * hz
    ramp = min(0.8, (t1 - t0) / 3)
    on = _env(tr.t, t0, t1, ramp)
    bounce = bounce_g * G / w**2  # m: the trunk rises and falls 1-4 cm a step

    def wave(amp: float, f: float, shift: float) -> Callable[[Arr], Arr]:
        return lambda t: amp * _env(t, t0, t1, ramp) * np.sin(f * t + ph + shift)

    _from_pos(tr.a_trunk[:, 2], tr, t0, t1, wave(bounce, w, 0.0))
    _from_pos(tr.a_trunk[:, 0], tr, t0, t1, wave(0.4 * bounce, w, 1.0))
    _from_pos(tr.a_trunk[:, 1], tr, t0, t1, wave(u(0.01, 0.025), w / 2, 0.0))
    _dv(tr.a_trunk[:, 0], tr, t0, ramp * 1.5, speed, "hann")
    _dv(tr.a_trunk[:, 0], tr, t1 - ramp * 1.5, ramp * 1.5, -speed, "hann")
    heels = np.arange(t0 + ramp / 2 + u(0, 1 / hz), t1 - ramp / 2, 1 / hz)
    peak, sig = heel_g * u(0.6, 1.3, heels.size), u(0.012, 0.025, heels.size)
    _blips(tr.a_trunk[:, 2], tr, heels, sig, peak)
    _blips(tr.a_trunk[:, 0], tr, heels, sig, -0.3 * peak)
    tr.pitch += on * (u(0.02, 0.12) + 0.03 * np.sin(w * tr.t))
    tr.roll += on * 0.04 * np.sin(w / 2 * tr.t + ph)
    tr.arm_el += on * arm * np.sin(w / 2 * tr.t + ph)
    tr.a_arm[:, 0] -= on * 0.5 * arm * (w / 2) ** 2 / G * np.sin(w / 2 * tr.t + ph)


def _person(rng: np.random.Generator) -> tuple[float, float]:
    """Step frequency (Hz) and arm swing (rad) of an older walker."""
    return float(rng.uniform(1.4, 2.0)), float(rng.uniform(0.15, 0.45))


def _parts(tr: _Track, rng: np.random.Generator, placement: str, t_hit: float) -> None:
    """Other body parts landing after the sensor's (shoulders, head, limbs): jolts carried
    through the body, no net momentum of their own."""
    u = rng.uniform
    seq = {
        "waist": [(u(0.08, 0.3), u(0.3, 1.2), 1.0)],
        "pendant": [(u(0.1, 0.4), u(0.2, 0.8), 1.0)],
        "wrist": [(u(0.1, 0.3), u(0.2, 0.8), 1.0)],
    }[placement] + [(u(0.25, 0.6), u(0.1, 0.5), 0.7)]
    for dt, peak, chance in seq:
        if rng.random() < chance:
            sig = u(0.015, 0.04)
            _blip(tr.a_trunk[:, 2], tr, t_hit + dt, sig, peak)
            for j in (0, 1):
                _blip(tr.a_trunk[:, j], tr, t_hit + dt, sig, peak * rng.normal(0.0, 0.4))


def _fall(
    tr: _Track,
    rng: np.random.Generator,
    c: _Ctx,
    t_f: float,
    seated: bool,
    pitch1: float,
    roll1: float,
) -> float:
    """Topple from standing or a seat to the floor; returns the first floor contact.

    The sensor's body point falls ``_DROP_M`` accelerating to 0.45-0.85 of the free-fall speed,
    moves 0.4-1.2 m/s horizontally the way the body tips (friction takes it on contact), hits
    (often just after knees or hands took a share), rebounds; the rest of the body follows.
    At the wrist the hand usually lands first (80 %), else it follows the trunk more slowly.
    """
    u, p = rng.uniform, c.placement
    drop = u(*_DROP_M[p][int(seated)])
    speed = u(0.45, 0.8 if seated else 0.85) * np.sqrt(2 * G * drop)
    hand_first = p == "wrist" and rng.random() < 0.8
    lag = -u(0.03, 0.15) if hand_first else u(0.05, 0.3)  # hand contact minus trunk contact
    if p == "wrist" and not hand_first:
        speed *= u(0.5, 0.8)
    first = rng.random() < {"waist": 0.5, "pendant": 0.7, "wrist": 0.0}[p]  # knees, hands
    t_hit, _ = _drop(
        tr.a_world[:, 2],
        tr,
        t_f,
        drop,
        speed,
        u(*_CONTACT_S[p]),
        u(0.1, 0.3),
        u(0.3, 2.0),
        u(0.1, 0.3) if first else 0.0,
        u(0.05, 0.2),
    )
    heading = _unit(np.array([np.sin(pitch1), -np.sin(roll1)]) + rng.normal(0, 0.2, 2))
    v_h, w_h = u(0.4, 1.2), u(0.1, 0.25)
    for j in (0, 1):
        _dv(tr.a_world[:, j], tr, t_f, t_hit - t_f, v_h * heading[j], "rise", 1.0)
        _dv(tr.a_world[:, j], tr, t_hit, w_h, -v_h * heading[j], "sine")
    t_body = t_hit - lag if p == "wrist" else t_hit
    if p == "wrist":  # the trunk lands too: carried up the arm
        _blip(tr.a_trunk[:, 2], tr, t_body, u(0.02, 0.04), u(0.5, 2.0))
    _parts(tr, rng, p, t_body)
    lead = u(0.2, 0.5)  # imbalance before the descent
    before = float(tr.pitch[max(0, _idx(tr, t_f - lead) - 1)])
    tr.pitch += _ramp_to(tr.t, t_f - lead, t_hit - t_f + lead, 0.0, pitch1 - before, 2.2)
    tr.roll += _ramp_to(tr.t, t_f - lead, t_hit - t_f + lead, 0.0, roll1, 2.2)
    if p == "wrist":  # arms flail and reach out
        tr.arm_el += _ramp_to(tr.t, t_f - lead, t_hit - t_f + lead, 0.0, u(-1.5, 1.5), 1.5)
        tr.arm_tw += _ramp_to(tr.t, t_f - lead, t_hit - t_f + lead, 0.0, u(-1.5, 1.5), 1.5)
    return min(t_hit, t_body)


def _lying(
    tr: _Track,
    rng: np.random.Generator,
    c: _Ctx,
    t0: float,
    active: float,
    t1: float | None = None,
) -> None:
    """On the floor after a fall (until ``t1``): still, or (``active`` 0..1) moving a limb,
    rolling, trying to push up a few seconds later."""
    u = rng.uniform
    end = tr.end if t1 is None else t1
    _gestures(tr, rng, c, t0 + 1.0, end, 0.3 * active)
    t = t0 + u(1.0, 4.0)
    while rng.random() < active and t < end - 2.5:
        dur = u(0.8, 2.0)
        move = rng.integers(3)
        if move == 0:  # rolls part way
            tr.roll += _ramp_to(tr.t, t, dur, 0.0, u(-1.0, 1.0))
            _excursion(tr.a_trunk[:, 2], tr, t, dur, u(0.03, 0.1))
        elif move == 1:  # tries to push up (towards upright), sinks back
            dur += 0.5
            lift = -u(0.2, 0.5) if tr.pitch[_idx(tr, t) - 1] > 0 else u(0.2, 0.5)
            tr.pitch += _ramp_to(tr.t, t, dur / 2, 0.0, lift)
            tr.pitch -= _ramp_to(tr.t, t + dur / 2, dur / 2, 0.0, lift)
            _excursion(tr.a_trunk[:, 2], tr, t, dur, u(0.1, 0.3))
        else:  # moves an arm
            tr.arm_el += _ramp_to(tr.t, t, dur, 0.0, u(-1.0, 1.0))
            for j in range(3):
                _excursion(tr.a_arm[:, j], tr, t, dur, u(-0.15, 0.15))
        t += dur + u(0.5, 3.0)


def _fall_standing(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    u = rng.uniform
    tr = _track(c, u(10, 14))
    t_f = u(3.0, 4.5)
    if rng.random() < 0.5:  # tripping while walking
        hz, arm = _person(rng)
        _gait(tr, rng, 0.2, t_f + 0.2, hz, u(0.1, 0.3), u(0.3, 0.8), arm)
    pitch1, roll1 = {
        "fall_forward": (u(1.3, 1.75), u(-0.3, 0.3)),
        "fall_backward": (-u(1.3, 1.75), u(-0.3, 0.3)),
        "fall_lateral": (u(-0.3, 0.3), float(rng.choice([-1, 1])) * u(1.2, 1.7)),
    }[kind]
    t_imp = _fall(tr, rng, c, t_f, False, pitch1, roll1)
    _lying(tr, rng, c, t_imp + 0.5, u(0.0, 0.3) if rng.random() < 0.7 else u(0.3, 1.0))
    return tr, t_imp


def _fall_from_chair(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    u = rng.uniform
    tr = _track(c, u(10, 14))
    tr.pitch += -u(0.2, 0.45)  # seated, leaning back
    tgt = float(rng.choice([-1, 1])) * u(1.2, 1.7)
    lat = rng.random() < 0.4
    t_imp = _fall(tr, rng, c, u(3.5, 5.0), True, 0.0 if lat else tgt, tgt if lat else 0.0)
    _lying(tr, rng, c, t_imp + 0.5, u(0.0, 0.6))
    return tr, t_imp


def _slow_slide(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Slides off a chair: a slow lowering, then the buttocks leave the seat edge and drop the
    last 3-12 cm (a soft bump or a thump); the trunk ends reclined on the floor."""
    u = rng.uniform
    tr = _track(c, u(12, 16))
    tr.pitch += -u(0.2, 0.45)
    t_f, slide = u(3.0, 4.0), u(1.2, 2.5)
    drop = u(*_DROP_M[c.placement][1])
    last = u(0.03, 0.12)
    z = tr.a_world[:, 2]
    _move(z, tr, t_f, slide, -(drop - last))
    t_imp, _ = _drop(
        z,
        tr,
        t_f + slide,
        last,
        u(0.3, 0.8) * np.sqrt(2 * G * last),
        u(0.05, 0.12),
        u(0.05, 0.2),
        1.0,
    )
    tr.pitch += _ramp_to(tr.t, t_f, t_imp - t_f, 0.0, -u(1.2, 1.6) - float(tr.pitch[0]))
    tr.roll += _ramp_to(tr.t, t_f, t_imp - t_f, 0.0, u(-0.5, 0.5))
    if c.placement == "wrist":
        tr.arm_el += _ramp_to(tr.t, t_f, t_imp - t_f, 0.0, u(-1.0, 1.0))
    _lying(tr, rng, c, t_imp + 0.5, u(0.0, 0.4))
    return tr, t_imp


def _fall_recover(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Falls, lies a while moving, gets onto hands and knees, stands up and walks off: the
    body point climbs back the height it fell."""
    u = rng.uniform
    t_f, lie = u(3.0, 4.0), u(4.0, 8.0)
    kneel, pause, stand = u(1.5, 2.5), u(0.5, 1.5), u(1.5, 3.0)
    tr = _track(c, t_f + 1.5 + lie + kneel + pause + stand + u(5.0, 9.0))
    sign = float(rng.choice([-1, 1]))
    t_imp = _fall(tr, rng, c, t_f, False, sign * u(1.3, 1.7), u(-0.3, 0.3))
    t_up = t_imp + lie
    _lying(tr, rng, c, t_imp + 0.5, u(0.3, 0.8), t_up - 0.3)
    fallen = -_height(tr.a_world[:, 2], tr, t_up) - _height(tr.a_trunk[:, 2], tr, t_up)
    share = u(0.45, 0.6)
    _move(tr.a_trunk[:, 2], tr, t_up, kneel, share * fallen)
    _move(tr.a_trunk[:, 2], tr, t_up + kneel + pause, stand, (1 - share) * fallen)
    now = float(tr.pitch[_idx(tr, t_up) - 1])
    tr.pitch += _ramp_to(tr.t, t_up, kneel, 0.0, u(0.8, 1.2) - now)
    tr.pitch += _ramp_to(tr.t, t_up + kneel + pause, stand, 0.0, -u(0.8, 1.2))
    tr.roll -= _ramp_to(tr.t, t_up, kneel, 0.0, float(tr.roll[_idx(tr, t_up) - 1]))
    hz, arm = _person(rng)
    _gait(
        tr,
        rng,
        t_up + kneel + pause + stand + 0.5,
        tr.end - 0.3,
        hz,
        u(0.1, 0.25),
        u(0.2, 0.6),
        arm,
    )
    return tr, t_imp


def _walking(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    u = rng.uniform
    tr = _track(c, u(12, 25))
    hz, arm = _person(rng)
    _gait(
        tr, rng, u(0.5, 2.0), tr.end - u(0.5, 2.0), hz, u(0.1, 0.35), u(0.3, 1.0), arm, u(0.5, 1.0)
    )
    return tr, None


def _running(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """A jog for the bus: stance pulses and short flights (|a| near 0), speed 1.8-2.8 m/s."""
    u = rng.uniform
    tr = _track(c, u(12, 25))
    hz, duty = u(2.4, 3.0), u(0.45, 0.65)
    t0, t1 = u(1.0, 3.0), tr.end - u(4.0, 7.0)
    ph = (np.arange(256) + 0.5) / 256
    stance = np.where(ph < duty, np.pi / (2 * duty) * np.sin(np.pi * ph / duty), 0.0)
    _cyclic(tr.a_trunk[:, 2], tr, t0, t1, hz, _periodic(stance - 1.0), G / hz**2, 1.0)
    v = u(1.8, 2.8)
    _dv(tr.a_trunk[:, 0], tr, t0, 1.5, v, "hann")
    _dv(tr.a_trunk[:, 0], tr, t1 - 1.5, 1.5, -v, "hann")
    on = _env(tr.t, t0, t1, 1.0)
    tr.pitch += on * u(0.1, 0.3)
    tr.arm_el += on * (0.9 + u(0.4, 0.8) * np.sin(np.pi * hz * tr.t))
    tr.a_arm[:, 0] -= on * 0.3 * 0.6 * (np.pi * hz) ** 2 / G * np.sin(np.pi * hz * tr.t)
    hz_w, arm = _person(rng)
    _gait(tr, rng, t1 + 0.3, tr.end - 0.3, hz_w, 0.3, 0.6, arm)
    return tr, None


def _stairs(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Step by step up or down one flight (8-16 steps, rise 15-18 cm, tread 25-30 cm),
    holding the rail."""
    u = rng.uniform
    down = rng.random() < 0.5
    hz, rise, tread = u(0.9, 1.5), u(0.15, 0.18), u(0.25, 0.3)
    steps = int(rng.integers(8, 17))
    tr = _track(c, max(10.5, 2.0 + steps / hz + u(0.5, 3.0)))
    heel = u(0.5, 1.5) if down else u(0.2, 0.5)
    starts, step = 1.0 + np.arange(steps) / hz, 0.7 / hz
    for ts in starts:
        _move(tr.a_trunk[:, 2], tr, float(ts), step, -rise if down else rise)
        _move(tr.a_trunk[:, 0], tr, float(ts), 0.85 / hz, tread)
    sig, peak = u(0.015, 0.03, steps), heel * u(0.7, 1.3, steps)
    _blips(tr.a_trunk[:, 2], tr, starts + (step if down else 0.1), sig, peak)
    on = _env(tr.t, 0.8, tr.end - 0.8, 0.5)
    tr.pitch += on * (u(0.0, 0.15) if down else u(0.1, 0.3))
    tr.arm_el += on * 0.3 * u(0.15, 0.45) * np.sin(np.pi * hz * tr.t)
    return tr, None


def _sit_down_hard(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Walks to a low chair, turns, drops onto it (hip 0.40-0.50 m lower, 0.9-1.45 m/s at most,
    the seat stopping 0.35-0.8 m/s), leans back, then sits: tremor and small gestures."""
    u = rng.uniform
    tr = _track(c, u(12, 25))
    hz, arm = _person(rng)
    t_w = u(2.0, 3.0)
    _gait(tr, rng, 0.0, t_w, hz, 0.2, 0.5, arm)
    t_s = t_w + u(0.5, 1.0)
    v_pk = u(0.9, 1.45)
    t_c = _lower(
        tr.a_trunk[:, 2],
        tr,
        t_s,
        u(0.4, 0.5),
        v_pk,
        u(0.35, 0.8),
        u(0.45, 0.8),
        u(0.06, 0.14),
        u(0.05, 0.2),
    )
    _move(tr.a_trunk[:, 0], tr, t_s, t_c - t_s, -u(0.08, 0.2))  # the hip goes back to the seat
    lean, back = u(0.3, 0.6), u(0.1, 0.4)
    tr.pitch += _ramp_to(tr.t, t_s - 0.2, t_c - t_s, 0.0, lean) - _ramp_to(
        tr.t, t_c, u(0.4, 0.8), 0.0, lean + back
    )
    _blip(tr.a_trunk[:, 0], tr, t_c + u(0.3, 0.6), 0.03, u(0.2, 0.6))  # the backrest
    tr.arm_el += _ramp_to(tr.t, t_s, t_c - t_s, 0.0, u(0.5, 1.2))
    _gestures(tr, rng, c, t_c + 1.0, tr.end, 1 / 8 if c.placement == "wrist" else 1 / 30)
    return tr, None


def _lie_down_bed(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """From sitting on the edge, lies back or on a side; the chest and the arm sink onto the
    mattress slowly, the hip barely moves."""
    u = rng.uniform
    tr = _track(c, u(12, 25))
    tr.pitch += -u(0.1, 0.3)
    t_l, dur = u(3.0, 5.0), u(1.5, 3.0)
    tr.pitch += _ramp_to(tr.t, t_l, dur, 0.0, -u(1.2, 1.6))
    tr.roll += _ramp_to(tr.t, t_l, dur, 0.0, u(-0.8, 0.8))
    drop, v_pk, v_c, w = {
        "waist": (u(0.02, 0.08), u(0.05, 0.15), u(0.03, 0.08), u(0.15, 0.3)),
        "pendant": (u(0.2, 0.35), u(0.3, 0.6), u(0.1, 0.3), u(0.12, 0.3)),
        "wrist": (u(0.1, 0.4), u(0.3, 0.9), u(0.2, 0.6), u(0.06, 0.15)),
    }[c.placement]
    z = tr.a_world[:, 2] if c.placement == "wrist" else tr.a_trunk[:, 2]
    t_c = _lower(z, tr, t_l + dur * 0.2, drop, v_pk, v_c, u(0.05, 0.2), w, u(0.05, 0.2))
    tr.arm_el += _ramp_to(tr.t, t_l, 2.0, 0.0, u(-1.0, 1.5))
    _gestures(tr, rng, c, t_c + 1.0, tr.end, 1 / 10 if c.placement == "wrist" else 1 / 30)
    return tr, None


def _clapping(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Claps: the hands meet at 0.3-0.7 m/s and stop within 25-45 ms, then part again."""
    u = rng.uniform
    tr = _track(c, u(12, 25))
    hz = u(1.5, 3.5)
    t0, t1 = u(1.0, 3.0), tr.end - u(1.0, 3.0)
    tr.arm_el += _ramp_to(tr.t, t0 - 0.8, 0.8, 0.0, u(0.8, 1.4))
    tr.arm_tw += _ramp_to(tr.t, t0 - 0.8, 0.8, 0.0, u(-1.2, 1.2))
    if c.placement == "wrist":
        wf = u(0.025, 0.045) * hz  # contact as a share of the cycle
        ph = (np.arange(512) + 0.5) / 512
        hit = np.where(ph < wf, np.sin(np.pi * ph / wf), 0.0)
        shape = hit / hit.mean() - (1.0 - np.cos(2 * np.pi * ph))
        _cyclic(tr.a_arm[:, 1], tr, t0, t1, hz, _periodic(shape), 2 * u(0.3, 0.7) / hz, 0.3)
    else:
        for tc in np.arange(t0 + 0.3, t1 - 0.3, 1 / hz):
            _blip(tr.a_trunk[:, int(rng.integers(2))], tr, float(tc), 0.02, u(0.03, 0.15))
    return tr, None


def _waving(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    u = rng.uniform
    tr = _track(c, u(12, 25))
    hz = u(1.2, 2.5)
    t0, t1 = u(1.0, 3.0), tr.end - u(1.0, 3.0)
    on = _env(tr.t, t0, t1, 0.3)
    tr.arm_el += on * u(1.8, 2.6)
    amp = u(0.5, 1.1)
    tr.arm_tw += on * amp * np.sin(2 * np.pi * hz * tr.t)
    sine = _periodic(np.sin(2 * np.pi * (np.arange(256) + 0.5) / 256))
    reach = u(0.04, 0.08) if c.placement == "wrist" else 0.005  # the hand sweeps +-4-8 cm
    col = tr.a_arm[:, 1] if c.placement == "wrist" else tr.a_trunk[:, 1]
    _cyclic(col, tr, t0, t1, hz, sine / np.abs(sine).max(), reach, 0.3)
    return tr, None


def _typing(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    u = rng.uniform
    tr = _track(c, u(12, 25))
    tr.pitch += u(0.0, 0.3)
    tr.arm_el += 1.2 + u(-0.2, 0.2)
    for tk in np.sort(u(1.0, tr.end - 1.0, int(u(5, 9) * tr.end))):
        if c.placement == "wrist":
            _blip(tr.a_arm[:, 2], tr, float(tk), 0.01, u(0.02, 0.2))
    _gestures(tr, rng, c, 1.0, tr.end, 1 / 10 if c.placement == "wrist" else 1 / 60)
    return tr, None


def _jumping(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Small hops: crouch, push off, flight (|a| ~ 0), heel strike, knees absorb, stand up."""
    u = rng.uniform
    tr = _track(c, u(12, 25))
    z = tr.a_trunk[:, 2]
    tj = u(2.0, 3.0)
    for _ in range(int(rng.integers(1, 5))):
        crouch, v = u(0.12, 0.25), np.sqrt(2 * G * u(0.03, 0.08))
        push = 2 * crouch / v  # rises the crouch depth while reaching take-off speed
        t_push = tj - push
        down = u(0.3, 0.5)
        _move(z, tr, t_push - down, down, -crouch)
        _dv(z, tr, t_push, push, v, "hann")
        fly = 2 * v / G
        _dv(z, tr, tj, fly, -2 * v, "flat")
        t_l, q, absorb = tj + fly, u(0.4, 0.7), u(0.15, 0.3)
        _dv(z, tr, t_l, u(0.03, 0.06), q * v, "sine")
        _dv(z, tr, t_l, absorb, (1 - q) * v, "hann")
        t_up = t_l + absorb + 0.05
        _move(z, tr, t_up, u(0.4, 0.7), -_height(z, tr, t_up))
        tr.arm_el += _env(tr.t, t_push, t_l, 0.1) * u(0.5, 1.5)
        tj = t_up + 0.7 + u(0.8, 2.0)
        if tj > tr.end - 3.0:
            break
    return tr, None


def _bump_table(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Knocks the wrist on a table edge: the hand moving at 0.3-1 m/s stops within 8-25 ms."""
    u = rng.uniform
    tr = _track(c, u(12, 25))
    tr.arm_el += 1.2 + 0.3 * np.sin(2 * np.pi * u(0.2, 0.4) * tr.t + u(0, 6.3))
    tb = u(3.0, tr.end - 3.0)
    if c.placement == "wrist":
        d, v, e, w = _unit(rng.normal(size=3)), u(0.3, 1.0), u(0.1, 0.4), u(0.008, 0.025)
        col = np.zeros(tr.t.size)
        _dv(col, tr, tb - u(0.2, 0.4), 0.3, v, "hann")
        _dv(col, tr, tb, w, -(1 + e) * v, "sine")
        _dv(col, tr, tb + w, u(0.15, 0.3), e * v, "hann")
        tr.a_arm += np.outer(col, d)
    else:
        _blip(tr.a_trunk[:, int(rng.integers(3))], tr, tb, 0.01, u(0.05, 0.3))
    return tr, None


def _drop_device(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Slips from the hand 0.7-1.2 m above the floor: free fall, a hard hit (2-6 ms) and
    bounces with free fall between them (restitution 0.3-0.5), each on another face, then it
    lies still (noise only: nobody wears it)."""
    u = rng.uniform
    tr = _track(c, u(12, 25))
    t, az = tr.t, tr.a_world[:, 2]
    td, v = u(2.0, 3.0), np.sqrt(2 * G * u(0.7, 1.2))
    face = np.tile(_unit(rng.normal(size=3) + np.array([0.0, 0.0, 2.0])), (t.size, 1))
    _dv(az, tr, td, v / G, -v, "flat")
    tc, e = td + v / G, u(0.3, 0.5)
    while v > 0.3 and tc < tr.end - 0.5:
        face[_idx(tr, tc) :] = _unit(rng.normal(size=3))
        w = u(0.002, 0.006)
        out = e * v if e * v > 0.3 else 0.0
        _dv(az, tr, tc, w, v + out, "sine")
        _dv(az, tr, tc + w, 2 * out / G, -2 * out, "flat")
        tc, v = tc + w + 2 * out / G, out
    held = t < td
    tremor = _tremor(t, rng, c.dev.tremor_g) * held[:, None]
    tr.off_body = (az + 1.0)[:, None] * face + tremor
    return tr, None


def _busy_hands(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """A bout of busy hands (cooking, tidying, eating, handling things), as real free-living
    wrist wear shows many times an hour: brisk reaches; things put down and hands landing on
    a table top, an armrest or the lap (the hand at 0.2-0.65 m/s stopped within 15-50 ms:
    typically 2-3 g at the wrist, a few up to 9 g); the forearm turned palm up, down or on its side
    and held. At the trunk the same chores are leaning and bending to reach (held a second or
    more), nudges and the hands' knocks carried through the body."""
    u = rng.uniform
    tr = _track(c, u(10, 16))
    el, tw = u(-0.3, 0.6), u(-0.6, 0.6)  # the forearm near the horizontal
    tr.arm_el += 1.2 + el
    tr.arm_tw += tw
    tr.pitch += u(0.0, 0.3)
    t = u(0.5, 1.2)
    if c.placement != "wrist":
        while t < tr.end - 3.5:
            if rng.random() < 0.55:  # bends to reach down or forward, holds, comes back up
                lean, dn, hold = u(0.85, 1.45), u(0.6, 1.1), u(1.2, 2.5)
                tr.pitch += _ramp_to(tr.t, t, dn, 0.0, lean) - _ramp_to(
                    tr.t, t + dn + hold, dn, 0.0, lean
                )
                tr.roll += _env(tr.t, t, t + 2 * dn + hold, dn) * u(-0.3, 0.3)
                _excursion(tr.a_trunk[:, 2], tr, t, 2 * dn + hold, -u(0.05, 0.2))
                t += 2 * dn + hold
            else:  # a nudge: a door pushed, a heavy step, a knock carried up the arm
                _blip(tr.a_trunk[:, int(rng.integers(3))], tr, t, u(0.01, 0.03), u(0.2, 1.3))
                t += 0.3
            t += u(0.3, 1.5)
        return tr, None
    turn_next = False

    def land(t: float) -> float:  # a hand or a thing in it lands on a surface; returns the end
        d = _unit(np.array([0.0, 0.0, -1.0]) + rng.normal(0.0, 0.6, 3))
        v, w, e, lead = u(0.2, 0.65), u(0.015, 0.05), u(0.0, 0.3), u(0.15, 0.3)
        col = np.zeros(tr.t.size)
        _dv(col, tr, t, lead, v, "hann")
        _dv(col, tr, t + lead, w, -(1 + e) * v, "sine")
        _dv(col, tr, t + lead + w, u(0.1, 0.2), e * v, "hann")
        tr.a_arm += np.outer(col, d)
        return t + lead + w + 0.2

    while t < tr.end - 2.5:
        if turn_next or rng.random() < 0.5:  # the forearm turns (rises, sinks) and holds
            turn_next = False
            for _ in range(int(rng.integers(1, 4))):
                if t > tr.end - 2.5:
                    break
                dur, turn = u(0.25, 0.5), float(rng.choice([-1.0, 1.0])) * u(1.0, 2.4)
                tw1 = tw + turn if abs(tw + turn) < 2.6 else tw - turn
                el1 = float(np.clip(el + rng.normal(0.0, 0.5), -0.5, 0.8))
                tr.arm_tw += _ramp_to(tr.t, t, dur, 0.0, tw1 - tw)
                tr.arm_el += _ramp_to(tr.t, t, dur, 0.0, el1 - el)
                tw, el = tw1, el1
                for j in range(3):
                    _excursion(tr.a_arm[:, j], tr, t, 1.5 * dur, u(-0.08, 0.08))
                t += 1.5 * dur
                hold = u(1.1, 1.6)
                if rng.random() < 0.4:  # something put down in passing
                    land(t + u(0.0, 0.3))
                t += hold
            continue
        work_end = min(tr.end - 1.0, t + u(2.0, 4.0))  # the hand works in one posture
        while t < work_end - 0.6:
            if rng.random() < 0.8:
                t = land(t)
                if rng.random() < 0.2:  # put down, then the hand turns away at once
                    turn_next = True
                    break
            else:  # a brisk reach and back
                reach, dur = _unit(rng.normal(size=3)) * u(0.1, 0.3), u(0.4, 0.6)
                for j in range(3):
                    _excursion(tr.a_arm[:, j], tr, t, dur, float(reach[j]))
                t += dur
            t += u(0.0, 0.3)
        t = t + u(0.1, 0.4) if turn_next else work_end + u(0.5, 2.0)  # a moment in that posture
    return tr, None


_SCRIPTS: dict[str, Callable[[str, np.random.Generator, _Ctx], tuple[_Track, float | None]]] = {
    "fall_forward": _fall_standing,
    "fall_backward": _fall_standing,
    "fall_lateral": _fall_standing,
    "fall_from_chair": _fall_from_chair,
    "slow_slide": _slow_slide,
    "fall_recover": _fall_recover,
    "walking": _walking,
    "running_for_bus": _running,
    "stairs": _stairs,
    "sit_down_hard": _sit_down_hard,
    "lie_down_bed": _lie_down_bed,
    "clapping": _clapping,
    "waving": _waving,
    "typing": _typing,
    "jumping": _jumping,
    "bump_table": _bump_table,
    "drop_device": _drop_device,
    "busy_hands": _busy_hands,
}


def _kind(kind: str, rng: np.random.Generator, c: _Ctx) -> tuple[_Track, float | None]:
    """Script one activity; returns its track and the impact time (falls)."""
    if kind not in _SCRIPTS:
        raise ValueError(f"unknown activity {kind!r}")
    tr, t_imp = _SCRIPTS[kind](kind, rng, c)
    if tr.off_body is None:
        _worn(tr, rng, c)
    return tr, t_imp


# -- the sensor ---------------------------------------------------------------------------------


def _smooth(x: Arr, k: int) -> Arr:
    if k <= 1:
        return x
    ker = np.ones(k) / k
    pad = np.pad(x, (k // 2, k - 1 - k // 2), mode="edge")
    return np.convolve(pad, ker, mode="valid")


def _point_accel(tr: _Track, c: _Ctx) -> Arr:
    """World acceleration (g) of the sensor's body point: its own motion plus the trunk's,
    which reaches the wrist damped (the arm hangs from the shoulder, ~80 ms)."""
    if c.placement != "wrist":
        return tr.a_world + tr.a_trunk
    k = max(1, int(0.08 * tr.rate))
    return tr.a_world + np.column_stack([_smooth(tr.a_trunk[:, j], k) for j in range(3)])


def _block(x: Arr, k: int) -> Arr:
    """Mean over blocks of ``k`` samples: the sensor's own averaging to its output rate."""
    return x if k <= 1 else np.asarray(x.reshape(-1, k, *x.shape[1:]).mean(axis=1))


def _unrotate(f: Arr, about_y: Arr, about_x: Arr) -> Arr:
    """(Ry(about_y) Rx(about_x))^T f per sample, without building the matrices."""
    cy, sy, cx, sx = np.cos(about_y), np.sin(about_y), np.cos(about_x), np.sin(about_x)
    x = cy * f[:, 0] - sy * f[:, 2]
    z = sy * f[:, 0] + cy * f[:, 2]
    return np.column_stack([x, cx * f[:, 1] + sx * z, -sx * f[:, 1] + cx * z])


def _pendant_tilt(a: Arr, pitch: Arr, roll: Arr, rate: float) -> tuple[Arr, Arr]:
    """The pendant swings on its cord (~0.9 Hz, damped by clothing) and half follows the
    trunk's horizontal acceleration; it lies flat on a chest that is not upright."""
    n = a.shape[0]
    m = 1 << int(np.ceil(np.log2(2 * n)))
    w = 2 * np.pi * np.fft.rfftfreq(m, 1.0 / rate)
    w0 = 2 * np.pi * 0.9
    h = 0.5 * w0**2 / (w0**2 - w**2 + 2j * 0.35 * w0 * w)
    upright = (np.cos(pitch) * np.cos(roll)) ** 2
    ty = np.fft.irfft(np.fft.rfft(a[:, 0], m) * h, m)[:n] * upright
    tx = np.fft.irfft(np.fft.rfft(-a[:, 1], m) * h, m)[:n] * upright
    return np.clip(ty, -0.6, 0.6), np.clip(tx, -0.6, 0.6)


def _sense(tr: _Track, c: _Ctx, mount: Arr, rng: np.random.Generator, range_g: float) -> Arr:
    """Specific force in the device frame at the output rate: the sensor's averaging down from
    the physics rate (orientation hardly changes within one output sample, so rotations are
    applied after it), tremor, gain, bias, noise, clipping at the range, 1 mg rounding."""
    k = c.k
    if tr.off_body is not None:
        f = _block(tr.off_body, k)
    else:
        a = _block(_point_accel(tr, c), k)
        pitch, roll = _block(tr.pitch, k), _block(tr.roll, k)
        f = _unrotate(a + np.array([0.0, 0.0, 1.0]), pitch, roll)
        if c.placement == "wrist":
            f = _unrotate(f, _block(tr.arm_el, k), _block(tr.arm_tw, k)) + _block(tr.a_arm, k)
        elif c.placement == "pendant":
            tilt = _pendant_tilt(a, pitch, roll, tr.rate / k)
            f = _unrotate(f, *tilt) + 0.3 * _block(tr.a_arm, k)
        else:
            f = f + 0.05 * _block(tr.a_arm, k)
        f = f @ mount
        f += _tremor(tr.t[::k], rng, c.dev.tremor_g * _TREMOR_SHARE[c.placement])
    f = f * c.dev.gain + c.dev.bias + rng.normal(0.0, c.dev.noise_g, f.shape)
    return np.asarray(np.round(np.clip(f, -range_g, range_g), 3), dtype=np.float64)


def segment(
    kind: str,
    placement: str,
    rng: np.random.Generator,
    rate: float = 50.0,
    range_g: float = 8.0,
    mount: Arr | None = None,
) -> Segment:
    """Generate one activity segment (10-35 s) of ``kind`` (see FALLS, ADLS) for a placement."""
    m = random_mount(placement, rng) if mount is None else mount
    c = _ctx(placement, rate, _device(m))
    tr, t_imp = _kind(kind, rng, c)
    g = _sense(tr, c, m, rng, range_g)
    return Segment(kind, placement, rate, g, kind in FALLS, t_imp, c.dev.noise_g)


def kinematics(
    kind: str, placement: str, rng: np.random.Generator, rate: float = 50.0
) -> Kinematics:
    """The vertical motion behind ``segment`` (same draws for the same generator and rate):
    acceleration of the sensor's body point integrated to velocity and height. Hand-only
    gestures in the device frame (claps, knocks) are not in it."""
    m = random_mount(placement, rng)
    c = _ctx(placement, rate, _device(m))
    tr, t_imp = _kind(kind, rng, c)
    a = _point_accel(tr, c)[:, 2] * G
    v = np.cumsum(a) / tr.rate
    return Kinematics(tr.t, a, v, np.cumsum(v) / tr.rate, t_imp)


def quiet(
    duration_s: float,
    placement: str,
    rng: np.random.Generator,
    rate: float = 50.0,
    mount: Arr | None = None,
) -> Arr:
    """Cheap background wear: one posture with tremor, breathing, slow drift and occasional
    small gestures, plus the device's noise (nothing sharp, so no oversampling)."""
    m = random_mount(placement, rng) if mount is None else mount
    c = _ctx(placement, rate, _device(m), oversample=False)
    tr = _track(c, max(duration_s, 1.0 / rate))
    tr.pitch += rng.uniform(-0.3, 0.3)
    tr.roll += rng.uniform(-0.3, 0.3)
    if placement == "wrist":
        tr.arm_el += 1.2 + rng.uniform(-1.3, 1.3)
        tr.arm_tw += rng.uniform(-1.0, 1.0)
    _gestures(tr, rng, c, 0.0, tr.end, 1 / 20 if placement == "wrist" else 1 / 90)
    _worn(tr, rng, c)
    return _sense(tr, c, m, rng, 16.0)


def lying_still(seg: Segment, duration_s: float, rng: np.random.Generator) -> Arr:
    """Continue a fall's last posture for ``duration_s``: the wearer lies still (hurt or
    unconscious), so only breathing, a faint tremor and the device's noise remain."""
    n = max(1, int(duration_s * seg.rate))
    t = np.arange(n) / seg.rate
    base = seg.g[-max(1, int(seg.rate) // 2) :].mean(axis=0)
    axis = _unit(np.cross(base, rng.normal(size=3)))
    breath = rng.uniform(*_BREATH_RAD[seg.placement]) * np.sin(
        2 * np.pi * rng.uniform(0.2, 0.33) * t + rng.uniform(0, 6.3)
    )
    g = base + np.outer(breath, np.cross(axis, base))
    g += _tremor(t, rng, rng.uniform(0.002, 0.008) * _TREMOR_SHARE[seg.placement])
    g += rng.normal(0.0, seg.noise_g, g.shape)
    return np.asarray(np.round(g, 3), dtype=np.float64)


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
    "busy_hands": 60.0,
}
# Where a placement's daily living differs: a wrist sees busy hands far more often than the trunk
# bends to reach (real free-living wrist wear, simulators/README.md "How generated days compare
# with real wear": about 155 peaks above 2 g and 155 orientation changes an hour of wear).
PLACEMENT_RATE: dict[str, dict[str, float]] = {"wrist": {"busy_hands": 720.0}}


def daily_rates(placement: str) -> dict[str, float]:
    """Daily counts of each activity for a device at ``placement``."""
    return {**DAILY_RATE, **PLACEMENT_RATE.get(placement, {})}


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
    """One resident-day of activity segments (Poisson counts per :func:`daily_rates`) plus
    ``falls``.

    Only the segments are generated; the gaps between them are the caller's (quiet wear or no
    accel at all), so a whole fleet-day stays cheap.
    """
    mount = random_mount(placement, rng)
    kinds: list[str] = []
    for k, lam in (rates or daily_rates(placement)).items():
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
