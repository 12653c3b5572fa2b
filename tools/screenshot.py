"""Take the README's screenshot: the real window on an X server, after a real generation.

    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/screenshot.png [--dark]
    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/upscale.png --upscale

    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/music.png --music
    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/harmonize.png --harmonize
    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/interpolate.png --interpolate
    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/image.png --image
    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/comfyui.png --comfyui
    xvfb-run -a -s "-screen 0 1280x860x24" .venv/bin/python tools/screenshot.py docs/inpaint.png --inpaint

--image: the Image panel after the embedded emoji model drew four prompts (seed 0); the gallery
holds them and the last one is shown enlarged.
--comfyui: the Image panel drawing a batch of four on two ComfyUI servers started here
(tools/comfyui_server.py: its test checkpoint has random weights, so the pictures are noise
shaped by ComfyUI's whole pipeline), the Jobs dock showing where each ran.
--music: the Music panel continuing a D-major tune (4 bars kept, 8 added, seed 11).
--harmonize: the same tune harmonized in four voices (seed 3), each voice in its colour.
--chords: the tune harmonized to a typed progression (symbols above the roll), then a tenor
note selected and bars 2–3 chosen on the ruler: Regenerate voices set up.
--interpolate: 5 steps from that tune to a second one (seed 3), the steps side by side.
--inpaint: the Image panel set up to inpaint a photo (skimage's "chelsea", or a drawn picture):
the mask painted over the cat's face on the canvas, the brush outline beside it.
--video: the Upscale panel half-way through a clip (frame, seconds a frame, time left).
--upscale: the Upscale panel comparing DAT-light ×4 and Automatic on a small JPEG photo (skimage's "chelsea", needs
scikit-image; a drawn picture otherwise), the split in the middle, zoomed in.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="shot-home-"))
os.environ.setdefault("CREATIVE_STUDIO_CACHE", str(ROOT / ".cache" / "models"))
os.environ["CREATIVE_STUDIO_NO_DIALOGS"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from creative_studio.core.settings import Settings
    from creative_studio.plugins import PluginRegistry
    from creative_studio.ui.main_window import MainWindow
    from creative_studio.ui.theme import apply_theme

    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshot.png")
    app = QApplication([])
    settings = Settings(theme="dark" if "--dark" in sys.argv else "light")
    servers = []
    if "--comfyui" in sys.argv:
        from tools import comfyui_server

        comfyui_server.setup()
        models = comfyui_server.models_folder()
        servers = [comfyui_server.ComfyServer(models=models, threads=1) for _ in range(2)]
        settings.servers = [{"name": f"render-{n}", "url": server.url, "kind": "comfyui"}
                            for n, server in enumerate(servers, 1)]
    apply_theme(app, settings.theme)
    window = MainWindow(PluginRegistry.discover(), settings)
    window.resize(1280, 820)
    window.move(0, 0)
    window.show()
    def shoot() -> None:
        screen = app.primaryScreen()
        image = screen.grabWindow(0, 0, 0, 1280, 820) if os.environ.get("DISPLAY") \
            else window.grab()
        image.save(str(out))
        print(f"saved {out} ({image.width()}x{image.height()})")
        window.close()
        app.quit()

    if "--upscale" in sys.argv:
        upscale_scene(window, shoot)
    elif "--video" in sys.argv:
        video_scene(window, shoot)
    elif "--music" in sys.argv:
        music_scene(window, shoot)
    elif "--chords" in sys.argv:
        chords_scene(window, shoot)
    elif "--harmonize" in sys.argv or "--interpolate" in sys.argv:
        rework_scene(window, shoot, "harmonize" if "--harmonize" in sys.argv else "interpolate")
    elif "--image" in sys.argv:
        image_scene(window, shoot)
    elif "--comfyui" in sys.argv:
        comfyui_scene(window, shoot)
    elif "--inpaint" in sys.argv:
        inpaint_scene(window, shoot)
    else:
        text_scene(window, shoot)
    try:
        app.exec()
    finally:
        for server in servers:
            server.stop()


def comfyui_scene(window, shoot) -> None:
    from PySide6.QtCore import QTimer

    from tools.comfyui_server import CHECKPOINT

    panel = window.panels["image"]
    window.tabs.setCurrentWidget(panel)
    panel.add_model_ref(f"server:*/{CHECKPOINT}", f"{CHECKPOINT} — any server")
    panel.prompt.setPlainText("a lighthouse at dusk")
    panel.negative.setText("blurry")
    panel.width_box.setValue(256)
    panel.height_box.setValue(256)
    panel.steps.setValue(12)
    panel.seed_field.restore(7)
    panel.batch.setValue(4)
    jobs = []

    def start() -> None:
        index = panel.sampler.findData("dpmpp_2m")
        if index < 0:
            QTimer.singleShot(200, start)
            return
        panel.sampler.setCurrentIndex(index)
        panel.schedule.setCurrentIndex(panel.schedule.findData("karras"))
        jobs.extend(panel.generate())
        QTimer.singleShot(500, wait)

    def wait() -> None:
        if jobs and all(job.state.finished for job in jobs) and not panel.jobs:
            window.history.select(jobs[-1].item_id)
            QTimer.singleShot(300, shoot)
        else:
            QTimer.singleShot(200, wait)

    QTimer.singleShot(500, start)


def _photo(size: tuple[int, int], quality: int = 40) -> Path:
    """skimage's "chelsea" (a cat) as a JPEG of ``size``, or a drawn picture without it."""
    from PIL import Image

    picture = Path(tempfile.mkdtemp()) / "chelsea.jpg"  # a JPEG, as most pictures are
    try:
        from skimage import data

        Image.fromarray(data.chelsea()).resize(size, Image.Resampling.BICUBIC).save(
            picture, quality=quality)
    except ImportError:
        from PIL import ImageDraw

        image = Image.new("RGB", size, "skyblue")
        w, h = size
        ImageDraw.Draw(image).ellipse((w * 0.27, h * 0.2, w * 0.73, h * 0.9), fill="orange",
                                      outline="black")
        image.save(picture, quality=quality)
    return picture


def inpaint_scene(window, shoot) -> None:
    from PySide6.QtCore import QPointF, QTimer

    panel = window.panels["image"]
    window.tabs.setCurrentWidget(panel)
    panel.open_source(_photo((451, 300), quality=90))
    panel.task.setCurrentIndex(panel.task.findData("inpaint"))
    panel.prompt.setPlainText("smiling cat face")
    panel.brush_size.setValue(36)
    for start, end in (((120, 70), (200, 60)), ((110, 110), (210, 120)),
                       ((130, 150), (190, 160))):
        panel.canvas.paint_at(QPointF(*start), QPointF(*end))
    frame, scale = panel.canvas._frame()
    panel.canvas._hover = QPointF(frame.x() + 300 * scale, frame.y() + 90 * scale)
    QTimer.singleShot(600, shoot)


def upscale_scene(window, shoot) -> None:
    from PySide6.QtCore import QPointF, QTimer

    picture = _photo((150, 100))
    panel = window.panels["upscale"]
    window.tabs.setCurrentWidget(panel)
    panel.open_files([picture])
    # Automatic and the old default side by side: DAT-light left, Automatic's choice right
    jobs = panel.upscale_with(["embedded:dat-light-x4", "embedded:auto"])

    def wait() -> None:
        if all(job.state.finished for job in jobs) and not panel.jobs:
            window.history.select(jobs[-1].item_id)
            panel.left_choice.setCurrentIndex(panel.left_choice.findData(jobs[0].item_id))
            panel.right_choice.setCurrentIndex(panel.right_choice.findData(jobs[1].item_id))
            panel._compare_chosen()
            view = panel.view
            view.zoom_at(1.6, QPointF(view.width() * 0.45, view.height() * 0.4))
            QTimer.singleShot(300, shoot)
        else:
            QTimer.singleShot(200, wait)

    QTimer.singleShot(500, wait)


def video_scene(window, shoot) -> None:
    """A 6-s clip upscaling in the Upscale panel, shot half-way: the frame, seconds a frame
    and time left, the current frame in the view, Advanced open (Video quality)."""
    from PySide6.QtCore import QTimer

    from tests.clips import make_clip

    clip = Path(tempfile.mkdtemp()) / "street.mp4"
    clip.write_bytes(make_clip(320, 180, 144, 24))
    panel = window.panels["upscale"]
    window.tabs.setCurrentWidget(panel)
    panel.open_files([clip])
    if not panel.fold.header.isChecked():
        panel.fold.header.click()
    panel.model.setCurrentIndex(panel.model.findData("embedded:animevideov3-x2"))
    (job,) = panel.upscale()

    def wait() -> None:
        if job.state.finished or job.progress.fraction > 0.5:
            QTimer.singleShot(300, shoot)
        else:
            QTimer.singleShot(200, wait)

    QTimer.singleShot(500, wait)


TUNE = [(0, 1, 62), (1, 0.5, 66), (1.5, 0.5, 69), (2, 1, 74), (3, 1, 73), (4, 0.5, 71),
        (4.5, 0.5, 69), (5, 0.5, 67), (5.5, 0.5, 66), (6, 1, 64), (7, 1, 69),
        (8, 0.5, 66), (8.5, 0.5, 67), (9, 0.5, 69), (9.5, 0.5, 71), (10, 1, 69),
        (11, 1, 66), (12, 0.5, 64), (12.5, 0.5, 66), (13, 0.5, 67), (13.5, 0.5, 64),
        (14, 2, 62)]
# the second melody of --interpolate: a D-major tune of 4 bars in another shape
SECOND = [(0, 0.5, 69), (0.5, 0.5, 71), (1, 1, 74), (2, 0.5, 73), (2.5, 0.5, 71), (3, 1, 69),
          (4, 1, 66), (5, 0.5, 67), (5.5, 0.5, 69), (6, 2, 71), (8, 0.5, 74), (8.5, 0.5, 73),
          (9, 0.5, 71), (9.5, 0.5, 69), (10, 1, 67), (11, 1, 66), (12, 1, 64), (13, 1, 66),
          (14, 2, 62)]


def _midi(notes, name: str) -> Path:
    from creative_studio.io.midi import Note, write_midi

    path = Path(tempfile.mkdtemp()) / name
    path.write_bytes(write_midi([Note(s, d, p) for s, d, p in notes], 112, (4, 4)))
    return path


def _when_done(window, panel, jobs, shoot) -> None:
    from PySide6.QtCore import QTimer

    def wait() -> None:
        if all(job.state.finished for job in jobs) and not panel.jobs:
            window.history.select(jobs[-1].item_id)
            QTimer.singleShot(300, shoot)
        else:
            QTimer.singleShot(200, wait)

    QTimer.singleShot(500, wait)


def music_scene(window, shoot) -> None:
    panel = window.panels["music"]
    window.tabs.setCurrentWidget(panel)
    panel.open_midi(_midi(TUNE, "my-tune.mid"))
    panel.keep_bars.setValue(4)
    panel.bars.setValue(8)
    panel.seed_field.restore(11)
    _when_done(window, panel, panel.generate(), shoot)


def rework_scene(window, shoot, task: str) -> None:
    panel = window.panels["music"]
    window.tabs.setCurrentWidget(panel)
    panel.task.setCurrentIndex(panel.task.findData(task))
    panel.open_midi(_midi(TUNE, "my-tune.mid"))  # 4 bars
    if task == "interpolate":
        panel.open_second(_midi(SECOND, "arrive-at.mid"))
    panel.seed_field.restore(3)
    _when_done(window, panel, panel.generate(), shoot)


def chords_scene(window, shoot) -> None:
    from PySide6.QtCore import QTimer

    panel = window.panels["music"]
    window.tabs.setCurrentWidget(panel)
    panel.task.setCurrentIndex(panel.task.findData("harmonize"))
    panel.open_midi(_midi(TUNE, "my-tune.mid"))
    panel.chords.setText("D | G D | Em A | D")
    panel.seed_field.restore(3)

    def choose() -> None:
        roll = panel.roll
        tenor = [i for i, n in enumerate(roll.edit.notes) if n.voice == 2 and 4 <= n.start < 12]
        roll.edit.select(tenor[0])
        panel._bars_chosen(2, 3)
        QTimer.singleShot(400, shoot)  # painted before the grab

    _when_done(window, panel, panel.generate(), choose)


def image_scene(window, shoot) -> None:
    from PySide6.QtCore import QTimer

    panel = window.panels["image"]
    window.tabs.setCurrentWidget(panel)
    jobs = []
    for prompt in ("red apple", "couple with heart woman man", "woman artist dark skin tone",
                   "man light skin tone"):
        panel.prompt.setPlainText(prompt)
        panel.seed_field.restore(0)
        panel.batch.setValue(1)
        jobs += panel.generate()

    def wait() -> None:
        if all(job.state.finished for job in jobs) and not panel.jobs:
            window.history.select(jobs[-1].item_id)
            QTimer.singleShot(300, shoot)
        else:
            QTimer.singleShot(200, wait)

    QTimer.singleShot(500, wait)


def text_scene(window, shoot) -> None:
    from PySide6.QtCore import QTimer

    panel = window.panels["text"]
    panel.editor.setPlainText("The Keeper of Lisbon Light\n\n")
    cursor = panel.editor.textCursor()
    cursor.movePosition(cursor.MoveOperation.End)
    panel.editor.setTextCursor(cursor)
    panel.instruction.setPlainText("Write the opening paragraph of a mystery set in a "
                                   "lighthouse near Lisbon.")
    panel.seed_mode.setCurrentText("fixed")
    panel.seed.setValue(2024)
    panel.max_tokens.setValue(90)
    panel.alternatives.setValue(2)

    def wait() -> None:
        if panel.generate_button.isEnabled() and window.store.count() >= 2:
            window.history.select(window.store.items()[0].id)
            QTimer.singleShot(300, shoot)
        else:
            QTimer.singleShot(200, wait)

    QTimer.singleShot(300, panel.generate)
    QTimer.singleShot(500, wait)


if __name__ == "__main__":
    main()
