"""Editing notes in the piano roll, without Qt: select, add, move, resize, delete, undo.

The roll widget turns mouse and keys into these calls; everything here is plain data, so the
rules are tested directly. Times are in quarter notes and snap to :attr:`RollEdit.grid` (a
sixteenth by default); pitches stay in MIDI's 0–127 and a note keeps at least one grid step.
Every change is one undo step (a copy of the notes before it: a melody is a few hundred
notes at most). The edited notes become a new History item whose parent is the one shown —
never an overwrite (the panel's "Save as new item").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from creative_studio.io.midi import Note

MAX_UNDO = 200


def _snap(value: float, grid: float) -> float:
    return round(value / grid) * grid


@dataclass
class RollEdit:
    notes: list[Note] = field(default_factory=list)
    grid: float = 0.25  # quarter notes (a sixteenth)
    length: float | None = None  # where the piece ends (notes may not start past it)
    selected: set[int] = field(default_factory=set)
    _undo: list[tuple[list[Note], set[int]]] = field(default_factory=list)
    _redo: list[tuple[list[Note], set[int]]] = field(default_factory=list)
    _drag_from: list[Note] | None = None

    # -- what the widget asks --------------------------------------------------------------
    @property
    def modified(self) -> bool:
        return bool(self._undo)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def note_at(self, time: float, pitch: int) -> int | None:
        """The index of the note under (time, pitch), the latest-starting one on top."""
        found = [i for i, n in enumerate(self.notes)
                 if n.pitch == pitch and n.start <= time < n.start + n.duration]
        return max(found, key=lambda i: self.notes[i].start) if found else None

    # -- selection -------------------------------------------------------------------------
    def select(self, index: int | None, add: bool = False) -> None:
        """Select one note (``add``: toggle it in the selection); None clears unless
        ``add``."""
        if index is None or not 0 <= index < len(self.notes):
            if not add:
                self.selected = set()
        elif add:
            self.selected ^= {index}
        else:
            self.selected = {index}

    def select_all(self) -> None:
        self.selected = set(range(len(self.notes)))

    # -- changes (each one undo step) -------------------------------------------------------
    def _push(self) -> None:
        self._undo.append(([*self.notes], set(self.selected)))
        del self._undo[:-MAX_UNDO]
        self._redo.clear()

    def add(self, start: float, pitch: int, duration: float | None = None,
            velocity: int = 90, voice: int = 0) -> int:
        """A new note on the grid (one beat's eighth long unless told); it is selected."""
        start = max(0.0, _snap(start, self.grid))
        if self.length is not None:
            start = min(start, max(0.0, self.length - self.grid))
        duration = max(self.grid, _snap(duration or 2 * self.grid, self.grid))
        self._push()
        self.notes.append(Note(start, duration, max(0, min(127, int(pitch))), velocity,
                               voice))
        self.selected = {len(self.notes) - 1}
        return len(self.notes) - 1

    def delete(self) -> int:
        """Delete the selected notes; how many went."""
        if not self.selected:
            return 0
        self._push()
        gone = len(self.selected)
        self.notes = [n for i, n in enumerate(self.notes) if i not in self.selected]
        self.selected = set()
        return gone

    def move(self, dt: float, dpitch: int, push: bool = True) -> bool:
        """Move the selected notes by ``dt`` quarter notes (snapped) and ``dpitch``
        semitones, as far as the piece and MIDI's pitch range let them all go."""
        if not self.selected:
            return False
        chosen = [self.notes[i] for i in self.selected]
        dt = _snap(dt, self.grid)
        dt = max(dt, -min(n.start for n in chosen))
        if self.length is not None:
            dt = min(dt, self.length - self.grid - max(n.start for n in chosen))
        dpitch = max(-min(n.pitch for n in chosen), min(127 - max(n.pitch for n in chosen),
                                                        int(dpitch)))
        if abs(dt) < 1e-9 and dpitch == 0:
            return False
        if push:
            self._push()
        for i in self.selected:
            n = self.notes[i]
            self.notes[i] = replace(n, start=n.start + dt, pitch=n.pitch + dpitch)
        return True

    def resize(self, dduration: float, push: bool = True) -> bool:
        """Lengthen (or shorten) the selected notes by ``dduration``, each at least one
        grid step long."""
        if not self.selected:
            return False
        dduration = _snap(dduration, self.grid)
        if abs(dduration) < 1e-9:
            return False
        if push:
            self._push()
        for i in self.selected:
            n = self.notes[i]
            duration = n.duration + dduration
            if self.length is not None:  # never past the piece's end
                duration = min(duration, self.length - n.start)
            self.notes[i] = replace(n, duration=max(self.grid, duration))
        return True

    def begin_drag(self) -> None:
        """A drag (move or resize) starts: one undo step for the whole drag."""
        self._push()
        self._drag_from = [*self.notes]

    def drag(self, kind: str, dt: float, dpitch: int = 0) -> None:
        """Where the drag is now, from where it began: ``kind`` "move" or "resize"."""
        if self._drag_from is None:
            return
        self.notes = [*self._drag_from]
        if kind == "move":
            self.move(dt, dpitch, push=False)
        else:
            self.resize(dt, push=False)

    def end_drag(self) -> bool:
        """The drag ends; True when it changed something (one that did not leaves no undo
        step)."""
        self._drag_from = None
        if self._undo and self._undo[-1][0] == self.notes:
            self._undo.pop()
            return False
        return True

    def undo(self) -> bool:
        return self._step(self._undo, self._redo)

    def redo(self) -> bool:
        return self._step(self._redo, self._undo)

    def _step(self, back: list, forth: list) -> bool:
        """Bring back the notes on top of ``back``; what is shown now goes onto ``forth``."""
        if not back:
            return False
        forth.append(([*self.notes], set(self.selected)))
        self.notes, self.selected = back.pop()
        return True

    def sorted_notes(self) -> list[Note]:
        return sorted(self.notes, key=lambda n: (n.start, n.pitch, n.voice))


def bars_between(a: float, b: float, bar: float, bars: int) -> tuple[int, int]:
    """The bars (1-based, inclusive) a drag from time ``a`` to ``b`` covers, inside 1–bars."""
    first, last = sorted((a, b))
    one = max(1, min(bars, int(first // bar) + 1))
    two = max(one, min(bars, int(max(first, last - 1e-9) // bar) + 1))
    return one, two
