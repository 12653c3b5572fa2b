"""Text-to-image with diffusers pipelines, or on a ComfyUI server (plugins/image/comfy.py)
(no Qt; torch/diffusers imported lazily).

One job = one image (the panel's batch count queues several, seeds +1). Params (declared in
plugin.toml): ``negative``, ``steps``, ``guidance``, ``width``, ``height``, ``scheduler`` (a
name of SCHEDULERS or "default"). Progress and cancel go through ``callback_on_step_end``; every few steps a small
preview (the current sample, or a cheap latent → RGB projection for latent models) is sent.
The PNG carries an A1111-style ``parameters`` chunk and the studio's JSON recipe.
"""

from __future__ import annotations

import io
import json
import time

from creative_studio.core.errors import BadInput, ModelError, is_out_of_memory
from creative_studio.core.jobs import Asset, Inputs, ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress
from creative_studio.core.provenance import weights_sha256

SCHEDULERS = {
    "default": "",
    "DDIM": "DDIMScheduler",
    "Euler": "EulerDiscreteScheduler",
    "Euler a": "EulerAncestralDiscreteScheduler",
    "DPM++ 2M": "DPMSolverMultistepScheduler",
    "UniPC": "UniPCMultistepScheduler",
    "PNDM": "PNDMScheduler",
    "LMS": "LMSDiscreteScheduler",
}
MAX_SIDE = 2048
# Stable Diffusion 1.x/2.x latent channels → approximate RGB (for step previews only)
LATENT_RGB = ((0.298, 0.207, 0.208), (0.187, 0.286, 0.173), (-0.158, 0.189, 0.264),
              (-0.184, -0.271, -0.473))


def a1111_quote(value) -> str:
    """A value as A1111 writes it in ``parameters``: JSON-quoted when it holds a comma, a
    colon or a line break (readers split the settings line on those)."""
    text = str(value)
    if "," not in text and ":" not in text and "\n" not in text and '"' not in text:
        return text
    return json.dumps(text, ensure_ascii=False)


def a1111_parameters(prompt: str, negative: str, steps: int, sampler: str, guidance: float,
                     seed: int, width: int, height: int, model: str, model_sha256: str = ""
                     ) -> str:
    """The ``parameters`` text A1111/ComfyUI/civitai readers understand (A1111's own order
    and quoting; ``Model hash`` is the first 10 hex digits of the weights' SHA-256)."""
    lines = [prompt]
    if negative:
        lines.append(f"Negative prompt: {negative}")
    fields = [("Steps", steps), ("Sampler", sampler), ("CFG scale", f"{guidance:g}"),
              ("Seed", seed), ("Size", f"{width}x{height}")]
    if model_sha256:
        fields.append(("Model hash", model_sha256[:10]))
    fields.append(("Model", model))
    lines.append(", ".join(f"{key}: {a1111_quote(value)}" for key, value in fields))
    return "\n".join(lines)


def a1111_model_name(identity: ModelIdentity | None) -> str:
    """The ``Model:`` of the parameters text: a checkpoint-like name as A1111 writes it (the
    embedded model's id, a folder's name, a Hub id), which readers that split on commas and
    colons recover whole; the full display name is in the studio's own recipe."""
    if identity is None:
        return ""
    for prefix in ("embedded:", "hub:"):
        if identity.ref.startswith(prefix):
            return identity.ref[len(prefix):]
    from pathlib import Path

    return Path(identity.ref).name or identity.name


class ImageGenerator:
    def __init__(self) -> None:
        self.pipe = None
        self.identity: ModelIdentity | None = None
        self.device = "cpu"
        self.default_scheduler = None
        self.remote = None  # a ComfyUI server's checkpoint (plugins/image/comfy.py)

    @staticmethod
    def validate(request: Request) -> None:
        """Sizes are multiples of 8 (the declarations give the range)."""
        for key in ("width", "height"):
            value = request.params[key]
            if value and (value % 8 or value < 8):
                raise BadInput(f"The {key} must be a multiple of 8 between 8 and {MAX_SIDE} "
                               f"(got {value}).")

    def load(self, source: ModelSource, device: str, progress: Progress) -> None:
        from . import models

        if source.source == "server":
            from .comfy import ComfyImage

            self.remote = ComfyImage(source)
            self.identity = self.remote.identity
            return
        progress.say("Loading the image model…")
        folder, hashed = models.pipeline_folder(source)
        self.pipe = models.load_pipeline(folder, device)
        self.default_scheduler = self.pipe.scheduler
        self.identity = ModelIdentity(source.name, source.ref, weights_sha256(hashed),
                                      source.source)
        self.device = device
        progress.say("")

    def unload(self) -> None:
        self.pipe = None
        if self.remote is not None:
            self.remote.close()
            self.remote = None

    def _scheduler(self, name: str):
        if name in ("", "default"):
            return self.default_scheduler
        import diffusers

        cls = getattr(diffusers, SCHEDULERS[name])
        try:
            return cls.from_config(self.default_scheduler.config)
        except Exception as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise BadInput(f"The {name} scheduler does not work with this model ({reason}).") \
                from exc

    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        import numpy as np
        import torch
        from PIL import Image

        from creative_studio.io.images import encode_png

        if self.remote is not None:
            return self.remote.generate(request, progress)
        if request.params.get("workflow"):
            raise BadInput("An own ComfyUI workflow runs on a ComfyUI server: choose a model on "
                           "a server, or clear the workflow.")
        pipe = self.pipe
        p = request.params
        size = pipe.unet.config.sample_size * getattr(pipe, "vae_scale_factor", 1) \
            if hasattr(pipe, "unet") else 512
        width, height = p["width"] or size, p["height"] or size
        steps, guidance = p["steps"], p["guidance"]
        negative = p["negative"]
        scheduler_name = p["scheduler"]
        pipe.scheduler = self._scheduler(scheduler_name)
        every = max(1, steps // 8)
        latent_model = getattr(pipe, "vae", None) is not None
        started = time.perf_counter()

        def on_step(pipeline, index, timestep, tensors):
            preview = None
            if (index + 1) % every == 0 and index + 1 < steps:
                preview = self._preview(tensors["latents"], latent_model)
            progress.update((index + 1) / steps, preview)
            progress.check()  # Stop: Cancelled propagates out, nothing is saved
            return tensors

        generator = torch.Generator(device="cpu").manual_seed(int(request.seed))
        try:
            with torch.inference_mode():
                out = pipe(prompt=request.prompt, negative_prompt=negative or None,
                           num_inference_steps=steps, guidance_scale=guidance, width=width,
                           height=height, generator=generator, output_type="np",
                           callback_on_step_end=on_step)
        except (RuntimeError, ValueError) as exc:
            if is_out_of_memory(exc):
                raise
            raise ModelError(f"The pipeline could not make this image: {exc}") from exc
        pixels = (np.clip(out.images[0], 0, 1) * 255).round().astype(np.uint8)
        image = Image.fromarray(pixels)
        sampler = scheduler_name if scheduler_name != "default" else \
            type(pipe.scheduler).__name__.replace("Scheduler", "")
        parameters = a1111_parameters(request.prompt, negative, steps, sampler, guidance,
                                      request.seed, image.width, image.height,
                                      a1111_model_name(self.identity),
                                      self.identity.sha256 if self.identity else "")
        recipe = json.dumps({"prompt": request.prompt, "seed": request.seed, "params": p,
                             "model": request.model}, ensure_ascii=True)
        png = encode_png(image, {"parameters": parameters, "creative-studio": recipe})
        return Result([Asset("image", "image/png", png, "image.png")], self.identity,
                      self.device,
                      metadata={"width": image.width, "height": image.height, "steps": steps,
                                "guidance": guidance, "scheduler": sampler,
                                # the full config: a fixed config with the same weights draws
                                # differently, and the recipe must say which one drew this
                                "scheduler_config": json.loads(pipe.scheduler.to_json_string()),
                                "seconds": round(time.perf_counter() - started, 2)},
                      title=request.prompt[:60] or "(no prompt)")

    @staticmethod
    def _preview(latents, latent_model: bool) -> bytes:
        import numpy as np
        import torch
        from PIL import Image

        sample = latents[0].float().cpu()
        if latent_model and sample.shape[0] == 4:
            rgb = torch.einsum("chw,cr->rhw", sample, torch.tensor(LATENT_RGB))
            rgb = (rgb + 1) / 2
        else:
            rgb = (sample[:3] + 1) / 2
        pixels = (rgb.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "PNG")
        return buffer.getvalue()
