"""Fitting a text request into the model's context window (no Qt, no torch).

Shared by every local engine: the engine says how many tokens a request's prompt takes
(``count``), this module decides what to leave out.

Rules, in order:

- the instruction and the system prompt always stay (a request whose fixed part alone does
  not fit is refused in plain words);
- a Max tokens larger than what the context leaves is lowered, and that is said;
- the document (the text to continue, or the context of a reply) keeps the text nearest the
  cursor: whole words at its start are left out until prompt + reply fit, and the number of
  words left out is said;
- a selection to rewrite is never cut: one too long to fit is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import Request

_WORD = re.compile(r"\S+")
MIN_REPLY = 16  # a reply shorter than this is not worth writing: the request is refused


@dataclass
class Fitted:
    request: Request  # a copy, with the document cut and max_tokens lowered where needed
    prompt_tokens: int
    max_tokens: int
    notes: list[str] = field(default_factory=list)  # what the user is told
    words_left_out: int = 0


def _with(request: Request, **params) -> Request:
    copy = Request.from_dict(request.to_dict())
    copy.params.update(params)
    return copy


def _tail_words(text: str, skip: int) -> str:
    """``text`` without its first ``skip`` words (the rest as it was, spacing kept)."""
    if skip <= 0:
        return text
    found = list(_WORD.finditer(text))
    return "" if skip >= len(found) else text[found[skip].start():]


def fit(request: Request, n_ctx: int, count: Callable[[Request], int]) -> Fitted:
    """The request as it fits in ``n_ctx`` tokens; ``count(request)`` = its prompt's tokens.

    Raises BadInput when even the instruction (or the selection to rewrite) cannot fit.
    """
    p = request.params
    wanted = int(p.get("max_tokens", 200))
    doc_key = "context" if request.task in ("generate", "continue") else ""
    document = str(p.get(doc_key, "")) if doc_key else ""
    notes: list[str] = []

    # the fixed part: everything but the document
    fixed = count(_with(request, **{doc_key: ""})) if doc_key and document else count(request)
    if fixed + MIN_REPLY > n_ctx:
        if request.task == "rewrite":
            raise BadInput(f"The selection is too long to rewrite with this model: it takes "
                           f"{fixed:,} tokens and the model reads at most {n_ctx:,}. Select "
                           "a shorter passage.")
        raise BadInput(f"The instruction and system prompt take {fixed:,} tokens; this model "
                       f"reads at most {n_ctx:,}. Shorten them.")
    max_tokens = wanted
    if fixed + max_tokens > n_ctx:
        max_tokens = n_ctx - fixed
        notes.append(f"Max tokens lowered to {max_tokens:,} (the model's context is "
                     f"{n_ctx:,} tokens)")
    if not document:
        return Fitted(_with(request, max_tokens=max_tokens), fixed, max_tokens, notes)

    full = count(request)
    if full + max_tokens <= n_ctx:
        return Fitted(_with(request, max_tokens=max_tokens), full, max_tokens, notes)
    # keep the end of the document: leave out the fewest words at its start that make it fit
    if request.task == "continue" and max_tokens > n_ctx // 2:
        # a continuation needs its text: never let the reply crowd out more than half
        max_tokens = max(MIN_REPLY, n_ctx // 2)
        notes.append(f"Max tokens lowered to {max_tokens:,} to keep the text before the "
                     "cursor in view")
    words = len(document.split())
    # the fewest words to skip (none, where the lowered reply above made room); skipping
    # them all always fits (an empty document is the fixed part)
    low, high = 0, words
    while low < high:
        mid = (low + high) // 2
        trial = _with(request, **{doc_key: _tail_words(document, mid)})
        if count(trial) + max_tokens <= n_ctx:
            high = mid
        else:
            low = mid + 1
    if not high:
        return Fitted(_with(request, max_tokens=max_tokens), full, max_tokens, notes)
    kept = _tail_words(document, high)
    fitted = _with(request, **{doc_key: kept, "max_tokens": max_tokens})
    notes.append(f"the first {high:,} word{'s' if high != 1 else ''} of the document were "
                 f"left out (the model reads {n_ctx:,} tokens)")
    return Fitted(fitted, count(fitted), max_tokens, notes, high)
