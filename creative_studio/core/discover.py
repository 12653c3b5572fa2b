"""The GGUF models writers already have, found without browsing (no Qt).

Where other apps keep them — LM Studio, Ollama (its manifests name the GGUF blobs), GPT4All,
Jan, text-generation-webui, KoboldCpp's habit of ~/models, the Hugging Face cache — and the
folders the user adds are walked, and each GGUF's **header** is read (name, architecture,
quantization, context length), never the weights: a folder of 200 models lists in well under
2 s. Copies are one entry: the same size and the same first and last 64 KiB (the header,
and the last weights) — wherever they are, Ollama's blobs included.

A scanned folder may hold anything: a truncated or hostile header, a huge or sparse file, a
FIFO, an unreadable folder, a symlink loop. Each is listed as unreadable or skipped — never
an exception, a hang or a file opened for writing (files are opened ``rb``, regular files
only, headers read within fixed bounds; folders are walked once each, by inode).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"GGUF"
MAX_HEADER = 8 << 20  # bytes of header read at most
MAX_KEYS = 100_000
MAX_STRING = 1 << 20
MAX_DEPTH = 8  # folders below a root
MAX_FILES = 20_000  # entries looked at per root
QUICK = 64 << 10  # the quick hash reads the first and last 64 KiB
WANTED = ("general.architecture", "general.name", "general.file_type",
          "general.size_label", "general.basename")


class HeaderError(ValueError):
    """A GGUF header that cannot be read (truncated, hostile, not GGUF)."""


@dataclass
class FoundModel:
    path: str
    size: int
    app: str = ""  # where it was found: "LM Studio", "Ollama", "folder"…
    name: str = ""
    architecture: str = ""
    quantization: str = ""
    context_length: int = 0
    key: str = ""  # identity for de-duplication (the quick hash)
    error: str = ""  # why it could not be read ("" = read)
    copies: list[str] = field(default_factory=list)  # other paths of the same file

    @property
    def label(self) -> str:
        parts = [self.name or Path(self.path).stem]
        parts += [p for p in (self.quantization, self.architecture) if p]
        return " · ".join(parts)


def known_folders(home: Path | None = None) -> list[tuple[str, Path]]:
    """(app, folder) where the usual apps keep GGUF models on this computer."""
    home = Path(home or Path.home())
    data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache")
    hub = Path(os.environ.get("HF_HUB_CACHE") or
               Path(os.environ.get("HF_HOME") or cache / "huggingface") / "hub")
    ollama = Path(os.environ.get("OLLAMA_MODELS") or home / ".ollama" / "models")
    return [
        ("LM Studio", home / ".lmstudio" / "models"),
        ("LM Studio", home / ".cache" / "lm-studio" / "models"),
        ("Ollama", ollama),
        ("Ollama", Path("/usr/share/ollama/.ollama/models")),
        ("GPT4All", data / "nomic.ai" / "GPT4All"),
        ("GPT4All", home / "Library" / "Application Support" / "nomic.ai" / "GPT4All"),
        ("Jan", home / "jan" / "models"),
        ("Jan", data / "Jan" / "data" / "models"),
        ("text-generation-webui", home / "text-generation-webui" / "models"),
        ("KoboldCpp", home / "models"),
        ("Hugging Face cache", hub),
    ]


def user_folders(settings) -> list[tuple[str, Path]]:
    """("folder", path) of the folders the user added (Preferences → Model folders)."""
    extra = getattr(settings, "model_folders", None) or []
    return [("folder", Path(f)) for f in extra if isinstance(f, str) and f]


# -- the header ---------------------------------------------------------------------------
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}


class _Reader:
    def __init__(self, handle, limit: int) -> None:
        self.handle, self.limit, self.pos = handle, limit, 0

    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.limit:
            raise HeaderError("header larger than the studio reads")
        data = self.handle.read(n)
        if len(data) != n:
            raise HeaderError("truncated header")
        self.pos += n
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.limit:
            raise HeaderError("header larger than the studio reads")
        self.handle.seek(n, os.SEEK_CUR)
        self.pos += n

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > MAX_STRING:
            raise HeaderError("a string longer than 1 MiB")
        return self.read(length).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.unpack("<Q")
        if length > MAX_STRING:
            raise HeaderError("a string longer than 1 MiB")
        self.skip(length)

    def value(self, kind: int, keep: bool):
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == 8:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if kind == 9:
            item, count = self.unpack("<I"), self.unpack("<Q")
            if item in _SCALARS:
                self.skip(struct.calcsize(_SCALARS[item]) * count)
            elif item == 8:
                for _ in range(count):
                    self.skip_string()
            else:
                raise HeaderError(f"an array of type {item}")
            return None
        raise HeaderError(f"a value of unknown type {kind}")


def read_header(path: str | os.PathLike) -> dict:
    """The header fields of a GGUF file the studio lists. Raises HeaderError or OSError."""
    with open(path, "rb") as handle:  # read-only, always
        reader = _Reader(handle, MAX_HEADER)
        if reader.read(4) != MAGIC:
            raise HeaderError("not a GGUF file")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise HeaderError(f"GGUF version {version}")
        reader.unpack("<Q")  # tensors
        keys = reader.unpack("<Q")
        if keys > MAX_KEYS:
            raise HeaderError(f"{keys:,} header keys")
        found: dict = {"version": version}
        arch = ""
        for _ in range(keys):
            key = reader.string()
            kind = reader.unpack("<I")
            keep = key in WANTED or (arch and key == f"{arch}.context_length")
            value = reader.value(kind, keep)
            if keep:
                found[key] = value
                if key == "general.architecture":
                    arch = str(value)
            if (key.startswith("tokenizer.") and arch) or (
                    all(k in found for k in WANTED[:3])
                    and (not arch or f"{arch}.context_length" in found)):
                break  # the vocabulary comes next (or all is known): the rest is not needed
        return found


def quantization(file_type) -> str:
    """"Q4_K_M" for LLAMA_FTYPE 15…; "" when unknown."""
    if not isinstance(file_type, int):
        return ""
    try:
        from gguf.constants import LlamaFileType

        name = LlamaFileType(file_type).name
    except (ImportError, ValueError):
        return f"type {file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_")


def quick_key(path: str | os.PathLike, size: int) -> str:
    """Identity of a file's content without reading it all: size, first and last 64 KiB."""
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(QUICK))
        if size > 2 * QUICK:
            handle.seek(size - QUICK)
            digest.update(handle.read(QUICK))
    return "quick:" + digest.hexdigest()


def describe(path: Path, app: str, name: str = "") -> FoundModel:
    """One model file: its header read within bounds, or why it could not be."""
    try:
        info = os.stat(path)  # follows links: the file itself
    except OSError as exc:
        return FoundModel(str(path), 0, app, name=name or path.name,
                          error=f"unreadable: {exc.strerror or exc}")
    model = FoundModel(str(path), info.st_size, app, name=name)
    if not stat.S_ISREG(info.st_mode):
        model.error = "not a regular file"
        return model
    try:
        header = read_header(path)
        model.key = quick_key(path, info.st_size)
    except (HeaderError, OSError, struct.error, UnicodeError) as exc:
        model.error = f"unreadable: {getattr(exc, 'strerror', None) or exc}"
        model.name = model.name or path.name
        return model
    arch = str(header.get("general.architecture", "") or "")
    model.architecture = arch[:40]
    model.name = (name or str(header.get("general.name") or "")
                  or str(header.get("general.basename") or "") or path.stem)[:120]
    model.quantization = quantization(header.get("general.file_type"))
    context = header.get(f"{arch}.context_length")
    model.context_length = context if isinstance(context, int) and context > 0 else 0
    return model


# -- walking ------------------------------------------------------------------------------
def walk(root: Path, depth: int = MAX_DEPTH, suffix: str = ".gguf",
          follow: bool = True) -> Iterator[Path]:
    """Files below ``root`` whose names end with ``suffix`` ("" = all): each folder once (by
    inode, so a symlink loop ends), unreadable ones skipped, hidden folders left out, at most
    MAX_FILES entries and ``depth`` levels; ``follow``: into linked folders too."""
    seen: set[tuple[int, int]] = set()
    stack = [(root, 0)]
    looked = 0
    while stack:
        folder, level = stack.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen or not stat.S_ISDIR(info.st_mode):
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            looked += 1
            if looked > MAX_FILES:
                return
            try:
                if entry.is_dir(follow_symlinks=follow):
                    if level < depth and not entry.name.startswith("."):
                        stack.append((Path(entry.path), level + 1))
                elif entry.name.lower().endswith(suffix) and (
                        follow or entry.is_file(follow_symlinks=False)):
                    yield Path(entry.path)
            except OSError:
                continue


def _ollama(root: Path) -> Iterator[tuple[Path, str]]:
    """(blob, name:tag) of the models an Ollama folder's manifests name."""
    manifests = root / "manifests"
    for manifest in walk(manifests, depth=6, suffix="", follow=False):
        try:
            if os.stat(manifest).st_size > 1 << 20:
                continue
            data = json.loads(Path(manifest).read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeError):
            continue
        layers = data.get("layers") if isinstance(data, dict) else None
        for layer in layers if isinstance(layers, list) else []:
            if not isinstance(layer, dict) or \
                    layer.get("mediaType") != "application/vnd.ollama.image.model":
                continue
            digest = str(layer.get("digest", ""))
            if not digest.startswith("sha256:") or len(digest) != 71 or \
                    not all(c in "0123456789abcdef" for c in digest[7:]):
                continue
            relative = Path(manifest).relative_to(manifests).parts
            name = ":".join(relative[-2:]) if len(relative) >= 2 else Path(manifest).name
            yield root / "blobs" / digest.replace(":", "-"), name


class Merged:
    """Found model files, copies merged by their quick key (the first found is the entry,
    later ones its ``copies``), unreadable ones kept apart."""

    def __init__(self) -> None:
        self.found: dict[str, object] = {}
        self.unreadable: list = []

    def add(self, model) -> None:
        if model.error:
            self.unreadable.append(model)
        elif model.key in self.found:
            self.found[model.key].copies.append(model.path)
        else:
            self.found[model.key] = model

    def listing(self, order) -> list:
        """The readable ones in ``order``, then the unreadable ones by path."""
        return sorted(self.found.values(), key=order) + \
            sorted(self.unreadable, key=lambda m: m.path)


def scan(folders: Iterable[tuple[str, Path]] | None = None, *,
         home: Path | None = None) -> list[FoundModel]:
    """Every GGUF model in ``folders`` ((app, folder); the usual apps' folders by default),
    copies merged, unreadable ones listed with why, sorted by name."""
    merged = Merged()
    add = merged.add
    seen_paths: set[str] = set()
    for app, root in (known_folders(home) if folders is None else folders):
        root = Path(root)
        if app == "Ollama" or (root / "manifests").is_dir() and (root / "blobs").is_dir():
            for blob, name in _ollama(root):
                if str(blob) not in seen_paths:
                    seen_paths.add(str(blob))
                    add(describe(blob, app, name=name))
        for path in walk(root):
            real = os.path.realpath(path)
            if real in seen_paths:
                continue
            seen_paths.add(real)
            add(describe(path, app))
    return merged.listing(lambda m: (m.name.lower(), m.path))
