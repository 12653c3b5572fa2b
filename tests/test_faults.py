"""Untrusted files (issue: hostile inputs): a seeded slice of the fault campaign
(bench/faults/campaign.py), and each read path a user has — the window, the CLI, the
History, Check project and Repair — on damaged files."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from creative_studio.core import files
from creative_studio.core.project import DamagedAsset, ProjectStore
from tests.helpers import examples

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "faults"))

import campaign  # noqa: E402
import mutations  # noqa: E402


def test_a_seeded_slice_of_the_campaign_has_no_bad_outcome():
    kills = examples(4, least=1)  # a quarter of each under mutation testing (helpers.py)
    table = campaign.run(seed=11, projects=examples(60), pictures=examples(30),
                         midis=examples(12), pngs=examples(24), kills=kills,
                         schemas=200, settings=30)  # milliseconds each: never reduced
    bad = {kind: {k: v for k, v in counts.items() if k in campaign.BAD and v}
           for kind, counts in table.items()}
    assert all(not v for v in bad.values()), (bad, campaign.run.details)
    for kind in ("projects", "schema", "settings"):  # both paths ran: something was checked
        assert table[kind]["read"] and table[kind]["refused"], (kind, table[kind])
    assert table["kills"]["trials"] == kills


@pytest.fixture
def project(tmp_path):
    path, originals = mutations.make_project(tmp_path / "work.csproj")
    return path, originals


def _flip_output(path: Path) -> str:
    conn = sqlite3.connect(path)
    asset_id, item_id, data = conn.execute(
        "SELECT id, item_id, data FROM assets ORDER BY id LIMIT 1").fetchone()
    data = bytearray(data)
    data[len(data) // 2] ^= 0x10
    conn.execute("UPDATE assets SET data = ? WHERE id = ?", (bytes(data), asset_id))
    conn.commit()
    conn.close()
    return item_id


def test_a_flipped_output_is_reported_never_exported_silently(project, tmp_path):
    path, _ = project
    item_id = _flip_output(path)
    store = ProjectStore.open(path)
    item = store.item(item_id)
    with pytest.raises(DamagedAsset, match="no longer matches its checksum"):
        store.asset_bytes(item.assets[0].id)
    assert store.item(item_id).damaged  # marked from now on
    problems = store.check()
    assert list(problems) == [item_id]
    copied, skipped = store.repair(tmp_path / "repaired.csproj")
    assert (copied, skipped) == (store.count() - 1, 1)
    store.close()
    repaired = ProjectStore.open(tmp_path / "repaired.csproj")
    assert repaired.check() == {} and repaired.count() == copied
    assert repaired.get_state("panel:text") == {"work": {"draft": "kept"}}
    repaired.close()


def test_a_foreign_journal_is_refused_before_it_can_touch_the_file(project, tmp_path):
    path, _ = project
    mutations._foreign_journal(path, tmp_path)
    before = path.read_bytes()
    with pytest.raises(Exception, match="damaged or not a Creative Studio project"):
        ProjectStore.open(path)
    assert path.read_bytes() == before


def test_creating_a_project_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "new.csproj"
    target.with_name("new.csproj-journal").write_bytes(os.urandom(3000))  # a stale journal
    ProjectStore.create(target).close()
    assert not target.with_name("new.csproj-journal").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csproj"]
    ProjectStore.open(target).close()


def test_names_from_project_data_never_leave_their_folder(tmp_path):
    folder = tmp_path / "previews"
    folder.mkdir()
    for hostile in ("../../escape", "/etc/passwd", "..", "a/../../b", "\x00", ""):
        path = files.contained(folder, hostile + ".wav")
        assert path.parent == folder.resolve()
    assert files.safe_name("../../x y.wav") == "x_y.wav"


@pytest.mark.gui
def test_the_music_preview_of_a_hostile_item_id_stays_in_the_temp_folder(qtbot, tmp_path):
    from plugins.music.panel import Renderer

    renderer = Renderer()
    folder = tmp_path / "t"
    folder.mkdir()
    with qtbot.waitSignal(renderer.done, timeout=60_000) as signal:
        renderer.render("../../../escaped", mutations.make_midi(), folder)
    key, path, _ = signal.args
    assert path is not None and path.parent == folder.resolve()
    assert not (tmp_path.parent / "escaped.wav").exists()


def test_stale_temporary_files_of_killed_runs_are_removed(tmp_path):
    old = tmp_path / "studio-music-old"
    old.mkdir()
    fresh = tmp_path / "studio-music-new"
    fresh.mkdir()
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert files.remove_stale(tmp_path, "studio-music-*") == 1
    assert not old.exists() and fresh.exists()


def _cli(*args, home):
    env = dict(os.environ, CREATIVE_STUDIO_HOME=str(home), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_cli_says_one_line_for_damaged_files_and_checks_and_repairs(project, tmp_path):
    path, _ = project
    item_id = _flip_output(path)
    broken = tmp_path / "broken.csproj"
    data = bytearray(path.read_bytes())
    data[4096:8192] = bytes(4096)
    broken.write_bytes(bytes(data))
    home = tmp_path / "home"
    for args in (("list", "--project", str(broken)),
                 ("export", "--project", str(broken), "--item", "x", "--out", "o.txt"),
                 ("check", "--project", str(broken))):
        out = _cli(*args, home=home)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert out.stderr.startswith("error: ") and len(out.stderr.splitlines()) == 1
    refused = _cli("export", "--project", str(path), "--item", item_id,
                   "--out", str(tmp_path / "o.bin"), home=home)
    assert refused.returncode == 2 and "damaged" in refused.stderr
    assert not (tmp_path / "o.bin").exists()
    forced = _cli("export", "--project", str(path), "--item", item_id, "--damaged",
                  "--out", str(tmp_path / "o.bin"), home=home)
    assert forced.returncode == 0 and (tmp_path / "o.bin").exists()
    checked = _cli("check", "--project", str(path), "--repair", str(tmp_path / "r.csproj"),
                   home=home)
    assert checked.returncode == 1 and f"damaged: item {item_id}" in checked.stdout
    assert "repaired: 7 intact item(s)" in checked.stderr
    assert _cli("check", "--project", str(tmp_path / "r.csproj"), home=home).returncode == 0


@pytest.mark.gui
def test_the_window_refuses_damaged_projects_and_keeps_working(qtbot, make_window, project,
                                                               tmp_path):
    path, _ = project
    window = make_window()
    before = window.store.path
    rng = random.Random(5)
    refused = 0
    for kind in ("trigger", "truncation", "foreign journal", "text created", "wal header"):
        copy = tmp_path / f"{kind.replace(' ', '-')}.csproj"
        copy.write_bytes(path.read_bytes())
        mutations.damage_project(copy, rng, tmp_path, kind)
        errors = len(window.errors)
        assert window.open_project(copy) is False
        assert len(window.errors) == errors + 1 and "Traceback" not in window.errors[-1]
        assert str(copy.resolve()) not in window.settings.recent_files
        assert window.store.path == before and window.isVisible()
        refused += 1
    assert refused == 5
    # a project with a damaged output opens; Check marks it; export asks first (no: nothing)
    item_id = _flip_output(path)
    assert window.open_project(path)
    problems = window.check_project()
    assert list(problems) == [item_id]
    window.history.select(item_id)
    item = window.history.current_item()
    assert item.damaged and window.history.tree.currentItem().text(0).startswith("⚠ damaged")
    assert window.export_item(item, tmp_path / "out.bin") is False  # headless answer: No
    assert not (tmp_path / "out.bin").exists()


@pytest.mark.gui
def test_the_history_pages_a_large_project(qtbot, make_window, tmp_path):
    from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
    from creative_studio.ui import history

    store = ProjectStore.create(tmp_path / "big.csproj")
    model = ModelIdentity("m", "embedded:m")
    for index in range(history.PAGE + 20):
        store.add_item(Request("text", "generate", f"p{index}", seed=index),
                       Result([Asset("text", "text/plain", b"x")], model, "cpu",
                              title="T" * 400 if index == 3 else f"t{index}"))
    store.close()
    window = make_window()
    assert window.open_project(tmp_path / "big.csproj")
    view = window.history
    assert view.tree.topLevelItemCount() == history.PAGE and view.older.isVisible()
    assert "20 more" in view.older.text()
    view.older.click()
    assert view.tree.topLevelItemCount() == history.PAGE + 20 and not view.older.isVisible()
    assert max(len(view.tree.topLevelItem(i).text(0))
               for i in range(view.tree.topLevelItemCount())) <= history.MAX_TITLE + 20


def test_list_marks_items_whose_recipe_cannot_be_read(tmp_path):
    from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
    from creative_studio.core.project import ProjectStore

    path = tmp_path / "p.csproj"
    store = ProjectStore.create(path)
    good = store.add_item(Request("text", "generate", "kept", seed=4),
                          Result([Asset("text", "text/plain", b"a")], ModelIdentity("m", "r"),
                                 "cpu", title="kept"))
    bad = store.add_item(Request("text", "generate", "lost", seed=5),
                         Result([Asset("text", "text/plain", b"b")], ModelIdentity("m", "r"),
                                "cpu", title="lost"))
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE items SET request = '{not json' WHERE id = ?", (bad,))
    conn.commit()
    conn.close()
    home = tmp_path / "home"
    out = _cli("list", "--project", str(path), home=home)
    assert out.returncode == 1, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(good) and "DAMAGED" not in lines[0]
    assert lines[1].startswith(bad) and lines[1].endswith(
        "[DAMAGED: its recipe cannot be read]")
    assert out.stderr.splitlines()[-1].startswith("1 item(s) damaged: their recipes are not "
                                                  "what made them")
    listed = json.loads(_cli("list", "--project", str(path), "--json", home=home).stdout)
    assert "damaged" not in listed[0]
    assert listed[1]["damaged"] == "its recipe cannot be read"
