"""The dashboard in a real browser: live list, submit form, job view, XSS, offline, keys."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from tests.browser.conftest import Dashboard
from tests.conftest import TrawlServer, wait_until
from tests.site import Site, SiteFactory

pytestmark = pytest.mark.slow

OpenDashboard = Callable[..., Awaitable[Dashboard]]
MakeServer = Callable[..., Awaitable[TrawlServer]]

# The probe's title and body are markup as text: a page that renders them as HTML runs them.
XSS_TITLE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
XSS_BODY = (
    "<h1>Probe</h1>"
    "<p>&lt;img src=x onerror=&quot;window.__pwned=3&quot;&gt;</p>"
    "<p>&lt;script&gt;window.__pwned=4&lt;/script&gt;</p>"
    '<p><a href="javascript:window.__pwned=5">a javascript: link</a></p>'
    '<p><img src="http://external.invalid/tracker.png" alt="tracker"></p>'
    "<p>Safe paragraph.</p>"
)


async def test_list_shows_a_running_job_and_updates_it_live(
    make_server: MakeServer, site_factory: SiteFactory, open_dashboard: OpenDashboard
) -> None:
    # Slow enough (61 pages x 0.5 s / 2) that the job is still running once the browser has
    # started and loaded the list, even on a loaded machine (0.05 s let it finish first).
    site = site_factory(pages=60, page_delay=0.5)
    trawl = await make_server()
    done_first = await trawl.submit({"url": site.url("/p/40")})
    await trawl.wait_job(done_first["id"])
    job = await trawl.submit(
        {"url": site.url("/"), "max_depth": 9, "max_pages": 61, "per_host_concurrency": 2}
    )
    tab = await open_dashboard(trawl.base_url)
    row = tab.page.locator(f'tr[data-job="{job["id"]}"]')
    await row.locator(".badge.running").wait_for(timeout=20_000)
    await tab.page.locator("#live-dot.on").wait_for(timeout=10_000)
    first = await row.locator(".progress-cell span").text_content()
    await tab.screenshot("jobs-running")
    requests_before = len(tab.watched.requests)
    await row.locator(".badge.completed").wait_for(timeout=60_000)
    assert await row.locator(".progress-cell span").text_content() == "61 / 61"
    assert first != "61 / 61"
    # Live means streamed: at most a few list refreshes, not a poll per update.
    list_polls = [u for u in tab.watched.requests[requests_before:] if "/v1/jobs?" in u]
    assert len(list_polls) <= 20
    assert await tab.page.locator(f'tr[data-job="{done_first["id"]}"] .badge.completed').count()
    await tab.screenshot("jobs-completed")


async def test_form_creates_a_job_and_the_job_view_shows_results(
    trawl: TrawlServer, site: Site, open_dashboard: OpenDashboard
) -> None:
    tab = await open_dashboard(trawl.base_url)
    page = tab.page
    await page.fill('input[name="url"]', site.url("/"))
    await page.fill('input[name="max_depth"]', "9")
    await page.select_option('select[name="scope"]', "same-host")
    await page.check('input[name="only_main_content"]')
    await page.click("#submit-form button[type=submit]")
    await page.wait_for_url("**/#/jobs/*", timeout=10_000)
    job_id = page.url.rsplit("/", 1)[1]
    job = await trawl.job(job_id)
    assert job["request"]["max_depth"] == 9 and job["request"]["only_main_content"] is True
    assert "markdown" in job["request"]["formats"]
    await page.locator("#job-status.completed").wait_for(timeout=60_000)
    await wait_until(
        lambda: page.locator("#results-body tr").count(), lambda n: n == 25, timeout=20
    )
    expected = site.expected_urls(9)
    first_page = await page.locator("#results-body tr td:first-child").all_text_contents()
    assert set(first_page) <= expected
    assert await page.locator("#job-stats").text_content() is not None
    assert str(len(expected)) in (await page.locator("#job-stats").text_content() or "")
    # The chart has a line; the preview shows the first result's markdown, rendered.
    await page.locator("#chart path.line").wait_for(timeout=10_000)
    await page.locator("#preview h1").wait_for(timeout=10_000)
    await tab.screenshot("job-view")

    # Cursor paging: the next page holds other results; previous comes back.
    await page.click("#results-next")
    await wait_until(
        lambda: page.locator("#results-page").text_content(), lambda t: t == "page 2", 10
    )
    second_page = await page.locator("#results-body tr td:first-child").all_text_contents()
    assert second_page and not set(second_page) & set(first_page)
    assert set(second_page) <= expected
    await page.click("#results-prev")
    await wait_until(
        lambda: page.locator("#results-page").text_content(), lambda t: t == "page 1", 10
    )
    # The outcome filter: no failed pages in this crawl.
    await page.select_option("#outcome", "failed")
    await page.locator("#results-empty").wait_for(state="visible", timeout=10_000)
    await page.select_option("#outcome", "ok")
    await wait_until(lambda: page.locator("#results-body tr").count(), lambda n: n == 25, 10)

    # NDJSON download: every result, one JSON object per line.
    async with page.expect_download() as info:
        await page.click("#job-download")
    download = await info.value
    path = await download.path()
    text = await asyncio.to_thread(Path(path).read_text, encoding="utf-8")
    lines = [line for line in text.splitlines() if line]
    assert len(lines) == len(expected)


async def test_cancel_from_the_job_view(
    make_server: MakeServer, site_factory: SiteFactory, open_dashboard: OpenDashboard
) -> None:
    site = site_factory(pages=200, page_delay=0.1)
    trawl = await make_server()
    job = await trawl.submit(
        {"url": site.url("/"), "max_depth": 9, "max_pages": 200, "per_host_concurrency": 1}
    )
    tab = await open_dashboard(trawl.base_url, f"/#/jobs/{job['id']}")
    await tab.page.locator("#job-status.running").wait_for(timeout=20_000)
    await tab.page.click("#job-cancel")
    await tab.page.locator("#job-status.cancelled").wait_for(timeout=20_000)
    assert (await trawl.job(job["id"]))["status"] == "cancelled"
    assert await tab.page.locator("#job-cancel").is_hidden()


async def test_xss_probe_never_executes(
    trawl: TrawlServer, site: Site, open_dashboard: OpenDashboard
) -> None:
    page_html = (
        f"<!DOCTYPE html><html><head><title>{XSS_TITLE}</title></head>"
        f"<body>{XSS_BODY}</body></html>"
    )
    site.add_page("/xss", page_html)
    job = await trawl.submit(
        {"url": site.url("/xss"), "formats": ["metadata", "markdown", "text", "links"]}
    )
    await trawl.wait_job(job["id"])
    (result,) = await trawl.results(job["id"])
    assert "<script>" in result["title"] and "onerror" in result["title"]

    tab = await open_dashboard(trawl.base_url)
    row = tab.page.locator(f'tr[data-job="{job["id"]}"]')
    await row.wait_for(timeout=10_000)
    await row.click()
    title_cell = tab.page.locator("#results-body tr td:nth-child(3)")
    await title_cell.wait_for(timeout=10_000)
    assert await title_cell.text_content() == result["title"], "shown as text"
    await tab.page.locator("#preview p").first.wait_for(timeout=10_000)
    preview = await tab.page.locator("#preview").inner_html()
    assert "Safe paragraph." in preview
    assert "<script" not in preview and "<img" not in preview
    assert await tab.page.locator("#preview img, #results-body img, #preview script").count() == 0
    assert await tab.page.locator('#preview a[href^="javascript"]').count() == 0
    assert await tab.page.evaluate("typeof window.__pwned") == "undefined"
    await tab.screenshot("xss-probe")


async def test_strict_csp_and_assets_from_the_package(trawl: TrawlServer) -> None:
    page = await trawl.client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "<script>" not in page.text and "style=" not in page.text
    assert "http://" not in page.text and "https://" not in page.text.replace(
        'placeholder="https://example.com/"', ""
    )
    for name in ("app.js", "app.css", "markdown-it.min.js", "purify.min.js", "favicon.svg"):
        asset = await trawl.client.get(f"/dashboard/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-security-policy"] == csp
        again = await trawl.client.get(
            f"/dashboard/{name}", headers={"If-None-Match": asset.headers["etag"]}
        )
        assert again.status_code == 304
    assert (await trawl.client.get("/dashboard/nope.js")).status_code == 404
    assert (await trawl.client.get("/dashboard/..%2Fapp.py")).status_code == 404


async def test_with_api_keys_the_page_asks_for_one_and_shows_nothing_without(
    make_server: MakeServer, site: Site, open_dashboard: OpenDashboard
) -> None:
    trawl = await make_server(api_keys=("sesame",))
    headers = {"Authorization": "Bearer sesame"}
    async with httpx.AsyncClient(base_url=trawl.base_url, headers=headers) as client:
        submitted = await client.post("/v1/jobs", json={"url": site.url("/")})
    job_id = submitted.json()["id"]
    tab = await open_dashboard(trawl.base_url)
    page = tab.page
    await page.locator("#key-gate").wait_for(state="visible", timeout=10_000)
    assert await page.locator("#jobs-view").is_hidden()
    assert await page.locator(f'tr[data-job="{job_id}"]').count() == 0
    await tab.screenshot("key-gate")
    # The rejected attempt is a 401 the page handles; the browser logs it as a failed load.
    await page.fill('input[name="key"]', "wrong")
    await page.click("#key-form button")
    await page.locator("#key-error").wait_for(state="visible", timeout=10_000)
    tab.watched.console_errors = [
        e for e in tab.watched.console_errors if "401" not in e and "Unauthorized" not in e
    ]
    await page.fill('input[name="key"]', "sesame")
    await page.click("#key-form button")
    await page.locator(f'tr[data-job="{job_id}"]').wait_for(timeout=10_000)
    assert await page.evaluate("sessionStorage.getItem('trawl.apiKey')") == "sesame"
    assert await page.evaluate("localStorage.length") == 0
