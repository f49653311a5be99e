"""CSV import: a recording in m/s² with relative times becomes a valid, labelled scenario."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from anxin.core.registry import load_registry
from ingest.telemetry import Accepted, validate_telemetry
from simulators.importer import DEFAULT_T0, CsvImportError, import_csv


def test_csv_to_scenario(tmp_path: Path) -> None:
    t = np.arange(0, 5.0, 0.01)  # 100 Hz, 5 s, then a 2 s gap, then 1 s more
    t = np.concatenate([t, 7.0 + np.arange(0, 1.0, 0.01)])
    rows = ["time,x,y,z"] + [f"{x:.3f},0,0,{9.80665:.5f}" for x in t]
    (tmp_path / "rec.csv").write_text("\n".join(rows))
    (tmp_path / "labels.csv").write_text("kind,start\nfall,2.5\n")
    info = import_csv(
        tmp_path / "rec.csv",
        tmp_path / "out",
        rate=50,
        placement="waist",
        units="ms2",
        labels_path=tmp_path / "labels.csv",
    )
    assert info["messages"] == 5 + 1  # 1 s a message; the gap starts a new run
    registry = load_registry(tmp_path / "out" / "registry.yaml")
    assert registry.residents["R001"].devices["D001"].placement == "waist"
    msgs = [orjson.loads(x) for x in (tmp_path / "out" / "messages.jsonl").read_bytes().split()]
    for m in msgs:
        v = validate_telemetry(m["topic"], orjson.dumps(m["payload"]), m["t"])
        assert isinstance(v, Accepted) and not v.dropped
        assert m["payload"]["accel"]["g"][0] == [0.0, 0.0, 1.0]  # m/s² -> g
    assert msgs[0]["payload"]["ts"] == DEFAULT_T0
    assert msgs[-1]["payload"]["ts"] == DEFAULT_T0 + 7.0
    assert msgs[0]["t"] == pytest.approx(DEFAULT_T0 + 1.0 + 0.2)
    labels = [orjson.loads(x) for x in (tmp_path / "out" / "labels.jsonl").read_bytes().split()]
    assert labels == [
        {
            "resident": "R001",
            "kind": "fall",
            "start": DEFAULT_T0 + 2.5,
            "deadline": DEFAULT_T0 + 32.5,
        }
    ]


def test_csv_errors_are_clear(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(CsvImportError, match="time, x, y and z"):
        import_csv(tmp_path / "bad.csv", tmp_path / "o", 50, "wrist")
    (tmp_path / "nan.csv").write_text("time,x,y,z\n0,1,2,x\n")
    with pytest.raises(CsvImportError, match="not a number"):
        import_csv(tmp_path / "nan.csv", tmp_path / "o", 50, "wrist")
