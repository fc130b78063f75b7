"""A real small model runs a multi-step tool task; the real store records every step."""

from __future__ import annotations

from pathlib import Path

from agentkit import Agent, RunStore, Sampling, get_model, tool

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


def test_multi_step_task_is_recorded_step_by_step(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "runs.db")
    agent = Agent(
        get_model("qwen2.5-coder-0.5b-instruct"),
        tools=[price_of, multiply],
        store=store,
        max_steps=8,
        system_prompt=(
            "Answer with the tools: look up the price with price_of, then compute the "
            "total with multiply, then reply with the final answer only."
        ),
        sampling=Sampling(temperature=0.0, seed=0, max_tokens=96),
    )
    result = agent.run("How much do 7 staplers cost?")
    assert result.status in ("succeeded", "budget_exhausted"), result.summary()
    steps = store.steps(result.run_id)
    assert len(steps) == result.steps >= 3
    assert [s.idx for s in steps] == list(range(1, len(steps) + 1))
    model_steps = [s for s in steps if s.kind == "model"]
    tool_steps = [s for s in steps if s.kind == "tool"]
    assert model_steps and tool_steps
    for s in model_steps:
        assert s.model == "qwen2.5-coder-0.5b-instruct" and s.tier == 0
        assert s.prompt_tokens == s.cached_tokens + s.evaluated_tokens
        assert s.prompt_tokens > 0 and s.completion_tokens > 0 and s.seconds > 0
    # later steps reuse the prompt prefix from llama.cpp's KV cache
    assert all(s.cached_tokens > 0 for s in model_steps[1:])
    first_call = tool_steps[0].tool_calls[0]
    assert first_call["name"] in {"price_of", "multiply"} and "result" in first_call
    run = store.get_run(result.run_id)
    assert run.steps == len(steps)
    assert run.prompt_tokens == sum(s.prompt_tokens for s in model_steps)
    assert run.completion_tokens == sum(s.completion_tokens for s in model_steps)
    types = [e.type for _, e in store.events(result.run_id)]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert types.count("model_called") == len(model_steps)
