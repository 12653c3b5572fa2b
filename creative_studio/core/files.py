"""Writing files so that a kill never leaves half of one, and names that never come from
untrusted data unchecked (no Qt).

``atomic_write`` writes beside the target under a unique temporary name, syncs, renames
over the target and syncs the folder: a reader sees the old file or the new one, never a
torn one, and two studios writing the same file never share a temporary name.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_PREFIX = ".studio-"
_UMASK_LOCK = threading.Lock()
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
    (synced, renamed, folder synced) with ``target``'s own mode, or the umask's for a new
    file; on failure it is removed and ``target`` untouched. What killed writers of the
    same target left behind is removed first (:func:`remove_leftovers`)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(target)
    fd, name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{target.name}.{os.getpid()}.",
                                suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        fsync_file(tmp)
        os.chmod(tmp, _mode_for(target))
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)


def _mode_for(target: Path) -> int:
    """An existing file keeps its mode when replaced; a new one gets what the umask allows
    (mkstemp's 0600 would make shared and published folders unreadable to others)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        return 0o666 & ~umask()


def umask() -> int:
    """The process's umask, read without changing it where the system tells it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:  # elsewhere: set and set back (no file is created meanwhile here)
        value = os.umask(0o022)
        os.umask(value)
    return value


def remove_leftovers(target: Path, older_than: float = 3600.0, dead_after: float = 120.0) -> int:
    """Remove the temporary files that killed writers of ``target`` left beside it: those
    of a process no longer running here (after ``dead_after`` seconds), and any older than
    ``older_than``. A live writer's file is never touched."""
    removed = 0
    now = time.time()
    # (a database's journal beside its temporary file too: ``….tmp-journal``)
    for path in target.parent.glob(f"{glob.escape(TMP_PREFIX + target.name)}.*.tmp*"):
        try:
            age = now - path.stat().st_mtime
            pid = path.name[len(TMP_PREFIX + target.name) + 1:].split(".", 1)[0]
            dead = pid.isdigit() and not _running(int(pid))
            if age > older_than or (dead and age > dead_after):
                path.unlink(missing_ok=True)
                removed += 1
        except OSError:
            continue
    return removed


def _running(pid: int) -> bool:
    import psutil

    return pid == os.getpid() or psutil.pid_exists(pid)


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
