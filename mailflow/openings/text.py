"""Japanese-aware terms for matching an opening's title and description against a candidate's
desired role and career: SudachiPy with its core dictionary, split mode A (short units), each
word's normalised form (ドライバ → ドライバー, JAVA → Java), case-folded; nouns and verbs of two
characters or more, and ASCII nouns of any length.

Chosen over SQLite FTS5's `trigram` tokenizer after measuring both (and fugashi with unidic-lite)
on 300 constructed careers (`benchmarks/japanese_matching.py`, figures in docs/reference.md):
trigram cannot match a word shorter than three characters, and many Japanese job words are two
(営業, 経理, 人事, 労務), so its precision@10 was 0.83 against 1.00 for either analyser.
SudachiPy normalises spelling variants, which unidic-lite's lemmas do less, and its dictionary
package is the smaller one.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from mailflow.openings.ranking import fold

_CONTENT = ("名詞", "動詞")
MAX_CHARS = 10_000  # Sudachi refuses an input over 49,149 bytes
_LOCK = threading.Lock()  # one tokenizer, used by one thread at a time


@functools.lru_cache(maxsize=1)
def _tokenizer() -> Any:
    from sudachipy import Dictionary

    return Dictionary().tokenizer()


@functools.lru_cache(maxsize=4096)
def terms(text: str) -> frozenset[str]:
    """The content words of `text`, normalised (cached: a pool's careers repeat)."""
    from sudachipy import SplitMode

    folded = fold(text)[:MAX_CHARS]
    if not folded:
        return frozenset()
    with _LOCK:
        morphemes = list(_tokenizer().tokenize(folded, SplitMode.A))
    found = set()
    for m in morphemes:
        surface, pos = m.surface(), m.part_of_speech()[0]
        if pos in _CONTENT and (len(surface) > 1 or (surface.isascii() and surface.isalnum())):
            found.add(fold(m.normalized_form()))
    return frozenset(found)
