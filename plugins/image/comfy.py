"""Images on a ComfyUI server (made by ImageGenerator.load for ``server:`` references; no Qt,
no torch).

The panel's prompt, negative prompt, steps, guidance, seed and size go into ComfyUI's
standard text-to-image workflow (plugins/image/workflows.py), or into the user's own
workflow through the inputs chosen for them. The sampler and noise schedule are the server's
own (``sampler``/``schedule``; empty: the ones matching the panel's Scheduler), checked
against what the server offers. Progress and live previews come over the websocket; Stop
interrupts the job or takes it out of the server's queue. The picture is stored with the
studio's recipe (server, ComfyUI version, checkpoint and its hash when declared, the whole
workflow) and ComfyUI's own ``prompt``/``workflow`` chunks, so it opens again in ComfyUI.
"""

from __future__ import annotations

import io
import json
from typing import Any

from creative_studio.core.errors import BadInput, Cancelled, ModelError
from creative_studio.core.jobs import Asset, ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress

from . import workflows

DEFAULT_SIDE, XL_SIDE = 512, 1024
MAX_OUTPUTS = 64  # pictures kept from one job


class ComfyImage:
    """One checkpoint on one ComfyUI server."""

    def __init__(self, source: ModelSource) -> None:
        from creative_studio.core import secrets
        from creative_studio.engines.comfyui import ComfyClient

        self.source = source
        self.checkpoint = source.hub_id
        self.client = ComfyClient(source.url, secrets.get(f"server:{source.server}"))
        self.identity = ModelIdentity(source.name, source.ref, "", "server")

    def close(self) -> None:
        self.client.close()

    @property
    def native_side(self) -> int:
        """The side its checkpoint draws best at: ComfyUI does not say, so SDXL by name."""
        return XL_SIDE if "xl" in self.checkpoint.lower() else DEFAULT_SIDE

    def _check(self, value: str, what: str, label: str) -> None:
        self.client.require(value, what, label, self.source.server)

    def workflow(self, request: Request, own: tuple | None = None
                 ) -> tuple[dict, str, dict[str, Any]]:
        """(the API workflow to queue, its name, the values the panel put in — for an own
        workflow, ``own`` = ``workflows.load_document(…)``, only those its chosen inputs
        took: a recipe says what was used)."""
        p = request.params
        side = self.native_side
        values: dict[str, Any] = {
            "prompt": request.prompt, "negative": p["negative"], "seed": int(request.seed),
            "steps": p["steps"], "guidance": p["guidance"],
            "width": p["width"] or None, "height": p["height"] or None,
            "checkpoint": self.checkpoint}
        if own is not None:
            name, graph, inputs = own
            used = {role: value for role, value in values.items() if role in inputs}
            return workflows.apply(graph, inputs, values), name, used
        sampler, schedule = self.sampler_of(request)
        values.update(width=values["width"] or side, height=values["height"] or side,
                      sampler=sampler, schedule=schedule)
        graph = workflows.standard(self.checkpoint, request.prompt, p["negative"],
                                   int(request.seed), p["steps"], p["guidance"], sampler,
                                   schedule, values["width"], values["height"])
        return graph, workflows.STANDARD_NAME, values

    def _run(self, graph: dict, progress: Progress):
        """Queue ``graph``, relay its progress and previews, and return the finished run."""
        from creative_studio.io.images import decode_image, encode_png

        progress.say(f"Queued on {self.source.server}")

        def on_progress(value: int, total: int, node: str) -> None:
            progress.update(0.95 * value / total)

        def on_preview(data: bytes) -> None:
            try:  # an untrusted frame: decoded with the bomb limits, shown as a small PNG
                image = decode_image(data, "a preview")
            except BadInput:
                return
            image.thumbnail((512, 512))
            progress.update(progress.fraction, encode_png(image.convert("RGB")))

        run = self.client.run(graph, cancelled=lambda: progress.cancelled,
                              on_progress=on_progress, on_preview=on_preview,
                              on_status=progress.say)
        if progress.cancelled:
            raise Cancelled()
        if not run.outputs:
            raise ModelError(f"The workflow ran on {self.source.server} but saved no picture: "
                             "it needs a Save Image (or Preview Image) node.")
        return run

    def sampler_of(self, request: Request) -> tuple[str, str]:
        p = request.params
        sampler, schedule = workflows.SAMPLERS.get(p["scheduler"], (None, None))
        sampler, schedule = p.get("sampler") or sampler, p.get("schedule") or schedule
        if sampler is None:
            raise BadInput(f"ComfyUI has no {p['scheduler']} sampler: choose another "
                           "Scheduler, or a Server sampler.")
        self._check(sampler, "samplers", "sampler")
        self._check(schedule, "schedulers", "noise schedule")
        return sampler, schedule

    def edit(self, request: Request, progress: Progress, region, mask, strength: float):
        """(the server's drawing of ``region`` (uint8 H×W×3) as an array of its size, what
        the recipe keeps): the region is uploaded under a neutral name, its ``mask`` (255 =
        redraw) as the picture's transparency, and drawn by the standard editing graph."""
        import uuid

        import numpy as np
        from PIL import Image

        from creative_studio.io.images import decode_image, to_rgb

        self._check(self.checkpoint, "checkpoints", "checkpoint")
        sampler, schedule = self.sampler_of(request)
        info = self.client.info()
        sha256 = self.client.checkpoint_sha256(self.checkpoint)
        picture = Image.fromarray(region)
        if mask is not None:  # LoadImage's mask is 1 - alpha: transparent = redraw
            picture.putalpha(Image.fromarray((255 - mask).astype(np.uint8)))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
        progress.say(f"Sending the picture to {self.source.server}")
        name = self.client.upload_image(buffer.getvalue(),
                                        f"creative-studio-{uuid.uuid4().hex}.png")
        p = request.params
        graph = workflows.edit(self.checkpoint, name, request.task, strength, request.prompt,
                               p["negative"], int(request.seed), p["steps"], p["guidance"],
                               sampler, schedule)
        run = self._run(graph, progress)
        out = to_rgb(decode_image(self.client.image(run.outputs[0]),
                                  f"The picture from {self.source.server}"))
        if out.size != picture.size:  # a server's own size rounding: back to the region's
            out = out.resize(picture.size, Image.Resampling.LANCZOS)
        progress.update(1.0)
        device = info.devices[0] if info.devices else {}
        facts = {"engine": "comfyui", "server": self.source.server,
                 "server_url": self.source.url,
                 "comfyui_version": info.version or "not given by the server",
                 "server_device": f"{device.get('type', '?')}: {device.get('name', '?')}",
                 "workflow_name": workflows.EDIT_NAMES[request.task], "workflow": graph,
                 "prompt_id": run.prompt_id, "checkpoint": self.checkpoint,
                 "scheduler": sampler, "schedule": schedule, "sha256": sha256}
        return np.asarray(out), facts

    def generate(self, request: Request, progress: Progress) -> Result:
        from creative_studio.io.images import decode_image, encode_png, png_text

        from .generator import a1111_parameters

        info = self.client.info()
        # an own workflow may load no checkpoint (another loader, no model at all): then none
        # is required, checked or claimed. Checked first: a server of a pool without it
        # hands the job on
        workflow = request.params.get("workflow")
        own = workflows.load_document(workflow) if workflow else None
        checkpoint = self.checkpoint if own is None or "checkpoint" in own[2] else ""
        if checkpoint:
            self._check(checkpoint, "checkpoints", "checkpoint")
        graph, name, values = self.workflow(request, own)
        sha256 = self.client.checkpoint_sha256(checkpoint) if checkpoint else ""
        run = self._run(graph, progress)
        p = request.params
        standard = name == workflows.STANDARD_NAME
        sampler = values.get("sampler") or (p["scheduler"] if standard else "")
        recipe = {"prompt": request.prompt, "seed": request.seed, "params": p,
                  "model": request.model}
        assets, sizes = [], []
        for output in run.outputs[:MAX_OUTPUTS]:
            progress.check()
            data = self.client.image(output)
            image = decode_image(data, f"The picture {output.filename}")
            theirs = png_text(data) if data.startswith(b"\x89PNG") else {}
            chunks = {"creative-studio": json.dumps(recipe, ensure_ascii=True),
                # ComfyUI's own: the API graph (and the UI graph when the server wrote one)
                "prompt": theirs.get("prompt") or json.dumps(graph, ensure_ascii=False)}
            if "workflow" in theirs:
                chunks["workflow"] = theirs["workflow"]
            if standard:  # A1111's line claims steps, sampler, CFG: only what ran them
                chunks["parameters"] = a1111_parameters(
                    request.prompt, p["negative"], p["steps"], sampler, p["guidance"],
                    request.seed, image.width, image.height, checkpoint, sha256)
            if image.mode not in ("RGB", "RGBA", "L", "LA", "I;16"):
                image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
            assets.append(Asset("image", "image/png", encode_png(image, chunks),
                                f"image-{len(assets) + 1}.png" if assets else "image.png"))
            sizes.append((image.width, image.height))
        progress.update(1.0)
        identity = ModelIdentity(self.identity.name, self.identity.ref, sha256, "server")
        device = info.devices[0] if info.devices else {}
        width, height = sizes[0]
        metadata = {
            "engine": "comfyui", "server": self.source.server, "server_url": self.source.url,
            "comfyui_version": info.version or "not given by the server",
            "server_device": f"{device.get('type', '?')}: {device.get('name', '?')}",
            "workflow_name": name, "workflow": graph,
            "prompt_id": run.prompt_id, "width": width, "height": height,
            "seconds": run.seconds, "queued_seconds": run.queued_s, "pictures": len(assets)}
        # what the panel put into the graph, and nothing it did not (an own workflow's
        # sampler and steps are its own, in "workflow")
        metadata.update({key: value for key, value in (
            ("checkpoint", checkpoint), ("steps", values.get("steps")),
            ("guidance", values.get("guidance")), ("scheduler", sampler),
            ("schedule", values.get("schedule"))) if value not in (None, "")})
        if len(run.outputs) > MAX_OUTPUTS:
            metadata["pictures_left_out"] = len(run.outputs) - MAX_OUTPUTS
        return Result(assets, identity, f"server:{self.source.server}", metadata=metadata,
                      title=request.prompt[:60] or "(no prompt)")
