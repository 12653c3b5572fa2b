from __future__ import annotations

from importlib import metadata

import pytest

from creative_studio.plugins import ManifestError, PluginManifest, PluginRegistry
from tests.helpers import write_plugin


def test_builtin_text_plugin_is_discovered_without_importing_it():
    import sys

    sys.modules.pop("plugins.text.generator", None)
    registry = PluginRegistry.discover()
    record = registry.get("text")
    assert record.ok
    assert record.manifest.modality == "text"
    assert record.manifest.default_model.id == "smollm2-135m-instruct"
    assert "plugins.text.generator" not in sys.modules


def test_broken_plugins_are_recorded_and_do_not_stop_the_others(tmp_path):
    write_plugin(tmp_path, "good", id="good")
    write_plugin(tmp_path, "missing-module", id="nomodule",
                 generator="tests.does_not_exist:Gen")
    (tmp_path / "badtoml").mkdir()
    (tmp_path / "badtoml" / "plugin.toml").write_text("id = [unclosed")
    (tmp_path / "unknownfield").mkdir()
    (tmp_path / "unknownfield" / "plugin.toml").write_text(
        'id="x"\nname="X"\nmodality="text"\ngenerator="a:b"\npanel="a:b"\ncolour="red"\n')
    write_plugin(tmp_path, "zz-dup", id="good", name="Duplicate")
    registry = PluginRegistry.discover([tmp_path], entry_points=False)
    errors = {r.origin.split("/")[-2]: r.error for r in registry.errors}
    assert "badtoml" in errors and "unknownfield" in errors and "zz-dup" in errors
    assert "colour" in errors["unknownfield"]
    assert registry.get("good").ok
    assert registry.get("good").load("generator").__name__ == "ReverseGenerator"
    with pytest.raises(ModuleNotFoundError):
        registry.get("nomodule").load("generator")
    assert "could not load generator" in registry.get("nomodule").error


def test_manifest_validation():
    base = {"id": "ok", "name": "Ok", "modality": "text", "generator": "a:b", "panel": "c:d"}
    assert PluginManifest.from_dict(base).id == "ok"
    taker = PluginManifest.from_dict({**base, "accepts": ["image/"]})
    assert taker.takes("image/png") and not taker.takes("audio/midi")
    assert not PluginManifest.from_dict(base).takes("image/png")
    assert PluginManifest.from_dict({**base, "modality": "speech"}).modality == "speech"
    bad_param = {"name": "x", "type": "int", "default": 1}
    for change in ({"modality": "Video Clips"}, {"modality": "text\n"}, {"generator": "nocolon"},
                   {"id": "Bad Id"}, {"tasks": [{"id": "a\n"}]},
                   {"schema_version": 2}, {"models": [{"id": "m"}]},
                   {"tasks": []}, {"tasks": [{"id": "a"}, {"id": "a"}]},
                   {"tasks": [{"id": "a", "prompt": "maybe"}]},
                   {"params": [{**bad_param, "type": "complex"}]},
                   {"params": [{**bad_param, "tasks": ["nowhere"]}]},
                   {"params": [bad_param, bad_param]},
                   {"params": [{**bad_param, "default": "one"}]},
                   {"params": [{**bad_param, "colour": "red"}]}):
        with pytest.raises(ManifestError):
            PluginManifest.from_dict({**base, **change})


def test_entry_point_plugins(monkeypatch):
    class EP:
        def __init__(self, name, value, obj):
            self.name, self.value, self._obj = name, value, obj

        def load(self):
            if isinstance(self._obj, Exception):
                raise self._obj
            return self._obj

    good = {"id": "thirdparty", "name": "Third", "modality": "image",
            "generator": "tests.fake_plugin:ReverseGenerator",
            "panel": "creative_studio.ui.panel:PluginPanel"}
    eps = [EP("third", "pkg:manifest", lambda: good),
           EP("broken", "pkg2:manifest", ImportError("no module named pkg2"))]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps)
    registry = PluginRegistry.discover()
    assert registry.get("thirdparty").ok
    assert registry.get("text").ok
    assert any("pkg2" in r.error for r in registry.errors)
