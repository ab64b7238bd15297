"""`python -m service [all|web|worker] [--host H] [--port P]`: run Trawl in one process."""

from __future__ import annotations

import argparse
import sys

from service.errors import ConfigError, StoreError
from service.logconfig import configure
from service.settings import Settings
from service.store.migrate import check_migrations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    parser.add_argument(
        "role",
        nargs="?",
        choices=("all", "web", "worker"),
        default=None,
        help="all (default): API and crawl workers; web: API only; worker: crawl only",
    )
    parser.add_argument("--host", help="bind address (default: $HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: $PORT or 8000)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        overrides: dict[str, object] = {}
        if args.host:
            overrides["host"] = args.host
        if args.port is not None:
            overrides["port"] = args.port
        if args.role:
            overrides["role"] = args.role
        settings = settings.with_overrides(**overrides)
        settings.check()
        # Before anything starts: an install without its schema files must say so.
        check_migrations(settings.database_url)
        configure(settings.log_level, settings.log_format)
        if settings.role == "worker":
            from service.worker_role import run_worker

            return run_worker(settings)
        from service.app import create_app

        app = create_app(settings, name="trawl")
    except (ConfigError, StoreError) as exc:
        print(f"trawl: {exc}", file=sys.stderr)
        return 2
    # One process: one queue, one writer. Sanic's multi-worker mode would split them.
    app.run(
        host=settings.host,
        port=settings.port,
        single_process=True,
        access_log=False,
        motd=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
