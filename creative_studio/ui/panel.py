"""What every plugin panel gets from the window, and the base class panels build on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import StudioError
from ..core.jobs import Job, Request
from ..core.project import Item, ProjectStore
from ..plugins import PluginManifest


class PanelContext:
    """The window's services, handed to panels (they never reach into the window)."""

    def __init__(self, submit: Callable[[Request, str], Job], store: Callable[[], ProjectStore],
                 settings: Any, cancel: Callable[[int], None],
                 get_job: Callable[[int], Job | None],
                 send: Callable[[Item, str], None] | None = None) -> None:
        self._submit = submit
        self._send = send
        self._store = store
        self.settings = settings
        self.cancel = cancel
        self.get_job = get_job

    @property
    def store(self) -> ProjectStore:
        return self._store()

    def send(self, item: Item, plugin_id: str) -> bool:
        """Hand an output to another panel (e.g. an image to Upscale); False if it is absent."""
        if self._send is None:
            return False
        return bool(self._send(item, plugin_id))

    def submit(self, request: Request, label: str = "") -> Job:
        """Queue a request; raises StudioError (BadInput...) with a message for the user."""
        return self._submit(request, label)


class PluginPanel(QWidget):
    """Base class of panels. Subclasses build requests and show results."""

    def __init__(self, context: PanelContext, manifest: PluginManifest,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.manifest = manifest
        self.message = QLabel()
        self.message.setObjectName("panelMessage")
        self.message.setWordWrap(True)
        self.message.hide()

    def set_sides(self, side: QWidget, main: QWidget, side_width: int = 320) -> None:
        """The usual panel layout: settings on the left, the work on the right (resizable)."""
        splitter = QSplitter()
        splitter.addWidget(side)
        splitter.addWidget(main)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([side_width, 800])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    # -- messages -------------------------------------------------------------------
    def show_message(self, text: str, error: bool = False) -> None:
        color = "#d9534f" if error else "palette(text)"
        self.message.setStyleSheet(f"color: {color};")
        self.message.setText(text)
        self.message.setVisible(bool(text))

    def try_submit(self, request: Request, label: str = "") -> Job | None:
        try:
            job = self.context.submit(request, label)
        except StudioError as exc:
            self.show_message(str(exc), error=True)
            return None
        self.show_message("")
        return job

    def model_choices(self) -> QComboBox:
        """A combo box of the models the manifest offers (data: ``source:id`` refs)."""
        combo = QComboBox()
        for offer in self.manifest.models:
            combo.addItem(offer.name, f"{offer.source}:{offer.id}")
            if offer.description:
                combo.setItemData(combo.count() - 1, offer.description,
                                  Qt.ItemDataRole.ToolTipRole)
        return combo

    def ask_hub_id(self, example: str) -> None:
        """Ask for a Hugging Face id and add it to the ``model`` choices."""
        text, ok = QInputDialog.getText(self, "Hugging Face model", f"Model id (e.g. {example}):")
        if ok and text.strip():
            self.add_model_ref(f"hub:{text.strip()}", f"Hub: {text.strip()}")

    def side_panel(self, form: QFormLayout, *buttons: QWidget) -> QWidget:
        """Settings on the left: the form, a row of buttons, the message line."""
        side = QWidget()
        layout = QVBoxLayout(side)
        layout.addLayout(form)
        row = QHBoxLayout()
        for button in buttons:
            row.addWidget(button)
        layout.addLayout(row)
        layout.addWidget(self.message)
        layout.addStretch(1)
        return side

    def submit_variations(self, task: str, params: dict[str, Any], count: int, seed: int,
                          label: str, prompt: str = "", parents: list[str] | None = None
                          ) -> list[Job]:
        """Queue ``count`` versions (seeds ``seed``, ``seed + 1``…) grouped as alternatives in
        the History. All or nothing: if one is refused, the queued ones are cancelled."""
        from ..core.jobs import variations

        base = Request(self.manifest.id, task, prompt=prompt, params=params, seed=seed,
                       parents=list(parents or []), model=self.model.currentData() or "")
        jobs: list[Job] = []
        for index, request in enumerate(variations(base, count)):
            job = self.try_submit(request, f"{label} ({index + 1}/{count})" if count > 1
                                  else label)
            if job is None:
                self.cancel_jobs(j.id for j in jobs)
                return []
            jobs.append(job)
        return jobs

    def export(self, item: Item | None, path, **options) -> bool:
        """Write an item's output to ``path`` with its recipe (io.export); says how it went."""
        from pathlib import Path

        from ..core.errors import describe
        from ..io.export import export_item

        if item is None:
            self.show_message("Choose a result first.", error=True)
            return False
        try:
            export_item(self.context.store, item, Path(path), **options)
        except (StudioError, OSError) as exc:
            self.show_message(f"Export failed: {describe(exc)}", error=True)
            return False
        self.show_message(f"Exported {Path(path).name}")
        return True

    def run_buttons(self, label: str, run: Callable, tip: str = "") -> tuple:
        """The (run, Stop) button pair: Ctrl+Return runs, Stop starts disabled."""
        from PySide6.QtGui import QKeySequence, QShortcut
        from PySide6.QtWidgets import QPushButton

        run_button = QPushButton(label)
        run_button.setToolTip(f"{tip} (Ctrl+Return)" if tip else "Ctrl+Return")
        run_button.clicked.connect(run)
        stop_button = QPushButton("Stop")
        stop_button.setEnabled(False)
        stop_button.clicked.connect(self.stop)
        QShortcut(QKeySequence("Ctrl+Return"), self, run)
        return run_button, stop_button

    def stop(self) -> None:
        """Stop what this panel is running (panels with run_buttons implement it)."""

    def chosen_item(self, entry) -> Item | None:
        """The project item a list entry stands for (its UserRole data), or None with a
        message when it is gone (deleted from the History meanwhile)."""
        if entry is None:
            return None
        try:
            return self.context.store.item(entry.data(Qt.ItemDataRole.UserRole))
        except StudioError as exc:
            self.show_message(str(exc), error=True)
            return None

    def cancel_jobs(self, job_ids) -> None:
        """Stop: cancel these jobs (queued ones are dropped, running ones stop at a check)."""
        for job_id in list(job_ids):
            self.context.cancel(job_id)

    def add_model_ref(self, ref: str, name: str) -> None:
        """Add (once) and select a model choice in the panel's ``model`` combo box."""
        combo = self.model  # every panel with models names its combo box ``model``
        index = combo.findData(ref)
        if index < 0:
            combo.addItem(name, ref)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    # -- hooks for the window ----------------------------------------------------------
    def on_job_event(self, event: str, job: Job, data: Any) -> None:
        """A job of this plugin changed (called on the GUI thread)."""

    def recall(self, item: Item, mode: str = "all") -> None:
        """Restore an item's prompt ("prompt"), seed ("seed") or everything ("all")."""

    def use_output(self, item: Item) -> None:
        """Put an item's output where the user works (insert text, show image...)."""

    def project_changed(self) -> None:
        """Another project was opened: forget what pointed into the previous one."""

    def accept_input(self, item: Item) -> None:
        """Take another item's output as input ("Send to"; the manifest's ``accepts``)."""

    def save_state(self) -> dict[str, Any]:
        """Unsaved work to keep in the project (drafts); autosaved every few seconds."""
        return {}

    def restore_state(self, state: dict[str, Any]) -> None:
        pass

    def describe_item(self, item: Item, store: ProjectStore) -> str:
        """Plain text shown under the history for the selected item."""
        return ""
