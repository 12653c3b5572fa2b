"""Bringing users' files into a project as ``import`` items (no Qt), shared by GUI and CLI."""

from __future__ import annotations

from pathlib import Path

from ..core.errors import BadInput
from ..core.jobs import Asset, ModelIdentity, Request, Result
from ..core.project import ProjectStore
from .images import decode_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
IMAGE_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff",
              ".bmp": "image/bmp"}
MAX_BATCH = 500


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


MIDI_SUFFIXES = (".mid", ".midi")


def import_video(store: ProjectStore, plugin: str, path: Path):
    """Keep a video file in the project with a poster of its first picture; returns (item
    id, VideoInfo). BadInput for what is not a readable video or is too large to keep."""
    from ..core.project import MAX_ASSET_BYTES
    from .video import VIDEO_MIME, first_frame, poster, probe

    size = path.stat().st_size
    if size > MAX_ASSET_BYTES:
        raise BadInput(f"{path.name} is {size / 2**30:.1f} GB: a project keeps files up to "
                       f"{MAX_ASSET_BYTES // 2**30} GB. Cut the video into parts.")
    data = path.read_bytes()
    info = probe(data, path.name)
    still = poster(first_frame(data, path.name))
    item_id = store.add_item(
        Request(plugin, "import", params={"filename": path.name}),
        Result([Asset("video", VIDEO_MIME.get(path.suffix.lower(), "video/mp4"), data,
                      path.name), Asset("image", "image/png", still, "poster.png")],
               ModelIdentity("file", path.name), "none", metadata=info.figures(),
               title=path.name))
    return item_id, info


def mime_of(path: Path) -> str:
    """The MIME type a file's name says it has (pictures, MIDI and videos by the studio's own
    lists)."""
    from .video import VIDEO_MIME

    suffix = path.suffix.lower()
    if suffix in IMAGE_MIME:
        return IMAGE_MIME[suffix]
    if suffix in VIDEO_MIME:
        return VIDEO_MIME[suffix]
    if suffix in MIDI_SUFFIXES:
        return "audio/midi"
    import mimetypes

    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def input_files(paths: list[Path], accept: str | tuple[str, ...]) -> list[Path]:
    """The files among ``paths`` whose type starts with ``accept`` (one prefix or several);
    folders give theirs (not recursive, sorted). Files named directly are kept whatever their name (a wrong one is
    reported when it is read)."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir()
                            if p.is_file() and mime_of(p).startswith(accept))
        else:
            found.append(path)
    return found[:MAX_BATCH]


def import_file(store: ProjectStore, plugin: str, path: Path, accept: str) -> str:
    """Keep a user's file in the project as an input of type ``accept`` (a MIME prefix);
    returns the item id. Pictures and MIDI are checked by their readers (BadInput says what
    is wrong); other types are kept as they are."""
    if accept.startswith("image"):
        return import_image(store, plugin, path)[0]
    if accept.startswith("audio/midi"):
        return import_midi(store, plugin, path)[0]
    if accept.startswith("video"):
        return import_video(store, plugin, path)[0]
    data = path.read_bytes()
    kind = accept.split("/")[0] or "file"
    return import_bytes(store, plugin, path.name, data, kind, mime_of(path), {})
