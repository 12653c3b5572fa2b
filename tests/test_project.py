from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from creative_studio.core import project as project_mod
from creative_studio.core.errors import ProjectError
from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
from creative_studio.core.project import ProjectStore
from tests.helpers import examples

ROOT = Path(__file__).resolve().parents[1]


def result(text="hello", **meta):
    return Result([Asset("text", "text/plain", text.encode())],
                  ModelIdentity("m", "embedded:m", "ab" * 32, "embedded"), "cpu",
                  metadata=meta, title=text[:10])


def test_the_children_of_an_item_are_read_through_its_lineage(tmp_path):
    store = ProjectStore.create(tmp_path / "a.csproj")
    source = store.add_item(Request("text", "generate", "source"), result("source"))
    other = store.add_item(Request("text", "generate", "other"), result("other"))
    children = [store.add_item(Request("text", "continue", str(n), parents=[source]),
                               result(f"child {n}")) for n in range(3)]
    store.add_item(Request("text", "continue", "x", parents=[other]), result("elsewhere"))
    both = store.add_item(Request("text", "continue", "y", parents=[other, source]),
                          result("both"))
    assert [i.id for i in store.items(child_of=source)] == children + [both]
    assert [i.id for i in store.items(child_of=source, limit=2)] == [children[2], both]
    assert store.items(child_of=children[0]) == []
    assert store.items(child_of=source, kind="no such kind") == []


def test_round_trip_keeps_everything(tmp_path):
    store = ProjectStore.create(tmp_path / "a.csproj")
    first = store.add_item(Request("text", "generate", "a prompt", {"temperature": 0.5},
                                   seed=42, model="embedded:m"), result("one", tokens=3))
    second = store.add_item(Request("text", "continue", "", {"context": "x"}, seed=7,
                                    parents=[first]), result("two"))
    store.set_state("panel:text", {"document": "draft"})
    store.close()
    store = ProjectStore.open(tmp_path / "a.csproj")
    items = store.items()
    assert [i.id for i in items] == [first, second]
    a, b = items
    assert a.request.prompt == "a prompt" and a.request.seed == 42
    assert a.request.params == {"temperature": 0.5}
    assert a.model == {"name": "m", "ref": "embedded:m", "sha256": "ab" * 32,
                       "source": "embedded"}
    assert a.metadata == {"tokens": 3} and a.device == "cpu"
    assert "python" in a.versions and "torch" in a.versions
    assert b.parents == [first]
    assert store.item_text(b) == "two"
    assert b.assets[0].sha256 == __import__("hashlib").sha256(b"two").hexdigest()
    assert store.get_state("panel:text") == {"document": "draft"}
    recipe = a.recipe()
    assert json.loads(json.dumps(recipe))["request"]["seed"] == 42


def _make_v1(path: Path, child_parents: str = '["p"]') -> None:
    conn = sqlite3.connect(path)
    conn.executescript(project_mod.SCHEMA_V1)
    conn.execute(f"PRAGMA application_id = {project_mod.APPLICATION_ID}")
    conn.execute("PRAGMA user_version = 1000")
    req = json.dumps(Request("text", "generate", "old", seed=1).to_dict())
    for item_id, parents in (("p", "[]"), ("c", child_parents)):
        conn.execute("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?)",
                     (item_id, time.time(), "text", "text", "t", req, "{}", "cpu", "{}",
                      parents))
        conn.execute("INSERT INTO assets (item_id, role, mime, name, sha256, size, data) "
                     "VALUES (?, 'text', 'text/plain', '', ?, 3, ?)",
                     (item_id, hashlib.sha256(b"old").hexdigest(), b"old"))
    conn.commit()
    conn.close()


def test_migration_from_version_1_keeps_items_and_backs_up(tmp_path):
    path = tmp_path / "old.csproj"
    _make_v1(path)
    store = ProjectStore.open(path)
    items = {i.id: i for i in store.items()}
    assert items["c"].parents == ["p"] and store.item_text(items["c"]) == "old"
    store.set_state("k", 1)  # the new table exists
    store.close()
    assert (tmp_path / "old.v1-backup.csproj").exists()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == project_mod.USER_VERSION
    conn.close()
    backup = tmp_path / "old.v1-backup.csproj"
    backup_time = backup.stat().st_mtime_ns
    store = ProjectStore.open(path)  # opens again without migrating
    assert {i.id for i in store.items()} == {"p", "c"}
    store.close()
    assert backup.stat().st_mtime_ns == backup_time  # no second backup
    assert not list(tmp_path.glob("old.v*-backup*.csproj"))[1:]


def test_newer_major_version_is_refused(tmp_path):
    path = tmp_path / "new.csproj"
    ProjectStore.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 3000")
    conn.close()
    with pytest.raises(ProjectError, match="newer Creative Studio"):
        ProjectStore.open(path)


def test_newer_minor_version_opens(tmp_path):
    path = tmp_path / "minor.csproj"
    ProjectStore.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE future_feature (x)")
    conn.execute(f"PRAGMA user_version = {project_mod.USER_VERSION + 1}")
    conn.commit()
    conn.close()
    store = ProjectStore.open(path)
    item_id = store.add_item(Request("text", "generate", "new"), result("made"))
    assert store.item_text(store.item(item_id)) == "made"
    store.close()
    conn = sqlite3.connect(path)  # the newer file keeps its version and its own table
    assert conn.execute("PRAGMA user_version").fetchone()[0] == project_mod.USER_VERSION + 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'future_feature'") \
        .fetchone() == ("future_feature",)
    conn.close()


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 200, "not a Creative Studio project"),
    (os.urandom(4096), "not a Creative Studio project"),
    (b"SQLite format 3\x00" + os.urandom(4000), "damaged|not a Creative Studio"),
])
def test_corrupt_or_foreign_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.csproj"
    path.write_bytes(content)
    with pytest.raises(ProjectError, match=message):
        ProjectStore.open(path)


def test_truncated_project_is_refused(tmp_path):
    path = tmp_path / "t.csproj"
    store = ProjectStore.create(path)
    for i in range(30):
        store.add_item(Request("text", "generate", f"p{i}"), result("x" * 5000))
    store.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ProjectError, match="damaged|truncated|not a Creative Studio"):
        store = ProjectStore.open(path)
        store.items()


def test_other_sqlite_databases_and_injected_triggers_are_refused(tmp_path):
    other = tmp_path / "other.csproj"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(ProjectError, match="not a Creative Studio project"):
        ProjectStore.open(other)
    evil = _project_with(tmp_path / "evil.csproj",
                         "CREATE TRIGGER t AFTER INSERT ON items BEGIN DELETE FROM assets; END")
    with pytest.raises(ProjectError, match="trigger"):
        ProjectStore.open(evil)


def _project_with(path: Path, statement: str) -> Path:
    """A new project with one foreign SQL statement run on it."""
    ProjectStore.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute(statement)
    conn.commit()
    conn.close()
    return path


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ProjectError, match="No such project"):
        ProjectStore.open(tmp_path / "nope.csproj")
    with pytest.raises(ProjectError, match="Not a file"):
        ProjectStore.open(tmp_path)


def test_disk_full_keeps_the_result_and_retries(tmp_path):
    store = ProjectStore.create(tmp_path / "full.csproj")
    store._conn.execute("PRAGMA max_page_count = 12")  # the file cannot grow: a full disk
    big = result("z" * 200_000)
    with pytest.raises(ProjectError, match="disk is full"):
        store.add_item(Request("text", "generate", "big"), big)
    assert len(store.pending) == 1 and store.count() == 0
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.flush_pending() == 1
    assert store.count() == 1 and store.item_text(store.items()[0]) == "z" * 200_000


def test_save_as_moves_the_project_and_discards_the_untitled_file():
    store = project_mod.new_untitled()
    old = store.path
    store.add_item(Request("text", "generate", "p"), result())
    target = old.parent.parent / "saved" / "mine"
    target.parent.mkdir()
    store.save_as(target)
    assert store.path.name == "mine.csproj" and not store.untitled
    assert not old.exists()
    store.add_item(Request("text", "generate", "q"), result())
    store.close()
    assert ProjectStore.open(target.with_suffix(".csproj")).count() == 2


def test_unsaved_projects_of_dead_processes_are_recoverable():
    store = project_mod.new_untitled()
    store.add_item(Request("text", "generate", "p"), result())
    store.close()
    assert project_mod.recoverable() == []  # this process owns it
    owner = store.path.with_name(store.path.name + ".owner")
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True)
    owner.write_text(proc.stdout.strip())  # a process that no longer exists
    assert project_mod.recoverable() == [store.path]


WRITER = """
import sys
from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
from creative_studio.core.project import ProjectStore
store = ProjectStore.create(sys.argv[1])
i = 0
while True:
    r = Result([Asset("text", "text/plain", (str(i) * 2000).encode())],
               ModelIdentity("m", "r"), "cpu")
    item = store.add_item(Request("text", "generate", f"p{i}", seed=i), r)
    print(item, flush=True)
    i += 1
"""


def test_killed_while_writing_loses_nothing_finished(tmp_path):
    path = tmp_path / "kill.csproj"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    written = []
    for line in proc.stdout:
        written.append(line.strip())
        if len(written) >= 40:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    store = ProjectStore.open(path)  # quick_check passes, or this raises
    ids = {item.id for item in store.items()}
    assert set(written) <= ids
    assert len(ids) - len(written) <= 1  # at most the one in flight when killed
    for item in store.items():
        assert store.item_text(item) == str(item.request.seed) * 2000


# -- failure paths and durability (issue 26) ----------------------------------------------
def test_a_failed_migration_rolls_back_and_leaves_the_file_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "old.csproj"
    _make_v1(path)
    before = path.read_bytes()

    def half_then_fail(conn):
        conn.execute("CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("DELETE FROM assets")  # work done before the failure is rolled back
        raise sqlite3.OperationalError("no more room")

    monkeypatch.setitem(project_mod.MIGRATIONS, 1, half_then_fail)
    with pytest.raises(ProjectError, match="Could not upgrade old.csproj.*unchanged"):
        ProjectStore.open(path)
    assert path.read_bytes() == before
    monkeypatch.undo()
    store = ProjectStore.open(path)  # the real migration still works on it afterwards
    assert sorted(i.id for i in store.items()) == ["c", "p"]


def test_a_missing_migration_step_is_refused_unchanged(tmp_path, monkeypatch):
    path = tmp_path / "old.csproj"
    _make_v1(path)
    before = path.read_bytes()
    monkeypatch.delitem(project_mod.MIGRATIONS, 1)
    with pytest.raises(ProjectError, match="unchanged"):
        ProjectStore.open(path)
    assert path.read_bytes() == before


def test_save_as_onto_itself_keeps_the_project_and_writes_pending(tmp_path):
    store = ProjectStore.create(tmp_path / "same.csproj")
    store.add_item(Request("text", "generate", "p"), result("one"))
    store.pending.append(project_mod.PendingItem("late", Request("text", "generate", "q"),
                                                 result("two"), "disk was full"))
    store.save_as(tmp_path / "same")  # the suffix is added: the same file
    assert store.path == tmp_path / "same.csproj" and store.pending == []
    assert [store.item_text(i) for i in store.items()] == ["one", "two"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.csproj"]


def test_a_failed_save_as_keeps_working_on_the_old_file(tmp_path):
    store = ProjectStore.create(tmp_path / "here.csproj")
    store.add_item(Request("text", "generate", "p"), result("one"))
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ProjectError, match="Could not save to .*a-file/there.csproj"):
        store.save_as(tmp_path / "a-file" / "there.csproj")
    assert store.path == tmp_path / "here.csproj"
    store.add_item(Request("text", "generate", "q"), result("two"))
    assert store.count() == 2
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_a_read_only_project_keeps_the_result_and_says_so(tmp_path):
    store = ProjectStore.create(tmp_path / "ro.csproj")
    store._conn.execute("PRAGMA query_only = ON")  # what a read-only file or folder gives
    with pytest.raises(ProjectError, match="read-only. Use Save As"):
        store.add_item(Request("text", "generate", "p"), result("kept"))
    assert [p.result.assets[0].data for p in store.pending] == [b"kept"]
    with pytest.raises(ProjectError, match="read-only"):
        store.set_state("panel:text", "draft")
    with pytest.raises(ProjectError, match="read-only"):
        store.delete_item("anything")
    store.save_as(tmp_path / "elsewhere.csproj")  # Save As writes the kept result there
    assert store.pending == [] and store.count() == 1


def test_a_locked_project_says_which_program_holds_it(tmp_path):
    store = ProjectStore.create(tmp_path / "locked.csproj")
    store._conn.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(tmp_path / "locked.csproj", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ProjectError, match="locked.csproj is locked by another program"):
            store.add_item(Request("text", "generate", "p"), result("kept"))
        assert len(store.pending) == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.flush_pending() == 1 and store.count() == 1


def test_delete_item_removes_its_assets_and_links_only(tmp_path):
    store = ProjectStore.create(tmp_path / "d.csproj")
    parent = store.add_item(Request("text", "generate", "p"), result("parent"))
    child = store.add_item(Request("text", "continue", "c", parents=[parent]), result("child"))
    store.delete_item(child)
    assert [i.id for i in store.items()] == [parent]
    counts = [store._conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("assets", "item_parents")]
    assert counts == [1, 0]
    store.delete_item("no-such-item")  # nothing to delete: no error
    assert store.count() == 1


def test_recovery_skips_projects_whose_owner_is_alive_and_takes_garbage_owners():
    store = project_mod.new_untitled()
    store.add_item(Request("text", "generate", "p"), result())
    store.close()
    owner = store.path.with_name(store.path.name + ".owner")
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        owner.write_text(str(alive.pid))  # another studio still has it open
        assert project_mod.recoverable() == []
    finally:
        alive.kill()
        alive.wait(10)
    for garbage in ("not a pid", "", "-5", "0"):
        owner.write_text(garbage)
        assert project_mod.recoverable() == [store.path], garbage
    owner.unlink()  # no owner file at all
    assert project_mod.recoverable() == [store.path]


def test_a_reopened_autosave_is_still_untitled(tmp_path):
    store = project_mod.new_untitled()
    path = store.path
    store.close()
    assert ProjectStore.open(path).untitled
    ProjectStore.create(tmp_path / "named.csproj").close()
    assert not ProjectStore.open(tmp_path / "named.csproj").untitled


def test_writes_are_durable_full_sync_and_fsync_of_file_and_folder(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    store = ProjectStore.create(tmp_path / "sync.csproj")
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    created = set(synced)
    # the file, synced under its temporary name before the rename, and then its folder
    assert any(Path(p).parent == tmp_path and Path(p).name.startswith(".studio-")
               for p in created), created
    assert str(tmp_path) in created
    synced.clear()
    (tmp_path / "moved").mkdir()
    store.save_as(tmp_path / "moved" / "copy.csproj")
    assert str(tmp_path / "moved") in synced
    assert any(Path(p).parent == tmp_path / "moved" and Path(p).name != "copy.csproj"
               for p in synced), synced
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    reopened = ProjectStore.open(tmp_path / "moved" / "copy.csproj")
    assert reopened._conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_current_version_file_with_a_foreign_table_is_refused(tmp_path):
    path = _project_with(tmp_path / "extra.csproj", "CREATE TABLE sneaky (x)")
    with pytest.raises(ProjectError, match="objects a project never has .*table sneaky"):
        ProjectStore.open(path)


@pytest.mark.parametrize("error, says", [
    ("database or disk is full", "Could not write p.csproj: the disk is full. Your result is "
                                 "kept in memory; free some space, then save again or use "
                                 "Save As."),
    ("disk I/O error", "Could not write p.csproj: the disk is full."),
    ("attempt to write a readonly database", "Could not write p.csproj: the file or folder "
                                             "is read-only. Use Save As to keep your work "
                                             "elsewhere."),
    ("the file is read-only", "Could not write p.csproj: the file or folder is read-only."),
    ("database is locked", "p.csproj is locked by another program."),
    ("no such table: items", "Project file p.csproj: no such table: items"),
])
def test_sqlite_errors_become_plain_messages(error, says):
    message = str(project_mod._friendly_sqlite_error(sqlite3.OperationalError(error),
                                                     Path("/x/p.csproj")))
    assert message.startswith(says)


def test_state_keys_and_pending_keep_their_order(tmp_path):
    store = ProjectStore.create(tmp_path / "o.csproj")
    for key in ("panel:text", "a", "panel:music"):
        store.set_state(key, 1)
    assert store.state_keys() == ["a", "panel:music", "panel:text"]
    store._conn.execute("PRAGMA max_page_count = 12")  # full: both results wait, in order
    for text in ("first", "second"):
        with pytest.raises(ProjectError, match="disk is full"):
            store.add_item(Request("text", "generate", text), result(text * 40_000))
    assert [p.request.prompt for p in store.pending] == ["first", "second"]
    with pytest.raises(ProjectError):  # still full: nothing lost, the order kept
        store.flush_pending()
    assert [p.request.prompt for p in store.pending] == ["first", "second"]
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.flush_pending() == 2 and store.pending == []
    assert [i.request.prompt for i in store.items()] == ["first", "second"]


def test_repair_of_a_file_with_only_a_structure_problem_copies_every_item(tmp_path,
                                                                         monkeypatch):
    store = ProjectStore.create(tmp_path / "s.csproj")
    kept = [store.add_item(Request("text", "generate", p), result(p)) for p in ("a", "b")]
    store.set_state("panel:text", {"draft": "d"})
    monkeypatch.setattr(store, "check", lambda: {"": "the file's structure: page 3"})
    assert store.repair(tmp_path / "r1.csproj") == (2, 0)
    monkeypatch.setattr(store, "check", lambda: {"": "structure", kept[0]: "damaged"})
    assert store.repair(tmp_path / "r2.csproj") == (1, 1)
    copy = ProjectStore.open(tmp_path / "r2.csproj")
    assert [i.id for i in copy.items()] == [kept[1]]
    assert copy.item_text(copy.items()[0]) == "b" and copy.get_state("panel:text") == {
        "draft": "d"}
    with pytest.raises(ProjectError, match=r"^Repair writes a new file: choose another name\.$"):
        store.repair(tmp_path / "s.csproj")


def test_an_items_recipe_holds_everything_to_make_it_again(tmp_path):
    store = ProjectStore.create(tmp_path / "r.csproj")
    parent = store.add_item(Request("text", "generate", "p"), result("one"))
    request = Request("text", "continue", "more", {"temperature": 0.5}, seed=9,
                      parents=[parent])
    child = store.item(store.add_item(request, result("two", tokens=3)))
    assert child.recipe() == {
        "generator": "creative-studio", "item": child.id, "request": request.to_dict(),
        "model": {"name": "m", "ref": "embedded:m", "sha256": "ab" * 32,
                  "source": "embedded"} | {k: v for k, v in child.model.items()
                                           if k not in ("name", "ref", "sha256", "source")},
        "device": "cpu", "versions": child.versions, "parents": [parent],
        "created": child.created, "result": {"tokens": 3}}
    assert child.versions and child.created > 0
    with pytest.raises(ProjectError, match=r"^No item nothing-here in r.csproj.$"):
        store.item("nothing-here")
    assert store.item_text(child) == "two"
    assert store.item_text(store.item(store.add_item(
        Request("x", "y"), Result([Asset("image", "image/png", b"png")],
                                  ModelIdentity("m", "r"), "cpu")))) == ""
    odd = store.item(store.add_item(Request("x", "y"), Result(
        [Asset("text", "text/plain", "é".encode("latin-1") + b"ok")], ModelIdentity("m", "r"),
        "cpu")))
    assert store.item_text(odd) == "\ufffdok"


def test_a_project_is_empty_only_without_items_state_or_pending_results(tmp_path):
    store = ProjectStore.create(tmp_path / "e.csproj")
    assert store.is_empty()
    store.set_state("panel:text", {"draft": ""})
    assert not store.is_empty()
    other = ProjectStore.create(tmp_path / "f.csproj")
    item = other.add_item(Request("text", "generate", "p"), result())
    assert not other.is_empty()
    other.delete_item(item)
    assert other.is_empty() and other.count() == 0
    other.pending.append(project_mod.PendingItem("x", Request("t", "g"), result(), "full"))
    assert not other.is_empty()


def test_pending_results_keep_the_id_they_were_given(tmp_path):
    store = ProjectStore.create(tmp_path / "p.csproj")
    store._conn.execute("PRAGMA max_page_count = 12")
    with pytest.raises(ProjectError):
        store.add_item(Request("text", "generate", "big"), result("z" * 200_000))
    promised = store.pending[0].item_id
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.flush_pending() == 1
    assert [i.id for i in store.items()] == [promised]


def test_new_unsaved_projects_are_named_claimed_and_discarded_whole(studio_home):
    import re

    from creative_studio.core import paths

    folder = paths.autosave_dir()
    stale, fresh = folder / ".untitled-old.csproj.tmp", folder / ".untitled-new.csproj.tmp"
    other = folder / "keep.tmp"
    for path in (stale, fresh, other):
        path.write_text("x")
    past = time.time() - 7200
    os.utime(stale, (past, past))
    os.utime(other, (past, past))
    store = project_mod.new_untitled()
    assert not stale.exists() and fresh.exists() and other.exists()
    assert store.untitled and store.path.parent == folder
    assert re.fullmatch(r"untitled-\d{8}-\d{6}-[0-9a-f]{6}\.csproj", store.path.name)
    owner = store.path.with_name(store.path.name + ".owner")
    assert owner.read_text() == str(os.getpid())
    store.close()
    journal = store.path.with_name(store.path.name + "-journal")
    journal.write_text("j")
    project_mod.discard_unsaved(store.path)
    assert not store.path.exists() and not owner.exists() and not journal.exists()
    project_mod.discard_unsaved(store.path)  # already gone: nothing fails


def test_recovery_looks_at_every_unsaved_project_and_its_owner(monkeypatch):
    stores = [project_mod.new_untitled() for _ in range(3)]
    for store in stores:
        store.add_item(Request("text", "generate", "p"), result())
        store.close()
    owners = [s.path.with_name(s.path.name + ".owner") for s in stores]
    owners[0].write_text("1")  # init: always alive
    owners[1].write_text("0")  # no process
    owners[2].write_text(" -5 ")
    assert project_mod.recoverable() == sorted(s.path for s in stores[1:])
    # a sleeper that any signal would end (whatever its parent ignores, e.g. SIGHUP)
    sleeper = subprocess.Popen([sys.executable, "-c", "import signal, time\n"
                                "signal.pthread_sigmask(signal.SIG_SETMASK, [])\n"
                                "for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM): "
                                "signal.signal(s, signal.SIG_DFL)\ntime.sleep(60)"])
    try:
        owners[1].write_text(str(sleeper.pid))
        assert project_mod.recoverable() == [stores[2].path]
        assert project_mod._alive(sleeper.pid)
        with pytest.raises(subprocess.TimeoutExpired):  # asked, never signalled
            sleeper.wait(0.5)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert project_mod.recoverable() == sorted(s.path for s in stores[1:])

    def not_ours(pid, sig):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(project_mod.os, "kill", not_ours)
    assert project_mod._alive(12345)  # another user's process is alive too


def test_a_version_1_file_with_unreadable_parents_migrates(tmp_path):
    for n, parents in enumerate(("not json", '["p", 3, "p"]', '{"p": 1}')):
        path = tmp_path / f"old{n}.csproj"
        _make_v1(path, parents)
        store = ProjectStore.open(path)
        expected = ["p"] if n == 1 else []
        assert {i.id: i.parents for i in store.items()} == {"p": [], "c": expected}
        store.close()


def test_repair_counts_every_item_left_out_and_keeps_lineage(tmp_path, monkeypatch):
    store = ProjectStore.create(tmp_path / "s.csproj")
    first = store.add_item(Request("text", "generate", "a"), result("a"))
    child = store.add_item(Request("text", "continue", "b", parents=[first]), result("b"))
    bad = [store.add_item(Request("text", "generate", p), result(p)) for p in ("c", "d")]
    monkeypatch.setattr(store, "check", lambda: {b: "damaged" for b in bad})
    assert store.repair(tmp_path / "r.csproj") == (2, 2)
    copy = ProjectStore.open(tmp_path / "r.csproj")
    assert {i.id: i.parents for i in copy.items()} == {first: [], child: [first]}


def test_a_repair_that_cannot_be_written_leaves_no_half_file(tmp_path, monkeypatch):
    store = ProjectStore.create(tmp_path / "s.csproj")
    store.add_item(Request("text", "generate", "a"), result("a"))
    create = ProjectStore.create

    class FullDisk:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, *args):
            return self.conn.execute(*args)

        def executemany(self, sql, rows):
            if sql.startswith("INSERT INTO assets"):
                raise sqlite3.OperationalError("database or disk is full")
            return self.conn.executemany(sql, rows)

        def close(self):
            self.conn.close()

    def failing_create(path, **kwargs):
        made = create(path, **kwargs)
        made._conn = FullDisk(made._conn)
        return made

    monkeypatch.setattr(ProjectStore, "create", failing_create)
    with pytest.raises(ProjectError, match=r"^Could not write fixed.csproj: the disk is full"):
        store.repair(tmp_path / "fixed.csproj")
    assert not (tmp_path / "fixed.csproj").exists() and store.count() == 1


def test_check_names_a_damaged_structure_apart_from_items(tmp_path, monkeypatch):
    store = ProjectStore.create(tmp_path / "s.csproj")
    store.add_item(Request("text", "generate", "a"), result("a"))

    class Damaged:
        def __init__(self, conn):
            self.conn = conn

        def execute(self, sql, *args):
            if sql == "PRAGMA integrity_check":
                return self.conn.execute("SELECT ?", ("*** in database main ***\n" + "x" * 300,))
            return self.conn.execute(sql, *args)

    real = store._conn
    store._conn = Damaged(real)
    problems = store.check()
    assert problems == {"": "the file's structure: *** in database main ***\n" + "x" * 175}
    assert store.damaged == {}
    store._conn = real


def test_save_as_failures_name_the_new_file(tmp_path, monkeypatch):
    store = ProjectStore.create(tmp_path / "here.csproj")
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(ProjectError, match=r"^Could not save to .*/a-file/there.csproj: File "
                                           r"exists$"):
        store.save_as(tmp_path / "a-file" / "there")

    def locked(path, write):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(project_mod, "_write_new", locked)
    with pytest.raises(ProjectError, match=r"^there.csproj is locked by another program.$"):
        store.save_as(tmp_path / "there")

    def odd(path, write):
        raise OSError("no reason given")

    monkeypatch.setattr(project_mod, "_write_new", odd)
    with pytest.raises(ProjectError, match=r"^Could not save to .*there.csproj: no reason given$"):
        store.save_as(tmp_path / "there")
    assert store.path == tmp_path / "here.csproj"


# -- schema text flips (fault-campaign finding: `id INTEGER PRIMAR? KEY` opened) ---------------
def _with_schema(path, name: str, sql: str) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = ?", (sql, name))
        conn.execute(f"PRAGMA schema_version = {version + 1}")
        conn.commit()
    finally:
        conn.close()


def _schema_of(path, name: str) -> str:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT sql FROM sqlite_master WHERE name = ?",
                            (name,)).fetchone()[0]
    finally:
        conn.close()


def test_a_changed_primary_key_is_refused_at_open(tmp_path):
    path = tmp_path / "p.csproj"
    store = ProjectStore.create(path)
    store.add_item(Request("text", "generate", "hi"), result("out"))
    store.close()
    sql = _schema_of(path, "assets")  # the campaign's flip: ids then read as NULL
    _with_schema(path, "assets", sql.replace("id INTEGER PRIMARY KEY", "id INTEGER PRIMARX KEY"))
    with pytest.raises(ProjectError, match=r"^p\.csproj is damaged or not a Creative Studio "
                                           r"project: table assets differ from a project's\.$"):
        ProjectStore.open(path)


@pytest.mark.parametrize("table", ["items", "assets", "item_parents", "meta", "state",
                                   "assets_item"])
def test_every_flip_of_a_tables_schema_text_opens_whole_or_is_refused(tmp_path, table):
    """Each character of the statement replaced in turn (a letter, a '?', a space): the
    project opens and reads exactly as before, or it is refused with a ProjectError —
    never an id read as NULL or a crash later."""
    import random

    base = tmp_path / "base.csproj"
    store = ProjectStore.create(base)
    first = store.add_item(Request("text", "generate", "hi", seed=3), result("out"))
    second = store.add_item(Request("text", "generate", "again", parents=[first]), result("out"))
    store.close()
    sql = _schema_of(base, table)
    rng = random.Random(table)
    positions = sorted(rng.sample(range(len(sql)), min(len(sql), examples(len(sql), 20))))
    opened = refused = 0
    for position in positions:
        original = sql[position]
        for replacement in ("?", "X" if original != "X" else "Y"):
            path = tmp_path / f"{table}-{position}-{ord(replacement)}.csproj"
            shutil.copy(base, path)
            try:
                _with_schema(path, table, sql[:position] + replacement + sql[position + 1:])
            except sqlite3.DatabaseError:
                refused += 1  # SQLite itself would not take the text
                continue
            try:
                flipped = ProjectStore.open(path)
            except ProjectError:
                refused += 1
                continue
            try:
                items = flipped.items()
                assert [i.id for i in items] == [first, second]
                assert items[1].parents == [first] and items[0].request.seed == 3
                assert flipped.item_text(items[0]) == "out"
                opened += 1
            finally:
                flipped.close()
    assert opened + refused >= len(positions)  # every flip was tried
    assert refused > 0  # the check saw something


class DamagedPages:
    """A connection whose queries that name ``bad`` words fail as SQLite fails on a damaged
    page the quick check at open did not read."""

    def __init__(self, conn, bad):
        self.conn, self.bad = conn, bad

    def execute(self, query, *args):
        if any(word in query for word in self.bad):
            raise sqlite3.DatabaseError("database disk image is malformed")
        return self.conn.execute(query, *args)

    def __getattr__(self, name):
        return getattr(self.conn, name)


def test_check_says_what_it_cannot_read_instead_of_raising(tmp_path):
    """Pages the quick check at open did not read can be damaged: Check reads them all and
    says so in its report (the window shows it), never a raw sqlite3 error."""
    store = ProjectStore.create(tmp_path / "p.csproj")
    kept = store.add_item(Request("text", "generate", "hi"), result("out"))

    real = store._conn
    try:
        store._conn = DamagedPages(real, ["SELECT data FROM assets"])
        assert store.check() == {kept: "its stored output does not match its checksum"}
        store._conn = DamagedPages(real, ["integrity_check", "FROM items"])
        assert store.check() == {"": "the file's structure: database disk image is malformed"}
    finally:
        store._conn = real
        store.close()


# -- recipe checksums (format 2.1) -----------------------------------------------------------
def _raw(path):
    conn = sqlite3.connect(path)  # as another program would: no foreign keys enforced
    return conn


def _changed(path, sql: str, params) -> None:
    """The file changed behind the studio's back by one statement."""
    conn = _raw(path)
    conn.execute(sql, params)
    conn.commit()
    conn.close()


def _two_items(tmp_path):
    path = tmp_path / "p.csproj"
    store = ProjectStore.create(path)
    first = store.add_item(Request("text", "generate", "a red fox", {"t": 1}, seed=3),
                           result("one"))
    second = store.add_item(Request("text", "continue", "", seed=4, parents=[first]),
                            result("two"))
    store.close()
    return path, first, second


def test_new_projects_are_format_2_1_with_a_checksum_per_item(tmp_path):
    path, first, second = _two_items(tmp_path)
    conn = _raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2001
    sums = dict(conn.execute("SELECT item_id, sha256 FROM recipe_sums"))
    conn.close()
    assert set(sums) == {first, second} and all(len(v) == 64 for v in sums.values())
    store = ProjectStore.open(path)
    try:
        assert [i.damaged for i in store.items()] == ["", ""]
        assert store.check() == {}
        store.delete_item(second)
        assert store.check() == {}  # its checksum went with it
    finally:
        store.close()


@pytest.mark.parametrize("change", [
    "UPDATE items SET request = replace(request, 'red', 'rod') WHERE id = :first",
    "UPDATE items SET metadata = '{\"x\": 1}' WHERE id = :first",
    "UPDATE items SET title = 'x' || title WHERE id = :first",
    "UPDATE items SET created = created + 1 WHERE id = :first",
    "INSERT INTO item_parents VALUES (:first, 'someone else')",
    "UPDATE assets SET name = 'other.txt' WHERE item_id = :first",
    "UPDATE recipe_sums SET sha256 = replace(sha256, substr(sha256, 1, 1), 'x') "
    "WHERE item_id = :first",
])
def test_a_changed_recipe_is_found_said_and_never_re_run(tmp_path, change):
    """90 % of byte flips inside a prompt were read silently: each field, link and output
    description is now under the item's checksum."""
    path, first, second = _two_items(tmp_path)
    _changed(path, change, {"first": first})
    store = ProjectStore.open(path)
    try:
        items = {i.id: i for i in store.items()}
        assert items[first].damaged.startswith("its recipe does not match its checksum")
        assert items[second].damaged == ""
        assert store.check() == {first: items[first].damaged}
        copied, skipped = store.repair(tmp_path / "repaired.csproj")
        assert (copied, skipped) == (1, 1)
    finally:
        store.close()
    repaired = ProjectStore.open(tmp_path / "repaired.csproj")
    try:
        assert [i.id for i in repaired.items()] == [second] and repaired.check() == {}
    finally:
        repaired.close()


def test_a_changed_id_cannot_detach_an_output_silently(tmp_path):
    path, first, second = _two_items(tmp_path)
    flipped = "f" + first[1:] if first[0] != "f" else "e" + first[1:]
    _changed(path, "UPDATE items SET id = ? WHERE id = ?", (flipped, first))
    store = ProjectStore.open(path)
    try:
        items = {i.id: i for i in store.items()}
        assert items[flipped].damaged.startswith("its recipe has no checksum")
        assert items[flipped].assets == []  # its output stayed under the old id…
        problems = store.check()
        assert problems[""] == ("1 output(s) and 1 recipe checksum(s) belong to no item (an "
                                "item's id was changed outside the studio)")  # …and is said
        assert problems[flipped] == items[flipped].damaged
    finally:
        store.close()


def _make_2_0(path):
    store = ProjectStore.create(path)
    first = store.add_item(Request("text", "generate", "old", seed=1), result("kept"))
    store.close()
    conn = _raw(path)
    conn.execute("DROP TABLE recipe_sums")
    conn.execute("PRAGMA user_version = 2000")
    conn.commit()
    conn.close()
    return first


def test_a_2_0_project_gains_checksums_when_opened(tmp_path):
    path = tmp_path / "old.csproj"
    first = _make_2_0(path)
    store = ProjectStore.open(path)
    try:
        assert store.verified and [i.damaged for i in store.items()] == [""]
        added = store.add_item(Request("text", "generate", "new", seed=2), result("n"))
        assert store.check() == {}
    finally:
        store.close()
    conn = _raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2001
    assert {r[0] for r in conn.execute("SELECT item_id FROM recipe_sums")} == {first, added}
    conn.close()
    assert not list(tmp_path.glob("*backup*"))  # one table added, nothing else changed


def test_a_read_only_2_0_project_opens_unverified(tmp_path):
    """Nothing can be written to it: it opens without checksums (the minor step refused by
    SQLite, not by the file's mode, which root ignores)."""
    path = tmp_path / "old.csproj"
    _make_2_0(path)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        assert ProjectStore._migrate_minor(conn, path) is False
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2000
        store = ProjectStore(path, conn)
        store.verified = False
        assert [i.damaged for i in store.items()] == [""]
    finally:
        conn.close()


def test_unreadable_checksums_mark_the_items_not_the_window(tmp_path):
    """The campaign's finding: a damaged page of recipe_sums (that the quick check at open
    does not read) made every list of items raise a raw DatabaseError."""
    path, first, second = _two_items(tmp_path)
    store = ProjectStore.open(path)
    real = store._conn
    try:
        store._conn = DamagedPages(real, ["FROM recipe_sums"])
        assert {i.damaged for i in store.items()} == {
            "its recipe's checksum cannot be read (that part of the file is damaged)"}
    finally:
        store._conn = real
        store.close()
