"""LlamaCppModel on the real small GGUF models: constrained calls, KV-cache reuse,
streaming, cancellation, log-probabilities, context limits and broken files."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

import pytest
from _catalog_models import require_model
from pydantic import BaseModel, Field

from agentkit._errors import ContextOverflowError
from agentkit.models import LlamaConfig, LlamaCppModel, get_model
from agentkit.models._messages import Message, ToolCall
from agentkit.models._protocol import ChatModel, Sampling
from agentkit.runtime._tools import Tool, tool

pytestmark = pytest.mark.integration

SMOL = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"


def _path(name: str) -> Path:
    return require_model(name)  # a missing model fails the test: `make models-all`


@pytest.fixture(scope="module")
def smol() -> Iterator[LlamaCppModel]:
    model = LlamaCppModel.load(_path(SMOL), LlamaConfig(n_ctx=2048, seed=7))
    yield model
    model.close()


# -- tools of different schema shapes ---------------------------------------------------


class Unit(str, Enum):
    celsius = "celsius"
    fahrenheit = "fahrenheit"


class Address(BaseModel):
    street: str
    city: str
    zip_code: str | None = None


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first addend
        b: the second addend
    """
    return a + b


@tool
def convert_temperature(value: float, to: Unit, precision: Literal[0, 1, 2] = 1) -> str:
    """Convert a temperature to another unit."""
    return ""


@tool
def ship_package(
    recipient: str, address: Address, express: bool = False, note: str | None = None
) -> str:
    """Ship a package to a recipient at a postal address."""
    return ""


@tool
def average(
    numbers: Annotated[list[float], Field(max_length=8)], round_to: int | None = None
) -> float:
    """Average a list of numbers."""
    return 0.0


TOOLS: dict[str, Tool] = {t.name: t for t in (add, convert_temperature, ship_package, average)}
SPECS = [t.spec for t in TOOLS.values()]

PROMPTS = [
    "What is 12 plus 30?",
    "Add 7 and 8 for me.",
    "Please compute 1000 + 2345.",
    "Convert 100 degrees celsius to fahrenheit.",
    "It is 451 fahrenheit. What is that in celsius, with 2 decimals?",
    "How warm is 20 C in F?",
    "Ship a box to Alice at 1 Main St, Springfield.",
    "Send my order express to Bob Smith, 22 Baker Street, London, NW1 6XE.",
    "Mail a letter to Carol at 5 Elm Road in Paris with the note 'fragile'.",
    "What's the average of 3, 5 and 10?",
    "Average these: 1.5, 2.5, 3.5, 4.5. Round to 1 decimal.",
    "Mean of 10, 20?",
    "I need the sum of 99 and 1.",
    "Convert -40 celsius to fahrenheit.",
    "Deliver a package to Dan, 9 Oak Ave, Austin 73301.",
    "Give me the average of 7, 7, 8.",
    "Add 3 and 4, then average 1, 2 and 3.",
    "Tell me a joke.",
    "What's the capital of France?",
    "Hello! How are you today?",
]


def test_constrained_calls_are_always_valid(smol: LlamaCppModel) -> None:
    """(a) Every call decoded under the grammar names a real tool and validates."""
    sampling = Sampling(temperature=0.8, max_tokens=64)
    calls: list[ToolCall] = []
    blocks = 0
    for i, prompt in enumerate(PROMPTS):
        # Alternate: "required" makes the 135M model call (it rarely does on its own),
        # "auto" checks that the text branch stays open.
        choice: Literal["auto", "required"] = "required" if i % 4 else "auto"
        response = smol.complete(
            [Message.user(prompt)],
            tools=SPECS,
            sampling=sampling.model_copy(update={"seed": i}),
            tool_choice=choice,
        )
        if choice == "required":
            assert response.raw_text.startswith(("<tool_call>", "{", "```json"))
        # Count complete call blocks in the raw text: each must have become a call.
        blocks += response.raw_text.count("</tool_call>")
        if response.finish_reason != "length":
            assert response.finish_reason in ("tool_calls", "stop")
            assert (response.finish_reason == "tool_calls") == bool(response.tool_calls)
        for call in response.tool_calls:
            assert call.name in TOOLS
            TOOLS[call.name].validate(call.arguments)  # raises if invalid
            calls.append(call)
    assert len(calls) >= 10, f"only {len(calls)} calls decoded"
    assert blocks <= len(calls)  # no complete <tool_call> block was left unparsed


def test_a_grammars_first_tokens_are_worked_out_once(smol: LlamaCppModel) -> None:
    """An "auto" turn's call-or-answer decision reads the tokens each grammar allows
    first from a per-model cache; that set must not depend on the logits it was read at."""
    import numpy as np

    from agentkit.models._sampler import Sampler

    ask = [Message.user(PROMPTS[0])]
    greedy = Sampling(temperature=0.0, max_tokens=8)
    smol.complete(ask, tools=SPECS, sampling=greedy, tool_choice="auto")
    side = smol._side
    masks = dict(side.start_masks)
    assert len(masks) >= 2  # the calls grammar and the text grammar
    rng = np.random.default_rng(0)
    for grammar, mask in masks.items():
        sampler = Sampler(side.vocab, side.n_vocab, Sampling(), 0, grammar)
        try:
            logits = rng.normal(size=side.n_vocab).astype(np.float32)
            assert (sampler.allowed(logits) == mask).all()
            assert 0 < mask.sum() < side.n_vocab
        finally:
            sampler.close()
    smol.complete(ask, tools=SPECS, sampling=greedy, tool_choice="auto")
    assert all(side.start_masks[g] is m for g, m in masks.items())  # not worked out again


def test_second_step_reuses_the_kv_cache(smol: LlamaCppModel) -> None:
    """(b) An appended message costs only its own tokens."""
    messages = [Message.system("You are terse."), Message.user("What is 12 plus 30?")]
    sampling = Sampling(temperature=0.0, max_tokens=40)
    smol.complete([Message.user("warm-up, unrelated")], sampling=Sampling(max_tokens=2))
    first = smol.complete(messages, tools=SPECS, sampling=sampling, tool_choice="required")
    assert first.tool_calls
    assert first.usage.cached_tokens < first.usage.prompt_tokens // 2
    call = first.tool_calls[0]
    messages += [first.as_message(), Message.tool(call, "42")]
    second = smol.complete(messages, tools=SPECS, sampling=sampling)
    assert second.usage.prompt_tokens == smol.count_tokens(messages, SPECS)
    # Everything up to the first prompt's end comes from the cache; only the appended
    # turns (the call as re-rendered, the result, the new generation prompt) are new.
    appended = second.usage.prompt_tokens - first.usage.prompt_tokens
    assert second.usage.cached_tokens >= first.usage.prompt_tokens
    assert second.usage.evaluated_tokens <= appended < second.usage.prompt_tokens // 5
    assert second.usage.cached_tokens + second.usage.evaluated_tokens == second.usage.prompt_tokens
    # The same prompt again re-evaluates a single token (to get fresh logits).
    third = smol.complete(messages, tools=SPECS, sampling=sampling)
    assert third.usage.evaluated_tokens == 1


def test_on_token_streams_and_stops_early(smol: LlamaCppModel) -> None:
    """(d) on_token sees every piece; returning True stops with finish_reason 'stopped'."""
    seen: list[str] = []

    def stop_after_five(piece: str) -> bool:
        seen.append(piece)
        return len(seen) >= 5

    response = smol.complete(
        [Message.user("Write a long story about a dragon.")],
        sampling=Sampling(temperature=0.0, max_tokens=200),
        on_token=stop_after_five,
    )
    assert response.finish_reason == "stopped"
    assert len(seen) == 5
    assert response.raw_text == "".join(seen)
    assert response.usage.completion_tokens == 5
    full: list[str] = []
    response = smol.complete(
        [Message.user("Say hello.")],
        sampling=Sampling(temperature=0.0, max_tokens=30),
        on_token=full.append,
    )
    assert "".join(full) == response.raw_text


def test_cancel_from_another_thread(smol: LlamaCppModel) -> None:
    """(d) A cancel event set by another thread stops between tokens."""
    cancel = threading.Event()
    started = threading.Event()

    def canceller() -> None:
        started.wait(10)
        cancel.set()

    def slow_reader(piece: str) -> None:
        started.set()
        time.sleep(0.01)  # give the other thread time to act between tokens

    worker = threading.Thread(target=canceller)
    worker.start()
    response = smol.complete(
        [Message.user("Count from 1 to 500, one number per line.")],
        sampling=Sampling(temperature=0.0, max_tokens=400),
        on_token=slow_reader,
        cancel=cancel,
    )
    worker.join()
    assert response.finish_reason == "cancelled"
    assert 0 < response.usage.completion_tokens < 50
    already = smol.complete([Message.user("hi")], cancel=cancel)
    assert already.finish_reason == "cancelled"
    assert already.usage.completion_tokens == 0


def test_logprobs_one_per_token(smol: LlamaCppModel) -> None:
    """(e) A log-probability (<= 0) for every generated token, calls included."""
    for tools in ([], SPECS):
        response = smol.complete(
            [Message.user("Add 2 and 2.")],
            tools=tools,
            sampling=Sampling(temperature=0.0, max_tokens=40),
            tool_choice="required",  # with tools: a call; without: plain text
        )
        assert len(response.logprobs) == response.usage.completion_tokens > 0
        assert all(lp.logprob <= 0.0 for lp in response.logprobs)
        assert "".join(lp.token for lp in response.logprobs) == response.raw_text
        # Greedy decoding picks the most likely token, so early ones are not unlikely.
        assert response.logprobs[0].logprob > -5.0


def test_context_overflow_and_budget_shrink() -> None:
    """(f) A prompt that cannot fit raises; one that barely fits gets a smaller budget."""
    tiny = LlamaCppModel.load(_path(SMOL), LlamaConfig(n_ctx=128))
    try:
        with pytest.raises(ContextOverflowError) as info:
            tiny.complete([Message.user("hello " * 200)])
        assert info.value.context_size == 128
        assert info.value.prompt_tokens > 128
        assert "n_ctx" in str(info.value)
        with pytest.raises(ContextOverflowError):
            tiny.complete([Message.user("hi")], tools=SPECS)  # the tool preamble is big
        # Pad the prompt until fewer than 40 tokens remain: max_tokens must shrink to that.
        words = 1
        while tiny.context_size - tiny.count_tokens([Message.user("story " * words)]) >= 40:
            words += 4
        prompt = [Message.user("story " * words)]
        room = tiny.context_size - tiny.count_tokens(prompt)
        assert 16 <= room < 40
        response = tiny.complete(prompt, sampling=Sampling(temperature=0.0, max_tokens=1000))
        assert response.usage.completion_tokens <= room
    finally:
        tiny.close()


def test_threads_share_one_model(smol: LlamaCppModel) -> None:
    results: list[str] = []

    def run(i: int) -> None:
        response = smol.complete(
            [Message.user(f"Say the number {i}.")], sampling=Sampling(temperature=0.0, max_tokens=8)
        )
        results.append(response.finish_reason)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4


def test_registry_and_properties(smol: LlamaCppModel) -> None:
    assert isinstance(smol, ChatModel)
    _path(SMOL)
    shared = get_model(SMOL, LlamaConfig(n_ctx=256))
    assert get_model(SMOL, LlamaConfig(n_ctx=256)) is shared
    assert shared.name == SMOL
    assert shared.context_size == 256
    assert 100_000_000 < shared.parameters < 200_000_000
    assert smol.name == Path(smol.path).stem


# -- broken files, in a subprocess so a crash would show as one -------------------------

_LOAD_SCRIPT = """
import sys
from agentkit._errors import ModelFileError, ModelNotFoundError
from agentkit.models._llama import LlamaCppModel
for path in sys.argv[1:]:
    try:
        LlamaCppModel.load(path)
    except (ModelFileError, ModelNotFoundError) as exc:
        print(type(exc).__name__, "|", exc, flush=True)
    else:
        print("LOADED", flush=True)
"""


def test_broken_files_raise_model_file_error(tmp_path: Path) -> None:
    """(c) Missing, foreign, truncated and corrupt files: errors, never a crash."""
    good = _path(SMOL).read_bytes()
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from _gguf_factory import STRING, GGUFSpec, build_gguf

    files = {
        "text.gguf": b"hello, this is not a model\n" * 100,
        "empty.gguf": b"",
        "truncated.gguf": good[: len(good) // 2],
        "header-cut.gguf": good[:5000],
        "bad-version.gguf": good[:4] + (99).to_bytes(4, "little") + good[8:200_000],
        "bad-count.gguf": good[:8] + (2**60).to_bytes(8, "little") + good[16:200_000],
    }
    # Headers that check out but that llama.cpp cannot load: an architecture it does not
    # know, and a "llama" without its hyperparameters.
    spec = GGUFSpec()
    spec.kvs = [kv for kv in spec.kvs if kv[0] != "nested"]
    files["no-hparams.gguf"] = build_gguf(spec)
    spec.kvs[0] = ("general.architecture", STRING, "no-such-arch")
    files["unknown-arch.gguf"] = build_gguf(spec)
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    paths.append(str(tmp_path / "missing.gguf"))
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_SCRIPT, *paths], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == len(paths), done.stdout
    for path, line in zip(paths, lines, strict=True):
        expected = "ModelNotFoundError" if path.endswith("missing.gguf") else "ModelFileError"
        assert line.startswith(expected), (path, line)
    assert "unknown model architecture: 'no-such-arch'" in lines[-2]
    assert "Traceback" not in done.stderr


# -- the 0.5B model ----------------------------------------------------------------------


def test_qwen_answers_a_tool_request_with_a_valid_call() -> None:
    """(g) Qwen2.5-Coder-0.5B, native template with tools, one simple request."""
    qwen = LlamaCppModel.load(_path(QWEN), LlamaConfig(n_ctx=2048))
    try:
        assert "<tools>" in qwen.render([Message.user("x")], SPECS)  # the native template
        response = qwen.complete(
            [Message.user("What is 17 plus 25?")],
            tools=SPECS,
            sampling=Sampling(temperature=0.0, max_tokens=48),
        )
        assert response.finish_reason == "tool_calls", response.raw_text
        (call,) = response.tool_calls
        assert call.name == "add"
        assert TOOLS["add"].validate(call.arguments).model_dump() == {"a": 17, "b": 25}
        assert json.loads(json.dumps(call.arguments)) == call.arguments
    finally:
        qwen.close()


def test_qwen_next_prompt_reuses_its_whole_reply() -> None:
    """The 0.5B writes calls bare or fenced, and under a grammar not in the tokenizer's own
    spelling: the next prompt repeats the reply as written, token for token, so the KV
    cache covers the reply too, not only the prompt before it."""
    qwen = LlamaCppModel.load(_path(QWEN), LlamaConfig(n_ctx=2048))
    try:
        messages = [
            Message.system("Use the add tool for arithmetic."),
            Message.user("What is 17 plus 25?"),
        ]
        sampling = Sampling(temperature=0.0, max_tokens=64)
        first = qwen.complete(messages, tools=SPECS, sampling=sampling)
        (call,) = first.tool_calls
        turn = first.as_message()
        assert turn.raw == first.raw_text
        messages += [turn, Message.tool(call, "42")]
        assert first.raw_text in qwen.render(messages, SPECS)  # the reply as written
        second = qwen.complete(messages, tools=SPECS, sampling=sampling)
        covered = first.usage.prompt_tokens + first.usage.completion_tokens
        assert second.usage.cached_tokens >= covered, (first.usage, second.usage)
    finally:
        qwen.close()
