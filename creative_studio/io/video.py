"""Reading users' videos (PyAV, imported lazily; no Qt): what a clip is, its first picture,
a poster. Every file is untrusted: what FFmpeg cannot read becomes BadInput."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction

from ..core.errors import BadInput

VIDEO_MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
              ".mkv": "video/x-matroska", ".webm": "video/webm", ".avi": "video/x-msvideo"}
MAX_FRAMES = 500_000  # ~5.8 hours at 24 fps: a bound on what one job promises to do


def load_av():
    try:
        import av
    except ImportError as exc:
        raise BadInput("Videos need PyAV (pip install av; tools/setup.sh installs it).") \
            from exc
    return av


@dataclass
class VideoInfo:
    width: int
    height: int
    rate: Fraction  # average frames per second
    frames: int  # counted by the container, or estimated from the duration
    seconds: float
    codec: str
    audio: list[str] = field(default_factory=list)  # codec of each audio stream

    def figures(self) -> dict:
        return {"width": self.width, "height": self.height, "fps": f"{self.rate}",
                "frames": self.frames, "seconds": round(self.seconds, 3),
                "codec": self.codec, "audio": self.audio}


def open_video(data: bytes, name: str):
    av = load_av()
    try:
        return av.open(io.BytesIO(data), "r")
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise BadInput(f"{name} is not a video the studio can read ({exc}).") from exc


def probe(data: bytes, name: str = "The video") -> VideoInfo:
    """What the video is; BadInput when it is not a readable video."""
    if not data:
        raise BadInput(f"{name} is empty.")
    with open_video(data, name) as source:
        if not source.streams.video:
            raise BadInput(f"{name} has no video stream.")
        stream = source.streams.video[0]
        if stream.codec_context is None:  # a codec FFmpeg does not know, or a cut header
            raise BadInput(f"{name} has a video stream the studio cannot decode.")
        if any(a.codec_context is None for a in source.streams.audio):
            raise BadInput(f"{name} has a sound stream the studio cannot read (an unknown "
                           "codec, or the file is cut short).")
        width, height = stream.codec_context.width, stream.codec_context.height
        if not (width and height):
            raise BadInput(f"{name} has a video stream without a picture size.")
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        seconds = float(stream.duration * stream.time_base) if stream.duration and \
            stream.time_base else (source.duration or 0) / 1_000_000
        frames = stream.frames or round(seconds * rate)
        if frames > MAX_FRAMES:
            raise BadInput(f"{name} has about {frames:,} frames: more than the "
                           f"{MAX_FRAMES:,} one job upscales; cut it into parts.")
        return VideoInfo(width, height, Fraction(rate), frames, seconds,
                         stream.codec_context.name,
                         [a.codec_context.name for a in source.streams.audio])


def first_frame(data: bytes, name: str = "The video"):
    """The first picture of the video (a PIL image), for posters and Automatic's choice."""
    av = load_av()
    with open_video(data, name) as source:
        try:
            for frame in source.decode(video=0):
                return rgb_of(frame, av)
        except av.FFmpegError as exc:
            raise BadInput(f"{name} is damaged ({exc}).") from exc
    raise BadInput(f"{name} has no picture that can be decoded.")


def rgb_of(frame, av):
    """A decoded frame as an 8-bit RGB PIL image, read with its own matrix and range."""
    rgb = frame.reformat(format="rgb24", src_color_range=frame.color_range or None)
    return rgb.to_image()


def poster(image, side: int = 1024) -> bytes:
    """A PNG of ``image`` reduced to ``side`` px at most: the still the panels show."""
    from PIL import Image

    image = image.copy()
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
