"""The "are you OK?" stage between an accelerometer fall finding and an alert (issue 15).

Why: a finding is a suspicion, not a fall. Real wrist wear gives the accelerometer dozens of
fall-like moments a day; paging a nurse for each buries the true falls. The wearer is asked
first (a ``check`` on the device) and only evidence that they need help pages anyone:

- confirmed: the wearer asks for help (SOS, an on-device fall); or, for a suspicion at or above
  ``alert_p``, lying still for ``still_s`` (early), the device silent for ``silence_s`` (early),
  or no answer by the window's end with nothing after the impact showing the wearer up and
  about; or, for a suspicion at or above ``silent_p`` (below ``alert_p``), the device stops
  reporting: nothing for ``silence_s`` and for 1.5 times the longest gap between its messages in
  the last ten minutes (so a wake-on-motion device going back to its quiet cadence is not
  "silent"), judged until ``silence_hold_s`` after the suspicion;
- cancelled: the wearer presses "I'm OK", the data after the impact shows them up and walking,
  or the window (or, from ``silent_p``, the silence hold) ends unanswered with the device still
  reporting: too weak to page on the absence of an answer alone.

Why a device that stops reporting is evidence at a lower bar than an unanswered prompt: after
a false trigger in everyday wear the device streams on (a wrist often rests still for minutes,
so stillness alone proves little), while a device that was streaming and falls silent right
after a suspected impact is broken, dislodged or out of reach. ``silent_p`` is chosen in the fall
model's cross-validation on the trial recordings (which do stop after the event); ``alert_p``
under the budget of everyday wear (``detectors/FALL_MODEL.md``).

One suspicion per device at a time. Pure: no I/O, no clock of its own (``now`` is the
pipeline's), a JSON-able state; ``detectors/pipeline.py`` turns decisions into records.
"""

from __future__ import annotations

import base64
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from detectors import fall

# The fall model's threshold and walking test (detectors/fall.py, fall_features.py); defaults
# keep this stage usable with a detector that has neither (every finding counts as strong).
ALERT_P: float = float(getattr(fall, "ALERT_P", 0.0))
SILENT_P: float = float(getattr(fall, "SILENT_P", ALERT_P))


def _walking_test() -> Callable[[str, float, Any], bool] | None:
    try:
        module = importlib.import_module("detectors.fall_features")
    except ImportError:
        return None
    test = getattr(module, "up_and_about", None)
    return test if callable(test) else None


UP_AND_ABOUT = _walking_test()

SETTLE_S = 1.0  # samples this soon after the impact are the fall itself, not what followed
KEEP_S = 10.0  # latest samples kept for the walking test (it needs two 4 s windows)
GAP_S = 0.25  # a larger jump between chunks breaks the buffer (walking must be continuous)
MAX_G = 32.0  # packed as int16 milli-g
QUIET_GAP_FACTOR = 1.5  # "stopped reporting": silent this many times its longest recent gap


@dataclass(frozen=True)
class ConfirmConfig:
    """Per-resident windows (registry ``check_timeout_s`` and ``fall_confirm``)."""

    window_s: float = 30.0  # the "are you OK?" window: unanswered, decide then
    still_s: float = 15.0  # lying still this long after the impact confirms early
    silence_s: float = 20.0  # no message for this long after a suspicion confirms early
    silence_hold_s: float = 45.0  # from silent_p: how long after the suspicion silence is judged
    alert_p: float = ALERT_P  # below this, no answer alone never confirms
    silent_p: float = SILENT_P  # below this, only the wearer asking for help confirms


@dataclass(frozen=True)
class Decision:
    outcome: Literal["confirmed", "cancelled"]
    reason: str


def _pack(a: npt.NDArray[Any]) -> str:
    mg = np.clip(np.rint(a * 1000.0), -MAX_G * 1000, MAX_G * 1000).astype("<i2")
    return base64.b64encode(mg.tobytes()).decode("ascii")


def _unpack(s: str) -> npt.NDArray[np.float64]:
    raw = np.frombuffer(base64.b64decode(s), dtype="<i2").reshape(-1, 3)
    return raw.astype(np.float64) / 1000.0


@dataclass
class Suspicion:
    """One open suspicion of one device (times: ``*_ts`` device clock, the rest pipeline clock)."""

    suspicion_id: str
    impact_ts: float
    opened_at: float
    deadline: float
    probability: float
    lying: bool  # the finding saw an orientation change and quiet after (lying down)
    last_seen: float  # the device's latest message
    still_s: float
    silence_s: float
    alert_p: float
    silent_p: float = math.inf  # (state saved before it existed: no silence path below alert_p)
    quiet_gap: float = 0.0  # the device's longest recent gap between messages (s)
    hold_until: float = -math.inf  # from silent_p: silence is judged until then
    buf: str = ""  # latest samples after the impact, packed
    buf_rate: float = 0.0
    buf_end_ts: float = -math.inf  # device time just after the last buffered sample

    @classmethod
    def open(
        cls,
        suspicion_id: str,
        impact_ts: float,
        probability: float,
        lying: bool,
        now: float,
        config: ConfirmConfig,
        quiet_gap: float = 0.0,
    ) -> Suspicion:
        return cls(
            suspicion_id,
            float(impact_ts),
            float(now),
            float(now) + config.window_s,
            float(probability),
            bool(lying),
            float(now),
            config.still_s,
            config.silence_s,
            config.alert_p,
            min(config.silent_p, config.alert_p),
            float(quiet_gap),
            float(now) + config.silence_hold_s,
        )

    @property
    def strong(self) -> bool:
        """Strong enough to page on the absence of an answer."""
        return self.probability >= self.alert_p

    @property
    def telling_silence(self) -> bool:
        """Strong enough to page when the device stops reporting."""
        return self.probability >= self.silent_p

    @property
    def silent_after(self) -> float:
        """How long without a message counts as the device having stopped reporting."""
        if self.strong:
            return self.silence_s
        return max(self.silence_s, QUIET_GAP_FACTOR * self.quiet_gap)

    @property
    def closes_at(self) -> float:
        """Unanswered and not confirmed by then: cancelled."""
        if self.strong or not self.telling_silence:
            return self.deadline
        return max(self.deadline, self.hold_until)

    @property
    def due(self) -> float:
        """When ``check`` may next decide something with nothing arriving."""
        if self.telling_silence:
            return min(self.closes_at, self.last_seen + self.silent_after)
        return self.deadline

    def upgrade(self, impact_ts: float, probability: float, lying: bool) -> None:
        """A more probable impact of the same fall (found within the detector's refractory, or
        while the wearer is being asked): the question stays, the evidence is the stronger one.
        The walking test starts again from the new impact."""
        self.impact_ts, self.probability, self.lying = float(impact_ts), float(probability), lying
        self.buf, self.buf_rate, self.buf_end_ts = "", 0.0, -math.inf

    # -- evidence ------------------------------------------------------------------------------
    def seen(self, now: float) -> None:
        """Any message of the device: it is not silent."""
        self.last_seen = max(self.last_seen, float(now))

    def samples(
        self,
        now: float,
        placement: str,
        ts: float,
        rate: float,
        g: npt.NDArray[np.float64],
        still_for: float,
    ) -> Decision | None:
        """A chunk of accelerometer samples from ``ts``; ``still_for``: seconds motionless."""
        self.seen(now)
        t = ts + np.arange(g.shape[0]) / rate
        after = g[t >= self.impact_ts + SETTLE_S]
        if after.shape[0]:
            first_ts = ts + (g.shape[0] - after.shape[0]) / rate
            kept = _unpack(self.buf) if self.buf else np.zeros((0, 3))
            if rate != self.buf_rate or abs(first_ts - self.buf_end_ts) > GAP_S:
                kept = np.zeros((0, 3))  # a gap or a new rate: walking must be continuous
            kept = np.concatenate([kept, after])[-int(KEEP_S * rate) :]
            self.buf, self.buf_rate = _pack(kept), float(rate)
            self.buf_end_ts = ts + g.shape[0] / rate
            if UP_AND_ABOUT is not None and UP_AND_ABOUT(placement, rate, kept):
                return Decision("cancelled", "up and about")
        if self.strong and self.lying and still_for >= self.still_s:
            return Decision("confirmed", "lying still")
        return None

    def event(self, now: float, event: str) -> Decision | None:
        """The wearer's own word: ``ok`` cancels; ``sos`` or an on-device ``fall`` confirm."""
        self.seen(now)
        if event == "ok":
            return Decision("cancelled", "wearer pressed I'm OK")
        if event == "sos":
            return Decision("confirmed", "wearer pressed SOS")
        if event == "fall":
            return Decision("confirmed", "the device detected the fall too")
        return None

    def check(self, now: float) -> Decision | None:
        """The timers: the device stopping, then the window's (or the silence hold's) end."""
        silent_since = self.last_seen + self.silent_after  # stopped reporting from then on
        if (
            self.telling_silence
            and now >= silent_since
            and (self.strong or silent_since <= self.hold_until)
        ):
            return Decision("confirmed", "device silent since the suspicion")
        if now >= self.deadline and self.strong:
            return Decision("confirmed", "no answer")
        if now >= self.closes_at:
            return Decision("cancelled", "no answer; too uncertain to page without a call for help")
        return None

    # -- state ---------------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("buf_end_ts", "hold_until", "silent_p"):
            if not math.isfinite(state[key]):
                state[key] = None  # JSON has no infinity
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Suspicion:
        s = dict(state)
        for key, missing in (("buf_end_ts", -math.inf), ("hold_until", -math.inf)):
            if s.get(key) is None:
                s[key] = missing
        if s.get("silent_p") is None:
            s["silent_p"] = math.inf
        return cls(**s)
