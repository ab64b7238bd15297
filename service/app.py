"""The app factory: wires settings, storage, the crawl engine and the routes."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import math

from sanic import Sanic
from sanic.config import Config
from sanic_ext import Extend

from service import errors
from service.api import dashboard, docs, events, health, jobs, maps, results, scrape
from service.api.context import AppContext, TrawlApp
from service.api.firecrawl import routes as firecrawl
from service.api.security import RateLimiter, add_security_headers, authenticate
from service.crawl.fetcher import Fetcher, FetchOptions
from service.crawl.guard import AddressPolicy, policy_for
from service.errors import ConfigError
from service.metrics import LoopLagProbe
from service.progress import ProgressHub
from service.retention import RetentionSweeper
from service.settings import Settings
from service.store import store_for

logger = logging.getLogger(__name__)

_app_numbers = itertools.count()


def is_loopback_host(host: str) -> bool:
    if host.strip("[]").lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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


def address_policy(settings: Settings) -> AddressPolicy:
    """Where fetches and webhooks may connect: never this service's own API, never cloud
    metadata unless SCRAPER_ALLOWED_NETWORKS names it."""
    return policy_for(
        allow_private=settings.allow_private_networks,
        allowed_networks=settings.allowed_networks,
        host=settings.host,
        ports=(settings.port,),
    )


def fetch_options(settings: Settings) -> FetchOptions:
    return FetchOptions(
        user_agent=settings.user_agent,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        total_timeout=settings.page_timeout,
        max_body_bytes=settings.max_body_bytes,
        max_decoded_bytes=2 * settings.max_body_bytes,
        max_redirects=settings.max_redirects,
        max_connections=max(8, settings.concurrency),
        max_keepalive=max(8, settings.concurrency),
        policy=address_policy(settings),
        # Even with private networks allowed, a job must not reach this service's API.
        own_ports=frozenset({settings.port}) if settings.port else frozenset(),
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


def create_app(settings: Settings | None = None, *, name: str | None = None) -> TrawlApp:
    """Build the Sanic app; nothing is opened until the server starts."""
    settings = settings or Settings.from_env()
    check_exposure(settings)
    app: TrawlApp = Sanic(
        name or f"trawl{next(_app_numbers) or ''}",
        ctx=AppContext(settings=settings),
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
    context.stop = asyncio.Event()
    store = store_for(settings.database_url, pool_size=settings.db_pool_size)
    await store.open()
    context.store = store
    context.probe = LoopLagProbe()
    context.progress = ProgressHub(store)
    context.progress.start()
    context.background.append(asyncio.create_task(context.probe.run(context.stop)))
    # Expired jobs are deleted by whichever process leads "retention" (try_lead).
    context.retention = RetentionSweeper(
        store, settings.result_ttl, interval=settings.retention_interval
    )
    context.background.append(asyncio.create_task(context.retention.run(context.stop)))
    if settings.role in ("all", "worker"):
        from service.crawl.engine import Crawler
        from service.crawl.parsepool import ParsePool
        from service.webhooks import WebhookDispatcher

        # Its own task and client: the crawl never waits on a webhook receiver.
        webhooks = WebhookDispatcher(settings, store)
        await webhooks.start()
        context.webhooks = webhooks
        parser = ParsePool.for_settings(settings)
        parser.start()
        await parser.warm_up()
        fetcher = Fetcher(fetch_options(settings))
        crawler = Crawler(
            settings,
            store,
            fetcher,
            parser,
            on_job_loaded=webhooks.job_loaded,
            on_jobs_finished=context.completions.finished,
        )
        await crawler.start()
        context.crawler = crawler
        context.fetcher = fetcher
    else:
        # No crawler here, but maps still fetch (through the same guards) in the request.
        context.fetcher = Fetcher(fetch_options(settings))
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
    deadline = asyncio.get_running_loop().time() + context.settings.grace_period
    if context.stop is not None:
        context.stop.set()
    if context.progress is not None:
        # Open event streams end now: shutdown must not wait for their clients.
        await context.progress.stop()
    if context.crawler is not None:
        await context.crawler.stop(context.settings.grace_period)
    if context.webhooks is not None:
        # In-flight deliveries may finish; one cut short stays due in the outbox.
        remaining = deadline - asyncio.get_running_loop().time()
        await context.webhooks.stop(max(0.0, remaining))
    for task in context.background:
        task.cancel()
    await asyncio.gather(*context.background, return_exceptions=True)
    context.background.clear()


async def _close(app: TrawlApp) -> None:
    context = app.ctx
    crawler, context.crawler = context.crawler, None
    fetcher, context.fetcher = context.fetcher, None
    if crawler is None and fetcher is not None:
        with contextlib.suppress(Exception):
            await fetcher.aclose()
    if crawler is not None:
        with contextlib.suppress(Exception):
            await crawler.fetcher.aclose()
        crawler.parser.close()
    if context.store is not None:
        await context.store.close()
        context.store = None
