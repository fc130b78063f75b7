"""Continuous batching: the next token of every active sequence in one decode call.

Each loaded model has one scheduler thread. A caller (``LlamaCppModel.complete``, from
any thread) hands it a ``Job``: the prompt's tokens and a decoder (one ``TurnDecoder``
per generation: its own grammar, sampling settings, seed, logprobs and stream
detector), and waits. The scheduler places the job on a KV sequence (``SequencePool``),
then, round after round, puts into one batch

- one token for every sequence that is generating (the token its decoder chose), and
- a chunk of prompt for every sequence still evaluating its prompt: at most
  ``prefill_chunk`` tokens while others are generating, so a long prompt does not
  stall them, or up to ``n_batch`` when nothing else waits for the batch,

decodes the batch once, and feeds each sequence's logits to its own decoder. A job
joins between two rounds as soon as there is a place (``parallel``) and room in the
cache, and leaves as soon as its decoder ends the turn, its caller cancels it, its
stream detector stops it, or it fails: the others go on in the next round.

A job without a decoder only scores its prompt: ``read`` is given the logits at every
prompt position from ``read_from`` on (the plan question of a turn, the choices of a
model judge). ``keep`` cuts its sequence back afterwards, so a scoring question does not
stay in the cache as if it were part of the conversation.

Nothing here imports llama.cpp: the backend is any ``DecodeBackend``, which the unit
tests script.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .._errors import ModelError
from ._batching import BatchConfig, BatchStats
from ._kv_pool import KVBackend, NoRoom, Seq, SequencePool

__all__ = ["DecodeBackend", "Decoder", "Job", "Scheduler"]

Logits = npt.NDArray[np.float32]
PromptReader = Callable[[int, Logits], None]


class Decoder(Protocol):
    """Chooses a generation's tokens from its logits (``TurnDecoder``)."""

    max_tokens: int

    def next(self, logits: Logits) -> int | None: ...


class DecodeBackend(KVBackend, Protocol):
    """A context that decodes batches over many sequences (llama_decode)."""

    n_batch: int
    n_cells: int

    def decode(
        self, tokens: list[int], positions: list[int], seqs: list[int], outputs: list[bool]
    ) -> int:
        """Decode one batch; 0 on success, llama_decode's status otherwise."""
        ...

    def logits(self, index: int) -> Logits:
        """The logits of batch entry ``index`` of the last decode (an output entry)."""
        ...


@dataclass(eq=False)
class Job:
    """One request to the scheduler and, once ``done`` is set, what came of it."""

    tokens: list[int]
    decoder: Decoder | None = None
    read: PromptReader | None = None
    read_from: int | None = None
    """First prompt position whose logits go to ``read`` (None: the last one)."""
    keep: int | None = None
    """Tokens of its sequence kept once it is over (None: all)."""
    cancel: threading.Event | None = None
    cached: int = 0
    """Prompt tokens that were already in the cache (restored ones included)."""
    restored: int = 0
    """Of those, tokens copied back from host memory."""
    evaluated: int = 0
    """Prompt tokens evaluated for it (fewer than the rest when it was cut short)."""
    cancelled: bool = False
    error: BaseException | None = None
    started: float | None = None
    finished: float | None = None
    done: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False
    """Its caller stopped waiting (interrupted): end it at the next round."""

    @property
    def first_output(self) -> int:
        if self.read is not None and self.read_from is not None:
            return max(0, min(self.read_from, len(self.tokens) - 1))
        return len(self.tokens) - 1

    @property
    def max_new(self) -> int:
        return self.decoder.max_tokens if self.decoder is not None else 0

    def stopped(self) -> bool:
        return self.abandoned or (self.cancel is not None and self.cancel.is_set())


@dataclass(eq=False)
class _Active:
    job: Job
    seq: Seq
    fed: int
    """Prompt tokens in the cache."""
    pending: int | None = None
    """The token its decoder chose, evaluated in the next round."""


@dataclass(frozen=True)
class _Slice:
    """One sequence's entries in a batch."""

    active: _Active
    tokens: list[int]
    start: int
    outputs: tuple[int, ...]
    generated: bool


@dataclass
class _Counts:
    rounds: int = 0
    batch_tokens: int = 0
    generated: int = 0
    evaluated: int = 0
    peak: int = 0
    peak_cells: int = 0
    jobs: int = 0
    failed: int = 0


class Scheduler:
    """Decodes the jobs of one loaded model together, on a thread of its own."""

    def __init__(
        self, backend: DecodeBackend, config: BatchConfig, *, name: str, can_cut: bool = True
    ) -> None:
        self.backend = backend
        self.name = name
        self.parallel = max(1, min(config.parallel, backend.n_batch))
        self.chunk = max(1, min(config.prefill_chunk, backend.n_batch))
        self.pool = SequencePool(
            backend,
            cells=backend.n_cells,
            sequences=config.sequences,
            saved_bytes=int(config.saved_mb * 2**20),
            can_cut=can_cut,
        )
        self._cond = threading.Condition()
        self._incoming: list[Job] = []
        self._waiting: deque[Job] = deque()
        self._active: list[_Active] = []
        self._open: set[Job] = set()
        """Every job submitted and not yet settled, wherever it is: a failure of the
        scheduler fails all of them, so no caller waits for a job the books lost."""
        self._closed = False
        self._thread: threading.Thread | None = None
        self._counts = _Counts()

    # -- callers' side ----------------------------------------------------------------

    def submit(self, job: Job) -> Job:
        """Queue ``job``; its ``done`` event is set when it is over."""
        if not job.tokens:
            raise ModelError(f"{self.name}: a request needs at least one prompt token")
        with self._cond:
            if self._closed:
                raise ModelError(f"{self.name} was closed; load it again to use it")
            self._incoming.append(job)
            self._open.add(job)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=f"agentkit-decode-{self.name}", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return job

    def run(self, *jobs: Job) -> None:
        """Submit ``jobs`` and wait for all of them; the first error is raised."""
        for job in jobs:
            self.submit(job)
        try:
            for job in jobs:
                job.done.wait()
        except BaseException:  # interrupted: the scheduler must not go on for nobody
            for job in jobs:
                job.abandoned = True
            raise
        for job in jobs:
            if job.error is not None:
                raise job.error

    def close(self) -> None:
        """Stop the thread; jobs still queued or running fail with a ModelError."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def stats(self) -> BatchStats:
        c, p = self._counts, self.pool.stats
        return BatchStats(
            rounds=c.rounds,
            batch_tokens=c.batch_tokens,
            generated_tokens=c.generated,
            prompt_tokens_evaluated=c.evaluated,
            prompt_tokens_reused=p.reused_tokens,
            prompt_tokens_restored=p.restored_tokens,
            peak_parallel=c.peak,
            jobs=c.jobs,
            failed_jobs=c.failed,
            takeovers=p.takeovers,
            forks=p.forks,
            shared_prefixes=p.shared_prefixes,
            saves=p.saves,
            restores=p.restores,
            drops=p.drops,
            saved_bytes=p.saved_bytes,
            kv_cells=self.pool.cells,
            kv_cells_used=self.pool.used_cells,
            peak_kv_cells_used=self._counts.peak_cells,
            sequences_resident=len(self.pool.resident()),
            sequences_saved=self.pool.saved_count,
        )

    # -- the scheduler thread ---------------------------------------------------------

    def _serve(self) -> None:
        try:
            while self._next_round():
                try:
                    self._round()
                except Exception as exc:  # a bug or a backend failure: fail what is in flight
                    error = ModelError(f"{self.name}: the batch scheduler failed: {exc}")
                    error.__cause__ = exc
                    self._fail_all(error)
                    self._reset_pool()
        finally:
            with self._cond:
                self._waiting.extend(self._incoming)
                self._incoming.clear()
            self._fail_all(ModelError(f"{self.name} was closed while a request was waiting"))

    def _next_round(self) -> bool:
        with self._cond:
            while not (self._closed or self._incoming or self._waiting or self._active):
                self._cond.wait()
            if self._closed:
                return False
            self._waiting.extend(self._incoming)
            self._incoming.clear()
        return True

    def _round(self) -> None:
        self._drop_stopped()
        self._admit()
        if not self._active and self._waiting:
            self._unstall()
        if not self._active:
            return
        batch = self._build()
        if self._decode(batch):
            self._feed(batch)

    def _drop_stopped(self) -> None:
        for job in [j for j in self._waiting if j.stopped()]:
            self._waiting.remove(job)
            job.cancelled = True
            self._settle(job)
        for active in list(self._active):
            job = active.job
            # A generating job's decoder sees its own cancel event; an abandoned job, or
            # one still in its prompt, is ended here.
            if job.abandoned or (job.stopped() and active.pending is None):
                job.cancelled = True
                self._finish(active)

    def _admit(self) -> None:
        kept: deque[Job] = deque()
        blocked = False
        while self._waiting:
            job = self._waiting.popleft()
            if blocked or len(self._active) >= self.parallel:
                kept.append(job)
                continue
            try:
                placed = self.pool.place(job.tokens, job.first_output, job.max_new)
            except NoRoom as exc:
                job.error = ModelError(
                    f"{self.name}: {exc}; load the model with a larger "
                    "LlamaConfig(batching=BatchConfig(kv_tokens=...))"
                )
                self._settle(job)
                continue
            except Exception:
                self._waiting = deque([*kept, job, *self._waiting])  # failed by _serve
                raise
            if isinstance(placed, str):
                kept.append(job)
                blocked = placed == "room"  # first come, first served for room
                continue
            job.cached, job.restored = placed.reused, placed.restored
            job.started = time.perf_counter()
            self._active.append(_Active(job, placed.seq, placed.reused))
        self._waiting = kept
        self._counts.peak = max(self._counts.peak, len(self._active))

    def _unstall(self) -> None:
        """Jobs wait and none runs, so nothing will free room or finish a shared prefix:
        fail them with a clear error rather than retry them for ever (a fork that waited
        for ids only its source held once made the scheduler spin)."""
        error = ModelError(
            f"{self.name}: the KV cache could not place a request even with nothing else "
            "running (a bug in agentkit's batching; please report it). Loading the model "
            "with LlamaConfig(batching=BatchConfig(parallel=1)) avoids sharing the cache."
        )
        while self._waiting:
            job = self._waiting.popleft()
            job.error = error
            self._settle(job)

    def _build(self) -> list[_Slice]:
        batch: list[_Slice] = []
        for a in self._active:
            if a.pending is not None:
                batch.append(_Slice(a, [a.pending], len(a.seq.tokens), (0,), True))
        budget = self.backend.n_batch - len(batch)
        cap = self.chunk if batch else self.backend.n_batch
        for a in self._active:
            left = len(a.job.tokens) - a.fed
            if a.pending is not None or left <= 0 or budget <= 0:
                continue
            n = min(left, cap, budget)
            budget -= n
            batch.append(_Slice(a, a.job.tokens[a.fed : a.fed + n], a.fed, _outputs(a, n), False))
        return batch

    def _decode(self, batch: list[_Slice]) -> bool:
        tokens: list[int] = []
        positions: list[int] = []
        seqs: list[int] = []
        outputs: list[bool] = []
        for s in batch:
            tokens += s.tokens
            positions += range(s.start, s.start + len(s.tokens))
            seqs += [s.active.seq.id] * len(s.tokens)
            flags = [False] * len(s.tokens)
            for i in s.outputs:
                flags[i] = True
            outputs += flags
        status = self.backend.decode(tokens, positions, seqs, outputs)
        if status == 1 and self.pool.evict_idle():  # no cells: try once more with room
            status = self.backend.decode(tokens, positions, seqs, outputs)
        if status == 0:
            self._counts.rounds += 1
            self._counts.batch_tokens += len(tokens)
            return True
        error = ModelError(
            f"{self.name}: llama.cpp failed while generating (llama_decode returned "
            f"{status} for a batch of {len(tokens)} tokens over {len(batch)} sequences)"
        )
        for s in batch:
            self.pool.rollback(s.active.seq)
            if s.active in self._active:
                s.active.job.error = error
                self._finish(s.active)
        return False

    def _feed(self, batch: list[_Slice]) -> None:
        index = 0
        self._counts.peak_cells = max(
            self._counts.peak_cells,
            self.pool.used_cells + sum(len(s.tokens) for s in batch),
        )
        for s in batch:
            a, job = s.active, s.active.job
            self.pool.grow(a.seq, s.tokens)
            try:
                if s.generated:
                    a.pending = None
                    self._counts.generated += 1
                    self._advance(a, self.backend.logits(index))
                else:
                    self._prompt_chunk(a, s, index)
            except Exception as exc:  # a decoder's or callback's failure ends its job only
                if a in self._active:
                    job.error = exc
                    self._finish(a)
            index += len(s.tokens)

    def _prompt_chunk(self, a: _Active, s: _Slice, index: int) -> None:
        job = a.job
        a.fed += len(s.tokens)
        self._counts.evaluated += len(s.tokens)
        last = len(job.tokens) - 1
        for i in s.outputs:
            position, logits = s.start + i, self.backend.logits(index + i)
            if job.read is not None and position >= job.first_output:
                job.read(position, logits)
            if position == last and job.decoder is not None:
                self._advance(a, logits)
        if a.fed == len(job.tokens) and job.decoder is None and a in self._active:
            self._finish(a)

    def _advance(self, a: _Active, logits: Logits) -> None:
        assert a.job.decoder is not None
        token = a.job.decoder.next(logits)
        if token is None:
            self._finish(a)
        else:
            a.pending = token

    def _finish(self, a: _Active) -> None:
        self._active.remove(a)
        a.job.evaluated = a.fed - a.job.cached
        try:
            self.pool.release(a.seq, a.job.keep)
        finally:  # the job is over either way; a failed release fails the round (_serve)
            self._settle(a.job)

    def _reset_pool(self) -> None:
        old = self.pool
        try:
            old.reset()
        except Exception:  # the cache is unusable; later requests will say so when they fail
            self.pool = SequencePool(
                self.backend,
                cells=old.cells,
                sequences=old.sequences,
                saved_bytes=old.saved_limit,
                can_cut=old.can_cut,
            )

    def _settle(self, job: Job) -> None:
        with self._cond:
            self._open.discard(job)
        job.finished = time.perf_counter()
        self._counts.jobs += 1
        self._counts.failed += job.error is not None
        job.done.set()

    def _fail_all(self, error: ModelError) -> None:
        """Fail every job; the pool's books are not trusted here (see ``_reset_pool``)."""
        for a in self._active:
            a.job.error = error
            a.job.evaluated = a.fed - a.job.cached
            self._settle(a.job)
        self._active.clear()
        while self._waiting:
            job = self._waiting.popleft()
            job.error = error
            self._settle(job)
        with self._cond:
            lost = [j for j in self._open if j not in self._incoming]
        for job in lost:  # neither waiting nor active: dropped by the failure itself
            job.error = error
            self._settle(job)


def _outputs(a: _Active, n: int) -> tuple[int, ...]:
    """Which of the next ``n`` prompt entries of ``a`` need their logits."""
    job, first = a.job, a.fed
    wanted = []
    for i in range(n):
        position = first + i
        if (job.read is not None and position >= job.first_output) or (
            position == len(job.tokens) - 1
        ):
            wanted.append(i)
    return tuple(wanted)
