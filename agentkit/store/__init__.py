"""The run store: where every run is written as it goes, and what every watcher reads.

``RunStore`` is an embedded SQLite database (WAL mode). The rows it hands out
(``RunRow``, ``StepRow``) are plain frozen data; events are in ``agentkit.events``.
"""

from ._rows import (
    CONTROL_COMMANDS,
    Batch,
    Control,
    RunRow,
    StepRow,
    ToolResult,
    control_problem,
    default_db_path,
)
from ._sqlite import SCHEMA_VERSION, RunStore

__all__ = [
    "CONTROL_COMMANDS",
    "SCHEMA_VERSION",
    "Batch",
    "Control",
    "RunRow",
    "RunStore",
    "StepRow",
    "ToolResult",
    "control_problem",
    "default_db_path",
]
