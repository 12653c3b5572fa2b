"""The Image panel: prompt → images with any diffusers pipeline, step previews, a gallery of
the project's images, recall from the gallery or from a PNG's recipe, export, Upscale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from creative_studio.core.errors import StudioError
from creative_studio.core.jobs import Job
from creative_studio.core.project import Item
from creative_studio.ui.panel import PluginPanel
from creative_studio.ui.widgets import SeedField, StatusLine, ask_path, menu_button, pixmap_of

EXPORT_SCALES = (1, 4, 8)  # a 32×32 emoji exported ×8 is 256×256
GALLERY_LIMIT = 300  # the newest images shown in the gallery (all are in the History)

class ImagePanel(PluginPanel):
    def __init__(self, context, manifest, parent: QWidget | None = None) -> None:
        super().__init__(context, manifest, parent)
        self.current: Item | None = None
        self._icons: dict[str, QIcon] = {}  # gallery thumbnails by asset id

        self.model_choices()
        add_model = self.add_model_button(
            "Use another model: a diffusers pipeline folder (Stable Diffusion 1.5/2.x, SDXL, "
            "SD-Turbo…), a Hugging Face id, or a checkpoint on one of your ComfyUI servers "
            "(Edit → Preferences → Servers)",
            [("Pipeline folder…", self._choose_folder), ("Hugging Face id…", self._choose_hub),
             ("Checkpoint on a server…", self.choose_server_model)])
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(add_model)
        self.prompt = self.prompt_box = QPlainTextEdit()
        self.prompt.setPlaceholderText("Prompt, e.g. “red apple”, “smiling cat face”")
        self.prompt.setFixedHeight(70)
        self.negative = self.param_widget("negative")
        self.scheduler = self.param_widget("scheduler")
        # on a ComfyUI server: its own samplers and schedules, and own workflows
        self.sampler = self.bind("sampler", self._server_combo("as Scheduler"))
        self.schedule = self.bind("schedule", self._server_combo("as Scheduler"))
        self.workflow_text = self.bind("workflow", QPlainTextEdit(self))  # its dialog shows it
        self.workflow_text.hide()
        self.workflow_button = QPushButton("Standard text-to-image")
        self.workflow_button.setToolTip("Your own ComfyUI workflow (API format) and the inputs "
                                        "the panel fills in it")
        self.workflow_button.clicked.connect(self.workflow_dialog)
        self.workflow_text.textChanged.connect(self._show_workflow_name)
        self.steps = self.param_widget("steps")
        self.guidance = self.param_widget("guidance")
        self.width_box, self.height_box = self.param_widget("width"), \
            self.param_widget("height")
        size_row = QHBoxLayout()
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.height_box)
        self.seed_field = SeedField()
        self.batch = self.count_box(16, "How many images (seeds +1 each); kept as branches in "
                                        "the History")
        self.generate_button, self.stop_button = self.run_buttons("Generate", self.generate)
        form = QFormLayout()
        form.addRow("Model", model_row)
        form.addRow("Prompt", self.prompt)
        form.addRow("Size", size_row)
        advanced = QFormLayout()  # what an artist sets now and then folds away
        self.param_rows(advanced, "negative", "scheduler", "sampler", "schedule", "steps",
                        "guidance")
        advanced.addRow("Workflow", self.workflow_button)
        self._server_rows = (advanced, [self.sampler, self.schedule, self.workflow_button])
        advanced.addRow("Seed", self.seed_field)
        advanced.addRow("Batch", self.batch)
        side = self.side_panel(form, self.generate_button, self.stop_button,
                               advanced=advanced)

        self.view = QLabel("Type a prompt and Generate.")
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setMinimumSize(240, 240)
        self.view.setObjectName("canvas")  # the work: a framed canvas that takes the room
        self.view.setFrameShape(QLabel.Shape.StyledPanel)
        self.view.setBackgroundRole(QPalette.ColorRole.Base)
        self.view.setAutoFillBackground(True)
        self.info = self.status_label = StatusLine("", lines=3)
        self.gallery = QListWidget()
        self.gallery.setViewMode(QListView.ViewMode.IconMode)
        self.gallery.setIconSize(QSize(72, 72))
        self.gallery.setResizeMode(QListView.ResizeMode.Adjust)
        self.gallery.setMaximumHeight(100)
        self.gallery.currentItemChanged.connect(self._gallery_chosen)
        self.gallery.itemDoubleClicked.connect(lambda *_: self._recall_current("all"))
        use = self.use_button = menu_button(
            "Use", "Put the shown picture's recipe back into the settings",
            [("Use all (prompt, settings, seed)", lambda: self._recall_current("all")),
             ("Use prompt", lambda: self._recall_current("prompt")),
             ("Use seed", lambda: self._recall_current("seed"))])
        actions = QHBoxLayout()  # one row under the picture
        actions.addWidget(use)
        for label, slot, tip in (
                ("Open PNG…", self.open_png_dialog, "Show a PNG and read its recipe"),
                ("Export PNG…", self.export_dialog, "Save the picture with its recipe"),
                ("Upscale ▸", self.upscale_current, "Send the picture to the Upscale panel")):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            actions.addWidget(button)
        self.export_scale = QComboBox()
        for factor in EXPORT_SCALES:
            self.export_scale.addItem(f"×{factor}", factor)
        self.export_scale.setToolTip("Export PNG… enlarges the picture this many times with "
                                     "sharp pixels (Upscale ▸ enlarges it with a model)")
        actions.addWidget(self.export_scale)
        actions.addStretch(1)
        main = QWidget()
        main_layout = QVBoxLayout(main)
        main_layout.setContentsMargins(0, 0, 0, 0)
        main_layout.addWidget(self.view, 1)
        main_layout.addLayout(actions)
        main_layout.addWidget(self.info)
        self.gallery.setToolTip("This project's pictures: click one to show it, double-click "
                                "to use its recipe")
        main_layout.addWidget(self.gallery)
        self.set_sides(side, main, 330)
        self._server_info = None
        self.model.currentIndexChanged.connect(self._model_changed)
        self._model_changed()
        self.settings_changed()

    def start_here(self) -> None:
        """Start drawing: an example prompt the embedded model knows, selected (typing
        replaces it)."""
        if not self.prompt.toPlainText().strip():
            self.prompt.setPlainText("red apple")
            self.prompt.selectAll()
        self.prompt.setFocus()

    # -- servers ------------------------------------------------------------------------------
    @staticmethod
    def _server_combo(first: str) -> QComboBox:
        combo = QComboBox()
        combo.addItem(first, "")
        return combo

    def settings_changed(self) -> None:
        """The ComfyUI servers' checkpoints join the model list when they answer."""
        self.list_server_models()

    def on_server(self) -> bool:
        return str(self.model.currentData() or "").startswith("server:")

    def _model_changed(self, *_args) -> None:
        """Server rows show for a model on a server, filled with that server's choices."""
        on_server = self.on_server()
        form, widgets = self._server_rows
        for widget in widgets:
            widget.setVisible(on_server)
            label = form.labelForField(widget)
            if label is not None:
                label.setVisible(on_server)
        if on_server:
            self._ask_server_choices()

    def _ask_server_choices(self) -> None:
        from creative_studio.core.servers import of_kinds
        from creative_studio.engines.comfyui import ComfyClient
        from creative_studio.ui.servers import Background

        name = str(self.model.currentData())[len("server:"):].partition("/")[0]
        servers = [s for s in of_kinds(self.context.settings, self.manifest.servers)
                   if name in ("*", s.name)]
        if not servers:
            return
        server = servers[0]
        if self._server_info is None:
            self._server_info = Background(self)
            self._server_info.done.connect(self._server_choices)

        def ask():
            client = ComfyClient(server.url, server.api_key(), read_timeout=15.0)
            try:
                return client.samplers(), client.schedulers()
            finally:
                client.close()

        self._server_info.run(ask)

    def _server_choices(self, result, error: str) -> None:
        if error:
            self.info.setText(f"The server did not list its samplers: {error}")
            return
        for combo, names in zip((self.sampler, self.schedule), result, strict=True):
            current = combo.currentData()
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for name in names[:500]:
                combo.addItem(name, name)
            index = combo.findData(current)
            if index < 0 and current:
                combo.addItem(f"{current} (not on this server)", current)
                index = combo.count() - 1
            combo.setCurrentIndex(max(0, index))
            combo.blockSignals(False)

    def workflow_dialog(self) -> None:
        from .workflow_dialog import WorkflowDialog

        dialog = WorkflowDialog(self.context.settings, self.workflow_text.toPlainText(), self)
        if dialog.exec():
            self.workflow_text.setPlainText(dialog.text)

    def _show_workflow_name(self) -> None:
        from .workflows import load_document

        text = self.workflow_text.toPlainText()
        name = "Standard text-to-image"
        if text:
            try:
                name = f"Own: {load_document(text)[0]}"
            except StudioError:
                name = "Own workflow (damaged: open it again)"
        self.workflow_button.setText(name)

    # -- models ----------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        self.choose_model_path("Choose a diffusers pipeline folder")

    def _choose_hub(self) -> None:
        self.ask_hub_id("stabilityai/sd-turbo")

    # -- jobs --------------------------------------------------------------------------------
    def generate(self) -> list[Job]:
        prompt = self.prompt.toPlainText().strip()
        if not prompt:  # a new user's slip, not a wish for an unconditional picture
            self.show_message("Write what to draw in the prompt first (e.g. “red apple”).",
                              error=True)
            self.prompt.setFocus()
            return []
        return self.submit_variations("generate", self.param_values("generate"),
                                      prompt[:30] or "image", prompt)

    def on_progress(self, job: Job, fraction: float, eta: float | None, preview: Any) -> None:
        text = job.progress.message or f"Step {fraction * 100:.0f}%"
        if eta:
            text += f" · about {eta:.0f} s left"
        self.info.setText(text)
        if isinstance(preview, bytes):
            self.view.setPixmap(pixmap_of(preview, self._view_side()))

    def on_result(self, job: Job) -> None:
        if job.item_id:
            self.refresh_gallery(select=job.item_id)

    def _view_side(self) -> int:
        return max(64, min(self.view.width(), self.view.height()) - 8)

    # -- gallery ---------------------------------------------------------------------------
    def project_changed(self) -> None:
        super().project_changed()
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
        for item in store.items(kind="image", limit=GALLERY_LIMIT):
            if not item.assets or not item.assets[0].mime.startswith("image/"):
                continue
            upscaled = item.plugin == "upscale" and item.request.task == "upscale"
            if item.plugin != self.manifest.id and not upscaled:  # upscales too, not photos
                continue
            asset_id = item.assets[0].id
            if asset_id not in self._icons:  # assets never change: decode each one once
                try:
                    self._icons[asset_id] = QIcon(pixmap_of(store.asset_bytes(asset_id), 72))
                except StudioError:  # a damaged output: listed, marked, not shown
                    self._icons[asset_id] = QIcon()
            label = ("⚠ " if item.id in store.damaged else "") + (item.title or "")[:18]
            entry = QListWidgetItem(self._icons[asset_id], label)
            entry.setData(Qt.ItemDataRole.UserRole, item.id)
            entry.setToolTip(item.title[:500])
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
        path = ask_path(self, self.context.settings, "picture", "open",
                        "Recall the recipe of a PNG", file_filter="PNG images (*.png)")
        if path:
            self.recall_png(Path(path))

    def recall_png(self, path: Path) -> dict | None:
        """Fill the panel from a PNG made by the studio, A1111 or ComfyUI."""
        from .recipes import recipe_from_png

        recipe = self.attempt(lambda: recipe_from_png(path.read_bytes(), path.name), path.name)
        if recipe is None:
            return None
        self._apply(recipe, "all")
        self.show_message(f"Recalled the {recipe.get('source', '')} recipe of {path.name}.")
        return recipe

    def _apply(self, recipe: dict, mode: str) -> None:
        """Fill the panel from a PNG's recipe (the studio's, A1111's or ComfyUI's)."""
        from creative_studio.core.jobs import Request

        params = {key: recipe[key] for key in ("negative", "steps", "guidance", "scheduler",
                                               "width", "height") if key in recipe}
        seed = recipe.get("seed")
        request = Request(self.manifest.id, "generate", str(recipe.get("prompt", "")), params,
                          seed if isinstance(seed, int) else self.seed_field.seed.value())
        self.apply_recipe(request, mode=mode)

    def export_dialog(self) -> None:
        if self.current is None:
            self.show_message("Choose an image in the gallery first.", error=True)
            return
        from creative_studio.io.export import suggested_name

        path, _ = ask_path(self, self.context.settings, "export", "save", "Export image",
                           suggested_name(self.current), "PNG with recipe (*.png)")
        if path:
            self.export(self.current, Path(path), scale=self.export_scale.currentData())

    # -- history -------------------------------------------------------------------------------
    def recall(self, item: Item, mode: str = "all") -> None:
        super().recall(item, mode)
        self.show_item(item)

    def use_output(self, item: Item) -> None:
        self.show_item(item)

    def work_state(self) -> dict[str, Any]:
        return {"prompt": self.prompt.toPlainText(),
                "export_scale": self.export_scale.currentData()}

    def restore_work(self, state: dict[str, Any]) -> None:
        self.prompt.setPlainText(str(state.get("prompt", "")))
        scale = self.export_scale.findData(state.get("export_scale", 1))
        self.export_scale.setCurrentIndex(max(0, scale))
        if "negative" in state:  # projects saved before the settings were kept
            self.negative.setText(str(state["negative"]))

    def describe_item(self, item: Item, store) -> str:
        meta = item.metadata
        if "steps" not in meta:
            return item.title
        where = f" on {meta['server']} (ComfyUI, {meta.get('workflow_name', '')})" \
            if meta.get("engine") == "comfyui" else ""
        return (f"{item.title} — {meta['width']}×{meta['height']}, {meta['steps']} steps, "
                f"{meta['scheduler']}, guidance {meta['guidance']:g}, seed {item.request.seed}, "
                f"{meta.get('seconds', '?')} s{where}")
