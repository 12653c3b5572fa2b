"""The main window: panels, history, job queue, menus, project handling."""

from __future__ import annotations

import logging
import os
import time
import traceback
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..core import project as project_mod
from ..core.errors import ProjectError, StudioError, describe
from ..core.jobs import Job, JobEvent, JobEventKind, Request
from ..core.project import ProjectStore
from ..core.settings import Settings
from ..plugins import PluginRecord, PluginRegistry
from ..workers.runner import JobRunner
from .history import HistoryView
from .icons import icon, set_icon
from .jobs import JobEvents, JobsView
from .panel import PanelContext, PluginPanel
from .settings_dialog import SettingsDialog
from .theme import apply_theme
from .widgets import RECORDED_TASKS, ask_path

log = logging.getLogger(__name__)
AUTOSAVE_MS = 3000
PRELOAD_DELAY_MS = 1000


class ErrorPanel(QWidget):
    """Stands in for a panel whose plugin failed to load: shows why."""

    def __init__(self, record: PluginRecord, detail: str = "") -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        title = QLabel(f"<b>This plugin could not be loaded.</b><br>{record.error}")
        title.setWordWrap(True)
        layout.addWidget(title)
        if detail:
            text = QPlainTextEdit(detail)
            text.setReadOnly(True)
            layout.addWidget(text)
        layout.addStretch(1)


class MainWindow(QMainWindow):
    first_painted = Signal()

    def __init__(self, registry: PluginRegistry, settings: Settings,
                 store: ProjectStore | None = None) -> None:
        super().__init__()
        self.registry = registry
        self.settings = settings
        self.store = store or project_mod.new_untitled()
        self.errors: list[str] = []  # messages shown to the user (also kept for tests)
        self.events = JobEvents()
        self.runner = JobRunner(registry, self.events, device_preference=settings.device,
                                settings=settings, isolate=settings.model_process)
        self.panels: dict[str, PluginPanel] = {}
        self._painted = False
        self._last_state: dict[str, Any] = {}

        self.setWindowTitle("Creative Studio")
        self.resize(1280, 820)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.context = PanelContext(self.submit, lambda: self.store, settings, self.runner.cancel,
                                    self.runner.get, self.send_to,
                                    lambda item_id: self.history.refresh(select=item_id))
        self._build_panels()

        self.history = HistoryView()
        self.history.describe = self._describe_item
        self.history.icons = {pid: icon(p.manifest.icon) for pid, p in self.panels.items()}
        self.history.recall_requested.connect(self.recall)
        self.history.use_requested.connect(self.use_output)
        self.history.rerun_requested.connect(self.rerun)
        self.history.delete_requested.connect(self.delete_item)
        self.history.targets = self._send_targets
        self.history.send_requested.connect(self.send_to)
        self.history_dock = self._dock("History", self.history, Qt.DockWidgetArea.RightDockWidgetArea)
        self.jobs_view = JobsView(self.runner, self.events)
        self.jobs_dock = self._dock("Jobs", self.jobs_view, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.events.event.connect(self._on_job_event)
        # the Jobs list shares the History's column: the work keeps the window's height
        self.tabifyDockWidget(self.history_dock, self.jobs_dock)
        self.history_dock.raise_()
        self.resizeDocks([self.history_dock], [280], Qt.Orientation.Horizontal)
        self._focus_state: dict[str, Any] | None = None  # what focus mode hid

        self.device_label = QLabel()
        self.project_label = QLabel()
        self.statusBar().addPermanentWidget(self.project_label)
        self.statusBar().addPermanentWidget(self.device_label)
        self._build_menus()
        self._build_toolbar()
        self.tabs.currentChanged.connect(self._panel_shown)
        self._panel_shown()
        self._set_store(self.store)
        self._update_device_label()

        self._autosave = QTimer(self)
        self._autosave.setInterval(AUTOSAVE_MS)
        self._autosave.timeout.connect(self.autosave)
        self._autosave.start()
        geometry = QSettings("creative-studio", "window").value("geometry")
        if geometry is not None and not os.environ.get("CREATIVE_STUDIO_HOME"):
            self.restoreGeometry(geometry)
        QTimer.singleShot(0, self.tell_settings_damage)

    def tell_settings_damage(self) -> None:
        """Preferences read from a damaged file: keep the file aside now and say what was
        not loaded (the user's servers are never dropped unseen)."""
        told = self.settings.tell_damage()
        if told:
            self.show_error("Preferences", told)

    # -- construction ---------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_panels(self) -> None:
        for record in self.registry.records:
            if record.manifest is None:
                name = Path(record.origin).parent.name or record.origin
                self.tabs.addTab(ErrorPanel(record), f"⚠ {name}")
                continue
            try:
                if record.error:
                    raise StudioError(record.error)
                panel_cls = record.load("panel")
                panel = panel_cls(self.context, record.manifest)
            except Exception as exc:
                if not record.error:
                    record.error = f"Plugin '{record.id}': {type(exc).__name__}: {exc}"
                    record.traceback = traceback.format_exc()
                log.error("panel of %s failed: %s\n%s", record.id, record.error,
                          record.traceback)
                self.tabs.addTab(ErrorPanel(record, record.traceback),
                                 f"⚠ {record.manifest.name}")
                continue
            self.panels[record.manifest.id] = panel
            self.tabs.addTab(panel, icon(record.manifest.icon), record.manifest.name)
            number = len(self.panels)
            self.tabs.setTabToolTip(self.tabs.count() - 1, f"{record.manifest.description} "
                                    f"(Ctrl+{number})" if number <= 9 else
                                    record.manifest.description)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        act = self.acts = {}  # the window's actions by name (the toolbar shows some)
        file_menu = bar.addMenu("&File")
        act["new"] = self._action(file_menu, "&New project", QKeySequence.StandardKey.New,
                                  self.new_project)
        act["open"] = self._action(file_menu, "&Open…", QKeySequence.StandardKey.Open,
                                   self.open_dialog)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        act["save"] = self._action(file_menu, "&Save", QKeySequence.StandardKey.Save,
                                   self.save)
        self._action(file_menu, "Save &As…", QKeySequence.StandardKey.SaveAs, self.save_as_dialog)
        file_menu.addSeparator()
        act["export"] = self._action(file_menu, "&Export selected item…", QKeySequence("Ctrl+E"),
                                     self.export_dialog)
        self._action(file_menu, "&Check project…", QKeySequence("Ctrl+Shift+K"),
                     self.check_project)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", QKeySequence.StandardKey.Quit, self.close)
        edit = bar.addMenu("&Edit")
        act["undo"] = self._action(edit, "&Undo", QKeySequence.StandardKey.Undo,
                                   lambda: self._current_panel_call("undo"))
        act["redo"] = self._action(edit, "&Redo", QKeySequence.StandardKey.Redo,
                                   lambda: self._current_panel_call("redo"))
        edit.addSeparator()
        act["preferences"] = self._action(edit, "&Preferences…",
                                          QKeySequence.StandardKey.Preferences, self.preferences)
        if QKeySequence(QKeySequence.StandardKey.Preferences).isEmpty():
            act["preferences"].setShortcut(QKeySequence("Ctrl+,"))
        run = bar.addMenu("&Run")
        act["generate"] = self._action(run, "&Generate", QKeySequence("Ctrl+Return"),
                                       lambda: self._current_panel_call("run"))
        act["generate"].setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # panels' own
        act["stop"] = self._action(run, "&Stop", QKeySequence("Esc"),
                                   lambda: self._current_panel_call("stop"))
        act["stop"].setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # panels' own
        view = bar.addMenu("&View")
        for number, panel in enumerate(self.panels.values(), start=1):
            if number <= 9:
                self._action(view, f"&{number} {panel.manifest.name}",
                             QKeySequence(f"Ctrl+{number}"),
                             lambda p=panel: self.tabs.setCurrentWidget(p))
        view.addSeparator()
        act["focus"] = self._action(view, "&Focus mode (the work alone)", QKeySequence("F11"),
                                    self.toggle_focus)
        act["focus"].setCheckable(True)
        self.serif_action = self._action(view, "&Serif font for writing", None,
                                         self.toggle_serif)
        self.serif_action.setCheckable(True)
        self.serif_action.setChecked(self.settings.serif)
        self.dark_action = act["theme"] = self._action(
            view, "&Dark theme", QKeySequence("Ctrl+Shift+D"), self.toggle_theme)
        self.dark_action.setCheckable(True)
        self.dark_action.setChecked(self.settings.theme == "dark")
        view.addSeparator()
        act["history"] = self.history_dock.toggleViewAction()
        act["history"].setShortcut(QKeySequence("Ctrl+Shift+H"))
        act["jobs"] = self.jobs_dock.toggleViewAction()
        act["jobs"].setShortcut(QKeySequence("Ctrl+Shift+J"))
        view.addAction(act["history"])
        view.addAction(act["jobs"])
        self._action(view, "&Unload models (free memory)", None, self.unload_models)
        help_menu = bar.addMenu("&Help")
        act["welcome"] = self._action(help_menu, "&Welcome…", None, self.show_welcome)
        act["manual"] = self._action(help_menu, "&Manual…", QKeySequence.StandardKey.HelpContents,
                                     self.show_manual)
        act["shortcuts"] = self._action(help_menu, "&Keyboard shortcuts…",
                                        QKeySequence("Ctrl+/"), self.show_shortcuts)
        help_menu.addSeparator()
        self._action(help_menu, "&Plugins…", None, self.show_plugins)
        self._action(help_menu, "Show &log…", None, self.show_log)
        self._action(help_menu, "&About", None, self.about)
        for name, action in act.items():
            set_icon(action, name)

    def _build_toolbar(self) -> None:
        """The toolbar: the project, the current panel's Generate and Stop, the view."""
        from PySide6.QtCore import QSize
        from PySide6.QtWidgets import QToolBar

        bar = QToolBar("Toolbar", self)
        bar.setObjectName("toolbar")
        bar.setMovable(False)
        bar.setIconSize(QSize(20, 20))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        acts = self.acts
        for name in ("new", "open", "save", None, "undo", "redo", None, "generate", "stop",
                     None, "focus", "history", "jobs", "theme", None, "welcome", "manual"):
            if name is None:
                bar.addSeparator()
                continue
            action = acts[name]
            bar.addAction(action)
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            text = action.text().replace("&", "")
            action.setToolTip(f"{text} ({keys})" if keys else text)
        # Generate says what the panel makes (Upscale, Harmonize…), beside its icon
        self.generate_tool = bar.widgetForAction(acts["generate"])
        self.generate_tool.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toolbar = bar

    def _panel_shown(self, *_args) -> None:
        """The toolbar's Generate and Stop follow the panel shown."""
        panel = self.tabs.currentWidget()
        run = getattr(panel, "run_button", None)
        self.acts["generate"].setEnabled(run is not None)
        self.acts["stop"].setEnabled(bool(getattr(panel, "jobs", None)))
        if run is not None:
            self.acts["generate"].setText(run.text())
            self.acts["generate"].setToolTip(f"{run.text()} ({run.toolTip() or 'Ctrl+Return'})"
                                             if "Ctrl" not in run.toolTip() else
                                             f"{run.text()}: {run.toolTip()}")

    def _action(self, menu, text, shortcut, slot) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        return action

    def _current_panel_call(self, name: str) -> None:
        """Edit → Undo/Redo: the focused text field's, else the current panel's."""
        from PySide6.QtWidgets import QApplication

        focused = QApplication.focusWidget()
        if focused is not None and hasattr(focused, name) and \
                isinstance(focused, QPlainTextEdit | QLineEdit):
            getattr(focused, name)()
            return
        panel = self.tabs.currentWidget()
        action = getattr(panel, name, None)
        if callable(action):
            action()

    # -- messages -------------------------------------------------------------------
    def show_error(self, title: str, text: str) -> None:
        """A clear, non-blocking message (the window keeps working), kept in the log."""
        log.warning("%s: %s", title, text)
        self.errors.append(text)
        self.statusBar().showMessage(text, 10000)
        if os.environ.get("CREATIVE_STUDIO_NO_DIALOGS") == "1":
            return
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok,
                          self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def ask(self, title: str, text: str, buttons, default,
            headless=None) -> QMessageBox.StandardButton:
        """Ask a question; with CREATIVE_STUDIO_NO_DIALOGS=1 answer ``headless`` (or default)."""
        if os.environ.get("CREATIVE_STUDIO_NO_DIALOGS") == "1":
            return default if headless is None else headless
        return QMessageBox.question(self, title, text, buttons, default)

    # -- jobs -----------------------------------------------------------------------
    def submit(self, request: Request, label: str = "") -> Job:
        if not request.device or request.device == "auto":
            request.device = self.settings.device
        return self.runner.submit(request, store=self.store, label=label)

    def _on_job_event(self, event: JobEvent) -> None:
        if event.kind is not JobEventKind.PROGRESS:  # Stop: enabled while the panel has jobs
            QTimer.singleShot(0, self._panel_shown)
        job = event.job
        panel = self.panels.get(job.request.plugin)
        if panel is not None:
            try:
                panel.handle_event(event)
            except Exception:  # a panel's bug is logged and shown; the window goes on
                log.exception("panel %s failed on a job event", job.request.plugin)
                self.show_error("Panel error", f"The {panel.manifest.name} panel could not "
                                "show a job's result (details in Help → Show log).")
        kind = event.kind
        if kind is JobEventKind.STARTED:
            self.statusBar().showMessage(f"Running {job.request.plugin}: {job.label}")
        elif kind is JobEventKind.DONE:
            if job.store is self.store:
                self.history.refresh(select=job.item_id)
            if job.error:
                self.show_error("Result not saved", job.error)
            else:
                # the model's load counts: a first idea is not "2.7 s" 18.5 s after the click
                seconds = time.monotonic() - job.progress.started + job.load_seconds
                loading = (f" (loading the model {job.load_seconds:.1f} s)"
                           if job.load_seconds >= 0.5 else "")
                same = job.result.metadata.get("rerun_matches") if job.result else None
                said = "" if same is None else " — the same output as the original" if same \
                    else " — the output differs from the original"
                self.statusBar().showMessage(
                    f"Finished {job.label} in {seconds:.1f} s{loading}{said}", 8000)
        elif kind is JobEventKind.FAILED:
            self.statusBar().showMessage(f"Failed: {job.error}", 10000)
            self.errors.append(job.error)
        elif kind is JobEventKind.CANCELLED:
            self.statusBar().showMessage(f"Cancelled: {job.label}", 5000)

    def unload_models(self) -> None:
        self.runner.unload_models()
        self.statusBar().showMessage("Models unloaded: the next job loads its model again.", 5000)

    def _update_device_label(self) -> None:
        self.device_label.setText(f"Device: {self.settings.device}")

    # -- history actions ------------------------------------------------------------------
    def _describe_item(self, item) -> str:
        panel = self.panels.get(item.plugin)
        try:
            return panel.describe_item(item, self.store) if panel else ""
        except StudioError as exc:
            return str(exc)

    def recall(self, item, mode: str = "all") -> None:
        panel = self.panels.get(item.plugin)
        if panel is None:
            self.show_error("Cannot recall", f"The plugin '{item.plugin}' is not available.")
            return
        self.tabs.setCurrentWidget(panel)
        panel.recall(item, mode)

    def use_output(self, item) -> None:
        panel = self.panels.get(item.plugin)
        if panel is not None:
            self.tabs.setCurrentWidget(panel)
            panel.use_output(item)

    def _send_targets(self, item) -> list[tuple[str, str]]:
        """Panels that take this item's output as their input (manifest ``accepts``)."""
        if not item.assets:
            return []
        mime = item.assets[0].mime
        return [(pid, panel.manifest.name) for pid, panel in self.panels.items()
                if panel.manifest.takes(mime)]

    def send_to(self, item, plugin_id: str) -> bool:
        panel = self.panels.get(plugin_id)
        if panel is None:
            return False
        self.tabs.setCurrentWidget(panel)
        panel.accept_input(item)
        return True

    def rerun(self, item) -> Job | None:
        if item.damaged:  # it would repeat a recipe that is not the one that made the item
            self.show_error("Cannot re-run", f"This item is damaged: {item.damaged}. Its "
                            "recipe is not what made it, so it is not run again (File → "
                            "Check project lists the damaged items; Repair copies the intact "
                            "ones).")
            return None
        if item.request.task in RECORDED_TASKS:
            self.show_error("Nothing to re-run", "This item was kept as it is (a file read "
                            "or notes edited by hand), not made by a model: there is no "
                            "recipe to run again.")
            return None
        request = Request.from_dict(item.request.to_dict())
        panel = self.panels.get(item.plugin)
        spec = panel.manifest.task(request.task) if panel else None
        if not (spec and spec.input):  # a job that reads an item keeps reading that item
            request.parents = [item.id]
        request.params = {k: v for k, v in request.params.items()
                          if k not in ("group", "alternative")}
        request.params["rerun_of"] = item.id
        try:
            return self.submit(request, label=f"re-run {item.title or item.request.prompt[:40]}")
        except StudioError as exc:
            self.show_error("Cannot re-run", str(exc))
            return None

    def delete_item(self, item) -> None:
        answer = self.ask("Delete item", f"Delete “{item.title or item.id}” from the project?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                          QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.store.delete_item(item.id)
            self.history.refresh()

    # -- projects -----------------------------------------------------------------------
    def _set_store(self, store: ProjectStore) -> None:
        self.store = store
        self.history.set_store(store)
        name = "Untitled (unsaved)" if store.untitled else store.path.name
        self.setWindowTitle(f"{name} — Creative Studio")
        self.project_label.setText(name)
        self._last_state = {}
        for plugin_id, panel in self.panels.items():
            try:
                panel.project_changed()
                state = store.get_state(f"panel:{plugin_id}", None)
                if isinstance(state, dict):
                    panel.restore_state(state)
                # what the panel shows now is what the project holds: only changes are saved
                self._last_state[plugin_id] = panel.save_state()
            except Exception:  # a panel's bug must not stop the project from opening
                log.exception("panel %s could not restore its state", plugin_id)

    def autosave(self, everything: bool = False) -> None:
        """Keep every panel's settings and unsaved work (drafts) in the project file."""
        if self.store.closed:
            return
        # an untitled project with no work yet stays empty (nothing to save or recover) when
        # only a setting changed; its settings are kept with its first draft or item, or
        # when the user saves it (``everything``)
        idle = self.store.untitled and self.store.count() == 0 and not everything
        for plugin_id, panel in self.panels.items():
            try:
                state = panel.save_state()
            except Exception:
                log.exception("panel %s could not save its state", plugin_id)
                continue
            previous = self._last_state.get(plugin_id)
            if idle and previous is not None and state.get("work") == previous.get("work") \
                    and self.store.get_state(f"panel:{plugin_id}", None) is None:
                continue  # only settings changed: nothing of the user's to keep yet
            if state and state != previous:
                try:
                    self.store.set_state(f"panel:{plugin_id}", state)
                    self._last_state[plugin_id] = state
                except ProjectError as exc:
                    self.statusBar().showMessage(str(exc), 10000)

    def _can_switch(self) -> bool:
        if not self.runner.active():
            return True
        answer = self.ask("Jobs running", "Jobs are still running for this project. Cancel "
                          "them and continue?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                          QMessageBox.StandardButton.No)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        self.runner.cancel_all()
        self.runner.wait_idle(timeout=30)
        return True

    def _leave_store(self) -> bool:
        """Close the current project; an untitled one with work asks to be saved."""
        if self.store.closed:
            return True
        self.autosave()
        store = self.store
        if store.untitled and not store.is_empty():
            answer = self.ask("Unsaved project", "Save this project before closing it?",
                              QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                              | QMessageBox.StandardButton.Cancel,
                              QMessageBox.StandardButton.Cancel,
                              # without dialogs: keep it for recovery at the next start
                              headless=QMessageBox.StandardButton.Ignore)
            if answer == QMessageBox.StandardButton.Cancel:
                return False
            if answer == QMessageBox.StandardButton.Save and not self.save_as_dialog():
                return False
            if answer == QMessageBox.StandardButton.Ignore:
                self.store.close()
                return True
        store = self.store
        store.close()
        if store.untitled:
            project_mod.discard_unsaved(store.path)
        return True

    def new_project(self) -> None:
        if not self._can_switch() or not self._leave_store():
            return
        for panel in self.panels.values():
            panel.restore_state({})
        self._set_store(project_mod.new_untitled())

    def open_dialog(self) -> None:
        path = ask_path(self, self.settings, "project", "open", "Open project",
                        file_filter="Creative Studio projects (*.csproj);;All files (*)")
        if path:
            self.open_project(path)

    def open_project(self, path: str | os.PathLike) -> bool:
        """Open a project; a file that cannot be opened is told plainly (and not added to
        Open Recent), and the window goes on with the project it had."""
        try:
            store = ProjectStore.open(path)
        except ProjectError as exc:
            self.show_error("Cannot open project", str(exc))
            return False
        except Exception as exc:  # never a crash for a file: the details go to the log
            log.exception("opening %s failed", path)
            self.show_error("Cannot open project", f"{Path(path).name} could not be opened "
                            f"({type(exc).__name__}); details are in the log (Help → Show "
                            "log).")
            return False
        if not self._can_switch() or not self._leave_store():
            store.close()
            return False
        if store.untitled:
            project_mod.claim(store.path)
        else:
            self.settings.add_recent(store.path)
            self._save_settings()
        self._set_store(store)
        return True

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_project(p))
        if not self.settings.recent_files:
            self.recent_menu.addAction("(none)").setEnabled(False)

    def save(self) -> bool:
        """File → Save (Ctrl+S): an untitled project asks where; a saved one is written
        already (every job and draft goes in as it comes): its drafts are kept now."""
        if self.store.untitled:
            return self.save_as_dialog()
        self.autosave(everything=True)
        try:
            self.store.flush_pending()
        except ProjectError as exc:
            self.show_error("Cannot save project", str(exc))
            return False
        self.statusBar().showMessage(f"Saved {self.store.path.name}", 4000)
        return True

    def save_as_dialog(self) -> bool:
        name = "project.csproj" if self.store.untitled else self.store.path.name
        path, _ = ask_path(self, self.settings, "project", "save", "Save project as", name,
                           "Creative Studio projects (*.csproj)")
        return bool(path) and self.save_as(path)

    def save_as(self, path: str | os.PathLike) -> bool:
        self.autosave(everything=True)
        try:
            self.store.save_as(path)
        except ProjectError as exc:
            self.show_error("Cannot save project", str(exc))
            return False
        self.settings.add_recent(self.store.path)
        self._save_settings()
        self._set_store(self.store)
        self.statusBar().showMessage(f"Saved as {self.store.path}", 5000)
        return True

    def export_dialog(self) -> None:
        item = self.history.current_item()
        if item is None:
            self.show_error("Export", "Select an item in the history first.")
            return
        from ..io.export import suggested_name

        path, _ = ask_path(self, self.settings, "export", "save", "Export item",
                           suggested_name(item))
        if path:
            self.export_item(item, Path(path))

    def export_item(self, item, path: Path) -> bool:
        """Export one item; a damaged one only after the user says yes to a warning."""
        from ..io.export import export_item

        damaged_ok = False
        if item.damaged or item.id in self.store.damaged:
            answer = self.ask("Damaged item", f"This item is damaged "
                              f"({item.damaged or self.store.damaged[item.id]}): what would be "
                              "exported may not be what was made. Export it anyway?",
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                              QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
            damaged_ok = True
        try:
            export_item(self.store, item, path, damaged_ok=damaged_ok)
        except (StudioError, OSError) as exc:
            self.show_error("Export failed", describe(exc))
            self.history.refresh()
            return False
        return True

    def check_project(self) -> dict[str, str]:
        """File → Check project: every output compared with its checksum; the damaged items
        are marked in the History, and Repair offers to copy the intact ones to a new file."""
        from PySide6.QtWidgets import QApplication

        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            problems = self.store.check()
        except ProjectError as exc:
            problems = {"": str(exc)}
        finally:
            QApplication.restoreOverrideCursor()
        self.history.refresh()
        if not problems:
            self.statusBar().showMessage(f"{self.store.path.name}: every item is intact "
                                         f"({self.store.count()} checked).", 8000)
            return problems
        lines = [f"• {'the file' if not k else k[:8]}: {v}" for k, v in list(problems.items())[:20]]
        answer = self.ask("Check project", f"{len([k for k in problems if k])} damaged "
                          "item(s):\n" + "\n".join(lines) + "\n\nCopy every intact item into "
                          "a new project file (Repair)?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                          QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            path, _ = ask_path(self, self.settings, "project", "save", "Repair into",
                               self.store.path.stem + "-repaired.csproj",
                               "Creative Studio projects (*.csproj)")
            if path:
                self.repair_project(path)
        return problems

    def repair_project(self, path: str | os.PathLike) -> bool:
        try:
            copied, skipped = self.store.repair(path)
        except (ProjectError, OSError) as exc:
            self.show_error("Repair failed", describe(exc))
            return False
        self.statusBar().showMessage(f"Repaired: {copied} intact item(s) copied to {path}; "
                                     f"{skipped} damaged left out.", 10000)
        return True

    def recovery_summary(self, store: ProjectStore) -> str:
        """What an unsaved project holds, in words: "2 items and drafts in Text, Music"."""
        count = store.count()
        names = {pid: panel.manifest.name for pid, panel in self.panels.items()}
        drafts = [names.get(k.removeprefix("panel:"), k.removeprefix("panel:"))
                  for k in store.state_keys() if k.startswith("panel:")]
        parts = [f"{count} item{'s' if count != 1 else ''}"] if count else []
        if drafts:
            parts.append(f"drafts in {', '.join(drafts)}")
        return " and ".join(parts) or "nothing"

    def create_project(self, path: str | os.PathLike) -> bool:
        """A new project at ``path`` (``creative-studio new.csproj`` on a path that does not
        exist yet), opened at once."""
        path = Path(path)
        if path.suffix.lower() != project_mod.SUFFIX:
            path = path.with_name(path.name + project_mod.SUFFIX)
        if not self._can_switch() or not self._leave_store():
            return False
        try:
            store = ProjectStore.create(path)
        except ProjectError as exc:
            self.show_error("Cannot create project", str(exc))
            self._set_store(project_mod.new_untitled())
            return False
        self.settings.add_recent(store.path)
        self._save_settings()
        self._set_store(store)
        self.statusBar().showMessage(f"Created {store.path}", 5000)
        return True

    def offer_recovery(self) -> None:
        """After a crash: reopen the unsaved projects that hold work."""
        current = self.store.path
        for path in project_mod.recoverable():
            if path == current:
                continue
            try:
                store = ProjectStore.open(path)
            except Exception:  # a damaged leftover is not offered (and never crashes)
                log.warning("unsaved project %s cannot be recovered", path, exc_info=True)
                continue
            empty = store.is_empty()
            what = self.recovery_summary(store)
            store.close()
            if empty:
                project_mod.discard_unsaved(path)
                continue
            answer = self.ask("Recover unsaved work",
                              f"Creative Studio did not close properly. An unsaved project "
                              f"was found with {what}. Recover it?",
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                              QMessageBox.StandardButton.Yes)
            if answer == QMessageBox.StandardButton.Yes:
                self.open_project(path)
                return

    # -- settings -------------------------------------------------------------------------
    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.statusBar().showMessage(f"Could not save preferences: {exc}", 10000)

    def preferences(self, tab: str = "") -> None:
        dialog = SettingsDialog(self.settings, self)
        if tab:
            for index in range(dialog.tabs.count()):
                if dialog.tabs.tabText(index) == tab:
                    dialog.tabs.setCurrentIndex(index)
        if dialog.exec():  # (CPU threads: the thread policy reads them at the next job)
            dialog.apply()
            self.apply_settings()

    def apply_settings(self) -> None:
        from PySide6.QtWidgets import QApplication

        apply_theme(QApplication.instance(), self.settings.theme)
        self.dark_action.setChecked(self.settings.theme == "dark")
        from . import icons

        icons.refresh()
        for index in range(self.tabs.count()):
            panel = self.tabs.widget(index)
            manifest = getattr(panel, "manifest", None)
            if manifest is not None:
                self.tabs.setTabIcon(index, icon(manifest.icon))
        self.history.icons = {pid: icon(p.manifest.icon) for pid, p in self.panels.items()}
        self.history.refresh()
        self.runner.device_preference = self.settings.device
        self.runner.settings = self.settings  # downloads: read at the next model load
        self._update_device_label()
        for panel in self.panels.values():
            panel.settings_changed()
        self._save_settings()

    def toggle_theme(self) -> None:
        self.settings.theme = "light" if self.settings.theme == "dark" else "dark"
        self.apply_settings()

    def toggle_serif(self) -> None:
        self.settings.serif = self.serif_action.isChecked()
        panel = self.panels.get("text")
        if panel is not None and hasattr(panel, "set_serif"):
            panel.set_serif(self.settings.serif)
        self._save_settings()

    def toggle_focus(self) -> None:
        """Focus mode (F11): the current panel's work alone — no docks, toolbar, tabs or
        settings column; F11 again brings back what was shown."""
        entering = self._focus_state is None
        panel = self.tabs.currentWidget()
        if entering:
            self._focus_state = {"panel": panel, "docks": [
                d for d in (self.history_dock, self.jobs_dock) if d.isVisible()]}
            for dock in self._focus_state["docks"]:
                dock.hide()
            self.toolbar.hide()
            self.tabs.tabBar().hide()
            self.statusBar().showMessage("Focus mode: F11 brings the studio back", 4000)
        else:
            panel = self._focus_state["panel"]
            for dock in self._focus_state["docks"]:
                dock.show()
            self.toolbar.show()
            self.tabs.tabBar().show()
            self._focus_state = None
        if hasattr(panel, "set_focus_mode"):
            panel.set_focus_mode(entering)
        self.acts["focus"].setChecked(entering)

    # -- help -----------------------------------------------------------------------------
    def show_welcome(self) -> None:
        from .guide import WelcomeDialog

        self.welcome = WelcomeDialog(self)
        self.welcome.open()

    def show_manual(self) -> None:
        from .guide import ManualDialog

        self.manual = ManualDialog(self)
        self.manual.open()

    def show_shortcuts(self) -> None:
        from .guide import ShortcutsDialog

        self.shortcuts = ShortcutsDialog(self)
        self.shortcuts.open()

    def first_run(self) -> None:
        """The first launch opens the welcome page (once; Help → Welcome brings it back)."""
        if self.settings.welcomed or os.environ.get("CREATIVE_STUDIO_NO_DIALOGS") == "1" \
                or not self.isVisible():  # closed meanwhile (--exit-after-paint)
            return
        self.settings.welcomed = True
        self._save_settings()
        self.show_welcome()

    def plugins_text(self) -> str:
        """Help → Plugins: each plugin's version, where it comes from, its tasks, models
        (and whether their files are there) and its error, if any."""
        from ..core.models import available

        lines = []
        for record in self.registry.records:
            state = "error: " + record.error if record.error else "ok"
            manifest = record.manifest
            if manifest is None:
                lines.append(f"• {record.origin} — {state}")
                continue
            version = manifest.version or (f"built in, {__version__}" if record.root is None
                                           and "entry point" not in record.origin else "—")
            models = ", ".join(m.name + ("" if available(m) else " (files missing)")
                               for m in manifest.models) or "your own"
            lines.append(f"• {manifest.name} ({manifest.modality}), version {version} — "
                         f"{state}\n   from {record.origin}\n   tasks: "
                         f"{', '.join(t.title for t in manifest.tasks)}\n   models: {models}")
        return "\n".join(lines) or "No plugins found."

    def show_plugins(self) -> None:
        QMessageBox.information(self, "Plugins", self.plugins_text())

    def show_log(self) -> None:
        """Help → Show log: the end of the studio's log file, and where it is."""
        from PySide6.QtWidgets import QDialog, QDialogButtonBox

        from ..core import logs

        path = logs.log_file()
        models_log = logs.log_file("models.log")
        dialog = QDialog(self)
        dialog.setWindowTitle("Log")
        dialog.resize(820, 520)
        shown = logs.tail(path)
        if models_log.is_file():  # what the model process logged (engines, crashes)
            shown += f"\n\n--- the model process ({models_log}) ---\n" + logs.tail(models_log)
        text = QPlainTextEdit(shown)
        text.setReadOnly(True)
        text.moveCursor(text.textCursor().MoveOperation.End)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel(f"The studio's log: {path}"))
        layout.addWidget(text)
        layout.addWidget(buttons)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.log_dialog = dialog
        dialog.open()

    def about(self) -> None:
        QMessageBox.about(self, "About Creative Studio",
                          f"Creative Studio {__version__}\nLocal generative models for text, "
                          "images, music and upscaling.")

    # -- Qt events -----------------------------------------------------------------------
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()
            QTimer.singleShot(PRELOAD_DELAY_MS, self._preload)
            QTimer.singleShot(0, self.first_run)

    def _preload(self) -> None:
        """Start the engine (the model process, with the plugins' libraries imported there)
        while the user looks at the window, so the first job starts sooner."""
        if os.environ.get("CREATIVE_STUDIO_NO_PRELOAD") == "1":
            return
        self.runner.warm_up(self.registry.preload_modules())

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt API
        if self.runner.active():
            answer = self.ask("Quit", "Jobs are still running. Cancel them and quit?",
                              QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                              QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        from PySide6.QtWidgets import QDialog

        for dialog in self.findChildren(QDialog):  # what a dialog holds goes in the project
            getattr(dialog, "save", lambda: None)()
        if not self._leave_store():
            event.ignore()
            return
        self._autosave.stop()
        for dialog in self.findChildren(QDialog):  # the welcome page, the manual…: the
            dialog.close()                          # studio quits with its window
        self.runner.shutdown(cancel=True, timeout=5)
        for plugin_id, panel in self.panels.items():
            try:
                panel.close_panel()
            except Exception:
                log.exception("panel %s did not close cleanly", plugin_id)
        QSettings("creative-studio", "window").setValue("geometry", self.saveGeometry())
        self._save_settings()
        event.accept()

