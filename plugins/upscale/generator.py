"""Super-resolution with spandrel models, tiled, or on a ComfyUI server
(plugins/upscale/comfy.py) (no Qt; torch imported lazily).

Params of an ``upscale`` request (declared in plugin.toml): ``tile`` (input px, 0 = from free
memory), ``size`` (a preset of sizes.py), ``precision`` (``auto`` = bfloat16 where the CPU has native bf16 / float16 on
CUDA, or ``fp32``). The output keeps the input's alpha, ICC profile and EXIF.
"""

from __future__ import annotations

import io
from pathlib import Path

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import Asset, Inputs, ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress
from creative_studio.io.images import (
    colour_and_exif,
    decode_image,
    resized_exif,
    to_rgb,
)

from . import models
from .picture import AUTO
from .sizes import output_size


def _factor(before: int, after: int) -> str:
    """×2, ×3.5…: how much wider the output is, as a short name."""
    return f"{after / before:.2f}".rstrip("0").rstrip(".")


def fast_dtype(device: str, precision: str):
    """The reduced precision to autocast to, or None for float32."""
    import torch

    if precision == "fp32":
        return None
    if device.startswith("cuda"):
        return torch.float16
    if device == "cpu" and (precision == "bf16" or torch.ops.mkldnn._is_mkldnn_bf16_supported()):
        return torch.bfloat16
    return None


def model_slug(identity: ModelIdentity) -> str:
    """A short file-name-safe name of a model: its id, file stem or server model."""
    import re

    ref = identity.ref or identity.name
    tail = ref.split(":", 1)[-1].rsplit("/", 1)[-1]
    tail = Path(tail).stem if "." in tail else tail
    return re.sub(r"[^A-Za-z0-9._-]+", "-", tail).strip("-._")[:40] or "model"


def _manifest():
    """This plugin's manifest (Automatic finds the embedded models' files through it)."""
    import tomllib

    from creative_studio.plugins.manifest import PluginManifest

    path = Path(__file__).with_name("plugin.toml")
    return PluginManifest.from_dict(tomllib.loads(path.read_text(encoding="utf-8")), str(path))


class UpscaleGenerator:
    def __init__(self) -> None:
        self.upscaler: models.LoadedUpscaler | None = None
        self.device = "cpu"
        self.remote = None  # an upscale model on a ComfyUI server (plugins/upscale/comfy.py)
        # Automatic: the embedded models it chose so far, by id (loaded when first chosen)
        self.auto: dict[str, models.LoadedUpscaler] | None = None

    @staticmethod
    def validate(request: Request) -> None:
        """A tile is 0 (automatic) or at least 32 px; the size is a known preset."""
        tile = request.params["tile"]
        if tile and tile < 32:
            raise BadInput("Tiles must be at least 32 px (or 0 for automatic).")
        output_size(100, 100, request.params["size"], 4)  # a known preset

    def load(self, source: ModelSource, device: str, progress: Progress) -> None:
        if source.source == "server":
            from .comfy import ComfyUpscale

            self.remote = ComfyUpscale(source)
            return
        self.device = device
        if source.offer is not None and source.offer.id == AUTO:  # chosen per picture
            self.auto, self.upscaler = {}, None
            return
        self.auto = None
        progress.say("Loading the upscale model…")
        self.upscaler = models.load(source, device)
        progress.say("")

    def choose(self, image, preset: str, progress: Progress):
        """Automatic: the embedded model that suits ``image`` (plugins/upscale/picture.py),
        loaded once; returns what the picture is."""
        from creative_studio.core.models import resolve

        from .picture import model_for

        picture, model_id = model_for(image, preset)
        assert self.auto is not None
        if model_id not in self.auto:
            source = resolve(_manifest(), f"embedded:{model_id}")
            progress.say(f"Loading {source.name} (Automatic: {picture.why})…")
            self.auto[model_id] = models.load(source, self.device)
            progress.say("")
        self.upscaler = self.auto[model_id]
        return picture, model_id

    def unload(self) -> None:
        self.upscaler = None
        if self.remote is not None:
            self.remote.close()
            self.remote = None

    def network(self, precision: str):
        """The callable run on each tile: the network (+ its fixed resize), maybe autocast."""
        import torch

        up = self.upscaler
        assert up is not None
        dtype = fast_dtype(self.device, precision)
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"

        def run(tile):
            tile = tile.contiguous(memory_format=torch.channels_last)
            if dtype is None:
                out = up.model(tile)
            else:
                with torch.autocast(device_type, dtype=dtype):
                    out = up.model(tile)
            out = out.float()
            if up.output_resize != 1.0:  # animevideov3 ×2/×3 = the ×4 net + bicubic, as in ncnn
                out = torch.nn.functional.interpolate(out, scale_factor=up.output_resize,
                                                      mode="bicubic", align_corners=False)
            return out

        run.model = up.model.model  # tiling hooks cancel checks into its blocks
        return run, dtype

    def engine(self, request: Request, network, dtype):
        """The engine that runs this job: PyTorch, or ncnn for a model that came as an ncnn
        .param/.bin (asked for, or measured faster on this machine: plugins/upscale/
        ncnn_engine.py). Returns (network, dtype, what the recipe says)."""
        import torch

        from creative_studio.core import cpu

        from . import ncnn_engine

        up = self.upscaler
        assert up is not None
        wanted = request.params.get("engine", "auto")
        if wanted == "torch" or self.device != "cpu" and wanted == "auto":
            return network, dtype, {"engine": "pytorch"}
        if up.ncnn is None or not ncnn_engine.available():
            if wanted == "ncnn":
                why = "is not installed" if up.ncnn else "runs models that come as .param/.bin"
                raise BadInput(f"The ncnn engine {why}: {up.name} runs on PyTorch (choose "
                               "Fastest measured or PyTorch).")
            return network, dtype, {"engine": "pytorch"}
        threads = cpu.POLICY.threads()
        gpu = int(request.params.get("vulkan", 0))
        # the graph runs whole, its own final resize too (animevideov3 ×2/×3: the ×4 net,
        # then ncnn's bicubic; the PyTorch path does that resize after the converted net)
        exact = request.params["precision"] == "fp32"
        # what the recipe says of ncnn's precision: Fast stores bfloat16 (NcnnNet), Exact not
        ncnn_dtype = None if exact else torch.bfloat16
        if not 0 <= gpu < len(ncnn_engine.gpus()):
            gpu = -1  # no such Vulkan device: the CPU
        if wanted == "ncnn":
            run = self._ncnn_net(threads, gpu, exact)
            return run, ncnn_dtype, {"engine": "ncnn", "ncnn_device": run.device}
        # Fastest measured: PyTorch, ncnn on the CPU and ncnn on the chosen Vulkan GPU (not
        # a software one like Mesa's lavapipe: far slower than ncnn's own CPU path, so it is
        # not even loaded)
        engines = {"pytorch": network, "ncnn": self._ncnn_net(threads, -1, exact)}
        if gpu >= 0 and not ncnn_engine.software(gpu):
            engines["ncnn-vulkan"] = self._ncnn_net(threads, gpu, exact)
        device = engines["ncnn-vulkan"].device if "ncnn-vulkan" in engines else "cpu"
        chosen, seconds = ncnn_engine.choose(
            f"{up.sha256}|{device}|{threads}|{request.params['precision']}", engines)
        said = {"engine": chosen, "engine_seconds": seconds}
        if chosen == "pytorch":
            return network, dtype, said
        return engines[chosen], ncnn_dtype, {**said, "ncnn_device": engines[chosen].device}

    def _ncnn_net(self, threads: int, gpu: int, exact: bool):
        """The ncnn graph of the loaded model on the CPU (``gpu`` -1) or a Vulkan GPU, kept
        while the model, the threads, the device and the precision stay the same."""
        from . import ncnn_engine

        up = self.upscaler
        assert up is not None and up.ncnn is not None
        nets = getattr(self, "_ncnn_nets", {})
        key = (up.sha256, threads, gpu, exact)
        if key not in nets:
            nets = {k: v for k, v in nets.items() if k[0] == up.sha256}  # another model: gone
            nets[key] = ncnn_engine.NcnnNet(*up.ncnn, threads=threads, gpu=gpu, exact=exact)
        self._ncnn_nets = nets
        return nets[key]

    def _prepare(self, request: Request, image, preset: str, progress: Progress):
        """The local network set up for this request and picture (Automatic chooses by
        ``image``): (upscaler, network, tile, model identity, what the recipe says)."""
        from .tiling import auto_tile

        chosen = {}
        if self.auto is not None:
            picture, model_id = self.choose(image, preset, progress)
            chosen = {"automatic": {"chose": model_id, "because": picture.why,
                                    **picture.figures()}}
        up = self.upscaler
        assert up is not None
        network, dtype = self.network(request.params["precision"])
        network, dtype, engine = self.engine(request, network, dtype)
        # ncnn on the CPU costs more memory a pixel (its convolutions' workspace)
        on_ncnn_cpu = engine["engine"] == "ncnn" and engine.get("ncnn_device") == "cpu"
        tile = request.params["tile"] or auto_tile(
            up.model.architecture.name, up.pad, up.align, device=self.device,
            picture=(image.height, image.width), ncnn=on_ncnn_cpu)
        identity = ModelIdentity(up.name, f"embedded:{chosen['automatic']['chose']}"
                                 if chosen else request.model, up.sha256, up.source)
        details = {"tile": tile, "pad": up.pad, **chosen, **engine,
                   "precision": str(dtype).replace("torch.", "") if dtype else "float32"}
        return up, network, tile, identity, details

    def _video(self, request: Request, progress: Progress, asset: Asset) -> Result:
        """Upscale a video frame by frame (plugins/upscale/video.py), resumable."""
        import numpy as np
        import torch

        from creative_studio.core.paths import cache_dir

        from . import video
        from .tiling import run_tiled

        if self.remote is not None:
            raise BadInput("Videos are upscaled on this computer, not on a ComfyUI server: "
                           "choose a model of this computer.")
        name = asset.name or "The video"
        preset = request.params["size"]
        first = video.first_frame(asset.data, name)
        up, network, tile, identity, details = self._prepare(request, first, preset, progress)

        def upscale_frame(rgb, part):
            x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None]  # writable
            return run_tiled(network, x.to(self.device), up.scale, tile, up.pad, up.align,
                             part)

        recipe = {"model": up.sha256, **{k: request.params.get(k) for k in
                                         ("size", "tile", "precision", "engine", "crf")},
                  "engine_used": details.get("engine")}
        folder = video.work_folder(cache_dir() / "video-work", asset.data, recipe)
        done = video.upscale(asset.data, name,
                             lambda w, h: output_size(w, h, preset, up.scale), upscale_frame,
                             int(request.params.get("crf", 16)), progress, folder)
        from creative_studio.core.project import MAX_ASSET_BYTES

        if len(done.data) > MAX_ASSET_BYTES:
            raise BadInput(f"The upscaled video is {len(done.data) / 2**30:.1f} GB: a project "
                           f"keeps files up to {MAX_ASSET_BYTES // 2**30} GB. Raise the video "
                           "quality number (smaller files) or cut the video into parts.")
        info = done.metadata["input_video"]
        stem = Path(name).stem
        factor = _factor(info["width"], done.metadata["width"])
        suffix = ".mp4" if done.mime == "video/mp4" else ".mkv"
        return Result([Asset("video", done.mime, done.data, f"upscaled{suffix}"),
                       Asset("image", "image/png", done.poster, "poster.png")],
                      identity, self.device,
                      metadata={**done.metadata, **details, "size": preset, "scale": up.scale,
                                "input": [info["width"], info["height"]],
                                "file_stem": f"{stem}_x{factor}_{model_slug(identity)}"},
                      title=f"{stem} ×{factor} · {identity.name} ({info['width']}×"
                            f"{info['height']} → {done.metadata['width']}×"
                            f"{done.metadata['height']}, {done.metadata['frames']} frames)")

    @staticmethod
    def _writer(buffer, made: tuple[int, int], final: tuple[int, int], alpha, icc, exif,
                faces=None):
        """(write, close): ``write(y, rows)`` for the network's output rows (``made`` px in
        all): resampled to ``final`` where the sizes differ (io/png_stream.BandResizer),
        faces restored (``faces(sink)`` → a faces.FacePaster in front of ``sink``), the
        source's alpha added, written into a PNG in ``buffer`` band by band; ``close()``
        ends it."""
        import numpy as np
        from PIL import Image

        from creative_studio.io.png_stream import BandResizer, PngWriter

        # the alpha is one byte a pixel: enlarged whole (100 MB for 100 MP), cut per band
        alphas = None if alpha is None else \
            np.asarray(alpha.resize(final, Image.Resampling.BICUBIC))
        png = PngWriter(buffer, *final, channels=3 if alphas is None else 4,
                        text={"creative-studio": "upscale"}, icc=icc,
                        exif=resized_exif(exif, *final))

        def put(y: int, rows) -> None:
            if alphas is not None:
                rows = np.dstack([rows, alphas[y:y + rows.shape[0]]])
            png.write(rows)

        paster = faces(put) if faces is not None else None
        after_resize = paster or put
        write = after_resize if made == final else BandResizer(made, final, after_resize)

        def close() -> None:
            if paster is not None:
                paster.close()
            png.close()

        return write, close

    def _faces(self, request: Request, rgb, final: tuple[int, int], progress: Progress):
        """The faces step asked for by the ``faces`` parameter (a face model file): a
        factory of the FacePaster for the result's bands and what the recipe says of it; or
        (None, {}) when no face model is chosen."""
        from . import faces

        chosen = str(request.params.get("faces") or "").strip()
        if not chosen:
            return None, {}
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise BadInput(f"The face model {path} is not there: choose the file again, or "
                           "no face model.")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)  # the same file, unchanged
        if getattr(self, "_face_key", None) != key:
            progress.say(f"Loading the face model {path.name}…")
            self._face_model, self._face_key = faces.FaceModel(path, self.device), key
        model = self._face_model
        found = faces.detect(rgb)
        strength = float(request.params.get("face_strength", 1.0))
        sx, sy = final[0] / rgb.width, final[1] / rgb.height
        scaled = [f.scaled(sx, sy) for f in found]
        said = {"faces": {"model": model.name, "sha256": model.sha256,
                          "architecture": model.architecture, "found": len(found),
                          "strength": strength}}
        if not found:
            return None, said
        return (lambda sink: faces.FacePaster(scaled, model, strength, final[1], sink,
                                              progress)), said

    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        import numpy as np

        (parent,) = request.parents
        if request.task == "video":
            videos = [a for a in inputs.get(parent, []) if a.mime.startswith("video/")]
            if not videos:
                raise BadInput("The chosen item has no video.")
            return self._video(request, progress, videos[0])
        image_assets = [a for a in inputs.get(parent, []) if a.mime.startswith("image/")]
        if not image_assets:
            raise BadInput("The chosen item has no image.")
        image = decode_image(image_assets[0].data, image_assets[0].name or "The image")
        if min(image.size) < 2:
            raise BadInput(f"The image is {image.width}×{image.height}: too small to upscale.")
        preset = request.params["size"]
        icc, exif = colour_and_exif(image)
        if "transparency" in image.info:  # palette or colour-key transparency → real alpha
            image = image.convert("RGBA")
        alpha = image.getchannel("A") if "A" in image.getbands() else None
        rgb = to_rgb(image)
        buffer = io.BytesIO()
        if self.remote is not None:  # the network runs on the server; the rest stays here
            out, identity, where = self.remote.upscale(request, rgb, progress)
            scale = max(1, round(out.width / image.width))
            details = {"engine": "comfyui", **where}
            made = out.size
            final = output_size(image.width, image.height, preset, scale)
            paste, said = self._faces(request, rgb, final, progress)
            details.update(said)
            write, close = self._writer(buffer, made, final, alpha, icc, exif, paste)
            write(0, np.asarray(out))
            del out
        else:
            import torch

            from .tiling import run_tiled

            up, network, tile, identity, details = self._prepare(request, image, preset,
                                                                 progress)
            scale = up.scale
            made = image.width * scale, image.height * scale
            final = output_size(image.width, image.height, preset, scale)
            # bytes in, converted tile by tile; the output goes to the PNG a row of tiles at
            # a time (resampled on the way when the size asks for it)
            x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)[None]
            paste, said = self._faces(request, rgb, final, progress)
            details.update(said)
            del rgb
            write, close = self._writer(buffer, made, final, alpha, icc, exif, paste)
            run_tiled(network, x.to(self.device), up.scale, tile, up.pad, up.align, progress,
                      sink=write)
            del x
        close()
        png = buffer.getvalue()
        del buffer
        resampled = made != final
        out_width, out_height = final
        device = f"server:{self.remote.source.server}" if self.remote else self.device
        return Result([Asset("image", "image/png", png, "upscaled.png")], identity, device,
                      metadata={"width": out_width, "height": out_height, "scale": scale,
                                "input": [image.width, image.height], "size": preset,
                                "resampled": resampled, **details,
                                "icc": bool(icc), "exif": bool(exif),
                                # exported as photo_x4_<model>.png: named after the picture it enlarges
                                # and the model: two models' exports never share a name
                                "file_stem": f"{Path(image_assets[0].name or 'image').stem}"
                                             f"_x{_factor(image.width, out_width)}_"
                                             f"{model_slug(identity)}"},
                      # what tells two upscales apart: the picture, the model, the sizes
                      title=f"{Path(image_assets[0].name or 'image').stem} ×"
                            f"{_factor(image.width, out_width)} · {identity.name} "
                            f"({image.width}×{image.height} → {out_width}×{out_height})")
