"""Scoring alerts against a scenario's labels (DESIGN.md matching rule), and the report files.

Rules, chosen so that a number in the report can be recomputed by hand:
- Alerts are counted by unique ``alert_id``; all records of one id (a severity rise, an
  upgrade after the check window) are one alert, and each record's ``detected_at`` is a moment
  at which it was raised.
- A label (resident, kind, start, deadline) is *detected* when an alert of the same resident and
  kind has a record with ``detected_at`` in ``[start - 2, deadline]``. Its latency is the
  earliest such ``detected_at`` minus ``start`` (so it can be down to -2 s).
- An alert is *true* if any of its records lies in the window of any label of its resident and
  kind; otherwise it is a *false alarm*. A label may carry an optional ``end`` (an extension of
  the contract: the condition lasts until then, e.g. a deterioration still under way or a watch
  still off the wrist): an alert raised in ``(deadline, end]`` detects nothing but is not a
  false alarm either (a re-raise after an auto-resolve of the same episode).
- One alert may detect several labels (two falls a few seconds apart); several alerts may
  detect one label (a device fall event and the accelerometer): both are counted as they
  are, so recall and precision are each exact.
- A fall label with ``answered: "ok"`` (the wearer pressed "I'm OK": nobody is to be paged)
  is not one alerts must detect; an alert in its window is a real fall, not a false alarm.
- recall = detected / labels; precision = true alerts / alerts; false alarms per resident-day =
  false alarms / (residents x scenario hours / 24); alerts per resident-day (what reaches
  people) likewise; latency p50/p95 by linear interpolation (numpy's default) over the
  detected labels.
- Falls have a first stage, the prompt (``FallSuspicion`` records: what the wearer feels):
  every fall label, answered or not, is *prompted* when a suspicion of its resident was raised
  (or an alert: an on-device fall pages without a prompt) in ``[start - 2, deadline]``;
  prompts are counted by ``suspicion_id``, per wear-day (devices with an accelerometer x
  scenario days), with their outcomes; a prompt in no fall label's window is a false prompt.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

KINDS = ("fall", "wander", "vitals", "sos", "device")
EARLY_S = 2.0


@dataclass(frozen=True)
class LabelRow:
    resident: str
    kind: str
    start: float
    deadline: float
    note: str = ""
    end: float | None = None  # the condition lasts until then (not a false alarm before it)
    answered: str = ""  # "ok": the wearer answered "I'm OK" (a fall that pages nobody)


@dataclass
class Alert:
    """One unique alert: its first record plus every moment it was (re-)raised."""

    alert_id: str
    kind: str
    resident_id: str
    device_id: str
    severity: str
    ts: float
    detected_at: list[float]
    details: dict[str, Any]
    record: dict[str, Any]

    @property
    def first(self) -> float:
        return min(self.detected_at)


@dataclass
class KindScore:
    kind: str
    labels: int = 0
    detected: int = 0
    alerts: int = 0
    true_alerts: int = 0
    false_alarms: int = 0
    resident_days: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.detected / self.labels if self.labels else None

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def false_per_resident_day(self) -> float | None:
        return self.false_alarms / self.resident_days if self.resident_days > 0 else None

    @property
    def alerts_per_resident_day(self) -> float | None:
        return self.alerts / self.resident_days if self.resident_days > 0 else None

    def latency(self, q: float) -> float | None:
        return float(np.percentile(self.latencies, q)) if self.latencies else None

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "detected": self.detected,
            "recall": self.recall,
            "alerts": self.alerts,
            "true_alerts": self.true_alerts,
            "precision": self.precision,
            "false_alarms": self.false_alarms,
            "false_per_resident_day": self.false_per_resident_day,
            "alerts_per_resident_day": self.alerts_per_resident_day,
            "latency_p50_s": self.latency(50),
            "latency_p95_s": self.latency(95),
            "latency_max_s": max(self.latencies) if self.latencies else None,
        }


@dataclass
class PromptScore:
    """The falls' first stage: suspicions that prompted the wearer (module docstring)."""

    labels: int = 0  # every fall label, answered or not
    prompted: int = 0
    prompts: int = 0  # unique suspicions
    false_prompts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # confirmed / cancelled / open
    wear_days: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def per_wear_day(self) -> float | None:
        return self.prompts / self.wear_days if self.wear_days > 0 else None

    def latency(self, q: float) -> float | None:
        return float(np.percentile(self.latencies, q)) if self.latencies else None

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": self.labels,
            "prompted": self.prompted,
            "prompts": self.prompts,
            "false_prompts": self.false_prompts,
            "outcomes": dict(sorted(self.outcomes.items())),
            "wear_days": self.wear_days,
            "prompts_per_wear_day": self.per_wear_day,
            "latency_p50_s": self.latency(50),
            "latency_p95_s": self.latency(95),
        }


def score_prompts(
    labels: Sequence[LabelRow],
    suspicions: Iterable[Mapping[str, Any]],
    alerts: Sequence[Alert],
    wear_days: float,
) -> PromptScore:
    """The prompt stage of falls: each suspicion's final outcome, and which falls it caught."""
    first: dict[str, Mapping[str, Any]] = {}
    final: dict[str, str] = {}
    for s in suspicions:
        sid = str(s["suspicion_id"])
        first.setdefault(sid, s)
        final[sid] = str(s["outcome"])
    ps = PromptScore(wear_days=wear_days, prompts=len(first))
    for outcome in final.values():
        ps.outcomes[outcome] = ps.outcomes.get(outcome, 0) + 1
    moments: dict[str, list[tuple[float, str]]] = {}  # resident -> (detected_at, id)
    for sid, s in first.items():
        moments.setdefault(str(s["resident_id"]), []).append((float(s["detected_at"]), sid))
    for a in alerts:
        if a.kind == "fall":
            moments.setdefault(a.resident_id, []).append((a.first, a.alert_id))
    true_ids: set[str] = set()
    for lab in labels:
        if lab.kind != "fall":
            continue
        ps.labels += 1
        inside = [
            (d, i)
            for d, i in moments.get(lab.resident, [])
            if lab.start - EARLY_S <= d <= lab.deadline
        ]
        true_ids.update(i for _d, i in inside)
        if inside:
            ps.prompted += 1
            ps.latencies.append(min(d for d, _i in inside) - lab.start)
    ps.false_prompts = sum(1 for sid in first if sid not in true_ids)
    return ps


@dataclass
class Score:
    kinds: dict[str, KindScore]
    resident_days: float
    misses: list[LabelRow]
    false_alarms: list[Alert]
    alerts: list[Alert]
    matched: dict[int, list[str]]  # label index -> alert ids that detect it
    context: dict[str, str] = field(default_factory=dict)  # alert id -> what was going on
    prompts: PromptScore | None = None  # the falls' prompt stage, when suspicions were given

    def to_json(self) -> dict[str, Any]:
        return {
            "resident_days": self.resident_days,
            "kinds": {k: v.to_json() for k, v in self.kinds.items()},
            "fall_prompts": self.prompts.to_json() if self.prompts else None,
            "misses": [m.__dict__ for m in self.misses],
            "false_alarms": [
                {**_brief(a), "context": self.context.get(a.alert_id, "")}
                for a in self.false_alarms
            ],
        }


def _brief(a: Alert) -> dict[str, Any]:
    details = {
        k: v
        for k, v in a.details.items()
        if k in ("reason", "news2", "detected_by", "peak_g", "distance_m", "placement")
    }
    return {
        "alert_id": a.alert_id,
        "kind": a.kind,
        "resident_id": a.resident_id,
        "device_id": a.device_id,
        "severity": a.severity,
        "ts": a.ts,
        "detected_at": a.first,
        "details": details,
    }


def unique_alerts(records: Iterable[Mapping[str, Any]]) -> list[Alert]:
    """Group alert records by ``alert_id`` (highest severity and first record kept)."""
    by_id: dict[str, Alert] = {}
    for rec in records:
        aid = str(rec["alert_id"])
        found = by_id.get(aid)
        if found is None:
            by_id[aid] = Alert(
                aid,
                str(rec["kind"]),
                str(rec["resident_id"]),
                str(rec.get("device_id", "")),
                str(rec.get("severity", "")),
                float(rec["ts"]),
                [float(rec["detected_at"])],
                dict(rec.get("details") or {}),
                dict(rec),
            )
        else:
            found.detected_at.append(float(rec["detected_at"]))
            if rec.get("severity") == "critical":
                found.severity = "critical"
    return sorted(by_id.values(), key=lambda a: (a.first, a.alert_id))


def score(
    labels: Sequence[LabelRow],
    records: Iterable[Mapping[str, Any]],
    resident_days: float,
    suspicions: Iterable[Mapping[str, Any]] | None = None,
    wear_days: float = 0.0,
) -> Score:
    """Match alerts to labels (module docstring) and count per kind; with ``suspicions``, the
    prompt stage of falls too."""
    alerts = unique_alerts(records)
    kinds = {k: KindScore(k, resident_days=resident_days) for k in KINDS}
    for lab in labels:
        kinds.setdefault(lab.kind, KindScore(lab.kind, resident_days=resident_days))
    for a in alerts:
        kinds.setdefault(a.kind, KindScore(a.kind, resident_days=resident_days))
    by_key: dict[tuple[str, str], list[Alert]] = {}
    for a in alerts:
        by_key.setdefault((a.resident_id, a.kind), []).append(a)
    true_ids: set[str] = set()
    ongoing_ids: set[str] = set()  # raised while a labelled condition was still under way
    misses: list[LabelRow] = []
    matched: dict[int, list[str]] = {}
    for i, lab in enumerate(labels):
        ks = kinds[lab.kind]
        if lab.answered == "ok":  # needs nobody; an alert for it is still a real fall
            for a in by_key.get((lab.resident, lab.kind), []):
                if any(lab.start - EARLY_S <= d <= lab.deadline for d in a.detected_at):
                    ongoing_ids.add(a.alert_id)
            continue
        ks.labels += 1
        best = math.inf
        for a in by_key.get((lab.resident, lab.kind), []):
            inside = [d for d in a.detected_at if lab.start - EARLY_S <= d <= lab.deadline]
            if inside:
                true_ids.add(a.alert_id)
                matched.setdefault(i, []).append(a.alert_id)
                best = min(best, min(inside))
            if lab.end is not None and any(
                lab.start - EARLY_S <= d <= lab.end for d in a.detected_at
            ):
                ongoing_ids.add(a.alert_id)
        if math.isfinite(best):
            ks.detected += 1
            ks.latencies.append(best - lab.start)
        else:
            misses.append(lab)
    false_alarms = []
    for a in alerts:
        ks = kinds[a.kind]
        ks.alerts += 1
        if a.alert_id in true_ids or a.alert_id in ongoing_ids:
            ks.true_alerts += 1
        else:
            ks.false_alarms += 1
            false_alarms.append(a)
    prompts = None if suspicions is None else score_prompts(labels, suspicions, alerts, wear_days)
    return Score(kinds, resident_days, misses, false_alarms, alerts, matched, prompts=prompts)


def read_labels(path: Path) -> list[LabelRow]:
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            d = orjson.loads(line)
            end = d.get("end")
            out.append(
                LabelRow(
                    str(d["resident"]),
                    str(d["kind"]),
                    float(d["start"]),
                    float(d["deadline"]),
                    str(d.get("note", "")),
                    None if end is None else float(end),
                    str(d.get("answered", "")),
                )
            )
    return out


# ----------------------------------------------------------------------------- reports


def _fmt(v: float | None, pct: bool = False, digits: int = 1) -> str:
    if v is None:
        return "–"
    return f"{100 * v:.1f} %" if pct else f"{v:.{digits}f}"


COLUMNS = (
    "kind",
    "labels",
    "detected",
    "recall",
    "alerts",
    "precision",
    "false alarms",
    "false / resident-day",
    "alerts / resident-day",
    "latency p50 (s)",
    "latency p95 (s)",
)


PROMPT_COLUMNS = (
    "fall labels",
    "prompted",
    "prompts",
    "prompts / wear-day",
    "false prompts",
    "confirmed",
    "cancelled",
    "latency p50 (s)",
    "latency p95 (s)",
)


def prompt_row(ps: PromptScore) -> list[str]:
    return [
        str(ps.labels),
        str(ps.prompted),
        str(ps.prompts),
        _fmt(ps.per_wear_day, digits=3),
        str(ps.false_prompts),
        str(ps.outcomes.get("confirmed", 0)),
        str(ps.outcomes.get("cancelled", 0)),
        _fmt(ps.latency(50)),
        _fmt(ps.latency(95)),
    ]


def table_rows(result: Score) -> list[list[str]]:
    rows = []
    for k, ks in result.kinds.items():
        if not ks.labels and not ks.alerts:
            continue
        rows.append(
            [
                k,
                str(ks.labels),
                str(ks.detected),
                _fmt(ks.recall, pct=True),
                str(ks.alerts),
                _fmt(ks.precision, pct=True),
                str(ks.false_alarms),
                _fmt(ks.false_per_resident_day, digits=3),
                _fmt(ks.alerts_per_resident_day, digits=3),
                _fmt(ks.latency(50)),
                _fmt(ks.latency(95)),
            ]
        )
    return rows


def markdown(result: Score, title: str, notes: Sequence[str] = ()) -> str:
    rows = table_rows(result)
    out = [
        f"# {title}",
        "",
        f"Resident-days: {result.resident_days:.2f}",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    if result.prompts is not None:
        out += ["", "Falls, first stage (prompts to the wearer):", ""]
        out += ["| " + " | ".join(PROMPT_COLUMNS) + " |", "|" + "---|" * len(PROMPT_COLUMNS)]
        out += ["| " + " | ".join(prompt_row(result.prompts)) + " |"]
    out += ["", *notes]
    if result.misses:
        out += [
            "",
            "## Missed labels",
            "",
            "| resident | kind | start | note |",
            "|---|---|---|---|",
        ]
        out += [f"| {m.resident} | {m.kind} | {m.start:.1f} | {m.note} |" for m in result.misses]
    if result.false_alarms:
        out += [
            "",
            "## False alarms",
            "",
            "| alert | resident | kind | detected_at | details | context |",
            "|---|---|---|---|---|---|",
        ]
        for a in result.false_alarms:
            d = _brief(a)["details"]
            out.append(
                f"| {a.alert_id} | {a.resident_id} | {a.kind} | {a.first:.1f} | "
                f"{orjson.dumps(d).decode()} | {result.context.get(a.alert_id, '')} |"
            )
    return "\n".join(out) + "\n"


def plot_latency(result: Score, path: Path) -> None:
    """A strip + box plot of detection latency per kind (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k, ks in result.kinds.items() if ks.latencies]
    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    if kinds:
        data = [result.kinds[k].latencies for k in kinds]
        ax.boxplot(data, vert=False, tick_labels=kinds, showfliers=False)
        rng = np.random.default_rng(0)
        for i, d in enumerate(data, start=1):
            ax.scatter(d, i + rng.uniform(-0.15, 0.15, len(d)), s=10, alpha=0.6)
        ax.set_xscale("symlog", linthresh=1.0)
    else:
        ax.text(0.5, 0.5, "no detections", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("detection latency: detected_at - label start (s, symlog)")
    ax.set_title("Latency per kind")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def print_table(result: Score, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for c in COLUMNS:
        table.add_column(c, justify="left" if c == "kind" else "right")
    for r in table_rows(result):
        table.add_row(*r)
    console = Console(width=max(Console().width, 150))
    console.print(table)
    if result.prompts is not None:
        prompts = Table(title="falls, first stage: prompts to the wearer (what the wearer feels)")
        for c in PROMPT_COLUMNS:
            prompts.add_column(c, justify="right")
        prompts.add_row(*prompt_row(result.prompts))
        console.print(prompts)


def annotate(result: Score, people: Sequence[Mapping[str, Any]]) -> None:
    """Name the generated activity around each false fall alert (from ``scenario.json``)."""
    acts = {str(p["rid"]): p.get("activities", []) for p in people}
    for a in result.false_alarms:
        near = [
            f"{k} at {s:.0f}" for s, k in acts.get(a.resident_id, []) if s - 5 <= a.ts <= s + 60
        ]
        if near:
            result.context[a.alert_id] = ", ".join(near)
