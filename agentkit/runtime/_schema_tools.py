"""Tools defined by a JSON Schema instead of a typed Python signature.

    factorial = Tool.from_schema(
        name="math.factorial",
        description="The factorial of a non-negative integer.",
        parameters={
            "type": "object",
            "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 170}},
            "required": ["n"],
        },
        fn=lambda n: math.factorial(n),
    )

The schema is what the model is shown and what its calls are decoded under (the grammar
covers objects, arrays, enums, ``anyOf``, optional fields). Every call is then validated
against the whole schema with ``jsonschema``, so the keywords a grammar cannot express
(``minimum``, ``pattern``, ``format``, ...) still hold, and a failure goes back to the
model as feedback like any invalid call. Optional arguments the call leaves out take the
schema's ``default``; the callable receives the arguments as keyword arguments.

One deliberate difference from plain JSON Schema: when the top level lists
``properties`` and says nothing about ``additionalProperties``, other arguments are
refused, as they are for decorated functions (the grammar never generates them, and a
Python callable would fail on them).
"""

from __future__ import annotations

import copy
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import RootModel

from .._errors import ConfigError
from ..models._grammar import json_schema_grammar
from ..models._messages import ToolSpec
from ._tools import DEFAULT_MAX_OUTPUT_CHARS, Tool, ToolArgumentsError, identity_problems

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as SchemaValidationError
    from jsonschema.protocols import Validator

__all__ = ["SchemaArguments", "SchemaTool", "schema_tool"]

_MAX_FEEDBACK = 6  # a small model fixes a few problems per attempt, not twenty
_MAX_MESSAGE = 160
_DEPTH = 32
_COMBINATORS = ("allOf", "anyOf", "oneOf", "$ref", "if", "not")


class SchemaArguments(RootModel[dict[str, Any]]):
    """The validated arguments of a schema tool (``.root``), with defaults filled in."""


@dataclass
class SchemaTool(Tool):
    """A Tool whose arguments are described by a JSON Schema (see ``Tool.from_schema``)."""

    parameters: dict[str, Any] = field(default_factory=dict)
    """The JSON Schema of the arguments, as given (``{}``: no arguments)."""
    _validator: Validator | None = field(default=None, init=False, repr=False, compare=False)
    _spec: ToolSpec | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # An object whose __call__ is async counts as async too.
        self.is_async = inspect.iscoroutinefunction(self.fn) or inspect.iscoroutinefunction(
            type(self.fn).__call__
        )
        self.description = self.description or _summary(self.fn)
        self.parameters = _normalised(self.parameters)
        self.problems += identity_problems(self.name, self.description, "pass description=")
        schema_problems = _schema_problems(self.name, self.parameters)
        self.problems += schema_problems
        if schema_problems:
            return
        self._validator = _compile(_strict(self.parameters))
        if not self.problems:
            shown = _without_titles(self.parameters)
            self._spec = ToolSpec(name=self.name, description=self.description, parameters=shown)

    @property
    def spec(self) -> ToolSpec:
        """The description the model sees. Raises ConfigError if the tool is invalid."""
        if self._spec is None:
            raise ConfigError(self.problems or [f"tool {self.name!r} is invalid"])
        return self._spec

    def validate(self, arguments: dict[str, Any]) -> SchemaArguments:
        """Validate against the schema; ToolArgumentsError carries feedback for the model."""
        if self._validator is None:
            raise ConfigError(self.problems or [f"tool {self.name!r} is invalid"])
        errors = list(self._validator.iter_errors(arguments))
        if errors:
            raise ToolArgumentsError(self.name, _feedback(errors))
        filled = _with_defaults(self.parameters, copy.deepcopy(arguments), self.parameters, 0)
        return SchemaArguments.model_construct(root=filled)

    def call_arguments(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The validated arguments, defaults filled in, as ``fn``'s keyword arguments."""
        return self.validate(arguments).root


def schema_tool(
    *,
    name: str,
    description: str,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = 30.0,
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    idempotent: bool = False,
    volatile_args: frozenset[str] | set[str] = frozenset(),
    deterministic: bool = False,
) -> Callable[[Callable[..., Any]], Tool]:
    """Decorate a function (sync or async) into a tool whose arguments a JSON Schema defines.

    The decorator form of ``Tool.from_schema``: the function receives the validated
    arguments as keyword arguments (``**kwargs`` takes names that are not identifiers).
    """

    def wrap(fn: Callable[..., Any]) -> Tool:
        return Tool.from_schema(
            name=name,
            description=description,
            parameters=parameters,
            fn=fn,
            timeout=timeout,
            max_output_chars=max_output_chars,
            idempotent=idempotent,
            volatile_args=volatile_args,
            deterministic=deterministic,
        )

    return wrap


# -- the schema at definition time -------------------------------------------------------


def _summary(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) if inspect.isfunction(fn) or inspect.ismethod(fn) else None
    return (doc or "").split("\n\n")[0].strip()


def _normalised(parameters: Mapping[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(dict(parameters))
    if not schema:
        return {"type": "object", "properties": {}}
    schema.setdefault("type", "object")  # arguments are an object whatever else is said
    return schema


def _compile(schema: dict[str, Any]) -> Validator:
    from jsonschema.validators import Draft202012Validator, validator_for

    cls = validator_for(schema, default=Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _schema_problems(name: str, schema: dict[str, Any]) -> list[str]:
    """What makes a schema unusable for a tool, found before any model is asked."""
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import Draft202012Validator, validator_for

    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        return [
            f"tool {name!r}: its parameters are not a valid JSON Schema "
            f"({_short(exc.message)}, at {where})"
        ]
    problems = []
    if schema.get("type") != "object":
        problems.append(
            f"tool {name!r}: its parameters must describe an object "
            f'("type": "object"), not {schema.get("type")!r}'
        )
    props = schema.get("properties")
    if isinstance(props, Mapping) and not any(k in schema for k in _COMBINATORS):
        missing = [r for r in schema.get("required", ()) if r not in props]
        if missing:
            problems.append(
                f"tool {name!r}: required names {', '.join(map(repr, missing))}, which "
                "are not among its properties; no call could ever be valid"
            )
    try:
        json_schema_grammar(schema)
    except Exception as exc:  # the builder meets a shape it does not expect
        problems.append(f"tool {name!r}: no grammar can be built from its parameters ({exc})")
    return problems


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema calls are validated against: undeclared top-level arguments refused."""
    open_keys = ("additionalProperties", "patternProperties", "unevaluatedProperties")
    if "properties" not in schema or any(k in schema for k in (*open_keys, *_COMBINATORS)):
        return schema
    return {**schema, "additionalProperties": False}


def _without_titles(schema: Any) -> Any:
    """The schema without ``title`` annotations, which cost prompt tokens and help no one."""
    if isinstance(schema, list):
        return [_without_titles(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(
            value, Mapping
        ):
            out[key] = {k: _without_titles(v) for k, v in value.items()}
        elif key in ("default", "const", "enum", "examples", "required"):
            out[key] = value  # data, not schemas: a "title" in here is a value
        else:
            out[key] = _without_titles(value)
    return out


# -- one call -----------------------------------------------------------------------------


def _with_defaults(schema: Any, value: Any, root: Mapping[str, Any], depth: int) -> Any:
    """Fill in the ``default`` of every property a call left out, nested objects included."""
    if not isinstance(schema, Mapping) or depth > _DEPTH:
        return value
    ref = schema.get("$ref")
    if isinstance(ref, str):
        value = _with_defaults(_resolve(ref, root), value, root, depth + 1)
    for part in schema.get("allOf", ()):
        value = _with_defaults(part, value, root, depth + 1)
    props = schema.get("properties")
    if isinstance(value, dict) and isinstance(props, Mapping):
        for key, sub in props.items():
            if key in value:
                value[key] = _with_defaults(sub, value[key], root, depth + 1)
            elif isinstance(sub, Mapping) and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, Mapping):
        value = [_with_defaults(items, v, root, depth + 1) for v in value]
    return value


def _resolve(ref: str, root: Mapping[str, Any]) -> Any:
    for prefix in ("#/$defs/", "#/definitions/"):
        if ref.startswith(prefix):
            defs = root.get(prefix[2:-1])
            return defs.get(ref[len(prefix) :]) if isinstance(defs, Mapping) else None
    return None  # a remote or unusual reference: defaults below it are not filled in


def _feedback(errors: list[SchemaValidationError]) -> str:
    """Schema violations as short sentences a small model can act on."""
    # Sorted, so the feedback reads by location and is the same for the same mistakes.
    parts = sorted({part for err in errors for part in _describe(err)})
    if len(parts) > _MAX_FEEDBACK:
        parts = [*parts[:_MAX_FEEDBACK], f"and {len(parts) - _MAX_FEEDBACK} more problems"]
    return "; ".join(parts)


def _describe(err: SchemaValidationError) -> list[str]:
    path = [str(p) for p in err.absolute_path]
    loc = ".".join(path) or "(arguments)"
    instance, schema = err.instance, err.schema
    if err.validator == "required" and isinstance(instance, dict):
        required = err.validator_value if isinstance(err.validator_value, list) else []
        names = [r for r in required if r not in instance]
        return [f"{'.'.join([*path, r])}: required argument is missing" for r in names]
    if (
        err.validator in ("additionalProperties", "unevaluatedProperties")
        and isinstance(instance, dict)
        and isinstance(schema, Mapping)
    ):
        known = dict(schema.get("properties") or {})
        patterns = list(schema.get("patternProperties") or {})
        extra = [
            k for k in instance if k not in known and not any(re.search(p, k) for p in patterns)
        ]
        hint = f"; allowed: {', '.join(known)}" if known else ""
        what = "argument" if not path else "property"
        return [f"{'.'.join([*path, k])}: unexpected {what}{hint}" for k in extra]
    if err.validator in ("anyOf", "oneOf") and err.context:
        from jsonschema.exceptions import best_match

        closest = best_match(err.context)
        detail = f" (closest: {_short(closest.message)})" if closest is not None else ""
        return [f"{loc}: matches none of the allowed forms{detail}"]
    return [f"{loc}: {_short(err.message)}"]


def _short(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."
