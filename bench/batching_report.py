"""``batching.md`` and ``batching.png`` from ``batching.json`` (every figure read, none typed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "batching.md").write_text(markdown(results))
    plot(results, out / "batching.png")


def _met(part: dict[str, Any]) -> str:
    return "**met**" if part.get("met") else "**not met**"


def markdown(r: dict[str, Any]) -> str:
    meta = r.get("meta", {})
    lines = [
        "# Time-sharing one loaded model",
        "",
        f"Measured {meta.get('date', '?')} on {meta.get('machine', '?')} (load average "
        f"{meta.get('load_average', '?')} at the start), llama-cpp-python "
        f"{meta.get('llama_cpp_python', '?')}, {meta.get('threads', '?')} threads. "
        f"Command: `{meta.get('command', '?')}`.",
        "",
    ]
    for name, render in (
        ("decode", _decode),
        ("agents", _agents),
        ("server", _server),
        ("prefix", _prefix),
    ):
        part = r.get(name)
        lines += render(part) if part else [f"## {name}", "", "_Not measured yet._", ""]
    return "\n".join(lines)


def _decode(d: dict[str, Any]) -> list[str]:
    lines = [
        "## (a) Decode throughput, N sequences together",
        "",
        f"{d['model']}, {d['prompt_tokens']} prompt and {d['generated_tokens']} generated "
        f"tokens per sequence, medians of {d['repeats']} alternating runs. Raw: "
        f"`{d['raw_command']}` (its S_TG). agentkit: N threads calling "
        "`LlamaCppModel.complete`, each with its own sampler, logprobs and stream callback; "
        "tokens per second while all N generate.",
        "",
        "| N | llama-batched-bench tok/s | agentkit tok/s | agentkit / raw |",
        "|---|---|---|---|",
    ]
    for row in d["rows"]:
        lines.append(
            f"| {row['n']} | {row['raw_median']:.1f} | {row['agentkit_median']:.1f} | "
            f"{row['ratio']:.0%} |"
        )
    lines += ["", f"Target: at least {d['target']:.0%} of raw at every N: {_met(d)}.", ""]
    return lines


def _suite_row(name: str, s: dict[str, Any]) -> str:
    reused = f"{s['reused']:.0%}" if s.get("reused") is not None else "-"
    return (
        f"| {name} | {s['concurrency']} | {s['wall_seconds']:.0f} | {s['tasks_per_minute']:.2f} "
        f"| {s['solved']}/{s['tasks']} | {s['evaluated_tokens']:,} | {s['cached_tokens']:,} "
        f"| {reused} | {s['completion_tokens']:,} |"
    )


_SUITE_HEAD = [
    "| configuration | concurrency | wall s | tasks/min | solved | evaluated | reused "
    "| reused share | generated |",
    "|---|---|---|---|---|---|---|---|---|",
]


def _agents(a: dict[str, Any]) -> list[str]:
    m = a.get("memory", {})
    lines = [
        "## (b) Agent tasks at once against one after another",
        "",
        f"{len(a['task_ids'])} tasks of `bench.tasks` on {a['model']}, each configuration on "
        "a freshly loaded model.",
        "",
        *_SUITE_HEAD,
        _suite_row("one after another", a["sequential"]),
        _suite_row("at once", a["concurrent"]),
        "",
        f"Throughput: **{a['speedup']:.2f}x** (target {a['target']:.0f}x): {_met(a)}.",
        "",
    ]
    if m:
        lines += [
            "### KV memory",
            "",
            f"{m['kv_bytes_per_token']:,} bytes of KV cache per token. At their peak the "
            f"concurrent runs held {m['peak_cells_used']:,} cells: {m['cells_per_run']:.0f} "
            f"per run ({m['kv_mb_per_run']:.1f} MB), shared prefixes counted once. The cache "
            f"of {m['kv_cells']:,} cells ({m['kv_budget_mb']:.0f} MB) holds "
            f"**{m['runs_in_budget']} such runs** at once; colder ones are saved to host "
            "memory and restored.",
            "",
        ]
    return lines


def _server(s: dict[str, Any]) -> list[str]:
    return [
        "## (c) Against llama-server with parallel slots",
        "",
        f"The same agent loop and tasks; llama-server: `{s['server_command']}`.",
        "",
        *_SUITE_HEAD,
        _suite_row("agentkit in process", s["agentkit"]),
        _suite_row("llama-server over HTTP", s["llama_server"]),
        "",
        f"Tasks per minute: **{s['ratio']:.2f}x** llama-server's (target "
        f"{s['target']:.1f}x): {_met(s)}.",
        "",
    ]


def _prefix(p: dict[str, Any]) -> list[str]:
    lines = [
        "## Prefix reuse over a 20-step run",
        "",
        f"Four paging runs on a two-tier ladder at once; model steps "
        f"{', '.join(map(str, p['tier_change_steps']))} run on tier 1, the rest on tier 0. "
        "Baseline: the same runs on models that keep one sequence and save nothing "
        "(as before time-sharing).",
        "",
        "| models | run | status | steps | prompt tokens | reused |",
        "|---|---|---|---|---|---|",
    ]
    for name, label in (("one_sequence", "one sequence"), ("per_run_sequences", "per run")):
        for i, run in enumerate(p.get(name, {}).get("runs", [])):
            lines.append(
                f"| {label} | {i + 1} | {run['status']} | {run['steps']} | "
                f"{run['prompt_tokens']:,} | {run['reused']:.0%} |"
            )
    sharing = p.get("reused_sharing")
    lines += [""]
    if sharing is not None:
        cold = p["per_run_sequences"]["runs"][0]["per_step"]
        first_tier1 = next((s for s in cold if s["tier"] == 1), None)
        lines += [
            f"Runs that share the model with a run that came before reused at least "
            f"**{sharing:.0%}** of their prompt tokens (target {p['target']:.0%}): {_met(p)}. "
            f"Run 1, the first on freshly loaded models, reused {p['reused']:.0%}: it "
            f"evaluates the system prompt and tool block cold on each tier (its first step "
            f"{cold[0]['evaluated']:,} tokens"
            + (
                f", its first tier-1 step {first_tier1['evaluated']:,}"
                if first_tier1 is not None
                else ""
            )
            + "), which the others copy.",
        ]
    else:  # a result from before the runs that share were judged apart
        lines += [
            f"Run 1 with per-run sequences reused **{p['reused']:.0%}** of its prompt tokens "
            f"(target {p['target']:.0%}): {_met(p)}."
        ]
    lines += [""]
    return lines


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    d = r.get("decode")
    if d:
        ns = [row["n"] for row in d["rows"]]
        raw = [row["raw_median"] for row in d["rows"]]
        axes[0].plot(ns, raw, "o-", label="llama-batched-bench")
        axes[0].plot(ns, [row["agentkit_median"] for row in d["rows"]], "s-", label="agentkit")
        axes[0].set(xlabel="sequences decoded together", ylabel="generated tok/s", xticks=ns)
        axes[0].legend()
    axes[0].set_title("(a) decode throughput")
    bars: list[tuple[str, float]] = []
    if a := r.get("agents"):
        bars += [("one at a time", a["sequential"]["tasks_per_minute"])]
        bars += [("agentkit at once", a["concurrent"]["tasks_per_minute"])]
    if s := r.get("server"):
        bars += [("llama-server", s["llama_server"]["tasks_per_minute"])]
    if bars:
        axes[1].bar([b[0] for b in bars], [b[1] for b in bars], color=["#999", "#2a7", "#36c"])
        axes[1].set(ylabel="agent tasks per minute")
    axes[1].set_title("(b, c) agent tasks")
    if p := r.get("prefix"):
        for name, label in (("one_sequence", "one sequence"), ("per_run_sequences", "per run")):
            runs = p.get(name, {}).get("runs", [])
            if runs:
                steps = runs[0]["per_step"]
                axes[2].plot(
                    [x["step"] for x in steps], [x["evaluated"] for x in steps], "o-", label=label
                )
        axes[2].set(xlabel="step of run 1", ylabel="prompt tokens evaluated")
        axes[2].legend()
    axes[2].set_title("prefix reuse (tier change at the marked steps)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def readme_block(r: dict[str, Any]) -> str:
    """The README's summary of the batching benchmark (for ``bench.readme``)."""
    parts = []
    if d := r.get("decode"):
        cells = ", ".join(
            f"{row['n']}: {row['agentkit_median']:.0f} vs {row['raw_median']:.0f}"
            for row in d["rows"]
        )
        parts.append(
            f"Decode throughput, agentkit vs raw llama-batched-bench (tok/s by sequences "
            f"together) {cells}; target 90% of raw at every N: {_met(d)}."
        )
    if a := r.get("agents"):
        parts.append(
            f"{a['concurrent']['tasks']} agent tasks at concurrency "
            f"{a['concurrent']['concurrency']}: **{a['speedup']:.2f}x** the throughput of "
            f"one after another ({a['concurrent']['solved']} vs {a['sequential']['solved']} "
            f"solved); target 2x: {_met(a)}."
        )
    if s := r.get("server"):
        parts.append(
            f"Against llama-server with the same slots: **{s['ratio']:.2f}x** its tasks per "
            f"minute; target 1.2x: {_met(s)}."
        )
    if (p := r.get("prefix")) and p.get("reused_sharing") is not None:
        parts.append(
            f"20-step runs with a tier change and back, sharing the model, reused at least "
            f"**{p['reused_sharing']:.0%}** of their prompt tokens (the first run on cold "
            f"models {p['reused']:.0%}); target 85%: {_met(p)}."
        )
    elif p:
        parts.append(
            f"A 20-step run with a tier change and back, beside three others, reused "
            f"**{p['reused']:.0%}** of its prompt tokens; target 85%: {_met(p)}."
        )
    return (" ".join(parts) or "_No recorded results yet: run `python -m bench batching`._") + "\n"
