"""Group commit: writes that arrive while one is being written wait and go into the next one together.

The local queue has one writer at a time (SQLite, shared by the dev host's processes). A burst of webhooks
is a hundred request threads each sending one message: one transaction apiece, each waiting for the file's
write lock behind the queue runner's receives, accepted about 60 a second while Microsoft sent 200 a second,
and a webhook waited up to nine seconds for its 200. Batched, every thread still returns only once its own
message is durable, but one transaction carries all the messages that queued up during the previous one.

No thread waits to fill a batch: the first caller writes at once, alone if nobody else is waiting. Callers
that arrive meanwhile queue; when the write ends, the first of them to wake writes everything queued so far,
its own item included, and so on. Each thread writes at most one batch. A failed write fails every caller
in that batch (all or none of them are stored) and nobody else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Runs `write_batch` over the items callers hand to `submit`, batching the ones that arrive together.

    :param write_batch: writes a batch in one transaction and returns one result per item, in order.
    """

    def __init__(self, write_batch: Callable[[Sequence[Item]], Sequence[Result]]) -> None:
        self._write_batch = write_batch
        self._changed = threading.Condition()
        self._queued: list[tuple[Item, Future[Result]]] = []
        self._writing = False

    @property
    def waiting(self) -> int:
        """Items queued for the next batch (not counting the batch being written)."""
        with self._changed:
            return len(self._queued)

    def submit(self, item: Item) -> Result:
        """Writes `item` (with whatever else is queued); returns its result or raises the batch's error."""
        done: Future[Result] = Future()
        batch: list[tuple[Item, Future[Result]]] = []
        with self._changed:
            self._queued.append((item, done))
            while self._writing and not done.done():
                self._changed.wait()
            if not done.done():
                # Nobody is writing and ours is still queued: we write everything queued, ours included.
                self._writing = True
                batch, self._queued = self._queued, []
        if batch:
            self._write(batch)
        return done.result()

    def _write(self, batch: list[tuple[Item, Future[Result]]]) -> None:
        try:
            results = list(self._write_batch([item for item, _ in batch]))
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} gave {len(results)} results")
        except BaseException as exc:  # every caller of the batch gets the error, and nobody else
            for _, done in batch:
                done.set_exception(exc)
        else:
            for (_, done), result in zip(batch, results, strict=True):
                done.set_result(result)
        finally:
            for _, done in batch:
                if not done.done():  # interrupted while answering: nobody may wait for ever
                    done.set_exception(RuntimeError("the write of this batch was interrupted"))
            with self._changed:
                # The next writer is one of the callers still queued: the first of them to wake.
                self._writing = False
                self._changed.notify_all()
