"""Longest GUI stall over a session (warm-up, first load, two streaming jobs) vs the idle
window.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/gui_stall.py [--tokens 96]

A 5 ms QTimer heartbeat runs on the GUI thread; a stall is the gap between beats minus
5 ms. Phase 1 (reference): the idle window for 3 s. Phase 2: the window's warm-up (the model
process starts and imports the plugins' libraries; 6 s). Phases 3 and 4: two Text jobs
through the panel (the first loads the model), tokens streaming into the editor. The window
runs its models in the model process, as the studio does by default.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
os.environ.setdefault("CREATIVE_STUDIO_CACHE",
                      str(Path(__file__).resolve().parents[1] / ".cache" / "models"))
os.environ["CREATIVE_STUDIO_NO_DIALOGS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"

from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from creative_studio.core.settings import Settings  # noqa: E402
from creative_studio.plugins import PluginRegistry  # noqa: E402
from creative_studio.ui.main_window import MainWindow  # noqa: E402

BEAT_MS = 5


class Heartbeat:
    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.gaps: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(BEAT_MS)
        self.timer.timeout.connect(self.beat)

    def start(self) -> None:
        self.gaps = []
        self.clock.start()
        self.timer.start()

    def beat(self) -> None:
        gap = max(0.0, self.clock.restart() - BEAT_MS)
        self.gaps.append(gap)
        if gap > 40 and os.environ.get("BENCH_VERBOSE"):
            print(f"  stall {gap:.0f} ms at {time.perf_counter():.2f}", flush=True)

    def stop(self) -> dict[str, float]:
        self.timer.stop()
        gaps = sorted(self.gaps)
        return {"max": gaps[-1], "p99": gaps[int(len(gaps) * 0.99) - 1],
                "median": statistics.median(gaps), "beats": len(gaps)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=96)
    args = parser.parse_args()
    app = QApplication([])
    os.environ["CREATIVE_STUDIO_NO_PRELOAD"] = "1"  # the bench runs the preload itself
    window = MainWindow(PluginRegistry.discover(), Settings())
    window.show()
    heart = Heartbeat()
    results = {}

    def idle_phase() -> None:
        heart.start()
        QTimer.singleShot(3000, preload_phase)

    def preload_phase() -> None:
        # the window's warm-up: the model process starts and imports the libraries
        results["idle"] = heart.stop()
        heart.start()
        window.runner.warm_up(window.registry.preload_modules())

        def preload_done() -> None:
            results["preload"] = heart.stop()
            generate_phase()
        QTimer.singleShot(6000, preload_done)

    def generate_phase(key: str = "generate") -> None:
        results["phase"] = key
        panel = window.panels["text"]
        panel.instruction.setPlainText("Write a short story about a robot who learns to paint.")
        panel.max_tokens.setValue(args.tokens)
        panel.seed_mode.setCurrentText("fixed")
        panel.seed.setValue(1)
        heart.start()
        results["t0"] = time.perf_counter()
        panel.generate()
        wait_done()

    def wait_done() -> None:
        if window.panels["text"]._stream is None:
            key = results["phase"]
            results[key] = heart.stop()
            results[key + "_seconds"] = time.perf_counter() - results["t0"]
            if key == "generate":
                QTimer.singleShot(100, lambda: generate_phase("warm"))
                return
            window.close()
            app.quit()
        else:
            QTimer.singleShot(50, wait_done)

    QTimer.singleShot(500, idle_phase)
    app.exec()
    idle, gen, warm = results["idle"], results["generate"], results["warm"]
    print(f"first job {results['generate_seconds']:.1f} s (model load from cache included), "
          f"second job {results['warm_seconds']:.1f} s; {args.tokens} max tokens each")
    for name, r in (("idle window (reference)", idle),
                    ("warm-up: model process", results["preload"]),
                    ("first job: load+generate", gen),
                    ("second job: generate", warm)):
        print(f"{name:<26} max stall {r['max']:6.1f} ms  p99 {r['p99']:5.1f} ms  "
              f"median {r['median']:4.1f} ms  ({r['beats']} beats)")
    session = max(results["preload"]["max"], gen["max"], warm["max"])
    heavy = sorted(m for m in ("torch", "llama_cpp", "transformers") if m in sys.modules)
    print(f"max stall over the session (warm-up, first load, two jobs): {session:.1f} ms "
          f"(target <= 50 ms); heavy modules in the window's process: {heavy or 'none'}")
    base = max(idle["max"], 1.0)
    print(f"ratio max stall / idle max stall: first job {gen['max'] / base:.1f}x, "
          f"second job {warm['max'] / base:.1f}x")


if __name__ == "__main__":
    main()
