"""Typed Python functions as tools: schema from type hints and docstring, pydantic validation.

    @tool
    def add(a: int, b: int) -> int:
        \"\"\"Add two integers.

        Args:
            a: the first addend
            b: the second addend
        \"\"\"
        return a + b

Problems with a signature (a parameter without a type, a type pydantic cannot describe)
are collected on ``Tool.problems`` rather than raised at import, so building an agent or
graph reports every problem at once in one ConfigError.

Tools that arrive as JSON schemas (a function-calling benchmark, an OpenAPI operation, an
MCP server) are made with ``Tool.from_schema`` or ``@schema_tool`` (``_schema_tools.py``)
and get the same treatment everywhere the runtime handles a tool.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic.fields import FieldInfo

from .._errors import ConfigError
from ..detection._config import DetectorConfig, ToolDetectorOverride
from ..models._messages import ToolSpec, tool_name_problem

__all__ = ["Tool", "ToolArgumentsError", "tool"]

DEFAULT_MAX_OUTPUT_CHARS = 4000


class ToolArgumentsError(Exception):
    """Arguments failed validation; ``feedback`` is the text the model is shown."""

    def __init__(self, tool_name: str, feedback: str) -> None:
        super().__init__(f"invalid arguments for {tool_name}: {feedback}")
        self.tool_name = tool_name
        self.feedback = feedback


@dataclass
class Tool:
    """A callable the model may invoke by name with JSON arguments."""

    fn: Callable[..., Any]
    name: str = ""
    description: str = ""
    timeout: float | None = 30.0
    """Seconds before a call is abandoned and reported to the model as timed out."""
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    idempotent: bool = False
    """Safe to run again after a crash even if it had completed (resume skips it anyway)."""
    volatile_args: frozenset[str] = frozenset()
    """Argument names the repetition detector ignores (free-text thoughts, progress)."""
    deterministic: bool = False
    """The same arguments always give the same result (a calculator, say): a repeat of a
    finished call is never run again; the model is asked for its answer instead."""
    problems: list[str] = field(default_factory=list, init=False)
    args_model: type[BaseModel] | None = field(default=None, init=False)
    is_async: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.name = self.name or getattr(self.fn, "__name__", "")
        doc = inspect.getdoc(self.fn) or ""
        summary, arg_docs = _parse_docstring(doc)
        self.description = self.description or summary
        self.is_async = inspect.iscoroutinefunction(self.fn)
        self.problems += identity_problems(self.name, self.description, "add a docstring")
        self.args_model = self._build_args_model(arg_docs)

    def _build_args_model(self, arg_docs: dict[str, str]) -> type[BaseModel] | None:
        try:
            signature = inspect.signature(self.fn)
            hints = _type_hints(self.fn)
        except (TypeError, ValueError, NameError) as exc:
            self.problems.append(f"tool {self.name!r}: cannot read its signature ({exc})")
            return None
        fields: dict[str, Any] = {}
        for pname, param in signature.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                self.problems.append(
                    f"tool {self.name!r}: *{pname} / **{pname} cannot become a JSON schema; "
                    "name every parameter"
                )
                continue
            if pname not in hints:
                self.problems.append(
                    f"tool {self.name!r}: parameter {pname!r} has no type annotation; "
                    f"annotate it (for example `{pname}: str`)"
                )
                continue
            default = ... if param.default is param.empty else param.default
            if isinstance(default, FieldInfo):
                fields[pname] = (hints[pname], default)
            else:
                fields[pname] = (
                    hints[pname],
                    FieldInfo(default=default, description=arg_docs.get(pname)),
                )
        if any(p.startswith(f"tool {self.name!r}: parameter") or "*" in p for p in self.problems):
            return None
        try:
            model = create_model(
                f"{self.name}_args",
                __config__=ConfigDict(extra="forbid"),
                **fields,
            )
            model.model_json_schema()
        except Exception as exc:  # pydantic raises several types for unsupported hints
            self.problems.append(
                f"tool {self.name!r}: its parameters cannot become a JSON schema ({exc})"
            )
            return None
        return model  # type: ignore[no-any-return]

    @property
    def spec(self) -> ToolSpec:
        """The description the model sees. Raises ConfigError if the tool is invalid."""
        if self.problems or self.args_model is None:
            raise ConfigError(self.problems or [f"tool {self.name!r} is invalid"])
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    @classmethod
    def from_schema(
        cls,
        *,
        name: str,
        description: str,
        parameters: Mapping[str, Any] | None = None,
        fn: Callable[..., Any],
        timeout: float | None = 30.0,
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        idempotent: bool = False,
        volatile_args: frozenset[str] | set[str] = frozenset(),
        deterministic: bool = False,
    ) -> Tool:
        """A tool defined by a JSON Schema for its arguments (``parameters``).

        ``fn`` (sync or async) receives the validated arguments as keyword arguments, with
        the schema's defaults filled in. ``parameters`` None means no arguments. The keys
        match OpenAI's function format: ``Tool.from_schema(**spec["function"], fn=f)``.
        """
        from ._schema_tools import SchemaTool  # it subclasses Tool, so it imports this module

        return SchemaTool(
            fn,
            name=name,
            description=description,
            timeout=timeout,
            max_output_chars=max_output_chars,
            idempotent=idempotent,
            volatile_args=frozenset(volatile_args),
            deterministic=deterministic,
            parameters=dict(parameters) if parameters is not None else {},
        )

    def validate(self, arguments: dict[str, Any]) -> BaseModel:
        """Validate raw JSON arguments; ToolArgumentsError carries feedback for the model."""
        if self.args_model is None:
            raise ConfigError(self.problems)
        try:
            return self.args_model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolArgumentsError(
                self.name, _feedback(exc, list(self.args_model.model_fields))
            ) from exc

    def call_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate raw JSON arguments into the keyword arguments ``fn`` is called with."""
        parsed = self.validate(arguments)
        return {k: getattr(parsed, k) for k in type(parsed).model_fields}

    async def ainvoke(self, arguments: dict[str, Any]) -> Any:
        """Validate and run; sync functions run in a worker thread."""
        kwargs = self.call_arguments(arguments)
        if self.is_async:
            return await self.fn(**kwargs)
        return await asyncio.to_thread(self.fn, **kwargs)

    def render(self, result: Any) -> str:
        """The observation text the model sees, trimmed to ``max_output_chars``."""
        if isinstance(result, str):
            text = result
        elif isinstance(result, BaseModel):
            text = result.model_dump_json()
        else:
            try:
                text = json.dumps(result, default=str, ensure_ascii=False)
            except (TypeError, ValueError):
                text = str(result)
        return trim(text, self.max_output_chars)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation), as in plain Python."""
        return self.fn(*args, **kwargs)


def trim(text: str, limit: int) -> str:
    """Cut text to ``limit`` characters, keeping head and tail and saying what was cut."""
    if len(text) <= limit:
        return text
    keep = max(limit - 60, 20)
    head, tail = text[: keep * 3 // 4], text[-(keep // 4) :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters cut ...]\n{tail}"


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...
@overload
def tool(
    *,
    name: str = "",
    description: str = "",
    timeout: float | None = 30.0,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    idempotent: bool = False,
    volatile_args: frozenset[str] | set[str] = frozenset(),
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str = "",
    description: str = "",
    timeout: float | None = 30.0,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    idempotent: bool = False,
    volatile_args: frozenset[str] | set[str] = frozenset(),
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Turn a typed function (sync or async) into a Tool. Usable bare or with options."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return Tool(
            f,
            name=name,
            description=description,
            timeout=timeout,
            max_output_chars=max_output_chars,
            idempotent=idempotent,
            volatile_args=frozenset(volatile_args),
        )

    return wrap(fn) if fn is not None else wrap


def as_tool(item: Tool | Callable[..., Any] | Callable[..., Awaitable[Any]]) -> Tool:
    return item if isinstance(item, Tool) else Tool(item)


def with_volatile_args(config: DetectorConfig, tools: Iterable[Tool]) -> DetectorConfig:
    """``config`` with every tool's ``volatile_args`` added to that tool's detector override.

    The step detectors read their settings only; this is how a tool's own flag reaches them.
    """
    overrides = dict(config.tool_overrides)
    for t in tools:
        if t.volatile_args:
            old = overrides.get(t.name) or ToolDetectorOverride()
            fields = old.volatile_fields | t.volatile_args
            overrides[t.name] = old.model_copy(update={"volatile_fields": fields})
    if overrides == config.tool_overrides:
        return config
    return config.model_copy(update={"tool_overrides": overrides})


def identity_problems(name: str, description: str, fix: str) -> list[str]:
    """What is wrong with a tool's name and description (the same rule for every tool)."""
    problems = []
    name_problem = tool_name_problem(name)
    if name_problem is not None:
        problems.append(name_problem)
    if not description.strip():
        problems.append(
            f"tool {name!r} has no description: {fix} saying what it does, so the model "
            "knows when to use it"
        )
    return problems


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    import typing

    return {
        k: v for k, v in typing.get_type_hints(fn, include_extras=True).items() if k != "return"
    }


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?):\s*$")
_ARG_LINE = re.compile(r"^\s{2,}(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Summary (text before any section) and per-argument descriptions (Google style)."""
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        header = _SECTION.match(line.strip())
        if header and not line.startswith(" "):
            section = header.group(1)
            current = None
            continue
        if section is None:
            summary_lines.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            match = _ARG_LINE.match(line)
            if match:
                current = match.group(1)
                args[current] = match.group(2).strip()
            elif current and line.strip():
                args[current] += " " + line.strip()
    summary = "\n".join(summary_lines).strip()
    return summary, args


def _feedback(exc: ValidationError, allowed: list[str] | None = None) -> str:
    """Validation errors as short sentences a small model can act on."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"]) or "(arguments)"
        if err["type"] == "extra_forbidden":
            hint = f"; allowed: {', '.join(allowed)}" if allowed else ""
            parts.append(f"{loc}: unexpected argument{hint}")
        elif err["type"] == "missing":
            parts.append(f"{loc}: required argument is missing")
        else:
            parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
