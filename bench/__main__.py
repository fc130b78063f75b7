"""``python -m bench`` (``make bench``): every benchmark, in the order their inputs need.

Each step writes JSON, a Markdown summary and a plot to ``bench/results``; the README's
figures are then regenerated from those files (``bench.readme``). Calibration comes before
the held-out runs it feeds: the tool choice is fitted on BFCL's training half, the ladder
policy on each suite's training split, and the held-out reports read the fitted file. These are
long runs on the real models (hours on two cores), not part of the test suite.

    python -m bench                 # everything
    python -m bench overhead bfcl   # only the named steps
    python -m bench --list
"""

from __future__ import annotations

import importlib
import sys
import time

FITTED = "bench/results/calibration.json"
STEPS: dict[str, tuple[str, list[str]]] = {
    "overhead": ("overhead", ["--against", "HEAD~1"]),
    "detectors": ("detectors", []),
    "calibrate-choice": ("calibrate", ["choice"]),
    "gsm-train": (
        "ladder",
        ["--suite", "gsm", "--split", "train", "--configs", "plain", "small", "large"],
    ),
    "calibrate-policy": ("calibrate", ["policy", "--suite", "gsm"]),
    "tasks-train": (
        "ladder",
        ["--suite", "tasks", "--split", "train", "--configs", "small", "large"],
    ),
    "calibrate-tasks-policy": ("calibrate", ["policy", "--suite", "tasks"]),
    "gsm": ("ladder", ["--suite", "gsm", "--split", "test", "--policy", FITTED]),
    "tasks": ("ladder", ["--suite", "tasks", "--policy", FITTED]),
    "bfcl": ("bfcl", ["--choice", FITTED]),
    "filters": ("filters", []),
    "remote": ("remote", []),
    "batching": ("batching", []),
    "distributed": ("distributed", []),
    "readme": ("readme", []),
}


def main(argv: list[str]) -> int:
    if argv == ["--list"]:
        for name, (module, args) in STEPS.items():
            print(f"{name:18s} python -m bench.{module} {' '.join(args)}")
        return 0
    chosen = argv or list(STEPS)
    unknown = [name for name in chosen if name not in STEPS]
    if unknown:
        print(
            f"unknown step(s): {', '.join(unknown)}; choose from {', '.join(STEPS)}",
            file=sys.stderr,
        )
        return 2
    for name in chosen:
        module, args = STEPS[name]
        started = time.perf_counter()
        print(
            f"== bench {name}: python -m bench.{module} {' '.join(args)} ==",
            file=sys.stderr,
            flush=True,
        )
        status = importlib.import_module(f"bench.{module}").main(args)
        print(
            f"== bench {name}: done in {time.perf_counter() - started:.0f} s ==",
            file=sys.stderr,
            flush=True,
        )
        if status:
            return int(status)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
