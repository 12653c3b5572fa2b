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
from PySide6.QtGui import QColor, QDrag, QPainter, QPen
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
from creative_studio.ui.panel import PluginPanel
from creative_studio.ui.widgets import SeedField, StatusLine, ask_path

from .tokens import MODES

TONICS = ("C", "C♯/D♭", "D", "E♭", "E", "F", "F♯/G♭", "G", "A♭", "A", "B♭", "B")
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
log = logging.getLogger(__name__)


class PianoRoll(QWidget):
    """Notes over time (bars marked), the kept prompt shaded, a playhead while playing."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notes: list[Note] = []
        self.bar = 4.0  # quarter notes per bar
        self.prompt_end = 0.0
        self.sections: list[str] = []  # interpolation steps, side by side
        self.section = 0.0  # quarter notes per section
        self.playhead: float | None = None  # quarter notes
        self.setMinimumSize(400, 220)

    def set_notes(self, notes: list[Note], bar: float, prompt_end: float = 0.0,
                  sections: list[str] | None = None, section: float = 0.0) -> None:
        self.notes, self.bar, self.prompt_end, self.playhead = notes, bar, prompt_end, None
        self.sections, self.section = list(sections or []), section
        self.update()

    def length(self) -> float:
        end = max((n.start + n.duration for n in self.notes), default=0.0)
        # a note ending a tick past the bar line (MIDI rounding) opens no extra bar
        bars = max(1, math.ceil(end / self.bar - 0.02))
        return bars * self.bar

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.base())
        if not self.notes:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Generate an idea, or open a MIDI file to continue.")
            return
        low = min(n.pitch for n in self.notes) - 2
        high = max(n.pitch for n in self.notes) + 2
        length = self.length()
        margin = 28
        width, height = self.width() - margin - 4, self.height() - 18
        x_of = lambda q: margin + q / length * width  # noqa: E731
        row = height / (high - low + 1)
        for pitch in range(low, high + 1):  # black-key rows darker, C rows labelled
            y = 4 + (high - pitch) * row
            if pitch % 12 in (1, 3, 6, 8, 10):
                painter.fillRect(QRectF(margin, y, width, row), palette.alternateBase())
            if pitch % 12 == 0:
                painter.setPen(palette.text().color())
                painter.drawText(QPointF(2, y + row), f"C{pitch // 12 - 1}")
        if self.prompt_end > 0:
            painter.fillRect(QRectF(margin, 4, x_of(self.prompt_end) - margin, height),
                             QColor(128, 128, 128, 40))
        bar, index = 0.0, 1
        while bar <= length + 1e-6:
            painter.setPen(QPen(palette.mid().color(), 1))
            painter.drawLine(QPointF(x_of(bar), 4), QPointF(x_of(bar), 4 + height))
            if bar < length:
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
        for note in self.notes:
            colour = QColor(120, 120, 120) if note.start < self.prompt_end else \
                VOICE_COLOURS[note.voice % len(VOICE_COLOURS)]
            rect = QRectF(x_of(note.start), 4 + (high - note.pitch) * row,
                          max(2.0, note.duration / length * width - 1), max(2.0, row - 1))
            painter.fillRect(rect, colour)
        if self.playhead is not None:
            painter.setPen(QPen(QColor(230, 60, 60), 2))
            x = x_of(min(self.playhead, length))
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))


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
        self.instrument = self._instrument_choice("program")
        for voice in ("alto", "tenor", "bass"):  # Harmonize: an instrument per voice
            self._instrument_choice(f"{voice}_program")
        self.generate_button, self.stop_button = self.run_buttons("Generate", self.generate)

        form = QFormLayout()
        form.addRow("Make", self.task)
        form.addRow(self.open_button)
        form.addRow(self.prompt_label)
        form.addRow(self.second_button)
        form.addRow(self.second_label)
        self.param_rows(form, "keep_bars")
        form.addRow("Model", self.model)
        form.addRow("", model_folder)
        form.addRow("Key", key_row)
        form.addRow("", self.auto_key)
        self.param_rows(form, "time_signature", "tempo", "bars", "style", "temperature",
                        "top_p")
        form.addRow("Seed", self.seed_field)
        form.addRow("Variations", self.variations)
        self.param_rows(form, "strict_key", "program", "voices", "iterations", "alto_program",
                        "tenor_program", "bass_program", "steps", "spread", "sampling")
        self.side_form = form
        side = self.side_panel(form, self.generate_button, self.stop_button)

        # -- results --
        self.results = QListWidget()
        self.results.setMaximumHeight(110)
        self.results.currentItemChanged.connect(self._result_chosen)
        self.roll = PianoRoll()
        self.info = self.status_label = StatusLine("", lines=3)
        self.play_button = QPushButton("▶ Play")
        self.play_button.clicked.connect(self.toggle_play)
        self.drag_button = DragMidi(self)
        export_midi = QPushButton("Export MIDI…")
        export_midi.clicked.connect(lambda: self.export_dialog(".mid"))
        export_wav = QPushButton("Export WAV…")
        export_wav.clicked.connect(lambda: self.export_dialog(".wav"))
        self.audio_label = QLabel("")
        bar = QHBoxLayout()
        for widget in (self.play_button, self.drag_button, export_midi, export_wav):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.audio_label)
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        main_layout.addWidget(QLabel("Results (this session; all are in the History)"))
        main_layout.addWidget(self.results)
        main_layout.addWidget(self.roll, 1)
        main_layout.addLayout(bar)
        main_layout.addWidget(self.info)
        self.set_sides(side, main, 320)
        self._task_changed()

    def _instrument_choice(self, param: str) -> QComboBox:
        """A General MIDI instrument list bound to a declared program parameter."""
        combo = QComboBox()
        for program, name in INSTRUMENTS:
            combo.addItem(name, program)
        self.bind(param, combo)
        return combo

    def project_changed(self) -> None:
        super().project_changed()
        self.stop_audio()
        self.results.blockSignals(True)
        self.results.clear()
        self.results.blockSignals(False)
        self.current = self.prompt_item = self.second_item = None
        self.prompt_label.setText("No MIDI chosen (open one, drop one, or Send to → Music)")
        self.second_label.setText("No second MIDI (the melody to arrive at)")
        self.roll.set_notes([], 4.0)
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
        finds_key = task in ("continue", "harmonize")  # the key may come from the MIDI
        self.auto_key.setVisible(finds_key)
        reads_key = self.manifest.params.get("tonic").applies_to(task)
        gpt2 = task in ("generate", "continue")  # the other tasks use their own models
        for widget, shown in ((self.tonic, reads_key), (self.mode, reads_key),
                              (self.model, gpt2), (self.model_folder, gpt2)):
            widget.setVisible(shown)
        for field, shown in ((self.model, gpt2), (self.model_folder, gpt2),
                             (self.key_row, reads_key)):
            label = self.side_form.labelForField(field)
            if label is not None:
                label.setVisible(shown)
        manual_key = not (finds_key and self.auto_key.isChecked())
        self.tonic.setEnabled(manual_key)
        self.mode.setEnabled(manual_key)
        self.generate_button.setText(spec.title.split()[0] if spec and task != "generate"
                                     else "Generate")

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
        tonic, mode = detect_key(content.notes)
        meter = content.time_signature
        bars = int(-(-max(n.start + n.duration for n in content.notes) // bar_length(meter)))
        self.prompt_label.setText(f"{item.title}: {len(content.notes)} notes, {bars} bars, "
                                  f"{meter[0]}/{meter[1]}, {content.tempo:.0f} BPM, "
                                  f"key found: {key_name(tonic, mode)}")
        self.tempo.setValue(int(round(content.tempo)))
        self.keep_bars.setValue(max(1, min(self.keep_bars.maximum(), min(4, bars))))
        self.roll.set_notes(content.notes, bar_length(meter))
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
        if task in ("continue", "harmonize") and self.auto_key.isChecked():
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
        model = None if task in ("generate", "continue") else ""  # "": the task's own model
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
        self.results.addItem(entry)
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
        self.roll.set_notes(content.notes, bar_length(content.time_signature), prompt_end,
                            [str(x) for x in sections or []],
                            float(section) if isinstance(section, int | float) else 0.0)
        self.info.setText(self.describe_item(item, self.context.store))

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
        if task in ("generate", "continue"):
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
            self.results.addItem(entry)
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
        lines = [item.title]
        task = item.request.task
        if task == "harmonize":
            lines.append(f"{meta.get('notes', '?')} notes in the lower voices, "
                         f"{meta.get('in_key', 0) * 100:.0f}% in {meta.get('key', '?')}; "
                         f"{meta.get('parallels_per_100_moves', '?')} parallel fifths/octaves "
                         f"per 100 voice-pair moves; {meta.get('seconds', '?')} s")
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
