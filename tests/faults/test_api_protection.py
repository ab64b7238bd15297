"""API protection: limits, secure-by-default start-up, auth, rate limits, idempotency,
back-pressure and tenant isolation."""

from __future__ import annotations

import asyncio
import hmac
import signal
from pathlib import Path
from typing import Any

import pytest

from service.api import security
from service.app import check_exposure, create_app
from service.errors import ConfigError
from service.settings import Settings
from tests.api.conftest import SEED, MakeServer, assert_problem, post_json
from tests.api.service_process import ServiceProcess
from tests.conftest import TrawlServer, wait_until

KEY_A, KEY_B = "key-a-0123456789", "key-b-9876543210"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- Sanic limits ----------------------------------------------------------------------


def test_sanic_limits_are_lowered_from_its_defaults() -> None:
    app = create_app(Settings())
    config = app.config

    assert config.REQUEST_MAX_SIZE == 1024 * 1024  # Sanic: 100 MB
    assert config.REQUEST_TIMEOUT == 15  # Sanic: 60 s
    assert config.KEEP_ALIVE_TIMEOUT == 10  # Sanic: 120 s
    assert config.RESPONSE_TIMEOUT <= 60
    assert config.GRACEFUL_SHUTDOWN_TIMEOUT <= 30


def test_sanic_limits_follow_the_environment() -> None:
    settings = Settings.from_env(
        {
            "SCRAPER_REQUEST_MAX_SIZE": "4096",
            "SCRAPER_REQUEST_TIMEOUT": "3",
            "SCRAPER_KEEP_ALIVE_TIMEOUT": "2",
        }
    )

    config = create_app(settings).config

    assert (config.REQUEST_MAX_SIZE, config.REQUEST_TIMEOUT, config.KEEP_ALIVE_TIMEOUT) == (
        4096,
        3.0,
        2.0,
    )


async def test_body_over_the_limit_is_a_413(make_server: MakeServer) -> None:
    server = await make_server(role="web", request_max_size=2048)
    small = {"urls": [f"{SEED}{'a' * 100}/{i}" for i in range(15)]}  # ~1.8 kB
    large = {"urls": [f"{SEED}{'a' * 100}/{i}" for i in range(20)]}  # ~2.4 kB

    assert (await post_json(server, small)).status_code == 202
    assert_problem(await post_json(server, large), 413)


async def test_declared_length_over_the_limit_is_refused_before_the_body(
    make_server: MakeServer,
) -> None:
    server = await make_server(role="web", request_max_size=2048)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
    try:
        # Announce 50 MB and send none of it: the answer must not wait for the body.
        writer.write(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 50000000\r\n\r\n"
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b"application/problem+json" in head


async def test_a_stalled_request_is_cut_off_by_request_timeout(make_server: MakeServer) -> None:
    server = await make_server(role="web", request_timeout=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finish
        await writer.drain()
        # The server answers 408 and/or closes; either way the read ends, well before 60 s.
        data = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data


async def test_an_idle_keep_alive_connection_is_closed(make_server: MakeServer) -> None:
    server = await make_server(role="web", keep_alive_timeout=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        # Nothing more is sent: the server hangs up after KEEP_ALIVE_TIMEOUT.
        rest = await asyncio.wait_for(reader.read(), timeout=5)
    finally:
        writer.close()
    assert rest == b""


# -- secure by default ---------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.10", "example.com"])
def test_exposed_without_keys_refuses(host: str) -> None:
    with pytest.raises(ConfigError, match="SCRAPER_API_KEYS"):
        check_exposure(Settings(host=host))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_without_keys_is_fine(host: str) -> None:
    check_exposure(Settings(host=host))


def test_exposed_with_keys_or_explicit_opt_out_is_fine() -> None:
    check_exposure(Settings(host="0.0.0.0", api_keys=("k",)))
    check_exposure(Settings(host="0.0.0.0", insecure_no_auth=True))


@pytest.mark.slow
async def test_service_refuses_to_start_exposed_without_keys(tmp_path: Path) -> None:
    service = ServiceProcess(tmp_path, args=("--host", "0.0.0.0"))
    async with service:
        code = await service.wait_exit(timeout=20)
    assert code != 0
    assert "SCRAPER_API_KEYS" in service.log
    assert "Traceback" not in service.log


@pytest.mark.slow
@pytest.mark.parametrize(
    "env", [{"SCRAPER_INSECURE_NO_AUTH": "1"}, {"SCRAPER_API_KEYS": f"{KEY_A},{KEY_B}"}]
)
async def test_service_starts_exposed_with_keys_or_opt_out(
    tmp_path: Path, env: dict[str, str]
) -> None:
    service = ServiceProcess(tmp_path, env=env)
    service.args = ("--host", "0.0.0.0", "--port", str(service.port))
    async with service:
        await service.wait_ready()
        async with service.client() as client:
            anonymous = await client.get("/v1/jobs")
            keyed = await client.get("/v1/jobs", headers=bearer(KEY_B))
        if "SCRAPER_API_KEYS" in env:
            assert_problem(anonymous, 401)
            assert keyed.status_code == 200
        else:
            assert anonymous.status_code == 200
        service.signal(signal.SIGTERM)
        assert await service.wait_exit(timeout=15) == 0


@pytest.fixture
async def api(make_server: MakeServer) -> TrawlServer:
    return await make_server(role="web")


# -- bearer auth ---------------------------------------------------------------------


@pytest.fixture
async def keyed(make_server: MakeServer) -> TrawlServer:
    return await make_server(role="web", api_keys=(KEY_A, KEY_B))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": KEY_A},
        {"Authorization": f"Basic {KEY_A}"},
        {"Authorization": "Bearer wrong-key"},
        {"Authorization": f"Bearer {KEY_A}x"},
        {"Authorization": f"Bearer {KEY_A[:-1]}"},
        {"Authorization": f"Bearer {KEY_A},{KEY_B}"},
        {"X-Api-Key": KEY_A},
    ],
    ids=lambda headers: repr(headers)[:40],
)
async def test_v1_needs_a_valid_bearer_key(keyed: TrawlServer, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/jobs/x")):
        response = await keyed.client.request(method, path, headers=headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_valid_keys_are_accepted(keyed: TrawlServer) -> None:
    for key in (KEY_A, KEY_B):
        created = await keyed.client.post("/v1/jobs", json={"url": SEED}, headers=bearer(key))
        assert created.status_code == 202, created.text
    lower = await keyed.client.get("/v1/jobs", headers={"Authorization": f"bearer {KEY_A}"})
    assert lower.status_code == 200


async def test_ops_routes_stay_open(keyed: TrawlServer) -> None:
    assert (await keyed.client.get("/health")).json() == {"status": "ok"}
    # /metrics shows every tenant's counts: a key reads it (tests/api/test_metrics_auth.py).
    assert (await keyed.client.get("/metrics", headers=bearer(KEY_A))).status_code == 200
    assert (await keyed.client.get("/docs")).status_code == 200
    assert (await keyed.client.get("/docs/openapi.json")).status_code == 200


def test_key_comparison_is_constant_time_over_every_key(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    keys = ("first", "second", "third")

    assert security._match_key("first", keys) == "first"
    assert len(calls) == 3, "no early exit on a match"
    calls.clear()
    assert security._match_key("nope", keys) is None
    assert len(calls) == 3
    # Digests are compared, so a key's length is not revealed by timing either.
    assert {len(a) for a, _ in calls} == {32} and {len(b) for _, b in calls} == {32}


# -- rate limits ---------------------------------------------------------------------


async def test_sixth_request_in_a_minute_is_a_429(make_server: MakeServer) -> None:
    server = await make_server(role="web", rate_limit_per_minute=5)

    statuses = [(await server.client.get("/v1/jobs")).status_code for _ in range(5)]
    limited = await server.client.get("/v1/jobs")

    assert statuses == [200] * 5
    assert_problem(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Liveness is never rate limited.
    assert all([(await server.client.get("/health")).status_code == 200 for _ in range(10)])


async def test_rate_limit_is_per_key(make_server: MakeServer) -> None:
    server = await make_server(role="web", rate_limit_per_minute=5, api_keys=(KEY_A, KEY_B))

    for _ in range(5):
        assert (await server.client.get("/v1/jobs", headers=bearer(KEY_A))).status_code == 200

    assert_problem(await server.client.get("/v1/jobs", headers=bearer(KEY_A)), 429)
    assert (await server.client.get("/v1/jobs", headers=bearer(KEY_B))).status_code == 200


async def test_guessing_keys_is_rate_limited(make_server: MakeServer) -> None:
    server = await make_server(role="web", rate_limit_per_minute=5, api_keys=(KEY_A,))

    for attempt in range(5):
        response = await server.client.get("/v1/jobs", headers=bearer(f"guess-{attempt}"))
        assert_problem(response, 401)

    assert_problem(await server.client.get("/v1/jobs", headers=bearer("guess-6")), 429)
    # A valid key has its own budget.
    assert (await server.client.get("/v1/jobs", headers=bearer(KEY_A))).status_code == 200


# -- Idempotency-Key -----------------------------------------------------------------


async def test_idempotent_retry_returns_the_same_job(api: TrawlServer) -> None:
    body = {"urls": [SEED], "max_depth": 1}
    first = await post_json(api, body, **{"Idempotency-Key": "order-1"})
    again = await post_json(api, body, **{"Idempotency-Key": "order-1"})
    # The same request spelled differently (shorthand, key order) is the same request.
    respelled = await post_json(
        api, {"max_depth": 1, "url": SEED}, **{"Idempotency-Key": "order-1"}
    )
    other_key = await post_json(api, body, **{"Idempotency-Key": "order-2"})

    assert first.status_code == again.status_code == respelled.status_code == 202
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert respelled.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == again.json()["id"] == respelled.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert other_key.json()["id"] != first.json()["id"]
    listed = (await api.client.get("/v1/jobs")).json()["items"]
    assert len(listed) == 2


async def test_idempotency_key_reused_with_another_body_is_a_422(api: TrawlServer) -> None:
    await post_json(api, {"urls": [SEED]}, **{"Idempotency-Key": "k"})

    response = await post_json(api, {"urls": [SEED], "max_depth": 2}, **{"Idempotency-Key": "k"})

    assert_problem(response, 422, "Idempotency-Key")


async def test_idempotency_key_too_long_is_a_422(api: TrawlServer) -> None:
    response = await post_json(api, {"urls": [SEED]}, **{"Idempotency-Key": "k" * 256})
    assert_problem(response, 422, "Idempotency-Key")


async def test_idempotency_keys_are_scoped_per_api_key(keyed: TrawlServer) -> None:
    body = {"urls": [SEED]}
    a = await post_json(keyed, body, **{"Idempotency-Key": "same"}, **bearer(KEY_A))
    b = await post_json(keyed, body, **{"Idempotency-Key": "same"}, **bearer(KEY_B))
    a_again = await post_json(keyed, body, **{"Idempotency-Key": "same"}, **bearer(KEY_A))
    # B may reuse the key with a different body: it is B's key, not A's.
    b_other = await post_json(
        keyed, {"urls": [SEED + "b"]}, **{"Idempotency-Key": "b2"}, **bearer(KEY_B)
    )

    assert a.status_code == b.status_code == a_again.status_code == b_other.status_code == 202
    assert a.json()["id"] != b.json()["id"]
    assert a_again.json()["id"] == a.json()["id"]
    assert "idempotent-replayed" not in b.headers


async def test_idempotency_survives_a_restart(make_server: MakeServer) -> None:
    first_server = await make_server(role="web")
    first = await post_json(first_server, {"urls": [SEED]}, **{"Idempotency-Key": "durable"})
    await first_server.stop()

    second_server = await make_server(role="web")  # same tmp_path: the same database file
    again = await post_json(second_server, {"urls": [SEED]}, **{"Idempotency-Key": "durable"})
    changed = await post_json(
        second_server, {"urls": [SEED + "x"]}, **{"Idempotency-Key": "durable"}
    )

    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert_problem(changed, 422, "Idempotency-Key")


async def test_duplicate_in_flight_is_a_409(
    api: TrawlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = api.app.ctx.db
    release = asyncio.Event()
    real_create = store.create_job

    async def slow_create(job: Any) -> Any:
        await release.wait()  # the first request stays in flight until the test says so
        return await real_create(job)

    monkeypatch.setattr(store, "create_job", slow_create)
    headers = {"Idempotency-Key": "in-flight"}

    async def in_flight() -> int:
        return len(api.app.ctx.in_flight_keys)

    first = asyncio.create_task(post_json(api, {"urls": [SEED]}, **headers))
    await wait_until(in_flight, lambda n: n == 1, timeout=5)
    duplicate = await post_json(api, {"urls": [SEED]}, **headers)
    other_key = asyncio.create_task(post_json(api, {"urls": [SEED]}, **{"Idempotency-Key": "x"}))
    release.set()
    created = await first

    assert_problem(duplicate, 409)
    assert created.status_code == 202
    assert (await other_key).status_code == 202
    assert not api.app.ctx.in_flight_keys, "the guard is released"
    replay = await post_json(api, {"urls": [SEED]}, **headers)
    assert replay.json()["id"] == created.json()["id"]


async def test_concurrent_identical_requests_make_one_job(api: TrawlServer) -> None:
    headers = {"Idempotency-Key": "burst"}

    responses = await asyncio.gather(
        *(post_json(api, {"urls": [SEED]}, **headers) for _ in range(20))
    )

    statuses = {response.status_code for response in responses}
    assert statuses <= {202, 409}, [r.text for r in responses]
    ids = {response.json()["id"] for response in responses if response.status_code == 202}
    assert len(ids) == 1
    assert len((await api.client.get("/v1/jobs")).json()["items"]) == 1


# -- back-pressure -------------------------------------------------------------------


async def test_backlog_over_the_limit_is_a_503(make_server: MakeServer) -> None:
    server = await make_server(role="web", max_pending_urls=5)
    first = await server.submit({"urls": [f"{SEED}{i}" for i in range(5)]})

    refused = await post_json(server, {"urls": [SEED]})

    assert_problem(refused, 503)
    assert int(refused.headers["retry-after"]) >= 1
    # Reads still work while writes are refused.
    assert (await server.client.get(f"/v1/jobs/{first['id']}")).status_code == 200
    # Once the backlog drains (here: the job is cancelled), jobs are accepted again.
    assert (await server.client.delete(f"/v1/jobs/{first['id']}")).status_code == 200
    assert (await post_json(server, {"urls": [SEED]})).status_code == 202


# -- tenant isolation ----------------------------------------------------------------


async def test_another_keys_job_is_a_404(keyed: TrawlServer) -> None:
    created = await post_json(keyed, {"urls": [SEED]}, **bearer(KEY_A))
    job_id = created.json()["id"]

    for method, suffix in (
        ("GET", ""),
        ("DELETE", ""),
        ("GET", "/results"),
        ("GET", "/results.ndjson"),
    ):
        response = await keyed.client.request(
            method, f"/v1/jobs/{job_id}{suffix}", headers=bearer(KEY_B)
        )
        assert_problem(response, 404)
    b_list = (await keyed.client.get("/v1/jobs", headers=bearer(KEY_B))).json()
    a_job = await keyed.client.get(f"/v1/jobs/{job_id}", headers=bearer(KEY_A))

    assert b_list == {"items": [], "next_cursor": None}
    assert a_job.status_code == 200
    assert a_job.json()["status"] == "queued", "B's DELETE must not have cancelled it"


async def test_anonymous_jobs_are_not_visible_to_keyed_clients(make_server: MakeServer) -> None:
    open_server = await make_server(role="web")
    job = await open_server.submit({"urls": [SEED]})
    await open_server.stop()

    keyed_server = await make_server(role="web", api_keys=(KEY_A,))
    response = await keyed_server.client.get(f"/v1/jobs/{job['id']}", headers=bearer(KEY_A))

    assert_problem(response, 404)
