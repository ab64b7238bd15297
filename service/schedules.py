"""Schedules: a job request run again on a cron expression or a fixed interval.

    POST /v1/schedules {"job": {...}, "cron": "0 6 * * *" | "every": "6h", "timezone": ...}

This module holds the records (`Schedule`, `ScheduleRun`), when a schedule is due
(`Timing.next_after`) and the validation of create and patch bodies. The store keeps them
(store/schedules.py); the ticker fires them (ticker.py).

When a schedule is due:

- `cron`: five fields (minute hour day month weekday) or a macro (`@daily`, ...), read by
  croniter in the schedule's time zone (zoneinfo). Across daylight-saving changes a
  fixed time of day is kept in local time: a time that does not exist (02:30 on the
  spring-forward night) fires at the change, and a time that occurs twice (02:30 on the
  fall-back night) fires once, the first time. Expressions whose hour field is a
  wildcard (`*/30 * * * *`) fire in real time through both changes, as Vixie cron does.
- `every`: elapsed time (`30m`, `6h`, `1d`) from the moment it was created or its
  interval last changed; the first run is at once. The time zone does not move it.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from service import jobheaders
from service.errors import ValidationFailed
from service.models import JobRequest, parse_job_request, rfc3339

# Ticks looked at to find the shortest gap of a cron expression (against the minimum).
_GAP_SAMPLE = 60
# Ticks counted at most as "missed" by a catch-up run (the count is informative).
MISSED_COUNT_CAP = 1000
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_NAME_MAX = 200
# A real cron line is a few dozen characters; a longer one is a hostile input whose
# croniter error message (the whole expanded field) we would echo back.
_CRON_MAX = 200
_FIELDS = {"job", "cron", "every", "timezone", "name", "paused"}

# Why a run did not start a job (a run's `reason`).
PREVIOUS_RUN_ACTIVE = "previous_run_active"
OVERLOADED = "overloaded"
INVALID_REQUEST = "invalid_request"


class RunState:
    """What became of a tick (stored in schedule_runs.state)."""

    PENDING = "pending"  # claimed; its job is being created
    STARTED = "started"  # a job was created: its status says the rest
    SKIPPED = "skipped"  # on purpose (the previous run still runs, backlog full)
    FAILED = "failed"  # the job could not be created


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `30m`, `6h`, `1d`, `1h30m`; ValueError if it is not one."""
    raw = text.strip().lower()
    if not raw:
        raise ValueError("empty")
    position = 0
    total = 0.0
    for match in _DURATION.finditer(raw):
        if raw[position : match.start()].strip():
            raise ValueError(raw)
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position == 0 or raw[position:].strip():
        raise ValueError(raw)
    return total


def format_duration(seconds: float) -> str:
    """The shortest `Nd`/`Nh`/`Nm`/`Ns` spelling of a whole number of seconds."""
    whole = round(seconds)
    for unit in ("d", "h", "m"):
        if whole and whole % _UNITS[unit] == 0:
            return f"{whole // _UNITS[unit]}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """When a schedule is due: a cron expression in a zone, or an interval from an anchor."""

    cron: str | None = None
    every: float | None = None  # seconds
    timezone: str = "UTC"
    anchor: float = 0.0  # epoch seconds; interval ticks are anchor + k * every

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_after(self, moment: float) -> float:
        """The first tick strictly after `moment` (epoch seconds)."""
        if self.every is not None:
            if moment < self.anchor:
                return self.anchor
            steps = math.floor((moment - self.anchor) / self.every) + 1
            return self.anchor + steps * self.every
        return next(self._cron_ticks(moment))

    def next_or_none(self, moment: float) -> float | None:
        """`next_after`, or None when no date matches any more (a cron's last run)."""
        try:
            return self.next_after(moment)
        except (CroniterError, StopIteration):
            return None

    def first_tick(self, now: float) -> float | None:
        """The first run of a new (or resumed, or retimed) schedule (None: never)."""
        if self.every is not None and self.anchor >= now:
            return self.anchor
        return self.next_or_none(now)

    def ticks_between(self, after: float, until: float, cap: int = MISSED_COUNT_CAP) -> int:
        """How many ticks fall in (after, until], at most `cap`."""
        if until <= after:
            return 0
        if self.every is not None:
            passed = math.floor((until - self.anchor) / self.every)
            before = math.floor((after - self.anchor) / self.every)
            return max(0, min(cap, passed - max(before, -1)))
        count = 0
        for tick in self._cron_ticks(after):
            if tick > until or count >= cap:
                break
            count += 1
        return count

    def _cron_ticks(self, moment: float) -> Iterator[float]:
        assert self.cron is not None
        zone = self.zone
        wall_clock = not _hour_is_wildcard(self.cron)
        ticks = croniter(self.cron, datetime.fromtimestamp(moment, zone))
        while True:
            tick: datetime = ticks.get_next(datetime)
            stamp = float(tick.timestamp())
            if stamp <= moment:
                continue
            if wall_clock and tick.fold == 1 and _repeated(tick, zone):
                continue  # the second pass of a wall time that fell back: it fired already
            yield stamp

    def as_dict(self) -> dict[str, Any]:
        return {
            "cron": self.cron,
            "every": format_duration(self.every) if self.every is not None else None,
            "every_seconds": self.every,
            "timezone": self.timezone,
        }


def _hour_is_wildcard(expression: str) -> bool:
    fields = expression.split()
    if len(fields) < 2:
        return expression.strip().lower() == "@hourly"
    return fields[1].startswith("*")


def _repeated(tick: datetime, zone: ZoneInfo) -> bool:
    """Whether this wall time also occurred an hour earlier (fold 0 differs from fold 1)."""
    naive = tick.replace(tzinfo=None)
    first = naive.replace(fold=0, tzinfo=zone)
    return first.utcoffset() != tick.utcoffset()


def _moment(value: float | None) -> str | None:
    return rfc3339(datetime.fromtimestamp(value, UTC)) if value is not None else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleRun:
    """One tick a schedule fired for: the job it started, or why it did not."""

    id: int
    schedule_id: str
    tick_at: float
    fired_at: float
    state: str
    job_id: str | None = None
    reason: str | None = None
    missed: int = 0

    @classmethod
    def from_row(cls, row: Any) -> ScheduleRun:
        schedule_id, run_id, tick_at, fired_at, state, job_id, reason, missed = tuple(row)[:8]
        return cls(
            id=int(run_id),
            schedule_id=schedule_id,
            tick_at=float(tick_at),
            fired_at=float(fired_at),
            state=state,
            job_id=job_id,
            reason=reason,
            missed=int(missed or 0),
        )

    def as_dict(self, job: dict[str, Any] | None = None) -> dict[str, Any]:
        """The run as the API shows it; `job` is its job's JSON (status, stats) if known."""
        stats = job.get("stats") if job else None
        status = job.get("status") if job else None
        return {
            "tick_at": _moment(self.tick_at),
            "fired_at": _moment(self.fired_at),
            # "skipped", "failed", "pending", or the job's own status once it exists.
            "status": status if self.state == RunState.STARTED and status else self.state,
            "job_id": self.job_id,
            "reason": self.reason,
            "missed": self.missed,
            "stats": stats,
            "changes": change_counts(stats),
        }


# Job stats that count a recrawl's pages by `change` (service/recrawl*), as run counts.
CHANGE_KINDS = ("new", "changed", "unchanged", "removed")


def change_counts(stats: dict[str, Any] | None) -> dict[str, int] | None:
    """`{new, changed, unchanged, removed}` from a job's stats, or None for a plain job."""
    if not stats:
        return None
    nested = stats.get("changes")
    if isinstance(nested, dict):
        return {kind: int(nested.get(kind) or 0) for kind in CHANGE_KINDS}
    found = {kind: stats.get(f"pages_{kind}") for kind in CHANGE_KINDS}
    if all(value is None for value in found.values()):
        return None
    return {kind: int(value or 0) for kind, value in found.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A stored schedule (the `schedules` row)."""

    id: str
    seq: int = 0
    owner: str = ""
    name: str | None = None
    request: dict[str, Any] = field(default_factory=dict)  # the normalised job request
    timing: Timing
    paused: bool = False
    next_run_at: float | None = None
    last_run_at: float | None = None
    last_job_id: str | None = None  # the job the last run started
    base_job_id: str | None = None  # the job the next run recrawls (None: a plain job)
    created_at: float = 0.0
    updated_at: float = 0.0

    @classmethod
    def from_row(cls, row: Any) -> Schedule:
        (
            seq,
            schedule_id,
            owner,
            name,
            request,
            cron,
            every,
            zone,
            paused,
            anchor,
            next_run_at,
            last_run_at,
            last_job_id,
            base_job_id,
            created_at,
            updated_at,
        ) = tuple(row)[:16]
        return cls(
            id=schedule_id,
            seq=int(seq),
            owner=owner or "",
            name=name,
            request=json.loads(request),
            timing=Timing(
                cron=cron,
                every=float(every) if every is not None else None,
                timezone=zone,
                anchor=float(anchor),
            ),
            paused=bool(paused),
            next_run_at=float(next_run_at) if next_run_at is not None else None,
            last_run_at=float(last_run_at) if last_run_at is not None else None,
            last_job_id=last_job_id,
            base_job_id=base_job_id,
            created_at=float(created_at),
            updated_at=float(updated_at),
        )

    def as_dict(
        self, runs: Sequence[ScheduleRun] = (), jobs: dict[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The schedule as every schedule route returns it, with its recent runs."""
        jobs = jobs or {}
        return {
            "id": self.id,
            "name": self.name,
            "job": jobheaders.redact(self.request),
            **self.timing.as_dict(),
            "paused": self.paused,
            "next_run_at": _moment(self.next_run_at),
            "last_run_at": _moment(self.last_run_at),
            "last_job_id": self.last_job_id,
            "created_at": _moment(self.created_at),
            "updated_at": _moment(self.updated_at),
            "runs": [run.as_dict(jobs.get(run.job_id or "")) for run in runs],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleLimits:
    """The server's bounds on schedules (settings) and on their job requests."""

    min_interval: float  # seconds between two ticks, at least
    job_limits: dict[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleInput:
    """A validated create or patch body: the fields it sets (None: not given)."""

    job: JobRequest | None = None
    cron: str | None = None
    every: float | None = None
    timezone: str | None = None
    name: str | None = None
    name_given: bool = False
    paused: bool | None = None

    @property
    def retimed(self) -> bool:
        return self.cron is not None or self.every is not None or self.timezone is not None


class _Errors:
    """Field errors collected over a whole body, raised as one 422."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field_name: str, message: str) -> None:
        self.items.append({"field": field_name, "message": message})

    def raise_any(self) -> None:
        if self.items:
            fields = ", ".join(dict.fromkeys(item["field"] for item in self.items))
            raise ValidationFailed(f"Invalid schedule: {fields}", errors=self.items)


def parse_schedule(payload: Any, limits: ScheduleLimits, *, patch: bool = False) -> ScheduleInput:
    """Validate a POST (or, with `patch`, a PATCH) body; every problem is one 422 entry."""
    errors = _Errors()
    if not isinstance(payload, dict):
        errors.add("body", "must be a JSON object")
        errors.raise_any()
    for key in payload:
        if key not in _FIELDS:
            errors.add(str(key), "unknown field")
    job = None
    if "job" in payload:
        job = _job(payload["job"], limits, errors)
    elif not patch:
        errors.add("job", "required")
    cron = _cron(payload["cron"], errors) if payload.get("cron") is not None else None
    every = _every(payload["every"], limits, errors) if payload.get("every") is not None else None
    given = [name for name in ("cron", "every") if payload.get(name) is not None]
    if len(given) == 2:
        errors.add("cron", "give either cron or every, not both")
        errors.add("every", "give either cron or every, not both")
    elif not given and not patch:
        errors.add("cron", "give either cron (a cron expression) or every (like 6h)")
    zone = None
    if "timezone" in payload:
        zone = _timezone(payload["timezone"], errors)
    name = None
    if payload.get("name") is not None:
        raw = payload["name"]
        if not isinstance(raw, str):
            errors.add("name", "must be a string")
        elif len(raw) > _NAME_MAX:
            errors.add("name", f"must be at most {_NAME_MAX} characters")
        else:
            name = raw.strip() or None
    paused = payload.get("paused")
    if paused is not None and not isinstance(paused, bool):
        errors.add("paused", "must be true or false")
    errors.raise_any()
    if cron is not None:
        _check_cron_gap(cron, zone or "UTC", limits, errors)
    errors.raise_any()
    return ScheduleInput(
        job=job,
        cron=cron,
        every=every,
        timezone=zone,
        name=name,
        name_given="name" in payload,
        paused=paused,
    )


def _job(raw: Any, limits: ScheduleLimits, errors: _Errors) -> JobRequest | None:
    if not isinstance(raw, dict):
        errors.add("job", "must be an object (a job request, as POST /v1/jobs takes)")
        return None
    try:
        return parse_job_request(raw, limits.job_limits)
    except ValidationFailed as exc:
        for item in exc.errors or [{"field": "", "message": exc.message}]:
            inner = item.get("field") or ""
            errors.add(f"job.{inner}" if inner else "job", str(item.get("message")))
        return None


def _cron(raw: Any, errors: _Errors) -> str | None:
    if not isinstance(raw, str):
        errors.add("cron", "must be a string")
        return None
    if len(raw) > _CRON_MAX:
        errors.add("cron", f"must be at most {_CRON_MAX} characters")
        return None
    expression = " ".join(raw.split())
    if expression.lower() in _MACROS:
        return expression.lower()
    if len(expression.split()) != 5:
        errors.add(
            "cron", "must have 5 fields (minute hour day-of-month month day-of-week) or be @daily"
        )
        return None
    try:
        croniter(expression)
    except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
        errors.add("cron", f"not a valid cron expression: {exc}")
        return None
    return expression


def _check_cron_gap(cron: str, zone: str, limits: ScheduleLimits, errors: _Errors) -> None:
    """A cron expression must fire, and never more often than the server's minimum."""
    timing = Timing(cron=cron, timezone=zone)
    now = datetime.now(UTC).timestamp()
    try:
        previous = timing.next_after(now)
        shortest = math.inf
        for _ in range(_GAP_SAMPLE):
            tick = timing.next_after(previous)
            shortest = min(shortest, tick - previous)
            previous = tick
    except (CroniterBadDateError, CroniterError, StopIteration):
        errors.add("cron", "never fires (no such date)")
        return
    if shortest < limits.min_interval:
        errors.add(
            "cron",
            f"fires every {format_duration(shortest)}; the server's minimum interval is "
            f"{format_duration(limits.min_interval)} (SCRAPER_MIN_SCHEDULE_INTERVAL)",
        )


def _every(raw: Any, limits: ScheduleLimits, errors: _Errors) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        errors.add("every", "must be a duration like 30m, 6h or 1d (or whole seconds)")
        return None
    try:
        seconds = float(raw) if isinstance(raw, int) else parse_duration(raw)
    except ValueError:
        errors.add("every", "must be a duration like 30m, 6h or 1d (or whole seconds)")
        return None
    problem = check_interval(seconds, limits)
    if problem is not None:
        errors.add("every", problem)
        return None
    return seconds


def check_interval(every: float, limits: ScheduleLimits) -> str | None:
    """The problem with an interval against the server's minimum, or None."""
    if every < limits.min_interval:
        return (
            f"must be at least {format_duration(limits.min_interval)} "
            "(the server's SCRAPER_MIN_SCHEDULE_INTERVAL)"
        )
    if every > 366 * 86400:
        return "must be at most 366d"
    return None


@functools.cache
def _zone_names() -> frozenset[str]:
    """The IANA zone names this server knows (the system's database, else tzdata's)."""
    return frozenset(available_timezones())


def _timezone(raw: Any, errors: _Errors) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        errors.add("timezone", "must be an IANA time zone name like Europe/Paris")
        return None
    name = raw.strip()
    try:
        # Only IANA names: ZoneInfo alone would also open other files of the zone folder
        # (`posixrules`) or the server's own `localtime`.
        if name not in _zone_names() or name == "localtime":
            raise ZoneInfoNotFoundError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        errors.add("timezone", f"unknown time zone {name[:64]!r} (IANA names like Europe/Paris)")
        return None
    return name
