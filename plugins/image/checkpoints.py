"""Single-file Stable Diffusion checkpoints (A1111, Forge, ComfyUI, InvokeAI, Civitai): SD 1.x,
SD 2.x and SDXL in one ``.safetensors`` (or ``.ckpt``, read without unpickling code), opened
offline.

- **What it is** comes from the tensors alone: the header of a ``.safetensors`` is read (names
  and shapes, never the weights), so a folder of a hundred checkpoints is listed in moments.
  The family is told by its text encoders (CLIP ViT-L: 1.x; OpenCLIP ViT-H: 2.x; both CLIP-L
  and OpenCLIP bigG: SDXL), the UNet's and VAE's layout by their shapes.
- **How it loads.** diffusers' ``from_single_file`` converts the weights; the configs it needs
  (which would otherwise come from the Hub) are written here from the shapes, so a model of
  unusual width loads as well as the standard ones, and nothing is fetched. The CLIP tokenizer
  ships with the studio (``resources/models/clip-tokenizer``: OpenAI CLIP's BPE vocabulary,
  MIT). Family facts the shapes do not hold are the standard ones: heads (8 in 1.x, 64-channel
  heads in 2.x and SDXL), schedulers, the VAE's scale; SD 2.x v-prediction is told from the
  weights as ComfyUI tells it (a ``v_pred`` key, or the spread of one norm's bias).
- **Refused with a message**: layouts that are not these (Flux, SD3, a LoRA, an upscaler, an
  SDXL refiner…), damaged headers, and headers out of proportion to the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from creative_studio.core import files, paths
from creative_studio.core.errors import ModelError

UNET = "model.diffusion_model."
VAE = "first_stage_model."
CLIP_L = "cond_stage_model.transformer.text_model."  # SD 1.x
OPEN_CLIP = "cond_stage_model.model."  # SD 2.x (OpenCLIP ViT-H)
XL_CLIP_L = "conditioner.embedders.0.transformer.text_model."
XL_OPEN_CLIP = "conditioner.embedders.1.model."
FAMILIES = {"sd1": "Stable Diffusion 1.x", "sd2": "Stable Diffusion 2.x", "sdxl": "SDXL"}
SUFFIXES = (".safetensors", ".ckpt")
MAX_HEADER = 100 << 20  # a safetensors header above 100 MB is no model's
TOKENIZER = "models/clip-tokenizer"
# what else a file of tensors may be, told by a name it holds (for the refusal's message)
OTHER_LAYOUTS = (
    ("lora_unet_", "a LoRA (choose it as a LoRA, not as a model)"),
    ("lora_te", "a LoRA (choose it as a LoRA, not as a model)"),
    (".lora_down.", "a LoRA (choose it as a LoRA, not as a model)"),
    (".lora_A.", "a LoRA (choose it as a LoRA, not as a model)"),
    ("double_blocks.", "a Flux model, which the studio does not run yet"),
    ("joint_blocks.", "a Stable Diffusion 3 model, which the studio does not run yet"),
    ("conditioner.embedders.0.model.", "an SDXL refiner, which draws no picture by itself"),
    ("model.diffusion_model.input_blocks.10.0.skip_connection", "an upscaling diffusion model"),
    ("body.", "an upscaler (open it in the Upscale panel)"),
    ("model.0.weight", "an upscaler (open it in the Upscale panel)"),
    ("encoder.down_blocks.", "a diffusers VAE, not a whole checkpoint"),
)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file as its header describes it."""

    path: Path
    family: str  # sd1 | sd2 | sdxl
    shapes: dict[str, tuple[int, ...]] = field(repr=False)

    @property
    def title(self) -> str:
        return FAMILIES[self.family] + (" inpainting" if self.inpainting else "")

    @property
    def inpainting(self) -> bool:
        return self.shapes[UNET + "input_blocks.0.0.weight"][1] == 9


def _header(path: Path) -> dict:
    """The JSON header of a ``.safetensors`` (bounded; no weights read, no torch);
    ModelError for a file that is not one."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ModelError(f"{path.name} is not a safetensors file (too short).")
            (length,) = struct.unpack("<Q", head)
            if length > min(MAX_HEADER, size - 8):
                raise ModelError(f"{path.name} is not a safetensors file (its header claims "
                                 f"{length:,} bytes).")
            header = json.loads(handle.read(length))
    except OSError as exc:
        raise ModelError(f"{path.name} cannot be read ({exc.strerror or exc}).") from exc
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"{path.name} is not a safetensors file (damaged header).") from exc
    if not isinstance(header, dict):
        raise ModelError(f"{path.name} is not a safetensors file (damaged header).")
    return header


def _shapes(header: dict, name: str) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if not isinstance(shape, list) or not all(isinstance(n, int) and 0 <= n < 2**40
                                                   for n in shape):
            raise ModelError(f"{name} is damaged (tensor {key[:80]} has no shape).")
        shapes[key] = tuple(shape)
    return shapes


def _metadata(header: dict) -> dict[str, str]:
    found = header.get("__metadata__")
    if not isinstance(found, dict):
        return {}
    return {str(k): v for k, v in found.items() if isinstance(v, str)}


def read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a ``.safetensors`` from its header alone; ModelError for
    a file that is not one."""
    return _shapes(_header(path), path.name)


def read_header(path: Path) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """(tensor shapes, ``__metadata__`` strings) of a ``.safetensors``, the header read
    once; ModelError for a file that is not one."""
    header = _header(path)
    return _shapes(header, path.name), _metadata(header)


def metadata(path: Path) -> dict[str, str]:
    """The ``__metadata__`` strings of a ``.safetensors`` header (trainers keep a LoRA's
    trigger words, base model and name there); {} when there are none or it is unreadable."""
    try:
        return _metadata(_header(path))
    except ModelError:
        return {}


def family_of(shapes: dict[str, tuple[int, ...]], name: str = "The file") -> str:
    """sd1, sd2 or sdxl; ModelError saying what the file looks like otherwise."""
    if UNET + "input_blocks.0.0.weight" in shapes:
        if XL_OPEN_CLIP + "positional_embedding" in shapes and \
                XL_CLIP_L + "embeddings.token_embedding.weight" in shapes:
            return "sdxl"
        if OPEN_CLIP + "token_embedding.weight" in shapes:
            return "sd2"
        if CLIP_L + "embeddings.token_embedding.weight" in shapes:
            return "sd1"
    for marker, what in OTHER_LAYOUTS:
        if any(marker in key for key in shapes):
            raise ModelError(f"{name} looks like {what}.")
    raise ModelError(f"{name} is not a checkpoint the studio knows (SD 1.x, SD 2.x or SDXL "
                     "with its text encoders and VAE in one file).")


def inspect(path: Path) -> Checkpoint:
    """The checkpoint at ``path``, detected from its tensors; ModelError otherwise."""
    path = Path(path)
    if path.suffix.lower() == ".ckpt":
        path = safe_copy_of_ckpt(path)
    shapes = read_shapes(path)
    return Checkpoint(path, family_of(shapes, Path(path).name), shapes)


def safe_copy_of_ckpt(path: Path) -> Path:
    """A ``.ckpt`` (a pickle) read with ``torch.load(weights_only=True)``, which refuses any
    code, and kept as a ``.safetensors`` in the cache (once per file content)."""
    from creative_studio.core.provenance import weights_sha256

    digest = weights_sha256(path)
    target = paths.cache_dir() / "image" / "ckpt" / f"{digest[:20]}.safetensors"
    if target.is_file():
        return target
    import pickle
    import zipfile

    import torch
    from safetensors.torch import save_file

    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except (pickle.UnpicklingError, RuntimeError, zipfile.BadZipFile, EOFError,
            ValueError) as exc:
        raise ModelError(f"{path.name} cannot be read safely (only tensors are accepted in a "
                         f".ckpt; {str(exc).splitlines()[0][:200]}). Convert it to "
                         ".safetensors.") from exc
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(f"{path.name} holds no tensors by name.")
    tensors = {k: v.contiguous() for k, v in state.items()
               if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not tensors:
        raise ModelError(f"{path.name} holds no tensors.")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, target)
    return target


# -- configs from the shapes ---------------------------------------------------------------------
def _count(shapes, prefix: str) -> int:
    """How many numbered children ``prefix<N>.`` there are."""
    found = {int(k[len(prefix):].split(".")[0]) for k in shapes
             if k.startswith(prefix) and k[len(prefix):].split(".")[0].isdigit()}
    return max(found) + 1 if found else 0


def unet_config(checkpoint: Checkpoint) -> dict:
    s, family = checkpoint.shapes, checkpoint.family
    conv_in = s[UNET + "input_blocks.0.0.weight"]
    levels = 1 + sum(1 for k in s if k.startswith(UNET + "input_blocks.")
                     and k.endswith(".0.op.weight"))
    blocks = _count(s, UNET + "input_blocks.")
    per_level = (blocks - 1 - (levels - 1)) // levels  # resnets per level
    channels, depths, attention = [], [], []
    for level in range(levels):
        first = f"{UNET}input_blocks.{1 + level * (per_level + 1)}."
        channels.append(s[first + "0.out_layers.3.weight"][0])
        attention.append(first + "1.proj_in.weight" in s)
        depths.append(_count(s, first + "1.transformer_blocks."))
    context = next(v[1] for k, v in s.items() if k.endswith("attn2.to_k.weight"))
    linear = len(next(v for k, v in s.items() if k.endswith("proj_in.weight"))) == 2
    heads: int | list[int] = 8 if family == "sd1" else [max(1, c // 64) for c in channels]
    mid_depth = _count(s, UNET + "middle_block.1.transformer_blocks.")
    config = {
        "_class_name": "UNet2DConditionModel", "act_fn": "silu",
        "attention_head_dim": heads, "block_out_channels": channels,
        "center_input_sample": False, "cross_attention_dim": context,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D"
                           for a in reversed(attention)],
        "mid_block_type": "UNetMidBlock2DCrossAttn" if mid_depth else None,
        "downsample_padding": 1, "flip_sin_to_cos": True, "freq_shift": 0,
        "in_channels": conv_in[1], "out_channels": s[UNET + "out.2.weight"][0],
        "layers_per_block": per_level, "mid_block_scale_factor": 1, "norm_eps": 1e-5,
        "norm_num_groups": 32, "use_linear_projection": linear,
        "sample_size": {"sd1": 64, "sd2": 96, "sdxl": 128}[family],
        "transformer_layers_per_block": [max(1, d) for d in depths],
        "upcast_attention": family == "sd2",
    }
    if family == "sdxl":
        adm = s[UNET + "label_emb.0.0.weight"][1]
        config.update(addition_embed_type="text_time", addition_time_embed_dim=256,
                      projection_class_embeddings_input_dim=adm)
    if family == "sd2" and checkpoint.inpainting:
        config["sample_size"] = 64  # the 512-px inpainting model
    return config


def vae_config(checkpoint: Checkpoint) -> dict:
    s = checkpoint.shapes
    levels = _count(s, VAE + "encoder.down.")
    return {
        "_class_name": "AutoencoderKL", "act_fn": "silu",
        "block_out_channels": [s[f"{VAE}encoder.down.{i}.block.0.conv2.weight"][0]
                               for i in range(levels)],
        "down_block_types": ["DownEncoderBlock2D"] * levels,
        "up_block_types": ["UpDecoderBlock2D"] * levels,
        "in_channels": s[VAE + "encoder.conv_in.weight"][1],
        "out_channels": s[VAE + "decoder.conv_out.weight"][0],
        "latent_channels": s[VAE + "quant_conv.weight"][0] // 2,
        "layers_per_block": _count(s, VAE + "encoder.down.0.block."),
        "norm_num_groups": 32,
        "sample_size": {"sd1": 512, "sd2": 768, "sdxl": 1024}[checkpoint.family],
        "scaling_factor": 0.13025 if checkpoint.family == "sdxl" else 0.18215,
        "force_upcast": checkpoint.family == "sdxl",
    }


def clip_config(shapes, prefix: str, open_clip: bool, projection: bool = False,
                penultimate: bool = False) -> dict:
    """A CLIPTextModel(WithProjection) config: CLIP ViT-L (HF names) or OpenCLIP."""
    if open_clip:
        vocab, hidden = shapes[prefix + "token_embedding.weight"]
        positions = shapes[prefix + "positional_embedding"][0]
        layers = _count(shapes, prefix + "transformer.resblocks.")
        inner = shapes[prefix + "transformer.resblocks.0.mlp.c_fc.weight"][0]
        act = "gelu"
    else:
        vocab, hidden = shapes[prefix + "embeddings.token_embedding.weight"]
        positions = shapes[prefix + "embeddings.position_embedding.weight"][0]
        layers = _count(shapes, prefix + "encoder.layers.")
        inner = shapes[prefix + "encoder.layers.0.mlp.fc1.weight"][0]
        act = "quick_gelu"
    config = {
        "architectures": ["CLIPTextModelWithProjection" if projection else "CLIPTextModel"],
        "model_type": "clip_text_model", "attention_dropout": 0.0, "dropout": 0.0,
        "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1, "hidden_act": act,
        "hidden_size": hidden, "intermediate_size": inner, "initializer_factor": 1.0,
        "initializer_range": 0.02, "layer_norm_eps": 1e-5, "max_position_embeddings": positions,
        "num_attention_heads": max(1, hidden // 64),
        # SD 2.x conditions on the penultimate layer: its converted encoder stops there
        "num_hidden_layers": layers - 1 if penultimate else layers,
        "projection_dim": shapes[prefix + "text_projection"][1] if projection else hidden,
        "vocab_size": vocab, "torch_dtype": "float32",
    }
    return config


def _scheduler(family: str, prediction: str) -> dict:
    common = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
              "num_train_timesteps": 1000, "steps_offset": 1, "clip_sample": False,
              "set_alpha_to_one": False, "prediction_type": prediction}
    if family == "sdxl":
        return {"_class_name": "EulerDiscreteScheduler", "interpolation_type": "linear",
                "timestep_spacing": "leading", "use_karras_sigmas": False, **common}
    if family == "sd2":
        return {"_class_name": "DDIMScheduler", **common}
    return {"_class_name": "PNDMScheduler", "skip_prk_steps": True, **common}


def prediction_of(checkpoint: Checkpoint) -> str:
    """epsilon, or v_prediction for SD 2.x 768-v models (a ``v_pred`` key, or as ComfyUI
    tells it: the spread of the last output block's first norm bias, above 0.09)."""
    if "v_pred" in checkpoint.shapes:
        return "v_prediction"
    if checkpoint.family != "sd2" or checkpoint.inpainting:
        return "epsilon"
    key = UNET + "output_blocks.11.1.transformer_blocks.0.norm1.bias"
    if key not in checkpoint.shapes:
        return "epsilon"
    from safetensors import safe_open

    with safe_open(str(checkpoint.path), framework="pt") as handle:
        bias = handle.get_tensor(key).float()
    return "v_prediction" if float(bias.std(unbiased=False)) > 0.09 else "epsilon"


def _tokenizer(folder: Path, pad: str) -> None:
    source = (paths.resources_dir() / TOKENIZER)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(source / name, folder / name)
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CLIPTokenizer", "model_max_length": 77, "do_lower_case": True,
        "bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>", "pad_token": pad, "add_prefix_space": False,
        "errors": "replace"}, indent=1))


def configs(checkpoint: Checkpoint) -> dict[str, dict]:
    """Every config file of the pipeline folder ``from_single_file`` is pointed at."""
    s, family = checkpoint.shapes, checkpoint.family
    found = {"unet/config.json": unet_config(checkpoint),
             "vae/config.json": vae_config(checkpoint),
             "scheduler/scheduler_config.json": _scheduler(family, prediction_of(checkpoint))}
    if family == "sdxl":
        found["text_encoder/config.json"] = clip_config(s, XL_CLIP_L, False)
        found["text_encoder_2/config.json"] = clip_config(s, XL_OPEN_CLIP, True, True)
        found["model_index.json"] = {
            "_class_name": "StableDiffusionXLPipeline",
            "force_zeros_for_empty_prompt": True,
            "text_encoder": ["transformers", "CLIPTextModel"],
            "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "tokenizer_2": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "scheduler": ["diffusers", found["scheduler/scheduler_config.json"]["_class_name"]]}
    else:
        text = clip_config(s, OPEN_CLIP, True, penultimate=True) if family == "sd2" \
            else clip_config(s, CLIP_L, False)
        found["text_encoder/config.json"] = text
        found["model_index.json"] = {
            "_class_name": "StableDiffusionPipeline", "requires_safety_checker": False,
            "feature_extractor": [None, None], "safety_checker": [None, None],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
            "scheduler": ["diffusers", found["scheduler/scheduler_config.json"]["_class_name"]]}
    return found


def config_folder(checkpoint: Checkpoint) -> Path:
    """The pipeline's configs and tokenizers in the cache (written once per distinct set)."""
    found = configs(checkpoint)
    text = json.dumps(found, sort_keys=True)
    stamp = hashlib.sha256(text.encode() + (paths.resources_dir() / TOKENIZER).name.encode()
                           ).hexdigest()[:16]
    target = paths.cache_dir() / "image" / "single-file" / f"{checkpoint.family}-{stamp}"
    if (target / "complete").is_file():
        return target
    files.remove_stale(target.parent, "*.tmp")
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, config in found.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(json.dumps(config, indent=1))
    _tokenizer(tmp / "tokenizer", "<|endoftext|>")
    if checkpoint.family == "sdxl":
        _tokenizer(tmp / "tokenizer_2", "!")
    (tmp / "complete").write_text("ok")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def load(path: Path, device: str):
    """The diffusers pipeline of a single-file checkpoint, loaded offline; ModelError with
    the reason when it cannot be."""
    checkpoint = inspect(path)
    found = configs(checkpoint)
    width = sum(found[name]["hidden_size"] for name in ("text_encoder/config.json",
                                                         "text_encoder_2/config.json")
                if name in found)
    if width != found["unet/config.json"]["cross_attention_dim"]:
        raise ModelError(f"{Path(path).name} ({checkpoint.title}) does not hold together: its "
                         f"text encoders give {width} features, its UNet reads "
                         f"{found['unet/config.json']['cross_attention_dim']} (a merge of "
                         "different models?).")
    folder = config_folder(checkpoint)
    try:
        if checkpoint.family == "sdxl":
            from diffusers import StableDiffusionXLPipeline as Pipeline
        else:
            from diffusers import StableDiffusionPipeline as Pipeline
        pipe = Pipeline.from_single_file(str(checkpoint.path), config=str(folder),
                                         local_files_only=True)
    except ModelError:
        raise
    except Exception as exc:  # missing or misshapen tensors in a damaged file
        reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else \
            type(exc).__name__
        raise ModelError(f"{Path(path).name} ({checkpoint.title}) could not be loaded: "
                         f"{reason}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
