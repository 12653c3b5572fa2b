"""Super-resolution with spandrel models, tiled (no Qt). Work in progress (issue 3): no panel
or manifest yet, so the studio does not offer it; the CLI and tests drive it."""

from __future__ import annotations

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
from creative_studio.io.images import decode_image, encode_png

from . import models

DEFAULT_TILE = 256


class UpscaleGenerator:
    needs_inputs = True

    def __init__(self) -> None:
        self.upscaler: models.LoadedUpscaler | None = None
        self.device = "cpu"

    @staticmethod
    def validate(request: Request) -> None:
        if request.task != "upscale":
            raise BadInput(f"Unknown upscale task '{request.task}'.")
        if len(request.parents) != 1:
            raise BadInput("Choose one image to upscale.")
        tile = int(request.params.get("tile", DEFAULT_TILE))
        if tile < 32:
            raise BadInput("Tiles must be at least 32 px.")

    def load(self, ref: str, device: str, progress) -> None:
        progress.say("Loading the upscale model…")
        self.upscaler = models.load(ref, device)
        self.device = device
        progress.say("")

    def unload(self) -> None:
        self.upscaler = None

    def generate(self, request: Request, progress, inputs) -> Result:
        import numpy as np
        import torch

        up = self.upscaler
        assert up is not None
        (parent,) = request.parents
        image_assets = [a for a in inputs.get(parent, []) if a.mime.startswith("image/")]
        if not image_assets:
            raise BadInput("The chosen item has no image.")
        image = decode_image(image_assets[0].data, image_assets[0].name or "The image")
        if min(image.size) < 2:
            raise BadInput(f"The image is {image.width}×{image.height}: too small to upscale.")
        alpha = image.getchannel("A") if "A" in image.getbands() else None
        rgb = image.convert("RGB")
        x = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        from .tiling import run_tiled

        tile = int(request.params.get("tile", DEFAULT_TILE))
        y = run_tiled(up.model, x.to(self.device), up.model.scale, tile, up.pad, up.align,
                      progress)
        if up.output_resize != 1.0:
            y = torch.nn.functional.interpolate(y, scale_factor=up.output_resize,
                                                mode="bicubic", align_corners=False)
        pixels = (y[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
        from PIL import Image

        out = Image.fromarray(pixels, "RGB")
        if alpha is not None:
            out.putalpha(alpha.resize(out.size, Image.Resampling.BICUBIC))
        png = encode_png(out, {"creative-studio": "upscale"})
        return Result([Asset("image", "image/png", png, "upscaled.png")],
                      ModelIdentity(up.name, request.model, up.sha256, up.source), self.device,
                      metadata={"width": out.width, "height": out.height, "scale": up.scale,
                                "tile": tile, "pad": up.pad},
                      title=f"{image.width}×{image.height} → {out.width}×{out.height}")
