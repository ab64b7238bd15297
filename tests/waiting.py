"""The tests' one polling loop: wait on a condition with a deadline, never sleep as
synchronisation. Import it from tests.conftest (tests.site uses it from here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(
    probe: Callable[[], Awaitable[Any]],
    done: Callable[[Any], bool],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    message: str = "condition not met",
) -> Any:
    """Poll `probe` until `done(value)`; fail with the last value after `timeout`.

    The one polling loop of the tests: wait on a condition with a deadline, never sleep
    as synchronisation. `probe` may raise to fail early (a child process that exited).
    """
    deadline = time.monotonic() + timeout
    value = await probe()
    while not done(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout}s; last value: {value!r}")
        await asyncio.sleep(interval)
        value = await probe()
    return value


async def eventually(
    predicate: Callable[[], Any],
    timeout: float = 15.0,
    interval: float = 0.02,
    *,
    message: str = "condition not met",
) -> Any:
    """`wait_until` for a synchronous predicate: its first truthy value."""

    async def probe() -> Any:
        return predicate()

    return await wait_until(probe, bool, timeout, interval, message=message)
