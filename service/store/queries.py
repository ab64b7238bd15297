"""Named SQL blocks, one file per dialect (`sql/<dialect>.sql`), as procrastinate keeps them.

A block starts with a line `-- name: <query>`; its text runs to the next such line.
Comments under the name line say why the query is written the way it is. Every query
the store runs is a field of `Queries`, so a missing or misspelt block fails at load
time (and mypy catches a misspelt use).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Queries:
    """Every statement the store runs, in one dialect."""

    # migrations
    create_migrations: str
    migration_columns: str
    add_migration_checksum: str
    applied_migrations: str
    mark_applied: str
    set_checksum: str
    # jobs
    job: str
    job_of_owner: str
    lock_job_of_owner: str
    job_by_key: str
    insert_job: str
    high_jobs: str
    set_discovered: str
    list_jobs: str
    start_job: str
    complete_job: str
    cancel_job: str
    fail_job: str
    complete_job_directly: str
    close_frontier: str
    job_requests: str
    jobs_by_id: str
    job_specs: str
    jobs_by_status: str
    pending_count: str
    # frontier
    recover: str
    release: str
    extend_leases: str
    lock_jobs: str
    insert_frontier: str
    repend: str
    shorten: str
    settle_marks: str
    refetches: str
    settle: str
    set_facts: str
    count_pages: str
    # hosts: the host-aware claim (store/frontier.py) and host policy
    ready_hosts: str
    lock_ready: str
    max_host_limit: str
    host_heads: str
    key_busy: str
    key_share: str
    take_claims: str
    mark_fetched: str
    turns: str
    next_due: str
    set_next_at: str
    unqueue_host: str
    queue_hosts: str
    unpark_job: str
    hosts_settled: str
    lock_hosts: str
    host_vtimes: str
    job_finishes: str
    set_finishes: str
    host_delay: str
    host_defer: str
    # results
    existing_results: str
    insert_results: str
    replace_results: str
    results: str
    results_of: str
    result_heads: str
    # recrawls
    results_of_change: str
    previous_pages: str
    revisit_urls: str
    count_changes: str
    completable: str
    insert_removed: str
    unlinked_results: str
    mark_unlinked: str
    changed_urls: str
    # retention
    expired_jobs: str
    delete_results: str
    delete_frontier: str
    delete_job_events: str
    delete_job: str
    # webhook outbox
    insert_event: str
    due_events: str
    event_delivered: str
    event_failed: str
    # schedules (store/schedules.py)
    schedule_count: str
    lock_schedule_owner: str
    insert_schedule: str
    schedule: str
    schedule_of_owner: str
    lock_schedule_of_owner: str
    list_schedules: str
    update_schedule: str
    delete_schedule: str
    next_schedule_due: str
    due_schedules: str
    claim_tick: str
    insert_run: str
    set_run: str
    set_last_job: str
    pending_runs: str
    recent_runs: str
    runs_page: str
    prune_runs: str
    notify_schedules: str


def parse_queries(text: str) -> dict[str, str]:
    """The named blocks of one .sql file (comments and blank lines kept out of the text)."""
    parts = _NAME.split(text)
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise RuntimeError(f"query {name!r} is defined twice")
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        blocks[name] = "\n".join(lines).strip().rstrip(";")
    return blocks


@cache
def load_queries(dialect: str) -> Queries:
    """The dialect's queries from the package's sql/ folder (works from a wheel too)."""
    text = resources.files("service.store").joinpath("sql", f"{dialect}.sql").read_text("utf-8")
    blocks = parse_queries(text)
    wanted = {f.name for f in dataclasses.fields(Queries)}
    if missing := wanted - blocks.keys():
        raise RuntimeError(f"{dialect}.sql lacks queries: {', '.join(sorted(missing))}")
    if extra := blocks.keys() - wanted:
        raise RuntimeError(f"{dialect}.sql has unknown queries: {', '.join(sorted(extra))}")
    return Queries(**blocks)
