"""The detector worker under tracemalloc, for bench/worker's ``WB_TRACEMALLOC=path``.

Creating ``<path>.go`` makes it write the live allocations by file and by line to ``path``
(one frame each), without stopping: the file is polled twice a second by a thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _dump(out: Path) -> None:
    snapshot = tracemalloc.take_snapshot()
    by_file = snapshot.statistics("filename")
    lines = [f"total {sum(s.size for s in by_file):,}"]
    lines += [f"{s.size:>12,} {s.count:>9,} {s.traceback[0].filename}" for s in by_file[:40]]
    lines.append("--- by line")
    for s in snapshot.statistics("lineno")[:70]:
        frame = s.traceback[0]
        lines.append(f"{s.size:>12,} {s.count:>9,} {frame.filename}:{frame.lineno}")
    out.write_text("\n".join(lines) + "\n")


def _watch(out: Path) -> None:
    go = out.with_name(out.name + ".go")
    while True:
        time.sleep(0.5)
        if go.exists():
            go.unlink()
            _dump(out)


if __name__ == "__main__":
    tracemalloc.start(1)
    target = Path(os.environ["WB_TRACEMALLOC"])
    threading.Thread(target=_watch, args=(target,), daemon=True).start()
    sys.argv = ["anxin", "worker"]
    from anxin.cli import main

    main()
