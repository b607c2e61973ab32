"""Group commit: what arrives during a write shares the next write, and errors stay in their batch."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pytest

from devhost.group_commit import GroupCommit
from tests.support.sandbox import wait_until


class GatedWriter:
    """Writes batches (doubling each item) and records them; the first write waits until `release()`."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[list[int]] = []
        self._gate = threading.Event()
        self.writing_first = threading.Event()
        self._fail_on = fail_on

    def release(self) -> None:
        self._gate.set()

    def __call__(self, items: Sequence[int]) -> list[int]:
        if not self.batches:
            self.writing_first.set()
            self._gate.wait(10)
        self.batches.append(list(items))
        if self._fail_on in items:
            raise OSError("disk full")
        return [item * 2 for item in items]


def _submit_while_first_write_waits(
    group: GroupCommit[int, int], writer: GatedWriter, later: range
) -> tuple[Future[int], list[Future[int]]]:
    pool = ThreadPoolExecutor(max_workers=len(later) + 1)
    first = pool.submit(group.submit, 0)
    assert writer.writing_first.wait(5)
    others = [pool.submit(group.submit, item) for item in later]
    wait_until(lambda: group.waiting == len(later))
    writer.release()
    pool.shutdown(wait=True)
    return first, others


def test_callers_arriving_during_a_write_share_the_next_one_and_each_gets_its_own_result() -> None:
    writer = GatedWriter()
    group: GroupCommit[int, int] = GroupCommit(writer)
    first, others = _submit_while_first_write_waits(group, writer, range(1, 11))

    assert first.result() == 0
    assert [future.result() for future in others] == [item * 2 for item in range(1, 11)]
    assert len(writer.batches) == 2, "ten callers queued behind one write go in one more write, not ten"
    assert writer.batches[0] == [0]
    assert sorted(writer.batches[1]) == list(range(1, 11))


def test_a_lone_caller_is_written_at_once() -> None:
    written: list[list[str]] = []

    def write(items: Sequence[str]) -> list[str]:
        written.append(list(items))
        return list(items)

    group: GroupCommit[str, str] = GroupCommit(write)
    assert group.submit("a") == "a"
    assert group.submit("b") == "b"
    assert written == [["a"], ["b"]]


def test_a_failed_write_fails_every_caller_of_its_batch_and_nobody_else() -> None:
    writer = GatedWriter(fail_on=5)
    group: GroupCommit[int, int] = GroupCommit(writer)
    first, others = _submit_while_first_write_waits(group, writer, range(1, 8))

    assert first.result() == 0, "the batch before the failed one was written"
    for future in others:
        with pytest.raises(OSError, match="disk full"):
            future.result()
    assert group.submit(9) == 18, "the next caller writes again: a failure leaves nobody waiting"


def test_a_writer_that_answers_for_fewer_items_fails_the_batch_instead_of_hanging() -> None:
    group: GroupCommit[int, int] = GroupCommit(lambda items: [1] * (len(items) - 1))
    with pytest.raises(RuntimeError, match="a batch of 1 gave 0 results"):
        group.submit(1)
    with pytest.raises(RuntimeError):
        group.submit(2)
