"""Webhook delivery end to end: a real Trawl server posting to a real receiver on loopback."""

from __future__ import annotations

import ipaddress
import json
import socketserver
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from service.models import utcnow
from service.store.base import NewJob
from service.store.sqlite import SQLiteStore, sqlite_path
from service.webhooks import WebhookDispatcher, sign, verify_signature
from tests.conftest import TrawlServer, eventually, free_port
from tests.conftest import test_settings as settings_for
from tests.site import Site

SECRET = "test-secret"  # tests.conftest.test_settings
ALL_EVENTS = ["job.started", "job.completed", "job.failed", "job.cancelled"]

MakeServer = Callable[..., Awaitable[TrawlServer]]


# -------------------------------------------------------------------------- receiver


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST as the receiver saw it, and the status it answered."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    status: int

    @property
    def event_type(self) -> str:
        return self.headers["x-trawl-event"]

    @property
    def event_id(self) -> str:
        return self.headers["x-trawl-event-id"]

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def signed(self, secret: str = SECRET) -> bool:
        return verify_signature(
            secret,
            self.headers["x-trawl-timestamp"],
            self.body,
            self.headers["x-trawl-signature"],
        )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ReceiverServer

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length)
        receiver.gate.wait(30)  # closed only by tests that hold a delivery in flight
        status = receiver.status_for(self.path)
        receiver.record(
            Delivery(
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                status=status,
            )
        )
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"ok")
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup, which stalls offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.receiver.connections += 1  # counted before any request is read
        return True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up is not a test failure


class Receiver:
    """A webhook endpoint: answers `fail_status` to the first `fail_first` POSTs, then 200."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, fail_first: int = 0, fail_status: int = 500
    ) -> None:
        self.host = host
        self.port = port
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.gate = threading.Event()
        self.gate.set()
        self.connections = 0
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._answered = 0
        self._server: _ReceiverServer | None = None

    def start(self) -> Receiver:
        self._server = _ReceiverServer((self.host, self.port), self)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.gate.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def status_for(self, path: str) -> int:
        with self._lock:
            self._answered += 1
            return self.fail_status if self._answered <= self.fail_first else 200

    def record(self, delivery: Delivery) -> None:
        with self._lock:
            self._deliveries.append(delivery)

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def accepted(self, event_type: str | None = None) -> list[Delivery]:
        """2xx-answered deliveries (of one type), in arrival order."""
        return [
            d
            for d in self.deliveries
            if 200 <= d.status < 300 and (event_type is None or d.event_type == event_type)
        ]


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    receivers: list[Receiver] = []

    def make(start: bool = True, **options: Any) -> Receiver:
        receiver = Receiver(**options)
        receivers.append(receiver)
        return receiver.start() if start else receiver

    yield make
    for receiver in receivers:
        receiver.stop()


@pytest.fixture
def receiver(receiver_factory: Callable[..., Receiver]) -> Receiver:
    return receiver_factory()


# --------------------------------------------------------------------------- helpers


def outbox(server: TrawlServer, job_id: str) -> list[dict[str, Any]]:
    """The job's outbox rows, read straight from the server's SQLite file."""
    with sqlite3.connect(sqlite_path(server.settings.database_url)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT * FROM outbox WHERE job_id = ? ORDER BY id", (job_id,)
        ).fetchall()
    return [dict(row) for row in rows]


def settled(rows: list[dict[str, Any]]) -> bool:
    """Every row delivered or given up (next_attempt infinite)."""
    return bool(rows) and all(
        r["delivered_at"] is not None or r["next_attempt"] == float("inf") for r in rows
    )


def webhook(url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    return {"url": url, "events": events, **extra}


# ----------------------------------------------------------------------------- tests


def test_signature_spec() -> None:
    body = b'{"id":"evt_1"}'
    now = 1_700_000_000
    signature = sign(SECRET, now, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature(SECRET, str(now), body, signature, now=now)
    assert verify_signature(SECRET, now, body.decode(), signature, now=now + 300)
    assert not verify_signature(SECRET, now, body, signature, now=now + 301), "replay window"
    assert not verify_signature(SECRET, now, body + b" ", signature, now=now), "body tampered"
    assert not verify_signature(SECRET, now + 1, body, signature, now=now), "timestamp tampered"
    assert not verify_signature("other", now, body, signature, now=now), "wrong secret"
    assert not verify_signature(SECRET, "soon", body, signature, now=now)
    assert not verify_signature(SECRET, now, body, "sha256=ä", now=now)
    # Several signatures in one header (secret rotation): one match is enough.
    both = f"{sign('old', now, body)}, {signature}"
    assert verify_signature(SECRET, now, body, both, now=now)


async def test_started_and_completed_are_signed_with_ids(
    make_server: MakeServer, site: Site, receiver: Receiver
) -> None:
    trawl = await make_server()
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 1,
            "webhook": webhook(receiver.url(), ["job.started", "job.completed"]),
        }
    )
    await eventually(lambda: receiver.accepted("job.completed"))
    deliveries = receiver.deliveries
    assert [d.event_type for d in deliveries] == ["job.started", "job.completed"]
    for delivery in deliveries:
        assert delivery.path == "/hook"
        assert delivery.headers["content-type"] == "application/json"
        assert delivery.headers["user-agent"] == trawl.settings.user_agent
        assert delivery.headers["x-trawl-signature"] == sign(
            SECRET, delivery.headers["x-trawl-timestamp"], delivery.body
        )
        assert delivery.signed()
        assert not delivery.signed("wrong-secret")
        assert abs(int(delivery.headers["x-trawl-timestamp"]) - time.time()) < 60
        body = delivery.json
        assert body["id"] == delivery.event_id and body["id"].startswith("evt_")
        assert body["type"] == delivery.event_type
        assert body["job_id"] == job["id"] == body["job"]["id"]
        assert delivery.headers["x-trawl-job-id"] == job["id"]
    assert len({d.event_id for d in deliveries}) == 2
    completed = deliveries[1].json["job"]
    assert completed["status"] == "completed"
    assert completed["stats"]["pages_fetched"] == len(site.expected_urls(1))
    # The receiver sees a delivery just before the dispatcher records it.
    rows = await eventually(lambda: settled(rows := outbox(trawl, job["id"])) and rows)
    assert [r["event_id"] for r in rows] == [d.event_id for d in deliveries]
    assert all(r["delivered_at"] is not None and r["attempts"] == 1 for r in rows)


@pytest.mark.parametrize(
    "events",
    [
        ["job.started", "job.page", "job.completed"],
        ["job.page", "job.completed"],  # found through its final event: all pages at the end
    ],
)
async def test_page_batches_cover_every_page_before_completed(
    make_server: MakeServer, site: Site, receiver: Receiver, events: list[str]
) -> None:
    trawl = await make_server()
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 3,
            "max_pages": 1000,
            "webhook": webhook(receiver.url(), events, page_batch_size=4),
        }
    )
    await eventually(lambda: receiver.accepted("job.completed"))
    deliveries = receiver.accepted()
    types = [d.event_type for d in deliveries]
    assert types[-1] == "job.completed" and types.count("job.completed") == 1
    batches = [d for d in deliveries if d.event_type == "job.page"]
    assert all(d.signed() for d in deliveries)
    seen: list[str] = []
    for batch in batches:
        body = batch.json
        assert body["type"] == "job.page" and body["job_id"] == job["id"]
        assert body["id"] == batch.event_id
        pages = body["data"]["pages"]
        assert 1 <= len(pages) <= 4
        for page in pages:
            assert set(page) == {"url", "final_url", "status_code", "error"}
            assert page["status_code"] == 200 and page["error"] is None
        seen.extend(page["url"] for page in pages)
    assert len({b.event_id for b in batches}) == len(batches)
    assert len(seen) == len(set(seen)), "a page was announced twice"
    results = {item["url"] for item in await trawl.results(job["id"])}
    assert set(seen) == results == site.expected_urls(3)
    # The cursor of the last batch is a results cursor at the end of the job's results.
    response = await trawl.client.get(
        f"/v1/jobs/{job['id']}/results", params={"cursor": batches[-1].json["data"]["cursor"]}
    )
    assert response.json()["items"] == []


async def test_failing_receiver_gets_the_event_after_retries(
    make_server: MakeServer, site: Site, receiver_factory: Callable[..., Receiver]
) -> None:
    receiver = receiver_factory(fail_first=3, fail_status=500)
    trawl = await make_server(webhook_retry_base=0.05)
    job = await trawl.submit(
        {"url": site.url("/"), "webhook": webhook(receiver.url(), ["job.completed"])}
    )
    await eventually(lambda: receiver.accepted("job.completed"))
    deliveries = receiver.deliveries
    assert [d.status for d in deliveries] == [500, 500, 500, 200]
    assert len({d.event_id for d in deliveries}) == 1, "a retry is the same event"
    assert [d.headers["x-trawl-delivery-attempt"] for d in deliveries] == ["1", "2", "3", "4"]
    assert all(d.signed() for d in deliveries)
    assert deliveries[-1].json["job_id"] == job["id"]
    (row,) = await eventually(lambda: settled(rows := outbox(trawl, job["id"])) and rows)
    assert row["attempts"] == 4 and row["delivered_at"] is not None


async def test_failed_page_batch_holds_back_the_final_event(
    make_server: MakeServer, site: Site, receiver_factory: Callable[..., Receiver]
) -> None:
    receiver = receiver_factory(fail_first=2, fail_status=502)
    trawl = await make_server(webhook_retry_base=0.05)
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 2,
            "webhook": webhook(receiver.url(), ["job.page", "job.completed"], page_batch_size=5),
        }
    )
    await eventually(lambda: receiver.accepted("job.completed"))
    types = [d.event_type for d in receiver.deliveries]
    # The first batch fails twice; the final event waits behind it both times.
    assert types[:3] == ["job.page"] * 3 and types[-1] == "job.completed"
    assert types.count("job.completed") == 1
    failed = [d.event_id for d in receiver.deliveries if d.status != 200]
    assert failed[0] == failed[1] == receiver.accepted("job.page")[0].event_id
    pages = [p["url"] for d in receiver.accepted("job.page") for p in d.json["data"]["pages"]]
    assert sorted(pages) == sorted(site.expected_urls(2))
    # Batch failures while the job ran are the stream's; after it, the final event's.
    (row,) = await eventually(lambda: settled(rows := outbox(trawl, job["id"])) and rows)
    assert 1 <= row["attempts"] <= 3 and row["delivered_at"] is not None


async def test_gone_stops_delivery_and_too_many_failures_give_up(
    make_server: MakeServer, site: Site, receiver_factory: Callable[..., Receiver]
) -> None:
    gone = receiver_factory(fail_first=100, fail_status=410)
    broken = receiver_factory(fail_first=100, fail_status=503)
    trawl = await make_server(webhook_retry_base=0.01, webhook_max_attempts=3)
    first = await trawl.submit(
        {"url": site.url("/"), "webhook": webhook(gone.url(), ["job.started", "job.completed"])}
    )
    second = await trawl.submit(
        {"url": site.url("/"), "webhook": webhook(broken.url(), ["job.completed"])}
    )
    await trawl.wait_job(first["id"])  # both events are in the outbox once it completes
    rows = await eventually(
        lambda: settled(rows := outbox(trawl, first["id"])) and len(rows) == 2 and rows
    )
    # 410 to job.started: job.completed is not even tried.
    assert [d.event_type for d in gone.deliveries] == ["job.started"]
    assert [r["delivered_at"] for r in rows] == [None, None]
    assert all("410" in r["last_error"] for r in rows)
    (row,) = await eventually(lambda: settled(rows := outbox(trawl, second["id"])) and rows)
    assert [d.status for d in broken.deliveries] == [503, 503, 503]
    assert row["attempts"] == 3 and "gave up after 3 attempts" in row["last_error"]


async def test_cancel_sends_exactly_one_cancelled(
    make_server: MakeServer, site_factory: Callable[..., Site], receiver: Receiver
) -> None:
    site = site_factory(pages=200, fanout=4, page_delay=0.1)
    trawl = await make_server(concurrency=2, per_host_concurrency=2)
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 5,
            "max_pages": 1000,
            "webhook": webhook(receiver.url(), [*ALL_EVENTS, "job.page"], page_batch_size=2),
        }
    )
    await eventually(lambda: receiver.accepted("job.started"))
    response = await trawl.client.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    # Cancelling again is idempotent and announces nothing new.
    assert (await trawl.client.delete(f"/v1/jobs/{job['id']}")).status_code == 200
    rows = await eventually(lambda: settled(rows := outbox(trawl, job["id"])) and rows)
    assert [r["event_type"] for r in rows] == ["job.started", "job.cancelled"]
    assert all(r["delivered_at"] is not None for r in rows)
    types = [d.event_type for d in receiver.deliveries]
    assert types.count("job.cancelled") == 1
    assert "job.completed" not in types and "job.failed" not in types
    assert "job.page" not in types[types.index("job.cancelled") :], "pages before the final event"
    cancelled = receiver.accepted("job.cancelled")[0].json
    assert cancelled["job_id"] == job["id"] and cancelled["job"]["status"] == "cancelled"


async def test_webhook_on_a_private_address_is_never_contacted(
    make_server: MakeServer, site: Site, receiver_factory: Callable[..., Receiver]
) -> None:
    # The crawl may reach the site (allowed explicitly); the webhook's address is private.
    receiver = receiver_factory(host="127.0.0.2")
    trawl = await make_server(
        allow_private_networks=False,
        allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 1,
            "webhook": webhook(receiver.url(), [*ALL_EVENTS, "job.page"]),
        }
    )
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed" and done["stats"]["pages_fetched"] > 1
    rows = await eventually(lambda: settled(rows := outbox(trawl, job["id"])) and rows)
    assert [r["event_type"] for r in rows] == ["job.started", "job.completed"]
    for row in rows:
        assert row["delivered_at"] is None and row["attempts"] == 1
        assert row["last_error"].startswith("refused") and "127.0.0.2" in row["last_error"]
    assert receiver.connections == 0 and receiver.deliveries == []


async def test_delivery_does_not_hold_up_the_crawl(
    make_server: MakeServer, site: Site, receiver: Receiver
) -> None:
    receiver.gate.clear()  # the receiver holds every request until the gate opens
    trawl = await make_server()
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 2,
            "webhook": webhook(receiver.url(), ["job.started", "job.completed"]),
        }
    )
    await eventually(lambda: receiver.connections >= 1)
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"
    assert receiver.deliveries == [], "the crawl finished while job.started was in flight"
    receiver.gate.set()
    await eventually(lambda: receiver.accepted("job.completed"))
    assert [d.event_type for d in receiver.accepted()] == ["job.started", "job.completed"]


async def test_undelivered_event_survives_a_restart(
    make_server: MakeServer, site: Site, receiver_factory: Callable[..., Receiver]
) -> None:
    port = free_port()
    receiver = receiver_factory(start=False, port=port)  # down: connections are refused
    settings = {"webhook_retry_base": 0.05, "webhook_max_attempts": 100}
    first = await make_server(**settings)
    job = await first.submit(
        {
            "url": site.url("/"),
            "max_depth": 1,
            "webhook": webhook(receiver.url(), ["job.completed", "job.page"], page_batch_size=3),
        }
    )
    await eventually(lambda: (rows := outbox(first, job["id"])) and rows[0]["attempts"] >= 1)
    await first.stop()
    (row,) = outbox(first, job["id"])
    assert row["delivered_at"] is None and "ConnectError" in row["last_error"]

    receiver.start()
    second = await make_server(**settings)  # same database file
    assert second.settings.database_url == first.settings.database_url
    await eventually(lambda: receiver.accepted("job.completed"))
    (delivered,) = receiver.accepted("job.completed")
    assert delivered.event_id == row["event_id"] and delivered.signed()
    assert delivered.json["job_id"] == job["id"]
    assert int(delivered.headers["x-trawl-delivery-attempt"]) == row["attempts"] + 1
    # The pages went out again from the start (the cursor is in memory), before the event.
    pages = [p["url"] for d in receiver.accepted("job.page") for p in d.json["data"]["pages"]]
    assert set(pages) == site.expected_urls(1)
    assert receiver.accepted()[-1].event_type == "job.completed"
    (after,) = await eventually(lambda: settled(rows := outbox(second, job["id"])) and rows)
    assert after["delivered_at"] is not None


async def test_pages_stream_while_the_job_runs(
    make_server: MakeServer, site_factory: Callable[..., Site], receiver: Receiver
) -> None:
    site = site_factory(pages=30, fanout=3, page_delay=0.1)
    trawl = await make_server(concurrency=2, per_host_concurrency=2)
    job = await trawl.submit(
        {
            "url": site.url("/"),
            "max_depth": 5,
            "max_pages": 1000,
            "webhook": webhook(
                receiver.url(), ["job.started", "job.page", "job.completed"], page_batch_size=2
            ),
        }
    )
    await eventually(lambda: receiver.accepted("job.page"))
    assert (await trawl.job(job["id"]))["status"] == "running", "a batch came before the end"
    await eventually(lambda: receiver.accepted("job.completed"))
    types = [d.event_type for d in receiver.accepted()]
    assert types[0] == "job.started" and types[-1] == "job.completed"
    pages = [p["url"] for d in receiver.accepted("job.page") for p in d.json["data"]["pages"]]
    assert sorted(pages) == sorted(site.expected_urls(5))


async def test_dispatcher_start_and_stop(tmp_path: Path, receiver: Receiver) -> None:
    """The dispatcher on its own: start(), deliver what the store emits, stop(grace)."""
    settings = settings_for(tmp_path, webhook_retry_base=0.05)
    store = SQLiteStore.from_url(settings.database_url)
    await store.open()
    try:
        dispatcher = WebhookDispatcher(settings, store)
        await dispatcher.start()
        await store.create_job(
            NewJob(
                id="job-1",
                created_at=utcnow(),
                request={"urls": ["http://127.0.0.1:9/"]},
                seeds=("http://127.0.0.1:9/",),
                max_pages=1,
                webhook=webhook(receiver.url(), ["job.started", "job.cancelled"]),
            )
        )
        await store.claim(1, "test-worker", 60.0)  # first claim: job.started
        await store.cancel_job("job-1", None)  # job.cancelled
        dispatcher.wake()
        await eventually(lambda: len(receiver.accepted()) == 2)
        started = time.monotonic()
        await dispatcher.stop(5.0)
        assert time.monotonic() - started < 1.0
        assert [d.event_type for d in receiver.accepted()] == ["job.started", "job.cancelled"]
        assert await store.due_events(10) == []
    finally:
        await store.close()
