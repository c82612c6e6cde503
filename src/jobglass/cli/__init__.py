"""The `jobglass` command. Each module in COMMAND_MODULES adds its own subcommands."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import JobGlassError
from .common import CLIError

COMMAND_MODULES = (
    "jobglass.cli.core",
    "jobglass.cli.schedule",
    "jobglass.cli.web",
    "jobglass.cli.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobglass", description="Background jobs you can see into."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:
                continue  # that part is not installed in this build
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..observe.logging import configure_logging

    json_logs = os.environ.get("JOBGLASS_JSON_LOGS", "").strip().lower() in ("1", "true", "yes")
    configure_logging(json=json_logs, level=logging.DEBUG if args.verbose else logging.WARNING)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        out = func(args)
        if inspect.isawaitable(out):
            out = asyncio.run(out)  # type: ignore[arg-type]
        return int(out or 0)
    except (CLIError, JobGlassError) as err:
        print(f"jobglass: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
