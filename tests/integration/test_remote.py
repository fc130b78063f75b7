"""Remote tiers against a real llama-server (built by `make llama-tools`) on 127.0.0.1.

Each failure a remote tier must report is caused for real: a port nothing listens on, a
model name the server does not serve, a key the server refuses, a prompt over the slot's
context, a web server that is not an OpenAI one, and a server killed mid-reply.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from agentkit import (
    Agent,
    ContextOverflowError,
    DefaultPolicy,
    DetectorConfig,
    MalformedResponseError,
    Message,
    ModelLadder,
    ModelNotFoundError,
    RemoteConfig,
    RemoteModel,
    RemoteModelError,
    RunStore,
    Sampling,
    ServerUnreachableError,
    StreamCutError,
    get_model,
    tool,
)
from agentkit.detection._stream import StreamDetector

if TYPE_CHECKING:
    from conftest import LlamaServers  # tests/integration/conftest.py

SMOL = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"
QWEN_15 = "qwen2.5-coder-1.5b-instruct"
GREEDY = Sampling(temperature=0.0, seed=0, max_tokens=96)
NO_WAIT = RemoteConfig(backoff=0.0, retries=1)
PRICES = {"pen": 3.0, "notebook": 4.5, "stapler": 12.0}


@tool
def price_of(item: str) -> float:
    """Look up the price in dollars of one item in the shop's price list.

    Args:
        item: the item's name in the singular, for example "pen"
    """
    key = item.lower().strip().removesuffix("s")
    if key not in PRICES:
        raise ValueError(f"no item called {item!r}; known: {', '.join(PRICES)}")
    return PRICES[key]


@tool
def multiply(a: float, b: float) -> float:
    """Multiply two numbers."""
    return a * b


SYSTEM = (
    "Answer with the tools: look up the price with price_of, then compute the total with "
    "multiply, then reply with the final answer only."
)


def test_multi_step_tool_run_entirely_on_the_remote_tier(
    llama_servers: LlamaServers, tmp_path: Path
) -> None:
    server = llama_servers.get(QWEN)
    store = RunStore(tmp_path / "runs.db")
    agent = Agent(
        server.spec, tools=[price_of, multiply], store=store, max_steps=8, system_prompt=SYSTEM,
        sampling=GREEDY,
    )  # fmt: skip
    result = agent.run("How much do 7 staplers cost?")
    assert result.status in ("succeeded", "budget_exhausted"), result.summary()
    steps = store.steps(result.run_id)
    model_steps = [s for s in steps if s.kind == "model"]
    tool_steps = [s for s in steps if s.kind == "tool"]
    assert model_steps and tool_steps, result.summary()
    for s in model_steps:
        assert s.model == f"{QWEN}@127.0.0.1:{server.port}"
        assert s.prompt_tokens == s.cached_tokens + s.evaluated_tokens > 0
        assert s.completion_tokens > 0
    # The prompt grows by appending, so the server's slot cache covers the earlier steps.
    assert all(s.cached_tokens > 0 for s in model_steps[1:])
    called = {c["name"] for s in tool_steps for c in s.tool_calls}
    assert called <= {"price_of", "multiply"} and called
    store.close()


def test_the_remote_prompt_is_the_in_process_prompt(llama_servers: LlamaServers) -> None:
    remote = RemoteModel(llama_servers.get(QWEN).base_url, QWEN)
    local = get_model(QWEN)
    messages = [Message.system(SYSTEM), Message.user("How much do 7 staplers cost?")]
    specs = [price_of.spec, multiply.spec]
    wire = remote._ready()
    assert wire.prompt(messages, specs) == local.render(messages, specs)  # type: ignore[union-attr]
    assert remote.count_tokens(messages, specs) == local.count_tokens(messages, specs)
    assert remote.parameters == local.parameters  # the server's n_params: same file


def test_ladder_escalates_from_local_to_remote(llama_servers: LlamaServers, tmp_path: Path) -> None:
    server = llama_servers.get(QWEN_15)
    store = RunStore(tmp_path / "runs.db")
    # Every tier-0 turn is below this confidence, so each one is redone on the remote tier.
    ladder = ModelLadder([QWEN, server.spec], policy=DefaultPolicy(low_confidence=1.01))
    agent = Agent(
        ladder, tools=[price_of, multiply], store=store, max_steps=6, system_prompt=SYSTEM,
        sampling=GREEDY,
    )  # fmt: skip
    result = agent.run("How much do 2 pens cost?")
    model_steps = [s for s in store.steps(result.run_id) if s.kind == "model"]
    assert model_steps, result.summary()
    assert result.escalations >= 1, result.summary()
    remote = ladder.model(1)
    assert isinstance(remote, RemoteModel) and remote.name == f"{QWEN_15}@127.0.0.1:{server.port}"
    assert all(s.tier == 1 and s.model == remote.name for s in model_steps), [
        (s.tier, s.model) for s in model_steps
    ]
    # The remote tier is weighed by its own parameter count in the run's compute.
    assert remote.parameters > get_model(QWEN).parameters
    assert result.compute > 0
    store.close()


def test_stream_detector_stops_a_remote_generation(llama_servers: LlamaServers) -> None:
    model = RemoteModel(llama_servers.get(SMOL).base_url, SMOL)
    messages = [Message.user("la la la la la la la la la la la la la la la la la la la la")]
    sampling = Sampling(temperature=0.0, seed=0, max_tokens=256)
    full = model.complete(messages, sampling=sampling)
    assert full.finish_reason == "length", full.raw_text

    detector = StreamDetector(DetectorConfig())
    stopped = model.complete(
        messages, sampling=sampling, on_token=lambda piece: detector.feed(piece) is not None
    )
    assert detector.strike is not None and detector.strike.detector == "stream_loop"
    assert stopped.finish_reason == "stopped"
    assert stopped.usage.completion_tokens <= sampling.max_tokens // 3
    assert full.raw_text.startswith(stopped.raw_text)


def test_plain_tools_field_on_llama_server(llama_servers: LlamaServers) -> None:
    # The chat-completions wire, for real: llama-server with --jinja reads "tools" itself.
    server = llama_servers.get(QWEN, "--jinja")
    model = RemoteModel(server.base_url, QWEN, config=RemoteConfig(constraint="tools"))
    messages = [Message.system(SYSTEM), Message.user("What does one stapler cost?")]
    response = model.complete(messages, tools=[price_of.spec, multiply.spec], sampling=GREEDY)
    assert response.tool_calls or response.content, response.raw_text
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0
    # llama-server refuses logprobs with tools while streaming: asked once, then dropped.
    assert response.logprobs == () and model._wire is not None and not model._wire.logprobs
    again = model.complete(messages, tools=[price_of.spec, multiply.spec], sampling=GREEDY)
    assert again.usage.cached_tokens > 0  # the server reported its prefix reuse


# -- each failure, caused for real --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nothing_listening_on_the_port() -> None:
    model = RemoteModel(f"http://127.0.0.1:{_free_port()}/v1", QWEN, config=NO_WAIT)
    with pytest.raises(ServerUnreachableError, match="could not connect"):
        model.complete([Message.user("hi")])


def test_wrong_model_name(llama_servers: LlamaServers) -> None:
    server = llama_servers.get(QWEN)
    with pytest.raises(
        ModelNotFoundError, match=rf"does not serve a model named 'qwen-9000'.*{QWEN}"
    ):
        RemoteModel(server.base_url, "qwen-9000").complete([Message.user("hi")])


def test_refused_key_comes_back_with_the_servers_message(
    llama_servers: LlamaServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = llama_servers.get(SMOL, "--api-key", "right-key")
    monkeypatch.setenv("AGENTKIT_TEST_KEY", "wrong-key")
    model = RemoteModel(server.base_url, SMOL, config=RemoteConfig(api_key_env="AGENTKIT_TEST_KEY"))
    with pytest.raises(RemoteModelError, match="HTTP 401") as info:
        model.complete([Message.user("hi")])
    assert info.value.status == 401 and "api key" in (info.value.server_message or "").lower()
    assert "wrong-key" not in str(info.value)
    monkeypatch.setenv("AGENTKIT_TEST_KEY", "right-key")
    reply = RemoteModel(server.base_url, SMOL, config=RemoteConfig(api_key_env="AGENTKIT_TEST_KEY"))
    assert reply.complete([Message.user("hi")], sampling=Sampling(max_tokens=4)).usage.prompt_tokens


def test_prompt_over_the_slot_context(llama_servers: LlamaServers) -> None:
    model = RemoteModel(llama_servers.get(SMOL).base_url, SMOL)
    long = " ".join(["word"] * 6000)
    with pytest.raises(ContextOverflowError) as info:
        model.complete([Message.user(long)], sampling=Sampling(max_tokens=8))
    assert info.value.prompt_tokens > info.value.context_size > 0


@pytest.fixture
def not_an_openai_server() -> Iterator[str]:
    """A real web server on 127.0.0.1 that answers every GET with an HTML page."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>It works!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_a_server_that_does_not_answer_json(not_an_openai_server: str) -> None:
    with pytest.raises(MalformedResponseError, match="not JSON"):
        RemoteModel(not_an_openai_server, "m", config=NO_WAIT).complete([Message.user("hi")])


def test_server_killed_mid_stream(llama_servers: LlamaServers) -> None:
    server = llama_servers.get(SMOL, fresh=True)
    model = RemoteModel(server.base_url, SMOL)
    seen: list[str] = []

    def kill_after_a_few(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 3:
            server.kill()

    with pytest.raises(StreamCutError, match=r"cut mid-reply|ended before") as info:
        model.complete(
            [Message.user("Write a very long list of animals.")],
            sampling=Sampling(temperature=0.0, max_tokens=400),
            on_token=kill_after_a_few,
        )
    assert info.value.partial_text.startswith("".join(seen[:3]))
    with pytest.raises(ServerUnreachableError):  # and the dead server is reported as such
        RemoteModel(server.base_url, SMOL, config=NO_WAIT).complete([Message.user("hi")])


def test_models_info_probes_a_server(
    llama_servers: LlamaServers, capsys: pytest.CaptureFixture[str]
) -> None:
    from agentkit.cli import main

    server = llama_servers.get(QWEN)
    assert main(["models", "info", server.spec]) == 0
    text = capsys.readouterr().out
    assert "llama-server" in text and QWEN in text and "grammar" in text
    assert main(["models", "info", server.base_url, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "llama-server" and info["models"][0]["id"] == QWEN
    assert info["context_size"] == 4096 and info["slots"] == 2
    assert info["models"][0]["parameters"] == get_model(QWEN).parameters
