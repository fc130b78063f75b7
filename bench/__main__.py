"""``python -m bench`` (``make bench``): run every benchmark and record its results.

Each benchmark writes JSON, a Markdown summary and a plot to ``bench/results``; the
README summarises them. They are long runs on the real models, so they are not part of
the test suite. Pass benchmark names to run only some: ``python -m bench overhead``.
"""

from __future__ import annotations

import importlib
import sys
import time

BENCHMARKS = ("overhead", "detectors", "ladder")


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
            file=sys.stderr,
        )
        return 2
    for name in chosen:
        started = time.perf_counter()
        print(f"== bench.{name} ==", file=sys.stderr, flush=True)
        module = importlib.import_module(f"bench.{name}")
        status = module.main([])
        print(
            f"== bench.{name}: done in {time.perf_counter() - started:.0f} s ==",
            file=sys.stderr,
            flush=True,
        )
        if status:
            return int(status)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
