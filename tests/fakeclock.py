"""A clock tests move forward by hand (the schedules' ticker takes any `Clock`)."""

from __future__ import annotations

import asyncio
import time


class FakeClock:
    """Epoch time that only moves when `advance` is called; sleepers wake when it does."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._moved = asyncio.Event()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def sleep(self, seconds: float, wake: asyncio.Event) -> None:
        target = self._now + seconds
        while self._now < target and not wake.is_set():
            moved = asyncio.ensure_future(self._moved.wait())
            woken = asyncio.ensure_future(wake.wait())
            try:
                await asyncio.wait({moved, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                moved.cancel()
                woken.cancel()
