"""`jobglass serve MODULE:APP --host 127.0.0.1 --port 8000 [--insecure]`."""

from __future__ import annotations

import argparse

from .common import CLIError, load_app


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "serve",
        help="serve the admin API, live stream and Job Manager",
        description="Serve the admin API (/api/admin), the live stream and the Job Manager. "
        "Authentication comes from JOBGLASS_JWT_SECRET, JOBGLASS_JWT_PUBLIC_KEY or "
        "JOBGLASS_API_KEYS; without any, a one-time dev admin token is printed.",
    )
    parser.add_argument("app", nargs="?", help="MODULE:ATTRIBUTE of the JobGlass app")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback address without configured authentication",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level",
    )
    parser.set_defaults(func=handle)


async def handle(args: argparse.Namespace) -> int:
    from ..web.serve import UnsafeBind, serve

    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be 0-65535, got {args.port}")
    app = load_app(args.app)
    try:
        return await serve(
            app, args.host, args.port, insecure=args.insecure, log_level=args.log_level
        )
    except UnsafeBind as err:
        raise CLIError(str(err)) from None
