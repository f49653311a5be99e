"""bench/ceiling: the raw rates of the services alone on this machine, in one run.

Starts Mosquitto, the Tansu Kafka-protocol broker and VictoriaMetrics (the supervisor the tests
and the demo use, in a temporary run folder), then measures, with the pipeline's own message
(a simulated watch report: 2 s of 25 Hz accel, vitals, GPS):
- Mosquitto QoS 1: one paho publisher -> one paho subscriber (another process);
- Kafka protocol: aiokafka produce (acks=all, keyed), consume raw, consume + orjson decode (the
  "framework ceiling" a stream processor is compared with);
- VictoriaMetrics: influxdb-client line-protocol writes in batches of 2,000 readings.
Prints msgs/s for each. Figures only, no assertions.

Usage: bench/ceiling [--messages 50000] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from _ceilings import (
    kafka_ceiling,
    kafka_latency_text,
    mqtt_ceiling,
    sample_messages,
    vm_ceiling,
)
from _common import machine_line

from anxin.services import Supervisor


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=50_000, help="messages per ceiling")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--keep", action="store_true", help="keep the run folder (logs)")
    a = ap.parse_args()
    n = 500 if a.quick else a.messages
    print(machine_line("before"), flush=True)
    run_dir = Path(tempfile.mkdtemp(prefix="anxin-bench-ceiling-"))
    sup = Supervisor(run_dir, only=("mosquitto", "kafka", "victoriametrics"))
    w0 = time.perf_counter()
    try:
        ep = sup.start()
        samples = sample_messages(200, 3)
        size = sum(len(s[1]) for s in samples) / len(samples)
        rsize = sum(len(s[2]) for s in samples) / len(samples)
        print(
            f"# message: watch report {size:,.0f} B on MQTT, reading {rsize:,.0f} B on Kafka; "
            f"{n:,} per ceiling",
            flush=True,
        )
        for r in mqtt_ceiling(ep.host, ep.mqtt_port, [s[1] for s in samples], n):
            print(r.text(), flush=True)
        records = [(s[0].encode(), s[2]) for s in samples]
        for r in asyncio.run(kafka_ceiling(ep.kafka_bootstrap, records, n)):
            print(r.text(), flush=True)
        print(vm_ceiling(ep.vm_url, [s[2] for s in samples], n).text(), flush=True)
        for text in asyncio.run(kafka_latency_text(ep.kafka_bootstrap)):
            print(text, flush=True)
    finally:
        sup.stop()
        if not a.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    print(f"# took {time.perf_counter() - w0:.0f} s")
    print(machine_line("after"))


if __name__ == "__main__":
    main()
