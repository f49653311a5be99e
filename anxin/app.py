"""The Faust application: topics, the detector agents, live state and its snapshots.

``readings`` (and ``device-status``) are keyed by resident at ingest, so all of a resident's
devices meet in one partition: one agent runs every detector, NEWS2 included, with no
``group_by`` and no second topic; each reading is one Kafka record. Messages are taken in batches
(``stream.take``) and run through ``DetectorPipeline``, the same code ``anxin evaluate`` runs
in-process. State lives in the worker (``anxin/live_state.py``) and reaches Kafka as snapshots;
events are acknowledged only once a snapshot holding them is delivered.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import math
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from anxin.arrival_clock import STALL_S, ArrivalClock
from anxin.core.logs import get_logger
from anxin.core.records import dead_letter, dumps, loads
from anxin.core.rules import RulesWatcher
from anxin.core.settings import Settings
from anxin.live_state import LiveState
from detectors.pipeline import DetectorPipeline, Outputs

log = get_logger(__name__)
MARKER_KEY = b"~marker"  # not a snapshot: where a new owner's read of a partition ends
LOAD_TIMEOUT_S = 120.0
NO_SLICE = -1  # an event of no resident (a dead letter): acknowledged with the next slice
EVERYONE = -2  # a snapshot of every changed resident, acknowledging every event
SNAPSHOT_TICK_S = 0.2
STOP_FLUSH_TIMEOUT_S = 10.0
BEHIND_LOG_S = 5.0  # silence judged this far behind the wall clock is logged


class DetectorApp(faust.App):
    """A Faust app that snapshots its state and acknowledges its events before it stops.

    Faust waits for every event in hand to be acknowledged before it lets the consumer go, and
    the worker acknowledges only after a snapshot: without this the stop would wait forever.
    """

    before_stop: Callable[[], Awaitable[None]] | None = None

    def on_init_dependencies(self) -> Iterable[Any]:
        """Without the web views nobody reads Faust's ``Monitor``: it is left out of the sensors
        (its per-message hooks were 2 % of the worker's time, and its sampler ticks at idle)."""
        dependencies = super().on_init_dependencies()
        if not self.conf.web_enabled:
            self.sensors.remove(self.monitor)
        return dependencies

    async def on_stop(self) -> None:
        if self.before_stop is not None:
            try:
                await asyncio.wait_for(self.before_stop(), STOP_FLUSH_TIMEOUT_S)
            except Exception:  # the next owner re-processes what was not acknowledged
                log.exception("final snapshot failed")
        await super().on_stop()


def stream_buffer(partitions: int) -> int:
    """Events the readings stream may hold before Faust stops fetching: 8,192 a partition.

    Faust stops fetching a partition once the stream holds ``maxsize / 1.25`` events and
    resumes when it has drained to 40 %; a catching-up worker then waits for the next fetch
    with nothing to do. A fetch is up to 1 MiB a partition, and one more is in flight: about
    3,000 readings a partition of the fleet's (~700 B: 2 s of 25 Hz), more of smaller ones.
    ``bench/worker 10000 16`` (one worker catching up on 160,000 readings, 4 partitions):
    2,048 a partition (until 2026-12-07) 7,857/s (RSS 197 MB); 4,096 9,951/s (222 MB);
    **8,192 10,737-11,347/s (224-231 MB)**; 16,384 12,762/s (261 MB, the worker then busy
    96 % of the time); Faust's own 4,096 in all had made ~4,000/s. The memory is taken only
    while the worker is behind (~1 KB an event)."""
    return max(4096, 8192 * partitions)


def snapshot_ticks(interval_s: float) -> int:
    """Slices (timer ticks) a snapshot interval is dealt into: one every ~0.2 s."""
    return max(1, round(interval_s / SNAPSHOT_TICK_S))


def create_app(settings: Settings, ready_file: Path | None = None) -> faust.App:
    f, k = settings.faust, settings.kafka
    app = DetectorApp(
        f.app_id,
        broker=[f"kafka://{host}" for host in k.bootstrap.split(",")],
        store="memory://",
        processing_guarantee="at_least_once",
        broker_rebalance_timeout=f.rebalance_timeout,
        broker_session_timeout=f.session_timeout,
        broker_heartbeat_interval=f.heartbeat_interval,
        consumer_auto_offset_reset="earliest",
        topic_partitions=k.partitions,
        web_enabled=f.web_enabled,
        web_port=f.web_port,
        datadir=str(f.data_dir),
        producer_acks=-1,
        producer_linger_ms=f.producer_linger_ms,
        stream_buffer_maxsize=stream_buffer(k.partitions),
    )
    registry = RulesWatcher(settings.registry, settings.registry_reload_s)

    def raw_topic(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, value_serializer="raw")

    readings = raw_topic(k.readings_topic)
    statuses = raw_topic(k.status_topic)
    alerts = raw_topic(k.alerts_topic)
    updates = raw_topic(k.alert_updates_topic)
    rejected = raw_topic(k.rejected_topic)
    commands = raw_topic(k.commands_topic)
    suspicions = raw_topic(k.suspicions_topic)
    snapshots = raw_topic(k.state_topic)

    pipeline = DetectorPipeline(lambda: registry.current, fall_save_every_s=float("inf"))
    # how far the readings are read: device silence is judged there (anxin/arrival_clock.py)
    arrivals = ArrivalClock(stall_s=max(STALL_S, 3 * f.tick_interval))
    behind = [False]  # logged when the worker starts and stops judging silence behind the clock
    behind_s: list[float | None] = [0.0]  # how far, at the last tick (None: not known yet)
    ticks = snapshot_ticks(f.snapshot_interval_s)
    live = LiveState(
        f.snapshot_buckets,
        pipeline.device_form,
        pipeline.resident_form,
        ticks,
        lambda device_id, resident_id: registry.current.own_ids(device_id, resident_id),
    )
    pipeline.device_state, pipeline.resident_state = live.devices, live.residents
    lock = asyncio.Lock()  # one batch or tick at a time, its outputs enqueued before release
    snapping = asyncio.Lock()  # one snapshot at a time: a bucket's records stay in order
    transitions: set[str] = set()  # residents whose alerts or checks changed since a snapshot
    ready = asyncio.Event()  # cleared while a rebalance loads snapshots
    ready.set()
    # (stream, event) by the slice of the event's resident (NO_SLICE: none), acknowledged once a
    # snapshot of that slice made after it is delivered
    pending: dict[int, list[tuple[Any, Any]]] = {}
    turn = [0]  # the slice whose dirty residents the next periodic snapshot writes
    stats = {
        "readings": 0,
        "statuses": 0,
        "alerts": 0,
        "records_out": 0,
        "snapshots": 0,
        "dead_letters": 0,
        "acked": 0,
    }
    owned: list[int] = []  # the readings partitions this worker holds (stats, logs)

    async def publish(out: Outputs) -> None:
        sends: list[tuple[Any, bytes, bytes]] = []
        for alert in out.alerts:
            sends.append((alerts, alert.resident_id.encode(), alert.to_json()))
            log.info(
                "alert %s %s %s resident=%s",
                alert.alert_id,
                alert.kind,
                alert.severity,
                alert.resident_id,
            )
        for update in out.updates:
            sends.append((updates, str(update["resident_id"]).encode(), dumps(update)))
        for command in out.commands:
            sends.append((commands, str(command["device_id"]).encode(), dumps(command)))
        for dead in out.rejected:
            sends.append((rejected, str(dead["device_id"] or "-").encode(), dumps(dead)))
        for suspicion in out.suspicions:
            sends.append((suspicions, suspicion["resident_id"].encode(), dumps(suspicion)))
        for topic, key, value in sends:
            await topic.send(key=key, value=value)
        stats["alerts"] += len(out.alerts)
        stats["dead_letters"] += len(out.rejected)
        stats["records_out"] += len(sends)

    async def snapshot(scope: int) -> None:
        """A consistent cut of the chosen residents' state as of now, sent once every output
        made before the cut is delivered (so no snapshot runs ahead of its outputs). ``scope``:
        a slice (its changed residents and those whose alerts or checks changed; then its
        events are acknowledged) or EVERYONE (every changed resident, every event). Processing
        goes on while the records travel: only the cut holds ``lock``."""
        async with snapping:
            async with lock:
                if scope == EVERYONE:
                    chosen = live.dirty_residents()
                    taken = dict(pending)
                    pending.clear()
                else:
                    chosen = live.dirty_residents(scope) | transitions
                    taken = {k: pending.pop(k) for k in (scope, NO_SLICE) if k in pending}
                transitions.difference_update(chosen)
                records = live.snapshot(chosen)
            try:
                await app.producer.flush()  # the outputs of everything before the cut
                for partition, key, value in records:
                    await snapshots.send(key=key, value=value, partition=partition)
                await app.producer.flush()
            except BaseException:  # not delivered: the next snapshot takes them again
                live.residents.dirty.update(chosen)
                for k, events in taken.items():
                    pending[k] = events + pending.get(k, [])
                raise
            stats["snapshots"] += len(records)
            stats["records_out"] += len(records)
            for events in taken.values():
                for stream, event in events:
                    await stream.ack(event)
                stats["acked"] += len(events)

    def changed_by(out: Outputs) -> set[str]:
        """Residents whose alerts or checks these outputs change: snapshotted at once."""
        changed = {a.resident_id for a in out.alerts}
        changed |= {str(u["resident_id"]) for u in out.updates}
        changed |= {s["resident_id"] for s in out.suspicions}
        changed |= {live.owner.get(str(c["device_id"]), "") for c in out.commands}
        return changed - {""}

    def reject(stage: str, raw: bytes, exc: Exception, now: float, out: Outputs) -> None:
        """One poisoned record must not stop the partition: it is dead-lettered."""
        log.error("%s: record could not be processed: %s", stage, type(exc).__name__)
        reason = f"{stage} error: {type(exc).__name__}"
        out.rejected.append(dead_letter(reason, stage, now, payload=raw))

    def run_readings(events: list[Any], now: float, out: Outputs) -> list[int]:
        """Decode the batch, then every detector over it at once (``process_batch``); returns
        each event's slice."""
        records, raws, slices = [], [], []
        for event in events:
            raw, message = event.value, event.message
            try:
                record = loads(raw)
                arrivals.processed(message.partition, message.offset, record.get("received_at"))
                device_id, resident_id = record["device_id"], record["resident_id"]
                if not isinstance(device_id, str) or not isinstance(resident_id, str):
                    raise TypeError("device_id and resident_id must be strings")
                live.note(device_id, resident_id, message.partition)
            except Exception as exc:
                arrivals.processed(message.partition, message.offset, None)
                reject("detect", raw, exc, now, out)
                slices.append(NO_SLICE)
                continue
            slices.append(live.slice_of(resident_id))
            records.append(record)
            raws.append(raw)
        stats["readings"] += len(records)

        def failed(i: int, exc: Exception) -> None:
            log.exception("detect: a reading raised")
            reject("detect", raws[i], exc, now, out)

        out.extend(pipeline.process_batch(records, now, on_error=failed))
        return slices

    def run_statuses(events: list[Any], now: float, out: Outputs) -> list[int]:
        slices = []
        for event in events:
            raw = event.value
            home = NO_SLICE
            try:
                record = loads(raw)
                device_id = str(record["device_id"])
                stats["statuses"] += 1
                owner = registry.current.device_owner(device_id)
                if owner is not None:
                    live.note(device_id, owner[0], event.message.partition)
                    home = live.slice_of(owner[0])
                    out.extend(pipeline.process_status(record, now))
            except Exception as exc:
                reject("device-status", raw, exc, now, out)
            slices.append(home)
        return slices

    def batch_agent(topic: Any, name: str, run: Any) -> None:
        """An agent running ``run`` over batches of its topic, acknowledging after snapshots."""

        async def agent(stream: Any) -> None:
            async for events in stream.noack_take(f.batch_size, within=f.batch_timeout):
                await ready.wait()
                async with lock:
                    out, now = Outputs(), time.time()
                    for event, home in zip(events, run(events, now, out), strict=True):
                        event.value = event.message.value = None  # held to be acked, not read
                        pending.setdefault(home, []).append((stream, event))
                    await publish(out)
                    transitions.update(changed_by(out))

        app.agent(topic, name=name)(agent)

    batch_agent(readings, "detect", run_readings)
    batch_agent(statuses, "device-status", run_statuses)

    seen_registry: list[Any] = [registry.current]

    def highwater(partition: int) -> int | None:
        """The offset after the newest readings record the consumer has seen (None: none yet)."""
        hw = app.consumer.highwater(TP(k.readings_topic, partition))
        return None if hw is None else int(hw)

    def owner_of(device_id: str) -> str | None:
        owner = registry.current.device_owner(device_id)
        return owner[0] if owner else None

    @app.timer(interval=f.tick_interval)
    async def timers() -> None:
        """Silence, grace periods, check windows: fire even when nothing arrives."""
        if not ready.is_set():
            return
        async with lock:
            if registry.current is not seen_registry[0]:  # reloaded: devices may have moved
                seen_registry[0] = registry.current
                moved = live.moved(owner_of)
                pipeline.forget(moved, [])
                if moved:
                    log.info("%d device(s) moved to another resident: state dropped", len(moved))
            now = time.time()
            silence_at = arrivals.at(now, time.monotonic(), highwater)
            behind_s[0] = None if silence_at == -math.inf else round(now - silence_at, 1)
            lag = behind_s[0]
            if behind[0] != (lag is not None and lag > BEHIND_LOG_S):
                behind[0] = not behind[0]
                if behind[0]:
                    log.warning(
                        "readings wait to be read: device silence is judged at their arrival "
                        "(%.0f s behind), not the wall clock",
                        lag,
                    )
                else:
                    log.info("every reading is read: device silence is judged at the wall clock")
            try:
                out = pipeline.tick(now, silence_at)
            except Exception:  # one bad state must not stop every timer of the worker
                log.exception("timers failed")
                return
            await publish(out)
            transitions.update(changed_by(out))

    @app.timer(interval=f.snapshot_interval_s / ticks)
    async def snapshot_timer() -> None:
        """One slice of the changed residents at each tick, so each is written every
        ``snapshot_interval_s`` (everyone at once when a rebalance starts: Faust waits for every
        event to be acknowledged before it lets partitions go), and with every slice those
        whose alerts or checks changed."""
        if not ready.is_set():
            return
        if app.rebalancing:
            if pending or live.dirty_residents():
                await snapshot(EVERYONE)
            return
        part = turn[0]
        turn[0] = (part + 1) % ticks
        if part in pending or NO_SLICE in pending or transitions or live.dirty_residents(part):
            await snapshot(part)

    @app.timer(interval=1.0)
    async def write_stats() -> None:
        if f.stats_file is None:
            return
        body = {
            **stats,
            "at": time.time(),
            "devices": len(live.devices),
            "partitions": owned,
            "silence_behind_s": behind_s[0],
        }
        tmp = f.stats_file.with_name(f.stats_file.name + ".tmp")
        tmp.write_bytes(dumps(body))
        os.replace(tmp, f.stats_file)

    async def load_snapshots(partitions: set[int]) -> int:
        """Read the snapshots of newly owned partitions up to a marker written now (the broker's
        end offsets are not trusted: Tansu under-reports them, DESIGN.md)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        marker = uuid.uuid4().hex.encode()
        for partition in partitions:
            await snapshots.send(key=MARKER_KEY, value=marker, partition=partition)
        await app.producer.flush()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=k.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            tps = [TopicPartition(k.state_topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            latest: dict[bytes, tuple[int, int, bytes]] = {}  # key -> its last record
            waiting = set(partitions)
            deadline = time.monotonic() + LOAD_TIMEOUT_S
            while waiting:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"snapshots of partitions {sorted(waiting)} not read")
                for tp, messages in (await consumer.getmany(timeout_ms=200)).items():
                    for m in messages:
                        if tp.partition not in waiting or m.key is None or m.value is None:
                            continue
                        if m.key == MARKER_KEY:
                            if m.value == marker:
                                waiting.discard(tp.partition)
                        else:
                            latest[m.key] = (tp.partition, m.offset, m.value)
        finally:
            await consumer.stop()
        # in the order written: a resident's newest copy is the last one read (live_state.py)
        written = sorted(latest.items(), key=lambda item: item[1][:2])
        return live.load(((key, value) for key, (_, _, value) in written), partitions)

    async def final_snapshot() -> None:
        await snapshot(EVERYONE)

    app.before_stop = final_snapshot

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def _revoked(sender: Any, revoked: set[Any], **kwargs: Any) -> None:
        await snapshot(EVERYONE)  # the next owner starts from everything this worker did

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def _assigned(sender: Any, assigned: set[Any], **kwargs: Any) -> None:
        mine = {tp.partition for tp in assigned if tp.topic == k.readings_topic}
        ready.clear()
        arrivals.assigned(mine, time.monotonic())
        try:
            async with snapping, lock:
                held = set(live.partition.values())
                devices, residents = live.drop(held - mine)
                pipeline.forget(devices, residents)
                new = mine - set(live.partition.values())
                loaded = await load_snapshots(new) if new else 0
                pipeline.schedule_all()
                owned[:] = sorted(mine)
                log.info(
                    "partitions %s: %d residents' snapshots loaded, %d dropped",
                    sorted(mine),
                    loaded,
                    len(residents),
                )
        finally:
            ready.set()
        if ready_file is not None:
            ready_file.parent.mkdir(parents=True, exist_ok=True)
            ready_file.write_text(str(time.time()))
            log.info("worker ready: partitions assigned")

    return app


def _cap_fetch_wait(ms: int, min_bytes: int = 1) -> None:
    """Faust builds its consumer with ``fetch_max_wait_ms=1500`` and no setting to change it.

    Tansu does not answer a waiting fetch early when records arrive, so a caught-up worker saw
    each record up to 1.5 s late (bench/pipeline: reading p99 2.5 s → 0.41 s, alert p99 2.1 s →
    0.73 s with 100 ms). This caps the value for the worker process only.

    ``min_bytes``: with Kafka's default of 1 byte a worker at a steady load fetched again as soon
    as a fetch came back with a handful of readings, a round trip of the broker's and the
    consumer's work for each few; asking for more makes the broker hold the fetch for up to
    ``ms`` and answer with the readings of that time at once (a catching-up worker's fetches
    fill at once and are not held).
    """
    import aiokafka

    original = aiokafka.AIOKafkaConsumer.__init__
    if getattr(original, "_anxin_capped", False):
        return

    def capped(self: Any, *args: Any, **kwargs: Any) -> None:
        kwargs["fetch_max_wait_ms"] = min(int(kwargs.get("fetch_max_wait_ms", 500)), ms)
        kwargs["fetch_min_bytes"] = max(int(kwargs.get("fetch_min_bytes", 1)), min_bytes)
        original(self, *args, **kwargs)

    capped._anxin_capped = True  # type: ignore[attr-defined]
    aiokafka.AIOKafkaConsumer.__init__ = capped


class _Resumed:
    """A coroutine already stepped once (``_fast_deliver``), awaitable from where it stopped:
    what it yields goes to the awaiting task, and what the task sends or throws back (a
    cancellation) comes to it, as ``await`` would have done from the start."""

    __slots__ = ("coro", "step")

    def __init__(self, coro: Any, step: Any) -> None:
        self.coro, self.step = coro, step

    def __await__(self) -> Any:
        coro, step = self.coro, self.step
        while True:
            try:
                sent = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    step = coro.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                step = coro.send(sent)
            except StopIteration as done:
                return done.value


def _fast_deliver() -> None:
    """Faust hands each fetched message to its stream through ``Consumer.wait_first(callback,
    suspend_flow.wait())``: four tasks, an ``asyncio.wait`` and three cancellations per message,
    a tenth of the worker's time (py-spy, bench/worker). The callback almost always completes
    without waiting (the stream's queue has room), so it is stepped once here first; only one
    that has to wait goes through ``wait_first`` as before, which a suspended flow or a stop
    still interrupts. This patches the worker process only."""
    from faust.transport.consumer import Consumer
    from mode.services import WaitResults

    original = Consumer.wait_first
    if getattr(original, "_anxin_fast", False):
        return

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        first = coros[0] if coros else None
        if (
            timeout is not None
            or len(coros) != 2
            or not inspect.iscoroutine(first)
            or self.suspend_flow.is_set()
            or self._stopped.is_set()
            or self._crashed.is_set()
        ):
            return await original(self, *coros, timeout=timeout)
        try:
            step = first.send(None)
        except StopIteration as done:
            coros[1].close() if inspect.iscoroutine(coros[1]) else None
            return WaitResults([first], [done.value], False)
        except BaseException:
            coros[1].close() if inspect.iscoroutine(coros[1]) else None
            raise
        return await original(self, _Resumed(first, step), coros[1])

    wait_first._anxin_fast = True  # type: ignore[attr-defined]
    Consumer.wait_first = wait_first  # type: ignore[method-assign]


def _trace_memory(path: str) -> None:
    """``ANXIN_TRACEMALLOC=path``, off unless set: what the worker's memory holds (issue 16).

    tracemalloc with ``ANXIN_TRACEMALLOC_FRAMES`` frames (8; 0: not started, totals only), and
    every ``ANXIN_TRACEMALLOC_EVERY_S`` seconds (30) its snapshot to ``path.<n>`` (compare two
    with ``tracemalloc.Snapshot.load(...).compare_to``) and a JSON line to ``path.jsonl``: RSS,
    bytes traced, and glibc's heap in use and free (``mallinfo2``: free is fragmentation the
    process keeps). Tracing makes the worker 5-15 times slower: pace its load to match.
    """
    import ctypes
    import json
    import threading
    import tracemalloc

    frames = int(os.environ.get("ANXIN_TRACEMALLOC_FRAMES", "8"))
    every_s = float(os.environ.get("ANXIN_TRACEMALLOC_EVERY_S", "30"))
    if frames:
        tracemalloc.start(frames)

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                *("arena", "ordblks", "smblks", "hblks", "hblkhd"),
                *("usmblks", "fsmblks", "uordblks", "fordblks", "keepcost"),
            )
        ]

    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
        mallinfo2.restype = MallInfo2
    except (AttributeError, OSError):  # not glibc 2.33+
        mallinfo2 = None

    def dump() -> None:
        n = 0
        while True:
            time.sleep(every_s)
            n += 1
            with open("/proc/self/statm") as statm:
                line: dict[str, Any] = {"at": time.time(), "n": n}
                line["rss"] = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            line["traced"], line["traced_peak"] = tracemalloc.get_traced_memory()
            if mallinfo2 is not None:
                info = mallinfo2()
                line |= {"heap": info.arena, "heap_used": info.uordblks}
                line |= {"heap_free": info.fordblks, "mmapped": info.hblkhd}
            if frames:
                tracemalloc.take_snapshot().dump(f"{path}.{n}")
            with open(f"{path}.jsonl", "a") as out:
                out.write(json.dumps(line) + "\n")

    threading.Thread(target=dump, name="tracemalloc-dump", daemon=True).start()


def run_worker(settings: Settings, ready_file: Path | None = None) -> None:
    """Run one detector worker in the foreground until SIGINT/SIGTERM."""
    from anxin.core import logs

    if os.environ.get("ANXIN_TRACEMALLOC"):
        _trace_memory(os.environ["ANXIN_TRACEMALLOC"])

    settings.faust.data_dir.mkdir(parents=True, exist_ok=True)
    _cap_fetch_wait(settings.faust.fetch_max_wait_ms, settings.faust.fetch_min_bytes)
    _fast_deliver()

    app = create_app(settings, ready_file)
    # Each reading decodes into a few hundred objects; with the default thresholds the cyclic
    # collector ran every few readings and its older generations walked the live state of every
    # device: a third of the worker's time (py-spy, 2,000 devices). Objects made at start move
    # out of its reach, and it runs less often (readings per CPU-second +40 %, RSS +5 %).
    gc.freeze()
    gc.set_threshold(*settings.faust.gc_thresholds)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    logs.configure(settings.log_level)
    worker.execute_from_commandline()
