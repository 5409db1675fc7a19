"""The `switchboard` command: `serve` runs one instance."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from aiohttp import web

from application.logging import configure_logging
from application.server import check_store, create_app
from application.settings import Settings, SettingsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard", description="Real-time chat, presence and notifications server."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run one server instance")
    serve.add_argument("--host", help="address to listen on (SWITCHBOARD_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (SWITCHBOARD_PORT, 8080)")
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development mode: generated secrets, GET /dev/token and the demo page",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of `python -m application`."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(dev=bool(args.dev), host=args.host, port=args.port)
    return 2  # pragma: no cover - argparse rejects unknown commands


def serve(*, dev: bool, host: str | None, port: int | None) -> int:
    """Run one instance until SIGINT/SIGTERM; exit code 2 on bad configuration."""
    try:
        settings = Settings.from_env(os.environ, dev=dev, host=host, port=port)
    except SettingsError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        settings = asyncio.run(check_store(settings))
    except SettingsError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    if settings.dev:
        print(
            f"switchboard (dev mode) on http://{settings.host}:{settings.port}\n"
            f"  tokens:  curl 'http://{settings.host}:{settings.port}/dev/token?user_id=alice'\n"
            f"  API key: {settings.api_key}",
            file=sys.stderr,
            flush=True,
        )
    try:
        app = create_app(settings)
    except (ValueError, SettingsError) as exc:  # e.g. a PEM key that does not load
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=None,
            backlog=4096,
            shutdown_timeout=5.0,
            access_log=None,
        )
    except OSError as exc:  # e.g. the port is taken
        print(
            f"switchboard: cannot serve on {settings.host}:{settings.port}: {exc}", file=sys.stderr
        )
        return 1
    return 0
