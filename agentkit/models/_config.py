"""How a GGUF file is loaded (llama.cpp settings), without loading llama.cpp itself."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

from ._batching import BatchConfig

__all__ = ["LlamaConfig"]


class LlamaConfig(BaseModel):
    """How a GGUF file is loaded. Unknown options are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_ctx: int = Field(default=4096, ge=64)
    """Context window in tokens (capped at what the model was trained for)."""
    n_threads: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    n_batch: int = Field(default=512, ge=1)
    """Prompt tokens evaluated per llama.cpp batch."""
    gpu_layers: int | None = None
    """Layers offloaded to the GPU; None means all of them where llama.cpp can offload."""
    seed: int | None = None
    """Default sampling seed (a ``Sampling.seed`` wins); None draws a fresh one per call."""
    verbose: bool = False
    """Show llama.cpp's own logging on stderr."""
    batching: BatchConfig = Field(default_factory=BatchConfig)
    """How many runs share the loaded model at once, and its KV-cache budget."""

    def resolved_gpu_layers(self) -> int:
        if self.gpu_layers is not None:
            return self.gpu_layers
        import llama_cpp  # only where a model is about to load

        return -1 if llama_cpp.llama_supports_gpu_offload() else 0
