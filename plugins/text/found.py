"""Models on this computer: the GGUFs other apps keep (core/discover.py), listed in a dialog
and in the Text panel's model list; one click uses one. Scanned off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from creative_studio.core import discover
from creative_studio.ui.found import FoundModelsDialog, size_text

COLUMNS = ("Name", "Quantization", "Architecture", "Size", "Found in", "File")


def folders_of(settings) -> list[tuple[str, Path]]:
    """The usual apps' folders and the ones the user added (Preferences keeps them)."""
    return discover.known_folders() + discover.user_folders(settings)


def scan_of(panel):
    """The scan to run off the GUI thread, its folders read now (added a moment ago too)."""
    folders = folders_of(panel.context.settings)
    return lambda: discover.scan(folders)


def found_models_dialog(panel) -> FoundModelsDialog:
    """The GGUF models on this computer: Use puts the chosen one in the panel's list."""
    def values(model) -> tuple:
        return (model.name, model.quantization, model.architecture, size_text(model.size),
                model.app, model.path)

    return FoundModelsDialog(
        panel, columns=COLUMNS, scan=lambda: scan_of(panel), values=values,
        use=lambda model: panel.add_model_ref(model.path, f"GGUF: {model.label}"),
        looking="Looking in LM Studio, Ollama, GPT4All, Jan, text-generation-webui, "
                "~/models and the Hugging Face cache…",
        empty="No GGUF models found. Add a folder of your own, or choose a GGUF file (+ → "
              "GGUF file…).", folder_title="A folder of GGUF models")
