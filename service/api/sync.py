"""Synchronous work inside a request: waiting for a scrape job, running a map.

Both create ordinary jobs (visible in /v1/jobs, with the usual limits and ownership);
the request then waits for the scrape's one page, or does the map itself and completes
the job with its counts.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sanic import Request

from service.api.context import AppContext, ctx
from service.api.submission import owner_of
from service.completion import wait_for_job
from service.crawl.mapper import MapResult, MapSpec, SiteMapper
from service.crawl.parser import ParseOptions, parse_page
from service.crawl.plan import JobPlan
from service.crawl.robots import RobotsCache
from service.errors import Conflict, GatewayTimeout
from service.models import Job, JobStats, utcnow

logger = logging.getLogger(__name__)

_LINK_OPTIONS = ParseOptions(formats=frozenset(), extract_links=True)


async def scrape_page(request: Request, job: Job, within: float) -> str:
    """The JSON of a scrape job's one page once it is fetched; 504 naming the job if late."""
    app = ctx(request)
    signalled = app.crawler is not None and not getattr(app.db, "shared_frontier", True)
    final = await wait_for_job(
        app.db, app.completions, job.id, owner_of(request), within, signalled=signalled
    )
    if final is None:
        raise GatewayTimeout(
            f"The page was not fetched within {within:g} s; the job goes on: "
            f"poll /v1/jobs/{job.id} and its results.",
            job_id=job.id,
        )
    rows = await app.db.list_results(job.id, None, 1, 0)
    if not rows:
        raise Conflict(
            f"The scrape job ended {final.status.value} before its page was fetched.",
            extensions={"job_id": job.id},
        )
    return rows[0][1]


def mapper_for(app: AppContext) -> SiteMapper:
    """The app's mapper, built on first use from the crawl's fetcher and parser."""
    if app.mapper is None:
        assert app.fetcher is not None, "the fetcher is opened by before_server_start"
        settings = app.settings
        crawler = app.crawler
        if crawler is not None:
            pool = crawler.parser

            async def parse(
                body: bytes, url: str, charset: str | None
            ) -> tuple[str | None, tuple[str, ...]]:
                output = await pool.parse(body, url, _LINK_OPTIONS, charset)
                return output.title, output.links
        else:
            # The web role has no parser processes; a map parses a page or a few.
            async def parse(
                body: bytes, url: str, charset: str | None
            ) -> tuple[str | None, tuple[str, ...]]:
                page = await asyncio.to_thread(
                    parse_page, body, url, _LINK_OPTIONS, http_charset=charset
                )
                return page.title, page.links

        # One robots.txt cache per process: the crawl's, when this process crawls.
        robots = (
            crawler.robots if crawler is not None else RobotsCache(app.fetcher, settings.user_agent)
        )
        app.mapper = SiteMapper(
            app.fetcher,
            robots,
            parse,
            per_host=settings.per_host_concurrency,
        )
    return app.mapper


async def run_map(request: Request, job: Job, spec: MapSpec) -> MapResult:
    """Map a site for `job` (stored without a frontier) and complete the job."""
    app = ctx(request)
    started = utcnow()
    plan = JobPlan.from_request(job.id, job.request, app.settings)
    try:
        result = await mapper_for(app).run(job.id, spec, plan)
    except BaseException as exc:
        error: dict[str, Any] = {"code": "internal_error", "message": type(exc).__name__}
        await asyncio.shield(app.db.fail_job(job.id, error))
        app.completions.finished([job.id])
        raise
    visited = result.pages_fetched + result.pages_failed + result.pages_skipped
    stats = JobStats(
        pages_discovered=visited,
        pages_fetched=result.pages_fetched,
        pages_failed=result.pages_failed,
        pages_skipped=result.pages_skipped,
    )
    await app.db.complete_job(job.id, stats, started)
    app.completions.finished([job.id])
    if app.webhooks is not None:
        app.webhooks.wake()
    return result
