"""/metrics behind a key or SCRAPER_METRICS_TOKEN; rate limits by key, then by IPv6 /64."""

from __future__ import annotations

from service.api.security import RateLimiter, address_key
from tests.api.conftest import MakeServer, assert_problem

KEY, TOKEN = "key-0123456789abcdef", "metrics-token-0123456789"


async def test_metrics_open_on_loopback_without_keys(make_server: MakeServer) -> None:
    server = await make_server(role="web")
    assert (await server.client.get("/metrics")).status_code == 200


async def test_metrics_need_a_key_when_keys_are_set(make_server: MakeServer) -> None:
    server = await make_server(role="web", api_keys=(KEY,))
    assert_problem(await server.client.get("/metrics"), 401)
    wrong = {"Authorization": "Bearer nope"}
    assert_problem(await server.client.get("/metrics", headers=wrong), 401)
    ok = await server.client.get("/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status_code == 200 and "trawl_jobs" in ok.text


async def test_metrics_token(make_server: MakeServer) -> None:
    server = await make_server(role="web", api_keys=(KEY,), metrics_token=TOKEN)
    assert_problem(await server.client.get("/metrics"), 401)
    token = {"Authorization": f"Bearer {TOKEN}"}
    assert (await server.client.get("/metrics", headers=token)).status_code == 200
    # The metrics token is not an API key.
    assert_problem(await server.client.get("/v1/jobs", headers=token), 401)


async def test_metrics_closed_on_a_wildcard_bind_without_a_token(make_server: MakeServer) -> None:
    server = await make_server(role="web", host="0.0.0.0", insecure_no_auth=True)
    body = assert_problem(await server.client.get("/metrics"), 401)
    assert "SCRAPER_METRICS_TOKEN" in body["detail"]
    with_token = await make_server(
        role="web", host="0.0.0.0", insecure_no_auth=True, metrics_token=TOKEN
    )
    token = {"Authorization": f"Bearer {TOKEN}"}
    assert (await with_token.client.get("/metrics", headers=token)).status_code == 200


def test_ipv6_clients_are_one_client_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff:1:2:3")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:192.0.2.7") == address_key("192.0.2.7") == "ip:192.0.2.7"
    limiter = RateLimiter(3)
    hits = [limiter.check(address_key(f"2001:db8:1:2::{i:x}")) for i in range(1, 6)]
    assert hits[:3] == [0.0] * 3 and all(wait > 0 for wait in hits[3:])


def test_a_flood_of_addresses_never_resets_a_key() -> None:
    limiter = RateLimiter(5, max_anonymous=1000)
    for _ in range(5):
        assert limiter.check("key:tenant") == 0.0
    assert limiter.check("key:tenant") > 0  # spent
    for i in range(200_000):  # more addresses than the limiter keeps
        limiter.check(f"ip:10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
    assert len(limiter) <= 1001
    assert limiter.check("key:tenant") > 0, "the key's budget was reset by the flood"


def test_active_addresses_survive_eviction() -> None:
    limiter = RateLimiter(2, max_anonymous=100)
    assert limiter.check("ip:192.0.2.1") == 0.0
    assert limiter.check("ip:192.0.2.1") == 0.0
    for i in range(500):
        limiter.check(f"ip:10.0.{i >> 8}.{i & 255}")
        if i % 50 == 0:  # the busy client keeps coming back: it stays the most recent
            assert limiter.check("ip:192.0.2.1") > 0
    assert limiter.check("ip:192.0.2.1") > 0
