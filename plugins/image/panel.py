"""The Image panel: prompt → images with any diffusers pipeline, step previews, a gallery of
the project's images, recall from the gallery or from a PNG's recipe, export, Upscale; and
editing a picture (img2img, inpaint with a mask painted on the canvas, outpaint): the picture
comes from the gallery, a file, a drop or another panel's Send to, and it and the mask are kept
in the project as the edit's parents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPalette
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSlider,
    QStackedWidget,
    QToolButton,
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

RUN_LABELS = {"generate": "Generate", "img2img": "Change", "inpaint": "Inpaint",
              "outpaint": "Outpaint", "refine": "Refine"}


class ImagePanel(PluginPanel):
    def __init__(self, context, manifest, parent: QWidget | None = None) -> None:
        super().__init__(context, manifest, parent)
        self.current: Item | None = None
        self.source_id: str | None = None  # the picture an edit starts from (a project item)
        self._icons: dict[str, QIcon] = {}  # gallery thumbnails by asset id
        self.setAcceptDrops(True)

        self.model_choices()
        add_model = self.add_model_button(
            "Use another model: a checkpoint file (.safetensors from A1111, Forge, ComfyUI, "
            "Civitai: SD 1.x, 2.x, SDXL), a diffusers pipeline folder, a Hugging Face id, or "
            "a checkpoint on one of your ComfyUI servers (Edit → Preferences → Servers)",
            [("Models on this computer…", self.found_models_dialog),
             ("Checkpoint file…", self._choose_checkpoint),
             ("Pipeline folder…", self._choose_folder), ("Hugging Face id…", self._choose_hub),
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
        self.task = QComboBox()
        for task in manifest.tasks:
            self.task.addItem(task.title, task.id)
            self.task.setItemData(self.task.count() - 1, task.help,
                                  Qt.ItemDataRole.ToolTipRole)
        self.task.setToolTip("Draw a new picture, or change one you have")
        self.source_button = menu_button(
            "Choose…", "The picture to change: the one shown, a file, or drop one here",
            [("The shown picture", self.edit_current), ("Open a file…", self.open_source_dialog)])
        self.source_label = QLabel("no picture yet")
        self.source_label.setWordWrap(True)
        source_row = QHBoxLayout()
        source_row.addWidget(self.source_label, 1)
        source_row.addWidget(self.source_button)
        self.source_field = QWidget()
        self.source_field.setLayout(source_row)
        source_row.setContentsMargins(0, 0, 0, 0)
        extend = QHBoxLayout()  # outpaint: px added on each side, in one row
        extend.setContentsMargins(0, 0, 0, 0)
        for name in ("left", "top", "right", "bottom"):
            box = self.param_widget(name)
            box.setToolTip(f"{self.manifest.params.get(name).help}")
            box.valueChanged.connect(self._show_grow)
            extend.addWidget(box)
        self.extend_field = QWidget()
        self.extend_field.setLayout(extend)
        self.extend_field.setToolTip("px to add on the Left, Top, Right and Bottom")
        form = QFormLayout()
        form.addRow("Task", self.task)
        form.addRow("Picture", self.source_field)
        form.addRow("Model", model_row)
        form.addRow("Prompt", self.prompt)
        form.addRow("Size", size_row)
        from .lora_list import LoraStack

        self.loras = self.bind("loras", LoraStack(self.choose_loras))
        self.loras.trigger_words.connect(self._add_words)
        self.param_rows(form, "loras")
        self.param_rows(form, "strength")
        self.param_row(form, "left", self.extend_field)
        form.labelForField(self.extend_field).setText("Extend (L T R B)")
        self.param_rows(form, "feather", "scale", "detail")
        self._form = form
        advanced = QFormLayout()  # what an artist sets now and then folds away
        self.param_rows(advanced, "negative", "scheduler", "sampler", "schedule", "steps",
                        "guidance", "tile")
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
        from .canvas import MaskCanvas

        self.canvas = MaskCanvas()
        self.canvas.setObjectName("canvas")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.canvas)
        self.tools = self._paint_tools()
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
                ("Export PNG…", self.export_dialog, "Save the picture with its recipe")):
            button = QPushButton(label)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            actions.addWidget(button)
        self.edit_menu = menu_button(
            "Edit ▸", "Work on the shown picture: change, inpaint, outpaint or refine it here, "
                      "or upscale it",
            [("Change, inpaint, outpaint or refine it", self.edit_current),
             ("Upscale it (Upscale panel)", self.upscale_current)])
        actions.addWidget(self.edit_menu)
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
        main_layout.addWidget(self.tools)
        main_layout.addWidget(self.stack, 1)
        main_layout.addLayout(actions)
        main_layout.addWidget(self.info)
        self.gallery.setToolTip("This project's pictures: click one to show it, double-click "
                                "to use its recipe")
        main_layout.addWidget(self.gallery)
        self.set_sides(side, main, 330)
        self._server_info = None
        self.model.currentIndexChanged.connect(self._model_changed)
        self._model_changed()
        self.task.currentIndexChanged.connect(self._task_changed)
        self._task_changed()
        self.settings_changed()
        from creative_studio.ui.found import list_at_start

        from .found import scan_of

        list_at_start(self, lambda: scan_of(self), lambda model: (
            f"{model.name} · {model.family}" if model.kind == "checkpoint" else None))

    # -- models on this computer ----------------------------------------------------------------
    def found_models_dialog(self) -> None:
        """Checkpoints and LoRAs other apps keep: Use puts a checkpoint in the model list, a
        LoRA on the stack."""
        from creative_studio.ui.found import FoundModelsDialog, size_text

        from . import found

        def values(model) -> tuple:
            return (model.name, "LoRA" if model.kind == "lora" else "Checkpoint", model.family,
                    size_text(model.size), model.sha256[:10] or "on first use", model.app,
                    model.path)

        def use(model) -> None:
            if model.kind == "lora":
                self.add_lora(Path(model.path))
            else:
                self.add_model_ref(model.path, f"File: {Path(model.path).name}")

        self.found_dialog = FoundModelsDialog(
            self, columns=("Name", "Kind", "For", "Size", "SHA-256", "Found in", "File"),
            scan=lambda: found.scan_of(self), values=values, use=use,
            looking="Looking in A1111, Forge, ComfyUI, InvokeAI and Fooocus model folders, and "
                    "your own (Preferences → Model folders)…",
            empty="No checkpoints or LoRAs found. Add a folder of your own, or choose a file "
                  "(+ → Checkpoint file…).", folder_title="A folder of checkpoints or LoRAs")
        self.found_dialog.open()

    # -- editing ------------------------------------------------------------------------------
    def _paint_tools(self) -> QWidget:
        """Brush, eraser, brush size, clear and invert (inpaint), and a switch between the
        canvas and the last result."""
        bar = QWidget()
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 0)
        group = QButtonGroup(bar)
        self.brush_button = QToolButton()
        self.brush_button.setText("Brush")
        self.eraser_button = QToolButton()
        self.eraser_button.setText("Eraser")
        for button, tip in ((self.brush_button, "Paint where the picture should change"),
                            (self.eraser_button, "Take parts of the mask back (the right "
                                                 "button erases too)")):
            button.setCheckable(True)
            button.setToolTip(tip)
            group.addButton(button)
            row.addWidget(button)
        self.brush_button.setChecked(True)
        self.eraser_button.toggled.connect(lambda on: setattr(self.canvas, "erasing", on))
        self.brush_size = QSlider(Qt.Orientation.Horizontal)
        self.brush_size.setRange(2, 256)
        self.brush_size.setValue(self.canvas.brush)
        self.brush_size.setMaximumWidth(160)
        self.brush_size.setToolTip("Brush size in pixels of the picture")
        self.brush_size.valueChanged.connect(lambda v: setattr(self.canvas, "brush", v))
        row.addWidget(QLabel("Size"))
        row.addWidget(self.brush_size)
        self._mask_buttons = [self.brush_button, self.eraser_button, self.brush_size]
        for label, slot, tip in (("Undo", self.canvas.undo,
                                  "Take back the last stroke, clear or invert (Ctrl+Z on "
                                  "the canvas)"),
                                 ("Clear", self.canvas.clear_mask, "Clear the mask"),
                                 ("Invert", self.canvas.invert_mask,
                                  "Change everything but what is painted")):
            button = QToolButton()
            button.setText(label)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            row.addWidget(button)
            self._mask_buttons.append(button)
        row.addStretch(1)
        self.canvas_button = QToolButton()
        self.canvas_button.setCheckable(True)
        self.canvas_button.setText("Canvas")
        self.canvas_button.setToolTip("Show the picture being edited (and its mask) or the "
                                      "last result")
        self.canvas_button.toggled.connect(
            lambda on: self.stack.setCurrentWidget(self.canvas if on else self.view))
        row.addWidget(self.canvas_button)
        return bar

    def task_id(self) -> str:
        return str(self.task.currentData() or "generate")

    def _task_changed(self, *_args) -> None:
        task = self.task_id()
        editing = task != "generate"
        self.show_params_for(task)
        self._show_server_rows()  # the server's own rows stay a server model's
        self.source_field.setVisible(editing)
        self._form.labelForField(self.source_field).setVisible(editing)
        self.generate_button.setText(RUN_LABELS.get(task, task.capitalize()))
        self.tools.setVisible(editing)
        for widget in self._mask_buttons:
            widget.setVisible(task == "inpaint")
        self.canvas.painting = task == "inpaint"
        self._show_grow()
        self.canvas_button.setChecked(editing)
        self.stack.setCurrentWidget(self.canvas if editing else self.view)

    def _show_grow(self, *_args) -> None:
        sides = [self.param_widget(n).value() for n in ("left", "top", "right", "bottom")]
        self.canvas.set_grow(*(sides if self.task_id() == "outpaint" else (0, 0, 0, 0)))

    def set_source(self, item: Item, task: str | None = None) -> bool:
        """Edit this project picture: shown on the canvas, the Picture of the next edit
        (the task switches to ``task``, or from Generate to Change the picture)."""
        if not item.assets or not item.assets[0].mime.startswith("image/"):
            self.show_message("That item has no picture to edit.", error=True)
            return False
        try:
            data = self.context.store.asset_bytes(item.assets[0].id)
        except StudioError as exc:
            self.show_message(str(exc), error=True)
            return False
        if not self.canvas.set_picture(data):
            self.show_message("The picture could not be shown (damaged?).", error=True)
            return False
        self.source_id = item.id
        meta = item.metadata
        size = f" ({meta['width']}×{meta['height']})" if "width" in meta else ""
        self.source_label.setText(f"{(item.title or item.id[:8])[:40]}{size}")
        self.source_label.setToolTip(item.title)
        if task is not None:
            self.task.setCurrentIndex(max(0, self.task.findData(task)))
        elif self.task_id() == "generate":
            self.task.setCurrentIndex(max(0, self.task.findData("img2img")))
        self.canvas_button.setChecked(True)
        return True

    def edit_current(self) -> None:
        if self.current is None:
            self.show_message("Choose a picture in the gallery first, or open a file.",
                              error=True)
            return
        self.set_source(self.current)

    def open_source_dialog(self) -> None:
        from creative_studio.io.imports import IMAGE_SUFFIXES

        path = ask_path(self, self.context.settings, "picture", "open", "Picture to edit",
                        file_filter=f"Pictures ({' '.join('*' + s for s in IMAGE_SUFFIXES)})")
        if path:
            self.open_source(Path(path))

    def open_source(self, path: Path) -> str | None:
        """Keep a picture file in the project and edit it; None (and a message) when it
        cannot be read."""
        from creative_studio.io.imports import import_image

        found = self.attempt(lambda: import_image(self.context.store, self.manifest.id, path),
                             path.name)
        if found is None:
            return None
        item_id = found[0]
        self.context.added(item_id)
        self.set_source(self.context.store.item(item_id))
        return item_id

    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt API
        paths = [Path(u.toLocalFile()) for u in event.mimeData().urls() if u.isLocalFile()]
        pictures = [p for p in paths if p.suffix.lower() != ".safetensors"]
        for path in paths:
            if path.suffix.lower() == ".safetensors":
                self.add_lora(path)
        if pictures:
            self.open_source(pictures[0])

    def accept_input(self, item: Item) -> None:
        """Send to → Image: the picture becomes the one to edit."""
        self.set_source(item)

    def edit(self) -> list[Job]:
        """Queue the chosen edit of the source picture (its mask kept as an item too)."""
        from creative_studio.io.imports import import_bytes

        task = self.task_id()
        if self.source_id is None or not self.canvas.has_picture():
            self.show_message("Choose the picture to change first: Picture → Choose…, Edit ▸ "
                              "under a picture, or drop a file here.", error=True)
            return []
        parents = [self.source_id]
        if task == "inpaint":
            if self.canvas.mask_empty():
                self.show_message("Paint where the picture should change first (the brush "
                                  "on the canvas).", error=True)
                return []
            size = self.canvas.picture.size()
            parents.append(import_bytes(
                self.context.store, self.manifest.id, "mask.png", self.canvas.mask_png(),
                "mask", "image/png", {"width": size.width(), "height": size.height()}))
        prompt = self.prompt.toPlainText().strip()
        label = f"{self.task.currentText().lower()}: {prompt[:24] or 'picture'}"
        jobs = self.submit_variations(task, self.param_values(task), label, prompt, parents)
        if not jobs and len(parents) > 1:  # refused (and said): no orphan mask is kept
            self.context.store.delete_item(parents[1])
        return jobs

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
        self._show_server_rows()
        if self.on_server():
            self._ask_server_choices()

    def _show_server_rows(self) -> None:
        on_server = self.on_server()
        form, widgets = self._server_rows
        for widget in widgets:
            widget.setVisible(on_server)
            label = form.labelForField(widget)
            if label is not None:
                label.setVisible(on_server)

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
    def _choose_checkpoint(self) -> None:
        self.choose_model_path("Choose a Stable Diffusion checkpoint", "File",
                               "Checkpoints (*.safetensors *.ckpt)")

    def choose_loras(self) -> None:
        paths = ask_path(self, self.context.settings, "lora", "open_many", "Add LoRAs",
                         file_filter="LoRAs (*.safetensors)")
        for path in paths or []:
            self.add_lora(Path(path))

    def add_lora(self, path: Path, weight: float = 1.0) -> bool:
        """Put a LoRA file on the stack; False (and a message) when it is not a LoRA."""
        from .loras import describe

        try:
            describe(path, weight)
        except StudioError as exc:
            self.show_message(str(exc), error=True)
            return False
        self.loras.add(path, weight)
        return True

    def _add_words(self, words: str) -> None:
        text = self.prompt.toPlainText().rstrip()
        if words and words not in text:
            self.prompt.setPlainText(f"{text}, {words}" if text else words)

    def _choose_folder(self) -> None:
        self.choose_model_path("Choose a diffusers pipeline folder")

    def _choose_hub(self) -> None:
        self.ask_hub_id("stabilityai/sd-turbo")

    # -- jobs --------------------------------------------------------------------------------
    def generate(self) -> list[Job]:
        if self.task_id() != "generate":
            return self.edit()
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

    def on_started(self, job: Job) -> None:
        super().on_started(job)
        self.canvas_button.setChecked(False)  # the steps' previews show in the view

    def on_result(self, job: Job) -> None:
        if job.item_id:
            self.refresh_gallery(select=job.item_id)
        self.canvas_button.setChecked(False)

    def _view_side(self) -> int:
        return max(64, min(self.view.width(), self.view.height()) - 8)

    # -- gallery ---------------------------------------------------------------------------
    def project_changed(self) -> None:
        super().project_changed()
        self.current = None
        self.source_id = None
        self.canvas.clear_picture()
        self.source_label.setText("no picture yet")
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
        self.canvas_button.setChecked(False)

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
        task = item.request.task
        if mode == "all" and self.task.findData(task) >= 0:
            self.task.setCurrentIndex(self.task.findData(task))
            self._recall_parents(item)
        self.show_item(item)

    def _recall_parents(self, item: Item) -> None:
        """An edit's recipe: its picture back on the canvas, and its mask."""
        store = self.context.store
        parents = [self._item(p) for p in item.request.parents]
        if not parents or parents[0] is None or not self.set_source(parents[0],
                                                                    item.request.task):
            return
        if item.request.task == "inpaint" and len(parents) > 1 and parents[1] is not None \
                and parents[1].assets:
            try:
                self.canvas.set_mask_png(store.asset_bytes(parents[1].assets[0].id))
            except StudioError:
                self.show_message("The edit's mask is damaged: paint it again.", error=True)

    def use_output(self, item: Item) -> None:
        self.show_item(item)

    def _item(self, item_id: str) -> Item | None:
        try:
            return self.context.store.item(item_id)
        except StudioError:  # removed since, or another project's
            return None

    def work_state(self) -> dict[str, Any]:
        return {"prompt": self.prompt.toPlainText(),
                "export_scale": self.export_scale.currentData(),
                "task": self.task_id(), "source": self.source_id or ""}

    def restore_work(self, state: dict[str, Any]) -> None:
        self.prompt.setPlainText(str(state.get("prompt", "")))
        source = state.get("source")
        item = self._item(source) if isinstance(source, str) and source else None
        if item is not None:
            self.set_source(item, str(state.get("task", "img2img")))
        elif self.task.findData(state.get("task")) >= 0:
            self.task.setCurrentIndex(self.task.findData(state.get("task")))
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
