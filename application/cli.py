"""The `switchboard` command: `serve` runs one instance; `migrate` loads a snapshot into Redis."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import time
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import redis.exceptions
from aiohttp import web

from adapters.memory.snapshot import Snapshot, SnapshotError, SnapshotSaveError, read_snapshot
from adapters.redis.base import REDIS_DOWN, create_client
from adapters.redis.importer import ImportReport, SnapshotImporter
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
    migrate = commands.add_parser(
        "migrate",
        help="load a snapshot of the embedded stores into Redis (idempotent)",
        description="Load a snapshot file (SWITCHBOARD_SNAPSHOT_PATH) into Redis, keeping ids "
        "and seqs. Only adds what is missing: running it again changes nothing. Exit codes: "
        "0 done, 1 Redis unreachable or failed, 2 bad arguments or snapshot, 3 done but some "
        "records were refused (Redis holds them differently).",
    )
    migrate.add_argument("--snapshot", required=True, metavar="FILE", help="the snapshot file")
    migrate.add_argument("--redis-url", metavar="URL", help="Redis to load into (REDIS_URL)")
    migrate.add_argument(
        "--prefix",
        metavar="P",
        help="key prefix of the servers (SWITCHBOARD_REDIS_PREFIX, switchboard:)",
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="read and compare only; write nothing"
    )
    return parser


def _event_loop(settings: Settings) -> asyncio.AbstractEventLoop | None:
    """uvloop when installed (auto) or asked for; None: asyncio's default loop."""
    if settings.event_loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if settings.event_loop == "uvloop":
            raise SettingsError(
                "SWITCHBOARD_EVENT_LOOP=uvloop but uvloop is not installed"
            ) from None
        return None
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


GC_THRESHOLDS = (20_000, 10, 10)


def tune_garbage_collector(app: web.Application) -> None:
    """Fewer young collections (CPython's 700 allocations become 20,000), hence far fewer
    full ones, each of which walks every object of every connection; and the start-up heap
    frozen out of the collector's view. Measured with scripts/bench (docs/performance.md)."""
    gc.set_threshold(*GC_THRESHOLDS)

    async def freeze(_: web.Application) -> None:
        gc.collect()
        gc.freeze()

    app.on_startup.append(freeze)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of `python -m application`."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return serve(dev=bool(args.dev), host=args.host, port=args.port)
    if args.command == "migrate":
        return migrate(
            snapshot=args.snapshot,
            redis_url=args.redis_url,
            prefix=args.prefix,
            dry_run=bool(args.dry_run),
        )
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
        loop = _event_loop(settings)
        if settings.gc_tuning:
            tune_garbage_collector(app)
    except (ValueError, SettingsError) as exc:  # e.g. a PEM key that does not load
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        web.run_app(
            app,
            loop=loop,
            host=settings.host,
            port=settings.port,
            print=None,
            backlog=4096,
            # clients were told to go (the drain): give their WebSockets 2 s to close, then cut
            shutdown_timeout=2.0,
            access_log=None,
        )
    except OSError as exc:  # e.g. the port is taken
        print(
            f"switchboard: cannot serve on {settings.host}:{settings.port}: {exc}", file=sys.stderr
        )
        return 1
    except SnapshotError as exc:  # at start: never run empty instead of on the snapshot
        print(f"switchboard: snapshot error: {exc}", file=sys.stderr)
        return 2
    except SnapshotSaveError as exc:  # the last save, at stop
        print(f"switchboard: the snapshot was not saved at stop: {exc}", file=sys.stderr)
        return 1
    return 0


def migrate(*, snapshot: str, redis_url: str | None, prefix: str | None, dry_run: bool) -> int:
    """Load a snapshot file into Redis; 0 done, 1 Redis failed, 2 bad input, 3 conflicts."""
    url = redis_url or os.environ.get("REDIS_URL", "").strip()
    if not url:
        return _migrate_error("--redis-url is required (or set REDIS_URL)", 2)
    if urllib.parse.urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        return _migrate_error("--redis-url must be a redis://, rediss:// or unix:// URL", 2)
    if prefix is None:
        prefix = os.environ.get("SWITCHBOARD_REDIS_PREFIX", "").strip() or "switchboard:"
    if not prefix.strip():
        return _migrate_error("--prefix must not be empty", 2)
    try:
        loaded = read_snapshot(Path(snapshot))
    except SnapshotError as exc:
        return _migrate_error(f"cannot use the snapshot: {exc}", 2)
    return asyncio.run(_migrate(loaded, Path(snapshot), url, prefix, dry_run))


async def _migrate(snapshot: Snapshot, path: Path, url: str, prefix: str, dry_run: bool) -> int:
    shown = _redacted(url)
    client = create_client(url, max_connections=4)
    started = time.monotonic()
    try:
        try:
            await client.ping()
        except (*REDIS_DOWN, redis.exceptions.RedisError) as exc:
            return _migrate_error(
                f"Redis at {shown} does not answer ({exc}); nothing was written", 1
            )
        print(
            f"switchboard migrate: {path} (written {snapshot.written_at.isoformat()}) into "
            f"{shown}, prefix {prefix!r}" + (" [dry run: nothing is written]" if dry_run else ""),
            flush=True,
        )
        importer = SnapshotImporter(client, prefix)
        try:
            report = await importer.run(snapshot, now=datetime.now(UTC), dry_run=dry_run)
        except (*REDIS_DOWN, redis.exceptions.RedisError) as exc:
            return _migrate_error(
                f"Redis failed during the migration ({type(exc).__name__}: {exc}); part of the "
                "snapshot may be in Redis: run the same command again to finish (it only adds "
                "what is missing)",
                1,
            )
    finally:
        await client.aclose(close_connection_pool=True)
    _print_report(report, time.monotonic() - started)
    return 3 if report.refused else 0


def _print_report(report: ImportReport, elapsed_s: float) -> None:
    moved = "would move" if report.dry_run else "moved"
    print(f"{'':18}{moved:>10}  {'already there':>13}  {'refused':>7}")
    for kind, tally in report.tallies():
        line = f"{kind:18}{tally.moved:>10}  {tally.already:>13}  {tally.refused:>7}"
        if kind == "notifications":
            line += f"   ({report.unread} unread)"
        elif kind == "idempotency keys" and report.expired_keys:
            line += f"   (+{report.expired_keys} older than 24 h: not moved, Redis expires them)"
        print(line)
    for conflict in report.conflicts:
        print(f"refused: {conflict}")
    timing = f" in {elapsed_s:.1f} s"
    if report.dry_run:
        print(f"dry run: would move {_records(report.moved)}; nothing was written{timing}")
    elif report.moved:
        print(f"done: moved {_records(report.moved)}{timing}")
    else:
        print(f"done: nothing new, all {_records(report.already)} were already in Redis{timing}")
    if report.refused:
        print(
            f"{_records(report.refused)} refused: Redis holds them differently (see above); "
            "nothing was overwritten"
        )


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


def _migrate_error(message: str, code: int) -> int:
    print(f"switchboard migrate: {message}", file=sys.stderr)
    return code


def _redacted(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + host))
