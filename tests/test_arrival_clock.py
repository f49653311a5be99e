"""The time up to which the detector worker has read its readings (``anxin/arrival_clock.py``):
device silence is judged there, so a worker that is behind does not call devices silent whose
readings wait in Kafka."""

from __future__ import annotations

import math
from collections.abc import Callable

from anxin.arrival_clock import ArrivalClock

NOW = 1_795_400_000.0


def hw(**by_partition: int | None) -> Callable[[int], int | None]:
    """The consumer's high watermarks, by ``p<partition>``."""

    def highwater(p: int) -> int | None:
        return by_partition.get(f"p{p}")

    return highwater


def settled(partitions: list[int]) -> ArrivalClock:
    clock = ArrivalClock(settle_s=2.0, stall_s=3.0)
    clock.assigned(partitions, mono=0.0)
    return clock


def test_held_right_after_an_assignment_then_the_wall_clock_when_all_is_read() -> None:
    clock = settled([0, 1])
    assert clock.at(NOW, 1.0, hw(p0=0, p1=0)) == -math.inf  # nothing known yet: nothing judged
    assert clock.at(NOW + 1.5, 2.5, hw(p0=0, p1=0)) == NOW + 1.5  # empty partitions: all read


def test_a_partition_with_records_left_holds_the_clock_at_its_newest_arrival() -> None:
    clock = settled([0, 1])
    clock.processed(0, 10, NOW - 600)
    clock.processed(0, 11, NOW - 590)
    clock.processed(1, 4, NOW - 5)
    assert clock.at(NOW, 2.5, hw(p0=50, p1=5)) == NOW - 590  # p0 still has 38 to read
    clock.processed(0, 49, NOW - 1)
    assert clock.at(NOW + 1, 3.5, hw(p0=50, p1=5)) == NOW + 1  # everything read


def test_a_partition_not_fetched_yet_is_not_known_to_be_read() -> None:
    clock = settled([0, 1])
    clock.processed(1, 0, NOW - 30)
    assert clock.at(NOW, 2.5, hw(p0=None, p1=1)) == -math.inf  # p0: nothing known
    clock.processed(0, 7, NOW - 20)
    assert clock.at(NOW + 1, 3.5, hw(p0=None, p1=1)) == NOW - 20


def test_a_stall_holds_the_clock_until_the_consumer_has_looked_again() -> None:
    clock = settled([0])
    clock.processed(0, 3, NOW - 1)
    assert clock.at(NOW, 2.5, hw(p0=4)) == NOW
    # the process was stopped for 10 s: its high watermark (4) is from before
    assert clock.at(NOW + 10, 12.5, hw(p0=4)) == NOW
    assert clock.at(NOW + 11, 13.5, hw(p0=4)) == NOW
    clock.processed(0, 12, NOW + 9)  # what arrived meanwhile, read
    assert clock.at(NOW + 12, 14.6, hw(p0=20)) == NOW + 9
    assert clock.at(NOW + 13, 15.6, hw(p0=13)) == NOW + 13


def test_bad_records_advance_the_read_offset_and_other_partitions_are_forgotten() -> None:
    clock = settled([0, 1])
    clock.processed(0, 0, NOW - 10)
    clock.processed(0, 1, None)  # not JSON: no arrival time, but read
    clock.processed(1, 0, NOW - 100)
    assert clock.at(NOW, 2.5, hw(p0=2, p1=5)) == NOW - 100
    clock.assigned([0], mono=3.0)  # partition 1 went to another worker
    assert clock.at(NOW + 3, 5.2, hw(p0=2)) == NOW + 3


def test_a_consumer_that_cannot_answer_counts_as_not_known() -> None:
    clock = settled([0])
    clock.processed(0, 0, NOW - 7)

    def revoked(p: int) -> int | None:
        raise AssertionError("Partition is not assigned")

    assert clock.at(NOW, 2.5, revoked) == NOW - 7
