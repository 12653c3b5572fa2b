"""Tiny single-file checkpoints in the layouts artists have on disk (SD 1.5 and SDXL, the
original LDM/SGM tensor names A1111 and ComfyUI save), built from tiny random diffusers models
and written the other way round from diffusers' own conversion (the mapping of diffusers'
``scripts/convert_diffusers_to_original_stable_diffusion.py``, Apache-2.0, written out here for
any block count). Also the same weights as a diffusers folder, to compare the two paths."""

from __future__ import annotations

from pathlib import Path

RESNET = (("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
          ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"),
          ("conv_shortcut", "skip_connection"))
UNET_FIXED = (("time_embedding.linear_1.", "time_embed.0."),
              ("time_embedding.linear_2.", "time_embed.2."),
              ("add_embedding.linear_1.", "label_emb.0.0."),
              ("add_embedding.linear_2.", "label_emb.0.2."),
              ("conv_in.", "input_blocks.0.0."), ("conv_norm_out.", "out.0."),
              ("conv_out.", "out.2."))


def unet_to_ldm(state: dict, config) -> dict:
    n, levels = config.layers_per_block, len(config.block_out_channels)
    blocks = []  # (diffusers prefix, LDM prefix)
    for i in range(levels):
        for j in range(n):
            blocks.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{(n + 1) * i + j + 1}.0."))
            blocks.append((f"down_blocks.{i}.attentions.{j}.",
                           f"input_blocks.{(n + 1) * i + j + 1}.1."))
        for j in range(n + 1):
            blocks.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{(n + 1) * i + j}.0."))
            blocks.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{(n + 1) * i + j}.1."))
        if i < levels - 1:
            blocks.append((f"down_blocks.{i}.downsamplers.0.conv.",
                           f"input_blocks.{(n + 1) * (i + 1)}.0.op."))
            place = 2 if "CrossAttn" in config.up_block_types[i] else 1
            blocks.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{(n + 1) * i + n}.{place}."))
    blocks.append(("mid_block.attentions.0.", "middle_block.1."))
    for j in range(2):
        blocks.append((f"mid_block.resnets.{j}.", f"middle_block.{2 * j}."))
    out = {}
    for key, tensor in state.items():
        new = key
        for old, ldm in UNET_FIXED + tuple(blocks):
            if key.startswith(old):
                rest = key[len(old):]
                if ".resnets." in old:  # a ResBlock's own layer names
                    layer, _, tail = rest.partition(".")
                    rest = f"{dict(RESNET).get(layer, layer)}.{tail}"
                new = ldm + rest
                break
        else:
            raise KeyError(f"no LDM name for {key}")
        out["model.diffusion_model." + new] = tensor
    return out


def vae_to_ldm(state: dict, config) -> dict:
    levels, n = len(config.block_out_channels), config.layers_per_block
    pairs = [("conv_shortcut", "nin_shortcut"), ("conv_norm_out", "norm_out"),
             ("mid_block.attentions.0.", "mid.attn_1.")]
    for i in range(levels):
        for j in range(n):
            pairs.append((f"encoder.down_blocks.{i}.resnets.{j}.", f"encoder.down.{i}.block.{j}."))
        if i < levels - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.", f"down.{i}.downsample."))
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"up.{levels - 1 - i}.upsample."))
        for j in range(n + 1):
            pairs.append((f"decoder.up_blocks.{i}.resnets.{j}.",
                          f"decoder.up.{levels - 1 - i}.block.{j}."))
    for i in range(2):
        pairs.append((f"mid_block.resnets.{i}.", f"mid.block_{i + 1}."))
    attention = (("group_norm.", "norm."), ("to_q.", "q."), ("to_k.", "k."), ("to_v.", "v."),
                 ("to_out.0.", "proj_out."))
    out = {}
    for key, tensor in state.items():
        new = key
        for old, ldm in pairs:
            new = new.replace(old, ldm)
        if "attn_1." in new:
            for old, ldm in attention:
                new = new.replace(old, ldm)
            if new.endswith("weight") and tensor.dim() == 2:  # LDM: 1×1 convolutions
                tensor = tensor[:, :, None, None]
        out["first_stage_model." + new] = tensor
    return out


def open_clip_from_hf(state: dict, prefix: str) -> dict:
    """A CLIPTextModelWithProjection's weights under OpenCLIP's names (SDXL's bigG)."""
    import torch

    out = {prefix + "token_embedding.weight": state["text_model.embeddings.token_embedding.weight"],
           prefix + "positional_embedding":
               state["text_model.embeddings.position_embedding.weight"],
           prefix + "ln_final.weight": state["text_model.final_layer_norm.weight"],
           prefix + "ln_final.bias": state["text_model.final_layer_norm.bias"],
           prefix + "text_projection": state["text_projection.weight"].T.contiguous()}
    layers = {int(k.split(".")[3]) for k in state if k.startswith("text_model.encoder.layers.")}
    for i in sorted(layers):
        hf = f"text_model.encoder.layers.{i}."
        ldm = f"{prefix}transformer.resblocks.{i}."
        for kind in ("weight", "bias"):
            out[ldm + f"attn.in_proj_{kind}"] = torch.cat(
                [state[hf + f"self_attn.{p}_proj.{kind}"] for p in "qkv"])
            out[ldm + f"attn.out_proj.{kind}"] = state[hf + f"self_attn.out_proj.{kind}"]
            out[ldm + f"ln_1.{kind}"] = state[hf + f"layer_norm1.{kind}"]
            out[ldm + f"ln_2.{kind}"] = state[hf + f"layer_norm2.{kind}"]
            out[ldm + f"mlp.c_fc.{kind}"] = state[hf + f"mlp.fc1.{kind}"]
            out[ldm + f"mlp.c_proj.{kind}"] = state[hf + f"mlp.fc2.{kind}"]
    return out


def hf_clip_names(module) -> dict:
    """A CLIP text model's weights under the names checkpoints use (``text_model.…``:
    transformers 5 leaves the prefix out of CLIPTextModel's own state dict)."""
    return {(k if k.startswith(("text_model.", "text_projection")) else "text_model." + k): v
            for k, v in module.state_dict().items() if "position_ids" not in k}


def _clip(hidden: int, layers: int, projection: int = 0):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(vocab_size=49408, hidden_size=hidden, intermediate_size=hidden * 2,
                            num_hidden_layers=layers, num_attention_heads=max(1, hidden // 64),
                            max_position_embeddings=77, hidden_act="quick_gelu",
                            projection_dim=projection or hidden, bos_token_id=0,
                            eos_token_id=2, pad_token_id=1)
    if projection:
        config.hidden_act = "gelu"
        return CLIPTextModelWithProjection(config)
    return CLIPTextModel(config)


def _vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(block_out_channels=(32, 64), norm_num_groups=32, latent_channels=4,
                         layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2)


def _save(state: dict, path: Path) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    return path


def _randomise(*modules, seed: int) -> None:
    """Weights large enough that a prompt, a seed and a LoRA visibly change the picture
    (diffusers initialises some output layers to zero)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in modules:
            for tensor in module.parameters():
                if tensor.dim() > 1:
                    fan_in = tensor[0].numel()
                    tensor.copy_(torch.randn(tensor.shape, generator=generator) / fan_in ** 0.5)


def tiny_sd15(path: Path, seed: int = 0, folder: Path | None = None,
              parts: dict | None = None) -> Path:
    """An SD 1.5-layout single-file checkpoint (tiny random weights, the real CLIP
    vocabulary size); with ``folder``, the same weights as a diffusers pipeline folder;
    ``parts`` receives the diffusers models the file was written from."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=32, cross_attention_dim=32,
        attention_head_dim=8, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"))
    vae, text = _vae(), _clip(32, 2)
    _randomise(unet, vae, text, seed=seed)
    if parts is not None:
        parts.update(unet=unet, vae=vae, text_encoder=text)
    state = {**unet_to_ldm(unet.state_dict(), unet.config),
             **vae_to_ldm(vae.state_dict(), vae.config),
             **{"cond_stage_model.transformer." + k: v for k, v in hf_clip_names(text).items()}}
    _save(state, path)
    if folder is not None:
        from plugins.image import checkpoints

        checkpoint = checkpoints.inspect(path)
        pipe = checkpoints.load(path, "cpu")
        pipe.save_pretrained(folder)
        assert checkpoint.family == "sd1"
    return path


def tiny_sdxl(path: Path, seed: int = 0, parts: dict | None = None) -> Path:
    """An SDXL-layout single-file checkpoint: CLIP-L and OpenCLIP-bigG-style encoders (tiny),
    the added time and pooled-text embedding, 2 transformer layers in the second level."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    text, text_2 = _clip(32, 2), _clip(64, 2, projection=32)
    unet = UNet2DConditionModel(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(64, 128), norm_num_groups=32, cross_attention_dim=32 + 64,
        attention_head_dim=(1, 2), transformer_layers_per_block=(1, 2),
        use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=256, projection_class_embeddings_input_dim=32 + 6 * 256,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = _vae()
    _randomise(unet, vae, text, text_2, seed=seed)
    if parts is not None:
        parts.update(unet=unet, vae=vae, text_encoder=text, text_encoder_2=text_2)
    state = {**unet_to_ldm(unet.state_dict(), unet.config),
             **vae_to_ldm(vae.state_dict(), vae.config),
             **{"conditioner.embedders.0.transformer." + k: v
                for k, v in hf_clip_names(text).items()},
             **open_clip_from_hf(hf_clip_names(text_2), "conditioner.embedders.1.model.")}
    return _save(state, path)


def tiny_sd2(path: Path, seed: int = 0, v_prediction: bool = False) -> Path:
    """An SD 2.x-layout single-file checkpoint: an OpenCLIP (ViT-H style) text encoder whose
    penultimate layer conditions the UNet, linear projections, 64-channel heads;
    ``v_prediction``: the norm bias ComfyUI reads to tell a 768-v model is spread wide."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    text = _clip(64, 3, projection=64)
    unet = UNet2DConditionModel(
        sample_size=96, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(64, 128), norm_num_groups=32, cross_attention_dim=64,
        attention_head_dim=(1, 2), use_linear_projection=True, upcast_attention=True,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    vae = _vae()
    _randomise(unet, vae, text, seed=seed)
    state = {**unet_to_ldm(unet.state_dict(), unet.config),
             **vae_to_ldm(vae.state_dict(), vae.config),
             **open_clip_from_hf(hf_clip_names(text), "cond_stage_model.model.")}
    # the real model's last output block is output_blocks.11; the tiny one's is 3
    key = "model.diffusion_model.output_blocks.3.1.transformer_blocks.0.norm1.bias"
    state[key.replace(".3.1.", ".11.1.")] = torch.randn(128) * (0.2 if v_prediction else 0.01)
    return _save(state, path)


def tiny_lora(path: Path, unet, text_encoder=None, rank: int = 4, seed: int = 0,
              scale: float = 1.0, trigger: str = "zq style", xl_text: bool = False) -> Path:
    """A LoRA in kohya's (A1111's) layout for a diffusers UNet (and text encoder): down/up
    pairs and an alpha per attention projection, a trigger phrase in the metadata."""
    import json as _json

    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    state = {}

    def add(prefix: str, module) -> None:
        out_features, in_features = module.weight.shape[:2]
        state[f"{prefix}.lora_down.weight"] = torch.randn(rank, in_features,
                                                          generator=generator) * 0.5
        state[f"{prefix}.lora_up.weight"] = torch.randn(out_features, rank,
                                                        generator=generator) * 0.5 * scale
        state[f"{prefix}.alpha"] = torch.tensor(float(rank))

    for name, module in unet.named_modules():  # the layers kohya's trainer adapts
        if isinstance(module, torch.nn.Linear) and ".attn" in name and \
                name.endswith(("to_q", "to_k", "to_v", "to_out.0")):
            add("lora_unet_" + name.replace(".", "_"), module)
    if text_encoder is not None:
        te = "lora_te2_" if xl_text else "lora_te_"
        for name, module in text_encoder.named_modules():
            if isinstance(module, torch.nn.Linear) and "layers" in name:
                full = name if name.startswith("text_model.") else "text_model." + name
                add(te + full.replace(".", "_"), module)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={
        "modelspec.trigger_phrase": trigger, "ss_output_name": path.stem,
        "ss_tag_frequency": _json.dumps({"set": {trigger: 12, "red": 3}})})
    return path
