"""One generation's sampler: llama.cpp's sampler chain plus an optional grammar."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from .._errors import ModelError
from ._native import recent_log
from ._protocol import Sampling

__all__ = ["Sampler"]

_REFUSE_TRIES = 8


class Sampler:
    """One generation's sampler: llama.cpp's sampler chain plus an optional grammar.

    The grammar is checked the way llama.cpp's own ``common_sampler`` does it: sample
    from the unconstrained distribution first and ask the grammar about that one token;
    only when it is refused, mask the whole vocabulary and sample again. llama-cpp-python's
    ``generate`` masks the whole vocabulary at every token instead, which halves the speed
    of a 135M model. Owns its llama.cpp samplers; call ``close``.
    """

    def __init__(
        self, vocab: Any, n_vocab: int, sampling: Sampling, seed: int, grammar: str | None
    ) -> None:
        self._n_vocab = n_vocab
        self._chain = llama_cpp.llama_sampler_chain_init(
            llama_cpp.llama_sampler_chain_default_params()
        )
        steps = []
        if sampling.repeat_penalty != 1.0:
            steps.append(
                # llama.cpp as vendored by llama-cpp-python 0.3.36 takes n_vocab first.
                llama_cpp.llama_sampler_init_penalties(
                    n_vocab, 64, sampling.repeat_penalty, 0.0, 0.0
                )
            )
        if sampling.temperature <= 0.0:
            steps.append(llama_cpp.llama_sampler_init_greedy())
        else:
            steps += [
                llama_cpp.llama_sampler_init_top_k(sampling.top_k),
                llama_cpp.llama_sampler_init_top_p(sampling.top_p, 1),
                llama_cpp.llama_sampler_init_min_p(sampling.min_p, 1),
                llama_cpp.llama_sampler_init_temp(sampling.temperature),
                llama_cpp.llama_sampler_init_dist(seed),
            ]
        for step in steps:
            llama_cpp.llama_sampler_chain_add(self._chain, step)  # the chain owns it now
        self._grammar = None
        if grammar is not None:
            self._grammar = llama_cpp.llama_sampler_init_grammar(
                vocab, grammar.encode("utf-8"), b"root"
            )
            if not self._grammar:
                self.close()
                raise ModelError(f"llama.cpp rejected a tool grammar: {recent_log()}")
        # One candidates buffer, viewed through numpy so filling it is a vector copy.
        self._buffer = (llama_cpp.llama_token_data * n_vocab)()
        self._view = np.ctypeslib.as_array(self._buffer)
        self._ids = np.arange(n_vocab, dtype=np.intc)
        self._one = (llama_cpp.llama_token_data * 1)()

    def _apply(self, sampler: Any, array: Any) -> None:
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))

    def _candidates(self, logits: npt.NDArray[np.float32]) -> Any:
        # Samplers sort and truncate in place, so ids are rewritten every time.
        self._view["id"] = self._ids
        self._view["logit"] = logits
        self._view["p"] = 0.0
        return llama_cpp.llama_token_data_array(
            data=self._buffer, size=self._n_vocab, selected=-1, sorted=False
        )

    def _grammar_allows(self, token: int) -> bool:
        self._one[0].id = llama_cpp.llama_token(token)
        self._one[0].logit = 1.0
        single = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._apply(self._grammar, single)
        return bool(np.isfinite(self._one[0].logit))

    def allowed(self, logits: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
        """Which tokens the grammar allows next (all of them without a grammar).

        Masks the whole vocabulary once, without accepting anything: for the few
        decision points of a turn, not for every token.
        """
        if self._grammar is None:
            return np.ones(self._n_vocab, dtype=bool)
        cur = self._candidates(logits)
        self._apply(self._grammar, cur)
        return np.isfinite(self._view["logit"])  # type: ignore[no-any-return]

    def sample(
        self,
        logits: npt.NDArray[np.float32],
        refuse: Callable[[int], bool] | None = None,
        banned: npt.NDArray[np.bool_] | None = None,
    ) -> int | None:
        """The next token, accepted; None when the grammar allows no token at all."""
        token = self.pick(logits, refuse, banned)
        if token is not None:
            self.accept(token)
        return token

    def pick(
        self,
        logits: npt.NDArray[np.float32],
        refuse: Callable[[int], bool] | None = None,
        banned: npt.NDArray[np.bool_] | None = None,
    ) -> int | None:
        """The next token, not yet accepted (see ``accept``); None when none is allowed.

        ``refuse`` bans tokens before they are accepted (a few tries), for choices the
        grammar cannot see, such as a control token that would end the turn empty;
        ``banned`` is a mask of tokens never to pick.
        """
        if banned is not None:
            logits = np.where(banned, -np.inf, logits).astype(np.float32)
        token: int | None = None
        for _ in range(_REFUSE_TRIES):
            token = self._pick(logits)
            if token is None or refuse is None or not refuse(token):
                break
            logits = logits.copy()
            logits[token] = -np.inf
        return token

    def accept(self, token: int) -> None:
        """Advance the grammar and the sampler chain past ``token``."""
        if self._grammar is not None:
            llama_cpp.llama_sampler_accept(self._grammar, token)
        llama_cpp.llama_sampler_accept(self._chain, token)

    def _pick(self, logits: npt.NDArray[np.float32]) -> int | None:
        cur = self._candidates(logits)
        self._apply(self._chain, cur)
        token = int(self._view["id"][cur.selected])
        if self._grammar is not None and not self._grammar_allows(token):
            cur = self._candidates(logits)
            self._apply(self._grammar, cur)
            if not np.isfinite(self._view["logit"][: cur.size]).any():
                return None
            self._apply(self._chain, cur)
            token = int(self._view["id"][cur.selected])
        return token

    def close(self) -> None:
        if self._chain:
            llama_cpp.llama_sampler_free(self._chain)
            self._chain = None
        if self._grammar:
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None
