"""File basics through the real window: a project named on the command line is created,
Ctrl+S, Save As suggests the project's own name, dialogs remember their folder per kind,
and the recovery prompt says what it recovers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from creative_studio.core.project import ProjectStore

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def dialogs(monkeypatch):
    """Stand-ins for the file dialogs: record where each opened, answer from a queue."""
    asked, answers = [], []

    def save(parent, title, start, file_filter=""):
        asked.append((title, start))
        return (answers.pop(0) if answers else "", file_filter)

    def open_one(parent, title, start, file_filter=""):
        asked.append((title, start))
        return (answers.pop(0) if answers else "", file_filter)

    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(save))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(open_one))
    return asked, answers


def test_a_project_named_on_the_command_line_is_created_there(tmp_path):
    target = tmp_path / "folder" / "new.csproj"
    target.parent.mkdir()
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CREATIVE_STUDIO_HOME=str(tmp_path / "h"),
               CREATIVE_STUDIO_NO_PRELOAD="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "main.py", str(target), "--exit-after-paint"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "No such project file" not in out.stderr
    ProjectStore.open(target).close()


def test_save_and_save_as_and_folders_per_kind(qtbot, make_window, dialogs, tmp_path):
    asked, answers = dialogs
    window = make_window()
    assert window.store.untitled
    answers.append(str(tmp_path / "projects" / "mine.csproj"))
    (tmp_path / "projects").mkdir()
    assert window.save()  # Ctrl+S on an untitled project asks where
    assert asked[-1] == ("Save project as", "project.csproj")
    assert window.store.path == tmp_path / "projects" / "mine.csproj"
    assert window.save()  # Ctrl+S on a saved one: kept, no dialog
    assert len(asked) == 1
    window.save_as_dialog()  # cancelled: suggests its own name, in its folder
    assert asked[-1] == ("Save project as", str(tmp_path / "projects" / "mine.csproj"))
    window.open_dialog()  # the project folder, remembered
    assert asked[-1] == ("Open project", str(tmp_path / "projects"))
    window.panels["text"].editor.setPlainText("words")
    (tmp_path / "docs").mkdir()
    answers.append(str(tmp_path / "docs" / "story.md"))
    window.panels["text"].export_document_dialog()
    assert (tmp_path / "docs" / "story.md").read_text() == "words\n"
    window.panels["text"].export_document_dialog()  # documents: their own folder
    assert asked[-1] == ("Export the document", str(tmp_path / "docs" / "document.txt"))
    window.open_dialog()  # projects still theirs
    assert asked[-1] == ("Open project", str(tmp_path / "projects"))
    window.close()
    from creative_studio.core.settings import Settings

    assert Settings.load().folders == {"project": str(tmp_path / "projects"),
                                       "document": str(tmp_path / "docs")}


def test_the_recovery_prompt_says_what_it_recovers(make_window):
    window = make_window()
    store = window.store
    assert window.recovery_summary(store) == "nothing"
    store.set_state("panel:text", {"work": {"document": "a draft"}})
    assert window.recovery_summary(store) == "drafts in Text"
    from creative_studio.core.jobs import Request
    from tests.test_project import result

    store.add_item(Request("text", "generate", "x"), result())
    store.set_state("panel:music", {"work": {}})
    assert window.recovery_summary(store) == "1 item and drafts in Music, Text"


# -- modes and leftovers (fault-campaign findings) -------------------------------------------
def test_written_files_honour_the_umask_and_keep_an_existing_mode(tmp_path):
    from creative_studio.core import files

    old = os.umask(0o002)
    try:
        assert files.umask() == 0o002
        new = tmp_path / "new.txt"
        files.atomic_write(new, "x")
        assert new.stat().st_mode & 0o777 == 0o664  # not mkstemp's 0600
        shared = tmp_path / "shared.png"
        shared.write_bytes(b"old")
        shared.chmod(0o644)
        files.atomic_write(shared, b"new")
        assert shared.stat().st_mode & 0o777 == 0o644 and shared.read_bytes() == b"new"
        os.umask(0o077)
        private = tmp_path / "private.txt"
        files.atomic_write(private, "x")
        assert private.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_killed_writers_leftovers_are_removed_by_the_next_write(tmp_path):
    import time

    from creative_studio.core import files

    target = tmp_path / "story.csproj"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    old = time.time() - 600
    leftovers = [tmp_path / f".studio-story.csproj.{dead.pid}.abc.tmp",
                 tmp_path / f".studio-story.csproj.{dead.pid}.abc.tmp-journal",
                 tmp_path / ".studio-story.csproj.k3x_9q.tmp"]  # older versions: no pid
    live = tmp_path / f".studio-story.csproj.{os.getppid()}.def.tmp"  # a running writer
    fresh = tmp_path / f".studio-story.csproj.{dead.pid}.new.tmp"  # killed a moment ago
    other = tmp_path / f".studio-other.csproj.{dead.pid}.abc.tmp"  # another target's
    for path in (*leftovers, live, other):
        path.write_bytes(b"half")
        os.utime(path, (old, old))
    fresh.write_bytes(b"half")
    ancient = time.time() - 7200
    os.utime(leftovers[2], (ancient, ancient))
    files.atomic_write(target, b"whole")
    assert not any(p.exists() for p in leftovers)
    assert live.exists() and fresh.exists() and other.exists()
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, live.name, fresh.name, other.name])
