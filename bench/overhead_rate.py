"""agentkit's executor on the zero-time tool loop: the loop, and a standalone timer.

``bench.overhead`` builds its agentkit variants from here. Run as a script, it times one
checkout of agentkit and prints JSON, which is how ``python -m bench.overhead --against
REV`` measures an older commit beside the current one in the same run:

    PYTHONPATH=/path/to/checkout python bench/overhead_rate.py --batches 5 --batch 10

It uses only agentkit's public API that every version has (``Agent``, ``RunStore``,
``Tool``, ``agentkit.testing``), so the same script times old and new commits.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agentkit import Agent, RunStore, Tool
from agentkit.testing import ScriptedModel, Turn, call, reply

TASK = "Add up the pairs of numbers, one pair at a time, then report the last sum."
ANSWER = "Done: every pair has been added."
BatchRunner = Callable[[], int]
"""Runs one timed batch of agent runs and returns how many steps they took."""


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first addend
        b: the second addend
    """
    return a + b


def pairs(turns: int) -> list[tuple[int, int]]:
    return [(3 * i + 1, 7 * i + 2) for i in range(turns)]


class BenchError(RuntimeError):
    """A benchmarked run did not go the way the script says it must."""


def agentkit_script(turns: int) -> list[Turn]:
    return [*(call("add", a=a, b=b) for a, b in pairs(turns)), reply(ANSWER)]


def prepare_agentkit(store: RunStore, key: str, batch: int, turns: int) -> BatchRunner:
    """Untimed set-up of one batch: a fresh scripted model and agent on ``store``."""
    add_tool = Tool(add)
    model = ScriptedModel([t for _ in range(batch) for t in agentkit_script(turns)])
    # Headroom in max_steps: the budget warning near the end must not change the loop.
    agent: Agent[Any] = Agent(
        model, tools=[add_tool], store=store, max_steps=2 * turns + 10, name="bench"
    )

    def run() -> int:
        steps = 0
        for _ in range(batch):
            result = agent.run(TASK)
            if not result.ok or result.steps != 2 * turns + 1 or result.answer != ANSWER:
                raise BenchError(f"{key}: unexpected run result\n{result.summary()}")
            steps += result.steps
        model.verify()
        return steps

    return run


def time_batches(batches: int, batch: int, turns: int, warmup: int) -> list[dict[str, float]]:
    """Time ``batches`` batches on a store on disk; wall and CPU seconds per batch."""
    samples = []
    with tempfile.TemporaryDirectory(prefix="agentkit-rate-") as tmp:
        store = RunStore(Path(tmp) / "runs.db")
        for i in range(warmup + batches):
            run = prepare_agentkit(store, "agentkit", batch, turns)
            gc.collect()
            cpu, started = time.process_time(), time.perf_counter()
            steps = run()
            wall, used = time.perf_counter() - started, time.process_time() - cpu
            if i >= warmup:
                samples.append({"steps": steps, "seconds": wall, "cpu_seconds": used})
        store.close()
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="time agentkit's executor on the tool loop")
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)
    samples = time_batches(args.batches, args.batch, args.turns, args.warmup)
    json.dump({"samples": samples}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
