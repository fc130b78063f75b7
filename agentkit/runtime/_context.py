"""What a step may use of its run, and the run's checkpoint.

Each kind of run state has one owner: the ``Position`` (where the run is) belongs to the
executor, the ``TierController`` to escalation, the ``StrikeBook`` to the detectors'
responses, the ``RunTotals`` to accounting. The checkpoint written with every step is
these four plus the user's state, so a killed run resumes with all of them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..detection._config import DetectorConfig
from ..detection._plan import ResponsePlan
from ..ladder._controller import TierController
from ._graph import CompiledGraph
from ._recorder import Recorder
from ._result import RunTotals
from ._strikes import StrikeBook

__all__ = ["Position", "RunContext", "Settings"]


@dataclass
class Position:
    """Where a run is: the step being run and its node."""

    step: int = 0
    node: str = ""
    budget_warned: bool = False


@dataclass(frozen=True)
class Settings:
    """A runner's settings that steps read."""

    detectors: DetectorConfig = field(default_factory=DetectorConfig)
    responses: ResponsePlan = field(default_factory=ResponsePlan)
    wind_down_steps: int = 2


@dataclass
class RunContext:
    """One run's parts, handed to every step."""

    run_id: str
    graph: CompiledGraph[Any]
    recorder: Recorder
    settings: Settings
    position: Position
    tiers: TierController
    strikes: StrikeBook
    totals: RunTotals
    replay: dict[str, tuple[str, bool]] = field(default_factory=dict)
    """Results of tool calls that finished before a resume, by call id."""
    unfinished: set[str] = field(default_factory=set)
    """Tool calls that started but never finished before a resume: outcome unknown."""
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set to stop the model call in progress (an abort, the wall-clock limit)."""
    partial: list[str] = field(default_factory=list)
    """The text the model call in progress has produced so far."""

    @property
    def step(self) -> int:
        return self.position.step

    def checkpoint_json(self, state: BaseModel, next_node: str) -> str:
        """The checkpoint written with a step: the state and every owner's data.

        The state grows every step, so pydantic writes it straight to JSON.
        """
        pos = self.position
        position = {"step": pos.step, "node": next_node, "budget_warned": pos.budget_warned}
        parts = {
            "position": position,
            "tiers": self.tiers.to_json(),
            "strikes": self.strikes.to_json(),
            "totals": self.totals.to_json(),
        }
        return f'{{"state": {state.model_dump_json()}, {json.dumps(parts)[1:]}'


def restore_parts(
    checkpoint: dict[str, Any], settings: Settings
) -> tuple[Position, TierController, StrikeBook, RunTotals]:
    """The owners' data from a checkpoint (also the flat "counters" of the first wave)."""
    flat = checkpoint.get("counters")
    position_data = checkpoint.get("position", flat or {})
    position = Position(
        step=int(position_data.get("step", 0)),
        node=str(position_data.get("node", "")),
        budget_warned=bool(position_data.get("budget_warned", False)),
    )
    tiers = TierController.from_json(checkpoint.get("tiers", flat or {}))
    strikes = StrikeBook(settings.responses, settings.detectors)
    strikes.restore(checkpoint.get("strikes", flat or {}))
    totals = RunTotals.from_json(checkpoint.get("totals", flat or {}))
    return position, tiers, strikes, totals
