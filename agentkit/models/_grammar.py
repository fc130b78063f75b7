"""llama.cpp GBNF grammars that constrain a model turn to tool calls or a plain answer.

A turn decoded under ``tool_call_grammar(tools)`` is exactly one of:

- one or more calls (at most ``max_calls``), separated by a newline, each a JSON object
  ``{"name": "<tool>", "arguments": {...}}`` naming one of the real tools, with arguments
  valid for that tool's schema, and written in one of three ways: inside
  ``<tool_call>\n ... \n</tool_call>`` (what chat templates ask for), in a fenced
  ```` ```json ```` block, or bare. Small models (Qwen2.5-Coder especially) ignore the
  tags and write the other two; accepting them keeps their calls under the schema
  instead of leaving them to unconstrained text.
- a plain-text answer that starts neither the way a call does (``<tool_call>``,
  ```` ```json ````, ``{"name"``) nor with whitespace, so a call cannot slip past the
  grammar. Other JSON answers (``{"result": 5}``) remain possible.

The arguments are forced into one layout, ``json.dumps``'s default (``", "`` and
``": "``, nothing else), which is also how the chat template re-renders a call in the
next prompt: the generated tokens then match the next prompt and the KV cache covers
them. A fixed layout also leaves no free whitespace for a small model to loop on.
Properties come in schema order.

Every repetition is bounded (strings, arrays, free-form objects, calls per turn) because
a small model under a grammar can otherwise repeat one array item until the context is
full. Bounds that the grammar cannot express (``minimum``, ``pattern``, ...) are left to
the tool's own validation, which still runs on every call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._messages import ToolSpec

__all__ = [
    "CALL_CLOSE",
    "CALL_OPEN",
    "GrammarLimits",
    "json_schema_grammar",
    "tool_call_grammar",
]

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"

# Shared terminal rules, added to a grammar only when something refers to them.
_CHAR = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'
_DIGITS = "[0-9]"
_PRIMITIVES: Mapping[str, str] = {
    "char": _CHAR,
    "integer": '"-"? ("0" | [1-9] [0-9]{0,15})',
    "number": '"-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?',
    "boolean": '"true" | "false"',
    "null": '"null"',
    "date": f'{_DIGITS}{{4}} "-" ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | [12] [0-9] | "3" [01])',
    "time": '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? '
    '("Z" | [-+] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])?',
    "date-time": 'date "T" time',
    "uuid": '[0-9a-f]{8} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{4} "-" [0-9a-f]{12}',
}
_PRIMITIVE_DEPS: Mapping[str, tuple[str, ...]] = {"date-time": ("date", "time")}
_FORMATS = ("date", "time", "date-time", "uuid")
# Names the fixed part of a grammar uses; schema-derived rules never take them.
_RESERVED = frozenset(
    {
        "root",
        "calls",
        "call",
        "body",
        "pad",
        "sep",
        "text",
        "value",
        "object",
        "array",
        "string",
        *_PRIMITIVES,
    }
)


@dataclass(frozen=True)
class GrammarLimits:
    """Caps applied where a schema leaves a length open, so output always terminates."""

    max_string: int = 1000
    """Characters in a string without ``maxLength`` (and the cap on any ``maxLength``)."""
    max_items: int = 32
    """Items in an array or entries in a free-form object."""
    max_calls: int = 8
    """Tool calls in one turn."""


def gbnf_literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_literal(value: Any) -> str:
    # Same layout as the template's tojson (json.dumps defaults), see the module docstring.
    return gbnf_literal(json.dumps(value, ensure_ascii=False))


def _rule_name(hint: str) -> str:
    # GBNF rule names allow letters, digits and '-' only (no '_' in this llama.cpp).
    name = re.sub(r"[^A-Za-z0-9-]+", "-", hint).strip("-").lower()
    return name or "r"


@dataclass
class _Builder:
    """Collects named rules while walking one or more JSON schemas."""

    limits: GrammarLimits
    rules: dict[str, str] = field(default_factory=dict)
    _refs: dict[str, str] = field(default_factory=dict)
    _defs: dict[str, Any] = field(default_factory=dict)

    def add(self, hint: str, body: str) -> str:
        """Add a rule under a fresh name derived from ``hint``; returns the name."""
        base = _rule_name(hint)
        name, n = base, 1
        while name in self.rules or name in _RESERVED:
            n += 1
            name = f"{base}-{n}"
        self.rules[name] = body
        return name

    def primitive(self, name: str) -> str:
        for dep in (*_PRIMITIVE_DEPS.get(name, ()), name):
            self.rules.setdefault(dep, _PRIMITIVES[dep])
        return name

    def string(self, min_len: int = 0, max_len: int | None = None) -> str:
        top = self.limits.max_string if max_len is None else min(max_len, self.limits.max_string)
        low = min(max(min_len, 0), top)
        name = "string" if (low, top) == (0, self.limits.max_string) else f"string-{low}-{top}"
        if name not in self.rules:
            self.primitive("char")
            self.rules[name] = f'"\\"" char{{{low},{top}}} "\\""'
        return name

    def any_value(self) -> str:
        """A rule for any JSON value (bounded breadth; depth is bounded by max_tokens)."""
        if "value" not in self.rules:
            self.rules["value"] = ""  # reserve: the rules below refer back to it
            string = self.string()
            cap = max(self.limits.max_items - 1, 0)
            self.rules["object"] = (
                f'"{{" ({string} ": " value (", " {string} ": " value){{0,{cap}}})? "}}"'
            )
            self.rules["array"] = f'"[" (value (", " value){{0,{cap}}})? "]"'
            for prim in ("number", "boolean", "null"):
                self.primitive(prim)
            self.rules["value"] = f"object | array | {string} | number | boolean | null"
        return "value"

    # -- schema walking ----------------------------------------------------------------

    def visit(self, schema: Any, hint: str) -> str:
        """Return a GBNF expression (a rule name or a small group) matching ``schema``."""
        if schema is True or schema == {} or not isinstance(schema, Mapping):
            return self.any_value()
        if "$ref" in schema:
            return self._ref(str(schema["$ref"]))
        if "const" in schema:
            return _json_literal(schema["const"])
        if "enum" in schema:
            return self._alternatives(hint, [_json_literal(v) for v in schema["enum"]])
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self.visit(s, f"{hint}-{i}") for i, s in enumerate(schema[key])]
                return self._alternatives(hint, options)
        if "allOf" in schema:
            return self.visit(_merge_all_of(schema), hint)
        kind = schema.get("type")
        if isinstance(kind, list):
            options = [self.visit({**schema, "type": t}, f"{hint}-{t}") for t in kind]
            return self._alternatives(hint, options)
        if kind is None:
            kind = _infer_type(schema)
        handler = self._handlers().get(str(kind))
        return handler(schema, hint) if handler else self.any_value()

    def _handlers(self) -> dict[str, Callable[[Mapping[str, Any], str], str]]:
        return {
            "object": self._object,
            "array": self._array,
            "string": self._string_schema,
            "integer": lambda s, h: self.primitive("integer"),
            "number": lambda s, h: self.primitive("number"),
            "boolean": lambda s, h: self.primitive("boolean"),
            "null": lambda s, h: self.primitive("null"),
        }

    def _alternatives(self, hint: str, options: list[str]) -> str:
        unique = list(dict.fromkeys(options))
        if len(unique) == 1:
            return unique[0]
        return self.add(hint, " | ".join(unique))

    def _ref(self, ref: str) -> str:
        if ref in self._refs:
            return self._refs[ref]
        prefix = next((p for p in ("#/$defs/", "#/definitions/") if ref.startswith(p)), None)
        target = self._defs.get(ref[len(prefix) :]) if prefix else None
        if target is None:
            # An unresolvable reference cannot be constrained; the tool's validation
            # still rejects a wrong value, so accept any JSON here rather than fail.
            return self.any_value()
        # Reserve the name first so recursive schemas (a tree of nodes) terminate.
        name = self.add(f"def-{ref.rsplit('/', 1)[-1]}", "")
        self._refs[ref] = name
        self.rules[name] = self.visit(target, name)
        return name

    def _string_schema(self, schema: Mapping[str, Any], hint: str) -> str:
        fmt = schema.get("format")
        if fmt in _FORMATS:
            return self.add(hint, f'"\\"" {self.primitive(str(fmt))} "\\""')
        max_len = schema.get("maxLength")
        return self.string(
            int(schema.get("minLength", 0)), int(max_len) if max_len is not None else None
        )

    def _array(self, schema: Mapping[str, Any], hint: str) -> str:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list) and prefix:
            # Tuples: pydantic emits prefixItems with items=false; the tail is not allowed.
            parts = [self.visit(s, f"{hint}-{i}") for i, s in enumerate(prefix)]
            return self.add(hint, '"[" ' + ' ", " '.join(parts) + ' "]"')
        item = self.visit(schema.get("items", True), f"{hint}-item")
        top = min(int(schema.get("maxItems", self.limits.max_items)), self.limits.max_items)
        low = min(int(schema.get("minItems", 0)), top)
        if top == 0:
            return '"[]"'
        if low == 0:
            body = f'"[" ({item} (", " {item}){{0,{top - 1}}})? "]"'
        else:
            body = f'"[" {item} (", " {item}){{{low - 1},{top - 1}}} "]"'
        return self.add(hint, body)

    def _object(self, schema: Mapping[str, Any], hint: str) -> str:
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        if not props:
            extra = schema.get("additionalProperties")
            if not isinstance(extra, Mapping) and ("properties" in schema or extra is False):
                # No declared parameters (a tool without arguments): only "{}".
                return '"{}"'
            value = self.visit(extra, f"{hint}-value")
            string = self.string()
            cap = self.limits.max_items - 1
            return self.add(
                hint, f'"{{" ({string} ": " {value} (", " {string} ": " {value}){{0,{cap}}})? "}}"'
            )
        # Properties appear in schema order (the order the template shows the model);
        # extra keys are never generated, whatever additionalProperties says.
        items: list[tuple[str, bool]] = []
        for pname, pschema in props.items():
            value = self.visit(pschema, f"{hint}-{pname}")
            items.append((f'{_json_literal(pname)} ": " {value}', pname in required))
        return self.add(hint, f'"{{" {_ordered_members(items)} "}}"')


def _ordered_members(items: list[tuple[str, bool]]) -> str:
    """Members in order, each required one present, each optional one possibly skipped.

    Written as: the first member present is item i (every item before it optional and
    skipped), and each later member is ``", " kv``, optional unless required.
    """

    def rest(start: int) -> str:
        return " ".join(f'", " {kv}' if req else f'(", " {kv})?' for kv, req in items[start:])

    alternatives = []
    for i, (kv, req) in enumerate(items):
        alternatives.append(f"{kv} {rest(i + 1)}".strip())
        if req:
            return "(" + " | ".join(alternatives) + ")"
    return "(" + " | ".join(alternatives) + ")?"


def _infer_type(schema: Mapping[str, Any]) -> str | None:
    if "properties" in schema or "additionalProperties" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema:
        return "array"
    return None


def _merge_all_of(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten ``allOf`` of object schemas into one (pydantic wraps refs this way)."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        if not isinstance(part, Mapping):
            continue
        if "$ref" in part and len(schema["allOf"]) == 1 and "properties" not in merged:
            return {**merged, "$ref": part["$ref"]}
        for key, value in part.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _render(rules: Mapping[str, str]) -> str:
    return "".join(f"{name} ::= {body}\n" for name, body in rules.items())


def json_schema_grammar(schema: Mapping[str, Any], limits: GrammarLimits | None = None) -> str:
    """A grammar whose root is one JSON value valid for ``schema`` (bounded, compact)."""
    builder = _Builder(limits or GrammarLimits())
    builder._defs = dict(schema.get("$defs") or schema.get("definitions") or {})
    expr = builder.visit(schema, "value-root")
    return _render({"root": expr, **builder.rules})


def _class_char(ch: str) -> str:
    return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, "\\" + ch if ch in "]^-\\[" else ch)


def _text_excluding(prefixes: Sequence[str]) -> str:
    """GBNF for non-empty text that starts neither with whitespace nor with a prefix.

    Built from a trie of the prefixes: at each node, either a character that continues
    no prefix (then anything), or one that does (then, optionally, the same below it).
    A node that completes a prefix is a dead end.
    """
    trie: dict[str, Any] = {}
    for prefix in prefixes:
        node = trie
        for ch in prefix:
            node = node.setdefault(ch, {})
        node[""] = {}  # marks the end of a forbidden prefix

    def alternatives(node: dict[str, Any], first: bool) -> str:
        chars = sorted(c for c in node if c)
        banned = "".join(_class_char(c) for c in chars) + (" \\t\\n\\r" if first else "")
        parts = [f"[^{banned}] .*"]
        for ch in chars:
            child = node[ch]
            if "" in child:
                continue
            parts.append(f"{gbnf_literal(ch)} ({alternatives(child, False)})?")
        return " | ".join(parts)

    return alternatives(trie, True)


# Whitespace a model may put inside the call object's own braces (Qwen likes to
# pretty-print). Bounded, and the arguments themselves stay compact.
_OPEN_SPACE = ("", " ", "\n", "\n ", "\n  ", "\n   ", "\n    ")
_FENCE_OPEN = "```json\n"
_FENCE_CLOSE = "\n```"


def tool_call_grammar(
    tools: Sequence[ToolSpec],
    *,
    allow_text: bool = True,
    limits: GrammarLimits | None = None,
    min_calls: int = 1,
) -> str:
    """The grammar for one assistant turn given ``tools`` (see the module docstring).

    With ``allow_text=False`` the turn must call at least one tool, and with ``min_calls``
    at least that many.
    """
    if not tools:
        raise ValueError("tool_call_grammar needs at least one tool")
    limits = limits or GrammarLimits()
    least = max(1, min(min_calls, limits.max_calls))
    builder = _Builder(limits)
    per_tool = []
    for spec in tools:
        builder._defs = dict(
            spec.parameters.get("$defs") or spec.parameters.get("definitions") or {}
        )
        builder._refs = {}  # $defs are per tool; equal names may differ between tools
        args = builder.visit(spec.parameters, f"{spec.name}-args")
        name = gbnf_literal(json.dumps(spec.name) + ",")
        per_tool.append(builder.add(f"call-{spec.name}", f'{name} sep "\\"arguments\\": " {args}'))
    head_rules = {
        "root": "calls | text" if allow_text else "calls",
        "calls": f'call ("\\n" "\\n"? call){{{least - 1},{limits.max_calls - 1}}}',
        # The format the chat template asks for, and two habits of models that ignore
        # it (a fenced JSON block, bare JSON): all three decode under the same schema.
        "call": f"{gbnf_literal(CALL_OPEN + chr(10))} body {gbnf_literal(chr(10) + CALL_CLOSE)}"
        f" | {gbnf_literal(_FENCE_OPEN)} body {gbnf_literal(_FENCE_CLOSE)} | body",
        "body": f'"{{" pad "\\"name\\": " ({" | ".join(per_tool)}) pad "}}"',
        "pad": '([ ] | "\\n" [ ]{0,4})?',
        "sep": '" " | "\\n" [ ]{0,4}',
    }
    if allow_text:
        # Text may not begin the way a call does, so every call goes through the schema.
        openers = [CALL_OPEN, _FENCE_OPEN.strip()]
        openers += ["{" + space + '"name"' for space in _OPEN_SPACE]
        head_rules["text"] = _text_excluding(openers)
    return _render({**head_rules, **builder.rules})


def text_grammar() -> str:
    """A plain-text answer that does not begin the way a tool call does.

    Used where the tools stay in the prompt (so the cached prefix is unchanged) but the
    turn must answer in words (``tool_choice="none"``: answer now, declining). Unlike the
    text branch of ``tool_call_grammar``, it does not let the text open with ``{`` at all:
    a small model kept from writing ``{"name": ...`` writes ``{"name}: ...`` instead,
    which is still a call, not an answer. An answer that must be JSON belongs in a typed
    tool (see examples/extract_records.py), not in a tools-off turn.
    """
    openers = ["{", "[", "<", "```"]
    return _render({"root": "text", "text": _text_excluding(openers)})
