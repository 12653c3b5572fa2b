"""Write a project item's output to a file, with its recipe beside or inside it."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..core import files
from ..core.errors import StudioError
from ..core.project import Item, ProjectStore
from .images import FORMATS, convert_image

_EXT = {"text/plain": ".txt", "image/png": ".png", "audio/midi": ".mid", "audio/wav": ".wav",
        "video/mp4": ".mp4", "video/x-matroska": ".mkv", "video/quicktime": ".mov",
        "video/webm": ".webm"}


def suggested_name(item: Item) -> str:
    """A file name for an item's output: the generator's ``file_stem`` (metadata) when it
    gave one (``photo_x4``), else from the title or prompt; never a path."""
    stem = item.metadata.get("file_stem")
    text = stem if isinstance(stem, str) and stem.strip() else \
        (item.title or item.request.prompt or item.kind)
    base = re.sub(r"[^\w\- ]+", "", text)[:40].strip()
    mime = item.assets[0].mime.split(";")[0] if item.assets else "text/plain"
    # an id is read from the project like any field: a crafted one ("../../x", "/etc/x")
    # must not name a path either
    fallback = files.safe_name(item.id, "item", limit=8)
    return (base.replace(" ", "_") or fallback) + _EXT.get(mime, ".bin")


def export_item(store: ProjectStore, item: Item, target: Path, quality: int = 92, *,
                damaged_ok: bool = False, scale: int = 1) -> list[Path]:
    """Export the item's first asset to ``target``.

    Images are written in the format the suffix names (PNG, JPEG/WebP with ``quality``, TIFF)
    with the recipe inside; MIDI as .mid (recipe in a text meta event) or rendered to .wav;
    text and audio get a ``.recipe.json`` beside them. Files are written atomically (an
    existing file is replaced whole or not at all). A damaged output (its bytes no longer
    match its checksum) raises DamagedAsset unless ``damaged_ok``.
    """
    if not item.assets:
        raise StudioError("This item has no output to export.")
    asset = item.assets[0]
    data = store.asset_bytes(asset.id, verify=not damaged_ok)
    recipe = item.recipe()
    inside = json.dumps(recipe, ensure_ascii=True)  # the form carried inside files
    suffix = target.suffix.lower()
    if asset.mime.startswith("video/") and suffix != _EXT.get(asset.mime, suffix) and \
            not (asset.mime == "video/mp4" and suffix in (".m4v", ".mov")):
        raise StudioError(f"This is a video: export it as {_EXT.get(asset.mime, '.mp4')}.")
    if asset.mime.startswith("image/") and suffix in FORMATS:
        data = convert_image(data, target.suffix, inside, quality, scale)
    elif asset.mime == "audio/midi" and suffix in (".mid", ".midi"):
        from .midi import with_recipe

        data = with_recipe(data, inside)
    elif asset.mime == "audio/midi" and suffix == ".wav":
        from .midi import render_wav

        data, _engine = render_wav(data)
    files.atomic_write(target, data)
    written = [target]
    if asset.mime.startswith(("text/", "video/")) or suffix == ".wav":
        sidecar = target.with_name(target.stem + ".recipe.json")
        files.atomic_write(sidecar, json.dumps(recipe, indent=2))
        written.append(sidecar)
    return written
