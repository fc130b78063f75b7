"""BFCL v4 live categories: the cases, as tools and messages, and BFCL's own AST checker.

The data and the checker come from the ``bfcl-eval`` wheel on PyPI, which is downloaded
once (``pip download --no-deps``, by ``make bench`` or ``python -m bench.bfcl --fetch``)
into the bench cache and read as files: nothing is fetched while a benchmark runs, and
the package is never installed (its dependencies include torch and pin numpy). The AST
checker (``bfcl_eval/eval_checker/ast_eval/ast_checker.py``) runs from the unpacked wheel;
the one module it imports that would pull in every model handler (``model_config``) is
replaced by a stand-in that names no model, so function names are compared as they are.

Cases are split into a training half and a held-out half by a hash of their id, so every
run of the benchmark sees the same halves.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import subprocess
import sys
import types
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentkit import Message, ToolCall, ToolSpec

BFCL_VERSION = "2026.3.23"
CATEGORIES = ("live_simple", "live_multiple", "live_parallel", "live_irrelevance")
EXTRA = ("live_parallel_multiple",)
LABELS = {
    "live_simple": "one call",
    "live_multiple": "choose among several tools",
    "live_parallel": "several calls in one turn",
    "live_irrelevance": "no tool fits",
}


def cache_dir() -> Path:
    home = os.environ.get("AGENTKIT_HOME") or os.path.join(Path.home(), ".cache", "agentkit")
    return Path(home) / "bench" / f"bfcl-eval-{BFCL_VERSION}"


def fetch(python: str = sys.executable) -> Path:
    """Download and unpack the bfcl-eval wheel once; returns the unpacked folder."""
    root = cache_dir()
    done = root / ".unpacked"
    if done.exists():
        return root
    root.mkdir(parents=True, exist_ok=True)
    print(f"bfcl: downloading bfcl-eval=={BFCL_VERSION} (data and checker only)", flush=True)
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            str(root),
            f"bfcl-eval=={BFCL_VERSION}",
        ],
        check=True,
    )
    (wheel,) = root.glob("bfcl_eval-*.whl")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(root / "unpacked")
    done.touch()
    return root


def _unpacked() -> Path:
    root = cache_dir() / "unpacked"
    if not (root / "bfcl_eval").is_dir():
        raise SystemExit(
            f"the BFCL data is not in {cache_dir()}; run `python -m bench.bfcl --fetch` "
            "(make bench does it)"
        )
    return root


@dataclass(frozen=True)
class Case:
    """One BFCL question: its conversation, its functions, and the possible answers."""

    id: str
    category: str
    messages: tuple[Message, ...]
    functions: tuple[dict[str, Any], ...] = field(repr=False)
    answer: tuple[dict[str, Any], ...] | None = field(default=None, repr=False)
    """BFCL's ground truth (None for irrelevance: any call is wrong)."""

    @property
    def split(self) -> str:
        return split_of(self.id)

    @property
    def tools(self) -> list[ToolSpec]:
        return [to_spec(f) for f in self.functions]


def split_of(case_id: str) -> str:
    """``train`` or ``test``, half and half, by a hash of the id (stable across runs)."""
    digest = hashlib.sha256(f"agentkit-bfcl:{case_id}".encode()).digest()
    return "train" if digest[0] % 2 == 0 else "test"


def load(category: str) -> list[Case]:
    """Every case of a category, in BFCL's order."""
    data = _unpacked() / "bfcl_eval" / "data"
    rows = _jsonl(data / f"BFCL_v4_{category}.json")
    answers: dict[str, Any] = {}
    answer_file = data / "possible_answer" / f"BFCL_v4_{category}.json"
    if answer_file.exists():
        answers = {r["id"]: r["ground_truth"] for r in _jsonl(answer_file)}
    cases = []
    for row in rows:
        turn = row["question"][0]  # live categories are one turn
        messages = tuple(Message(role=m["role"], content=m["content"]) for m in turn)
        truth = answers.get(row["id"])
        cases.append(
            Case(
                id=row["id"],
                category=category,
                messages=messages,
                functions=tuple(row["function"]),
                answer=tuple(truth) if truth is not None else None,
            )
        )
    return cases


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# -- BFCL's function docs as JSON Schema tools ----------------------------------------------


def _openapi_types() -> dict[str, str]:
    module = _bfcl_module("bfcl_eval.constants.type_mappings")
    mapping: dict[str, str] = module.GORILLA_TO_OPENAPI
    return mapping


def _schema(node: Any, types_map: dict[str, str]) -> Any:
    """BFCL's Python-flavoured types ("dict", "float", "tuple") as JSON Schema types."""
    if isinstance(node, list):
        return [_schema(x, types_map) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, str):
            out[key] = types_map.get(value, value)
        elif key in ("properties",) and isinstance(value, dict):
            out[key] = {k: _schema(v, types_map) for k, v in value.items()}
        else:
            out[key] = _schema(value, types_map)
    return out


def to_spec(function: dict[str, Any]) -> ToolSpec:
    parameters = _schema(function.get("parameters") or {"type": "object"}, _openapi_types())
    return ToolSpec(
        name=function["name"], description=function.get("description", ""), parameters=parameters
    )


# -- the checker -----------------------------------------------------------------------------


def _bfcl_module(name: str) -> Any:
    root = str(_unpacked())
    if root not in sys.path:
        sys.path.insert(0, root)
    if "bfcl_eval.constants.model_config" not in sys.modules:
        # ast_checker imports MODEL_CONFIG_MAPPING only to ask whether a model's API turns
        # dots in names into underscores; the real module imports every model handler.
        stand_in = types.ModuleType("bfcl_eval.constants.model_config")

        class _NoRewrite:
            underscore_to_dot = False

        class _Mapping(dict[str, Any]):
            def __missing__(self, key: str) -> Any:
                return _NoRewrite()

        stand_in.MODEL_CONFIG_MAPPING = _Mapping()  # type: ignore[attr-defined]
        sys.modules["bfcl_eval.constants.model_config"] = stand_in
    return importlib.import_module(name)


Checker = Callable[[Case, Sequence[ToolCall]], tuple[bool, str]]


def checker() -> Checker:
    """BFCL's AST checker, as ``check(case, calls) -> (valid, error)``."""
    ast = _bfcl_module("bfcl_eval.eval_checker.ast_eval.ast_checker")
    enums = _bfcl_module("bfcl_eval.constants.enums")

    def check(case: Case, calls: Sequence[ToolCall]) -> tuple[bool, str]:
        if case.category == "live_irrelevance":
            ok = not calls
            return ok, "" if ok else f"called {calls[0].name} although no function fits"
        if not calls:
            return False, "no function call"
        output = [{c.name: dict(c.arguments)} for c in calls]
        result = ast.ast_checker(
            list(case.functions),
            output,
            list(case.answer or ()),
            enums.Language.PYTHON,
            case.category,
            "agentkit",
        )
        return bool(result["valid"]), "; ".join(str(e) for e in result.get("error", []))[:300]

    return check
