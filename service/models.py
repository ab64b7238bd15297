"""Records at the edges: the validated job request, the job, and job statistics."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from service import jobheaders
from service.errors import ValidationFailed
from service.urls import MAX_URL_LENGTH, canonicalize_url

# `changes` (a diff against the previous version) has content only on a recrawl's results.
FORMATS = ("metadata", "text", "markdown", "links", "html", "changes")
Format = Literal["metadata", "text", "markdown", "links", "html", "changes"]
WebhookEvent = Literal[
    "job.started", "job.page", "job.completed", "job.failed", "job.cancelled", "job.changed"
]
WEBHOOK_EVENTS: tuple[str, ...] = (
    "job.started",
    "job.page",
    "job.completed",
    "job.failed",
    "job.cancelled",
    "job.changed",
)

MAX_SELECTOR_LENGTH = 500
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class Change(StrEnum):
    """How a recrawl's result compares with the previous job's (service/changes.py)."""

    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    REMOVED = "removed"


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_http_url(value: str) -> str:
    """Validate an absolute http(s) URL with a real hostname; return its canonical form."""
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    too_long = f"must be at most {MAX_URL_LENGTH} characters long"
    if len(text) > 2 * MAX_URL_LENGTH:  # not worth canonicalising to find out
        raise ValueError(too_long)
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise ValueError("must not contain whitespace or control characters")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if not scheme:
        raise ValueError("must be an absolute URL (http:// or https://)")
    if scheme not in ("http", "https"):
        raise ValueError(f"scheme {scheme!r} is not allowed; use http or https")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("URLs with embedded credentials are not accepted")
    try:
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"invalid host or port: {exc}") from None
    if not hostname:
        raise ValueError("must have a host")
    _check_hostname(hostname)
    try:
        canonical = canonicalize_url(text)
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"not a valid URL: {_shorten(str(exc))}") from None
    if len(canonical) > MAX_URL_LENGTH:
        raise ValueError(f"{too_long} (canonical form)")
    return canonical


def _check_hostname(hostname: str) -> None:
    if ":" in hostname:  # IPv6 literal; urlsplit already unbracketed it
        if "%" in hostname:
            # A zone id names an interface of *this* machine: meaningless for a crawl target.
            raise ValueError("IPv6 zone identifiers are not accepted")
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            raise ValueError(f"{_shorten(hostname)!r} is not a valid IPv6 address") from None
        return
    try:
        ascii_host = hostname.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{_shorten(hostname)!r} is not a valid hostname") from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{_shorten(hostname)!r} is not a valid hostname")
    for label in labels:
        if label.startswith("xn--"):
            # An A-label that does not decode (xn--a) can never resolve; say so now.
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError:
                raise ValueError(f"{_shorten(hostname)!r} is not a valid hostname") from None


def _shorten(text: str, limit: int = 80) -> str:
    """Echo at most `limit` characters of client input in an error message."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_pattern(pattern: str) -> str:
    """A regular expression RE2 can run (include/exclude): linear-time, compiled once."""
    from service.crawl.patterns import PatternError, compile_pattern

    try:
        compile_pattern(pattern)
    except PatternError as exc:
        raise ValueError(str(exc)) from None
    return pattern


def check_selector(value: str | SelectorObject) -> str | SelectorObject:
    """A CSS selector that soupsieve can compile."""
    import soupsieve

    css = value if isinstance(value, str) else value.css
    if not css.strip():
        raise ValueError("must be a non-empty CSS selector")
    # Matching runs in the parser processes under the parse deadline; the length bound
    # keeps compiling one (here, on the event loop) cheap.
    if len(css) > MAX_SELECTOR_LENGTH:
        raise ValueError(f"CSS selector longer than {MAX_SELECTOR_LENGTH} characters")
    try:
        soupsieve.compile(css)
    except Exception as exc:  # soupsieve raises several types for bad input
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"invalid CSS selector: {first_line}") from None
    return value


class SelectorObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    css: StrictStr
    attr: StrictStr | None = None
    all: StrictBool = True


def _default_events() -> list[WebhookEvent]:
    return ["job.completed", "job.failed", "job.cancelled"]


def _default_formats() -> list[Format]:
    return ["metadata", "text", "links"]


HeaderName = Annotated[StrictStr, AfterValidator(jobheaders.check_header_name)]
HeaderValue = Annotated[StrictStr, AfterValidator(jobheaders.check_header_value)]
CookieName = Annotated[StrictStr, AfterValidator(jobheaders.check_cookie_name)]
CookieValue = Annotated[StrictStr, AfterValidator(jobheaders.check_cookie_value)]


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: StrictStr
    events: list[WebhookEvent] = Field(default_factory=_default_events)
    page_batch_size: StrictInt = Field(default=50, ge=1, le=1000)
    # Jobs submitted through /v2 get Firecrawl-shaped bodies (service.webhooks.firecrawl).
    format: Literal["trawl", "firecrawl.crawl", "firecrawl.batch_scrape"] = Field(
        default="trawl", description="Body shape: Trawl's events, or Firecrawl's"
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="Echoed in every Firecrawl-format body"
    )
    headers: dict[HeaderName, HeaderValue] | None = Field(
        default=None, description="Sent with every delivery; shown redacted"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)


def _selector_kind(value: Any) -> str:
    return "string" if isinstance(value, str) else "object"


HttpUrl = Annotated[
    StrictStr,
    AfterValidator(check_http_url),
    Field(json_schema_extra={"format": "uri", "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://"}),
]
Pattern = Annotated[StrictStr, AfterValidator(check_pattern), Field(max_length=1000)]
SelectorName = Annotated[StrictStr, Field(min_length=1, max_length=100)]
# One branch is chosen by the value's type, so a bad value gets one clear error, not one
# per union member.
Selector = Annotated[
    Annotated[StrictStr, Tag("string")] | Annotated[SelectorObject, Tag("object")],
    Discriminator(_selector_kind),
    AfterValidator(check_selector),
]


class JobRequest(BaseModel):
    """The body of `POST /v1/jobs`, validated and normalised."""

    model_config = ConfigDict(extra="forbid")

    # The count is checked against the server's cap in `_url_count` (1000 by default).
    urls: list[HttpUrl] = Field(
        min_length=1,
        json_schema_extra={"maxItems": 1000},
        description="Seed URLs: absolute http(s), no credentials. `url` is a one-URL shorthand.",
    )
    max_depth: StrictInt = Field(
        default=0, ge=0, description="Link hops to follow from a seed; 0 fetches only the seeds"
    )
    # validate_default: the echoed request shows the max_pages actually applied.
    max_pages: StrictInt | None = Field(
        default=None,
        ge=1,
        validate_default=True,
        description="Most pages fetched for the job (default and cap set by the server)",
    )
    scope: Literal["same-host", "same-domain", "any"] = Field(
        default="same-host", description="Which discovered links may be followed"
    )
    include: list[Pattern] = Field(
        default_factory=list,
        max_length=100,
        description="Follow only URLs matching one of these regular expressions",
    )
    exclude: list[Pattern] = Field(
        default_factory=list,
        max_length=100,
        description="Never follow URLs matching one of these regular expressions",
    )
    formats: list[Format] = Field(
        default_factory=_default_formats, description="What each result includes"
    )
    selectors: dict[SelectorName, Selector] = Field(
        default_factory=dict,
        max_length=50,
        description="`{name: css}`: each result's `data.name` lists the matched texts",
    )
    respect_robots: StrictBool = Field(default=True, description="Obey robots.txt")
    webhook: Webhook | None = Field(default=None, description="Where to POST job events")
    # Options beyond the fixed contract.
    only_main_content: StrictBool = Field(
        default=False, description="Text and markdown from the main content only"
    )
    respect_nofollow: StrictBool = Field(default=False, description='Skip rel="nofollow" links')
    follow_non_html: StrictBool = Field(
        default=False, description="Also follow links that look like files (pdf, zip, ...)"
    )
    use_sitemap: StrictBool = Field(default=False, description="Also seed from sitemap.xml")
    per_host_concurrency: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None, description="Most simultaneous requests to one host (server cap applies)"
    )
    # StrictFloat takes ints too, and no union means no member name in error paths.
    per_host_delay: Annotated[StrictFloat, Field(ge=0, le=60)] | None = Field(
        default=None, description="Seconds between requests to one host"
    )
    adaptive_delay: StrictBool = Field(
        default=False,
        description=(
            "Adapt each host's delay to its latency and back off on 429/503 and errors "
            "(like Scrapy's AutoThrottle), never below `per_host_delay` nor above 60 s"
        ),
    )
    max_retries: Annotated[StrictInt, Field(ge=0, le=10)] | None = Field(
        default=None, description="Retries of a transient failure"
    )
    priority: Literal["low", "normal", "high"] = Field(
        default="normal",
        description=(
            "Share of the fetches among jobs waiting on the same host (weights 1:4:16 for "
            "low:normal:high, within the host's politeness); `high` also starts first among "
            "hosts ready at once. A key's active `high` jobs "
            "beyond a server-set number run as `normal`."
        ),
    )
    retention: Annotated[StrictInt, Field(ge=1)] | None = Field(
        default=None,
        description=(
            "Seconds to keep the job and its results once it has ended (within the "
            "server's SCRAPER_MAX_RESULT_TTL); default: the server's SCRAPER_RESULT_TTL"
        ),
    )

    headers: dict[HeaderName, HeaderValue] | None = Field(
        default=None,
        description=(
            "Request headers sent to the seed URLs' origins only (never to other origins a "
            "redirect or link leads to); values are shown redacted. Hop-by-hop headers, Host "
            "and Content-Length are refused"
        ),
        json_schema_extra={"maxProperties": jobheaders.MAX_HEADERS},
    )
    cookies: dict[CookieName, CookieValue] | None = Field(
        default=None,
        description="Cookies sent like `headers` (one Cookie header); values shown redacted",
        json_schema_extra={"maxProperties": jobheaders.MAX_COOKIES},
    )

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return jobheaders.check_headers(value)

    @field_validator("cookies")
    @classmethod
    def _cookies(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return jobheaders.check_cookies(value)

    @model_validator(mode="before")
    @classmethod
    def _url_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            data = dict(data)
            single = data.pop("url")
            if "urls" in data:
                raise PydanticCustomError(
                    "url_and_urls", "give either 'url' or 'urls', not both", {"field": "url"}
                )
            data["urls"] = [single]
        return data

    @field_validator("urls", mode="before")
    @classmethod
    def _url_count(cls, value: Any, info: ValidationInfo) -> Any:
        # Checked before the items, so 100,000 URLs are refused without parsing each one.
        limit = _context(info, "max_urls_per_job", 1000)
        if isinstance(value, list) and len(value) > limit:
            raise ValueError(f"at most {limit} URLs per job, got {len(value)}")
        return value

    @field_validator("urls")
    @classmethod
    def _dedupe(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("max_pages")
    @classmethod
    def _max_pages(cls, value: int | None, info: ValidationInfo) -> int:
        cap = _context(info, "max_pages_cap", 100_000)
        if value is None:
            value = _context(info, "default_max_pages", 100)
        if value > cap:
            raise ValueError(f"must be at most {cap} (server cap)")
        return value

    @field_validator("max_depth")
    @classmethod
    def _max_depth(cls, value: int, info: ValidationInfo) -> int:
        cap = _context(info, "max_depth_cap", 100)
        if value > cap:
            raise ValueError(f"must be at most {cap} (server cap)")
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        return [fmt for fmt in FORMATS if fmt in value]

    @field_validator("retention")
    @classmethod
    def _retention(cls, value: int | None, info: ValidationInfo) -> int | None:
        bound = _context(info, "max_result_ttl", 0)
        if value is not None and bound and value > bound:
            raise ValueError(f"must be at most {bound} seconds (server bound)")
        return value

    @field_validator("per_host_concurrency")
    @classmethod
    def _per_host(cls, value: int | None, info: ValidationInfo) -> int | None:
        cap = _context(info, "per_host_concurrency_cap", 16)
        if value is not None and value > cap:
            raise ValueError(f"must be at most {cap} (server cap)")
        return value

    def normalised(self) -> dict[str, Any]:
        """The request as stored and echoed back on the job."""
        return self.model_dump(mode="json")


def _context(info: ValidationInfo, key: str, default: int) -> int:
    context = info.context or {}
    return int(context.get(key, default))


def parse_job_request(payload: Any, context: dict[str, Any]) -> JobRequest:
    """Validate a request body; every problem becomes one entry of a 422."""
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "The request body must be a JSON object.",
            errors=[{"field": "body", "message": "must be a JSON object"}],
        )
    try:
        return JobRequest.model_validate(payload, context=context)
    except ValidationError as exc:
        errors = [_describe(error) for error in exc.errors()]
        if "url" in payload and "urls" not in payload:
            # The client sent the shorthand: name what they sent, not what it became.
            for error in errors:
                error["field"] = re.sub(r"^urls(\[0\])?", "url", error["field"])
        fields = ", ".join(dict.fromkeys(error["field"] for error in errors))
        raise ValidationFailed(f"Invalid request: {fields}", errors=errors) from None


# Friendlier words for pydantic's messages where the default reads oddly to API users.
_MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "required",
    "model_attributes_type": "must be an object",
    "model_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be an array",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
}


def describe_errors(exc: ValidationError) -> list[dict[str, str]]:
    """A pydantic ValidationError as the `errors` of a 422 (for other request models)."""
    return [_describe(error) for error in exc.errors()]


def _describe(error: Any) -> dict[str, str]:
    """One pydantic error as `{field, message}`, the field written like `urls[2]`."""
    loc = list(error["loc"])
    if error["type"] == "url_and_urls":
        loc = ["url"]
    elif loc[:1] == ["selectors"] and len(loc) >= 3 and loc[2] in ("string", "object", "[key]"):
        # The branch tag (or pydantic's key marker) sits right after the selector's name.
        del loc[2]
    # pydantic marks an invalid dict key (a header name) with "[key]" after the key.
    loc = [part for part in loc if part != "[key]"]
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not path:
            path = str(part)
        elif re.fullmatch(r"[A-Za-z0-9_-]+", str(part)):
            path += f".{part}"
        else:
            path += f"[{json.dumps(str(part))}]"
    message = _MESSAGES.get(error["type"]) or str(error["msg"])
    message = message.removeprefix("Value error, ")
    if error["type"] == "model_type" and loc[:1] == ["selectors"]:
        message = "must be a CSS selector string or an object {css, attr, all}"
    return {"field": path or "body", "message": message}


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangeCounts:
    """A recrawl's results by `change`."""

    new: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0

    @property
    def found_changes(self) -> bool:
        """Anything a watcher is told about (job.changed): new, changed or removed pages."""
        return bool(self.new or self.changed or self.removed)

    def as_dict(self) -> dict[str, int]:
        return {
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "removed": self.removed,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStats:
    pages_discovered: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0
    changes: ChangeCounts | None = None  # a recrawl's; None for other jobs

    @property
    def pages_queued(self) -> int:
        return max(
            0, self.pages_discovered - self.pages_fetched - self.pages_failed - self.pages_skipped
        )

    def as_dict(self) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "pages_discovered": self.pages_discovered,
            "pages_queued": self.pages_queued,
            "pages_fetched": self.pages_fetched,
            "pages_failed": self.pages_failed,
            "pages_skipped": self.pages_skipped,
        }
        if self.changes is not None:
            stats["changes"] = self.changes.as_dict()
        return stats


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    id: str
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    request: dict[str, Any]
    stats: JobStats = field(default_factory=JobStats)
    error: dict[str, Any] | None = None
    owner: str | None = None
    seq: int = 0
    recrawl_of: str | None = None  # the job this one recrawls

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "created_at": rfc3339(self.created_at),
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "request": jobheaders.redact(self.request),
            "stats": self.stats.as_dict(),
            "error": self.error,
            "recrawl_of": self.recrawl_of,
        }
