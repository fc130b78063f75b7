"""What a filter looks at (``Subject``) and what it decides (``Verdict``).

Four points of a run are filtered, two on each side of the model:

    input   task         the user's task, before the first model step
    input   tool_result  each tool result, before the model sees it
    output  answer       the model's final answer, before the user sees it
    output  tool_call    each tool call, before the tool runs

A verdict is one of: pass; rewrite or redact (with the new text and what changed); block
(with a reason); retry the model step with feedback; escalate to a larger model; stop
the run. ``docs/filters.md`` says what the runtime does with each verdict at each point.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "ACTIONS",
    "INPUT_TARGETS",
    "OUTPUT_TARGETS",
    "TARGETS",
    "Action",
    "Stage",
    "Subject",
    "Target",
    "Verdict",
    "stage_of",
]

Stage = Literal["input", "output"]
Target = Literal["task", "tool_result", "answer", "tool_call"]
Action = Literal["pass", "rewrite", "redact", "block", "retry", "escalate", "stop"]

TARGETS: frozenset[Target] = frozenset(get_args(Target))
INPUT_TARGETS: frozenset[Target] = frozenset({"task", "tool_result"})
OUTPUT_TARGETS: frozenset[Target] = frozenset({"answer", "tool_call"})
ACTIONS: frozenset[Action] = frozenset(get_args(Action))
_CHANGING: frozenset[Action] = frozenset({"rewrite", "redact"})


def stage_of(target: Target) -> Stage:
    """``input`` for what goes into the model, ``output`` for what comes out."""
    return "input" if target in INPUT_TARGETS else "output"


@dataclass(frozen=True)
class Subject:
    """One thing a filter checks: its text, and for tool calls the tool and arguments."""

    target: Target
    text: str
    """The task, the tool result or the answer; for a tool call, its arguments as JSON."""
    tool: str | None = None
    """The tool's name, for ``tool_call`` and ``tool_result``."""
    arguments: Mapping[str, Any] | None = None
    """The call's arguments, for ``tool_call``."""
    run_id: str = ""
    step: int = 0
    node: str = ""
    call_id: str | None = None
    """The tool call's id, for ``tool_call`` and ``tool_result``."""

    @property
    def stage(self) -> Stage:
        """``input`` or ``output``."""
        return stage_of(self.target)

    @classmethod
    def for_call(cls, name: str, arguments: Mapping[str, Any], **where: Any) -> Subject:
        """The subject of a tool call: its arguments, also as JSON text."""
        text = json.dumps(dict(arguments), ensure_ascii=False, sort_keys=True, default=str)
        return cls("tool_call", text, tool=name, arguments=dict(arguments), **where)


@dataclass(frozen=True)
class Verdict:
    """A filter's decision about one subject. Build one with the class methods."""

    action: Action = "pass"
    reason: str = ""
    text: str | None = None
    """The new text (rewrite, redact). With block, retry, escalate or stop: what may be
    kept of the subject instead of the original (a redacted copy), if anything."""
    arguments: Mapping[str, Any] | None = None
    """The new arguments of a tool call (rewrite, redact)."""
    changes: tuple[str, ...] = ()
    """What changed, in words that never repeat the original ("2 EMAIL_ADDRESS")."""
    feedback: str | None = None
    """For retry: what the model is told; the reason when empty."""
    score: float | None = None
    """How sure the filter is, when it has a measure (an injection score, a judge's p)."""
    details: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown verdict {self.action!r}; one of {sorted(ACTIONS)}")

    @classmethod
    def ok(cls) -> Verdict:
        """Let the subject through unchanged."""
        return _PASS

    @classmethod
    def rewrite(
        cls,
        text: str | None = None,
        *,
        changes: tuple[str, ...] | list[str] = (),
        arguments: Mapping[str, Any] | None = None,
        reason: str = "",
    ) -> Verdict:
        """Replace the subject (text, or a tool call's arguments) and say what changed."""
        return cls("rewrite", reason, text, arguments, tuple(changes))

    @classmethod
    def redact(
        cls,
        text: str | None = None,
        *,
        changes: tuple[str, ...] | list[str] = (),
        arguments: Mapping[str, Any] | None = None,
        reason: str = "",
    ) -> Verdict:
        """A rewrite that removed private data; recorded as a redaction."""
        return cls("redact", reason, text, arguments, tuple(changes))

    @classmethod
    def block(cls, reason: str, *, text: str | None = None, score: float | None = None) -> Verdict:
        """Keep the subject from going on; ``text`` is what may be recorded instead."""
        return cls("block", reason, text, score=score)

    @classmethod
    def retry(cls, feedback: str, *, reason: str = "", score: float | None = None) -> Verdict:
        """Redo the model's turn, telling it ``feedback``."""
        return cls("retry", reason or feedback, feedback=feedback, score=score)

    @classmethod
    def escalate(cls, reason: str, *, score: float | None = None) -> Verdict:
        """Redo the model's turn (or take the next one) on a larger model."""
        return cls("escalate", reason, score=score)

    @classmethod
    def stop(cls, reason: str, *, text: str | None = None, score: float | None = None) -> Verdict:
        """End the run now, with ``reason`` as its diagnosis."""
        return cls("stop", reason, text, score=score)

    @property
    def passed(self) -> bool:
        """A plain pass: nothing to record."""
        return self.action == "pass"

    @property
    def changes_subject(self) -> bool:
        """A rewrite or a redaction: the chain goes on with the new subject."""
        return self.action in _CHANGING

    @property
    def message(self) -> str:
        """What the model is told when its turn is sent back."""
        return self.feedback or self.reason or f"a filter said {self.action}"


_PASS = Verdict()
