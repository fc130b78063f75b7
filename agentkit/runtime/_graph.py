"""Graph definitions over networkx: nodes, edges, conditional routing, build-time checks.

A graph is built once (``Graph.build()``), which checks everything that can be checked
before running and raises one ConfigError listing every problem found.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, Field

from .._errors import ConfigError
from ..filters._base import Filter, FilterFunction, as_filters
from ..models._messages import Message
from ..models._protocol import ChatModel, Sampling, ToolChoice
from ._tools import Tool, as_tool

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "END",
    "AgentState",
    "CompiledGraph",
    "FunctionNode",
    "Graph",
    "ModelNode",
    "RetryPolicy",
    "ToolNode",
]

END = "__end__"
"""The name of the terminal node every path must reach."""


class AgentState(BaseModel):
    """The state of a conversation-shaped run. Subclass it to add typed fields."""

    messages: list[Message] = Field(default_factory=list)
    answer: str | None = None


S = TypeVar("S", bound=BaseModel)
StateUpdate = BaseModel | dict[str, Any] | None
NodeFunction = Callable[[Any], StateUpdate | Awaitable[StateUpdate]]
Router = Callable[[Any], str]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries with exponential backoff for transient failures of one node."""

    attempts: int = 3
    initial_delay: float = 0.2
    max_delay: float = 5.0
    retry_on: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)


@dataclass
class FunctionNode:
    """A plain Python function of the state, returning an update (model, dict or None)."""

    fn: NodeFunction
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    kind: str = field(default="function", init=False)


@dataclass
class ModelNode:
    """One model turn over ``state.messages``; tool calls land on the last message."""

    model: Any = None
    """A ChatModel or a ModelLadder; None uses the graph's default model."""
    tools: Sequence[Tool | Callable[..., Any]] = ()
    system_prompt: str | None = None
    sampling: Sampling = field(default_factory=Sampling)
    tier_hint: int | None = None
    """Ask the ladder to start this node at a given tier (an explicit escalation hint)."""
    argument_retries: int = 2
    """How often invalid tool arguments are sent back to the model within one step."""
    tool_choice: ToolChoice = field(default_factory=ToolChoice)
    """How turns decide between calling and answering (and how many calls to make)."""
    answer_now: bool = True
    """Redo a turn whose calls would add nothing (a finished call again, a tool on its own
    result, or call markup written as the answer) with the tools off, instead of running
    them: the model usually has its answer by then."""
    filters: Sequence[Filter | FilterFunction] = ()
    """Filters of this node's answers and tool calls (after the graph's), and of the task
    when the node is the entry (see agentkit.filters)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    kind: str = field(default="model", init=False)

    def __post_init__(self) -> None:
        self.tools = [as_tool(t) for t in self.tools]
        self.filters = as_filters(self.filters)

    @property
    def tool_list(self) -> list[Tool]:
        return [t for t in self.tools if isinstance(t, Tool)]

    @property
    def filter_list(self) -> list[Filter]:
        return [f for f in self.filters if isinstance(f, Filter)]


@dataclass
class ToolNode:
    """Runs every tool call on the last assistant message, concurrently."""

    tools: Sequence[Tool | Callable[..., Any]] = ()
    filters: Sequence[Filter | FilterFunction] = ()
    """Filters of this node's tool results (after the graph's) and, before they run, of
    its tool calls (see agentkit.filters)."""
    retry: RetryPolicy = field(default_factory=lambda: RetryPolicy(attempts=1))
    kind: str = field(default="tool", init=False)

    def __post_init__(self) -> None:
        self.tools = [as_tool(t) for t in self.tools]
        self.filters = as_filters(self.filters)

    @property
    def tool_list(self) -> list[Tool]:
        return [t for t in self.tools if isinstance(t, Tool)]

    @property
    def filter_list(self) -> list[Filter]:
        return [f for f in self.filters if isinstance(f, Filter)]


Node = FunctionNode | ModelNode | ToolNode


@dataclass
class _Conditional:
    router: Router
    targets: tuple[str, ...]


class Graph(Generic[S]):
    """A mutable graph definition. ``build()`` validates it into a CompiledGraph."""

    def __init__(
        self,
        state_type: type[S],
        *,
        name: str = "graph",
        model: ChatModel | Any | None = None,
        max_steps: int | None = 50,
        filters: Sequence[Filter | FilterFunction] = (),
        max_seconds: float | None = None,
    ) -> None:
        """``filters`` check the task and every model and tool node (agentkit.filters);
        ``max_seconds`` is a run's wall-clock limit (it stops mid-step, with status
        ``timed_out`` and a partial answer)."""
        self.max_seconds = max_seconds
        self.filters: list[Filter] = as_filters(filters)
        self.state_type = state_type
        self.name = name
        self.model = model
        self.max_steps = max_steps
        self._nodes: dict[str, Node] = {}
        self._edges: dict[str, str] = {}
        self._conditional: dict[str, _Conditional] = {}
        self._entry: str | None = None
        self._problems: list[str] = []

    def add_node(self, name: str, node: Node | NodeFunction) -> Graph[S]:
        if name in self._nodes:
            self._problems.append(f"node {name!r} is defined twice")
        if name == END:
            self._problems.append(f"{END!r} is reserved for the end of the graph")
        if not isinstance(node, (FunctionNode, ModelNode, ToolNode)) and not callable(node):
            self._problems.append(
                f"node {name!r} is a {type(node).__name__}, not a node or a function of the "
                "state; pass a ModelNode, a ToolNode, or a function"
            )
        self._nodes[name] = (
            node if isinstance(node, (FunctionNode, ModelNode, ToolNode)) else FunctionNode(node)
        )
        if self._entry is None:
            self._entry = name
        return self

    def set_entry(self, name: str) -> Graph[S]:
        self._entry = name
        return self

    def add_edge(self, source: str, target: str) -> Graph[S]:
        if source in self._edges or source in self._conditional:
            self._problems.append(
                f"node {source!r} has more than one outgoing edge; use "
                "add_conditional_edges to choose between targets"
            )
        self._edges[source] = target
        return self

    def add_conditional_edges(
        self, source: str, router: Router, targets: Iterable[str]
    ) -> Graph[S]:
        """``router(state)`` returns the name of the next node, one of ``targets``."""
        if source in self._edges or source in self._conditional:
            self._problems.append(f"node {source!r} has more than one set of outgoing edges")
        if not callable(router):
            self._problems.append(
                f"the router of node {source!r} is a {type(router).__name__}, not a function "
                "of the state returning the next node's name"
            )
        self._conditional[source] = _Conditional(router, tuple(targets))
        return self

    def build(self) -> CompiledGraph[S]:
        """Check the whole definition; raise one ConfigError listing every problem."""
        problems = list(self._problems)
        import networkx as nx  # on first build: it takes longer to import than agentkit

        g: nx.DiGraph[str] = nx.DiGraph()
        g.add_nodes_from(self._nodes)
        g.add_node(END)
        for source, target in self._edges.items():
            g.add_edge(source, target)
        for source, cond in self._conditional.items():
            for target in cond.targets:
                g.add_edge(source, target)
        for source in [*self._edges, *self._conditional]:
            if source not in self._nodes:
                problems.append(f"edge from unknown node {source!r}")
        for source, target in [(s, t) for s, t in g.edges]:
            if target != END and target not in self._nodes:
                problems.append(
                    f"edge {source!r} -> {target!r} points to an unknown node; "
                    f"known nodes: {', '.join(sorted(self._nodes)) or 'none'}"
                )
        if not self._nodes:
            problems.append("the graph has no nodes")
        elif self._entry not in self._nodes:
            problems.append(f"entry node {self._entry!r} does not exist")
        else:
            reachable = nx.descendants(g, self._entry) | {self._entry}
            for name in self._nodes:
                if name not in reachable:
                    problems.append(
                        f"node {name!r} cannot be reached from the entry {self._entry!r}"
                    )
            can_end = nx.ancestors(g, END) | {END}
            for name in self._nodes:
                if name in reachable and name not in can_end:
                    problems.append(
                        f"node {name!r} has no path to the end; add an edge to "
                        "END or to a node that reaches it"
                    )
            for name in self._nodes:
                if name not in self._edges and name not in self._conditional:
                    problems.append(
                        f"node {name!r} has no outgoing edge; add one (to END if "
                        "it finishes the run)"
                    )
            if self.max_steps is None and any(True for _ in nx.simple_cycles(g)):
                problems.append("the graph has a cycle but no step budget; set max_steps")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be at least 1, got {self.max_steps}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            problems.append(f"max_seconds must be positive, got {self.max_seconds}")
        problems += self._node_problems()
        if problems:
            raise ConfigError(problems)
        return CompiledGraph(self, g)

    def _node_problems(self) -> list[str]:
        problems: list[str] = []
        needs_messages = any(isinstance(n, (ModelNode, ToolNode)) for n in self._nodes.values())
        if needs_messages and "messages" not in self.state_type.model_fields:
            problems.append(
                f"state {self.state_type.__name__} has no `messages` field, which "
                "model and tool nodes need; subclass AgentState"
            )
        for name, node in self._nodes.items():
            if isinstance(node, ModelNode) and node.model is None and self.model is None:
                problems.append(
                    f"model node {name!r} has no model and the graph has no default model"
                )
            if isinstance(node, (ModelNode, ToolNode)):
                seen: set[str] = set()
                for t in node.tool_list:
                    # An Agent hands the same tools to its model and its tool node: say
                    # each problem once.
                    problems += [p for p in t.problems if p not in problems]
                    if t.name in seen:
                        problems.append(
                            f"node {name!r}: two tools are named {t.name!r}; "
                            "tool names must be unique"
                        )
                    seen.add(t.name)
                problems += _filter_problems(name, node, name == self._entry)
        return problems


_SEES = {
    "model": frozenset({"answer", "tool_call"}),
    "tool": frozenset({"tool_call", "tool_result"}),
}


def _filter_problems(name: str, node: ModelNode | ToolNode, entry: bool) -> list[str]:
    """A node's filter that checks only what the node never sees would never run."""
    sees = _SEES[node.kind] | ({"task"} if entry else frozenset())
    other = "tool" if node.kind == "model" else "model"
    return [
        f"node {name!r}: filter {f.name!r} checks only {', '.join(sorted(f.targets))}, "
        f"which a {node.kind} node never sees; give it to a {other} node or to the graph"
        for f in node.filter_list
        if not f.targets & sees
    ]


class CompiledGraph(Generic[S]):
    """A validated graph, ready to run. Immutable in practice."""

    def __init__(self, graph: Graph[S], nx_graph: nx.DiGraph[str]) -> None:
        self.name = graph.name
        self.state_type = graph.state_type
        self.model = graph.model
        self.max_steps = graph.max_steps
        self.max_seconds = graph.max_seconds
        self.filters: list[Filter] = list(graph.filters)
        self.nodes: dict[str, Node] = dict(graph._nodes)
        self.entry: str = graph._entry or ""
        self._edges = dict(graph._edges)
        self._conditional = dict(graph._conditional)
        self.nx_graph = nx_graph

    def next_node(self, current: str, state: BaseModel) -> str:
        if current in self._edges:
            return self._edges[current]
        cond = self._conditional[current]
        target = cond.router(state)
        if target not in cond.targets:
            raise ConfigError(
                f"router of node {current!r} returned {target!r}, which is not one of its "
                f"declared targets {list(cond.targets)}"
            )
        return target

    def describe(self) -> dict[str, Any]:
        """A JSON-able picture of the graph for the store and the monitor."""
        return {
            "name": self.name,
            "entry": self.entry,
            "nodes": {n: node.kind for n, node in self.nodes.items()},
            "edges": [[s, t] for s, t in self.nx_graph.edges],
        }
