"""Model identity (SHA-256 of weights) and library versions, recorded with every item."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import threading
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from . import files, paths

_lock = threading.Lock()
_LIBRARIES = ("torch", "transformers", "diffusers", "accelerate", "gguf", "safetensors",
              "numpy", "PySide6-Essentials", "spandrel", "miditok", "creative-studio")


@lru_cache(maxsize=1)
def _library_versions() -> tuple[tuple[str, str], ...]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def weights_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a weights file, or of a folder's weight files (sorted names + bytes).

    Hashes are remembered by (path, size, mtime) so a 100 MB model is read once.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*")
                       if p.is_file() and p.suffix in {".safetensors", ".bin", ".gguf", ".pth", ".pt"})
    else:
        files = [path]
    if not files:
        return ""
    if len(files) == 1:
        return _cached_file_hash(files[0])
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(_cached_file_hash(file).encode())
    return digest.hexdigest()


def _hash_key(file: Path) -> str:
    stat = file.stat()
    return f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def known_sha256(file: str | os.PathLike) -> str:
    """A file's SHA-256 when it was computed before (and the file has not changed since);
    "" otherwise — nothing is read but the cache (a listing of large models)."""
    try:
        key = _hash_key(Path(file))
        index = json.loads((paths.cache_dir() / "hashes.json").read_text())
    except (OSError, ValueError):
        return ""
    value = index.get(key, "") if isinstance(index, dict) else ""
    return value if isinstance(value, str) else ""


def _cached_file_hash(file: Path) -> str:
    key = _hash_key(file)
    index_path = paths.cache_dir() / "hashes.json"
    with _lock:
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            index = {}
        if key in index:
            return index[key]
    value = sha256_file(file)
    with _lock:
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            index = {}
        index[key] = value
        try:
            files.atomic_write(index_path, json.dumps(index))
        except OSError:  # a cache: the hash is computed again next time
            pass
    return value
