"""``Agent``: the ready tool-calling loop (model step, tool step, back until an answer)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from .._errors import ConfigError
from ..detection._config import DetectorConfig
from ..detection._plan import ResponsePlan
from ..events import Event
from ..ladder._ladder import ModelLadder
from ..models._messages import Message
from ..models._protocol import ChatModel, Sampling
from ..store._sqlite import RunStore
from ._executor import Runner
from ._graph import END, AgentState, CompiledGraph, Graph, ModelNode, ToolNode
from ._recorder import EventCallback
from ._result import RunResult
from ._tools import Tool

__all__ = ["Agent", "run_sync"]

S = TypeVar("S", bound=AgentState)
T = TypeVar("T")
ModelSpec = ChatModel | ModelLadder | str | Sequence[str]


def _resolve_model(model: ModelSpec) -> ChatModel | ModelLadder:
    if isinstance(model, str):
        return ModelLadder([model])
    if isinstance(model, ModelLadder):
        return model
    if isinstance(model, Sequence):
        return ModelLadder(list(model))
    return model


def _open_store(store: RunStore | str | os.PathLike[str] | None) -> RunStore:
    if isinstance(store, RunStore):
        return store
    return RunStore(Path(store) if store is not None else None)


def route_after_model(state: AgentState) -> str:
    """Tools when the last assistant turn called any, otherwise the end."""
    last = state.messages[-1] if state.messages else None
    return "tools" if last is not None and last.tool_calls else END


class Agent(Generic[S]):
    """A model with tools and a system prompt, looping until it gives a final answer.

    ``model`` is a ChatModel, a ModelLadder, a catalog name or GGUF path, or a list of
    them (cheapest first) for a ladder.
    """

    def __init__(
        self,
        model: ModelSpec,
        *,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        system_prompt: str | None = None,
        name: str = "agent",
        max_steps: int = 20,
        sampling: Sampling | None = None,
        state_type: type[S] = AgentState,  # type: ignore[assignment]
        store: RunStore | str | os.PathLike[str] | None = None,
        detectors: DetectorConfig | None = None,
        responses: ResponsePlan | None = None,
        argument_retries: int = 2,
        app: str | None = None,
    ) -> None:
        self.name = name
        self.state_type = state_type
        graph: Graph[S] = Graph(
            state_type, name=name, model=_resolve_model(model), max_steps=max_steps
        )
        graph.add_node(
            "model",
            ModelNode(
                tools=tools,
                system_prompt=system_prompt,
                sampling=sampling or Sampling(),
                argument_retries=argument_retries,
            ),
        )
        graph.add_node("tools", ToolNode(tools=tools))
        graph.add_conditional_edges("model", route_after_model, ["tools", END])
        graph.add_edge("tools", "model")
        self.graph: CompiledGraph[S] = graph.build()
        self._store_arg = store
        self._store: RunStore | None = store if isinstance(store, RunStore) else None
        self.detectors = detectors
        self.responses = responses
        self.app = app

    @property
    def store(self) -> RunStore:
        if self._store is None:
            self._store = _open_store(self._store_arg)
        return self._store

    def runner(self) -> Runner[S]:
        return Runner(
            self.graph,
            store=self.store,
            detectors=self.detectors,
            responses=self.responses,
            app=self.app,
        )

    def initial_state(self, task: str) -> S:
        return self.state_type(messages=[Message.user(task)])

    async def arun(
        self, task: str, *, run_id: str | None = None, on_event: EventCallback | None = None
    ) -> RunResult[S]:
        return await self.runner().arun(
            task, self.initial_state(task), run_id=run_id, on_event=on_event
        )

    def run(
        self, task: str, *, run_id: str | None = None, on_event: EventCallback | None = None
    ) -> RunResult[S]:
        """Run to the end and return how it went (never raises for model mistakes)."""
        return run_sync(self.arun(task, run_id=run_id, on_event=on_event))

    async def aresume(self, run_id: str, *, on_event: EventCallback | None = None) -> RunResult[S]:
        return await self.runner().aresume(run_id, on_event=on_event)

    def resume(self, run_id: str, *, on_event: EventCallback | None = None) -> RunResult[S]:
        """Continue a run that was interrupted, from its last completed step."""
        return run_sync(self.aresume(run_id, on_event=on_event))

    def stream(self, task: str) -> AsyncIterator[Event]:
        """Run and yield every event as it happens."""
        return self.runner().astream(task, self.initial_state(task))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from synchronous code; refuses inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise ConfigError(
        "run() was called inside a running event loop; use `await agent.arun(...)` there instead"
    )
