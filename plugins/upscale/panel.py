"""The Upscale panel: pictures in (files, folders, drops, project images), a model and a size,
Upscale one or many, compare before/after with a split, zoom and pan, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core.errors import StudioError
from creative_studio.core.jobs import Job, Request
from creative_studio.core.project import Item
from creative_studio.io.imports import (
    IMAGE_SUFFIXES,
    import_image,
    import_video,
    input_files,
    mime_of,
)
from creative_studio.io.video import VIDEO_MIME
from creative_studio.ui.panel import PluginPanel, narrow
from creative_studio.ui.widgets import (
    ImageLoader,
    StatusLine,
    ask_path,
    choose_item,
    menu_button,
)

from .picture import AUTO
from .sizes import PRESETS

IMAGE_FILTER = "Pictures and videos (" + " ".join(
    f"*{s}" for s in IMAGE_SUFFIXES + tuple(VIDEO_MIME)) + ");;Pictures (" + " ".join(
    f"*{s}" for s in IMAGE_SUFFIXES) + ");;Videos (" + " ".join(f"*{s}" for s in VIDEO_MIME) + ")"
EXPORT_FILTER = "PNG with recipe (*.png);;JPEG (*.jpg);;WebP (*.webp);;TIFF (*.tif)"


def _duration(seconds: float) -> str:
    """12 s, 3 min, 1 h 05 min: an ETA as people say it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _is_video(item: Item) -> bool:
    """Whether a project item is a video (its first asset)."""
    return bool(item.assets) and item.assets[0].mime.startswith("video/")


def _still(item: Item):
    """The picture an item shows: its first image asset (a video's poster), else its first."""
    return next((a for a in item.assets if a.mime.startswith("image/")), item.assets[0])


class CompareView(QWidget):
    """Before (left of the split, resampled to the output size) and after (right), drawn with
    one transform, so zoom and pan move both together. Left drag moves the split; the wheel
    zooms around the cursor; right or middle drag pans; double-click fits."""

    MAX_ZOOM = 32.0

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.split = 0.5
        self.zoom = 1.0  # relative to "fit in the view"
        self.offset = QPointF(0, 0)  # pan, in view pixels
        self._drag: tuple[str, QPointF] | None = None
        self.labels = ("before", "after")  # what each side shows (the panel names them)
        self.setMinimumSize(320, 240)

    def set_images(self, before: QImage | None, after: QImage | None,
                   keep_view: bool = False) -> None:
        self.before, self.after = before, after
        if not keep_view:
            self.fit()
        self.update()

    def fit(self) -> None:
        self.zoom, self.offset = 1.0, QPointF(0, 0)
        self.update()

    def actual_pixels(self) -> None:
        """One output pixel per screen pixel."""
        ref = self.after or self.before
        fit = self._fit_scale()
        if ref is not None and fit > 0:
            self.zoom = min(self.MAX_ZOOM, 1.0 / fit)
            self.offset = QPointF(0, 0)
            self.update()

    def _fit_scale(self) -> float:
        ref = self.after or self.before
        if ref is None or ref.isNull():
            return 0.0
        return min(self.width() / ref.width(), self.height() / ref.height())

    def target(self) -> QRectF:
        """Where the image lies in the view (may extend past it when zoomed)."""
        ref = self.after or self.before
        scale = self._fit_scale() * self.zoom
        if scale <= 0:
            return QRectF()
        w, h = ref.width() * scale, ref.height() * scale
        return QRectF((self.width() - w) / 2 + self.offset.x(),
                      (self.height() - h) / 2 + self.offset.y(), w, h)

    def zoom_at(self, factor: float, anchor: QPointF) -> None:
        """Zoom by ``factor`` keeping the image point under ``anchor`` in place."""
        new_zoom = min(self.MAX_ZOOM, max(1.0, self.zoom * factor))
        if new_zoom == self.zoom:
            return
        centre = QPointF(self.width() / 2, self.height() / 2)
        ratio = new_zoom / self.zoom
        # the point under the anchor, relative to the image centre, scales with the zoom
        self.offset = (anchor - centre) - (anchor - centre - self.offset) * ratio
        self.zoom = new_zoom
        if self.zoom == 1.0:
            self.offset = QPointF(0, 0)
        self.update()

    def wheelEvent(self, event) -> None:  # noqa: N802 - Qt API
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_at(1.25 ** steps, event.position())

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag = ("split", event.position())
            self._move_split(event.position())
        else:
            self._drag = ("pan", event.position())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self._drag is None:
            return
        kind, last = self._drag
        if kind == "split":
            self._move_split(event.position())
        else:
            self.offset += event.position() - last
            self._drag = (kind, event.position())
            self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._drag = None

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802 - Qt API
        self.fit()

    def _move_split(self, pos: QPointF) -> None:
        target = self.target()
        if target.width() > 0:
            self.split = min(1.0, max(0.0, (pos.x() - target.left()) / target.width()))
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        target = self.target()
        if target.isNull():
            painter.drawText(self.rect().adjusted(12, 0, -12, 0),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             "Open pictures, videos or a folder (or drop them here), then "
                             "Upscale.")
            return
        # "before" is resampled smoothly to the output size, as a bicubic enlargement would be;
        # "after" is drawn without smoothing when zoomed in, to show its real pixels
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        if self.before is not None:
            painter.drawImage(target, self.before)
        if self.after is not None:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform,
                                  target.width() < self.after.width())
            x = target.left() + target.width() * self.split
            right = QRectF(x, target.top(), target.right() - x, target.height())
            source = QRectF(self.after.width() * self.split, 0,
                            self.after.width() * (1 - self.split), self.after.height())
            painter.drawImage(right, self.after, source)
            painter.setPen(QPen(Qt.GlobalColor.white, 2))
            painter.drawLine(QPointF(x, max(0, target.top())),
                             QPointF(x, min(self.height(), target.bottom())))
            self._badge(painter, self.labels[0], Qt.AlignmentFlag.AlignLeft, top=True)
            self._badge(painter, self.labels[1], Qt.AlignmentFlag.AlignRight, top=True)
        if self.zoom > 1.0:
            ref = self.after or self.before
            shown = self._fit_scale() * self.zoom * 100
            # a picture above 32 MP is shown reduced (ui/widgets._display_image): its own size
            size = ref.text("size") or f"{ref.width()}×{ref.height()}"
            reduced = "" if size == f"{ref.width()}×{ref.height()}" else " (shown reduced)"
            self._badge(painter, f"{shown:.0f}% of {size}{reduced}",
                        Qt.AlignmentFlag.AlignLeft, top=False)

    def _badge(self, painter: QPainter, text: str, side, top: bool) -> None:
        """A label on a dark box, readable on any picture (light, dark or busy)."""
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(text) + 12
        height = metrics.height() + 6
        x = 6 if side == Qt.AlignmentFlag.AlignLeft else self.width() - width - 6
        y = 6 if top else self.height() - height - 6
        box = QRectF(x, y, width, height)
        painter.fillRect(box, QColor(0, 0, 0, 170))
        painter.setPen(Qt.GlobalColor.white)
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


class UpscalePanel(PluginPanel):
    def __init__(self, context, manifest, parent: QWidget | None = None) -> None:
        super().__init__(context, manifest, parent)
        self.sources_of: dict[int, str] = {}  # queued/running job id -> source item id
        self.results: dict[str, str] = {}  # source item id -> latest upscaled item id
        self.job: Job | None = None  # the latest job submitted (tests, Stop)
        self.setAcceptDrops(True)
        self.loader = ImageLoader(self)
        self.loader.loaded.connect(self._loaded)
        self._showing_token = self._result_token = 0  # the loads the view waits for

        self.sources = QListWidget()
        self.sources.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.sources.setToolTip("Pictures and videos to upscale: select one or many")
        self.sources.currentItemChanged.connect(self._show_current)
        open_files = QPushButton("Open pictures or videos…")
        open_files.setToolTip("Pictures and videos from your disk (or drop them on the panel)")
        open_files.clicked.connect(self.open_dialog)
        more_in = menu_button("More", "A folder of pictures, or pictures already in this project",
                              [("Folder…", self.open_folder_dialog),
                               ("From project…", self.choose_project_image)])
        self.open_button = open_files

        self.model_choices()
        self.settings_changed()  # the servers' upscale models join the list when they answer
        add_model = self.add_model_button(
            "Use another model: a .pth or .safetensors super-resolution model (ESRGAN, DAT, "
            "SwinIR, Compact… anything spandrel recognizes), or one on your ComfyUI servers",
            [("Model file…", self._choose_model_file),
             ("Model on a server…", self.choose_server_model)])
        self.size = QComboBox()  # the presets by name; a recipe's own size is added when recalled
        for key, label in PRESETS:
            self.size.addItem(label, key)
        self.size.setToolTip("Final size: other than the model's own factor, the result is "
                             "resampled (Lanczos)")
        self.bind("size", self.size)
        self.tile = self.param_widget("tile")
        self.precision = self.param_widget("precision")
        self.upscale_button, self.stop_button = self.run_buttons(
            "Upscale", self.upscale, "Upscale the selected pictures")
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(92)
        self.quality.setToolTip("JPEG/WebP quality of Export result…")
        self.export_button = QPushButton("Export result…")
        self.export_button.clicked.connect(self.export_dialog)
        self.info = StatusLine("No picture", lines=3)

        row = QHBoxLayout()  # the ways in: Upscayl's step 1
        row.addWidget(open_files, 1)
        row.addWidget(more_in)
        form = QFormLayout()
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        self.model.currentIndexChanged.connect(self._model_changed)
        model_row.addWidget(add_model)
        form.addRow("Model", model_row)
        several = QPushButton("Several models…")
        several.setToolTip("Upscale the selected pictures with several models in one go, "
                           "to compare them")
        several.clicked.connect(self.several_models_dialog)
        form.addRow("", several)
        form.addRow("Size", self.size)
        advanced = QFormLayout()
        self.param_rows(advanced, "tile", "precision", "crf")
        # faces: a user's face restoration model file, run on each face after upscaling
        self.face_file = self.param_widget("faces")
        self.face_file.setPlaceholderText("None (faces as upscaled)")
        self.face_file.setClearButtonEnabled(True)
        self.face_file.setToolTip(self.manifest.params.get("faces").help)
        choose_face = QPushButton("Choose…")
        choose_face.setToolTip("Choose a GFPGAN or RestoreFormer face model file")
        choose_face.clicked.connect(self._choose_face_model)
        self.face_row = QWidget()
        face_layout = QHBoxLayout(self.face_row)
        face_layout.setContentsMargins(0, 0, 0, 0)
        face_layout.addWidget(self.face_file, 1)
        face_layout.addWidget(choose_face)
        self.param_row(advanced, "faces", self.face_row)  # faces: pictures only
        self.param_rows(advanced, "face_strength")
        self.show_params_for("upscale")  # the video quality shows when a video is chosen
        advanced.addRow("Quality", self.quality)
        self.advanced_fold(form, advanced)
        buttons = QHBoxLayout()
        buttons.addWidget(self.upscale_button)
        buttons.addWidget(self.stop_button)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addLayout(row)
        side_layout.addWidget(self.sources, 1)
        side_layout.addLayout(form)
        side_layout.addLayout(buttons)
        self.edit_button = QPushButton("Refine or edit in Image ▸")
        self.edit_button.setToolTip("Send the shown upscale to the Image panel: refine it, "
                                    "change it, inpaint or outpaint it")
        self.edit_button.clicked.connect(self.send_result_to_image)
        side_layout.addWidget(self.export_button)
        side_layout.addWidget(self.edit_button)
        side_layout.addWidget(self.queue_label)
        side_layout.addWidget(self.info)
        side_layout.addWidget(self.message)
        side_layout.addWidget(self.fold)

        self.view = CompareView()
        fit, one = QPushButton("Fit"), QPushButton("1:1")
        fit.clicked.connect(self.view.fit)
        one.clicked.connect(self.view.actual_pixels)
        fit.setToolTip("The whole picture in the view (Ctrl+0)")
        one.setToolTip("One picture pixel per screen pixel (Ctrl+Alt+0)")
        QShortcut(QKeySequence("Ctrl+0"), self, self.view.fit).setWhatsThis("Fit the picture")
        QShortcut(QKeySequence("Ctrl+Alt+0"), self,
                  self.view.actual_pixels).setWhatsThis("Actual pixels (1:1)")
        self.view.setToolTip("Drag: move the split · wheel: zoom · right-drag: pan")
        # compare any two: the source or any of its results, on either side
        self.left_choice, self.right_choice = narrow(QComboBox(), 6), narrow(QComboBox(), 6)
        self.left_choice.setToolTip("Left of the split: the picture or one of its upscales")
        self.right_choice.setToolTip("Right of the split: one of the picture's upscales (or "
                                     "the picture)")
        for choice in (self.left_choice, self.right_choice):
            choice.activated.connect(self._compare_chosen)
            choice.setEnabled(False)  # until a picture is chosen
        view_bar = QHBoxLayout()
        view_bar.addWidget(QLabel("Left"))
        view_bar.addWidget(self.left_choice, 1)
        view_bar.addWidget(QLabel("Right"))
        view_bar.addWidget(self.right_choice, 1)
        view_bar.addWidget(fit)
        view_bar.addWidget(one)
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        main_layout.addWidget(self.view, 1)
        main_layout.addLayout(view_bar)
        self.set_sides(side, main, 330)

    def project_changed(self) -> None:
        super().project_changed()
        self.sources_of.clear()
        self.sources.blockSignals(True)
        self.sources.clear()
        self.sources.blockSignals(False)
        self.results.clear()
        for choice in (self.left_choice, self.right_choice):
            choice.clear()
            choice.setEnabled(False)
        self.view.set_images(None, None)
        self.info.setText("No picture")

    def start_here(self) -> None:
        """Upscale a picture: choose it (or drop it on the panel)."""
        self.open_dialog()

    # -- input ---------------------------------------------------------------------
    def open_dialog(self) -> None:
        files = ask_path(self, self.context.settings, "picture", "open_many",
                         "Open pictures or videos", file_filter=IMAGE_FILTER)
        if files:
            self.open_files([Path(f) for f in files])

    def open_folder_dialog(self) -> None:
        folder = ask_path(self, self.context.settings, "picture", "folder",
                          "Upscale the pictures of a folder")
        if folder:
            self.open_files([Path(folder)])

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.open_files(paths)

    def open_files(self, paths: list[Path]) -> list[str]:
        """Import pictures (files or folders) into the project; returns the new item ids.
        Files that are not usable pictures are skipped and named in the message."""
        added, refused = [], []
        for path in input_files(paths, ("image/", "video/")):
            item_id, error = self._import(path)
            if item_id:
                added.append(item_id)
            else:
                refused.append(error)
        if not added and not refused:
            self.show_message("No pictures or videos there (PNG, JPEG, WebP, TIFF, BMP; MP4, "
                              "MOV, MKV, WebM, AVI).", error=True)
        elif refused:
            shown = "\n".join(refused[:5]) + ("\n…" if len(refused) > 5 else "")
            self.show_message(f"Skipped {len(refused)} file(s):\n{shown}", error=True)
        else:
            self.show_message("")
        if added:
            self.sources.clearSelection()
            for index in range(self.sources.count() - len(added), self.sources.count()):
                self.sources.item(index).setSelected(True)
            self.sources.setCurrentRow(self.sources.count() - 1)
        return added

    def open_file(self, path: Path) -> str | None:
        added = self.open_files([path])
        return added[0] if added else None

    def _import(self, path: Path) -> tuple[str | None, str]:
        try:
            if mime_of(path).startswith("video/"):
                item_id, clip = import_video(self.context.store, self.manifest.id, path)
                label = f"{path.name} ({clip.width}×{clip.height}, {clip.frames} frames)"
            else:
                item_id, image = import_image(self.context.store, self.manifest.id, path)
                label = f"{path.name} ({image.width}×{image.height})"
        except (OSError, StudioError) as exc:
            from creative_studio.core.errors import describe

            return None, describe(exc) if isinstance(exc, StudioError) else \
                f"{path.name}: {describe(exc)}"
        self._add_source(item_id, label)
        return item_id, ""

    def _add_source(self, item_id: str, label: str) -> None:
        for index in range(self.sources.count()):
            if self.sources.item(index).data(Qt.ItemDataRole.UserRole) == item_id:
                self.sources.setCurrentRow(index)
                return
        entry = QListWidgetItem(label)
        entry.setData(Qt.ItemDataRole.UserRole, item_id)
        self.sources.addItem(entry)

    def choose_project_image(self) -> None:
        store = self.context.store
        images = [i for i in store.items(kind="image", limit=2000)
                  if i.assets and i.assets[0].mime.startswith("image/")
                  and not (i.plugin == self.manifest.id and i.request.task == "upscale")]
        if not images:
            self.show_message("This project has no images yet.", error=True)
            return
        def thumbnail(item):
            try:
                return store.asset_bytes(item.assets[0].id)
            except StudioError:
                return None

        index = choose_item(self, "Upscale a project image", images, thumbnail)
        if index is not None:
            self.add_project_image(images[index])

    def accept_input(self, item: Item) -> None:
        self.add_project_image(item)
        self.sources.clearSelection()
        self.sources.currentItem().setSelected(True)

    def add_project_image(self, item: Item) -> None:
        """Use an image already in the project as a source: its lineage is kept."""
        meta = item.metadata
        size = f" ({meta['width']}×{meta['height']})" if "width" in meta else ""
        # a picture of this panel's own is named as it is; others say where they come from
        owner = "" if item.plugin == self.manifest.id else f"{item.plugin}: "
        self._add_source(item.id, f"{owner}{item.title or item.id[:8]}{size}")
        self.sources.setCurrentRow(self._row_of(item.id))

    def _row_of(self, item_id: str) -> int:
        for index in range(self.sources.count()):
            if self.sources.item(index).data(Qt.ItemDataRole.UserRole) == item_id:
                return index
        return -1

    def _show_current(self, *_args) -> None:
        entry = self.sources.currentItem()
        item = self.chosen_item(entry)
        if item is None or not item.assets:
            return
        store = self.context.store
        try:
            before = store.asset_bytes(_still(item).id)  # a video: its poster
        except StudioError as exc:  # a damaged picture: said, not shown
            self.show_message(str(exc), error=True)
            return
        self._fill_choices(item, self.results.get(item.id))
        self.show_params_for("video" if _is_video(item) else "upscale")
        after = self._bytes_of(self.right_choice.currentData())
        self._showing_token = self.loader.load([before, after])  # decoded off the GUI thread
        self._result_token = 0  # a result decoding for the picture shown before: dropped
        self.info.setText(entry.text())
        self.foresee(item.id, before)

    # -- compare any two ---------------------------------------------------------------------
    def branches(self, source_id: str) -> list[Item]:
        """The upscales of a picture in this project, oldest first."""
        return [i for i in self.context.store.items(child_of=source_id)
                if i.plugin == self.manifest.id and i.request.task in ("upscale", "video")
                and i.parents[:1] == [source_id] and i.assets and not i.damaged]

    def _fill_choices(self, source: Item, right: str | None) -> None:
        """Left: the picture; right: ``right`` (its latest upscale by default); each side
        may show the picture or any of its upscales."""
        meta = source.metadata
        size = f" ({meta['width']}×{meta['height']})" if "width" in meta else ""
        first = "Video, first frame" if _is_video(source) else "Picture"
        entries = [(first + size, source.id)] + [
            (f"{i.model.get('name', '?')} ({i.metadata.get('width')}×"
             f"{i.metadata.get('height')})", i.id) for i in self.branches(source.id)]
        for choice, wanted in ((self.left_choice, source.id),
                               (self.right_choice, right or "")):
            choice.blockSignals(True)
            choice.clear()
            for text, item_id in entries:
                choice.addItem(text, item_id)
                choice.setItemData(choice.count() - 1, text, Qt.ItemDataRole.ToolTipRole)
            choice.setCurrentIndex(max(0, choice.findData(wanted)) if wanted else -1)
            choice.setEnabled(choice.count() > 0)
            choice.blockSignals(False)
        self._name_sides()

    def _name_sides(self) -> None:
        def short(choice) -> str:
            text = choice.currentText()
            return text.split(" (")[0] if text else ""

        self.view.labels = (short(self.left_choice) or "before",
                            short(self.right_choice) or "after")

    def _bytes_of(self, item_id) -> bytes | None:
        if not item_id:
            return None
        try:
            item = self.context.store.item(str(item_id))
            return self.context.store.asset_bytes(_still(item).id) if item.assets else None
        except StudioError:  # deleted or damaged since: that side stays empty
            return None

    def _compare_chosen(self, *_args) -> None:
        """Show the two chosen pictures (decoded off the GUI thread), the view kept."""
        self._name_sides()
        self._compare_token = self.loader.load([self._bytes_of(self.left_choice.currentData()),
                                                self._bytes_of(self.right_choice.currentData())])

    def _model_changed(self, *_args) -> None:
        """What Automatic said of the picture goes with Automatic; said again on return."""
        if self.message.text().startswith("Automatic will use"):
            self.show_message("")
        entry = self.sources.currentItem()
        item_id = entry.data(Qt.ItemDataRole.UserRole) if entry is not None else None
        data = self._bytes_of(item_id) if item_id else None
        if data:
            self.foresee(item_id, data)

    def foresee(self, item_id: str, data: bytes) -> None:
        """With Automatic chosen: which model the picture will get, and why (said before
        Upscale is pressed; measured off the GUI thread)."""
        if self.model.currentData() != f"embedded:{AUTO}":
            return
        from creative_studio.io.images import decode_image
        from creative_studio.ui.servers import Background

        from .picture import model_for

        preset = str(self.param_values("upscale").get("size", "model"))
        self._foreseeing = Background(self)
        self._foreseeing.done.connect(lambda found, error: self._foreseen(item_id, found))
        self._foreseeing.run(lambda: model_for(decode_image(data), preset))

    def _foreseen(self, item_id: str, found) -> None:
        entry = self.sources.currentItem()
        if found is None or entry is None or entry.data(Qt.ItemDataRole.UserRole) != item_id \
                or self.model.currentData() != f"embedded:{AUTO}":  # chosen by hand since
            return
        picture, model_id = found
        offer = self.manifest.offer(model_id)
        self.show_message(f"Automatic will use {offer.name if offer else model_id}: "
                          f"{picture.why}.")

    def _loaded(self, token: int, images: list) -> None:
        """Decoded pictures for the view; ones for a picture no longer chosen are dropped."""
        if token == getattr(self, "_compare_token", -1):
            self.view.set_images(images[0], images[1], keep_view=True)
        elif token == self._showing_token:
            self._showing_token = 0
            self.view.set_images(images[0], images[1])
        elif token == self._result_token:
            self.view.set_images(self.view.before, images[0], keep_view=True)

    def selected_sources(self) -> list[str]:
        chosen = [e.data(Qt.ItemDataRole.UserRole) for e in self.sources.selectedItems()]
        if not chosen and self.sources.currentItem() is not None:
            chosen = [self.sources.currentItem().data(Qt.ItemDataRole.UserRole)]
        return chosen

    # -- models ------------------------------------------------------------------------
    def _choose_face_model(self) -> None:
        path = ask_path(self, self.context.settings, "model", "open", "Choose a face model",
                        file_filter="Face models (*.pth *.pt *.safetensors)")
        if path:
            self.face_file.setText(str(path))

    def _choose_model_file(self) -> None:
        self.choose_model_path("Choose a super-resolution model", "File",
                               "Models (*.pth *.pt *.safetensors *.ckpt)")

    def upscale(self) -> list[Job]:
        """Queue one job per selected picture (a batch when several are selected)."""
        return self.upscale_with([self.model.currentData()])

    def upscale_with(self, refs: list[str]) -> list[Job]:
        """Each selected picture with each of these models: several models on one picture
        are one group of branches in the History, to compare side by side."""
        import uuid

        sources = self.selected_sources()
        if not sources:
            self.show_message("Open a picture first (or a folder).", error=True)
            return []
        jobs = []
        for source in sources:
            video = self._is_video_id(source)
            base = self.param_values("video" if video else "upscale")
            group = uuid.uuid4().hex[:12] if len(refs) > 1 else ""
            row = self._row_of(source)
            label = self.sources.item(row).text() if row >= 0 else "picture"
            for index, ref in enumerate(refs):
                params = dict(base, group=group, alternative=index + 1) if group else dict(base)
                request = Request(self.manifest.id, "video" if video else "upscale",
                                  params=params, parents=[source], model=ref)
                job = self.try_submit(request, label=label)
                if job is None:
                    return jobs
                self.sources_of[job.id] = source
                self.job = job
                jobs.append(job)
        return jobs

    def _is_video_id(self, item_id: str) -> bool:
        try:
            return _is_video(self.context.store.item(item_id))
        except StudioError:
            return False

    def several_models_dialog(self) -> None:
        """Choose models to run on the selected pictures in one go."""
        from PySide6.QtWidgets import QDialog, QDialogButtonBox, QListWidgetItem

        dialog = QDialog(self)
        dialog.setWindowTitle("Upscale with several models")
        chosen = QListWidget()
        for index in range(self.model.count()):
            entry = QListWidgetItem(self.model.itemText(index), chosen)
            entry.setData(Qt.ItemDataRole.UserRole, self.model.itemData(index))
            entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            entry.setCheckState(Qt.CheckState.Checked if index == self.model.currentIndex()
                                else Qt.CheckState.Unchecked)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Upscale")
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel("Each selected picture is upscaled with each checked model; "
                                "compare the results with Left and Right under the view."))
        layout.addWidget(chosen)
        layout.addWidget(buttons)
        self.several = dialog  # tests reach it
        self.several_list = chosen
        dialog.accepted.connect(lambda: self.upscale_with(
            [chosen.item(i).data(Qt.ItemDataRole.UserRole) for i in range(chosen.count())
             if chosen.item(i).checkState() == Qt.CheckState.Checked]))
        dialog.open()

    def _showing(self, job: Job) -> bool:
        current = self.sources.currentItem()
        return current is not None and \
            current.data(Qt.ItemDataRole.UserRole) == self.sources_of.get(job.id)

    def on_progress(self, job: Job, fraction: float, eta: float | None, preview: Any) -> None:
        if self._showing(job):
            message = job.progress.message
            left = "" if eta is None else f" · about {_duration(eta)} left"
            self.info.setText(f"Upscaling… {fraction * 100:.0f}%"
                              + (f" ({message})" if message else "") + left)
            if isinstance(preview, bytes):  # a video's current frame, now and then
                self._result_token = self.loader.load([preview])
                self.view.labels = (self.view.labels[0], "current frame (upscaling)")

    def on_result(self, job: Job) -> None:
        showing, source = self._showing(job), self.sources_of.pop(job.id, None)
        if job.result is not None and job.item_id and source is not None:
            self.results[source] = job.item_id
            if showing and self._showing_token:  # the picture itself is still decoding:
                self._show_current()  # again, with this result
            elif showing:
                left = self.left_choice.currentData()
                self._fill_choices(self.context.store.item(source), job.item_id)
                if left and self.left_choice.findData(left) >= 0:
                    self.left_choice.setCurrentIndex(self.left_choice.findData(left))
                    self._name_sides()
                self._result_token = self.loader.load([_still(job.result).data])
            if showing:
                self.info.setText(job.result.title)
            chosen = job.result.metadata.get("automatic")
            if isinstance(chosen, dict) and showing:
                self.show_message(f"Automatic chose {job.result.model.name}: "
                                  f"{chosen.get('because', '')}.")

    def on_failed(self, job: Job) -> None:
        super().on_failed(job)
        if self._showing(job):
            self.info.setText("Failed")
            self._name_sides()  # not "current frame" any more
        self.sources_of.pop(job.id, None)

    def on_cancelled(self, job: Job) -> None:
        if self._showing(job):
            self.info.setText("Cancelled" + (" — upscale it again to go on where it stopped"
                                             if job.request.task == "video" else ""))
            self._name_sides()
        self.sources_of.pop(job.id, None)

    def _update_queue(self) -> None:
        super()._update_queue()
        if hasattr(self, "upscale_button"):
            self.upscale_button.setText(f"Upscale ({len(self.jobs)} queued)" if self.jobs
                                        else "Upscale")

    # -- export -----------------------------------------------------------------------
    def shown_result(self, doing: str) -> Item | None:
        """The upscale on the right of the split (else the selected source's last one);
        None, and a message saying to upscale first, when there is none."""
        current = self.sources.currentItem()
        source = current.data(Qt.ItemDataRole.UserRole) if current else None
        shown = self.right_choice.currentData()  # the upscale compared on the right
        result_id = shown if shown and shown != source else self.results.get(source)
        if result_id is None:
            self.show_message(f"Upscale a picture first, then {doing} the result.", error=True)
            return None
        return self.context.store.item(result_id)

    def send_result_to_image(self) -> None:
        item = self.shown_result("edit")
        if item is None:
            return
        if not item.assets or not item.assets[0].mime.startswith("image/"):
            self.show_message("Videos cannot be edited in the Image panel.", error=True)
        elif not self.context.send(item, "image"):
            self.show_message("The Image panel is not available.", error=True)

    def export_dialog(self) -> None:
        item = self.shown_result("export")
        if item is None:
            return
        from creative_studio.io.export import suggested_name

        name = suggested_name(item)
        video = item.assets and item.assets[0].mime.startswith("video/")
        path, _ = ask_path(self, self.context.settings, "export", "save",
                           "Export upscaled video" if video else "Export upscaled picture", name,
                           f"Video (*{Path(name).suffix})" if video else EXPORT_FILTER)
        if path:
            self.export(item, Path(path), quality=self.quality.value())

    # -- history ---------------------------------------------------------------------------
    def recall(self, item: Item, mode: str = "all") -> None:
        self.use_output(item)
        if item.request.task in ("upscale", "video"):
            super().recall(item, mode)

    def use_output(self, item: Item) -> None:
        """Show an item: an upscale result beside its source, or a picture as a source."""
        if item.request.task in ("upscale", "video") and item.parents:
            parent = self.context.store.item(item.parents[0])
            self.results[parent.id] = item.id
            self.add_project_image(parent)
            self._show_current()
        elif item.assets and item.assets[0].mime.startswith(("image/", "video/")):
            self.add_project_image(item)

    def work_state(self) -> dict[str, Any]:
        """The pictures in the list and their latest results, kept with the project."""
        sources = [self.sources.item(i).data(Qt.ItemDataRole.UserRole)
                   for i in range(self.sources.count())]
        current = self.sources.currentItem()
        return {"sources": sources, "results": dict(self.results),
                "selected": [e.data(Qt.ItemDataRole.UserRole)
                             for e in self.sources.selectedItems()],
                "current": current.data(Qt.ItemDataRole.UserRole) if current else None}

    def restore_work(self, state: dict[str, Any]) -> None:
        store = self.context.store
        results = state.get("results", {})
        for source in state.get("sources", []):
            try:
                item = store.item(str(source))
            except StudioError:
                continue  # deleted since
            self.add_project_image(item)
            if isinstance(results, dict) and source in results:
                self.results[source] = str(results[source])
        if not state.get("sources"):
            return
        # the view as it was: the same pictures selected, the same one compared
        selected = state.get("selected")
        if isinstance(selected, list):
            current = self._row_of(str(state.get("current")))
            if current >= 0:
                self.sources.setCurrentRow(current)
            self.sources.clearSelection()
            for item_id in selected:
                row = self._row_of(str(item_id))
                if row >= 0:
                    self.sources.item(row).setSelected(True)
        self._show_current()

    def settings_changed(self) -> None:
        """The ComfyUI servers' upscale models join the model list when they answer."""
        self.list_server_models()

    def describe_item(self, item: Item, store) -> str:
        meta = item.metadata
        lines = [item.title]
        if "width" in meta:
            lines.append(f"Size: {meta['width']}×{meta['height']}")
        if item.request.task == "upscale" and meta.get("engine") == "comfyui":
            lines.append(f"Model: {item.model.get('name', '')} (network ×{meta.get('scale')}), "
                         f"size: {meta.get('size', 'model')}, on the ComfyUI server "
                         f"{meta.get('server')}")
        elif item.request.task == "upscale":
            lines.append(f"Model: {item.model.get('name', '')} (network ×{meta.get('scale')}), "
                         f"size: {meta.get('size', 'model')}, tile {meta.get('tile')} px, "
                         f"{meta.get('precision', 'float32')}")
            kept = [k.upper() for k in ("icc", "exif") if meta.get(k)]
            if kept:
                lines.append("Kept: " + ", ".join(kept))
        elif item.request.task == "video":
            lines.append(f"Model: {item.model.get('name', '')} (network ×{meta.get('scale')}), "
                         f"size: {meta.get('size', 'model')}, {meta.get('frames')} frames at "
                         f"{meta.get('fps')} fps, H.264 quality {meta.get('crf')}, "
                         f"{meta.get('audio_streams', 0)} sound stream(s) copied as they were")
            if meta.get("resumed_from"):
                lines.append(f"Went on from frame {meta['resumed_from'] + 1} after a stop")
        return "\n".join(lines)
