"""The worker's delivery of fetched messages (``anxin.app._fast_deliver``).

Faust's drain loop calls ``Consumer.wait_first(callback(message), suspend_flow.wait())`` for
every message. The patched version steps the callback once and returns if it completed; these
tests check that it gives what ``wait_first`` gave in every case: a callback that completes at
once, one that has to wait, one that a suspended flow interrupts, one that raises.
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

import pytest
from faust.transport.consumer import Consumer
from mode import Service
from mode.utils.locks import Event

from anxin.app import _fast_deliver


class Drain(Service):
    """Just what ``wait_first`` reads of a consumer: a service with ``suspend_flow``."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = Event()


def wait_first(drain: Drain, *coros: Any) -> Any:
    _fast_deliver()
    return Consumer.wait_first(drain, *coros)


def test_a_callback_that_completes_at_once_returns_its_result_and_starts_nothing() -> None:
    async def main() -> None:
        drain = Drain()

        async def deliver() -> int:
            return 5

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the unused suspend_flow.wait() is closed
            result = await wait_first(drain, deliver(), drain.suspend_flow.wait())
        assert result.results == [5] and not result.stopped

    asyncio.run(main())


def test_a_callback_that_waits_completes_through_the_general_path() -> None:
    async def main() -> None:
        drain = Drain()
        seen: list[str] = []

        async def deliver() -> int:
            seen.append("start")
            await asyncio.sleep(0.01)
            seen.append("resumed")
            return 7

        result = await wait_first(drain, deliver(), drain.suspend_flow.wait())
        assert seen == ["start", "resumed"]  # stepped once here, then resumed, not restarted
        assert 7 in result.results and not result.stopped

    asyncio.run(main())


def test_a_suspended_flow_interrupts_a_waiting_callback_as_before() -> None:
    async def main() -> None:
        drain = Drain()
        never = asyncio.Event()
        cancelled: list[bool] = []

        async def deliver() -> None:
            try:
                await never.wait()
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        async def suspend() -> None:
            await asyncio.sleep(0.01)
            drain.suspend_flow.set()

        task = asyncio.ensure_future(suspend())
        result = await wait_first(drain, deliver(), drain.suspend_flow.wait())
        await task
        await asyncio.sleep(0)  # the cancelled delivery runs its handler
        assert cancelled == [True] and not result.stopped
        assert result.results == [True]  # only the suspend_flow.wait() finished

    asyncio.run(main())


def test_a_callback_that_raises_at_once_raises() -> None:
    async def main() -> None:
        drain = Drain()

        async def deliver() -> None:
            raise KeyError("poison")

        with pytest.raises(KeyError):
            await wait_first(drain, deliver(), drain.suspend_flow.wait())

    asyncio.run(main())


def test_a_suspended_flow_takes_the_general_path_from_the_start() -> None:
    async def main() -> None:
        drain = Drain()
        drain.suspend_flow.set()

        async def deliver() -> int:
            return 3

        result = await wait_first(drain, deliver(), drain.suspend_flow.wait())
        assert 3 in result.results  # both finished: Faust's own wait_first answered

    asyncio.run(main())
