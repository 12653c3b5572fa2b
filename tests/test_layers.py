"""Architecture rules: core never imports Qt; the window appears without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NO_QT = ["creative_studio/core", "creative_studio/plugins", "creative_studio/workers"]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_has_no_qt_import():
    offenders = []
    for folder in NO_QT:
        for path in (ROOT / folder).rglob("*.py"):
            if {"PySide6", "PyQt5", "PyQt6", "shiboken6"} & _imports(path):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# a DiffusionPipeline subclass must import diffusers to exist; it is imported only inside
# functions (plugins/image/models.load_pipeline), never at the top of another module
HEAVY_BY_DESIGN = {"plugins/image/pipeline.py": "plugins.image.pipeline",
                   "plugins/music/coconet.py": "plugins.music.coconet"}


def test_generators_import_heavy_libraries_lazily():
    for path in (ROOT / "plugins").rglob("*.py"):
        top_level = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                top_level.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                top_level.add(node.module if node.level == 0 else
                              f"{path.parent.relative_to(ROOT).as_posix().replace('/', '.')}"
                              f".{node.module}")
        roots = {name.split(".")[0] for name in top_level}
        relative = path.relative_to(ROOT).as_posix()
        if relative not in HEAVY_BY_DESIGN:
            assert not {"torch", "transformers", "diffusers"} & roots, path
            assert not set(HEAVY_BY_DESIGN.values()) & top_level, path


def test_window_builds_without_importing_torch(tmp_path):
    code = (
        "import sys, os\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from creative_studio.core.settings import Settings\n"
        "from creative_studio.plugins import PluginRegistry\n"
        "from creative_studio.ui.main_window import MainWindow\n"
        "w = MainWindow(PluginRegistry.discover(), Settings()); w.show(); app.processEvents()\n"
        "assert 'text' in w.panels, w.registry.errors\n"
        "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))\n"
        "w.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
