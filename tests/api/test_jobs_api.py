"""The job routes: submit, poll, list (with cursors), cancel."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from tests.api.conftest import SEED, MakeServer, assert_problem, post_json
from tests.conftest import TrawlServer
from tests.site import Site, SiteFactory

STATUSES = ("queued", "running", "completed", "failed", "cancelled")
STATS = ("pages_discovered", "pages_queued", "pages_fetched", "pages_failed", "pages_skipped")
NORMALISED_DEFAULTS = {
    "max_depth": 0,
    "max_pages": 100,
    "scope": "same-host",
    "include": [],
    "exclude": [],
    "formats": ["metadata", "text", "links"],
    "selectors": {},
    "respect_robots": True,
    "webhook": None,
}


def assert_rfc3339(value: str) -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value), value
    datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_job_shape(job: dict[str, object]) -> None:
    assert set(job) >= {"id", "status", "created_at", "started_at", "finished_at"}
    assert set(job) >= {"request", "stats", "error"}
    assert job["status"] in STATUSES
    assert isinstance(job["created_at"], str)
    assert_rfc3339(job["created_at"])
    stats = job["stats"]
    assert isinstance(stats, dict) and set(stats) == set(STATS)
    assert all(isinstance(stats[name], int) and stats[name] >= 0 for name in STATS)


# -- POST /v1/jobs -------------------------------------------------------------------


async def test_submit_answers_202_with_location_and_the_normalised_job(api: TrawlServer) -> None:
    response = await post_json(api, {"url": "HTTP://Example.INVALID:80/a/../b?z=1&a=2#frag"})

    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/json"
    job = response.json()
    assert_job_shape(job)
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"
    assert job["started_at"] is None and job["finished_at"] is None and job["error"] is None
    # Normalised: the shorthand expanded, the URL canonical, every default spelled out.
    assert job["request"]["urls"] == ["http://example.invalid/b?a=2&z=1"]
    assert "url" not in job["request"]
    for name, value in NORMALISED_DEFAULTS.items():
        assert job["request"][name] == value, name
    assert job["stats"]["pages_discovered"] == 1
    assert job["stats"]["pages_queued"] == 1


async def test_submitted_job_is_readable_at_once(api: TrawlServer) -> None:
    created = await api.submit({"urls": [SEED, SEED + "x", SEED]})

    fetched = await api.job(created["id"])

    assert fetched == created
    assert fetched["request"]["urls"] == [SEED, SEED + "x"], "duplicate seeds are dropped"
    assert fetched["stats"]["pages_discovered"] == 2


async def test_submit_keeps_explicit_options(api: TrawlServer) -> None:
    body = {
        "urls": [SEED],
        "max_depth": 3,
        "max_pages": 7,
        "scope": "any",
        "include": ["/docs/"],
        "exclude": [r"\.pdf$"],
        "formats": ["html", "metadata"],
        "selectors": {"headline": "h1", "prices": {"css": ".price", "attr": "content"}},
        "respect_robots": False,
        "webhook": {"url": "https://hooks.example.invalid/trawl", "events": ["job.completed"]},
    }

    job = await api.submit(body)

    request = job["request"]
    for name in ("max_depth", "max_pages", "scope", "include", "exclude", "respect_robots"):
        assert request[name] == body[name], name
    assert request["formats"] == ["metadata", "html"]  # canonical order
    assert request["selectors"]["headline"] == "h1"
    assert request["selectors"]["prices"]["css"] == ".price"
    assert request["webhook"]["url"] == "https://hooks.example.invalid/trawl"
    assert request["webhook"]["events"] == ["job.completed"]


async def test_unknown_job_is_a_404_problem(api: TrawlServer) -> None:
    for method in ("GET", "DELETE"):
        response = await api.client.request(method, "/v1/jobs/no-such-job")
        assert_problem(response, 404)
    long_id = "x" * 5000
    body = assert_problem(await api.client.get(f"/v1/jobs/{long_id}"), 404)
    assert len(body["detail"]) < 200, "the detail echoes a bounded part of the id"


async def test_server_caps_come_from_settings(make_server: MakeServer) -> None:
    server = await make_server(
        role="web", max_urls_per_job=3, max_pages_cap=50, max_depth_cap=2, default_max_pages=10
    )

    too_many = await post_json(server, {"urls": [f"{SEED}{i}" for i in range(4)]})
    too_deep = await post_json(server, {"urls": [SEED], "max_depth": 3})
    too_big = await post_json(server, {"urls": [SEED], "max_pages": 51})
    at_caps = await post_json(
        server, {"urls": [f"{SEED}{i}" for i in range(3)], "max_depth": 2, "max_pages": 50}
    )
    defaulted = await post_json(server, {"urls": [SEED]})

    assert "at most 3" in assert_problem(too_many, 422, "urls")["errors"][0]["message"]
    assert "at most 2" in assert_problem(too_deep, 422, "max_depth")["errors"][0]["message"]
    assert "at most 50" in assert_problem(too_big, 422, "max_pages")["errors"][0]["message"]
    assert at_caps.status_code == 202, at_caps.text
    assert defaulted.json()["request"]["max_pages"] == 10


# -- GET /v1/jobs --------------------------------------------------------------------


async def test_list_is_newest_first(api: TrawlServer) -> None:
    ids = [(await api.submit({"url": f"{SEED}{i}"}))["id"] for i in range(5)]

    response = await api.client.get("/v1/jobs")

    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"items", "next_cursor"}
    assert [job["id"] for job in page["items"]] == ids[::-1]
    assert page["next_cursor"] is None
    for job in page["items"]:
        assert_job_shape(job)


async def test_list_pages_with_cursors_without_gaps_or_duplicates(api: TrawlServer) -> None:
    ids = [(await api.submit({"url": f"{SEED}{i}"}))["id"] for i in range(23)]

    seen: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        response = await api.client.get("/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        sizes.append(len(page["items"]))
        seen += [job["id"] for job in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        # A job submitted mid-way is newer than every cursor: it must not shift pages.
        if len(seen) == 10:
            await api.submit({"url": SEED + "late"})

    assert seen == ids[::-1]
    assert sizes == [5, 5, 5, 5, 3]


async def test_list_filters_by_status(api: TrawlServer) -> None:
    kept = [(await api.submit({"url": f"{SEED}{i}"}))["id"] for i in range(3)]
    cancelled = (await api.submit({"url": SEED + "c"}))["id"]
    assert (await api.client.delete(f"/v1/jobs/{cancelled}")).status_code == 200

    queued = (await api.client.get("/v1/jobs", params={"status": "queued"})).json()
    gone = (await api.client.get("/v1/jobs", params={"status": "cancelled"})).json()
    none = (await api.client.get("/v1/jobs", params={"status": "completed"})).json()

    assert [job["id"] for job in queued["items"]] == kept[::-1]
    assert [job["id"] for job in gone["items"]] == [cancelled]
    assert none == {"items": [], "next_cursor": None}


async def test_list_limit_bounds(api: TrawlServer) -> None:
    for i in range(3):
        await api.submit({"url": f"{SEED}{i}"})

    one = (await api.client.get("/v1/jobs", params={"limit": 1})).json()
    hundred = (await api.client.get("/v1/jobs", params={"limit": 100})).json()

    assert len(one["items"]) == 1 and one["next_cursor"]
    assert len(hundred["items"]) == 3 and hundred["next_cursor"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=done", "status"),
        ("status=QUEUED", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("limit=%201", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=%00", "cursor"),
        # Well-formed base64 of {"v":1,"p":-1} and of a position past any integer column.
        ("cursor=eyJ2IjoxLCJwIjotMX0", "cursor"),
        ("cursor=eyJ2IjoxLCJwIjoxMDAwMDAwMDAwMDAwMDAwMDAwMDAwMH0", "cursor"),
    ],
)
async def test_list_rejects_bad_parameters_naming_them(
    api: TrawlServer, query: str, field: str
) -> None:
    assert_problem(await api.client.get(f"/v1/jobs?{query}"), 422, field)


# -- DELETE /v1/jobs/{id} ------------------------------------------------------------


async def test_cancel_is_idempotent(api: TrawlServer) -> None:
    job = await api.submit({"url": SEED})

    first = await api.client.delete(f"/v1/jobs/{job['id']}")
    second = await api.client.delete(f"/v1/jobs/{job['id']}")

    assert first.status_code == 200 and second.status_code == 200
    assert first.json()["status"] == "cancelled"
    assert first.json()["finished_at"] is not None
    assert second.json() == first.json()
    assert (await api.job(job["id"]))["status"] == "cancelled"


async def test_cancel_of_a_finished_job_returns_its_final_status(
    trawl: TrawlServer, site: Site
) -> None:
    job = await trawl.submit({"url": site.url("/"), "max_depth": 1})
    done = await trawl.wait_job(job["id"])
    assert done["status"] == "completed"

    response = await trawl.client.delete(f"/v1/jobs/{job['id']}")

    assert response.status_code == 200
    assert response.json()["status"] == "completed"
    assert response.json()["finished_at"] == done["finished_at"]


async def test_cancel_stops_a_running_crawl(
    make_server: MakeServer, site_factory: SiteFactory
) -> None:
    site = site_factory(pages=400, page_delay=0.02)
    trawl = await make_server(per_host_concurrency=2)
    job = await trawl.submit({"url": site.url("/"), "max_depth": 10, "max_pages": 400})
    await trawl.wait_job(job["id"], {"running"})

    response = await trawl.client.delete(f"/v1/jobs/{job['id']}")

    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["stats"]["pages_fetched"] < 400
    assert (await trawl.job(job["id"]))["status"] == "cancelled"
