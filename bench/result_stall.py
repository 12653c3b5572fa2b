"""The window's longest GUI stall when a large upscale result appears, vs the idle window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/result_stall.py [--megapixels 5]
        [--rounds 3]

The real window with the Upscale panel showing a source picture; a finished job's result (a
PNG of ``--megapixels``, photo-like noise, kept in the project as a real job writes it) is
handed to the window as the runner hands it (the DONE event on the GUI thread): the panel
shows it in the compare view and the History adds it. A 5 ms QTimer heartbeat on the GUI
thread measures the stalls: 2 s idle (reference), then 3 s from the result's arrival, per
round. The window is shown (offscreen) and repaints as it would on a screen.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
os.environ["CREATIVE_STUDIO_NO_DIALOGS"] = "1"
os.environ["CREATIVE_STUDIO_NO_PRELOAD"] = "1"

from gui_stall import Heartbeat  # noqa: E402


def photo_png(width: int, height: int, seed: int) -> bytes:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / 90 + seed), 128 + 100 * np.cos(y / 70),
                    128 + 60 * np.sin((x + y) / 150)], -1)
    rgb += rng.normal(0, 18, rgb.shape)
    buffer = io.BytesIO()
    Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megapixels", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from creative_studio.core.jobs import (
        Asset,
        Job,
        JobEvent,
        JobEventKind,
        JobState,
        ModelIdentity,
        Request,
        Result,
    )
    from creative_studio.core.settings import Settings
    from creative_studio.io.imports import import_bytes
    from creative_studio.plugins import PluginRegistry
    from creative_studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    window = MainWindow(PluginRegistry.discover(), Settings())
    window.resize(1400, 900)
    window.show()
    panel = window.panels["upscale"]
    window.tabs.setCurrentWidget(panel)
    store = window.store
    height = int((args.megapixels * 1e6 * 3 / 4) ** 0.5)
    width = int(args.megapixels * 1e6 / height)
    sources, results = [], []
    for seed in range(args.rounds):
        small = photo_png(width // 4, height // 4, seed)
        source = import_bytes(store, "upscale", f"photo{seed}.png", small, "image",
                              "image/png", {"width": width // 4, "height": height // 4})
        sources.append(source)
        results.append(photo_png(width, height, seed))
    print(f"result: {width}×{height} ({width * height / 1e6:.1f} MP, PNG "
          f"{len(results[0]) / 1e6:.1f} MB)")
    beat = Heartbeat()
    figures: dict[str, list[dict]] = {"idle": [], "result": []}
    round_ = [0]

    def idle() -> None:
        item = store.item(sources[round_[0]])
        panel.add_project_image(item)  # the source shown, as when the user picked it
        beat.start()
        QTimer.singleShot(2000, arrive)

    def arrive() -> None:
        figures["idle"].append(beat.stop())
        n = round_[0]
        request = Request("upscale", "upscale", parents=[sources[n]],
                          model="embedded:realesrgan-x4plus")
        result = Result([Asset("image", "image/png", results[n], "result.png")],
                        ModelIdentity("Real-ESRGAN x4plus", request.model), "cpu",
                        metadata={"width": width, "height": height}, title=f"photo{n} ×4")
        job = Job(request=request, label=f"photo{n}.png", state=JobState.DONE, store=store)
        job.result = result
        job.item_id = store.add_item(request, result)  # the worker's write, off the GUI
        panel.jobs[job.id] = job
        panel.sources_of[job.id] = sources[n]
        beat.start()
        window.events.event.emit(JobEvent(JobEventKind.DONE, job))
        QTimer.singleShot(3000, done)

    def done() -> None:
        figures["result"].append(beat.stop())
        round_[0] += 1
        if round_[0] < args.rounds:
            QTimer.singleShot(100, idle)
        else:
            app.quit()

    QTimer.singleShot(500, idle)
    app.exec()
    for phase, rows in figures.items():
        worst = max(r["max"] for r in rows)
        print(f"{phase:7} max stall {worst:6.1f} ms (per round: "
              + ", ".join(f"{r['max']:.0f}" for r in rows) + f"; p99 "
              f"{max(r['p99'] for r in rows):.1f} ms)")
    idle_max = max(r["max"] for r in figures["idle"])
    result_max = max(r["max"] for r in figures["result"])
    print(f"result vs idle: {result_max:.0f} ms vs {idle_max:.0f} ms (target ≤ 50 ms)")
    window.runner.shutdown()
    window.close()


if __name__ == "__main__":
    main()
