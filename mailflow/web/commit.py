"""Group commit: requests that arrive together are recorded in one store transaction
(partner callbacks, link clicks).

Each request puts its verified event on a queue and waits. One consumer takes everything queued
(up to `MAX_BATCH`), records it with `record_batch` in a worker thread (one transaction, one
fsync), and only then hands every request its answer: a 2xx always means committed. While one
batch commits, the next one gathers, so the cost of the fsync is shared under load and a lone
request waits for nothing but its own commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

from mailflow.relay.callbacks import Answer, PartnerEvent

log = logging.getLogger("mailflow.web")

MAX_BATCH = 256
T = TypeVar("T")  # what a request hands in
R = TypeVar("R")  # what it is answered


def _not_recorded() -> Answer:
    return Answer(500, {"ok": False, "error": "not recorded"})


def _shutting_down() -> Answer:
    return Answer(503, {"ok": False, "error": "shutting down"})


class Batches(Generic[T, R]):
    def __init__(self, record_batch: Callable[[list[T]], list[R]],
                 failed: Callable[[], R], closing: Callable[[], R]) -> None:
        self.record_batch = record_batch
        self.failed = failed
        self.closing = closing
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._work: asyncio.Task[list[R]] | None = None
        self.batches = 0

    async def submit(self, event: T) -> R:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._consumer = asyncio.create_task(self._consume(self._queue))
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put((event, future))
        return await asyncio.shield(future)

    async def _consume(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < MAX_BATCH:
                batch.append(queue.get_nowait())
            # shielded: once a batch is in the thread, its answers are always delivered
            self._work = work = asyncio.create_task(
                asyncio.to_thread(self.record_batch, [e for e, _f in batch]))
            try:
                answers = await asyncio.shield(work)
            except asyncio.CancelledError:
                await asyncio.wait([work])
                self._settle(batch, work)
                raise
            except Exception:
                log.exception("web: batch of %d not recorded", len(batch))
                answers = [self.failed() for _ in batch]
            self.batches += 1
            for (_event, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    def _settle(self, batch: list[tuple[T, asyncio.Future[R]]],
                work: asyncio.Future[list[R]]) -> None:
        failed = work.cancelled() or work.exception() is not None
        answers = [self.failed() for _ in batch] if failed else work.result()
        for (_event, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)

    async def close(self) -> None:
        """Stop after the batch in hand (its answers are delivered); nothing new is taken."""
        if self._consumer is not None:
            self._consumer.cancel()
            await asyncio.gather(self._consumer, return_exceptions=True)
        if self._queue is not None:
            while not self._queue.empty():
                _event, future = self._queue.get_nowait()
                if not future.done():
                    future.set_result(self.closing())


class GroupCommit(Batches[PartnerEvent, Answer]):
    """Partner callbacks, answered 500 when their batch could not be recorded."""

    def __init__(self, record_batch: Callable[[list[PartnerEvent]], list[Answer]]) -> None:
        super().__init__(record_batch, _not_recorded, _shutting_down)
