"""The Store protocol, once per backend: SQLite and PostgreSQL must behave the same.

Tests that need a second worker open a second store on the same database
(`make_store`), which for PostgreSQL is a second connection pool, as another process
would have.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from service.changes import PageVersion
from service.models import Change, ChangeCounts, JobStatus, Outcome, utcnow
from service.store.base import (
    FrontierItem,
    IdempotencyConflict,
    NewJob,
    PageRecord,
    RecordSummary,
    Release,
    Store,
)
from service.store.migrate import load_migrations
from service.store.postgres import PostgresStore
from service.store.sqlite import SQLiteStore, sqlite_path
from tests.conftest import wait_until
from tests.store import pgdb

MakeStore = Callable[[], Awaitable[Store]]

HOOK = "https://hooks.example/trawl"
ALL_EVENTS = ["job.started", "job.completed", "job.failed", "job.cancelled"]


def url(path: str, host: str = "a.test") -> str:
    return f"http://{host}/{path.lstrip('/')}"


def new_job(
    *seeds: str,
    max_pages: int = 100,
    owner: str | None = None,
    key: str | None = None,
    request_hash: str = "hash-1",
    webhook: dict[str, Any] | None = None,
    **request: Any,
) -> NewJob:
    seeds = seeds or (url("/"),)
    body: dict[str, Any] = {"urls": list(seeds), "max_pages": max_pages, **request}
    if webhook is not None:
        body["webhook"] = webhook
    return NewJob(
        id=str(uuid.uuid4()),
        created_at=utcnow(),
        request=body,
        seeds=tuple(seeds),
        max_pages=max_pages,
        owner=owner,
        idempotency_key=key,
        request_hash=request_hash,
        webhook=webhook,
    )


def page(
    item: FrontierItem, *links: str, outcome: Outcome = Outcome.OK, attempts: int | None = None
) -> PageRecord:
    return PageRecord(
        item=item,
        outcome=outcome,
        page_json=json.dumps({"url": item.url, "outcome": outcome.value}),
        attempts=item.attempts + 1 if attempts is None else attempts,
        links=links,
    )


async def create(store: Store, job: NewJob) -> str:
    created, fresh = await store.create_job(job)
    assert fresh
    return created.id


async def stats(store: Store, job_id: str) -> dict[str, int]:
    job = await store.get_job(job_id, None)
    assert job is not None
    return job.stats.as_dict()


async def status(store: Store, job_id: str) -> JobStatus:
    job = await store.get_job(job_id, None)
    assert job is not None
    return job.status


async def all_results(store: Store, job_id: str, outcome: Outcome | None = None) -> list[Any]:
    return [json.loads(doc) async for doc in store.iter_results(job_id, outcome)]


async def events(store: Store) -> list[tuple[str, str]]:
    return [(event.job_id, event.event_type) for event in await store.due_events(100)]


# -- jobs ------------------------------------------------------------------------------


async def test_create_job_persists_seeds_and_request(store: Store) -> None:
    seeds = [url(f"/s{i}") for i in range(5)]
    job, created = await store.create_job(new_job(*seeds, max_pages=3, formats=["text"]))
    assert created
    assert job.status is JobStatus.QUEUED
    assert job.started_at is None and job.finished_at is None
    assert job.request["formats"] == ["text"]
    # Seeds beyond max_pages are never admitted.
    assert job.stats.as_dict() == {
        "pages_discovered": 3,
        "pages_queued": 3,
        "pages_fetched": 0,
        "pages_failed": 0,
        "pages_skipped": 0,
    }
    assert await store.pending_count() == 3
    again = await store.get_job(job.id, None)
    assert again is not None
    assert again.as_dict() == job.as_dict()
    assert again.as_dict()["created_at"].endswith("Z")


async def test_idempotency_key_replays_and_conflicts(store: Store) -> None:
    first, created = await store.create_job(new_job(key="k1", owner="alice"))
    assert created
    replay, created = await store.create_job(new_job(key="k1", owner="alice"))
    assert not created
    assert replay.id == first.id
    with pytest.raises(IdempotencyConflict):
        await store.create_job(new_job(key="k1", owner="alice", request_hash="other"))
    # Keys are per owner.
    other, created = await store.create_job(new_job(key="k1", owner="bob"))
    assert created and other.id != first.id
    assert len(await store.list_jobs("alice", None, 10, None)) == 1


async def test_concurrent_creates_with_one_key_make_one_job(make_store: MakeStore) -> None:
    stores = [await make_store() for _ in range(3)]
    outcomes = await asyncio.gather(
        *(s.create_job(new_job(key="same")) for s in stores for _ in range(2))
    )
    assert len({job.id for job, _ in outcomes}) == 1
    assert sum(created for _, created in outcomes) == 1


async def test_get_and_list_jobs_by_owner_status_and_cursor(store: Store) -> None:
    ids = [await create(store, new_job(owner="alice")) for _ in range(5)]
    await create(store, new_job(owner="bob"))
    assert await store.get_job(ids[0], "bob") is None
    assert await store.get_job(ids[0], None) is None  # no owner is an owner too
    assert await store.get_job("no-such-job", "alice") is None

    listed = await store.list_jobs("alice", None, 10, None)
    assert [job.id for job in listed] == ids[::-1]  # newest first
    first_page = await store.list_jobs("alice", None, 2, None)
    second_page = await store.list_jobs("alice", None, 2, first_page[-1].seq)
    assert [job.id for job in first_page + second_page] == ids[::-1][:4]

    await store.cancel_job(ids[1], "alice")
    cancelled = await store.list_jobs("alice", JobStatus.CANCELLED, 10, None)
    assert [job.id for job in cancelled] == [ids[1]]
    queued = await store.list_jobs("alice", JobStatus.QUEUED, 10, None)
    assert ids[1] not in {job.id for job in queued} and len(queued) == 4
    assert await store.jobs_by_status() == {"queued": 5, "cancelled": 1}
    requests = await store.job_requests([ids[0], ids[1], "missing"])
    assert requests[ids[1]][0] is JobStatus.CANCELLED
    assert json.loads(requests[ids[0]][1])["urls"] == [url("/")]
    assert set(requests) == {ids[0], ids[1]}


async def test_cancel_is_idempotent_and_stops_claims(store: Store) -> None:
    job_id = await create(store, new_job(url("/a"), url("/b")))
    assert await store.cancel_job(job_id, "someone-else") is None
    assert await store.cancel_job("missing", None) is None
    first = await store.cancel_job(job_id, None)
    assert first is not None and first.status is JobStatus.CANCELLED
    assert first.finished_at is not None
    second = await store.cancel_job(job_id, None)
    assert second is not None and second.as_dict() == first.as_dict()
    assert await store.claim(10, "w1", 60) == []
    assert await store.pending_count() == 0


async def test_cancel_of_a_finished_job_returns_it_unchanged(store: Store) -> None:
    job_id = await create(store, new_job())
    [item] = await store.claim(10, "w1", 60)
    await store.record([page(item)])
    after = await store.cancel_job(job_id, None)
    assert after is not None and after.status is JobStatus.COMPLETED


async def test_fail_job_closes_the_frontier(store: Store) -> None:
    job_id = await create(
        store, new_job(url("/a"), url("/b"), webhook={"url": HOOK, "events": ALL_EVENTS})
    )
    await store.fail_job(job_id, {"code": "bad_request", "message": "nope"})
    job = await store.get_job(job_id, None)
    assert job is not None and job.status is JobStatus.FAILED
    assert job.error == {"code": "bad_request", "message": "nope"}
    assert await store.claim(10, "w1", 60) == []
    await store.fail_job(job_id, {"code": "again"})  # no-op once final
    assert await events(store) == [(job_id, "job.failed")]


# -- frontier --------------------------------------------------------------------------


async def test_claim_record_release_round_trip(store: Store) -> None:
    job_id = await create(store, new_job(url("/a"), url("/b")))
    items = await store.claim(10, "w1", 60)
    assert sorted(item.url for item in items) == [url("/a"), url("/b")]
    assert all(item.job_id == job_id and item.depth == 0 for item in items)
    job = await store.get_job(job_id, None)
    assert job is not None and job.status is JobStatus.RUNNING and job.started_at is not None
    assert await store.claim(10, "w2", 60) == []  # nothing is handed out twice
    assert await store.pending_count() == 0

    a, b = sorted(items, key=lambda item: item.url)
    await store.release([Release(item=b, attempts=1)])
    assert await store.pending_count() == 1
    [again] = await store.claim(10, "w2", 60)
    assert again.id == b.id and again.attempts == 1

    summary = await store.record([page(a, url("/c"))])
    assert (summary.stored, summary.duplicates, summary.admitted) == (1, 0, 1)
    assert await stats(store, job_id) == {
        "pages_discovered": 3,
        "pages_queued": 2,
        "pages_fetched": 1,
        "pages_failed": 0,
        "pages_skipped": 0,
    }
    [c] = await store.claim(10, "w1", 60)
    assert (c.url, c.depth) == (url("/c"), 1)
    summary = await store.record(
        [page(again, outcome=Outcome.FAILED), page(c, outcome=Outcome.SKIPPED)]
    )
    assert summary.completed_jobs == [job_id]
    final = await store.get_job(job_id, None)
    assert final is not None and final.status is JobStatus.COMPLETED
    assert final.finished_at is not None
    assert final.stats.as_dict()["pages_failed"] == 1
    assert final.stats.as_dict()["pages_skipped"] == 1


async def test_claim_order_is_breadth_first_and_limited(store: Store) -> None:
    await create(store, new_job(*[url(f"/s{i}") for i in range(6)]))
    first = await store.claim(2, "w1", 60)
    assert [item.url for item in first] == [url("/s0"), url("/s1")]
    await store.record([page(first[0], url("/deep"))])
    rest = await store.claim(10, "w1", 60)
    assert [item.url for item in rest][-1] == url("/deep")  # depth 1 after every depth 0


async def test_same_link_admitted_twice_is_one_row(store: Store) -> None:
    job_id = await create(store, new_job(url("/a"), url("/b")))
    a, b = sorted(await store.claim(10, "w1", 60), key=lambda item: item.url)
    shared = url("/shared")
    first = await store.record([page(a, shared, shared, url("/a"))])  # seed link: known
    second = await store.record([page(b, shared)])
    assert (first.admitted, second.admitted) == (1, 0)
    assert (await stats(store, job_id))["pages_discovered"] == 3
    [item] = await store.claim(10, "w1", 60)
    assert item.url == shared


async def test_max_pages_is_never_exceeded(store: Store) -> None:
    job_id = await create(store, new_job(url("/a"), url("/b"), max_pages=5))
    a, b = sorted(await store.claim(10, "w1", 60), key=lambda item: item.url)
    summary = await store.record([page(a, url("/a"), *[url(f"/x{i}") for i in range(10)])])
    assert summary.admitted == 3  # known links do not use up room
    assert (await store.record([page(b, url("/y"))])).admitted == 0
    assert (await stats(store, job_id))["pages_discovered"] == 5
    assert {item.url for item in await store.claim(10, "w1", 60)} == {
        url(f"/x{i}") for i in range(3)
    }


async def test_max_pages_holds_under_concurrent_writers(make_store: MakeStore) -> None:
    stores = [await make_store() for _ in range(4)]
    seeds = [url(f"/s{i}") for i in range(8)]
    job_id = await create(stores[0], new_job(*seeds, max_pages=30))
    items = await stores[0].claim(100, "w0", 60)
    assert len(items) == 8

    async def write(index: int, item: FrontierItem) -> RecordSummary:
        links = [url(f"/n{index}-{i}") for i in range(10)]
        return await stores[index % 4].record([page(item, *links)])

    summaries = await asyncio.gather(*(write(i, item) for i, item in enumerate(items)))
    assert sum(s.admitted for s in summaries) == 22
    job_stats = await stats(stores[0], job_id)
    assert job_stats["pages_discovered"] == 30
    assert await stores[1].pending_count() == 22


async def test_recording_a_url_twice_stores_and_counts_it_once(make_store: MakeStore) -> None:
    one, two = await make_store(), await make_store()
    job_id = await create(one, new_job(url("/a"), url("/b")))
    a, b = sorted(await one.claim(10, "w1", 60), key=lambda item: item.url)
    # Two workers settle the same URL at once (a lease ran out and it was re-claimed).
    first, second = await asyncio.gather(
        one.record([page(a, url("/c"))]), two.record([page(a, url("/d"))])
    )
    assert first.stored + second.stored == 1
    assert first.duplicates + second.duplicates == 1
    # Within one batch too.
    dup = await one.record([page(a), page(a)])
    assert (dup.stored, dup.duplicates) == (0, 2)
    job_stats = await stats(one, job_id)
    assert job_stats["pages_fetched"] == 1
    assert job_stats["pages_discovered"] == 3  # only the stored copy's links were admitted
    assert [r["url"] for r in await all_results(one, job_id)] == [url("/a")]
    await one.record([page(b)])
    assert await status(one, job_id) is JobStatus.RUNNING  # the admitted link is pending


async def test_completion_fires_exactly_once(make_store: MakeStore) -> None:
    stores = [await make_store() for _ in range(4)]
    hook = {"url": HOOK, "events": ALL_EVENTS}
    seeds = [url(f"/s{i}") for i in range(16)]
    job_id = await create(stores[0], new_job(*seeds, webhook=hook))
    items = await stores[0].claim(100, "w0", 60)
    assert len(items) == 16
    summaries = await asyncio.gather(
        *(stores[i % 4].record([page(item)]) for i, item in enumerate(items))
    )
    assert sum(job_id in s.completed_jobs for s in summaries) == 1
    assert await status(stores[0], job_id) is JobStatus.COMPLETED
    assert sorted(await events(stores[0])) == [
        (job_id, "job.completed"),
        (job_id, "job.started"),
    ]


async def test_job_with_links_completes_only_when_frontier_is_empty(store: Store) -> None:
    job_id = await create(store, new_job(url("/a")))
    [a] = await store.claim(10, "w1", 60)
    summary = await store.record([page(a, url("/b"))])
    assert summary.completed_jobs == []
    [b] = await store.claim(10, "w1", 60)
    assert (await store.record([page(b)])).completed_jobs == [job_id]
    assert (await store.record([page(b)])).completed_jobs == []  # never twice


async def test_retry_release_is_not_claimable_before_its_time(store: Store) -> None:
    await create(store, new_job(url("/a")))
    [item] = await store.claim(10, "w1", 60)
    due = time.time() + 0.6
    await store.release([Release(item=item, not_before=due, attempts=1)])
    assert await store.claim(10, "w1", 60) == []
    [again] = await wait_until(lambda: store.claim(10, "w1", 60), bool, timeout=5)
    assert time.time() >= due - 0.05
    assert again.id == item.id and again.attempts == 1


async def test_release_of_a_settled_item_changes_nothing(store: Store) -> None:
    job_id = await create(store, new_job(url("/a")))
    [item] = await store.claim(10, "w1", 60)
    await store.record([page(item)])
    await store.release([Release(item=item)])
    assert await store.claim(10, "w1", 60) == []
    assert await status(store, job_id) is JobStatus.COMPLETED


async def test_per_host_limit_counts_claims_of_every_worker(make_store: MakeStore) -> None:
    one, two = await make_store(), await make_store()
    seeds = [url(f"/{i}", "a.test") for i in range(10)] + [url(f"/{i}", "b.test") for i in range(2)]
    await create(one, new_job(*seeds))
    first = await one.claim(100, "w1", 60, per_host=3)
    assert sorted(item.host for item in first) == ["a.test"] * 3 + ["b.test"] * 2
    assert await two.claim(100, "w2", 60, per_host=3) == []
    done = next(item for item in first if item.host == "a.test")
    await one.record([page(done)])
    second = await two.claim(100, "w2", 60, per_host=3)
    assert [item.host for item in second] == ["a.test"]
    # Without a limit the claim takes everything that is due.
    assert len(await two.claim(100, "w2", 60)) == 6


async def test_a_fetched_claim_frees_its_host_for_every_worker(make_store: MakeStore) -> None:
    """A claim whose body is read holds no slot, before its record; the record later
    does not unpark the host again (it holds the next claim by then)."""
    one, two = await make_store(), await make_store()
    await create(one, new_job(*(url(f"/{i}") for i in range(3)), per_host_concurrency=1))
    [held] = await one.claim(10, "w1", 60, per_host=1)
    assert await two.claim(10, "w2", 60, per_host=1) == []
    await one.fetched([(held, None)], worker="w1")
    [nxt] = await two.claim(10, "w2", 60, per_host=1)
    assert nxt.url == url("/1")
    await one.record([page(held)])
    assert await one.claim(10, "w1", 60, per_host=1) == []  # /1 is in flight
    assert await two.claim(10, "w2", 60, per_host=1) == []


async def test_a_fetched_claim_frees_its_host_after_the_spacing(make_store: MakeStore) -> None:
    one, two = await make_store(), await make_store()
    await create(one, new_job(*(url(f"/{i}") for i in range(3)), per_host_concurrency=1))
    [held] = await one.claim(10, "w1", 60, per_host=1)
    free_at = time.time() + 1.0
    await one.fetched([(held, free_at)], worker="w1")
    assert await two.claim(10, "w2", 60, per_host=1) == []  # not before its spacing passed
    nxt = await wait_until(lambda: two.claim(10, "w2", 60, per_host=1), bool, timeout=5)
    assert time.time() >= free_at - 0.05  # the database clock may run a little apart
    assert [item.url for item in nxt] == [url("/1")]


async def test_a_turn_due_soon_is_claimed_early_with_its_wait(make_store: MakeStore) -> None:
    one, two = await make_store(), await make_store()
    await create(one, new_job(*(url(f"/{i}") for i in range(3)), per_host_concurrency=1))
    [held] = await one.claim(10, "w1", 60, per_host=1)
    await one.fetched([(held, time.time() + 30)], worker="w1")
    assert await two.claim(10, "w2", 60, per_host=1, early=10) == []  # not that early
    [nxt] = await two.claim(10, "w2", 60, per_host=1, early=60)
    assert nxt.url == url("/1")
    assert 25 < nxt.start_in <= 30  # its scheduler starts it when the turn comes


async def test_a_fetch_mark_of_another_claim_changes_nothing(make_store: MakeStore) -> None:
    one, two = await make_store(), await make_store()
    await create(one, new_job(*(url(f"/{i}") for i in range(3)), per_host_concurrency=1))
    [held] = await one.claim(10, "w1", 60, per_host=1)
    await one.fetched([(held, None)], worker="w2")  # not w2's claim
    # An earlier claim of the row (it was recorded and claimed again since) neither.
    await one.fetched([(replace(held, attempts=held.attempts + 1), None)], worker="w1")
    assert await two.claim(10, "w2", 60, per_host=1) == []


@pytest.mark.postgres
async def test_a_host_settled_during_a_claim_is_not_parked_for_good(
    make_store: MakeStore, database_url: str
) -> None:
    """A record of another process holds the host while a claim comes: the claim locks
    the host before it counts the host's claims, so it sees the settled state (it must
    not park the host on a stale count, or no claim is left to settle and unpark it; CI
    once saw one key's host starved)."""
    if not database_url.startswith("postgres"):
        pytest.skip("a private SQLite frontier has one writer: no record between")
    one, two = await make_store(), await make_store()
    await create(one, new_job(*(url(f"/{i}") for i in range(5)), per_host_concurrency=1))
    [held] = await one.claim(10, "w1", 60, per_host=1)
    blocker = await asyncpg.connect(database_url)
    watcher = await asyncpg.connect(database_url)

    async def waiting() -> int:
        value = await watcher.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND datname = current_database()"
        )
        return int(value)

    try:
        # The host is back in line but at its limit (as new links put it back).
        await blocker.execute("UPDATE hosts SET next_at = 0 WHERE host = 'a.test'")
        lock = blocker.transaction()
        await lock.start()
        await blocker.execute("SELECT 1 FROM hosts WHERE host = 'a.test' FOR UPDATE")
        record = asyncio.ensure_future(one.record([page(held)]))
        await wait_until(waiting, lambda n: n >= 1, timeout=10, message="record not blocked")
        claim = asyncio.ensure_future(two.claim(10, "w2", 60, per_host=1))
        await wait_until(waiting, lambda n: n >= 2, timeout=10, message="claim not blocked")
        await lock.commit()  # the record settles first (lock queue order), then the claim
        await record
        # It counted the host's claims after the record: the slot is free.
        assert [item.url for item in await claim] == [url("/1")]
    finally:
        await blocker.close()
        await watcher.close()
    assert await two.claim(10, "w2", 60, per_host=1) == []  # /1 is in flight: host full


async def test_per_host_limit_honours_the_jobs_own_setting(store: Store) -> None:
    seeds = [url(f"/{i}") for i in range(10)]
    await create(store, new_job(*seeds, per_host_concurrency=5))
    assert len(await store.claim(100, "w1", 60, per_host=2)) == 5


async def test_per_host_limit_ignores_claims_left_by_a_cancelled_job(store: Store) -> None:
    stale = await create(store, new_job(*[url(f"/old{i}") for i in range(3)]))
    assert len(await store.claim(100, "w1", 60, per_host=3)) == 3
    await store.cancel_job(stale, None)  # its claimed rows are never settled
    await create(store, new_job(url("/new")))
    assert [item.url for item in await store.claim(100, "w1", 60, per_host=3)] == [url("/new")]


async def test_full_host_does_not_starve_others(store: Store) -> None:
    busy = [url(f"/{i}", "a.test") for i in range(50)]
    await create(store, new_job(*busy))
    await create(store, new_job(url("/", "b.test")))
    assert len(await store.claim(5, "w1", 60, per_host=5)) == 5
    [item] = await store.claim(5, "w1", 60, per_host=5)
    assert item.host == "b.test"


async def test_concurrent_claimers_respect_the_per_host_limit(make_store: MakeStore) -> None:
    stores = [await make_store() for _ in range(6)]
    hosts = [f"h{i}.test" for i in range(4)]
    for _ in range(5):  # races are probabilistic: several rounds make a miss unlikely
        job_id = await create(
            stores[0], new_job(*[url(f"/{i}", h) for h in hosts for i in range(8)])
        )
        batches = await asyncio.gather(
            *(s.claim(2, f"w{i}", 60, per_host=3) for i, s in enumerate(stores) for _ in range(4))
        )
        claimed = [item for batch in batches for item in batch]
        assert len({item.id for item in claimed}) == len(claimed)
        assert sorted(item.host for item in claimed) == sorted(hosts * 3)
        await stores[0].cancel_job(job_id, None)


# -- leases (PostgreSQL: many processes) -------------------------------------------------


@pytest.fixture
def postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("leases expire only on PostgreSQL (one SQLite process owns its claims)")


@pytest.mark.usefixtures("postgres_only")
async def test_expired_lease_makes_a_row_claimable_again(make_store: MakeStore) -> None:
    dead, alive = await make_store(), await make_store()
    job_id = await create(dead, new_job(url("/a")))
    [item] = await dead.claim(10, "dead-worker", 1.0)
    assert await alive.claim(10, "w2", 60) == []
    [again] = await wait_until(lambda: alive.claim(10, "w2", 60), bool, timeout=5)
    assert again.id == item.id
    # The dead worker's late result and the new one are stored and counted once.
    await dead.record([page(item)])
    assert (await alive.record([page(again)])).duplicates == 1
    assert await status(alive, job_id) is JobStatus.COMPLETED
    assert (await stats(alive, job_id))["pages_fetched"] == 1


@pytest.mark.usefixtures("postgres_only")
async def test_expired_lease_frees_the_hosts_slot(make_store: MakeStore) -> None:
    dead, alive = await make_store(), await make_store()
    await create(dead, new_job(url("/a"), url("/b")))
    [held] = await dead.claim(10, "dead-worker", 1.0, per_host=1)
    assert await alive.claim(10, "w2", 60, per_host=1) == []  # the host's one slot is held
    # Once the lease expires the slot is free again. Which row comes first depends on
    # whether the expired row has been swept back yet; the dead worker's row must follow.
    [first] = await wait_until(lambda: alive.claim(10, "w2", 60, per_host=1), bool, timeout=5)
    await alive.record([page(first)])
    [second] = await wait_until(lambda: alive.claim(10, "w2", 60, per_host=1), bool, timeout=5)
    assert held.id in {first.id, second.id} and first.id != second.id


@pytest.mark.usefixtures("postgres_only")
async def test_a_released_retry_keeps_its_hosts_spacing(make_store: MakeStore) -> None:
    """A retry sent its request: no other process starts on the host before that
    request's start plus the spacing, though the claim's slot is free at once."""
    one, two = await make_store(), await make_store()
    await create(one, new_job(*(url(f"/{i}") for i in range(3)), per_host_concurrency=1))
    [held] = await one.claim(10, "w1", 60, per_host=1)
    free_at = time.time() + 1.0
    await one.release(
        [Release(item=held, not_before=time.time() + 30, attempts=1, host_free_at=free_at)],
        worker="w1",
    )
    assert await two.claim(10, "w2", 60, per_host=1) == []  # not before its spacing passed
    nxt = await wait_until(lambda: two.claim(10, "w2", 60, per_host=1), bool, timeout=5)
    assert time.time() >= free_at - 0.05  # the database clock may run a little apart
    assert [item.url for item in nxt] == [url("/1")]  # the retry waits for its own time


@pytest.mark.usefixtures("postgres_only")
async def test_extend_leases_keeps_this_workers_claims(make_store: MakeStore) -> None:
    mine, other = await make_store(), await make_store()
    await create(mine, new_job(url("/a"), url("/b")))
    a, b = sorted(await mine.claim(10, "w1", 1.0), key=lambda item: item.url)
    await mine.extend_leases([a.id], "w1", 60)
    await other.extend_leases([b.id], "someone-else", 60)  # not theirs: no effect
    [expired] = await wait_until(lambda: other.claim(10, "w2", 60), bool, timeout=5)
    assert expired.id == b.id
    assert await other.claim(10, "w2", 60) == []  # a's lease was renewed


@pytest.mark.usefixtures("postgres_only")
async def test_recover_keeps_live_claims_of_other_workers(make_store: MakeStore) -> None:
    running, starting = await make_store(), await make_store()
    await create(running, new_job(url("/a")))
    assert len(await running.claim(10, "w1", 60)) == 1
    assert await starting.recover() == 0
    assert await starting.claim(10, "w2", 60) == []


async def test_sqlite_recover_returns_every_claim(backend: str, store: Store) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only: one process owns the file, so every claim is stale")
    await create(store, new_job(url("/a")))
    await store.claim(10, "w1", 60)
    assert await store.recover() == 1
    assert len(await store.claim(10, "w2", 60)) == 1


async def test_sqlite_claims_leave_the_wal_checkpoint_to_other_writes(
    backend: str, store: Store
) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only: its commits checkpoint the WAL")
    assert isinstance(store, SQLiteStore)
    writer = store.db._writer  # type: ignore[attr-defined]

    async def autocheckpoint() -> int:
        cursor = await writer.execute("PRAGMA wal_autocheckpoint")
        [value] = await cursor.fetchone()
        await cursor.close()
        return int(value)

    await create(store, new_job(url("/a")))
    assert await autocheckpoint() == 1000  # what the job's creation committed with
    [item] = await store.claim(10, "w1", 60)
    assert await autocheckpoint() == 8000  # the claim's commit: only past the backstop
    await store.record([page(item)])
    assert await autocheckpoint() == 1000


async def test_many_workers_crawl_a_graph_exactly_once(make_store: MakeStore) -> None:
    """Workers claim, 'fetch' and record a 200-node tree until the job completes."""
    stores = [await make_store() for _ in range(4)]
    job_id = await create(stores[0], new_job(url("/n/0"), max_pages=1000))
    fanout, nodes = 3, 200
    completions: list[str] = []

    def children(i: int) -> list[str]:
        return [url(f"/n/{c}") for c in range(i * fanout + 1, min(i * fanout + 1 + fanout, nodes))]

    async def worker(index: int) -> None:
        store = stores[index]
        deadline = time.monotonic() + 30
        while await status(store, job_id) is not JobStatus.COMPLETED:
            assert time.monotonic() < deadline, "crawl did not finish"
            items = await store.claim(7, f"w{index}", 60, per_host=8)
            if not items:
                await asyncio.sleep(0.01)
                continue
            records = [page(it, *children(int(it.url.rsplit("/", 1)[1]))) for it in items]
            completions.extend((await store.record(records)).completed_jobs)

    await asyncio.gather(*(worker(i) for i in range(4)))
    assert completions == [job_id]
    results = await all_results(stores[0], job_id)
    assert sorted(r["url"] for r in results) == sorted(url(f"/n/{i}") for i in range(nodes))
    assert await stats(stores[0], job_id) == {
        "pages_discovered": nodes,
        "pages_queued": 0,
        "pages_fetched": nodes,
        "pages_failed": 0,
        "pages_skipped": 0,
    }


# -- results ---------------------------------------------------------------------------


async def test_results_pages_in_order_with_outcome_filter(store: Store) -> None:
    seeds = [url(f"/r{i:02d}") for i in range(9)]
    job_id = await create(store, new_job(*seeds))
    items = sorted(await store.claim(100, "w1", 60), key=lambda item: item.url)
    outcomes = [Outcome.OK, Outcome.FAILED, Outcome.SKIPPED] * 3
    await store.record([page(item, outcome=o) for item, o in zip(items, outcomes, strict=True)])

    rows: list[tuple[int, str]] = []
    after = 0
    while batch := await store.list_results(job_id, None, 4, after):
        rows.extend(batch)
        after = batch[-1][0]
    ids = [row_id for row_id, _ in rows]
    assert ids == sorted(ids) and len(set(ids)) == 9
    assert [json.loads(doc)["url"] for _, doc in rows] == seeds

    failed = await store.list_results(job_id, Outcome.FAILED, 10, 0)
    assert [json.loads(doc)["url"] for _, doc in failed] == seeds[1::3]
    after_first = await store.list_results(job_id, Outcome.OK, 10, failed[0][0])
    assert [json.loads(doc)["url"] for _, doc in after_first] == seeds[3::3]
    assert await store.list_results("other-job", None, 10, 0) == []


async def test_iter_results_streams_everything_in_order(store: Store) -> None:
    seeds = [url(f"/i{i:04d}") for i in range(1100)]
    job_id = await create(store, new_job(*seeds, max_pages=2000))
    items = await store.claim(2000, "w1", 60)
    await store.record(
        [page(item, outcome=Outcome.OK if item.id % 2 else Outcome.FAILED) for item in items]
    )
    streamed = await all_results(store, job_id)
    assert [doc["url"] for doc in streamed] == seeds
    ok = await all_results(store, job_id, Outcome.OK)
    assert 0 < len(ok) < 1100 and all(doc["outcome"] == "ok" for doc in ok)


# -- webhook outbox ----------------------------------------------------------------------


async def test_outbox_events_for_subscribed_transitions(store: Store) -> None:
    hook = {"url": HOOK, "events": ["job.started", "job.completed", "job.cancelled"]}
    done = await create(store, new_job(url("/a"), webhook=hook))
    cancelled = await create(store, new_job(url("/b"), webhook=hook))
    quiet = await create(store, new_job(url("/c"), webhook={"url": HOOK, "events": ["job.failed"]}))
    silent = await create(store, new_job(url("/d")))

    items = {item.job_id: item for item in await store.claim(10, "w1", 60)}
    await store.cancel_job(cancelled, None)
    await store.cancel_job(silent, None)
    await store.record([page(items[done]), page(items[quiet])])
    due = await store.due_events(100)
    assert sorted((e.job_id, e.event_type) for e in due) == sorted(
        [
            (done, "job.started"),
            (cancelled, "job.started"),
            (done, "job.completed"),
            (cancelled, "job.cancelled"),
        ]
    )
    completed = next(e for e in due if e.event_type == "job.completed")
    body = json.loads(completed.payload)
    assert body["id"] == completed.event_id and body["type"] == "job.completed"
    assert body["job"]["status"] == "completed" and body["job_id"] == done
    assert completed.url == HOOK and completed.attempts == 0

    started = next(e for e in due if e.event_type == "job.started" and e.job_id == done)
    await store.event_delivered(completed.id)
    await store.event_failed(started.id, time.time() + 3600, "503 from receiver")
    cancel_event = next(e for e in due if e.event_type == "job.cancelled")
    await store.event_failed(cancel_event.id, None, "410 Gone")
    assert await events(store) == [(cancelled, "job.started")]


# -- migrations ------------------------------------------------------------------------


async def test_migrations_applied_twice_are_a_no_op(
    backend: str, database_url: str, make_store: MakeStore
) -> None:
    first = await make_store()
    job_id = await create(first, new_job())
    second = await make_store()  # opening again runs the migrations again
    assert await second.get_job(job_id, None) is not None
    dialect = "sqlite" if backend == "sqlite" else "postgresql"
    expected = [m.version for m in load_migrations(dialect)]
    if backend == "sqlite":
        with sqlite3.connect(sqlite_path(database_url)) as conn:
            versions = [row[0] for row in conn.execute("SELECT version FROM schema_migrations")]
    else:
        assert isinstance(first, PostgresStore) and isinstance(second, PostgresStore)
        assert first.applied_migrations == expected
        assert second.applied_migrations == []
        rows = await pgdb.query(database_url, "SELECT version FROM schema_migrations")
        versions = [row["version"] for row in rows]
    assert sorted(versions) == expected


async def test_ping(store: Store) -> None:
    await store.ping()


@pytest.mark.usefixtures("postgres_only")
async def test_one_leader_per_role_and_it_passes_on(make_store: MakeStore) -> None:
    first, second = await make_store(), await make_store()
    assert await first.try_lead("webhooks")
    assert not await second.try_lead("webhooks")
    assert await first.try_lead("webhooks"), "a leader stays leader"
    assert await second.try_lead("other-role"), "roles are independent"
    await first.close()
    assert await second.try_lead("webhooks"), "a closed leader hands the role on"


async def test_a_single_sqlite_process_always_leads(store: Store, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("SQLite only")
    assert await store.try_lead("webhooks")


async def test_a_release_only_returns_the_releasing_workers_claims(store: Store) -> None:
    await create(store, new_job(url("/a")))
    [item] = await store.claim(10, "w1", 60)
    # A late release from a worker whose lease on this row has passed to another is void.
    await store.release([Release(item=item)], worker="w2")
    assert await store.pending_count() == 0
    await store.release([Release(item=item)], worker="w1")
    assert await store.pending_count() == 1


# -- crawl spec and learnt facts -----------------------------------------------------------


async def test_spec_is_stored_and_read_back(store: Store) -> None:
    from dataclasses import replace

    from service.models import JobRequest
    from service.spec import CrawlSpec

    request = JobRequest.model_validate(
        {
            "url": url("/"),
            "max_depth": 2,
            "selectors": {"t": "h1", "a": {"css": "a", "attr": "href"}},
            "webhook": {"url": HOOK, "events": ["job.page"]},
        }
    )
    spec = CrawlSpec.from_request(request)
    job = replace(new_job(url("/")), spec=spec)
    job_id = await create(store, job)
    stored = (await store.job_specs([job_id]))[job_id]
    assert stored.spec == spec and stored.status is JobStatus.QUEUED
    assert stored.spec.webhook is not None and stored.spec.webhook.wants("job.page")
    assert not stored.facts


async def test_facts_are_stored_with_the_record_and_seen_by_every_store(
    make_store: MakeStore,
) -> None:
    from dataclasses import replace

    from service.spec import JobFacts

    one, two = await make_store(), await make_store()
    job_id = await create(one, new_job(url("/")))
    assert (await two.job_specs([job_id]))[job_id].spec.urls == (url("/"),)  # from request
    [seed] = await one.claim(10, "w1", 60)
    learnt = JobFacts(widened_hosts=frozenset({"b.test"}))
    await one.record([replace(page(seed, url("/x", "b.test")), facts=learnt)])
    facts = (await two.job_specs([job_id]))[job_id].facts
    assert facts.widened_hosts == {"b.test"} and not facts.sitemap_origins


# -- recrawls ------------------------------------------------------------------------------


async def test_recrawl_verbs_versions_changes_and_removed_pages(store: Store) -> None:
    """The store's side of a recrawl: validators and hashes kept per result, the previous
    job's pages as revisits, change counts, and its unreached pages removed at completion
    (before job.completed, after job.changed)."""
    first = await create(store, new_job(url("/"), max_depth=1))
    [home] = await store.claim(10, "w", 60)
    version = PageVersion(etag='"e1"', last_modified="Tue, 14 Nov 2023 22:13:20 GMT")
    doc = {"url": home.url, "depth": 0, "fetched_at": "2026-12-01T00:00:00.000Z", "title": "H"}
    await store.record(
        [
            PageRecord(
                item=home,
                outcome=Outcome.OK,
                page_json=json.dumps(doc | {"status_code": 200}),
                attempts=1,
                links=(url("/a"), url("/b")),
                version=replace(version, content_hash="h", content=b"zz"),
            )
        ]
    )
    children = await store.claim(10, "w", 60)
    await store.record(
        [
            PageRecord(
                item=item,
                outcome=Outcome.OK,
                page_json=json.dumps({"url": item.url, "depth": 1, "status_code": 200}),
                attempts=1,
            )
            for item in children
        ]
    )
    assert await status(store, first) is JobStatus.COMPLETED
    assert await store.revisit_urls(first, 10) == [(url("/"), 0), (url("/a"), 1), (url("/b"), 1)]
    previous = await store.previous_pages(first, [url("/"), url("/nope")])
    assert list(previous) == [url("/")]
    kept = previous[url("/")]
    assert kept.version == replace(version, content_hash="h", content=b"zz")
    assert kept.fetched_at == "2026-12-01T00:00:00.000Z" and kept.exists

    hook = {"url": HOOK, "events": ["job.changed", "job.completed"]}
    recrawl = replace(
        new_job(url("/"), max_depth=1, webhook=hook),
        recrawl_of=first,
        revisits=((url("/a"), 1),),  # /b is no longer reached
    )
    second = await create(store, recrawl)
    job = await store.get_job(second, None)
    assert job is not None and job.recrawl_of == first
    assert job.stats.changes == ChangeCounts()
    items = sorted(await store.claim(10, "w", 60), key=lambda item: item.url)
    assert [(item.url, item.depth) for item in items] == [(url("/"), 0), (url("/a"), 1)]
    await store.record(
        [
            PageRecord(
                item=item,
                outcome=Outcome.OK,
                page_json=json.dumps({"url": item.url, "change": change.value}),
                attempts=1,
                change=change,
            )
            for item, change in zip(items, (Change.UNCHANGED, Change.CHANGED), strict=True)
        ]
    )
    done = await store.get_job(second, None)
    assert done is not None and done.status is JobStatus.COMPLETED
    assert done.stats.changes == ChangeCounts(changed=1, unchanged=1, removed=1)
    assert done.stats.pages_fetched == 2 and done.stats.pages_skipped == 0
    [removed] = [json.loads(doc) async for doc in store.iter_results(second, None, Change.REMOVED)]
    assert removed["url"] == url("/b") and removed["change"] == "removed"
    assert removed["error"]["code"] == "not_reached" and removed["depth"] == 1
    assert removed["previous_fetched_at"] is None  # the previous /b document had none
    assert [
        json.loads(doc)["url"] async for doc in store.iter_results(second, None, Change.CHANGED)
    ] == [url("/a")]
    assert (await store.list_results(second, Outcome.SKIPPED, 10, 0, Change.REMOVED))[0][0] > 0
    assert await store.list_results(second, Outcome.OK, 10, 0, Change.REMOVED) == []
    outbox = [e for e in await store.due_events(100) if e.job_id == second]
    assert [e.event_type for e in outbox] == ["job.changed", "job.completed"]
    changed = json.loads(outbox[0].payload)["data"]
    assert changed["changes"] == {"new": 0, "changed": 1, "unchanged": 1, "removed": 1}
    assert changed["pages"] == [
        {"url": url("/a"), "change": "changed"},
        {"url": url("/b"), "change": "removed"},
    ]
