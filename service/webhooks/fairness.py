"""Fair webhook delivery: lanes budgeted per owner, and receivers judged by how they answer.

One key's broken receiver must not hold up another key's events. Three rules do it:

- Lane budget: at most `per_owner` of the dispatcher's lanes deliver for one owner (API
  key) at a time, so the others always have lanes free.
- Slow receivers get less time: a receiver (scheme, host and port of its URL) that let
  an attempt time out gets SLOW_TIMEOUT per attempt, not the full TOTAL_TIMEOUT, until it
  answers in time again.
- Circuit breaker: after BREAKER_THRESHOLD consecutive timeouts or connection failures a
  receiver is not contacted for a cool-down (BREAKER_COOLDOWN, doubling up to
  BREAKER_MAX_COOLDOWN); its events stay due and are not charged an attempt. Then one
  trial delivery decides: success closes the breaker, failure opens it again.

The tarpit case (20 jobs of one key posting to a receiver that never answers, four
shared lanes, 15 s per attempt) delayed another key's job.completed to 98 s.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

TOTAL_TIMEOUT = 10.0  # one attempt, connect to last byte
SLOW_TIMEOUT = 3.0  # for a receiver whose last attempt timed out
BREAKER_THRESHOLD = 3  # consecutive timeouts/connection failures that open the breaker
BREAKER_COOLDOWN = 15.0
BREAKER_MAX_COOLDOWN = 600.0
_REMEMBERED = 10_000  # receivers tracked at most (the healthy ones are forgotten first)


def receiver_of(url: str) -> str:
    """The receiver a webhook URL names: its scheme, host and port."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rsplit('@', 1)[-1]}".lower()


@dataclass(slots=True)
class _Receiver:
    failures: int = 0  # consecutive timeouts or connection failures
    slow: bool = False  # the last attempt timed out
    open_until: float = 0.0  # monotonic; breaker open before this
    cooldown: float = BREAKER_COOLDOWN
    trial: bool = False  # a half-open trial delivery is in flight


class ReceiverHealth:
    """How each receiver has been answering; decides timeouts and the breaker."""

    def __init__(self) -> None:
        self._receivers: dict[str, _Receiver] = {}

    def _get(self, receiver: str) -> _Receiver:
        state = self._receivers.get(receiver)
        if state is None:
            if len(self._receivers) >= _REMEMBERED:
                healthy = [k for k, v in self._receivers.items() if not v.failures]
                for key in healthy[: len(healthy) // 2 + 1] or list(self._receivers)[:1]:
                    del self._receivers[key]
            state = self._receivers[receiver] = _Receiver()
        return state

    def timeout_for(self, url: str) -> float:
        state = self._receivers.get(receiver_of(url))
        return SLOW_TIMEOUT if state is not None and state.slow else TOTAL_TIMEOUT

    def blocked_for(self, url: str, now: float | None = None) -> float:
        """Seconds until `url`'s receiver may be contacted again (0: now)."""
        state = self._receivers.get(receiver_of(url))
        if state is None or state.failures < BREAKER_THRESHOLD:
            return 0.0
        now = time.monotonic() if now is None else now
        if now < state.open_until:
            return state.open_until - now
        if state.trial:
            return 1.0  # one trial at a time; the others wait for its verdict
        return 0.0

    def starting(self, url: str) -> None:
        """A delivery to `url` begins (a half-open breaker lets exactly one through)."""
        state = self._receivers.get(receiver_of(url))
        if state is not None and state.failures >= BREAKER_THRESHOLD:
            state.trial = True

    def answered(self, url: str) -> None:
        """The receiver answered (any status): it is reachable and in time."""
        self._receivers.pop(receiver_of(url), None)

    def failed(self, url: str, *, timed_out: bool, now: float | None = None) -> None:
        """No answer: a timeout or a connection failure."""
        state = self._get(receiver_of(url))
        state.trial = False
        state.slow = state.slow or timed_out
        state.failures += 1
        if state.failures >= BREAKER_THRESHOLD:
            now = time.monotonic() if now is None else now
            if state.open_until:  # a failed trial: open again, for longer
                state.cooldown = min(BREAKER_MAX_COOLDOWN, state.cooldown * 2)
            state.open_until = now + state.cooldown


class LaneBudget:
    """Lanes in use per owner, within a per-owner budget."""

    def __init__(self, per_owner: int) -> None:
        self.per_owner = max(1, per_owner)
        self._used: Counter[str] = Counter()

    def has_room(self, owner: str) -> bool:
        return self._used[owner] < self.per_owner

    def take(self, owner: str) -> None:
        self._used[owner] += 1

    def give_back(self, owner: str) -> None:
        self._used[owner] -= 1
        if self._used[owner] <= 0:
            del self._used[owner]
