"""Real Trawl processes on one database: `python -m service web` and `... worker` children.

Each child runs in its own process group (its parser pool included), so teardown can
end exactly what a test started, even after the child itself was killed with SIGKILL.
The scale-out tests and bench/pg_scaleout.py both drive a cluster through the public API.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import wait_until
from tests.jobsapi import JobsApi

REPO = Path(__file__).resolve().parents[2]
TERMINAL = {"completed", "failed", "cancelled"}

# Children inherit nothing Trawl-specific from the developer's shell.
_DROPPED = ("HOST", "PORT", "DATABASE_URL")
BASE_ENV = {
    "SCRAPER_ALLOW_PRIVATE_NETWORKS": "1",
    "SCRAPER_PARSER_PROCESSES": "1",
    "SCRAPER_RATE_LIMIT_PER_MINUTE": "0",
    "SCRAPER_RETRY_BASE_DELAY": "0.05",
    "SCRAPER_GRACE_PERIOD": "5",
    "SCRAPER_DB_POOL_SIZE": "4",
    "SCRAPER_LOG_LEVEL": "INFO",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Member:
    """One child process of the cluster and its log file."""

    def __init__(
        self, role: str, popen: subprocess.Popen[bytes], log: Path, port: int, log_start: int = 0
    ) -> None:
        self.role = role
        self.popen = popen
        self.log_path = log
        # Logs are appended to across runs (a bench restarts a role into the same file):
        # this member's own lines start here, so an earlier run's "ready" does not count.
        self.log_start = log_start
        self.port = port

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as file:
            file.seek(self.log_start)
            return file.read().decode(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=15.0, trust_env=False)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Web (or all): /health answers 200. Worker: it logged that its crawler runs."""
        async with self.client() as client:

            async def ready() -> bool:
                if not self.alive():
                    raise AssertionError(f"{self.role} exited {self.popen.returncode}:\n{self.log}")
                if self.role == "worker":
                    return "trawl worker ready" in self.log
                with contextlib.suppress(httpx.TransportError):
                    return (await client.get("/health")).status_code == 200
                return False

            try:
                await wait_until(ready, bool, timeout, 0.1, message=f"{self.role} not ready")
            except AssertionError as exc:
                if not self.alive():
                    raise
                raise AssertionError(f"{exc}:\n{self.log}") from None

    def crash(self) -> None:
        """SIGKILL the process itself (not its parser pool): nothing runs on the way down."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def terminate_group(self, grace: float) -> None:
        """SIGTERM, wait up to `grace`, then SIGKILL whatever is left of its group."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=10)


class Cluster:
    """Web and worker processes sharing `database_url`; `close()` ends all of them."""

    def __init__(
        self, database_url: str, log_dir: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.database_url = database_url
        self.log_dir = log_dir
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("SCRAPER_") and key not in _DROPPED
        }
        self.env.update(BASE_ENV)
        self.env.update(env or {})
        self.env["DATABASE_URL"] = database_url
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
        )
        self.members: list[Member] = []

    def start(self, role: str, **env: str) -> Member:
        port = free_port() if role != "worker" else 0
        log = self.log_dir / f"{role}-{len(self.members)}.log"
        child_env = dict(self.env, **env)
        if port:
            child_env["PORT"] = str(port)
        log_start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "service", role],
                cwd=REPO,
                env=child_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: see the module docstring
            )
        member = Member(role, popen, log, port, log_start)
        self.members.append(member)
        return member

    async def start_ready(self, role: str, count: int = 1, **env: str) -> list[Member]:
        started = [self.start(role, **env) for _ in range(count)]
        await asyncio.gather(*(member.wait_ready() for member in started))
        return started

    def close(self, grace: float = 10.0) -> None:
        for member in self.members:
            if member.alive():
                member.popen.send_signal(signal.SIGTERM)
        for member in self.members:
            member.terminate_group(grace)

    def logs(self) -> str:
        return "\n".join(f"--- {m.role} {m.pid}\n{m.log[-3000:]}" for m in self.members)


class Api(JobsApi):
    """The public API of one web process."""

    def __init__(self, member: Member) -> None:
        self.client = member.client()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def wait_job(
        self,
        job_id: str,
        until: Any = None,
        timeout: float = 60.0,
        interval: float = 0.1,
    ) -> dict[str, Any]:
        """Poll until `until(job)` (default: a final status); fail at the deadline."""
        done = until or (lambda job: job["status"] in TERMINAL)
        job: dict[str, Any] = await wait_until(
            lambda: self.job(job_id), done, timeout, interval, message="job not there"
        )
        return job
