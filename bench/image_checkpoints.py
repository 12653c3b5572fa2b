"""Single-file checkpoints and editing (issue 35): load time and seconds per image of a
full-size SD 1.5-layout checkpoint, and the editing figures.

    .venv/bin/python bench/image_checkpoints.py [--rounds 3] [--steps 4] [--size 512]
                                                [--edits-only] [--refine 1024] [--comfyui]

1. **Load**: a full-size SD 1.5 layout (UNet 860 M, CLIP ViT-L, VAE; random weights, float16,
   2 GB; written once to .cache/bench/sd15-random.safetensors by tests/checkpoints.py's
   converter) opened by the studio as the single file and as the same weights saved as a
   diffusers folder (float16), rounds alternating, each after the other has been read once
   (both from the page cache). Ratio single-file / folder (goal ≤ 1.2).
2. **Seconds per image**: the studio's generator on the single file (scheduler, previews,
   cancel checks, PNG with its recipe) against a bare ``pipe(...)`` call on the same loaded
   pipeline with the same arguments and seed, rounds alternating (goal ≤ 1.05).
3. **Editing** on the embedded model, on the checkpoint and (``--comfyui``) on a real ComfyUI
   (tools/comfyui_server.py: its small test checkpoint): inpaint's largest difference outside
   the mask (goal 0), img2img at strength 0 against the source (PSNR, goal ≥ 45 dB), and
   whether the same seed gives the same picture.
4. **LoRA** on the checkpoint (a kohya-layout LoRA written for its UNet and text encoder by
   tests/checkpoints.py): weight 0 against no LoRA (goal: bit-identical), weight 1 (goal:
   changed).
5. **Refine** (``--refine 1024``, alone): a 1024² photo-like picture (skimage's astronaut, or
   smooth noise) refined ×1 on the checkpoint in tiles of 512 (blended over their overlap)
   and in one tile of 1024, same seed and strength: seconds of each (goal: tiled ≤ 1.1×
   untiled), and the seam measure — the mean gradient across the columns and rows where
   tiles meet against the mean gradient everywhere (goal ≤ 1.1).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
CACHE = ROOT / ".cache" / "bench"


def full_size_sd15(path: Path) -> Path:
    """SD 1.5's real shapes with random weights, in the original layout, float16."""
    if path.is_file():
        return path
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.checkpoints import hf_clip_names, unet_to_ldm, vae_to_ldm

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                        latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512)
    text = CLIPTextModel(CLIPTextConfig(  # CLIP ViT-L/14's text tower
        hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
        projection_dim=768, max_position_embeddings=77, hidden_act="quick_gelu",
        eos_token_id=2))
    state = {**unet_to_ldm(unet.state_dict(), unet.config),
             **vae_to_ldm(vae.state_dict(), vae.config),
             **{"cond_stage_model.transformer." + k: v for k, v in hf_clip_names(text).items()}}
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.to(torch.float16).contiguous() for k, v in state.items()}, str(path))
    return path


def _png_pixels(data: bytes):
    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def psnr(a, b) -> float:
    import numpy as np

    mse = float(np.mean((a.astype(float) - b.astype(float)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def edits(ref: str, label: str, size: int, settings=None) -> None:
    """Inpaint outside-mask difference, img2img strength 0 PSNR, same-seed equality."""
    import numpy as np
    from PIL import Image, ImageDraw

    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.image.generator import ImageGenerator

    registry = PluginRegistry.discover(entry_points=False)
    generator = ImageGenerator()
    generator.load(registry.resolve_model("image", ref, settings=settings), "cpu", Progress())
    rng = np.random.default_rng(0)
    source = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    mask = Image.new("L", source.size, 0)
    ImageDraw.Draw(mask).ellipse((size // 4, size // 4, size * 3 // 4, size * 3 // 4), fill=255)

    def png(image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    def run(task, seed=1, **params):
        parents = ["s"] + (["m"] if task == "inpaint" else [])
        request = Request("image", task, prompt="red apple", seed=seed, model=ref,
                          params={"steps": 4, **params}, parents=parents)
        prepare_request(registry, request)
        inputs = {"s": [Asset("image", "image/png", png(source), "s.png")],
                  "m": [Asset("mask", "image/png", png(mask), "m.png")]}
        return _png_pixels(generator.generate(request, Progress(), inputs).assets[0].data)

    original = np.asarray(source)
    painted = run("inpaint", strength=1.0)
    kept = np.asarray(mask) == 0
    worst = int(np.abs(painted[kept].astype(int) - original[kept]).max())
    inside = float(np.abs(painted[~kept].astype(int) - original[~kept]).mean())
    zero = run("img2img", strength=0.0)
    first, again = run("img2img", seed=7, strength=0.5), run("img2img", seed=7, strength=0.5)
    print(f"{label:<28} inpaint outside the mask: max diff {worst} (inside: mean "
          f"{inside:.1f} levels changed) · img2img strength 0: PSNR {psnr(zero, original):.1f}"
          f" dB · same seed same picture: {np.array_equal(first, again)}")


def refine(args) -> None:
    import numpy as np
    from PIL import Image

    from creative_studio.core.jobs import Asset, Request
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.image import editing
    from plugins.image.generator import ImageGenerator

    side = args.refine
    try:
        from skimage import data

        picture = Image.fromarray(data.astronaut()).resize((side, side),
                                                           Image.Resampling.LANCZOS)
    except ImportError:
        rng = np.random.default_rng(0)
        small = rng.integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    registry = PluginRegistry.discover(entry_points=False)
    single = full_size_sd15(CACHE / "sd15-random.safetensors")
    generator = ImageGenerator()
    generator.load(registry.resolve_model("image", str(single)), "cpu", Progress())
    results = {}
    for label, tile in (("tiled 512", 512), ("one tile", side)):
        request = Request("image", "refine", prompt="a photo, sharp details", seed=5,
                          params={"steps": args.steps, "scale": 1.0, "detail": 0.5,
                                  "tile": tile}, parents=["p"])
        prepare_request(registry, request)
        started = time.perf_counter()
        result = generator.generate(request, Progress(), {
            "p": [Asset("image", "image/png", buffer.getvalue(), "p.png")]})
        results[label] = (time.perf_counter() - started, result)
    seconds, result = results["tiled 512"]
    out = _png_pixels(result.assets[0].data)
    (CACHE / "refine-tiled.png").write_bytes(result.assets[0].data)
    spans = editing.tile_spans(side, 512, max(32, 512 // 8))  # as the generator plans them
    untiled = results["one tile"][0]
    print(f"refine {side}² ×1 at detail 0.5, {args.steps} steps: tiled "
          f"{result.metadata['tiles']} of {result.metadata['tile']} px (asked: 512) "
          f"{seconds:.1f} s · one tile {untiled:.1f} s · ratio {seconds / untiled:.2f} (goal ≤ "
          f"1.1)")
    print(f"seams: gradient across the lines where a tile begins or ends / everywhere: refined "
          f"{seam_ratio(out, spans):.3f} (goal ≤ 1.1) · the source picture at the same lines "
          f"{seam_ratio(np.asarray(picture), spans):.3f} · the source cut into the same tiles "
          f"±8 levels, pasted without blending {seam_ratio(_hard_seams(picture, spans), spans):.3f}"
          )


def seam_ratio(pixels, spans) -> float:
    """Mean gradient across the columns and rows where a tile begins or ends, over the mean
    gradient everywhere (1 ≈ no seam; a hard seam shows well above it)."""
    import numpy as np

    grey = pixels.astype(float).mean(axis=2)
    across, down = abs(np.diff(grey, axis=1)), abs(np.diff(grey, axis=0))
    lines = sorted({edge for a, b in zip(spans, spans[1:], strict=False)
                    for edge in (b[0], a[1])})
    edges = np.concatenate([across[:, m - 1].ravel() for m in lines] +
                           [down[m - 1, :].ravel() for m in lines])
    return float(edges.mean() / np.concatenate([across.ravel(), down.ravel()]).mean())


def _hard_seams(picture, spans):
    """The reference a seam looks like: tiles shifted ±8 levels, pasted without blending."""
    import numpy as np

    pixels = np.asarray(picture).astype(int)
    out = pixels.copy()
    for r, (top, bottom) in enumerate(spans):
        for c, (left, right) in enumerate(spans):
            out[top:bottom, left:right] = pixels[top:bottom, left:right] + \
                (8 if (r + c) % 2 else -8)
    return np.clip(out, 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--edits-only", action="store_true")
    parser.add_argument("--refine", type=int, default=0, metavar="SIDE")
    parser.add_argument("--comfyui", action="store_true", help="the edits on a real ComfyUI too")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.refine:
        refine(args)
        return
    edits("embedded:emoji-unet", "embedded emoji model (32 px)", 32)
    if args.edits_only:
        return
    from creative_studio.core.jobs import Request
    from creative_studio.core.progress import Progress
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import prepare_request
    from plugins.image.generator import ImageGenerator

    single = full_size_sd15(CACHE / "sd15-random.safetensors")
    folder = CACHE / "sd15-random-folder"
    registry = PluginRegistry.discover(entry_points=False)

    def load(ref: str) -> tuple[float, ImageGenerator]:
        generator = ImageGenerator()
        started = time.perf_counter()
        generator.load(registry.resolve_model("image", ref), "cpu", Progress())
        return time.perf_counter() - started, generator

    if not (folder / "model_index.json").is_file():
        _, generator = load(str(single))
        generator.pipe.to(torch.float16).save_pretrained(folder)
        del generator
    load(str(single))  # both read once: the page cache holds both
    load(str(folder))
    times = {"single file": [], "folder": []}
    for _ in range(args.rounds):
        for label, ref in (("single file", single), ("folder", folder)):
            seconds, generator = load(str(ref))
            times[label].append(seconds)
            del generator
    one, two = (statistics.median(times[k]) for k in ("single file", "folder"))
    print(f"load, median of {args.rounds}: single file {one:.2f} s · diffusers folder "
          f"{two:.2f} s · ratio {one / two:.2f} (goal ≤ 1.2)")

    _, generator = load(str(single))
    pipe = generator.pipe
    request = Request("image", "generate", prompt="a red apple on a table", seed=3,
                      params={"steps": args.steps, "width": args.size, "height": args.size})
    prepare_request(registry, request)

    def studio() -> float:
        started = time.perf_counter()
        generator.generate(request, Progress(), {})
        return time.perf_counter() - started

    def bare() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            out = pipe(prompt=request.prompt, num_inference_steps=args.steps,
                       guidance_scale=request.params["guidance"], width=args.size,
                       height=args.size, generator=torch.Generator().manual_seed(3))
        buffer = io.BytesIO()
        out.images[0].save(buffer, "PNG")
        return time.perf_counter() - started

    pipe.scheduler = generator.default_scheduler
    speeds = {"studio": [], "bare": []}
    bare()  # warm-up
    for _ in range(args.rounds):
        speeds["studio"].append(studio())
        speeds["bare"].append(bare())
    one, two = (statistics.median(speeds[k]) for k in ("studio", "bare"))
    print(f"{args.size}² at {args.steps} steps, median of {args.rounds}: studio {one:.2f} s · "
          f"bare diffusers {two:.2f} s · ratio {one / two:.3f} (goal ≤ 1.05)")
    edits(str(single), "SD 1.5-layout single file", 256)
    lora(generator, registry)
    if args.comfyui:
        comfyui_edits()


def lora(generator, registry) -> None:
    import numpy as np

    from creative_studio.core.jobs import Request
    from creative_studio.core.progress import Progress
    from creative_studio.workers.runner import prepare_request
    from tests.checkpoints import tiny_lora

    path = tiny_lora(CACHE / "sd15-random-lora.safetensors", generator.pipe.unet,
                     generator.pipe.text_encoder, rank=8, scale=0.05)

    def run(weight: float | None):
        params = {"steps": 4, "width": 256, "height": 256}
        if weight is not None:
            params["loras"] = [f"{path}:{weight}"]
        request = Request("image", "generate", prompt="red apple", seed=4, params=params)
        prepare_request(registry, request)
        return _png_pixels(generator.generate(request, Progress(), {}).assets[0].data)

    without, zero, one, again = run(None), run(0), run(1), run(None)
    print(f"LoRA on the SD 1.5-layout file: weight 0 bit-identical to none: "
          f"{np.array_equal(without, zero)} · after unloading: {np.array_equal(without, again)}"
          f" · weight 1 changes {np.mean(np.any(one != without, axis=2)) * 100:.1f} % of the "
          f"pixels (mean {np.abs(one.astype(int) - without).mean():.1f} levels)")


def comfyui_edits() -> None:
    from creative_studio.core.settings import Settings
    from tools import comfyui_server

    comfyui_server.setup()
    server = comfyui_server.ComfyServer(models=comfyui_server.models_folder())
    try:
        settings = Settings(servers=[{"name": "bench", "url": server.url, "kind": "comfyui"}])
        edits(f"server:bench/{comfyui_server.CHECKPOINT}", "ComfyUI (its test checkpoint)", 64,
              settings)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
