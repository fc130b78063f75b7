"""The token ids of recent turns, so a conversation's next prompt repeats them exactly.

A prompt is rendered as text and tokenized again at every step. The part that is the
previous prompt tokenizes as it did before, but the model's own reply often does not: a
reply decoded under a grammar is a valid but not the canonical tokenization of its text
(``{"`` then ``name`` where the tokenizer would write ``{"name``). The KV cache holds the
tokens the model generated, so a fresh tokenization stops matching it a few tokens into
the reply, and the rest of the reply is evaluated again at every later step.

``TokenHistory`` remembers, for each finished turn, the text of prompt plus reply and the
exact tokens the cache holds for it. A later prompt whose text starts with one of those
texts is tokenized as those tokens plus the tokenization of the rest. The tokens are the
model's own spelling of the same text, so the prompt says the same thing either way.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["TokenHistory"]


class TokenHistory:
    """Recent (text, tokens) pairs of one model; thread-safe, least recently used first out."""

    def __init__(self, limit: int = 128) -> None:
        self.limit = limit
        self._items: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def remember(self, text: str, tokens: list[int]) -> None:
        """``tokens`` are what the cache holds for ``text`` (a prompt and its reply)."""
        if not text or not tokens or self.limit <= 0:
            return
        with self._lock:
            self._items[text] = tuple(tokens)
            self._items.move_to_end(text)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def tokenize(
        self,
        text: str,
        whole: Callable[[str], list[int]],
        rest: Callable[[str], list[int]],
    ) -> list[int]:
        """``text`` as tokens: a remembered start as it was, the rest by ``rest``.

        ``whole`` tokenizes a text that starts no remembered one (BOS handling included);
        ``rest`` tokenizes a continuation (no BOS, special tokens read as such).
        """
        with self._lock:
            best = ""
            for known in self._items:
                if len(known) > len(best) and text.startswith(known):
                    best = known
            head = self._items[best] if best else None
            if best:
                self._items.move_to_end(best)
        if head is None:
            return whole(text)
        tail = text[len(best) :]
        return [*head, *rest(tail)] if tail else list(head)
