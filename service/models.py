"""Records at the edges: the validated job request, the job, and job statistics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.errors import ValidationFailed
from service.urls import canonicalize_url

FORMATS = ("metadata", "text", "markdown", "links", "html")
Format = Literal["metadata", "text", "markdown", "links", "html"]
WebhookEvent = Literal["job.started", "job.page", "job.completed", "job.failed", "job.cancelled"]
WEBHOOK_EVENTS: tuple[str, ...] = (
    "job.started",
    "job.page",
    "job.completed",
    "job.failed",
    "job.cancelled",
)

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
        return canonicalize_url(text)
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"not a valid URL: {exc}") from None


def _check_hostname(hostname: str) -> None:
    if ":" in hostname:  # IPv6 literal; urlsplit already unbracketed it
        import ipaddress

        try:
            ipaddress.IPv6Address(hostname.split("%", 1)[0])
        except ValueError:
            raise ValueError(f"{hostname!r} is not a valid IPv6 address") from None
        return
    try:
        ascii_host = hostname.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{hostname!r} is not a valid hostname") from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"{hostname!r} is not a valid hostname")


class SelectorObject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    css: StrictStr
    attr: StrictStr | None = None
    all: StrictBool = True


class Webhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: StrictStr
    events: list[WebhookEvent] = Field(
        default_factory=lambda: ["job.completed", "job.failed", "job.cancelled"]
    )
    page_batch_size: StrictInt = Field(default=50, ge=1, le=1000)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_http_url(value)


class JobRequest(BaseModel):
    """The body of `POST /v1/jobs`, validated and normalised."""

    model_config = ConfigDict(extra="forbid")

    urls: list[StrictStr] = Field(min_length=1)
    max_depth: StrictInt = Field(default=0, ge=0)
    # validate_default: the default (None) is replaced by the server's default_max_pages.
    max_pages: StrictInt | None = Field(default=None, ge=1, validate_default=True)
    scope: Literal["same-host", "same-domain", "any"] = "same-host"
    include: list[StrictStr] = Field(default_factory=list, max_length=100)
    exclude: list[StrictStr] = Field(default_factory=list, max_length=100)
    formats: list[Format] = Field(default_factory=lambda: ["metadata", "text", "links"])
    selectors: dict[StrictStr, StrictStr | SelectorObject] = Field(
        default_factory=dict, max_length=50
    )
    respect_robots: StrictBool = True
    webhook: Webhook | None = None
    # Options beyond the fixed contract.
    only_main_content: StrictBool = False
    respect_nofollow: StrictBool = False
    follow_non_html: StrictBool = False
    use_sitemap: StrictBool = False
    per_host_concurrency: Annotated[StrictInt, Field(ge=1)] | None = None
    per_host_delay: Annotated[StrictFloat | StrictInt, Field(ge=0, le=60)] | None = None
    max_retries: Annotated[StrictInt, Field(ge=0, le=10)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _url_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "url" in data:
            data = dict(data)
            single = data.pop("url")
            if "urls" in data:
                raise ValueError("give either 'url' or 'urls', not both")
            data["urls"] = [single]
        return data

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str], info: ValidationInfo) -> list[str]:
        limit = _context(info, "max_urls_per_job", 1000)
        if len(value) > limit:
            raise ValueError(f"at most {limit} URLs per job, got {len(value)}")
        seen: dict[str, None] = {}
        for url in value:
            seen[check_http_url(url)] = None
        return list(seen)

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

    @field_validator("include", "exclude")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        for index, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"item {index}: invalid regular expression: {exc}") from None
        return value

    @field_validator("formats")
    @classmethod
    def _formats(cls, value: list[str]) -> list[str]:
        return [fmt for fmt in FORMATS if fmt in value]

    @field_validator("selectors")
    @classmethod
    def _selectors(cls, value: dict[str, str | SelectorObject]) -> dict[str, str | SelectorObject]:
        import soupsieve

        for name, spec in value.items():
            css = spec if isinstance(spec, str) else spec.css
            if not name or not css.strip():
                raise ValueError(f"selector {name!r} must have a name and a CSS selector")
            try:
                soupsieve.compile(css)
            except Exception as exc:  # soupsieve raises several types for bad input
                raise ValueError(f"selector {name!r}: invalid CSS selector: {exc}") from None
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
        fields = ", ".join(dict.fromkeys(error["field"] for error in errors))
        raise ValidationFailed(f"Invalid request: {fields}", errors=errors) from None


def _describe(error: Any) -> dict[str, str]:
    loc = [part for part in error["loc"] if not (isinstance(part, str) and part[:1].isupper())]
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in {"str", "SelectorObject", "function-after[_url(), str]"}:
            continue
        else:
            path += f".{part}" if path else str(part)
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return {"field": path or "body", "message": message}


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStats:
    pages_discovered: int = 0
    pages_fetched: int = 0
    pages_failed: int = 0
    pages_skipped: int = 0

    @property
    def pages_queued(self) -> int:
        return max(
            0, self.pages_discovered - self.pages_fetched - self.pages_failed - self.pages_skipped
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "pages_discovered": self.pages_discovered,
            "pages_queued": self.pages_queued,
            "pages_fetched": self.pages_fetched,
            "pages_failed": self.pages_failed,
            "pages_skipped": self.pages_skipped,
        }


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "created_at": rfc3339(self.created_at),
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "request": self.request,
            "stats": self.stats.as_dict(),
            "error": self.error,
        }
