"""serving.versionfeed.SharedRead: concurrent callers share reads, and no caller ever gets a
read that started before it asked (so a revoked key or a new case is always seen)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

from serving.versionfeed import SharedRead


def test_callers_share_reads_and_never_get_one_older_than_their_call():
    calls = itertools.count()
    lock = threading.Lock()

    def read() -> tuple[int, float]:
        with lock:
            n = next(calls)
        started = time.monotonic()
        time.sleep(0.01)
        return n, started

    shared = SharedRead(read)

    async def one(delay: float) -> tuple[float, float]:
        await asyncio.sleep(delay)
        asked = time.monotonic()
        _, started = await shared.get()
        return asked, started

    async def main() -> list[tuple[float, float]]:
        return await asyncio.gather(*(one(i * 0.001) for i in range(200)))

    results = asyncio.run(main())
    assert all(started >= asked for asked, started in results)
    reads = next(calls)
    assert reads < 100, reads  # shared: ~0.2 s of callers over 10 ms reads
    shared.close()


def test_a_failed_read_fails_its_callers_and_the_next_read_runs():
    outcomes = iter([RuntimeError("down"), 7])

    def read() -> int:
        item = next(outcomes)
        if isinstance(item, Exception):
            raise item
        return item

    shared = SharedRead(read)

    async def main() -> int:
        with pytest.raises(RuntimeError, match="down"):
            await shared.get()
        return await shared.get()

    assert asyncio.run(main()) == 7
    # a new event loop (the test client starts one per request) works too
    outcomes = iter([8])
    assert asyncio.run(shared.get()) == 8
    shared.close()


def test_event_loops_in_several_threads_each_get_their_answers():
    """A test client may run one event loop per thread at the same time: none may hang."""
    def read() -> int:
        time.sleep(0.005)
        return 1

    shared = SharedRead(read)
    results: list[int] = []

    def one_loop() -> None:
        async def many() -> list[int]:
            return await asyncio.gather(*(shared.get() for _ in range(20)))
        results.extend(asyncio.run(asyncio.wait_for(many(), 10)))

    threads = [threading.Thread(target=one_loop) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == [1] * 120
    shared.close()
