"""Models on this computer: the GGUFs other apps keep (core/discover.py), listed in a dialog
and in the Text panel's model list; one click uses one. Scanned off the GUI thread."""

from __future__ import annotations

from pathlib import Path

from creative_studio.core import discover
from creative_studio.ui.found import FoundModelsDialog, size_text

COLUMNS = ("Name", "Quantization", "Architecture", "Size", "Found in", "File")


def folders_of(settings) -> list[tuple[str, Path]]:
    """The usual apps' folders and the ones the user added (Preferences keeps them)."""
    extra = getattr(settings, "model_folders", None) or []
    return discover.known_folders() + [("folder", Path(f)) for f in extra
                                       if isinstance(f, str) and f]


def found_models_dialog(panel) -> FoundModelsDialog:
    """The GGUF models on this computer: Use puts the chosen one in the panel's list."""
    def scan():
        folders = folders_of(panel.context.settings)  # the folders added a moment ago too
        return lambda: discover.scan(folders)

    def values(model) -> tuple:
        return (model.name, model.quantization, model.architecture, size_text(model.size),
                model.app, model.path)

    return FoundModelsDialog(
        panel, columns=COLUMNS, scan=scan, values=values,
        use=lambda model: panel.add_model_ref(model.path, f"GGUF: {model.label}"),
        looking="Looking in LM Studio, Ollama, GPT4All, Jan, text-generation-webui, "
                "~/models and the Hugging Face cache…",
        empty="No GGUF models found. Add a folder of your own, or choose a GGUF file (+ → "
              "GGUF file…).", folder_title="A folder of GGUF models")
