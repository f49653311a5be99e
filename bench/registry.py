"""bench/registry: the memory and load time of the registry every process holds (issue 16).

Every Anxin process (bridge, detector worker, alerts worker, console, storage writer) loads the
registry through ``RegistryWatcher`` (``load_registry``). This loads a demo registry of N and 4N
residents (``simulators.fleet.demo_registry``: one wrist watch, one circular home fence and one
family contact each, written as YAML) in a fresh process each, the real way (the watcher, then
``device_owner`` once so its index exists), and prints:

- the **RSS slope per resident** between N and 4N (RSS after the load minus RSS before, in the
  same process): what one more resident costs every process, against the 2,048-byte target;
  and the same after the watcher has reloaded the file once (saved again, same residents);
- tracemalloc bytes per resident of the same load (live Python objects, no allocator overhead),
  and of ``Registry.model_validate(demo_registry(3000))`` (the dict already in memory);
- the load's CPU time per resident, beside libyaml's ``yaml.load`` of the same file alone (the
  parse every loader pays; measured in its own fresh process in the same run);
- the same RSS slopes for the registry without personal data (``strip``) and as the bridge and
  the detector worker hold it (``RulesWatcher``, ``anxin/core/rules.py``);
- for comparison, the RSS slope of the whole-document path (``load_yaml_model(path, Registry)``:
  ``yaml.load`` of the whole file, then one ``model_validate``), which ``load_registry`` keeps
  only for files it does not load resident by resident and for wording errors.

Usage: .venv/bin/python bench/registry.py [--residents 10000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, machine_line, verdict

TARGET_BYTES = 2048  # per resident, every process (issue 16 item 4)
# how a process holds it: every field (alerts worker, console), without personal data
# (``strip``, before 2026-12-07 the bridge and the detector worker), as rules (the bridge and
# the detector worker now, anxin/core/rules.py)
WATCHERS = ("watcher", "stripped", "rules")


def rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import psutil

    return int(psutil.Process().memory_info().rss)


def child(mode: str, path: Path) -> dict[str, Any]:
    """One measurement in this (fresh) process; the result as a dict."""
    import gc

    import yaml

    from anxin.core.registry import Registry, RegistryWatcher, load_registry
    from anxin.core.yamlfile import load_yaml_model

    load_registry(ROOT / "examples" / "registry.yaml")  # imports, schemas, zoneinfo: warm
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    first_device = "W001"
    gc.collect()
    if mode == "tracemalloc":
        import tracemalloc

        tracemalloc.start()
        registry = load_registry(path)
        registry.device_owner(first_device)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return {"residents": len(registry.residents), "traced": held}
    if mode == "tracemalloc-dict":
        import tracemalloc

        from simulators.fleet import demo_registry

        data = demo_registry(int(str(path)))
        gc.collect()
        tracemalloc.start()
        registry = Registry.model_validate(data)
        registry.device_owner(first_device)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return {"residents": len(registry.residents), "traced": held}
    rss0 = rss_bytes()
    w0, c0 = time.perf_counter(), time.process_time()
    extra: dict[str, Any] = {}
    if mode in WATCHERS:
        from anxin.core.rules import RulesWatcher

        watcher: Any = (
            RulesWatcher(path, reload_every_s=0)
            if mode == "rules"
            else RegistryWatcher(path, reload_every_s=0, strip=mode == "stripped")
        )
        registry = watcher.current
        registry.device_owner(first_device)
        n = len(registry.residents)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        gc.collect()
        extra["rss"] = rss_bytes() - rss0
        # the file saved again (same residents): a reload, both versions alive for a moment
        os.utime(path, (time.time() + 10, time.time() + 10))
        c1 = time.process_time()
        reloaded = watcher.current
        reloaded.device_owner(first_device)
        extra["reload_cpu"] = time.process_time() - c1
        assert reloaded is not registry
        del registry, reloaded
        gc.collect()
        extra["rss_reload"] = rss_bytes() - rss0
        return {"residents": n, "wall": wall, "cpu": cpu, **extra}
    elif mode == "document":
        registry = load_yaml_model(path, Registry)
        registry.device_owner(first_device)
        n = len(registry.residents)
    elif mode == "parse":
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        n = len(data["residents"])
        del data
    else:
        raise SystemExit(f"unknown mode {mode}")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    gc.collect()
    return {"residents": n, "rss": rss_bytes() - rss0, "wall": wall, "cpu": cpu}


def measure(mode: str, arg: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", mode, arg],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"child {mode} {arg} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def write_registry(folder: Path, residents: int) -> Path:
    import yaml

    from simulators.fleet import demo_registry

    path = folder / f"registry-{residents}.yaml"
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(demo_registry(residents), Dumper=dumper, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def kib(x: float) -> str:
    return f"{x / 1024:,.1f} KiB" if abs(x) >= 1024 else f"{x:,.0f} B"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--residents", type=int, default=10_000, help="N (and 4N) residents")
    ap.add_argument("--dict-residents", type=int, default=3000, help="model_validate figure")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "ARG"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child[0], Path(a.child[1]))))
        return
    if a.quick:
        a.residents, a.dict_residents = 500, 300
    print(machine_line("before"), flush=True)
    w0 = time.perf_counter()
    n1, n2 = a.residents, 4 * a.residents
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as tmp:
        paths = {n: write_registry(Path(tmp), n) for n in (n1, n2)}
        size = {n: paths[n].stat().st_size for n in (n1, n2)}
        print(
            f"registry: demo residents (1 watch, 1 home circle, 1 family contact each), YAML "
            f"{size[n1] / n1:,.0f} B/resident; each figure from a fresh process",
            flush=True,
        )
        got: dict[tuple[str, int], dict[str, Any]] = {}
        for mode in (*WATCHERS, "document", "parse"):
            for n in (n1, n2):
                got[mode, n] = r = measure(mode, str(paths[n]))
                assert r["residents"] == n, r
                rss = f"RSS +{r['rss'] / 2**20:,.1f} MiB ({r['rss'] / n:,.0f} B/resident), "
                if "rss_reload" in r:
                    rss += (
                        f"after a reload {r['rss_reload'] / n:,.0f} B/resident "
                        f"(reload {r['reload_cpu'] / n * 1e6:,.0f} us/resident CPU), "
                    )
                print(
                    f"  {mode:8s} {n:>7,} residents: {rss if mode != 'parse' else ''}"
                    f"{r['cpu']:.2f} s CPU ({r['cpu'] / n * 1e6:,.0f} us/resident), "
                    f"{r['wall']:.2f} s wall",
                    flush=True,
                )
        traced = measure("tracemalloc", str(paths[n1]))
        traced_dict = measure("tracemalloc-dict", str(a.dict_residents))

    def slope(mode: str, key: str = "rss") -> float:
        return float(got[mode, n2][key] - got[mode, n1][key]) / (n2 - n1)

    per_res = slope("watcher")
    print(
        f"RSS slope per resident, {n1:,} -> {n2:,} (RegistryWatcher, index built): "
        f"{per_res:,.0f} B = {per_res / TARGET_BYTES:.2f} of the {TARGET_BYTES:,} B target  "
        f"{verdict(per_res <= TARGET_BYTES)}"
    )
    per_reload = slope("watcher", "rss_reload")
    print(
        f"  after the watcher reloaded the file (same residents): {per_reload:,.0f} B/resident "
        f"= {per_reload / TARGET_BYTES:.2f} of the target  {verdict(per_reload <= TARGET_BYTES)}"
    )
    for mode, who in (("stripped", "load_registry strip"), ("rules", "the bridge and the worker")):
        per = slope(mode)
        print(
            f"  {mode} ({who}): {per:,.0f} B/resident = {per / TARGET_BYTES:.2f} of "
            f"the target; after a reload {slope(mode, 'rss_reload'):,.0f} B/resident"
        )
    per_doc = slope("document")
    print(
        f"  whole-document path (load_yaml_model, same models): {per_doc:,.0f} B/resident "
        f"= {per_doc / TARGET_BYTES:.2f} of the target"
    )
    t = traced["traced"] / n1
    print(
        f"tracemalloc, load_registry of {n1:,} + index: {t:,.0f} B/resident = "
        f"{t / TARGET_BYTES:.2f} of the target  {verdict(t <= TARGET_BYTES)}"
    )
    td = traced_dict["traced"] / a.dict_residents
    print(
        f"tracemalloc, Registry.model_validate(demo_registry({a.dict_residents:,})) + index: "
        f"{td:,.0f} B/resident (its strings are the dict's, not counted)"
    )
    for n in (n1, n2):
        load, parse = got["watcher", n]["cpu"], got["parse", n]["cpu"]
        print(
            f"load CPU per resident, {n:,}: {load / n * 1e6:,.0f} us = {load / parse:.2f} x "
            f"libyaml's yaml.load of the same file alone ({parse / n * 1e6:,.0f} us); "
            f"whole-document path {got['document', n]['cpu'] / n * 1e6:,.0f} us"
        )
    print(f"# took {time.perf_counter() - w0:.0f} s")
    print(machine_line("after"))


if __name__ == "__main__":
    main()
