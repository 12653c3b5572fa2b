from __future__ import annotations

from pathlib import Path

FAKE_MANIFEST = """
schema_version = 1
id = "{id}"
name = "{name}"
modality = "text"
order = {order}
generator = "{generator}"
panel = "{panel}"

[[models]]
id = "reverse"
name = "Reverse"
source = "embedded"
default = true
"""


def write_plugin(root: Path, folder: str, *, id: str, name: str = "Fake", order: int = 50,
                 generator: str = "tests.fake_plugin:ReverseGenerator",
                 panel: str = "creative_studio.ui.panel:PluginPanel", extra: str = "") -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / "plugin.toml").write_text(FAKE_MANIFEST.format(
        id=id, name=name, order=order, generator=generator, panel=panel) + extra)
    return path
