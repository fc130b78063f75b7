"""Real small models pushed into loops: the repetition detectors catch them.

Inside one generation, the streaming detector stops degenerate text from smollm2-135m
early through ``LlamaCppModel.complete(on_token=...)``. Across steps, an agent whose only
tool never has anything to say keeps calling it; the run must go through the graded
responses (nudge, resample, stop) and end stopped with a diagnosis, every strike recorded
in the store in the order it happened. Sampling is greedy with a fixed seed.
"""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

import pytest
from _catalog_models import require_model

from agentkit import (
    Agent,
    AgentState,
    DetectorConfig,
    Message,
    ResponsePlan,
    RunStore,
    Sampling,
    get_model,
    tool,
)
from agentkit.detection import DETECTORS
from agentkit.detection._stream import StreamDetector
from agentkit.events import DetectorStrike, Event, ModelCalled, RunFinished, ToolCallFinished

SMOL = "smollm2-135m-instruct"
QWEN = "qwen2.5-coder-0.5b-instruct"
UNHELPFUL = "no data yet, try again"


def _cached(name: str) -> str:
    require_model(name)  # a missing model fails the test: `make models-all`
    return name


# -- inside one generation ---------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt",
    [
        "la la la la la la la la la la la la la la la la la la la la",
        "Write a very long list of animals.",
    ],
)
def test_stream_detector_stops_a_degenerate_generation_early(prompt: str) -> None:
    model = get_model(_cached(SMOL))
    messages = [Message.user(prompt)]
    sampling = Sampling(temperature=0.0, seed=0, max_tokens=256)
    # Put the prompt in the KV cache first, so both generations below evaluate the same
    # single prompt token: a prompt evaluated in one batch gives slightly different
    # logits, enough to flip a near-tie in greedy decoding.
    model.complete(messages, sampling=sampling.model_copy(update={"max_tokens": 1}))
    # Without the detector the model loops all the way to max_tokens.
    full = model.complete(messages, sampling=sampling)
    assert full.finish_reason == "length", full.raw_text

    detector = StreamDetector(DetectorConfig())
    stopped = model.complete(
        messages, sampling=sampling, on_token=lambda piece: detector.feed(piece) is not None
    )

    strike = detector.strike
    assert strike is not None, stopped.raw_text
    assert strike.detector == "stream_loop"
    assert stopped.finish_reason == "stopped"
    assert stopped.usage.completion_tokens <= sampling.max_tokens // 3, strike.summary
    # Greedy: the same text up to the strike, which came at the last piece fed.
    assert full.raw_text.startswith(stopped.raw_text)
    assert detector.chars_seen == len(stopped.raw_text)
    assert stopped.tool_calls == ()


# -- across steps ---------------------------------------------------------------------------


@tool
def fetch_report(name: str) -> str:
    """Fetch a report by name from the reporting service.

    Args:
        name: the report's name, for example "sales"
    """
    return UNHELPFUL


def _responses_by_strike(strikes: list[DetectorStrike]) -> list[str]:
    """One response per strike of the run: the detectors that fired on one repetition
    are recorded one after the other with the same step and response."""
    return [response for (_, response), _ in groupby(strikes, lambda e: (e.step, e.response))]


def test_agent_stuck_on_an_unhelpful_tool_is_stopped_with_a_diagnosis(tmp_path: Path) -> None:
    plan = ResponsePlan(sequence=("nudge", "resample", "stop"))
    store = RunStore(tmp_path / "runs.db")
    agent: Agent[AgentState] = Agent(
        get_model(_cached(QWEN)),
        tools=[fetch_report],
        store=store,
        max_steps=12,
        system_prompt="Use the tools to answer. Call fetch_report to get a report.",
        sampling=Sampling(temperature=0.0, seed=0, max_tokens=96),
        detectors=DetectorConfig(),
        responses=plan,
        # Off, so the detectors' own graded plan is what is tested: with it on, the second
        # identical result already gets the model asked for its answer (test_answer_out).
        answer_now=False,
    )
    result = agent.run("Fetch the sales report with fetch_report and tell me the total.")

    events = [event for _, event in store.events(result.run_id)]
    report = result.summary() + "\n" + "\n".join(_describe(e) for e in events)
    assert result.status == "stopped", report
    assert result.exit_code == 4
    assert result.steps <= 12

    strikes = [e for e in events if isinstance(e, DetectorStrike)]
    assert strikes, report
    assert {s.detector for s in strikes} <= set(DETECTORS)
    # The graded plan, one response per strike of the run, ending in the stop.
    responses = _responses_by_strike(strikes)
    assert responses == [plan.next_response(n, can_escalate=False) for n in range(1, 4)], report
    assert result.strikes == len(responses)
    # The nudge reached the model as a message.
    nudges = [m for m in result.state.messages if m.role == "user" and m.name == "agentkit"]
    assert nudges, report

    # The diagnosis names every detector that fired and what repeated.
    assert result.diagnosis is not None
    assert result.diagnosis.startswith(f"Repetition detected {len(strikes)} times"), report
    for strike in strikes:
        assert strike.detector in result.diagnosis
    assert "fetch_report" in result.diagnosis

    # Each strike sits in the step that caused it: a stream strike before that step's
    # (redone) generation is recorded, a step strike after the step's tool call.
    positions = [at for at, e in enumerate(events) if isinstance(e, DetectorStrike)]
    for at in positions:
        hit = events[at]
        assert isinstance(hit, DetectorStrike)
        if hit.detector == "stream_loop" and hit.response != "stop":
            redone = next(e for e in events[at:] if isinstance(e, ModelCalled))
            assert redone.step == hit.step, report
        elif hit.detector != "stream_loop":
            done = [e for e in events[:at] if isinstance(e, (ToolCallFinished, ModelCalled))]
            assert done and done[-1].step == hit.step, report
    # The stop ends the run there and then; the store agrees with the result.
    assert strikes[-1].response == "stop"
    assert events[positions[-1] + 1 :] == [events[-1]], report
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.status == "stopped" and finished.diagnosis == result.diagnosis
    assert events[0].type == "run_started"
    calls = [e for e in events if isinstance(e, ToolCallFinished)]
    assert calls and all(c.name == "fetch_report" and c.result == UNHELPFUL for c in calls)
    assert store.get_run(result.run_id).status == "stopped"


def _describe(event: Event) -> str:
    """One line per event, for failure messages."""
    if isinstance(event, DetectorStrike):
        return f"  {event.step}: strike {event.detector} -> {event.response}"
    if isinstance(event, ModelCalled):
        calls = ", ".join(f"{c['name']}({c['arguments']})" for c in event.tool_calls)
        return f"  {event.step}: model {event.finish_reason} {calls or event.content[:60]!r}"
    if isinstance(event, ToolCallFinished):
        return f"  {event.step}: tool {event.name} -> {event.result[:60]!r}"
    return f"  {getattr(event, 'step', '-')}: {event.type}"
