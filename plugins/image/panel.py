"""The Image panel: prompt → images with any diffusers pipeline, step previews, a gallery of
the project's images, recall from the gallery or from a PNG's recipe, export, Upscale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core.errors import StudioError, describe
from creative_studio.core.jobs import Job, JobState
from creative_studio.core.project import Item
from creative_studio.ui.panel import PluginPanel
from creative_studio.ui.widgets import SeedField

from .generator import SCHEDULERS


def pixmap_of(data: bytes, side: int) -> QPixmap:
    """An image enlarged (small ones with sharp pixels) or reduced to fit ``side``."""
    image = QImage.fromData(data)
    if image.isNull():
        return QPixmap()
    mode = Qt.TransformationMode.FastTransformation if image.width() * 2 <= side else \
        Qt.TransformationMode.SmoothTransformation
    return QPixmap.fromImage(image.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio, mode))


class ImagePanel(PluginPanel):
    def __init__(self, context, manifest, parent: QWidget | None = None) -> None:
        super().__init__(context, manifest, parent)
        self.jobs: dict[int, Job] = {}
        self.current: Item | None = None
        self._batch_started = False
        self._icons: dict[str, QIcon] = {}  # gallery thumbnails by asset id

        self.model = self.model_choices()
        self._mark_missing_weights()
        folder = QPushButton("Pipeline folder…")
        folder.setToolTip("A diffusers text-to-image pipeline folder (model_index.json): "
                          "Stable Diffusion 1.5/2.x, SDXL, SD-Turbo…")
        folder.clicked.connect(self._choose_folder)
        hub = QPushButton("Hugging Face id…")
        hub.clicked.connect(self._choose_hub)
        model_row = QHBoxLayout()
        model_row.addWidget(folder)
        model_row.addWidget(hub)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Prompt, e.g. “red apple”, “smiling cat face”")
        self.prompt.setFixedHeight(70)
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("Negative prompt (optional)")
        self.scheduler = QComboBox()
        self.scheduler.addItems(list(SCHEDULERS))
        self.steps = QSpinBox()
        self.steps.setRange(1, 200)
        self.steps.setValue(25)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 30.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setValue(3.0)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(0, 2048)
            box.setSingleStep(8)
            box.setSpecialValueText("model's size")
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_box)
        self.seed_field = SeedField()
        self.batch = QSpinBox()
        self.batch.setRange(1, 16)
        self.batch.setToolTip("How many images (seeds +1 each); kept as branches in the History")
        self.generate_button, self.stop_button = self.run_buttons("Generate", self.generate)
        form = QFormLayout()
        form.addRow("Model", self.model)
        form.addRow(model_row)
        form.addRow("Prompt", self.prompt)
        form.addRow("Negative", self.negative)
        form.addRow("Scheduler", self.scheduler)
        form.addRow("Steps", self.steps)
        form.addRow("Guidance", self.guidance)
        form.addRow("Size", size_row)
        form.addRow("Seed", self.seed_field)
        form.addRow("Batch", self.batch)
        side = self.side_panel(form, self.generate_button, self.stop_button)

        self.view = QLabel("Type a prompt and Generate.")
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setMinimumSize(320, 320)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(72, 72))
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setMaximumHeight(120)
        self.gallery.currentItemChanged.connect(self._gallery_chosen)
        self.gallery.itemDoubleClicked.connect(lambda *_: self._recall_current("all"))
        actions = QHBoxLayout()
        for label, slot in (("Use all", lambda: self._recall_current("all")),
                            ("Use prompt", lambda: self._recall_current("prompt")),
                            ("Use seed", lambda: self._recall_current("seed")),
                            ("Open PNG…", self.open_png_dialog),
                            ("Export PNG…", self.export_dialog),
                            ("Upscale ▸", self.upscale_current)):
            button = QPushButton(label)
            button.clicked.connect(slot)
            actions.addWidget(button)
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        main_layout.addWidget(self.view, 1)
        main_layout.addWidget(self.info)
        main_layout.addLayout(actions)
        main_layout.addWidget(QLabel("Gallery (this project's images)"))
        main_layout.addWidget(self.gallery)
        self.set_sides(side, main, 330)

    # -- models ----------------------------------------------------------------------------
    def _mark_missing_weights(self) -> None:
        from . import models

        for index in range(self.model.count()):
            ref = self.model.itemData(index)
            if ref.startswith("embedded:") and not models.embedded_available(ref.split(":")[1]):
                self.model.setItemText(index, self.model.itemText(index) + " — weights missing")

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a diffusers pipeline folder")
        if path:
            self.add_model_ref(path, f"Folder: {Path(path).name}")

    def _choose_hub(self) -> None:
        self.ask_hub_id("stabilityai/sd-turbo")

    # -- jobs --------------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        return {"negative": self.negative.text().strip(), "steps": self.steps.value(),
                "guidance": round(self.guidance.value(), 3),
                "scheduler": self.scheduler.currentText(),
                "width": self.width_box.value(), "height": self.height_box.value()}

    def generate(self) -> list[Job]:
        prompt = self.prompt.toPlainText().strip()
        jobs = self.submit_variations("generate", self.params(), self.batch.value(),
                                      self.seed_field.next(self._batch_started),
                                      prompt[:30] or "image", prompt)
        self.jobs.update((job.id, job) for job in jobs)
        self._batch_started = bool(jobs) or self._batch_started
        self.stop_button.setEnabled(bool(self.jobs))
        return jobs

    def stop(self) -> None:
        self.cancel_jobs(self.jobs)

    def on_job_event(self, event: str, job: Job, data: Any) -> None:
        if job.id not in self.jobs:
            return
        if event == "progress":
            fraction, eta, preview = data
            text = job.progress.message or f"Step {fraction * 100:.0f}%"
            if eta:
                text += f" · about {eta:.0f} s left"
            self.info.setText(text)
            if isinstance(preview, bytes):
                self.view.setPixmap(pixmap_of(preview, self._view_side()))
            return
        if not job.state.finished:
            return
        del self.jobs[job.id]
        self.stop_button.setEnabled(bool(self.jobs))
        if job.state is JobState.DONE and job.item_id:
            self.refresh_gallery(select=job.item_id)
        elif job.state is JobState.FAILED:
            self.show_message(job.error, error=True)
            self.info.setText("Failed")
        else:
            self.info.setText("Stopped: nothing was saved")

    def _view_side(self) -> int:
        return max(64, min(self.view.width(), self.view.height()) - 8)

    # -- gallery ---------------------------------------------------------------------------
    def project_changed(self) -> None:
        self.current = None
        self._icons.clear()
        self.view.setText("Type a prompt and Generate.")
        self.info.setText("")
        self.refresh_gallery()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.refresh_gallery()

    def refresh_gallery(self, select: str | None = None) -> None:
        store = self.context.store
        current = select or (self.current.id if self.current else None)
        self.gallery.blockSignals(True)
        self.gallery.clear()
        chosen = None
        for item in store.items():
            if not item.assets or not item.assets[0].mime.startswith("image/"):
                continue
            if item.plugin != self.manifest.id:
                continue
            asset_id = item.assets[0].id
            if asset_id not in self._icons:  # assets never change: decode each one once
                self._icons[asset_id] = QIcon(pixmap_of(store.asset_bytes(asset_id), 72))
            entry = QListWidgetItem(self._icons[asset_id], (item.title or "")[:18])
            entry.setData(Qt.ItemDataRole.UserRole, item.id)
            entry.setToolTip(item.title)
            self.gallery.addItem(entry)
            if item.id == current:
                chosen = entry
        self.gallery.blockSignals(False)
        if chosen is not None:
            self.gallery.setCurrentItem(chosen)

    def _gallery_chosen(self, *_args) -> None:
        item = self.chosen_item(self.gallery.currentItem())
        if item is not None:
            self.show_item(item)

    def show_item(self, item: Item) -> None:
        self.current = item
        data = self.context.store.asset_bytes(item.assets[0].id)
        self.view.setPixmap(pixmap_of(data, self._view_side()))
        self.info.setText(self.describe_item(item, self.context.store))

    def _recall_current(self, mode: str) -> None:
        if self.current is None:
            self.show_message("Choose an image in the gallery first.", error=True)
            return
        self.recall(self.current, mode)

    def upscale_current(self) -> None:
        if self.current is None:
            self.show_message("Choose an image in the gallery first.", error=True)
        elif not self.context.send(self.current, "upscale"):
            self.show_message("The Upscale panel is not available.", error=True)

    # -- files -----------------------------------------------------------------------------
    def open_png_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Recall the recipe of a PNG", "",
                                              "PNG images (*.png)")
        if path:
            self.recall_png(Path(path))

    def recall_png(self, path: Path) -> dict | None:
        """Fill the panel from a PNG made by the studio, A1111 or ComfyUI."""
        from .recipes import recipe_from_png

        try:
            recipe = recipe_from_png(path.read_bytes(), path.name)
        except OSError as exc:
            self.show_message(f"{path.name}: {describe(exc)}", error=True)
            return None
        except StudioError as exc:
            self.show_message(str(exc), error=True)
            return None
        self._apply(recipe, "all")
        self.show_message(f"Recalled the {recipe.get('source', '')} recipe of {path.name}.")
        return recipe

    def _apply(self, recipe: dict, mode: str) -> None:
        if mode in ("all", "prompt"):
            self.prompt.setPlainText(str(recipe.get("prompt", "")))
            self.negative.setText(str(recipe.get("negative", "")))
        if mode in ("all", "seed") and recipe.get("seed") is not None:
            self.seed_field.restore(int(recipe["seed"]))
        if mode != "all":
            return
        for box, key in ((self.steps, "steps"), (self.width_box, "width"),
                         (self.height_box, "height")):
            if isinstance(recipe.get(key), int):
                box.setValue(recipe[key])
        if isinstance(recipe.get("guidance"), int | float):
            self.guidance.setValue(float(recipe["guidance"]))
        if recipe.get("scheduler") in SCHEDULERS:
            self.scheduler.setCurrentText(recipe["scheduler"])

    def export_dialog(self) -> None:
        if self.current is None:
            self.show_message("Choose an image in the gallery first.", error=True)
            return
        from creative_studio.io.export import suggested_name

        path, _ = QFileDialog.getSaveFileName(self, "Export image", suggested_name(self.current),
                                              "PNG with recipe (*.png)")
        if path:
            self.export(self.current, Path(path))

    # -- history -------------------------------------------------------------------------------
    def recall(self, item: Item, mode: str = "all") -> None:
        request = item.request
        self._apply({"prompt": request.prompt, "seed": request.seed, **request.params}, mode)
        if mode == "all":
            found = self.model.findData(request.model)
            if found >= 0:
                self.model.setCurrentIndex(found)
            elif request.model:
                self.add_model_ref(request.model, f"Folder: {Path(request.model).name}")
        self.show_item(item)

    def use_output(self, item: Item) -> None:
        self.show_item(item)

    def save_state(self) -> dict[str, Any]:
        return {"prompt": self.prompt.toPlainText(), "negative": self.negative.text()}

    def restore_state(self, state: dict[str, Any]) -> None:
        self.prompt.setPlainText(str(state.get("prompt", "")))
        self.negative.setText(str(state.get("negative", "")))

    def describe_item(self, item: Item, store) -> str:
        meta = item.metadata
        if "steps" not in meta:
            return item.title
        return (f"{item.title} — {meta['width']}×{meta['height']}, {meta['steps']} steps, "
                f"{meta['scheduler']}, guidance {meta['guidance']:g}, seed {item.request.seed}, "
                f"{meta.get('seconds', '?')} s")
