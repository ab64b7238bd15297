"""A Python client for Trawl's HTTP API: `Client` (blocking) and `AsyncClient`.

    with Client("http://127.0.0.1:8000", api_key="...") as trawl:
        job = trawl.submit("https://example.com/", max_depth=2)
        trawl.wait(job.id, on_progress=lambda j: print(j.stats.pages_fetched))
        for page in trawl.iter_results(job.id):
            print(page.url, page.title)

Exceptions:

TrawlClientError            base of everything this module raises
├── TransportError          the server could not be reached (httpx errors, mapped)
└── ApiError                the server answered with a problem+json (`status`, `detail`, ...)
    ├── AuthenticationError 401
    ├── NotFoundError       404
    ├── ValidationError     422 (`errors` names the offending fields)
    ├── RateLimitError      429 (`retry_after` seconds)
    ├── ScrapeTimeoutError  504 from /v1/scrape (`job_id` names the job still running)
    └── ServerError         other 5xx
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import httpx

FINAL_STATUSES = frozenset({"completed", "failed", "cancelled"})
DEFAULT_TIMEOUT = 30.0
# A caught-up reader of a running job's results asks again this often.
RESULTS_POLL_SECONDS = 0.5

T = TypeVar("T")


# -- errors -------------------------------------------------------------------------------


class TrawlClientError(Exception):
    """Something went wrong talking to Trawl."""


class TransportError(TrawlClientError):
    """The server could not be reached or the connection broke."""


class ApiError(TrawlClientError):
    """The server answered with an error (an RFC 9457 problem document)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.type: str = str(problem.get("type") or "about:blank")
        self.title: str = str(problem.get("title") or f"HTTP {status}")
        self.detail: str = str(problem.get("detail") or self.title)
        self.errors: list[dict[str, Any]] = list(problem.get("errors") or [])
        self.job_id: str | None = problem.get("job_id")
        retry = problem.get("retry_after")
        self.retry_after: float | None = float(retry) if retry is not None else None
        super().__init__(f"{status} {self.title}: {self.detail}")


class AuthenticationError(ApiError):
    """401: a valid API key is needed."""


class NotFoundError(ApiError):
    """404: no such job (or not yours)."""


class ValidationError(ApiError):
    """422: the request is invalid; `errors` names the fields."""


class RateLimitError(ApiError):
    """429: slow down for `retry_after` seconds."""


class ScrapeTimeoutError(ApiError):
    """504: the scrape did not finish in time; `job_id` names the job still running."""


class ServerError(ApiError):
    """5xx: the server failed."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    404: NotFoundError,
    422: ValidationError,
    429: RateLimitError,
    504: ScrapeTimeoutError,
}


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    try:
        problem = response.json()
        if not isinstance(problem, dict):
            raise ValueError("not an object")
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    retry_after = response.headers.get("retry-after")
    if retry_after and "retry_after" not in problem:
        with contextlib.suppress(ValueError):
            problem["retry_after"] = float(retry_after)
    status = response.status_code
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else ApiError)
    raise kind(status, problem)


# -- records ------------------------------------------------------------------------------


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStats:
    pages_discovered: int = 0
    pages_queued: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    # A recrawl's results by change: {"new", "changed", "unchanged", "removed"}; else None.
    changes: dict[str, int] | None = None

    @property
    def pages_done(self) -> int:
        """Pages finished one way or another."""
        return self.pages_fetched + self.pages_failed + self.pages_skipped

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobStats:
        counts = {name: int(data.get(name) or 0) for name in _PAGE_COUNTS}
        changes = data.get("changes")
        return cls(
            **counts,
            changes={k: int(v) for k, v in changes.items()} if isinstance(changes, dict) else None,
        )


_PAGE_COUNTS = (
    "pages_discovered",
    "pages_queued",
    "pages_fetched",
    "pages_failed",
    "pages_skipped",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    id: str
    status: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    request: dict[str, Any]
    stats: JobStats
    error: dict[str, Any] | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    recrawl_of: str | None = None  # the job this one recrawls

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(
            id=str(data["id"]),
            status=str(data["status"]),
            created_at=_time(data.get("created_at")),
            started_at=_time(data.get("started_at")),
            finished_at=_time(data.get("finished_at")),
            request=dict(data.get("request") or {}),
            stats=JobStats.from_dict(data.get("stats") or {}),
            error=data.get("error"),
            raw=data,
            recrawl_of=data.get("recrawl_of"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PageError:
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    url: str
    final_url: str | None = None
    depth: int = 0
    status_code: int | None = None
    content_type: str | None = None
    fetched_at: datetime | None = None
    elapsed_ms: float | None = None
    title: str | None = None
    text: str | None = None
    markdown: str | None = None
    html: str | None = None
    links: list[str] | None = None
    metadata: dict[str, Any] | None = None
    data: dict[str, Any] | None = None
    error: PageError | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # A recrawl's results: new | changed | unchanged | removed, and the diff (`changes`).
    change: str | None = None
    previous_fetched_at: datetime | None = None
    changes: str | None = None
    removed_reason: str | None = None  # "unlinked": removed though still served

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Page:
        error = data.get("error")
        return cls(
            url=str(data.get("url") or ""),
            final_url=data.get("final_url"),
            depth=int(data.get("depth") or 0),
            status_code=data.get("status_code"),
            content_type=data.get("content_type"),
            fetched_at=_time(data.get("fetched_at")),
            elapsed_ms=data.get("elapsed_ms"),
            title=data.get("title"),
            text=data.get("text"),
            markdown=data.get("markdown"),
            html=data.get("html"),
            links=data.get("links"),
            metadata=data.get("metadata"),
            data=data.get("data"),
            error=(
                PageError(code=str(error.get("code")), message=str(error.get("message")))
                if isinstance(error, dict)
                else None
            ),
            raw=data,
            change=data.get("change"),
            removed_reason=data.get("removed_reason"),
            previous_fetched_at=_time(data.get("previous_fetched_at")),
            changes=data.get("changes"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultPage:
    """One page of `GET /v1/jobs/{id}/results`."""

    items: list[Page]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class JobList:
    items: list[Job]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleRun:
    """One tick of a schedule: the job it started, or why it was skipped."""

    tick_at: datetime | None
    fired_at: datetime | None
    status: str  # the job's status, or skipped | failed | pending
    job_id: str | None
    reason: str | None
    missed: int
    changes: dict[str, int] | None  # a recrawl's counts by change

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScheduleRun:
        changes = data.get("changes")
        return cls(
            tick_at=_time(data.get("tick_at")),
            fired_at=_time(data.get("fired_at")),
            status=str(data.get("status")),
            job_id=data.get("job_id"),
            reason=data.get("reason"),
            missed=int(data.get("missed") or 0),
            changes={k: int(v) for k, v in changes.items()} if isinstance(changes, dict) else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A job run on a cron expression or an interval (`/v1/schedules`)."""

    id: str
    name: str | None
    job: dict[str, Any]
    cron: str | None
    every: str | None
    timezone: str
    paused: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    last_job_id: str | None
    runs: list[ScheduleRun]  # the most recent, newest first
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Schedule:
        return cls(
            id=str(data["id"]),
            name=data.get("name"),
            job=dict(data.get("job") or {}),
            cron=data.get("cron"),
            every=data.get("every"),
            timezone=str(data.get("timezone") or "UTC"),
            paused=bool(data.get("paused")),
            next_run_at=_time(data.get("next_run_at")),
            last_run_at=_time(data.get("last_run_at")),
            last_job_id=data.get("last_job_id"),
            runs=[ScheduleRun.from_dict(run) for run in data.get("runs") or []],
            raw=data,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleList:
    items: list[Schedule]
    next_cursor: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MapLink:
    url: str
    title: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MapResult:
    links: list[MapLink]
    job_id: str | None = None


# -- request building (shared by both clients) ---------------------------------------------


def job_request(urls: str | Sequence[str], **options: Any) -> dict[str, Any]:
    """A `POST /v1/jobs` body: options left as None are not sent (server defaults apply)."""
    body: dict[str, Any] = {"urls": [urls] if isinstance(urls, str) else list(urls)}
    body.update({name: value for name, value in options.items() if value is not None})
    return body


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"User-Agent": "trawl-client/0.1", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def _http_options(base_url: str, api_key: str | None, timeout: float) -> dict[str, Any]:
    """What both clients' httpx clients are built with (besides their transport)."""
    return {
        "base_url": base_url.rstrip("/"),
        "headers": _headers(api_key),
        "timeout": timeout,
        "trust_env": False,
    }


def _json(response: httpx.Response) -> Any:
    _raise_for(response)
    return response.json()


def _result_page(data: dict[str, Any]) -> ResultPage:
    return ResultPage(
        items=[Page.from_dict(item) for item in data.get("items") or []],
        next_cursor=data.get("next_cursor"),
    )


def _map_result(data: dict[str, Any]) -> MapResult:
    links = []
    for link in data.get("links") or []:
        if isinstance(link, str):
            links.append(MapLink(url=link))
        else:
            links.append(MapLink(url=str(link.get("url")), title=link.get("title")))
    return MapResult(links=links, job_id=data.get("job_id"))


class _EventParser:
    """Server-Sent Events, line by line: yields (event, data, id) per message."""

    def __init__(self) -> None:
        self.last_id: str | None = None
        self.retry: float | None = None
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        if line == "":
            if not self._data:
                self._event = "message"
                return None
            message = (self._event, "\n".join(self._data))
            self._event, self._data = "message", []
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value) / 1000
        return None


def _transport_error(exc: httpx.HTTPError) -> TransportError:
    return TransportError(f"{type(exc).__name__}: {exc}")


# -- the calls, shared by both clients ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One API request as both clients send it, and how its JSON becomes the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    options: dict[str, Any] = field(default_factory=dict)  # httpx request keywords


def _submit_call(
    urls: str | Sequence[str] | dict[str, Any], idempotency_key: str | None, options: Any
) -> _Call[Job]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    body = urls if isinstance(urls, dict) else job_request(urls, **options)
    return _Call("POST", "/v1/jobs", Job.from_dict, {"json": body, "headers": headers})


def _recrawl_call(
    job_id: str, idempotency_key: str | None, overrides: dict[str, Any]
) -> _Call[Job]:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return _Call(
        "POST", f"/v1/jobs/{job_id}/recrawl", Job.from_dict, {"json": overrides, "headers": headers}
    )


def _schedule_create_call(
    job: str | Sequence[str] | dict[str, Any], fields: dict[str, Any], options: Any
) -> _Call[Schedule]:
    body = {k: v for k, v in fields.items() if v is not None}
    body["job"] = job if isinstance(job, dict) else job_request(job, **options)
    return _Call("POST", "/v1/schedules", Schedule.from_dict, {"json": body})


def _schedule_call(method: str, schedule_id: str, body: Any = None) -> _Call[Schedule]:
    options = {"json": body} if body is not None else {}
    return _Call(method, f"/v1/schedules/{schedule_id}", Schedule.from_dict, options)


def _schedule_list_call(limit: int, cursor: str | None) -> _Call[ScheduleList]:
    params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
    return _Call(
        "GET",
        "/v1/schedules",
        lambda data: ScheduleList(
            items=[Schedule.from_dict(item) for item in data["items"]],
            next_cursor=data["next_cursor"],
        ),
        {"params": params},
    )


def _list_call(status: str | None, limit: int, cursor: str | None) -> _Call[JobList]:
    params = {k: v for k, v in (("status", status), ("cursor", cursor)) if v}
    return _Call("GET", "/v1/jobs", _job_list, {"params": {**params, "limit": limit}})


def _job_list(data: dict[str, Any]) -> JobList:
    return JobList(
        items=[Job.from_dict(item) for item in data["items"]], next_cursor=data["next_cursor"]
    )


def _results_call(
    job_id: str, limit: int, cursor: str | None, outcome: str | None, change: str | None = None
) -> _Call[ResultPage]:
    params: dict[str, Any] = {"limit": limit}
    if cursor:
        params["cursor"] = cursor
    if outcome:
        params["outcome"] = outcome
    if change:
        params["change"] = change
    return _Call("GET", f"/v1/jobs/{job_id}/results", _result_page, {"params": params})


def _scrape_call(
    url: str, formats: Iterable[str] | None, timeout: float | None, options: Any
) -> _Call[Page]:
    body = {"url": url, **{k: v for k, v in options.items() if v is not None}}
    if formats is not None:
        body["formats"] = list(formats)
    if timeout is not None:
        body["timeout"] = timeout
    wait = (timeout or DEFAULT_TIMEOUT) + 10
    return _Call("POST", "/v1/scrape", Page.from_dict, {"json": body, "timeout": wait})


def _map_call(url: str, options: Any) -> _Call[MapResult]:
    body = {"url": url, **{k: v for k, v in options.items() if v is not None}}
    return _Call("POST", "/v1/map", _map_result, {"json": body})


def _events_headers(parser: _EventParser) -> dict[str, str]:
    """An SSE request's headers, resuming after the last event seen."""
    headers = {"Accept": "text/event-stream"}
    if parser.last_id:
        headers["Last-Event-ID"] = parser.last_id
    return headers


# -- the blocking client ------------------------------------------------------------------


class Client:
    """Trawl's API, blocking. Use as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(transport=transport, **_http_options(base_url, api_key, timeout))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        return _json(response)

    def _call(self, call: _Call[T]) -> T:
        return call.parse(self._request(call.method, call.path, **call.options))

    def submit(
        self,
        urls: str | Sequence[str] | dict[str, Any],
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Job:
        """Submit a job (`max_depth`, `max_pages`, `formats`, `scope`, ... as in the API).

        `urls` may also be a whole request body (a dict), sent as it is.
        """
        return self._call(_submit_call(urls, idempotency_key, options))

    def recrawl(self, job_id: str, *, idempotency_key: str | None = None, **overrides: Any) -> Job:
        """Recrawl a finished job (`overrides` replace fields of its request); each result
        of the new job has `change`, its stats `changes`."""
        return self._call(_recrawl_call(job_id, idempotency_key, overrides))

    def get(self, job_id: str) -> Job:
        return Job.from_dict(self._request("GET", f"/v1/jobs/{job_id}"))

    def list_jobs(
        self, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> JobList:
        return self._call(_list_call(status, limit, cursor))

    def cancel(self, job_id: str) -> Job:
        return Job.from_dict(self._request("DELETE", f"/v1/jobs/{job_id}"))

    def results(
        self,
        job_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        outcome: str | None = None,
        change: str | None = None,
    ) -> ResultPage:
        return self._call(_results_call(job_id, limit, cursor, outcome, change))

    def iter_results(
        self,
        job_id: str,
        *,
        outcome: str | None = None,
        page_size: int = 200,
        follow: bool = True,
        poll_interval: float = RESULTS_POLL_SECONDS,
        change: str | None = None,
    ) -> Iterator[Page]:
        """Every result, following cursors; waits for a running job's results to come
        (`follow=False`: stops at what is stored now) and stops at a finished job's end."""
        cursor: str | None = None
        while True:
            page = self.results(
                job_id, limit=page_size, cursor=cursor, outcome=outcome, change=change
            )
            yield from page.items
            if page.next_cursor is None:
                return
            if not page.items:
                if not follow:
                    return
                time.sleep(poll_interval)
            cursor = page.next_cursor

    def watch(self, job_id: str, *, reconnect_delay: float = 1.0) -> Iterator[Job]:
        """The job's states as they change (SSE), ending with its final state."""
        parser = _EventParser()
        while True:
            try:
                with self._http.stream(
                    "GET",
                    f"/v1/jobs/{job_id}/events",
                    headers=_events_headers(parser),
                    timeout=None,
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        _raise_for(response)
                    for line in response.iter_lines():
                        message = parser.feed(line)
                        if message is not None and message[0] == "job":
                            job = Job.from_dict(json.loads(message[1]))
                            yield job
                            if job.is_final:
                                return
            except httpx.HTTPError:
                pass  # the connection broke: reconnect below
            # The stream ended without a final state (server restart): reconnect.
            time.sleep(parser.retry or reconnect_delay)

    def wait(
        self,
        job_id: str,
        *,
        on_progress: Callable[[Job], object] | None = None,
        timeout: float | None = None,
    ) -> Job:
        """Block until the job is final; `on_progress(job)` is called on every change."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.watch(job_id):
            if on_progress is not None:
                on_progress(job)
            if job.is_final:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job.status} after {timeout}s")
        raise TransportError("the event stream ended without a final state")  # pragma: no cover

    def scrape(
        self,
        url: str,
        *,
        formats: Iterable[str] | None = None,
        timeout: float | None = None,
        **options: Any,
    ) -> Page:
        """`POST /v1/scrape`: fetch one URL now and return its page."""
        return self._call(_scrape_call(url, formats, timeout, options))

    def map(self, url: str, **options: Any) -> MapResult:
        """`POST /v1/map`: a site's URLs (`max_depth`, `limit`, `include`, `search`, ...)."""
        return self._call(_map_call(url, options))

    def create_schedule(
        self,
        job: str | Sequence[str] | dict[str, Any],
        *,
        cron: str | None = None,
        every: str | int | None = None,
        timezone: str | None = None,
        name: str | None = None,
        paused: bool | None = None,
        **job_options: Any,
    ) -> Schedule:
        """`POST /v1/schedules`: run `job` (URLs plus job options, or a whole request) on
        `cron` (in `timezone`) or `every` ("6h"); each run recrawls the previous one."""
        fields = {"cron": cron, "every": every, "timezone": timezone, "name": name}
        fields["paused"] = paused
        return self._call(_schedule_create_call(job, fields, job_options))

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self._call(_schedule_call("GET", schedule_id))

    def list_schedules(self, *, limit: int = 20, cursor: str | None = None) -> ScheduleList:
        return self._call(_schedule_list_call(limit, cursor))

    def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        """`PATCH /v1/schedules/{id}`: `paused`, `cron`, `every`, `timezone`, `job`, `name`."""
        return self._call(_schedule_call("PATCH", schedule_id, changes))

    def delete_schedule(self, schedule_id: str) -> Schedule:
        """Delete a schedule (its jobs stay); the schedule as it was."""
        return self._call(_schedule_call("DELETE", schedule_id))


# -- the asyncio client -------------------------------------------------------------------


class AsyncClient:
    """Trawl's API for asyncio. Use as an async context manager, or `await aclose()`."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(
            transport=transport, **_http_options(base_url, api_key, timeout)
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise _transport_error(exc) from exc
        return _json(response)

    async def _call(self, call: _Call[T]) -> T:
        return call.parse(await self._request(call.method, call.path, **call.options))

    async def submit(
        self,
        urls: str | Sequence[str] | dict[str, Any],
        *,
        idempotency_key: str | None = None,
        **options: Any,
    ) -> Job:
        """See `Client.submit`."""
        return await self._call(_submit_call(urls, idempotency_key, options))

    async def recrawl(
        self, job_id: str, *, idempotency_key: str | None = None, **overrides: Any
    ) -> Job:
        """See `Client.recrawl`."""
        return await self._call(_recrawl_call(job_id, idempotency_key, overrides))

    async def get(self, job_id: str) -> Job:
        return Job.from_dict(await self._request("GET", f"/v1/jobs/{job_id}"))

    async def list_jobs(
        self, *, status: str | None = None, limit: int = 20, cursor: str | None = None
    ) -> JobList:
        return await self._call(_list_call(status, limit, cursor))

    async def cancel(self, job_id: str) -> Job:
        return Job.from_dict(await self._request("DELETE", f"/v1/jobs/{job_id}"))

    async def results(
        self,
        job_id: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        outcome: str | None = None,
        change: str | None = None,
    ) -> ResultPage:
        return await self._call(_results_call(job_id, limit, cursor, outcome, change))

    async def iter_results(
        self,
        job_id: str,
        *,
        outcome: str | None = None,
        page_size: int = 200,
        follow: bool = True,
        poll_interval: float = RESULTS_POLL_SECONDS,
        change: str | None = None,
    ) -> AsyncIterator[Page]:
        """See `Client.iter_results`."""
        cursor: str | None = None
        while True:
            page = await self.results(
                job_id, limit=page_size, cursor=cursor, outcome=outcome, change=change
            )
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            if not page.items:
                if not follow:
                    return
                await asyncio.sleep(poll_interval)
            cursor = page.next_cursor

    async def watch(self, job_id: str, *, reconnect_delay: float = 1.0) -> AsyncIterator[Job]:
        """See `Client.watch`."""
        parser = _EventParser()
        while True:
            try:
                async with self._http.stream(
                    "GET",
                    f"/v1/jobs/{job_id}/events",
                    headers=_events_headers(parser),
                    timeout=None,
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        _raise_for(response)
                    async for line in response.aiter_lines():
                        message = parser.feed(line)
                        if message is not None and message[0] == "job":
                            job = Job.from_dict(json.loads(message[1]))
                            yield job
                            if job.is_final:
                                return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(parser.retry or reconnect_delay)

    async def wait(
        self,
        job_id: str,
        *,
        on_progress: Callable[[Job], object] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the same API as Client.wait
    ) -> Job:
        """See `Client.wait`."""

        async def follow() -> Job:
            async for job in self.watch(job_id):
                if on_progress is not None:
                    on_progress(job)
                if job.is_final:
                    return job
            raise TransportError("the event stream ended without a final state")

        if timeout is None:
            return await follow()
        try:
            return await asyncio.wait_for(follow(), timeout)
        except TimeoutError:
            raise TimeoutError(f"job {job_id} not final after {timeout}s") from None

    async def scrape(
        self,
        url: str,
        *,
        formats: Iterable[str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the server's scrape timeout
        **options: Any,
    ) -> Page:
        return await self._call(_scrape_call(url, formats, timeout, options))

    async def map(self, url: str, **options: Any) -> MapResult:
        return await self._call(_map_call(url, options))

    async def create_schedule(
        self,
        job: str | Sequence[str] | dict[str, Any],
        *,
        cron: str | None = None,
        every: str | int | None = None,
        timezone: str | None = None,
        name: str | None = None,
        paused: bool | None = None,
        **job_options: Any,
    ) -> Schedule:
        """See `Client.create_schedule`."""
        fields = {"cron": cron, "every": every, "timezone": timezone, "name": name}
        fields["paused"] = paused
        return await self._call(_schedule_create_call(job, fields, job_options))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        return await self._call(_schedule_call("GET", schedule_id))

    async def list_schedules(self, *, limit: int = 20, cursor: str | None = None) -> ScheduleList:
        return await self._call(_schedule_list_call(limit, cursor))

    async def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        return await self._call(_schedule_call("PATCH", schedule_id, changes))

    async def delete_schedule(self, schedule_id: str) -> Schedule:
        return await self._call(_schedule_call("DELETE", schedule_id))
