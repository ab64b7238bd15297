"""Settings, read once from the environment into a typed object (12-factor)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.errors import ConfigError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the service can be configured with; see config/example.env."""

    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = "sqlite:///data/trawl.db"
    role: str = "all"  # all | web | worker
    db_pool_size: int = 10  # PostgreSQL connections per process

    # Security.
    allow_private_networks: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    api_keys: tuple[str, ...] = ()
    insecure_no_auth: bool = False
    rate_limit_per_minute: int = 600
    metrics_token: str = ""  # bearer token for /metrics (API keys work too)
    webhook_secret: str = ""
    webhook_retry_base: float = 1.0  # seconds before the first retry; doubles per attempt
    webhook_max_attempts: int = 15  # ~57 min of outage at base 1 s: 1+2+...+512 s, 4 x 600 s

    # Crawling.
    concurrency: int = 32
    per_host_concurrency: int = 2
    per_host_delay: float = 0.0
    user_agent: str = "Trawl/0.1 (+https://github.com/trawl/trawl)"
    parser_processes: int = field(default_factory=_cpu_count)
    queue_size: int = 0  # in-memory hand-off bound; 0 = 2 x concurrency
    parse_timeout: float = 5.0  # per page, in a parser process; past it the child is killed
    parser_max_pages: int = 2000  # a parser process is replaced after this many pages
    parser_max_memory_mb: int = 512  # ... or once its resident memory passes this
    frontier_buffer: int = 8192  # claimed URLs held in memory, across all hosts
    parse_queue_size: int = 0  # fetched pages waiting for a parser; 0 = concurrency
    parse_queue_mb: int = 64  # ... and at most this many MB of their bodies
    max_concurrency_per_key: int = 0  # 0: an equal share of the workers per active key
    max_high_priority_jobs_per_key: int = 4  # more active "high" jobs run as "normal"
    max_retries: int = 3
    retry_base_delay: float = 1.0
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    page_timeout: float = 30.0
    max_body_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 10
    host_failure_threshold: int = 10
    lease_seconds: float = 120.0  # a claimed URL returns to the frontier if not renewed

    # Server-side caps on what a job may ask for.
    max_urls_per_job: int = 1000
    max_pages_cap: int = 100_000
    max_depth_cap: int = 100
    default_max_pages: int = 100
    max_pending_urls: int = 5_000_000

    # Storage bounds: what one page may cost, and how long results are kept.
    max_format_bytes: int = 2 * 1024 * 1024  # per format (html, text, markdown), UTF-8
    max_response_bytes: int = 8 * 1024 * 1024  # a results page (at least one result)
    result_ttl: float = 0.0  # seconds a finished job's results are kept; 0 = keep forever
    max_result_ttl: float = 0.0  # most a job's `retention` may ask for; 0 = no bound
    retention_interval: float = 30.0  # seconds between sweeps for expired jobs

    # Schedules (service/schedules.py).
    min_schedule_interval: float = 60.0  # seconds between two runs of a schedule, at least
    max_schedules_per_key: int = 100

    # API.
    request_max_size: int = 1024 * 1024
    request_timeout: float = 15.0
    keep_alive_timeout: float = 10.0
    grace_period: float = 20.0
    result_batch_size: int = 100
    result_flush_interval: float = 0.05
    log_format: str = "text"  # text | json
    log_level: str = "INFO"

    @property
    def effective_queue_size(self) -> int:
        return self.queue_size or 2 * self.concurrency

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (tests and the CLI use it)."""
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from the environment, failing loudly on bad values."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        defaults = cls()
        settings = cls(
            host=reader.text("HOST", defaults.host),
            port=reader.integer("PORT", defaults.port, minimum=0),
            database_url=reader.text("DATABASE_URL", defaults.database_url),
            role=reader.text("SCRAPER_ROLE", defaults.role),
            db_pool_size=reader.integer("SCRAPER_DB_POOL_SIZE", defaults.db_pool_size, minimum=1),
            allow_private_networks=reader.flag("SCRAPER_ALLOW_PRIVATE_NETWORKS", False),
            allowed_networks=reader.networks("SCRAPER_ALLOWED_NETWORKS"),
            api_keys=reader.items("SCRAPER_API_KEYS"),
            insecure_no_auth=reader.flag("SCRAPER_INSECURE_NO_AUTH", False),
            rate_limit_per_minute=reader.integer(
                "SCRAPER_RATE_LIMIT_PER_MINUTE", defaults.rate_limit_per_minute, minimum=0
            ),
            metrics_token=reader.text("SCRAPER_METRICS_TOKEN", ""),
            webhook_secret=reader.text("SCRAPER_WEBHOOK_SECRET", ""),
            webhook_retry_base=reader.number(
                "SCRAPER_WEBHOOK_RETRY_BASE", defaults.webhook_retry_base
            ),
            webhook_max_attempts=reader.integer(
                "SCRAPER_WEBHOOK_MAX_ATTEMPTS", defaults.webhook_max_attempts, minimum=1
            ),
            concurrency=reader.integer("SCRAPER_CONCURRENCY", defaults.concurrency, minimum=1),
            per_host_concurrency=reader.integer(
                "SCRAPER_PER_HOST_CONCURRENCY", defaults.per_host_concurrency, minimum=1
            ),
            per_host_delay=reader.number("SCRAPER_PER_HOST_DELAY", defaults.per_host_delay),
            user_agent=reader.text("SCRAPER_USER_AGENT", defaults.user_agent),
            parser_processes=reader.integer(
                "SCRAPER_PARSER_PROCESSES", defaults.parser_processes, minimum=1
            ),
            queue_size=reader.integer("SCRAPER_QUEUE_SIZE", 0, minimum=0),
            parse_timeout=reader.number("SCRAPER_PARSE_TIMEOUT", defaults.parse_timeout),
            parser_max_pages=reader.integer(
                "SCRAPER_PARSER_MAX_PAGES", defaults.parser_max_pages, minimum=1
            ),
            parser_max_memory_mb=reader.integer(
                "SCRAPER_PARSER_MAX_MEMORY_MB", defaults.parser_max_memory_mb, minimum=64
            ),
            frontier_buffer=reader.integer(
                "SCRAPER_FRONTIER_BUFFER", defaults.frontier_buffer, minimum=16
            ),
            parse_queue_size=reader.integer("SCRAPER_PARSE_QUEUE_SIZE", 0, minimum=0),
            parse_queue_mb=reader.integer(
                "SCRAPER_PARSE_QUEUE_MB", defaults.parse_queue_mb, minimum=1
            ),
            max_concurrency_per_key=reader.integer("SCRAPER_MAX_CONCURRENCY_PER_KEY", 0, minimum=0),
            max_high_priority_jobs_per_key=reader.integer(
                "SCRAPER_MAX_HIGH_PRIORITY_JOBS_PER_KEY",
                defaults.max_high_priority_jobs_per_key,
                minimum=0,
            ),
            max_retries=reader.integer("SCRAPER_MAX_RETRIES", defaults.max_retries, minimum=0),
            retry_base_delay=reader.number("SCRAPER_RETRY_BASE_DELAY", defaults.retry_base_delay),
            connect_timeout=reader.number("SCRAPER_CONNECT_TIMEOUT", defaults.connect_timeout),
            read_timeout=reader.number("SCRAPER_READ_TIMEOUT", defaults.read_timeout),
            page_timeout=reader.number("SCRAPER_PAGE_TIMEOUT", defaults.page_timeout),
            max_body_bytes=reader.integer(
                "SCRAPER_MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1
            ),
            max_redirects=reader.integer(
                "SCRAPER_MAX_REDIRECTS", defaults.max_redirects, minimum=0
            ),
            host_failure_threshold=reader.integer(
                "SCRAPER_HOST_FAILURE_THRESHOLD", defaults.host_failure_threshold, minimum=1
            ),
            lease_seconds=reader.number("SCRAPER_LEASE_SECONDS", defaults.lease_seconds),
            max_urls_per_job=reader.integer(
                "SCRAPER_MAX_URLS_PER_JOB", defaults.max_urls_per_job, minimum=1
            ),
            max_pages_cap=reader.integer(
                "SCRAPER_MAX_PAGES_CAP", defaults.max_pages_cap, minimum=1
            ),
            max_depth_cap=reader.integer(
                "SCRAPER_MAX_DEPTH_CAP", defaults.max_depth_cap, minimum=0
            ),
            default_max_pages=reader.integer(
                "SCRAPER_DEFAULT_MAX_PAGES", defaults.default_max_pages, minimum=1
            ),
            max_pending_urls=reader.integer(
                "SCRAPER_MAX_PENDING_URLS", defaults.max_pending_urls, minimum=1
            ),
            max_format_bytes=reader.integer(
                "SCRAPER_MAX_FORMAT_BYTES", defaults.max_format_bytes, minimum=1024
            ),
            max_response_bytes=reader.integer(
                "SCRAPER_MAX_RESPONSE_BYTES", defaults.max_response_bytes, minimum=1024
            ),
            result_ttl=reader.duration("SCRAPER_RESULT_TTL", defaults.result_ttl),
            max_result_ttl=reader.duration("SCRAPER_MAX_RESULT_TTL", defaults.max_result_ttl),
            retention_interval=reader.number(
                "SCRAPER_RETENTION_INTERVAL", defaults.retention_interval
            ),
            min_schedule_interval=reader.duration(
                "SCRAPER_MIN_SCHEDULE_INTERVAL", defaults.min_schedule_interval
            ),
            max_schedules_per_key=reader.integer(
                "SCRAPER_MAX_SCHEDULES_PER_KEY", defaults.max_schedules_per_key, minimum=0
            ),
            request_max_size=reader.integer(
                "SCRAPER_REQUEST_MAX_SIZE", defaults.request_max_size, minimum=1024
            ),
            request_timeout=reader.number("SCRAPER_REQUEST_TIMEOUT", defaults.request_timeout),
            keep_alive_timeout=reader.number(
                "SCRAPER_KEEP_ALIVE_TIMEOUT", defaults.keep_alive_timeout
            ),
            grace_period=reader.number("SCRAPER_GRACE_PERIOD", defaults.grace_period),
            result_batch_size=reader.integer(
                "SCRAPER_RESULT_BATCH_SIZE", defaults.result_batch_size, minimum=1
            ),
            result_flush_interval=reader.number(
                "SCRAPER_RESULT_FLUSH_INTERVAL", defaults.result_flush_interval
            ),
            log_format=reader.text("SCRAPER_LOG_FORMAT", defaults.log_format),
            log_level=reader.text("SCRAPER_LOG_LEVEL", defaults.log_level).upper(),
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Combinations of settings that cannot work."""
        if self.role == "worker" and self.database_url.startswith("sqlite:"):
            raise ConfigError(
                "the worker role shares a frontier with other processes, which needs "
                "DATABASE_URL=postgresql://...; with SQLite run `python -m service` alone"
            )
        if self.role not in {"all", "web", "worker"}:
            raise ConfigError(f"SCRAPER_ROLE must be all, web or worker, not {self.role!r}")
        if self.max_result_ttl and self.result_ttl > self.max_result_ttl:
            raise ConfigError(
                "SCRAPER_RESULT_TTL must not be longer than SCRAPER_MAX_RESULT_TTL "
                f"({self.result_ttl:g}s > {self.max_result_ttl:g}s)"
            )
        if self.lease_seconds < 1.0:
            # Workers renew their leases well before expiry, on a 0.5 s tick.
            raise ConfigError(f"SCRAPER_LEASE_SECONDS must be at least 1, got {self.lease_seconds}")


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class _Reader:
    """Typed access to environment variables with errors that name the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        value = self._env.get(name, "").strip()
        return value or default

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self._env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError as exc:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from exc
        if value < 0:
            raise ConfigError(f"{name} must not be negative, got {value}")
        return value

    def duration(self, name: str, default: float) -> float:
        """Seconds, or a number with a unit: `90s`, `30m`, `12h`, `7d`; `keep`/`0` = none."""
        raw = self._env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in {"keep", "forever", "never", "off"}:
            return 0.0
        unit = _DURATION_UNITS.get(raw[-1])
        number = raw[:-1] if unit else raw
        try:
            value = float(number) * (unit or 1)
        except ValueError as exc:
            raise ConfigError(
                f"{name} must be seconds or a duration like 30m, 12h, 7d, got {raw!r}"
            ) from exc
        if value < 0 or value != value:
            raise ConfigError(f"{name} must not be negative, got {raw!r}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self._env.get(name, "").strip().lower()
        if not raw:
            return default
        if raw in {"1", "true", "yes", "on"}:
            return True
        if raw in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{name} must be 0 or 1, got {raw!r}")

    def items(self, name: str) -> tuple[str, ...]:
        raw = self._env.get(name, "")
        return tuple(item.strip() for item in raw.split(",") if item.strip())

    def networks(self, name: str) -> tuple[IPNetwork, ...]:
        try:
            return tuple(ipaddress.ip_network(item, strict=False) for item in self.items(name))
        except ValueError as exc:
            raise ConfigError(f"{name} must be comma-separated CIDR networks: {exc}") from exc
