"""The KV sequences of one loaded model: what each holds, which request reuses which.

Many runs share one KV cache (llama.cpp's unified cache: all sequences draw cells from
one pool, and a cell may belong to several sequences). A run's conversation stays in its
own sequence between its steps, so the next step evaluates only what was appended. A
request is placed on the sequence that shares the longest token prefix with it:

- *take over*: the request continues that sequence's conversation (it reuses at least
  the sequence's whole last prompt, so only the sequence's last reply may differ, or
  it is that prompt again); the sequence is cut where they differ and the request goes
  on in it;
- *fork*: the request shares only part of another conversation's prompt (the system
  prompt and the tool block, typically); the shared cells are copied into a new sequence
  (``seq_cp``: no data moves, the cells just gain an owner) and that part is kept as a
  *shared prefix* of its own, so later runs find it even after the first one is gone;
- *restore*: a sequence saved to host memory shares more than anything resident: it is
  copied back into the cache (``llama_state_seq_set_data``);
- *wait*: a sequence still evaluating its prompt will soon hold a longer shared prefix
  than anything evaluated now: the request waits for it instead of evaluating it twice.

When cells or sequence ids run short, the least recently used idle sequence is saved to
host memory (while that budget lasts) and removed. Every request reserves the cells its
prompt and its longest reply can take before it starts, so a sequence never runs out of
cells halfway through a generation.

The pool only keeps the books and calls the backend's memory functions; it knows
nothing of llama.cpp itself, so the scheduler's unit tests run it on a scripted backend.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["KVBackend", "NoRoom", "Placement", "PoolStats", "Seq", "SequencePool", "Wait"]

WAIT_GAIN = 32
"""Wait for a prompt in evaluation when it will share this many more tokens."""
RESTORE_GAIN = 32
"""Restore a saved sequence when it shares this many more tokens than a resident one."""
SAVE_MIN = 32
"""Sequences shorter than this are dropped, not saved (re-evaluating them is cheap)."""
PIN_MIN = 32
"""A prefix shared by two conversations is kept on its own once it is this long."""
MAX_SHARED = 8
"""Shared prefixes kept at most (the least recently used one goes first)."""

Tokens = npt.NDArray[np.int64]
Wait = Literal["room", "prefix"]
"""Why a request cannot start yet: no room, or a prefix it shares is being evaluated."""


class KVBackend(Protocol):
    """The memory functions of a context with several sequences (llama_memory_seq_*,
    llama_state_seq_*)."""

    def seq_rm(self, seq: int, p0: int, p1: int) -> bool: ...

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None: ...

    def seq_save(self, seq: int) -> bytes: ...

    def seq_restore(self, seq: int, data: bytes) -> bool: ...


@dataclass(eq=False)
class Seq:
    """One KV sequence: the tokens its cells hold, in position order."""

    id: int
    tokens: list[int] = field(default_factory=list)
    cells: list[int] = field(default_factory=list)
    own: int = 0
    """Length of its last prompt: a request reusing at least this much continues it."""
    used: int = 0
    busy: bool = False
    shared: bool = False
    """A prefix kept for many conversations (only ever forked from)."""
    planned: list[int] | None = None
    """The prompt its job is evaluating, while it is."""
    reserve: int = 0
    """Cells still reserved for its job."""


@dataclass(frozen=True)
class _Saved:
    tokens: tuple[int, ...]
    own: int
    data: bytes


@dataclass(frozen=True)
class Placement:
    """Where a request goes: its sequence and how much of its prompt is already there."""

    seq: Seq
    reused: int
    restored: int
    how: Literal["fresh", "takeover", "fork", "restore"]


@dataclass
class PoolStats:
    """Counters of what the pool did (since the model was loaded)."""

    takeovers: int = 0
    forks: int = 0
    shared_prefixes: int = 0
    saves: int = 0
    restores: int = 0
    drops: int = 0
    saved_bytes: int = 0
    reused_tokens: int = 0
    restored_tokens: int = 0


class NoRoom(Exception):
    """A request cannot be placed even with every idle sequence evicted."""


class SequencePool:
    """The sequences of one KV cache of ``cells`` cells and ``sequences`` ids."""

    def __init__(
        self,
        backend: KVBackend,
        *,
        cells: int,
        sequences: int,
        saved_bytes: int,
        can_cut: bool = True,
    ) -> None:
        self.backend = backend
        self.sequences = sequences
        self.can_cut = can_cut
        """False for recurrent models: a state can be copied whole but not cut."""
        self.cells = cells
        self.saved_limit = saved_bytes
        self.stats = PoolStats()
        self._free_ids = list(range(sequences - 1, -1, -1))
        self._seqs: dict[int, Seq] = {}
        self._saved: OrderedDict[int, _Saved] = OrderedDict()
        self._refs: dict[int, int] = {}
        self._next_cell = itertools.count()
        self._tick = itertools.count(1)
        self._saved_keys = itertools.count()
        self._reserved = 0

    # -- what the cache holds -------------------------------------------------------

    @property
    def used_cells(self) -> int:
        return len(self._refs)

    @property
    def free_cells(self) -> int:
        """Cells neither used nor reserved for a running job."""
        return self.cells - len(self._refs) - self._reserved

    def resident(self) -> list[Seq]:
        return list(self._seqs.values())

    @property
    def saved_count(self) -> int:
        return len(self._saved)

    # -- placing a request ----------------------------------------------------------

    def place(self, tokens: list[int], limit: int, extra: int) -> Placement | Wait:
        """Place a request for ``tokens``, reusing at most ``limit`` of them, with ``extra``
        cells for its reply; or say why it must wait. NoRoom when nothing could ever
        make room for it."""
        req = np.asarray(tokens, dtype=np.int64)
        limit = max(0, min(limit, len(tokens) - 1))
        best, common = self._best(req, limit)
        if self._planned_gain(req, limit) > common + WAIT_GAIN:
            return "prefix"
        saved_key, saved_common = self._best_saved(req, limit)
        if saved_key is not None and saved_common > common + RESTORE_GAIN:
            return self._restore(saved_key, req, saved_common, extra)
        if best is not None and common > 0:
            if _takeable(best, common):
                return self._take_over(best, req, common, extra)
            if self.can_cut or common == len(best.tokens):
                return self._fork(best, req, common, extra)
        return self._fresh(req, extra)

    def _best(self, req: Tokens, limit: int) -> tuple[Seq | None, int]:
        best: Seq | None = None
        best_key = (0, False, 0)
        for seq in self._seqs.values():
            n = _common(seq.tokens, req, limit)
            # Ties go to a sequence that can be taken over, then to the recent one.
            key = (n, _takeable(seq, n), seq.used)
            if best is None or key > best_key:
                best, best_key = seq, key
        return best, best_key[0]

    def _planned_gain(self, req: Tokens, limit: int) -> int:
        """The longest prefix a prompt now in evaluation will share with ``req``."""
        gain = 0
        for seq in self._seqs.values():
            if seq.planned is not None and len(seq.planned) > len(seq.tokens):
                gain = max(gain, _common(seq.planned, req, limit))
        return gain

    def _best_saved(self, req: Tokens, limit: int) -> tuple[int | None, int]:
        key: int | None = None
        common = 0
        for k, saved in self._saved.items():
            n = _common(saved.tokens, req, limit)
            if n > common:
                key, common = k, n
        return key, common

    def _take_over(self, seq: Seq, req: Tokens, common: int, extra: int) -> Placement | Wait:
        if not self._room(len(req) - common + extra, keep=seq):
            return "room"
        self._trim(seq, common)
        self.stats.takeovers += 1
        return self._start(seq, req, len(seq.tokens), 0, "takeover", extra)

    def _fork(self, src: Seq, req: Tokens, common: int, extra: int) -> Placement | Wait:
        if not self._room(len(req) - common + extra, keep=src):
            return "room"
        # The shared prefix gets a sequence of its own only where there are ids for both:
        # with few sequences, waiting for two ids that only ``src`` holds would never end.
        pin = self._wants_pin(src, common) and self._ids(2, src)
        if not pin and not self._ids(1, src):
            return "room"
        if pin:
            self._pin(src, common)
        seq = self._new_seq()
        self.backend.seq_cp(src.id, seq.id, 0, common)
        self._adopt(seq, src.tokens[:common], src.cells[:common])
        src.used = next(self._tick)
        self.stats.forks += 1
        return self._start(seq, req, common, 0, "fork", extra)

    def _restore(self, key: int, req: Tokens, common: int, extra: int) -> Placement | Wait:
        saved = self._saved[key]
        need = len(saved.tokens) + len(req) - common + extra
        if need > self.cells:  # it would never fit beside the reply: evaluate instead
            return self._fresh(req, extra)
        if not self._room(need) or not self._ids(1):
            return "room"
        del self._saved[key]
        self.stats.saved_bytes -= len(saved.data)
        seq = self._new_seq()
        if not self.backend.seq_restore(seq.id, saved.data):
            self.backend.seq_rm(seq.id, -1, -1)  # refused: evaluate the prompt instead
            self._free_id(seq)
            return self._fresh(req, extra)
        self._adopt(seq, list(saved.tokens), [next(self._next_cell) for _ in saved.tokens])
        self._trim(seq, common)
        kept = len(seq.tokens)  # less than ``common`` only where a cache cannot be cut
        self.stats.restores += 1
        self.stats.restored_tokens += kept
        return self._start(seq, req, kept, kept, "restore", extra)

    def _fresh(self, req: Tokens, extra: int) -> Placement | Wait:
        if not self._room(len(req) + extra) or not self._ids(1):
            return "room"
        return self._start(self._new_seq(), req, 0, 0, "fresh", extra)

    def _start(
        self,
        seq: Seq,
        req: Tokens,
        reused: int,
        restored: int,
        how: Literal["fresh", "takeover", "fork", "restore"],
        extra: int,
    ) -> Placement:
        seq.busy = True
        seq.planned = req.tolist()
        seq.own = len(req)
        seq.used = next(self._tick)
        seq.reserve = len(req) - reused + extra
        self._reserved += seq.reserve
        self.stats.reused_tokens += reused
        return Placement(seq, reused, restored, how)

    # -- a running job --------------------------------------------------------------

    def grow(self, seq: Seq, tokens: list[int]) -> None:
        """``tokens`` were evaluated at the end of ``seq``."""
        for token in tokens:
            cell = next(self._next_cell)
            self._refs[cell] = 1
            seq.cells.append(cell)
            seq.tokens.append(token)
        used = min(len(tokens), seq.reserve)
        seq.reserve -= used
        self._reserved -= used

    def rollback(self, seq: Seq) -> None:
        """A failed decode may have left cells past what the books say: remove them."""
        self.backend.seq_rm(seq.id, len(seq.tokens), -1)

    def release(self, seq: Seq, keep: int | None = None) -> None:
        """The job on ``seq`` is over; keep its first ``keep`` tokens (all with None)."""
        seq.busy = False
        seq.planned = None
        self._reserved -= seq.reserve
        seq.reserve = 0
        seq.used = next(self._tick)
        if keep is not None and keep < len(seq.tokens):
            self._trim(seq, keep)
            seq.own = min(seq.own, keep)
        if not seq.tokens or self._redundant(seq):
            self._remove(seq)

    def _redundant(self, seq: Seq) -> bool:
        """Another sequence holds everything this one does (and more)."""
        mine = np.asarray(seq.tokens, dtype=np.int64)
        return any(
            other is not seq
            and len(other.tokens) >= len(mine)
            and _common(other.tokens, mine, len(mine)) == len(mine)
            for other in self._seqs.values()
        )

    def evict_idle(self) -> bool:
        """Move every idle sequence out of the cache; whether there was any."""
        idle = [s for s in self._seqs.values() if not s.busy]
        for seq in sorted(idle, key=lambda s: s.used):
            self._evict(seq)
        return bool(idle)

    def reset(self) -> None:
        """Forget everything (after a failure that may have left the books wrong)."""
        for seq in list(self._seqs.values()):
            self._remove(seq)
        self._saved.clear()
        self.stats.saved_bytes = 0
        self._reserved = 0

    # -- room -----------------------------------------------------------------------

    def _room(self, need: int, keep: Seq | None = None) -> bool:
        """Evict idle sequences until ``need`` cells are free; False if they cannot be."""
        while self.free_cells < need:
            victim = self._victim(keep, cells=True)
            if victim is None:
                if not any(s.busy for s in self._seqs.values()):
                    raise NoRoom(
                        f"a request needs {need} KV cells but the cache holds {self.cells}"
                    )
                return False
            self._evict(victim)
        return True

    def _ids(self, count: int, keep: Seq | None = None) -> bool:
        while len(self._free_ids) < count:
            victim = self._victim(keep, cells=False)
            if victim is None:
                return False
            self._evict(victim)
        return True

    def _victim(self, keep: Seq | None, *, cells: bool) -> Seq | None:
        idle = [s for s in self._seqs.values() if not s.busy and s is not keep]
        if cells:  # evicting a sequence whose cells all have other owners frees nothing
            idle = [s for s in idle if any(self._refs[c] == 1 for c in s.cells)] or idle
        return min(idle, key=lambda s: s.used, default=None)

    def _evict(self, seq: Seq) -> None:
        if not seq.shared and len(seq.tokens) >= SAVE_MIN and self.saved_limit > 0:
            data = self.backend.seq_save(seq.id)
            if 0 < len(data) <= self.saved_limit:
                self._saved[next(self._saved_keys)] = _Saved(tuple(seq.tokens), seq.own, data)
                self.stats.saves += 1
                self.stats.saved_bytes += len(data)
                self._fit_saved()
            else:
                self.stats.drops += 1
        else:
            self.stats.drops += 1
        self._remove(seq)

    def _fit_saved(self) -> None:
        while self.stats.saved_bytes > self.saved_limit and self._saved:
            _, oldest = self._saved.popitem(last=False)
            self.stats.saved_bytes -= len(oldest.data)
            self.stats.drops += 1

    # -- shared prefixes ------------------------------------------------------------

    def _wants_pin(self, src: Seq, common: int) -> bool:
        if src.shared or common < PIN_MIN or not self.can_cut:
            return False
        head = src.tokens[:common]
        return not any(s.shared and s.tokens == head for s in self._seqs.values())

    def _pin(self, src: Seq, common: int) -> None:
        shared = [s for s in self._seqs.values() if s.shared and not s.busy]
        if len(shared) >= MAX_SHARED:
            self._remove(min(shared, key=lambda s: s.used))
        pin = self._new_seq()
        self.backend.seq_cp(src.id, pin.id, 0, common)
        self._adopt(pin, src.tokens[:common], src.cells[:common])
        pin.shared = True
        pin.own = common
        pin.used = next(self._tick)
        self.stats.shared_prefixes += 1

    # -- books ----------------------------------------------------------------------

    def _new_seq(self) -> Seq:
        seq = Seq(self._free_ids.pop())
        self._seqs[seq.id] = seq
        return seq

    def _adopt(self, seq: Seq, tokens: list[int], cells: list[int]) -> None:
        seq.tokens = list(tokens)
        seq.cells = list(cells)
        for cell in cells:
            self._refs[cell] = self._refs.get(cell, 0) + 1

    def _trim(self, seq: Seq, n: int) -> None:
        if n >= len(seq.tokens):
            return
        if not self.backend.seq_rm(seq.id, n, -1):
            n = 0  # a cache that cannot be cut (recurrent models): start it again
            self.backend.seq_rm(seq.id, -1, -1)
        self._unref(seq.cells[n:])
        del seq.cells[n:]
        del seq.tokens[n:]

    def _remove(self, seq: Seq) -> None:
        self.backend.seq_rm(seq.id, -1, -1)
        self._unref(seq.cells)
        seq.cells, seq.tokens = [], []
        self._free_id(seq)

    def _free_id(self, seq: Seq) -> None:
        self._seqs.pop(seq.id, None)
        self._free_ids.append(seq.id)

    def _unref(self, cells: list[int]) -> None:
        for cell in cells:
            left = self._refs[cell] - 1
            if left:
                self._refs[cell] = left
            else:
                del self._refs[cell]


def _takeable(seq: Seq, common: int) -> bool:
    # ``own - 1``: the same prompt again shares all but its last token (whose logits
    # are needed afresh), and is the same conversation.
    return not seq.busy and not seq.shared and common >= seq.own - 1


def _common(held: list[int] | tuple[int, ...], req: Tokens, limit: int) -> int:
    """Length of the common prefix of ``held`` and ``req``, at most ``limit``."""
    n = min(len(held), limit)
    if n == 0:
        return 0
    same = np.asarray(held[:n], dtype=np.int64) == req[:n]
    return n if bool(same.all()) else int(np.argmin(same))
