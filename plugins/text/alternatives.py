"""Token alternatives (no Qt): what else the model could have written at each token.

Every engine that can tell keeps, per generated token, ``[start, probability,
[[alternative, probability]…]]`` in the result's ``alternatives`` (llama.cpp reads its own
logits; servers are asked for ``logprobs``). The Text panel finds the passage under a click
in the document (``passage_at``), the token there (``token_at``), and offers its
alternatives; picking one rewrites the passage from that token and continues from it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ALTERNATIVES = 5  # the most likely tokens kept at each generated token
MAX_TOKENS = 4096  # beyond this many tokens a reply keeps no alternatives


@dataclass
class Passage:
    """A generated text with its alternatives, as the History keeps it."""

    item_id: str
    text: str
    alternatives: list | None  # None: not read from the project yet


@dataclass
class Found:
    passage: Passage
    start: int  # where the passage begins in the document
    token: int  # the index of the token under the click
    entry: list  # [start in the passage, probability, [[alternative, probability]…]]

    @property
    def token_start(self) -> int:
        """Where the token begins in the document."""
        return self.start + int(self.entry[0])

    def token_text(self) -> str:
        """The token as it stands in the passage."""
        following = self.passage.alternatives[self.token + 1:self.token + 2]
        end = int(following[0][0]) if following else len(self.passage.text)
        return self.passage.text[int(self.entry[0]):end]


def valid(alternatives: Any) -> list:
    """The well-formed entries of a result's ``alternatives`` (a project is untrusted)."""
    if not isinstance(alternatives, list):
        return []
    good, last = [], -1
    for entry in alternatives[:MAX_TOKENS]:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], int)
                and entry[0] > last and isinstance(entry[2], list)):
            return good
        shown = [pair for pair in entry[2][:20] if isinstance(pair, list) and len(pair) == 2
                 and isinstance(pair[0], str) and isinstance(pair[1], int | float)]
        good.append([entry[0], entry[1], shown])
        last = entry[0]
    return good


def token_at(alternatives: list, offset: int) -> int | None:
    """The index of the token covering ``offset`` (characters into the passage)."""
    if not alternatives or offset < alternatives[0][0]:
        return None
    return bisect.bisect_right([entry[0] for entry in alternatives], offset) - 1


def passage_at(document: str, position: int, passages: list[Passage],
               load: Callable[[Passage], list] | None = None) -> Found | None:
    """The passage (newest first) that the document holds around ``position``, and its token
    there. A passage is found by its text, so it is found after a reload too; one edited
    since it was written is no longer found. ``load`` reads a passage's alternatives from
    the project the first time it is needed (the panel keeps only ids and texts)."""
    for passage in passages:
        if not passage.text or passage.alternatives == []:
            continue
        start = document.find(passage.text)
        while start >= 0 and start + len(passage.text) <= position:
            start = document.find(passage.text, start + 1)
        if start < 0 or start > position:
            continue
        if passage.alternatives is None:
            passage.alternatives = load(passage) if load is not None else []
        index = token_at(passage.alternatives, position - start)
        if index is not None:
            return Found(passage, start, index, passage.alternatives[index])
    return None
