"""Part (d) of the batching benchmark, for a GPU: 1 and 64 sequences against raw llama.cpp.

    python -m bench.batching_gpu [--model NAME_OR_GGUF] [--ns 1,64] [--repeats 3]
                                 [--raw-bin PATH/llama-batched-bench] [--allow-cpu]

Needs llama-cpp-python built with CUDA (``make test LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF
-DGGML_CUDA=on"``) and a ``llama-batched-bench`` from the same flags
(``make llama-tools`` with the same LLAMA_CMAKE_ARGS, or ``--raw-bin``). Every layer is
offloaded. Measured like part (a) of ``bench.batching``: aggregate generated tok/s while
all N sequences generate, through ``LlamaCppModel.complete`` from N threads, against the
raw tool's S_TG on the same file, alternating, medians compared. Target: 90% of raw.

Without GPU offload it refuses to run, unless ``--allow-cpu`` (a dry run of the script
itself). Results: ``bench/results/batching_gpu.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import agentkit
from agentkit import BatchConfig, LlamaConfig, resolve_model
from agentkit.models import llama_tool

from .batching import DECODE_TARGET, GEN_TOKENS, PROMPT_TOKENS, _meta, _ours, _prompts


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.batching_gpu", description=__doc__)
    p.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    p.add_argument("--ns", default="1,64")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=4, help="CPU threads (sampling is on the CPU)")
    p.add_argument("--raw-bin", type=Path, default=None)
    p.add_argument("--allow-cpu", action="store_true", help="run even without GPU offload")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    offload = LlamaConfig().resolved_gpu_layers() != 0  # this build can offload
    if not offload and not args.allow_cpu:
        print(
            "this llama-cpp-python cannot offload to a GPU; build it with "
            'LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_CUDA=on" (or pass --allow-cpu)',
            file=sys.stderr,
        )
        return 2
    ns = [int(n) for n in args.ns.split(",")]
    raw_bin = args.raw_bin or llama_tool("llama-batched-bench")
    path = resolve_model(args.model)
    cells = max(ns) * (PROMPT_TOKENS + GEN_TOKENS) + 1024
    config = LlamaConfig(
        n_ctx=4096,
        n_threads=args.threads,
        n_batch=2048,
        seed=0,
        gpu_layers=-1 if offload else 0,
        batching=BatchConfig(parallel=max(ns), sequences=max(ns) + 16, kv_tokens=cells),
    )
    model = agentkit.LlamaCppModel.load(path, config)
    prompts = _prompts(model, max(ns))
    _ours(model, prompts[:1], 8)
    rows = []
    for n in ns:
        raw, ours = [], []
        for _ in range(args.repeats):
            raw.append(_raw(raw_bin, path, n, cells, args.threads, offload))
            ours.append(_ours(model, prompts[:n], GEN_TOKENS))
            print(f"   n={n}: raw {raw[-1]:.0f} tok/s, agentkit {ours[-1]:.0f}", file=sys.stderr)
        rows.append(_row(n, raw, ours))
    model.close()
    meta = _meta(argparse.Namespace(threads=args.threads))
    result = {"meta": meta | {"gpu_offload": offload}, "model": str(args.model), "rows": rows}
    result |= {"target": DECODE_TARGET, "met": all(r["ratio"] >= DECODE_TARGET for r in rows)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batching_gpu.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "batching_gpu.md").write_text(_markdown(result))
    return 0


def _row(n: int, raw: list[float], ours: list[float]) -> dict[str, Any]:
    return {
        "n": n,
        "raw": raw,
        "agentkit": ours,
        "raw_median": statistics.median(raw),
        "agentkit_median": statistics.median(ours),
        "ratio": statistics.median(ours) / statistics.median(raw),
    }


def _raw(binary: Path, path: Path, n: int, cells: int, threads: int, offload: bool) -> float:
    command = [
        str(binary), "-m", str(path), "-c", str(cells), "-b", "2048", "-ub", "512",
        "-npp", str(PROMPT_TOKENS), "-ntg", str(GEN_TOKENS), "-npl", str(n),
        "-t", str(threads), "-ngl", "99" if offload else "0", "--output-format", "jsonl",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=True)
    for line in done.stdout.splitlines():
        if line.startswith("{") and json.loads(line).get("pl") == n:
            return float(json.loads(line)["speed_tg"])
    raise RuntimeError(f"llama-batched-bench printed no result for {n}: {done.stderr[-500:]}")


def _markdown(r: dict[str, Any]) -> str:
    meta = r["meta"]
    lines = [
        "# Time-sharing on a GPU: decode throughput",
        "",
        f"{r['model']} on {meta['machine']} (GPU offload: {meta['gpu_offload']}), measured "
        f"{meta['date']}; command `{meta['command']}`.",
        "",
        "| N | llama-batched-bench tok/s | agentkit tok/s | agentkit / raw |",
        "|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['n']} | {row['raw_median']:.0f} | {row['agentkit_median']:.0f} | "
            f"{row['ratio']:.0%} |"
        )
    verdict = "met" if r["met"] else "not met"
    lines += ["", f"Target: at least {r['target']:.0%} of raw at every N: **{verdict}**.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
