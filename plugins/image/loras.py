"""LoRAs on a Stable Diffusion pipeline: a stack per job (``loras``: "FILE:WEIGHT" entries,
and A1111's ``<lora:name:weight>`` in the prompt), applied through diffusers'
``load_lora_weights`` (kohya/A1111, diffusers and PEFT layouts; PEFT adapters), checked to
fit the model before, and recorded after: each file's SHA-256, A1111's short hash (the
"AutoV3"/addnet hash: SHA-256 of the tensor bytes after the header, 12 hex digits — what
``Lora hashes:`` in a ``parameters`` chunk carries and Civitai looks up) and its trigger words.

Weight 0 means not applied: such a LoRA is not loaded at all, so the picture is the one
without it, bit for bit. Adapters stay loaded between jobs that use them (only their weights
change); a job without LoRAs unloads them all, which restores the model's own layers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

from creative_studio.core.errors import BadInput, ModelError

from .checkpoints import read_header

TAG = re.compile(r"<lora:([^:>]*)(?::([^:>]*))?(?::[^>]*)?>", re.IGNORECASE)
MAX_WEIGHT = 4.0
MAX_FOUND = 20_000  # files looked at when a prompt names a LoRA by name
CONTEXT_FAMILY = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}


@dataclass(frozen=True)
class Lora:
    path: Path
    weight: float
    sha256: str = ""
    short: str = ""  # A1111's Lora hash (12 hex digits)
    triggers: tuple[str, ...] = field(default=())
    context: int | None = None  # the text-feature width it was made for (None: not said)
    xl_text: bool = False  # it adapts SDXL's second text encoder

    @property
    def name(self) -> str:
        return self.path.stem


def parse_entry(entry: str) -> tuple[Path, float]:
    """A stack entry "FILE:WEIGHT" (or "FILE", weight 1) as (path, weight)."""
    text = entry.strip()
    path, weight = text, 1.0
    head, sep, tail = text.rpartition(":")
    if sep and head and not tail.startswith(("\\", "/")):
        try:
            weight = float(tail)
            path = head
        except ValueError:
            pass
    if not -MAX_WEIGHT <= weight <= MAX_WEIGHT:
        raise BadInput(f"A LoRA's weight is between {-MAX_WEIGHT:g} and {MAX_WEIGHT:g} "
                       f"(got {weight:g} for {Path(path).name}).")
    return Path(os.path.expanduser(path)), weight  # "~nobody/x": left as it is


def prompt_tags(prompt: str) -> tuple[str, list[tuple[str, float]]]:
    """The prompt without its ``<lora:name:weight>`` tags, and the tags' (name, weight)."""
    found = []
    for match in TAG.finditer(prompt):
        if not match.group(1).strip():
            raise BadInput(f"{match.group(0)} in the prompt names no LoRA.")
        try:
            weight = float(match.group(2)) if match.group(2) not in (None, "") else 1.0
        except ValueError as exc:
            raise BadInput(f"The weight in {match.group(0)} is not a number.") from exc
        found.append((match.group(1).strip(), weight))
    clean = re.sub(r"\s{2,}", " ", TAG.sub("", prompt)).strip().strip(",").strip()
    return clean, found


def find_by_name(name: str, places: list[Path]) -> Path:
    """The LoRA file called ``name`` (its stem) in these files' folders and these folders
    (searched below, bounded); BadInput when there is none."""
    wanted = name.lower()
    seen = 0
    for place in places:
        if place.is_file():
            if place.stem.lower() == wanted:
                return place
            continue
        if not place.is_dir():
            continue
        for candidate in place.rglob("*.safetensors"):
            seen += 1
            if candidate.stem.lower() == wanted:
                return candidate
            if seen > MAX_FOUND:
                break
    raise BadInput(f"No LoRA called “{name}” in the LoRA list or the model folders "
                   "(Edit → Preferences → Model folders).")


def addnet_hash(path: Path) -> str:
    """SHA-256 of a .safetensors' bytes after its header (A1111's LoRA hash)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        handle.seek(8 + length)
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def trigger_words(info: dict[str, str], most: int = 5) -> tuple[str, ...]:
    """What the file says to write in the prompt: modelspec's trigger phrase, else the
    training captions' most frequent tags (kohya's ``ss_tag_frequency``)."""
    phrase = info.get("modelspec.trigger_phrase", "").strip()
    if phrase:
        return tuple(p.strip() for p in phrase.split(",") if p.strip())[:most]
    try:
        frequency = json.loads(info.get("ss_tag_frequency", "") or "{}")
    except (ValueError, RecursionError):
        return ()
    counts: dict[str, int] = {}
    if isinstance(frequency, dict):
        for tags in frequency.values():
            if isinstance(tags, dict):
                for tag, count in tags.items():
                    if isinstance(count, int):
                        counts[str(tag).strip()] = counts.get(str(tag).strip(), 0) + count
    return tuple(sorted(counts, key=lambda t: -counts[t])[:most])


def describe(path: Path, weight: float) -> Lora:
    """A LoRA file with its hashes and trigger words; ModelError when it is not one."""
    from creative_studio.core.provenance import weights_sha256

    if path.suffix.lower() != ".safetensors":
        raise ModelError(f"{path.name}: LoRAs are read from .safetensors files only.")
    if not path.is_file():
        raise ModelError(f"The LoRA {path} is not there (moved or deleted?).")
    shapes, info = read_header(path)
    if not is_lora(shapes):
        raise ModelError(f"{path.name} is not a LoRA (no LoRA layers in it).")
    width, xl_text = made_for(shapes)
    return Lora(path, weight, weights_sha256(path), addnet_hash(path)[:12],
                trigger_words(info), width, xl_text)


DOWN = ("lora_down.weight", "lora_A.weight", "lora.down.weight")  # a LoRA pair's first half


def is_lora(shapes: dict) -> bool:
    return any(k.endswith(DOWN) for k in shapes)


def made_for(shapes: dict) -> tuple[int | None, bool]:
    """(the text-feature width a LoRA's cross-attention keys were trained for, whether it
    adapts SDXL's second text encoder)."""
    width = next((shape[1] for key, shape in shapes.items()
                  if key.endswith(DOWN) and "attn2" in key.replace(".", "_")
                  and "to_k" in key.replace(".", "_")), None)
    return width, any(k.startswith("lora_te2_") for k in shapes)


def base_name(width: int | None, xl_text: bool, unknown: str) -> str:
    """The model family a LoRA of this width is for ("SD 1.x"…), else ``unknown``."""
    return "SDXL" if xl_text else CONTEXT_FAMILY.get(width, unknown)


def check_fits(lora: Lora, pipe) -> None:
    """ModelError when the LoRA was made for another architecture than ``pipe``'s."""
    if not hasattr(pipe, "load_lora_weights"):
        raise ModelError("LoRAs work with Stable Diffusion models (a checkpoint file or a "
                         "diffusers folder), not with this one.")
    width, own = lora.context, getattr(pipe.unet.config, "cross_attention_dim", None)
    if (width is not None and own is not None and width != own) or \
            (lora.xl_text and not hasattr(pipe, "text_encoder_2")):
        # no width said: it was refused for SDXL's second text encoder
        made = base_name(width, width is None, f"a model with {width}-wide text features")
        mine = CONTEXT_FAMILY.get(own, f"one with {own}-wide text features")
        raise ModelError(f"{lora.path.name} was made for {made}; this model is {mine}.")


def adapter_name(lora: Lora) -> str:
    return f"lora_{lora.sha256[:16]}"


def apply(pipe, stack: list[Lora]) -> None:
    """Make ``pipe`` draw with exactly these LoRAs at these weights (weight 0: left out)."""
    wanted = {adapter_name(lora): lora for lora in stack if lora.weight != 0}
    loaded: dict[str, Lora] = dict(getattr(pipe, "_studio_loras", {}))
    if not wanted:
        if loaded:  # back to the model's own layers
            pipe.unload_lora_weights()
        pipe._studio_loras = {}
        return
    stale = [name for name in loaded if name not in wanted]
    if stale:
        pipe.delete_adapters(stale)
        for name in stale:
            loaded.pop(name)
    pipe._studio_loras = loaded
    for name, lora in wanted.items():
        if name in loaded:
            continue
        check_fits(lora, pipe)
        try:
            pipe.load_lora_weights(str(lora.path), adapter_name=name)
        except Exception as exc:  # keys of no known layout, shapes that do not fit
            _forget(pipe, name)
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else \
                type(exc).__name__
            raise ModelError(f"{lora.path.name} could not be applied to this model: "
                             f"{reason}") from exc
        if not any(name in names for names in pipe.get_list_adapters().values()):
            _forget(pipe, name)
            raise ModelError(f"{lora.path.name} matched no layer of this model (made for "
                             "another architecture?).")
        loaded[name] = lora
    pipe.set_adapters(list(wanted), adapter_weights=[lora.weight for lora in wanted.values()])


def _forget(pipe, name: str) -> None:
    try:
        pipe.delete_adapters([name])
    except Exception:  # noqa: BLE001 - it was never attached: nothing to remove
        pass
