"""Preferences: device, theme, model downloads (General) and the servers (Servers)."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import devices
from ..core.settings import Settings
from .servers import ServersPage
from .theme import THEMES
from .widgets import dialog_layout


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        self.settings = settings
        self.device = QComboBox()
        for choice in devices.CHOICES:
            label = {"auto": "Automatic (GPU when present)", "cpu": "CPU", "cuda": "CUDA GPU",
                     "mps": "Apple GPU (MPS)"}[choice]
            self.device.addItem(label, choice)
        self.device.setCurrentIndex(max(0, self.device.findData(settings.device)))
        self.theme = QComboBox()
        for name in THEMES:
            self.theme.addItem(name.capitalize(), name)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.theme)))
        self.downloads = QCheckBox("Allow model downloads from the Hugging Face Hub")
        self.downloads.setChecked(settings.allow_downloads)
        note = QLabel("Embedded models always work offline. Downloads only matter for "
                      "Hugging Face ids you type in a panel.")
        note.setWordWrap(True)
        self.threads = QSpinBox()
        self.threads.setRange(0, max(64, os.cpu_count() or 1))
        self.threads.setSpecialValueText("Automatic")
        self.threads.setValue(max(0, settings.cpu_threads))
        self.threads.setToolTip("Threads of every local model (text, image, music, upscale). "
                                "Automatic: before each job, the physical cores that other "
                                "programs leave free at that moment. Takes effect at the "
                                "next job.")
        self.model_process = QCheckBox("Run models in a separate process (a crash in a "
                                       "model never closes the window)")
        self.model_process.setChecked(settings.model_process)
        self.model_process.setToolTip("Takes effect the next time the studio starts.")
        self.scan_models = QCheckBox("At start, list the models other apps keep (GGUFs of LM "
                                     "Studio, Ollama, GPT4All, Jan…; checkpoints of A1111, "
                                     "Forge, ComfyUI, InvokeAI…) in the panels")
        self.scan_models.setChecked(settings.scan_models)
        self.scan_models.setToolTip("Only their headers are read; nothing is written. + → "
                                    "Models on this computer… in the Text and Image panels "
                                    "lists them any time.")
        self.model_folders = QListWidget()
        self.model_folders.addItems([f for f in settings.model_folders if isinstance(f, str)])
        self.model_folders.setToolTip("Your own folders of models (GGUFs, checkpoints, "
                                      "LoRAs), scanned with the other apps' folders")
        self.model_folders.setMaximumHeight(90)
        add_folder, remove_folder = QPushButton("Add…"), QPushButton("Remove")
        add_folder.clicked.connect(self._add_model_folder)
        remove_folder.clicked.connect(
            lambda: self.model_folders.takeItem(self.model_folders.currentRow()))
        folders_row = QHBoxLayout()
        folders_row.addWidget(self.model_folders, 1)
        folder_buttons = QVBoxLayout()
        folder_buttons.addWidget(add_folder)
        folder_buttons.addWidget(remove_folder)
        folder_buttons.addStretch(1)
        folders_row.addLayout(folder_buttons)
        self.default_folder = QLineEdit(settings.default_folder)
        self.default_folder.setPlaceholderText("the folder the studio was started in")
        self.default_folder.setToolTip("Where Open, Save and Export dialogs start until each "
                                       "has a folder of its own")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.default_folder, 1)
        folder_row.addWidget(choose)
        general = QWidget()
        form = QFormLayout(general)
        form.addRow("Run models on", self.device)
        form.addRow("Default folder", folder_row)
        form.addRow("CPU threads", self.threads)
        form.addRow(self.model_process)
        form.addRow("Theme", self.theme)
        form.addRow(self.downloads)
        form.addRow(self.scan_models)
        form.addRow("Model folders", folders_row)
        form.addRow(note)
        self.servers = ServersPage(settings)
        self.tabs = QTabWidget()
        self.tabs.addTab(general, "General")
        self.tabs.addTab(self.servers, "Servers")
        dialog_layout(self, self.tabs)

    def _choose_folder(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "Default folder",
                                                  self.default_folder.text())
        if folder:
            self.default_folder.setText(folder)

    def _add_model_folder(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "A folder of models")
        if folder and not self.model_folders.findItems(folder, Qt.MatchFlag.MatchExactly):
            self.model_folders.addItem(folder)

    def apply(self) -> None:
        self.settings.device = self.device.currentData()
        self.settings.theme = self.theme.currentData()
        self.settings.allow_downloads = self.downloads.isChecked()
        self.settings.cpu_threads = self.threads.value()
        self.settings.default_folder = self.default_folder.text().strip()
        self.settings.model_process = self.model_process.isChecked()
        self.settings.scan_models = self.scan_models.isChecked()
        self.settings.model_folders = [self.model_folders.item(i).text()
                                       for i in range(self.model_folders.count())]
        self.settings.servers = self.servers.servers()
