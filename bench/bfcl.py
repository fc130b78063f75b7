"""BFCL v4 live categories on the 0.5B: agentkit against raw llama-cpp-python, same run.

    python -m bench.bfcl --fetch                 # once: the bfcl-eval wheel's data and checker
    python -m bench.bfcl [--per-category N] [--split test] [--modes agentkit template chatml]
    python -m bench.bfcl --report-only

One assistant turn per case, graded by BFCL's own AST checker (``bench.bfcl_data``):

- ``agentkit``: the case's functions as JSON-schema tools (``Tool.from_schema``) on a
  one-node graph through agentkit's runtime: grammar-constrained calls, argument
  validation with feedback, the tool choice fitted by ``bench.calibrate`` when
  ``--choice`` names its file;
- ``template``: raw llama-cpp-python, ``create_chat_completion`` with the GGUF's own chat
  template and the tools, the reply parsed leniently (tags, fenced or bare JSON);
- ``chatml``: raw llama-cpp-python with its ``chatml-function-calling`` handler.

The raw modes' best score per category is the baseline. Cases are sampled per category
from the chosen split with a fixed seed; live_parallel is small (16 cases) and is used
whole. Results: bench/results/bfcl.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agentkit import (
    END,
    AgentState,
    Graph,
    ModelNode,
    Runner,
    RunStore,
    Sampling,
    Tool,
    ToolCall,
    ToolChoice,
    get_model,
    resolve_model,
)
from agentkit.events import ModelCalled
from agentkit.models import Decision, parse_tool_calls
from agentkit.runtime import run_sync

from . import bfcl_data
from .bfcl_data import CATEGORIES, LABELS, Case

MODEL = "qwen2.5-coder-0.5b-instruct"
MODES = ("agentkit", "template", "chatml")
TARGETS = {"margin": 0.10, "live_parallel": 0.50, "live_irrelevance": 0.70}
SAMPLING = Sampling(temperature=0.0, seed=0, max_tokens=384)


def sample(split: str, per_category: int, seed: int = 7) -> list[Case]:
    chosen = []
    for category in CATEGORIES:
        cases = bfcl_data.load(category)
        if category != "live_parallel":
            cases = [c for c in cases if c.split == split]
            random.Random(f"{seed}:{category}").shuffle(cases)
            cases = cases[:per_category]
        chosen += cases
    return chosen


# -- the contenders -----------------------------------------------------------------------------


class AgentkitTurn:
    """One model step of agentkit's runtime, with the case's functions as schema tools."""

    def __init__(self, store: RunStore, choice: ToolChoice) -> None:
        self.model = get_model(MODEL)
        self.store = store
        self.choice = choice
        self.last_confidence: float | None = None

    def __call__(self, case: Case) -> list[ToolCall]:
        return self.turn(case)[0]

    def turn(self, case: Case) -> tuple[list[ToolCall], Decision | None]:
        """The turn's calls, and the plan it made (if the tool choice asks for one)."""
        tools = [
            Tool.from_schema(
                name=f["name"],
                description=f.get("description", ""),
                parameters=spec.parameters,
                fn=_never_run,
            )
            for f, spec in zip(case.functions, case.tools, strict=True)
        ]
        system = next((m.content for m in case.messages if m.role == "system"), None)
        # One model step, then END. A larger budget keeps the runtime's wind-down notes out.
        graph: Graph[AgentState] = Graph(AgentState, name="bfcl", model=self.model, max_steps=10)
        graph.add_node(
            "model",
            ModelNode(
                tools=tools, system_prompt=system, sampling=SAMPLING, tool_choice=self.choice
            ),
        )
        graph.add_edge("model", END)
        runner: Runner[AgentState] = Runner(graph.build(), store=self.store)
        messages = [m for m in case.messages if m.role != "system"]
        result = run_sync(runner.arun(messages[-1].content, AgentState(messages=messages)))
        called = [e for _, e in self.store.events(result.run_id) if isinstance(e, ModelCalled)]
        self.last_confidence = called[0].confidence if called else None
        last = result.state.messages[-1] if result.state.messages else None
        calls = list(last.tool_calls) if last is not None and last.role == "assistant" else []
        plans = [
            Decision(**d)
            for _, e in self.store.events(result.run_id)
            if isinstance(e, ModelCalled)
            for d in e.decisions
            if d.get("kind") == "plan"
        ]
        return calls, plans[0] if plans else None


def _never_run(**arguments: Any) -> str:
    """BFCL grades the calls; nothing is executed."""
    return "not run"


class RawTurn:
    """Raw llama-cpp-python, as a user of it would call it."""

    def __init__(self, chat_format: str | None) -> None:
        import llama_cpp

        self.llm = llama_cpp.Llama(
            model_path=str(resolve_model(MODEL)),
            n_ctx=4096,
            n_threads=2,
            chat_format=chat_format,
            verbose=False,
        )
        self.lenient = chat_format is None

    def __call__(self, case: Case) -> list[ToolCall]:
        tools = [spec.openai_format() for spec in case.tools]
        out: Any = self.llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in case.messages],
            tools=tools,
            tool_choice="auto",
            temperature=0.0,
            max_tokens=SAMPLING.max_tokens,
            seed=0,
        )
        message = out["choices"][0]["message"]
        calls = [
            ToolCall(name=c["function"]["name"], arguments=_args(c["function"]["arguments"]))
            for c in message.get("tool_calls") or []
        ]
        if not calls and self.lenient and message.get("content"):
            _, calls = parse_tool_calls(message["content"], [s.name for s in case.tools])
        return calls


def _args(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {"_unparsed": str(raw)}
    return value if isinstance(value, dict) else {"_value": value}


# -- running ------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    cases = sample(args.split, args.per_category)
    check = bfcl_data.checker()
    choice = _choice(args.choice)
    rows: list[dict[str, Any]] = []
    payload: dict[str, Any] = {
        "model": MODEL,
        "split": args.split,
        "per_category": args.per_category,
        "choice": choice.model_dump(),
        "modes": args.modes,
        "rows": rows,
    }
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench-bfcl-") as tmp:
        store = RunStore(Path(tmp) / "runs.db")
        for mode in args.modes:
            turn = (
                AgentkitTurn(store, choice)
                if mode == "agentkit"
                else RawTurn(None if mode == "template" else "chatml-function-calling")
            )
            for i, case in enumerate(cases, 1):
                started = time.perf_counter()
                try:
                    calls = turn(case)
                    error = None
                except Exception as exc:  # a crash is a failed case, reported as such
                    calls, error = [], f"{type(exc).__name__}: {exc}"[:300]
                ok, why = check(case, calls)
                rows.append(
                    {
                        "mode": mode,
                        "id": case.id,
                        "category": case.category,
                        "ok": ok,
                        "why": error or why,
                        "calls": [{c.name: c.arguments} for c in calls],
                        "seconds": round(time.perf_counter() - started, 2),
                    }
                )
                print(
                    f"[{mode} {i}/{len(cases)}] {case.id} {'ok' if ok else 'FAIL'} {why[:80]}",
                    flush=True,
                )
                _write(args.out / "bfcl.json", payload)
    payload["summary"] = summarize(rows, args.modes)
    _write(args.out / "bfcl.json", payload)
    return payload


def _choice(path: Path | None) -> ToolChoice:
    """The fitted tool choice from ``path``'s ``tool_choice`` section, else the default.

    The calibration file also holds the ladder policies; until ``python -m bench.calibrate
    choice`` has run it has no tool-choice section, and the default choice is measured.
    """
    if path is None:
        return ToolChoice()
    data = json.loads(path.read_text())
    if "tool_choice" not in data:
        print(f"{path} has no fitted tool choice: measuring the default", file=sys.stderr)
        return ToolChoice()
    return ToolChoice(**data["tool_choice"])


def summarize(rows: Sequence[dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for mode in modes:
        table[mode] = {}
        for category in CATEGORIES:
            mine = [r for r in rows if r["mode"] == mode and r["category"] == category]
            n, ok = len(mine), sum(r["ok"] for r in mine)
            table[mode][category] = {"cases": n, "ok": ok, "accuracy": ok / n if n else 0.0}
    raw = [m for m in modes if m != "agentkit"]
    verdicts = {}
    if "agentkit" in modes and raw:
        for category in CATEGORIES:
            best = max(table[m][category]["accuracy"] for m in raw)
            ours = table["agentkit"][category]["accuracy"]
            floor = TARGETS.get(category, 0.0)
            verdicts[category] = {
                "agentkit": ours,
                "raw_best": best,
                "margin": ours - best,
                "met": ours - best >= TARGETS["margin"] and ours >= floor,
            }
    return {"table": table, "targets": verdicts}


def _write(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def render(payload: dict[str, Any], out: Path) -> None:
    from .bfcl_report import markdown, plot

    (out / "bfcl.md").write_text(markdown(payload), encoding="utf-8")
    plot(payload, out / "bfcl.png")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bfcl", description=__doc__.split("\n")[0])
    p.add_argument("--fetch", action="store_true", help="download the BFCL data, then stop")
    p.add_argument("--split", choices=("train", "test"), default="test")
    p.add_argument("--per-category", type=int, default=60)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--choice", type=Path, default=Path("bench/results/calibration.json"))
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    p.add_argument("--report-only", action="store_true")
    args = p.parse_args(argv)
    if args.fetch:
        bfcl_data.fetch()
        return 0
    if args.choice is not None and not args.choice.exists():
        args.choice = None
    payload = json.loads((args.out / "bfcl.json").read_text()) if args.report_only else run(args)
    render(payload, args.out)
    for category, v in payload["summary"]["targets"].items():
        print(f"{LABELS[category]:28s} agentkit {v['agentkit']:.0%}  raw best {v['raw_best']:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
