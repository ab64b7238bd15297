"""`trawl schedules ...` against a real server."""

from __future__ import annotations

import json

import pytest

from tests.cli.test_cli import lines, run
from tests.conftest import TrawlServer, wait_until
from tests.site import Site

pytestmark = pytest.mark.slow


async def test_schedule_commands(trawl: TrawlServer, site: Site) -> None:
    server = ["--server", trawl.base_url]
    code, stdout, stderr = await run(
        "schedules", "add", site.url("/"), "--every", "1h", "--name", "home",
        "--max-depth", "1", "--format", "text", "--set", "scope=same-domain", *server,
    )  # fmt: skip
    assert code == 0, stderr
    made = json.loads(stdout)
    assert made["every"] == "1h" and made["name"] == "home"
    assert made["job"]["max_depth"] == 1 and made["job"]["formats"] == ["text"]
    assert made["job"]["scope"] == "same-domain"

    async def ran() -> dict[str, object]:
        body: dict[str, object] = (await trawl.client.get(f"/v1/schedules/{made['id']}")).json()
        return body

    await wait_until(ran, lambda s: bool(s["runs"]), timeout=30)
    code, table, _ = await run("schedules", "list", *server)
    assert code == 0 and made["id"] in table and "every 1h" in table
    code, stdout, _ = await run("schedules", "list", "--json", *server)
    assert [item["id"] for item in lines(stdout)] == [made["id"]]

    code, stdout, _ = await run("schedules", "pause", made["id"], *server)
    assert code == 0 and json.loads(stdout)["paused"] is True
    code, table, _ = await run("schedules", "list", *server)
    assert "paused" in table
    code, stdout, _ = await run("schedules", "resume", made["id"], *server)
    assert code == 0 and json.loads(stdout)["next_run_at"] is not None
    code, stdout, _ = await run("schedules", "show", made["id"], *server)
    assert code == 0 and json.loads(stdout)["runs"]

    code, _, stderr = await run("schedules", "add", site.url("/"), "--cron", "bad", *server)
    assert code == 2 and "cron" in stderr
    code, _, _ = await run("schedules", "add", site.url("/"), *server)
    assert code == 2  # --every or --cron is required
    code, stdout, _ = await run("schedules", "delete", made["id"], *server)
    assert code == 0 and json.loads(stdout)["id"] == made["id"]
    code, _, stderr = await run("schedules", "show", made["id"], *server)
    assert code == 1 and "404" in stderr
