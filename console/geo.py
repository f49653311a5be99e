"""Small geometry for the console: distances, fences, and an equirectangular SVG projection."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

EARTH_M = 6_371_000.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(min(1.0, a)))


def in_polygon(lat: float, lon: float, poly: Sequence[Sequence[float]]) -> bool:
    inside = False
    j = len(poly) - 1
    for i in range(len(poly)):
        yi, xi = poly[i][0], poly[i][1]
        yj, xj = poly[j][0], poly[j][1]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def fence_distance(lat: float, lon: float, fence: Any) -> float:
    """Metres outside the fence (0 inside); polygons measured to their nearest corner."""
    if fence.circle is not None:
        c = fence.circle
        return max(0.0, distance_m(lat, lon, c.lat, c.lon) - c.radius_m)
    poly = fence.polygon or []
    if in_polygon(lat, lon, poly):
        return 0.0
    return min(distance_m(lat, lon, p[0], p[1]) for p in poly)


def nearest_fence(lat: float, lon: float, fences: Sequence[Any]) -> tuple[str, float] | None:
    """(name, metres outside) of the closest fence; metres 0 means inside it."""
    best: tuple[str, float] | None = None
    for f in fences:
        d = fence_distance(lat, lon, f)
        if best is None or d < best[1]:
            best = (f.name, d)
    return best


@dataclass
class Projection:
    """Lat/lon → SVG x/y in a box, north up, metres equal in both directions."""

    lat0: float
    lon0: float
    scale: float  # px per metre
    cx: float
    cy: float

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        mx = math.radians(lon - self.lon0) * EARTH_M * math.cos(math.radians(self.lat0))
        my = math.radians(lat - self.lat0) * EARTH_M
        return round(self.cx + mx * self.scale, 1), round(self.cy - my * self.scale, 1)

    def px(self, metres: float) -> float:
        return round(metres * self.scale, 1)


def fit(
    points: Sequence[tuple[float, float]],
    radii_m: Sequence[float],
    w: float,
    h: float,
    pad: float = 16,
    min_span_m: float = 200,
) -> Projection:
    """A projection that shows every point (with its radius around it) inside w×h."""
    lats = [p[0] for p in points]
    lons = [p[1] for p in points]
    lat0 = (min(lats) + max(lats)) / 2
    lon0 = (min(lons) + max(lons)) / 2
    k = math.cos(math.radians(lat0))
    xs = [math.radians(p[1] - lon0) * EARTH_M * k for p in points]
    ys = [math.radians(p[0] - lat0) * EARTH_M for p in points]
    rs = list(radii_m) + [0.0] * (len(points) - len(radii_m))
    span_x = max(
        max(x + r for x, r in zip(xs, rs, strict=True))
        - min(x - r for x, r in zip(xs, rs, strict=True)),
        min_span_m,
    )
    span_y = max(
        max(y + r for y, r in zip(ys, rs, strict=True))
        - min(y - r for y, r in zip(ys, rs, strict=True)),
        min_span_m,
    )
    scale = min((w - 2 * pad) / span_x, (h - 2 * pad) / span_y)
    mid_x = (
        max(x + r for x, r in zip(xs, rs, strict=True))
        + min(x - r for x, r in zip(xs, rs, strict=True))
    ) / 2
    mid_y = (
        max(y + r for y, r in zip(ys, rs, strict=True))
        + min(y - r for y, r in zip(ys, rs, strict=True))
    ) / 2
    return Projection(lat0, lon0, scale, w / 2 - mid_x * scale, h / 2 + mid_y * scale)
