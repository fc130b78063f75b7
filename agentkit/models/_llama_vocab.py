"""A GGUF file's weights and vocabulary in llama.cpp, through its raw bindings.

llama-cpp-python's high-level ``Llama`` owns exactly one context with one sequence;
the batched backend needs its own context (many sequences, one unified KV cache), so the
model is loaded here with ``llama_model_load_from_file`` and used through the vocabulary
functions directly. Everything a ``TurnDecoder`` needs of the vocabulary is ``VocabInfo``.
"""

from __future__ import annotations

import ctypes
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from ._grammar import CALL_CLOSE, CALL_OPEN

__all__ = ["LlamaWeights", "VocabInfo"]

_ALL_LAYERS = 0x7FFFFFFF
"""What llama.cpp reads as "offload every layer"."""


class LlamaWeights:
    """A loaded llama_model and its vocabulary; ``close`` frees them."""

    def __init__(self, path: Path, *, gpu_layers: int) -> None:
        """Load ``path``; OSError when llama.cpp cannot (its log says why)."""
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = _ALL_LAYERS if gpu_layers < 0 else gpu_layers
        params.load_mode = llama_cpp.LLAMA_LOAD_MODE_MMAP
        model = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if not model:
            raise OSError(f"llama_model_load_from_file failed for {path}")
        self.model: Any = model
        self.vocab: Any = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(llama_cpp.llama_model_n_ctx_train(model))
        self.bos = int(llama_cpp.llama_vocab_bos(self.vocab))
        self.eos = int(llama_cpp.llama_vocab_eos(self.vocab))

    def tokenize(self, text: str, *, add_special: bool, special: bool) -> list[int]:
        """Token ids of ``text``; ``special`` parses special tokens written as text."""
        data = text.encode("utf-8")
        room = len(data) + 8
        buf = (llama_cpp.llama_token * room)()
        n = llama_cpp.llama_tokenize(self.vocab, data, len(data), buf, room, add_special, special)
        if n < 0:  # the buffer was too small: -n is the size needed
            room = -n
            buf = (llama_cpp.llama_token * room)()
            n = llama_cpp.llama_tokenize(
                self.vocab, data, len(data), buf, room, add_special, special
            )
        return [int(t) for t in buf[: max(n, 0)]]

    def token_text(self, token: int) -> str:
        raw = llama_cpp.llama_vocab_get_text(self.vocab, token)
        return raw.decode("utf-8", errors="replace") if raw else ""

    def token_bytes(self, token: int) -> bytes:
        # special=True: a call tag that the vocabulary marks as a control token must
        # still appear in the text (the turn already ended at any other control token).
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self.vocab, token, buf, -n, 0, True)
        return bytes(buf.raw[: max(n, 0)])

    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes one token takes (f16 keys and values in every layer)."""
        m = self.model
        head = int(llama_cpp.llama_model_n_embd(m)) // max(1, int(llama_cpp.llama_model_n_head(m)))
        kv_width = int(llama_cpp.llama_model_n_head_kv(m)) * head
        return int(llama_cpp.llama_model_n_layer(m)) * 2 * kv_width * 2

    def close(self) -> None:
        if self.model:
            llama_cpp.llama_model_free(self.model)
            self.model = None


class VocabInfo:
    """What a ``TurnDecoder`` needs of a model's vocabulary (``VocabSide``)."""

    def __init__(self, weights: LlamaWeights) -> None:
        self.vocab: Any = weights.vocab
        self.n_vocab = weights.n_vocab
        self.token_bytes = weights.token_bytes
        self._text = weights.token_text
        # Tokens that are "control" in some vocabularies but belong to the call format.
        self._call_tags = {CALL_OPEN, CALL_CLOSE}
        # Markup that is one token of its own (Qwen's <tool_call>): never part of a
        # plain-text answer.
        self.markup_tokens = np.zeros(self.n_vocab, dtype=bool)
        for tag in (CALL_OPEN, CALL_CLOSE, "<tool_response>", "</tool_response>"):
            ids = weights.tokenize(tag, add_special=False, special=True)
            if len(ids) == 1:
                self.markup_tokens[ids[0]] = True
        self.start_masks: dict[str, npt.NDArray[np.bool_]] = {}
        # The digits 0-9 as single tokens, to read a plan's answer (None if they are not).
        digits = [weights.tokenize(str(d), add_special=False, special=False) for d in range(10)]
        self.digits: npt.NDArray[np.intp] | None = (
            np.array([t[0] for t in digits]) if all(len(t) == 1 for t in digits) else None
        )

    def ends_turn(self, token: int) -> bool:
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            return True
        # A control token other than a call tag (a new <|im_start|>, say) means the
        # model is starting another turn: this one is over.
        return bool(llama_cpp.llama_vocab_is_control(self.vocab, token)) and (
            self._text(token) not in self._call_tags
        )
