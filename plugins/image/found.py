"""The image models artists already have (no Qt): checkpoints and LoRAs in the folders of
A1111, Forge, ComfyUI, InvokeAI and Fooocus, and the folders the user adds (Preferences →
``model_folders``). Each ``.safetensors`` is told apart by its **header** only (names and
shapes, plugins/image/checkpoints.py), never its weights: SD 1.x / 2.x / SDXL checkpoints,
LoRAs with the family they were made for and their trigger words, the rest skipped. Copies
(the same size, first and last 64 KiB) are one entry. The SHA-256 is shown when it is known
(the studio's hash cache, or the file's own ``modelspec.hash_sha256``); a 2–7 GB checkpoint
is hashed when it is first used, not while listing. Walking is core/discover.py's: bounded,
each folder once, links and loops and unreadable files handled."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from creative_studio.core import discover
from creative_studio.core.errors import ModelError

from . import checkpoints
from .loras import base_name, is_lora, made_for, trigger_words

# (app, folder below home): where the usual apps keep Stable Diffusion models
APP_FOLDERS = (
    ("A1111", "stable-diffusion-webui/models/Stable-diffusion"),
    ("A1111", "stable-diffusion-webui/models/Lora"),
    ("Forge", "stable-diffusion-webui-forge/models/Stable-diffusion"),
    ("Forge", "stable-diffusion-webui-forge/models/Lora"),
    ("ComfyUI", "ComfyUI/models/checkpoints"),
    ("ComfyUI", "ComfyUI/models/loras"),
    ("InvokeAI", "invokeai/models"),
    ("Fooocus", "Fooocus/models/checkpoints"),
    ("Fooocus", "Fooocus/models/loras"),
)


@dataclass
class FoundImageModel:
    path: str
    size: int
    app: str = ""
    kind: str = ""  # checkpoint | lora
    family: str = ""  # "SDXL", "Stable Diffusion 1.x"…, or a LoRA's base
    sha256: str = ""  # when already known
    triggers: tuple[str, ...] = ()
    key: str = ""
    error: str = ""
    copies: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return Path(self.path).stem


def known_folders(home: Path | None = None) -> list[tuple[str, Path]]:
    home = Path(home or Path.home())
    return [(app, home / folder) for app, folder in APP_FOLDERS]


def _known_sha256(path: Path, info: dict[str, str]) -> str:
    from creative_studio.core.provenance import known_sha256

    declared = info.get("modelspec.hash_sha256", "").removeprefix("0x").lower()
    if len(declared) == 64 and all(c in "0123456789abcdef" for c in declared):
        return declared
    return known_sha256(path)


def describe(path: Path, app: str) -> FoundImageModel | None:
    """A file's entry, or None when it is neither a checkpoint nor a LoRA (a VAE, an
    upscaler, an embedding…)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        return FoundImageModel(str(path), 0, app, error=f"unreadable: {exc.strerror or exc}")
    model = FoundImageModel(str(path), info.st_size, app)
    if not stat.S_ISREG(info.st_mode):
        return None
    try:
        shapes, meta = checkpoints.read_header(path)
        model.key = discover.quick_key(path, info.st_size)
    except (ModelError, OSError) as exc:
        model.error = str(exc).removeprefix(f"{path.name} ")
        return model
    try:
        model.family = checkpoints.FAMILIES[checkpoints.family_of(shapes, path.name)]
        model.kind = "checkpoint"
    except ModelError:
        if not is_lora(shapes):
            return None
        width, xl_text = made_for(shapes)
        model.kind = "lora"
        model.family = base_name(width, xl_text, f"{width}-wide text" if width else "")
    model.triggers = trigger_words(meta) if model.kind == "lora" else ()
    model.sha256 = _known_sha256(path, meta)
    return model


def scan(folders: list[tuple[str, Path]] | None = None, *, home: Path | None = None
         ) -> list[FoundImageModel]:
    """Checkpoints, then LoRAs, by name; copies merged; unreadable files listed with why."""
    merged = discover.Merged()
    seen: set[str] = set()
    for app, root in (known_folders(home) if folders is None else folders):
        for path in discover.walk(Path(root), suffix=".safetensors"):
            real = os.path.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            model = describe(path, app)
            if model is not None:
                merged.add(model)
    return merged.listing(lambda m: (m.kind != "checkpoint", m.name.lower()))


def folders_of(settings) -> list[tuple[str, Path]]:
    """The usual apps' folders and the ones the user added (Preferences keeps them)."""
    return known_folders() + discover.user_folders(settings)


def scan_of(panel):
    """The scan to run off the GUI thread, its folders read now (added a moment ago too)."""
    folders = folders_of(panel.context.settings)
    return lambda: scan(folders)
