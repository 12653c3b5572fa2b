"""Command-line options every training script in tools/ shares."""

from __future__ import annotations

import argparse
from pathlib import Path


def training_parser(name: str, *, batch: int, lr: float, warm_start: Path,
                    description: str = "") -> argparse.ArgumentParser:
    """--data, --run, --minutes, --batch, --lr, --threads, --save-minutes, --warm-start."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, default=Path(f".cache/{name}-data"))
    parser.add_argument("--run", type=Path, default=Path(f".cache/{name}-train"),
                        help="checkpoints, logs and samples (resumed when present)")
    parser.add_argument("--minutes", type=float, default=60, help="stop after this long")
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save-minutes", type=float, default=4)
    parser.add_argument("--warm-start", type=Path, default=warm_start,
                        help="weights to start from when the run has no checkpoint")
    return parser
