"""A small LRU of rendered responses keyed by (store version, query). Any write to the store
bumps its version, so a cached page is never staler than the version read for the request.

Concurrent misses on the same key are rendered once (single flight): after a scorer batch,
fifty clients asking for the same first page cost one query, not fifty.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable


class ResponseCache:
    def __init__(self, max_entries: int = 512) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[bytes]] = {}

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    async def get_or_render(self, key: Hashable,
                            render: Callable[[], Awaitable[bytes]]) -> tuple[bytes, bool]:
        """(body, hit). Call from the event loop only."""
        body = self.get(key)
        if body is not None:
            return body, True
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending), True
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            body = await render()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            self._pending.pop(key, None)
        self.put(key, body)
        future.set_result(body)
        return body, False
