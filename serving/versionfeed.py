"""The store versions for requests on the event loop, without blocking it.

On PostgreSQL the version read (``CaseStore.versions``) is a network round trip; done inline
on the event loop, every request in the process waited for every other request's round trip
(under load, half of the loop's time went there). Here the read runs in a thread of its own
and concurrent requests share it, while freshness stays exact: a request never gets a read
that started before it arrived. A request arriving while a read is in flight waits for the
next one, which starts as soon as the current one ends and serves everyone who arrived in
between — so a key revoked or a case changed before a request arrived is always seen by it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedRead(Generic[T]):
    """``await get()``: the result of a call of ``read`` that started after ``get`` was
    called; concurrent callers share one call (at most one in flight)."""

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="version-read")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: asyncio.Future[T] | None = None  # the read the newcomers wait for
        self._running = False

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests start one per client)
            self._loop, self._next, self._running = loop, None, False
        waiting = self._next
        if waiting is None:
            waiting = self._next = loop.create_future()
            if not self._running:
                self._start(loop)
        return await asyncio.shield(waiting)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        waiting, self._next = self._next, None
        assert waiting is not None
        self._running = True
        call = loop.run_in_executor(self._pool, self._read)
        call.add_done_callback(lambda done: self._finished(loop, done, waiting))

    def _finished(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future[T],
                  waiting: asyncio.Future[T]) -> None:
        if loop is not self._loop:
            return
        self._running = False
        if not waiting.done():
            exc = done.exception()
            if exc is not None:
                waiting.set_exception(exc)
            else:
                waiting.set_result(done.result())
        if self._next is not None:  # requests arrived during that read: one more for them
            self._start(loop)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
