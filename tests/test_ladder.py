"""The escalation policy on the scripted model: each trigger escalates, success comes
back down, every decision carries its reason, and costs are accounted."""

from __future__ import annotations

from typing import Any

from agentkit import (
    Agent,
    DefaultPolicy,
    ModelLadder,
    ResponsePlan,
    RunStore,
    StepSignals,
    TierDecision,
    tool,
)
from agentkit.models._messages import Message
from agentkit.runtime._agent import run_sync
from agentkit.runtime._executor import Runner
from agentkit.runtime._graph import END, AgentState, Graph, ModelNode, ToolNode
from agentkit.testing import ScriptedModel, Turn, call, reply


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def flaky(x: int) -> int:
    """Always fails."""
    raise RuntimeError("service unavailable")


def tiers_and_reasons(store: RunStore, run_id: str) -> list[tuple[int, str]]:
    return [(e.tier, e.reason) for _, e in store.events(run_id) if e.type == "tier_chosen"]


def ladder(small: list[Any], big: list[Any]) -> tuple[ModelLadder, ScriptedModel, ScriptedModel]:
    s = ScriptedModel(small, name="small", parameters=100_000_000)
    b = ScriptedModel(big, name="big", parameters=1_000_000_000)
    return ModelLadder([s, b]), s, b


def test_invalid_arguments_after_retries_escalate_then_come_back(store: RunStore) -> None:
    lad, small, big = ladder(
        [call("add", a="x", b=1), call("add", a="y", b=1), call("add", a="z", b=1), reply("done")],
        [call("add", a=1, b=1)],
    )
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("1+1")
    chosen = tiers_and_reasons(store, result.run_id)
    assert [t for t, _ in chosen] == [0, 1, 0]
    assert "stayed invalid" in chosen[1][1]
    assert "back down" in chosen[2][1]
    # the invalid turn was redone on tier 1 within step 1; step 3 came back to tier 0
    assert result.escalations == 1 and result.tiers == {"big": 1, "small": 1}
    assert big.requests[0][-1].role == "tool"  # the big model saw the rejected attempts


def test_detector_strike_escalates(store: RunStore) -> None:
    lad, small, big = ladder([call("add", a=1, b=1)] * 3, [reply("2")])
    agent = Agent(
        lad,
        tools=[add],
        store=store,
        responses=ResponsePlan(sequence=("escalate", "stop")),
        answer_now=False,  # let the loop run into the detector
    )
    with small, big:
        result = agent.run("1+1")
    chosen = tiers_and_reasons(store, result.run_id)
    assert chosen[-1][0] == 1 and "repetition detector" in chosen[-1][1]
    strikes = [e for _, e in store.events(result.run_id) if e.type == "detector_strike"]
    assert strikes and strikes[0].response == "escalate"
    assert result.ok


def test_low_confidence_escalates(store: RunStore) -> None:
    unsure = Turn(call("add", a=2, b=2).respond, logprob=-3.0)
    lad, small, big = ladder([unsure], [reply("4")])
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("2+2")
    chosen = tiers_and_reasons(store, result.run_id)
    assert [t for t, _ in chosen] == [0, 1]
    assert "low decision confidence" in chosen[1][1]


def test_tool_error_streak_escalates(store: RunStore) -> None:
    lad, small, big = ladder([call("flaky", x=1), call("flaky", x=2)], [reply("gave up")])
    with small, big:
        result = Agent(lad, tools=[flaky], store=store).run("try")
    chosen = tiers_and_reasons(store, result.run_id)
    assert [t for t, _ in chosen] == [0, 0, 1]
    assert "2 tool errors in a row" in chosen[2][1]


def test_node_hint_starts_higher(store: RunStore) -> None:
    lad, small, big = ladder([], [reply("planned")])
    g = Graph(AgentState, model=lad)
    g.add_node("plan", ModelNode(tier_hint=1)).add_edge("plan", END)
    with small, big:
        result = run_sync(
            Runner(g.build(), store=store).arun("plan", AgentState(messages=[Message.user("plan")]))
        )
    assert tiers_and_reasons(store, result.run_id) == [(1, "node hint asks for tier 1")]


def test_every_decision_has_a_reason(store: RunStore) -> None:
    lad, small, big = ladder([call("add", a=1, b=2), reply("3")], [])
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("1+2")
    assert all(reason for _, reason in tiers_and_reasons(store, result.run_id))


def test_a_custom_policy_in_a_few_lines(store: RunStore) -> None:
    class TopOnEvenSteps:
        def choose(self, signals: StepSignals, tiers: int) -> TierDecision:
            tier = tiers - 1 if signals.step % 2 == 1 else 0
            return TierDecision(tier, f"step {signals.step}")

    s = ScriptedModel([], name="small")
    b = ScriptedModel([call("add", a=1, b=1), reply("2")], name="big")
    with s, b:
        result = Agent(ModelLadder([s, b], policy=TopOnEvenSteps()), tools=[add], store=store).run(
            "1+1"
        )
    assert tiers_and_reasons(store, result.run_id) == [(1, "step 1"), (1, "step 3")]


def test_cost_accounting_against_the_top_tier(store: RunStore) -> None:
    lad, small, big = ladder([call("add", a=1, b=2), reply("3")], [])
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("1+2")
    assert result.compute > 0
    assert abs(result.top_tier_compute - 10 * result.compute) < 1e-9  # 1B vs 100M params
    assert result.compute_ratio is not None and abs(result.compute_ratio - 0.1) < 1e-9
    assert result.top_tier_seconds > 0
    run = store.get_run(result.run_id)
    assert abs(run.compute - result.compute) < 1e-9


def test_default_policy_table() -> None:
    p = DefaultPolicy()
    cases = [
        (StepSignals(step=1, node="m"), 0, "cheapest"),
        (StepSignals(step=3, node="m", previous_tier=0, argument_failures=1), 1, "invalid"),
        (StepSignals(step=3, node="m", previous_tier=1, confidence=0.1), 2, "confidence"),
        (StepSignals(step=3, node="m", previous_tier=2, tool_error_streak=5), 2, "top tier"),
        (StepSignals(step=5, node="m", previous_tier=2), 0, "back down"),
        (StepSignals(step=5, node="m", previous_tier=0, previous_step_ok=False), 1, "failed"),
        (StepSignals(step=5, node="m", forced=7), 2, "forced"),
        (StepSignals(step=5, node="m", hint=1), 1, "hint"),
    ]
    for signals, tier, word in cases:
        decision = p.choose(signals, 3)
        assert decision.tier == tier and word in decision.reason, (signals, decision)


def test_named_tiers_load_lazily_within_a_memory_budget() -> None:
    loaded: list[str] = []
    closed: list[str] = []

    class Sized(ScriptedModel):
        memory_bytes = 600

        def close(self) -> None:
            closed.append(self.name)

    def loader(name: str) -> ScriptedModel:
        loaded.append(name)
        return Sized([], name=name)

    lad = ModelLadder(["a", "b"], loader=loader, memory_budget_bytes=1000)
    assert loaded == []
    lad.model(0)
    lad.model(0)
    assert loaded == ["a"]
    lad.model(1)
    assert loaded == ["a", "b"] and closed == ["a"]
    lad.model(0)
    assert closed == ["a", "b"]


def test_tool_node_of_custom_graph_escalates_via_shared_signals(store: RunStore) -> None:
    lad, small, big = ladder([call("flaky", x=1), call("flaky", x=2)], [reply("stop")])
    g = Graph(AgentState, model=lad, max_steps=10)
    g.add_node("m", ModelNode(tools=[flaky])).add_node("t", ToolNode(tools=[flaky]))
    g.add_conditional_edges("m", lambda s: "t" if s.messages[-1].tool_calls else END, ["t", END])
    g.add_edge("t", "m")
    with small, big:
        result = run_sync(
            Runner(g.build(), store=store).arun("x", AgentState(messages=[Message.user("x")]))
        )
    assert [t for t, _ in tiers_and_reasons(store, result.run_id)] == [0, 0, 1]


def test_untooled_first_answer_is_redone_one_tier_up(store: RunStore) -> None:
    lad, small, big = ladder([reply("It is 12, I think."), reply("12")], [call("add", a=5, b=7)])
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("5+7")
    chosen = tiers_and_reasons(store, result.run_id)
    assert chosen[1] == (
        1,
        "escalate within the step: answered without using any of the tools offered",
    )
    assert result.answer == "12"
    # the small model's rejected answer never entered the conversation
    assert all("I think" not in m.content for m in result.state.messages)


def test_empty_and_truncated_replies_are_redone(store: RunStore) -> None:
    from agentkit.models._messages import ModelResponse

    cut = Turn(ModelResponse(content="The answer is", finish_reason="length"))
    lad, small, big = ladder(
        [
            call("add", a=1, b=1),
            reply("   "),
        ],
        [reply("2")],
    )
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("1+1")
    assert "the reply was empty" in tiers_and_reasons(store, result.run_id)[-1][1]
    lad, small, big = ladder([call("add", a=1, b=1), cut], [reply("2")])
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("1+1")
    assert "cut off at the token limit" in tiers_and_reasons(store, result.run_id)[-1][1]
    assert result.answer == "2"


def test_self_consistency_agreement_stays_cheap(store: RunStore) -> None:
    small = ScriptedModel([call("add", a=2, b=2)] * 3 + [reply("4")] * 3, name="small")
    big = ScriptedModel([], name="big")
    lad = ModelLadder([small, big], self_consistency=3)
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("2+2")
    assert result.answer == "4" and result.tiers == {"small": 2}
    assert len(small.requests) == 6  # three samples per model step


def test_self_consistency_disagreement_escalates(store: RunStore) -> None:
    small = ScriptedModel(
        [call("add", a=2, b=2), call("add", a=2, b=3), call("add", a=1, b=2)] + [reply("4")] * 3,
        name="small",
    )
    big = ScriptedModel([call("add", a=2, b=2)], name="big")
    lad = ModelLadder([small, big], self_consistency=3)
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("2+2")
    reasons = [r for _, r in tiers_and_reasons(store, result.run_id)]
    assert "samples disagree" in reasons[1]
    assert result.answer == "4"


def test_several_strikes_in_one_step_are_one_graded_response() -> None:
    from agentkit.detection import DetectorConfig, LoopDetector, ResponsePlan, StepObservation
    from agentkit.runtime._strikes import StrikeBook

    book = StrikeBook(ResponsePlan(sequence=("nudge", "stop")), DetectorConfig())
    detector = LoopDetector()
    strikes = []
    for i in range(1, 5):
        strikes += detector.observe(
            StepObservation(index=i, tool_calls=(("f", {"a": 1}),), results=(("same", False),))
        )
    assert len(strikes) >= 1
    action = book.answer(strikes * 3, can_escalate=False)
    assert action.response == "nudge" and book.count == 1
    assert action.strike_number == 1 and len(action.strikes) == 3 * len(strikes)


def test_an_answer_echoing_tool_markup_is_redone(store: RunStore) -> None:
    lad, small, big = ladder(
        [call("add", a=2, b=2), reply("<tool_response>\n4\n</tool_response>")], [reply("4")]
    )
    with small, big:
        result = Agent(lad, tools=[add], store=store, answer_now=False).run("2+2")
    assert "repeats tool markup" in tiers_and_reasons(store, result.run_id)[-1][1]
    assert result.answer == "4"


def test_an_answer_echoing_tool_markup_is_asked_again_before_escalating(store: RunStore) -> None:
    lad, small, big = ladder(
        [call("add", a=2, b=2), reply("<tool_response>\n4\n</tool_response>"), reply("4")],
        [],
    )
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("2+2")
    asked = [e for _, e in store.events(result.run_id) if e.type == "answer_requested"]
    assert len(asked) == 1 and "markup" in asked[0].reason
    assert small.tool_choices[-1] == "none"
    assert result.ok and result.answer == "4" and result.escalations == 0


def test_a_tier_that_keeps_failing_is_skipped_for_the_rest_of_the_run() -> None:
    p = DefaultPolicy(give_up_after=2)
    once = StepSignals(step=5, node="m", previous_tier=1, escalated_from={0: 1})
    assert p.choose(once, 3).tier == 0
    twice = StepSignals(step=5, node="m", previous_tier=1, escalated_from={0: 2})
    decision = p.choose(twice, 3)
    assert decision.tier == 1 and "failed repeatedly" in decision.reason
    both = StepSignals(step=5, node="m", previous_tier=2, escalated_from={0: 2, 1: 3})
    assert p.choose(both, 3).tier == 2


def test_run_counts_escalations_per_tier(store: RunStore) -> None:
    # tier 0 failed once and give_up_after=1: the next step starts on tier 1
    lad, small, big = ladder([reply("guess")], [call("add", a=1, b=1), reply("2")])
    policy = DefaultPolicy(give_up_after=1)
    lad = ModelLadder([small, big], policy=policy)
    with small, big:
        result = Agent(lad, tools=[add], store=store).run("1+1")
    chosen = tiers_and_reasons(store, result.run_id)
    assert chosen[0][0] == 0 and chosen[1][0] == 1
    assert chosen[-1] == (1, "tiers below 1 failed repeatedly in this run")
    assert result.answer == "2"


def test_a_saved_policy_loads_back_from_its_own_section(tmp_path: Any) -> None:
    import json

    import pytest

    from agentkit import ConfigError

    path = tmp_path / "policy.json"
    fitted = DefaultPolicy(answer_confidence=0.42, base_tier=1, expect_tool_use=False)
    fitted.to_file(path, fit={"cases": 16})
    assert DefaultPolicy.from_file(path) == fitted
    # a calibration file holds one policy per suite, each in a section of its own
    both = {"policy-gsm": {"base_tier": 1}, "policy-tasks": {"low_confidence": 0.2}}
    path.write_text(json.dumps(both))
    assert DefaultPolicy.from_file(path, section="policy-tasks") == DefaultPolicy(
        low_confidence=0.2
    )
    assert DefaultPolicy.from_file(path, section="policy-gsm").base_tier == 1
    path.write_text(json.dumps({"policy": {"low_confidence": 0.2, "eagerness": 3}}))
    with pytest.raises(ConfigError, match="unknown fields \\['eagerness'\\]"):
        DefaultPolicy.from_file(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read a ladder policy"):
        DefaultPolicy.from_file(path)
