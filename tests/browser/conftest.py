"""A real Chromium (Debian's, via Playwright) pointed at a Trawl server's dashboard."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Watched:
    """What the page did that a test must check: errors, and requests off the origin."""

    origin: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.page_errors == [], self.page_errors
        assert self.blocked == [], f"requests left the service's origin: {self.blocked}"
        assert all(url.startswith(self.origin + "/") for url in self.requests), self.requests


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's package)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        # Debian's Chromium; Playwright's own browser downloads are never used.
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True
        )
        yield launched
        await launched.close()


class Dashboard:
    """One browser tab on a server, with its console and network watched."""

    def __init__(self, page: Any, watched: Watched, shots: Path) -> None:
        self.page = page
        self.watched = watched
        self.shots = shots

    async def screenshot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest_asyncio.fixture
async def open_dashboard(browser: Any, tmp_path: Path) -> AsyncIterator[Any]:
    """`await open_dashboard(base_url)`: a watched tab at the dashboard."""
    contexts = []
    tabs: list[Dashboard] = []

    async def open_tab(base_url: str, path: str = "/") -> Dashboard:
        context = await browser.new_context(viewport={"width": 1360, "height": 900})
        contexts.append(context)
        watched = Watched(origin=base_url)

        async def guard(route: Any) -> None:
            url = route.request.url
            if url.startswith(base_url + "/") or url.startswith(("blob:", "data:")):
                await route.continue_()
            else:
                watched.blocked.append(url)
                await route.abort()

        await context.route("**/*", guard)
        page = await context.new_page()
        page.on(
            "console",
            lambda message: (
                watched.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
        page.on(
            "request",
            lambda request: (
                watched.requests.append(request.url)
                if not request.url.startswith(("blob:", "data:"))
                else None
            ),
        )
        await page.goto(base_url + path)
        tab = Dashboard(page, watched, tmp_path)
        tabs.append(tab)
        return tab

    yield open_tab
    try:
        for tab in tabs:
            tab.watched.assert_clean()
    finally:
        for context in contexts:
            await context.close()
