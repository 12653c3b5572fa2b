"""The Music panel: new ideas or a continued MIDI, a piano roll, audio preview, drag out."""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMimeData, QObject, QPointF, QRectF, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QColor, QDrag, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core import files
from creative_studio.core.errors import StudioError, describe
from creative_studio.core.jobs import Job
from creative_studio.core.project import Item
from creative_studio.io.midi import Note
from creative_studio.ui.panel import PluginPanel, narrow
from creative_studio.ui.widgets import SeedField, StatusLine, ask_path, menu_button

from .roll_edit import RollEdit, bars_between
from .tokens import MODES

TONICS = ("C", "C♯/D♭", "D", "E♭", "E", "F", "F♯/G♭", "G", "A♭", "A", "B♭", "B")
NAMES = ("C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B")
INSTRUMENTS = ((0, "Acoustic Grand Piano"), (4, "Electric Piano"), (6, "Harpsichord"),
               (11, "Vibraphone"), (12, "Marimba"), (19, "Church Organ"), (21, "Accordion"),
               (24, "Nylon Guitar"), (40, "Violin"), (42, "Cello"), (48, "Strings"),
               (52, "Choir Aahs"), (56, "Trumpet"), (68, "Oboe"), (71, "Clarinet"),
               (73, "Flute"), (74, "Recorder"), (109, "Bagpipe"), (110, "Fiddle"))
PLAYERS = (("pw-play", []), ("paplay", []), ("aplay", ["-q"]))
# soprano (or the one melody), alto, tenor, bass: told apart at a glance
VOICE_COLOURS = (QColor(52, 132, 228), QColor(224, 112, 40), QColor(60, 160, 90),
                 QColor(150, 90, 200))
MIDI_FILTER = "MIDI files (*.mid *.midi)"
GPT2_TASKS = ("generate", "continue", "infill")  # the Music model's; the others have their own
FINDS_KEY = ("continue", "infill", "harmonize", "revoice")  # the key may come from the MIDI
HARMONY_TASKS = ("harmonize", "revoice")  # their items are a track per voice (SATB)
log = logging.getLogger(__name__)


class PianoRoll(QWidget):
    """Notes over time (bars numbered, every row named), the kept prompt shaded, a playhead
    while playing — and the notes edited in place (roll_edit.RollEdit): click to select
    (Shift adds), drag to move, drag a note's right end to resize, double-click to add,
    Delete, Ctrl+Z / Ctrl+Shift+Z, arrows move by a sixteenth or a semitone. Dragging along
    the bar numbers chooses bars (``bars_chosen``), e.g. for Regenerate bars."""

    edited = Signal()  # the notes changed (or an undo/redo brought others back)
    bars_chosen = Signal(int, int)  # first and last bar, 1-based
    MARGIN = 36  # the pitch names' column
    RULER = 18  # the bar numbers' strip at the bottom
    EDGE = 5  # pixels at a note's right end that resize it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notes: list[Note] = []
        self.bar = 4.0  # quarter notes per bar
        self.prompt_end = 0.0
        self.sections: list[str] = []  # interpolation steps, side by side
        self.section = 0.0  # quarter notes per section
        self.playhead: float | None = None  # quarter notes
        self.edit = RollEdit()
        self.chosen: tuple[int, int] | None = None  # bars chosen (1-based, inclusive)
        self.chords: list[tuple[float, str]] = []  # chord symbols at their times, drawn above
        self._range = (60, 72)  # pitches shown (kept while editing: no jumping rows)
        self._length = 4.0
        self._drag: tuple[str, float, int] | None = None  # kind, press time, press pitch
        self._ruler_from: float | None = None
        self.setMinimumSize(400, 220)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)

    def set_notes(self, notes: list[Note], bar: float, prompt_end: float = 0.0,
                  sections: list[str] | None = None, section: float = 0.0,
                  chords: list[tuple[float, str]] | None = None) -> None:
        self.notes, self.bar, self.prompt_end, self.playhead = notes, bar, prompt_end, None
        self.chords = list(chords or [])
        self.sections, self.section = list(sections or []), section
        self.chosen = None
        self._length = self.length()
        self.edit = RollEdit([*notes], length=self._length)
        self._fit_range()
        self.update()

    def length(self) -> float:
        end = max((n.start + n.duration for n in self.notes), default=0.0)
        # a note ending a tick past the bar line (MIDI rounding) opens no extra bar
        bars = max(1, math.ceil(end / self.bar - 0.02))
        return bars * self.bar

    def bar_count(self) -> int:
        return max(1, round(self._length / self.bar))

    def choose_bars(self, first: int, last: int) -> None:
        self.chosen = (first, last) if first <= last else None
        self.update()

    # -- geometry ----------------------------------------------------------------------
    def _fit_range(self) -> None:
        """Rows for every note with room to move (only ever grown while editing)."""
        pitches = [n.pitch for n in self.edit.notes] or [60, 72]
        low, high = min(pitches) - 3, max(pitches) + 3
        if self.edit.modified:
            low, high = min(low, self._range[0]), max(high, self._range[1])
        self._range = (max(0, low), min(127, high))

    def _area(self) -> tuple[float, float, float]:
        """(width, height, row height) of the notes' area."""
        low, high = self._range
        width = max(1.0, self.width() - self.MARGIN - 4)
        height = max(1.0, self.height() - self.RULER - 4)
        return width, height, height / (high - low + 1)

    def _x(self, time: float) -> float:
        return self.MARGIN + time / self._length * self._area()[0]

    def _time(self, x: float) -> float:
        return (x - self.MARGIN) / self._area()[0] * self._length

    def _pitch(self, y: float) -> int:
        return self._range[1] - int((y - 4) // self._area()[2])

    # -- editing -------------------------------------------------------------------------
    def undo(self) -> None:
        if self.edit.undo():
            self._changed()

    def redo(self) -> None:
        if self.edit.redo():
            self._changed()

    def _changed(self) -> None:
        self.notes = self.edit.notes
        self._fit_range()
        self.update()
        self.edited.emit()

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        pos = event.position()
        if not self.notes and not self.edit.notes:
            return
        if pos.y() >= self.height() - self.RULER:
            self._ruler_from = self._time(pos.x())
            self._ruler_move(pos.x())
            return
        time, pitch = self._time(pos.x()), self._pitch(pos.y())
        index = self.edit.note_at(time, pitch)
        shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
        if index is None:
            self.edit.select(None, add=shift)
            self.update()
            return
        if not (index in self.edit.selected and not shift):
            self.edit.select(index, add=shift)
        note = self.edit.notes[index]
        kind = "resize" if self._x(note.start + note.duration) - pos.x() <= self.EDGE \
            else "move"
        if index in self.edit.selected:
            self.edit.begin_drag()
            self._drag = (kind, time, pitch)
        self.update()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        pos = event.position()
        if self._ruler_from is not None:
            self._ruler_move(pos.x())
            return
        if self._drag is None:
            time, pitch = self._time(pos.x()), self._pitch(pos.y())
            index = self.edit.note_at(time, pitch)
            near_end = index is not None and self._x(
                self.edit.notes[index].start + self.edit.notes[index].duration) - pos.x() \
                <= self.EDGE
            self.setCursor(Qt.CursorShape.SizeHorCursor if near_end else
                           Qt.CursorShape.ArrowCursor)
            return
        kind, time, pitch = self._drag
        self.edit.drag(kind, self._time(pos.x()) - time, self._pitch(pos.y()) - pitch)
        self.notes = self.edit.notes
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._ruler_from is not None:
            self._ruler_from = None
            if self.chosen:
                self.bars_chosen.emit(*self.chosen)
            return
        if self._drag is not None:
            self._drag = None
            if self.edit.end_drag():
                self._changed()

    def _ruler_move(self, x: float) -> None:
        if self._ruler_from is not None:
            self.chosen = bars_between(self._ruler_from, self._time(x), self.bar,
                                       self.bar_count())
            self.update()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt API
        pos = event.position()
        if pos.y() >= self.height() - self.RULER or (not self.notes and not self.edit.notes):
            return
        time, pitch = self._time(pos.x()), self._pitch(pos.y())
        if self.edit.note_at(time, pitch) is None:
            self.edit.add(time - self.edit.grid / 2, pitch)
            self._changed()

    def keyPressEvent(self, event) -> None:  # noqa: N802 - Qt API
        key, mods = event.key(), event.modifiers()
        ctrl = bool(mods & Qt.KeyboardModifier.ControlModifier)
        shift = bool(mods & Qt.KeyboardModifier.ShiftModifier)
        done = False
        if key in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            done = bool(self.edit.delete())
        elif ctrl and key in (Qt.Key.Key_Z, Qt.Key.Key_Y):  # where no Edit menu takes them
            self.redo() if shift or key == Qt.Key.Key_Y else self.undo()
            return
        elif ctrl and key == Qt.Key.Key_A:
            self.edit.select_all()
            self.update()
            return
        elif key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            step = 12 if shift else 1
            done = self.edit.move(0.0, step if key == Qt.Key.Key_Up else -step)
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right):
            step = self.bar if shift else self.edit.grid
            done = self.edit.move(step if key == Qt.Key.Key_Right else -step, 0)
        else:
            super().keyPressEvent(event)
            return
        if done:
            self._changed()

    # -- drawing -------------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.base())
        if not self.notes:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Generate an idea, or open a MIDI file to continue.")
            return
        low, high = self._range
        width, height, row = self._area()
        x_of = self._x
        font = painter.font()
        font.setPixelSize(max(6, min(11, int(row) - 1)))
        painter.setFont(font)
        for pitch in range(low, high + 1):  # black-key rows darker, every row named
            y = 4 + (high - pitch) * row
            if pitch % 12 in (1, 3, 6, 8, 10):
                painter.fillRect(QRectF(self.MARGIN, y, width, row), palette.alternateBase())
            if row >= 6 or pitch % 12 == 0:
                painter.setPen(palette.text().color())
                painter.drawText(QRectF(2, y, self.MARGIN - 4, row),
                                 Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight,
                                 pitch_name(pitch))
        if self.prompt_end > 0:
            painter.fillRect(QRectF(self.MARGIN, 4, x_of(self.prompt_end) - self.MARGIN,
                                    height), QColor(128, 128, 128, 40))
        if self.chosen:
            first, last = self.chosen
            highlight = QColor(palette.highlight().color())
            highlight.setAlpha(60)
            painter.fillRect(QRectF(x_of((first - 1) * self.bar), 4,
                                    x_of(last * self.bar) - x_of((first - 1) * self.bar),
                                    height + self.RULER - 4), highlight)
        bar, index = 0.0, 1
        while bar <= self._length + 1e-6:
            painter.setPen(QPen(palette.mid().color(), 1))
            painter.drawLine(QPointF(x_of(bar), 4), QPointF(x_of(bar), 4 + height))
            if bar < self._length:
                painter.setPen(palette.text().color())
                painter.drawText(QPointF(x_of(bar) + 2, self.height() - 3), str(index))
            bar += self.bar
            index += 1
        if self.sections and self.section > 0:  # interpolation steps: named, separated
            for index, name in enumerate(self.sections):
                x = x_of(index * self.section)
                painter.setPen(QPen(palette.text().color(), 2))
                painter.drawLine(QPointF(x, 4), QPointF(x, 4 + height))
                painter.drawText(QPointF(x + 4, 16), name)
        if self.chords:  # the progression, along the top of the notes
            bold = painter.font()
            bold.setBold(True)
            bold.setPixelSize(11)
            painter.setFont(bold)
            for time, symbol in self.chords:
                if time < self._length:
                    box = QRectF(x_of(time) + 2, 5, painter.fontMetrics().horizontalAdvance(
                        symbol) + 6, 15)
                    painter.fillRect(box, QColor(palette.base().color().red(),
                                                 palette.base().color().green(),
                                                 palette.base().color().blue(), 200))
                    painter.setPen(palette.text().color())
                    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, symbol)
            painter.setFont(font)
        outline = QPen(palette.text().color(), 2)
        for index, note in enumerate(self.notes):
            colour = QColor(120, 120, 120) if note.start < self.prompt_end else \
                VOICE_COLOURS[note.voice % len(VOICE_COLOURS)]
            rect = QRectF(x_of(note.start), 4 + (high - note.pitch) * row,
                          max(2.0, note.duration / self._length * width - 1), max(2.0, row - 1))
            painter.fillRect(rect, colour)
            if index in self.edit.selected:
                painter.setPen(outline)
                painter.drawRect(rect)
        if self.playhead is not None:
            painter.setPen(QPen(QColor(230, 60, 60), 2))
            x = x_of(min(self.playhead, self._length))
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))


def pitch_name(pitch: int) -> str:
    """C4 = MIDI 60, sharps as the keyboard's black keys."""
    return f"{NAMES[pitch % 12]}{pitch // 12 - 1}"


class DragMidi(QPushButton):
    """Press and drag to drop the MIDI (with its recipe) into a DAW or a file manager."""

    def __init__(self, panel: MusicPanel) -> None:
        super().__init__("Drag MIDI ⇲")
        self.panel = panel
        self.setToolTip("Drag this into your DAW or a folder")
        self._press: QPointF | None = None

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._press = event.position()
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._press is None or (event.position() - self._press).manhattanLength() < 8:
            return
        self._press = None
        path = self.panel.midi_file_for_drag()
        if path is None:
            return
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.exec(Qt.DropAction.CopyAction)
        self.setDown(False)


class Renderer(QObject):
    """Renders WAV previews on a plain thread; ``done(key, wav_path_or_None, message)``."""

    done = Signal(object, object, str)
    closing = False  # the window closes: finished renders are dropped, nothing is written

    def render(self, key: str, data: bytes, folder: Path) -> None:
        def work() -> None:
            from creative_studio.io.midi import render_wav

            try:
                wav, engine = render_wav(data)
                if self.closing:
                    return
                # the item id comes from the project file: never a path of its own
                path = files.contained(folder, f"{key}.wav")
                files.atomic_write(path, wav)
                self.done.emit(key, path, engine)
            except Exception as exc:  # a broken soundfont, out of memory: shown, not raised
                log.warning("audio preview failed", exc_info=True)
                if not self.closing:
                    self.done.emit(key, None, describe(exc))

        threading.Thread(target=work, name="music-render", daemon=True).start()


class MusicPanel(PluginPanel):
    def __init__(self, context, manifest, parent: QWidget | None = None) -> None:
        super().__init__(context, manifest, parent)
        self.setAcceptDrops(True)
        self.prompt_item: str | None = None
        self._found_key: tuple[int, str] | None = None  # the key of the MIDI read
        self.current: Item | None = None
        self._shown_notes: list[Note] = []
        self._tempo = 100.0
        # audio previews; what killed runs left behind is removed first
        files.remove_stale(Path(tempfile.gettempdir()), "studio-music-*")
        self._temp = Path(tempfile.mkdtemp(prefix="studio-music-"))
        self._player: subprocess.Popen | None = None
        self._play_started = 0.0
        self._wav_for: dict[str, Path] = {}
        self._pending_play: str | None = None
        self.renderer = Renderer()
        self.renderer.done.connect(self._rendered)
        self.clock = QTimer(self)
        self.clock.setInterval(40)
        self.clock.timeout.connect(self._tick)

        # -- what to make --
        self.task = QComboBox()
        for spec in manifest.tasks:
            self.task.addItem(spec.title, spec.id)
            self.task.setItemData(self.task.count() - 1, spec.help,
                                  Qt.ItemDataRole.ToolTipRole)
        self.task.currentIndexChanged.connect(self._task_changed)
        self.second_item: str | None = None  # Interpolate: the melody to arrive at
        self.second_button = QPushButton("Open second MIDI…")
        self.second_button.clicked.connect(self.open_second_dialog)
        self.second_label = QLabel("No second MIDI (the melody to arrive at)")
        self.second_label.setWordWrap(True)
        self.open_button = QPushButton("Open MIDI…")
        self.open_button.clicked.connect(self.open_dialog)
        self.prompt_label = QLabel("No MIDI chosen (open one, drop one, or Send to → Music)")
        self.prompt_label.setWordWrap(True)
        self.keep_bars = self.param_widget("keep_bars")
        self.from_bar = self.param_widget("from_bar")  # Regenerate bars: the selection
        self.to_bar = self.param_widget("to_bar")
        self.model_choices()
        self.model_folder = model_folder = QPushButton("Other model folder…")
        model_folder.setToolTip("A folder made by tools/music/train.py --export (config.json, "
                                "model.safetensors, tokenizer.json)")
        model_folder.clicked.connect(self._choose_model_folder)
        self.tonic = QComboBox()  # the twelve tonics; "auto" is the check box below
        for index, name in enumerate(TONICS):
            self.tonic.addItem(name, index)
        self.bind("tonic", self.tonic)
        self.mode = QComboBox()
        for mode in MODES:
            self.mode.addItem(mode, mode)
        self.bind("mode", self.mode)
        self.key_row = key_row = QHBoxLayout()
        key_row.addWidget(self.tonic)
        key_row.addWidget(self.mode)
        self.auto_key = QCheckBox("Key from the MIDI")
        self.auto_key.setChecked(True)
        self.auto_key.toggled.connect(self._task_changed)
        self.auto_key.setToolTip("Find the key of the kept bars (Krumhansl–Schmuckler)")
        self.time_signature = self.param_widget("time_signature")
        self.tempo = self.param_widget("tempo")
        self.tempo.setSuffix(" BPM")
        self.bars = self.param_widget("bars")
        self.style = self.param_widget("style")
        self.temperature = self.param_widget("temperature")
        self.top_p = self.param_widget("top_p")
        self.seed_field = SeedField()
        self.variations = self.count_box(8, "How many ideas (seeds +1 each); kept as branches "
                                            "in the History")
        self.strict_key = self.param_widget("strict_key")
        self.chords = self.param_widget("chords")
        self.chords.setPlaceholderText("none · C Am F G · C Am | F G · from-midi")
        self.find_chords_button = QPushButton("Chords of the MIDI")
        self.find_chords_button.setToolTip("Fill in the chords of the MIDI chosen above: its "
                                           "chord symbols or chord track, else found bar by "
                                           "bar from its notes (edit them as you like)")
        self.find_chords_button.clicked.connect(self.fill_chords)
        self.end_on_tonic = self.param_widget("end_on_tonic")
        self.instrument = self._instrument_choice("program")
        for voice in ("alto", "tenor", "bass"):  # Harmonize: an instrument per voice
            self._instrument_choice(f"{voice}_program")
        self.generate_button, self.stop_button = self.run_buttons("Generate", self.generate)

        form = QFormLayout()  # what a musician sets for every idea
        form.addRow("Make", self.task)
        form.addRow(self.open_button)
        form.addRow(self.prompt_label)
        form.addRow(self.second_button)
        form.addRow(self.second_label)
        self.param_rows(form, "keep_bars", "from_bar", "to_bar", "which_voices")
        form.addRow("Model", self.model)
        form.addRow("", model_folder)
        form.addRow("Key", key_row)
        form.addRow("", self.auto_key)
        self.param_rows(form, "bars", "chords")
        form.addRow("", self.find_chords_button)
        advanced = QFormLayout()  # the rest folds away
        self.param_rows(advanced, "time_signature", "tempo", "style", "end_on_tonic",
                        "develop", "temperature", "top_p")
        advanced.addRow("Seed", self.seed_field)
        advanced.addRow("Variations", self.variations)
        self.param_rows(advanced, "strict_key", "program", "voices", "iterations",
                        "alto_program", "tenor_program", "bass_program", "steps", "spread",
                        "sampling")
        side = self.side_panel(form, self.generate_button, self.stop_button,
                               advanced=advanced)

        # -- results --
        self.results = QListWidget()
        self.results.setMaximumHeight(72)
        self.results.hide()  # shown once there is a result: the roll takes the room
        self.results.currentItemChanged.connect(self._result_chosen)
        self.roll = PianoRoll()
        self.roll.edited.connect(self._roll_edited)
        self.roll.bars_chosen.connect(self._bars_chosen)
        self._roll_item: Item | None = None  # whose notes the roll shows (result or MIDI read)
        self._roll_harmony: tuple[list, list] = ([], [])  # its chord marks and chord track
        self._roll_tracks: list[tuple[str, int]] = []
        self._roll_meter: tuple[int, int] = (4, 4)
        self.legend = QLabel("")
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setToolTip("Click a note to select it (Shift adds), drag to move, drag its "
                               "right end to resize, double-click to add, Delete removes, "
                               "Ctrl+Z undoes; drag along the bar numbers to choose bars")
        self.save_edit_button = QPushButton("Save as new item")
        self.save_edit_button.setToolTip("Keep the edited notes as a new History item whose "
                                         "parent is the one shown (that one stays as it was)")
        self.save_edit_button.setEnabled(False)
        self.save_edit_button.clicked.connect(self.save_edits)
        self.info = self.status_label = StatusLine("", lines=3)
        self.play_button = QPushButton("▶ Play")
        self.play_button.clicked.connect(self.toggle_play)
        self.play_button.setToolTip("Play or stop the shown music (Space)")
        QShortcut(QKeySequence("Space"), self, self.toggle_play).setWhatsThis("Play / stop")
        self.drag_button = DragMidi(self)
        export = self.export_button = menu_button(
            "Export", "Save the shown music as a MIDI file (with its recipe) or as audio",
            [("Export MIDI…", lambda: self.export_dialog(".mid")),
             ("Export WAV…", lambda: self.export_dialog(".wav"))])
        self.audio_label = QLabel("")
        bar = QHBoxLayout()
        for widget in (self.play_button, self.drag_button, export, self.save_edit_button):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.audio_label)
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        self.results.setToolTip("This session's results (all of them are in the History)")
        main_layout.addWidget(self.results)
        self.legend.hide()  # shown with the notes it explains: the roll takes the room
        main_layout.addWidget(self.legend)
        main_layout.addWidget(self.roll, 1)
        main_layout.addLayout(bar)
        main_layout.addWidget(self.info)
        self.set_sides(side, main, 320)
        self._task_changed()

    def _add_result(self, entry) -> None:
        self.results.addItem(entry)
        self.results.show()

    def model_menu_actions(self) -> list:
        return [("Model folder…", self._choose_model_folder)]

    def start_here(self) -> None:
        """Start composing: a new idea is one click away."""
        self.task.setCurrentIndex(max(0, self.task.findData("generate")))
        self.generate_button.setFocus()

    def _instrument_choice(self, param: str) -> QComboBox:
        """A General MIDI instrument list bound to a declared program parameter."""
        combo = narrow(QComboBox())
        for program, name in INSTRUMENTS:
            combo.addItem(name, program)
        self.bind(param, combo)
        return combo

    def project_changed(self) -> None:
        super().project_changed()
        self.stop_audio()
        self.results.blockSignals(True)
        self.results.clear()
        self.results.hide()
        self.results.blockSignals(False)
        self.current = self.prompt_item = self.second_item = None
        self.prompt_label.setText("No MIDI chosen (open one, drop one, or Send to → Music)")
        self.second_label.setText("No second MIDI (the melody to arrive at)")
        self.roll.set_notes([], 4.0)
        self.legend.setText("")
        self.legend.hide()
        self.info.setText("")

    # -- inputs ----------------------------------------------------------------------------
    def _task_changed(self) -> None:
        task = self.task.currentData()
        spec = self.manifest.task(task)
        self.show_params_for(task)
        for widget in (self.open_button, self.prompt_label):
            widget.setVisible(bool(spec and spec.input))
        for widget in (self.second_button, self.second_label):
            widget.setVisible(task == "interpolate")
        finds_key = task in FINDS_KEY  # the key may come from the MIDI
        self.auto_key.setVisible(finds_key)
        reads_key = self.manifest.params.get("tonic").applies_to(task)
        gpt2 = task in GPT2_TASKS  # the other tasks use their own models
        self.find_chords_button.setVisible(
            task in ("continue", *HARMONY_TASKS) and
            self.manifest.params.get("chords").applies_to(task))
        for widget, shown in ((self.tonic, reads_key), (self.mode, reads_key),
                              (self.model, gpt2), (self.model_folder, gpt2)):
            widget.setVisible(shown)
        for field, shown in ((self.model, gpt2), (self.model_folder, gpt2),
                             (self.key_row, reads_key)):
            label = self.row_label(field)
            if label is not None:
                label.setVisible(shown)
        manual_key = not (finds_key and self.auto_key.isChecked())
        self.tonic.setEnabled(manual_key)
        self.mode.setEnabled(manual_key)
        if not manual_key:
            self._show_found_key()
        self.generate_button.setText(spec.title.split()[0] if spec and task != "generate"
                                     else "Generate")

    def _show_found_key(self) -> None:
        """With "Key from the MIDI", the greyed boxes show the key that will be used."""
        if self._found_key is not None and self.auto_key.isChecked():
            tonic, mode = self._found_key
            self.tonic.setCurrentIndex(self.tonic.findData(tonic))
            self.mode.setCurrentIndex(self.mode.findData(mode))

    def fill_chords(self) -> str:
        """The chords of the MIDI chosen (prompt) into the Chords field, as text the user
        can edit; what was filled in ("" when there is nothing to read)."""
        from .chords import of_midi, text

        item = self.context.store.item(self.prompt_item) if self.prompt_item else None
        if item is None or not item.assets:
            self.show_message("Open a MIDI first: its chords are read from it.", error=True)
            return ""
        from creative_studio.io.midi import read_notes

        content = self.attempt(lambda: read_notes(
            self.context.store.asset_bytes(item.assets[0].id), item.title), "Chords")
        if content is None:
            return ""
        found = text(of_midi(content, content.time_signature), content.time_signature)
        if not found:
            self.show_message(f"No chords found in {item.title}.", error=True)
            return ""
        self.chords.setText(found)
        self.show_message(f"Chords of {item.title}: {found}")
        return found

    def _choose_model_folder(self) -> None:
        self.choose_model_path("Choose a music model folder")

    def open_dialog(self) -> None:
        path = ask_path(self, self.context.settings, "midi", "open", "Open a MIDI file",
                        file_filter=MIDI_FILTER)
        if path:
            self.open_midi(Path(path))

    def open_second_dialog(self) -> None:
        path = ask_path(self, self.context.settings, "midi", "open", "The melody to arrive at",
                        file_filter=MIDI_FILTER)
        if path:
            self.open_second(Path(path))

    def _import_midi(self, path: Path):
        """(item id, content) of a MIDI file kept in the project, or None (said why)."""
        from creative_studio.io.imports import import_midi

        return self.attempt(lambda: import_midi(self.context.store, self.manifest.id, path),
                            path.name)

    def open_second(self, path: Path) -> str | None:
        """Interpolate: import the MIDI whose melody the steps arrive at."""
        imported = self._import_midi(path)
        if imported is None:
            return None
        item_id, content = imported
        self.second_item = item_id
        self.second_label.setText(f"Arrive at {path.name}: {len(content.notes)} notes")
        self.show_message("")
        return item_id

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_midi(Path(url.toLocalFile()))
                return

    def open_midi(self, path: Path) -> str | None:
        """Import a MIDI file into the project as the melody to continue or rework."""
        imported = self._import_midi(path)
        if imported is None:
            return None
        item_id, content = imported
        self._set_prompt(self.context.store.item(item_id), content)
        return item_id

    def _set_prompt(self, item: Item, content) -> None:
        from .analysis import bar_length, detect_key, key_name

        self.prompt_item = item.id
        spec = self.manifest.task(self.task.currentData())
        if spec is None or not spec.input:  # a MIDI given to New idea: continue it
            self.task.setCurrentIndex(self.task.findData("continue"))
        tonic, mode = detect_key(content.notes, content.key)
        meter = content.time_signature
        bars = int(-(-max(n.start + n.duration for n in content.notes) // bar_length(meter)))
        self.prompt_label.setText(f"{item.title}: {len(content.notes)} notes, {bars} bars, "
                                  f"{meter[0]}/{meter[1]}, {content.tempo:.0f} BPM, "
                                  f"key found: {key_name(tonic, mode)}")
        self.tempo.setValue(int(round(content.tempo)))
        self._found_key = (tonic, mode)
        self._show_found_key()
        self.keep_bars.setValue(max(1, min(self.keep_bars.maximum(), min(4, bars))))
        self.to_bar.setValue(min(self.to_bar.value(), bars))  # the selection inside the MIDI
        self.from_bar.setValue(min(self.from_bar.value(), self.to_bar.value()))
        self._show_in_roll(item, content)
        self.show_message("")

    def accept_input(self, item: Item) -> None:
        """Send to → Music: continue this MIDI item."""
        from creative_studio.io.midi import read_notes

        try:
            data = self.context.store.asset_bytes(item.assets[0].id)
            content = read_notes(data, item.title or "The MIDI")
        except (StudioError, IndexError) as exc:
            self.show_message(str(exc), error=True)
            return
        self._set_prompt(item, content)

    # -- jobs --------------------------------------------------------------------------
    def param_values(self, task: str) -> dict[str, Any]:
        params = super().param_values(task)
        if task in FINDS_KEY and self.auto_key.isChecked():
            params["tonic"] = params["mode"] = "auto"
        return params

    def apply_params(self, params: dict[str, Any]) -> None:
        if "tonic" in params or "mode" in params:
            self.auto_key.setChecked("auto" in (params.get("tonic"), params.get("mode")))
        super().apply_params({k: v for k, v in params.items() if v != "auto"})

    def generate(self) -> list[Job]:
        task = self.task.currentData()
        spec = self.manifest.task(task)
        parents = []
        if spec is not None and spec.input:
            if self.prompt_item is None:
                self.show_message(f"Open a MIDI file to {spec.title.lower()} first.",
                                  error=True)
                return []
            parents = [self.prompt_item]
            if task == "interpolate":
                if self.second_item is None:
                    self.show_message("Open the second MIDI (the melody to arrive at) first.",
                                      error=True)
                    return []
                parents.append(self.second_item)
        model = None if task in GPT2_TASKS else ""  # "": the task's own model
        return self.submit_variations(task, self.param_values(task),
                                      task if task != "generate" else "idea",
                                      parents=parents, model=model)

    def on_progress(self, job: Job, fraction: float, eta: float | None, preview: Any) -> None:
        self.info.setText(job.progress.message or f"Writing… {fraction * 100:.0f}%")

    def on_result(self, job: Job) -> None:
        if not job.item_id:
            return
        item = self.context.store.item(job.item_id)
        entry = QListWidgetItem(item.title)
        entry.setData(Qt.ItemDataRole.UserRole, item.id)
        self._add_result(entry)
        if self.results.count() == 1 or not self.jobs:
            self.results.setCurrentItem(entry)

    def close_panel(self) -> None:
        """No player or preview files outlive the window."""
        self.stop_audio()
        self.renderer.closing = True
        shutil.rmtree(self._temp, ignore_errors=True)

    # -- showing and playing ------------------------------------------------------------------
    def _result_chosen(self, *_args) -> None:
        item = self.chosen_item(self.results.currentItem())
        if item is not None:
            self.show_item(item)

    def show_item(self, item: Item) -> None:
        from creative_studio.io.midi import read_notes

        from .analysis import bar_length

        self.stop_audio()
        try:
            content = read_notes(self.context.store.asset_bytes(item.assets[0].id), item.title)
        except (StudioError, IndexError) as exc:
            self.show_message(str(exc), error=True)
            return
        meta = item.metadata
        self.current = item
        self._shown_notes = content.notes
        self._tempo = content.tempo
        prompt_end = meta.get("prompt_bars", 0) * bar_length(content.time_signature)
        sections = meta.get("sections") if isinstance(meta.get("sections"), list) else None
        section = meta.get("section_quarters")
        self._show_in_roll(item, content, prompt_end, [str(x) for x in sections or []],
                           float(section) if isinstance(section, int | float) else 0.0)
        if item.request.task == "infill":  # the bars it wrote, marked
            self.roll.choose_bars(int(meta.get("from_bar", 0)), int(meta.get("to_bar", 0)))
        self.info.setText(self.describe_item(item, self.context.store))

    # -- the piano roll: editing, choosing bars --------------------------------------------
    def _show_in_roll(self, item: Item, content, prompt_end: float = 0.0,
                      sections: list[str] | None = None, section: float = 0.0) -> None:
        from .analysis import bar_length
        from .chords import from_marks

        self._roll_item = item
        self._roll_meter = content.time_signature
        self._tempo = content.tempo
        self._roll_harmony = (content.marks, content.chord_notes)  # kept by Save as new item
        self._roll_tracks = content.tracks  # each voice's name and instrument, kept too
        end = max((n.start + n.duration for n in content.notes), default=0.0)
        self.roll.set_notes(content.notes, bar_length(content.time_signature), prompt_end,
                            sections, section,
                            [(c.start, c.symbol) for c in from_marks(content.marks, end)])
        self.save_edit_button.setEnabled(False)
        self.legend.setText(self._legend(item, content.notes))
        self.legend.setVisible(bool(self.legend.text()))

    def _legend(self, item: Item, notes: list[Note]) -> str:
        """Coloured squares naming the voices (a harmonization's SATB, else the tracks)."""
        voices = sorted({n.voice for n in notes})
        if item.request.task in HARMONY_TASKS:
            names = ("soprano (melody)", "alto", "tenor", "bass")
        elif len(voices) == 1:
            names = ("notes",)
        else:
            names = tuple(f"track {v + 1}" for v in range(max(voices) + 1))
        parts = []
        for voice in voices:
            colour = VOICE_COLOURS[voice % len(VOICE_COLOURS)].name()
            name = names[voice] if voice < len(names) else f"track {voice + 1}"
            parts.append(f'<span style="color:{colour}">■</span> {name}')
        if self.roll.prompt_end > 0:
            parts.append('<span style="color:#787878">■</span> kept from the MIDI')
        return " &nbsp; ".join(parts) + " &nbsp; <i>(edit: click, drag, double-click)</i>"

    def _roll_edited(self) -> None:
        edit = self.roll.edit
        self.save_edit_button.setEnabled(edit.modified and self._roll_item is not None)
        if edit.modified:
            self.show_message(f"Edited: {len(edit.notes)} notes (not kept yet: Save as new "
                              "item keeps them; Ctrl+Z undoes).")

    def _bars_chosen(self, first: int, last: int) -> None:
        """Bars chosen in the roll: Regenerate bars on the item shown, those bars — or, on
        a harmonization, Regenerate voices (the voices of the notes selected, if any)."""
        from .reworks import REVOICE

        item = self._roll_item
        if item is None:
            return
        if item.id != self.prompt_item:
            self.prompt_item = item.id
            self.prompt_label.setText(f"{item.title}: the MIDI shown in the roll")
        voices = {n.voice for n in self.roll.notes}
        harmony = item.request.task in HARMONY_TASKS or len(voices) >= 3
        self.task.setCurrentIndex(self.task.findData("revoice" if harmony else "infill"))
        self.to_bar.setValue(last)
        self.from_bar.setValue(first)
        self.roll.choose_bars(first, last)
        bars = f"bar {first}" if first == last else f"bars {first}–{last}"
        if not harmony:
            self.show_message(f"Chosen: {bars} of {item.title} — Regenerate writes them "
                              "anew.")
            return
        picked = tuple(sorted({self.roll.edit.notes[i].voice for i in self.roll.edit.selected
                               if self.roll.edit.notes[i].voice in (1, 2, 3)}))
        which = self.param_widget("which_voices")
        for key, chosen in REVOICE.items():
            if picked and chosen == picked:
                which.setCurrentIndex(which.findData(key))
        self.show_message(f"Chosen: {bars} of {item.title} — Regenerate draws "
                          f"{which.currentText()} anew there (select notes of a voice "
                          "first to choose it).")

    def undo(self) -> None:
        """Edit → Undo (Ctrl+Z): the piano roll's last edit."""
        self.roll.undo()

    def redo(self) -> None:
        self.roll.redo()

    def save_edits(self) -> str | None:
        """The edited notes as a new item whose parent is the item shown; its id."""
        import json

        from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result

        from .generator import write_voices

        item, edit = self._roll_item, self.roll.edit
        if item is None or not edit.modified:
            return None
        notes = edit.sorted_notes()
        if not notes:
            self.show_message("Nothing to keep: every note was deleted (Ctrl+Z brings them "
                              "back).", error=True)
            return None
        meta = item.metadata
        program = int(meta.get("program", 0)) if isinstance(meta.get("program"), int) else 0
        tonic, mode = meta.get("tonic"), meta.get("mode")
        key = (tonic, mode) if isinstance(tonic, int) and mode in MODES else None
        meter = self._roll_meter
        title = f"Edited: {item.title}" if not item.title.startswith("Edited: ") \
            else item.title
        recipe = json.dumps({"task": "edit", "parent": item.id, "notes": len(notes)})
        marks, chord_notes = self._roll_harmony
        data = write_voices(notes, self._tempo, meter, None if self._roll_tracks else program,
                            key, recipe, title,
                            max(self.roll.length(), self.roll.bar_count() * self.roll.bar),
                            chord_notes, marks, self._roll_tracks)
        request = Request(self.manifest.id, "edit", params={"notes": len(notes)},
                          parents=[item.id])
        metadata = {"notes": len(notes), "tempo": self._tempo,
                    "time_signature": f"{meter[0]}/{meter[1]}", "program": program}
        if key:
            metadata.update(tonic=tonic, mode=mode, key=meta.get("key", ""))
        new_id = self.attempt(lambda: self.context.store.add_item(request, Result(
            [Asset("midi", "audio/midi", data, "edited.mid")],
            ModelIdentity("hand", "piano roll"), "none", metadata=metadata, title=title)),
            title)
        if new_id is None:
            return None
        self.context.added(new_id)
        new = self.context.store.item(new_id)
        entry = QListWidgetItem(new.title)
        entry.setData(Qt.ItemDataRole.UserRole, new.id)
        self._add_result(entry)
        self.results.setCurrentItem(entry)  # shows it (the roll starts a fresh edit)
        self.show_message(f"Kept as “{title}” in the History (its parent: {item.title}).")
        return new_id

    def midi_file_for_drag(self) -> Path | None:
        if self.current is None:
            self.show_message("Generate or choose a result first.", error=True)
            return None
        from creative_studio.io.export import export_item, suggested_name

        target = self._temp / "drag" / suggested_name(self.current)
        target.parent.mkdir(parents=True, exist_ok=True)
        export_item(self.context.store, self.current, target)
        return target

    def toggle_play(self) -> None:
        if self._player is not None:
            self.stop_audio()
            return
        if self.current is None:
            self.show_message("Generate or choose a result first.", error=True)
            return
        key = self.current.id
        if key in self._wav_for:
            self._play(self._wav_for[key])
            return
        self._pending_play = key
        self.audio_label.setText("Rendering audio…")
        self.renderer.render(key, self.context.store.asset_bytes(self.current.assets[0].id),
                             self._temp)

    def _rendered(self, key: str, path: Path | None, message: str) -> None:
        if path is None:
            self.audio_label.setText("")
            self.show_message(f"Could not render audio: {message}", error=True)
            return
        self._wav_for[key] = path
        self.audio_label.setText(message)
        if self._pending_play == key and self.current is not None and self.current.id == key:
            self._pending_play = None
            self._play(path)

    def _play(self, wav: Path) -> None:
        for program, args in PLAYERS:
            executable = shutil.which(program)
            if executable:
                try:
                    self._player = subprocess.Popen([executable, *args, str(wav)],
                                                    stdout=subprocess.DEVNULL,
                                                    stderr=subprocess.PIPE)
                except OSError:
                    continue
                self._play_started = time.monotonic()
                self.play_button.setText("■ Stop")
                self.clock.start()
                return
        self.show_message("No audio player found (pw-play, paplay or aplay): export a WAV "
                          "instead.", error=True)

    def _tick(self) -> None:
        if self._player is None:
            return
        if self._player.poll() is not None:
            failed = self._player.returncode != 0
            reason = ""
            if failed and self._player.stderr is not None:
                reason = self._player.stderr.read(400).decode("utf-8", "replace").strip()
                log.info("audio player failed: %s", reason)
            self.stop_audio()
            if failed:  # no sound card, the audio server not running…
                # the player's own words (ALSA's "cannot find card '0'") go to the log only
                self.show_message("Could not play: this computer has no audio output the "
                                  "studio can use (no sound card or sound server answered; "
                                  "the details are in Help → Show log). Export WAV… and play "
                                  "it elsewhere.", error=True)
            return
        seconds = time.monotonic() - self._play_started
        self.roll.playhead = seconds * self._tempo / 60.0
        self.roll.update()

    def stop_audio(self) -> None:
        self.clock.stop()
        if self._player is not None:
            if self._player.poll() is None:
                self._player.terminate()
            if self._player.stderr is not None:
                self._player.stderr.close()
            self._player = None
        self.play_button.setText("▶ Play")
        self.roll.playhead = None
        self.roll.update()

    def export_dialog(self, suffix: str) -> None:
        if self.current is None:
            self.show_message("Generate or choose a result first.", error=True)
            return
        from creative_studio.io.export import suggested_name

        name = Path(suggested_name(self.current)).with_suffix(suffix).name
        path, _ = ask_path(self, self.context.settings, "export", "save", "Export", name,
                           MIDI_FILTER if suffix == ".mid" else "WAV audio (*.wav)")
        if path:
            self.export(self.current, Path(path))

    # -- history ------------------------------------------------------------------------------
    def recall(self, item: Item, mode: str = "all") -> None:
        if item.request.task == "import":
            self.accept_input(item)
            return
        task = item.request.task
        if mode == "all":
            self.task.setCurrentIndex(max(0, self.task.findData(task)))
            try:
                if item.parents and task != "generate":
                    self.accept_input(self.context.store.item(item.parents[0]))
                if task == "interpolate" and len(item.parents) > 1:
                    second = self.context.store.item(item.parents[1])
                    self.second_item = second.id
                    self.second_label.setText(f"Arrive at {second.title}")
            except StudioError:
                pass
        if task in GPT2_TASKS:
            super().recall(item, mode)
        else:  # the harmonizer and the VAE are the tasks' own: the model choice stays
            from creative_studio.core.jobs import Request

            request = Request.from_dict({**item.request.to_dict(), "model": ""})
            self.apply_recipe(request, mode=mode)
        self.show_item(item)

    def use_output(self, item: Item) -> None:
        self.show_item(item)

    def work_state(self) -> dict[str, Any]:
        """This session's results and the MIDI being continued, kept with the project."""
        results = [self.results.item(i).data(Qt.ItemDataRole.UserRole)
                   for i in range(self.results.count())]
        spec = self.manifest.task(self.task.currentData())
        reads = bool(spec and spec.input)
        return {"results": results, "prompt_item": (self.prompt_item or "") if reads else "",
                "second_item": self.second_item or "", "task": self.task.currentData(),
                "auto_key": self.auto_key.isChecked(),
                "current": self.current.id if self.current is not None else ""}

    def restore_work(self, state: dict[str, Any]) -> None:
        store = self.context.store
        for item_id in state.get("results", []):
            try:
                item = store.item(str(item_id))
            except StudioError:
                continue
            entry = QListWidgetItem(item.title)
            entry.setData(Qt.ItemDataRole.UserRole, item.id)
            self._add_result(entry)
        if isinstance(state.get("auto_key"), bool):
            self.auto_key.setChecked(state["auto_key"])
        task = self.task.findData(state.get("task"))
        if task >= 0:
            self.task.setCurrentIndex(task)
        if state.get("prompt_item"):
            try:
                self.accept_input(store.item(str(state["prompt_item"])))
            except StudioError:
                pass
        if state.get("second_item"):
            try:
                second = store.item(str(state["second_item"]))
                self.second_item = second.id
                self.second_label.setText(f"Arrive at {second.title}")
            except StudioError:
                pass
        current = str(state.get("current") or "")
        for row in range(self.results.count()):  # the piano roll shows what it showed
            if current and self.results.item(row).data(Qt.ItemDataRole.UserRole) == current:
                self.results.setCurrentRow(row)

    def describe_item(self, item: Item, store) -> str:
        meta = item.metadata
        if item.request.task == "import":
            return (f"{item.title}: {meta.get('notes', '?')} notes, "
                    f"{meta.get('time_signature', '?')}, {meta.get('tempo', '?')} BPM")
        if item.request.task == "edit":
            return (f"{item.title}\n{meta.get('notes', '?')} notes, edited by hand in the "
                    f"piano roll; {meta.get('time_signature', '?')}, "
                    f"{meta.get('tempo', 0):.0f} BPM")
        lines = [item.title]
        task = item.request.task
        if task == "revoice":
            lines.append(f"{meta.get('regenerated', '?')} drawn anew in bars "
                         f"{meta.get('from_bar')}–{meta.get('to_bar')}: "
                         f"{meta.get('new_notes', '?')} new notes; the rest as it was")
        if task in HARMONY_TASKS:
            lines.append(f"{meta.get('notes', '?')} notes in the lower voices, "
                         f"{meta.get('in_key', 0) * 100:.0f}% in {meta.get('key', '?')}; "
                         f"{meta.get('parallels_per_100_moves', '?')} parallel fifths/octaves "
                         f"per 100 voice-pair moves; {meta.get('seconds', '?')} s")
        elif task == "infill":
            joins = ", ".join(str(j) for j in meta.get("joins") or []) or "none"
            lines.append(f"{meta.get('notes', '?')} new notes in bars {meta.get('from_bar')}–"
                         f"{meta.get('to_bar')} of {meta.get('bars', '?')}, "
                         f"{meta.get('in_key', 0) * 100:.0f}% in {meta.get('key', '?')}; "
                         f"joins {joins} semitones; {meta.get('seconds', '?')} s")
        elif task in ("interpolate", "vary"):
            sections = meta.get("sections") or []
            lines.append(f"{' → '.join(str(s) for s in sections)}; {meta.get('notes', '?')} "
                         f"new notes, {meta.get('in_key', 0) * 100:.0f}% in "
                         f"{meta.get('key', '?')}; {meta.get('seconds', '?')} s")
        elif "notes" in meta and "bars" in meta:
            lines.append(f"{meta['notes']} new notes in {meta['bars']} bars "
                         f"({meta['notes_per_bar']} per bar), pitches {meta['pitch_range'][0]}"
                         f"–{meta['pitch_range'][1]}, {meta['in_key'] * 100:.0f}% in "
                         f"{meta['key']}, {meta['tempo']:.0f} BPM")
        if meta.get("prompt_bars"):
            lines.append(f"Kept the first {meta['prompt_bars']} bar(s) "
                         f"({meta['prompt_notes']} notes) of the MIDI it continues.")
        return "\n".join(lines)
