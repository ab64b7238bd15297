"""/v1/schedules: create, list, read, pause/resume/retime, delete; 422s naming the field.

These run on an API-only server (no ticker): what the routes store and answer. Firing is
tests/integration/test_schedules.py's.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx

from tests.api.conftest import SEED, MakeServer, assert_problem
from tests.conftest import TrawlServer

JOB = {"url": SEED, "max_depth": 1, "formats": ["markdown"]}


async def post(server: TrawlServer, body: Any, **headers: str) -> httpx.Response:
    return await server.client.post(
        "/v1/schedules",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )


async def patch(server: TrawlServer, schedule_id: str, body: Any, **headers: str) -> httpx.Response:
    return await server.client.patch(
        f"/v1/schedules/{schedule_id}",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def test_create_read_list_delete(api: TrawlServer) -> None:
    created = await post(
        api, {"job": JOB, "cron": "0 6 * * *", "timezone": "Europe/Paris", "name": "docs"}
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/v1/schedules/{body['id']}"
    assert body["cron"] == "0 6 * * *" and body["every"] is None
    assert body["timezone"] == "Europe/Paris" and body["name"] == "docs"
    assert body["paused"] is False and body["runs"] == []
    assert body["last_run_at"] is None and body["last_job_id"] is None
    assert body["job"]["urls"] == [SEED] and body["job"]["max_depth"] == 1
    # The next 06:00 in Paris, which is 04:00 or 05:00 UTC.
    assert body["next_run_at"].endswith((":00:00.000Z",))
    assert body["next_run_at"][11:13] in ("04", "05")

    read = await api.client.get(f"/v1/schedules/{body['id']}")
    assert read.status_code == 200 and read.json() == body
    listed = await api.client.get("/v1/schedules")
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [body["id"]]
    assert listed.json()["next_cursor"] is None

    deleted = await api.client.delete(f"/v1/schedules/{body['id']}")
    assert deleted.status_code == 200 and deleted.json()["id"] == body["id"]
    assert_problem(await api.client.get(f"/v1/schedules/{body['id']}"), 404)
    assert_problem(await api.client.delete(f"/v1/schedules/{body['id']}"), 404)
    assert_problem(await patch(api, body["id"], {"paused": True}), 404)


async def test_an_interval_runs_first_at_once(api: TrawlServer) -> None:
    body = (await post(api, {"job": JOB, "every": "6h"})).json()
    assert body["every"] == "6h" and body["every_seconds"] == 21600 and body["cron"] is None
    assert body["timezone"] == "UTC"
    assert abs(moment(body["next_run_at"]) - moment(body["created_at"])) < 0.01


async def test_pause_resume_and_retime(api: TrawlServer) -> None:
    body = (await post(api, {"job": JOB, "cron": "0 6 * * *"})).json()
    paused = await patch(api, body["id"], {"paused": True})
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused"] is True and paused.json()["next_run_at"] is None
    resumed = (await patch(api, body["id"], {"paused": False})).json()
    assert resumed["paused"] is False and resumed["next_run_at"] == body["next_run_at"]

    hourly = (await patch(api, body["id"], {"every": "1h"})).json()
    assert hourly["cron"] is None and hourly["every"] == "1h"
    # A new interval counts from now: the next run is an hour away, not at once.
    assert 3599 < moment(hourly["next_run_at"]) - moment(hourly["updated_at"]) < 3601

    back = (await patch(api, body["id"], {"cron": "30 7 * * *", "timezone": "Asia/Tokyo"})).json()
    assert back["cron"] == "30 7 * * *" and back["every"] is None
    assert back["timezone"] == "Asia/Tokyo"
    assert back["next_run_at"][11:16] == "22:30"  # 07:30 in Tokyo is 22:30 UTC

    renamed = (await patch(api, body["id"], {"name": "nightly", "job": {"url": SEED}})).json()
    assert renamed["name"] == "nightly" and renamed["job"]["max_depth"] == 0
    assert renamed["next_run_at"] == back["next_run_at"]


async def test_created_paused(api: TrawlServer) -> None:
    body = (await post(api, {"job": JOB, "every": "1d", "paused": True})).json()
    assert body["paused"] is True and body["next_run_at"] is None


async def test_validation_names_the_field(make_server: MakeServer) -> None:
    server = await make_server(role="web", min_schedule_interval=300.0)
    cases: list[tuple[Any, str]] = [
        ({"job": JOB, "cron": "not cron"}, "cron"),
        ({"job": JOB, "cron": "*/1 * * * *"}, "cron"),  # every minute: under 5 minutes
        ({"job": JOB, "cron": "0 6 * * *", "timezone": "Europe/Atlantis"}, "timezone"),
        ({"job": JOB, "cron": "0 6 * * *", "every": "1h"}, "cron"),
        ({"job": JOB}, "cron"),
        ({"job": JOB, "every": "4m"}, "every"),
        ({"job": {"url": "javascript:alert(1)"}, "every": "1h"}, "job.url"),
        ({"job": {"url": SEED, "formats": ["pdf"]}, "every": "1h"}, "job.formats[0]"),
        ({"every": "1h"}, "job"),
        ([], "body"),
    ]
    for payload, field in cases:
        assert_problem(await post(server, payload), 422, field)
    body = (await post(server, {"job": JOB, "every": "1h"})).json()
    assert_problem(await patch(server, body["id"], {"every": "1m"}), 422, "every")
    assert_problem(await patch(server, body["id"], {"timezone": "Nowhere"}), 422, "timezone")
    assert_problem(await patch(server, body["id"], {"job": {"urls": []}}), 422, "job.urls")
    response = await server.client.post(
        "/v1/schedules", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert_problem(response, 415)


async def test_too_many_schedules_per_key(make_server: MakeServer) -> None:
    server = await make_server(role="web", max_schedules_per_key=2, api_keys=("a", "b"))
    key_a = {"authorization": "Bearer a"}
    for _ in range(2):
        assert (await post(server, {"job": JOB, "every": "1h"}, **key_a)).status_code == 201
    assert_problem(await post(server, {"job": JOB, "every": "1h"}, **key_a), 422, "body")
    # Another key has its own allowance.
    assert (
        await post(server, {"job": JOB, "every": "1h"}, authorization="Bearer b")
    ).status_code == 201


async def test_schedules_belong_to_their_key(make_server: MakeServer) -> None:
    server = await make_server(role="web", api_keys=("a", "b"))
    key_a, key_b = {"authorization": "Bearer a"}, {"authorization": "Bearer b"}
    assert_problem(await post(server, {"job": JOB, "every": "1h"}), 401)
    mine = (await post(server, {"job": JOB, "every": "1h"}, **key_a)).json()
    theirs = await server.client.get(f"/v1/schedules/{mine['id']}", headers=key_b)
    assert_problem(theirs, 404)
    assert_problem(await patch(server, mine["id"], {"paused": True}, **key_b), 404)
    deleted = await server.client.delete(f"/v1/schedules/{mine['id']}", headers=key_b)
    assert_problem(deleted, 404)
    listed = await server.client.get("/v1/schedules", headers=key_b)
    assert listed.json()["items"] == []
    assert (
        await server.client.get(f"/v1/schedules/{mine['id']}", headers=key_a)
    ).status_code == 200


async def test_paging(api: TrawlServer) -> None:
    ids = [(await post(api, {"job": JOB, "every": "1h"})).json()["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/v1/schedules", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    assert_problem(await api.client.get("/v1/schedules", params={"limit": "0"}), 422, "limit")
    assert_problem(await api.client.get("/v1/schedules", params={"cursor": "x"}), 422, "cursor")


async def test_headers_in_the_job_are_redacted(api: TrawlServer) -> None:
    job = {"url": SEED, "headers": {"Authorization": "Bearer secret-token"}}
    body = (await post(api, {"job": job, "every": "1h"})).json()
    assert "secret-token" not in json.dumps(body)
    read = (await api.client.get(f"/v1/schedules/{body['id']}")).json()
    assert "secret-token" not in json.dumps(read)


async def test_run_now_from_a_web_process(api: TrawlServer) -> None:
    """A web process has no ticker: the run is started by the request (workers crawl it)."""
    body = (await post(api, {"job": JOB, "cron": "0 6 * * *"})).json()
    response = await api.client.post(f"/v1/schedules/{body['id']}/run")
    assert response.status_code == 202, response.text
    (run,) = response.json()["runs"]
    assert run["status"] == "queued" and run["job_id"]
    job = (await api.client.get(f"/v1/jobs/{run['job_id']}")).json()
    assert job["request"]["urls"] == [SEED]
    bad = await api.client.post(f"/v1/schedules/{body['id']}/run", json={"now": True})
    assert_problem(bad, 422, "now")
