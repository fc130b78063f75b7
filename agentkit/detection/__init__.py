"""Repetition and mode-collapse detection, pure and free of I/O.

- ``StreamDetector``: inside one generation, stops degenerate text as it streams.
- ``LoopDetector``: across steps, the same call, cycles, the same error, no progress.
- ``ResponsePlan`` and ``respond``: the graded response to the strikes a step earned.
"""

from ._config import (
    DEFAULT_VOLATILE_FIELDS,
    DETECTORS,
    DetectorConfig,
    Strike,
    ToolDetectorOverride,
    clip,
    format_steps,
)
from ._plan import Action, ResampleSettings, Response, ResponsePlan, diagnosis, respond
from ._steps import (
    LoopDetector,
    StepObservation,
    ToolCallLike,
    canonical_arguments,
    normalise_error,
)
from ._stream import StreamDetector

__all__ = [
    "DEFAULT_VOLATILE_FIELDS",
    "DETECTORS",
    "Action",
    "DetectorConfig",
    "LoopDetector",
    "ResampleSettings",
    "Response",
    "ResponsePlan",
    "StepObservation",
    "StreamDetector",
    "Strike",
    "ToolCallLike",
    "ToolDetectorOverride",
    "canonical_arguments",
    "clip",
    "diagnosis",
    "format_steps",
    "normalise_error",
    "respond",
]
