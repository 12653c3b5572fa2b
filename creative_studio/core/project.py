"""The project file: one SQLite database that keeps every item the user made.

SQLite is used as an application file format (https://sqlite.org/appfileformat.html):
each finished job is one transaction, so a crash or kill loses at most the job in flight
and never leaves a half-written file. Opening an untrusted file runs no code (no pickle,
no extensions, ``trusted_schema=OFF``, no foreign triggers or views), writes nothing
outside the file, and reads blobs only up to a bound.

Format version: ``PRAGMA user_version = major * 1000 + minor``. A newer minor opens (its
additions are ignored); a newer major is refused; an older one is migrated in place after
a backup copy is made beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from . import files, paths
from .errors import ProjectError
from .jobs import Request, Result
from .provenance import library_versions

APPLICATION_ID = 0x43535450  # "CSTP"
FORMAT_MAJOR = 2
FORMAT_MINOR = 1  # 2.1: recipe_sums, a checksum per item over its recipe, parents and outputs
USER_VERSION = FORMAT_MAJOR * 1000 + FORMAT_MINOR
SUFFIX = ".csproj"
MAX_ASSET_BYTES = 1 << 30  # 1 GiB: a bigger blob in a file is refused, not read
MAX_FIELD_BYTES = 16 << 20  # JSON fields above this are treated as corrupt
MAX_TITLE = 500  # characters of an item's title read (a hostile file's can be 50 MB)
MAX_PROMPT = 1_000_000  # the longest text a declared parameter accepts (core/params.py)
_SQLITE_MAGIC = b"SQLite format 3\x00"

_SCHEMA_V2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    plugin TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    request TEXT NOT NULL,
    model TEXT NOT NULL,
    device TEXT NOT NULL,
    versions TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE item_parents (
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    parent_id TEXT NOT NULL,
    PRIMARY KEY (item_id, parent_id)
);
CREATE TABLE assets (
    id INTEGER PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    mime TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX assets_item ON assets(item_id);
CREATE INDEX parents_parent ON item_parents(parent_id);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# 2.1 added one table (older 2.x readers open a newer minor and ignore it)
_SUMS = "CREATE TABLE recipe_sums (item_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL);\n"
_SCHEMA_V2_0 = _SCHEMA_V2
_SCHEMA_V2 = _SCHEMA_V2_0 + _SUMS

# Version 1 (the first format) kept parents as a JSON column and had no panel state.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (
    id TEXT PRIMARY KEY, created REAL NOT NULL, plugin TEXT NOT NULL, kind TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '', request TEXT NOT NULL, model TEXT NOT NULL,
    device TEXT NOT NULL, versions TEXT NOT NULL, parents TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE assets (
    id INTEGER PRIMARY KEY, item_id TEXT NOT NULL, role TEXT NOT NULL, mime TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '', sha256 TEXT NOT NULL, size INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX assets_item ON assets(item_id);
"""


def recipe_sum(row: tuple | list, parents: list[str], assets: list) -> str:
    """The checksum of an item: its row as stored (id, created, plugin, kind, title,
    request, model, device, versions, metadata), its parents and its outputs' descriptions
    (role, mime, name, SHA-256, size, in order). A byte changed in a prompt, a parameter,
    an id or a link no longer matches, as a changed output no longer matches its SHA-256."""
    import hashlib

    described = [[a.role, a.mime, a.name, a.sha256, a.size] if isinstance(a, AssetInfo)
                 else list(a) for a in assets]
    text = json.dumps([list(row), sorted(parents), described], ensure_ascii=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _add_sums(conn: sqlite3.Connection) -> None:
    """2.0 → 2.1: the table, and a checksum for every item as it is now."""
    conn.execute(_SUMS)
    parents: dict[str, list[str]] = {}
    for item_id, parent in conn.execute("SELECT item_id, parent_id FROM item_parents"):
        parents.setdefault(item_id, []).append(parent)
    assets: dict[str, list] = {}
    for item_id, *described in conn.execute(
            "SELECT item_id, role, mime, name, sha256, size FROM assets ORDER BY id"):
        assets.setdefault(item_id, []).append(described)
    rows = conn.execute("SELECT id, created, plugin, kind, title, request, model, device, "
                        "versions, metadata FROM items").fetchall()
    conn.executemany("INSERT OR REPLACE INTO recipe_sums VALUES (?, ?)",
                     [(row[0], recipe_sum(row, parents.get(row[0], []),
                                          assets.get(row[0], []))) for row in rows])


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    # one statement at a time: executescript() would commit the migration's transaction
    conn.execute("""CREATE TABLE item_parents (
            item_id TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            parent_id TEXT NOT NULL,
            PRIMARY KEY (item_id, parent_id))""")
    conn.execute("CREATE INDEX parents_parent ON item_parents(parent_id)")
    conn.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    for item_id, parents in conn.execute("SELECT id, parents FROM items").fetchall():
        values = _json_loads(parents, [])  # a damaged list: no parents rather than a failure
        conn.executemany("INSERT OR IGNORE INTO item_parents VALUES (?, ?)",
                         [(item_id, str(p)) for p in values if isinstance(p, str)])
    conn.execute("ALTER TABLE items DROP COLUMN parents")
    conn.execute("ALTER TABLE items ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'")


# major version -> function that upgrades a file of that major to the next one
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_1_to_2}


@dataclass
class AssetInfo:
    id: int
    role: str
    mime: str
    name: str
    sha256: str
    size: int


@dataclass
class Item:
    id: str
    created: float
    plugin: str
    kind: str
    title: str
    request: Request
    model: dict[str, Any]
    device: str
    versions: dict[str, str]
    metadata: dict[str, Any]
    parents: list[str] = field(default_factory=list)
    assets: list[AssetInfo] = field(default_factory=list)
    damaged: str = ""  # what is wrong with it ("" when nothing was found wrong)

    def recipe(self) -> dict[str, Any]:
        """Everything needed to make this item again (what exported files carry)."""
        return {
            "generator": "creative-studio",
            "item": self.id,
            "request": self.request.to_dict(),
            "model": self.model,
            "device": self.device,
            "versions": self.versions,
            "parents": self.parents,
            "created": self.created,
            "result": self.metadata,
        }


@dataclass
class PendingItem:
    """A finished result that could not be written yet (disk full...): kept, not lost."""

    item_id: str
    request: Request
    result: Result
    error: str


def _json_loads(text: Any, default: Any) -> Any:
    """A stored JSON field, or ``default`` when it is missing, too big, not JSON, nested
    beyond Python's limits, or not of the default's type."""
    if not isinstance(text, str) or len(text) > MAX_FIELD_BYTES:
        return default
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return default
    if default is None:  # any JSON object will do
        return value if isinstance(value, dict) else None
    return value if isinstance(value, type(default)) else default


def _text(raw: bytes) -> str:
    """SQLite TEXT as str: bytes that are not UTF-8 (a damaged file) are replaced, never
    raised on."""
    return raw.decode("utf-8", errors="replace")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _objects(schema: str) -> set[tuple[str, str]]:  # pragma: no mutate block
    """(type, name) of each object a schema script creates."""
    found = set()
    for statement in schema.split(";"):
        words = statement.split()
        if len(words) >= 3 and words[0].upper() == "CREATE":
            found.add((words[1].lower(), words[2]))
    return found


# the objects of each layout: a file with anything else (a changed column, a generated
# column, an expression or partial index, a trigger, a view) is refused
_SCHEMAS = {"1": SCHEMA_V1, "2.0": _SCHEMA_V2_0, "2.1": _SCHEMA_V2}
_EXPECTED = {layout: _objects(text) for layout, text in _SCHEMAS.items()}


def _layout(version: int) -> str:
    """Which schema a file of this format version has ("2.1" for 2.1 and newer minors)."""
    return "1" if version // 1000 == 1 else "2.0" if version == 2000 else "2.1"


# the type every stored value must have (SQLite's typeof), per table and layout
_TYPES_V2 = {
    "meta": {"key": ("text",), "value": ("text",)},
    "items": {"id": ("text",), "created": ("real", "integer"), "plugin": ("text",),
              "kind": ("text",), "title": ("text",), "request": ("text",), "model": ("text",),
              "device": ("text",), "versions": ("text",), "metadata": ("text",)},
    "item_parents": {"item_id": ("text",), "parent_id": ("text",)},
    "assets": {"item_id": ("text",), "role": ("text",), "mime": ("text",), "name": ("text",),
               "sha256": ("text",), "size": ("integer",), "data": ("blob",)},
    "state": {"key": ("text",), "value": ("text",)},
}
_TYPES_V1 = {
    "meta": _TYPES_V2["meta"], "assets": _TYPES_V2["assets"],
    "items": {**{k: v for k, v in _TYPES_V2["items"].items() if k != "metadata"},
              "parents": ("text",)},
}
_TYPES = {"1": _TYPES_V1, "2.0": _TYPES_V2,
          "2.1": {**_TYPES_V2, "recipe_sums": {"item_id": ("text",), "sha256": ("text",)}}}


def _columns(conn: sqlite3.Connection, table: str) -> list[tuple]:
    """A table's declared columns as SQLite understood them: name, type, NOT NULL,
    default, primary-key position, hidden (generated)."""
    return [(str(r[1]), str(r[2]).upper(), int(r[3]), r[4], int(r[5]), int(r[6]))
            for r in conn.execute(f"PRAGMA table_xinfo({_quote(table)})")]


def _index_keys(conn: sqlite3.Connection, index: str) -> list[tuple]:
    return [tuple(r[1:]) for r in conn.execute(f"PRAGMA index_xinfo({_quote(index)})")]


@cache
def _declared(layout: str) -> tuple[dict[str, list[tuple]], dict[str, list[tuple]]]:
    """What each table's columns and each index's keys are in a file made from the schema
    of this major format (an in-memory database made from the same text): a file whose
    schema text was changed (``INTEGER PRIMAR? KEY`` passes a check of names and leaves
    every id NULL) differs here."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_SCHEMAS[layout])
        columns = {table: _columns(conn, table) for table in _TYPES[layout]}
        indexes = {name: _index_keys(conn, name) for kind, name in _EXPECTED[layout]
                   if kind == "index"}
    finally:
        conn.close()
    return columns, indexes


class DamagedAsset(ProjectError):
    """A stored output whose bytes no longer match its recorded size and SHA-256."""


def _friendly_sqlite_error(exc: sqlite3.Error, path: Path) -> ProjectError:
    text = str(exc)
    if "disk is full" in text or "disk I/O" in text:
        return ProjectError(f"Could not write {path.name}: the disk is full. Your result is kept "
                            "in memory; free some space, then save again or use Save As.")
    if "readonly" in text or "read-only" in text:
        return ProjectError(f"Could not write {path.name}: the file or folder is read-only. "
                            "Use Save As to keep your work elsewhere.")
    if "locked" in text:
        return ProjectError(f"{path.name} is locked by another program.")
    return ProjectError(f"Project file {path.name}: {text}")


def _write_new(path: Path, write: Callable[[Path], None]) -> None:
    """A whole database file written beside ``path`` (``write(tmp)``), then put in place
    atomically (core/files.atomic_path: synced, renamed, folder synced). A journal left
    beside ``path`` is removed first: SQLite would "roll it back" into the new file."""
    with files.atomic_path(path) as tmp:
        try:
            write(tmp)
        finally:
            tmp.with_name(tmp.name + "-journal").unlink(missing_ok=True)
        path.with_name(path.name + "-journal").unlink(missing_ok=True)


def check_project_file(path: Path) -> None:
    """Raise ProjectError with a clear message unless ``path`` looks like a project file."""
    if not path.exists():
        raise ProjectError(f"No such project file: {path}")
    if not path.is_file():
        raise ProjectError(f"Not a file: {path}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(100)
    except OSError as exc:
        raise ProjectError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    if len(head) == 0:
        raise ProjectError(f"{path.name} is empty: it is not a Creative Studio project.")
    if not head.startswith(_SQLITE_MAGIC):
        raise ProjectError(f"{path.name} is not a Creative Studio project (unknown format).")
    if len(head) < 100 or head[18:20] != b"\x01\x01":  # rollback journal, as projects are
        raise ProjectError(f"{path.name} is damaged or not a Creative Studio project (its "
                           "header is not a project's).")


class ProjectStore:
    """An open project file. Thread-safe: the job runner writes from its worker threads."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, untitled: bool = False) -> None:
        self.path = path
        self.untitled = untitled
        self._conn = conn
        self._lock = threading.RLock()
        self.pending: list[PendingItem] = []
        self.closed = False
        self.listeners: list[Callable[[str], None]] = []  # called with the new item id
        self.damaged: dict[str, str] = {}  # item id → what is wrong with it (found on read)
        self.verified = True  # recipes have checksums (False: a read-only 2.0 file)

    # -- opening ------------------------------------------------------------
    @staticmethod
    def _connect(path: Path, *, uri: str = "", readonly: bool = False) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(uri or str(path), uri=bool(uri), check_same_thread=False,
                                   isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise ProjectError(f"Cannot open {path.name}: {exc}") from exc
        conn.text_factory = _text
        pragmas = ["trusted_schema=OFF", "cell_size_check=ON", "mmap_size=0",
                   "cache_size=-16000"]
        if not readonly:
            pragmas += ["foreign_keys=ON", "journal_mode=DELETE", "synchronous=FULL"]
        try:
            for pragma in pragmas:
                conn.execute(f"PRAGMA {pragma}")
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a message in bad bytes
            conn.close()
            raise ProjectError(f"{path.name} is damaged or not a Creative Studio project "
                               f"({exc}).") from exc
        return conn

    @classmethod
    def create(cls, path: str | os.PathLike, *, untitled: bool = False) -> ProjectStore:
        """A new, empty project at ``path`` (replacing a file there), made atomically: it is
        built beside, synced, then renamed into place, so a kill leaves either nothing or a
        whole project."""
        path = Path(path)

        def build(tmp: Path) -> None:
            conn = cls._connect(tmp)
            try:
                conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                conn.executescript(
                    "BEGIN;" + _SCHEMA_V2
                    + f"PRAGMA user_version = {USER_VERSION};"
                    + "INSERT INTO meta VALUES ('format', 'creative-studio-project');"
                    + f"INSERT INTO meta VALUES ('created', '{time.time()}');"
                    + f"INSERT INTO meta VALUES ('id', '{uuid.uuid4().hex}');"
                    + "COMMIT;")
            finally:
                conn.close()

        try:
            _write_new(path, build)
        except sqlite3.Error as exc:
            raise _friendly_sqlite_error(exc, path) from exc
        except OSError as exc:
            raise ProjectError(f"Could not create {path}: {exc.strerror or exc}") from exc
        return cls(path, cls._connect(path), untitled=untitled)

    @classmethod
    def open(cls, path: str | os.PathLike) -> ProjectStore:
        """Open a project: looked at read-only first (nothing written, no journal applied to
        it), refused with a plain message unless it is a whole, valid project; then opened
        for writing (an older format is migrated after a backup copy)."""
        path = Path(path)
        major = cls.inspect(path)
        conn = cls._connect(path)
        try:
            if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
                raise ProjectError(f"{path.name} changed while it was being opened.")
            if major < FORMAT_MAJOR:
                cls._migrate(conn, path, major)
            verified = cls._migrate_minor(conn, path)
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # a message in bad bytes
            conn.close()
            raise ProjectError(f"{path.name} is damaged or not a Creative Studio project "
                               f"({exc}).") from exc
        except ProjectError:
            conn.close()
            raise
        store = cls(path, conn, untitled=path.parent == paths.autosave_dir())
        store.verified = verified
        return store

    @classmethod
    def _migrate_minor(cls, conn: sqlite3.Connection, path: Path) -> bool:
        """2.0 → 2.1 in place (one table added; nothing else changes, so no backup).
        Returns whether the file has recipe checksums: a read-only 2.0 file opens without
        them (nothing can be written to it anyway)."""
        if conn.execute("PRAGMA user_version").fetchone()[0] != 2000:
            return True
        try:
            conn.execute("BEGIN IMMEDIATE")
            _add_sums(conn)
            conn.execute(f"PRAGMA user_version = {USER_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "readonly" in str(exc) or "read-only" in str(exc):
                return False
            raise
        return True

    @classmethod
    def inspect(cls, path: str | os.PathLike) -> int:
        """Validate a project file without changing it; returns its format's major version.

        Without a journal beside it the file is read with ``immutable=1`` (read-only, no
        locks, nothing written). With one (a crash mid-write, or a foreign file planted
        there) a private copy of both is opened, so SQLite rolls the journal back into the
        copy, and the copy is checked: a journal that would damage the file is refused before
        it can touch the original."""
        path = Path(path)
        check_project_file(path)
        journal = path.with_name(path.name + "-journal")
        try:
            if journal.exists():
                with tempfile.TemporaryDirectory(prefix="studio-check-") as folder:
                    copy = Path(folder) / path.name
                    shutil.copyfile(path, copy)
                    shutil.copyfile(journal, copy.with_name(journal.name))
                    conn = cls._connect(copy)
                    try:
                        return cls._check(conn, path)
                    finally:
                        conn.close()
            uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro&immutable=1"
            conn = cls._connect(path, uri=uri, readonly=True)
            try:
                return cls._check(conn, path)
            finally:
                conn.close()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise ProjectError(f"{path.name} is damaged or not a Creative Studio project "
                               f"({exc}).") from exc
        except OSError as exc:
            raise ProjectError(f"Cannot read {path}: {exc.strerror or exc}") from exc

    @classmethod
    def _check(cls, conn: sqlite3.Connection, path: Path) -> int:
        """The read-only checks: id, integrity, version, exact schema, value types."""
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        if app_id != APPLICATION_ID:
            raise ProjectError(f"{path.name} is an SQLite database but not a Creative Studio "
                               "project.")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise ProjectError(f"{path.name} is damaged ({str(check)[:200]}).")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        major = version // 1000
        if major > FORMAT_MAJOR:
            raise ProjectError(
                f"{path.name} was made by a newer Creative Studio (format {major}.{version % 1000}"
                f"; this version reads up to {FORMAT_MAJOR}.x). Update the studio to open it.")
        if major < 1:
            raise ProjectError(f"{path.name} has an unknown format version ({version}).")
        found = {(str(t), str(n)): str(tbl) for t, n, tbl in conn.execute(
            "SELECT type, name, tbl_name FROM sqlite_master "
            "WHERE name NOT LIKE 'sqlite_autoindex_%'")}
        layout = _layout(version)
        expected = _EXPECTED[layout]
        newer_minor = major == FORMAT_MAJOR and version % 1000 > FORMAT_MINOR
        extra = [f"{t} {n}" for (t, n) in found if (t, n) not in expected
                 and (not newer_minor or t not in ("table", "index"))]
        if extra:
            raise ProjectError(f"{path.name} contains objects a project never has "
                               f"({', '.join(extra[:5])}): refusing to open it.")
        wrong = [f"{t} {n}" for (t, n) in expected if (t, n) not in found]
        declared_columns, declared_keys = _declared(layout)
        for table, columns in declared_columns.items():  # names, types, keys, defaults
            if ("table", table) in found and _columns(conn, table) != columns:
                wrong.append(f"table {table}")
        for name, keys in declared_keys.items():
            if ("index", name) in found and _index_keys(conn, name) != keys:
                wrong.append(f"index {name}")
        for (kind, name), table in found.items():  # indexes on plain columns only
            if kind == "index":
                keys = conn.execute(f"PRAGMA index_xinfo({_quote(name)})").fetchall()
                partial = [r for r in conn.execute(f"PRAGMA index_list({_quote(table)})")
                           if r[1] == name and r[4]]
                if partial or any(r[5] and r[1] < 0 for r in keys):
                    wrong.append(f"index {name}")
        if wrong:
            raise ProjectError(f"{path.name} is damaged or not a Creative Studio project: "
                               f"{', '.join(wrong[:5])} differ from a project's.")
        for table, columns in _TYPES[layout].items():
            condition = " OR ".join(
                f"typeof({column}) NOT IN ({', '.join(repr(t) for t in types)})"
                for column, types in columns.items())
            bad = conn.execute(f"SELECT count(*) FROM {table} WHERE {condition}").fetchone()[0]
            if bad:
                raise ProjectError(f"{path.name} is damaged: {bad:,} row(s) of its {table} "
                                   "table hold values of the wrong type.")
        return major

    @classmethod
    def _migrate(cls, conn: sqlite3.Connection, path: Path, major: int) -> None:
        backup = path.with_name(f"{path.stem}.v{major}-backup{path.suffix}")
        if not backup.exists():
            shutil.copy2(path, backup)
        try:
            conn.execute("BEGIN")
            while major < FORMAT_MAJOR:
                MIGRATIONS[major](conn)
                major += 1
            conn.execute(f"PRAGMA user_version = {major * 1000}")  # then 2.0 → 2.1
            conn.execute("COMMIT")
        except (sqlite3.Error, KeyError) as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise ProjectError(f"Could not upgrade {path.name} to the current format: {exc}. "
                               f"The file is unchanged.") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self.closed = True

    # -- writing --------------------------------------------------------------
    def add_item(self, request: Request, result: Result, *, kind: str | None = None,
                 item_id: str | None = None) -> str:
        """Write one finished result (one transaction). Returns the new item's id.

        On failure (disk full...) the result is kept in ``pending`` and ProjectError raised.
        """
        import hashlib

        item_id = item_id or uuid.uuid4().hex
        kind = kind or (result.assets[0].role if result.assets else request.plugin)
        model = {"name": result.model.name, "ref": result.model.ref,
                 "sha256": result.model.sha256, "source": result.model.source}
        row = (item_id, time.time(), request.plugin, kind, result.title,
               json.dumps(request.to_dict()), json.dumps(model), result.device,
               json.dumps(library_versions()), json.dumps(result.metadata))
        parents = sorted(set(request.parents))
        described = [(a.role, a.mime, a.name, hashlib.sha256(a.data).hexdigest(), len(a.data))
                     for a in result.assets]
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    self._conn.execute(
                        "INSERT INTO items (id, created, plugin, kind, title, request, model,"
                        " device, versions, metadata) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
                    self._conn.executemany("INSERT INTO item_parents VALUES (?, ?)",
                                           [(item_id, p) for p in parents])
                    self._conn.executemany(
                        "INSERT INTO assets (item_id, role, mime, name, sha256, size, data)"
                        " VALUES (?,?,?,?,?,?,?)",
                        [(item_id, *d, sqlite3.Binary(a.data))
                         for d, a in zip(described, result.assets, strict=True)])
                    if self.verified:
                        self._conn.execute("INSERT OR REPLACE INTO recipe_sums VALUES (?, ?)",
                                           (item_id, recipe_sum(row, parents, described)))
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
        except sqlite3.Error as exc:
            error = _friendly_sqlite_error(exc, self.path)
            self.pending.append(PendingItem(item_id, request, result, str(error)))
            raise error from exc
        for listener in list(self.listeners):
            listener(item_id)
        return item_id

    def flush_pending(self) -> int:
        """Try again to write results that could not be written. Returns how many were."""
        written = 0
        while self.pending:
            entry = self.pending.pop(0)
            try:
                self.add_item(entry.request, entry.result, item_id=entry.item_id)
            except ProjectError:
                # add_item put it back at the end; keep the original order
                self.pending.insert(0, self.pending.pop())
                raise
            written += 1
        return written

    def delete_item(self, item_id: str) -> None:
        """Remove an item with its assets and parent links (its children keep their own)."""
        try:
            with self._lock, self._conn:
                self._conn.execute("DELETE FROM items WHERE id = ?", (item_id,))
                if self.verified:
                    self._conn.execute("DELETE FROM recipe_sums WHERE item_id = ?", (item_id,))
        except sqlite3.Error as exc:
            raise _friendly_sqlite_error(exc, self.path) from exc

    def set_state(self, key: str, value: Any) -> None:
        """Remember panel state (drafts...) so that nothing typed is lost on a crash."""
        text = json.dumps(value)
        try:
            with self._lock, self._conn:
                self._conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, text))
        except sqlite3.Error as exc:
            raise _friendly_sqlite_error(exc, self.path) from exc

    def get_state(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute(
                "SELECT value FROM state WHERE key = ? AND length(value) <= ?",
                (key, MAX_FIELD_BYTES)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except ValueError:
            return default

    def save_as(self, target: str | os.PathLike) -> None:
        """Copy the whole project to ``target`` (atomically) and continue there."""
        target = Path(target)
        if target.suffix != SUFFIX:
            target = target.with_name(target.name + SUFFIX)
        if target.resolve() == self.path.resolve():
            self.flush_pending()
            return
        def copy(tmp: Path) -> None:
            dest = sqlite3.connect(str(tmp))
            try:
                self._conn.backup(dest)
            finally:
                dest.close()

        try:
            with self._lock:
                _write_new(target, copy)
                old_path, was_untitled = self.path, self.untitled
                self._conn.close()
                self._conn = self._connect(target)
                self.path, self.untitled = target, False
            if was_untitled:
                discard_unsaved(old_path)
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, sqlite3.Error):
                raise _friendly_sqlite_error(exc, target) from exc
            raise ProjectError(f"Could not save to {target}: {exc.strerror or exc}") from exc
        self.flush_pending()

    # -- reading --------------------------------------------------------------
    def items(self, only: str | None = None, *, kind: str | None = None,
              limit: int | None = None, child_of: str | None = None) -> list[Item]:
        """Items, oldest first, with their asset descriptions (not their bytes): all, the one
        with id ``only``, those of ``kind`` (a role such as "image"), those made from the
        item ``child_of`` (its lineage's children, read through the parents' index), or the
        newest ``limit`` of them. Values of unexpected shape (a damaged file) never raise:
        the item is marked damaged instead."""
        where, key = [], []
        if only is not None:
            where.append("id = ?")
            key.append(only)
        if kind is not None:
            where.append("kind = ?")
            key.append(kind)
        if child_of is not None:
            where.append("id IN (SELECT item_id FROM item_parents WHERE parent_id = ?)")
            key.append(child_of)
        sql = ("SELECT id, created, plugin, kind, title, request, model, device, versions,"
               " metadata FROM items" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY created DESC, rowid DESC")
        if limit is not None:
            sql += f" LIMIT {max(0, int(limit))}"
        with self._lock:
            rows = self._conn.execute(sql, key).fetchall()[::-1]
            ids = [row[0] for row in rows]
            parent_rows, asset_rows, sum_rows = [], [], []
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                parent_rows += self._conn.execute(
                    f"SELECT item_id, parent_id FROM item_parents WHERE item_id IN ({marks})",
                    chunk).fetchall()
                asset_rows += self._conn.execute(
                    "SELECT id, item_id, role, mime, name, sha256, size FROM assets WHERE "
                    f"item_id IN ({marks}) ORDER BY id", chunk).fetchall()
                if self.verified:
                    try:
                        sum_rows += self._conn.execute(
                            "SELECT item_id, sha256 FROM recipe_sums WHERE item_id IN "
                            f"({marks})", chunk).fetchall()
                    except sqlite3.DatabaseError:  # a damaged page of the checksums: said
                        sum_rows += [(item_id, "") for item_id in chunk]
        parents: dict[str, list[str]] = {}
        for item_id, parent in parent_rows:
            parents.setdefault(item_id, []).append(str(parent))
        assets: dict[str, list[AssetInfo]] = {}
        for aid, item_id, role, mime, name, sha, size in asset_rows:
            assets.setdefault(item_id, []).append(
                AssetInfo(int(aid), str(role), str(mime), str(name), str(sha),
                          size if isinstance(size, int) else -1))
        sums = dict(sum_rows) if self.verified else None
        return [self._item(row, parents, assets, sums) for row in rows]

    def _item(self, row: tuple, parents: dict, assets: dict, sums: dict | None) -> Item:
        item_id, created, plugin, kind, title, req, model, device, versions, meta = row
        item_id = str(item_id)
        request = _json_loads(req, {})
        damaged = self.damaged.get(item_id, "")
        if not request and not damaged:
            damaged = "its recipe cannot be read"
        if sums is not None and not damaged:
            kept = sums.get(item_id)
            if kept == "":
                damaged = "its recipe's checksum cannot be read (that part of the file is " \
                          "damaged)"
            elif kept is None:
                damaged = "its recipe has no checksum (its id or the file was changed " \
                          "outside the studio)"
            elif kept != recipe_sum(row, parents.get(item_id, []), assets.get(item_id, [])):
                damaged = "its recipe does not match its checksum (changed outside the studio)"
        prompt = request.get("prompt")
        if isinstance(prompt, str) and len(prompt) > MAX_PROMPT:  # never one the studio wrote
            request["prompt"] = prompt[:MAX_PROMPT]
            damaged = damaged or "its prompt is longer than any the studio writes (cut)"
        title = str(title)
        if len(title) > MAX_TITLE:
            title = title[:MAX_TITLE - 1] + "…"
        try:
            when = float(created)
        except (TypeError, ValueError, OverflowError):
            when = 0.0
        recipe = Request.from_dict(request)
        linked = parents.get(item_id, [])
        # the order the request gave (an edit's picture, then its mask), whatever the index's
        ordered = [p for p in dict.fromkeys(recipe.parents) if p in linked]
        ordered += [p for p in linked if p not in ordered]
        return Item(item_id, when, str(plugin), str(kind), title,
                    recipe, _json_loads(model, {}), str(device),
                    _json_loads(versions, {}), _json_loads(meta, {}),
                    ordered, assets.get(item_id, []), damaged)

    def item(self, item_id: str) -> Item:
        found = self.items(only=item_id)
        if found:
            return found[0]
        raise ProjectError(f"No item {item_id} in {self.path.name}.")

    def asset_bytes(self, asset_id: int, *, verify: bool = True) -> bytes:
        """An output's bytes, checked against its recorded size and SHA-256: a mismatch
        marks the item damaged and raises DamagedAsset (``verify=False``: the bytes as they
        are, for an export the user asked for knowing it is damaged)."""
        import hashlib

        with self._lock:
            row = self._conn.execute(
                "SELECT item_id, size, sha256, length(data) FROM assets WHERE id = ?",
                (asset_id,)).fetchone()
            if row is None:
                raise ProjectError(f"No asset {asset_id} in {self.path.name}.")
            item_id, size, sha, length = row
            if length is None or length > MAX_ASSET_BYTES:
                raise ProjectError(f"Asset {asset_id} in {self.path.name} is too large to load.")
            data = bytes(self._conn.execute(
                "SELECT data FROM assets WHERE id = ?", (asset_id,)).fetchone()[0])
        if verify and (len(data) != size or hashlib.sha256(data).hexdigest() != sha):
            self.damaged[str(item_id)] = "its stored output does not match its checksum"
            raise DamagedAsset(
                f"The output of item {str(item_id)[:8]} in {self.path.name} is damaged: it no "
                "longer matches its checksum. File → Check project lists the damaged items; "
                "Repair copies everything intact into a new file.")
        return data

    def check(self, progress: Callable[[float], None] | None = None) -> dict[str, str]:
        """Read every item and every output and compare each with its checksum; returns
        {item id: what is wrong} (also kept in ``damaged``). Nothing is written."""
        import hashlib

        problems: dict[str, str] = {}

        def read(query: str, params: tuple = ()) -> list:
            """Rows, or none with the damage said (pages the quick check at open did not
            read can be damaged: the whole check reads them)."""
            try:
                with self._lock:
                    return self._conn.execute(query, params).fetchall()
            except sqlite3.DatabaseError as exc:
                problems.setdefault("", f"the file's structure: {str(exc)[:200]}")
                return []

        integrity = read("PRAGMA integrity_check")
        if integrity and integrity[0][0] != "ok":
            problems[""] = f"the file's structure: {str(integrity[0][0])[:200]}"
        rows = read("SELECT id, request, model, versions, metadata FROM items")
        assets = read("SELECT id, item_id, size, sha256 FROM assets ORDER BY id")
        for item_id, *fields in rows:
            if not all(_json_loads(f, None) is not None for f in fields):
                problems[str(item_id)] = "its recipe cannot be read"
        try:  # every recipe, its parents and its outputs' descriptions against their checksum
            for item in self.items():
                if item.damaged:
                    problems.setdefault(item.id, item.damaged)
        except sqlite3.DatabaseError as exc:
            problems.setdefault("", f"the file's structure: {str(exc)[:200]}")
        # an output or a checksum whose item is gone: an item's id was changed (its output
        # would otherwise be detached without a word)
        detached = read("SELECT count(*) FROM assets WHERE item_id NOT IN (SELECT id FROM items)")
        lost = read("SELECT count(*) FROM recipe_sums WHERE item_id NOT IN "
                    "(SELECT id FROM items)") if self.verified else [(0,)]
        if detached and lost and (detached[0][0] or lost[0][0]):
            said = (f"{detached[0][0]} output(s) and {lost[0][0]} recipe checksum(s) belong to "
                    "no item (an item's id was changed outside the studio)")
            problems[""] = f"{problems[''] + '; ' if '' in problems else ''}{said}"
        for index, (asset_id, item_id, size, sha) in enumerate(assets):
            try:
                with self._lock:
                    data = self._conn.execute("SELECT data FROM assets WHERE id = ?",
                                              (asset_id,)).fetchone()[0]
            except sqlite3.DatabaseError:
                data = None  # (said below as a mismatch: the bytes cannot be read)
            if not isinstance(data, bytes) or len(data) != size or \
                    hashlib.sha256(data).hexdigest() != sha:
                problems.setdefault(str(item_id), "its stored output does not match its "
                                                  "checksum")
            if progress is not None:
                progress((index + 1) / len(assets))
        self.damaged.update({k: v for k, v in problems.items() if k})
        return problems

    def repair(self, target: str | os.PathLike) -> tuple[int, int]:
        """Copy every intact item (recipe, lineage, outputs) and the panels' state into a new
        project at ``target``; returns (items copied, items left out). This file is not
        changed."""
        problems = self.check()  # by item id ("": the file's structure, no item left out)
        target = Path(target)
        if target.resolve() == self.path.resolve():
            raise ProjectError("Repair writes a new file: choose another name.")
        copy = ProjectStore.create(target)
        copied = skipped = 0
        try:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT id, created, plugin, kind, title, request, model, device, "
                    "versions, metadata FROM items ORDER BY created, rowid").fetchall()
                states = self._conn.execute("SELECT key, value FROM state").fetchall()
            with copy._lock:
                conn = copy._conn
                conn.execute("BEGIN IMMEDIATE")
                for row in rows:
                    if str(row[0]) in problems:
                        skipped += 1
                        continue
                    conn.execute("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?)", row)
                    with self._lock:
                        parents = self._conn.execute(
                            "SELECT item_id, parent_id FROM item_parents WHERE item_id = ?",
                            (row[0],)).fetchall()
                        assets = self._conn.execute(
                            "SELECT item_id, role, mime, name, sha256, size, data FROM assets "
                            "WHERE item_id = ? ORDER BY id", (row[0],)).fetchall()
                    conn.executemany("INSERT OR IGNORE INTO item_parents VALUES (?, ?)",
                                     parents)
                    conn.executemany("INSERT INTO assets (item_id, role, mime, name, sha256, "
                                     "size, data) VALUES (?,?,?,?,?,?,?)", assets)
                    conn.execute("INSERT INTO recipe_sums VALUES (?, ?)", (row[0], recipe_sum(
                        row, [p for _, p in parents], [a[1:6] for a in assets])))
                    copied += 1
                conn.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", states)
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            copy.close()
            target.unlink(missing_ok=True)
            raise _friendly_sqlite_error(exc, target) from exc
        copy.close()
        return copied, skipped

    def item_text(self, item: Item) -> str:
        """The text output of a text item ('' when it has none)."""
        for asset in item.assets:
            if asset.role == "text":
                return self.asset_bytes(asset.id).decode("utf-8", errors="replace")
        return ""

    def state_keys(self) -> list[str]:
        """The keys of the kept panel state ("panel:text"…): drafts and settings."""
        with self._lock:
            return [str(k) for (k,) in self._conn.execute("SELECT key FROM state ORDER BY key")]

    def count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM items").fetchone()[0])

    def is_empty(self) -> bool:
        with self._lock:
            states = self._conn.execute("SELECT count(*) FROM state").fetchone()[0]
        return self.count() == 0 and states == 0 and not self.pending


# -- unsaved (untitled) projects and crash recovery --------------------------------
def new_untitled() -> ProjectStore:
    """A fresh project kept in the autosave folder until the user saves it elsewhere."""
    files.remove_stale(paths.autosave_dir(), ".*.tmp")  # creations a kill interrupted
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = paths.autosave_dir() / f"untitled-{stamp}-{uuid.uuid4().hex[:6]}{SUFFIX}"
    store = ProjectStore.create(path, untitled=True)
    claim(path)
    return store


def _owner_file(path: Path) -> Path:
    return path.with_name(path.name + ".owner")


def claim(path: Path) -> None:
    """Mark an unsaved project as in use by this process."""
    _owner_file(path).write_text(str(os.getpid()))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recoverable() -> list[Path]:
    """Unsaved projects left by a studio that did not quit cleanly (and hold work)."""
    found = []
    for path in sorted(paths.autosave_dir().glob(f"*{SUFFIX}")):
        owner = _owner_file(path)
        try:
            pid = int(owner.read_text().strip())
        except (OSError, ValueError):
            pid = -1
        if pid > 0 and _alive(pid):
            continue
        found.append(path)
    return found


def discard_unsaved(path: Path) -> None:
    path.unlink(missing_ok=True)
    _owner_file(path).unlink(missing_ok=True)
    for extra in (path.with_name(path.name + "-journal"),):
        extra.unlink(missing_ok=True)
