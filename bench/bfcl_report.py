"""The BFCL benchmark's Markdown report and plot, made from its JSON alone."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from .bfcl_data import CATEGORIES, LABELS

MODE_LABELS = {
    "agentkit": "agentkit (grammar, validation, fitted tool choice)",
    "template": "raw llama-cpp-python, GGUF chat template + lenient parsing",
    "chatml": "raw llama-cpp-python, chatml-function-calling handler",
}


def markdown(payload: dict[str, Any]) -> str:
    table = payload["summary"]["table"]
    modes = list(table)
    out = [
        f"# BFCL v4 live categories on {payload['model']}, {payload['split']} split",
        "",
        "One assistant turn per case, graded by BFCL's own AST checker (run from the bfcl-eval "
        "wheel's files). Up to "
        f"{payload['per_category']} cases per category, sampled with a fixed seed from the "
        f"{payload['split']} half of each category (live_parallel whole: it has 16 cases). "
        "Greedy decoding, the same GGUF file for every mode, in the same run.",
        "",
        "| category | " + " | ".join(MODE_LABELS[m] for m in modes) + " |",
        "|---|" + "---:|" * len(modes),
    ]
    for category in CATEGORIES:
        cells = []
        for m in modes:
            t = table[m][category]
            cells.append(f"{t['accuracy']:.0%} ({t['ok']}/{t['cases']})")
        out.append(f"| {LABELS[category]} | " + " | ".join(cells) + " |")
    targets = payload["summary"]["targets"]
    if targets:
        out += [
            "",
            "Targets: every category at least 10 points above raw llama-cpp-python's best "
            "mode; several calls at least 50%; no tool fits at least 70%.",
            "",
        ]
        for category, v in targets.items():
            verdict = "met" if v["met"] else "NOT met"
            out.append(
                f"- {LABELS[category]}: agentkit {v['agentkit']:.0%}, raw best {v['raw_best']:.0%} "
                f"({v['margin'] * 100:+.0f} points): **{verdict}**"
            )
    out += [
        "",
        "## Why agentkit's turns failed",
        "",
        "| category | error | cases |",
        "|---|---|---:|",
    ]
    errors: Counter[tuple[str, str]] = Counter()
    for r in payload["rows"]:
        if r["mode"] == "agentkit" and not r["ok"]:
            errors[(r["category"], _kind(r["why"]))] += 1
    for (category, kind), n in errors.most_common(15):
        out.append(f"| {LABELS[category]} | {kind} | {n} |")
    if choice := payload.get("choice"):
        out += ["", f"Tool choice used by agentkit: `{choice}`."]
    return "\n".join(out) + "\n"


def _kind(why: str) -> str:
    for needle, label in (
        ("no function call", "no call made"),
        ("Wrong number", "wrong number of calls"),
        ("although no function fits", "called a tool although none fits"),
        ("Function name", "wrong function"),
        ("Invalid value", "wrong argument value"),
        ("Missing", "missing required argument"),
        ("Unexpected parameter", "unexpected argument"),
        ("type", "wrong argument type"),
    ):
        if needle in why:
            return label
    return why[:60] or "other"


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = payload["summary"]["table"]
    modes = list(table)
    fig, ax = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(1, len(modes))
    colours = {"agentkit": "#2b6cb0", "template": "#a0aec0", "chatml": "#cbd5e0"}
    for i, m in enumerate(modes):
        xs = [c + i * width for c in range(len(CATEGORIES))]
        ys = [table[m][cat]["accuracy"] * 100 for cat in CATEGORIES]
        ax.bar(xs, ys, width, label=MODE_LABELS[m], color=colours.get(m, "#718096"))
        for x, y in zip(xs, ys, strict=True):
            ax.text(x, y + 1, f"{y:.0f}", ha="center", fontsize=8)
    ax.set_xticks([c + width * (len(modes) - 1) / 2 for c in range(len(CATEGORIES))])
    ax.set_xticklabels([LABELS[c] for c in CATEGORIES], fontsize=9)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title(f"BFCL v4 live, {payload['model']}, {payload['split']} split", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
