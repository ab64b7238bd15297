"""`python -m service` as a real child process, for exposure, crash and fuzz tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.conftest import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]

# Settings a test child inherits unless it overrides them: fast start, nothing inherited
# from the developer's shell (a stray SCRAPER_API_KEYS would change every answer).
BASE_ENV = {
    "SCRAPER_PARSER_PROCESSES": "1",
    "SCRAPER_RETRY_BASE_DELAY": "0.05",
    "SCRAPER_LOG_LEVEL": "INFO",
}


class ServiceProcess:
    """One `python -m service` child; its output goes to a log file for diagnostics."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        port: int | None = None,
        database: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.database = database or tmp_path / "trawl.db"
        self.log_path = tmp_path / f"service-{self.port}-{time.monotonic_ns()}.log"
        self.args = args
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("SCRAPER_") and key not in ("HOST", "PORT", "DATABASE_URL")
        }
        self.env.update(BASE_ENV)
        self.env.update({"PORT": str(self.port), "DATABASE_URL": f"sqlite:///{self.database}"})
        self.env.update(env or {})
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service", *self.args],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: the parser pool's children can be found (and
                # reaped) after the service itself has been killed.
                start_new_session=True,
            )
        return self

    def group(self) -> list[int]:
        """Live processes of the child's process group (the service and its helpers)."""
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the parenthesised command: state ppid pgrp ...
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) == self.pid:
                pids.append(int(entry.name))
        return pids

    def reap_group(self) -> None:
        """SIGKILL whatever is left of this child's process group, by pid."""
        for pid in self.group():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, timeout=10.0, trust_env=False, **kwargs)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until /health answers 200; fails early (with the log) if the process exits."""
        async with self.client() as client:

            async def healthy() -> bool:
                if self.returncode() is not None:
                    raise AssertionError(f"service exited {self.returncode()}:\n{self.log}")
                try:
                    return (await client.get("/health")).status_code == 200
                except httpx.TransportError:
                    return False

            try:
                await wait_until(healthy, bool, timeout, message="service not ready")
            except AssertionError as exc:
                if self.returncode() is not None:
                    raise
                raise AssertionError(f"{exc}:\n{self.log}") from None

    def returncode(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    async def wait_exit(self, timeout: float) -> int:
        """The exit status, waiting at most `timeout` seconds (then kill and fail)."""

        async def exited() -> int | None:
            return self.returncode()

        try:
            code: int = await wait_until(
                exited, lambda code: code is not None, timeout, 0.02, message="service exited"
            )
        except AssertionError:
            self.kill()
            raise AssertionError(f"service still running after {timeout}s:\n{self.log}") from None
        return code

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, then reap (a crash: nothing runs on the way down)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    async def __aenter__(self) -> ServiceProcess:
        return self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
        self.reap_group()
