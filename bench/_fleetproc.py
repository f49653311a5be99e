"""The load: ``simulators.fleet.Fleet`` in a process of its own, logging every publish.

The fleet is the simulator's (pooled paho connections, one per device, QoS 1; vitals, GPS,
battery, worn, accel chunks; SOS presses, falls streamed as accel bursts, wandering, device
trouble, "I'm OK" answers to checks). Only two things are set for the benchmark: every watch
sends 2 s of 25 Hz accel, and the mean interval is ``interval_s`` (the fleet spreads each
device's interval over 0.75-1.5x its setting, so the setting is divided by 1.125).
"""

from __future__ import annotations

import pickle
import resource
import threading
import time
from pathlib import Path
from typing import Any

SPREAD_MEAN = 1.125  # mean of U(0.75, 1.5): Fleet's per-device interval factor


def run_fleet(
    registry: dict[str, Any],
    host: str,
    port: int,
    interval_s: float,
    sos_rate: float,
    fall_rate: float,
    seconds: float,
    log_path: str,
    connected: Any,
    published: Any,
    seed: int,
    passwords: dict[str, str] | None = None,
) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from simulators.fleet import Fleet, Rates

    fleet = Fleet(
        registry,
        host,
        port,
        interval_s=interval_s / SPREAD_MEAN,
        sos_rate=sos_rate,
        seed=seed,
        rates=Rates(fall=fall_rate),
        passwords=passwords,
    )
    for d in fleet.devices.values():
        d.rate, d.chunk_s = 25, 2.0
    # (device, ts, seq, wall time, flags): flags 1 = has vitals, 2 = sos, 4 = fall burst chunk
    log: list[tuple[str, float, int, float, int]] = []
    original_publish = fleet.publish

    def publish(device: Any, payload: dict[str, Any]) -> None:
        original_publish(device, payload)
        flags = (1 if "vitals" in payload else 0) | (2 if payload.get("event") == "sos" else 0)
        if "vitals" not in payload and "accel" in payload and "location" not in payload:
            flags |= 4
        log.append(
            (
                device.device_id,
                float(payload["ts"]),
                int(payload.get("seq", -1)),
                time.time(),
                flags,
            )
        )
        published.value = len(log)

    fleet.publish = publish  # type: ignore[method-assign]
    original_wait = fleet.pool.wait_connected
    started = {}

    def wait_connected(ids: Any, timeout: float = 30.0) -> None:
        original_wait(ids, timeout=max(timeout, 300.0))
        started["t"] = time.time()
        connected.set()
        threading.Timer(seconds, fleet.stop).start()

    fleet.pool.wait_connected = wait_connected  # type: ignore[method-assign,assignment]
    fleet.run()
    stopped = time.time()
    with open(log_path, "wb") as f:
        pickle.dump(
            {
                "log": log,
                "started": started.get("t"),
                "stopped": stopped,
                "counts": fleet.counts,
                "devices": len(fleet.devices),
            },
            f,
        )
