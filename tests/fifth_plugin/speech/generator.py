"""A tiny formant synthesizer: each letter is a short voiced (or whispered) sound whose
formants depend on the letter; the seed varies the pitch contour. No Qt, numpy only."""

from __future__ import annotations

import io
import os
import signal
import time
import wave

import numpy as np

from creative_studio.core.errors import BadInput
from creative_studio.core.jobs import Asset, Inputs, ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress

RATE = 16000
VOICES = {"neutral": 1.0, "bright": 1.25, "dark": 0.8}
MAX_LETTERS = 2000


class SpeechGenerator:
    def __init__(self) -> None:
        self.identity: ModelIdentity | None = None

    @staticmethod
    def validate(request: Request) -> None:
        if len(request.prompt) > MAX_LETTERS:
            raise BadInput(f"Say at most {MAX_LETTERS} letters at a time.")

    def load(self, source: ModelSource, device: str, progress: Progress) -> None:
        self.identity = ModelIdentity(source.name, source.ref, "0" * 64, source.source)

    def unload(self) -> None:
        self.identity = None

    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        # faults on demand, for the model-process tests: a native crash, memory running out
        if request.prompt == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        if request.prompt == "out of memory":
            raise MemoryError("test: no memory left")
        p = request.params
        started = time.perf_counter()
        rng = np.random.default_rng(request.seed)
        letters = [c for c in request.prompt.lower() if not c.isspace()] or ["a"]
        length = int(RATE / p["rate"])
        t = np.arange(length) / RATE
        pieces = []
        for index, letter in enumerate(letters):
            progress.check()
            f0 = p["pitch"] * (1 + 0.05 * rng.standard_normal())
            f1 = 300 + (ord(letter) % 13) * 60 * VOICES[p["voice"]]
            f2 = 900 + (ord(letter) % 7) * 200 * VOICES[p["voice"]]
            source = rng.standard_normal(length) * 0.3 if p["whisper"] else \
                np.sign(np.sin(2 * np.pi * f0 * t))
            sound = source * (np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * f2 * t))
            pieces.append(sound * np.hanning(length))
            progress.update((index + 1) / len(letters))
        samples = np.concatenate(pieces)
        samples = (samples / max(1e-9, np.abs(samples).max()) * 0.8 * 32767).astype(np.int16)
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(samples.tobytes())
        seconds = len(samples) / RATE
        return Result([Asset("audio", "audio/wav", buffer.getvalue(), "speech.wav")],
                      self.identity, device="cpu",
                      metadata={"duration": round(seconds, 3),
                                "seconds": round(time.perf_counter() - started, 3)},
                      title=f"“{request.prompt[:40]}” ({seconds:.1f} s)")
