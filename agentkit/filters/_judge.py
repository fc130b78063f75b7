"""A model as a classifier: a local GGUF model answers a yes/no question about the text.

The judge does not sample. It asks the model for the log-probability of each fixed
answer (``choice_logprobs``: "yes", "Yes", "no", "No" as the whole reply) and compares
``p(yes)``, renormalised over those answers, with a threshold. That is the distribution
a grammar allowing only those answers would sample from, read off exactly, and the
threshold can be fitted on labelled data.

The model is loaded through ``agentkit.get_model``, so a judge on the agent's own model
shares its weights (one copy in memory) and its KV cache: the judge's instructions come
first and stay byte-identical between calls, so only the text under judgement is
evaluated each time. The question goes before the text (cached) and is repeated after it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from .._errors import ConfigError
from ..models._messages import Message
from ._base import Filter, in_worker
from ._verdict import Action, Subject, Verdict

__all__ = ["ChoiceScorer", "JudgeStats", "ModelJudge"]

YES = ("yes", "Yes")
NO = ("no", "No")
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
SYSTEM = (
    "You are a careful content classifier. You read a text and answer one yes-or-no "
    "question about it. Answer with one word: yes or no."
)


@runtime_checkable
class ChoiceScorer(Protocol):
    """A model that can score fixed replies (LlamaCppModel, ScriptedModel)."""

    def choice_logprobs(
        self, messages: Sequence[Message], choices: Sequence[str]
    ) -> dict[str, float]:
        """The log-probability of each choice as the whole assistant reply."""
        ...


@dataclass
class JudgeStats:
    """What a judge has cost so far: calls, prompt tokens and seconds."""

    calls: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0


class ModelJudge(Filter):
    """Asks ``model`` a yes/no ``question`` about each subject; when the probability of
    the ``flag_on`` answer ("yes" by default) reaches ``threshold`` the verdict is
    ``on_yes`` (block by default).

    Small models lean to one answer: the 0.5B Qwen coder ranks injected text better
    when asked whether a text is ordinary (``flag_on="no"``) than whether it gives
    orders (bench/results/filters.md). Fit ``threshold`` on labelled examples.

    ``model`` is a catalog name, a GGUF path, or a loaded model with
    ``choice_logprobs``. Texts longer than ``max_chars`` are judged on their beginning
    and end. The model loads on first use (``warm_up`` loads it now).
    """

    name = "judge"

    def __init__(
        self,
        question: str,
        *,
        model: str | os.PathLike[str] | ChoiceScorer = DEFAULT_MODEL,
        threshold: float = 0.5,
        on_yes: Action = "block",
        flag_on: Literal["yes", "no"] = "yes",
        system_prompt: str = SYSTEM,
        max_chars: int = 3000,
        timeout: float | None = 60.0,
        **options: Any,
    ) -> None:
        if not question.strip():
            raise ConfigError("ModelJudge needs a yes/no question")
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"ModelJudge: threshold must be between 0 and 1, got {threshold}")
        if flag_on not in ("yes", "no"):
            raise ConfigError(f"ModelJudge: flag_on must be 'yes' or 'no', got {flag_on!r}")
        if on_yes == "pass":
            raise ConfigError("ModelJudge: on_yes='pass' would never act")
        self.question = question.strip()
        self.threshold = threshold
        self.on_yes: Action = on_yes
        self.flag_on = flag_on
        self.system_prompt = system_prompt
        self.max_chars = max_chars
        self.stats = JudgeStats()
        self._spec = model
        self._model: ChoiceScorer | None = model if isinstance(model, ChoiceScorer) else None
        self._lock = threading.Lock()
        super().__init__(timeout=timeout, **options)

    async def check(self, subject: Subject) -> Verdict:
        return await in_worker(self.check_now, subject)

    def check_now(self, subject: Subject) -> Verdict:
        """``check``, synchronously."""
        p_yes = self.probability(subject)
        p = p_yes if self.flag_on == "yes" else 1.0 - p_yes
        if p < self.threshold:
            return Verdict.ok()
        said = f"p({self.flag_on}) = {p:.2f} >= {self.threshold:g}"
        reason = f"judge: {said} for {self.question!r}"
        return Verdict(
            self.on_yes, reason, feedback=f"A reviewer flagged it ({self.question})", score=p
        )

    def probability(self, subject: Subject) -> float:
        """p(yes) for one subject, renormalised over the yes and no answers."""
        model = self._loaded()
        messages = self.messages(subject)
        started = time.perf_counter()
        scores = model.choice_logprobs(messages, [*YES, *NO])
        seconds = time.perf_counter() - started
        count = getattr(model, "count_tokens", None)
        tokens = int(count(messages)) if callable(count) else 0
        with self._lock:
            self.stats.calls += 1
            self.stats.prompt_tokens += tokens
            self.stats.seconds += seconds
        yes = _logsumexp([scores[c] for c in YES])
        return math.exp(yes - _logsumexp(list(scores.values())))

    def messages(self, subject: Subject) -> list[Message]:
        """The judge's prompt: instructions and question first (a stable, cached prefix)."""
        text = subject.text
        if subject.target == "tool_call":
            text = f"A call of the tool {subject.tool} with the arguments {subject.text}"
        if len(text) > self.max_chars:
            half = self.max_chars // 2
            text = f"{text[:half]}\n[...]\n{text[-half:]}"
        return [
            Message.system(self.system_prompt),
            Message.user(
                f"Question: {self.question}\n\nText:\n<<<\n{text}\n>>>\n\n"
                f"{self.question} Answer yes or no."
            ),
        ]

    def warm_up(self) -> None:
        """Load the judge's model now (shared through agentkit's model registry)."""
        self._loaded()

    def _loaded(self) -> ChoiceScorer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from ..models._registry import get_model

                    spec = self._spec
                    if isinstance(spec, ChoiceScorer):  # pragma: no cover - set in __init__
                        self._model = spec
                    else:
                        self._model = get_model(spec)
        return self._model


def _logsumexp(values: list[float]) -> float:
    peak = max(values)
    if peak == -math.inf:
        return peak
    return peak + math.log(sum(math.exp(v - peak) for v in values))
