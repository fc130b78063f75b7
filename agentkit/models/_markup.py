"""Tool-call markup in text that was meant to be an answer.

Small models sometimes write a call where an answer belongs: the raw JSON of a call, the
``<tool_call>`` tags of their template, a fenced JSON block, or any of these behind stray
characters (``> {"name": ...``). Such text is never a final answer: it is either read as
the call it is, or the model is asked again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection

from ._messages import ToolCall

__all__ = ["embedded_calls", "looks_like_markup"]

_MARKUP = re.compile(
    r"</?tool_(?:call|response)>"  # the tags of Qwen-style templates
    # a call object, bare or fenced (other JSON, such as an answer asked for as JSON, is not)
    r"|\{\s*\"name\"\s*:\s*\"[^\"]+\"\s*,\s*\"(?:arguments|parameters)\"\s*:"
    # a near miss: where a grammar kept the text from opening with '{"name"', a small
    # model writes '{"name}: tool", "arguments": ...' instead; it is still a call, not prose
    r"|\{\s*\"?name\W{0,4}\s*[\w.\-]+\W{0,3},\s*\"(?:arguments|parameters)\"\s*:"
)


def looks_like_markup(text: str) -> bool:
    """Whether ``text`` holds tool-call or tool-result markup anywhere."""
    return _MARKUP.search(text) is not None


def embedded_calls(text: str, tool_names: Collection[str]) -> tuple[str, list[ToolCall]]:
    """Calls of known tools written anywhere in ``text``, and the text without them.

    Every ``{`` that starts a JSON object naming a known tool (``name`` plus ``arguments``
    or ``parameters``) is read as a call, whatever surrounds it; tags and fences around it
    are dropped with it.
    """
    decoder = json.JSONDecoder()
    calls: list[ToolCall] = []
    kept: list[str] = []
    pos = 0
    for match in re.finditer(r"\{", text):
        start = match.start()
        if start < pos:
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        call = _as_call(value, tool_names)
        if call is None:
            continue
        calls.append(call)
        kept.append(text[pos:start])
        pos = end
    kept.append(text[pos:])
    rest = "".join(kept)
    rest = re.sub(r"</?tool_call>|```(?:json|tool_call)?", "", rest) if calls else rest
    return rest.strip(), calls


def _as_call(value: object, tool_names: Collection[str]) -> ToolCall | None:
    if not isinstance(value, dict):
        return None
    name = value.get("name")
    args = value.get("arguments", value.get("parameters"))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except ValueError:
            return None
    if not isinstance(name, str) or name not in tool_names or not isinstance(args, dict):
        return None
    return ToolCall(name=name, arguments=args)
