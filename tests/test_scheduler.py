"""The batch scheduler and its KV-sequence pool on a scripted backend (no llama.cpp).

The backend below keeps a KV cache the way llama.cpp's unified cache does (cells with a
position, a token and a set of owning sequences; ``seq_cp`` adds an owner, ``seq_rm``
removes one, a cell is free when it has none; a batch must continue each sequence at its
next position and fit the free cells) and computes each output's logits from the tokens
its sequence holds *in the cache*. Its toy language model picks the next token from the
whole history, so a sequence whose cells hold anything other than its conversation
(a wrong fork, a bad restore, a cut in the wrong place) generates different tokens from
the reference, which is computed without any cache at all.
"""

from __future__ import annotations

import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest
from pydantic import ValidationError

from agentkit import ModelError
from agentkit.models import BatchConfig
from agentkit.models._scheduler import Job, Scheduler

VOCAB = 97
STOP = 0


def next_token(history: list[int]) -> int:
    """The toy model: the next token depends on every token before it."""
    h = 7
    for t in history:
        h = (h * 31 + t) % 1_000_003
    return 1 + h % (VOCAB - 1) if len(history) % 11 else STOP if h % 3 == 0 else 1 + h % 50


def reference(prompt: list[int], max_tokens: int) -> list[int]:
    out: list[int] = []
    while len(out) < max_tokens:
        token = next_token(prompt + out)
        if token == STOP:
            break
        out.append(token)
    return out


@dataclass
class Cell:
    pos: int
    token: int
    seqs: set[int]


@dataclass
class FakeBackend:
    """A unified KV cache of ``n_cells`` cells, decoding batches of up to ``n_batch``."""

    n_cells: int = 512
    n_batch: int = 64
    cells: list[Cell | None] = field(default_factory=list)
    batches: list[list[tuple[int, int, bool]]] = field(default_factory=list)
    """Every decoded batch: (sequence, position, output) per entry."""
    fail_next: int = 0
    """Status the next decode returns (0: decode normally)."""
    _logits: dict[int, npt.NDArray[np.float32]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cells = [None] * self.n_cells

    def history(self, seq: int) -> list[int]:
        held = sorted((c.pos, c.token) for c in self.cells if c is not None and seq in c.seqs)
        assert [p for p, _ in held] == list(range(len(held))), f"sequence {seq} has holes"
        return [t for _, t in held]

    def used(self) -> int:
        return sum(c is not None for c in self.cells)

    def decode(
        self, tokens: list[int], positions: list[int], seqs: list[int], outputs: list[bool]
    ) -> int:
        if self.fail_next:
            status, self.fail_next = self.fail_next, 0
            return status
        expected = {s: len(self.history(s)) for s in set(seqs)}
        for pos, seq in zip(positions, seqs, strict=True):
            if pos != expected[seq]:
                return -1  # llama.cpp: inconsistent sequence positions
            expected[seq] += 1
        free = [i for i, c in enumerate(self.cells) if c is None]
        if len(free) < len(tokens):
            return 1
        for i, (token, pos, seq) in enumerate(zip(tokens, positions, seqs, strict=True)):
            self.cells[free[i]] = Cell(pos, token, {seq})
        self._logits.clear()
        for i, (pos, seq, out) in enumerate(zip(positions, seqs, outputs, strict=True)):
            if out:
                logits = np.zeros(VOCAB, dtype=np.float32)
                logits[next_token(self.history(seq)[: pos + 1])] = 10.0
                self._logits[i] = logits
        self.batches.append(list(zip(seqs, positions, outputs, strict=True)))
        return 0

    def logits(self, index: int) -> npt.NDArray[np.float32]:
        return self._logits[index]

    def seq_rm(self, seq: int, p0: int, p1: int) -> bool:
        hi = p1 if p1 >= 0 else 1 << 30
        for i, c in enumerate(self.cells):
            if c is not None and seq in c.seqs and max(p0, 0) <= c.pos < hi:
                c.seqs.discard(seq)
                if not c.seqs:
                    self.cells[i] = None
        return True

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        hi = p1 if p1 >= 0 else 1 << 30
        for c in self.cells:
            if c is not None and src in c.seqs and max(p0, 0) <= c.pos < hi:
                c.seqs.add(dst)

    def seq_save(self, seq: int) -> bytes:
        return pickle.dumps(self.history(seq))

    def seq_restore(self, seq: int, data: bytes) -> bool:
        tokens: list[int] = pickle.loads(data)
        free = [i for i, c in enumerate(self.cells) if c is None]
        if len(free) < len(tokens):
            return False
        for pos, token in enumerate(tokens):
            self.cells[free[pos]] = Cell(pos, token, {seq})
        return True


@dataclass
class Greedy:
    """A decoder that takes the most likely token, like a greedy ``TurnDecoder``."""

    max_tokens: int = 12
    cancel: threading.Event | None = None
    on_token: Callable[[int], bool] | None = None
    """Called with each token; True stops the generation (the stream detector's way)."""
    tokens: list[int] = field(default_factory=list)
    finish: str = "length"

    def next(self, logits: npt.NDArray[np.float32]) -> int | None:
        if self.cancel is not None and self.cancel.is_set():
            self.finish = "cancelled"
            return None
        if len(self.tokens) >= self.max_tokens:
            return None
        token = int(np.argmax(logits))
        if token == STOP:
            self.finish = "stop"
            return None
        self.tokens.append(token)
        if self.on_token is not None and self.on_token(token):
            self.finish = "stopped"
            return None
        return token if len(self.tokens) < self.max_tokens else None


def make(backend: FakeBackend | None = None, **config: object) -> tuple[Scheduler, FakeBackend]:
    backend = backend or FakeBackend()
    return Scheduler(backend, BatchConfig(**config), name="fake"), backend  # type: ignore[arg-type]


def prompt(seed: int, n: int, prefix: list[int] | None = None) -> list[int]:
    rng = np.random.default_rng(seed)
    return [*(prefix or []), *(int(t) for t in rng.integers(1, VOCAB, n))]


def generate(s: Scheduler, tokens: list[int], max_tokens: int = 12) -> tuple[Job, Greedy]:
    decoder = Greedy(max_tokens)
    job = Job(tokens, decoder=decoder)
    s.run(job)
    return job, decoder


# -- one sequence, then many -----------------------------------------------------------


def test_a_lone_generation_matches_the_reference() -> None:
    s, backend = make()
    tokens = prompt(1, 30)
    job, decoder = generate(s, tokens, 20)
    assert decoder.tokens == reference(tokens, 20)
    assert (job.cached, job.evaluated) == (0, 30)
    # Alone, the prompt goes in one batch and each token in one round.
    assert len(backend.batches[0]) == 30
    assert all(len(b) == 1 for b in backend.batches[1:])
    s.close()


def test_concurrent_generations_share_each_round() -> None:
    s, backend = make(parallel=4)
    prompts = [prompt(i, 20 + i) for i in range(6)]
    jobs = [Job(p, decoder=Greedy(16)) for p in prompts]
    s.run(*jobs)
    for job, p in zip(jobs, prompts, strict=True):
        assert job.error is None
        assert job.decoder is not None
        assert job.decoder.tokens == reference(p, 16), "a batched sequence diverged"
    stats = s.stats()
    assert stats.peak_parallel == 4
    widest = max(len({seq for seq, _, _ in b}) for b in backend.batches)
    assert widest == 4
    # Fewer rounds than generated tokens: tokens of different sequences shared rounds.
    assert stats.rounds < stats.generated_tokens
    s.close()


def test_a_generation_joins_and_leaves_between_tokens() -> None:
    s, backend = make()
    late = Job(prompt(2, 10), decoder=Greedy(3))

    def join_at_third(token: int) -> bool:
        if len(first.tokens) == 3:
            s.submit(late)  # from inside a round: it joins in the next one
        return False

    first = Greedy(40, on_token=join_at_third)
    long_prompt = prompt(3, 12)
    s.run(Job(long_prompt, decoder=first))
    late.done.wait()
    assert first.tokens == reference(long_prompt, 40)
    assert late.decoder is not None and late.decoder.tokens == reference(late.tokens, 3)
    together = [b for b in backend.batches if len({seq for seq, _, _ in b}) == 2]
    assert together, "the late job never shared a round"
    # It left after its 3 tokens while the first one went on alone.
    last_shared = backend.batches.index(together[-1])
    assert all(len({seq for seq, _, _ in b}) == 1 for b in backend.batches[last_shared + 1 :])
    assert len(backend.batches) > last_shared + 1
    s.close()


def test_a_long_prompt_is_chunked_while_others_decode() -> None:
    s, backend = make(prefill_chunk=4)
    long = Job(prompt(5, 40), decoder=Greedy(2))

    def submit_long(token: int) -> bool:
        if len(runner.tokens) == 1:
            s.submit(long)
        return False

    runner = Greedy(30, on_token=submit_long)
    s.run(Job(prompt(4, 8), decoder=runner))
    long.done.wait()
    runner_seq = backend.batches[0][0][0]
    mixed = [b for b in backend.batches if {seq for seq, _, _ in b} != {runner_seq}]
    prefill_rounds = [b for b in mixed if sum(seq != runner_seq for seq, _, _ in b) > 1]
    assert prefill_rounds, "the long prompt was never evaluated beside the runner"
    for b in prefill_rounds:
        assert sum(seq != runner_seq for seq, _, _ in b) <= 4  # the chunk
        assert sum(seq == runner_seq for seq, _, _ in b) == 1  # the runner kept decoding
    assert long.decoder is not None and long.decoder.tokens == reference(long.tokens, 2)
    s.close()


# -- KV sequences: reuse, sharing, eviction --------------------------------------------


def test_the_next_step_of_a_conversation_reuses_its_sequence() -> None:
    s, _ = make()
    step1 = prompt(6, 30)
    _, d1 = generate(s, step1, 8)
    step2 = [*step1, *d1.tokens, *prompt(7, 10)]
    job, d2 = generate(s, step2, 8)
    assert job.cached == len(step1) + len(d1.tokens)
    assert job.evaluated == 10
    assert d2.tokens == reference(step2, 8)
    again, _ = generate(s, step2, 8)  # the same prompt again: one token for fresh logits
    assert (again.cached, again.evaluated) == (len(step2) - 1, 1)
    assert s.stats().takeovers == 2
    s.close()


def test_a_shared_prefix_is_evaluated_once_and_copied() -> None:
    s, backend = make()
    system = prompt(8, 60)
    a, b = prompt(9, 10, system), prompt(10, 12, system)
    generate(s, a, 6)
    job_b, dec_b = generate(s, b, 6)
    assert job_b.cached == 60 and job_b.evaluated == 12
    assert dec_b.tokens == reference(b, 6)
    stats = s.stats()
    assert stats.forks == 1 and stats.shared_prefixes == 1
    # The 60 shared cells are held once for both conversations (and the kept prefix).
    assert backend.used() == stats.kv_cells_used < len(a) + len(b) + 12
    # A third run finds the prefix even after the first two sequences are gone.
    job_c, _ = generate(s, prompt(11, 5, system), 4)
    assert job_c.cached == 60
    s.close()


def test_a_fork_with_few_sequences_skips_the_pin_instead_of_waiting() -> None:
    # With two sequences, pinning the shared prefix and forking needs two ids, and the
    # only other one belongs to the source: the job waited for ever (bench.batching).
    s, _ = make(parallel=1, sequences=2)
    system = prompt(8, 60)
    a, b = prompt(9, 10, system), prompt(10, 12, system)
    generate(s, a, 6)
    job_b, dec_b = generate(s, b, 6)
    assert job_b.error is None and job_b.cached == 60
    assert dec_b.tokens == reference(b, 6)
    assert s.stats().forks == 1 and s.stats().shared_prefixes == 0
    s.close()


def test_a_prompt_in_evaluation_is_waited_for_not_evaluated_twice() -> None:
    s, _ = make(prefill_chunk=8)
    system = prompt(12, 100)
    jobs = [Job(prompt(20 + i, 6, system), decoder=Greedy(4)) for i in range(3)]
    s.run(*jobs)  # submitted together: the others wait for the first one's prefix
    assert sorted(j.cached for j in jobs) == [0, 100, 100]
    assert s.stats().prompt_tokens_evaluated == 100 + 3 * 6
    for job in jobs:
        assert job.decoder is not None and job.decoder.tokens == reference(job.tokens, 4)
    s.close()


def test_cold_sequences_are_saved_and_restored_under_a_budget() -> None:
    s, backend = make(FakeBackend(n_cells=160), sequences=8, parallel=2)
    convs = [prompt(30 + i, 50) for i in range(4)]
    firsts = [generate(s, c, 6)[1].tokens for c in convs]
    stats = s.stats()
    assert stats.saves >= 1 and backend.used() <= 160
    # The first conversation was moved out; its next step brings it back.
    step2 = [*convs[0], *firsts[0], *prompt(40, 5)]
    job, decoder = generate(s, step2, 6)
    assert s.stats().restores == 1
    # Everything evaluated comes back: the prompt and the reply but its last token
    # (a reply's last token is chosen, never evaluated).
    assert job.restored == job.cached == len(convs[0]) + len(firsts[0]) - 1
    assert decoder.tokens == reference(step2, 6), "the restored cells are wrong"
    s.close()


def test_without_a_save_budget_cold_sequences_are_dropped() -> None:
    s, _ = make(FakeBackend(n_cells=160), sequences=8, parallel=2, saved_mb=0)
    convs = [prompt(50 + i, 50) for i in range(4)]
    firsts = [generate(s, c, 6)[1].tokens for c in convs]
    step2 = [*convs[0], *firsts[0], *prompt(60, 5)]
    job, decoder = generate(s, step2, 6)
    stats = s.stats()
    assert stats.saves == 0 and stats.drops >= 1 and stats.restores == 0
    assert job.cached == 0 and job.evaluated == len(step2)  # the counts say so
    assert decoder.tokens == reference(step2, 6)
    s.close()


def test_scoring_reads_every_asked_position_and_cuts_back() -> None:
    s, backend = make()
    base = prompt(70, 20)
    choice = [5, 6, 7]
    seen: dict[int, int] = {}

    def read(position: int, logits: npt.NDArray[np.float32]) -> None:
        seen[position] = int(np.argmax(logits))

    job = Job([*base, *choice[:-1]], read=read, read_from=len(base) - 1, keep=len(base))
    s.run(job)
    full = [*base, *choice]
    assert seen == {p: next_token(full[: p + 1]) for p in range(len(base) - 1, len(full) - 1)}
    # Cut back to the prompt: the next call with the same prompt reuses it all but one.
    assert max(len(backend.history(q)) for q in range(64)) == len(base)
    again, _ = generate(s, base, 3)
    assert again.cached == len(base) - 1
    s.close()


# -- limits and failures: one job goes, the others stay --------------------------------


def test_a_request_larger_than_the_cache_is_refused_clearly() -> None:
    s, _ = make(FakeBackend(n_cells=64))
    with pytest.raises(ModelError, match=r"needs 80 KV cells.*kv_tokens"):
        generate(s, prompt(80, 60), 20)
    job, decoder = generate(s, prompt(81, 20), 5)  # the scheduler is fine afterwards
    assert decoder.tokens == reference(job.tokens, 5)
    s.close()


def test_cancelling_one_job_leaves_the_others_untouched() -> None:
    s, _ = make(parallel=2)
    cancel_running, cancel_queued = threading.Event(), threading.Event()

    def cancel_at_four(token: int) -> bool:
        if len(victim.tokens) == 4:
            cancel_running.set()
            cancel_queued.set()
        return False

    victim = Greedy(30, cancel=cancel_running, on_token=cancel_at_four)
    others = [Job(prompt(90 + i, 10), decoder=Greedy(12)) for i in range(2)]
    queued = Job(prompt(95, 10), decoder=Greedy(12), cancel=cancel_queued)
    jobs = [Job(prompt(89, 10), decoder=victim, cancel=cancel_running), *others, queued]
    s.run(*jobs)
    assert victim.finish == "cancelled" and len(victim.tokens) == 4
    assert queued.cancelled and queued.evaluated == 0
    for job in others:
        assert job.decoder is not None and job.decoder.tokens == reference(job.tokens, 12)
    s.close()


def test_a_stream_stop_or_a_failing_callback_ends_only_its_job() -> None:
    s, _ = make()

    def boom(token: int) -> bool:
        raise RuntimeError("detector bug")

    stopped = Greedy(30, on_token=lambda t: len(stopped.tokens) >= 3)
    broken = Job(prompt(100, 10), decoder=Greedy(30, on_token=boom))
    fine = Job(prompt(101, 10), decoder=Greedy(12))
    stop_job = Job(prompt(102, 10), decoder=stopped)
    for job in (broken, fine, stop_job):
        s.submit(job)
    for job in (broken, fine, stop_job):
        job.done.wait()
    assert isinstance(broken.error, RuntimeError)
    assert stopped.finish == "stopped" and len(stopped.tokens) == 3
    assert fine.decoder is not None and fine.decoder.tokens == reference(fine.tokens, 12)
    s.close()


def test_a_failed_decode_fails_its_batch_and_the_cache_stays_consistent() -> None:
    s, backend = make()
    backend.fail_next = -3
    with pytest.raises(ModelError, match="llama_decode returned -3"):
        generate(s, prompt(110, 10), 5)
    job, decoder = generate(s, prompt(110, 10), 5)  # same prompt: nothing stale reused
    assert decoder.tokens == reference(job.tokens, 5)
    s.close()


@pytest.mark.parametrize("where", ["place", "release"])
def test_a_failure_in_the_cache_books_fails_the_job_and_never_loses_it(
    where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A bench run once hung for good: a job left the scheduler's queues without being
    # settled, so its caller waited on an event nobody would set.
    s, _ = make()
    original = getattr(s.pool, where)
    calls = {"n": 0}

    def broken(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"{where} broke")
        return original(*args, **kwargs)

    monkeypatch.setattr(s.pool, where, broken)
    failed = Job(prompt(120, 8), decoder=Greedy(4))
    s.submit(failed)
    assert failed.done.wait(5), "the job was lost"
    if where == "place":  # it never ran: it fails with the cause
        assert isinstance(failed.error, ModelError) and f"{where} broke" in str(failed.error)
    else:  # it had finished generating: it keeps its reply
        assert failed.error is None
    monkeypatch.setattr(s.pool, where, original)
    job, decoder = generate(s, prompt(121, 8), 4)  # the scheduler goes on
    assert decoder.tokens == reference(job.tokens, 4)
    s.close()


def test_a_job_the_cache_keeps_refusing_with_nothing_running_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Seen once in a benchmark: waiting jobs refused round after round while none ran,
    # and the scheduler spun. It must clear what it can, then fail the job, not spin.
    s, _ = make()
    monkeypatch.setattr(s.pool, "place", lambda *a, **k: "room")
    job = Job(prompt(130, 8), decoder=Greedy(4))
    s.submit(job)
    assert job.done.wait(5), "the scheduler spun instead of settling the job"
    assert isinstance(job.error, ModelError) and "could not place" in str(job.error)
    monkeypatch.undo()
    again, decoder = generate(s, prompt(131, 8), 4)
    assert decoder.tokens == reference(again.tokens, 4)
    s.close()


def test_an_abandoned_job_is_ended_and_close_fails_what_waits() -> None:
    s, _ = make(parallel=1)
    gate = threading.Event()

    def hold(token: int) -> bool:
        gate.wait(30)
        return False

    first = Job(prompt(120, 5), decoder=Greedy(3, on_token=hold))
    waiting = Job(prompt(121, 5), decoder=Greedy(3))
    s.submit(first)
    s.submit(waiting)
    first.abandoned = True
    gate.set()
    first.done.wait()
    waiting.done.wait()
    assert first.cancelled
    assert waiting.error is None
    blocked = Job(prompt(122, 5), decoder=Greedy(3, on_token=hold))
    gate.clear()
    s.submit(blocked)
    queued = s.submit(Job(prompt(123, 5), decoder=Greedy(3)))
    closer = threading.Thread(target=s.close)
    closer.start()
    gate.set()
    closer.join()
    assert isinstance(queued.error, ModelError) and "closed" in str(queued.error)
    with pytest.raises(ModelError, match="closed"):
        s.submit(Job(prompt(124, 5), decoder=Greedy(3)))


def test_batch_config_is_checked() -> None:
    with pytest.raises(ValidationError, match="must be larger than parallel"):
        BatchConfig(parallel=8, sequences=8)
    with pytest.raises(ValidationError):
        BatchConfig(paralel=4)  # type: ignore[call-arg]
    assert BatchConfig(kv_tokens=1000).cells(4096) == 4096
    assert BatchConfig().cells(2048) == 8192


def test_a_cache_that_cannot_be_cut_is_only_extended_or_started_again() -> None:
    """Recurrent models keep one state per sequence: no cutting, no partial copies."""

    class Uncuttable(FakeBackend):
        def seq_rm(self, seq: int, p0: int, p1: int) -> bool:
            if p0 > 0:
                return False
            return super().seq_rm(seq, p0, p1)

    backend = Uncuttable()
    s = Scheduler(backend, BatchConfig(), name="fake", can_cut=False)  # type: ignore[arg-type]
    step1 = prompt(130, 30)
    _, d1 = generate(s, step1, 8)
    step2 = [*step1, *d1.tokens, *prompt(131, 6)]
    job, d2 = generate(s, step2, 8)
    assert d2.tokens == reference(step2, 8)
    assert job.cached in (0, len(step1) + len(d1.tokens), len(step1) + len(d1.tokens) - 1)
    other = prompt(132, 10, step1[:20])  # shares only part of a sequence: no fork
    job3, d3 = generate(s, other, 5)
    assert d3.tokens == reference(other, 5) and job3.cached == 0
    assert s.stats().forks == 0
    s.close()
