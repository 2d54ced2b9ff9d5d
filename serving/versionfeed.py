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
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _PerLoop(Generic[T]):
    next: asyncio.Future[T] | None = None  # the read the newcomers wait for
    running: bool = False


class SharedRead(Generic[T]):
    """``await get()``: the result of a call of ``read`` that started after ``get`` was
    called; concurrent callers of one event loop share one call (at most one in flight per
    loop; a process serving with uvicorn has one loop, a test client may run several)."""

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="version-read")
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _PerLoop[T]] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = _PerLoop()
        waiting = state.next
        if waiting is None:
            waiting = state.next = loop.create_future()
            if not state.running:
                self._start(loop, state)
        return await asyncio.shield(waiting)

    def _start(self, loop: asyncio.AbstractEventLoop, state: _PerLoop[T]) -> None:
        waiting, state.next = state.next, None
        assert waiting is not None
        state.running = True
        call = loop.run_in_executor(self._pool, self._read)
        call.add_done_callback(lambda done: self._finished(loop, state, done, waiting))

    def _finished(self, loop: asyncio.AbstractEventLoop, state: _PerLoop[T],
                  done: asyncio.Future[T], waiting: asyncio.Future[T]) -> None:
        state.running = False
        if not waiting.done():
            exc = done.exception()
            if exc is not None:
                waiting.set_exception(exc)
            else:
                waiting.set_result(done.result())
        if state.next is not None:  # requests arrived during that read: one more for them
            self._start(loop, state)

    def close(self) -> None:
        """Stop the reading thread (a later ``get`` starts a new one: an app may start again)."""
        old, self._pool = self._pool, ThreadPoolExecutor(1, thread_name_prefix="version-read")
        old.shutdown(wait=False)
