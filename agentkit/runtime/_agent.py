"""``Agent``: the ready tool-calling loop (model step, tool step, back until an answer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, Generic, TypeVar

from .._errors import ConfigError
from ..detection._config import DetectorConfig
from ..detection._plan import ResponsePlan
from ..events import Event
from ..filters._base import Filter, FilterFunction
from ..ladder._ladder import ModelLadder
from ..models._messages import Message
from ..models._protocol import ChatModel, Sampling, ToolChoice
from ..store._open import StoreSpec, is_store, open_store
from ..store._protocol import Store
from ._executor import Runner
from ._graph import END, AgentState, CompiledGraph, Graph, ModelNode, ToolNode
from ._many import ManyExecutor, ResultCallback, run_many_async
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


def route_after_model(state: AgentState) -> str:
    """Tools when the last assistant turn called any, otherwise the end."""
    last = state.messages[-1] if state.messages else None
    return "tools" if last is not None and last.tool_calls else END


class Agent(Generic[S]):
    """A model with tools and a system prompt, looping until it gives a final answer.

    ``model`` is a ChatModel, a ModelLadder, a catalog name or GGUF path, or a list of
    them (cheapest first) for a ladder. ``filters`` check the task, tool results,
    tool calls and the answer, in order (see agentkit.filters).
    """

    def __init__(
        self,
        model: ModelSpec,
        *,
        tools: Sequence[Tool | Callable[..., Any]] = (),
        system_prompt: str | None = None,
        name: str = "agent",
        max_steps: int = 20,
        max_seconds: float | None = None,
        sampling: Sampling | None = None,
        state_type: type[S] = AgentState,  # type: ignore[assignment]
        store: StoreSpec = None,
        detectors: DetectorConfig | None = None,
        responses: ResponsePlan | None = None,
        argument_retries: int = 2,
        tool_choice: ToolChoice | None = None,
        answer_now: bool = True,
        app: str | None = None,
        filters: Sequence[Filter | FilterFunction] = (),
    ) -> None:
        self.name = name
        self.state_type = state_type
        graph: Graph[S] = Graph(
            state_type,
            name=name,
            model=_resolve_model(model),
            max_steps=max_steps,
            max_seconds=max_seconds,
            filters=filters,
        )
        graph.add_node(
            "model",
            ModelNode(
                tools=tools,
                system_prompt=system_prompt,
                sampling=sampling or Sampling(),
                argument_retries=argument_retries,
                tool_choice=tool_choice or ToolChoice(),
                answer_now=answer_now,
            ),
        )
        graph.add_node("tools", ToolNode(tools=tools))
        graph.add_conditional_edges("model", route_after_model, ["tools", END])
        graph.add_edge("tools", "model")
        self.graph: CompiledGraph[S] = graph.build()
        self._store_arg = store
        self._store: Store | None = store if is_store(store) else None
        self.detectors = detectors
        self.responses = responses
        self.app = app

    @property
    def store(self) -> Store:
        """The run store, opened on first use from ``store=`` (a path, a ``postgresql://``
        URL or a store; default ``$AGENTKIT_DB``), see ``agentkit.store.open_store``."""
        if self._store is None:
            self._store = open_store(self._store_arg)
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

    async def arun_many(
        self,
        tasks: Sequence[str],
        *,
        concurrency: int = 8,
        run_ids: Sequence[str] | None = None,
        on_result: ResultCallback | None = None,
        on_event: EventCallback | None = None,
        executor: ManyExecutor | None = None,
    ) -> list[RunResult[S]]:
        """Run every task, ``concurrency`` at a time; see ``run_many``."""
        return await run_many_async(
            self,
            tasks,
            concurrency=concurrency,
            run_ids=run_ids,
            on_result=on_result,
            on_event=on_event,
            executor=executor,
        )

    def run_many(
        self,
        tasks: Sequence[str],
        *,
        concurrency: int = 8,
        run_ids: Sequence[str] | None = None,
        on_result: ResultCallback | None = None,
        on_event: EventCallback | None = None,
        executor: ManyExecutor | None = None,
    ) -> list[RunResult[S]]:
        """Run every task, ``concurrency`` runs at a time; the results in task order.

        Every run is written to the store. Runs on one loaded model are decoded together
        (its scheduler batches their model calls). A run that fails, for whatever
        reason, is a ``failed`` result carrying the error; the others go on.
        ``on_result(index, result)`` is called as each run ends; ``executor`` decides
        where runs execute (default: this process).
        """
        return run_sync(
            self.arun_many(
                tasks,
                concurrency=concurrency,
                run_ids=run_ids,
                on_result=on_result,
                on_event=on_event,
                executor=executor,
            )
        )

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
