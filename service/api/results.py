"""Result routes: cursor pages and an NDJSON stream, straight from stored JSON.

Memory is bounded by bytes, not by `limit` x page size: rows are read a few at a time
(fewer once big pages have been seen), written to the client as they come, and a page
of results ends at SCRAPER_MAX_RESPONSE_BYTES (its cursor then points at the next
result). One result is always returned, however large: a stored page is bounded by
the per-format caps. A 20 MB emoji page x8 at `limit=8` cost 12 s and 2.4 GB before.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator

from sanic import Blueprint, Request

from service.api import openapi, schemas
from service.api.context import ctx
from service.api.jobs import JOB_ID, load_job
from service.api.params import choice_param, cursor_param, int_param
from service.models import Change, Outcome
from service.store.base import Store, encode_cursor

bp = Blueprint("results", url_prefix="/v1/jobs")

_OUTCOMES = tuple(o.value for o in Outcome)
_OUTCOME = openapi.query(
    "outcome", "Only results with this outcome", type="string", enum=list(_OUTCOMES)
)
_CHANGES = tuple(c.value for c in Change)
_CHANGE = openapi.query(
    "change",
    "A recrawl's results of this kind of change only (other jobs' results have none)",
    type="string",
    enum=list(_CHANGES),
)


# Rows per read before anything is known about their size, and at most.
_FIRST_READ = 8
_MAX_READ = 128


class ResultRows:
    """A job's stored results after a position, read in chunks that fit a byte budget."""

    def __init__(
        self,
        store: Store,
        job_id: str,
        outcome: Outcome | None,
        after: int,
        budget: int,
        change: Change | None = None,
    ) -> None:
        self._store = store
        self._job_id = job_id
        self._outcome = outcome
        self._change = change
        self._after = after
        self._budget = max(1, budget)
        self._buffer: deque[tuple[int, str]] = deque()
        self._exhausted = False
        self._seen_rows = 0
        self._seen_chars = 0

    async def peek(self, wanted: int = _MAX_READ) -> tuple[int, str] | None:
        """The next row without taking it (reading at most `wanted` rows if needed)."""
        if not self._buffer and not self._exhausted:
            await self._read(wanted)
        return self._buffer[0] if self._buffer else None

    def take(self) -> tuple[int, str]:
        return self._buffer.popleft()

    async def __aiter__(self) -> AsyncIterator[tuple[int, str]]:
        while (row := await self.peek()) is not None:
            self.take()
            yield row

    async def _read(self, wanted: int) -> None:
        if self._seen_rows:
            average = max(1, self._seen_chars // self._seen_rows)
            size = min(_MAX_READ, max(1, self._budget // 4 // average))
        else:
            size = _FIRST_READ
        size = max(1, min(size, wanted))
        rows = await self._store.list_results(
            self._job_id, self._outcome, size, self._after, self._change
        )
        if len(rows) < size:
            self._exhausted = True
        if rows:
            self._after = rows[-1][0]
            self._seen_rows += len(rows)
            self._seen_chars += sum(len(page) for _, page in rows)
        self._buffer.extend(rows)


def _outcome(request: Request) -> Outcome | None:
    value = choice_param(request, "outcome", _OUTCOMES)
    return Outcome(value) if value else None


def _change(request: Request) -> Change | None:
    value = choice_param(request, "change", _CHANGES)
    return Change(value) if value else None


def _stream_type(request: Request) -> str:
    # Some generated clients take only JSON or binary bodies: let them ask for "binary".
    accept = request.headers.get("accept") or ""
    if "application/octet-stream" in accept and "application/x-ndjson" not in accept:
        return "application/octet-stream"
    return "application/x-ndjson"


@bp.get("/<job_id:str>/results")
@openapi.operation(
    "list_results",
    summary="Page through a job's results",
    description=(
        "Results in storage order; pages are stable while the job runs. Until the job "
        "has finished, `next_cursor` is always set (an empty page means: poll again "
        "later); it is null once every result of a finished job has been returned."
    ),
    path=JOB_ID,
    params=(
        openapi.query("limit", "Page size", type="integer", minimum=1, maximum=1000, default=50),
        openapi.query("cursor", "`next_cursor` of the previous page", type="string"),
        _OUTCOME,
        _CHANGE,
    ),
    responses={200: openapi.json(schemas.PageList, "A page of results")},
    problems=(404, 422),
)
async def list_results(request: Request, job_id: str) -> None:
    outcome = _outcome(request)
    change = _change(request)
    limit = int_param(request, "limit", 50, 1, 1000)
    after = cursor_param(request) or 0
    # The status is read before the rows: a job is marked finished in the transaction
    # that stores its last result, so "finished" here means every row is visible below.
    job = await load_job(request, job_id)
    app = ctx(request)
    budget = app.settings.max_response_bytes
    rows = ResultRows(app.db, job_id, outcome, after, budget, change)
    first = await rows.peek(limit + 1)
    response = await request.respond(content_type="application/json")
    # The pages are stored as JSON documents: splice them in rather than re-encode.
    await response.send(b'{"items":[')
    sent = 0
    size = 0
    last = after
    more = False
    row = first
    while row is not None:
        if sent == limit:
            more = True
            break
        page = row[1].encode()
        if sent and size + len(page) > budget:
            more = True
            break
        rows.take()
        await response.send(b"," + page if sent else page)
        sent += 1
        size += len(page)
        last = row[0]
        row = await rows.peek(limit - sent + 1)
    if more or (sent and not job.status.is_final):
        cursor: str | None = encode_cursor(last)
    elif not job.status.is_final:
        # Caught up with a job that is still running: the same position, to poll again.
        cursor = encode_cursor(after)
    else:
        cursor = None
    await response.send(b'],"next_cursor":' + json.dumps(cursor).encode() + b"}")
    await response.eof()


@bp.get("/<job_id:str>/results.ndjson")
@openapi.operation(
    "stream_results",
    summary="Stream every result, one JSON document per line",
    description=(
        "Every result stored so far, as NDJSON (one `PageOut` per line). Send "
        "`Accept: application/octet-stream` to get the same bytes labelled as such, for "
        "clients that only take binary bodies."
    ),
    path=JOB_ID,
    params=(_OUTCOME, _CHANGE),
    responses={
        200: openapi.content(
            "One PageOut JSON document per line",
            {
                "application/x-ndjson": schemas.PageOut,
                "application/octet-stream": {"type": "string", "format": "binary"},
            },
        )
    },
    problems=(404, 422),
)
async def stream_results(request: Request, job_id: str) -> None:
    outcome = _outcome(request)
    change = _change(request)
    await load_job(request, job_id)
    app = ctx(request)
    response = await request.respond(content_type=_stream_type(request))
    # Small pages are sent in batches (fewer writes), big ones one by one.
    batch: list[str] = []
    batch_size = 0
    rows = ResultRows(app.db, job_id, outcome, 0, app.settings.max_response_bytes, change)
    async for _, page in rows:
        batch.append(page)
        batch_size += len(page)
        if len(batch) >= 100 or batch_size >= 256 * 1024:
            await response.send(("\n".join(batch) + "\n").encode())
            batch.clear()
            batch_size = 0
    if batch:
        await response.send(("\n".join(batch) + "\n").encode())
    await response.eof()
