"""The installed `trawl` command, run as a user would: subprocesses, files, a terminal."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TrawlServer, eventually, free_port, wait_until
from tests.site import Site, SiteFactory

pytestmark = pytest.mark.slow

TRAWL = shutil.which("trawl") or str(Path(sys.executable).with_name("trawl"))


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCRAPER_", "TRAWL_"))}
    env.update({"SCRAPER_PARSER_PROCESSES": "1", "SCRAPER_PER_HOST_CONCURRENCY": "4"})
    env.update(extra)
    return env


async def run(*args: str, timeout: float = 90.0, **env: str) -> tuple[int, str, str]:
    """Run `trawl ARGS` to the end: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        TRAWL,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        env=child_env(**env),
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


async def test_crawl_on_the_embedded_engine_writes_ndjson(site: Site, tmp_path: Path) -> None:
    out = tmp_path / "pages.ndjson"
    code, stdout, stderr = await run(
        "crawl", site.url("/"), "--max-depth", "2", "--allow-private-networks", "-o", str(out)
    )
    assert code == 0, stderr
    assert stdout == "" and stderr == "", "quiet when standard error is not a terminal"
    pages = lines(out.read_text())
    assert {page["url"] for page in pages} == site.expected_urls(2)
    assert all(page["error"] is None for page in pages)


async def test_crawl_to_stdout_with_formats_and_a_kept_database(site: Site, tmp_path: Path) -> None:
    database = tmp_path / "kept.db"
    code, stdout, stderr = await run(
        "crawl",
        site.url("/fixed"),
        "--format",
        "markdown",
        "--format",
        "metadata",
        "--database",
        str(database),
        SCRAPER_ALLOW_PRIVATE_NETWORKS="1",
    )
    assert code == 0, stderr
    (page,) = lines(stdout)
    assert page["markdown"] and "Main heading" in page["markdown"]
    assert "text" not in page or page["text"] is None
    assert database.exists() and database.stat().st_size > 0


@pytest.mark.parametrize(
    "args",
    [
        ["crawl"],
        ["crawl", "http://x.invalid/", "--max-depth", "-1"],
        ["crawl", "http://x.invalid/", "--format", "pdf"],
        ["crawl", "ftp://x.invalid/"],
        ["crawl", "http://x.invalid/", "--max-pages", "0"],
        ["frobnicate"],
    ],
)
async def test_bad_arguments_exit_2(args: list[str]) -> None:
    code, stdout, stderr = await run(*args)
    assert code == 2, (stdout, stderr)
    assert stderr.strip(), "says what was wrong"


async def test_refused_private_address_fails_the_page_not_the_cli(site: Site) -> None:
    # Without --allow-private-networks the engine refuses loopback: a failed page.
    code, stdout, stderr = await run("crawl", site.url("/"))
    assert code == 0, stderr
    (page,) = lines(stdout)
    assert page["error"]["code"] == "private_address"


def _read_all(fd: int, until: float) -> bytes:
    chunks = []
    while time.monotonic() < until:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_progress_bar_under_a_terminal(site_factory: SiteFactory, tmp_path: Path) -> None:
    site = site_factory(pages=60, page_delay=0.02)
    out = tmp_path / "pages.ndjson"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [TRAWL, "crawl", site.url("/"), "--max-depth", "9", "-o", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        env=child_env(SCRAPER_ALLOW_PRIVATE_NETWORKS="1", TERM="xterm-256color"),
    )
    os.close(slave)
    try:
        screen = _read_all(master, time.monotonic() + 90).decode(errors="replace")
        assert process.wait(30) == 0, screen
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    assert "pages/s" in screen, screen
    assert "61/61 pages" in screen, screen
    assert "completed" in screen
    assert len(lines(out.read_text())) == 61


async def test_ctrl_c_cancels_cleanly_and_keeps_what_was_written(
    site_factory: SiteFactory, tmp_path: Path
) -> None:
    site = site_factory(pages=400, page_delay=0.05)
    out = tmp_path / "pages.ndjson"
    process = await asyncio.create_subprocess_exec(
        TRAWL,
        "crawl",
        site.url("/"),
        "--max-depth",
        "20",
        "--max-pages",
        "400",
        "-o",
        str(out),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env(SCRAPER_ALLOW_PRIVATE_NETWORKS="1", SCRAPER_PER_HOST_CONCURRENCY="2"),
    )
    await eventually(
        lambda: (out.exists() and out.read_text().count("\n") >= 1) or site.count("/p/5"), 60, 0.1
    )
    process.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1, err.decode()
    assert "cancelled" in err.decode()
    pages = lines(out.read_text())  # every line is whole JSON
    assert 0 < len(pages) < 400
    fetched_before = len(site.requests)
    await asyncio.sleep(0.5)
    assert len(site.requests) == fetched_before, "nothing is fetched after the exit"


async def test_server_mode_and_the_job_commands(
    trawl: TrawlServer, site: Site, tmp_path: Path
) -> None:
    server = ["--server", trawl.base_url]
    code, stdout, stderr = await run("crawl", site.url("/"), "--max-depth", "1", *server)
    assert code == 0, stderr
    pages = lines(stdout)
    assert {page["url"] for page in pages} == site.expected_urls(1)

    code, stdout, _ = await run("jobs", *server, "--json")
    assert code == 0
    (job,) = lines(stdout)
    assert job["status"] == "completed"
    code, table, _ = await run("jobs", *server)
    assert job["id"] in table and "completed" in table

    code, stdout, _ = await run("show", job["id"], *server)
    assert code == 0 and json.loads(stdout)["id"] == job["id"]

    out = tmp_path / "again.ndjson"
    code, _, _ = await run("results", job["id"], *server, "-o", str(out))
    assert code == 0 and len(lines(out.read_text())) == len(pages)

    code, stdout, _ = await run("cancel", job["id"], *server)
    assert code == 0 and json.loads(stdout)["status"] == "completed"

    code, stdout, stderr = await run(
        "recrawl", job["id"], "--set", "max_depth=2", "--wait", *server
    )
    assert code == 0, stderr
    again = json.loads(stdout)
    assert again["recrawl_of"] == job["id"] and again["request"]["max_depth"] == 2
    new = site.expected_urls(2) - site.expected_urls(1)
    assert again["stats"]["changes"]["new"] == len(new)
    code, stdout, _ = await run("results", again["id"], "--change", "new", *server)
    assert code == 0 and {page["url"] for page in lines(stdout)} == new
    code, _, stderr = await run("recrawl", job["id"], "--set", "max_depth=-1", *server)
    assert code == 2 and "max_depth" in stderr

    code, _, stderr = await run("show", "no-such-job", *server)
    assert code == 1 and "404" in stderr


async def test_server_mode_with_api_keys(make_server: Any, site: Site) -> None:
    server = await make_server(api_keys=("secret",))
    code, _, stderr = await run("jobs", "--server", server.base_url)
    assert code == 1 and "401" in stderr
    code, stdout, stderr = await run(
        "crawl", site.url("/"), "--server", server.base_url, "--api-key", "secret"
    )
    assert code == 0, stderr
    assert len(lines(stdout)) == 1
    code, stdout, _ = await run(
        "jobs", "--json", TRAWL_SERVER=server.base_url, TRAWL_API_KEY="secret"
    )
    assert code == 0 and len(lines(stdout)) == 1


async def test_server_mode_refused_request_exits_2(trawl: TrawlServer) -> None:
    code, _, stderr = await run(
        "crawl", "http://x.invalid/", "--include", "(", "--server", trawl.base_url
    )
    assert code == 2 and "include" in stderr


async def test_serve_runs_the_service(tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        TRAWL,
        "serve",
        "--port",
        str(port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**child_env(), "DATABASE_URL": f"sqlite:///{tmp_path}/serve.db"},
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:

            async def healthy() -> bool:
                assert process.returncode is None
                with contextlib.suppress(httpx.HTTPError):
                    return (await c.get("/health")).status_code == 200
                return False

            await wait_until(healthy, bool, 60, 0.1)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 40) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
