"""`jobglass demo [--port 8000] [--host 127.0.0.1] [--db PATH] [--reset]`."""

from __future__ import annotations

import argparse

from .common import CLIError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from ..demo import DEFAULT_DB

    parser = sub.add_parser(
        "demo",
        help="the Job Manager with a worker, a scheduler and example runs (SQLite, no setup)",
        description="Start the admin API and the Job Manager page, a worker and the scheduler "
        "in one process, on a SQLite file; enqueue the seeds' example jobs and print a sign-in "
        "link. Ctrl-C stops everything cleanly.",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any)")
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--db", default=str(DEFAULT_DB), help=f"SQLite file (default {DEFAULT_DB})")
    parser.add_argument("--reset", action="store_true", help="start from an empty database")
    parser.set_defaults(func=handler)


async def handler(args: argparse.Namespace) -> int:
    import logging

    from ..demo import run_demo
    from ..web.serve import is_loopback

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be 0-65535, got {args.port}")
    if not is_loopback(args.host):
        raise CLIError(
            f"the demo signs you in with a printed dev token; it only listens on loopback, "
            f"not {args.host} (use `jobglass serve` with configured auth instead)"
        )
    if not getattr(args, "verbose", False):
        # failing on purpose is part of the show: the page tells those stories, not the console
        for name in ("jobglass.app", "jobglass.run"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return await run_demo(args.host, args.port, args.db, reset=args.reset)
    except OSError as err:
        raise CLIError(str(err)) from None
