"""The runtime: graphs and the ready ``Agent``, typed tools, the executor and its steps.

One step's path: ``Runner._loop`` -> ``_run_step`` -> ``run_model_step`` or
``run_tool_step`` (or a plain function) -> a ``StepRecord`` -> ``RunTotals.add`` and the
``Recorder``, the run's one writer. docs/ARCHITECTURE.md draws it.
"""

from ._agent import Agent, run_sync
from ._executor import Runner
from ._graph import (
    END,
    AgentState,
    CompiledGraph,
    FunctionNode,
    Graph,
    ModelNode,
    RetryPolicy,
    ToolNode,
)
from ._recorder import EventCallback
from ._result import RunResult, RunTotals, StepRecord
from ._schema_tools import schema_tool
from ._tools import Tool, ToolArgumentsError, tool, trim

__all__ = [
    "END",
    "Agent",
    "AgentState",
    "CompiledGraph",
    "EventCallback",
    "FunctionNode",
    "Graph",
    "ModelNode",
    "RetryPolicy",
    "RunResult",
    "RunTotals",
    "Runner",
    "StepRecord",
    "Tool",
    "ToolArgumentsError",
    "ToolNode",
    "run_sync",
    "schema_tool",
    "tool",
    "trim",
]
