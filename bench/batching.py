"""Time-sharing one loaded model: batched decoding, many agent runs at once, prefix reuse.

    python -m bench.batching [--parts decode agents server prefix] [--ns 1,2,4,8]
                             [--repeats 3] [--threads 2] [--limit 8] [--concurrency 8]
    python -m bench.batching --report-only     # rewrite batching.md/.png from the JSON

Parts, each measured against its baseline in the same run:

- ``decode`` (a): aggregate generated tok/s with N sequences decoded together, through
  ``LlamaCppModel.complete`` from N threads (each with its own ``TurnDecoder``: sampling,
  logprobs, stream callback), against llama.cpp's own ``llama-batched-bench`` built from
  the same vendored llama.cpp, on the same model, the same threads, 256 prompt and 64
  generated tokens per sequence. The two alternate, ``--repeats`` times, and the medians
  are compared. Ours is read from the token timestamps of the window in which all N
  sequences are generating (the raw tool reports the same phase, its ``S_TG``).
- ``agents`` (b): agent tasks of ``bench.tasks`` at ``--concurrency`` against the same
  tasks one after another, each configuration on a freshly loaded model.
- ``server`` (c): the same agent loop served by llama-server with ``--concurrency``
  parallel slots (continuous batching, its own prompt cache per slot) over HTTP.
- ``prefix``: one 20-step run that changes tier and comes back, while three other runs
  share the models, against the same runs on a model that keeps one sequence (as before
  time-sharing); also the KV bytes a run takes and how many fit the cache.

``batching.json`` is updated after every part (the other parts' results are kept);
``batching.md`` and ``batching.png`` are written from it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import agentkit
from agentkit import BatchConfig, LlamaConfig, Message, Sampling, resolve_model
from agentkit.models import llama_tool

from . import batching_agents, batching_report

MODEL = "qwen2.5-coder-0.5b-instruct"
PROMPT_TOKENS = 256
GEN_TOKENS = 64
DECODE_TARGET = 0.90
PARTS = ("decode", "agents", "server", "prefix")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.batching", description=__doc__)
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--ns", default="1,2,4,8", help="sequences decoded together (decode)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=MODEL)
    p.add_argument("--large", default="qwen2.5-coder-1.5b-instruct", help="tier 1 (prefix)")
    p.add_argument("--limit", type=int, default=8, help="agent tasks per kind (agents, server)")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--max-steps", type=int, default=10)
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--report-only", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    path = args.out / "batching.json"
    if args.report_only:
        batching_report.write(json.loads(path.read_text()), args.out)
        return 0
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    results["meta"] = _meta(args)
    for part in args.parts:
        print(f"-- batching: {part}", file=sys.stderr, flush=True)
        if part == "decode":
            results["decode"] = decode_part(args)
        elif part == "agents":
            results["agents"] = batching_agents.agents_part(args)
        elif part == "server":
            results["server"] = batching_agents.server_part(args, results.get("agents"))
        else:
            results["prefix"] = batching_agents.prefix_part(args)
        args.out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
    batching_report.write(results, args.out)
    return 0


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "python": platform.python_version(),
        "llama_cpp_python": metadata.version("llama-cpp-python"),
        "agentkit": agentkit.__version__,
        "threads": args.threads,
        "command": "python -m bench.batching " + " ".join(sys.argv[1:]),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


# -- (a) decode throughput ------------------------------------------------------------


def decode_part(args: argparse.Namespace) -> dict[str, Any]:
    ns = [int(n) for n in args.ns.split(",")]
    path = resolve_model(args.model)
    config = LlamaConfig(
        n_ctx=4096,
        n_threads=args.threads,
        seed=0,
        batching=BatchConfig(parallel=max(ns), sequences=max(ns) * 2 + 8),
    )
    model = agentkit.LlamaCppModel.load(path, config)
    prompts = _prompts(model, max(ns))
    _ours(model, prompts[:1], 8)  # warm-up: first-touch of weights and buffers
    rows = []
    for n in ns:
        raw, ours = [], []
        for _ in range(args.repeats):  # alternate, so load from elsewhere hits both alike
            raw.append(_raw(path, n, args.threads))
            ours.append(_ours(model, prompts[:n], GEN_TOKENS))
            print(f"   n={n}: raw {raw[-1]:.1f} tok/s, agentkit {ours[-1]:.1f}", file=sys.stderr)
        rows.append(
            {
                "n": n,
                "raw": raw,
                "agentkit": ours,
                "raw_median": statistics.median(raw),
                "agentkit_median": statistics.median(ours),
                "ratio": statistics.median(ours) / statistics.median(raw),
            }
        )
    model.close()
    return {
        "model": args.model,
        "prompt_tokens": PROMPT_TOKENS,
        "generated_tokens": GEN_TOKENS,
        "repeats": args.repeats,
        "raw_command": " ".join(_raw_command(path, 0, args.threads)),
        "rows": rows,
        "target": DECODE_TARGET,
        "met": all(r["ratio"] >= DECODE_TARGET for r in rows),
    }


def _prompts(model: Any, count: int) -> list[list[Message]]:
    """``count`` different prompts of exactly PROMPT_TOKENS tokens each."""
    prompts = []
    for i in range(count):
        words = 40
        while True:
            text = (
                f"Sequence {i}. Here is a list of words: "
                + " ".join(f"w{(i * 7919 + k) % 1000}" for k in range(words))
                + ". Now count upwards from 1, one number per line, and never stop."
            )
            messages = [Message.user(text)]
            size = model.count_tokens(messages)
            if size >= PROMPT_TOKENS:
                break
            words += max(1, (PROMPT_TOKENS - size) // 3)
        prompts.append(messages)
    return prompts


def _ours(model: Any, prompts: list[list[Message]], tokens: int) -> float:
    """Aggregate tok/s while every sequence is generating (see the module docstring)."""
    stamps: list[list[float]] = [[] for _ in prompts]
    sampling = Sampling(temperature=0.0, max_tokens=tokens)

    def one(i: int) -> None:
        model.complete(
            prompts[i], sampling=sampling, on_token=lambda _: stamps[i].append(time.perf_counter())
        )

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if not all(stamps):
        return float("nan")  # a sequence ended before its first token: no common window
    start = max(s[0] for s in stamps)
    end = min(s[-1] for s in stamps)
    inside = sum(sum(1 for x in s if start < x <= end) for s in stamps)
    return inside / (end - start) if end > start else float("nan")


def _raw_command(path: Path, n: int, threads: int) -> list[str]:
    return [
        str(llama_tool("llama-batched-bench")),
        "-m", str(path), "-c", "4096", "-b", "512", "-ub", "512",
        "-npp", str(PROMPT_TOKENS), "-ntg", str(GEN_TOKENS), "-npl", str(n or "N"),
        "-t", str(threads), "--output-format", "jsonl",
    ]  # fmt: skip


def _raw(path: Path, n: int, threads: int) -> float:
    done = subprocess.run(
        _raw_command(path, n, threads), capture_output=True, text=True, timeout=3600, check=True
    )
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if row.get("pl") == n:
                return float(row["speed_tg"])
    raise RuntimeError(f"llama-batched-bench printed no result for {n}: {done.stderr[-500:]}")


if __name__ == "__main__":
    sys.exit(main())
