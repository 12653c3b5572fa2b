"""Upscaling videos frame by frame (no Qt; PyAV imported lazily).

Each decoded frame goes through the same network as a picture (``upscale_frame``) and is
encoded with x264 (no B-frames, CRF from the ``crf`` parameter) at the source's frame times
(time base and pts copied: constant and variable frame rates stay as they were), with its
colour metadata (primaries, transfer, matrix, range) tagged again, and the display rotation
of a phone's portrait clip kept. The audio streams are
not decoded: their packets are copied, so the sound is byte-identical. The container stays
MP4 for MP4/MOV sources whose audio MP4 holds, else Matroska.

**Resume.** Frames are encoded in segments of about two seconds, each its own NUT file in a
work folder named after the clip, the model and the parameters; a segment is renamed into
place only when complete. A stopped or killed job that is run again decodes (fast) up to
the first missing segment and goes on from there. The finished video is muxed from the
segments and the source's audio, and the folder removed.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from creative_studio.core.errors import BadInput
from creative_studio.core.progress import Progress
from creative_studio.io.video import (
    VideoInfo,
    first_frame,
    load_av,
    open_video,
    poster,
    probe,
    rgb_of,
)

SEGMENT_SECONDS = 2.0
X264_FORMATS = ("yuv420p", "yuv422p", "yuv444p")  # 8-bit: what the network gives back
MP4_AUDIO = ("aac", "mp3", "ac3", "eac3", "alac", "opus", "flac")
WORK_VERSION = 1  # changes when segments written before are no longer usable
STALE_SECONDS = 14 * 24 * 3600  # work folders of jobs never run again are removed then


def work_folder(root: Path, data: bytes, recipe: dict) -> Path:
    """Where the segments of this clip × model × parameters are kept until it is done."""
    key = hashlib.sha256(data).hexdigest()[:24] + hashlib.sha256(
        json.dumps({**recipe, "v": WORK_VERSION}, sort_keys=True).encode()).hexdigest()[:16]
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():  # folders of jobs nobody ran again
        try:
            if old.is_dir() and now - old.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    folder = root / key
    folder.mkdir(exist_ok=True)
    return folder


def _segments(folder: Path) -> int:
    """How many segments from the first on are complete."""
    count = 0
    while (folder / f"{count:05d}.nut").exists():
        count += 1
    return count


class _Part:
    """The progress of one frame inside the job's: the tiles move the bar within the
    frame's share; cancel reaches through."""

    def __init__(self, progress: Progress, start: float, span: float) -> None:
        self.progress, self.start, self.span = progress, start, span

    def update(self, fraction: float, preview=None) -> None:
        self.progress.update(self.start + self.span * fraction, preview)

    def say(self, _message: str) -> None:  # the job says which frame it is on
        pass

    def check(self) -> None:
        self.progress.check()


@dataclass
class VideoResult:
    data: bytes
    mime: str
    poster: bytes
    metadata: dict


def upscale(data: bytes, name: str, size: Callable[[int, int], tuple[int, int]],
            upscale_frame: Callable, crf: int, progress: Progress, folder: Path) -> VideoResult:
    """Upscale every frame of ``data`` with ``upscale_frame(rgb array, progress) → rgb
    array of size(w, h)``, resumable from ``folder`` (see the module's docstring)."""
    import numpy as np

    av = load_av()
    info = probe(data, name)
    width, height = size(info.width, info.height)
    width, height = width + width % 2, height + height % 2  # 4:2:0 needs even sides
    per_segment = max(1, round(float(info.rate) * SEGMENT_SECONDS))
    folder.mkdir(parents=True, exist_ok=True)
    done = _segments(folder)
    skip = done * per_segment
    for leftover in folder.glob("*.part"):
        leftover.unlink()
    started, made, preview_at = time.monotonic(), 0, 0.0
    rotation = 0
    last = None
    with open_video(data, name) as source:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        total = max(1, info.frames)
        if skip:
            progress.say(f"Going on from frame {skip + 1} (segments of an earlier run are "
                         "kept)")
        writer = None
        index = 0
        try:
            for frame in source.decode(stream):
                if index == 0:  # a phone's portrait clip: the display matrix turns it
                    rotation = int(getattr(frame, "rotation", 0) or 0)
                if index < skip:
                    index += 1
                    continue
                progress.check()
                if index % per_segment == 0:
                    if writer is not None:
                        writer.close()
                    writer = _Segment(folder, index // per_segment, stream, width, height, crf,
                                      av)
                share = 1.0 / max(total, index + 1)
                picture = rgb_of(frame, av)
                out = upscale_frame(np.asarray(picture), _Part(progress, index * share, share))
                if out.shape[1] != width or out.shape[0] != height:
                    from PIL import Image

                    out = np.asarray(Image.fromarray(out).resize((width, height),
                                                                 Image.Resampling.LANCZOS))
                writer.write(out, frame)
                index += 1
                made += 1
                last = out
                each = (time.monotonic() - started) / made
                progress.say(f"Frame {index} of {max(total, index)} · {each:.1f} s a frame")
                preview = None
                if time.monotonic() - preview_at > 2.0:  # the current frame, now and then
                    from PIL import Image

                    preview = poster(Image.fromarray(out), 768)
                    preview_at = time.monotonic()
                progress.update(min(0.999, index / max(total, index)), preview)
        except BaseException as exc:
            if writer is not None:  # the segment being written is not complete: dropped
                writer.close(complete=False)
            if isinstance(exc, av.FFmpegError):
                raise BadInput(f"{name} is damaged at frame {index + 1} ({exc}).") from exc
            raise
        if writer is not None:
            writer.close()  # the last segment ends with the video
    if index == 0:
        raise BadInput(f"{name} has no picture that can be decoded.")
    progress.say("Writing the video…")
    video, mime = _mux(data, name, folder, info, rotation, av)
    if last is None:  # every frame came from an earlier run: the poster from the output
        last = np.asarray(first_frame(video, "The upscaled video"))
    from PIL import Image

    result = VideoResult(video, mime, poster(Image.fromarray(last)), {
        "frames": index, "resumed_from": skip, "fps": f"{info.rate}",
        "input_video": info.figures(), "width": width, "height": height,
        "seconds_per_frame": round((time.monotonic() - started) / made, 3) if made else None,
        "audio_streams": len(info.audio), "crf": crf, "codec": "h264", "rotation": rotation})
    shutil.rmtree(folder, ignore_errors=True)
    return result


class _Segment:
    """Frames ``index·n`` … of one segment, encoded into ``NNNNN.nut.part``; renamed to
    ``NNNNN.nut`` by ``close()`` once every frame of it is in."""

    def __init__(self, folder: Path, number: int, source_stream, width: int, height: int,
                 crf: int, av) -> None:
        self.path = folder / f"{number:05d}.nut.part"
        self.final = folder / f"{number:05d}.nut"
        self.container = av.open(str(self.path), "w", format="nut")
        source = source_stream.codec_context
        stream = self.container.add_stream("libx264", rate=source_stream.average_rate
                                           or Fraction(25))
        stream.width, stream.height = width, height
        stream.pix_fmt = source.pix_fmt if source.pix_fmt in X264_FORMATS else "yuv420p"
        stream.time_base = source_stream.time_base
        context = stream.codec_context
        context.max_b_frames = 0  # dts = pts: segments join without reordering
        context.options = {"crf": str(crf), "preset": "medium"}
        for key in ("color_primaries", "color_trc", "colorspace", "color_range"):
            value = getattr(source, key, None)
            if value is not None:
                setattr(context, key, value)
        self.stream, self.av = stream, av

    def write(self, rgb, frame) -> None:
        out = self.av.VideoFrame.from_ndarray(rgb, format="rgb24")
        out = out.reformat(format=self.stream.pix_fmt, dst_colorspace=frame.colorspace or None,
                           dst_color_range=frame.color_range or None)
        out.pts, out.time_base = frame.pts, frame.time_base
        for packet in self.stream.encode(out):
            self.container.mux(packet)

    def close(self, complete: bool = True) -> None:
        if self.container is None:
            return
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        self.container = None
        if complete:
            self.path.replace(self.final)


def _mux(data: bytes, name: str, folder: Path, info: VideoInfo, rotation: int,
         av) -> tuple[bytes, str]:
    """The segments' video and the source's audio packets (copied, not decoded), interleaved
    by time into one file; returns (bytes, MIME type)."""
    import heapq

    segments = sorted(folder.glob("*.nut"))
    with open_video(data, name) as source:
        kind = source.format.name
        mp4 = ("mp4" in kind or "mov" in kind) and all(a in MP4_AUDIO for a in info.audio)
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="mp4" if mp4 else "matroska") as output:
            output.metadata.update({k: v for k, v in source.metadata.items()
                                    if k in ("title", "comment", "creation_time", "artist")})
            opened = [av.open(str(path)) for path in segments]
            try:
                video = output.add_stream_from_template(opened[0].streams.video[0])
                video.time_base = source.streams.video[0].time_base
                if rotation:  # shown turned as the source is
                    video.set_display_rotation(rotation)
                audio = {a.index: output.add_stream_from_template(a)
                         for a in source.streams.audio}
                for a in source.streams.audio:
                    audio[a.index].time_base = a.time_base

                def video_packets():
                    for segment in opened:
                        for packet in segment.demux(video=0):
                            if packet.dts is not None:
                                yield packet

                def audio_packets():
                    if audio:
                        for packet in source.demux(*source.streams.audio):
                            if packet.dts is not None:
                                yield packet

                def timed(packets, order):
                    for packet in packets:
                        yield float(packet.dts * packet.time_base), order, id(packet), packet

                for _t, _order, _id, packet in heapq.merge(timed(video_packets(), 0),
                                                           timed(audio_packets(), 1)):
                    packet.stream = audio[packet.stream.index] if _order else video
                    output.mux(packet)
            finally:
                for segment in opened:
                    segment.close()
        return buffer.getvalue(), "video/mp4" if mp4 else "video/x-matroska"
