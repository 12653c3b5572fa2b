"""A 10-second 480p clip ×2 through the studio (issue 37, item 3).

    .venv/bin/python bench/upscale_video.py [--seconds 10] [--size 854x480] [--fps 24]
                                            [--model animevideov3-x2]

Runner → UpscaleGenerator (video task) → project, the model loaded by a warm-up job first.
Printed: frames in and out and whether every frame time is the source's, whether the sound
packets are byte-identical, the colour tags, seconds per frame — and the reference, measured
in the same run: the same model on one still (the clip's first frame as a PNG, the picture
task), so the ratio is what the video path adds per frame (decode, colour conversion, x264,
segments, mux).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CREATIVE_STUDIO_HOME", tempfile.mkdtemp(prefix="bench-home-"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="854x480")
    parser.add_argument("--fps", default="24")
    parser.add_argument("--model", default="animevideov3-x2")
    args = parser.parse_args()
    import av

    from creative_studio.core.jobs import Asset, JobState, ModelIdentity, Request, Result
    from creative_studio.core.project import ProjectStore
    from creative_studio.io.video import first_frame
    from creative_studio.plugins import PluginRegistry
    from creative_studio.workers.runner import JobRunner
    from tests.clips import make_clip

    width, height = (int(v) for v in args.size.split("x"))
    fps = Fraction(args.fps)
    frames = round(args.seconds * fps)
    clip = make_clip(width, height, frames, fps, colorspace=1, color_range=1)  # BT.709, TV
    folder = Path(tempfile.mkdtemp(prefix="bench-video-"))
    (folder / "clip.mp4").write_bytes(clip)
    still = io.BytesIO()
    first_frame(clip).save(still, "PNG")

    runner = JobRunner(PluginRegistry.discover())
    store = ProjectStore.create(folder / "bench.csproj")

    def add(data: bytes, name: str, mime: str) -> str:
        return store.add_item(Request("upscale", "import"),
                              Result([Asset(mime.split("/")[0], mime, data, name)],
                                     ModelIdentity("file", name), "none"))

    model = f"embedded:{args.model}"

    def run(task: str, parent: str):
        start = time.perf_counter()
        job = runner.submit(Request("upscale", task, parents=[parent], model=model,
                                    params={"engine": "torch"}), store=store)
        runner.wait(job)
        assert job.state is JobState.DONE, job.error
        return job, time.perf_counter() - start

    tiny = io.BytesIO()
    first_frame(clip).resize((16, 16)).save(tiny, "PNG")
    run("upscale", add(tiny.getvalue(), "tiny.png", "image/png"))  # loads the model
    _job, still_seconds = run("upscale", add(still.getvalue(), "still.png", "image/png"))
    job, video_seconds = run("video", add(clip, "clip.mp4", "video/mp4"))
    out = store.asset_bytes(store.item(job.item_id).assets[0].id)

    def read(data: bytes):
        with av.open(io.BytesIO(data)) as container:
            audio = [bytes(p) for p in container.demux(container.streams.audio[0]) if p.size]
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            tags = {k: getattr(stream.codec_context, k) for k in
                    ("colorspace", "color_primaries", "color_trc", "color_range")}
            times = [f.pts for f in container.decode(video=0)]
            size = (stream.codec_context.width, stream.codec_context.height)
        return audio, times, tags, size

    audio_in, times_in, tags_in, _ = read(clip)
    audio_out, times_out, tags_out, size_out = read(out)
    per_frame = video_seconds / len(times_out)
    print(f"clip: {width}×{height}, {float(fps):g} fps, {args.seconds:g} s, {len(times_in)} "
          f"frames, AAC sound; model {args.model}, PyTorch, {os.cpu_count()} cores")
    print(f"video ×2 → {size_out[0]}×{size_out[1]}: {len(times_out)} frames out of "
          f"{len(times_in)}; every frame time kept: {times_out == times_in}; sound packets "
          f"byte-identical: {audio_out == audio_in} ({len(audio_in)} packets); colour tags "
          f"kept: {tags_out == tags_in}")
    print(f"{video_seconds:.1f} s in all, {per_frame:.2f} s a frame; one still (reference, "
          f"same run): {still_seconds:.2f} s; ratio {per_frame / still_seconds:.2f}; "
          f"{len(out) / 1e6:.1f} MB")
    runner.shutdown()
    store.close()


if __name__ == "__main__":
    main()
