"""Chat rendering (native template, text-tools fallback, ChatML) and reply parsing."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest

from agentkit._errors import ModelFileError
from agentkit.models._messages import Message, ToolCall, ToolSpec
from agentkit.models._template import (
    ChatRenderer,
    check_chat_templates,
    parse_tool_calls,
    render_call,
    template_supports_tools,
)

# A small template in the style of Qwen2.5's: tools in the system turn, calls in
# <tool_call> tags read from {"type": "function", "function": {...}}, results as user turns.
TOOL_TEMPLATE = """\
{%- if tools %}<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}{% else %}Default.{% endif %}
<tools>
{% for tool in tools %}{{ tool | tojson }}
{% endfor %}</tools><|im_end|>
{% elif messages[0].role == 'system' %}<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif %}
{%- for message in messages %}
{%- if message.role == 'user' or (message.role == 'assistant' and not message.tool_calls) %}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% elif message.role == 'assistant' %}{{ '<|im_start|>assistant' }}
{%- if message.content %}{{ '\\n' + message.content }}{% endif %}
{%- for call in message.tool_calls %}{{ '\\n<tool_call>\\n{"name": "' + call.function.name
 + '", "arguments": ' + (call.function.arguments | tojson) + '}\\n</tool_call>' }}
{%- endfor %}{{ '<|im_end|>\\n' }}
{% elif message.role == 'tool' %}<|im_start|>user
<tool_response>
{{ message.content }}
</tool_response><|im_end|>
{% endif %}
{%- endfor %}
{%- if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""

# SmolLM2's template: ChatML that knows nothing of tools.
PLAIN_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# Refuses system messages, as some real templates do.
STRICT_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "[{{ m.role }}]{{ m.content }}{% endfor %}[assistant]"
)

ADD = ToolSpec(
    name="add",
    description="Add <two> integers & more.",
    parameters={"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
)
CALL = ToolCall(name="add", arguments={"a": 1, "note": "x<y"}, id="call_1")


def _conversation() -> list[Message]:
    return [
        Message.system("Be brief."),
        Message.user("What is 1 + 2?"),
        Message.assistant("", (CALL,)),
        Message.tool(CALL, "3"),
    ]


def test_detects_tool_support() -> None:
    assert template_supports_tools(TOOL_TEMPLATE)
    assert not template_supports_tools(PLAIN_TEMPLATE)
    assert not template_supports_tools(None)


def test_native_rendering_of_tools_calls_and_results() -> None:
    renderer = ChatRenderer(TOOL_TEMPLATE)
    prompt = renderer.render(_conversation(), [ADD])
    assert renderer.mode(_conversation(), [ADD]) == "native"
    # tojson is json.dumps: no HTML escaping of <, > and &.
    assert json.dumps(ADD.openai_format()) in prompt
    assert (
        '<tool_call>\n{"name": "add", "arguments": {"a": 1, "note": "x<y"}}\n</tool_call>' in prompt
    )
    assert "<tool_response>\n3\n</tool_response>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_native_prompt_is_a_prefix_of_the_next_step() -> None:
    """The KV cache can be reused only if step n's prompt starts step n+1's."""
    renderer = ChatRenderer(TOOL_TEMPLATE)
    first = _conversation()[:2]
    step1 = renderer.render(first, [ADD])
    step2 = renderer.render(_conversation(), [ADD])
    assert step2.startswith(step1)
    # The call as generated under the grammar is exactly what the template re-renders.
    assert step2[len(step1) :].startswith(render_call(CALL))
    assert renderer.render(first, [ADD]) == step1  # deterministic


def test_text_tools_fallback_for_templates_without_tools() -> None:
    renderer = ChatRenderer(PLAIN_TEMPLATE)
    assert renderer.mode(_conversation(), [ADD]) == "text-tools"
    prompt = renderer.render(_conversation(), [ADD])
    # The tools are described in the (existing) system message, with the call format.
    assert prompt.startswith("<|im_start|>system\nBe brief.\n\n# Tools")
    assert (
        json.dumps({"name": "add", "description": ADD.description, "parameters": ADD.parameters})
        in prompt
    )
    assert '{"name": <function-name>, "arguments": <args-json-object>}' in prompt
    # Calls become assistant text, results a user turn.
    assert f"<|im_start|>assistant\n{render_call(CALL)}<|im_end|>" in prompt
    assert "<|im_start|>user\n<tool_response>\n3\n</tool_response><|im_end|>" in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    step1 = renderer.render(_conversation()[:2], [ADD])
    assert prompt.startswith(step1)


def test_text_tools_adds_a_system_turn_and_merges_results() -> None:
    renderer = ChatRenderer(PLAIN_TEMPLATE)
    second = ToolCall(name="add", arguments={"a": 2}, id="call_2")
    messages = [
        Message.user("hi"),
        Message.assistant("Let me add.", (CALL, second)),
        Message.tool(CALL, "3"),
        Message.tool(second, "4"),
    ]
    prompt = renderer.render(messages, [ADD])
    assert prompt.startswith("<|im_start|>system\n# Tools")
    assert f"Let me add.\n{render_call(CALL)}\n{render_call(second)}" in prompt
    assert "<tool_response>\n3\n</tool_response>\n<tool_response>\n4\n</tool_response>" in prompt


def test_plain_conversation_uses_the_template_as_is() -> None:
    renderer = ChatRenderer(PLAIN_TEMPLATE)
    prompt = renderer.render([Message.user("hi")])
    assert prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant.<|im_end|>\n"
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("template", [None, "", "{% if %}broken"])
def test_chatml_without_a_usable_template(template: str | None) -> None:
    renderer = ChatRenderer(template)
    assert renderer.mode([Message.user("hi")], []) == "chatml"
    prompt = renderer.render(_conversation(), [ADD])
    assert prompt.startswith("<|im_start|>system\nBe brief.\n\n# Tools")
    assert prompt.endswith("<|im_start|>assistant\n")


def test_chatml_when_the_template_raises() -> None:
    renderer = ChatRenderer(STRICT_TEMPLATE)
    prompt = renderer.render([Message.system("s"), Message.user("hi")])
    assert prompt == (
        "<|im_start|>system\ns<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    )
    assert renderer.render([Message.user("hi")]) == "[user]hi[assistant]"


def test_bos_and_eos_are_available_to_templates() -> None:
    renderer = ChatRenderer(
        "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}", bos_token="<s>", eos_token="</s>"
    )
    assert renderer.render([Message.user("x")]) == "<s>x</s>"


# -- parsing ---------------------------------------------------------------------------

NAMES = {"add", "ship"}


@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (
            '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>',
            "",
            [("add", {"a": 1})],
        ),
        (
            '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>\n'
            '<tool_call>\n{"name": "ship", "arguments": {}}\n</tool_call>',
            "",
            [("add", {"a": 1}), ("ship", {})],
        ),
        (
            'Sure.\n<tool_call>{"name": "add", "arguments": "{\\"a\\": 2}"}</tool_call>',
            "Sure.",
            [("add", {"a": 2})],
        ),
        ('```json\n{\n  "name": "add",\n  "arguments": {"a": 3}\n}\n```', "", [("add", {"a": 3})]),
        (
            '{"name": "add", "arguments": {"a": 4}}\n{"name": "ship", "parameters": {"x": 1}}',
            "",
            [("add", {"a": 4}), ("ship", {"x": 1})],
        ),
        (
            '[{"type": "function", "function": {"name": "add", "arguments": {"a": 5}}}]',
            "",
            [("add", {"a": 5})],
        ),
        ('{"name": "joke", "arguments": {}}', '{"name": "joke", "arguments": {}}', []),
        (
            '<tool_call>\n{"name": "add", "arguments": {"a": \n</tool_call>',
            '<tool_call>\n{"name": "add", "arguments": {"a": \n</tool_call>',
            [],
        ),
        ('{"result": 5}', '{"result": 5}', []),
        ("  The answer is 3.  ", "The answer is 3.", []),
    ],
)
def test_parse_tool_calls(text: str, content: str, calls: list[tuple[str, dict[str, int]]]) -> None:
    rest, found = parse_tool_calls(text, NAMES)
    assert rest == content
    assert [(c.name, c.arguments) for c in found] == calls
    assert len({c.id for c in found}) == len(found)


def test_parse_without_tools_keeps_text() -> None:
    text = '{"name": "add", "arguments": {}}'
    assert parse_tool_calls(text, ()) == (text, [])


def test_truncated_call_stays_text() -> None:
    text = '<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call>\n<tool_call>\n{"na'
    rest, found = parse_tool_calls(text, NAMES)
    assert [c.name for c in found] == ["add"]
    assert rest == '<tool_call>\n{"na'


def test_doubled_braces_in_a_native_template_example_are_fixed() -> None:
    from agentkit.models._messages import ToolSpec
    from agentkit.models._template import ChatRenderer

    template = (
        "{% if tools %}Call tools like <tool_call>\n"
        '{{"name": <function-name>, "arguments": <args-json-object>}}\n'
        "</tool_call>{% endif %}"
        "{% for m in messages %}{{ m.content }}{% endfor %}"
    )
    # the Jinja literal above is what Qwen2.5's GGUF ships: `{{"name"...}}` inside a
    # string block renders as the doubled form, which models then imitate
    raw = '{% raw %}{{"name": <function-name>, "arguments": <args-json-object>}}{% endraw %}'
    renderer = ChatRenderer(
        template.replace('{{"name": <function-name>, "arguments": <args-json-object>}}', raw)
    )
    text = renderer.render([], [ToolSpec(name="t", description="d")])
    assert '{"name": <function-name>, "arguments": <args-json-object>}' in text
    assert "{{" not in text


def test_calls_before_a_cut_off_one_are_kept() -> None:
    from agentkit.models._template import parse_tool_calls

    text = (
        '{"name": "multiply", "arguments": {"a": 12, "b": 7}}\n'
        '{"name": "price_of", "arguments": {"item": "pen"}}\n{"name": "mul'
    )
    rest, calls = parse_tool_calls(text, ["multiply", "price_of"], cut_off=True)
    assert [c.name for c in calls] == ["multiply", "price_of"] and rest == ""
    rest, calls = parse_tool_calls(text, ["multiply", "price_of"])
    assert calls == []  # not cut off: an unparsable tail keeps the whole reply as text
    tagged = (
        '<tool_call>\n{"name": "price_of", "arguments": {"item": "pen"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "price_'
    )
    rest, calls = parse_tool_calls(tagged, ["price_of"], cut_off=True)
    assert [c.name for c in calls] == ["price_of"] and rest == ""


# -- templates that do not compile -------------------------------------------------------

BROKEN_TEMPLATES = [
    "{% if %}broken",
    "{% for m in messages %}{{ m.content }}",  # no endfor
    "{{ messages | no_such_filter }}",  # unknown filters fail when the template compiles
    "{% generation %}{{ x }}",  # no endgeneration
    "{{ 'unclosed }}",
]
GOOD_TEMPLATES = [
    PLAIN_TEMPLATE,
    TOOL_TEMPLATE,
    "{% for m in messages %}{% if loop.index > 3 %}{% break %}{% endif %}{{ m.content }}"
    "{% endfor %}",
    # Hugging Face's training marker, which llama-cpp-python accepts too.
    "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}"
    "{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}",
]


@pytest.mark.parametrize("template", BROKEN_TEMPLATES)
def test_a_template_that_does_not_compile_is_a_model_file_error(template: str) -> None:
    path = Path("/models/mine.gguf")
    with pytest.raises(ModelFileError) as info:
        check_chat_templates(path, {"general.name": "mine", "tokenizer.chat_template": template})
    message = str(info.value)
    assert message.startswith(f"{path}: its chat template (tokenizer.chat_template) is not valid")
    assert "(line 1: " in message and "gguf-new-metadata" in message
    assert isinstance(info.value.__cause__, jinja2.TemplateSyntaxError)


def test_a_broken_named_template_is_named() -> None:
    metadata = {"tokenizer.chat_template": PLAIN_TEMPLATE, "tokenizer.chat_template.tool_use": "{%"}
    with pytest.raises(ModelFileError, match=r"\(tokenizer\.chat_template\.tool_use\)"):
        check_chat_templates(Path("m.gguf"), metadata)


@pytest.mark.parametrize("template", GOOD_TEMPLATES)
def test_templates_that_compile_pass_and_render(template: str) -> None:
    check_chat_templates(Path("m.gguf"), {"tokenizer.chat_template": template, "x": 1})
    assert ChatRenderer(template).template_error is None


@pytest.mark.parametrize("template", BROKEN_TEMPLATES + GOOD_TEMPLATES)
def test_the_check_agrees_with_llama_cpp_python(template: str) -> None:
    # The check exists because llama-cpp-python compiles templates on load; it must refuse
    # exactly what that compilation refuses, no more and no less.
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    try:
        Jinja2ChatFormatter(template=template, eos_token="</s>", bos_token="<s>")
        llama_refuses = False
    except jinja2.TemplateError:
        llama_refuses = True
    try:
        check_chat_templates(Path("m.gguf"), {"tokenizer.chat_template": template})
        we_refuse = False
    except ModelFileError:
        we_refuse = True
    assert we_refuse == llama_refuses
