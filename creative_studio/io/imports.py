"""Bringing users' files into a project as ``import`` items (no Qt), shared by GUI and CLI."""

from __future__ import annotations

from pathlib import Path

from ..core.jobs import Asset, ModelIdentity, Request, Result
from ..core.project import ProjectStore
from .images import decode_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff",
              ".bmp": "image/bmp"}
MAX_BATCH = 500


def image_files(paths: list[Path]) -> list[Path]:
    """The pictures among ``paths``; folders give their pictures (not recursive), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            found.append(path)  # a missing file is reported by import_image
    return found[:MAX_BATCH]


def import_image(store: ProjectStore, plugin: str, path: Path):
    """Keep the picture file in the project (lineage, re-runs); returns (item id, image).

    Raises BadInput for what is not a readable picture, OSError when the file cannot be read.
    """
    data = path.read_bytes()
    image = decode_image(data, path.name)
    item_id = store.add_item(
        Request(plugin, "import", params={"filename": path.name}),
        Result([Asset("image", IMAGE_MIME.get(path.suffix.lower(), "image/png"), data,
                      path.name)], ModelIdentity("file", path.name), "none",
               metadata={"width": image.width, "height": image.height}, title=path.name))
    return item_id, image
