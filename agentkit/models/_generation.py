"""The sampling side of one generation: grammar, decision points, stop rules and text.

A ``TurnDecoder`` is fed the logits of each position and answers with the next token, or
with None once the turn is over (``finish`` says why). It knows nothing of how the logits
were computed, so one sequence of a batch and a lone generation use it the same way.

A tool-enabled turn in ``"auto"`` mode has two kinds of decision points, taken from the
model's own probabilities with the grammar applied (see ``ToolChoice``):

- at the first token, call a tool or answer in text: the probability of calling is the
  mass of the tokens the calls grammar allows, against all tokens either branch allows.
  The turn then continues under the chosen branch's grammar alone;
- when the model would end the turn after a complete call: the probability of going on
  is the mass of the allowed tokens other than the end of the turn.
"""

from __future__ import annotations

import codecs
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ._messages import Decision, FinishReason, TokenLogprob
from ._protocol import Sampling, TokenCallback, ToolChoice
from ._sampler import Sampler

__all__ = ["TurnDecoder", "TurnGrammars", "VocabSide"]

_START_MASKS = 64
"""Grammars whose first-token masks a model keeps (one per tool set and plan, roughly)."""


class VocabSide(Protocol):
    """What a decoder needs of its model's vocabulary."""

    vocab: Any
    n_vocab: int
    markup_tokens: npt.NDArray[np.bool_]
    """Tokens that are tool-call markup on their own (``<tool_call>``, ...)."""
    start_masks: dict[str, npt.NDArray[np.bool_]]
    """The tokens each grammar allows first, by grammar text: filled by the decoders."""

    def ends_turn(self, token: int) -> bool: ...

    def token_bytes(self, token: int) -> bytes: ...


@dataclass(frozen=True)
class TurnGrammars:
    """The grammars of a tool-enabled turn: calls only, and a plain-text answer only."""

    calls: str
    text: str


@dataclass
class TurnDecoder:
    """Chooses the tokens of one turn; call ``close`` when done."""

    side: VocabSide
    sampling: Sampling
    seed: int
    grammars: TurnGrammars | None
    choice: ToolChoice
    max_tokens: int
    on_token: TokenCallback | None = None
    cancel: threading.Event | None = None
    plan: Decision | None = None
    """A plan asked before the turn: no call (text), or calls (as many as it asked for,
    which the calls grammar enforces)."""
    finish: FinishReason = "length"
    logprobs: list[TokenLogprob] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    """The generated tokens, in order (the KV cache holds all but possibly the last)."""
    _pieces: list[str] = field(default_factory=list)
    _sampler: Sampler | None = None
    _branch: str = ""
    _calls: int = 0
    _first_allowed: npt.NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        g = self.grammars
        if g is None:
            self._branch = "plain"
        elif self.choice.mode == "required":
            self._branch = "calls"
        elif self.choice.mode == "none":
            self._branch = "text"
        elif self.plan is not None:
            self._branch = "calls" if self.plan.taken else "text"
            self.decisions.append(self.plan)
        if self._branch:
            self._sampler = self._new_sampler(self._branch_grammar(self._branch))

    @property
    def branch(self) -> str:
        """``calls`` or ``text`` once the turn chose (``plain`` without tools)."""
        return self._branch

    @property
    def text(self) -> str:
        return "".join(self._pieces)

    def next(self, logits: npt.NDArray[np.float32]) -> int | None:
        """The token to evaluate next, or None when the turn is over."""
        if self.cancel is not None and self.cancel.is_set():
            self.finish = "cancelled"
            return None
        if len(self.logprobs) >= self.max_tokens:
            self.finish = "length"
            return None
        first = not self.logprobs
        if self._sampler is None:
            self._decide_branch(logits)
        assert self._sampler is not None  # set by _decide_branch
        # The first token's probability is read among the tokens its branch allows: in a
        # tools-off turn the model may put most of its mass on a call it may not make,
        # and that says nothing of how sure it is of the answer it gives instead.
        allowed = None
        if first and self._branch != "plain":
            allowed = self._first_allowed
            if allowed is None:
                allowed = self._start_mask(self._branch_grammar(self._branch))
        token = self._sample(logits)
        if token is None:
            self.finish = "stop"
            return None
        return self._emit(token, logits, allowed)

    def close(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
        tail = self._utf8.decode(b"", final=True)
        if tail:
            self._pieces.append(tail)
            if self.on_token is not None and self.finish in ("stop", "length"):
                self.on_token(tail)

    # -- internals --------------------------------------------------------------------

    def _branch_grammar(self, branch: str) -> str | None:
        g = self.grammars
        if g is None or branch == "plain":
            return None
        return g.calls if branch == "calls" else g.text

    def _new_sampler(self, grammar: str | None) -> Sampler:
        return Sampler(self.side.vocab, self.side.n_vocab, self.sampling, self.seed, grammar)

    def _decide_branch(self, logits: npt.NDArray[np.float32]) -> None:
        """The first token of an "auto" turn: call or answer, by the model's probabilities."""
        g = self.grammars
        assert g is not None
        may_call, may_answer = self._start_mask(g.calls), self._start_mask(g.text)
        probs = _softmax(logits)
        either = float(probs[may_call | may_answer].sum())
        p_call = float(probs[may_call].sum()) / either if either > 0 else 0.0
        taken = p_call >= self.choice.call_threshold
        self.decisions.append(Decision(kind="call", probability=p_call, taken=taken))
        self._branch = "calls" if taken else "text"
        self._first_allowed = may_call if taken else may_answer
        self._sampler = self._new_sampler(self._branch_grammar(self._branch))

    def _start_mask(self, grammar: str | None) -> npt.NDArray[np.bool_]:
        """The tokens ``grammar`` allows first (read-only).

        That set depends on the grammar alone, and masking the whole vocabulary through
        llama.cpp's grammar costs more than decoding a token of a small model; a turn
        needs it once or twice before its first token, on the decode thread every other
        sequence waits for. So it is worked out once per grammar and model.
        """
        if grammar is None:
            return np.ones(self.side.n_vocab, dtype=bool)
        cache = self.side.start_masks
        mask = cache.get(grammar)
        if mask is None:
            sampler = self._new_sampler(grammar)
            try:
                mask = sampler.allowed(np.zeros(self.side.n_vocab, dtype=np.float32))
            finally:
                sampler.close()
            mask.flags.writeable = False
            while len(cache) >= _START_MASKS:
                cache.pop(next(iter(cache)), None)
            cache[grammar] = mask
        return mask

    def _sample(self, logits: npt.NDArray[np.float32]) -> int | None:
        sampler = self._sampler
        assert sampler is not None
        # A tool-enabled turn must say something: a control token that would end it
        # empty (the 1.5B sometimes starts with <|im_start|>, whose text passes the
        # grammar) is refused and another token sampled.
        refuse: Callable[[int], bool] | None = (
            self.side.ends_turn if self.grammars is not None and not self._pieces else None
        )
        banned = self.side.markup_tokens if self._branch == "text" else None
        token = sampler.pick(logits, refuse, banned)
        if token is not None and self._branch == "calls" and self.side.ends_turn(token):
            token = self._more_calls(sampler, logits, token)
        if token is None:
            return None
        sampler.accept(token)
        return None if self.side.ends_turn(token) else token

    def _more_calls(self, sampler: Sampler, logits: npt.NDArray[np.float32], end: int) -> int:
        """The model would end the turn after its calls: go on if that is likely enough.

        The grammar allows the end of the turn only where the calls so far are complete.
        """
        allowed = sampler.allowed(logits)
        allowed[end] = True
        ending = np.zeros_like(allowed)
        for t in np.flatnonzero(allowed):
            ending[t] = self.side.ends_turn(int(t))
        probs = _softmax(logits)
        mass = float(probs[allowed].sum())
        more = allowed & ~ending
        p_more = float(probs[more].sum()) / mass if mass > 0 else 0.0
        taken = bool(more.any()) and p_more >= self.choice.more_calls_threshold
        self.decisions.append(Decision(kind="more_calls", probability=p_more, taken=taken))
        if not taken:
            return end
        return int(np.argmax(np.where(more, logits, -np.inf)))

    def _emit(
        self,
        token: int,
        logits: npt.NDArray[np.float32],
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> int | None:
        raw = self.side.token_bytes(token)
        self.ids.append(token)
        self.logprobs.append(
            TokenLogprob(
                token=raw.decode("utf-8", errors="replace"),
                logprob=_logprob(logits, token, allowed),
            )
        )
        piece = self._utf8.decode(raw)
        if piece:
            self._pieces.append(piece)
            if self.on_token is not None and self.on_token(piece):
                self.finish = "stopped"
                return None
        if len(self.logprobs) >= self.max_tokens:
            self.finish = "length"
            return None
        return token


def _softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    shifted = logits.astype(np.float64) - float(logits.max())
    e = np.exp(shifted)
    return e / e.sum()  # type: ignore[no-any-return]


def _logprob(
    logits: npt.NDArray[np.float32],
    token: int,
    allowed: npt.NDArray[np.bool_] | None = None,
) -> float:
    """log softmax(logits)[token], computed stably; among ``allowed`` tokens if given."""
    chosen = float(logits[token])
    pool = logits[allowed] if allowed is not None and allowed[token] else logits
    peak = float(pool.max())
    norm = peak + float(np.log(np.exp(pool - peak).sum()))
    return min(chosen - norm, 0.0)
