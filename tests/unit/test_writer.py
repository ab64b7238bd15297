"""The result writer: a poison record is set apart; an unwritable database pauses it."""

from __future__ import annotations

import asyncio
import json

from service.crawl.writer import ResultWriter
from service.errors import StoreError, StoreUnavailable
from service.models import Outcome
from service.store.base import FrontierItem, PageRecord, RecordSummary
from tests.conftest import eventually


def record(i: int, job: str = "j", poison: bool = False) -> PageRecord:
    item = FrontierItem(
        id=i, job_id=job, url=f"http://a.test/{i}", host="a.test", depth=0, attempts=0
    )
    links = ("http://a.test/" + "x" * 9000,) if poison else ()
    return PageRecord(item=item, outcome=Outcome.OK, page_json="{}", attempts=1, links=links)


class FakeStore:
    """Refuses any batch holding a record with links (as the 8 KB link broke PostgreSQL)."""

    def __init__(self) -> None:
        self.stored: list[PageRecord] = []
        self.calls = 0
        self.unwritable = False

    async def record(self, records: list[PageRecord]) -> RecordSummary:
        self.calls += 1
        if self.unwritable:
            raise StoreUnavailable("database or disk is full")
        if any(rec.links for rec in records):
            raise StoreError("index row size 9080 exceeds btree version 4 maximum 2704")
        self.stored.extend(records)
        return RecordSummary(stored=len(records))


async def test_a_poison_record_is_stored_as_a_failed_page_and_the_rest_goes_through() -> None:
    store = FakeStore()
    flushed: list[PageRecord] = []
    writer = ResultWriter(
        store,  # type: ignore[arg-type]
        batch_size=100,
        interval=0.01,
        on_flushed=lambda recs, admitted, done: flushed.extend(recs),
    )
    records = [record(i, job=f"j{i % 3}") for i in range(20)]
    records[7] = record(7, job="j1", poison=True)
    for rec in records:
        writer.add(rec)
    await writer.flush()
    assert writer.pending == 0
    assert writer.set_apart == 1
    assert sorted(r.item.id for r in store.stored) == list(range(20))
    (failed,) = [r for r in store.stored if r.item.id == 7]
    assert failed.outcome is Outcome.FAILED and failed.links == ()
    assert json.loads(failed.page_json)["error"]["code"] == "store_error"
    assert sorted(r.item.id for r in flushed) == list(range(20))
    assert store.calls < 20  # split in halves, not retried one by one from the start


async def test_an_unwritable_database_keeps_records_and_pauses_until_it_recovers() -> None:
    store = FakeStore()
    store.unwritable = True
    writer = ResultWriter(
        store,  # type: ignore[arg-type]
        batch_size=100,
        interval=0.01,
        on_flushed=lambda recs, admitted, done: None,
    )
    for i in range(5):
        writer.add(record(i))
    await writer.flush()
    assert writer.paused and writer.pending == 5 and writer.set_apart == 0
    store.unwritable = False
    stop = asyncio.Event()
    task = asyncio.create_task(writer.run(stop))
    await eventually(lambda: not writer.pending, 4)
    stop.set()
    await task
    assert not writer.paused
    assert [r.item.id for r in store.stored] == list(range(5))
