"""Job events on the GUI thread, and the job queue view."""

from __future__ import annotations

import threading
import time
from collections import deque

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QProgressBar,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.jobs import JobEvent, JobEventKind, JobState
from ..workers.runner import JobRunner


class JobEvents(QObject):
    """Carries the runner's worker-thread events to the GUI thread.

    Workers append to a locked queue and wake the GUI thread with an argument-less signal,
    once per batch; the GUI thread drains the queue and emits ``event`` locally. Consecutive
    progress events of one job are coalesced (the latest preview holds everything), so a
    generator reporting thousands of steps cannot flood the event loop.
    """

    event = Signal(object)  # a core.jobs.JobEvent; emitted on the GUI thread only
    _wake = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[JobEvent] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self._wake.connect(self._drain, Qt.ConnectionType.QueuedConnection)

    def __call__(self, event: JobEvent) -> None:
        progress = JobEventKind.PROGRESS
        with self._lock:
            last = self._queue[-1] if self._queue else None
            if event.kind is progress and last and last.kind is progress \
                    and last.job is event.job:
                self._queue[-1] = event
            else:
                self._queue.append(event)
            wake = not self._scheduled
            self._scheduled = True
        if wake:
            self._wake.emit()

    def _drain(self) -> None:
        with self._lock:
            items = list(self._queue)
            self._queue.clear()
            self._scheduled = False
        for event in items:
            self.event.emit(event)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "estimating…"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class JobsView(QWidget):
    """The shared queue: every panel's jobs with state, progress, ETA, cancel/remove/clear."""

    def __init__(self, runner: JobRunner, events: JobEvents, parent: QWidget | None = None):
        super().__init__(parent)
        self.runner = runner
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Job", "State", "Progress", "ETA", "Elapsed", "Device"])
        self.tree.setRootIsDecorated(False)
        self.tree.setColumnWidth(0, 220)
        self.tree.setColumnWidth(2, 120)
        self._rows: dict[int, tuple[QTreeWidgetItem, QProgressBar]] = {}
        self.cancel_button = QPushButton("Cancel")
        self.remove_button = QPushButton("Remove")
        self.clear_button = QPushButton("Clear queue")
        self.cancel_button.setToolTip("Stop the selected job")
        self.remove_button.setToolTip("Remove the selected queued or finished job")
        self.clear_button.setToolTip("Drop all queued jobs and forget finished ones")
        self.cancel_button.clicked.connect(self._cancel)
        self.remove_button.clicked.connect(self._remove)
        self.clear_button.clicked.connect(runner.clear)
        buttons = QHBoxLayout()
        for button in (self.cancel_button, self.remove_button, self.clear_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tree)
        layout.addLayout(buttons)
        events.event.connect(self.on_event)

    def _selected(self) -> int | None:
        item = self.tree.currentItem()
        return None if item is None else item.data(0, Qt.ItemDataRole.UserRole)

    def _cancel(self) -> None:
        job_id = self._selected()
        if job_id is not None:
            self.runner.cancel(job_id)

    def _remove(self) -> None:
        job_id = self._selected()
        if job_id is not None:
            self.runner.remove(job_id)

    def row(self, job_id: int) -> QTreeWidgetItem | None:
        entry = self._rows.get(job_id)
        return entry[0] if entry else None

    def on_event(self, event: JobEvent) -> None:
        job = event.job
        if event.kind is JobEventKind.REMOVED:
            entry = self._rows.pop(job.id, None)
            if entry:
                index = self.tree.indexOfTopLevelItem(entry[0])
                self.tree.takeTopLevelItem(index)
            return
        if job.id not in self._rows:
            item = QTreeWidgetItem([f"{job.request.plugin}: {job.label}", "", "", "", "",
                                    job.device])
            item.setData(0, Qt.ItemDataRole.UserRole, job.id)
            item.setToolTip(0, job.label)
            self.tree.addTopLevelItem(item)
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            self.tree.setItemWidget(item, 2, bar)
            self._rows[job.id] = (item, bar)
            self.tree.scrollToItem(item)  # a new job is always in view
        item, bar = self._rows[job.id]
        item.setText(1, job.state.value)
        item.setText(5, job.device)  # a server:* job shows the server that took it
        if job.state is not JobState.QUEUED:
            item.setText(4, format_eta(time.monotonic() - job.progress.started))
        if event.kind is JobEventKind.PROGRESS:
            fraction, eta = event.fraction, event.eta
            bar.setValue(int(fraction * 1000))
            bar.setFormat(f"{fraction * 100:.0f}%")
            message = job.progress.message
            item.setText(1, f"running: {message}" if message else job.state.value)
            item.setText(3, format_eta(eta))
        elif event.kind is JobEventKind.STARTED:
            item.setText(3, "loading…")
        elif job.state.finished:
            item.setText(3, "")
            if job.state is JobState.DONE:
                stopped = bool(job.result and job.result.metadata.get("stopped"))
                bar.setValue(1000)
                bar.setFormat("stopped" if stopped else "done")
                if stopped:  # Stop kept what was written: it ended, but not by itself
                    item.setText(1, "stopped")
            if job.error:
                item.setText(1, f"{job.state.value}: {job.error}")
                item.setToolTip(1, job.error)
                item.setForeground(1, Qt.GlobalColor.red)
