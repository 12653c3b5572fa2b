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


def import_bytes(store: ProjectStore, plugin: str, name: str, data: bytes, kind: str,
                 mime: str, metadata: dict) -> str:
    """Keep a user's file in the project as an ``import`` item (lineage, re-runs)."""
    return store.add_item(
        Request(plugin, "import", params={"filename": name}),
        Result([Asset(kind, mime, data, name)], ModelIdentity("file", name), "none",
               metadata=metadata, title=name))


def import_image(store: ProjectStore, plugin: str, path: Path):
    """Keep the picture file in the project; returns (item id, image).

    Raises BadInput for what is not a readable picture, OSError when the file cannot be read.
    """
    data = path.read_bytes()
    image = decode_image(data, path.name)
    item_id = import_bytes(store, plugin, path.name, data, "image",
                           IMAGE_MIME.get(path.suffix.lower(), "image/png"),
                           {"width": image.width, "height": image.height})
    return item_id, image


def import_midi(store: ProjectStore, plugin: str, path: Path):
    """Keep a MIDI file in the project; returns (item id, MidiContent). BadInput for files
    that are not usable MIDI (midi.read_notes says why)."""
    from .midi import check_size, read_notes

    check_size(path.stat().st_size, path.name)  # a huge file is not read into memory at all
    data = path.read_bytes()
    content = read_notes(data, path.name)
    meter = content.time_signature
    item_id = import_bytes(store, plugin, path.name, data, "midi", "audio/midi",
                           {"notes": len(content.notes), "tempo": content.tempo,
                            "time_signature": f"{meter[0]}/{meter[1]}"})
    return item_id, content
