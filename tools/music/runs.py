"""What the music trainers share: resuming a run, saving its checkpoint and exporting the
weights the studio loads (safetensors + config.json), each written atomically."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def arguments(name: str, data: str, export: str, batch: int) -> argparse.ArgumentParser:
    """The options every trainer has: data, run (checkpoints), export, time, batch, lr."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / data)
    parser.add_argument("--run", type=Path, default=ROOT / "tools" / "music" / "checkpoints" /
                        name, help="where checkpoint.pt lives (committed: a new machine "
                                   "resumes)")
    parser.add_argument("--export", type=Path, default=ROOT / "resources" / "models" / export)
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--save-minutes", type=float, default=5)
    parser.add_argument("--steps", type=int, default=0,
                        help="stop after this many steps in this session too (0: by --minutes)")
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--fp32", action="store_true",
                        help="no bfloat16 autocast (default: on where the CPU has native bf16; "
                             "with AMX 2.6-5x faster a step, tools/music/README.md)")
    return parser


class Budget:
    """When a session stops: after --minutes, or after --steps more steps when given."""

    def __init__(self, args, step: int) -> None:
        import time

        self._clock = time.monotonic
        self.stop = self._clock() + args.minutes * 60
        self.last = step + args.steps if args.steps else None

    def running(self, step: int) -> bool:
        return self._clock() < self.stop and (self.last is None or step < self.last)


def torch_setup(args) -> bool:
    """Apply --threads; whether to train in bfloat16 autocast (native bf16, no --fp32)."""
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    return not args.fp32 and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def resume(model, optimizer, run: Path, lr: float | None = None,
           weights: Path | None = None) -> tuple[int, int]:
    """(step, seed) of ``run``'s checkpoint loaded into model and optimizer; (0, 0) if none.
    The seed counts the sessions, so each one draws different batches; ``lr`` (the one this
    session asks for) replaces the checkpoint's. Without a checkpoint, ``weights`` (an
    exported folder: model.safetensors + config.json with its step) starts the model where
    that export left it, with a fresh optimizer: the shipped weights are the checkpoint,
    so a new machine resumes without a second, larger file in the repository."""
    import torch

    checkpoint = run / "checkpoint.pt"
    run.mkdir(parents=True, exist_ok=True)
    if not checkpoint.is_file():
        if weights is not None and (weights / "model.safetensors").is_file():
            import json

            from safetensors.torch import load_file

            model.load_state_dict(load_file(str(weights / "model.safetensors")))
            step = int(json.loads((weights / "config.json").read_text()).get("step", 0))
            print(f"started from {weights} at step {step} (fresh optimizer)", flush=True)
            return step, 1
        return 0, 0
    state = torch.load(checkpoint, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = lr
    print(f"resumed at step {int(state['step'])}", flush=True)
    return int(state["step"]), int(state["seed"]) + 1


def save(model, optimizer, run: Path, step: int, seed: int) -> None:
    import torch

    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "step": step, "seed": seed}, run / "checkpoint.tmp")
    (run / "checkpoint.tmp").replace(run / "checkpoint.pt")


def export(model, folder: Path, step: int, figures: dict) -> None:
    """The weights and the model's config (with the step and its figures) for the studio."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "model.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    tmp.replace(folder / "model.safetensors")
    config = folder / "config.json.tmp"
    config.write_text(json.dumps({**model.config, "step": step, **figures}, indent=2))
    config.replace(folder / "config.json")
