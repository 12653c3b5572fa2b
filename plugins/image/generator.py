"""Text-to-image and editing (img2img, inpaint, outpaint: plugins/image/editing.py) with
diffusers pipelines — folders, single-file checkpoints (plugins/image/checkpoints.py), the
embedded model — or on a ComfyUI server (plugins/image/comfy.py) (no Qt; torch/diffusers
imported lazily).

One job = one image (the panel's batch count queues several, seeds +1). Params (declared in
plugin.toml): ``negative``, ``steps``, ``guidance``, ``width``, ``height``, ``scheduler`` (a
name of SCHEDULERS or "default"). Progress and cancel go through ``callback_on_step_end``; every few steps a small
preview (the current sample, or a cheap latent → RGB projection for latent models) is sent.
The PNG carries an A1111-style ``parameters`` chunk and the studio's JSON recipe.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from pathlib import Path

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
                     seed: int, width: int, height: int, model: str, model_sha256: str = "",
                     extra: list[tuple[str, object]] | tuple = ()) -> str:
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
    fields.extend(extra)  # an edit's Denoising strength, Mask blur…
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

    path = Path(identity.ref)
    if path.suffix.lower() in (".safetensors", ".ckpt"):  # A1111 names a checkpoint so
        return path.stem
    return path.name or identity.name


class ImageGenerator:
    def __init__(self) -> None:
        self.pipe = None
        self.identity: ModelIdentity | None = None
        self.device = "cpu"
        self.default_scheduler = None
        self.remote = None  # a ComfyUI server's checkpoint (plugins/image/comfy.py)
        self._described: dict = {}  # LoRA files' hashes and trigger words, by (path, size, time)
        self._used_loras: list = []  # the last job's LoRAs (its recipe names them)

    @staticmethod
    def validate(request: Request) -> None:
        """Sizes are multiples of 8 (the declarations give the range)."""
        from . import loras

        for entry in request.params.get("loras", []):
            loras.parse_entry(entry)  # a weight out of range is refused before queueing
        loras.prompt_tags(request.prompt)
        for key in ("width", "height"):
            value = request.params.get(key, 0)
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
        if source.path is not None and source.path.is_file():  # a single-file checkpoint
            from . import checkpoints

            self.pipe, hashed = checkpoints.load(source.path, device), source.path
        else:
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

    def native_size(self) -> int:
        """The side the model draws best at (its UNet's sample size in pixels)."""
        if self.remote is not None:
            return self.remote.native_side
        pipe = self.pipe
        return pipe.unet.config.sample_size * getattr(pipe, "vae_scale_factor", 1) \
            if hasattr(pipe, "unet") else 512

    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        self._used_loras = []
        if self.remote is not None:
            if request.params.get("loras") or "<lora:" in request.prompt.lower():
                raise BadInput("LoRAs on a ComfyUI server are not there yet: choose a local "
                               "model, or take the LoRAs out.")
            if request.task == "generate":
                return self.remote.generate(request, progress)
            if request.task == "refine":
                return self._refine(request, progress, inputs)
        if request.params.get("workflow"):
            raise BadInput("An own ComfyUI workflow runs on a ComfyUI server: choose a model on "
                           "a server, or clear the workflow.")
        if request.task == "refine":
            return self._refine(request, progress, inputs)
        if request.task != "generate":
            return self._edit(request, progress, inputs)
        p = request.params
        size = self.native_size()
        width, height = p["width"] or size, p["height"] or size
        started = time.perf_counter()
        pixels = self._draw(request, progress, width=width, height=height)
        return self._result(request, pixels, started)

    def _draw(self, request: Request, progress: Progress, source=None, mask=None,
              strength: float = 1.0, **size):
        """The pipeline's picture (uint8 H×W×3): from the prompt, or from ``source`` (uint8
        H×W×3) redrawn by ``strength``, only where ``mask`` (uint8 H×W, 255 = redraw) says."""
        import numpy as np
        import torch

        pipe = self.pipe
        p = request.params
        steps = p["steps"]
        pipe.scheduler = self._scheduler(p["scheduler"])
        run = steps if source is None else min(int(steps * strength), steps)
        if run < 1:
            raise BadInput(f"Strength {strength:g} with {steps} steps leaves no step to run: "
                           "raise the strength or the steps.")
        every = max(1, run // 8)
        latent_model = getattr(pipe, "vae", None) is not None

        def on_step(pipeline, index, timestep, tensors):
            preview = None
            if (index + 1) % every == 0 and index + 1 < run:
                preview = self._preview(tensors["latents"], latent_model)
            progress.update((index + 1) / run, preview)
            progress.check()  # Stop: Cancelled propagates out, nothing is saved
            return tensors

        prompt = self._apply_loras(request)
        args = dict(prompt=prompt, negative_prompt=p["negative"] or None,
                    num_inference_steps=steps, guidance_scale=p["guidance"],
                    generator=torch.Generator(device="cpu").manual_seed(int(request.seed)),
                    output_type="np", callback_on_step_end=on_step, **size)
        if source is not None:
            pipe, edit = self._edit_pipeline(mask is not None)
            args.update(strength=strength, **edit(source, mask))
        try:
            with torch.inference_mode():
                out = pipe(**args)
        except (RuntimeError, ValueError) as exc:
            if is_out_of_memory(exc):
                raise
            raise ModelError(f"The pipeline could not make this image: {exc}") from exc
        return (np.clip(out.images[0], 0, 1) * 255).round().astype(np.uint8)

    def _stack(self, request: Request) -> tuple[str, list]:
        """(the prompt without its <lora:…> tags, the job's LoRAs with hashes): the list's
        entries, then the prompt's tags, found by name beside the listed files and in the
        model folders of the preferences; a file named twice takes the later weight."""
        from creative_studio.core.settings import Settings

        from . import loras

        prompt, tagged = loras.prompt_tags(request.prompt)
        entries = [loras.parse_entry(e) for e in request.params.get("loras", [])]
        if tagged:
            places = [path for path, _ in entries]
            places += [path.parent for path, _ in entries]
            places += [Path(os.path.expanduser(f)) for f in Settings.load().model_folders
                       if isinstance(f, str)]
            entries += [(loras.find_by_name(name, places), weight) for name, weight in tagged]
        chosen: dict[Path, float] = {}
        for path, weight in entries:  # one file named twice: the later weight (the prompt's)
            chosen[path.resolve() if path.exists() else path] = weight
        stack = []
        for path, weight in chosen.items():
            stat = path.stat() if path.is_file() else None
            key = (str(path), stat.st_size, stat.st_mtime_ns) if stat else None
            found = self._described.get(key) if key else None
            if found is None:
                found = loras.describe(path, weight)
                if key:
                    self._described[key] = found
            stack.append(dataclasses.replace(found, weight=weight))
        return prompt, stack

    def _apply_loras(self, request: Request) -> str:
        """Put the job's LoRAs on the pipeline; the prompt the pipeline is given."""
        from . import loras

        prompt, stack = self._stack(request)
        if any(lora.weight for lora in stack) or getattr(self.pipe, "_studio_loras", None):
            loras.apply(self.pipe, stack)
        self._used_loras = stack
        return prompt

    def _edit_pipeline(self, inpaint: bool):
        """(pipeline, inputs) of an edit: the embedded model edits in its own pipeline
        (pixel tensors in [-1, 1]); a diffusers pipeline through its img2img or inpaint
        sibling, which shares its components (no second copy of the weights)."""
        import torch
        from PIL import Image

        from .pipeline import EmojiPipeline

        if isinstance(self.pipe, EmojiPipeline):
            def tensors(source, mask):
                image = torch.from_numpy(source.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
                inputs = {"image": image, "height": source.shape[0], "width": source.shape[1]}
                if mask is not None:
                    inputs["mask_image"] = torch.from_numpy(mask > 0).float()[None, None]
                return inputs

            return self.pipe, tensors
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        kind = AutoPipelineForInpainting if inpaint else AutoPipelineForImage2Image
        try:
            sibling = kind.from_pipe(self.pipe)
        except Exception as exc:  # a pipeline diffusers has no edit form of
            raise BadInput(f"This model cannot {'inpaint' if inpaint else 'change pictures'} "
                           f"({type(self.pipe).__name__}: {exc}).") from exc
        sibling.set_progress_bar_config(disable=True)

        def pictures(source, mask):
            inputs = {"image": Image.fromarray(source), "height": source.shape[0],
                      "width": source.shape[1]}
            if mask is not None:
                inputs["mask_image"] = Image.fromarray(mask)
            return inputs

        return sibling, pictures

    def _edit(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        """img2img, inpaint, outpaint (plugins/image/editing.py): the model draws the working
        box; an inpaint's or outpaint's drawing is pasted back through the feathered mask."""
        import numpy as np

        from . import editing

        started = time.perf_counter()
        p = request.params
        source, found = self._source(request, inputs, 1 + (request.task == "inpaint"))
        canvas = np.asarray(source)
        native = self.native_size()
        mask = None
        strength = p.get("strength", 1.0)
        if request.task == "img2img":
            box = editing.picture_box(source.width, source.height, native,
                                      (p["width"], p["height"]))
        else:
            if request.task == "inpaint":
                if not found[1]:
                    raise BadInput("The mask item has no picture.")
                mask = editing.load_mask(found[1][0].data, source.size)
            else:
                canvas, mask = editing.extended(canvas, p["left"], p["top"], p["right"],
                                                p["bottom"])
                strength = 1.0
            box = editing.mask_box(mask, native, (p["width"], p["height"]))
        region = editing.resized(editing.crop(canvas, box), box.work)
        region_mask = None if mask is None else \
            editing.resized(editing.crop(mask, box), box.work, mask=True)
        remote = None
        if strength <= 0:  # nothing may change: the source as it is, no model run
            drawn = region
        elif self.remote is not None:
            drawn, remote = self.remote.edit(request, progress, region, region_mask, strength)
        else:
            drawn = self._draw(request, progress, region, region_mask, strength)
        facts = {"task": request.task, "strength": strength,
                 "box": [box.left, box.top, box.right, box.bottom], "work_size": list(box.work),
                 "source_size": [source.width, source.height]}
        if mask is None:
            pixels = drawn
        else:
            weight = editing.feathered(editing.crop(mask, box), p["feather"])
            kept = editing.crop(canvas, box)
            pixels = np.array(canvas)
            pixels[box.top:box.bottom, box.left:box.right] = editing.paste_back(
                kept, editing.resized(drawn, box.size), weight)
            facts["feather"] = p["feather"]
        return self._result(request, pixels, started, facts, remote)

    def _source(self, request: Request, inputs: Inputs, count: int = 1):
        """The job's source picture (RGB) and, for an inpaint, the mask item's assets."""
        from . import editing

        if len(request.parents) != count:
            raise BadInput("Inpaint reads a picture and its mask." if count == 2 else
                           "Choose the picture to change.")
        found = [[a for a in inputs.get(parent, []) if a.mime.startswith("image/")]
                 for parent in request.parents]
        if not found[0]:
            raise BadInput("The chosen item has no picture.")
        return editing.load_source(found[0][0].data, found[0][0].name or "The picture"), found

    def _refine(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        """Refine: the picture enlarged (Lanczos) by ``scale``, then redrawn at ``detail``
        strength in overlapping tiles of the model's size (each with seed + its index),
        blended where they overlap (plugins/image/editing.py: tiled)."""
        import numpy as np
        from PIL import Image

        from creative_studio.core.progress import Part

        from . import editing

        started = time.perf_counter()
        p = request.params
        source, _ = self._source(request, inputs)
        width, height = editing.refine_size(source.width, source.height, p["scale"])
        big = source if (width, height) == source.size else \
            source.resize((width, height), Image.Resampling.LANCZOS)
        pixels = np.asarray(big)
        # the model draws multiples of 8: the edge carried outwards, cut off afterwards
        padded = np.pad(pixels, ((0, -height % 8), (0, -width % 8), (0, 0)), mode="edge")
        tile = max(64, (p["tile"] or self.native_size()) // 8 * 8)
        overlap = max(32, tile // 8)
        edit = dataclasses.replace(request, task="img2img")
        seconds = []
        remote: dict = {}  # what a server's runs add to the recipe

        def draw(region, index: int, count: int):
            part = Part(progress, index / count, 1 / count)
            progress.say(f"Tile {index + 1} of {count}")
            one = dataclasses.replace(edit, seed=(request.seed + index) % (2**32))
            began = time.perf_counter()
            if self.remote is not None:
                drawn, facts = self.remote.edit(one, part, region, None, p["detail"])
                remote.update(facts)
            else:
                drawn = self._draw(one, part, region, None, p["detail"])
            seconds.append(time.perf_counter() - began)
            return drawn

        out = editing.tiled(padded, tile, overlap, draw)[:height, :width]
        progress.say("")
        rows = editing.tile_spans(padded.shape[0], tile, overlap)
        cols = editing.tile_spans(padded.shape[1], tile, overlap)
        facts = {"task": "refine", "strength": p["detail"], "scale": p["scale"],
                 "tiles": [len(cols), len(rows)], "overlap": overlap,
                 # the tiles as drawn: evened out, so at most the size asked for
                 "tile": [cols[0][1] - cols[0][0], rows[0][1] - rows[0][0]],
                 "source_size": [source.width, source.height],
                 "tile_seconds": round(sum(seconds), 2)}
        return self._result(request, out, started, facts, remote or None)

    def _result(self, request: Request, pixels, started: float, facts: dict | None = None,
                remote: dict | None = None) -> Result:
        """The PNG (A1111 ``parameters`` + the studio's recipe) and the result's metadata
        (``remote``: what a ComfyUI server's run adds, for an edit drawn there)."""
        from PIL import Image

        from creative_studio.io.images import encode_png

        p = request.params
        image = Image.fromarray(pixels)
        scheduler_name = p["scheduler"]
        identity, device = self.identity, self.device
        if remote is not None:
            remote = dict(remote)
            sampler = remote["scheduler"]
            identity = ModelIdentity(self.identity.name, self.identity.ref,
                                     remote.pop("sha256"), "server")
            device = f"server:{remote['server']}"
            schedule_config = {}
        elif self.pipe is None:  # strength 0 on a server: nothing was drawn
            sampler, schedule_config = scheduler_name, {}
        else:
            sampler = scheduler_name if scheduler_name != "default" else \
                type(self.pipe.scheduler).__name__.replace("Scheduler", "")
            schedule_config = {"scheduler_config": json.loads(
                self.pipe.scheduler.to_json_string())}
        extra = []
        used = [lora for lora in self._used_loras if lora.weight]
        if used:  # as A1111 writes them (Civitai links the files from these hashes)
            extra.append(("Lora hashes", ", ".join(f"{lora.name}: {lora.short}"
                                                   for lora in used)))
        if facts and facts["task"] != "generate":
            extra.append(("Denoising strength", f"{facts['strength']:g}"))
            if "feather" in facts:
                extra.append(("Mask blur", facts["feather"]))
        shown = request.prompt  # the stack's LoRAs as tags, as A1111's prompts carry them
        for lora in used:
            if f"<lora:{lora.name.lower()}:" not in shown.lower():
                shown += f" <lora:{lora.name}:{lora.weight:g}>"
        parameters = a1111_parameters(shown, p["negative"], p["steps"], sampler,
                                      p["guidance"], request.seed, image.width, image.height,
                                      a1111_model_name(identity),
                                      identity.sha256 if identity else "", extra)
        recipe = json.dumps({"prompt": request.prompt, "seed": request.seed, "params": p,
                             "task": request.task, "parents": request.parents,
                             "model": request.model}, ensure_ascii=True)
        png = encode_png(image, {"parameters": parameters, "creative-studio": recipe})
        title = request.prompt[:60] or "(no prompt)"
        if request.task != "generate":
            title = f"{request.task}: {title}"
        return Result([Asset("image", "image/png", png, "image.png")], identity, device,
                      metadata={"width": image.width, "height": image.height,
                                "steps": p["steps"], "guidance": p["guidance"],
                                "scheduler": sampler,
                                # the full config: a fixed config with the same weights draws
                                # differently, and the recipe must say which one drew this
                                **schedule_config, **(facts or {}), **(remote or {}),
                                **({"loras": [{"name": lora.name, "file": str(lora.path),
                                               "weight": lora.weight, "sha256": lora.sha256,
                                               "hash": lora.short,
                                               "triggers": list(lora.triggers)}
                                              for lora in self._used_loras]}
                                   if self._used_loras else {}),
                                "seconds": round(time.perf_counter() - started, 2)},
                      title=title)

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
