"""The host-aware frontier's decisions, shared by every store dialect.

Mercator's design over SQL: pending URLs sit in per-host queues (the index
`frontier_host_queue (host, tag, id)`), and the `hosts` table is the heap of ready
times (`hosts_ready (next_at)`). A claim

1. takes the hosts whose turn came (`next_at <= now`, oldest first),
2. reads the first few pending URLs of each (a bounded index probe per host, so a host
   with a million pending URLs costs what a host with ten does) and its live claims,
3. `pick`s within each host's limit (plus look-ahead) and each key's limit,
4. moves every visited host to the back of the line (and, on a shared frontier,
   reserves its spacing: `next_at = now + delay` per URL claimed), parks hosts that are
   now full (`next_at = PARKED` until a fetch end, settle, release, cancel or lease
   expiry on the host brings it back), and marks hosts found empty as no longer queued.

Parking is what keeps a claim from visiting the same busy hosts again and again: the
ready heap only holds hosts that could hand out a URL.

Memory and time per claim depend on the number of hosts visited and URLs claimed, never
on the backlog. Within a host, jobs take turns by start-time fair queuing: a URL's tag is
`max(host vtime, the job's last finish on that host) + 1/weight`, and the host's vtime
advances to the tag of what it hands out, so a job submitted behind a 1,000-URL job on
the same host is next in line, and a `high` job (weight 4) gets four turns to one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from service.store.base import FrontierItem

PARKED = 1e12  # next_at of a host at its limit: out of the ready heap until it settles
PRIORITY_WEIGHTS = {"low": 0.25, "normal": 1.0, "high": 4.0}  # 1:4:16


def weight_of(priority: str | None, *, high_allowed: bool = True) -> float:
    """The fair-queuing weight of a priority (a key over its `high` cap gets `normal`)."""
    if priority == "high" and not high_allowed:
        priority = "normal"
    return PRIORITY_WEIGHTS.get(priority or "normal", 1.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """A pending URL at the head of its host's queue, as read by a claim."""

    item: FrontierItem
    tag: float
    cap: int | None  # the host limit its job applies (None: unlimited)
    delay: float  # spacing its job asks for between requests to the host
    busy: int  # live claims on its host (every worker)


@dataclass(slots=True)
class Picked:
    chosen: list[Candidate]
    visited: list[str]  # hosts whose turn was used (they go to the back of the line)
    empty: list[str]  # visited hosts with nothing claimable now
    full: list[str]  # visited hosts now at their limit (parked)
    vtime: dict[str, float]  # new fair-queuing clock per host that handed out URLs
    spacing: dict[str, float]  # per host: the spacing (seconds) of each URL claimed


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyShare:
    """A soft per-key limit across processes: `share` claims per key while others wait;
    beyond it only what would otherwise leave a fetch task idle (`spare`)."""

    share: int
    spare: int  # fetch tasks of every process not covered by a live claim


def pick(
    hosts: Iterable[str],
    candidates: dict[str, list[Candidate]],
    *,
    limit: int,
    ahead: int,
    per_key: int | None = None,
    key_busy: dict[str | None, int] | None = None,
    settling: Mapping[str, int] | None = None,
    share: KeyShare | None = None,
) -> Picked:
    """Choose what a claim takes, host by host in turn order.

    `per_key` is a hard cap of claims per key. `share` a soft one: URLs of a key at its
    share are put aside, and taken after everything else (least served key first) only
    as far as there are idle fetch tasks, so a key exceeds its share only while the
    others leave work undone.
    `settling`: per host, URLs this claimer has finished but not yet recorded; they are
    still claimed in the database but no longer in flight, so they do not use a slot.
    """
    result = Picked(chosen=[], visited=[], empty=[], full=[], vtime={}, spacing={})
    keys: dict[str | None, int] = defaultdict(int, key_busy or {})
    taken: dict[str, int] = defaultdict(int)
    deferred: list[Candidate] = []

    def room(row: Candidate) -> bool:
        if row.cap is None:
            return True
        done = settling.get(row.item.host, 0) if settling else 0
        return max(0, row.busy - done) + taken[row.item.host] < row.cap * (1 + ahead)

    def choose(row: Candidate) -> None:
        host = row.item.host
        result.chosen.append(row)
        keys[row.item.owner] += 1
        taken[host] += 1
        result.vtime[host] = max(result.vtime.get(host, 0.0), row.tag)
        result.spacing[host] = result.spacing.get(host, 0.0) + row.delay

    for host in hosts:
        if len(result.chosen) >= limit:
            break
        result.visited.append(host)
        rows = candidates.get(host)
        if not rows:
            result.empty.append(host)
            continue
        for row in rows:
            if not room(row):
                result.full.append(host)
                break
            if len(result.chosen) >= limit:
                break
            if per_key is not None and keys[row.item.owner] >= per_key:
                continue
            if share is not None and keys[row.item.owner] >= share.share:
                deferred.append(row)
                continue
            choose(row)
    if deferred and share is not None:
        spare = share.spare - len(result.chosen)
        deferred.sort(key=lambda row: keys[row.item.owner])
        for row in deferred:
            if spare <= 0 or len(result.chosen) >= limit:
                break
            if room(row):
                choose(row)
                spare -= 1
    return result


def tag_links(
    links: dict[str, int],
    host_of: dict[str, str],
    *,
    vtime: dict[str, float],
    finish: dict[str, float],
    weight: float,
) -> tuple[list[tuple[str, str, int, float]], dict[str, float]]:
    """Fair-queuing tags for one job's new links: (url, host, depth, tag) rows, and the
    job's new last finish per host."""
    step = 1.0 / weight
    last: dict[str, float] = {}
    rows: list[tuple[str, str, int, float]] = []
    for url, depth in links.items():
        host = host_of[url]
        start = last.get(host)
        if start is None:
            start = max(vtime.get(host, 0.0), finish.get(host, 0.0))
        tag = start + step
        last[host] = tag
        rows.append((url, host, depth, tag))
    return rows, last
