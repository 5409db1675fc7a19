"""Summarise py-spy raw profiles written by `scripts/bench --profile`: where the time goes.

    .venv/bin/python -m tests.perf.profile_summary /tmp/switchboard-bench/run-.../profiles/*.txt

For each file: the functions with the most samples on the stack (inclusive) and at the top
of the stack (self), as a share of all samples.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int, match: str) -> str:
    """The text summary of one raw (collapsed stacks) profile."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"== {path.name}: {total} samples"]
    if not total:
        return "\n".join(lines)
    for title, counter in (("inclusive", inclusive), ("self", own)):
        lines.append(f"-- {title}")
        shown = [(f, c) for f, c in counter.most_common() if match in f][:top]
        lines.extend(f"{100 * c / total:6.1f}%  {f}" for f, c in shown)
    return "\n".join(lines)


def main() -> None:
    """Print a summary per file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only frames containing this text")
    args = parser.parse_args()
    for path in args.files:
        print(summarise(path, args.top, args.match))
        print()


if __name__ == "__main__":
    main()
