"""simulators.wearstats on constructed signals and a constructed scenario folder (no real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml

from simulators import wearstats

RATE = 50.0
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC


def _still(seconds: float, direction: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    rng = np.random.default_rng(0)
    n = int(seconds * RATE)
    return np.array(direction) + rng.normal(0.0, 0.003, (n, 3))


def test_a_known_number_of_3g_spikes_gives_that_count() -> None:
    g = _still(120.0)
    at = np.arange(5, 115, 10) * int(RATE)  # 11 spikes, 10 s apart
    for i in at:
        g[i : i + 2] = [0.0, 0.0, 3.5]  # two samples over 3 g: still one peak
    s = wearstats.stream_stats(g, RATE, T0)
    assert s.peaks[3.0] == at.size and s.peaks[2.0] == at.size
    assert s.hard_jerks == at.size  # the jump into each spike
    summary = s.summary()
    assert summary["peaks3_sh"] == pytest.approx(at.size / (120.0 / 3600.0))
    assert summary["streamed_h"] == pytest.approx(120.0 / 3600.0)
    assert summary["wear_h"] == pytest.approx(120.0 / 3600.0)


def test_a_run_of_steps_above_2g_is_a_peak_per_step_and_chunks_do_not_matter() -> None:
    t = np.arange(int(20 * RATE)) / RATE
    g = np.zeros((t.size, 3))
    g[:, 2] = 1.0 + 1.5 * np.maximum(0.0, np.sin(2 * np.pi * 1.5 * t)) ** 4  # 1.5 steps/s
    one = wearstats.stream_stats(g, RATE, T0, chunk_s=1.0)
    two = wearstats.stream_stats(g, RATE, T0, chunk_s=2.0)
    assert one.peaks[2.0] == two.peaks[2.0] == 30
    assert one.peaks[3.0] == 0
    assert np.array_equal(one.jerk_hist, two.jerk_hist)


def test_a_90_degree_turn_held_2s_is_one_orientation_change() -> None:
    held = np.vstack([_still(5.0), _still(2.0, (1.0, 0.0, 0.0))])
    assert wearstats.stream_stats(held, RATE, T0).orient_changes == 1
    brief = np.vstack([_still(5.0), _still(0.5, (1.0, 0.0, 0.0)), _still(5.0)])
    assert wearstats.stream_stats(brief, RATE, T0).orient_changes == 0
    small = np.vstack([_still(5.0), _still(5.0, (0.5, 0.0, 0.87))])  # 30 degrees
    assert wearstats.stream_stats(small, RATE, T0).orient_changes == 0
    there_and_back = np.vstack([_still(5.0), _still(3.0, (0.0, -1.0, 0.0)), _still(5.0)])
    assert wearstats.stream_stats(there_and_back, RATE, T0).orient_changes == 2


def test_still_fraction_and_jerk() -> None:
    still = wearstats.stream_stats(_still(60.0), RATE, T0)
    assert still.summary()["still"] > 0.99
    assert still.peaks[2.0] == 0 and still.hard_jerks == 0 and still.orient_changes == 0
    assert still.jerk_percentiles()[50.0] < 0.5
    t = np.arange(int(60 * RATE)) / RATE
    moving = _still(60.0) + 0.3 * np.sin(2 * np.pi * 2.0 * t)[:, None]
    m = wearstats.stream_stats(moving, RATE, T0)
    assert m.summary()["still"] == 0.0
    p = m.jerk_percentiles()
    assert p[50.0] < p[90.0] < p[99.0] and 3.0 < p[99.0] < 10.0  # peak |da/dt| about 6.5 g/s


def _folder(tmp: Path) -> Path:
    reg = {
        "residents": {
            "R001": {
                "timezone": "Asia/Shanghai",
                "devices": {"W001": {"placement": "wrist"}, "M001": {"type": "monitor"}},
            },
            "R002": {"timezone": "UTC", "devices": {"B002": {"placement": "waist"}}},
        }
    }
    (tmp / "registry.yaml").write_text(yaml.safe_dump(reg), encoding="utf-8")
    lines = []
    spike = _still(1.0)
    spike[10] = [0.0, 0.0, 3.5]
    # W001: a 1 s chunk every 10 s for an hour (local 08:00-09:00), a spike in 3 of them,
    # one of those inside a fall label's window; then a chunk not worn.
    for k in range(360):
        ts = T0 + k * 10.0
        g = spike if k in (20, 100, 300) else _still(1.0)
        lines.append((ts, "W001", {"ts": ts, "worn": True, "accel": {"rate": RATE, "g": g}}))
    lines.append(
        (T0 + 3600.0, "W001", {"ts": T0 + 3600.0, "worn": False, "accel": {"rate": 50, "g": spike}})
    )
    lines.append((T0 + 5.0, "M001", {"ts": T0 + 5.0, "vitals": {"sbp": 120}}))
    # B002: 20 s continuous, at 00:00 UTC
    for k in range(20):
        ts = T0 + k
        lines.append((ts, "B002", {"ts": ts, "accel": {"rate": RATE, "g": _still(1.0)}}))
    lines.sort(key=lambda x: x[0])
    with (tmp / "messages.jsonl").open("wb") as f:
        for ts, dev, p in lines:
            m = {"t": ts + 1.2, "topic": f"anxin/v1/devices/{dev}/telemetry", "payload": p}
            f.write(orjson.dumps(m, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
    label = {"resident": "R001", "kind": "fall", "start": T0 + 3010.0, "deadline": T0 + 3100.0}
    (tmp / "labels.jsonl").write_bytes(orjson.dumps(label) + b"\n")
    return tmp


def test_a_scenario_folder_per_device(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    rows = {d.device: d for d in wearstats.folder_stats(folder)}
    assert set(rows) == {"W001", "B002"}  # no monitor, nothing from a device not worn
    w = rows["W001"].stats
    assert rows["W001"].placement == "wrist" and rows["W001"].resident == "R001"
    assert w.peaks[3.0] == 2  # the third spike lies in the fall's window
    dropped = 7  # chunks overlapping [start - 15, start + 60): 3000, 3010, ..., 3060
    assert w.streamed_s == pytest.approx(360 - dropped)
    assert 0.97 < w.wear_s / 3600.0 < 1.0  # the gaps between reports count as wear
    s = w.summary()
    assert 9.0 < s["peaks3_sh"] / s["peaks3_wh"] < 11.0  # 1 s streamed per 10 s worn
    kept = {d.device: d for d in wearstats.folder_stats(folder, exclude_falls=False)}
    assert kept["W001"].stats.peaks[3.0] == 3
    b = rows["B002"].stats
    assert b.streamed_s == pytest.approx(20.0) and b.wear_s == pytest.approx(20.0)
    groups = wearstats.group(rows.values())
    assert set(groups) == {"wrist", "waist"}


def test_local_hours_keep_only_that_window(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    # W001 reports 08:00-09:00 Shanghai time; B002 at 00:00 UTC
    rows = {d.device: d for d in wearstats.folder_stats(folder, local_hours="07:00-22:00")}
    assert set(rows) == {"W001"}
    late = wearstats.folder_stats(folder, local_hours="08:30-22:00")
    assert late[0].stats.streamed_s == pytest.approx(180 - 7)
    wrap = {d.device for d in wearstats.folder_stats(folder, local_hours="23:00-01:00")}
    assert wrap == {"B002"}


def test_command_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _folder(tmp_path)
    assert wearstats.main([str(folder), "--by-device"]) == 0
    out = capsys.readouterr().out
    assert "| source |" in out and "wrist" in out and "W001" in out and "waist" in out


def test_bouts_keep_only_continuous_runs(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    rows = {d.device: d for d in wearstats.folder_stats(folder, bouts=True)}
    assert set(rows) == {"B002"}  # W001 sends lone 1 s chunks 10 s apart
    assert rows["B002"].stats.streamed_s == pytest.approx(20.0)
    assert rows["B002"].stats.wear_s == pytest.approx(20.0)
