"""How one loaded model is time-shared by many runs (settings only; no llama.cpp here).

Every generation on a loaded model goes through its scheduler: the next token of every
active sequence is decoded in one ``llama_decode`` call, and each run keeps its own KV
sequence between its steps. These settings size that machinery.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BatchConfig", "BatchStats"]


class BatchConfig(BaseModel):
    """How a loaded model decodes many generations together. Unknown options are an error.

    ``parallel`` generations are decoded side by side (more wait for a free place);
    ``sequences`` KV sequences are kept in all: the active ones, the cached conversations
    of runs between their steps, and prefixes shared by many runs. They all live in one
    KV cache of ``kv_tokens`` cells; when it is full, the least recently used idle
    sequence is saved to host memory (up to ``saved_mb``) and restored when its run
    comes back, or dropped when that budget is spent too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    parallel: int = Field(default=8, ge=1, le=128)
    """Generations decoded together at most."""
    sequences: int = Field(default=64, ge=2, le=256)
    """KV sequences kept at once (active, cached between steps, shared prefixes)."""
    kv_tokens: int | None = Field(default=None, ge=64)
    """KV cells shared by all sequences; None: four times the context window."""
    saved_mb: float = Field(default=256.0, ge=0.0)
    """Host memory for sequences moved out of the KV cache; 0 drops them instead."""
    prefill_chunk: int = Field(default=128, ge=1)
    """Prompt tokens a sequence adds to one batch while other sequences are decoding, so
    a long prompt does not stall them (alone, a prompt goes in batches of ``n_batch``)."""

    @model_validator(mode="after")
    def _room_for_cached_runs(self) -> BatchConfig:
        if self.sequences <= self.parallel:
            raise ValueError(
                f"sequences ({self.sequences}) must be larger than parallel "
                f"({self.parallel}): every active generation needs a sequence, and runs "
                "keep theirs between steps"
            )
        return self

    def cells(self, n_ctx: int) -> int:
        """KV cells for a context window of ``n_ctx`` tokens (never fewer than it)."""
        return max(n_ctx, self.kv_tokens if self.kv_tokens is not None else 4 * n_ctx)


@dataclass(frozen=True)
class BatchStats:
    """What a loaded model's scheduler and KV cache did since it was loaded."""

    rounds: int
    """Decode calls (each holds one token of every generating sequence)."""
    batch_tokens: int
    generated_tokens: int
    prompt_tokens_evaluated: int
    prompt_tokens_reused: int
    prompt_tokens_restored: int
    peak_parallel: int
    jobs: int
    failed_jobs: int
    takeovers: int
    forks: int
    shared_prefixes: int
    saves: int
    restores: int
    drops: int
    saved_bytes: int
    kv_cells: int
    kv_cells_used: int
    peak_kv_cells_used: int
    sequences_resident: int
    sequences_saved: int
