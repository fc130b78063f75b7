"""The in-process model tier: a GGUF file run by llama.cpp (llama-cpp-python).

One ``LlamaCppModel`` per file, loaded once per process (``get_model``) and shared by
every run and thread: a lock serialises calls, and nothing about a conversation is
kept in the object except llama.cpp's KV cache, which the next call reuses for the
prompt prefix it shares with the previous one.

llama-cpp-python is untyped and can crash the process on a bad file, so it is wrapped
here and nowhere else: files are checked with ``inspect_gguf`` before llama.cpp sees
them, its errors become ``ModelError``s, and its logging is captured (shown only with
``verbose``) so a failure message can quote what llama.cpp said.
"""

from __future__ import annotations

import codecs
import ctypes
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import llama_cpp
import numpy as np
import numpy.typing as npt

from .._errors import ContextOverflowError, ModelError, ModelFileError
from . import _native as native
from ._catalog import resolve_model
from ._config import LlamaConfig
from ._gguf import GGUFInfo, inspect_gguf
from ._grammar import CALL_CLOSE, CALL_OPEN, tool_call_grammar
from ._messages import FinishReason, Message, ModelResponse, TokenLogprob, ToolCall, ToolSpec, Usage
from ._protocol import Sampling, TokenCallback
from ._registry import display_name, forget
from ._sampler import Sampler
from ._template import ChatRenderer, parse_tool_calls

__all__ = ["LlamaCppModel", "load_llama"]

MIN_GENERATION_TOKENS = 16
"""A prompt must leave at least this many tokens of the context for the reply."""


class LlamaCppModel:
    """A chat model backed by one GGUF file. Thread-safe; holds no conversation state."""

    def __init__(self, path: Path, info: GGUFInfo, config: LlamaConfig, *, name: str) -> None:
        """Load ``path`` (already checked by ``inspect_gguf``). Prefer ``load``/``get_model``."""
        self.path = path
        self.info = info
        self.config = config
        self._name = name
        self._lock = threading.Lock()
        if config.verbose:
            native.echo_log()
        n_ctx = config.n_ctx
        if info.context_length:
            n_ctx = min(n_ctx, info.context_length)
        native.clear_log()
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_batch=min(config.n_batch, n_ctx),
                n_threads=config.n_threads,
                n_gpu_layers=config.resolved_gpu_layers(),
                seed=config.seed if config.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
                logits_all=False,
                verbose=config.verbose,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            said = native.recent_log()
            raise ModelFileError(
                f"llama.cpp could not load {path} ({info.architecture or 'unknown'} "
                f"architecture, {info.file_type or 'unknown'} weights): {exc}"
                + (f". llama.cpp said: {said}" if said else "")
                + ". The file may be corrupt (re-download it; for a catalog model "
                "`agentkit models pull NAME --force`), or it needs a newer llama-cpp-python."
            ) from exc
        self._vocab = self._llm._model.vocab
        self._n_vocab = int(self._llm.n_vocab())
        # llama.cpp may round the context up (to 256) while llama-cpp-python sizes its
        # token buffer to the request: the smaller of the two is what really fits.
        self._n_ctx = min(int(self._llm.n_ctx()), len(self._llm.input_ids))
        bos, eos = int(self._llm.token_bos()), int(self._llm.token_eos())
        self._bos_text = self._token_text(bos) if bos >= 0 else ""
        template = info.chat_template or self._llm.metadata.get("tokenizer.chat_template")
        self._renderer = ChatRenderer(
            template,
            bos_token=self._bos_text,
            eos_token=self._token_text(eos) if eos >= 0 else "",
        )
        self._grammars: dict[str, str] = {}
        self._closed = False
        # Tokens that are "control" in some vocabularies but belong to the call format.
        self._call_tags = {CALL_OPEN, CALL_CLOSE}

    @classmethod
    def load(
        cls,
        name_or_path: str | os.PathLike[str],
        config: LlamaConfig | None = None,
        *,
        pull: bool = True,
    ) -> LlamaCppModel:
        """Load a catalog model by name (pulling it if needed) or any local .gguf file.

        Raises ModelNotFoundError for an unknown name or missing file, ModelFileError for
        a file llama.cpp cannot use; never hands a broken file to llama.cpp.
        """
        path = resolve_model(name_or_path, pull=pull)
        return cls(
            path,
            inspect_gguf(path),
            config or LlamaConfig(),
            name=display_name(name_or_path, path),
        )

    # -- ChatModel -----------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The catalog name, or the file stem for a local path."""
        return self._name

    @property
    def context_size(self) -> int:
        """Tokens the loaded context holds (prompt plus generation)."""
        return self._n_ctx

    @property
    def parameters(self) -> int:
        """Parameter count read from the GGUF tensor table."""
        return self.info.parameter_count

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """Prompt tokens for ``messages`` and ``tools``, rendered exactly as ``complete`` does."""
        self._check_open()
        return len(self._tokenize(self._renderer.render(messages, tools)))

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> str:
        """The prompt text ``complete`` would send (for debugging and tests)."""
        return self._renderer.render(messages, tools)

    def complete(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[ToolSpec] = (),
        sampling: Sampling | None = None,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
        tool_choice: Literal["auto", "required"] = "auto",
    ) -> ModelResponse:
        """Generate the next assistant turn (see ``ChatModel.complete``).

        ``tool_choice="required"`` (an extension of the protocol) forbids the plain-text
        branch, so the turn must call at least one of ``tools``.
        """
        self._check_open()
        sampling = sampling or Sampling()
        prompt = self._renderer.render(messages, tools)
        grammar = self._grammar(tools, tool_choice == "auto") if tools else None
        tokens = self._tokenize(prompt)
        max_tokens = self._budget(len(tokens), sampling.max_tokens)
        with self._lock:
            started = time.perf_counter()
            self._check_open()
            if cancel is not None and cancel.is_set():
                return ModelResponse(finish_reason="cancelled", model=self._name)
            try:
                cached, text, finish, logprobs = self._decode(
                    tokens, grammar, sampling, max_tokens, on_token, cancel
                )
            except RuntimeError as exc:  # llama_decode failures
                self._llm.reset()  # type: ignore[no-untyped-call]
                raise ModelError(f"{self._name}: llama.cpp failed while generating: {exc}") from exc
            seconds = time.perf_counter() - started
        usage = Usage(
            prompt_tokens=len(tokens),
            cached_tokens=cached,
            evaluated_tokens=len(tokens) - cached,
            completion_tokens=len(logprobs),
            seconds=seconds,
        )
        return _response(text, finish, tools, usage, logprobs, self._name)

    def close(self) -> None:
        """Free the weights and context now (every user of a shared model loses it)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._llm.close()
        forget(self)

    # -- internals -----------------------------------------------------------------------

    def _check_open(self) -> None:
        # After close() the llama.cpp objects are freed; touching them would crash.
        if self._closed:
            raise ModelError(f"{self._name} was closed; load it again to use it")

    def _token_bytes(self, token: int) -> bytes:
        # llama-cpp-python's detokenize asserts on pieces over 32 bytes (long whitespace
        # tokens in code models); ask for the size first when the buffer is too small.
        # special=True: a call tag that the vocabulary marks as a control token must
        # still appear in the text (the turn already ended at any other control token).
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, True)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, True)
        return bytes(buf.raw[: max(n, 0)])

    def _ends_turn(self, token: int) -> bool:
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            return True
        # A control token other than a call tag (a new <|im_start|>, say) means the
        # model is starting another turn: this one is over.
        return bool(llama_cpp.llama_vocab_is_control(self._vocab, token)) and (
            self._token_text(token) not in self._call_tags
        )

    def _token_text(self, token: int) -> str:
        return str(self._llm._model.token_get_text(token))

    def _tokenize(self, prompt: str) -> list[int]:
        # The template writes special tokens as text (and BOS, when the model wants it);
        # ask llama.cpp for BOS only when the template did not write it.
        add_special = not (self._bos_text and prompt.startswith(self._bos_text))
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=add_special, special=True)
        return [int(t) for t in tokens]

    def _budget(self, prompt_tokens: int, max_tokens: int) -> int:
        """Generation budget that fits the context, or ContextOverflowError."""
        room = self._n_ctx - prompt_tokens
        if room < MIN_GENERATION_TOKENS:
            raise ContextOverflowError(
                f"{self._name}: the prompt takes {prompt_tokens} tokens but the context "
                f"holds {self._n_ctx}, leaving {max(room, 0)} for the reply (at least "
                f"{MIN_GENERATION_TOKENS} needed). Shorten the conversation (drop or "
                "summarise old messages, trim long tool results) or load the model with a "
                f"larger LlamaConfig(n_ctx=...)"
                + (
                    f" (trained for up to {self.info.context_length})."
                    if self.info.context_length
                    else "."
                ),
                prompt_tokens=prompt_tokens,
                context_size=self._n_ctx,
            )
        return min(max_tokens, room)

    def _evaluate_prompt(self, tokens: list[int]) -> int:
        """Bring the KV cache to ``tokens``, reusing the common prefix; returns its length.

        The previous call left its prompt and reply in the cache. Only the tokens after
        the longest common prefix are evaluated; at least one always is, because sampling
        needs the logits of the last prompt token.
        """
        llm = self._llm
        if not tokens:
            raise ModelError(f"{self._name}: the chat template rendered an empty prompt")
        done = np.asarray(llm._input_ids)
        n = min(len(done), len(tokens) - 1)
        same = done[:n] == np.asarray(tokens[:n], dtype=np.intc)
        prefix = n if bool(same.all()) else int(np.argmin(same))
        if prefix > 0 and llm._ctx.kv_cache_seq_rm(-1, prefix, -1):
            llm.n_tokens = prefix
        else:  # nothing shared, or a model whose cache cannot be cut (recurrent)
            llm.reset()  # type: ignore[no-untyped-call]
            prefix = 0
        llm.eval(tokens[prefix:])
        return prefix

    def _logits(self) -> npt.NDArray[np.float32]:
        pointer = llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def _grammar(self, tools: Sequence[ToolSpec], allow_text: bool) -> str:
        key = f"{allow_text}\n" + "\n".join(t.model_dump_json() for t in tools)
        grammar = self._grammars.get(key)
        if grammar is None:
            grammar = tool_call_grammar(tools, allow_text=allow_text)
            # A grammar llama.cpp cannot parse would crash inside the sampler: check first.
            if not native.grammar_compiles(grammar):
                raise ModelError(
                    f"the tool schemas produced a grammar llama.cpp rejects: "
                    f"{native.recent_log()}. Simplify the tool signatures or report this bug."
                )
            if len(self._grammars) > 64:
                self._grammars.clear()
            self._grammars[key] = grammar
        return grammar

    def _decode(
        self,
        tokens: list[int],
        grammar: str | None,
        sampling: Sampling,
        max_tokens: int,
        on_token: TokenCallback | None,
        cancel: threading.Event | None,
    ) -> tuple[int, str, FinishReason, list[TokenLogprob]]:
        """Evaluate the prompt and sample up to ``max_tokens``; returns (cached, text, ...)."""
        seed = sampling.seed if sampling.seed is not None else self.config.seed
        sampler = Sampler(
            self._vocab,
            self._n_vocab,
            sampling,
            seed if seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
            grammar,
        )
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pieces: list[str] = []
        logprobs: list[TokenLogprob] = []
        finish: FinishReason = "length"
        try:
            cached = self._evaluate_prompt(tokens)
            while len(logprobs) < max_tokens:
                if cancel is not None and cancel.is_set():
                    finish = "cancelled"
                    break
                logits = self._logits()
                # With tools the turn must say something: a control token that would
                # end it empty (the 1.5B sometimes starts with <|im_start|>, whose text
                # passes the grammar) is refused and another token sampled.
                empty_so_far = grammar is not None and not pieces
                token = sampler.sample(logits, self._ends_turn if empty_so_far else None)
                if token is None or self._ends_turn(token):
                    finish = "stop"
                    break
                raw = self._token_bytes(token)
                logprobs.append(
                    TokenLogprob(
                        token=raw.decode("utf-8", errors="replace"),
                        logprob=_logprob(logits, token),
                    )
                )
                piece = decoder.decode(raw)
                if piece:
                    pieces.append(piece)
                    if on_token is not None and on_token(piece):
                        finish = "stopped"
                        break
                if len(logprobs) < max_tokens:
                    self._llm.eval([token])
        finally:
            sampler.close()
        tail = decoder.decode(b"", final=True)
        if tail:
            pieces.append(tail)
            if on_token is not None and finish in ("stop", "length"):
                on_token(tail)
        return cached, "".join(pieces), finish, logprobs


def load_llama(path: Path, config: LlamaConfig, name: str) -> LlamaCppModel:
    """Load a checked file (the registry's loader)."""
    return LlamaCppModel(path, inspect_gguf(path), config, name=name)


def _response(
    text: str,
    finish: FinishReason,
    tools: Sequence[ToolSpec],
    usage: Usage,
    logprobs: list[TokenLogprob],
    model: str,
) -> ModelResponse:
    """The generated text as a response: its tool calls parsed out of it."""
    calls: list[ToolCall] = []
    content = text.strip()
    # A cancelled turn's calls are not to be run. A turn stopped by the caller (the
    # repetition detector) or by the token limit keeps the calls it completed: small
    # models often repeat a finished call until something stops them.
    if tools and finish != "cancelled":
        content, calls = parse_tool_calls(
            text, [t.name for t in tools], cut_off=finish in ("length", "stopped")
        )
        if calls and finish == "stop":
            finish = "tool_calls"
    return ModelResponse(
        content=content,
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=usage,
        logprobs=tuple(logprobs),
        model=model,
        raw_text=text,
    )


def _logprob(logits: npt.NDArray[np.float32], token: int) -> float:
    """log softmax(logits)[token], computed stably."""
    peak = float(logits.max())
    norm = peak + float(np.log(np.exp(logits - peak).sum()))
    return min(float(logits[token]) - norm, 0.0)
