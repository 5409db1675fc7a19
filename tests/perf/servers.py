"""The servers under test: how each is started and stopped, and its CPU and RSS from /proc."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import attrs

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "perf" / "node"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

Launcher = Literal["switchboard", "baseline", "node"]

BENCH_SECRET = "switchboard-benchmark-secret-0123456789-abcdefghij"
BENCH_API_KEY = "switchboard-benchmark-api-key-0123456789"

SWITCHBOARD_ENV = {
    "SWITCHBOARD_JWT_SECRET": BENCH_SECRET,
    "SWITCHBOARD_API_KEY": BENCH_API_KEY,
    "SWITCHBOARD_RATE_HANDSHAKES_PER_IP": "100000 per second",
    "SWITCHBOARD_RATE_MESSAGE_SEND": "100000 per second",
    "SWITCHBOARD_RATE_COMMANDS": "100000 per second",
    "SWITCHBOARD_MAX_CONNECTIONS_PER_USER": "10000",
}
"""Fixed secrets and the admission limits raised out of the way (each connection is its own
user anyway). Everything else is Switchboard's default, logging included."""


@attrs.frozen
class ServerKind:
    """One column of the tables: a server and how to run it."""

    name: str
    launcher: Launcher
    env: tuple[tuple[str, str], ...] = ()
    redis: bool = False
    experiments: tuple[str, ...] = ()  # see tests/perf/variants.py
    note: str = ""


KINDS: dict[str, ServerKind] = {
    "python-socketio": ServerKind(
        "python-socketio", "baseline", note="bare python-socketio AsyncServer on aiohttp"
    ),
    "node": ServerKind("node", "node", note="Node socket.io 4.x"),
    "switchboard": ServerKind(
        "switchboard", "switchboard", note="memory mode, defaults (fast fan-out)"
    ),
    "switchboard-slow": ServerKind(
        "switchboard-slow",
        "switchboard",
        env=(("SWITCHBOARD_SLOW_FANOUT", "true"),),
        note="memory mode, SWITCHBOARD_SLOW_FANOUT=true",
    ),
    "switchboard-redis": ServerKind(
        "switchboard-redis", "switchboard", redis=True, note="Redis mode (own redis-server)"
    ),
}


def _experiment(name: str, experiments: tuple[str, ...], note: str, **env: str) -> ServerKind:
    return ServerKind(
        name, "switchboard", env=tuple(env.items()), experiments=experiments, note=note
    )


EXPERIMENTS: dict[str, ServerKind] = {
    kind.name: kind
    for kind in (
        _experiment(
            "sb+asyncio", (), "SWITCHBOARD_EVENT_LOOP=asyncio", SWITCHBOARD_EVENT_LOOP="asyncio"
        ),
        _experiment("sb+stdjson", (), "SWITCHBOARD_JSON=stdlib", SWITCHBOARD_JSON="stdlib"),
        _experiment(
            "sb+quietlog", (), "SWITCHBOARD_LOG_LEVEL=warning", SWITCHBOARD_LOG_LEVEL="warning"
        ),
        _experiment(
            "sb+nogc", (), "SWITCHBOARD_NO_GC_TUNING=true", SWITCHBOARD_NO_GC_TUNING="true"
        ),
        _experiment("sb+jwtcache", ("jwtcache",), "PyJWT HMAC key prepared once (variants.py)"),
        _experiment("sb+gclog", ("gclog",), "logs full and slow collections (diagnostic)"),
        _experiment("sb+tracemalloc", ("tracemalloc",), "allocation tracing (diagnostic)"),
    )
}
"""Switchboard with a setting changed, or a candidate optimisation applied by
tests/perf/variants.py (the diagnostics measure nothing: they write to the server log)."""
KINDS.update(EXPERIMENTS)


def free_port() -> int:
    """A TCP port free on the loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark process dies (PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)


@attrs.frozen
class ProcStat:
    """CPU seconds (user + system, every thread) and resident memory of a process."""

    cpu_s: float
    rss_kb: int


def proc_stat(pid: int) -> ProcStat:
    """Read /proc/<pid>/stat (utime + stime) and /proc/<pid>/status (VmRSS)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
            break
    return ProcStat(cpu, rss)


class Process:
    """A child process started by the benchmark, stopped for sure at the end."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # the coordinator has no threads
            )

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def stat(self) -> ProcStat:
        """Its CPU time and RSS now."""
        return proc_stat(self.pid)

    def alive(self) -> bool:
        """Still running?"""
        return self.popen.poll() is None

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after `grace_s`."""
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5.0)


def wait_listening(process: Process, port: int, timeout_s: float = 30.0) -> None:
    """Wait until the port accepts connections (the server's app is started by then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited at start; see {process.log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not listen on {port} within {timeout_s} s")


def node_available() -> str | None:
    """Why the Node baseline cannot run, or None when it can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_DIR / "node_modules" / "socket.io").is_dir():
        return "tests/perf/node has no node_modules (run npm ci there)"
    return None


def redis_available() -> str | None:
    """Why Redis mode cannot run, or None when it can."""
    return None if shutil.which("redis-server") else "redis-server is not installed"


class RunningServer:
    """A server under test (and its own redis-server in Redis mode)."""

    def __init__(self, kind: ServerKind, run_dir: Path, label: str, profile: bool = False) -> None:
        self.kind = kind
        self.label = label
        self.profile_dir = run_dir / "profiles" if profile else None
        if self.profile_dir is not None:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.redis: Process | None = None
        env = dict(os.environ)
        env.pop("REDIS_URL", None)
        env["PYTHONUNBUFFERED"] = "1"
        if kind.redis:
            redis_port = free_port()
            self.redis = Process(
                "redis-server",
                [
                    "redis-server",
                    "--port",
                    str(redis_port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxclients",
                    "20000",
                ],
                env,
                run_dir / f"{label}.redis.log",
            )
            wait_listening(self.redis, redis_port)
            self.redis_port = redis_port
            env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        argv: list[str]
        if kind.launcher == "switchboard":
            env.update(SWITCHBOARD_ENV)
            if kind.redis:
                env["SWITCHBOARD_STORE"] = "redis"
            if kind.experiments:
                env["SWITCHBOARD_BENCH_EXPERIMENTS"] = ",".join(kind.experiments)
                env["SWITCHBOARD_BENCH_TRACEMALLOC_OUT"] = str(run_dir / f"{label}.tracemalloc.txt")
            env.update(kind.env)
            # experiments (extra packages, monkeypatches) start through tests.perf.variants
            command = (
                [sys.executable, "-m", "tests.perf.variants"]
                if kind.experiments
                else [str(Path(sys.executable).parent / "switchboard")]
            )
            argv = [*command, "serve", "--dev", "--port", str(self.port)]
        elif kind.launcher == "baseline":
            env["SWITCHBOARD_JWT_SECRET"] = BENCH_SECRET
            argv = [sys.executable, "-m", "tests.perf.baseline_server", "--port", str(self.port)]
        else:
            env["SWITCHBOARD_JWT_SECRET"] = BENCH_SECRET
            env["PORT"] = str(self.port)
            argv = ["node", str(NODE_DIR / "server.js")]
        try:
            self.process = Process(kind.name, argv, env, run_dir / f"{label}.log")
            wait_listening(self.process, self.port)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        """The Engine.IO WebSocket endpoint."""
        return f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"

    @property
    def server_pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def server_stat(self) -> ProcStat:
        """CPU and RSS of the server process itself."""
        return self.process.stat()

    def snapshot_allocations(self) -> None:
        """With the tracemalloc experiment: snapshot (and diff with the previous one); waits
        until the server is done (a snapshot of a big heap takes seconds)."""
        if "tracemalloc" not in self.kind.experiments or not self.process.alive():
            return
        self.process.popen.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 180
        last = self.server_stat().cpu_s
        while time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.server_stat().cpu_s
            if now - last < 0.1:
                return
            last = now

    def redis_commands(self) -> dict[str, int]:
        """Calls per Redis command so far (INFO commandstats; empty without Redis)."""
        if self.redis is None:
            return {}
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=5) as conn:
            conn.sendall(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
            data = b""
            while True:
                chunk = conn.recv(65536)
                data += chunk
                head, _, body = data.partition(b"\r\n")
                if not chunk or (head[:1] == b"$" and len(body) >= int(head[1:])):
                    break
        calls: dict[str, int] = {}
        for line in data.decode(errors="replace").splitlines():
            if line.startswith("cmdstat_"):
                name, _, stats = line[len("cmdstat_") :].partition(":")
                fields = dict(f.split("=", 1) for f in stats.split(",") if "=" in f)
                calls[name] = int(fields.get("calls", "0"))
        return calls

    def redis_cpu_s(self) -> float:
        """CPU seconds of its redis-server (0 without Redis)."""
        return self.redis.stat().cpu_s if self.redis is not None else 0.0

    def stop(self) -> None:
        """Stop the server, then its redis-server."""
        process = getattr(self, "process", None)
        if isinstance(process, Process):
            process.stop()
        if self.redis is not None:
            self.redis.stop()


class Profiler:
    """py-spy sampling a Python server for the length of a `with` block (raw collapsed stacks)."""

    def __init__(self, pid: int, output: Path | None) -> None:
        self._pid = pid
        self._output = output
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        spy = Path(sys.executable).parent / "py-spy"
        if self._output is not None and spy.exists():
            self._process = subprocess.Popen(
                [
                    str(spy),
                    "record",
                    "--pid",
                    str(self._pid),
                    "--format",
                    "raw",
                    "--nolineno",
                    "--rate",
                    "200",
                    "--output",
                    str(self._output),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.3)  # let it attach
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGINT)
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
