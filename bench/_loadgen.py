"""The load for large fleets: pre-generated telemetry published by several processes, one MQTT
client per device.

Why: ``simulators.fleet.Fleet`` in one process (``_fleetproc``) makes each message as it sends it
(numpy accel, vitals, GPS: ~4,500 msgs per CPU-second for the making alone) and tops out near
1,750 msgs per CPU-second, ~3,000 devices. Here the making happens before the timed load, and the
sending is spread over ``procs`` processes, each driving thousands of paho clients on one epoll
loop (paho's external-loop API: ``loop_read`` / ``loop_write`` / ``loop_misc`` through
``simulators.replay.ClientPool``, no thread per client).

What is sent is the fleet's own: each process builds a ``Fleet`` over its share of the registry
and runs its schedule in *virtual* time (``Fleet._tick`` with a capturing ``publish``) for the
whole load: the same watches (2 s of 25 Hz accel, vitals, GPS fix, battery, worn), the same SOS
presses, falls streamed as accel bursts, wandering, silences, removals, deteriorations and
recharges, at the same rates. Each message's body is encoded once (orjson, without ``ts`` and
``seq``); at send time ``ts`` is the scheduled time moved onto the wall clock (the start of the
load + its virtual offset: the device's own clock, consistent across a fall's chunks) and ``seq``
the device's next number (answers to ``check`` are sent live, in between). The device's
identity is the fleet's: client id ``sim-{device}`` (anonymous broker) or the device id with its
password (``passwords``, a broker with accounts), QoS 1, retained ``online`` after login and an
``offline`` last will, its ``commands`` subscription; a ``check`` is answered ``ok`` in half the
cases after 3-20 s, as the fleet does. At the end each client disconnects cleanly (no
``offline`` burst: it would land in the bench's catch-up window).

The log is ``_fleetproc``'s: rows (device, ts, seq, wall time, flags), flags 1 = has vitals,
2 = sos, 4 = fall burst chunk, pickled to ``log_path`` with ``started``, ``stopped``, ``counts``
and ``devices``, plus ``generator``: per process the messages sent, the CPU seconds of sending,
and how late they went out against their schedule (did it keep its offered rate).
"""

from __future__ import annotations

import heapq
import math
import pickle
import queue
import resource
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from simulators.replay import ClientPool  # noqa: E402

SPREAD_MEAN = 1.125  # mean of U(0.75, 1.5): Fleet's per-device interval factor
MISC_EVERY_S = 5.0  # every client's loop_misc (keepalive) at least this often
KEEPALIVE_S = 60
CONNECT_BATCH = 200  # connections in flight at once per process (Mosquitto's backlog is 100)
OK_SHARE = 0.5


def raise_nofile(want: int) -> tuple[int, int]:
    """Raise this process's open-file limit to ``want`` (root may raise the hard limit up to
    ``fs.nr_open``); returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if want > hard:
        try:
            cap = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            cap = want
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, cap), min(want, cap)))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def broker_room(pid: int, margin: int = 32) -> int:
    """Client connections a running Mosquitto can still accept: its open-file limit minus the
    descriptors it holds, minus a margin (the bridge, the bench's own clients)."""
    try:
        limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
        soft = next(int(ln.split()[3]) for ln in limits if ln.startswith("Max open files"))
        held = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except (OSError, StopIteration, ValueError):
        return 10**9
    return max(0, soft - held - margin)


def start_edge_broker(
    folder: Path, main_host: str, main_port: int, prefix: str = "anxin/v1"
) -> tuple[subprocess.Popen[bytes], int]:
    """A second Mosquitto bridged to the main one, for the devices the main one has no file
    descriptors for (one per connection; the hard limit cannot be raised without
    CAP_SYS_RESOURCE). Telemetry and status go out to the main broker, commands come in: the
    ingest bridge sees the same topics either way. Anonymous only."""
    from anxin.services import MQTT_MAX_PACKET_BYTES, free_port, which

    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    p = prefix.rstrip("/")
    conf = folder / "mosquitto-edge.conf"
    conf.write_text(
        "\n".join(
            [
                "per_listener_settings false",
                f"max_packet_size {MQTT_MAX_PACKET_BYTES}",
                "allow_anonymous true",
                f"listener {port} {main_host}",
                "persistence false",
                "max_queued_messages 100000",
                "user root",
                "log_dest stderr",
                "log_type error",
                "log_type warning",
                "connection edge-to-main",
                f"address {main_host}:{main_port}",
                "clientid anxin-bench-edge",
                "bridge_protocol_version mqttv311",
                "cleansession true",
                f"topic {p}/devices/+/telemetry out 1",
                f"topic {p}/devices/+/status out 1",
                f"topic {p}/devices/+/commands in 1",
            ]
        )
        + "\n"
    )
    log = open(folder / "mosquitto-edge.log", "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [which("mosquitto", "/usr/sbin/mosquitto"), "-c", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    log.close()
    deadline = time.time() + 15
    while True:
        try:
            socket.create_connection((main_host, port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                raise RuntimeError(f"edge Mosquitto did not start (see {folder})") from None
            time.sleep(0.1)
    time.sleep(1.0)  # its bridge connection to the main broker
    return proc, port


def _flags(payload: dict[str, Any]) -> int:
    flags = (1 if "vitals" in payload else 0) | (2 if payload.get("event") == "sos" else 0)
    if "vitals" not in payload and "accel" in payload and "location" not in payload:
        flags |= 4
    return flags


def pregenerate(
    registry: dict[str, Any],
    interval_s: float,
    sos_rate: float,
    fall_rate: float,
    seconds: float,
    seed: int,
) -> tuple[list[str], list[tuple[float, int, float, bytes, int]], dict[str, int]]:
    """The fleet's messages for ``seconds`` of virtual time: device ids and, sorted by due
    offset, (due offset, device index, ts offset, body without ts/seq, flags)."""
    import orjson

    from simulators.fleet import Fleet, Rates

    fleet = Fleet(
        registry,
        "127.0.0.1",
        1,  # never connected: only the schedule and the payloads are used
        interval_s=interval_s / SPREAD_MEAN,
        sos_rate=sos_rate,
        seed=seed,
        rates=Rates(fall=fall_rate),
    )
    ids = list(fleet.devices)
    index = {d: i for i, d in enumerate(ids)}
    for d in fleet.devices.values():
        d.rate, d.chunk_s = 25, 2.0  # as the bench's fleet: 2 s of 25 Hz accel
    v0 = time.time()
    clock = {"due": v0}
    plan: list[tuple[float, int, float, bytes, int]] = []
    opt = orjson.OPT_SERIALIZE_NUMPY

    def capture(device: Any, payload: dict[str, Any]) -> None:
        body = orjson.dumps(
            {k: v for k, v in payload.items() if k not in ("ts", "seq")}, option=opt
        )
        plan.append(
            (
                clock["due"] - v0,
                index[device.device_id],
                float(payload["ts"]) - v0,
                body,
                _flags(payload),
            )
        )
        device.seq += 1

    fleet.publish = capture  # type: ignore[method-assign]
    heap = [
        (v0 + float(fleet.rng.uniform(0, d.interval_s)), i)
        for i, d in enumerate(fleet.devices.values())
    ]
    heapq.heapify(heap)
    end = v0 + seconds
    while heap and heap[0][0] < end:
        due, i = heapq.heappop(heap)
        clock["due"] = due
        heapq.heappush(heap, (fleet._tick(fleet.devices[ids[i]], due), i))
    plan.sort(key=lambda r: r[0])
    return ids, plan, dict(fleet.counts)


def _child(k: int, events: Any, *args: Any) -> None:
    """A generator process (``_child_run``, whose arguments follow ``k`` and ``events`` in its
    own order with ``events`` taken out); a failure goes to the parent as text."""
    try:
        _child_run(k, *args[:11], events, *args[11:])
    except BaseException:
        events.put(("error", k, traceback.format_exc()))
        raise


def _child_run(
    k: int,
    registry: dict[str, Any],
    host: str,
    port: int,
    prefix: str,
    interval_s: float,
    sos_rate: float,
    fall_rate: float,
    seconds: float,
    seed: int,
    passwords: dict[str, str] | None,
    out_path: str,
    events: Any,
    go: Any,
    t0_value: Any,
    published: Any,
) -> None:
    import numpy as np
    import orjson

    n_dev = sum(len(r["devices"]) for r in registry["residents"].values())
    nofile = raise_nofile(n_dev + 1024)
    c0 = time.process_time()
    ids, plan, counts = pregenerate(registry, interval_s, sos_rate, fall_rate, seconds, seed)
    pregen_cpu = time.process_time() - c0
    topics = [f"{prefix}/devices/{d}/telemetry" for d in ids]
    index = {d: i for i, d in enumerate(ids)}
    rng = np.random.default_rng(seed + 7919)
    answers: list[tuple[float, int]] = []  # (due wall time, device index)

    def on_command(device_id: str, payload: bytes) -> None:
        try:
            command = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        i = index.get(device_id)
        if not isinstance(command, dict) or i is None or command.get("cmd") != "check":
            return
        if rng.random() < OK_SHARE:
            timeout = float(command.get("timeout_s", 30))
            delay = float(rng.uniform(3, max(3.5, min(20.0, timeout - 2))))
            heapq.heappush(answers, (time.time() + delay, i))

    pool = Pool(
        host,
        port,
        prefix,
        "sim-",
        on_command,
        subscribe_commands=True,
        keepalive=KEEPALIVE_S,
        passwords=passwords,
    )
    # Connect in batches: each connect() is a blocking TCP handshake, and Mosquitto accepts with
    # a backlog of 100; a batch is logged in (CONNACK) before the next one starts.
    w0 = time.time()
    for b in range(0, len(ids), CONNECT_BATCH):
        batch = ids[b : b + CONNECT_BATCH]
        for device_id in batch:
            pool.add(device_id)
        pool.wait_connected(batch, timeout=300.0)
    for device_id in ids:
        pool.publish(device_id, pool.status_topic(device_id), b"online", retain=True)
    pool.drain(60.0)
    connect_s = time.time() - w0
    events.put(("ready", k, {"devices": len(ids), "messages": len(plan)}))
    go.wait()
    t0 = float(t0_value.value)
    seq = [0] * len(ids)
    log: list[tuple[str, float, int, float, int]] = []
    late: list[float] = []
    n_plan = len(plan)
    i = 0
    unreported = 0
    last_report = time.time()
    t_end = t0 + seconds
    while time.time() < t0:
        pool.pump(min(0.05, max(0.0, t0 - time.time())))
    c_send0 = time.process_time()
    while True:
        now = time.time()
        while i < n_plan and t0 + plan[i][0] <= now:
            due, d, ts_off, body, flags = plan[i]
            i += 1
            ts = round(t0 + ts_off, 3)
            s = seq[d]
            seq[d] = s + 1
            pool.publish(ids[d], topics[d], f'{{"ts":{ts!r},"seq":{s},'.encode() + body[1:], qos=1)
            wall = time.time()
            log.append((ids[d], ts, s, wall, flags))
            late.append(wall - (t0 + due))
            unreported += 1
        while answers and answers[0][0] <= now:
            _due, d = heapq.heappop(answers)
            ts = round(now, 3)
            s = seq[d]
            seq[d] = s + 1
            pool.publish(ids[d], topics[d], orjson.dumps({"ts": ts, "seq": s, "event": "ok"}))
            log.append((ids[d], ts, s, time.time(), 0))
            counts["ok"] = counts.get("ok", 0) + 1
            unreported += 1
        if unreported and (now - last_report >= 0.2 or i >= n_plan):
            with published.get_lock():
                published.value += unreported
            unreported, last_report = 0, now
        if now >= t_end:
            break
        nxt = t0 + plan[i][0] if i < n_plan else t_end
        if answers:
            nxt = min(nxt, answers[0][0])
        pool.pump(max(0.0, min(nxt - time.time(), 0.05)))
    send_cpu = time.process_time() - c_send0
    stopped = time.time()
    if unreported:
        with published.get_lock():
            published.value += unreported
    pool.drain(10.0)
    acked, sent_total = pool.acked, pool.published
    pool.close(offline=False)
    late.sort()

    def q(p: float) -> float:
        return late[min(len(late) - 1, int(p * len(late)))] if late else float("nan")

    stats = {
        "proc": k,
        "devices": len(ids),
        "planned": n_plan,
        "sent": len(log),
        "acked": acked,
        "published_incl_status": sent_total,
        "pregen_cpu_s": pregen_cpu,
        "connect_s": connect_s,
        "send_cpu_s": send_cpu,
        "send_wall_s": stopped - t0,
        "late_p50": q(0.5),
        "late_p99": q(0.99),
        "late_max": late[-1] if late else float("nan"),
        "late_over_1s": sum(1 for x in late if x > 1.0),
        "nofile": nofile[0],
        "broker_port": port,
    }
    with open(out_path, "wb") as f:
        pickle.dump({"log": log, "counts": counts, "stopped": stopped, "stats": stats}, f)
    events.put(("done", k, stats))


class Pool(ClientPool):
    """``ClientPool`` with ``loop_misc`` in slices: every client about every ``MISC_EVERY_S``
    instead of all of them every second (20,000 calls a second otherwise)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._misc_i = 0
        self._misc_t = time.monotonic()

    def _keep_alive(self, now: float) -> None:
        if now - self._misc_t >= 0.1 and self.clients:
            order = list(self.clients.values())
            n = min(len(order), math.ceil(len(order) * (now - self._misc_t) / MISC_EVERY_S))
            self._misc_t = now
            for j in range(n):
                order[(self._misc_i + j) % len(order)].loop_misc()
            self._misc_i = (self._misc_i + n) % len(order)


def split_registry(registry: dict[str, Any], procs: int) -> list[dict[str, Any]]:
    residents = list(registry["residents"].items())
    parts: list[dict[str, Any]] = [{"residents": {}} for _ in range(procs)]
    for j, (rid, res) in enumerate(residents):
        parts[j * procs // max(1, len(residents))]["residents"][rid] = res
    return [p for p in parts if p["residents"]]


def run_loadgen(
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
    procs: int = 1,
    passwords: dict[str, str] | None = None,
    brokers: list[tuple[str, int, int]] | None = None,
    prefix: str = "anxin/v1",
) -> None:
    """The coordinator (a process of the bench): starts ``procs`` generator processes, sets
    ``connected`` once all of them are logged in, starts them together, merges their logs.

    ``brokers``: (host, port, room) in order of preference; each process's devices go to the
    first broker with room for all of them (default: ``host:port`` only, unbounded)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    parts = split_registry(registry, procs)
    brokers = brokers or [(host, port, 10**9)]
    rooms = [b[2] for b in brokers]
    events = ctx.Queue()
    go = ctx.Event()
    t0_value = ctx.Value("d", 0.0)
    children = []
    outs = []
    for k, part in enumerate(parts):
        out = f"{log_path}.{k}"
        outs.append(out)
        ids = [d for r in part["residents"].values() for d in r["devices"]]
        j = next((j for j, room in enumerate(rooms) if room >= len(ids)), None)
        if j is None:
            raise RuntimeError(
                f"no MQTT broker has room for {len(ids):,} more connections (rooms: "
                f"{rooms}): each holds one file descriptor per device"
            )
        rooms[j] -= len(ids)
        pw = {d: passwords[d] for d in ids if d in passwords} if passwords is not None else None
        p = ctx.Process(
            target=_child,
            args=(
                k,
                events,
                part,
                brokers[j][0],
                brokers[j][1],
                prefix,
                interval_s,
                sos_rate,
                fall_rate,
                seconds,
                seed * 1000 + k,
                pw,
                out,
                go,
                t0_value,
                published,
            ),
            name=f"loadgen-{k}",
        )
        p.start()
        children.append(p)

    def collect(kind: str, deadline: float) -> dict[int, Any]:
        got: dict[int, Any] = {}
        while len(got) < len(children):
            try:
                what, k, info = events.get(timeout=1.0)
            except queue.Empty:
                if time.time() > deadline:
                    raise TimeoutError(
                        f"load generators: {len(got)}/{len(children)} {kind}"
                    ) from None
                dead = [c for c in children if c.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(
                        f"load generator {dead[0].name} exited ({dead[0].exitcode})"
                    ) from None
                continue
            if what == "error":
                raise RuntimeError(f"load generator {k} failed:\n{info}")
            if what == kind:
                got[k] = info
        return got

    try:
        collect("ready", time.time() + 1200)
        t0 = time.time() + 0.3
        t0_value.value = t0
        go.set()
        connected.set()
        stats = collect("done", t0 + seconds + 300)
    finally:
        for c in children:
            c.join(30)
            if c.is_alive():
                c.terminate()
    log: list[tuple[str, float, int, float, int]] = []
    counts: dict[str, int] = {}
    stopped = t0
    for out in outs:
        part_log = pickle.loads(Path(out).read_bytes())
        Path(out).unlink()
        log += part_log["log"]
        stopped = max(stopped, part_log["stopped"])
        for key, v in part_log["counts"].items():
            counts[key] = counts.get(key, 0) + v
    log.sort(key=lambda r: r[3])
    with open(log_path, "wb") as f:
        pickle.dump(
            {
                "log": log,
                "started": t0,
                "stopped": stopped,
                "counts": counts,
                "devices": sum(s["devices"] for s in stats.values()),
                "generator": [stats[k] for k in sorted(stats)],
            },
            f,
        )


def procs_for(devices: int, per_proc: int) -> int:
    """Generator processes for ``devices``: one per ``per_proc`` devices (at least one)."""
    return max(1, math.ceil(devices / max(1, per_proc)))


def generator_lines(flog: dict[str, Any], offered: float) -> tuple[list[str], dict[str, float]]:
    """The generator's own figures from its log: rate kept, lateness, msgs per CPU-second."""
    gen = flog.get("generator") or []
    if not gen:
        return [], {}
    sent = sum(g["sent"] for g in gen)
    planned = sum(g["planned"] for g in gen)
    cpu = sum(g["send_cpu_s"] for g in gen)
    wall = max(g["send_wall_s"] for g in gen)
    late_p99 = max(g["late_p99"] for g in gen)
    late_max = max(g["late_max"] for g in gen)
    over = sum(g["late_over_1s"] for g in gen)
    figs = {
        "gen_procs": float(len(gen)),
        "gen_rate": sent / max(1e-9, wall),
        "gen_per_cpu_s": sent / cpu if cpu > 0 else float("nan"),
        "gen_late_p99": late_p99,
        "gen_kept": float(over <= 0.01 * max(1, sent) and sent >= 0.99 * planned),
    }
    lines = [
        f"  load generator: {len(gen)} process(es), {sent:,} msgs sent of {planned:,} planned "
        f"in {wall:.0f} s = {figs['gen_rate']:,.0f} msgs/s (offered {offered:,.0f} + bursts); "
        f"{figs['gen_per_cpu_s']:,.0f} msgs per CPU-second of sending ({cpu:.1f} CPU-s); "
        f"late against schedule p99 {late_p99:.3f} s, max {late_max:.3f} s, {over:,} over 1 s: "
        + ("kept its offered rate" if figs["gen_kept"] else "did NOT keep its offered rate"),
        "    per process: "
        + "; ".join(
            f"#{g['proc']} {g['devices']:,} dev, {g['sent']:,} msgs, {g['send_cpu_s']:.1f} CPU-s, "
            f"pre-generation {g['pregen_cpu_s']:.1f} CPU-s, connect {g['connect_s']:.0f} s"
            for g in gen
        ),
    ]
    return lines, figs


def brokers_for(
    devices: int, sup: Any, ep: Any, run_dir: Path, auth: bool = False
) -> tuple[list[tuple[str, int, int]], subprocess.Popen[bytes] | None, str]:
    """Where the devices connect: the main Mosquitto while it has file descriptors for them,
    then an edge Mosquitto bridged to it. Returns the brokers, the edge process and a line."""
    pid = next(c.proc.pid for c in sup.children if c.name == "mosquitto")
    room = broker_room(pid)
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    nofile = next((ln.split()[3:5] for ln in limits if ln.startswith("Max open files")), ["?"])
    text = f"mosquitto: open files limit {'/'.join(nofile)}, room for {room:,} clients"
    brokers = [(ep.host, ep.mqtt_port, room)]
    if devices <= room:
        return brokers, None, text
    if auth:
        raise RuntimeError(
            text + f": {devices:,} devices do not fit and the edge broker is anonymous only"
        )
    edge, port = start_edge_broker(run_dir / "mosquitto-edge", ep.host, ep.mqtt_port)
    brokers.append((ep.host, port, broker_room(edge.pid)))
    text += (
        f"; {devices:,} devices do not fit: the rest connect to an edge Mosquitto on :{port} "
        "bridged to it (room for "
        f"{brokers[1][2]:,}); the hard limit cannot be raised here (no CAP_SYS_RESOURCE)"
    )
    return brokers, edge, text


def main() -> None:
    """The generator alone against a Mosquitto of its own: can it offer the load?"""
    import argparse
    import multiprocessing as mp
    import shutil
    import tempfile

    from anxin.services import Supervisor
    from simulators.fleet import demo_registry

    ap = argparse.ArgumentParser(description="bench/_loadgen: the load generator alone")
    ap.add_argument("--devices", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--per-proc", type=int, default=5_000, help="devices per process")
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--keep", action="store_true", help="keep the run folder (Mosquitto's log)")
    a = ap.parse_args()
    raise_nofile(a.devices + 4096)  # Mosquitto inherits it: one socket a device
    run_dir = Path(tempfile.mkdtemp(prefix="anxin-loadgen-"))
    sup = Supervisor(run_dir, only=("mosquitto",))
    edge = None
    try:
        ep = sup.start()
        brokers, edge, text = brokers_for(a.devices, sup, ep, run_dir)
        print(text)
        ctx = mp.get_context("spawn")
        connected, published = ctx.Event(), ctx.Value("q", 0)
        procs = procs_for(a.devices, a.per_proc)
        p = ctx.Process(
            target=run_loadgen,
            args=(
                demo_registry(a.devices),
                ep.host,
                ep.mqtt_port,
                a.interval,
                20.0 * 60.0 / a.devices,
                6.0 * 60.0 / a.devices,
                a.seconds,
                str(run_dir / "load.pkl"),
                connected,
                published,
                1,
                procs,
                None,
                brokers,
            ),
        )
        t = time.time()
        p.start()
        while not connected.wait(1.0):
            if not p.is_alive():
                raise RuntimeError(f"the load generator exited ({p.exitcode})")
        print(f"{a.devices:,} devices connected by {procs} process(es) in {time.time() - t:.0f} s")
        p.join()
        flog = pickle.loads((run_dir / "load.pkl").read_bytes())
        lines, _ = generator_lines(flog, a.devices / a.interval)
        print("\n".join(lines))
    finally:
        if edge is not None:
            edge.terminate()
            edge.wait(10)
        sup.stop()
        if a.keep:
            print(f"# run folder kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
