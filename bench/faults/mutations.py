"""Seeded generators of damaged and hostile files for the fault campaign (campaign.py)."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import sqlite3
import struct
import zlib
from pathlib import Path

PAGE = 4096
RECIPES: dict[str, tuple] = {}  # item id → (prompt, seed, title, parents) as make_project made it


def safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:40] or "x"


# -- a real project to damage -------------------------------------------------------------------
def make_picture(rng: random.Random | None = None, fmt: str = "PNG") -> bytes:
    from PIL import Image, PngImagePlugin

    image = Image.new("RGB", (64, 48), (200, 80, 40))
    for x in range(64):
        image.putpixel((x, x % 48), (x * 4 % 256, 30, 200))
    out = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("creative-studio", json.dumps({"prompt": "a fox", "seed": 3}))
        image.save(out, "PNG", pnginfo=info)
    else:
        image.save(out, fmt)
    return out.getvalue()


def make_midi() -> bytes:
    from creative_studio.io.midi import Note, write_midi

    notes = [Note(i * 0.5, 0.5, 60 + (i * 5) % 12) for i in range(16)]
    return write_midi(notes, 100.0, (4, 4), 0, (0, "major"), "{}", length=8.0)


def make_project(path: Path) -> tuple[Path, dict[str, bytes]]:
    """A project with text, picture and MIDI outputs, lineage and panel state; returns it
    and {item id: output bytes} as they were made."""
    from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
    from creative_studio.core.project import ProjectStore

    store = ProjectStore.create(path)
    originals: dict[str, bytes] = {}
    model = ModelIdentity("m", "embedded:m", "ab" * 32, "embedded")
    outputs = [("text", "text/plain; charset=utf-8", b"Once upon a time. " * 40),
               ("image", "image/png", make_picture()),
               ("midi", "audio/midi", make_midi()),
               ("text", "text/plain; charset=utf-8", b"A second draft, longer. " * 300)]
    parent = None
    for index, (role, mime, data) in enumerate(outputs * 2):
        request = Request("text" if role == "text" else role, "generate", f"prompt {index}",
                          {"n": index}, seed=index, parents=[parent] if parent else [])
        item = store.add_item(request, Result([Asset(role, mime, data, f"out{index}")], model,
                                              "cpu", metadata={"i": index}, title=f"t{index}"))
        originals[item] = data
        RECIPES[item] = (request.prompt, request.seed, f"t{index}", request.parents)
        parent = item if index % 3 == 0 else parent
    store.set_state("panel:text", {"work": {"draft": "kept"}})
    store.close()
    return path, originals


# -- projects -----------------------------------------------------------------------------------
def _sql(path: Path, *statements: str, params=()) -> None:
    conn = sqlite3.connect(path)
    try:
        for statement in statements:
            conn.execute(statement, params) if params else conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def _flip(data: bytearray, rng: random.Random, count: int) -> None:
    for _ in range(count):
        at = rng.randrange(len(data))
        data[at] ^= 1 << rng.randrange(8)


def _own_hot_journal(path: Path) -> None:
    """The file as a kill in the middle of a write leaves it: a hot journal beside."""
    copy = path.with_name("copy.csproj")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA cache_size=1")  # spill changed pages into the file mid-transaction
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE assets SET data = zeroblob(length(data))")
    journal = path.with_name(path.name + "-journal")
    data, jdata = path.read_bytes(), journal.read_bytes()
    conn.execute("ROLLBACK")
    conn.close()
    path.write_bytes(data)
    journal.write_bytes(jdata)
    copy.unlink(missing_ok=True)


def _foreign_journal(path: Path, work: Path) -> None:
    """A journal of another database, planted beside the project."""
    other = work / "other.db"
    other.unlink(missing_ok=True)
    conn = sqlite3.connect(other, isolation_level=None)
    conn.execute("CREATE TABLE t (x BLOB)")
    conn.execute("INSERT INTO t VALUES (zeroblob(200000))")
    conn.execute("PRAGMA cache_size=1")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE t SET x = randomblob(200000)")
    jdata = other.with_name(other.name + "-journal").read_bytes()
    conn.execute("ROLLBACK")
    conn.close()
    path.with_name(path.name + "-journal").write_bytes(jdata)


# hostile schemas and values of the wrong type: one statement each
STATEMENTS = {
    "trigger": "CREATE TRIGGER t AFTER INSERT ON items BEGIN DELETE FROM assets; END",
    "view": "CREATE VIEW v AS SELECT * FROM items",
    "generated column": "ALTER TABLE items ADD COLUMN g TEXT GENERATED ALWAYS AS (title) "
                        "VIRTUAL",
    "expression index": "CREATE INDEX ex ON items(length(title))",
    "changed column": "ALTER TABLE items RENAME COLUMN title TO heading",
    "text created": "UPDATE items SET created = 'yesterday'",
    "blob request": "UPDATE items SET request = X'00ff10'",
    "text asset data": "UPDATE assets SET data = CAST(data AS TEXT) WHERE id = 1",
    "text size": "UPDATE assets SET size = 'big'",
}


def damage_project(path: Path, rng: random.Random, work: Path,
                   kind: str | None = None) -> tuple[str, list[str]]:
    """Damage ``path`` in one of many ways (or the one named ``kind``); returns (how, ids of
    items whose output bytes were changed without their checksum)."""
    kind = kind or rng.choice([
        "byte flips", "byte flips", "byte flips", "truncation", "zeroed page", "app id",
        "user_version", "own hot journal", "foreign journal", "garbage journal",
        "trigger", "view", "generated column", "expression index", "changed column",
        "text created", "blob request", "text asset data", "text size", "deep json",
        "hostile ids", "bad utf-8", "flipped output", "flipped output", "huge title",
        "wrong json types", "newer minor + table", "wal header"])
    data = bytearray(path.read_bytes())
    flipped: list[str] = []
    if kind == "byte flips":
        _flip(data, rng, rng.randint(1, 24))
        path.write_bytes(bytes(data))
    elif kind == "truncation":
        path.write_bytes(bytes(data[:rng.randrange(len(data))]))
    elif kind == "zeroed page":
        page = rng.randrange(max(1, len(data) // PAGE))
        data[page * PAGE:(page + 1) * PAGE] = bytes(PAGE)
        path.write_bytes(bytes(data))
    elif kind == "app id":
        _sql(path, f"PRAGMA application_id = {rng.randrange(1, 1 << 30)}")
    elif kind == "user_version":
        _sql(path, f"PRAGMA user_version = {rng.choice([0, 999, 3000, 2001, 1 << 30, -5])}")
    elif kind == "own hot journal":
        _own_hot_journal(path)
    elif kind == "foreign journal":
        _foreign_journal(path, work)
    elif kind == "garbage journal":
        path.with_name(path.name + "-journal").write_bytes(rng.randbytes(rng.randint(1, 9000)))
    elif kind in STATEMENTS:
        _sql(path, STATEMENTS[kind])
    elif kind == "deep json":
        depth = rng.choice([2000, 100_000])
        _sql(path, "UPDATE items SET request = ?", params=("[" * depth + "]" * depth,))
    elif kind == "hostile ids":
        conn = sqlite3.connect(path)
        ids = [r[0] for r in conn.execute("SELECT id FROM items")]
        for index, old in enumerate(ids):
            new = rng.choice(["../../../../escape", "/etc/passwd", "..", "a/../../b",
                              "C:\\x", "\x00nul", "con"]) + str(index)
            conn.execute("UPDATE items SET id = ? WHERE id = ?", (new, old))
            conn.execute("UPDATE assets SET item_id = ? WHERE item_id = ?", (new, old))
            conn.execute("UPDATE item_parents SET item_id = ? WHERE item_id = ?", (new, old))
            conn.execute("UPDATE item_parents SET parent_id = ? WHERE parent_id = ?",
                         (new, old))
        conn.commit()
        conn.close()
    elif kind == "bad utf-8":
        _sql(path, "UPDATE items SET title = CAST(X'fffe41c3' AS TEXT), "
                   "request = CAST(X'7b22707222ff7d' AS TEXT)")
    elif kind == "flipped output":
        conn = sqlite3.connect(path)
        asset_id, item_id, blob = rng.choice(conn.execute(
            "SELECT id, item_id, data FROM assets").fetchall())
        blob = bytearray(blob)
        _flip(blob, rng, 1)
        conn.execute("UPDATE assets SET data = ? WHERE id = ?", (bytes(blob), asset_id))
        conn.commit()
        conn.close()
        flipped.append(item_id)
    elif kind == "huge title":
        _sql(path, "UPDATE items SET title = ?", params=("T" * 5_000_000,))
    elif kind == "wrong json types":
        _sql(path, "UPDATE items SET request = ?, model = '[1,2]', metadata = '\"x\"'",
             params=(json.dumps({"plugin": 3, "params": "no", "seed": 1e308,
                                 "parents": {"a": 1}, "prompt": ["x"]}),))
    elif kind == "newer minor + table":
        _sql(path, "PRAGMA user_version = 2001", "CREATE TABLE extra (x)")
    elif kind == "wal header":
        data[18:20] = b"\x02\x02"
        path.write_bytes(bytes(data))
    return kind, flipped


# -- bytes of other files ---------------------------------------------------------------------
def damage_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["flips", "flips", "truncation", "header size", "prefix", "empty",
                       "chunk length", "other format"])
    out = bytearray(data)
    if kind == "flips":
        _flip(out, rng, rng.randint(1, 30))
    elif kind == "truncation":
        out = out[:rng.randrange(len(out))]
    elif kind == "header size" and data.startswith(b"\x89PNG"):
        out[16:24] = struct.pack(">II", rng.choice([0, 1 << 20, 0x7FFFFFFF]),
                                 rng.choice([0, 50_000, 0x7FFFFFFF]))
    elif kind == "prefix":
        out = bytearray(rng.randbytes(rng.randint(1, 64))) + out
    elif kind == "empty":
        out = bytearray()
    elif kind == "chunk length" and len(out) > 40:
        out[33:37] = struct.pack(">I", 0xFFFFFFF0)
    elif kind == "other format":
        out = bytearray(make_picture(fmt=rng.choice(["JPEG", "WEBP", "BMP", "TIFF"])))
        _flip(out, rng, rng.randint(0, 8))
    return bytes(out), kind


def _midi_tempo(data: bytes, micros: int) -> bytes:
    at = data.find(b"\xff\x51\x03")
    if at < 0:
        return data
    return data[:at + 3] + micros.to_bytes(3, "big") + data[at + 6:]


def damage_midi(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    kind = rng.choice(["flips", "flips", "truncation", "tempo 0", "tempo max", "huge delta",
                       "track length", "type 2", "no tracks", "garbage"])
    out = bytearray(data)
    if kind == "flips":
        _flip(out, rng, rng.randint(1, 20))
    elif kind == "truncation":
        out = out[:rng.randrange(len(out))]
    elif kind == "tempo 0":
        out = bytearray(_midi_tempo(data, 0))
    elif kind == "tempo max":
        out = bytearray(_midi_tempo(data, 0xFFFFFF))
    elif kind == "huge delta":
        at = data.rfind(b"\x90")
        if at > 0:
            out = bytearray(data[:at - 1] + b"\x8f\xff\xff\x7f" + data[at:])
    elif kind == "track length":
        at = data.find(b"MTrk", 14)
        if at > 0:
            out[at + 4:at + 8] = struct.pack(">I", rng.choice([0, 0xFFFFFFFF, 3]))
    elif kind == "type 2":
        out[8:10] = b"\x00\x02"
    elif kind == "no tracks":
        out[10:12] = b"\x00\x00"
    elif kind == "garbage":
        out = bytearray(b"MThd" + rng.randbytes(rng.randint(0, 300)))
    return bytes(out), kind


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + \
        struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def hostile_png(rng: random.Random) -> tuple[bytes, str]:
    """A PNG whose text chunks lie (wrong types, bombs, deep JSON, broken chunks)."""
    kind = rng.choice(["studio wrong types", "studio deep json", "a1111 huge numbers",
                       "comfy wrong graph", "ztxt bomb", "itxt bomb", "bad utf-8",
                       "chunk past end", "many chunks", "huge dimensions", "no recipe",
                       "studio request list", "random tail"])
    ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    if kind == "huge dimensions":
        ihdr = struct.pack(">IIBBBBB", 0x7FFFFFFF, 0x7FFFFFFF, 8, 2, 0, 0, 0)
    text = b""
    if kind == "studio wrong types":
        body = {"prompt": rng.choice([["x"], {"a": 1}, 5, None]), "seed": rng.choice(
            ["abc", 1e309, -5, True, 2**70]), "params": rng.choice(["no", [1], {"steps": "x",
                                                                          "guidance": "nan"}])}
        text = _chunk(b"tEXt", b"creative-studio\0" + json.dumps(body).encode())
    elif kind == "studio request list":
        text = _chunk(b"tEXt", b"creative-studio\0" + json.dumps(
            {"request": ["x"], "prompt": {"y": 1}}).encode())
    elif kind == "studio deep json":
        text = _chunk(b"tEXt", b"creative-studio\0" + b"[" * 100_000 + b"]" * 100_000)
    elif kind == "a1111 huge numbers":
        text = _chunk(b"tEXt", b"parameters\0a cat\nSteps: 99999999999999999999999, "
                               b"CFG scale: 1e999, Seed: -1, Size: 99999999x-3, Sampler: "
                      + b"x" * 100_000)
    elif kind == "comfy wrong graph":
        graph = {"1": {"class_type": "KSampler", "inputs": rng.choice([
            [1, 2], {"positive": ["2", 0], "seed": "x", "cfg": [1]}, "str"])},
            "2": rng.choice([[], {"inputs": [1]}, {"inputs": {"text": {"a": 1}}}])}
        text = _chunk(b"tEXt", b"prompt\0" + json.dumps(graph).encode())
    elif kind == "ztxt bomb":
        text = _chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"a" * 200_000_000, 9))
    elif kind == "itxt bomb":
        text = _chunk(b"iTXt", b"creative-studio\0\x01\0\0\0" +
                      zlib.compress(b"[" * 50_000_000, 9))
    elif kind == "bad utf-8":
        text = _chunk(b"iTXt", b"creative-studio\0\0\0\0\0\xff\xfe{\"prompt\": \"\xc3\"}")
    elif kind == "chunk past end":
        text = struct.pack(">I", 0x7FFFFFF0) + b"tEXt" + b"parameters\0x"
    elif kind == "many chunks":
        text = b"".join(_chunk(b"tEXt", f"k{i}\0v".encode()) for i in range(20_000))
    elif kind == "random tail":
        text = rng.randbytes(rng.randint(1, 5000))
    idat = _chunk(b"IDAT", zlib.compress(b"\0" + b"\0" * 12))
    data = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + text + idat + _chunk(b"IEND", b"")
    return data, kind


def music_generator():
    """The embedded music model, loaded once (for Continue on damaged MIDI files)."""
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from plugins.music.generator import MusicGenerator

    generator = MusicGenerator()
    generator.load(PluginRegistry.discover(entry_points=False).resolve_model("music"), "cpu",
                   Progress())
    return generator


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- schema text and preferences (issue 34's kinds) ----------------------------------------
def flip_schema(path: Path, rng: random.Random) -> str:
    """One character of one object's schema text (sqlite_master.sql) replaced, as a byte
    flip in that part of the file would; returns what was flipped."""
    conn = sqlite3.connect(path)
    try:
        objects = conn.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                               "ORDER BY name").fetchall()
        name, sql = rng.choice(objects)
        position = rng.randrange(len(sql))
        replacement = chr(rng.choice([rng.randrange(32, 127), ord(sql[position]) ^ 1,
                                      ord(sql[position]) ^ 0x20]) or 63)
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = ?",
                     (sql[:position] + replacement + sql[position + 1:], name))
        conn.execute(f"PRAGMA schema_version = {version + 1}")
        conn.commit()
    except sqlite3.DatabaseError:
        pass  # SQLite refused the text itself: the file is as it was
    finally:
        conn.close()
    return f"schema {safe(name)}@{position}"


SETTINGS = {"version": 5, "theme": "dark", "device": "auto", "allow_downloads": False,
            "recent_files": ["/home/me/story.csproj"], "model_process": True,
            "servers": [{"name": "lab", "url": "http://127.0.0.1:8080", "kind": "openai"},
                        {"name": "farm", "url": "http://127.0.0.1:8188", "kind": "comfyui"}],
            "cpu_threads": 0, "folders": {"image": "/home/me/pictures"},
            "default_folder": ""}


def damage_settings(rng: random.Random) -> tuple[bytes, str]:
    """A preferences file that holds two servers, damaged one way or another."""
    text = json.dumps(SETTINGS, indent=2)
    kind = rng.choice(["flip", "truncate", "deep", "huge number", "wrong types",
                       "not a dict", "server junk", "bad utf-8", "empty", "nul bytes"])
    if kind == "flip":
        data = bytearray(text.encode())
        _flip(data, rng, rng.randint(1, 4))
        return bytes(data), kind
    if kind == "truncate":
        return text.encode()[:rng.randrange(len(text))], kind
    if kind == "deep":
        depth = rng.choice([1_000, 100_000])
        return (text[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}").encode(), kind
    if kind == "huge number":
        field = rng.choice(["cpu_threads", "version", "theme"])
        return text.replace(f'"{field}": ', f'"{field}": {"9" * 5000}, "_": ', 1).encode(), kind
    if kind == "wrong types":
        broken = dict(SETTINGS, **{rng.choice(["theme", "recent_files", "folders",
                                               "model_process"]): rng.choice([7, None, [1],
                                                                              {"a": 1}])})
        return json.dumps(broken).encode(), kind
    if kind == "not a dict":
        return json.dumps([SETTINGS]).encode(), kind
    if kind == "server junk":
        broken = dict(SETTINGS, servers=SETTINGS["servers"] + [rng.choice(["x", 3, None,
                                                                           ["a"]])])
        return json.dumps(broken).encode(), kind
    if kind == "bad utf-8":
        return text.encode().replace(b"dark", b"d\xffrk"), kind
    if kind == "empty":
        return b"", kind
    return text.encode().replace(b"auto", b"au\x00o"), kind
