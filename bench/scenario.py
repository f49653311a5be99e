"""Scenario generation and in-process evaluation (`anxin scenario generate`, `anxin evaluate`).

Issue #4 asks for a 20-resident, 24-hour scenario generated in under a minute and evaluated "in
seconds". Printed: generation time (and the 60 s target), evaluation time with one process and
with one per core, messages/s, and the ratio to the ceiling measured in the same run: reading
and decoding `messages.jsonl` with orjson, the least any in-process evaluation has to do.
Figures only: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (puts the repository on sys.path)
import orjson
from _common import machine_line

from anxin import evaluation
from simulators import scenario

GENERATE_TARGET_S = 60.0


def decode_ceiling(messages: Path) -> tuple[int, float]:
    """(messages, seconds) to read and decode every line: the floor of any evaluation."""
    started = time.perf_counter()
    n = 0
    with messages.open("rb") as f:
        for line in f:
            orjson.loads(line)
            n += 1
    return n, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--residents", type=int, default=20)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="2 residents x 2 h (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.residents, args.hours = 2, 2.0
    print(machine_line("before"))
    with tempfile.TemporaryDirectory(prefix="anxin-bench-scenario-") as tmp:
        folder = Path(tmp) / "scenario"
        started = time.perf_counter()
        scenario.generate(folder, residents=args.residents, hours=args.hours, seed=args.seed)
        gen_s = time.perf_counter() - started
        size_mb = (folder / "messages.jsonl").stat().st_size / 1e6
        n, ceil_s = decode_ceiling(folder / "messages.jsonl")
        print(
            f"generate: {args.residents} residents x {args.hours:g} h, {n} messages "
            f"({size_mb:.0f} MB) in {gen_s:.1f} s = {n / gen_s:,.0f} msgs/s"
            + (f"; {gen_s / GENERATE_TARGET_S:.2f} of the 60 s target" if not args.quick else "")
        )
        print(f"ceiling (read + orjson decode): {n / ceil_s:,.0f} msgs/s ({ceil_s:.2f} s)")
        for jobs in sorted({1, os.cpu_count() or 1}):
            ev = evaluation.evaluate_inprocess(folder, jobs=jobs)
            took = float(ev.timings["pipeline_s"])
            fall = ev.result.kinds.get("fall")
            print(
                f"evaluate in-process, {jobs} process(es): {took:.1f} s = {n / took:,.0f} msgs/s, "
                f"{(n / took) / (n / ceil_s):.3f} of the ceiling"
                + (f"; fall recall {fall.recall:.3f}" if fall and fall.recall is not None else "")
            )
    print(machine_line("after"))


if __name__ == "__main__":
    main()
