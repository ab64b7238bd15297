"""Response schemas, for the OpenAPI document only (responses are built directly)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class Stats(BaseModel):
    pages_discovered: int
    pages_queued: int
    pages_fetched: int
    pages_failed: int
    pages_skipped: int


class JobOut(BaseModel):
    id: str
    status: Literal["queued", "running", "completed", "failed", "cancelled"]
    created_at: str
    started_at: str | None
    finished_at: str | None
    request: dict[str, Any]
    stats: Stats
    error: dict[str, Any] | None


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class PageError(BaseModel):
    code: str
    message: str


class PageOut(BaseModel):
    url: str
    final_url: str | None
    depth: int
    status_code: int | None
    content_type: str | None
    fetched_at: str
    elapsed_ms: float | None
    size: int | None = None
    attempts: int = 1
    title: str | None = None
    text: str | None = None
    markdown: str | None = None
    html: str | None = None
    links: list[str] | None = None
    metadata: dict[str, str] | None = None
    data: dict[str, list[str]] | None = None
    error: PageError | None


class PageList(BaseModel):
    items: list[PageOut]
    next_cursor: str | None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: Literal["ok"]
