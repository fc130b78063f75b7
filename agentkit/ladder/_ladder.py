"""A ladder of model tiers, cheapest first: loading, memory budget, sizes and speeds.

The ladder holds the models; which tier takes a step is decided per run by the
``TierController`` (``_controller``) with the ladder's policy (``_policy``).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .._errors import ConfigError
from ..models._messages import Usage
from ..models._protocol import ChatModel
from ._policy import DefaultPolicy, LadderPolicy

__all__ = ["ModelLadder", "StepCost", "as_ladder", "compute_of"]

ModelLoader = Callable[[str], ChatModel]

# Measured on 2 CPU cores (DESIGN.md): prompt and generated tokens per second, used to
# estimate what a step would have taken on a tier that never ran it.
_KNOWN_SPEEDS: dict[int, tuple[float, float]] = {
    135_000_000: (330.0, 105.0),
    500_000_000: (150.0, 25.0),
    1_500_000_000: (80.0, 14.0),
}


def compute_of(usage: Usage, parameters: int) -> float:
    """Billions of parameters times the tokens that went through the model.

    Prompt tokens reused from the KV cache did not go through it and are not counted.
    """
    return (usage.evaluated_tokens + usage.completion_tokens) * parameters / 1e9


@dataclass(frozen=True)
class StepCost:
    """The compute of one model call, and estimates of the same call on the largest tier."""

    compute: float
    top_tier_compute: float
    top_tier_seconds: float


@dataclass
class _Tier:
    source: ChatModel | str
    model: ChatModel | None = None
    gen_speed: float | None = None
    known_parameters: int | None = None


@dataclass
class ModelLadder:
    """Model tiers, cheapest first. Tiers given by name load lazily on first use and
    stay loaded while they fit ``memory_budget_bytes``; beyond it the least recently used
    other tier is closed."""

    tiers: Sequence[ChatModel | str]
    policy: LadderPolicy = field(default_factory=DefaultPolicy)
    loader: ModelLoader | None = None
    memory_budget_bytes: int | None = None
    self_consistency: int = 1
    """Sample this many cheap answers for a step and escalate when they disagree."""
    _tiers: list[_Tier] = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _used: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ConfigError("a ModelLadder needs at least one tier")
        if self.self_consistency < 1:
            raise ConfigError("self_consistency must be at least 1")
        self._tiers = [_Tier(t, None if isinstance(t, str) else t) for t in self.tiers]
        if any(isinstance(t, str) for t in self.tiers) and self.loader is None:
            # Catalog names and .gguf paths load in process, "http://...#model" remotely.
            from ..models._registry import load_tier

            self.loader = load_tier

    def __len__(self) -> int:
        return len(self._tiers)

    def tier_name(self, index: int) -> str:
        t = self._tiers[index]
        return t.model.name if t.model is not None else str(t.source)

    def model(self, index: int) -> ChatModel:
        """The model of a tier, loading it (and evicting others over budget) if needed."""
        with self._lock:
            tier = self._tiers[index]
            if tier.model is None:
                if self.loader is None:
                    raise ConfigError(
                        f"tier {index} is named {tier.source!r} but the ladder has no loader"
                    )
                self._evict_for(index)
                tier.model = self.loader(str(tier.source))
            if index in self._used:
                self._used.remove(index)
            self._used.append(index)
            return tier.model

    def load(self, tiers: Sequence[int] | None = None) -> ModelLadder:
        """Load tiers now (all by default), ahead of timed work; returns the ladder.

        Tiers load lazily otherwise, on the first step that needs them. Under a
        ``memory_budget_bytes`` that cannot hold them all, the later ones evict the
        earlier ones, as they would at run time.
        """
        for index in range(len(self)) if tiers is None else tiers:
            if not 0 <= index < len(self):
                raise ConfigError(f"the ladder has tiers 0..{len(self) - 1}; there is no {index}")
            self.model(index)
        return self

    @property
    def names(self) -> list[str]:
        """The tiers' names, cheapest first."""
        return [self.tier_name(i) for i in range(len(self))]

    def cost(self, index: int, usage: Usage) -> StepCost:
        """What a call on a tier cost, and the estimate for the largest tier."""
        top = len(self) - 1
        return StepCost(
            compute=compute_of(usage, self.tier_parameters(index)),
            top_tier_compute=compute_of(usage, self.tier_parameters(top)),
            top_tier_seconds=self.estimated_seconds(
                top, usage.evaluated_tokens, usage.completion_tokens
            ),
        )

    def _evict_for(self, index: int) -> None:
        if self.memory_budget_bytes is None:
            return
        while (
            self._loaded_bytes() > 0
            and self._loaded_bytes() + self._size(index) > self.memory_budget_bytes
        ):
            victims = [
                i
                for i in self._used
                if i != index
                and self._tiers[i].model is not None
                and isinstance(self._tiers[i].source, str)
            ]
            if not victims:
                return
            victim = self._tiers[victims[0]]
            close = getattr(victim.model, "close", None)
            if callable(close):
                close()
            victim.model = None
            self._used.remove(victims[0])

    def _size(self, index: int) -> int:
        """Bytes a tier holds (loaded) or will hold (its file size, else a guess from the
        tiers already loaded)."""
        t = self._tiers[index]
        model = t.model
        if model is not None:
            return int(getattr(model, "memory_bytes", model.parameters))
        if _is_url(str(t.source)):
            return 0  # a remote tier's weights take no memory here
        size = _file_size_of(str(t.source))
        if size:
            return size
        loaded = [self._size(i) for i, other in enumerate(self._tiers) if other.model]
        return max(loaded, default=0)

    def _loaded_bytes(self) -> int:
        return sum(self._size(i) for i, t in enumerate(self._tiers) if t.model is not None)

    def tier_parameters(self, index: int) -> int:
        """Parameter count of a tier without loading it (catalog or GGUF header)."""
        t = self._tiers[index]
        if t.model is not None:
            return t.model.parameters
        if t.known_parameters is None:
            t.known_parameters = _parameters_of(str(t.source))
        return t.known_parameters

    def record_speed(self, index: int, completion: int, seconds: float) -> None:
        """Keep a running estimate of a tier's speeds from real calls."""
        if seconds <= 0 or completion <= 0:
            return
        t = self._tiers[index]
        gen = completion / seconds
        t.gen_speed = gen if t.gen_speed is None else 0.7 * t.gen_speed + 0.3 * gen

    def estimated_seconds(self, index: int, evaluated: int, completion: int) -> float:
        """Seconds the given tokens would take on a tier (measured or catalog speeds)."""
        t = self._tiers[index]
        params = self.tier_parameters(index)
        prompt_speed, gen_speed = _nearest_speeds(params)
        gen_speed = t.gen_speed or gen_speed
        return evaluated / prompt_speed + completion / gen_speed


def _nearest_speeds(parameters: int) -> tuple[float, float]:
    if parameters <= 0:
        return _KNOWN_SPEEDS[500_000_000]
    best = min(_KNOWN_SPEEDS, key=lambda p: abs(math.log(p) - math.log(parameters)))
    prompt, gen = _KNOWN_SPEEDS[best]
    # Scale inversely with size beyond the measured range (a 7B model is ~5x slower
    # than a 1.5B one on the same cores).
    factor = best / parameters
    return prompt * factor, gen * factor


def _file_size_of(name_or_path: str) -> int:
    from ..models._catalog import list_models

    for entry in list_models():
        if entry.name == name_or_path:
            return int(entry.size_bytes)
    try:
        return os.path.getsize(name_or_path)
    except OSError:
        return 0


def _is_url(spec: str) -> bool:
    return spec.strip().lower().startswith(("http://", "https://"))


def _parameters_of(name_or_path: str) -> int:
    from ..models._catalog import list_models

    if _is_url(name_or_path):  # "http://host:port/v1#model": what the model name says
        from ..models._openai import parse_remote_spec, spec_parameters

        return spec_parameters(parse_remote_spec(name_or_path)[1])

    for entry in list_models():
        if entry.name == name_or_path:
            return int(entry.parameters)
    try:
        from ..models._gguf import inspect_gguf

        return inspect_gguf(name_or_path).parameter_count
    except Exception:  # an unreadable path is reported when the tier loads
        return 0


def as_ladder(model: ChatModel | ModelLadder) -> ModelLadder:
    return model if isinstance(model, ModelLadder) else ModelLadder([model])
