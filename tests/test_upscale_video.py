"""Upscaling videos (issue 37, item 3): frames, frame times, colour tags and sound kept,
resumable after a stop, through the runner, the CLI and the window; hostile files said
plainly."""

from __future__ import annotations

import io
import json
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creative_studio.core.errors import BadInput, Cancelled
from creative_studio.core.jobs import JobState, Request
from creative_studio.core.progress import Progress
from tests.clips import make_clip

av = pytest.importorskip("av", reason="PyAV is not installed (tools/setup.sh installs it)")

FAST = "embedded:animevideov3-x2"


def packets(data: bytes, kind: str) -> list[bytes]:
    with av.open(io.BytesIO(data)) as container:
        streams = getattr(container.streams, kind)
        return [bytes(p) for p in container.demux(streams[0]) if p.size] if streams else []


def frames(data: bytes) -> list:
    """(pts, rgb array) of every frame."""
    with av.open(io.BytesIO(data)) as container:
        return [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def nearest(rgb, part):
    part.check()
    part.update(1.0)
    return np.repeat(np.repeat(rgb, 2, 0), 2, 1)


def test_probe_says_what_the_clip_is():
    from creative_studio.io.video import probe

    info = probe(make_clip(frames=18, fps=Fraction(30000, 1001)), "clip.mp4")
    assert (info.width, info.height, info.frames, info.codec) == (64, 48, 18, "h264")
    assert info.rate == Fraction(30000, 1001) and info.audio == ["aac"]
    silent = probe(make_clip(audio=False, container="matroska"))
    assert silent.audio == [] and silent.frames == 24


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_hostile_video_bytes_are_refused_plainly(data):
    """Random bytes, a clip cut short or with bytes flipped: BadInput or a readable clip,
    never another exception."""
    from creative_studio.io.video import first_frame, probe

    clip = CLIP
    choice = data.draw(st.sampled_from(["random", "cut", "flip"]))
    if choice == "random":
        blob = data.draw(st.binary(max_size=4000))
    elif choice == "cut":
        blob = clip[:data.draw(st.integers(0, len(clip)))]
    else:
        blob = bytearray(clip)
        for _ in range(data.draw(st.integers(1, 20))):
            blob[data.draw(st.integers(0, len(clip) - 1))] ^= data.draw(st.integers(1, 255))
        blob = bytes(blob)
    try:
        info = probe(blob)
        first_frame(blob)
        assert info.width > 0
    except BadInput as exc:
        assert str(exc)


CLIP = make_clip(frames=12)


def test_every_cut_of_a_clip_is_read_or_refused_plainly():
    """A clip cut short anywhere (the fuzzer above found a cut whose sound stream had no
    codec, which raised AttributeError): BadInput or a readable clip."""
    from creative_studio.io.video import first_frame, probe

    for end in range(0, len(CLIP), 97):
        try:
            probe(CLIP[:end])
            first_frame(CLIP[:end])
        except BadInput as exc:
            assert str(exc)


def test_frames_times_colours_and_sound_are_kept(tmp_path):
    from plugins.upscale import video

    clip = make_clip(frames=30, colorspace=1, color_range=1)  # BT.709, limited range
    done = video.upscale(clip, "clip.mp4", lambda w, h: (w * 2, h * 2), nearest, 16,
                         Progress(), tmp_path / "work")
    assert done.mime == "video/mp4" and not (tmp_path / "work").exists()
    before, after = frames(clip), frames(done.data)
    assert [p for p, _ in after] == [p for p, _ in before]  # every frame, at its time
    assert after[0][1].shape == (96, 128, 3)
    # the picture is the source's, enlarged (two lossy encodes between them)
    mse = np.mean([(a.astype(float) - b[::2, ::2]) ** 2 for (_, a), (_, b) in
                   zip(before, after, strict=True)])
    assert 10 * np.log10(255 ** 2 / mse) > 30
    assert packets(done.data, "audio") == packets(clip, "audio")  # byte-identical sound
    with av.open(io.BytesIO(done.data)) as out, av.open(io.BytesIO(clip)) as source:
        o, s = out.streams.video[0], source.streams.video[0]
        assert o.average_rate == s.average_rate
        for key in ("colorspace", "color_primaries", "color_trc", "color_range"):
            assert getattr(o.codec_context, key) == getattr(s.codec_context, key) != 0
    assert done.metadata["frames"] == 30 and done.metadata["audio_streams"] == 1
    poster = video.poster  # the poster is a PNG of the last frame made
    assert done.poster.startswith(b"\x89PNG") and callable(poster)


def test_a_stopped_video_goes_on_where_it_stopped(tmp_path):
    from plugins.upscale import video

    clip = make_clip(frames=40)  # 12 fps: segments of 24 frames
    size = lambda w, h: (w * 2, h * 2)  # noqa: E731
    whole = video.upscale(clip, "c.mp4", size, nearest, 16, Progress(), tmp_path / "a")
    progress, count = Progress(), [0]

    def stopping(rgb, part):
        count[0] += 1
        if count[0] == 30:
            progress.cancel()  # the user presses Stop in the second segment
        return nearest(rgb, part)

    folder = tmp_path / "b"
    folder.mkdir()
    with pytest.raises(Cancelled):
        video.upscale(clip, "c.mp4", size, stopping, 16, progress, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["00000.nut", "00001.nut.part"]
    count[0] = 0
    said = []
    again = video.upscale(clip, "c.mp4", size, stopping, 16, Progress(
        lambda *_: said.append(True)), folder)
    assert again.metadata["resumed_from"] == 24 and count[0] == 16  # only what was missing
    assert again.data == whole.data  # the same file as a run never stopped


def test_matroska_and_silent_clips(tmp_path):
    from plugins.upscale import video

    mkv = make_clip(container="matroska", frames=6)
    done = video.upscale(mkv, "c.mkv", lambda w, h: (w * 2, h * 2), nearest, 20, Progress(),
                         tmp_path / "w")
    assert done.mime == "video/x-matroska"
    assert packets(done.data, "audio") == packets(mkv, "audio")
    turned = make_clip(frames=3, rotation=90)
    done = video.upscale(turned, "t.mp4", lambda w, h: (w * 2, h * 2), nearest, 20,
                         Progress(), tmp_path / "w3")
    with av.open(io.BytesIO(done.data)) as out:
        assert next(out.decode(video=0)).rotation == 90 == done.metadata["rotation"]
    silent = make_clip(audio=False, frames=5)
    done = video.upscale(silent, "s.mp4", lambda w, h: (w + 1, h + 1), nearest, 20,
                         Progress(), tmp_path / "w2")
    assert packets(done.data, "audio") == [] and len(frames(done.data)) == 5
    assert frames(done.data)[0][1].shape == (50, 66, 3)  # odd sizes made even for 4:2:0


@pytest.mark.model
def test_a_video_through_the_runner_with_the_real_model(studio, tmp_path):
    from creative_studio.io.export import export_item, suggested_name
    from creative_studio.io.imports import import_file

    runner, store = studio
    (tmp_path / "clip.mp4").write_bytes(make_clip(frames=8))
    source = import_file(store, "upscale", tmp_path / "clip.mp4", "video/")
    imported = store.item(source)
    assert [a.mime for a in imported.assets] == ["video/mp4", "image/png"]  # with a poster
    assert imported.metadata["frames"] == 8
    previews = []
    job = runner.submit(Request("upscale", "video", parents=[source], model=FAST,
                                params={"crf": 18}), store=store)
    job.progress._listener = None  # (the runner's own listener is kept below)
    runner.wait(job)
    assert job.state is JobState.DONE, job.error
    item = store.item(job.item_id)
    assert item.parents == [source] and item.kind == "video"
    assert (item.metadata["width"], item.metadata["height"], item.metadata["frames"]) == \
        (128, 96, 8)
    assert item.metadata["engine"] and item.metadata["crf"] == 18
    data = store.asset_bytes(item.assets[0].id)
    assert len(frames(data)) == 8
    assert packets(data, "audio") == packets(store.asset_bytes(imported.assets[0].id), "audio")
    assert suggested_name(item) == "clip_x2_animevideov3-x2.mp4"
    written = export_item(store, item, tmp_path / "out.mp4")
    assert written[1].name == "out.recipe.json"
    assert json.loads(written[1].read_text())["request"]["task"] == "video"
    with pytest.raises(Exception, match="This is a video: export it as .mp4"):
        export_item(store, item, tmp_path / "out.png")
    del previews


def test_hostile_video_files_are_refused_on_import(studio, tmp_path):
    from creative_studio.io.imports import import_file

    _runner, store = studio
    (tmp_path / "junk.mp4").write_bytes(b"\0" * 5000)
    with pytest.raises(BadInput, match="junk.mp4"):
        import_file(store, "upscale", tmp_path / "junk.mp4", "video/")
    (tmp_path / "half.mp4").write_bytes(make_clip()[:900])
    with pytest.raises(BadInput, match="half.mp4"):
        import_file(store, "upscale", tmp_path / "half.mp4", "video/")
    assert store.items() == []  # nothing half-kept


@pytest.mark.model
def test_cli_upscales_a_video(tmp_path, monkeypatch, capsys):
    from creative_studio import cli

    monkeypatch.setenv("CREATIVE_STUDIO_HOME", str(tmp_path / "home"))
    (tmp_path / "clip.mp4").write_bytes(make_clip(frames=4, audio=False))
    code = cli.main(["generate", "upscale", str(tmp_path / "clip.mp4"), "--model", FAST,
                     "--project", str(tmp_path / "p.csproj"), "--out",
                     str(tmp_path / "big.mp4"), "--crf", "22"])
    assert code == 0, capsys.readouterr().err
    assert len(frames((tmp_path / "big.mp4").read_bytes())) == 4
    assert json.loads((tmp_path / "big.recipe.json").read_text())["request"]["params"][
        "crf"] == 22


@pytest.mark.gui
@pytest.mark.model
def test_a_video_in_the_upscale_panel(qtbot, make_window, tmp_path):
    window = make_window()
    panel = window.panels["upscale"]
    (tmp_path / "clip.mp4").write_bytes(make_clip(frames=6))
    (source,) = panel.open_files([tmp_path / "clip.mp4"])
    assert "6 frames" in panel.sources.currentItem().text()
    assert not panel._bound["crf"].isHidden()  # the video quality shows for a video
    assert panel.face_row.isHidden()  # faces are restored in pictures only
    panel.face_file.setText("/some/face.pth")
    assert "faces" not in panel.param_values("video")
    assert panel.param_values("upscale")["faces"] == "/some/face.pth"
    panel.face_file.clear()
    qtbot.waitUntil(lambda: panel.view.before is not None, timeout=10_000)  # its poster
    panel.model.setCurrentIndex(panel.model.findData(FAST))
    (job,) = panel.upscale()
    assert job.request.task == "video"
    qtbot.waitUntil(lambda: job.state.finished and not panel.jobs, timeout=120_000)
    assert job.state is JobState.DONE, job.error
    qtbot.waitUntil(lambda: panel.view.after is not None and panel.view.after.width() == 128,
                    timeout=10_000)
    assert [i.id for i in panel.branches(source)] == [job.item_id]
    assert "6 frames" in panel.info.text()
