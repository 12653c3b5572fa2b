"""Start to first painted window: the studio vs a bare PySide6 window, same run.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/startup.py [--runs 5]

Wall time is measured from process spawn to the line the window prints from its first
paintEvent (interpreter start and imports included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def first_paint(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    for line in proc.stdout:
        if line.startswith("FIRST_PAINT"):
            wall = time.perf_counter() - start
            proc.wait(timeout=60)
            return wall, line.strip()
    raise RuntimeError(f"{cmd} never painted (rc={proc.wait()})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
           "CREATIVE_STUDIO_HOME": tempfile.mkdtemp(prefix="bench-home-")}
    studio, bare, lines = [], [], []
    for _ in range(args.runs):  # interleaved so both see the same machine load
        wall, _ = first_paint([sys.executable, "bench/_bare_window.py"], env)
        bare.append(wall)
        wall, line = first_paint([sys.executable, "main.py", "--exit-after-paint"], env)
        studio.append(wall)
        lines.append(line)
    s, b = statistics.median(studio), statistics.median(bare)
    print(f"platform: {env['QT_QPA_PLATFORM']}, runs: {args.runs}")
    print(f"bare PySide6 window  first paint: median {b * 1000:7.0f} ms")
    print(f"Creative Studio      first paint: median {s * 1000:7.0f} ms   ({lines[-1]})")
    print(f"ratio studio / bare: {s / b:.2f}x")


if __name__ == "__main__":
    main()
