"""Render a conversation into the prompt text a GGUF model expects, and parse its reply.

Three ways to render, chosen per call:

- **native**: the GGUF's own Jinja chat template, given ``tools`` in OpenAI format. Used
  when the template mentions ``tools`` (Qwen2.5's does, and expects calls as
  ``<tool_call>`` JSON), or when the conversation has no tools at all.
- **text tools**: the template ignores tools (SmolLM2's). The tools are described in the
  system message, earlier calls become assistant text in the ``<tool_call>`` format the
  grammar produces, and tool results become user turns; the model's own template still
  renders the turns.
- **ChatML**: the file has no template, or its template fails on the conversation; the
  text-tools messages are written in ChatML.

Rendering is deterministic (insertion order, one JSON layout everywhere) so the prompt
of step n is a byte-exact prefix of step n+1 and llama.cpp reuses its KV cache.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .._errors import ModelFileError
from ._grammar import CALL_CLOSE, CALL_OPEN
from ._messages import Message, ToolCall, ToolSpec

__all__ = [
    "ChatRenderer",
    "RenderMode",
    "check_chat_templates",
    "parse_tool_calls",
    "render_call",
    "schema_problems",
]

_log = logging.getLogger("agentkit.template")

RenderMode = Literal["native", "text-tools", "chatml"]

_TOOL_PREAMBLE = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n{tools}\n</tools>\n\n"
    "To call functions, reply with one JSON object per call, each inside "
    "<tool_call></tool_call> XML tags:\n"
    f'{CALL_OPEN}\n{{{{"name": <function-name>, "arguments": <args-json-object>}}}}\n'
    f"{CALL_CLOSE}\n"
    "If no function is needed, answer in plain text."
)


_QWEN_DOUBLED_EXAMPLE = '{{"name": <function-name>, "arguments": <args-json-object>}}'
_QWEN_FIXED_EXAMPLE = '{"name": <function-name>, "arguments": <args-json-object>}'


def _dumps(value: Any) -> str:
    # The one JSON layout used in prompts, grammars and parsed calls (json.dumps defaults).
    return json.dumps(value, ensure_ascii=False)


def render_call(call: ToolCall) -> str:
    """One call in the ``<tool_call>`` text format the grammar produces."""
    body = _dumps({"name": call.name, "arguments": call.arguments})
    return f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}"


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson escapes <, > and & for HTML; chat templates (written for
    # transformers) expect plain json.dumps, so calls re-render exactly as generated.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


class _GenerationTag(jinja2.ext.Extension):
    """Hugging Face's ``{% generation %}...{% endgeneration %}`` (it marks the assistant's
    tokens for training): rendered as its body, as transformers and llama-cpp-python do."""

    tags = {"generation"}  # noqa: RUF012 - the name jinja2's Extension API reads

    def parse(self, parser: Any) -> Any:
        next(parser.stream)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _environment() -> ImmutableSandboxedEnvironment:
    # The template comes from a downloaded file: the sandbox keeps it from reaching
    # Python internals. Settings follow transformers, which these templates target, and
    # accept exactly what llama-cpp-python accepts when it loads the file.
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.loopcontrols", _GenerationTag],
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env


def template_supports_tools(template: str | None) -> bool:
    """Whether a chat template renders the ``tools`` variable (so it knows tool calls)."""
    return bool(template) and re.search(r"\btools\b", template or "") is not None


def check_chat_templates(path: Path, metadata: Mapping[str, Any]) -> None:
    """Raise ModelFileError if a chat template in a GGUF's metadata is not valid Jinja.

    llama-cpp-python compiles every ``tokenizer.chat_template*`` value when it loads a
    file and lets jinja2's error escape, after the weights are in memory; this says the
    same thing first, as an agentkit error with what to do about it.
    """
    for key, value in metadata.items():
        if not (key.startswith("tokenizer.chat_template") and isinstance(value, str)):
            continue
        try:
            _environment().from_string(value)
        except jinja2.TemplateSyntaxError as exc:
            raise ModelFileError(
                f"{path}: its chat template ({key}) is not valid Jinja (line {exc.lineno}: "
                f"{exc.message}). llama-cpp-python compiles the templates of a file when it "
                "loads it, so this file cannot be loaded as it is. Replace the template, for "
                "example with the gguf package: `gguf-new-metadata --chat-template-file "
                f"fixed.jinja {path} fixed.gguf`, or drop it with `--remove-metadata {key}` "
                "(agentkit then writes prompts in ChatML)."
            ) from exc


class ChatRenderer:
    """Renders messages (and tools) into one prompt string for one model."""

    def __init__(self, template: str | None, *, bos_token: str = "", eos_token: str = "") -> None:
        self.bos_token = bos_token
        self.eos_token = eos_token
        self.supports_tools = template_supports_tools(template)
        self._template: jinja2.Template | None = None
        self.template_error: str | None = None
        if template:
            try:
                self._template = _environment().from_string(template)
            except jinja2.TemplateError as exc:
                # A template that does not compile is treated as missing (ChatML).
                self.template_error = str(exc)

    def mode(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> RenderMode:
        """Which rendering ``render`` would try first for this conversation."""
        if self._template is None:
            return "chatml"
        uses_tools = bool(tools) or any(m.tool_calls or m.role == "tool" for m in messages)
        if uses_tools and not self.supports_tools:
            return "text-tools"
        return "native"

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> str:
        """The prompt text, ending where the assistant's reply begins."""
        mode = self.mode(messages, tools)
        if mode == "native":
            native = self._jinja(
                [_native_message(m) for m in messages],
                [t.openai_format() for t in tools] or None,
            )
            if native is not None:
                # Qwen2.5's template shows the call format with doubled braces (a Jinja
                # escaping slip); the 1.5B model copies them and its calls are lost.
                return native.replace(_QWEN_DOUBLED_EXAMPLE, _QWEN_FIXED_EXAMPLE)
            mode = "text-tools"
        plain = _text_tool_messages(messages, tools)
        if mode == "text-tools":
            text = self._jinja(plain, None)
            if text is not None:
                return text
        return _chatml(plain)

    def _jinja(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None
    ) -> str | None:
        """The template's rendering, or None when there is none or it fails."""
        if self._template is None:
            return None
        try:
            return self._template.render(
                messages=messages,
                tools=tools,
                add_generation_prompt=True,
                bos_token=self.bos_token,
                eos_token=self.eos_token,
            )
        except Exception as exc:
            # The template comes with the model file; one that refuses a conversation
            # (raise_exception on a system turn) or breaks on it is a property of the
            # file, so render with the next fallback instead of failing the run.
            if self.template_error is None:
                self.template_error = f"{type(exc).__name__}: {exc}"
                _log.warning("chat template failed (%s); using a fallback", self.template_error)
            return None


def verbatim(message: Message) -> str | None:
    """An assistant turn's text as the model wrote it, if it still holds exactly its calls.

    Anything that changed the calls after generation (a repaired argument, a filter, calls
    read out of prose) makes the written text stale; the calls are then rendered by the
    template as usual.
    """
    if message.raw is None or not message.tool_calls:
        return None
    names = {c.name for c in message.tool_calls}
    rest, calls = parse_tool_calls(message.raw, names)
    wrote = [(c.name, c.arguments) for c in calls]
    if wrote != [(c.name, c.arguments) for c in message.tool_calls] or rest != message.content:
        return None
    return message.raw


def _native_message(message: Message) -> dict[str, Any]:
    """A message in the dict shape transformers-style templates read."""
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    written = verbatim(message)
    if written is not None:
        out["content"] = written  # the turn as generated: its KV cache is reused
    elif message.tool_calls:
        out["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        out["name"] = message.name
    return out


def _tools_block(tools: Sequence[ToolSpec]) -> str:
    lines = "\n".join(
        _dumps({"name": t.name, "description": t.description, "parameters": t.parameters})
        for t in tools
    )
    return _TOOL_PREAMBLE.format(tools=lines)


def _text_tool_messages(
    messages: Sequence[Message], tools: Sequence[ToolSpec]
) -> list[dict[str, Any]]:
    """Messages with tools, calls and results written as text, for templates without tools."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            block = f"<tool_response>\n{message.content}\n</tool_response>"
            if out and out[-1].get("_results"):
                # Consecutive results share one user turn, as Qwen's template does.
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_results": True})
        elif message.tool_calls:
            calls = "\n".join(render_call(c) for c in message.tool_calls)
            content = f"{message.content}\n{calls}" if message.content else calls
            out.append({"role": "assistant", "content": verbatim(message) or content})
        else:
            out.append({"role": message.role, "content": message.content})
    for item in out:
        item.pop("_results", None)
    if tools:
        block = _tools_block(tools)
        if out and out[0]["role"] == "system":
            out[0]["content"] = f"{out[0]['content']}\n\n{block}"
        else:
            out.insert(0, {"role": "system", "content": block})
    return out


def _chatml(messages: list[dict[str, Any]]) -> str:
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


# -- parsing the reply -----------------------------------------------------------------

_TAGGED = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*" + re.escape(CALL_CLOSE), re.DOTALL)
_FENCED = re.compile(r"```(?:json|JSON|tool_call)?\s*\n?(.*?)```", re.DOTALL)


def _as_calls(payload: Any, tool_names: Collection[str]) -> list[ToolCall] | None:
    """Calls in a decoded JSON payload, or None when it is not (only) known-tool calls."""
    items = payload if isinstance(payload, list) else [payload]
    calls = []
    for item in items:
        if not isinstance(item, dict):
            return None
        if isinstance(item.get("function"), dict):  # OpenAI shape
            item = item["function"]
        name = item.get("name")
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                return None
        if name not in tool_names or not isinstance(args, dict):
            return None
        calls.append(ToolCall(name=name, arguments=args))
    return calls or None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _json_sequence(text: str, *, cut_off: bool = False) -> list[Any] | None:
    """Consecutive JSON values separated only by whitespace (bare calls), else None.

    With ``cut_off`` (the reply hit the token limit) an incomplete last value is
    dropped instead of spoiling the complete ones before it.
    """
    decoder = json.JSONDecoder()
    values: list[Any] = []
    pos, text = 0, text.strip()
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError:
            if cut_off and values:
                break
            return None
        values.append(value)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return values or None


def parse_tool_calls(
    text: str, tool_names: Collection[str], *, cut_off: bool = False
) -> tuple[str, list[ToolCall]]:
    """Split a reply into (remaining text, calls of known tools).

    Reads the three call forms the grammar allows: ``<tool_call>`` blocks, fenced JSON
    blocks and bare JSON objects naming a known tool (the habits of small models, also
    read when they come unconstrained). A block that does not parse as a call of a
    known tool stays in the text, for the caller to see. With ``cut_off`` (the reply hit
    the token limit) the complete calls before an unfinished one are kept.
    """
    if not tool_names:
        return text.strip(), []
    calls: list[ToolCall] = []

    def take(match: re.Match[str]) -> str:
        found = _as_calls(_loads(match.group(1)), tool_names)
        if found is None:
            return match.group(0)
        calls.extend(found)
        return ""

    rest = _FENCED.sub(take, _TAGGED.sub(take, text)).strip()
    if cut_off and calls:
        # an unfinished block after complete ones is the part the token limit cut
        rest = re.sub(r"(<tool_call>|```)[^\n]*(\n[\s\S]*)?$", "", rest).strip()
    values = _json_sequence(rest, cut_off=cut_off) if rest.startswith(("{", "[")) else None
    if values is not None:
        found = [_as_calls(v, tool_names) for v in values]
        if all(f is not None for f in found):
            calls.extend(c for f in found if f for c in f)
            rest = ""
    return rest, calls


def schema_problems(calls: Sequence[ToolCall], tools: Sequence[ToolSpec]) -> list[str]:
    """Why calls break their tools' JSON schemas (empty when they all fit)."""
    import jsonschema  # on first use: only free-text calls need it

    specs = {t.name: t for t in tools}
    problems = []
    for call in calls:
        spec = specs.get(call.name)
        if spec is None:
            problems.append(f"{call.name}: no such tool")
            continue
        try:
            jsonschema.validate(call.arguments, spec.parameters)
        except jsonschema.ValidationError as exc:
            problems.append(f"{call.name}: {exc.message}")
        except jsonschema.SchemaError:
            continue  # a schema jsonschema cannot read: the tool's own validation decides
    return problems
