"""RemoteModel's request and response mapping, over httpx.MockTransport (no network).

The fake servers below answer the way llama-server, vLLM and a plain OpenAI-style server
do (shapes taken from llama.cpp's tools/server and the vLLM docs); the real llama-server
is exercised in tests/integration/test_remote.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from agentkit import (
    ConfigError,
    ContextOverflowError,
    MalformedResponseError,
    Message,
    ModelLadder,
    ModelNotFoundError,
    RemoteConfig,
    RemoteModel,
    RemoteModelError,
    ServerUnreachableError,
    StreamCutError,
    ToolCall,
    ToolSpec,
    Usage,
    load_tier,
)
from agentkit.models._grammar import text_grammar, tool_call_grammar
from agentkit.models._template import ChatRenderer

TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
ADD = ToolSpec(
    name="add",
    description="Add two integers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
MESSAGES = [Message.system("Use the tools."), Message.user("What is 2 + 3?")]
FAST = RemoteConfig(backoff=0.0)

Handler = Callable[[httpx.Request], httpx.Response]


def sse(*events: dict[str, Any] | str, done: bool = False) -> bytes:
    lines = [e if isinstance(e, str) else f"data: {json.dumps(e)}\n\n" for e in events]
    return ("".join(lines) + ("data: [DONE]\n\n" if done else "")).encode()


@dataclass
class FakeServer:
    """Routes by path; records every request; extra routes override the defaults."""

    kind: str = "llama-server"
    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get(request.url.path) or self.default(request.url.path)
        if handler is None:
            return httpx.Response(404, json={"error": {"code": 404, "message": "File Not Found"}})
        return handler(request)

    def default(self, path: str) -> Handler | None:
        models = {
            "llama-server": [
                {
                    "id": "qwen-tiny",
                    "owned_by": "llamacpp",
                    "meta": {"n_params": 630_000_000, "n_ctx_train": 32768},
                }
            ],
            "vllm": [{"id": "Qwen/Qwen2.5-7B-Instruct", "owned_by": "vllm", "max_model_len": 8192}],
            "openai": [{"id": "gpt-mini", "owned_by": "someone"}],
        }[self.kind]
        table: dict[str, Handler] = {
            "/v1/models": lambda r: httpx.Response(200, json={"data": models})
        }
        if self.kind == "llama-server":
            table["/props"] = lambda r: httpx.Response(200, json=PROPS)
            table["/tokenize"] = _tokenize
        if self.kind == "vllm":
            table["/version"] = lambda r: httpx.Response(200, json={"version": "0.12.0"})
        return table.get(path)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.url.path == path]

    def model(self, **kwargs: Any) -> RemoteModel:
        kwargs.setdefault("config", FAST)
        return RemoteModel(
            "http://fake:8080/v1",
            kwargs.pop("model", None),
            transport=httpx.MockTransport(self),
            **kwargs,
        )


PROPS = {
    "default_generation_settings": {"n_ctx": 2048},
    "total_slots": 2,
    "chat_template": TEMPLATE,
    "bos_token": "<|endoftext|>",
    "eos_token": "<|im_end|>",
    "build_info": "b0-test",
}
SPECIAL = {"<|im_start|>": 151644, "<|im_end|>": 151645}


def _tokenize(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    text = body["content"]
    if text in SPECIAL and body.get("parse_special"):
        return httpx.Response(200, json={"tokens": [SPECIAL[text]]})
    return httpx.Response(200, json={"tokens": list(range(len(text.split())))})


def completion_events(
    pieces: list[str], *, cached: int = 10, prompt: int = 30
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for i, piece in enumerate(pieces, 1):
        events.append(
            {
                "content": piece,
                "stop": False,
                "tokens_predicted": i,
                "tokens_evaluated": prompt,
                "timings": {"cache_n": cached, "prompt_n": prompt - cached},
                "completion_probabilities": [{"id": i, "token": piece, "logprob": -0.25}],
            }
        )
    events.append(
        {
            "content": "",
            "stop": True,
            "stop_type": "eos",
            "tokens_predicted": len(pieces),
            "tokens_evaluated": prompt,
            "timings": {"cache_n": cached, "prompt_n": prompt - cached, "predicted_n": len(pieces)},
        }
    )
    return events


def streaming(events: list[dict[str, Any]], sent: list[int] | None = None) -> Handler:
    """A /completion handler that streams ``events``, counting what it got to send."""

    def chunks() -> Iterator[bytes]:
        for event in events:
            if sent is not None:
                sent.append(1)
            yield sse(event)

    return lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=chunks()
    )


CALL_PIECES = [
    "<tool_call>",
    '\n{"name": "add", ',
    '"arguments": {"a": 2, "b": 3}}',
    "\n</tool_call>",
]


# -- llama-server ------------------------------------------------------------------------


def test_llama_server_request_is_the_in_process_prompt_and_grammar() -> None:
    server = FakeServer()
    server.routes["/completion"] = streaming(completion_events(CALL_PIECES))
    model = server.model(model="qwen-tiny")
    response = model.complete(MESSAGES, tools=[ADD])

    (body,) = server.bodies("/completion")
    assert body["prompt"] == ChatRenderer(TEMPLATE, bos_token="<|endoftext|>").render(
        MESSAGES, [ADD]
    )
    assert body["grammar"] == tool_call_grammar([ADD], allow_text=True)
    assert body["preserved_tokens"] == ["<tool_call>", "</tool_call>"]
    assert body["logit_bias"] == [[SPECIAL["<|im_start|>"], False]]  # opens a turn: banned
    assert body["stream"] is True and body["cache_prompt"] is True and body["n_probs"] == 1
    assert body["samplers"] == ["penalties", "top_k", "top_p", "min_p", "temperature"]

    assert [(c.name, c.arguments) for c in response.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert response.finish_reason == "tool_calls"
    assert response.usage.model_copy(update={"seconds": 0.0}) == Usage(
        prompt_tokens=30, cached_tokens=10, evaluated_tokens=20, completion_tokens=4
    )
    assert [lp.logprob for lp in response.logprobs] == [-0.25] * 4
    assert response.model == "qwen-tiny@fake:8080"
    assert model.context_size == 2048 and model.parameters == 630_000_000


def test_required_and_none_tool_choice_change_the_grammar() -> None:
    server = FakeServer()
    server.routes["/completion"] = streaming(completion_events(["Five."]))
    model = server.model()
    model.complete(MESSAGES, tools=[ADD], tool_choice="required")
    model.complete(MESSAGES, tools=[ADD], tool_choice="none")
    required, none = server.bodies("/completion")
    assert required["grammar"] == tool_call_grammar([ADD], allow_text=False)
    assert none["grammar"] == text_grammar()


def test_plain_reply_without_tools_sends_no_grammar() -> None:
    server = FakeServer()
    server.routes["/completion"] = streaming(completion_events(["The ", "answer ", "is 5."]))
    response = server.model().complete([Message.user("2+3?")])
    (body,) = server.bodies("/completion")
    assert "grammar" not in body
    assert response.content == "The answer is 5." and response.finish_reason == "stop"


def test_on_token_true_stops_the_stream_and_keeps_complete_calls() -> None:
    sent: list[int] = []
    pieces = [*CALL_PIECES, "\n<tool_call>"] + ['\n{"name": "add"'] * 50
    server = FakeServer()
    server.routes["/completion"] = streaming(completion_events(pieces), sent)
    seen: list[str] = []

    def on_token(piece: str) -> bool:
        seen.append(piece)
        return len(seen) == 6  # the detector trips on the sixth piece

    response = server.model().complete(MESSAGES, tools=[ADD], on_token=on_token)
    assert response.finish_reason == "stopped"
    assert len(seen) == 6 and len(sent) < len(pieces)  # the rest was never read
    assert [c.arguments for c in response.tool_calls] == [{"a": 2, "b": 3}]
    assert response.usage.prompt_tokens == 30 and response.usage.cached_tokens == 10


def test_cancel_stops_between_events_and_drops_calls() -> None:
    cancel = threading.Event()
    server = FakeServer()
    server.routes["/completion"] = streaming(completion_events(CALL_PIECES))
    response = server.model().complete(
        MESSAGES, tools=[ADD], on_token=lambda piece: cancel.set(), cancel=cancel
    )
    assert response.finish_reason == "cancelled" and response.tool_calls == ()
    cancel.set()
    assert server.model().complete(MESSAGES, cancel=cancel).finish_reason == "cancelled"


def test_count_tokens_asks_the_servers_tokenizer() -> None:
    server = FakeServer()
    model = server.model()
    prompt = ChatRenderer(TEMPLATE).render(MESSAGES)
    assert model.count_tokens(MESSAGES) == len(prompt.split())
    model.count_tokens(MESSAGES)  # the same prompt again: answered from memory
    assert sum(1 for b in server.bodies("/tokenize") if b["content"] == prompt) == 1


# -- vLLM and plain OpenAI servers -------------------------------------------------------


def chat_chunks(
    *deltas: dict[str, Any], finish: str = "stop", usage: dict[str, Any] | None = None
) -> bytes:
    events: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    events.append({"choices": [], "usage": usage or {"prompt_tokens": 40, "completion_tokens": 9}})
    return sse(*events, done=True)


def test_vllm_gets_a_structured_outputs_grammar_and_tool_choice_none() -> None:
    server = FakeServer(kind="vllm")
    text = '<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
    usage = {
        "prompt_tokens": 40,
        "completion_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 32},
    }
    server.routes["/v1/chat/completions"] = lambda r: httpx.Response(
        200, content=chat_chunks({"content": text[:20]}, {"content": text[20:]}, usage=usage)
    )
    model = server.model(model="Qwen/Qwen2.5-7B-Instruct")
    response = model.complete(MESSAGES, tools=[ADD])
    (body,) = server.bodies("/v1/chat/completions")
    assert body["model"] == "Qwen/Qwen2.5-7B-Instruct"
    assert body["structured_outputs"] == {"grammar": tool_call_grammar([ADD], allow_text=True)}
    assert body["tool_choice"] == "none" and body["tools"] == [ADD.openai_format()]
    assert body["stream_options"] == {"include_usage": True}
    assert [(c.name, c.arguments) for c in response.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert (response.usage.prompt_tokens, response.usage.cached_tokens) == (40, 32)
    assert response.usage.evaluated_tokens == 8
    assert model.parameters == 7_000_000_000  # from the size in the name
    assert model.context_size == 8192


def test_plain_server_gets_tools_and_its_call_deltas_are_assembled() -> None:
    server = FakeServer(kind="openai")
    deltas = [
        {
            "tool_calls": [
                {"index": 0, "id": "call_1", "function": {"name": "add", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 2, '}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"b": 3}'}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "call_2", "function": {"name": "add", "arguments": "{oops"}}
            ]
        },
    ]
    server.routes["/v1/chat/completions"] = lambda r: httpx.Response(
        200, content=chat_chunks(*deltas, finish="tool_calls")
    )
    model = server.model(model="gpt-mini", parameters=8_000_000_000)
    pieces: list[str] = []
    response = model.complete(MESSAGES, tools=[ADD], on_token=lambda p: pieces.append(p) and None)
    (body,) = server.bodies("/v1/chat/completions")
    assert body["tool_choice"] == "auto" and "structured_outputs" not in body
    assert "top_k" not in body  # not an OpenAI field: a strict server would refuse it
    assert [(c.id, c.arguments) for c in response.tool_calls] == [("call_1", {"a": 2, "b": 3})]
    assert "{oops" in response.content  # broken arguments stay visible, never silently dropped
    assert "".join(pieces) == '{"a": 2, "b": 3}{oops'
    assert model.parameters == 8_000_000_000


def test_a_server_that_refuses_logprobs_is_asked_again_without() -> None:
    server = FakeServer(kind="openai")

    def chat(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("logprobs"):
            message = "logprobs is not supported with tools + stream"
            return httpx.Response(400, json={"error": {"code": 400, "message": message}})
        return httpx.Response(200, content=chat_chunks({"content": "5"}))

    server.routes["/v1/chat/completions"] = chat
    model = server.model(model="gpt-mini", parameters=1)
    assert model.complete(MESSAGES, tools=[ADD]).content == "5"
    assert model.complete(MESSAGES, tools=[ADD]).content == "5"
    asked = [b.get("logprobs", False) for b in server.bodies("/v1/chat/completions")]
    assert asked == [True, False, False]  # refused once, then never asked for again


def test_follow_up_messages_never_carry_null_content() -> None:
    server = FakeServer(kind="openai")
    server.routes["/v1/chat/completions"] = lambda r: httpx.Response(
        200, content=chat_chunks({"content": "5"})
    )
    call = ToolCall(name="add", arguments={"a": 2, "b": 3}, id="call_9")
    history = [*MESSAGES, Message.assistant("", (call,)), Message.tool(call, "5")]
    response = server.model(model="gpt-mini", parameters=1).complete(history, tools=[ADD])
    assert response.content == "5" and response.finish_reason == "stop"
    (body,) = server.bodies("/v1/chat/completions")
    assistant, result = body["messages"][2:]
    assert assistant["content"] == "" and assistant["tool_calls"] == [
        {
            "id": "call_9",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
        }
    ]
    assert result == {"role": "tool", "content": "5", "tool_call_id": "call_9"}


# -- errors ------------------------------------------------------------------------------


def test_connection_refused_is_retried_then_reported() -> None:
    attempts: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    model = RemoteModel("http://fake:9/v1", "m", config=FAST, transport=httpx.MockTransport(refuse))
    with pytest.raises(ServerUnreachableError, match="could not connect to fake:9"):
        model.complete(MESSAGES)
    assert len(attempts) == FAST.retries + 1


def test_503_while_loading_is_retried() -> None:
    server = FakeServer()
    loading = [True]

    def props(request: httpx.Request) -> httpx.Response:
        if loading.pop() if loading else False:
            return httpx.Response(503, json={"error": {"code": 503, "message": "Loading model"}})
        return httpx.Response(200, json=PROPS)

    server.routes["/props"] = props
    assert server.model().server().kind == "llama-server"


def test_wrong_model_name_lists_what_is_served() -> None:
    with pytest.raises(
        ModelNotFoundError, match=r"does not serve a model named 'qwen-huge'.*'qwen-tiny'"
    ):
        FakeServer().model(model="qwen-huge").complete(MESSAGES)


def test_http_error_carries_the_servers_message() -> None:
    server = FakeServer()
    server.routes["/completion"] = lambda r: httpx.Response(
        500,
        json={"error": {"code": 500, "message": "failed to parse grammar", "type": "server_error"}},
    )
    with pytest.raises(RemoteModelError, match=r"HTTP 500.*failed to parse grammar") as info:
        server.model().complete(MESSAGES, tools=[ADD])
    assert info.value.status == 500 and info.value.server_message == "failed to parse grammar"
    assert len(server.bodies("/completion")) == 1  # a 500 is an answer: not retried


def test_context_overflow_from_the_server() -> None:
    server = FakeServer()
    server.routes["/completion"] = lambda r: httpx.Response(
        400,
        json={
            "error": {
                "code": 400,
                "message": "the request exceeds the available context size",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 5000,
                "n_ctx": 2048,
            }
        },
    )
    with pytest.raises(ContextOverflowError) as info:
        server.model().complete(MESSAGES)
    assert (info.value.prompt_tokens, info.value.context_size) == (5000, 2048)


def test_malformed_json_in_the_stream() -> None:
    server = FakeServer()
    server.routes["/completion"] = lambda r: httpx.Response(
        200, content=b'data: {"content": "Fi\n\n'
    )
    with pytest.raises(MalformedResponseError, match="not JSON"):
        server.model().complete(MESSAGES)


def test_malformed_json_from_a_plain_endpoint() -> None:
    server = FakeServer()
    server.routes["/v1/models"] = lambda r: httpx.Response(200, content=b"<html>proxy</html>")
    with pytest.raises(MalformedResponseError, match="is not JSON"):
        server.model().complete(MESSAGES)


def test_stream_cut_mid_way_is_reported_with_the_partial_text_and_not_repeated() -> None:
    def cut() -> Iterator[bytes]:
        yield sse(*completion_events(["The answer", " is"])[:2])
        raise httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body"
        )

    server = FakeServer()
    server.routes["/completion"] = lambda r: httpx.Response(200, content=cut())
    with pytest.raises(StreamCutError, match="cut mid-reply") as info:
        server.model().complete(MESSAGES)
    assert info.value.partial_text == "The answer is"
    assert len(server.bodies("/completion")) == 1


def test_stream_ending_without_its_final_event_is_cut() -> None:
    server = FakeServer()
    server.routes["/completion"] = lambda r: httpx.Response(
        200, content=sse(*completion_events(["Fi", "ve"])[:2])
    )
    with pytest.raises(StreamCutError, match="ended before the reply was complete"):
        server.model().complete(MESSAGES)


def test_mid_stream_error_event() -> None:
    server = FakeServer()
    server.routes["/completion"] = lambda r: httpx.Response(
        200,
        content=sse(
            {"content": "Fi", "stop": False}, {"error": {"code": 500, "message": "slot died"}}
        ),
    )
    with pytest.raises(RemoteModelError, match="slot died"):
        server.model().complete(MESSAGES)


# -- keys, specs, ladders ----------------------------------------------------------------


def test_api_key_comes_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_REMOTE_KEY", "sk-secret-123")
    server = FakeServer()
    server.routes["/completion"] = lambda r: httpx.Response(
        401, json={"error": {"message": "Invalid API Key"}}
    )
    model = server.model(config=RemoteConfig(api_key_env="TEST_REMOTE_KEY", backoff=0))
    with pytest.raises(RemoteModelError) as info:
        model.complete(MESSAGES)
    assert all(r.headers["authorization"] == "Bearer sk-secret-123" for r in server.requests)
    assert "sk-secret" not in str(info.value) and "sk-secret" not in repr(model)
    assert "$TEST_REMOTE_KEY" in str(info.value)
    monkeypatch.delenv("TEST_REMOTE_KEY")
    with pytest.raises(ConfigError, match=r"\$TEST_REMOTE_KEY, which is not set"):
        server.model(config=RemoteConfig(api_key_env="TEST_REMOTE_KEY"))


def test_bad_urls_and_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="not a server URL"):
        RemoteModel("localhost:8080")
    with pytest.raises(ConfigError, match="positive"):
        RemoteModel("http://h:1/v1", parameters=0)
    with pytest.raises(ValueError, match="extra"):
        RemoteConfig(api_key="sk-in-code")  # type: ignore[call-arg]


def test_unknown_parameter_count_is_an_error() -> None:
    model = FakeServer(kind="openai").model(model="gpt-mini")
    with pytest.raises(ConfigError, match="parameters=N"):
        _ = model.parameters


def test_load_tier_reads_the_url_form_and_shares_one_model() -> None:
    tier = load_tier("http://127.0.0.1:8080/v1#qwen2.5-coder-1.5b-instruct")
    assert isinstance(tier, RemoteModel)
    assert tier is load_tier("http://127.0.0.1:8080/v1#qwen2.5-coder-1.5b-instruct")
    assert tier.base_url == "http://127.0.0.1:8080/v1"
    assert tier.name == "qwen2.5-coder-1.5b-instruct@127.0.0.1:8080"
    assert load_tier("http://h:1#m").base_url == "http://h:1/v1"  # type: ignore[attr-defined]


def test_a_ladder_sizes_an_unloaded_remote_tier_without_a_request() -> None:
    ladder = ModelLadder(
        ["smollm2-135m-instruct", "http://127.0.0.1:1/v1#qwen2.5-coder-1.5b-instruct"]
    )
    assert ladder.tier_parameters(1) == 1_543_714_304  # the catalog's count, no network
    assert ladder._size(1) == 0  # remote weights take no local memory
    cost = ladder.cost(0, Usage(evaluated_tokens=100, completion_tokens=10))
    assert cost.top_tier_compute == pytest.approx(110 * 1_543_714_304 / 1e9)


def test_an_agent_runs_on_a_remote_tier() -> None:
    from agentkit import Agent, tool

    @tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    turns = iter([CALL_PIECES, ["2 + 3 = 5."]])
    server = FakeServer()
    server.routes["/completion"] = lambda r: streaming(completion_events(next(turns)))(r)
    result = Agent(server.model(model="qwen-tiny"), tools=[add], max_steps=4).run("2 + 3?")
    assert result.status == "succeeded" and result.answer == "2 + 3 = 5."
    first, second = server.bodies("/completion")
    assert second["prompt"].startswith(first["prompt"])  # appended: the server's cache holds
    assert "<tool_response>\n5\n</tool_response>" in second["prompt"]
    assert result.compute == pytest.approx((20 + 4 + 20 + 1) * 630_000_000 / 1e9)


def test_turn_openers_keep_the_end_of_turn_marker() -> None:
    from agentkit.models._server import turn_openers

    chatml = ChatRenderer(TEMPLATE)
    assert turn_openers(lambda text: chatml.render([Message.user(text)])) == ["<|im_start|>"]
    llama3 = ChatRenderer(
        "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n"
        "{{ m.content }}<|eot_id|>{% endfor %}<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    openers = turn_openers(lambda text: llama3.render([Message.user(text)]))
    assert openers == ["<|start_header_id|>", "<|end_header_id|>"]
