"""`trawl`: crawl from the command line, on an embedded engine or against a server.

    trawl crawl https://example.com/ --max-depth 2 --output pages.ndjson
    trawl crawl https://example.com/ --server http://127.0.0.1:8000 --api-key KEY
    trawl jobs | trawl show ID | trawl results ID | trawl cancel ID | trawl serve
    trawl schedules add https://example.com/ --every 6h | trawl schedules list

Exit codes: 0 the job completed (or the command succeeded), 1 the job failed or was
cancelled (Ctrl-C cancels it; what was written is kept) or the server said no, 2 bad
arguments (argparse's own, and requests the server or engine refuses as invalid).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from service.client import (
    ApiError,
    AsyncClient,
    Job,
    Page,
    TransportError,
    ValidationError,
    job_request,
)
from service.models import FORMATS

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DEFAULT_SERVER = "http://127.0.0.1:8000"


class Backend(Protocol):
    """What `trawl crawl` needs: the AsyncClient and the EmbeddedEngine both provide it."""

    async def submit(self, body: dict[str, Any], /) -> Job: ...
    async def get(self, job_id: str) -> Job: ...
    async def cancel(self, job_id: str) -> Job: ...
    def watch(self, job_id: str) -> AsyncIterator[Job]: ...
    def iter_results(self, job_id: str, *, page_size: int = ...) -> AsyncIterator[Page]: ...


# -- arguments ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trawl", description="Crawl websites with Trawl.", epilog=__doc__.split("\n\n")[2]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument(
        "--server",
        default=os.environ.get("TRAWL_SERVER"),
        help="a running Trawl's URL ($TRAWL_SERVER)",
    )
    remote.add_argument(
        "--api-key", default=os.environ.get("TRAWL_API_KEY"), help="API key ($TRAWL_API_KEY)"
    )

    crawl = commands.add_parser(
        "crawl",
        parents=[remote],
        help="crawl a site and write its pages as NDJSON",
        description="Crawl from URL; without --server, on an engine inside this process.",
    )
    crawl.add_argument("url", nargs="+", help="seed URL(s)")
    crawl.add_argument("--max-depth", type=_natural, default=0, metavar="N", help="link hops")
    crawl.add_argument("--max-pages", type=_positive, metavar="N", help="most pages fetched")
    crawl.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=FORMATS,
        help="what each page includes (repeatable; default metadata, text, links)",
    )
    crawl.add_argument("--scope", choices=("same-host", "same-domain", "any"))
    crawl.add_argument("--include", action="append", metavar="REGEX", help="follow only these")
    crawl.add_argument("--exclude", action="append", metavar="REGEX", help="never follow these")
    crawl.add_argument(
        "--main-content", action="store_true", help="text and markdown of the main content only"
    )
    crawl.add_argument("--ignore-robots", action="store_true", help="do not obey robots.txt")
    crawl.add_argument("--output", "-o", metavar="FILE", help="write here (default stdout)")
    crawl.add_argument(
        "--database",
        metavar="PATH",
        help="keep the embedded engine's SQLite file here (default: a temporary file)",
    )
    crawl.add_argument(
        "--allow-private-networks",
        action="store_true",
        help="let the embedded engine fetch loopback/private addresses",
    )
    crawl.add_argument("--no-progress", action="store_true", help="no progress bar")

    jobs = commands.add_parser("jobs", parents=[remote], help="list a server's jobs")
    jobs.add_argument("--status", choices=("queued", "running", "completed", "failed", "cancelled"))
    jobs.add_argument("--limit", type=_positive, default=20)
    jobs.add_argument("--json", action="store_true", help="one job JSON per line")

    show = commands.add_parser("show", parents=[remote], help="show a job")
    show.add_argument("job_id", metavar="ID")
    show.add_argument("--watch", action="store_true", help="follow it to the end")

    results = commands.add_parser("results", parents=[remote], help="a job's results as NDJSON")
    results.add_argument("job_id", metavar="ID")
    results.add_argument("--outcome", choices=("ok", "failed", "skipped"))
    results.add_argument(
        "--change", choices=("new", "changed", "unchanged", "removed"), help="a recrawl's"
    )
    results.add_argument("--output", "-o", metavar="FILE")
    results.add_argument(
        "--no-follow", action="store_true", help="stop at what is stored now (running jobs)"
    )

    cancel = commands.add_parser("cancel", parents=[remote], help="cancel a job")
    cancel.add_argument("job_id", metavar="ID")

    recrawl = commands.add_parser(
        "recrawl", parents=[remote], help="recrawl a finished job and say what changed"
    )
    recrawl.add_argument("job_id", metavar="ID")
    recrawl.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_override,
        default=[],
        metavar="FIELD=VALUE",
        help="replace a field of the job's request (VALUE is JSON, else a string), "
        "e.g. --set max_depth=2",
    )
    recrawl.add_argument("--wait", action="store_true", help="follow it to the end")

    schedules = commands.add_parser(
        "schedules", help="a server's schedules: list, add, show, pause, resume, delete"
    )
    actions = schedules.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[remote], help="list them")
    listing.add_argument("--limit", type=_positive, default=20)
    listing.add_argument("--json", action="store_true", help="one schedule JSON per line")
    add = actions.add_parser(
        "add", parents=[remote], help="run a job on a schedule (each run recrawls the last)"
    )
    add.add_argument("urls", nargs="+", metavar="URL")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", metavar="DURATION", help="an interval: 30m, 6h, 1d")
    when.add_argument("--cron", metavar="EXPR", help='a cron expression: "0 6 * * *"')
    add.add_argument("--timezone", metavar="TZ", help="for --cron (default UTC)")
    add.add_argument("--name")
    add.add_argument("--max-depth", type=_natural, default=0)
    add.add_argument("--max-pages", type=_positive)
    add.add_argument("--format", dest="formats", action="append", choices=FORMATS)
    add.add_argument(
        "--set",
        dest="options",
        action="append",
        type=_override,
        default=[],
        metavar="FIELD=VALUE",
        help="another job option (VALUE is JSON, else a string), e.g. --set scope=any",
    )
    for action, text in (
        ("show", "show one, with its recent runs"),
        ("pause", "pause it"),
        ("resume", "resume it (at its next tick)"),
        ("delete", "delete it (its jobs stay)"),
    ):
        actions.add_parser(action, parents=[remote], help=text).add_argument(
            "schedule_id", metavar="ID"
        )

    commands.add_parser("serve", help="run the service (same as python -m service)", add_help=False)
    return parser


def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _override(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not FIELD=VALUE")
    try:
        return name.strip(), json.loads(value)
    except ValueError:
        return name.strip(), value


def _positive(text: str) -> int:
    value = _natural(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _say(message: str) -> None:
    print(f"trawl: {message}", file=sys.stderr)


# -- output and progress ------------------------------------------------------------------


@contextlib.contextmanager
def _output(path: str | None) -> Iterator[IO[str]]:
    if path is None or path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8") as handle:
        yield handle


def _line(page: Page) -> str:
    return json.dumps(page.raw, ensure_ascii=False, separators=(",", ":")) + "\n"


class _Progress:
    """A progress bar on standard error when it is a terminal; nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._started = time.monotonic()
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("[bold]{task.fields[status]:<9}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} pages"),
                TextColumn("[cyan]{task.fields[rate]:>6.1f} pages/s"),
                TextColumn("{task.fields[failed]}"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(
                "crawl", total=1, status="queued", rate=0.0, failed=""
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, job: Job) -> None:
        if self._progress is None:
            return
        stats = job.stats
        elapsed = max(1e-6, time.monotonic() - self._started)
        self._progress.update(
            self._task,
            completed=stats.pages_done,
            total=max(1, stats.pages_discovered),
            status=job.status,
            rate=stats.pages_done / elapsed,
            failed=f"[red]{stats.pages_failed} failed" if stats.pages_failed else "",
        )


# -- commands -----------------------------------------------------------------------------


def _crawl_request(args: argparse.Namespace) -> dict[str, Any]:
    return job_request(
        args.url,
        max_depth=args.max_depth,
        max_pages=args.max_pages,
        formats=args.formats,
        scope=args.scope,
        include=args.include,
        exclude=args.exclude,
        only_main_content=True if args.main_content else None,
        respect_robots=False if args.ignore_robots else None,
    )


@contextlib.asynccontextmanager
async def _backend(args: argparse.Namespace) -> AsyncIterator[Backend]:
    if args.server:
        async with AsyncClient(args.server, args.api_key) as client:
            yield client
        return
    from service.embedded import EmbeddedEngine
    from service.logconfig import configure
    from service.settings import Settings

    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="trawl-") as tmp:
        overrides: dict[str, Any] = {
            "database_url": _database_url(args.database, tmp),
            "role": "all",
            "port": 0,
        }
        if args.allow_private_networks:
            overrides["allow_private_networks"] = True
        settings = settings.with_overrides(**overrides)
        configure("WARNING", settings.log_format)
        async with EmbeddedEngine(settings) as engine:
            yield engine


def _database_url(database: str | None, tmp: str) -> str:
    if database is None:
        return f"sqlite:///{Path(tmp, 'trawl.db')}"
    if "://" in database:
        return database
    return f"sqlite:///{Path(database).resolve()}"


async def _crawl(args: argparse.Namespace) -> int:
    from service.errors import ConfigError, ValidationFailed

    request = _crawl_request(args)
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    try:
        async with _backend(args) as backend:
            try:
                job = await backend.submit(request)
            except ValidationFailed as exc:
                for error in exc.errors or []:
                    _say(f"{error['field']}: {error['message']}")
                return EXIT_USAGE
            loop.add_signal_handler(signal.SIGINT, interrupted.set)
            try:
                return await _run_crawl(args, backend, job, interrupted)
            finally:
                loop.remove_signal_handler(signal.SIGINT)
    except ConfigError as exc:
        _say(str(exc))
        return EXIT_USAGE


async def _run_crawl(
    args: argparse.Namespace, backend: Backend, job: Job, interrupted: asyncio.Event
) -> int:
    written = 0

    with _output(args.output) as out, _Progress(_show_progress(args)) as progress:

        async def write() -> None:
            nonlocal written
            async for page in backend.iter_results(job.id, page_size=500):
                out.write(_line(page))
                written += 1
                if written % 100 == 0:
                    out.flush()
            out.flush()

        async def watch() -> Job:
            final = job
            async for state in backend.watch(job.id):
                progress.update(state)
                final = state
            return final

        writer = asyncio.create_task(write())
        watcher = asyncio.create_task(watch())
        stop = asyncio.create_task(interrupted.wait())
        pending: set[asyncio.Task[Any]] = {writer, watcher, stop}
        cancelled = False
        try:
            while writer in pending or watcher in pending:
                _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if stop not in pending and not cancelled:
                    cancelled = True
                    # Cancel the job; keep writing what it stored until it is final.
                    await backend.cancel(job.id)
            final = watcher.result()
            writer.result()
        finally:
            for task in (writer, watcher, stop):
                task.cancel()
    where = f" to {args.output}" if args.output else ""
    if cancelled:
        _say(f"cancelled: {written} pages written{where}")
        return EXIT_FAILED
    if final.status != "completed":
        detail = f" ({final.error.get('message')})" if final.error else ""
        _say(f"job {final.status}{detail}: {written} pages written{where}")
        return EXIT_FAILED
    if _show_progress(args):
        stats = final.stats
        _say(
            f"completed: {stats.pages_fetched} fetched, {stats.pages_failed} failed, "
            f"{stats.pages_skipped} skipped; {written} pages written{where}"
        )
    return EXIT_OK


def _show_progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()


def _client(args: argparse.Namespace) -> AsyncClient:
    return AsyncClient(args.server or DEFAULT_SERVER, args.api_key)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


async def _jobs(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        page = await client.list_jobs(status=args.status, limit=args.limit)
    if args.json:
        for job in page.items:
            print(json.dumps(job.raw, ensure_ascii=False))
        return EXIT_OK
    print(f"{'ID':36}  {'STATUS':9}  {'FETCHED':>7}  {'FOUND':>7}  {'CREATED':20}  URL")
    for job in page.items:
        urls = job.request.get("urls") or [""]
        created = job.created_at.strftime("%Y-%m-%d %H:%M:%S") if job.created_at else ""
        print(
            f"{job.id:36}  {job.status:9}  {job.stats.pages_fetched:>7}  "
            f"{job.stats.pages_discovered:>7}  {created:20}  {urls[0]}"
        )
    return EXIT_OK


async def _show(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        if not args.watch:
            _print_json((await client.get(args.job_id)).raw)
            return EXIT_OK
        with _Progress(sys.stderr.isatty()) as progress:
            final = await client.wait(args.job_id, on_progress=progress.update)
    _print_json(final.raw)
    return EXIT_OK if final.status == "completed" else EXIT_FAILED


async def _results(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        with _output(args.output) as out:
            async for page in client.iter_results(
                args.job_id,
                outcome=args.outcome,
                change=args.change,
                page_size=500,
                follow=not args.no_follow,
            ):
                out.write(_line(page))
    return EXIT_OK


async def _cancel(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        _print_json((await client.cancel(args.job_id)).raw)
    return EXIT_OK


async def _recrawl(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        job = await client.recrawl(args.job_id, **dict(args.overrides))
        if not args.wait:
            _print_json(job.raw)
            return EXIT_OK
        with _Progress(sys.stderr.isatty()) as progress:
            final = await client.wait(job.id, on_progress=progress.update)
    _print_json(final.raw)
    return EXIT_OK if final.status == "completed" else EXIT_FAILED


async def _schedules(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        if args.action == "list":
            page = await client.list_schedules(limit=args.limit)
            if args.json:
                for item in page.items:
                    print(json.dumps(item.raw, ensure_ascii=False))
                return EXIT_OK
            print(f"{'ID':36}  {'REPEATS':22}  {'NEXT RUN (UTC)':19}  {'LAST':9}  URL")
            for item in page.items:
                repeats = f"cron {item.cron}" if item.cron else f"every {item.every}"
                if item.cron and item.timezone != "UTC":
                    repeats += f" {item.timezone}"
                upcoming = (
                    "paused"
                    if item.paused or item.next_run_at is None
                    else (item.next_run_at.strftime("%Y-%m-%d %H:%M:%S"))
                )
                last = item.runs[0].status if item.runs else "-"
                urls = item.job.get("urls") or [""]
                print(f"{item.id:36}  {repeats:22}  {upcoming:19}  {last:9}  {urls[0]}")
            return EXIT_OK
        if args.action == "add":
            options = dict(args.options)
            options["max_depth"] = args.max_depth
            if args.max_pages is not None:
                options["max_pages"] = args.max_pages
            if args.formats:
                options["formats"] = args.formats
            made = await client.create_schedule(
                args.urls,
                every=args.every,
                cron=args.cron,
                timezone=args.timezone,
                name=args.name,
                **options,
            )
            _print_json(made.raw)
            return EXIT_OK
        if args.action == "show":
            found = await client.get_schedule(args.schedule_id)
        elif args.action == "delete":
            found = await client.delete_schedule(args.schedule_id)
        else:
            found = await client.update_schedule(args.schedule_id, paused=args.action == "pause")
        _print_json(found.raw)
    return EXIT_OK


_COMMANDS = {
    "crawl": _crawl,
    "jobs": _jobs,
    "show": _show,
    "results": _results,
    "cancel": _cancel,
    "recrawl": _recrawl,
    "schedules": _schedules,
}


def main(argv: list[str] | None = None) -> int:
    """The `trawl` console script."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        from service.__main__ import main as serve

        return serve(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_COMMANDS[args.command](args))
    except ValidationError as exc:
        _say(exc.detail)
        for error in exc.errors:
            _say(f"  {error.get('field')}: {error.get('message')}")
        return EXIT_USAGE
    except ApiError as exc:
        _say(str(exc))
        return EXIT_FAILED
    except TransportError as exc:
        _say(f"cannot reach the server: {exc}")
        return EXIT_FAILED
    except BrokenPipeError:
        # `trawl results ID | head`: the reader went away; that is not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keep Python's exit flush quiet
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
