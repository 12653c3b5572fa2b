"""Preferences → Servers, and choosing a model on a server (Qt).

Server calls (test connection, model lists) run on a plain thread and report back through a
queued signal: a slow or dead server never freezes the window.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core import secrets
from ..core.errors import StudioError, describe
from ..core.servers import ANY, KINDS, ServerConfig, of_kinds, servers_of
from ..engines import catalog
from .widgets import dialog_layout


class Background(QObject):
    """Runs ``work()`` on a thread; ``done(result, error_message)`` on the GUI thread."""

    done = Signal(object, str)

    def run(self, work: Callable[[], Any]) -> None:
        def target() -> None:
            try:
                result = work()
            except (StudioError, OSError) as exc:
                self.done.emit(None, describe(exc))
            except Exception as exc:  # a bug: shown plainly, details in the log
                import logging

                logging.getLogger(__name__).exception("server call failed")
                self.done.emit(None, describe(exc))
            else:
                self.done.emit(result, "")

        threading.Thread(target=target, name="studio-server-call", daemon=True).start()


class ServersPage(QWidget):
    """The user's servers: name, address, kind, API key (OS keyring), Test connection."""

    def __init__(self, settings: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._servers = {s.name: s for s in servers_of(settings)}
        self.list = QListWidget()
        self.list.currentTextChanged.connect(self._chosen)
        self.name = QLineEdit()
        self.name.setPlaceholderText("e.g. gpu-box")
        self.url = QLineEdit()
        self.url.setPlaceholderText("http://192.168.1.20:8000 (vLLM, llama.cpp, Ollama, "
                                    "LM Studio…) or http://gpu-box:8188 (ComfyUI)")
        self.kind = QComboBox()
        for kind, label in KINDS.items():
            self.kind.addItem(label, kind)
        self.key = QLineEdit()
        self.key.setEchoMode(QLineEdit.EchoMode.Password)
        self.key.setPlaceholderText("optional; kept in the OS keyring, never in a file")
        self.save_button = QPushButton("Save server")
        self.remove_button = QPushButton("Remove")
        self.test_button = QPushButton("Test connection")
        self.save_button.clicked.connect(self.save_server)
        self.remove_button.clicked.connect(self.remove_server)
        self.test_button.clicked.connect(self.test_connection)
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._background = Background(self)
        self._background.done.connect(self._tested)
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Address", self.url)
        form.addRow("Kind", self.kind)
        form.addRow("API key", self.key)
        buttons = QHBoxLayout()
        for button in (self.save_button, self.remove_button, self.test_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Servers run the models elsewhere; the project, History and "
                                "recipes stay here."))
        layout.addWidget(self.list)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.result)
        self._refresh()

    def servers(self) -> list[dict]:
        return [s.to_dict() for s in self._servers.values()]

    def _refresh(self) -> None:
        self.list.clear()
        self.list.addItems(sorted(self._servers))

    def _chosen(self, name: str) -> None:
        server = self._servers.get(name)
        if server is None:
            return
        self.name.setText(server.name)
        self.url.setText(server.url)
        self.kind.setCurrentIndex(max(0, self.kind.findData(server.kind)))
        self.key.clear()
        self.key.setPlaceholderText("a key is stored (type to replace it)" if server.api_key()
                                    else "optional; kept in the OS keyring, never in a file")

    def _typed(self) -> ServerConfig:
        return ServerConfig.checked(self.name.text(), self.url.text(), self.kind.currentData())

    def save_server(self) -> bool:
        try:
            server = self._typed()
        except StudioError as exc:
            self.result.setText(str(exc))
            return False
        self._servers[server.name] = server
        said = f"Saved {server.name}."
        if self.key.text():
            try:
                secrets.put(server.secret_name, self.key.text())
                said += " Its key is in the OS keyring."
            except secrets.NoKeyring as exc:
                said += f" {exc}"
            self.key.clear()
        self.result.setText(said)
        self._refresh()
        return True

    def remove_server(self) -> None:
        name = self.name.text().strip()
        if self._servers.pop(name, None) is not None:
            try:
                secrets.put(f"server:{name}", "")
            except secrets.NoKeyring:
                pass
            self.result.setText(f"Removed {name}.")
            self._refresh()

    def test_connection(self) -> None:
        try:
            server = self._typed()
        except StudioError as exc:
            self.result.setText(str(exc))
            return
        self.result.setText(f"Testing {server.url}…")
        self.test_button.setEnabled(False)
        key = self.key.text() or None
        self._background.run(lambda: catalog.describe(server, key))

    def _tested(self, result: Any, error: str) -> None:
        self.test_button.setEnabled(True)
        self.result.setText(f"✗ {error}" if error else f"✓ {result}")


class ServerModelDialog(QDialog):
    """Choose a model on one of the user's servers of ``kinds``; ``ref`` is
    ``server:<name>/<model>``, or ``server:*/<model>`` for "any of them that has it" (a
    batch is spread over those servers)."""

    def __init__(self, settings: Any, parent: QWidget | None = None,
                 kinds: tuple[str, ...] = (), modality: str = "") -> None:
        super().__init__(parent)
        self.setWindowTitle("Model on a server")
        self.ref = ""
        self.modality = modality  # what the plugin makes: which of a server's models fit
        self.servers = of_kinds(settings, kinds)
        self.server = QComboBox()
        for server in self.servers:
            self.server.addItem(f"{server.name} ({server.url})", server.name)
        if len(self.servers) > 1:
            self.server.addItem(f"Any of these {len(self.servers)} servers (a batch is spread "
                                "over those that have the model)", ANY)
        self.models = QListWidget()
        self.models.itemDoubleClicked.connect(lambda *_: self.accept())
        self.status = QLabel("" if self.servers else
                             "No servers yet: add one in Edit → Preferences → Servers.")
        self.status.setWordWrap(True)
        self._background = Background(self)
        self._background.done.connect(self._listed)
        self.server.currentIndexChanged.connect(self.refresh)
        dialog_layout(self, self.server, self.models, self.status)
        self.refresh()

    def refresh(self) -> None:
        self.models.clear()
        chosen = self.server.currentData()
        servers = self.servers if chosen == ANY else \
            [s for s in self.servers if s.name == chosen]
        if not servers:
            return
        self.status.setText(f"Asking {', '.join(s.url for s in servers)} for their models…")

        def ask() -> tuple[str, list[str], list[str]]:
            found: dict[str, None] = {}
            failed = []
            for server in servers:
                try:
                    found.update(dict.fromkeys(catalog.models(server,
                                                              modality=self.modality)))
                except StudioError as exc:
                    if len(servers) == 1:
                        raise
                    failed.append(f"{server.name}: {exc}")
            return chosen, list(found), failed

        self._background.run(ask)

    def _listed(self, result: Any, error: str) -> None:
        if error:
            self.status.setText(f"✗ {error}")
            return
        name, models, failed = result
        if name != self.server.currentData():
            return  # an answer for a server no longer chosen
        self.models.addItems(models)
        where = "on these servers" if name == ANY else f"on {name}"
        said = f"{len(models)} model(s) {where}."
        if failed:
            said += " Not answering: " + "; ".join(failed)
        self.status.setText(said)

    def accept(self) -> None:
        item = self.models.currentItem()
        if item is not None:
            self.ref = f"server:{self.server.currentData()}/{item.text()}"
        super().accept()
