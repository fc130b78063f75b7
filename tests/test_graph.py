"""Build-time validation: every problem is found before anything runs, all at once."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from agentkit import END, AgentState, ConfigError, Graph, ModelNode, ToolNode, tool
from agentkit.testing import ScriptedModel


class Counter(BaseModel):
    n: int = 0


def bump(state: Counter) -> dict[str, Any]:
    return {"n": state.n + 1}


@tool
def ping(host: str) -> str:
    """Ping a host."""
    return host


def problems_of(graph: Graph[Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        graph.build()
    return info.value.problems


def test_valid_graph_builds() -> None:
    g = Graph(Counter).add_node("a", bump).add_edge("a", END)
    compiled = g.build()
    assert compiled.entry == "a"
    assert compiled.describe()["edges"] == [["a", END]]


def test_unknown_edge_target() -> None:
    g = Graph(Counter).add_node("a", bump).add_edge("a", "nowhere")
    assert any("unknown node" in p and "nowhere" in p for p in problems_of(g))


def test_unreachable_node() -> None:
    g = Graph(Counter).add_node("a", bump).add_node("b", bump)
    g.add_edge("a", END).add_edge("b", END)
    assert any("'b' cannot be reached" in p for p in problems_of(g))


def test_node_without_path_to_end() -> None:
    g = Graph(Counter, max_steps=10).add_node("a", bump).add_node("b", bump)
    g.add_conditional_edges("a", lambda s: END if s.n > 2 else "b", ["b", END])
    g.add_edge("b", "b")
    assert any("'b' has no path to the end" in p for p in problems_of(g))


def test_cycle_without_step_budget() -> None:
    g = Graph(Counter, max_steps=None).add_node("a", bump)
    g.add_conditional_edges("a", lambda s: END if s.n > 2 else "a", ["a", END])
    assert any("cycle but no step budget" in p for p in problems_of(g))


def test_duplicate_tool_names() -> None:
    other = tool(name="ping")(lambda host: host)  # type: ignore[arg-type]
    g = Graph(AgentState, model=ScriptedModel([]))
    g.add_node("m", ModelNode(tools=[ping])).add_node("t", ToolNode(tools=[ping, other]))
    g.add_edge("m", "t").add_edge("t", END)
    found = problems_of(g)
    assert any("two tools are named 'ping'" in p for p in found)


def test_tool_without_schema() -> None:
    def untyped(x, y: int) -> int:  # type: ignore[no-untyped-def]
        """Add."""
        return int(x) + y

    g = Graph(AgentState, model=ScriptedModel([]))
    g.add_node("m", ModelNode(tools=[untyped])).add_edge("m", END)
    assert any("parameter 'x' has no type annotation" in p for p in problems_of(g))


def test_every_problem_reported_at_once() -> None:
    g = Graph(Counter, max_steps=None).add_node("a", bump).add_node("b", bump)
    g.add_node("c", ModelNode())
    g.add_conditional_edges("a", lambda s: "a", ["a", "ghost"])
    found = problems_of(g)
    kinds = [
        "unknown node",
        "cannot be reached",
        "no outgoing edge",
        "no `messages` field",
        "no model",
        "cycle but no step budget",
    ]
    for kind in kinds:
        assert any(kind in p for p in found), (kind, found)
    assert str(len(found)) in str(ConfigError(found))


def test_router_returning_undeclared_target_is_a_config_error() -> None:
    g = Graph(Counter).add_node("a", bump)
    g.add_conditional_edges("a", lambda s: "elsewhere", [END])
    compiled = g.build()
    with pytest.raises(ConfigError, match="not one of its declared targets"):
        compiled.next_node("a", Counter())


def test_empty_graph() -> None:
    assert any("no nodes" in p for p in problems_of(Graph(Counter)))
