"""The Upscale panel: open a picture, choose a model, upscale, compare A/B with a split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core.jobs import Asset, Job, JobState, ModelIdentity, Request, Result
from creative_studio.core.project import Item
from creative_studio.ui.panel import PluginPanel

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
        ".tif": "image/tiff", ".tiff": "image/tiff", ".bmp": "image/bmp"}


class CompareView(QWidget):
    """Before (left of the split, resampled to the output size) and after (right)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.before: QImage | None = None
        self.after: QImage | None = None
        self.split = 0.5
        self.setMinimumSize(320, 240)
        self.setMouseTracking(False)

    def set_images(self, before: QImage | None, after: QImage | None) -> None:
        self.before, self.after = before, after
        self.update()

    def _target(self) -> QRectF:
        ref = self.after or self.before
        if ref is None or ref.isNull():
            return QRectF()
        scale = min(self.width() / ref.width(), self.height() / ref.height())
        w, h = ref.width() * scale, ref.height() * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def mousePressEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._move_split(event.position())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802 - Qt API
        self._move_split(event.position())

    def _move_split(self, pos: QPointF) -> None:
        target = self._target()
        if target.width() > 0:
            self.split = min(1.0, max(0.0, (pos.x() - target.left()) / target.width()))
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().base())
        target = self._target()
        if target.isNull():
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                             "Open a picture (or drop one here), then Upscale.")
            return
        # "before" is resampled smoothly to the output size, as a bicubic enlargement would be
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        if self.before is not None:
            painter.drawImage(target, self.before)
        if self.after is not None:
            x = target.left() + target.width() * self.split
            right = QRectF(x, target.top(), target.right() - x, target.height())
            source = QRectF(self.after.width() * self.split, 0,
                            self.after.width() * (1 - self.split), self.after.height())
            painter.drawImage(right, self.after, source)
            painter.setPen(QPen(Qt.GlobalColor.white, 2))
            painter.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))
            for text, point in (("before", QPointF(target.left() + 6, target.top() + 16)),
                                ("after", QPointF(target.right() - 40, target.top() + 16))):
                painter.setPen(Qt.GlobalColor.black)
                painter.drawText(point + QPointF(1, 1), text)
                painter.setPen(Qt.GlobalColor.white)
                painter.drawText(point, text)


class UpscalePanel(PluginPanel):
    def __init__(self, context, manifest, parent: QWidget | None = None) -> None:
        super().__init__(context, manifest, parent)
        self.source_item: str | None = None
        self.job: Job | None = None
        self.setAcceptDrops(True)
        self.model = QComboBox()
        for offer in manifest.models:
            self.model.addItem(offer.name, f"{offer.source}:{offer.id}")
        self.tile = QSpinBox()
        self.tile.setRange(32, 2048)
        self.tile.setSingleStep(32)
        self.tile.setValue(256)
        self.tile.setToolTip("Tile size in input pixels: smaller uses less memory")
        self.open_button = QPushButton("Open picture…")
        self.upscale_button = QPushButton("Upscale")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.open_button.clicked.connect(self.open_dialog)
        self.upscale_button.clicked.connect(self.upscale)
        self.stop_button.clicked.connect(self.stop)
        self.info = QLabel("No picture")
        self.info.setWordWrap(True)
        form = QFormLayout()
        form.addRow(self.open_button)
        form.addRow("Model", self.model)
        form.addRow("Tile", self.tile)
        buttons = QHBoxLayout()
        buttons.addWidget(self.upscale_button)
        buttons.addWidget(self.stop_button)
        form.addRow(buttons)
        form.addRow(self.info)
        form.addRow(self.message)
        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.addLayout(form)
        side_layout.addStretch(1)
        side.setMaximumWidth(340)
        self.view = CompareView()
        layout = QHBoxLayout(self)
        layout.addWidget(side)
        layout.addWidget(self.view, 1)

    # -- input ---------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open picture", "", IMAGE_FILTER)
        if path:
            self.open_file(Path(path))

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_file(Path(urls[0]))

    def open_file(self, path: Path) -> str | None:
        """Keep the picture in the project (lineage, re-runs) and show it."""
        from creative_studio.core.errors import StudioError
        from creative_studio.io.images import decode_image

        try:
            data = path.read_bytes()
            image = decode_image(data, path.name)
        except (OSError, StudioError) as exc:
            self.show_message(str(exc), error=True)
            return None
        item_id = self.context.store.add_item(
            Request(self.manifest.id, "import", params={"filename": path.name}),
            Result([Asset("image", MIME.get(path.suffix.lower(), "image/png"), data,
                          path.name)], ModelIdentity("file", path.name), "none",
                   metadata={"width": image.width, "height": image.height},
                   title=path.name))
        self._show_source(item_id, data, f"{path.name}: {image.width}×{image.height}")
        return item_id

    def _show_source(self, item_id: str, data: bytes, info: str) -> None:
        self.source_item = item_id
        self.view.set_images(QImage.fromData(data), None)
        self.info.setText(info)
        self.show_message("")

    # -- jobs --------------------------------------------------------------------------
    def upscale(self) -> Job | None:
        if self.source_item is None:
            self.show_message("Open a picture first.", error=True)
            return None
        request = Request(self.manifest.id, "upscale", params={"tile": self.tile.value()},
                          parents=[self.source_item], model=self.model.currentData())
        self.job = self.try_submit(request, label="upscale")
        if self.job is not None:
            self.upscale_button.setEnabled(False)
            self.stop_button.setEnabled(True)
        return self.job

    def stop(self) -> None:
        if self.job is not None:
            self.context.cancel(self.job.id)

    def on_job_event(self, event: str, job: Job, data: Any) -> None:
        if job is not self.job:
            return
        if event == "progress":
            fraction = data[0]
            self.info.setText(job.progress.message or f"Upscaling… {fraction * 100:.0f}%")
        elif job.state.finished:
            self.upscale_button.setEnabled(True)
            self.stop_button.setEnabled(False)
            if job.state is JobState.DONE and job.result is not None:
                after = QImage.fromData(job.result.assets[0].data)
                self.view.set_images(self.view.before, after)
                self.info.setText(job.result.title)
            elif job.state is JobState.FAILED:
                self.show_message(job.error, error=True)
                self.info.setText("Failed")
            else:
                self.info.setText("Cancelled")

    # -- history ---------------------------------------------------------------------------
    def recall(self, item: Item, mode: str = "all") -> None:
        self.use_output(item)
        if item.request.task == "upscale":
            index = self.model.findData(item.request.model)
            if index >= 0:
                self.model.setCurrentIndex(index)
            self.tile.setValue(int(item.request.params.get("tile", 256)))

    def use_output(self, item: Item) -> None:
        store = self.context.store
        data = store.asset_bytes(item.assets[0].id) if item.assets else b""
        if item.request.task == "upscale" and item.parents:
            parent = store.item(item.parents[0])
            before = QImage.fromData(store.asset_bytes(parent.assets[0].id))
            self.source_item = parent.id
            self.view.set_images(before, QImage.fromData(data))
            self.info.setText(item.title)
        elif data:
            self._show_source(item.id, data, item.title)

    def describe_item(self, item: Item, store) -> str:
        meta = item.metadata
        if "width" in meta:
            return f"{item.title} ({meta['width']}×{meta['height']})"
        return item.title
