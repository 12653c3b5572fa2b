"""The Harmonize model: a Coconet-style infilling network over a four-voice piano roll
(Huang et al., "Counterpoint by Convolution", 2017). No Qt; imported only when used.

The roll is (voices, steps, pitches): soprano, alto, tenor, bass on a sixteenth-note grid,
pitches 36–81 plus one "rest" row. The network sees the known cells and a mask of the
unknown ones and predicts every cell's pitch at once; trained with random (orderless) masks,
it fills any subset — a melody's three lower voices, one voice, a gap — and sampling with
blocked Gibbs steps refines its guesses (generation is in the generator, not here).
"""

from __future__ import annotations

import torch
from torch import nn

LOW, HIGH = 36, 81  # MIDI pitches the voices use (the chorales' range)
PITCHES = HIGH - LOW + 2  # the last row is "rest"
REST = PITCHES - 1
VOICES = 4


def to_index(pitches: torch.Tensor) -> torch.Tensor:
    """MIDI pitches (-1 = rest) → row indices (rest → REST; out of range clipped)."""
    index = (pitches.long() - LOW).clamp(0, REST - 1)
    return torch.where(pitches < 0, torch.full_like(index, REST), index)


def to_pitch(index: torch.Tensor) -> torch.Tensor:
    return torch.where(index == REST, torch.full_like(index, -1), index + LOW)


class Block(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=(dilation, 1),
                               dilation=(dilation, 1))
        self.norm2 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(torch.relu(self.norm1(x)))
        return x + self.conv2(torch.relu(self.norm2(h)))


class Coconet(nn.Module):
    """(rolls (B, V, T) of row indices, mask (B, V, T) 1 = unknown) → logits (B, V, T, P).

    Convolutions run over time × pitch with the voices and their masks as channels; dilated
    steps along time widen the view to a couple of bars without pooling."""

    def __init__(self, blocks: int = 8, channels: int = 64) -> None:
        super().__init__()
        self.config = {"blocks": blocks, "channels": channels, "pitches": PITCHES,
                       "voices": VOICES, "low": LOW, "high": HIGH}
        self.inp = nn.Conv2d(2 * VOICES, channels, 3, padding=1)
        self.blocks = nn.ModuleList(Block(channels, 2 ** (i % 4)) for i in range(blocks))
        self.norm = nn.BatchNorm2d(channels)
        self.out = nn.Conv2d(channels, VOICES, 3, padding=1)

    def forward(self, rolls: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        known = nn.functional.one_hot(rolls, PITCHES).float() * (1 - mask.float())[..., None]
        masks = mask.float()[..., None].expand(-1, -1, -1, PITCHES)
        h = self.inp(torch.cat([known, masks], dim=1))
        for block in self.blocks:
            h = block(h)
        return self.out(torch.relu(self.norm(h)))  # (B, V, T, P)


def masked_nll(logits: torch.Tensor, rolls: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood (nats) of the true pitches of the unknown cells."""
    nll = nn.functional.cross_entropy(logits.permute(0, 3, 1, 2), rolls, reduction="none")
    weights = mask.float()
    return (nll * weights).sum() / weights.sum().clamp(min=1)
