"""Findings of the fault campaign and of new users (issue 34), each with the test that
failed before its fix. A damaged preferences file never costs the user what it held unseen:
the file is kept aside before anything replaces it, what was not loaded is said in the
window and on the CLI, and no shape of it crashes the start. Errors reach the log; finished
times count the model's load; a damaged recipe is never re-run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from creative_studio.core import settings as settings_mod
from creative_studio.core.settings import Settings
from tests.helpers import drop_studio_log

ROOT = Path(__file__).resolve().parents[1]
SERVERS = [{"name": "lab", "url": "http://127.0.0.1:9", "kind": "openai"}]


def write(text: str) -> Path:
    path = Settings.path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob("settings.json.damaged-*"))


@pytest.mark.parametrize("text, why", [
    ('{"theme": "dark", "servers": [', "the file is not valid JSON"),
    ("[" * 100_000 + "]" * 100_000, "the file is nested too deeply"),
    ('{"servers": ' + "[" * 100_000 + "]" * 100_000 + "}", "the file is nested too deeply"),
    ('["a list"]', "the file does not hold preferences"),
])
def test_a_file_damaged_as_a_whole_gives_defaults_and_is_kept_on_save(text, why):
    path = write(text)
    before = path.read_bytes()
    settings = Settings.load()
    assert settings == Settings() and settings.damage
    assert settings.damage == [f"all of them: {why}"]
    assert aside(path) == []  # reading never writes
    settings.theme = "dark"
    settings.save()
    [kept] = aside(path)
    assert kept.read_bytes() == before  # the user's file as it was
    assert json.loads(path.read_text())["theme"] == "dark"
    assert "damage" not in json.loads(path.read_text())  # this session's notes stay out
    settings.save()
    assert aside(path) == [kept]  # kept once


def test_unreadable_bytes_say_so():
    path = Settings.path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xfe{not utf-8")
    assert Settings.load().damage == ["all of them: the file could not be read: "
                                      "UnicodeDecodeError"]


def test_a_damaged_field_keeps_the_servers():
    """One 5,000-digit number used to make the whole file unreadable: the servers went."""
    path = write(json.dumps({"theme": "dark", "servers": SERVERS})[:-1]
                 + ', "cpu_threads": ' + "9" * 5000 + "}")
    settings = Settings.load()
    assert settings.servers == SERVERS and settings.theme == "dark"
    assert settings.cpu_threads == 0 and settings.damage == ["cpu_threads"]
    told = settings.keep_damaged()
    [kept] = aside(path)
    assert told == ("Some preferences could not be read and are at their defaults: "
                    f"cpu_threads. The file as it was is kept as {kept}: repair it there "
                    "and copy it back over settings.json while the studio is closed.")
    assert settings.keep_damaged() == told and aside(path) == [kept]


def test_entries_that_are_not_servers_are_left_out_and_said():
    write(json.dumps({"servers": [SERVERS[0], "junk", 7, None]}))
    settings = Settings.load()
    assert settings.servers == SERVERS
    assert settings.damage == ["3 of 4 servers (not a name and an address)"]
    write(json.dumps({"servers": SERVERS, "theme": "dark"}))
    assert Settings.load().damage == []  # a sound file: nothing said, nothing kept


def test_a_server_entry_hidden_by_a_flipped_key_is_said_and_kept():
    """The campaign's finding: "name" flipped to "nbme" made a server vanish from every list
    without a word (the entry is a dict, but no server)."""
    flipped = [{"nbme": "lab", "url": "http://127.0.0.1:9"}, SERVERS[0] | {"name": "farm"}]
    path = write(json.dumps({"servers": flipped}))
    settings = Settings.load()
    assert settings.servers == flipped  # nothing dropped
    assert settings.damage == ["server entries that do not read as a server: ?"]
    settings.save()
    [kept] = aside(path)
    assert json.loads(kept.read_text())["servers"] == flipped


def test_no_copy_no_overwrite(monkeypatch):
    path = write("{broken")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(settings_mod.shutil, "copy2", refuse)
    settings = Settings.load()
    with pytest.raises(OSError, match="could not be kept aside .Permission denied., so it "
                                      "was not replaced"):
        settings.save()
    assert settings.tell_damage() == (  # what the window and the CLI say at start
        "Some preferences could not be read and are at their defaults: all of them: the "
        "file is not valid JSON; the damaged preferences file could not be kept aside "
        "(Permission denied), so it was not replaced. Preferences changed now are not saved "
        "until it can be.")
    assert path.read_text() == "{broken"


def test_a_file_gone_meanwhile_is_not_a_failure():
    path = write("{broken")
    settings = Settings.load()
    path.unlink()
    assert settings.keep_damaged() == ("Some preferences could not be read and are at their "
                                       "defaults: all of them: the file is not valid JSON.")
    settings.save()
    assert Settings.load().damage == []


def cli(*args, stdin=""):
    return subprocess.run([sys.executable, "main.py", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, input=stdin, env={**os.environ})


def test_cli_servers_add_keeps_the_damaged_file_and_the_servers():
    path = write(json.dumps({"servers": [SERVERS[0], ["not", "a", "server"]],
                             "cpu_threads": "9" * 40}).replace('"' + "9" * 40 + '"',
                                                               "9" * 40))
    before = path.read_bytes()
    out = cli("servers", "add", "farm", "http://127.0.0.1:8", "--kind", "comfyui")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("warning: Some preferences could not be read and are at "
                                 "their defaults: cpu_threads; 1 of 2 servers (not a name "
                                 "and an address).")
    [kept] = aside(path)
    assert kept.read_bytes() == before
    names = [s["name"] for s in json.loads(path.read_text())["servers"]]
    assert names == ["lab", "farm"]


def test_the_window_says_it_and_keeps_the_file(qtbot):
    from creative_studio.plugins import PluginRegistry
    from creative_studio.ui.main_window import MainWindow

    path = write('{"servers": [{"name": "lab", "url": "http://127.0.0.1:9"}], "theme": ')
    window = MainWindow(PluginRegistry.discover(), Settings.load())  # as the app starts it
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.errors), timeout=5000)
    [kept] = aside(path)
    assert window.errors[-1].startswith("Some preferences could not be read and are at their "
                                        "defaults: all of them: the file is not valid JSON.")
    assert str(kept) in window.errors[-1]
    window.close()  # closing writes the preferences: the original stays kept
    window.runner.shutdown()
    assert kept.read_text().startswith('{"servers"') and aside(path) == [kept]


def test_an_unknown_command_is_refused_not_made_a_project(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "voices", "list"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**os.environ})
    assert out.returncode == 2
    assert out.stderr.strip() == ("creative-studio: 'voices' is neither a command nor a "
                                  "project file. Commands: generate, list, export, check, "
                                  "plugins, servers, models (each has --help); a new project "
                                  "is made by a name that ends in .csproj.")
    assert list(tmp_path.iterdir()) == []  # no voices.csproj
    # what a new user typed first is a command now: the GGUFs on this computer
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "models", "list", "--only"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60,
                         env={**os.environ})
    assert out.returncode == 0 and "No GGUF models found" in out.stdout
    assert not list(tmp_path.glob("*.csproj"))
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert subprocess.run([sys.executable, str(ROOT / "main.py"), str(folder)],
                          capture_output=True, cwd=tmp_path, timeout=60).returncode == 2


def test_cli_and_window_errors_are_kept_in_the_log(tmp_path, make_window):
    from creative_studio.core import logs

    home = tmp_path / "home"
    out = subprocess.run([sys.executable, str(ROOT / "main.py"), "list", "--project",
                          str(tmp_path / "missing.csproj")], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "CREATIVE_STUDIO_HOME": str(home)})
    assert out.returncode == 2 and out.stderr.startswith("error: ")
    said = out.stderr.removeprefix("error: ").strip()
    logged = list(home.rglob("studio.log"))
    assert logged and f"list: {said}" in logged[0].read_text()
    window = make_window()
    logs.setup()  # (the app sets it up at start; this test's own home)
    try:
        window.show_error("Export", "The disk is full: nothing was written.")
        assert "Export: The disk is full: nothing was written." in \
            logs.log_file().read_text()
    finally:
        drop_studio_log()


def test_finished_times_count_the_model_load(tmp_path, make_window):
    """A first job said "finished in 2.7 s" 18.5 s after the click: the load is counted and
    said; a job whose model was loaded says no load."""
    import time as clock

    from creative_studio.core.jobs import JobEvent, JobEventKind, JobState, Request
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner
    from tests.helpers import write_plugin

    write_plugin(tmp_path, "slow", id="slow", generator="tests.fake_plugin:SlowLoadGenerator")
    runner = JobRunner(PluginRegistry.discover([tmp_path], entry_points=False),
                       device_preference="cpu")
    try:
        first = runner.submit(Request("slow", "generate", prompt="ab"))
        second = runner.submit(Request("slow", "generate", prompt="cd"))
        assert runner.wait(second, timeout=30) and second.state is JobState.DONE
    finally:
        runner.shutdown()
    assert first.load_seconds >= 0.3 and second.load_seconds < 0.3
    window = make_window()
    for job, load, said in ((first, 15.8, "Finished ab in 18.5 s (loading the model 15.8 s)"),
                            (second, 0.0, "Finished cd in 2.7 s")):
        job.load_seconds, job.label = load, said.split()[1]
        job.progress.started = clock.monotonic() - 2.7
        window._on_job_event(JobEvent(JobEventKind.DONE, job))
        assert window.statusBar().currentMessage() == said


def test_the_window_never_re_runs_a_damaged_recipe(make_window, tmp_path):
    import sqlite3

    from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
    from creative_studio.core.project import ProjectStore

    path = tmp_path / "p.csproj"
    store = ProjectStore.create(path)
    item_id = store.add_item(Request("text", "generate", "a red fox", seed=3),
                             Result([Asset("text", "text/plain", b"x")],
                                    ModelIdentity("m", "embedded:m"), "cpu"))
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE items SET request = replace(request, 'red', 'rod')")
    conn.commit()
    conn.close()
    window = make_window()
    assert window.open_project(path)
    item = window.store.item(item_id)
    assert item.damaged.startswith("its recipe does not match its checksum")
    jobs = len(window.runner.jobs)
    assert window.rerun(item) is None
    assert window.errors[-1].startswith("This item is damaged: its recipe does not match its "
                                        "checksum")
    assert len(window.runner.jobs) == jobs  # nothing queued
