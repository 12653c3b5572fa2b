"""Loading text models: GGUF files (the embedded one too), transformers folders, Hub ids.

Which file a reference means is decided by core/models.py (one grammar for every plugin).

No torch/transformers import at module level: the panel imports this module to list
models without paying for them.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from creative_studio.core import files, paths
from creative_studio.core.errors import ModelError
from creative_studio.core.models import ModelSource
from creative_studio.core.provenance import weights_sha256


def kind_of(source: ModelSource) -> str:
    """"gguf" (a GGUF file), "folder" (a transformers folder) or "hub" (a Hub id)."""
    if source.source == "hub":
        return "hub"
    path = source.path
    assert path is not None
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"{path.name} is not a GGUF file; choose a .gguf file or a "
                             "transformers model folder.")
        return "gguf"
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a transformers model folder (no config.json).")
    return "folder"


def _gguf_cache(sha: str) -> Path:
    return paths.cache_dir() / "text" / sha[:24]


def is_converted(source: ModelSource) -> bool:
    """Whether a GGUF already has its safetensors cache (loads in about a second)."""
    if kind_of(source) != "gguf" or source.path is None:
        return True
    return (_gguf_cache(weights_sha256(source.path)) / "complete").is_file()


def load(source: ModelSource, device: str):
    """Load (model, tokenizer, sha256) for a ModelSource on ``device``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kind = kind_of(source)
    if kind == "gguf":
        assert source.path is not None
        sha = weights_sha256(source.path)
        folder = convert_gguf(source.path, sha)
    else:  # a folder, or a Hub repository from the cache (downloaded when allowed)
        folder = source.local_path("text model")
        sha = weights_sha256(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True,
                                                     dtype=torch.float32)
    except OSError as exc:
        raise ModelError(f"Could not load the text model {source.name}: {exc}") from exc
    except (ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"{source.name} is not a usable text model: {exc}") from exc
    model.eval()
    model.to(device)
    return model, tokenizer, sha


def convert_gguf(gguf: Path, sha: str) -> Path:
    """Dequantize a GGUF once into a safetensors folder in the cache; return that folder."""
    target = _gguf_cache(sha)
    if (target / "complete").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    files.remove_stale(target.parent, "*.tmp-*")  # a conversion a kill interrupted
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
