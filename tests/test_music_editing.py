"""The Music panel's piano roll in the real window: notes edited with the mouse and keys,
kept as a new item whose parent is the original, bars chosen for Regenerate bars."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from creative_studio.io.midi import Note, read_notes, write_midi

pytest.importorskip("miditok")


def tune() -> list[Note]:
    steps = (0, 2, 4, 5, 7, 5, 4, 2)
    return [Note(i * 0.5, 0.5, 60 + steps[i % 8]) for i in range(32)]  # 4 bars of eighths


def point(roll, time: float, pitch: int) -> QPoint:
    """Where a note's middle is drawn."""
    low, high = roll._range
    _, _, row = roll._area()
    return QPoint(round(roll._x(time)), round(4 + (high - pitch + 0.5) * row))


@pytest.fixture
def music(make_window, tmp_path):
    window = make_window()
    window.resize(1280, 820)
    panel = window.panels["music"]
    window.tabs.setCurrentWidget(panel)
    source = tmp_path / "tune.mid"
    source.write_bytes(write_midi(tune(), 120, (4, 4)))
    prompt = panel.open_midi(source)
    assert prompt
    return window, panel, prompt


def test_a_note_deleted_added_and_undone_is_kept_as_a_new_item(qtbot, music):
    window, panel, prompt = music
    roll = panel.roll
    assert len(roll.notes) == 32 and "notes" in panel.legend.text()
    assert not panel.save_edit_button.isEnabled()
    qtbot.mouseClick(roll, Qt.MouseButton.LeftButton, pos=point(roll, 1.25, 64))  # the 3rd
    assert roll.edit.selected == {2}
    qtbot.keyClick(roll, Qt.Key.Key_Delete)
    assert len(roll.notes) == 31 and panel.save_edit_button.isEnabled()
    assert "Edited: 31 notes" in panel.message.text()
    qtbot.mouseDClick(roll, Qt.MouseButton.LeftButton, pos=point(roll, 1.3, 69))  # inside the cell at 1.25
    assert len(roll.notes) == 32 and roll.notes[-1].pitch == 69
    assert roll.notes[-1].start == pytest.approx(1.25)  # on the sixteenth grid
    qtbot.keyClick(roll, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert len(roll.notes) == 31
    # drag the first note up two semitones and one eighth later
    press, drop = point(roll, 0.2, 60), point(roll, 0.7, 62)
    qtbot.mousePress(roll, Qt.MouseButton.LeftButton, pos=press)
    qtbot.mouseMove(roll, drop)
    qtbot.mouseRelease(roll, Qt.MouseButton.LeftButton, pos=drop)
    assert roll.notes[0] == Note(0.5, 0.5, 62)
    new_id = panel.save_edits()
    item = window.store.item(new_id)
    assert item.parents == [prompt] and item.request.task == "edit"
    assert item.title == "Edited: tune.mid" and item.metadata["notes"] == 31
    content = read_notes(window.store.asset_bytes(item.assets[0].id))
    expected = sorted([Note(0.5, 0.5, 62)] + [n for i, n in enumerate(tune()) if i not in (0, 2)],
                      key=lambda n: (n.start, n.pitch))
    assert [(n.start, n.duration, n.pitch) for n in content.notes] == \
        [(n.start, n.duration, n.pitch) for n in expected]
    assert content.tempo == pytest.approx(120) and content.time_signature == (4, 4)
    # the original is as it was; the new item is shown, selected in the History, not re-run
    original = read_notes(window.store.asset_bytes(window.store.item(prompt).assets[0].id))
    assert len(original.notes) == 32
    assert panel.current.id == new_id and not panel.save_edit_button.isEnabled()
    assert window.history.current_item().id == new_id
    assert not window.history.buttons["rerun"].isEnabled()
    assert window.rerun(item) is None


def test_nothing_to_keep_when_every_note_is_deleted(qtbot, music):
    window, panel, _ = music
    count = window.store.count()
    qtbot.keyClick(panel.roll, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(panel.roll, Qt.Key.Key_Delete)
    assert panel.save_edits() is None and window.store.count() == count
    assert "every note was deleted" in panel.message.text()


def test_bars_chosen_on_the_ruler_set_up_regenerate_bars(qtbot, music):
    window, panel, prompt = music
    roll = panel.roll
    y = roll.height() - 5
    qtbot.mousePress(roll, Qt.MouseButton.LeftButton, pos=QPoint(round(roll._x(4.5)), y))
    qtbot.mouseMove(roll, QPoint(round(roll._x(11.0)), y))
    qtbot.mouseRelease(roll, Qt.MouseButton.LeftButton, pos=QPoint(round(roll._x(11.0)), y))
    assert roll.chosen == (2, 3)
    assert panel.task.currentData() == "infill" and panel.prompt_item == prompt
    assert (panel.from_bar.value(), panel.to_bar.value()) == (2, 3)
    assert "Chosen: bars 2–3 of tune.mid" in panel.message.text()
    params = panel.param_values("infill")
    assert (params["from_bar"], params["to_bar"]) == (2, 3)
    assert params["tonic"] == params["mode"] == "auto"


def test_the_greyed_key_boxes_show_the_key_read_from_the_midi(make_window, tmp_path):
    window = make_window()
    panel = window.panels["music"]
    panel.tonic.setCurrentIndex(panel.tonic.findData(2))  # an old choice: D major
    source = tmp_path / "a-minor.mid"
    notes = [Note(i * 1.0, 1.0, p) for i, p in enumerate([57, 60, 64, 69, 64, 60, 57, 56, 57])]
    source.write_bytes(write_midi(notes, 96, (3, 4), key=(0, "major")))  # signature: no ♯/♭
    assert panel.open_midi(source)
    assert panel.auto_key.isChecked() and not panel.tonic.isEnabled()
    assert (panel.tonic.currentData(), panel.mode.currentData()) == (9, "minor")
    assert "key found: A minor" in panel.prompt_label.text()
    assert panel.tempo.value() == 96


def test_chords_of_a_midi_fill_the_field_and_show_in_the_roll(make_window, tmp_path):
    from creative_studio.io.midi import CHORD_TRACK, Part, write_parts
    from plugins.music import chords

    window = make_window()
    panel = window.panels["music"]
    placed = chords.place(chords.parse_progression("Am | Dm E7"), 2, 3.0)
    melody = [Note(i * 1.0, 1.0, p) for i, p in enumerate([69, 72, 76, 74, 77, 71])]
    source = tmp_path / "waltz.mid"
    source.write_bytes(write_parts([Part(melody), Part(chords.track(placed), 0, CHORD_TRACK)],
                                   120, (3, 4), marks=[(c.start, c.symbol) for c in placed]))
    assert panel.open_midi(source)
    assert panel.roll.chords == [(0.0, "Am"), (3.0, "Dm"), (4.5, "E7")]
    assert len(panel.roll.notes) == 6  # the chord track is not part of the melody
    panel.task.setCurrentIndex(panel.task.findData("harmonize"))
    assert panel.find_chords_button.isVisibleTo(panel)
    assert panel.fill_chords() == "Am | Dm E7" and panel.chords.text() == "Am | Dm E7"
    assert panel.param_values("harmonize")["chords"] == "Am | Dm E7"
    panel.task.setCurrentIndex(panel.task.findData("generate"))
    assert not panel.find_chords_button.isVisibleTo(panel)
    assert panel.param_values("generate")["end_on_tonic"] is True
    panel.task.setCurrentIndex(panel.task.findData("humanize"))
    assert "chords" not in panel.param_values("humanize")


def test_an_edit_keeps_the_chords_of_the_midi(qtbot, make_window, tmp_path):
    from creative_studio.io.midi import CHORD_TRACK, Part, write_parts
    from plugins.music import chords

    window = make_window()
    panel = window.panels["music"]
    placed = chords.place([["C"], ["G"]], 2, 4.0)
    source = tmp_path / "two.mid"
    source.write_bytes(write_parts([Part(tune()[:16]), Part(chords.track(placed), 0,
                                                            CHORD_TRACK)],
                                   100, (4, 4), marks=[(c.start, c.symbol) for c in placed]))
    assert panel.open_midi(source)
    panel.roll.setFocus()
    panel.roll.edit.select(0)
    qtbot.keyClick(panel.roll, Qt.Key.Key_Delete)
    item = window.store.item(panel.save_edits())
    content = read_notes(window.store.asset_bytes(item.assets[0].id))
    assert len(content.notes) == 15
    assert content.marks == [(0.0, "C"), (4.0, "G")] and content.chord_notes


def test_an_edit_keeps_each_tracks_name_and_instrument(qtbot, make_window, tmp_path):
    from creative_studio.io.midi import Part, write_parts

    window = make_window()
    panel = window.panels["music"]
    source = tmp_path / "duet.mid"
    source.write_bytes(write_parts([Part(tune()[:16], 73, "Flute"),
                                    Part([Note(0.0, 4.0, 48), Note(4.0, 4.0, 43)], 32, "Bass")],
                                   100, (4, 4)))
    assert panel.open_midi(source)
    panel.roll.edit.select(0)
    panel.roll.setFocus()
    qtbot.keyClick(panel.roll, Qt.Key.Key_Delete)
    item = window.store.item(panel.save_edits())
    content = read_notes(window.store.asset_bytes(item.assets[0].id))
    assert content.tracks == [("Flute", 73), ("Bass", 32)]
    assert sorted({n.voice for n in content.notes}) == [0, 1]


def test_chords_of_the_midi_without_a_midi_say_so(make_window):
    panel = make_window().panels["music"]
    assert panel.fill_chords() == "" and panel.chords.text() == ""
    assert "Open a MIDI first" in panel.message.text()
