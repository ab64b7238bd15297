"""The app factory: wires settings, storage, the crawl engine and the routes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math

from sanic import Sanic
from sanic.config import Config
from sanic_ext import Extend

from service import errors
from service.api import dashboard, docs, events, health, jobs, maps, results, schedules, scrape
from service.api.context import AppContext, TrawlApp
from service.api.firecrawl import routes as firecrawl
from service.api.security import RateLimiter, add_security_headers, authenticate
from service.errors import ConfigError
from service.network.guard import is_loopback_host
from service.progress import ProgressHub
from service.retention import RetentionSweeper
from service.runtime import Runtime, address_policy, fetch_options
from service.settings import Settings
from service.ticker import Clock

__all__ = ["address_policy", "check_exposure", "create_app", "fetch_options"]

logger = logging.getLogger(__name__)

_app_numbers = itertools.count()


def check_exposure(settings: Settings) -> None:
    """Refuse to serve an unauthenticated API beyond loopback (unless told it is fine)."""
    if settings.api_keys or settings.insecure_no_auth or is_loopback_host(settings.host):
        return
    raise ConfigError(
        f"Refusing to start: bound to {settings.host} with no SCRAPER_API_KEYS set, so anyone "
        "who can reach this address could use the crawler. Set SCRAPER_API_KEYS=<key>[,<key>] "
        "(clients send `Authorization: Bearer <key>`), bind HOST=127.0.0.1, or set "
        "SCRAPER_INSECURE_NO_AUTH=1 if something in front of this service authenticates."
    )


def _configure_sanic(config: Config, settings: Settings) -> None:
    # Sanic's defaults (100 MB bodies, 60 s timeouts, 120 s keep-alive) suit no public API.
    config.REQUEST_MAX_SIZE = settings.request_max_size
    # Sanic types these as int; whole seconds are precise enough for timeouts.
    config.REQUEST_TIMEOUT = math.ceil(settings.request_timeout)
    config.RESPONSE_TIMEOUT = max(60, math.ceil(settings.request_timeout))
    config.KEEP_ALIVE_TIMEOUT = math.ceil(settings.keep_alive_timeout)
    config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.grace_period + 5
    config.FALLBACK_ERROR_FORMAT = "json"
    config.ACCESS_LOG = False
    config.MOTD = False
    # /docs is service.api.docs (assets shipped in the package); sanic-ext's loads a CDN.
    config.OAS = False
    config.CORS = False
    config.HEALTH = False
    config.API_TITLE = "Trawl"
    config.API_VERSION = "1.0.0"
    config.API_DESCRIPTION = (
        "Self-hosted web scraping and crawling API. Submit a job, poll it, page through or "
        "stream its results."
    )


def create_app(
    settings: Settings | None = None, *, name: str | None = None, clock: Clock | None = None
) -> TrawlApp:
    """Build the Sanic app; nothing is opened until the server starts. `clock` is the
    schedules' ticker's (tests move a fake one forward)."""
    settings = settings or Settings.from_env()
    check_exposure(settings)
    app: TrawlApp = Sanic(
        name or f"trawl{next(_app_numbers) or ''}",
        ctx=AppContext(settings=settings, clock=clock),
        configure_logging=False,
    )
    _configure_sanic(app.config, settings)
    Extend(app)
    errors.install(app)
    app.blueprint(jobs.bp)
    app.blueprint(results.bp)
    app.blueprint(events.bp)
    app.blueprint(health.bp)
    app.blueprint(docs.bp)
    app.blueprint(scrape.bp)
    app.blueprint(maps.bp)
    app.blueprint(schedules.bp)
    app.blueprint(dashboard.bp)
    app.blueprint(firecrawl.bp)
    app.ctx.rate_limiter = RateLimiter(settings.rate_limit_per_minute)
    app.on_request(authenticate)
    app.on_response(add_security_headers)  # type: ignore[no-untyped-call]
    app.before_server_start(_open)
    app.before_server_stop(_drain)
    app.after_server_stop(_close)
    return app


async def _open(app: TrawlApp) -> None:
    context = app.ctx
    settings = context.settings
    runtime = await Runtime.open(
        settings,
        crawl=settings.role in ("all", "worker"),
        on_jobs_finished=context.completions.finished,
        clock=context.clock,
    )
    context.runtime = runtime
    context.stop = runtime.stop
    context.store = runtime.store
    context.probe = runtime.probe
    context.webhooks = runtime.webhooks
    context.fetcher = runtime.fetcher
    context.crawler = runtime.crawler
    context.ticker = runtime.ticker
    try:
        context.progress = ProgressHub(runtime.store)
        context.progress.start()
        # Expired jobs are deleted by whichever process leads "retention" (try_lead).
        context.retention = RetentionSweeper(
            runtime.store, settings.result_ttl, interval=settings.retention_interval
        )
        context.background.append(asyncio.create_task(context.retention.run(context.stop)))
    except BaseException:
        await runtime.close()
        raise
    logger.info(
        "trawl ready (role=%s, database=%s)", settings.role, settings.database_url.split("@")[-1]
    )
    logger.info("%s", listening_message(settings.host, settings.port))


def listening_message(host: str, port: int) -> str:
    """What a new user needs first: where the API, its docs and the dashboard are."""
    bare = host.strip("[]")
    shown = f"[{bare}]" if ":" in bare else bare
    base = f"http://{shown}:{port}"
    if bare in ("0.0.0.0", "::", ""):
        local = f"http://{'[::1]' if bare == '::' else '127.0.0.1'}:{port}"
        return (
            f"listening on {base} (all interfaces); on this machine: API {local}/v1, "
            f"docs {local}/docs, dashboard {local}/"
        )
    return f"listening on {base} (API {base}/v1, docs {base}/docs, dashboard {base}/)"


async def _drain(app: TrawlApp) -> None:
    context = app.ctx
    if context.progress is not None:
        # Open event streams end now: shutdown must not wait for their clients.
        await context.progress.stop()
    if context.runtime is not None:
        await context.runtime.drain()
    for task in context.background:
        task.cancel()
    await asyncio.gather(*context.background, return_exceptions=True)
    context.background.clear()


async def _close(app: TrawlApp) -> None:
    context = app.ctx
    runtime, context.runtime = context.runtime, None
    context.crawler = context.fetcher = context.webhooks = None
    context.ticker = None
    context.store = None
    if runtime is not None:
        await runtime.close()
