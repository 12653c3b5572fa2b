"""The framework's side of the plugin contract: panel settings kept with the project, the
downloads switch read at each job, versioned settings, the log, per-job random generators,
one dispatch of typed job events, the close hook."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from creative_studio.core.jobs import JobEventKind, JobState, Request
from creative_studio.core.settings import VERSION, Settings
from creative_studio.plugins import PluginRegistry
from creative_studio.ui.theme import error_color
from creative_studio.workers.runner import JobRunner
from tests.helpers import write_plugin


@pytest.mark.gui
def test_settings_of_all_four_panels_come_back_with_the_project(make_window, tmp_path):
    window = make_window()
    text, image = window.panels["text"], window.panels["image"]
    music, upscale = window.panels["music"], window.panels["upscale"]
    text.max_tokens.setValue(40)
    text.alternatives.setValue(3)
    text.temperature.setValue(1.25)
    text.system.setPlainText("You are terse.")
    text.add_model_ref(str(tmp_path / "my-model"), "Folder: my-model")
    image.batch.setValue(3)
    image.steps.setValue(12)
    image.scheduler.setCurrentText("Euler a")
    image.negative.setText("blurry")
    image.width_box.setValue(64)
    music.tonic.setCurrentIndex(2)  # D
    music.mode.setCurrentText("dorian")
    music.time_signature.setCurrentText("3/4")
    music.instrument.setCurrentIndex(music.instrument.findData(40))
    music.strict_key.setChecked(True)
    music.tempo.setValue(132)
    upscale.tile.setValue(256)
    upscale.size.setCurrentIndex(upscale.size.findData("x2"))
    upscale.precision.setCurrentIndex(upscale.precision.findData("fp32"))
    upscale.model.setCurrentIndex(upscale.model.findData("embedded:realesrgan-x4plus"))
    saved = tmp_path / "settings.csproj"
    assert window.save_as(saved)
    window.new_project()
    for panel in (text, image, music, upscale):  # a new project shows other values…
        for name in list(panel._bound):
            param = panel.manifest.params.get(name)
            from creative_studio.ui.panel import set_widget_value

            set_widget_value(panel._bound[name], param.default)
    text.alternatives.setValue(1)
    image.batch.setValue(1)
    assert window.open_project(saved)  # …and the saved ones come back
    assert text.max_tokens.value() == 40 and text.alternatives.value() == 3
    assert text.temperature.value() == pytest.approx(1.25)
    assert text.system.toPlainText() == "You are terse."
    assert text.model.currentData() == str(tmp_path / "my-model")
    assert image.batch.value() == 3 and image.steps.value() == 12
    assert image.scheduler.currentText() == "Euler a" and image.negative.text() == "blurry"
    assert image.width_box.value() == 64
    assert music.tonic.currentText() == "D" and music.mode.currentText() == "dorian"
    assert music.time_signature.currentText() == "3/4" and music.instrument.currentData() == 40
    assert music.strict_key.isChecked() and music.tempo.value() == 132
    assert upscale.tile.value() == 256 and upscale.size.currentData() == "x2"
    assert upscale.precision.currentData() == "fp32"
    assert upscale.model.currentData() == "embedded:realesrgan-x4plus"


@pytest.mark.gui
def test_old_project_state_is_read_as_work(make_window):
    """Projects saved before settings were kept hold the drafts alone."""
    window = make_window()
    text = window.panels["text"]
    text.restore_state({"document": "old draft", "instruction": "go", "system": "be kind"})
    assert text.editor.toPlainText() == "old draft" and text.system.toPlainText() == "be kind"


def test_downloads_switch_takes_effect_at_the_next_job(monkeypatch, tmp_path):
    import huggingface_hub

    asked = []

    def snapshot_download(repo_id, local_files_only=False, **kwargs):
        asked.append(local_files_only)
        raise OSError("offline here")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    settings = Settings(allow_downloads=False)
    runner = JobRunner(PluginRegistry.discover(entry_points=False), settings=settings)
    try:
        request = dict(plugin="text", task="generate", prompt="hi", model="hub:org/some-model")
        first = runner.submit(Request(**request))
        assert runner.wait(first, timeout=60)
        assert first.state is JobState.FAILED and "downloads are off" in first.error
        settings.allow_downloads = True  # Preferences → Allow model downloads, no restart
        second = runner.submit(Request(**request))
        assert runner.wait(second, timeout=60)
        assert second.state is JobState.FAILED and "Could not download" in second.error
        assert asked == [True, False]
    finally:
        runner.shutdown()


@pytest.mark.gui
def test_the_window_hands_its_settings_to_the_runner(make_window):
    window = make_window()
    assert window.runner.settings is window.settings
    window.settings.allow_downloads = True
    window.apply_settings()
    assert window.runner.downloads_allowed()


def test_settings_are_versioned_and_migrated(tmp_path):
    Settings.path().write_text(json.dumps({"theme": "dark", "models_dir": "/x",
                                           "recent_files": ["a", 3], "device": 5}))
    settings = Settings.load()  # version 1: models_dir dropped, wrong types ignored
    assert settings.theme == "dark" and settings.device == "auto"
    assert settings.recent_files == ["a"] and not hasattr(settings, "models_dir")
    settings.save()
    data = json.loads(Settings.path().read_text())
    assert data["version"] == VERSION and "models_dir" not in data
    assert list(Settings.path().parent.glob("*.tmp")) == []  # no temp file left behind
    Settings.path().write_text("{broken")
    assert Settings.load() == Settings()


def test_failures_are_logged_with_their_traceback(tmp_path):
    from creative_studio.core import logs

    path = logs.setup()
    write_plugin(tmp_path, "rev", id="rev")
    runner = JobRunner(PluginRegistry.discover([tmp_path], entry_points=False))
    try:
        job = runner.submit(Request("rev", "generate", "explode"))
        assert runner.wait(job, timeout=30) and job.state is JobState.FAILED
    finally:
        runner.shutdown()
    for handler in logging.getLogger("creative_studio").handlers:
        handler.flush()
    text = path.read_text()
    assert "ran out of memory: unloading every model" in text
    assert logs.tail(path, limit=100) == text[-100:]


@pytest.mark.gui
def test_show_log_dialog(make_window):
    from creative_studio.core import logs

    path = logs.setup()
    logging.getLogger("creative_studio.test").warning("a line for the log dialog")
    window = make_window()
    window.show_log()
    shown = window.log_dialog.findChild(__import__("PySide6.QtWidgets").QtWidgets
                                        .QPlainTextEdit).toPlainText()
    assert "a line for the log dialog" in shown and str(path) in str(logs.log_file())
    window.log_dialog.close()


def test_job_events_are_typed_and_ordered(tmp_path):
    write_plugin(tmp_path, "rev", id="rev")
    events = []
    runner = JobRunner(PluginRegistry.discover([tmp_path], entry_points=False),
                       lambda e: events.append(e))
    try:
        job = runner.submit(Request("rev", "generate", "abc"))
        assert runner.wait(job, timeout=30)
    finally:
        runner.shutdown()
    kinds = [e.kind for e in events]
    assert kinds[:2] == [JobEventKind.QUEUED, JobEventKind.STARTED]
    assert kinds[-1] is JobEventKind.DONE
    progress = [e for e in events if e.kind is JobEventKind.PROGRESS]
    assert [e.preview for e in progress] == ["c", "cb", "cba"]
    assert [e.fraction for e in progress] == pytest.approx([1 / 3, 2 / 3, 1.0])


@pytest.mark.gui
def test_a_panel_tracks_its_jobs_and_dispatches_once(qtbot, make_window, tmp_path):
    write_plugin(tmp_path, "rev", id="rev")
    window = make_window(PluginRegistry.discover([tmp_path], entry_points=False))
    panel = window.panels["rev"]
    seen = []
    panel.on_started = lambda job: seen.append(("started", job.id))
    panel.on_result = lambda job: seen.append(("result", job.id))
    panel.on_cancelled = lambda job: seen.append(("cancelled", job.id))
    slow = panel.try_submit(Request("rev", "generate", "x" * 50, {"step_seconds": 0.05}))
    queued = panel.try_submit(Request("rev", "generate", "abc"))
    assert "queued" in panel.queue_label.text()
    qtbot.waitUntil(lambda: ("started", slow.id) in seen, timeout=10_000)
    assert panel.queue_label.text() == "1 running · 1 queued"
    panel.cancel_jobs([queued.id])
    with qtbot.waitSignal(window.events.event, timeout=30_000,
                          check_params_cb=lambda e: e.job is slow and e.kind.value == "done"):
        pass
    assert seen == [("started", slow.id), ("cancelled", queued.id), ("result", slow.id)]
    assert panel.jobs == {} and panel.queue_label.text() == ""
    assert not panel.stop_button or not panel.stop_button.isEnabled()


def test_seed_modes_decide_each_runs_seeds(qtbot, make_window, tmp_path):
    from creative_studio.core.jobs import MAX_SEED
    from creative_studio.ui.widgets import SeedField

    write_plugin(tmp_path, "rev", id="rev")
    window = make_window(PluginRegistry.discover([tmp_path], entry_points=False))
    panel = window.panels["rev"]
    assert panel.seed_field is None
    assert [j.request.seed for j in panel.submit_variations("generate", {}, "x", "a")] == [0]
    panel.seed_field = field = SeedField()

    def seeds(count: int = 1) -> list[int]:
        jobs = panel.submit_variations("generate", {}, "x", prompt="abc", count=count)
        return [job.request.seed for job in jobs]

    field.mode.setCurrentText("fixed")
    field.seed.setValue(10)
    assert seeds() == [10] and seeds(3) == [10, 11, 12] and seeds() == [10]
    field.mode.setCurrentText("increment")
    assert seeds() == [11]  # 10 ran: the next one
    assert seeds(2) == [12, 13] and field.seed.value() == 12
    assert seeds() == [14]  # past both versions of that run
    field.seed.setValue(50)  # typed in: runs as it is first
    assert seeds() == [50] and seeds() == [51]
    field.restore(7)  # recalled: kept fixed, and runs as it is
    assert field.mode.currentText() == "fixed" and seeds() == [7]
    field.restore(7)
    field.mode.setCurrentText("increment")
    assert seeds() == [7] and seeds() == [8]
    field.seed.setValue(MAX_SEED)
    assert seeds() == [MAX_SEED] and seeds() == [0]  # wraps around
    field.mode.setCurrentText("random")
    drawn = [seeds()[0] for _ in range(6)]
    assert len(set(drawn)) >= 5 and field.seed.value() == drawn[-1]  # shown as it ran
    assert all(0 <= seed <= MAX_SEED for seed in drawn)
    panel.stop()
    qtbot.waitUntil(lambda: not panel.jobs, timeout=30_000)


def test_a_failed_job_is_said_in_red_and_marked_failed(qtbot, make_window, tmp_path):
    from PySide6.QtWidgets import QLabel

    write_plugin(tmp_path, "rev", id="rev")
    window = make_window(PluginRegistry.discover([tmp_path], entry_points=False))
    panel = window.panels["rev"]
    panel.status_label = QLabel()
    job = panel.try_submit(Request("rev", "generate", "explode"))
    qtbot.waitUntil(lambda: job.state.finished and not panel.jobs, timeout=30_000)
    assert job.state is JobState.FAILED
    assert panel.message.text() == job.error and job.error.startswith("Out of memory")
    assert error_color() in panel.message.styleSheet()
    assert panel.status_label.text() == "Failed"
    panel.show_message("fine")
    assert panel.message.styleSheet() == "color: palette(window-text);"
    panel.show_message("an old error", error=True)
    queued = panel.try_submit(Request("rev", "generate", "abc"))
    assert panel.message.text() == ""  # a new job clears the last message
    qtbot.waitUntil(lambda: queued.state.finished and not panel.jobs, timeout=30_000)
    ok = panel.try_submit(Request("rev", "generate", "abc", {"step_seconds": 2}))
    qtbot.waitUntil(lambda: ok.state is JobState.RUNNING, timeout=30_000)
    panel.stop()
    qtbot.waitUntil(lambda: not panel.jobs, timeout=30_000)
    assert panel.status_label.text() == "Stopped: nothing was saved"


def test_models_the_user_adds_join_the_choices_once(qtbot, make_window, tmp_path,
                                                     monkeypatch):
    from creative_studio.core.servers import ServerConfig
    from creative_studio.ui import servers, widgets

    write_plugin(tmp_path, "rev", id="rev")
    window = make_window(PluginRegistry.discover([tmp_path], entry_points=False))
    panel = window.panels["rev"]
    panel.model_choices()
    start = panel.model.count()
    asked = []

    def answer(path):
        def ask(parent, settings, kind, mode, title, name="", file_filter=""):
            assert parent is panel and settings is window.settings
            asked.append((kind, mode, title, file_filter))
            return path
        return ask

    monkeypatch.setattr(widgets, "ask_path", answer(str(tmp_path / "my-model")))
    panel.choose_model_path("Open a model folder")
    panel.choose_model_path("Open a model folder", "Folder")  # twice: listed once
    assert asked[0] == ("model", "folder", "Open a model folder", "")
    assert panel.model.count() == start + 1
    assert panel.model.currentText() == "Folder: my-model"
    assert panel.model.currentData() == str(tmp_path / "my-model")
    monkeypatch.setattr(widgets, "ask_path", answer(str(tmp_path / "w.gguf")))
    panel.choose_model_path("Open a GGUF file", "File", "GGUF (*.gguf)")
    assert asked[-1] == ("model", "open", "Open a GGUF file", "GGUF (*.gguf)")
    assert panel.model.currentText() == "File: w.gguf"
    monkeypatch.setattr(widgets, "ask_path", answer(""))  # cancelled: nothing added
    panel.choose_model_path("Open a model folder")
    assert panel.model.count() == start + 2
    # a Hub id: said at once when downloads are off and it is not cached
    dialogs = []
    monkeypatch.setattr("creative_studio.ui.panel.QInputDialog.getText",
                        lambda *a: dialogs.append(a) or ("  org/tiny  ", True))
    panel.ask_hub_id("org/model")
    assert dialogs == [(panel, "Hugging Face model", "Model id (e.g. org/model):")]
    assert panel.model.currentData() == "hub:org/tiny"
    assert panel.model.currentText() == "Hub: org/tiny"
    assert panel.message.text() == ("org/tiny is not on this computer and model downloads "
                                    "are off: allow them in Edit → Preferences, or choose a "
                                    "model folder.") and error_color() in panel.message.styleSheet()
    panel.show_message("")
    monkeypatch.setattr("creative_studio.ui.panel.QInputDialog.getText", lambda *a: ("  ", True))
    panel.ask_hub_id("org/model")
    monkeypatch.setattr("creative_studio.ui.panel.QInputDialog.getText",
                        lambda *a: ("org/x", False))
    panel.ask_hub_id("org/model")
    assert panel.model.count() == start + 3 and panel.message.text() == ""
    window.settings.allow_downloads = True
    panel.add_hub_id("org/other")
    assert panel.message.text() == ""  # downloads allowed: nothing to say
    window.settings.allow_downloads = False
    monkeypatch.setattr("creative_studio.core.hub.is_cached", lambda hub_id: True)
    panel.add_hub_id("org/cached")
    assert panel.message.text() == ""
    # a model on a server, or on any server

    class Dialog:
        def __init__(self, *args):
            self.ref = refs.pop(0)

        def exec(self):
            return bool(self.ref)

    refs = ["server:box/qwen", "server:*/llama", ""]
    monkeypatch.setattr(servers, "ServerModelDialog", Dialog)
    window.settings.servers = [ServerConfig("box", "http://127.0.0.1:9").to_dict()]
    panel.choose_server_model()
    assert panel.model.currentText() == "qwen — box"
    panel.choose_server_model()
    assert panel.model.currentText() == "llama — any server"
    count = panel.model.count()
    panel.choose_server_model()  # cancelled
    assert panel.model.count() == count and panel.model.currentData() == "server:*/llama"


def test_kept_settings_and_recalled_recipes_restore_only_what_they_hold(make_window, tmp_path):
    from creative_studio.ui.widgets import SeedField

    write_plugin(tmp_path, "rev", id="rev")
    window = make_window(PluginRegistry.discover([tmp_path], entry_points=False))
    panel = window.panels["rev"]
    panel.apply_settings({"model": ["/m/a", "A"], "seed": [5, "fixed"]})  # no model box yet
    panel.model_choices()
    start = panel.model.count()
    for bad in ("ab", ["/m/a"], ["/m/a", "A", "x"], ["", "Empty"], [1, "One"], None):
        panel.apply_settings({"model": bad})
    assert panel.model.count() == start
    panel.apply_settings({"model": ["/m/b", ""]})  # a name may be empty, the reference not
    assert panel.model.count() == start + 1 and panel.model.currentData() == "/m/b"
    panel.seed_field = SeedField()
    panel.apply_settings({"seed": [12, "increment"], "count": 3})
    assert panel.seed_field.seed.value() == 12
    assert panel.seed_field.mode.currentText() == "increment"
    panel.apply_settings({"seed": [True, "fixed"]})
    panel.apply_settings({"seed": [13, "sideways"]})
    assert panel.seed_field.seed.value() == 13 and \
        panel.seed_field.mode.currentText() == "increment"
    recipe = Request("rev", "generate", "a recalled prompt", {}, seed=99, model="/m/c")
    panel.apply_recipe(recipe, "C", "prompt")
    assert panel.seed_field.seed.value() == 13 and panel.model.currentData() == "/m/b"
    panel.apply_recipe(recipe, "C", "seed")
    assert panel.seed_field.seed.value() == 99 and panel.seed_field.mode.currentText() == "fixed"
    assert panel.model.currentData() == "/m/b"
    panel.apply_recipe(recipe, "", "all")
    assert panel.model.currentData() == "/m/c" and panel.model.currentText() == "/m/c"
    # exporting nothing is said, in red
    assert panel.export(None, tmp_path / "x") is False
    assert panel.message.text() == "Choose a result first."
    assert error_color() in panel.message.styleSheet()


@pytest.mark.gui
def test_close_hook_stops_the_music_player(make_window, monkeypatch):
    window = make_window()
    music = window.panels["music"]
    closed = []
    monkeypatch.setattr(music, "close_panel", lambda: closed.append(True))
    window.close()
    assert closed == [True]


@pytest.mark.model
def test_text_seeds_hold_with_jobs_on_two_threads(smollm_folder):
    """Each job draws from its own torch.Generator: two jobs at once on two threads give
    what each gives alone (the process-global RNG would interleave them)."""
    from creative_studio.core.progress import Progress
    from plugins.text.generator import TextGenerator
    from tests.conftest import prepared, source_of

    generators = [TextGenerator(), TextGenerator()]
    for generator in generators:
        generator.load(source_of("text"), "cpu", Progress())

    def request(seed):
        return prepared(Request("text", "generate", "Write a sentence about rain.",
                                {"max_tokens": 16, "temperature": 1.0}, seed=seed))

    alone = [generators[0].generate(request(s), Progress(), {}).assets[0].data
             for s in (11, 12)]
    together = [b"", b""]

    def run(index):
        together[index] = generators[index].generate(request(11 + index), Progress(),
                                                     {}).assets[0].data

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert together == alone and alone[0] != alone[1]


@pytest.mark.gui
def test_an_untitled_project_with_only_a_setting_changed_stays_empty(make_window):
    window = make_window()
    text = window.panels["text"]
    text.temperature.setValue(1.3)
    window.autosave()
    assert window.store.is_empty()  # nothing to save or recover yet
    text.editor.setPlainText("a first line")
    window.autosave()
    assert not window.store.is_empty()
    state = window.store.get_state("panel:text", None)
    assert state["settings"]["params"]["temperature"] == pytest.approx(1.3)
