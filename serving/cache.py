"""Rendered pages of the ranked list, with bounded staleness.

Entries are keyed by ``(api version, query string)`` and remember the data version they were
rendered at. A request at data version ``v``:

* an entry rendered at ``v`` is served as it is (``hit``);
* an entry rendered at an older version less than :data:`MAX_STALE_S` ago is served while one
  background render brings it to ``v`` (``stale``: the scorer's last batch — milliseconds of
  event flow — may be missing from the page for the time of one render);
* otherwise the page is rendered now (``miss``); concurrent misses on one key render once.

Investigators' own changes (cases) bump the API version, which is part of the key: after a
decision, the next page always shows it.

Renders read the database on the cache's own :data:`RENDER_THREADS` threads
(:meth:`ResponseCache.in_render_thread`), not on the shared thread pool: after a scorer batch
every page goes stale at once, and a dozen renders running together held the GIL in turn for
up to 50 ms while the event loop, which answers every cached request, waited for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, NamedTuple, TypeVar

log = logging.getLogger(__name__)
MAX_STALE_S = 1.0
RENDER_THREADS = 2
T = TypeVar("T")

Render = Callable[[], Awaitable[bytes]]


class Entry(NamedTuple):
    version: int
    rendered_at: float
    body: bytes


class ResponseCache:
    def __init__(self, max_entries: int = 512, max_stale_s: float = MAX_STALE_S,
                 render_threads: int = RENDER_THREADS) -> None:
        self.max_entries = max_entries
        self.max_stale_s = max_stale_s
        self._render_threads = render_threads
        self._renderers = self._new_renderers()
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def in_render_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` (a render's blocking part) on the cache's render threads."""
        return await asyncio.get_running_loop().run_in_executor(
            self._renderers, partial(fn, *args))

    def _new_renderers(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self._render_threads, thread_name_prefix="render")

    def close(self) -> None:
        """Stop the render threads (a later render starts new ones: an app may start again)."""
        old, self._renderers = self._renderers, self._new_renderers()
        old.shutdown(wait=False)

    def servable(self, key: Hashable, version: int) -> tuple[bytes, str] | None:
        """For the fast path (event loop): an exact-version page, or a stale page within the
        bound while its background render is already under way; else None (go render)."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.version == version:
            return entry.body, "hit"
        pending = self._pending.get(key)
        if (entry.version < version and pending is not None and not pending.done()
                and time.monotonic() - entry.rendered_at < self.max_stale_s):
            return entry.body, "stale"
        return None

    def _put(self, key: Hashable, version: int, body: bytes) -> None:
        with self._lock:
            old = self._entries.get(key)
            if old is not None and old.version > version:
                return  # a newer render finished first
            self._entries[key] = Entry(version, time.monotonic(), body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def _render_once(self, key: Hashable, version: int, render: Render) -> bytes:
        loop = asyncio.get_running_loop()
        pending = self._pending.get(key)
        if pending is not None and pending.get_loop() is loop and not pending.done():
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = loop.create_future()
        self._pending[key] = future
        try:
            body = await render()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._pending.pop(key, None)
        self._put(key, version, body)
        future.set_result(body)
        return body

    async def _refresh(self, key: Hashable, version: int, render: Render) -> None:
        try:
            await self._render_once(key, version, render)
        except Exception as exc:  # the next request renders in the foreground and reports it
            log.warning("background render failed", extra={"error": repr(exc)})

    async def get_or_render(self, key: Hashable, version: int,
                            render: Render) -> tuple[bytes, str]:
        """(body, "hit" | "stale" | "miss"). Call from the event loop only."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry.version == version:
            return entry.body, "hit"
        if (entry is not None and entry.version < version
                and time.monotonic() - entry.rendered_at < self.max_stale_s):
            pending = self._pending.get(key)
            if pending is None or pending.done():
                task = asyncio.create_task(self._refresh(key, version, render))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return entry.body, "stale"
        return await self._render_once(key, version, render), "miss"
