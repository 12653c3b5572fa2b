"""Writing files so that a kill never leaves half of one, and names that never come from
untrusted data unchecked (no Qt).

``atomic_write`` writes beside the target under a unique temporary name, syncs, renames
over the target and syncs the folder: a reader sees the old file or the new one, never a
torn one, and two studios writing the same file never share a temporary name.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".studio-"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``target``: write it, and on success it replaces ``target``
    (synced, renamed, folder synced); on failure it is removed and ``target`` untouched."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}.", suffix=".tmp",
                                dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(target: str | os.PathLike, data: bytes | str) -> None:
    """Write ``data`` (str as UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def safe_name(text: str, fallback: str = "file", limit: int = 80) -> str:
    """A file name made from untrusted text (an item id, a title): letters, digits, '.',
    '_' and '-' only, no leading dot, at most ``limit`` characters — it cannot name a
    folder above, a hidden file or a device."""
    name = _UNSAFE.sub("_", str(text)).strip("._")[:limit]
    return name or fallback


def contained(folder: Path, name: str) -> Path:
    """``folder / safe_name(name)``, checked to stay inside ``folder``."""
    path = (folder / safe_name(name)).resolve()
    if path.parent != folder.resolve():
        raise ValueError(f"{name!r} does not name a file in {folder}")
    return path


def remove_stale(folder: Path, pattern: str, older_than: float = 3600.0) -> int:
    """Remove what killed runs left in ``folder`` matching ``pattern`` (files or folders
    not touched for ``older_than`` seconds); returns how many."""
    removed = 0
    cutoff = time.time() - older_than
    for path in list(folder.glob(pattern)):  # a missing or unreadable folder: none
        try:
            if path.stat().st_mtime > cutoff:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        except OSError:
            continue
    return removed
