"""Many runs on one loaded 0.5B model, decoded together: valid calls in every run, each
run's prefix kept between its steps while the others run, an abort or an oversized
prompt that stays with its own run, and the KV bookkeeping against llama.cpp."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _catalog_models import require_model

from agentkit import (
    Agent,
    BatchConfig,
    ContextOverflowError,
    LlamaConfig,
    LlamaCppModel,
    Message,
    ModelResponse,
    RunStore,
    Sampling,
    ToolSpec,
    tool,
)

QWEN = "qwen2.5-coder-0.5b-instruct"
ENDED_NORMALLY = ("succeeded", "budget_exhausted", "stopped")
SYSTEM = (
    "You are a calculator assistant. Use the add tool for every sum, then reply with "
    "one short sentence that states the result."
)


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first addend
        b: the second addend
    """
    return a + b


@dataclass(frozen=True)
class Call:
    task: str
    prompt: int
    cached: int
    evaluated: int
    response: ModelResponse


class Recording:
    """The real model, recording every call's usage by the run's task (calls come from
    many threads at once)."""

    def __init__(self, model: LlamaCppModel) -> None:
        self.model = model
        self.calls: list[Call] = []
        self.after_first: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def context_size(self) -> int:
        return self.model.context_size

    @property
    def parameters(self) -> int:
        return self.model.parameters

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        return self.model.count_tokens(messages, tools)

    def complete(self, messages: Sequence[Message], **kw: Any) -> ModelResponse:
        response = self.model.complete(messages, **kw)
        task = next(m.content for m in messages if m.role == "user") or ""
        u = response.usage
        with self._lock:
            self.calls.append(
                Call(task, u.prompt_tokens, u.cached_tokens, u.evaluated_tokens, response)
            )
            event = self.after_first.get(task)
        if event is not None:
            event.set()
        return response


@pytest.fixture(scope="module")
def qwen() -> Iterator[LlamaCppModel]:
    config = LlamaConfig(
        n_ctx=2048, n_threads=2, seed=0, batching=BatchConfig(parallel=4, sequences=24)
    )
    model = LlamaCppModel.load(require_model(QWEN), config)
    yield model
    model.close()


def test_four_runs_share_the_model_and_keep_their_prefixes(
    qwen: LlamaCppModel, tmp_path: Path
) -> None:
    store = RunStore(tmp_path / "runs.db")
    model = Recording(qwen)
    agent = Agent(
        model,
        tools=[add],
        system_prompt=SYSTEM,
        store=store,
        max_steps=4,
        sampling=Sampling(temperature=0.0, max_tokens=64),
    )
    pairs = [(17, 25), (301, 99), (1200, 34), (8, 15)]
    tasks = [f"What is {a} plus {b}?" for a, b in pairs]
    before = qwen.batch_stats()
    results = agent.run_many(tasks, concurrency=4)
    stats = qwen.batch_stats()
    assert stats.peak_parallel >= 2  # they really were decoded side by side
    for task, result in zip(tasks, results, strict=True):
        # The 0.5B may loop on the tool until its step budget is spent: that is its
        # nature, not the scheduler's; every run must end normally either way.
        assert result.status in ENDED_NORMALLY, result.summary()
        calls = [c for c in model.calls if c.task == task]
        made = [tc for c in calls for tc in c.response.tool_calls]
        assert made, f"{task}: no tool call"
        for tc in made:  # every call names the tool and validates
            assert tc.name == "add"
            add.validate(tc.arguments)
        # Each later step reused the whole prompt of the step before it, although the
        # other runs used the model in between: the run kept its own KV sequence.
        for prev, cur in itertools.pairwise(calls):
            assert cur.cached >= prev.prompt, (task, prev, cur)
            assert cur.cached + cur.evaluated == cur.prompt
    # The system prompt and the tool block were evaluated once and copied to the others.
    firsts = [next(c for c in model.calls if c.task == t) for t in tasks]
    shared = min(c.cached for c in sorted(firsts, key=lambda c: c.cached)[1:])
    assert shared >= qwen.count_tokens([Message.system(SYSTEM)], [add.spec]) - 8
    assert stats.forks - before.forks >= 3
    assert {r.run_id for r in results} <= {run.id for run in store.list_runs()}
    store.close()


def test_aborting_one_run_leaves_the_others_finishing(qwen: LlamaCppModel, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    model = Recording(qwen)
    agent = Agent(
        model,
        tools=[add],
        system_prompt=SYSTEM,
        store=store,
        max_steps=4,
        sampling=Sampling(temperature=0.0, max_tokens=48),
    )
    tasks = ["What is 40 plus 2?", "What is 11 plus 31?", "What is 6 plus 7?", "What is 5 plus 5?"]
    ids = [f"batch-{i}" for i in range(4)]
    first_call_done = threading.Event()
    model.after_first[tasks[1]] = first_call_done

    def abort_second() -> None:
        first_call_done.wait(600)
        store.send_control(ids[1], "abort")

    watcher = threading.Thread(target=abort_second)
    watcher.start()
    results = agent.run_many(tasks, concurrency=4, run_ids=ids)
    watcher.join()
    assert results[1].status == "aborted"
    assert store.get_run(ids[1]).status == "aborted"
    for i in (0, 2, 3):
        assert results[i].status in ENDED_NORMALLY, results[i].summary()
        assert results[i].tool_calls >= 1
    store.close()


def test_limits_and_stops_in_a_shared_batch_stay_with_their_call(qwen: LlamaCppModel) -> None:
    """Side by side: a prompt too long for the context, a stream stopped by its
    detector, one cancelled mid-generation, and a normal one that is not disturbed."""
    sampling = Sampling(temperature=0.0, max_tokens=40)
    oversized = [Message.user("Add these numbers: " + " plus ".join(map(str, range(1000))))]
    story = [Message.user("Write a long story about a lighthouse keeper.")]
    outcome: dict[str, Any] = {}
    cancel = threading.Event()
    pieces: dict[str, int] = {"stop": 0, "cancel": 0}

    def stop_after_three(piece: str) -> bool:
        pieces["stop"] += 1
        return pieces["stop"] >= 3

    def cancel_after_two(piece: str) -> None:
        pieces["cancel"] += 1
        if pieces["cancel"] == 2:
            cancel.set()

    def call(key: str, **kw: Any) -> None:
        try:
            outcome[key] = qwen.complete(kw.pop("messages", story), sampling=sampling, **kw)
        except Exception as exc:
            outcome[key] = exc

    threads = [
        threading.Thread(
            target=call, args=("normal",), kwargs={"messages": [Message.user("Say hello.")]}
        ),
        threading.Thread(target=call, args=("big",), kwargs={"messages": oversized}),
        threading.Thread(target=call, args=("stop",), kwargs={"on_token": stop_after_three}),
        threading.Thread(
            target=call, args=("cancel",), kwargs={"on_token": cancel_after_two, "cancel": cancel}
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(outcome["big"], ContextOverflowError)
    assert "n_ctx" in str(outcome["big"])
    assert outcome["stop"].finish_reason == "stopped"
    assert outcome["stop"].usage.completion_tokens == 3
    assert outcome["cancel"].finish_reason == "cancelled"
    assert 2 <= outcome["cancel"].usage.completion_tokens < 40
    normal = outcome["normal"]
    assert normal.finish_reason in ("stop", "length") and normal.usage.completion_tokens > 0
    alone = qwen.complete([Message.user("Say hello.")], sampling=sampling)
    assert alone.raw_text.startswith(normal.raw_text[:8])


def test_the_books_match_llama_cpp_after_shared_work(qwen: LlamaCppModel) -> None:
    """Every sequence the pool keeps holds, in llama.cpp, exactly its tokens' positions."""
    stats = qwen.batch_stats()
    pool = qwen._scheduler.pool  # white-box: the KV bookkeeping against the cache itself
    assert stats.kv_cells_used == pool.used_cells <= stats.kv_cells
    for seq in pool.resident():
        ctx = qwen._context
        import llama_cpp

        top = llama_cpp.llama_memory_seq_pos_max(ctx._mem, seq.id)
        assert top == len(seq.tokens) - 1, (seq.id, top, len(seq.tokens))
    assert qwen.kv_bytes_per_token == 24 * 2 * 2 * 64 * 2  # 24 layers, 2 KV heads of 64
