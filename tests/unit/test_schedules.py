"""When schedules are due (croniter + zoneinfo, across DST changes) and how bodies validate."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.errors import ValidationFailed
from service.schedules import (
    ScheduleLimits,
    Timing,
    change_counts,
    format_duration,
    parse_duration,
    parse_schedule,
)

LIMITS = ScheduleLimits(
    min_interval=60.0,
    job_limits={
        "max_urls_per_job": 1000,
        "max_pages_cap": 1000,
        "max_depth_cap": 10,
        "default_max_pages": 100,
        "per_host_concurrency_cap": 16,
        "max_result_ttl": 0,
    },
)
JOB = {"url": "https://example.com/"}


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


def shown(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M")


def ticks(timing: Timing, start: float, count: int) -> list[str]:
    out = []
    moment = start
    for _ in range(count):
        moment = timing.next_after(moment)
        out.append(shown(moment))
    return out


def test_a_daily_time_stays_at_local_time_across_spring_forward() -> None:
    timing = Timing(cron="0 6 * * *", timezone="Europe/Paris")
    # Paris moves from UTC+1 to UTC+2 on 2027-03-28.
    assert ticks(timing, utc(2027, 3, 26, 12), 3) == [
        "2027-03-27 05:00",
        "2027-03-28 04:00",
        "2027-03-29 04:00",
    ]


def test_a_time_that_does_not_exist_fires_at_the_change() -> None:
    timing = Timing(cron="30 2 * * *", timezone="Europe/Paris")
    # 02:30 does not exist on 2027-03-28 (02:00 -> 03:00 CEST = 01:00 UTC).
    assert ticks(timing, utc(2027, 3, 26, 12), 3) == [
        "2027-03-27 01:30",
        "2027-03-28 01:00",
        "2027-03-29 00:30",
    ]


def test_a_time_that_occurs_twice_fires_once() -> None:
    timing = Timing(cron="30 2 * * *", timezone="Europe/Paris")
    # 02:30 occurs twice on 2027-10-31 (00:30 and 01:30 UTC): only the first fires.
    assert ticks(timing, utc(2027, 10, 29, 12), 3) == [
        "2027-10-30 00:30",
        "2027-10-31 00:30",
        "2027-11-01 01:30",
    ]


def test_a_wildcard_hour_fires_in_real_time_through_fall_back() -> None:
    timing = Timing(cron="0 * * * *", timezone="Europe/Paris")
    # 23:00 UTC on the 30th is 01:00 CEST; the hour 02:xx happens twice, both fire.
    assert ticks(timing, utc(2027, 10, 30, 22, 30), 4) == [
        "2027-10-30 23:00",
        "2027-10-31 00:00",
        "2027-10-31 01:00",
        "2027-10-31 02:00",
    ]


def test_cron_in_new_york_is_read_in_new_york() -> None:
    timing = Timing(cron="0 9 * * 1-5", timezone="America/New_York")
    # Friday 2027-01-01 12:00 UTC is 07:00 EST: next 09:00 EST = 14:00 UTC, then Monday.
    assert ticks(timing, utc(2027, 1, 1, 12), 2) == ["2027-01-01 14:00", "2027-01-04 14:00"]


def test_intervals_count_from_their_anchor() -> None:
    anchor = utc(2027, 1, 1)
    timing = Timing(every=6 * 3600.0, anchor=anchor)
    assert timing.first_tick(anchor) == anchor  # the first run is at once
    assert timing.next_after(anchor) == anchor + 6 * 3600
    assert timing.next_after(anchor + 7 * 3600) == anchor + 12 * 3600
    # Ticks passed over in (after, until]: 6h, 12h, 18h.
    assert timing.ticks_between(anchor, anchor + 19 * 3600) == 3
    assert timing.ticks_between(anchor, anchor + 100) == 0


def test_cron_ticks_between_counts_and_is_capped() -> None:
    timing = Timing(cron="0 * * * *")
    start = utc(2027, 1, 1)
    assert timing.ticks_between(start, start + 5 * 3600) == 5
    assert timing.ticks_between(start, start + 5000 * 3600, cap=100) == 100


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m", 1800), ("6h", 21600), ("1d", 86400), ("90s", 90), ("1h30m", 5400), ("1.5h", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "6", "6x", "h", "6h x", "-1h", "1h-", "6 hours"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_durations_are_shown_in_their_largest_unit() -> None:
    assert [format_duration(s) for s in (86400, 21600, 1800, 90, 5400)] == [
        "1d",
        "6h",
        "30m",
        "90s",
        "90m",
    ]


def fields_of(payload: Any, *, patch: bool = False) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_schedule(payload, LIMITS, patch=patch)
    return [error["field"] for error in caught.value.errors or []]


def test_valid_bodies() -> None:
    value = parse_schedule({"job": JOB, "cron": "0  6 * * *", "timezone": "Europe/Paris"}, LIMITS)
    assert value.cron == "0 6 * * *" and value.timezone == "Europe/Paris"
    assert value.job is not None and value.job.urls == ["https://example.com/"]
    assert parse_schedule({"job": JOB, "every": "6h", "name": "n"}, LIMITS).every == 21600
    assert parse_schedule({"job": JOB, "cron": "@daily"}, LIMITS).cron == "@daily"
    assert parse_schedule({"paused": True}, LIMITS, patch=True).paused is True


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"job": JOB, "cron": "61 * * * *"}, "cron"),
        ({"job": JOB, "cron": "0 6 * *"}, "cron"),
        ({"job": JOB, "cron": "0 6 * * * *"}, "cron"),  # seconds: under a minute
        ({"job": JOB, "cron": "0 0 30 2 *"}, "cron"),  # February 30th never comes
        ({"job": JOB, "cron": 5}, "cron"),
        ({"job": JOB, "cron": "1," * 3000 + "1 * * * *"}, "cron"),  # bounded length
        ({"job": JOB, "cron": "0 6 * * *", "timezone": "Mars/Olympus"}, "timezone"),
        ({"job": JOB, "cron": "0 6 * * *", "timezone": "../../etc/passwd"}, "timezone"),
        ({"job": JOB, "cron": "0 6 * * *", "timezone": "posixrules"}, "timezone"),
        ({"job": JOB, "cron": "0 6 * * *", "timezone": "localtime"}, "timezone"),
        ({"job": JOB, "cron": "0 6 * * *", "timezone": ""}, "timezone"),
        ({"job": JOB, "cron": "0 6 * * *", "every": "1h"}, "every"),
        ({"job": JOB}, "cron"),
        ({"job": JOB, "every": "10s"}, "every"),  # under the 60 s minimum
        ({"job": JOB, "every": "soon"}, "every"),
        ({"job": JOB, "every": True}, "every"),
        ({"cron": "0 6 * * *"}, "job"),
        ({"job": {"url": "ftp://example.com/"}, "cron": "0 6 * * *"}, "job.url"),
        (
            {"job": {"urls": ["https://example.com/"], "max_depth": -1}, "every": "1h"},
            "job.max_depth",
        ),
        ({"job": "https://example.com/", "every": "1h"}, "job"),
        ({"job": JOB, "every": "1h", "colour": "red"}, "colour"),
        ({"job": JOB, "every": "1h", "paused": "yes"}, "paused"),
        ({"job": JOB, "every": "1h", "name": 5}, "name"),
    ],
)
def test_invalid_bodies_name_the_field(payload: dict[str, Any], field: str) -> None:
    assert field in fields_of(payload)


def test_a_cron_firing_more_often_than_the_minimum_is_refused() -> None:
    strict = ScheduleLimits(min_interval=3600.0, job_limits=LIMITS.job_limits)
    with pytest.raises(ValidationFailed) as caught:
        parse_schedule({"job": JOB, "cron": "0,30 * * * *"}, strict)
    assert [e["field"] for e in caught.value.errors or []] == ["cron"]
    assert parse_schedule({"job": JOB, "cron": "0 * * * *"}, strict).cron == "0 * * * *"


def test_every_problem_is_reported_at_once() -> None:
    assert set(fields_of({"job": {"url": 1}, "cron": "x", "timezone": "Nowhere/X"})) >= {
        "job.url",
        "cron",
        "timezone",
    }


def test_change_counts_read_a_recrawls_stats() -> None:
    assert change_counts({"pages_fetched": 3}) is None
    nested = {"changes": {"new": 1, "changed": 2, "unchanged": 3, "removed": 0}}
    assert change_counts(nested) == {"new": 1, "changed": 2, "unchanged": 3, "removed": 0}


def test_a_cron_with_no_date_left_has_no_next_tick() -> None:
    assert Timing(cron="0 0 30 2 *").next_or_none(utc(2027, 1, 1)) is None
    assert Timing(cron="0 0 29 2 *").next_or_none(utc(2027, 1, 1)) == utc(2028, 2, 29)
