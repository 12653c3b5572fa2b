"""Editing notes in the piano roll (plugins/music/roll_edit.py, no Qt)."""

from __future__ import annotations

from creative_studio.io.midi import Note
from plugins.music.roll_edit import RollEdit, bars_between


def roll() -> RollEdit:
    return RollEdit([Note(0, 1, 60), Note(1, 1, 62), Note(2, 0.5, 64, 70, 1)], length=8.0)


def test_select_toggle_and_clear():
    edit = roll()
    edit.select(1)
    assert edit.selected == {1}
    edit.select(2, add=True)
    assert edit.selected == {1, 2}
    edit.select(1, add=True)  # Shift-click on a selected note lets it go
    assert edit.selected == {2}
    edit.select(None, add=True)
    assert edit.selected == {2}
    edit.select(None)
    assert edit.selected == set()
    edit.select(7)  # no such note
    assert edit.selected == set()
    edit.select_all()
    assert edit.selected == {0, 1, 2}


def test_the_note_under_the_pointer():
    edit = RollEdit([Note(0, 2, 60), Note(1, 2, 60), Note(0, 4, 64)])
    assert edit.note_at(0.5, 60) == 0
    assert edit.note_at(1.5, 60) == 1  # the later start lies on top
    assert edit.note_at(2.5, 60) == 1
    assert edit.note_at(3.5, 60) is None
    assert edit.note_at(3.5, 64) == 2
    assert edit.note_at(0.5, 61) is None


def test_add_snaps_and_selects_and_undo_redo_walk_back_and_forth():
    edit = roll()
    assert not edit.modified and not edit.can_undo()
    index = edit.add(3.13, 67)
    assert edit.notes[index] == Note(3.25, 0.5, 67, 90, 0) and edit.selected == {index}
    assert edit.modified
    assert edit.undo() and len(edit.notes) == 3 and not edit.can_undo() and edit.can_redo()
    assert edit.redo() and edit.notes[-1] == Note(3.25, 0.5, 67, 90, 0)
    assert not edit.redo()
    edit.add(-5, 200, duration=0.01)  # clamped: time ≥ 0, pitch ≤ 127, one grid step
    assert edit.notes[-1] == Note(0.0, 0.25, 127, 90, 0)
    edit.add(50, 60)  # not past the piece's end
    assert edit.notes[-1].start == 7.75


def test_a_new_change_drops_the_redo():
    edit = roll()
    edit.add(4, 60)
    edit.undo()
    edit.select(0)
    edit.delete()
    assert not edit.can_redo()


def test_delete_the_selection():
    edit = roll()
    assert edit.delete() == 0 and not edit.modified  # nothing selected: no step
    edit.select(0)
    edit.select(2, add=True)
    assert edit.delete() == 2
    assert edit.notes == [Note(1, 1, 62)] and edit.selected == set()
    edit.undo()
    assert edit.notes == roll().notes and edit.selected == {0, 2}


def test_move_snaps_keeps_voice_and_velocity_and_stays_inside():
    edit = roll()
    edit.select(2)
    assert edit.move(0.6, 3)
    assert edit.notes[2] == Note(2.5, 0.5, 67, 70, 1)
    edit.select(0)
    edit.select(1, add=True)
    assert not edit.move(-0.1, 0)  # snaps to nothing: no step
    assert not edit.move(-3.0, 0)  # the earliest is at 0 already: nowhere to go
    assert [n.start for n in edit.notes[:2]] == [0.0, 1.0]
    assert edit.move(0, 100)  # pitches up to 127
    assert [n.pitch for n in edit.notes[:2]] == [125, 127]
    assert edit.move(20.0, 0)  # the latest may start on the last grid step
    assert max(n.start for n in edit.notes[:2]) == 7.75


def test_resize_keeps_a_grid_step_and_the_end():
    edit = roll()
    edit.select(0)
    assert edit.resize(-5)
    assert edit.notes[0].duration == 0.25
    assert edit.resize(20)
    assert edit.notes[0].duration == 8.0  # up to the piece's end
    assert not edit.resize(0.05)


def test_a_drag_is_one_step_and_an_empty_drag_none():
    edit = roll()
    edit.select(1)
    edit.begin_drag()
    edit.drag("move", 0.5, 1)
    edit.drag("move", 1.0, 2)  # from where it began, not from the last position
    assert edit.end_drag()
    assert edit.notes[1] == Note(2.0, 1, 64)
    assert edit.undo() and edit.notes == roll().notes and not edit.can_undo()
    edit.select(1)
    edit.begin_drag()
    edit.drag("resize", 0.04)
    assert not edit.end_drag() and not edit.can_undo()
    edit.begin_drag()
    edit.drag("resize", 1.0)
    assert edit.end_drag() and edit.notes[1].duration == 2.0


def test_sorted_notes():
    edit = RollEdit([Note(2, 1, 60), Note(0, 1, 64), Note(0, 1, 60)])
    assert [(n.start, n.pitch) for n in edit.sorted_notes()] == [(0, 60), (0, 64), (2, 60)]


def test_bars_between_a_drags_two_ends():
    assert bars_between(0.5, 9.0, 4.0, 8) == (1, 3)
    assert bars_between(9.0, 0.5, 4.0, 8) == (1, 3)
    assert bars_between(4.0, 8.0, 4.0, 8) == (2, 2)  # ending on a bar line: not the next
    assert bars_between(-3, 100, 4.0, 8) == (1, 8)
    assert bars_between(5.0, 5.0, 3.0, 8) == (2, 2)
