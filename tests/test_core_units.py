"""The small core helpers on the paths a normal run never takes: devices that are not
there, model references that name nothing, embedded models that are missing, keyrings that
fail, files that cannot be synced or removed, hashes of model folders."""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path

import pytest

from creative_studio.core import devices, files, models, paths, provenance, secrets
from creative_studio.core.errors import BadInput, ModelError, StudioError
from tests.helpers import drop_studio_log

ROOT = Path(__file__).resolve().parents[1]


# -- devices --------------------------------------------------------------------------------
@pytest.fixture
def fake_torch(monkeypatch):
    """A torch whose CUDA and MPS answers the test sets."""
    torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False),
                                  backends=types.SimpleNamespace(
                                      mps=types.SimpleNamespace(is_available=lambda: False)))
    monkeypatch.setitem(sys.modules, "torch", torch)
    return torch


@pytest.mark.parametrize("cuda, mps, preference, expected", [
    (True, False, "auto", "cuda"), (True, False, "mps", "cpu"), (False, True, "auto", "mps"),
    (False, True, "MPS", "mps"), (False, False, "cuda", "cpu"), (True, True, "cuda", "cuda"),
    (True, False, "nonsense", "cuda"), (True, False, "", "cuda"), (True, False, "cpu", "cpu"),
])
def test_devices_resolve_to_what_is_there(fake_torch, cuda, mps, preference, expected):
    fake_torch.cuda.is_available = lambda: cuda
    fake_torch.backends.mps.is_available = lambda: mps
    assert devices.resolve(preference) == expected
    assert devices.available() == [d for d, here in (("cuda", cuda), ("mps", mps),
                                                     ("cpu", True)) if here]


def test_devices_without_torch_loaded(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(devices, "_might_have_accelerator", lambda: False)
    assert devices.resolve("cuda") == "cpu" and "torch" not in sys.modules
    monkeypatch.setattr(devices, "_might_have_accelerator", lambda: True)
    assert devices.resolve("auto", probe=False) == "auto"  # the model process decides
    assert devices.resolve("cuda", probe=False) == "cuda" and "torch" not in sys.modules


def test_an_older_torch_without_mps(fake_torch):
    del fake_torch.backends.mps
    assert devices.available() == ["cpu"]


def test_the_cheap_accelerator_look(monkeypatch):
    monkeypatch.setattr(devices.sys, "platform", "darwin")
    monkeypatch.setattr(devices.platform, "machine", lambda: "arm64")
    assert devices._might_have_accelerator()
    monkeypatch.setattr(devices.sys, "platform", "linux")
    monkeypatch.setattr(devices.glob, "glob", lambda pattern: ["/dev/dxg"]
                        if pattern == "/dev/dxg" else [])
    assert devices._might_have_accelerator()  # WSL's GPU
    monkeypatch.setattr(devices.glob, "glob", lambda pattern: ["/dev/nvidia0"]
                        if pattern == "/dev/nvidia[0-9]*" else [])
    assert devices._might_have_accelerator()  # an NVIDIA driver's device
    monkeypatch.setattr(devices.glob, "glob", lambda pattern: [])
    assert not devices._might_have_accelerator()


# -- model references -------------------------------------------------------------------------
def test_references_that_name_nothing_are_told_plainly(tmp_path):
    from creative_studio.plugins import PluginRegistry

    manifest = PluginRegistry.discover(entry_points=False).get("text").manifest
    for ref, message in (("", "No model chosen"), ("   ", "No model chosen"),
                         ("hub:", "names no model"), ("server: ", "names no model"),
                         ("server:box", "names no model: use server:<server>/<model id>"),
                         ("server:box/llama", "No server named 'box'"),
                         ("embedded:nope", "has no embedded model 'nope'"),
                         (str(tmp_path / "gone.gguf"), "Model not found"),
                         ("./relative/model", "Model not found")):
        with pytest.raises(ModelError, match=message):
            models.resolve(manifest, ref)
    assert models.split_ref("org/model-1") == ("hub", "org/model-1")
    any_server = models.resolve(manifest, "server:*/qwen")
    assert any_server.server == "*" and any_server.name == "qwen on any server"
    (tmp_path / "mine.gguf").write_bytes(b"GGUF")
    local = models.resolve(manifest, str(tmp_path / "mine.gguf"))
    assert local.source == "local" and local.name == "mine" and local.path.is_file()
    with pytest.raises(ModelError, match="runs on a server"):
        any_server.local_path()
    with pytest.raises(ModelError, match="is not a text folder: it needs config.json"):
        models.resolve(manifest, str(tmp_path)).folder_with("config.json", "text")


def test_relative_folders_and_hub_ids_are_told_apart(tmp_path, monkeypatch):
    """A bare ``org/name`` is a Hub id unless a folder or file of that name is there (then it
    is that folder, relative to where the studio runs); a path-like start is always local."""
    from creative_studio.plugins import PluginRegistry

    monkeypatch.chdir(tmp_path)
    split = models.split_ref
    assert split("  org/model-1  ") == ("hub", "org/model-1")
    assert models.HUB_ID.match("org/model-1\n") is None  # "$" would let a newline end it
    assert split("Org.x/name_2.5") == ("hub", "Org.x/name_2.5")
    for local in ("./org/model", "../org/model", "/org/model", "org/model/sub", "-org/model",
                  "org/mo del", "org", "org/"):
        assert split(local)[0] == "local", local
    assert split("~/models/x") == ("local", str(Path.home() / "models" / "x"))
    (tmp_path / "org" / "model-1").mkdir(parents=True)
    assert split("org/model-1") == ("local", "org/model-1")  # there: the folder wins
    assert split("hub:org/model-1") == ("hub", "org/model-1")  # unless said
    assert split("hub: org/x ") == ("hub", "org/x") and split("embedded:a") == ("embedded", "a")
    manifest = PluginRegistry.discover(entry_points=False).get("text").manifest
    folder = models.resolve(manifest, "org/model-1")
    assert (folder.source, folder.name, folder.path) == ("local", "model-1",
                                                         Path("org/model-1"))
    assert folder.local_path() == Path("org/model-1")
    assert models.resolve(manifest, "org/other").allow_downloads is False  # unless allowed
    known = ", ".join(m.id for m in manifest.models)
    with pytest.raises(ModelError, match=f"has no embedded model 'nope' \\(it has: {known}\\)\\.$"):
        models.resolve(manifest, "embedded:nope")
    bare = types.SimpleNamespace(name="Bare", models=[], offer=lambda value: None)
    with pytest.raises(ModelError, match=r"^Bare has no embedded model 'x' \(it has: none\)\.$"):
        models.resolve(bare, "embedded:x")
    hub = models.resolve(manifest, "org/other", allow_downloads=True)
    assert (hub.source, hub.name, hub.hub_id, hub.path, hub.allow_downloads) == (
        "hub", "org/other", "org/other", None, True)
    asked = []
    monkeypatch.setattr("creative_studio.core.hub.snapshot", lambda repo, what, **kw: (
        asked.append((repo, what, kw)) or tmp_path))
    assert hub.local_path("text model") == tmp_path
    assert asked == [("org/other", "text model", {"allow_downloads": True})]
    with pytest.raises(ModelError, match="is not a text folder: it needs config.json"):
        hub.folder_with("config.json", "text")
    assert asked[-1] == ("org/other", "text", {"allow_downloads": True})
    box = types.SimpleNamespace(name="box", url="http://127.0.0.1:8080")
    on_box = models.resolve(manifest, "server:box/qwen:7b", servers=[box])
    assert (on_box.source, on_box.name, on_box.server, on_box.hub_id, on_box.url) == (
        "server", "qwen:7b on box", "box", "qwen:7b", "http://127.0.0.1:8080")
    embedded = models.resolve(manifest, "embedded:" + manifest.models[0].id)
    assert embedded.source == "embedded" and embedded.offer is manifest.models[0]
    assert embedded.name == manifest.models[0].name


def offer(locate, install=""):
    return types.SimpleNamespace(locate=locate, name="Tiny", install=install)


def test_embedded_models_that_are_not_there(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match=r"not installed \(`pip install --no-deps tiny-pkg`"):
        models.locate(offer("package:no_such_package_here/w", "tiny-pkg"))
    with pytest.raises(ModelError, match="Tiny is not installed.$"):
        models.locate(offer("package:no_such_package_here/w"))
    with pytest.raises(ModelError, match=r"^The embedded model Tiny is missing its files \(.*"
                                         r"not-shipped\): reinstall Creative Studio\.$"):
        models.locate(offer("resource:models/not-shipped"))
    with pytest.raises(ModelError, match="does not say where its files are"):
        models.locate(offer("ftp:somewhere"))
    with pytest.raises(ModelError, match="Cannot find the embedded model Tiny: boom"):
        models.locate(offer("call:tests.test_core_units:_raises"))
    with pytest.raises(ModelError, match="own words"):
        models.locate(offer("call:tests.test_core_units:_raises_model_error"))
    monkeypatch.setattr(sys.modules[__name__], "WHERE", str(tmp_path), raising=False)
    assert models.locate(offer("call:tests.test_core_units:_where")) == tmp_path
    assert models.locate(offer("package:pytest/__init__.py")).name == "__init__.py"
    assert models.available(offer("")) and models.available(offer("package:pytest/"))
    assert not models.available(offer("ftp:x"))


def _raises():
    raise RuntimeError("boom")


def _raises_model_error():
    raise ModelError("the plugin's own words")


def _where():
    return WHERE  # noqa: F821 - set by the test


# -- provenance -------------------------------------------------------------------------------
def test_folder_hashes_cover_every_weight_file_and_are_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("CREATIVE_STUDIO_CACHE", str(tmp_path / "cache"))  # not the shared one
    folder = tmp_path / "model"
    folder.mkdir()
    assert provenance.weights_sha256(folder) == ""  # no weights at all
    (folder / "a.safetensors").write_bytes(b"one")
    (folder / "notes.txt").write_text("not weights")
    single = provenance.weights_sha256(folder)
    assert single == provenance.sha256_file(folder / "a.safetensors")
    (folder / "sub").mkdir()
    (folder / "sub" / "b.bin").write_bytes(b"two")
    both = provenance.weights_sha256(folder)
    assert both not in ("", single)
    (folder / "sub" / "b.bin").rename(folder / "b.bin")  # same bytes, another name
    assert provenance.weights_sha256(folder) != both
    index = paths.cache_dir() / "hashes.json"
    assert index.is_file() and len(__import__("json").loads(index.read_text())) >= 2
    index.write_text("{broken")  # a damaged cache is rebuilt, never trusted
    assert provenance.weights_sha256(folder / "a.safetensors") == single
    (folder / "a.safetensors").write_bytes(b"changed")
    os.utime(folder / "a.safetensors", ns=(time.time_ns(), time.time_ns() + 10 ** 9))
    assert provenance.weights_sha256(folder / "a.safetensors") != single


def test_folder_hashes_cover_torch_weight_files_too(tmp_path):
    for suffix in (".pt", ".pth", ".gguf", ".bin"):
        folder = tmp_path / suffix[1:]
        folder.mkdir()
        (folder / f"a{suffix}").write_bytes(b"1")
        (folder / "b.safetensors").write_bytes(b"2")
        first = provenance.weights_sha256(folder)
        (folder / f"a{suffix}").write_bytes(b"changed")
        assert provenance.weights_sha256(folder) != first, suffix


def test_a_hash_cache_that_cannot_be_written_is_only_slower(tmp_path, monkeypatch):
    monkeypatch.setenv("CREATIVE_STUDIO_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"gguf")

    def refuse(*args, **kwargs):
        raise OSError("read-only cache")

    monkeypatch.setattr(files, "atomic_write", refuse)
    assert provenance.weights_sha256(weights) == provenance.sha256_file(weights)


def test_library_versions_name_python():
    versions = provenance.library_versions()
    assert versions["python"] == __import__("platform").python_version()
    assert all(isinstance(v, str) and v for v in versions.values())


# -- secrets ----------------------------------------------------------------------------------
class BrokenRing:
    def get_password(self, *args):
        raise RuntimeError("locked")

    def set_password(self, *args):
        raise RuntimeError("locked")

    def delete_password(self, *args):
        raise RuntimeError("locked")


def test_a_broken_keyring_keeps_the_key_in_memory_and_says_so(monkeypatch, caplog):
    monkeypatch.setattr(secrets, "_keyring", lambda: BrokenRing())
    monkeypatch.setattr(secrets, "_memory", {})
    assert secrets.get("server:a") == ""
    assert caplog.messages == ["keyring read of server:a failed: RuntimeError"]
    with pytest.raises(secrets.NoKeyring, match=r"^No working OS keyring: the key is kept until "
                       r"the studio quits\. Install a Secret Service \(GNOME Keyring, KWallet\) "
                       r"to keep it\.$"):
        secrets.put("server:a", "sk-123")
    assert caplog.messages[1:] == ["keyring write of server:a failed: RuntimeError"]
    assert secrets.get("server:a") == "sk-123"
    assert "sk-123" not in caplog.text  # never in a log
    secrets.put("server:a", "")  # deleting: no error, gone from memory too
    assert secrets.get("server:a") == ""


def test_no_keyring_at_all(monkeypatch):
    monkeypatch.setattr(secrets, "_keyring", lambda: None)
    monkeypatch.setattr(secrets, "_memory", {})
    assert secrets.get("x") == ""
    with pytest.raises(secrets.NoKeyring):
        secrets.put("x", "key")
    assert secrets.get("x") == "key"
    secrets.put("x", "")
    assert secrets.get("x") == ""
    secrets.put("never-set", "")  # deleting what was never there: nothing to say


def test_the_fail_backend_counts_as_no_keyring(monkeypatch):
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    assert secrets._keyring() is None


def test_a_working_keyring_stores_and_deletes(monkeypatch):
    stored = {}

    class Ring:  # keys of this studio only: its service name is checked
        def get_password(self, service, name):
            assert service == "creative-studio"
            return stored.get(name)

        def set_password(self, service, name, secret):
            assert service == "creative-studio"
            stored[name] = secret

        def delete_password(self, service, name):
            assert service == "creative-studio"
            if name not in stored:
                raise KeyError(name)
            del stored[name]

    monkeypatch.setattr(secrets, "_keyring", lambda: Ring())
    monkeypatch.setattr(secrets, "_memory", {"k": "old, from a session without keyring"})
    secrets.put("k", "new")
    assert stored == {"k": "new"} and secrets.get("k") == "new" and secrets._memory == {}
    secrets.put("k", "")
    secrets.put("k", "")  # deleting what is not there: fine
    assert stored == {} and secrets.get("k") == ""
    secrets.put("fresh", "sk-1")  # a name the memory never held
    assert stored == {"fresh": "sk-1"}
    secrets._memory["m"] = "from memory"
    secrets.put("m", "")  # a delete through the keyring forgets the memory copy too
    assert secrets._memory == {}


# -- files and paths ----------------------------------------------------------------------------
def test_fsync_dir_of_what_cannot_be_opened_or_synced(tmp_path, monkeypatch):
    files.fsync_dir(tmp_path / "missing")  # no error: nothing to make durable

    def refuse(fd):
        raise OSError("not supported here")

    monkeypatch.setattr(os, "fsync", refuse)
    files.fsync_dir(tmp_path)  # some file systems cannot sync folders


def test_contained_names_and_stale_files(tmp_path):
    assert files.contained(tmp_path, "../../etc/passwd") == tmp_path.resolve() / "etc_passwd"
    assert files.contained(tmp_path, "...").name == "file"
    assert files.safe_name("a" * 200, limit=10) == "a" * 10
    assert files.safe_name("b" * 200) == "b" * 80
    assert files.safe_name("._.name._") == "name" and files.safe_name("._") == "file"
    assert files.safe_name("X-ray.X") == "X-ray.X"
    (tmp_path / "link").symlink_to(tmp_path.parent)  # a link out of the folder is refused
    with pytest.raises(ValueError, match=r"^'link' does not name a file in "):
        files.contained(tmp_path, "link")
    old, new = tmp_path / "studio-old.tmp", tmp_path / "studio-new.tmp"
    old.write_text("x")
    new.write_text("y")
    (tmp_path / "studio-folder.tmp").mkdir()
    past = time.time() - 7200
    for path in (old, tmp_path / "studio-folder.tmp"):
        os.utime(path, (past, past))
    assert files.remove_stale(tmp_path, "studio-*.tmp") == 2
    assert not old.exists() and new.exists() and not (tmp_path / "studio-folder.tmp").exists()
    assert files.remove_stale(tmp_path / "missing", "*") == 0


def test_paths_follow_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CREATIVE_STUDIO_CACHE", str(tmp_path / "cache-here"))
    assert paths.cache_dir() == tmp_path / "cache-here" and paths.cache_dir().is_dir()
    monkeypatch.delenv("CREATIVE_STUDIO_CACHE")
    monkeypatch.setenv("CREATIVE_STUDIO_HOME", str(tmp_path / "home"))
    assert paths.cache_dir() == tmp_path / "home" / "cache"
    assert paths.autosave_dir() == tmp_path / "home" / "data" / "unsaved"
    monkeypatch.delenv("CREATIVE_STUDIO_HOME")
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda app: str(tmp_path / "pd-cache"))
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda app: str(tmp_path / "pd-conf"))
    assert paths.cache_dir() == tmp_path / "pd-cache"
    assert paths.config_dir() == tmp_path / "pd-conf" and (tmp_path / "pd-conf").is_dir()
    assert (paths.resources_dir() / "model-cards").is_dir()
    assert Path(paths.resources_dir()).parent == Path(__file__).resolve().parents[1]


# -- settings -----------------------------------------------------------------------------------
def test_settings_of_every_older_version_migrate_to_the_current_one(monkeypatch):
    from creative_studio.core import settings as module
    from creative_studio.core.settings import VERSION, Settings

    # versions 2-5 only added fields: an old file keeps what it had, the rest are defaults
    old = Settings.from_dict({"models_dir": "/x", "theme": "dark", "recent_files": ["/a"]})
    assert old == Settings(theme="dark", recent_files=["/a"]) and old.version == VERSION
    # a step runs once for each version the file is behind, in order, on a copy
    calls = []

    def rename(data):  # e.g. a field renamed in version 3
        calls.append(dict(data))
        data["theme"] = data.pop("colour", "light")
        return data

    def never(data):
        raise AssertionError("a step from the current version ran")

    monkeypatch.setattr(module, "MIGRATIONS", {1: rename, 4: lambda d: d | {"device": "cpu"},
                                               VERSION: never})
    data = {"version": 1, "colour": "dark"}
    assert Settings.from_dict(data) == Settings(theme="dark", device="cpu")
    assert data == {"version": 1, "colour": "dark"} and calls == [data]
    assert Settings.from_dict({"version": 2, "colour": "dark"}) == Settings(device="cpu")
    for version in (None, "3", 0, -2, 1):  # missing or not a version: version 1
        assert Settings.from_dict({"version": version, "colour": "dark"}).theme == "dark"
    assert Settings.from_dict({"colour": "dark"}).theme == "dark"
    assert Settings.from_dict({"version": 3, "colour": "dark"}) == Settings(device="cpu")
    assert Settings.from_dict({"version": VERSION, "colour": "dark"}) == Settings()
    assert len(calls) == 7


@pytest.mark.parametrize("data", [None, [], "light", 3, {"version": "5"}, {"version": 0},
                                  {"version": -2}, {"version": True}])
def test_settings_that_are_not_settings_give_the_defaults(data, caplog):
    from creative_studio.core.settings import Settings

    settings = Settings.from_dict(data)
    assert settings.theme == "light" and settings.recent_files == []
    assert settings.servers == [] and settings.model_process is True


def test_settings_fields_of_the_wrong_type_fall_back_one_by_one(caplog):
    from creative_studio.core.settings import VERSION, Settings

    settings = Settings.from_dict({
        "version": VERSION, "theme": 3, "device": "cuda", "allow_downloads": "yes",
        "recent_files": ["/a", 7, "/b"], "cpu_threads": 2.0, "model_process": 0,
        "folders": {"image": "/i", "midi": 3, "4": "/x"}, "unknown": 1})
    assert settings.theme == "light" and settings.device == "cuda"
    assert settings.allow_downloads is False and settings.cpu_threads == 0
    assert settings.model_process is True
    assert settings.recent_files == ["/a", "/b"]
    assert settings.folders == {"image": "/i", "4": "/x"}
    assert caplog.messages == [f"setting {name} has the wrong type; default used"
                               for name in ("theme", "allow_downloads", "model_process",
                                            "cpu_threads")]
    # a newer file is read for the fields this version knows
    newer = Settings.from_dict({"version": VERSION + 3, "theme": "dark", "future": [1]})
    assert newer.theme == "dark" and newer.version == VERSION


def test_settings_are_saved_read_back_and_survive_a_damaged_file(studio_home, caplog):
    from creative_studio.core.settings import MAX_RECENT, VERSION, Settings

    assert Settings.load() == Settings()  # no file yet
    settings = Settings(theme="dark", cpu_threads=4, folders={"image": "/pics"})
    for n in range(MAX_RECENT + 3):
        settings.add_recent(studio_home / f"p{n}.csproj")
    settings.add_recent(studio_home / "p5.csproj")  # again: to the front, once
    assert len(settings.recent_files) == MAX_RECENT
    assert settings.recent_files[0] == str((studio_home / "p5.csproj").resolve())
    assert settings.recent_files.count(settings.recent_files[0]) == 1
    assert settings.recent_files[1] == str((studio_home / f"p{MAX_RECENT + 2}.csproj").resolve())
    settings.save()
    assert Settings.path() == studio_home / "config" / "settings.json"
    text = Settings.path().read_text()
    assert json.loads(text)["version"] == VERSION and text.startswith('{\n  "theme": "dark"')
    assert Settings.load() == settings
    Settings.path().write_text("{not json")
    assert Settings.load() == Settings()
    assert caplog.messages == ["settings unreadable, using defaults: Expecting property name "
                               "enclosed in double quotes: line 1 column 2 (char 1)"]
    Settings.path().unlink()
    Settings.path().mkdir()  # a folder where the file should be: unreadable, not a crash
    assert Settings.load() == Settings()


# -- the log ------------------------------------------------------------------------------------
def test_the_log_goes_to_one_rotating_file_and_its_tail_is_readable(studio_home):
    import logging
    import warnings

    from creative_studio.core import logs

    foreign = logging.NullHandler()  # a handler the studio did not add stays
    logging.getLogger("plugins").addHandler(foreign)
    shown = warnings.showwarning
    path = logs.setup(logging.DEBUG)
    again = logs.setup(logging.INFO)  # set up twice: one handler each, the newer one
    assert warnings.showwarning is shown  # Python's warnings are not routed to the log
    assert foreign in logging.getLogger("plugins").handlers
    logging.getLogger("plugins").removeHandler(foreign)
    assert path == again == studio_home / "data" / "logs" / "studio.log"
    try:
        for name in ("creative_studio", "plugins"):
            logger = logging.getLogger(name)
            ours = [h for h in logger.handlers if getattr(h, "_studio", False)]
            assert len(ours) == 1 and logger.level == logging.INFO
            assert ours[0].maxBytes == logs.MAX_BYTES and ours[0].backupCount == logs.BACKUPS
        logging.getLogger("creative_studio.test").info("written é")
        logging.getLogger("plugins.test").debug("not written")
        logging.getLogger("plugins.test").warning("also written")
        for handler in logging.getLogger("plugins").handlers:
            handler.flush()
        text = logs.tail(path)
        assert "INFO MainThread creative_studio.test: written é" in text
        assert "WARNING MainThread plugins.test: also written" in text
        assert "not written" not in text
        assert logs.tail(path, limit=12) == text[-12:]
        assert text.startswith(time.strftime("%Y-"))  # from the first byte
        big = studio_home / "big.log"
        big.write_bytes(b"\xff" + b"x" * 200_000 + b"\xfe!")
        assert logs.tail(big) == "x" * 199_998 + "\ufffd!"  # 200,000 bytes, never raises
        assert logs.log_file("models.log") == path.with_name("models.log")
        assert logs.log_file() == path
        assert logs.tail(studio_home / "nothing.log").startswith("(the log cannot be read: ")
    finally:
        drop_studio_log()


def test_a_log_folder_that_cannot_be_made_means_no_log(studio_home):
    from creative_studio.core import logs

    (studio_home / "data").mkdir(parents=True)
    (studio_home / "data" / "logs").write_text("a file where the folder should be")
    assert logs.setup() is None


# -- the Hugging Face Hub -------------------------------------------------------------------------
def test_hub_snapshots_ask_only_the_cache_unless_downloads_are_allowed(monkeypatch, tmp_path,
                                                                       caplog):
    import logging

    import huggingface_hub

    caplog.set_level(logging.INFO, logger="creative_studio.core.hub")

    from creative_studio.core import hub

    calls = []

    def snapshot_download(repo, local_files_only):
        calls.append((repo, local_files_only))
        if repo == "here/model":
            return str(tmp_path)
        raise OSError("no route to host")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    assert hub.snapshot("here/model") == tmp_path and calls[-1] == ("here/model", True)
    assert hub.snapshot("here/model", allow_downloads=True) == tmp_path
    assert calls[-1] == ("here/model", False)
    with pytest.raises(ModelError, match=r"^'gone/model' is not in the local Hugging Face "
                       r"cache and downloads are off \(Preferences → Allow model downloads\)"):
        hub.snapshot("gone/model", "LoRA")
    with pytest.raises(ModelError, match="^Could not download the LoRA 'gone/model': no route"):
        hub.snapshot("gone/model", "LoRA", allow_downloads=True)
    with pytest.raises(ModelError, match="^Could not download the model 'gone/model': no route"):
        hub.snapshot("gone/model", allow_downloads=True)
    assert caplog.messages[-1] == "hub snapshot of gone/model failed: no route to host"
    assert hub.is_cached("here/model") and not hub.is_cached("gone/model")
    assert calls[-1] == ("gone/model", True)


# -- variations ---------------------------------------------------------------------------------
def test_variations_step_the_seed_and_group_only_several():
    from creative_studio.core.jobs import MAX_SEED, Request, variations

    request = Request("image", "generate", "a cat", {"steps": 4}, seed=MAX_SEED - 1)
    one = variations(request, 1)
    assert len(one) == 1 and one[0].seed == MAX_SEED - 1 and one[0].params == {"steps": 4}
    assert one[0] is not request
    assert variations(request, 0)[0].params == {"steps": 4}
    three = variations(request, 3)
    assert [v.seed for v in three] == [MAX_SEED - 1, MAX_SEED, 0]
    groups = {v.params["group"] for v in three}
    assert len(groups) == 1 and len(groups.pop()) == 12
    assert [v.params["alternative"] for v in three] == [1, 2, 3]
    assert all(v.prompt == "a cat" and v.params["steps"] == 4 for v in three)
    assert request.params == {"steps": 4}  # the original is untouched
    assert variations(request, 2)[0].params["group"] != three[0].params["group"]


# -- background imports -------------------------------------------------------------------------
def test_preload_imports_once_per_process_and_survives_failures(monkeypatch, caplog, tmp_path):
    from creative_studio.workers import preload

    probe = tmp_path / "studio_preload_probe.py"
    probe.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "studio_preload_probe", raising=False)
    monkeypatch.setattr(preload, "_started", False)
    monkeypatch.delenv("CREATIVE_STUDIO_NO_PRELOAD", raising=False)
    assert preload.preload([]) is None and preload._started is False
    thread = preload.preload(["no_such_module_here", "studio_preload_probe"])
    assert thread.name == "studio-preload" and thread.daemon
    thread.join(10)
    assert not thread.is_alive() and "studio_preload_probe" in sys.modules
    [record] = caplog.records  # one failure, with its traceback, in the studio's log
    assert record.getMessage() == "preloading no_such_module_here failed"
    assert record.name == "creative_studio.workers.preload"
    assert record.exc_info and record.exc_info[0] is ModuleNotFoundError
    assert preload.preload(["colorsys"]) is None  # once per process
    forced = preload.preload(["colorsys"], force=True)
    assert forced is not None
    forced.join(10)
    monkeypatch.setattr(preload, "_started", False)
    monkeypatch.setenv("CREATIVE_STUDIO_NO_PRELOAD", "1")
    assert preload.preload(["colorsys"]) is None and preload._started is False


# -- imports ------------------------------------------------------------------------------------
def test_files_are_imported_as_items_with_what_their_readers_found(tmp_path):
    import io

    from PIL import Image

    from creative_studio.core.errors import BadInput
    from creative_studio.core.project import ProjectStore
    from creative_studio.io import imports
    from creative_studio.io.midi import Note, write_midi

    picture = tmp_path / "Cat.JPEG"
    buffer = io.BytesIO()
    Image.new("RGB", (7, 5), "red").save(buffer, "JPEG")
    picture.write_bytes(buffer.getvalue())
    tune = tmp_path / "tune.MID"
    tune.write_bytes(write_midi([Note(0, 1, 60), Note(1, 1, 64)], 100, (3, 4)))
    notes = tmp_path / "notes.txt"
    notes.write_text("words")
    store = ProjectStore.create(tmp_path / "p.csproj")
    try:
        item_id, image = imports.import_image(store, "upscale", picture)
        item = store.item(item_id)
        assert image.size == (7, 5) and item.metadata == {"width": 7, "height": 5}
        assert (item.plugin, item.kind, item.title) == ("upscale", "image", "Cat.JPEG")
        assert item.request.task == "import"
        assert item.request.params == {"filename": "Cat.JPEG"}
        assert item.model["name"] == "file" and item.model["ref"] == "Cat.JPEG"
        assert item.device == "none"
        [asset] = item.assets
        assert (asset.role, asset.mime, asset.name) == ("image", "image/jpeg", "Cat.JPEG")
        assert store.asset_bytes(asset.id) == picture.read_bytes()

        midi_id = imports.import_file(store, "music", tune, "audio/midi")
        item = store.item(midi_id)
        assert item.metadata == {"notes": 2, "tempo": 100.0, "time_signature": "3/4"}
        assert [(a.role, a.mime) for a in item.assets] == [("midi", "audio/midi")]
        text_id = imports.import_file(store, "text", notes, "text/plain")
        item = store.item(text_id)
        assert [(a.role, a.mime) for a in item.assets] == [("text", "text/plain")]
        assert store.asset_bytes(item.assets[0].id) == b"words" and item.metadata == {}
        anything = imports.import_file(store, "x", notes, "/plain")
        assert store.item(anything).assets[0].role == "file"
        assert store.item(imports.import_file(store, "upscale", picture, "image/*")).metadata \
            == {"width": 7, "height": 5}
        with pytest.raises(BadInput, match="^notes.txt is not an image the studio can read"):
            imports.import_file(store, "upscale", notes, "image/png")
        with pytest.raises(BadInput, match="^notes.txt is not a MIDI file"):
            imports.import_file(store, "music", notes, "audio/midi")
        odd = tmp_path / "picture.data"
        odd.write_bytes(buffer.getvalue())  # a picture whatever its name says
        [asset] = store.item(imports.import_image(store, "upscale", odd)[0]).assets
        assert asset.mime == "image/png"
        big = tmp_path / "big.mid"
        with big.open("wb") as out:
            out.truncate(9 << 20)
        with pytest.raises(BadInput, match="big.mid is 9 MB"):
            imports.import_midi(store, "music", big)
        with pytest.raises(OSError):
            imports.import_image(store, "upscale", tmp_path / "missing.png")
        assert store.count() == 6 and store.check() == {}  # every recipe reads back
    finally:
        store.close()


def test_mime_types_by_name_and_the_files_a_folder_gives(tmp_path):
    from creative_studio.io import imports

    assert imports.mime_of(Path("a.TIF")) == "image/tiff"
    assert imports.mime_of(Path("a.webp")) == "image/webp"
    assert imports.mime_of(Path("a.Midi")) == imports.mime_of(Path("b.mid")) == "audio/midi"
    assert imports.mime_of(Path("a.txt")) == "text/plain"
    assert imports.mime_of(Path("a.unknownthing")) == "application/octet-stream"
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("b.png", "a.jpg", "c.mid", "d.txt"):
        (folder / name).write_bytes(b"x")
    (folder / "sub.png").mkdir()  # a folder named like a picture is not a file
    named = tmp_path / "named.txt"
    assert imports.input_files([folder, named], "image") == [folder / "a.jpg", folder / "b.png",
                                                            named]
    assert imports.input_files([folder], "audio/midi") == [folder / "c.mid"]
    assert imports.input_files([named, folder], "audio") == [named, folder / "c.mid"]
    assert imports.input_files([named] * (imports.MAX_BATCH + 5), "image") == \
        [named] * imports.MAX_BATCH


# -- MIDI in and out ----------------------------------------------------------------------------
def midi_bytes(*tracks, ticks=480, kind=1) -> bytes:
    """A MIDI file of mido tracks, each a list of messages (times are deltas)."""
    import io

    import mido

    midi = mido.MidiFile(type=kind, ticks_per_beat=ticks)
    for messages in tracks:
        midi.tracks.append(mido.MidiTrack(messages))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def on_off(pitch, start, length, channel=0, velocity=80):
    import mido

    return [mido.Message("note_on", note=pitch, velocity=velocity, channel=channel, time=start),
            mido.Message("note_off", note=pitch, velocity=0, channel=channel, time=length)]


def test_written_midi_has_a_conductor_and_one_track_per_part_on_the_bar_line():
    import io

    import mido

    from creative_studio.io import midi

    parts = [midi.Part([midi.Note(0, 1, 60, 100), midi.Note(1, 0.5, 200, 0),
                        midi.Note(3.5, 2, 64), midi.Note(9, 1, 65), midi.Note(2, 0, 50)],
                       program=130, name="Lead ♭♯ ☃"),
             midi.Part([midi.Note(-1, 2, 48), midi.Note(-1, 1, 47)], program=33)]
    parts += [midi.Part([midi.Note(0, 1, 40)]) for _ in range(9)]
    data = midi.write_parts(parts, 90, (3, 4), key=(2, "dorian"), recipe='{"a": 1}',
                            name="Song é", length=4.5)
    song = mido.MidiFile(file=io.BytesIO(data))
    assert song.type == 1 and song.ticks_per_beat == midi.TICKS == 480
    conductor = song.tracks[0]
    assert [m.type for m in conductor] == ["track_name", "set_tempo", "time_signature",
                                           "key_signature", "text", "end_of_track"]
    assert conductor[0].name == "Song é" and conductor[1].tempo == mido.bpm2tempo(90)
    assert (conductor[2].numerator, conductor[2].denominator) == (3, 4)
    assert conductor[3].key == "C" and conductor[4].text == 'creative-studio recipe: {"a": 1}'
    assert sum(m.time for m in conductor) == 4.5 * 480  # every track ends on the bar line
    lead = song.tracks[1]
    assert lead[0].type == "track_name" and lead[0].name == lead[1].name == "Lead b# "
    assert lead[2].type == "program_change" and lead[2].program == 2 and lead[2].channel == 0
    timeline, now = [], 0
    for message in lead[3:]:
        now += message.time
        timeline.append((now, message.type, getattr(message, "note", None),
                         getattr(message, "velocity", None)))
    assert timeline == [(0, "note_on", 60, 100), (480, "note_off", 60, 0),
                        (480, "note_on", 127, 1), (720, "note_off", 127, 0),
                        (960, "note_on", 50, 90), (990, "note_off", 50, 0),
                        (1680, "note_on", 64, 90), (2160, "note_off", 64, 0),
                        (2160, "end_of_track", None, None)]
    bass = song.tracks[2]
    assert bass[0].name == "Electric Bass (finger)" and bass[2].program == 33
    assert bass[2].channel == 1 and [m.time for m in bass[3:5]] == [0, 480]  # from 0, not -1
    channels = [track[2].channel for track in song.tracks[1:]]
    assert channels == [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11] and 9 not in channels  # drums
    assert all(sum(m.time for m in track) == 2160 for track in song.tracks)
    assert midi.length_seconds(data) == pytest.approx(4.5 * 60 / 90)


def test_written_midi_without_a_length_ends_on_its_last_note():
    import io

    import mido

    from creative_studio.io import midi

    data = midi.write_midi([midi.Note(1, 2, 60), midi.Note(0, 1, 62)], 120, (4, 4))
    song = mido.MidiFile(file=io.BytesIO(data))
    assert [m.type for m in song.tracks[0]] == ["track_name", "set_tempo", "time_signature",
                                                "end_of_track"]
    assert song.tracks[0][0].name == "Creative Studio"
    assert song.tracks[1][0].name == "Acoustic Grand Piano"
    assert all(sum(m.time for m in track) == 3 * 480 for track in song.tracks)
    assert midi.recipe_of(data) == "" and midi.length_seconds(data) == pytest.approx(1.5)
    content = midi.read_notes(data)
    assert [(n.start, n.duration, n.pitch, n.velocity) for n in content.notes] == \
        [(0, 1, 62, 90), (1, 2, 60, 90)]
    assert content.time_signature == (4, 4) and content.tempo == pytest.approx(120)
    marked = midi.with_recipe(data, "second")
    assert midi.recipe_of(marked) == "second"
    again = midi.with_recipe(midi.write_midi([midi.Note(0, 1, 60)], 120, (4, 4),
                                             recipe="first"), "second")
    assert midi.recipe_of(again) == "second"
    texts = [m.text for t in mido.MidiFile(file=io.BytesIO(again)).tracks for m in t
             if m.type == "text"]
    assert texts == ["creative-studio recipe: second"]
    assert midi.read_notes(again).notes == midi.read_notes(
        midi.write_midi([midi.Note(0, 1, 60)], 120, (4, 4))).notes  # timing kept
    assert [m.type for m in mido.MidiFile(file=io.BytesIO(again)).tracks[0]][:1] == ["text"]
    late = midi_bytes([mido.MetaMessage("text", text="creative-studio recipe: old", time=240)]
                      + on_off(60, 240, 480))  # the old recipe 240 ticks in, a note after it
    notes = midi.read_notes(midi.with_recipe(late, "new")).notes
    assert [(n.start, n.duration) for n in notes] == [(1.0, 1.0)]


def test_key_signatures_are_named_as_a_score_writes_them():
    from creative_studio.io.midi import key_signature_name

    assert key_signature_name(9, "minor") == "Am" and key_signature_name(13, "minor") == "C#m"
    assert key_signature_name(2, "dorian") == "C" and key_signature_name(7, "mixolydian") == "C"
    assert key_signature_name(6, "major") == "F#" and key_signature_name(3, "lydian") == "Eb"
    assert key_signature_name(-1, "major") == "B"


def test_midi_files_are_read_as_pitched_notes_with_their_meter_and_tempo():
    import mido

    from creative_studio.io import midi

    meta = [mido.MetaMessage("time_signature", numerator=6, denominator=8),
            mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(400))]
    drums = on_off(36, 0, 96, channel=9)
    data = midi_bytes(meta, on_off(67, 96, 48, velocity=70) + on_off(60, 0, 96), drums,
                      on_off(40, 0, 192), ticks=96)
    content = midi.read_notes(data)
    assert [(n.start, n.duration, n.pitch, n.velocity, n.voice) for n in content.notes] == \
        [(0.0, 2.0, 40, 80, 1), (1.0, 0.5, 67, 70, 0), (1.5, 1.0, 60, 80, 0)]
    assert content.time_signature == (6, 8) and content.tempo == midi.MAX_TEMPO
    slow = midi_bytes([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(5)),
                       mido.MetaMessage("time_signature", numerator=33, denominator=4)],
                      on_off(60, 0, 480))
    content = midi.read_notes(slow)
    assert content.tempo == midi.MIN_TEMPO and content.time_signature == (4, 4)
    odd = midi_bytes([mido.MetaMessage("time_signature", numerator=5, denominator=64)],
                     on_off(60, 0, 480), kind=1)
    assert midi.read_notes(odd).time_signature == (4, 4)
    assert midi.read_notes(midi_bytes(on_off(60, 0, 480), kind=0)).tempo == 120
    seven = midi_bytes([mido.MetaMessage("time_signature", numerator=7, denominator=16)],
                       on_off(60, 0, 480))
    assert midi.read_notes(seven).time_signature == (7, 16)
    fast = midi_bytes([mido.MetaMessage("time_signature", numerator=9, denominator=32)],
                      on_off(60, 0, 480))
    assert midi.read_notes(fast).time_signature == (9, 32)
    # a note of no length is skipped, the notes after it are read
    blip = midi_bytes(on_off(50, 0, 0) + on_off(52, 0, 480) + on_off(55, 0, 480))
    assert [n.pitch for n in midi.read_notes(blip).notes] == [52, 55]


@pytest.mark.parametrize("data, message", [
    (b"", "^song.mid is not a MIDI file.$"),
    (b"MThd" + bytes(9), "^song.mid is not a MIDI file.$"),
    (b"RIFF" + bytes(20), "^song.mid is not a MIDI file.$"),
    (b"MThd\0\0\0\x06\0\x02\0\x01\x01\xe0", r"^song.mid is a type-2 MIDI file \(independent "
     r"patterns\), which the studio cannot continue: save it as type 0 or 1 in your DAW\.$"),
    (b"MThd\0\0\0\x06\0\x07\0\x01\x01\xe0", r"^song.mid is not a MIDI file the studio can "
                                             r"read \(format 7\).$"),
    (b"MThd\0\0\0\x06\0\x01\0\x05\x01\xe0MTrk\0\0\xff\xff\x90", "^song.mid is damaged or "
                                                               "truncated"),
])
def test_what_is_not_usable_midi_is_said_plainly(data, message, caplog):
    import logging

    from creative_studio.core.errors import BadInput
    from creative_studio.io import midi

    caplog.set_level(logging.INFO, logger="creative_studio.io.midi")
    with pytest.raises(BadInput, match=message):
        midi.read_notes(data, "song.mid")
    if "damaged" in message:  # what the reader said is in the log, not in the message
        assert caplog.messages[0].startswith("song.mid: MIDI reader: ")


def test_empty_drum_only_huge_and_impossible_midi_is_refused(monkeypatch):
    import mido

    from creative_studio.core.errors import BadInput
    from creative_studio.io import midi

    with pytest.raises(BadInput, match="^The file has no notes.$"):
        midi.read_notes(midi_bytes([mido.MetaMessage("set_tempo", tempo=500000)]))
    with pytest.raises(BadInput, match="^The file has only drums"):
        midi.read_notes(midi_bytes(on_off(36, 0, 96, channel=9)))
    late = midi_bytes(on_off(60, 480 * midi.MAX_BEATS + 1, 480))
    with pytest.raises(BadInput, match="notes at impossible times .beyond 100,000 beats"):
        midi.read_notes(late)
    at_the_edge = midi_bytes(on_off(60, 480 * midi.MAX_BEATS, 480))
    assert midi.read_notes(at_the_edge).notes[0].start == midi.MAX_BEATS
    long = midi_bytes(on_off(60, 0, 480 * midi.MAX_BEATS + 1))
    with pytest.raises(BadInput, match="impossible times"):
        midi.read_notes(long)
    monkeypatch.setattr(midi, "MAX_NOTES", 3)
    four = midi_bytes([m for p in range(4) for m in on_off(60 + p, 0, 10)])
    with pytest.raises(BadInput, match="^The file has more than 3 notes: too large"):
        midi.read_notes(four)
    assert len(midi.read_notes(four[:0] + midi_bytes(
        [m for p in range(3) for m in on_off(60 + p, 0, 10)])).notes) == 3
    midi.check_size(midi.MAX_MIDI_BYTES, "x.mid")  # exactly the limit is read
    with pytest.raises(BadInput, match="^x.mid is 9 MB: larger than the 8 MB of MIDI"):
        midi.check_size(9 * 2**20, "x.mid")
    with pytest.raises(BadInput, match="larger than the 8 MB"):
        midi.check_size(midi.MAX_MIDI_BYTES + 1, "x.mid")


def test_midi_is_rendered_to_exactly_its_length_plus_the_release(monkeypatch, tmp_path):
    import io

    import numpy as np
    import pretty_midi
    import soundfile

    from creative_studio.io import midi

    data = midi.write_midi([midi.Note(0, 2, 60)], 120, (4, 4), length=4)  # 2 s
    monkeypatch.setenv("CREATIVE_STUDIO_SOUNDFONT", str(tmp_path / "none.sf2"))
    monkeypatch.setattr(midi, "SOUNDFONTS", ())
    assert midi.soundfont() is None
    samples, rate, engine = midi.render(data, 8000)
    assert engine == "sine (FluidSynth or a SoundFont is missing)" and rate == 8000
    assert midi.render(data)[1] == 44100  # CD rate unless asked
    assert soundfile.info(io.BytesIO(midi.render_wav(data)[0])).samplerate == 44100
    assert samples.dtype == np.float32 and np.abs(samples).max() == pytest.approx(0.8)
    wav, engine = midi.render_wav(data, 8000)
    audio, rate = soundfile.read(io.BytesIO(wav))
    assert rate == 8000 and len(audio) == round((2 + midi.RELEASE) * 8000)  # padded
    assert soundfile.info(io.BytesIO(wav)).subtype == "PCM_16"
    assert np.abs(audio[-100:]).max() == 0  # the padding is silence
    # a synthesis longer than the file is cut, with a short fade to silence
    long = np.ones(8000 * 5, dtype=np.float64)
    monkeypatch.setattr(pretty_midi.PrettyMIDI, "synthesize", lambda self, fs: long[:])
    wav, _ = midi.render_wav(data, 8000)
    audio, _ = soundfile.read(io.BytesIO(wav))
    assert len(audio) == 3 * 8000 and audio[0] == pytest.approx(0.8, abs=1e-4)
    fade = 8000 // 20
    assert audio[-fade - 1] == pytest.approx(0.8, abs=1e-4) and abs(audio[-1]) < 1e-3
    assert audio[-fade // 2] == pytest.approx(0.4, abs=0.01)
    exact = np.ones(3 * 8000, dtype=np.float64)  # exactly as long: neither cut nor faded
    monkeypatch.setattr(pretty_midi.PrettyMIDI, "synthesize", lambda self, fs: exact[:])
    audio, _ = soundfile.read(io.BytesIO(midi.render_wav(data, 8000)[0]))
    assert len(audio) == 3 * 8000 and audio[-1] == pytest.approx(0.8, abs=1e-4)
    monkeypatch.setattr(pretty_midi.PrettyMIDI, "synthesize",
                        lambda self, fs: np.zeros(10, dtype=np.float64))
    samples, _, _ = midi.render(data, 8000)  # silence stays silence (no 0 / 0)
    assert samples.tolist() == [0.0] * 10
    monkeypatch.setattr(pretty_midi.PrettyMIDI, "synthesize",
                        lambda self, fs: np.zeros(0, dtype=np.float64))
    samples, _, _ = midi.render(data, 8000)
    assert len(samples) == 0 and samples.dtype == np.float32
    # a SoundFont that exists is used first, from the setting or the usual places
    font = tmp_path / "My.sf2"
    font.write_bytes(b"x")
    monkeypatch.setenv("CREATIVE_STUDIO_SOUNDFONT", str(font))
    assert midi.soundfont() == font
    monkeypatch.delenv("CREATIVE_STUDIO_SOUNDFONT")
    monkeypatch.setattr(midi, "SOUNDFONTS", (str(tmp_path / "no.sf2"), str(font)))
    assert midi.soundfont() == font
    played = []
    monkeypatch.setattr(pretty_midi.PrettyMIDI, "fluidsynth",
                        lambda self, fs, synthesizer: played.append((fs, synthesizer)) or
                        np.full(10, 0.5))
    samples, _, engine = midi.render(data, 8000)
    assert engine == "FluidSynth, My.sf2" and played == [(8000, str(font))]  # (setup.sh
    assert samples.max() == pytest.approx(0.8)  # installs libfluidsynth and pyfluidsynth)
    monkeypatch.setattr(pretty_midi.PrettyMIDI, "fluidsynth",
                        lambda self, fs, synthesizer: 1 / 0)
    assert midi.render(data, 8000)[2].startswith("sine")


# -- pictures in and out ------------------------------------------------------------------------
def png_chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_of(*chunks: bytes) -> bytes:
    from creative_studio.io.images import PNG_SIGNATURE

    return PNG_SIGNATURE + b"".join(chunks) + png_chunk(b"IEND", b"")


def test_png_text_chunks_of_every_kind_are_read_without_the_pixels(monkeypatch):
    import zlib

    from creative_studio.io import images

    data = png_of(
        png_chunk(b"tEXt", b"plain\0caf\xe9"),
        png_chunk(b"zTXt", b"packed\0\0" + zlib.compress(b"deflated text")),
        png_chunk(b"iTXt", b"utf\0\0\0en\0Titel\0" + "ünïcode".encode()),
        png_chunk(b"iTXt", b"zutf\0\1\0\0\0" + zlib.compress("ßig".encode())),
        png_chunk(b"tEXt", b"plain\0second is ignored"),
        png_chunk(b"tEXt", b"no separator"),
        png_chunk(b"zTXt", b"broken\0\0not zlib"),
        png_chunk(b"IDAT", b"\0" * 5),
        png_chunk(b"tEXt", b"K" * 100 + b"\0long key"))
    assert images.png_text(data) == {"plain": "café", "packed": "deflated text",
                                     "utf": "ünïcode", "zutf": "ßig", "K" * 79: "long key"}
    # nothing after IEND, and a chunk longer than the file ends the reading
    after_end = data + png_chunk(b"tEXt", b"late\0x")
    assert "late" not in images.png_text(after_end)
    cut = png_of(png_chunk(b"tEXt", b"a\0b"))[:-12] + png_chunk(b"tEXt", b"c\0d")[:-6]
    assert images.png_text(cut) == {"a": "b"}
    assert images.png_text(images.PNG_SIGNATURE + b"\0\0\0") == {}
    with pytest.raises(BadInput, match="^x.jpg is not a PNG the studio can read.$"):
        images.png_text(b"\xff\xd8\xff" + data, "x.jpg")
    # the text budget: a chunk beyond it ends the reading; a zTXt bomb stops inflating
    monkeypatch.setattr(images, "MAX_TEXT_BYTES", 10)
    limited = png_of(png_chunk(b"tEXt", b"a\0" + b"1" * 6), png_chunk(b"tEXt", b"b\0" + b"2" * 4),
                     png_chunk(b"tEXt", b"c\0" + b"3"))
    assert images.png_text(limited) == {"a": "111111", "b": "2222"}
    over = png_of(png_chunk(b"tEXt", b"a\0" + b"1" * 6), png_chunk(b"tEXt", b"b\0" + b"2" * 5))
    assert images.png_text(over) == {"a": "111111"}
    bomb = png_of(png_chunk(b"zTXt", b"z\0\0" + zlib.compress(b"0" * 100_000)))
    assert images.png_text(bomb) == {}
    assert len(images._inflate(zlib.compress(b"0" * 1000), 10)) == 11
    monkeypatch.setattr(images, "MAX_CHUNKS", 2)
    assert images.png_text(png_of(png_chunk(b"IDAT", b""), png_chunk(b"IDAT", b""),
                                  png_chunk(b"tEXt", b"a\0b"))) == {}


def test_pictures_that_cannot_be_read_are_said_plainly(monkeypatch):
    import io

    from PIL import Image

    from creative_studio.io import images

    with pytest.raises(BadInput, match="^cat.png is empty.$"):
        images.decode_image(b"", "cat.png")
    with pytest.raises(BadInput, match="^cat.png is not an image the studio can read.$"):
        images.decode_image(b"hello", "cat.png")
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "blue").save(buffer, "PNG")
    good = buffer.getvalue()
    with pytest.raises(BadInput, match=r"^cat.png is damaged or truncated \(\w+\).$"):
        images.decode_image(good[:60], "cat.png")
    assert images.decode_image(good).size == (64, 64)
    previous = Image.MAX_IMAGE_PIXELS
    monkeypatch.setattr(images, "MAX_PIXELS", 64 * 64 - 1)
    with pytest.raises(BadInput, match="^cat.png is 64×64: larger than the 0 MP the studio"):
        images.decode_image(good, "cat.png")
    assert Image.MAX_IMAGE_PIXELS == previous  # Pillow's own limit is left as it was
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    with pytest.raises(BadInput, match="^cat.png is too large to open safely"):
        images.decode_image(good, "cat.png")  # Pillow's bomb check (over twice the limit)
    monkeypatch.setattr(images, "MAX_PIXELS", 64 * 64)
    assert images.decode_image(good).size == (64, 64)  # exactly the limit is read


def test_greys_of_every_depth_become_rgb_without_clipping():
    import numpy as np
    from PIL import Image

    from creative_studio.io.images import to_rgb

    sixteen = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    assert np.asarray(to_rgb(sixteen))[0, :, 0].tolist() == [0, 128, 255]
    for mode in ("I;16", "I;16L", "I;16B", "I;16N"):  # dark 16-bit greys stay dark
        raw = np.array([[0, 1000, 33025]], dtype=">u2" if mode == "I;16B" else "<u2")
        dark = Image.frombytes(mode, (3, 1), raw.tobytes())
        assert np.asarray(to_rgb(dark))[0, :, 0].tolist() == [0, 4, 129], mode
    assert np.asarray(to_rgb(Image.fromarray(np.array([[0, 1000, 33025]], dtype=np.int32))))[
        0, :, 0].tolist() == [0, 4, 129]  # 32-bit greys above 255 are read as 16-bit
    assert np.asarray(to_rgb(Image.fromarray(np.array([[0, 256]], dtype=np.int32))))[
        0, :, 0].tolist() == [0, 1]
    assert np.asarray(to_rgb(Image.fromarray(np.array([[0.9, 1.0]], dtype=np.float32))))[
        0, :, 0].tolist() == [229, 255]  # floats up to 1: 0-1
    assert np.asarray(to_rgb(Image.fromarray(np.array([[0.75, 1.5]], dtype=np.float32))))[
        0, :, 0].tolist() == [128, 255]  # beyond 1: scaled to their largest
    wide = Image.fromarray(np.array([[0, 1000, 65535]], dtype=np.int32))
    assert np.asarray(to_rgb(wide))[0, :, 1].tolist() == [0, 4, 255]
    narrow = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32))
    assert np.asarray(to_rgb(narrow))[0, :, 2].tolist() == [0, 100, 255]
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert np.asarray(to_rgb(unit))[0, :, 0].tolist() == [0, 128, 255]
    big = Image.fromarray(np.array([[0.0, 2.0, 4.0]], dtype=np.float32))
    assert np.asarray(to_rgb(big))[0, :, 0].tolist() == [0, 128, 255]
    negative = Image.fromarray(np.array([[-1.0, 0.5]], dtype=np.float32))
    assert np.asarray(to_rgb(negative))[0, :, 0].tolist() == [0, 128]
    rgba = Image.new("RGBA", (2, 1), (10, 20, 30, 0))
    assert to_rgb(rgba).mode == "RGB" and to_rgb(rgba).getpixel((0, 0)) == (10, 20, 30)
    assert to_rgb(sixteen).mode == "RGB" and to_rgb(sixteen).size == (3, 1)


def exif_with_size(width, height, software="Camera") -> bytes:
    from PIL import Image

    exif = Image.Exif()
    exif[0x0131] = software
    exif.get_ifd(0x8769)[0xA002] = width
    exif.get_ifd(0x8769)[0xA003] = height
    return exif.tobytes()


def test_exif_sizes_follow_the_picture_and_other_tags_stay():
    from PIL import Image

    from creative_studio.io.images import resized_exif

    assert resized_exif(None, 1, 1) is None and resized_exif(b"", 1, 1) is None
    data = Image.Exif()
    data.load(resized_exif(exif_with_size(10, 20), 40, 80))
    assert data[0x0131] == "Camera"
    assert data.get_ifd(0x8769)[0xA002] == 40 and data.get_ifd(0x8769)[0xA003] == 80
    plain = Image.Exif()
    plain[0x0131] = "Scanner"
    data.load(resized_exif(plain.tobytes(), 40, 80))
    assert data[0x0131] == "Scanner" and 0xA002 not in data.get_ifd(0x8769)
    only_width = Image.Exif()
    only_width.get_ifd(0x8769)[0xA002] = 5
    data.load(resized_exif(only_width.tobytes(), 7, 9))
    assert (data.get_ifd(0x8769)[0xA002], data.get_ifd(0x8769)[0xA003]) == (7, 9)
    only_height = Image.Exif()
    only_height.get_ifd(0x8769)[0xA003] = 5
    data.load(resized_exif(only_height.tobytes(), 7, 9))
    assert (data.get_ifd(0x8769)[0xA002], data.get_ifd(0x8769)[0xA003]) == (7, 9)


def test_exports_convert_keep_colour_and_carry_the_recipe():
    import io

    from PIL import Image, ImageCms

    from creative_studio.io import images

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = Image.new("RGBA", (4, 3), (200, 10, 10, 128))
    png = images.encode_png(source, {"parameters": "a cat, Steps: 4", "prompt": "{}",
                                     "workflow": "{}", "other": "dropped"}, icc,
                            exif_with_size(4, 3))
    assert images.png_text(png)["other"] == "dropped"
    again = images.convert_image(png, ".PNG", '{"seed": 1}')
    text = images.png_text(again)
    assert text == {"parameters": "a cat, Steps: 4", "prompt": "{}", "workflow": "{}",
                    "creative-studio": '{"seed": 1}'}
    opened = Image.open(io.BytesIO(again))
    assert opened.info["icc_profile"] == icc and opened.getexif().get_ifd(0x8769)[0xA002] == 4
    assert images.png_text(images.convert_image(png, ".png")).keys() == \
        {"parameters", "prompt", "workflow"}
    jpeg = images.convert_image(png, ".jpg", '{"seed": 1} é', quality=500)
    opened = Image.open(io.BytesIO(jpeg))
    assert opened.format == "JPEG" and opened.mode == "RGB" and opened.size == (4, 3)
    exif = opened.getexif()
    assert exif[0x0131] == "Creative Studio"
    assert exif.get_ifd(0x8769)[0x9286] == b'ASCII\0\0\0{"seed": 1} ?'
    assert opened.info["icc_profile"] == icc
    noisy = images.encode_png(Image.effect_noise((64, 64), 60).convert("RGB"))
    sizes = [len(images.convert_image(noisy, ".jpeg", "r", quality=q)) for q in (-5, 50, 500)]
    assert sizes[0] < sizes[1] < sizes[2]  # the quality asked for, held to 1-100
    assert sizes[0] == len(images.convert_image(noisy, ".jpeg", "r", quality=1))
    assert sizes[2] == len(images.convert_image(noisy, ".jpeg", "r", quality=100))
    webp = Image.open(io.BytesIO(images.convert_image(png, ".webp", "r")))
    assert webp.format == "WEBP" and webp.mode == "RGBA"
    tiff = Image.open(io.BytesIO(images.convert_image(png, ".tif", "r")))
    assert tiff.format == "TIFF" and tiff.getexif()[0x0131] == "Creative Studio"
    plain = Image.open(io.BytesIO(images.convert_image(png, ".tiff")))
    assert plain.getexif()[0x0131] == "Camera"  # no recipe: the picture's own EXIF stays
    bigger = images.convert_image(png, ".png", "r", scale=3)
    opened = Image.open(io.BytesIO(bigger))
    assert opened.size == (12, 9) and opened.getpixel((11, 8)) == (200, 10, 10, 128)
    assert images.png_text(bigger)["parameters"] == "a cat, Steps: 4"
    assert Image.open(io.BytesIO(images.convert_image(png, ".png", scale=1))).size == (4, 3)
    with pytest.raises(BadInput, match="^×5000 would make 20000×15000: too large to export.$"):
        images.convert_image(png, ".png", scale=5000)
    with pytest.raises(BadInput, match=r"^Cannot export images as '.gif': choose .png"):
        images.convert_image(png, ".gif")
    with pytest.raises(BadInput, match="^The stored image is not an image"):
        images.convert_image(b"junk", ".png")
    jpeg_in = images.convert_image(jpeg, ".png", "again")
    assert images.png_text(jpeg_in) == {"creative-studio": "again"}
    assert images.colour_and_exif(Image.new("L", (1, 1))) == (None, None)
    grey = Image.open(io.BytesIO(images.convert_image(images.encode_png(Image.new("L", (2, 2))),
                                                      ".jpg")))
    assert grey.mode == "L"


def test_items_are_exported_with_their_recipe_inside_or_beside(tmp_path):
    import io

    from PIL import Image

    from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
    from creative_studio.core.project import ProjectStore
    from creative_studio.io import export, images, midi

    store = ProjectStore.create(tmp_path / "p.csproj")
    try:
        def add(asset, prompt="a red fox! é", metadata=None, title=""):
            return store.item(store.add_item(
                Request("x", "generate", prompt, {"steps": 2}, seed=7),
                Result([asset] if asset else [], ModelIdentity("m", "ref"), "cpu",
                       metadata=metadata or {}, title=title)))

        buffer = io.BytesIO()
        Image.new("RGB", (3, 2), "red").save(buffer, "PNG")
        picture = add(Asset("image", "image/png", buffer.getvalue()))
        assert export.suggested_name(picture) == "a_red_fox_é.png"
        [written] = export.export_item(store, picture, tmp_path / "out.JPG", 50)
        exif = Image.open(written).getexif().get_ifd(0x8769)[0x9286]
        assert json.loads(exif[8:]) == picture.recipe()  # ASCII: the é escaped, not lost
        png = export.export_item(store, picture, tmp_path / "x2.png", scale=2)[0]
        assert Image.open(png).size == (6, 4)
        assert json.loads(images.png_text(png.read_bytes())["creative-studio"]) == \
            picture.recipe()
        raw = export.export_item(store, picture, tmp_path / "same.bin")[0]
        assert raw.read_bytes() == buffer.getvalue()  # an unknown suffix: the bytes as kept

        text = add(Asset("text", "text/plain; charset=utf-8", b"Once"), title="Tale: 1")
        assert export.suggested_name(text) == "Tale_1.txt"
        out, sidecar = export.export_item(store, text, tmp_path / "tale.txt")
        assert out.read_text() == "Once" and sidecar == tmp_path / "tale.recipe.json"
        assert json.loads(sidecar.read_text()) == text.recipe()
        assert sidecar.read_text().startswith('{\n  "')

        song = add(Asset("midi", "audio/midi", midi.write_midi([midi.Note(0, 1, 60)], 120,
                                                                (4, 4))),
                   metadata={"file_stem": "tune_x4"})
        assert export.suggested_name(song) == "tune_x4.mid"
        [mid] = export.export_item(store, song, tmp_path / "tune.MIDI")
        assert json.loads(midi.recipe_of(mid.read_bytes())) == song.recipe()
        wav, side = export.export_item(store, song, tmp_path / "tune.wav")
        assert wav.read_bytes()[:4] == b"RIFF" and side.name == "tune.recipe.json"
        [kept] = export.export_item(store, song, tmp_path / "tune.bin")
        assert kept.read_bytes() == store.asset_bytes(song.assets[0].id)

        nameless = add(Asset("audio", "audio/ogg", b"OggS"), prompt="", metadata={
            "file_stem": "  "})
        assert export.suggested_name(nameless) == f"{nameless.kind}.bin"
        unnamed = add(Asset("text", "text/plain", b"t"), prompt="???")
        assert export.suggested_name(unnamed) == unnamed.id[:8] + ".txt"
        # an id is project data: a crafted one never names a path (the Music panel writes
        # its drag-out file under this name)
        for crafted, name in (("/etc/passwd", "etc_pass.txt"), ("../../x", "x.txt"),
                              ("..", "item.txt"), ("/", "item.txt")):
            unnamed.id = crafted
            assert export.suggested_name(unnamed) == name
        empty = add(None)
        assert export.suggested_name(empty) == "a_red_fox_é.txt"
        with pytest.raises(StudioError, match="^This item has no output to export.$"):
            export.export_item(store, empty, tmp_path / "none.txt")
    finally:
        store.close()



# -- servers ------------------------------------------------------------------------------------
def test_servers_are_checked_as_the_user_typed_them(monkeypatch):
    from creative_studio.core.servers import ServerConfig

    server = ServerConfig.checked("  Lab GPU_1.b-2 ", " http://10.0.0.5:8000/v1// ")
    assert server == ServerConfig("Lab GPU_1.b-2", "http://10.0.0.5:8000/v1", "openai")
    assert server.to_dict() == {"name": "Lab GPU_1.b-2", "url": "http://10.0.0.5:8000/v1",
                                "kind": "openai"}
    assert server.secret_name == "server:Lab GPU_1.b-2"
    monkeypatch.setattr(secrets, "get", lambda name: f"key of {name}")
    assert server.api_key() == "key of server:Lab GPU_1.b-2"
    assert ServerConfig.checked("c", "https://host/", "comfyui").url == "https://host"
    assert ServerConfig.checked("c", "http://boX/").url == "http://boX"
    name_rule = (r"^A server name is 1–40 letters, digits, spaces, '\.', '_' or '-' "
                 r"\(no '/'\)\.$")
    for name in ("", " ", "a/b", "-a", "a" * 41):
        with pytest.raises(BadInput, match=name_rule):
            ServerConfig.checked(name, "http://h")
    assert ServerConfig.checked("a" * 40, "http://h").name == "a" * 40
    for url in ("ftp://h", "h:8000", "http://", "https:///v1", "mailto:x@y"):
        with pytest.raises(BadInput, match=r"^'.*' is not a server address: use "
                                           r"http://host:port \(or https://…\)\.$"):
            ServerConfig.checked("a", url)
    for url in ("http://user@h", "http://:secret@h", "http://h/?key=1", "http://h/#key",
                "http://u:p@h"):
        with pytest.raises(BadInput, match=r"^Put the API key in its own field, not in the "
                                           r"address\.$"):
            ServerConfig.checked("a", url)
    with pytest.raises(BadInput, match=r"^Unknown server kind 'OPENAI'\.$"):
        ServerConfig.checked("a", "http://h", "OPENAI")


def test_servers_from_the_settings_keep_only_valid_entries():
    import types

    from creative_studio.core import servers

    settings = types.SimpleNamespace(servers=[
        {"name": "a", "url": "http://a"}, "junk", {"name": "b/c", "url": "http://b"},
        {"name": "c", "url": "http://c", "kind": "comfyui"}, {"url": "http://d"},
        {"name": "a", "url": "http://second-a"}])
    names = [(s.name, s.kind) for s in servers.servers_of(settings)]
    assert names == [("a", "openai"), ("c", "comfyui"), ("a", "openai")]
    assert servers.find(settings, "a").url == "http://a"  # the first of that name
    assert servers.find(settings, "c").kind == "comfyui" and servers.find(settings, "x") is None
    assert [s.name for s in servers.of_kinds(settings, ["comfyui"])] == ["c"]
    assert len(servers.of_kinds(settings, [])) == 3
    assert servers.servers_of(types.SimpleNamespace()) == []
    assert servers.servers_of(types.SimpleNamespace(servers=None)) == []


UNDER_ASCII_LOCALE = """
import json, logging, os, sys
if os.environ.get("MUTANT_UNDER_TEST"):  # mutmut's names are UTF-8; this locale reads ASCII
    os.environ["MUTANT_UNDER_TEST"] = os.fsencode(os.environ["MUTANT_UNDER_TEST"]).decode()
from creative_studio.core import logs
from creative_studio.core.settings import Settings
assert sys.getfilesystemencoding() and __import__("locale").getencoding() != "utf-8"
Settings.path().write_text(json.dumps({"theme": "dark", "recent_files": ["/tmp/Caf\\u00e9.csproj"]},
                                      ensure_ascii=False), encoding="utf-8")
settings = Settings.load()
path = logs.setup()
logging.getLogger("creative_studio.x").warning("r\\u00e9sum\\u00e9 of %s", settings.recent_files[0])
print(logs.tail(path).splitlines()[-1].split(": ", 1)[1])
"""


def test_settings_and_the_log_are_utf8_whatever_the_locale(studio_home, tmp_path, capsys):
    """A machine whose locale is not UTF-8 (the C locale without coercion, or Windows'
    code pages): settings and the log are read and written as UTF-8 all the same. The
    script runs here (a UTF-8 locale) and in a process under the C locale."""
    import subprocess

    try:  # here
        exec(compile(UNDER_ASCII_LOCALE.replace("assert sys", "sys"), "script", "exec"), {})
    finally:
        drop_studio_log()
    assert capsys.readouterr().out.strip() == "résumé of /tmp/Café.csproj"
    home = tmp_path / "c-locale"  # and under the C locale
    env = dict(os.environ, LC_ALL="C", LANG="C", PYTHONUTF8="0", PYTHONCOERCECLOCALE="0",
               PYTHONIOENCODING="utf-8", CREATIVE_STUDIO_HOME=str(home))
    done = subprocess.run([sys.executable, "-c", UNDER_ASCII_LOCALE], cwd=ROOT, env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode("utf-8").strip() == "résumé of /tmp/Café.csproj"
    log = (home / "data" / "logs" / "studio.log").read_bytes()
    assert "résumé of /tmp/Café.csproj".encode() in log



# -- what failures say --------------------------------------------------------------------------
@pytest.mark.parametrize("exc, oom", [
    (MemoryError(), True), (RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"), True),
    (RuntimeError("[enforce fail at alloc_cpu.cpp] DefaultCPUAllocator: not enough memory"),
     True), (RuntimeError("can't allocate memory: you tried to allocate 8 GB"), True),
    (RuntimeError("shape mismatch"), False), (ValueError("out of memory"), False),
    (type("OutOfMemoryError", (RuntimeError,), {})("no words"), True),
    (type("Sub", (type("OutOfMemoryError", (Exception,), {}),), {})(), True),
    (OSError(12, "Cannot allocate memory"), False), (KeyError("x"), False),
])
def test_out_of_memory_is_known_by_type_or_by_the_allocators_words(exc, oom):
    from creative_studio.core.errors import OutOfMemory, is_out_of_memory

    assert is_out_of_memory(exc) is oom
    assert is_out_of_memory(OutOfMemory("the runner's own"))


@pytest.mark.parametrize("exc, says", [
    (BadInput("Empty prompt."), "Empty prompt."),
    (MemoryError(), "Out of memory while running the model: try a smaller model, fewer tokens "
                    "or a smaller batch, or close other programs."),
    (FileNotFoundError(2, "No such file or directory", "/x/a.png"), "File not found: /x/a.png"),
    (FileNotFoundError("gone"), "File not found: gone"),
    (PermissionError(13, "Permission denied", "/x/b"), "Permission denied: /x/b"),
    (PermissionError("nope"), "Permission denied: nope"),
    (OSError(28, "No space left on device"), "The disk is full: free some space and try again."),
    (OSError(5, "I/O: No space left"), "The disk is full: free some space and try again."),
    (OSError(30, "Read-only file system", "/media/cd/p.csproj"),
     "The disk is read-only: /media/cd/p.csproj. Choose a folder you can write to."),
    (OSError(30, "Read-only file system"),
     "The disk is read-only: [Errno 30] Read-only file system. Choose a folder you can write "
     "to."),
    (OSError(5, "Input/output error"), "OSError: [Errno 5] Input/output error"),
    (ValueError("bad value"), "ValueError: bad value"), (KeyError(), "KeyError"),
])
def test_every_failure_is_one_plain_paragraph(exc, says):
    from creative_studio.core.errors import describe

    assert describe(exc) == says



def test_stale_files_are_removed_one_by_one_whatever_fails(tmp_path, monkeypatch):
    import shutil

    old, fresh = time.time() - 3600.5, time.time() - 3599
    names = ("a.tmp", "b.tmp", "c.tmp", "d.tmp")
    for name in names:
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (old, old))
    os.utime(tmp_path / "d.tmp", (fresh, fresh))  # not yet an hour old
    (tmp_path / "e.tmp").mkdir()
    os.utime(tmp_path / "e.tmp", (old, old))
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        if self.name == "a.tmp":
            raise PermissionError(13, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    def rmtree(path, ignore_errors=False):  # a folder that cannot be removed whole
        if not ignore_errors:
            raise OSError(39, "Directory not empty", str(path))

    monkeypatch.setattr(Path, "unlink", unlink)
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    assert files.remove_stale(tmp_path, "*.tmp") == 3  # b, c and the folder's leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tmp", "d.tmp", "e.tmp"]


def test_random_seeds_are_any_seed():
    from creative_studio.core.jobs import MAX_SEED, random_seed

    seeds = {random_seed() for _ in range(50)}
    assert len(seeds) > 40 and all(0 <= s <= MAX_SEED for s in seeds)



def test_a_jobs_pace_is_measured_only_over_a_twentieth_or_more():
    from creative_studio.core.progress import Progress

    progress = Progress()
    assert progress.measured_rate() is None  # no step yet
    progress._first, progress._last = (10.0, 0.04), (11.0, 0.05)
    assert progress.measured_rate() is None  # a hundredth says too little
    progress._last = (12.0, 0.10)
    assert progress.measured_rate() == pytest.approx(0.03)
    progress._first, progress._last = (0.0, 0.0), (2.0, 0.05)  # exactly a twentieth
    assert progress.measured_rate() == pytest.approx(0.025)
    progress._first, progress._last = (10.0, 0.0), (10.0, 0.5)
    assert progress.measured_rate() is None  # no time passed



def test_an_eta_from_an_earlier_job_may_be_under_a_second():
    from creative_studio.core.progress import Progress

    progress = Progress()
    progress.prior_rate = 2.0  # fractions per second, from the last job on this model
    progress.update(0.0)
    assert progress.eta() == pytest.approx(0.5)
    progress.fraction = 1.0
    assert progress.eta() == 0.0


def test_hub_models_say_what_they_are_when_missing(monkeypatch, tmp_path):
    import huggingface_hub

    from creative_studio.core.models import ModelSource

    def offline(repo, local_files_only):
        raise OSError("offline")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    source = ModelSource("hub:org/lora", "hub", "lora", hub_id="org/lora", allow_downloads=True)
    with pytest.raises(ModelError, match="^Could not download the LoRA 'org/lora': offline"):
        source.local_path("LoRA")
    with pytest.raises(ModelError, match="^Could not download the model 'org/lora'"):
        source.local_path()
    local = ModelSource(str(tmp_path), "local", "mine", path=tmp_path)
    with pytest.raises(ModelError, match=r"^[\w-]+ is not a diffusers folder: it needs "
                                         r"model_index\.json \(save_pretrained writes one\)\.$"):
        local.folder_with("model_index.json", "diffusers", "save_pretrained writes one")
    with pytest.raises(ModelError, match=r"^[\w-]+ is not a VAE folder: it needs config\.json\.$"):
        local.folder_with("config.json", "VAE")
