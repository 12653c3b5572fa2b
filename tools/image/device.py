"""Train the embedded Image model on a lent GPU machine (tools/image/README.md, "On a GPU").

The device machine gets a copy of the working tree (64 MiB at most) and nothing else: no
network, no MiniLM package, no diffusers. The 151 MB training set does not fit, so this packs
what rebuilds it there — the emoji pictures (compressed), the captions, the MiniLM text encoder
in half precision and the diffusers wheels — and brings the trained weights back:

    .venv/bin/python tools/image/device.py pack            # here: writes .device-image/
    # there (device run, carry [".device-image"]): bash tools/image/device_run.sh MINUTES
    .venv/bin/python tools/image/device.py unpack FOLDER   # here: the returned fp16 UNet
                                                           # -> resources/models/image-emoji

``encode`` (run there by device_run.sh) rebuilds ``emoji32.npz`` from the pack with the same
code as tools/image/build_dataset.py; ``export`` writes the EMA UNet in float16 (under the
16 MB a returned file may have).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PACK = ROOT / ".device-image"
TREE_LIMIT = 64 * 2**20
WHEELS = ("diffusers", "importlib_metadata")  # the device image has the rest (KINDS.md)
SHIPPED = ROOT / "resources" / "models" / "image-emoji"


def tracked_bytes(skip: tuple[str, ...] = ()) -> int:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    return sum((ROOT / f).stat().st_size for f in files
               if f and (ROOT / f).is_file() and not f.startswith(skip))


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def half_minilm(out: Path) -> None:
    """The installed MiniLM text encoder, weights in float16 (45 MB instead of 91)."""
    import torch
    from safetensors.torch import load_file, save_file

    from plugins.image.text_encoder import minilm_path

    source = minilm_path()
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        shutil.copy(source / name, out / name)
    weights = {k: v.to(torch.float16) for k, v in load_file(source / "model.safetensors").items()}
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})


def pack(args) -> None:
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    data = np.load(args.data / "emoji32.npz")
    np.savez_compressed(out / "emoji32-images.npz", images=data["images"],
                        held_out=data["held_out"])
    shutil.copy(args.data / "captions.json", out / "captions.json")
    half_minilm(out / "minilm")
    from importlib.metadata import version

    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                    "--only-binary=:all:", "--python-version", "3.12", "-d", out / "wheels",
                    *(f"{name}=={version(name)}" for name in WHEELS)], check=True)
    aside = tuple(str(p.relative_to(ROOT)) for p in args.aside)
    total = tracked_bytes(aside) + folder_bytes(out)
    print(f"pack {folder_bytes(out) / 2**20:.1f} MiB; with the tracked files minus "
          f"{', '.join(aside) or 'nothing'}: {total / 2**20:.1f} MiB of {TREE_LIMIT / 2**20:.0f}")
    if total > TREE_LIMIT:
        print("too big for the device machine: move more tracked folders aside (--aside)")
    elif aside:
        print("before the device run: mkdir -p /tmp/aside && " + " && ".join(
            f"mv {a} /tmp/aside/" for a in aside) + "; afterwards: " + " && ".join(
            f"mv /tmp/aside/{Path(a).name} {Path(a).parent}/" for a in aside))


def encode(args) -> None:
    import torch

    from tools.image.build_dataset import save_dataset

    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = np.load(args.pack / "emoji32-images.npz")
    captions = json.loads((args.pack / "captions.json").read_text())["captions"]
    save_dataset(args.out, data["images"], captions, data["held_out"], args.pack / "minilm",
                 device)


def export(args) -> None:
    import torch
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(args.run / "unet", torch_dtype=torch.float16)
    unet.save_pretrained(args.out / "unet", variant="fp16")
    print(f"wrote {args.out / 'unet'}")


def unpack(args) -> None:
    """The returned fp16 UNet, in float32, as the shipped weights; the scheduler stays."""
    import torch
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(args.folder, variant="fp16",
                                                torch_dtype=torch.float32)
    unet.save_pretrained(args.to)
    for file in args.to.iterdir():
        file.chmod(0o644)
    print(f"wrote {args.to}; next: tools/image/grid.py --out docs, and count")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("pack", help="here: write the pack the device run needs")
    p.add_argument("--data", type=Path, default=ROOT / ".cache" / "image-data")
    p.add_argument("--out", type=Path, default=PACK)
    p.add_argument("--aside", type=Path, nargs="*",
                   default=[ROOT / "resources" / "models" / "music-gpt2", SHIPPED],
                   help="tracked folders to move out of the tree for the run (size limit)")
    p = verbs.add_parser("encode", help="there: rebuild emoji32.npz from the pack")
    p.add_argument("--pack", type=Path, default=PACK)
    p.add_argument("--out", type=Path, default=ROOT / ".cache" / "image-data")
    p = verbs.add_parser("export", help="there: the run's EMA UNet in float16")
    p.add_argument("--run", type=Path, default=ROOT / ".cache" / "image-train")
    p.add_argument("--out", type=Path, required=True)
    p = verbs.add_parser("unpack", help="here: the returned UNet becomes the shipped weights")
    p.add_argument("folder", type=Path)
    p.add_argument("--to", type=Path, default=SHIPPED / "unet")
    args = parser.parse_args()
    {"pack": pack, "encode": encode, "export": export, "unpack": unpack}[args.verb](args)


if __name__ == "__main__":
    main()
