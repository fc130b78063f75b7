"""A llama.cpp context that decodes many sequences at once: the scheduler's backend.

The context is created with ``n_seq_max`` sequences and a unified KV cache
(``kv_unified``): every sequence draws its cells from one pool, so a prefix copied to
another sequence (``llama_memory_seq_cp``) shares its cells instead of duplicating them,
and a sequence may be as long as the whole context. One ``llama_batch`` is allocated
once and refilled for every decode through numpy views of its arrays.
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from .._errors import ModelError
from . import _native as native
from ._llama_vocab import LlamaWeights

__all__ = ["LlamaBatchContext"]


class LlamaBatchContext:
    """A context of ``cells`` KV cells shared by ``sequences`` sequences (``DecodeBackend``)."""

    def __init__(
        self,
        weights: LlamaWeights,
        *,
        cells: int,
        n_batch: int,
        sequences: int,
        n_threads: int,
        name: str,
    ) -> None:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = cells
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = sequences
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.kv_unified = True
        params.swa_full = True  # a sliding-window cache could not be cut at any position
        params.no_perf = True
        native.clear_log()
        ctx = llama_cpp.llama_init_from_model(weights.model, params)
        if not ctx:
            megabytes = cells * weights.kv_bytes_per_token() / 2**20
            raise ModelError(
                f"{name}: llama.cpp could not create a context of {cells} KV cells "
                f"(about {megabytes:.0f} MB of KV cache) for {sequences} sequences: "
                f"{native.recent_log() or 'no reason given'}. Load it with a smaller "
                "LlamaConfig(batching=BatchConfig(kv_tokens=...)) or n_ctx."
            )
        self.ctx: Any = ctx
        self.n_cells = int(llama_cpp.llama_n_ctx(ctx))
        self.n_batch = int(llama_cpp.llama_n_batch(ctx))
        self.n_vocab = weights.n_vocab
        self.recurrent = bool(
            llama_cpp.llama_model_is_recurrent(weights.model)
            or llama_cpp.llama_model_is_hybrid(weights.model)
        )
        self._mem = llama_cpp.llama_get_memory(ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        b, n = self._batch, self.n_batch
        self._tokens = np.ctypeslib.as_array(b.token, shape=(n,))
        self._pos = np.ctypeslib.as_array(b.pos, shape=(n,))
        self._outputs = np.ctypeslib.as_array(b.logits, shape=(n,))
        np.ctypeslib.as_array(b.n_seq_id, shape=(n,))[:] = 1
        self._seq_slots = [b.seq_id[i] for i in range(n)]
        self._seq_ids = [-1] * n

    # -- decoding ---------------------------------------------------------------------

    def decode(
        self, tokens: list[int], positions: list[int], seqs: list[int], outputs: list[bool]
    ) -> int:
        n = len(tokens)
        if not 0 < n <= self.n_batch:
            raise ModelError(f"a batch of {n} tokens does not fit n_batch={self.n_batch}")
        self._tokens[:n] = tokens
        self._pos[:n] = positions
        self._outputs[:n] = outputs
        slots, known = self._seq_slots, self._seq_ids
        for i, seq in enumerate(seqs):
            if known[i] != seq:  # most rounds repeat the last one's layout
                slots[i][0] = seq
                known[i] = seq
        self._batch.n_tokens = n
        return int(llama_cpp.llama_decode(self.ctx, self._batch))

    def logits(self, index: int) -> npt.NDArray[np.float32]:
        pointer = llama_cpp.llama_get_logits_ith(self.ctx, index)
        if not pointer:
            raise ModelError(f"llama.cpp has no logits for batch entry {index}")
        return np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))

    # -- memory -----------------------------------------------------------------------

    def seq_rm(self, seq: int, p0: int, p1: int) -> bool:
        return bool(llama_cpp.llama_memory_seq_rm(self._mem, seq, p0, p1))

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        llama_cpp.llama_memory_seq_cp(self._mem, src, dst, p0, p1)

    def seq_save(self, seq: int) -> bytes:
        size = int(llama_cpp.llama_state_seq_get_size(self.ctx, seq))
        if size <= 0:
            return b""
        buf = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(self.ctx, buf, size, seq))
        return ctypes.string_at(buf, written)

    def seq_restore(self, seq: int, data: bytes) -> bool:
        buf = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        return int(llama_cpp.llama_state_seq_set_data(self.ctx, buf, len(data), seq)) > 0

    def seq_bytes(self, seq: int) -> int:
        """Bytes ``seq``'s state takes when saved (its KV cells plus a small header)."""
        return int(llama_cpp.llama_state_seq_get_size(self.ctx, seq))

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_batch_free(self._batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None
