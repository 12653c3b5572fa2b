"""Small widgets panels share."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..core.jobs import MAX_SEED, random_seed

SEED_MODES = ("random", "fixed", "increment")
# their seed means nothing: shown as "—" or left out
SEEDLESS_TASKS = ("import", "edit", "upscale", "video")
# kept, not made by a model (a file read, a hand edit): nothing to run again
RECORDED_TASKS = ("import", "edit")


class SeedField(QWidget):
    """A seed and how it changes between runs: random, fixed, or +1 after each run."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setValue(random_seed())
        self.used: tuple[int, int] | None = None  # the last run's first seed and count
        self.mode = QComboBox()
        self.mode.addItems(SEED_MODES)
        self.mode.setToolTip("random: a new seed each time · fixed: the same seed · "
                             "increment: seed + 1 each time")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.seed, 1)
        layout.addWidget(self.mode)

    def next(self, count: int = 1) -> int:
        """The seed for the next run of ``count`` versions (they take seed, seed + 1, …).
        "increment" moves past the last run's seeds only when the seed shown is the one that
        run started from: a seed typed in or recalled runs as it is first."""
        mode = self.mode.currentText()
        if mode == "random":
            self.seed.setValue(random_seed())
        elif mode == "increment" and self.used and self.seed.value() == self.used[0]:
            self.seed.setValue((self.used[0] + self.used[1]) % (MAX_SEED + 1))
        self.used = (self.seed.value(), max(1, count))
        return self.seed.value()

    def restore(self, seed: int) -> None:
        """Show a recalled seed and keep it (fixed) for the next run."""
        self.seed.setValue(int(seed))
        self.mode.setCurrentText("fixed")
        self.used = None


def dialog_layout(dialog: QDialog, *widgets: QWidget) -> QVBoxLayout:
    """A dialog's widgets one under the other, then OK and Cancel (accept / reject)."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    for widget in widgets:
        layout.addWidget(widget)
    layout.addWidget(buttons)
    return layout


def ask_path(parent: QWidget, settings, kind: str, mode: str, title: str, name: str = "",
             file_filter: str = ""):
    """A file dialog that opens in the folder last used for ``kind`` (projects, exports,
    pictures, MIDI…) and remembers the folder chosen. ``mode``: "open", "open_many",
    "save" or "folder". Returns what the dialog returns ('' or [] when cancelled); "save"
    returns (path, chosen filter)."""
    from pathlib import Path

    from PySide6.QtWidgets import QFileDialog

    folders = getattr(settings, "folders", None)
    start = folders.get(kind, "") if isinstance(folders, dict) else ""
    if not start or not Path(start).is_dir():
        start = str(getattr(settings, "default_folder", "") or "")
    if start and not Path(start).is_dir():
        start = ""
    start_at = str(Path(start) / name) if start and name else (name or start)
    if mode == "open":
        chosen = QFileDialog.getOpenFileName(parent, title, start_at, file_filter)[0]
    elif mode == "open_many":
        chosen = QFileDialog.getOpenFileNames(parent, title, start_at, file_filter)[0]
    elif mode == "folder":
        chosen = QFileDialog.getExistingDirectory(parent, title, start)
    else:
        chosen = QFileDialog.getSaveFileName(parent, title, start_at, file_filter)
    first = chosen[0] if isinstance(chosen, tuple | list) and chosen else chosen
    if first and isinstance(folders, dict):
        path = Path(first)
        folders[kind] = str(path if mode == "folder" else path.parent)
    return chosen


class StatusLine(QLabel):
    """A status or info line that keeps its place: room for ``lines`` lines is reserved,
    long text never widens the window (the whole text is in the tooltip), so a message
    appearing or changing never moves the buttons around it."""

    def __init__(self, text: str = "", lines: int = 1, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtWidgets import QSizePolicy

        self.setWordWrap(lines > 1)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        margins = self.contentsMargins()
        self.setFixedHeight(self.fontMetrics().lineSpacing() * lines + margins.top()
                            + margins.bottom() + 2)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt API
        super().setText(text)
        self.setToolTip(text if len(text) > 40 else "")


def pixmap_of(data: bytes, side: int):
    """An image enlarged (small ones with sharp pixels) or reduced to fit ``side``."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPixmap

    image = QImage.fromData(data)
    if image.isNull():
        return QPixmap()
    mode = Qt.TransformationMode.FastTransformation if image.width() * 2 <= side else \
        Qt.TransformationMode.SmoothTransformation
    return QPixmap.fromImage(image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode))


def item_label(item) -> str:
    """A project item as a list shows it: what differs between two items of one prompt
    (the model, the seed, the time) is in the label."""
    import time as _time

    title = (item.title or item.request.prompt or item.id[:8])[:60]
    parts = [f"{item.plugin}: {title}"]
    if item.request.task not in SEEDLESS_TASKS:
        parts.append(f"seed {item.request.seed}")
    parts.append(_time.strftime("%H:%M:%S", _time.localtime(item.created)))
    return " · ".join(parts)


def choose_item(parent: QWidget, title: str, items: list, thumbnail) -> int | None:
    """A list of project items with thumbnails (``thumbnail(item)`` → bytes or None) and
    labels that tell them apart; returns the chosen index or None."""
    import os

    from PySide6.QtCore import QSize
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QListWidget, QListWidgetItem

    if os.environ.get("CREATIVE_STUDIO_NO_DIALOGS") == "1":
        return len(items) - 1 if items else None
    dialog = QDialog(parent)
    dialog.setWindowTitle(title)
    listing = QListWidget()
    listing.setIconSize(QSize(64, 64))
    for item in items:
        data = thumbnail(item)
        entry = QListWidgetItem(QIcon(pixmap_of(data, 64)) if data else QIcon(),
                                item_label(item))
        listing.addItem(entry)
    listing.setCurrentRow(len(items) - 1)
    listing.itemDoubleClicked.connect(lambda *_: dialog.accept())
    dialog_layout(dialog, listing)
    dialog.resize(460, 420)
    return listing.currentRow() if dialog.exec() and listing.currentRow() >= 0 else None


class ImageLoader(QObject):
    """Pictures decoded off the GUI thread (a 5-MP PNG takes ~100 ms to decode: the window
    stalled while a large result appeared). Pillow decodes them, since it lets go of
    Python's lock while it works (QImage.fromData holds it: a thread decoding with it stops
    the GUI thread all the same). ``load(datas)`` starts a decode and
    returns its token; ``loaded(token, images)`` comes back on the GUI thread with a QImage
    (or None) per input, in a format that paints without conversion. Only the latest
    load's images matter to a view: older tokens can be ignored."""

    loaded = Signal(int, list)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.token = 0

    def load(self, datas: list[bytes | None]) -> int:
        import threading

        self.token += 1
        token = self.token
        threading.Thread(target=self._decode, args=(token, datas), daemon=True,
                         name="studio-image-decode").start()
        return token

    def _decode(self, token: int, datas: list[bytes | None]) -> None:
        images = [_display_image(data) if data else None for data in datas]
        try:
            self.loaded.emit(token, images)  # queued to the GUI thread
        except RuntimeError:  # the panel was closed meanwhile
            pass


DISPLAY_PIXELS = 32 * 1024 * 1024  # a larger picture is shown reduced (a 100-MP result)


def _display_image(data: bytes):
    """A picture as a QImage ready to paint (premultiplied ARGB32, no conversion when
    drawn), or None when it cannot be read. Thread-safe; 16-bit and CMYK pictures shown as
    the exports show them. A picture above 32 MP (what the studio writes goes up to 256 MP)
    is shown reduced by a whole factor; its text "size" keeps the real "W×H"."""
    from PySide6.QtGui import QImage

    from ..core.errors import BadInput
    from ..io.images import MAX_RESULT_PIXELS, decode_image, to_rgb

    try:
        image = decode_image(data, limit=MAX_RESULT_PIXELS)
        size = f"{image.width}×{image.height}"
        factor = 1
        while image.width * image.height > DISPLAY_PIXELS * factor * factor:
            factor += 1
        if factor > 1 and image.mode in ("RGB", "RGBA", "L", "LA"):
            image = image.reduce(factor)  # before the RGBA copy: 100 MP, not 400 MB more
        alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA") if alpha else to_rgb(image).convert("RGBA")
        if image.width * image.height > DISPLAY_PIXELS:  # other modes: reduced now
            image = image.reduce(factor)
        raw = image.tobytes("raw", "BGRa")  # QImage's ARGB32 in memory, premultiplied
    except (BadInput, OSError, ValueError, MemoryError):
        return None
    shown = QImage(raw, image.width, image.height, 4 * image.width,
                   QImage.Format.Format_ARGB32_Premultiplied).copy()  # owns its pixels
    shown.setText("size", size)
    return shown


class Fold(QWidget):
    """A section that folds away (the panels' **Advanced** settings): a header button with an
    arrow, the content under it. ``remember``: a dict (the preferences' ``folds``) where the
    state is kept under ``key``, and ``save`` called after a change, so the fold opens as the
    user left it, launch after launch."""

    def __init__(self, title: str, content: QWidget, key: str = "", remember: dict | None = None,
                 save=None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QSizePolicy, QToolButton

        self.key, self._remember, self._save = key, remember, save
        self.header = QToolButton()
        self.header.setObjectName("foldHeader")
        self.header.setText(title)
        self.header.setCheckable(True)
        self.header.setAutoRaise(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.header.setToolTip(f"Show or hide the {title.lower()} settings")
        from .theme import set_type

        set_type(self.header, "body", bold=True)  # a section of the column
        self.content = content
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.header)
        layout.addWidget(content)
        opened = bool(remember.get(key, False)) if isinstance(remember, dict) and key else False
        self.header.setChecked(opened)
        self._show(opened)
        self.header.toggled.connect(self._toggled)

    def is_open(self) -> bool:
        return self.header.isChecked()

    def set_open(self, opened: bool) -> None:
        self.header.setChecked(opened)

    def _show(self, opened: bool) -> None:
        from PySide6.QtCore import Qt

        self.header.setArrowType(Qt.ArrowType.DownArrow if opened else Qt.ArrowType.RightArrow)
        self.content.setVisible(opened)

    def _toggled(self, opened: bool) -> None:
        self._show(opened)
        if isinstance(self._remember, dict) and self.key:
            self._remember[self.key] = opened
            if self._save is not None:
                self._save()


def menu_button(text: str, tip: str, entries) -> QWidget:
    """A tool button that opens a menu of ``entries`` — (label, slot) pairs — at once:
    the panels' "+" (use another model), "More", "Use", "Export"."""
    from PySide6.QtWidgets import QMenu, QToolButton

    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    menu = QMenu(button)
    for label, slot in entries:
        menu.addAction(label, slot)
    button.setMenu(menu)
    button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    return button
