"""Waveform and spectrogram of rendered WAVs, with loudness figures: a look at what the ear
would check (silence, clipping, dropouts, a muddy or an empty register).

    .venv/bin/python tools/music/wav_look.py out.png a.wav [b.wav …]
"""

from __future__ import annotations

import sys
import wave

import numpy as np


def main() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = sys.argv[2:]
    fig, axes = plt.subplots(len(paths), 2, figsize=(14, 3.2 * len(paths)))
    axes = np.atleast_2d(axes)
    for row, path in enumerate(paths):
        with wave.open(path) as w:
            rate, n, channels = w.getframerate(), w.getnframes(), w.getnchannels()
            data = np.frombuffer(w.readframes(n), dtype=np.int16).reshape(-1, channels)
            data = data.mean(1) / 32768
        rms = np.sqrt(np.mean(data ** 2))
        frames = data[: len(data) // 2048 * 2048].reshape(-1, 2048)
        silent = float((np.sqrt((frames ** 2).mean(1)) < 1e-3).mean())
        print(f"{path}: {n / rate:.1f} s, rms {20 * np.log10(rms):.1f} dBFS, peak "
              f"{np.abs(data).max():.3f}, clipped {int((np.abs(data) > 0.999).sum())} samples, "
              f"silent frames {silent:.0%}")
        axes[row, 0].plot(np.arange(len(data)) / rate, data, linewidth=0.3)
        axes[row, 0].set_title(path.split("/")[-1] + " waveform")
        axes[row, 1].specgram(data, NFFT=4096, Fs=rate, noverlap=2048, cmap="magma")
        axes[row, 1].set_ylim(0, 2500)
        axes[row, 1].set_title("spectrogram 0–2.5 kHz")
    fig.tight_layout()
    fig.savefig(sys.argv[1], dpi=70)


if __name__ == "__main__":
    main()
