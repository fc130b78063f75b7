"""The in-process model tier: a GGUF file run by llama.cpp (llama-cpp-python).

One ``LlamaCppModel`` per file, loaded once per process (``get_model``) and shared by
every run and thread. Nothing about a conversation is kept in the object: each call to
``complete`` (from any thread) becomes a job of the model's scheduler, which decodes the
next token of every running generation in one batch and keeps each conversation's
prompt in a KV sequence of its own between its steps (``_scheduler``, ``_kv_pool``), so
many runs share the model without evicting each other's prefix.

llama-cpp-python is untyped and can crash the process on a bad file, so it is wrapped
here and in the backend modules beside this one: files are checked with ``inspect_gguf``
before llama.cpp sees them, its errors become ``ModelError``s, and its logging is
captured (shown only with ``verbose``) so a failure message can quote what llama.cpp said.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import llama_cpp
import numpy as np
import numpy.typing as npt

from .._errors import ContextOverflowError, ModelError, ModelFileError
from . import _native as native
from ._batching import BatchStats
from ._catalog import resolve_model
from ._config import LlamaConfig
from ._generation import TurnDecoder, TurnGrammars
from ._gguf import GGUFInfo, inspect_gguf
from ._grammar import text_grammar, tool_call_grammar
from ._llama_context import LlamaBatchContext
from ._llama_vocab import LlamaWeights, VocabInfo
from ._messages import Decision, FinishReason, Message, ModelResponse, ToolCall, ToolSpec, Usage
from ._protocol import Sampling, TokenCallback, ToolChoice, ToolChoiceLike, as_tool_choice
from ._registry import display_name, forget
from ._scheduler import Job, Scheduler
from ._template import ChatRenderer, check_chat_templates, parse_tool_calls, schema_problems
from ._token_history import TokenHistory

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
        if config.verbose:
            native.echo_log()
        check_chat_templates(path, info.metadata)  # llama-cpp-python would raise jinja2's
        self._weights = _load_weights(path, info, config)
        n_ctx = config.n_ctx
        if info.context_length:
            n_ctx = min(n_ctx, info.context_length)
        try:
            self._context = LlamaBatchContext(
                self._weights,
                cells=config.batching.cells(n_ctx),
                n_batch=min(config.n_batch, config.batching.cells(n_ctx)),
                sequences=config.batching.sequences,
                n_threads=config.n_threads,
                name=name,
            )
        except ModelError:
            self._weights.close()
            raise
        self._n_ctx = min(n_ctx, self._context.n_cells)
        self._side = VocabInfo(self._weights)
        w = self._weights
        self._bos_text = w.token_text(w.bos) if w.bos >= 0 else ""
        template = info.chat_template or info.metadata.get("tokenizer.chat_template")
        self._renderer = ChatRenderer(
            template if isinstance(template, str) else None,
            bos_token=self._bos_text,
            eos_token=w.token_text(w.eos) if w.eos >= 0 else "",
        )
        self._scheduler = Scheduler(
            self._context, config.batching, name=name, can_cut=not self._context.recurrent
        )
        self._history = TokenHistory()
        self._grammars: dict[str, TurnGrammars] = {}
        self._grammars_lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._closed = False

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
        """Tokens one conversation may hold (prompt plus generation)."""
        return self._n_ctx

    @property
    def parameters(self) -> int:
        """Parameter count read from the GGUF tensor table."""
        return self.info.parameter_count

    def count_tokens(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = ()) -> int:
        """Prompt tokens for ``messages`` and ``tools``, rendered exactly as ``complete`` does."""
        self._check_open()
        return len(self._prompt_tokens(self._renderer.render(messages, tools)))

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
        tool_choice: ToolChoiceLike = "auto",
    ) -> ModelResponse:
        """Generate the next assistant turn (see ``ChatModel.complete`` and ``ToolChoice``).

        Calls from many threads are decoded together, each with its own sampling state.
        """
        self._check_open()
        sampling = sampling or Sampling()
        choice = as_tool_choice(tool_choice)
        prompt = self._renderer.render(messages, tools)
        tokens = self._prompt_tokens(prompt)
        max_tokens = self._budget(len(tokens), sampling.max_tokens)
        seed = sampling.seed if sampling.seed is not None else self.config.seed
        if cancel is not None and cancel.is_set():
            return ModelResponse(finish_reason="cancelled", model=self._name)
        started = time.perf_counter()
        plan: Decision | None = None
        asked = Usage()
        first_turn = not any(m.role == "tool" for m in messages)
        if tools and choice.asks_plan(first_turn) and self._side.digits is not None:
            plan, asked = self._plan(messages, tools, choice, tokens)
        decoder = TurnDecoder(
            self._side,
            sampling,
            seed if seed is not None else llama_cpp.LLAMA_DEFAULT_SEED,
            self._turn_grammars(tools, (plan.calls or 1) if plan else 1) if tools else None,
            choice,
            max_tokens,
            on_token,
            cancel,
            plan=plan,
        )
        job = Job(tokens, decoder=decoder, cancel=cancel)
        try:
            self._scheduler.run(job)
        finally:
            decoder.close()
        if not job.cancelled and job.error is None:
            self._remember(prompt, tokens, decoder)
        usage = asked + Usage(
            prompt_tokens=len(tokens),
            cached_tokens=job.cached,
            evaluated_tokens=job.evaluated,
            completion_tokens=len(decoder.logprobs),
            seconds=time.perf_counter() - started,
        )
        finish: FinishReason = "cancelled" if job.cancelled else decoder.finish
        # A text-only turn returns text: markup in it is for the caller to judge.
        parsed = tools if choice.mode != "none" else ()
        return _response(decoder.text, finish, parsed, usage, decoder, self._name)

    def _plan(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        choice: ToolChoice,
        turn: list[int],
    ) -> tuple[Decision, Usage]:
        """Ask how many calls the reply needs; read the answer from the digits' probabilities.

        The question follows the conversation, so its prefix is the one the reply will use
        as well: only the question's few tokens are evaluated, and afterwards its sequence
        is cut back to the part the reply (``turn``) shares, which the reply then reuses.
        """
        question = [*messages, Message.user(choice.plan_question)]
        tokens = self._prompt_tokens(self._renderer.render(question, tools))
        self._budget(len(tokens), 1)
        digits = self._side.digits
        assert digits is not None
        read: list[npt.NDArray[np.float64]] = []

        def on_logits(position: int, logits: npt.NDArray[np.float32]) -> None:
            chosen = logits.astype(np.float64)
            p = np.exp(chosen[digits] - chosen.max())
            read.append(p / p.sum())

        job = Job(tokens, read=on_logits, keep=_common_length(tokens, turn))
        self._scheduler.run(job)
        p = read[-1]
        if p[0] >= choice.no_call_threshold:
            calls = 0
        elif p[2:].sum() >= choice.several_threshold:
            calls = 2 + int(np.argmax(p[2:]))
        else:
            calls = 1
        decision = Decision(
            kind="plan",
            probability=float(1 - p[0]),
            taken=calls > 0,
            calls=calls,
            several=float(p[2:].sum()),
        )
        asked = Usage(
            prompt_tokens=len(tokens), cached_tokens=job.cached, evaluated_tokens=job.evaluated
        )
        return decision, asked

    def close(self) -> None:
        """Free the weights and context now (every user of a shared model loses it)."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._scheduler.close()  # fails what is still queued, then stops decoding
                self._context.close()
                self._weights.close()
        forget(self)

    # -- time-sharing --------------------------------------------------------------------

    def batch_stats(self) -> BatchStats:
        """What the scheduler and the KV cache did since the model was loaded."""
        return self._scheduler.stats()

    @property
    def kv_bytes_per_token(self) -> int:
        """KV-cache bytes one token of a conversation takes."""
        return self._weights.kv_bytes_per_token()

    # -- internals -----------------------------------------------------------------------

    def _check_open(self) -> None:
        # After close() the llama.cpp objects are freed; touching them would crash.
        if self._closed:
            raise ModelError(f"{self._name} was closed; load it again to use it")

    def _tokenize(self, prompt: str) -> list[int]:
        # The template writes special tokens as text (and BOS, when the model wants it);
        # ask llama.cpp for BOS only when the template did not write it.
        add_special = not (self._bos_text and prompt.startswith(self._bos_text))
        return self._weights.tokenize(prompt, add_special=add_special, special=True)

    def _prompt_tokens(self, prompt: str) -> list[int]:
        """The prompt's tokens, repeating a remembered turn's exact tokens where it can."""
        return self._history.tokenize(prompt, self._tokenize, self._tokenize_rest)

    def _tokenize_rest(self, text: str) -> list[int]:
        return self._weights.tokenize(text, add_special=False, special=True)

    def _remember(self, prompt: str, tokens: list[int], decoder: TurnDecoder) -> None:
        """Keep the turn's exact tokens for the next prompt that repeats it (see
        ``TokenHistory``), if they spell exactly the text the turn returned."""
        ids = decoder.ids
        spelled = b"".join(self._side.token_bytes(t) for t in ids).decode("utf-8", "replace")
        if spelled == decoder.text:
            self._history.remember(prompt + decoder.text, [*tokens, *ids])

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

    def _turn_grammars(self, tools: Sequence[ToolSpec], min_calls: int = 1) -> TurnGrammars:
        key = f"{min_calls}\n" + "\n".join(t.model_dump_json() for t in tools)
        with self._grammars_lock:
            grammars = self._grammars.get(key)
        if grammars is None:
            grammars = TurnGrammars(
                calls=tool_call_grammar(tools, allow_text=False, min_calls=max(1, min_calls)),
                text=text_grammar(),
            )
            # A grammar llama.cpp cannot parse would crash inside the sampler: check first.
            if not native.grammar_compiles(grammars.calls):
                raise ModelError(
                    f"the tool schemas produced a grammar llama.cpp rejects: "
                    f"{native.recent_log()}. Simplify the tool signatures or report this bug."
                )
            with self._grammars_lock:
                if len(self._grammars) > 64:
                    self._grammars.clear()
                self._grammars[key] = grammars
        return grammars

    # -- scoring fixed replies (the model judge in agentkit.filters) ---------------------

    def choice_logprobs(
        self, messages: Sequence[Message], choices: Sequence[str]
    ) -> dict[str, float]:
        """The log-probability of each of ``choices`` as the assistant's reply.

        The prompt is rendered with the chat template (no tools) and placed in the KV
        cache as ``complete`` does, reusing the prefix it shares with earlier calls; each
        choice is then read off the logits token by token, nothing sampled (the choices
        are scored side by side, each in a copy of the prompt's sequence). A value is the
        sum of the choice's token log-probabilities (the end of the turn is not
        included), so comparing them is choosing among the choices as a grammar that
        allows only them would.
        """
        self._check_open()
        if not choices or not all(choices):
            raise ModelError(f"{self._name}: choice_logprobs needs non-empty choices")
        prompt = self._renderer.render(messages)
        base = self._tokenize(prompt)
        encoded: dict[str, list[int]] = {}
        for choice in choices:
            full = self._tokenize(prompt + choice)
            # Tokens can merge across the boundary; then the choice is tokenised alone.
            same = full[: len(base)] == base and len(full) > len(base)
            encoded[choice] = full[len(base) :] if same else self._tokenize_piece(choice)
        self._budget(len(base) + max(len(t) for t in encoded.values()), 1)
        scores = {choice: 0.0 for choice in encoded}
        jobs = [self._score_job(base, choice, ids, scores) for choice, ids in encoded.items()]
        self._scheduler.run(*jobs)
        return scores

    def _score_job(
        self, base: list[int], choice: str, ids: list[int], scores: dict[str, float]
    ) -> Job:
        """A job reading ``choice``'s tokens off the logits after ``base``."""
        start = len(base) - 1

        def on_logits(position: int, logits: npt.NDArray[np.float32]) -> None:
            scores[choice] += float(_log_softmax(logits)[ids[position - start]])

        return Job([*base, *ids[:-1]], read=on_logits, read_from=start, keep=len(base))

    def _tokenize_piece(self, text: str) -> list[int]:
        return self._weights.tokenize(text, add_special=False, special=False)


def load_llama(path: Path, config: LlamaConfig, name: str) -> LlamaCppModel:
    """Load a checked file (the registry's loader)."""
    return LlamaCppModel(path, inspect_gguf(path), config, name=name)


def _load_weights(path: Path, info: GGUFInfo, config: LlamaConfig) -> LlamaWeights:
    native.clear_log()
    try:
        return LlamaWeights(path, gpu_layers=config.resolved_gpu_layers())
    except OSError as exc:
        said = native.recent_log()
        raise ModelFileError(
            f"llama.cpp could not load {path} ({info.architecture or 'unknown'} "
            f"architecture, {info.file_type or 'unknown'} weights): {exc}"
            + (f". llama.cpp said: {said}" if said else "")
            + ". The file may be corrupt (re-download it; for a catalog model "
            "`agentkit models pull NAME --force`), or it needs a newer llama-cpp-python."
        ) from exc


def _common_length(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    same = np.asarray(a[:n]) == np.asarray(b[:n])
    return n if bool(same.all()) else int(np.argmin(same))


def _log_softmax(logits: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    shifted = logits.astype(np.float64) - float(logits.max())
    return shifted - float(np.log(np.exp(shifted).sum()))


def _response(
    text: str,
    finish: FinishReason,
    tools: Sequence[ToolSpec],
    usage: Usage,
    decoder: TurnDecoder,
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
        if calls and decoder.branch != "calls" and schema_problems(calls, tools):
            # Calls written in free text (not under the calls grammar) that break their
            # schema were not meant as calls (a JSON example in an answer): text they stay.
            content, calls = text.strip(), []
        if calls and finish == "stop":
            finish = "tool_calls"
    return ModelResponse(
        content=content,
        tool_calls=tuple(calls),
        finish_reason=finish,
        usage=usage,
        logprobs=tuple(decoder.logprobs),
        model=model,
        raw_text=text,
        decisions=tuple(decoder.decisions),
    )
