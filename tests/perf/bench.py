"""The benchmark of issue #7: Switchboard side by side with baselines measured in the same run.

    scripts/bench [--quick] [--servers a,b,...] [--workers N] [--output PATH] ...

For each server in turn (a bare python-socketio server, a Node socket.io server, Switchboard
in memory mode, with `SWITCHBOARD_SLOW_FANOUT=true`, and in Redis mode), the same workloads
run against a fresh process: a connect storm, one big room with a fixed send rate, many small
rooms with steady traffic; then a separate run holds many connections on Switchboard. The
load comes from worker processes (`tests/perf/loadgen.py`) speaking raw Engine.IO/Socket.IO
frames over loopback. Server CPU is utime+stime from /proc/<pid>/stat, memory is VmRSS.
The tables go to stdout and everything to a JSON file (under /tmp by default).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import attrs

from tests.perf import loadgen, servers
from tests.perf.loadgen import (
    Arm,
    Close,
    Collect,
    Command,
    Connect,
    CreateRooms,
    Join,
    Poll,
    Prepare,
    Quit,
    Reply,
    Send,
    SendPlan,
    Target,
)
from tests.perf.report import WORKLOADS, Figures, percentile, table
from tests.perf.servers import KINDS, Profiler, RunningServer, ServerKind, proc_stat

DEFAULT_OUTPUT = Path("/tmp/switchboard-bench/latest.json")
DEFAULT_SERVERS = (
    "python-socketio",
    "switchboard",
    "node",
    "switchboard-slow",
    "switchboard-redis",
)
COMMAND_TIMEOUT_S = 180.0
DIAGNOSTICS = ("sb+tracemalloc", "sb+gclog")  # not measurements: left out of --experiments
QUIET_CPU_FRACTION = 0.08  # "settled": the server uses under 8% of a core over a window


@attrs.frozen
class Config:
    """What the run does; `--quick` shrinks every workload."""

    servers: tuple[str, ...] = DEFAULT_SERVERS
    hold_servers: tuple[str, ...] = ("switchboard",)
    connections: int = 5000
    concurrency: int = 200
    room_members: int = 2000
    fanout_rate: float = 10.0
    phase_s: float = 10.0
    rooms: int = 500
    room_size: int = 10
    room_period_s: float = 2.0
    hold: int = 10_000
    workers: int = 2
    compress: bool = False
    profile: bool = False  # py-spy on the Python servers during the measured phases
    workloads: tuple[str, ...] = ("one_room", "many_rooms")  # after the connect storm


QUICK = Config(connections=1000, room_members=500, phase_s=4.0, rooms=100, hold=2000)


class Generators:
    """The load generator worker processes and their pipes."""

    def __init__(self, count: int, lifetime_s: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection[Command, object]] = []
        self.processes: list[BaseProcess] = []
        for index in range(count):
            parent, child = context.Pipe()
            process = context.Process(
                target=loadgen.main,
                args=(child, lifetime_s),
                name=f"loadgen-{index}",
                daemon=True,
            )
            process.start()
            child.close()
            self.pipes.append(parent)
            self.processes.append(process)

    @property
    def count(self) -> int:
        """How many workers."""
        return len(self.pipes)

    def call(self, commands: Mapping[int, Command]) -> dict[int, Reply]:
        """Send each worker its command, then wait for every reply (bounded)."""
        try:
            for index, command in commands.items():
                self.pipes[index].send(command)
            replies: dict[int, Reply] = {}
            for index in commands:
                if not self.pipes[index].poll(COMMAND_TIMEOUT_S):
                    raise RuntimeError(f"load generator {index} did not answer in time")
                reply: object = self.pipes[index].recv()
                if not isinstance(reply, Reply):
                    raise RuntimeError(f"load generator {index} answered {reply!r:.100}")
                replies[index] = reply
        except (OSError, EOFError) as exc:
            codes = [p.exitcode for p in self.processes]
            raise RuntimeError(f"a load generator died (exit codes {codes}): {exc}") from None
        return replies

    def each(self, command: Command) -> list[Reply]:
        """The same command to every worker."""
        return list(self.call(dict.fromkeys(range(self.count), command)).values())

    def cpu_s(self) -> float:
        """CPU seconds of all workers."""
        return sum(proc_stat(p.pid).cpu_s for p in self.processes if p.pid is not None)

    def worker_of(self, conn: int) -> tuple[int, int]:
        """Global connection index -> (worker, index within the worker)."""
        return conn % self.count, conn // self.count

    def prepare(self, target: Target, user_ids: Sequence[str]) -> None:
        """Give worker w the connections w, w+W, w+2W, ..."""
        self.call(
            {
                w: Prepare(target, servers.BENCH_SECRET, tuple(user_ids[w :: self.count]))
                for w in range(self.count)
            }
        )

    def close(self) -> None:
        """Stop every worker."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.send(Quit())
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.terminate()


def log(message: str) -> None:
    """Progress on stderr (stdout gets the tables)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _check(replies: Sequence[Reply], what: str) -> None:
    failed = sum(r.failed for r in replies)
    if failed:
        errors = sorted({e for r in replies for e in r.errors})
        log(f"  {what}: {failed} failed, e.g. {errors[:3]}")


def settle(server: RunningServer, min_s: float = 1.0, max_s: float = 15.0) -> float:
    """Wait until the server (and its Redis) is quiet; how long it took."""
    started = time.monotonic()
    window = 0.5

    def busy() -> float:
        return server.server_stat().cpu_s + server.redis_cpu_s()

    last = busy()
    while True:
        time.sleep(window)
        now = busy()
        elapsed = time.monotonic() - started
        if (elapsed >= min_s and (now - last) / window < QUIET_CPU_FRACTION) or elapsed > max_s:
            return elapsed
        last = now


def connect_all(gens: Generators, concurrency: int) -> tuple[int, int, float]:
    """Open every prepared connection: (opened, failed, connections per second)."""
    per_worker = max(1, concurrency // gens.count)
    replies = gens.each(Connect(per_worker, timeout_s=60.0))
    _check(replies, "connect")
    opened = sum(r.ok for r in replies)
    span = max(r.finished_at for r in replies) - min(r.started_at for r in replies)
    return opened, sum(r.failed for r in replies), opened / span if span > 0 else 0.0


def create_rooms(gens: Generators, creators: Mapping[str, int]) -> dict[str, str]:
    """Room name -> key (Switchboard's room id, or the name on the baselines)."""
    items: dict[int, list[tuple[int, str]]] = {w: [] for w in range(gens.count)}
    for name, conn in creators.items():
        worker, local = gens.worker_of(conn)
        items[worker].append((local, name))
    replies = gens.call({w: CreateRooms(tuple(i), timeout_s=30.0) for w, i in items.items()})
    _check(list(replies.values()), "create rooms")
    keys = {name: key for r in replies.values() for name, key in r.keys}
    if len(keys) != len(creators):
        raise RuntimeError(f"only {len(keys)} of {len(creators)} rooms could be created")
    return keys


def join_rooms(gens: Generators, members: Mapping[int, str], concurrency: int) -> int:
    """Each connection joins its room; how many joins failed."""
    items: dict[int, list[tuple[int, str]]] = {w: [] for w in range(gens.count)}
    for conn, key in members.items():
        worker, local = gens.worker_of(conn)
        items[worker].append((local, key))
    per_worker = max(1, concurrency // gens.count)
    replies = gens.call({w: Join(tuple(i), per_worker, timeout_s=60.0) for w, i in items.items()})
    _check(list(replies.values()), "join")
    return sum(r.failed for r in replies.values())


def send_phase(
    server: RunningServer,
    gens: Generators,
    plans: Sequence[SendPlan],
    room_size: int,
    profiler: Profiler | None = None,
) -> Figures:
    """Run the send plans and measure: CPU per delivery, loss, latency, throughput."""
    gens.each(Arm())
    per_worker: dict[int, list[SendPlan]] = {w: [] for w in range(gens.count)}
    for plan in plans:
        worker, local = gens.worker_of(plan.conn)
        per_worker[worker].append(attrs.evolve(plan, conn=local))
    with profiler or Profiler(server.server_pid, None):
        commands0 = server.redis_commands()
        cpu0, redis0, gen0 = server.server_stat().cpu_s, server.redis_cpu_s(), gens.cpu_s()
        sent = gens.call({w: Send(tuple(p), ack_timeout_s=10.0) for w, p in per_worker.items()})
        _check(list(sent.values()), "send (acks)")
        messages = sum(r.ok for r in sent.values())
        expected = messages * room_size
        received, progress_at = 0, time.monotonic()
        last_send_done = progress_at
        while True:
            now_received = sum(r.received for r in gens.each(Poll()))
            now = time.monotonic()
            if now_received > received:
                received, progress_at = now_received, now
            if received >= expected or now - progress_at > 2.0 or now - last_send_done > 30.0:
                break
            time.sleep(0.05)
        cpu1, redis1, gen1 = server.server_stat().cpu_s, server.redis_cpu_s(), gens.cpu_s()
        commands1 = server.redis_commands()
    collected = gens.each(Collect())
    received = sum(r.received for r in collected)
    latencies = sorted(v for r in collected for v in r.latencies_us)
    acks = sorted(v for r in sent.values() for v in r.ack_latencies_us)
    first_send = min(p.first_at for p in plans)
    last_receive = max(r.last_receive_at for r in collected)
    span = last_receive - first_send
    cpu = cpu1 - cpu0
    per = max(received, 1)
    figures: Figures = {
        "room_size": room_size,
        "messages_sent": messages,
        "send_failures": sum(r.failed for r in sent.values()),
        "expected": expected,
        "delivered": received,
        "loss": expected - received,
        "cpu_us_per_delivery": cpu * 1e6 / per,
        "server_cpu_pct": 100 * cpu / span if span > 0 else None,
        "delivered_per_s": received / span if span > 0 else None,
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "max_ms": _ms(float(latencies[-1]) if latencies else None),
        "ack_p50_ms": _ms(percentile(acks, 0.50)),
        "ack_p99_ms": _ms(percentile(acks, 0.99)),
        "generator_cpu_us_per_delivery": (gen1 - gen0) * 1e6 / per,
        "server_cpu_s": cpu,
    }
    if server.redis is not None:
        figures["redis_cpu_us_per_delivery"] = (redis1 - redis0) * 1e6 / per
        calls = {n: c - commands0.get(n, 0) for n, c in commands1.items()}
        calls = {n: c for n, c in sorted(calls.items(), key=lambda i: -i[1]) if c > 0}
        figures["redis_commands_per_message"] = sum(calls.values()) / max(messages, 1)
        figures["redis_top_commands"] = ", ".join(f"{n}={c}" for n, c in list(calls.items())[:6])
    return figures


def profiled(server: RunningServer, config: Config, phase: str) -> Profiler:
    """py-spy on a Python server during a phase, when `--profile` is on."""
    output = None
    if config.profile and server.kind.launcher != "node" and server.profile_dir is not None:
        output = server.profile_dir / f"{server.label}.{phase}.txt"
    return Profiler(server.server_pid, output)


def _ms(us: float | None) -> float | None:
    return None if us is None else us / 1000


def _target(server: RunningServer, config: Config) -> Target:
    dialect: loadgen.Dialect = "switchboard" if server.kind.launcher == "switchboard" else "plain"
    return Target("127.0.0.1", server.port, dialect, config.compress)


def warm_up(server: RunningServer, gens: Generators, config: Config) -> None:
    """A few connections, a room and messages, so lazy imports and caches are not measured."""
    count = 8 * gens.count
    gens.prepare(_target(server, config), [f"warm{i}" for i in range(count)])
    connect_all(gens, count)
    keys = create_rooms(gens, {"warm-up": 0})
    join_rooms(gens, dict.fromkeys(range(1, count), keys["warm-up"]), count)
    plan = SendPlan(1, keys["warm-up"], time.time() + 0.1, 0.05, 5)
    send_phase(server, gens, [plan], count)
    gens.each(Close(10.0))


def connect_storm(
    server: RunningServer, gens: Generators, config: Config, count: int, prefix: str
) -> Figures:
    """Open `count` connections as fast as the server takes them; rate, CPU and RSS."""
    settle(server)
    server.snapshot_allocations()
    before = server.server_stat()
    commands0 = server.redis_commands()
    gens.prepare(_target(server, config), [f"{prefix}{i}" for i in range(count)])
    with profiled(server, config, f"connect{count}"):
        gen0 = gens.cpu_s()
        opened, failed, rate = connect_all(gens, config.concurrency)
        during = server.server_stat()
        gen1 = gens.cpu_s()
    commands1 = server.redis_commands()
    settle(server)
    after = server.server_stat()
    server.snapshot_allocations()
    per = max(opened, 1)
    return {
        "connections": opened,
        "failed": failed,
        "conn_per_s": rate,
        "cpu_us_per_conn": (during.cpu_s - before.cpu_s) * 1e6 / per,
        "rss_kb_per_conn": (after.rss_kb - before.rss_kb) / per,
        "rss_mb_after": after.rss_kb / 1024,
        "generator_cpu_us_per_conn": (gen1 - gen0) * 1e6 / per,
        **(
            {"redis_commands_per_conn": (sum(commands1.values()) - sum(commands0.values())) / per}
            if server.redis is not None
            else {}
        ),
    }


def one_room(server: RunningServer, gens: Generators, config: Config) -> Figures:
    """Connections 0..M-1 in one room, connection M (also a member) sends at a fixed rate."""
    members = config.room_members
    keys = create_rooms(gens, {"big-room": 0})
    failed = join_rooms(gens, dict.fromkeys(range(1, members + 1), keys["big-room"]), 200)
    settle(server, min_s=1.5)
    count = max(1, round(config.fanout_rate * config.phase_s))
    plan = SendPlan(members, keys["big-room"], time.time() + 0.3, 1 / config.fanout_rate, count)
    figures = send_phase(server, gens, [plan], members + 1, profiled(server, config, "one_room"))
    figures["join_failures"] = failed
    return figures


def many_rooms(server: RunningServer, gens: Generators, config: Config) -> Figures:
    """R rooms of S connections; the first member of each sends every period, staggered."""
    size, rooms, period = config.room_size, config.rooms, config.room_period_s
    keys = create_rooms(gens, {f"room-{r}": r * size for r in range(rooms)})
    members = {r * size + m: keys[f"room-{r}"] for r in range(rooms) for m in range(1, size)}
    failed = join_rooms(gens, members, 200)
    settle(server, min_s=1.5)
    count = max(1, round(config.phase_s / period))
    start = time.time() + 0.3
    plans = [
        SendPlan(r * size, keys[f"room-{r}"], start + period * r / rooms, period, count)
        for r in range(rooms)
    ]
    figures = send_phase(server, gens, plans, size, profiled(server, config, "many_rooms"))
    figures["join_failures"] = failed
    return figures


def run_server(
    kind: ServerKind, gens: Generators, config: Config, run_dir: Path
) -> dict[str, Figures]:
    """Every workload against a fresh instance of one server."""
    log(f"{kind.name}: starting ({kind.note})")
    server = RunningServer(kind, run_dir, kind.name, config.profile)
    results: dict[str, Figures] = {}
    try:
        warm_up(server, gens, config)
        log(f"{kind.name}: connect storm of {config.connections}")
        results["connect_storm"] = connect_storm(server, gens, config, config.connections, "u")
        if "one_room" in config.workloads:
            log(
                f"{kind.name}: one room of {config.room_members} + 1 sender, "
                f"{config.fanout_rate:g} messages/s"
            )
            results["one_room"] = one_room(server, gens, config)
        if "many_rooms" in config.workloads:
            log(f"{kind.name}: {config.rooms} rooms of {config.room_size}")
            results["many_rooms"] = many_rooms(server, gens, config)
    finally:
        gens.each(Close(15.0))
        server.stop()
    return results


def hold(kind: ServerKind, gens: Generators, config: Config, run_dir: Path) -> Figures:
    """Hold `config.hold` connections on a fresh instance: RSS per connection, idle CPU."""
    log(f"{kind.name}: hold {config.hold} connections")
    server = RunningServer(kind, run_dir, f"{kind.name}.hold", config.profile)
    try:
        warm_up(server, gens, config)
        figures = connect_storm(server, gens, config, config.hold, "h")
        idle0 = server.server_stat().cpu_s
        time.sleep(5.0)
        figures["idle_cpu_pct"] = 100 * (server.server_stat().cpu_s - idle0) / 5.0
        return figures
    finally:
        gens.each(Close(15.0))
        server.stop()


def available(names: Sequence[str]) -> tuple[list[ServerKind], dict[str, str]]:
    """The servers that can run here, and why the others cannot."""
    kinds: list[ServerKind] = []
    skipped: dict[str, str] = {}
    for name in dict.fromkeys(names):  # each server once, in the order given
        kind = KINDS.get(name)
        if kind is None:
            raise SystemExit(f"unknown server {name!r}; known: {', '.join(KINDS)}")
        reason = servers.node_available() if kind.launcher == "node" else None
        if reason is None and kind.redis:
            reason = servers.redis_available()
        if reason is None:
            kinds.append(kind)
        else:
            skipped[name] = reason
    return kinds, skipped


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in (
        "python-socketio",
        "python-engineio",
        "aiohttp",
        "PyJWT",
        "limits",
        "structlog",
        "uvloop",
        "orjson",
    ):
        try:
            from importlib.metadata import version

            found[package] = version(package)
        except Exception:
            found[package] = "not installed"
    for name, argv in (("node", ["node", "--version"]), ("redis", ["redis-server", "-v"])):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            found[name] = done.stdout.strip()
        except OSError:
            found[name] = "not installed"
    return found


def source() -> dict[str, str]:
    """Which code was measured: the commit and whether the working tree differs from it."""
    found: dict[str, str] = {}
    for key, argv in (
        ("commit", ["git", "rev-parse", "HEAD"]),
        ("changed_files", ["git", "status", "--porcelain", "--untracked-files=no"]),
    ):
        try:
            done = subprocess.run(
                argv, cwd=servers.ROOT, capture_output=True, text=True, timeout=10, check=False
            )
        except OSError:
            continue
        out = done.stdout.strip()
        found[key] = out if key == "commit" else str(len(out.splitlines()) if out else 0)
    return found


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "memory_gib": f"{int(memory) / 1024 / 1024:.1f}",
        "kernel": platform.release(),
        "load_average_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def print_tables(results: Mapping[str, Mapping[str, Figures]], notes: Sequence[str]) -> None:
    """One table per workload, one column per server."""
    for workload, (title, metrics) in WORKLOADS.items():
        columns = {s: figures[workload] for s, figures in results.items() if workload in figures}
        if columns:
            print(table(title, metrics, columns))
            print()
    for note in notes:
        print(note)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path]:
    """Command-line options -> the run's config and output path."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads (about 90 s)")
    parser.add_argument(
        "--servers",
        help=f"comma-separated, in order (default {','.join(DEFAULT_SERVERS)}; known: "
        f"{','.join(KINDS)})",
    )
    parser.add_argument(
        "--hold-servers", help="servers for the hold workload (default switchboard; '' for none)"
    )
    parser.add_argument(
        "--experiments",
        action="store_true",
        help="add Switchboard with each candidate optimisation (tests/perf/variants.py): "
        + ",".join(e for e in servers.EXPERIMENTS if e not in DIAGNOSTICS),
    )
    parser.add_argument(
        "--workloads",
        help="after the connect storm (always run): one_room,many_rooms (default both; '' "
        "for the storm only)",
    )
    parser.add_argument("--connections", type=int, help="connect storm size (5000)")
    parser.add_argument("--room-members", type=int, help="members of the big room (2000)")
    parser.add_argument("--rate", type=float, help="messages per second into the big room (10)")
    parser.add_argument("--seconds", type=float, help="length of each send phase (10)")
    parser.add_argument("--rooms", type=int, help="small rooms (500)")
    parser.add_argument("--room-size", type=int, help="members per small room (10)")
    parser.add_argument("--hold", type=int, help="connections held (10000)")
    parser.add_argument("--workers", type=int, help="load generator processes (2)")
    parser.add_argument("--concurrency", type=int, help="handshakes in flight (200)")
    parser.add_argument(
        "--compress",
        action="store_true",
        help="clients offer permessage-deflate, as browsers do (default: they do not)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record py-spy profiles of the Python servers in each measured phase (slower; "
        "summarise with python -m tests.perf.profile_summary)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the JSON results")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else Config()
    changes: dict[str, object] = {}
    names = config.servers
    if args.servers:
        names = tuple(s.strip() for s in args.servers.split(",") if s.strip())
    if args.experiments:
        names += tuple(e for e in servers.EXPERIMENTS if e not in names and e not in DIAGNOSTICS)
    changes["servers"] = names
    if args.hold_servers is not None:
        changes["hold_servers"] = tuple(
            s.strip() for s in args.hold_servers.split(",") if s.strip()
        )
    for option, field in (
        ("connections", "connections"),
        ("room_members", "room_members"),
        ("rate", "fanout_rate"),
        ("seconds", "phase_s"),
        ("rooms", "rooms"),
        ("room_size", "room_size"),
        ("hold", "hold"),
        ("workers", "workers"),
        ("concurrency", "concurrency"),
    ):
        value: object = getattr(args, option)
        if value is not None:
            changes[field] = value
    if args.workloads is not None:
        chosen = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
        unknown = set(chosen) - {"one_room", "many_rooms"}
        if unknown:
            parser.error(f"unknown workloads {sorted(unknown)}")
        changes["workloads"] = chosen
    if args.compress:
        changes["compress"] = True
    if args.profile:
        changes["profile"] = True
    config = attrs.evolve(config, **changes)  # type: ignore[arg-type]
    needed = max(
        config.room_members + 1 if "one_room" in config.workloads else 0,
        config.rooms * config.room_size if "many_rooms" in config.workloads else 0,
    )
    if config.connections < needed:
        parser.error(f"--connections must be at least {needed} for the room workloads")
    return config, args.output


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when every server ran."""
    config, output = parse_args(argv)
    limit = loadgen.raise_open_files_limit()  # inherited by the servers and the workers
    kinds, skipped = available(config.servers)
    hold_kinds, hold_skipped = available(config.hold_servers)
    skipped.update(hold_skipped)
    run_dir = output.parent / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    run_dir.mkdir(parents=True, exist_ok=True)
    log(f"open files limit {limit}; logs in {run_dir}")
    for name, reason in skipped.items():
        log(f"skipping {name}: {reason}")
    started = time.monotonic()
    generator_loop = (
        "uvloop"
        if importlib.util.find_spec("uvloop") and os.environ.get("SWITCHBOARD_BENCH_ASYNCIO") != "1"
        else "asyncio"
    )
    gens = Generators(config.workers, lifetime_s=3600.0)
    results: dict[str, dict[str, Figures]] = {}
    generator_cpu0 = gens.cpu_s()
    failures: list[str] = []
    steps: list[tuple[str, Callable[[], None]]] = []
    for kind in kinds:

        def step(kind: ServerKind = kind) -> None:
            results.setdefault(kind.name, {}).update(run_server(kind, gens, config, run_dir))

        steps.append((kind.name, step))
    for kind in hold_kinds:

        def hold_step(kind: ServerKind = kind) -> None:
            results.setdefault(kind.name, {})["hold"] = hold(kind, gens, config, run_dir)

        steps.append((f"{kind.name} (hold)", hold_step))
    try:
        for name, run in steps:
            try:
                run()
            except (RuntimeError, OSError) as exc:
                log(f"{name}: FAILED: {exc}")
                failures.append(f"{name}: {exc}")
    finally:
        generator_cpu = gens.cpu_s() - generator_cpu0
        gens.close()
    elapsed = time.monotonic() - started
    notes = [
        f"servers: {', '.join(f'{k.name} = {k.note}' for k in kinds)}",
        f"load: {config.workers} generator processes ({generator_loop}), loopback, "
        f"{'permessage-deflate offered' if config.compress else 'no compression'}; "
        f"generator CPU {generator_cpu:.1f} s in {elapsed:.0f} s",
        *(f"skipped {name}: {reason}" for name, reason in skipped.items()),
        *(f"FAILED {failure}" for failure in failures),
    ]
    print_tables(results, notes)
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": _versions(),
        "source": source(),
        "config": attrs.asdict(config),
        "servers": {k.name: k.note for k in [*kinds, *hold_kinds]},
        "skipped": skipped,
        "failures": failures,
        "elapsed_s": round(elapsed, 1),
        "generator_cpu_s": round(generator_cpu, 2),
        "generator_loop": generator_loop,
        "results": results,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults: {output}  (server logs: {run_dir})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
