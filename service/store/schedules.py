"""Schedules and their runs in the database, over the same `Database` seam as the store.

A tick is fired by `claim`: one transaction moves the schedule's `next_run_at` on only
if it still holds the value the ticker read (`UPDATE ... WHERE next_run_at = old`) and
inserts the run, unique per (schedule, tick). So however many processes tick, and even
if two believe they lead, a tick becomes at most one run. The run is `pending` until its
job is recorded (`finish`); a process that stops in between leaves it pending, and the
next leader finishes it (`pending_runs`), creating the job under an idempotency key
derived from the tick, so it is created once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from service.errors import LimitReached, StoreError
from service.schedules import RunState, Schedule, ScheduleRun, Timing
from service.store.connection import Connection, Database

RUNS_KEPT = 50  # runs kept per schedule (older ones are deleted as new ones come)
CHANNEL = "trawl_schedules"  # PostgreSQL NOTIFY channel: schedules changed


@dataclass(frozen=True, slots=True, kw_only=True)
class NewSchedule:
    """A validated schedule about to be stored."""

    id: str
    owner: str
    name: str | None
    request: dict[str, object]
    timing: Timing
    paused: bool
    next_run_at: float | None
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleChange:
    """A schedule's fields after a PATCH (everything the row's update sets)."""

    name: str | None
    request: dict[str, object]
    timing: Timing
    paused: bool
    next_run_at: float | None
    base_job_id: str | None
    updated_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingRun:
    """A run claimed by a process that did not record its job."""

    id: int
    schedule_id: str
    tick_at: float
    missed: int


class ScheduleStore:
    """Schedules' rows and runs (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.q = db.queries

    async def create(self, new: NewSchedule, *, limit: int) -> Schedule:
        """Store a schedule; LimitReached if its owner already has `limit` of them."""
        q = self.q

        async def work(conn: Connection) -> Schedule:
            await conn.execute(q.lock_schedule_owner, new.owner)
            row = await conn.fetch_one(q.schedule_count, new.owner)
            if int(row[0] if row else 0) >= limit:
                raise LimitReached(
                    "body",
                    f"this API key has {limit} schedules, the most allowed "
                    "(SCRAPER_MAX_SCHEDULES_PER_KEY); delete one first",
                )
            timing = new.timing
            await conn.execute(
                q.insert_schedule,
                new.id,
                new.owner,
                new.name,
                json.dumps(new.request, separators=(",", ":")),
                timing.cron,
                timing.every,
                timing.timezone,
                new.paused,
                timing.anchor,
                new.next_run_at,
                new.created_at,
            )
            await conn.execute(q.notify_schedules, new.id)
            return await self._read(conn, new.id)

        return await self.db.transaction(work)

    async def _read(self, conn: Connection, schedule_id: str) -> Schedule:
        row = await conn.fetch_one(self.q.schedule, schedule_id)
        if row is None:
            raise StoreError(f"schedule {schedule_id} vanished")
        return Schedule.from_row(row)

    async def get(self, schedule_id: str, owner: str | None) -> Schedule | None:
        """The owner's schedule, or None (another key's is indistinguishable from none)."""
        row = await self.db.fetch_one(self.q.schedule_of_owner, schedule_id, owner or "")
        return Schedule.from_row(row) if row else None

    async def get_any(self, schedule_id: str) -> Schedule | None:
        row = await self.db.fetch_one(self.q.schedule, schedule_id)
        return Schedule.from_row(row) if row else None

    async def page(self, owner: str | None, limit: int, before_seq: int | None) -> list[Schedule]:
        """The owner's schedules, newest first."""
        rows = await self.db.fetch(self.q.list_schedules, owner or "", before_seq, limit)
        return [Schedule.from_row(row) for row in rows]

    async def update(
        self,
        schedule_id: str,
        owner: str | None,
        change: Callable[[Schedule], ScheduleChange],
    ) -> Schedule | None:
        """Apply `change` to the owner's schedule (read, changed and written in one
        transaction, the row locked on PostgreSQL); None if there is no such schedule."""
        q = self.q

        async def work(conn: Connection) -> Schedule | None:
            row = await conn.fetch_one(q.lock_schedule_of_owner, schedule_id, owner or "")
            if row is None:
                return None
            new = change(Schedule.from_row(row))
            await conn.execute(
                q.update_schedule,
                schedule_id,
                new.name,
                json.dumps(new.request, separators=(",", ":")),
                new.timing.cron,
                new.timing.every,
                new.timing.timezone,
                new.paused,
                new.timing.anchor,
                new.next_run_at,
                new.updated_at,
                new.base_job_id,
            )
            await conn.execute(q.notify_schedules, schedule_id)
            return await self._read(conn, schedule_id)

        return await self.db.transaction(work)

    async def delete(self, schedule_id: str, owner: str | None) -> bool:
        """Delete the owner's schedule and its runs (its jobs stay); whether it existed."""

        async def work(conn: Connection) -> bool:
            deleted = await conn.execute(self.q.delete_schedule, schedule_id, owner or "")
            await conn.execute(self.q.notify_schedules, schedule_id)
            return deleted > 0

        return await self.db.transaction(work)

    # -- the ticker ------------------------------------------------------------------

    async def next_due(self) -> float | None:
        """The earliest next_run_at of any schedule not paused."""
        row = await self.db.fetch_one(self.q.next_schedule_due)
        return float(row[0]) if row and row[0] is not None else None

    async def due(self, now: float, limit: int) -> list[Schedule]:
        rows = await self.db.fetch(self.q.due_schedules, now, limit)
        return [Schedule.from_row(row) for row in rows]

    async def claim(
        self, schedule: Schedule, *, next_run_at: float | None, now: float, missed: int
    ) -> ScheduleRun | None:
        """Fire the schedule's due tick: move next_run_at on and add a pending run, or
        None if another process (or an update) moved it first (see the module docstring)."""
        tick = schedule.next_run_at
        if tick is None:
            return None
        q = self.q

        async def work(conn: Connection) -> ScheduleRun | None:
            if await conn.fetch_one(q.claim_tick, schedule.id, tick, next_run_at, now) is None:
                return None
            row = await conn.fetch_one(
                q.insert_run, schedule.id, tick, now, RunState.PENDING, missed, None, None
            )
            if row is None:
                return None  # this tick fired already (paused and resumed within it)
            return ScheduleRun(
                id=int(row[0]),
                schedule_id=schedule.id,
                tick_at=tick,
                fired_at=now,
                state=RunState.PENDING,
                missed=missed,
            )

        return await self.db.transaction(work)

    async def claim_now(self, schedule: Schedule, *, now: float) -> ScheduleRun | None:
        """An extra run at `now`, asked for by a client (its tick is `now`; next_run_at
        stays); None if a run already has that tick."""

        async def work(conn: Connection) -> ScheduleRun | None:
            row = await conn.fetch_one(
                self.q.insert_run, schedule.id, now, now, RunState.PENDING, 0, None, None
            )
            if row is None:
                return None
            return ScheduleRun(
                id=int(row[0]),
                schedule_id=schedule.id,
                tick_at=now,
                fired_at=now,
                state=RunState.PENDING,
            )

        return await self.db.transaction(work)

    async def finish(
        self,
        run: ScheduleRun | PendingRun,
        *,
        state: str,
        job_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        """Record what became of a run: the job it started, or why it did not."""

        async def work(conn: Connection) -> None:
            await conn.execute(self.q.set_run, run.id, state, job_id, reason)
            if job_id is not None:
                await conn.execute(self.q.set_last_job, run.schedule_id, job_id)
            await conn.execute(self.q.prune_runs, run.schedule_id, RUNS_KEPT)

        await self.db.transaction(work)

    async def pending_runs(self, fired_before: float, limit: int = 20) -> list[PendingRun]:
        rows = await self.db.fetch(self.q.pending_runs, fired_before, limit)
        return [
            PendingRun(id=int(r[0]), schedule_id=r[1], tick_at=float(r[2]), missed=int(r[3] or 0))
            for r in rows
        ]

    async def runs(self, schedule_id: str, limit: int, before_id: int | None) -> list[ScheduleRun]:
        """One schedule's runs, newest first (the newest RUNS_KEPT are kept)."""
        rows = await self.db.fetch(self.q.runs_page, schedule_id, before_id, limit)
        return [ScheduleRun.from_row(row) for row in rows]

    async def job_by_key(self, owner: str, key: str) -> str | None:
        """The id of the owner's job created under an idempotency key, if any."""
        row = await self.db.fetch_one(self.q.job_by_key, owner or "", key)
        return str(row[1]) if row else None

    async def recent_runs(
        self, schedule_ids: list[str], per_schedule: int
    ) -> dict[str, list[ScheduleRun]]:
        """The newest runs of each schedule, newest first."""
        runs: dict[str, list[ScheduleRun]] = {sid: [] for sid in schedule_ids}
        if not schedule_ids:
            return runs
        for row in await self.db.fetch(self.q.recent_runs, list(schedule_ids), per_schedule):
            run = ScheduleRun.from_row(row)
            runs.setdefault(run.schedule_id, []).append(run)
        return runs

    async def watch(self, callback: Callable[[], None]) -> bool:
        """Call `callback` when any process changes a schedule (PostgreSQL LISTEN);
        False where one process owns the database and wakes its own ticker."""
        return await self.db.listen(CHANNEL, callback)
