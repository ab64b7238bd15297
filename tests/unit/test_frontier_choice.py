"""The frontier's choices without a database: the claim's pick, fair-queuing tags, and the
in-memory scheduler's per-key shares and priority order."""

from __future__ import annotations

import asyncio

from service.crawl.hosthealth import HostHealth
from service.crawl.scheduler import HostScheduler
from service.store.base import FrontierItem
from service.store.frontier import Candidate, KeyShare, pick, tag_links, weight_of

_ids = iter(range(1, 1_000_000))


def item(host: str, job: str = "j1", owner: str | None = None, weight: float = 1.0) -> FrontierItem:
    n = next(_ids)
    return FrontierItem(
        id=n,
        job_id=job,
        url=f"http://{host}/{n}",
        host=host,
        depth=0,
        attempts=0,
        owner=owner,
        weight=weight,
    )


def heads(host: str, n: int, *, busy: int = 0, cap: int | None = 2) -> list[Candidate]:
    return [
        Candidate(item=item(host), tag=float(i), cap=cap, delay=0.5, busy=busy) for i in range(n)
    ]


def test_pick_takes_each_host_up_to_its_limit_and_parks_full_ones() -> None:
    candidates = {"a": heads("a", 5), "b": heads("b", 5, busy=1), "c": heads("c", 1)}
    picked = pick(["a", "b", "c"], candidates, limit=100, ahead=0)
    assert [c.item.host for c in picked.chosen] == ["a", "a", "b", "c"]
    assert picked.full == ["a", "b"]  # c has room left: it only goes to the back
    assert picked.spacing == {"a": 1.0, "b": 0.5, "c": 0.5}


def test_pick_look_ahead_and_settling_pages() -> None:
    candidates = {"a": heads("a", 10, busy=3)}
    assert len(pick(["a"], candidates, limit=100, ahead=2).chosen) == 3  # 2 x (1 + 2) - 3
    # Two of the three claimed are finished, waiting for the writer: not in flight.
    settled = pick(["a"], candidates, limit=100, ahead=0, settling={"a": 2})
    assert len(settled.chosen) == 1


def test_pick_stops_at_the_limit_without_parking_and_marks_empty_hosts() -> None:
    picked = pick(
        ["a", "b", "c"], {"a": heads("a", 5, cap=None), "c": heads("c", 1)}, limit=3, ahead=0
    )
    assert len(picked.chosen) == 3
    assert picked.visited == ["a"] and picked.full == []
    picked = pick(["b", "c"], {"c": heads("c", 1)}, limit=3, ahead=0)
    assert picked.empty == ["b"]


def test_pick_holds_each_key_to_its_limit() -> None:
    rows = [
        Candidate(item=item("a", owner=owner), tag=float(i), cap=None, delay=0, busy=0)
        for i, owner in enumerate(["k1", "k1", "k1", "k2"])
    ]
    picked = pick(["a"], {"a": rows}, limit=10, ahead=0, per_key=2, key_busy={"k1": 1})
    assert [c.item.owner for c in picked.chosen] == ["k1", "k2"]


def owned(host: str, owners: list[str]) -> list[Candidate]:
    return [
        Candidate(item=item(host, owner=owner), tag=float(i), cap=None, delay=0, busy=0)
        for i, owner in enumerate(owners)
    ]


def test_pick_holds_a_key_to_its_share_while_another_waits() -> None:
    """Across processes: 8 fetch tasks in all, two keys, a share of 4 each. k1 holds 3
    claims (in any process): it gets one more, k2 its four; nothing idle is left."""
    candidates = {"a": owned("a", ["k1"] * 6), "b": owned("b", ["k2"] * 6)}
    share = KeyShare(share=4, spare=8 - 3)
    picked = pick(["a", "b"], candidates, limit=64, ahead=0, key_busy={"k1": 3}, share=share)
    owners = [c.item.owner for c in picked.chosen]
    assert owners.count("k1") == 1 and owners.count("k2") == 4


def test_pick_lets_a_key_past_its_share_only_into_idle_fetch_tasks() -> None:
    # k2 has nothing to fetch now: k1 may use what would stay idle, and no more.
    candidates = {"a": owned("a", ["k1"] * 10)}
    share = KeyShare(share=4, spare=6)
    picked = pick(["a"], candidates, limit=64, ahead=0, key_busy={"k2": 2}, share=share)
    assert len(picked.chosen) == 6  # 4 of its share, 2 idle ones


def test_fair_queuing_tags_interleave_jobs_on_a_host() -> None:
    big = {f"http://h/{i}": 0 for i in range(1000)}
    rows, last = tag_links(big, dict.fromkeys(big, "h"), vtime={}, finish={}, weight=1.0)
    assert [tag for *_, tag in rows][:3] == [1.0, 2.0, 3.0] and last == {"h": 1000.0}
    # 40 of the big job's URLs were handed out: a new job's first URL is next in line.
    small, _ = tag_links(
        {"http://h/x": 0}, {"http://h/x": "h"}, vtime={"h": 40.0}, finish={}, weight=1.0
    )
    assert small[0][3] == 41.0
    high, _ = tag_links(
        {"http://h/y": 0}, {"http://h/y": "h"}, vtime={"h": 40.0}, finish={}, weight=4.0
    )
    assert high[0][3] == 40.25
    assert weight_of("high", high_allowed=False) == weight_of("normal") == 1.0


async def _drain(scheduler: HostScheduler, n: int) -> list[FrontierItem]:
    stop = asyncio.Event()
    pump = asyncio.create_task(scheduler.pump(stop))
    got = [(await asyncio.wait_for(scheduler.get(), 5)).item for _ in range(n)]
    stop.set()
    await pump
    return got


async def test_scheduler_gives_each_key_an_equal_share_of_the_workers() -> None:
    scheduler = HostScheduler(ready_size=4, capacity=1000, per_host_limit=10, per_host_delay=0)
    # Key A has three hosts, B one: host round robin alone would give A three quarters.
    scheduler.add([item(h, owner="A") for h in ("a1", "a2", "a3") for _ in range(10)])
    scheduler.add([item("b", owner="B") for _ in range(30)])
    first = await _drain(scheduler, 4)  # nothing finishes: the workers' first picks
    assert sorted(i.owner or "" for i in first) == ["A", "A", "B", "B"]


async def test_scheduler_lets_an_idle_worker_exceed_the_share() -> None:
    scheduler = HostScheduler(ready_size=4, capacity=1000, per_host_limit=10, per_host_delay=0)
    scheduler.add([item("a", owner="A") for _ in range(10)])
    scheduler.add([item("b", owner="B")])
    first = await _drain(scheduler, 4)
    assert sorted(i.owner or "" for i in first) == ["A", "A", "A", "B"]


async def test_scheduler_starts_high_priority_hosts_first() -> None:
    scheduler = HostScheduler(ready_size=1, capacity=1000, per_host_limit=1, per_host_delay=0)
    scheduler.add([item(f"n{i}") for i in range(5)])
    scheduler.add([item("h", weight=4.0)])
    scheduler._dispatch()  # one slot: the first pass takes the high-priority host
    assert (await asyncio.wait_for(scheduler.get(), 5)).item.host == "h"


def test_adaptive_delay_follows_latency_and_backs_off() -> None:
    health = HostHealth()
    assert health.auto_delay("h", floor=0.0) == 0.5  # before any response
    for _ in range(12):
        health.observe("h", latency=0.1, status=200, failed=False, floor=0.0)
    assert 0.1 <= health.auto_delay("h", floor=0.0) < 0.11  # converges on the latency
    health.observe("h", latency=0.01, status=503, failed=False, floor=0.0)
    assert health.auto_delay("h", floor=0.0) == 1.0  # doubled, at least 1 s
    health.observe("h", latency=0.01, status=404, failed=False, floor=0.0)
    assert health.auto_delay("h", floor=0.0) == 1.0  # small error pages never lower it
    for _ in range(10):
        health.observe("h", latency=0.0, status=None, failed=True, floor=0.0)
    assert health.auto_delay("h", floor=0.0) == 60.0  # the ceiling
    for _ in range(30):
        health.observe("h", latency=0.01, status=200, failed=False, floor=0.3)
    assert health.auto_delay("h", floor=0.3) == 0.3  # never below the job's own delay


async def test_a_fetched_page_frees_its_host_but_not_its_keys_share() -> None:
    """Between the body read and the hand-off to the parse queue the fetch task is still
    taken: its key's share stays counted, the host may already start its next request."""
    scheduler = HostScheduler(ready_size=2, capacity=100, per_host_limit=1, per_host_delay=0)
    scheduler.add([item("a", owner="A") for _ in range(3)])
    scheduler.add([item("b", owner="B") for _ in range(3)])
    scheduler._dispatch()
    first = [await asyncio.wait_for(scheduler.get(), 5) for _ in range(2)]
    a_slot = next(slot for slot in first if slot.item.owner == "A")
    scheduler.fetched(a_slot)  # a's host is free; A still holds its one fetch task
    assert scheduler.holding("a") == 2
    scheduler._dispatch()
    assert scheduler.buffered == 4  # nothing new started: both fetch tasks are taken
    scheduler.done(a_slot)
    scheduler._dispatch()
    nxt = await asyncio.wait_for(scheduler.get(), 5)
    assert nxt.item.host == "a"
    scheduler.done(nxt)  # done without fetched (a failure before the body) frees both
    assert scheduler.holding("a") == 1
