"""Video clips the tests and benches make themselves (PyAV): moving colour and shapes,
a frame counter drawn in, a sine tone as AAC; colour tags chosen by the caller."""

from __future__ import annotations

import io
from fractions import Fraction


def make_clip(width: int = 64, height: int = 48, frames: int = 24, fps: Fraction = Fraction(12),
              audio: bool = True, container: str = "mp4", codec: str = "libx264",
              colorspace: int | None = None, color_range: int | None = None,
              rotation: int = 0) -> bytes:
    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        video = out.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if rotation:  # a phone held upright: the display matrix turns the picture
            video.set_display_rotation(rotation)
        if colorspace is not None:
            video.codec_context.colorspace = colorspace
            video.codec_context.color_primaries = colorspace
            video.codec_context.color_trc = colorspace
        if color_range is not None:
            video.codec_context.color_range = color_range
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=44100)
            sound.layout = "mono"
        ys, xs = np.mgrid[0:height, 0:width]
        for index in range(frames):
            t = index / frames
            rgb = np.stack([(xs * 255 // max(1, width - 1) + index * 7) % 256,
                            (ys * 255 // max(1, height - 1)) % 256,
                            np.full_like(xs, int(255 * t))], axis=-1).astype(np.uint8)
            cx = int(width * (0.2 + 0.6 * t))
            rgb[height // 3:height // 3 + height // 4, max(0, cx - 4):cx + 4] = 255
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if colorspace is not None:
                frame = frame.reformat(format="yuv420p", dst_colorspace=colorspace,
                                       dst_color_range=color_range)
            frame.pts = None
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if sound is not None:
            samples = int(44100 * frames / fps)
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)) \
                .astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[:, start:start + 1024], format="fltp",
                                                   layout="mono")
                chunk.sample_rate = 44100
                for packet in sound.encode(chunk):
                    out.mux(packet)
            for packet in sound.encode(None):
                out.mux(packet)
    return buffer.getvalue()
