"""The Interpolate model: a variational autoencoder of 4-bar melodies in the MusicVAE manner
(Roberts et al., "A Hierarchical Latent Vector Model for Learning Long-Term Structure in
Music", 2018). No Qt at all; torch is imported by the functions that build the network.

A melody is 64 sixteenth-note events: REST (nothing sounds), HOLD (the note before goes on)
or a note-on of pitch LOW…HIGH. A bidirectional LSTM encodes the events into a Gaussian
latent of LATENT dimensions; an LSTM decoder, started from the latent and fed it at every
step, writes the events back. Interpolation moves along the sphere between two latents
(slerp); variations are small moves around one latent.
"""

from __future__ import annotations

import numpy as np

REST, HOLD = 0, 1
LOW, HIGH = 36, 96
EVENTS = 2 + HIGH - LOW + 1
STEPS = 64  # 4 bars of 4/4 in sixteenths
LATENT = 32


def melody_events(notes, shift: int = 0, steps_per_quarter: int = 4) -> np.ndarray | None:
    """Notes (core io.midi.Note) → events on the sixteenth grid, moved by ``shift``
    semitones; the highest note wins where notes overlap. None for an empty melody."""
    if not notes:
        return None
    end = max(n.start + n.duration for n in notes)
    events = np.full(int(round(end * steps_per_quarter)) + 1, REST, dtype=np.int16)
    for note in sorted(notes, key=lambda n: (n.start, n.pitch)):
        start = int(round(note.start * steps_per_quarter))
        stop = max(start + 1, int(round((note.start + note.duration) * steps_per_quarter)))
        pitch = note.pitch + shift
        if not LOW <= pitch <= HIGH:
            continue
        events[start] = 2 + pitch - LOW
        events[start + 1:stop] = HOLD
    return events


def events_to_notes(events, steps_per_quarter: int = 4) -> list[tuple[float, float, int]]:
    """Events → (start, duration, pitch) in quarter notes."""
    notes, current = [], None
    for step, event in enumerate(list(events) + [REST]):
        event = int(event)
        if event == HOLD and current is not None:
            continue
        if current is not None:
            start, pitch = current
            notes.append((start / steps_per_quarter, (step - start) / steps_per_quarter, pitch))
            current = None
        if event >= 2:
            current = (step, event - 2 + LOW)
    return notes


def _teacher_forced(model, events, z, feedback: bool, word_dropout: float):
    """(mu, logvar, z, previous inputs) of a training pass: z drawn from the posterior while
    training (its mean otherwise, or the ``z`` given), word dropout only while training."""
    import torch

    mu, logvar = model.encode(events)
    if z is None:
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if model.training else mu
    previous = _previous(events, feedback, word_dropout if model.training else 0.0)
    return mu, logvar, z, previous


def _previous(events, feedback: bool, word_dropout: float):
    """The decoder's teacher-forced inputs: the start token, then the events shifted by one;
    without feedback only start tokens; ``word_dropout`` of them read as the start token."""
    import torch

    start = torch.full_like(events[:, :1], EVENTS)
    previous = torch.cat([start, events[:, :-1]], dim=1)
    if not feedback:
        return torch.full_like(previous, EVENTS)
    if word_dropout > 0:
        hidden = torch.rand(previous.shape, device=previous.device) < word_dropout
        previous = previous.masked_fill(hidden, EVENTS)
    return previous


def _decode_loop(step, z, state, steps: int, feedback: bool, temperature: float, generator,
                 bias):
    """Events one step after the other: ``step(token, index, state) -> (logits, state)``;
    greedy at temperature 0, else sampled; ``bias`` added to every step's logits."""
    import torch

    token = torch.full((z.shape[0], 1), EVENTS, dtype=torch.long, device=z.device)
    out = []
    for index in range(steps):
        logits, state = step(token, index, state)
        if bias is not None:
            logits = logits + bias
        if temperature <= 0:
            token = logits.argmax(-1, keepdim=True)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator)
        out.append(token)
        if not feedback:
            token = torch.full_like(token, EVENTS)
    return torch.cat(out, dim=1)


def build(hidden: int = 256, embed: int = 64, latent: int = LATENT, feedback: bool = True):
    """The network (a torch Module): ``encode(events) -> (mu, logvar)``,
    ``forward(events) -> (logits, mu, logvar)`` with teacher forcing, ``decode(z, ...)``.
    ``feedback=False``: the decoder never reads the events it wrote (only the latent and its
    own state), so everything it writes must come from the latent."""
    import torch
    from torch import nn

    class MelodyVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = {"hidden": hidden, "embed": embed, "latent": latent,
                           "events": EVENTS, "steps": STEPS, "low": LOW, "high": HIGH,
                           "feedback": feedback}
            self.embed = nn.Embedding(EVENTS + 1, embed)  # + a start token
            self.encoder = nn.LSTM(embed, hidden, batch_first=True, bidirectional=True)
            self.to_latent = nn.Linear(2 * hidden, 2 * latent)
            self.to_state = nn.Linear(latent, 4 * hidden)
            self.decoder = nn.LSTM(embed + latent, hidden, num_layers=2, batch_first=True)
            self.out = nn.Linear(hidden, EVENTS)

        def encode(self, events: torch.Tensor):
            _, (h, _) = self.encoder(self.embed(events))
            mu, logvar = self.to_latent(torch.cat([h[0], h[1]], dim=-1)).chunk(2, dim=-1)
            return mu, logvar.clamp(-8, 8)

        def _state(self, z: torch.Tensor):
            h0, h1, c0, c1 = torch.tanh(self.to_state(z)).chunk(4, dim=-1)
            return torch.stack([h0, h1]), torch.stack([c0, c1])

        def forward(self, events: torch.Tensor, z: torch.Tensor | None = None,
                    word_dropout: float = 0.0):
            mu, logvar, z, previous = _teacher_forced(self, events, z, feedback, word_dropout)
            inputs = self.embed(previous)
            inputs = torch.cat([inputs, z[:, None].expand(-1, events.shape[1], -1)], dim=-1)
            output, _ = self.decoder(inputs, self._state(z))
            return self.out(output), mu, logvar

        @torch.no_grad()
        def decode(self, z: torch.Tensor, steps: int = STEPS, temperature: float = 0.0,
                   generator: torch.Generator | None = None,
                   bias: torch.Tensor | None = None) -> torch.Tensor:
            """Events from latents (B, latent): greedy at temperature 0, else sampled;
            ``bias`` (EVENTS,) is added to every step's logits (a key's weighing)."""
            def step(token, _index, state):
                output, state = self.decoder(torch.cat([self.embed(token), z[:, None]], -1),
                                             state)
                return self.out(output[:, -1]), state

            return _decode_loop(step, z, self._state(z), steps, feedback, temperature,
                                generator, bias)

    return MelodyVAE()


def build_bars(width: int = 256, hidden: int = 256, latent: int = LATENT,
               feedback: bool = True):
    """The same interface, with the time structure in the network: the encoder folds the
    sixteenths into beats (strided convolutions) and reads the 16 beats both ways (BiGRU)
    into the latent; the decoder unfolds the latent into bars, beats and then a context for
    every sixteenth (transposed convolutions), and a GRU writes the events one after the
    other from that context and, with ``feedback``, the event before (autoregressive).
    Each step's context comes from the latent, so the decoder leans on it by design."""
    import torch
    from torch import nn

    class BarsVAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = {"arch": "bars", "width": width, "hidden": hidden, "latent": latent,
                           "events": EVENTS, "steps": STEPS, "low": LOW, "high": HIGH,
                           "feedback": feedback}
            self.embed = nn.Embedding(EVENTS + 1, width)  # + a start token
            self.down = nn.Sequential(
                nn.Conv1d(width, width, 3, padding=1), nn.GELU(),
                nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU(),
                nn.Conv1d(width, width, 4, stride=2, padding=1), nn.GELU())
            self.encoder = nn.GRU(width, hidden, batch_first=True, bidirectional=True)
            self.to_latent = nn.Linear(4 * hidden, 2 * latent)
            self.bars = nn.Linear(latent, 4 * width)
            self.up = nn.Sequential(
                nn.GELU(), nn.ConvTranspose1d(width, width, 4, stride=4), nn.GELU(),
                nn.ConvTranspose1d(width, width, 4, stride=4), nn.GELU(),
                nn.Conv1d(width, width, 3, padding=1), nn.GELU())
            self.decoder = nn.GRU(2 * width, hidden, batch_first=True)
            self.out = nn.Linear(hidden + width, EVENTS)

        def encode(self, events: torch.Tensor):
            beats = self.down(self.embed(events).transpose(1, 2)).transpose(1, 2)
            outputs, h = self.encoder(beats)
            summary = torch.cat([h[0], h[1], outputs.mean(1)], dim=-1)
            mu, logvar = self.to_latent(summary).chunk(2, dim=-1)
            return mu, logvar.clamp(-8, 8)

        def context(self, z: torch.Tensor) -> torch.Tensor:
            """(B, STEPS, width): what the latent says of each sixteenth."""
            bars = self.bars(z).reshape(z.shape[0], width, 4)
            return self.up(bars).transpose(1, 2)

        def _logits(self, previous, context, state=None):
            output, state = self.decoder(torch.cat([self.embed(previous), context], -1), state)
            return self.out(torch.cat([output, context], -1)), state

        def forward(self, events: torch.Tensor, z: torch.Tensor | None = None,
                    word_dropout: float = 0.0):
            mu, logvar, z, previous = _teacher_forced(self, events, z, feedback, word_dropout)
            logits, _ = self._logits(previous, self.context(z))
            return logits, mu, logvar

        @torch.no_grad()
        def decode(self, z: torch.Tensor, steps: int = STEPS, temperature: float = 0.0,
                   generator: torch.Generator | None = None,
                   bias: torch.Tensor | None = None) -> torch.Tensor:
            """Events from latents (B, latent): greedy at temperature 0, else sampled;
            ``bias`` (EVENTS,) is added to every step's logits (a key's weighing)."""
            context = self.context(z)

            def step(token, index, state):
                logits, state = self._logits(token, context[:, index:index + 1], state)
                return logits[:, -1], state

            return _decode_loop(step, z, None, steps, feedback, temperature, generator, bias)

    return BarsVAE()


def from_config(config: dict):
    """The network a config.json describes (bars or the plain LSTM)."""
    if config.get("arch") == "bars":
        return build_bars(int(config["width"]), int(config["hidden"]), int(config["latent"]),
                          bool(config.get("feedback", True)))
    return build(hidden=int(config["hidden"]), embed=int(config.get("embed", 64)),
                 latent=int(config["latent"]), feedback=bool(config.get("feedback", True)))


def key_bias(pitch_classes, weight: float):
    """(EVENTS,) logits bias: ``-weight`` nats on every note-on whose pitch class (in C, as
    the model writes) is not in ``pitch_classes``; ``inf`` weight forbids them."""
    import torch

    bias = torch.zeros(EVENTS)
    allowed = set(pitch_classes)
    for event in range(2, EVENTS):
        if (event - 2 + LOW) % 12 not in allowed:
            bias[event] = -weight
    return bias


def slerp(a, b, t: float):
    """Spherical interpolation between latents ``a`` and ``b`` (torch tensors)."""
    import torch

    omega = torch.arccos(torch.clamp((a / a.norm()) @ (b / b.norm()), -1.0, 1.0))
    if float(omega) < 1e-4:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)
