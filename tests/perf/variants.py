"""Switchboard with candidate optimisations applied from the outside, to measure them.

    SWITCHBOARD_BENCH_EXPERIMENTS=limiter,gc python -m tests.perf.variants serve --dev

Nothing here is part of the server: each experiment monkeypatches the installed code before
`switchboard serve` runs, so that `scripts/bench` can put a figure on a suggestion before
anyone changes the server. Experiments (comma-separated):

(`uvdirect`, `limiter` and `gc`, measured here first, are now part of the server: the
duck-typed transport check in adapters/socketio/delivery.py, adapters/ratelimit/gcra.py,
and `tune_garbage_collector` in application/cli.py; `sb+nogc` measures the last one off.)

- `jwtcache`: PyJWT's HMAC key preparation (which tries to parse the secret as a DER key and
  certificate on every decode) memoised per secret.

Diagnostics (not optimisations):

- `gclog`: every garbage collection of generation 2, or longer than 5 ms, is written to
  stderr (the server log) with its duration and the number of objects in generation 2.
- `tracemalloc`: trace allocations (12 frames); each SIGUSR1 takes a snapshot and writes what
  grew since the previous one to the file named by `SWITCHBOARD_BENCH_TRACEMALLOC_OUT` (the
  benchmark signals before and after a connect storm).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

EXPERIMENTS_ENV = "SWITCHBOARD_BENCH_EXPERIMENTS"
KNOWN = ("jwtcache", "gclog", "tracemalloc")


def apply_jwtcache() -> None:
    """Memoise PyJWT's HMAC key preparation per key."""
    from jwt.algorithms import HMACAlgorithm

    original = HMACAlgorithm.prepare_key
    prepared: dict[str | bytes, bytes] = {}

    def prepare_key(self: HMACAlgorithm, key: str | bytes) -> bytes:
        found = prepared.get(key)
        if found is None:
            found = prepared[key] = original(self, key)
        return found

    HMACAlgorithm.prepare_key = prepare_key  # type: ignore[method-assign]


def apply_gclog() -> None:
    """Log slow and full garbage collections (see the module docstring)."""
    import gc

    started = [0.0]

    def observe(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
            return
        took_ms = (time.perf_counter() - started[0]) * 1000
        generation = info.get("generation", -1)
        if generation == 2 or took_ms > 5:
            print(
                f"gc generation={generation} ms={took_ms:.1f} collected={info.get('collected')} "
                f"tracked={len(gc.get_objects(2)) if generation == 2 else -1}",
                file=sys.stderr,
                flush=True,
            )

    gc.callbacks.append(observe)


def apply_tracemalloc() -> None:
    """Allocation tracing with a diff per SIGUSR1 (see the module docstring)."""
    import signal
    import tracemalloc
    from pathlib import Path

    output = Path(os.environ.get("SWITCHBOARD_BENCH_TRACEMALLOC_OUT", "/tmp/tracemalloc.txt"))
    tracemalloc.start(12)
    previous: list[tracemalloc.Snapshot] = []

    def dump(signum: int, frame: object) -> None:
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if previous:
            lines: list[str] = []
            for group in ("lineno", "traceback"):
                stats = snapshot.compare_to(previous[-1], group)
                grown = sum(s.size_diff for s in stats)
                lines.append(f"== grown {grown / 1024:.0f} KiB, by {group}")
                for stat in stats[: 400 if group == "lineno" else 15]:
                    lines.append(
                        f"{stat.size_diff / 1024:10.1f} KiB {stat.count_diff:+8d} blocks  "
                        + (
                            str(stat.traceback[0])
                            if group == "lineno"
                            else "\n      ".join(str(f) for f in stat.traceback.format()[-16:])
                        )
                    )
            output.write_text("\n".join(lines) + "\n")
        previous[:] = [snapshot]

    signal.signal(signal.SIGUSR1, dump)


APPLY: dict[str, Callable[[], None]] = {
    "jwtcache": apply_jwtcache,
    "gclog": apply_gclog,
    "tracemalloc": apply_tracemalloc,
}


def main() -> int:
    """Apply the experiments named in the environment, then run `switchboard` as usual."""
    names = [n.strip() for n in os.environ.get(EXPERIMENTS_ENV, "").split(",") if n.strip()]
    for name in names:
        if name not in APPLY:
            print(f"unknown experiment {name!r}; known: {', '.join(KNOWN)}", file=sys.stderr)
            return 2
        APPLY[name]()
    print(f"switchboard experiments: {', '.join(names) or 'none'}", file=sys.stderr, flush=True)
    from application.cli import main as switchboard_main

    return switchboard_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
