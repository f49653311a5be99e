# ruff: noqa: E501 (SVG markup reads better on one line)
"""The alert page's pictures, drawn as SVG from coordinates and samples (no tile server)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from console.geo import fit

_NICE_M = (10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)


def map_svg(
    positions: Sequence[Any], fences: Sequence[Any], w: int = 360, h: int = 240
) -> Markup | None:
    """Last positions (oldest → newest) and the resident's geofences, north up, with a scale."""
    pts: list[tuple[float, float]] = []
    radii: list[float] = []
    for p in positions:
        pts.append((p.lat, p.lon))
        radii.append(float(p.acc or 0.0) if p is positions[-1] else 0.0)
    for f in fences:
        if f.circle is not None:
            pts.append((f.circle.lat, f.circle.lon))
            radii.append(f.circle.radius_m)
        else:
            for lat, lon in f.polygon or []:
                pts.append((lat, lon))
                radii.append(0.0)
    if not pts:
        return None
    pr = fit(pts, radii, w, h)
    out = [
        f'<svg class="map" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" role="img">',
        f'<rect width="{w}" height="{h}" fill="#f4f1ea"/>',
    ]
    for f in fences:
        name = escape(f.name)
        if f.circle is not None:
            x, y = pr.xy(f.circle.lat, f.circle.lon)
            r = max(pr.px(f.circle.radius_m), 2)
            out.append(
                f'<circle class="fence" cx="{x}" cy="{y}" r="{r}" fill="#cfe3d4" '
                f'fill-opacity="0.6" stroke="#3c7d4f" stroke-width="1.5"/>'
            )
            out.append(
                f'<text x="{x}" y="{y - r - 3}" text-anchor="middle" class="lbl">{name}</text>'
            )
        else:
            xy = [pr.xy(lat, lon) for lat, lon in f.polygon or []]
            pts_s = " ".join(f"{x},{y}" for x, y in xy)
            out.append(
                f'<polygon class="fence" points="{pts_s}" fill="#d8e2f0" fill-opacity="0.6" '
                f'stroke="#3b5f8f" stroke-width="1.5"/>'
            )
            cx = sum(p[0] for p in xy) / len(xy)
            cy = sum(p[1] for p in xy) / len(xy)
            out.append(
                f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" class="lbl">{name}</text>'
            )
    if positions:
        xy = [pr.xy(p.lat, p.lon) for p in positions]
        if len(xy) > 1:
            pts_s = " ".join(f"{x},{y}" for x, y in xy)
            out.append(
                f'<polyline points="{pts_s}" fill="none" stroke="#8a5a2b" stroke-width="1.5" stroke-dasharray="4 3"/>'
            )
        for x, y in xy[:-1]:
            out.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="#8a5a2b"/>')
        last = positions[-1]
        x, y = xy[-1]
        if last.acc:
            out.append(
                f'<circle cx="{x}" cy="{y}" r="{max(pr.px(last.acc), 3)}" fill="#d33" fill-opacity="0.15" stroke="none"/>'
            )
        out.append(
            f'<circle class="last" cx="{x}" cy="{y}" r="6" fill="#d33" stroke="#fff" stroke-width="2"/>'
        )
    # scale bar: the nice length closest to a quarter of the width
    want = (w / 4) / pr.scale
    metres = min(_NICE_M, key=lambda m: abs(m - want))
    bar = pr.px(metres)
    label = f"{metres // 1000} km" if metres >= 1000 else f"{metres} m"
    out.append(
        f'<g class="scale"><line x1="10" y1="{h - 12}" x2="{10 + bar}" y2="{h - 12}" stroke="#333" stroke-width="2"/>'
    )
    out.append(
        f'<text x="{10 + bar / 2}" y="{h - 16}" text-anchor="middle" class="lbl">{label}</text></g>'
    )
    out.append(f'<text x="{w - 14}" y="18" text-anchor="middle" class="lbl n">N</text>')
    out.append(f'<path d="M{w - 14} 22 l-4 10 h8 z" fill="#333"/>')
    out.append("</svg>")
    return Markup("".join(out))


PANELS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("v.hr", ("hr",), "#c0392b"),
    ("v.spo2", ("spo2",), "#2471a3"),
    ("v.bp", ("sbp", "dbp"), "#7d3c98"),
    ("v.rr", ("rr",), "#1e8449"),
    ("v.temp", ("temp",), "#b9770e"),
)


def vitals_svg(
    series: dict[str, list[Any]],
    start: float,
    end: float,
    tz: str,
    t: Callable[[str], str],
    w: int = 360,
    panel_h: int = 64,
) -> Markup | None:
    """Stacked small charts, one per vital sign with data, sharing a time axis in ``tz``."""
    panels = [p for p in PANELS if any(series.get(k) for k in p[1])]
    if not panels:
        return None
    left, right, axis_h = 34, 6, 18
    h = len(panels) * panel_h + axis_h
    zone = ZoneInfo(tz)
    span = max(end - start, 1.0)

    def x(ts: float) -> float:
        return round(left + (ts - start) / span * (w - left - right), 1)

    out = [
        f'<svg class="chart" viewBox="0 0 {w} {h}" xmlns="http://www.w3.org/2000/svg" role="img">'
    ]
    for i, (key, params, colour) in enumerate(panels):
        top = i * panel_h
        values = [s.value for k in params for s in series.get(k, [])]
        lo, hi = min(values), max(values)
        if hi - lo < 1e-9:
            lo, hi = lo - 1, hi + 1
        pad = (hi - lo) * 0.1
        lo, hi = lo - pad, hi + pad

        def y(v: float, top: int = top, lo: float = lo, hi: float = hi) -> float:
            return round(top + 14 + (hi - v) / (hi - lo) * (panel_h - 20), 1)

        out.append(
            f'<rect x="{left}" y="{top + 12}" width="{w - left - right}" height="{panel_h - 16}" fill="#fafafa" stroke="#ddd"/>'
        )
        out.append(f'<text x="{left + 3}" y="{top + 10}" class="lbl">{escape(t(key))}</text>')
        out.append(
            f'<text x="{left - 3}" y="{top + 20}" text-anchor="end" class="tick">{hi:.0f}</text>'
        )
        out.append(
            f'<text x="{left - 3}" y="{top + panel_h - 6}" text-anchor="end" class="tick">{lo:.0f}</text>'
        )
        for param in params:
            samples = series.get(param, [])
            if not samples:
                continue
            pts = " ".join(f"{x(s.ts)},{y(s.value)}" for s in samples)
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.3"/>'
            )
            last = samples[-1]
            out.append(f'<circle cx="{x(last.ts)}" cy="{y(last.value)}" r="2.2" fill="{colour}"/>')
            out.append(
                f'<text x="{w - right - 2}" y="{top + 10}" text-anchor="end" class="tick">{last.value:.0f}</text>'
                if param == params[0]
                else ""
            )
    # time axis: every 6 hours in the resident's zone
    base = datetime.fromtimestamp(start, zone).replace(minute=0, second=0, microsecond=0)
    hour = base.hour - base.hour % 6
    tick = base.replace(hour=hour).timestamp()
    axis_y = len(panels) * panel_h
    while tick <= end:
        if tick >= start:
            label = datetime.fromtimestamp(tick, zone).strftime("%H:%M")
            out.append(f'<line x1="{x(tick)}" y1="0" x2="{x(tick)}" y2="{axis_y}" stroke="#eee"/>')
            out.append(
                f'<text x="{x(tick)}" y="{axis_y + 12}" text-anchor="middle" class="tick">{label}</text>'
            )
        tick += 6 * 3600
    out.append("</svg>")
    return Markup("".join(out))
