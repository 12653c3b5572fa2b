"""Upscaling on a ComfyUI server (made by UpscaleGenerator.load for ``server:`` references; no
Qt, no torch): the picture is sent with ``/upload/image`` under a neutral name, the server's
``UpscaleModelLoader`` + ``ImageUpscaleWithModel`` enlarge it, and the studio does the rest as
for a local model (final size, alpha, ICC profile, EXIF)."""

from __future__ import annotations

import io
import uuid

from creative_studio.core.errors import Cancelled, ModelError
from creative_studio.core.jobs import ModelIdentity, Request
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress


def upscale_workflow(image_name: str, model_name: str) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": model_name}},
        "3": {"class_type": "ImageUpscaleWithModel",
              "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "creative-studio-upscale", "images": ["3", 0]}},
    }


class ComfyUpscale:
    """One upscale model on one ComfyUI server."""

    def __init__(self, source: ModelSource) -> None:
        from creative_studio.core import secrets
        from creative_studio.engines.comfyui import ComfyClient

        self.source = source
        self.model = source.hub_id
        self.client = ComfyClient(source.url, secrets.get(f"server:{source.server}"))

    def close(self) -> None:
        self.client.close()

    def upscale(self, request: Request, rgb, progress: Progress):
        """(the enlarged RGB picture, the model's identity, where it ran) for ``rgb``."""
        from creative_studio.io.images import decode_image, to_rgb

        self.client.require(self.model, "upscale_models", "upscale model", self.source.server)
        info = self.client.info()
        buffer = io.BytesIO()
        rgb.save(buffer, "PNG")
        progress.say(f"Sending the picture to {self.source.server}")
        name = self.client.upload_image(buffer.getvalue(),
                                        f"creative-studio-{uuid.uuid4().hex}.png")
        graph = upscale_workflow(name, self.model)
        run = self.client.run(graph, cancelled=lambda: progress.cancelled,
                              on_progress=lambda v, m, n: progress.update(0.95 * v / m),
                              on_status=progress.say)
        if progress.cancelled:
            raise Cancelled()
        if not run.outputs:
            raise ModelError(f"{self.source.server} saved no upscaled picture.")
        out = to_rgb(decode_image(self.client.image(run.outputs[0]),
                                  f"The picture from {self.source.server}"))
        if out.width < rgb.width or out.height < rgb.height:
            raise ModelError(f"{self.source.server} sent back a {out.width}×{out.height} "
                             f"picture for a {rgb.width}×{rgb.height} one: not an upscale.")
        progress.update(1.0)
        identity = ModelIdentity(f"{self.model} on {self.source.server}", self.source.ref, "",
                                 "server")
        return out, identity, {"server": self.source.server, "server_url": self.source.url,
                               "comfyui_version": info.version or "not given by the server",
                               "workflow": graph, "prompt_id": run.prompt_id,
                               "seconds": run.seconds}
