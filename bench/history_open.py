"""Opening a big project in the window: 200,000 items, vs a one-item project, same run.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/history_open.py [--items 200000]

The big project is written straight through SQL in one transaction (recipes, lineage and
outputs of the studio's own shapes). Timed: ``window.open_project`` (the read-only check,
the open, the History's newest page, every panel's state) and the longest GUI stall right
after (a 5 ms heartbeat for 2 s), target: open <= 2 s, the window responsive.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))
os.environ["CREATIVE_STUDIO_NO_DIALOGS"] = "1"
os.environ["CREATIVE_STUDIO_NO_PRELOAD"] = "1"


def make(path: Path, count: int) -> None:
    from creative_studio.core.jobs import Request
    from creative_studio.core.project import ProjectStore

    store = ProjectStore.create(path)
    conn = store._conn
    conn.execute("PRAGMA synchronous=OFF")  # building the fixture only
    conn.execute("BEGIN")
    model = json.dumps({"name": "m", "ref": "embedded:m", "sha256": "ab" * 32,
                        "source": "embedded"})
    for start in range(0, count, 10_000):
        items, assets, parents = [], [], []
        for index in range(start, min(count, start + 10_000)):
            item_id = f"{index:032x}"
            data = f"text {index}".encode()
            request = Request("text", "generate", f"prompt number {index}",
                              {"temperature": 0.7, "max_tokens": 200}, seed=index)
            items.append((item_id, 1e9 + index, "text", "text", f"title {index}",
                          json.dumps(request.to_dict()), model, "cpu", "{}", "{}"))
            assets.append((item_id, "text", "text/plain", "", hashlib.sha256(data).hexdigest(),
                           len(data), data))
            if index % 3:
                parents.append((item_id, f"{index - 1:032x}"))
        conn.executemany("INSERT INTO items VALUES (?,?,?,?,?,?,?,?,?,?)", items)
        conn.executemany("INSERT INTO assets (item_id, role, mime, name, sha256, size, data) "
                         "VALUES (?,?,?,?,?,?,?)", assets)
        conn.executemany("INSERT INTO item_parents VALUES (?, ?)", parents)
    conn.execute("COMMIT")
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-history-"))
    big, small = folder / "big.csproj", folder / "small.csproj"
    started = time.perf_counter()
    make(big, args.items)
    make(small, 1)
    print(f"made {args.items:,} items in {time.perf_counter() - started:.1f} s "
          f"({big.stat().st_size / 1e6:.0f} MB)")

    from PySide6.QtWidgets import QApplication

    sys.path.insert(0, str(ROOT / "bench"))
    from gui_stall import Heartbeat

    from creative_studio.core.settings import Settings
    from creative_studio.plugins import PluginRegistry
    from creative_studio.ui.main_window import MainWindow

    app = QApplication([])
    window = MainWindow(PluginRegistry.discover(), Settings())
    window.show()
    app.processEvents()
    times = {}
    for name, path in (("one item (reference)", small), (f"{args.items:,} items", big)):
        t0 = time.perf_counter()
        assert window.open_project(path), window.errors
        app.processEvents()
        times[name] = time.perf_counter() - t0
        heart = Heartbeat()
        heart.start()
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.001)
        stall = heart.stop()
        shown = window.history.tree.topLevelItemCount()
        print(f"{name:<22} open {times[name]:6.2f} s   History shows {shown:,} "
              f"(+ 'Show older')   max stall after: {stall['max']:.0f} ms")
    ratio = times[f"{args.items:,} items"] / times["one item (reference)"]
    print(f"ratio big / one item: {ratio:.1f}x; target: the big one opens in <= 2 s")
    window.runner.shutdown()
    window.close()


if __name__ == "__main__":
    main()
