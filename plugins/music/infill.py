"""Regenerate chosen bars of a MIDI (infill): what the model reads, and the MIDI it makes.

The Music model learned fill-in-the-middle (tools/music/infill_train.py): it reads

    BOS Style Mode <bars before> Infill_Suffix <bars after> [EOS] Infill_Middle

and writes the chosen bars, ending with ``Infill_End``. The three tokens follow the REMI
vocabulary; the model's ``config.json`` names them (``infill_tokens``); a model without them
cannot fill bars. Where both sides do not fit the context, the bars nearest the selection
are kept (the same rule in training and here: :func:`arrange`). Every note that starts
outside the selection stays exactly as it was; the new notes end at the selection's end.
No torch import at module level.
"""

from __future__ import annotations

INFILL_NAMES = ("suffix", "middle", "end")
EPS = 1e-6
MAX_BARS = 8  # trained on 1–4: more is allowed, said to be looser at the far end


def infill_ids(vocab_size: int) -> dict[str, int]:
    """The three infill tokens' ids after a REMI vocabulary of ``vocab_size``."""
    return {name: vocab_size + i for i, name in enumerate(INFILL_NAMES)}


def model_infill_ids(model) -> dict[str, int] | None:
    """The infill tokens a model declares (config ``infill_tokens``), None without them."""
    found = getattr(getattr(model, "config", None), "infill_tokens", None)
    if not isinstance(found, dict) or set(found) != set(INFILL_NAMES):
        return None
    ids = {name: int(found[name]) for name in INFILL_NAMES}
    size = getattr(model.config, "vocab_size", 0)
    return ids if all(0 <= i < size for i in ids.values()) else None


def split_bars(body: list[int], bar: int) -> list[list[int]]:
    """A piece's body (no BOS/Style/Mode, no EOS) as its bars, each from its Bar token."""
    bars: list[list[int]] = []
    for token in body:
        if token == bar or not bars:
            bars.append([])
        bars[-1].append(token)
    return bars


def arrange(head: list[int], before: list[list[int]], after: list[list[int]], budget: int,
            special: dict[str, int], eos: int, ends: bool) -> list[int]:
    """The prompt up to ``Infill_Middle``: the head, as many bars before and after as fit in
    ``budget`` tokens, nearest the middle first, a side at a time; ``EOS`` after the bars
    after when they are all kept and ``ends`` (the piece ends there)."""
    kept_before: list[list[int]] = []
    kept_after: list[list[int]] = []
    i, j = len(before) - 1, 0
    while i >= 0 or j < len(after):
        took = False
        if i >= 0 and len(before[i]) <= budget:
            kept_before.insert(0, before[i])
            budget -= len(before[i])
            i -= 1
            took = True
        if j < len(after) and len(after[j]) <= budget:
            kept_after.append(after[j])
            budget -= len(after[j])
            j += 1
            took = True
        if not took:
            break
    suffix = [t for b in kept_after for t in b]
    if ends and j == len(after):
        suffix.append(eos)
    return (head + [t for b in kept_before for t in b] + [special["suffix"]] + suffix
            + [special["middle"]])


def merge(notes: list, new: list, start: float, end: float) -> list:
    """The notes that start before ``start`` or at/after ``end`` as they were, and the new
    ones (already in place) that start inside, each ending by ``end``."""
    from creative_studio.io.midi import Note

    inside = [Note(n.start, min(n.duration, end - n.start), n.pitch, n.velocity)
              for n in new if start - EPS <= n.start < end - EPS]
    kept = [n for n in notes if n.start < start - EPS or n.start >= end - EPS]
    return sorted(kept + inside, key=lambda n: (n.start, n.pitch))


def _top(group: list, first: bool) -> int | None:
    """The highest pitch at the group's first (or last) onset; None for no notes."""
    if not group:
        return None
    at = min(n.start for n in group) if first else max(n.start for n in group)
    return max(n.pitch for n in group if abs(n.start - at) < EPS)


def edges(notes: list, start: float, end: float) -> tuple[int | None, int | None]:
    """The pitches a selection joins: the last note before it and the first after it (the
    highest of a chord), None where there is none."""
    return (_top([n for n in notes if n.start < start - EPS], first=False),
            _top([n for n in notes if n.start >= end - EPS], first=True))


def joins(notes: list, start: float, end: float) -> list[int]:
    """Semitones from the last note before the selection to the first inside it, and from
    the last inside to the first after it (where both exist; the highest of a chord)."""
    before, after = edges(notes, start, end)
    inside = [n for n in notes if start - EPS <= n.start < end - EPS]
    inside_first, inside_last = _top(inside, first=True), _top(inside, first=False)
    found = []
    if before is not None and inside_first is not None:
        found.append(abs(inside_first - before))
    if inside_last is not None and after is not None:
        found.append(abs(after - inside_last))
    return found
