"""Harmonize, interpolate and vary: the Music plugin's tasks that rework melodies the user
gives, with the Coconet-style harmonizer (coconet.py) and the melody VAE (melody_vae.py).
No Qt; torch imported lazily. MusicGenerator loads these models and hands the tasks here.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from creative_studio.core.errors import BadInput, ModelError
from creative_studio.core.jobs import Asset, Inputs, ModelIdentity, Request, Result
from creative_studio.io.midi import MidiContent, Note, Part, read_notes, write_parts

from . import chords
from .analysis import (
    bar_length,
    bars_of,
    check_selection,
    detect_key,
    in_key_share,
    key_name,
    key_of,
)
from .grammar import SCALES

VOICE_NAMES = ("Soprano", "Alto", "Tenor", "Bass")
MAX_MELODY_BARS = 16


def kind_of(folder: Path) -> str:
    """"harmonize", "vae" or "gpt2": what a music model folder holds (its config.json)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return "gpt2"
    if isinstance(config, dict) and "voices" in config and "blocks" in config:
        return "harmonize"
    if isinstance(config, dict) and "latent" in config and "steps" in config:
        return "vae"
    return "gpt2"


def load(folder: Path, kind: str, device: str):
    """The network of a harmonize or VAE folder (safetensors only), in eval mode."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        config = json.loads((folder / "config.json").read_text())
        state = load_file(str(folder / "model.safetensors"))
        if kind == "harmonize":
            from .coconet import Coconet

            model = Coconet(int(config["blocks"]), int(config["channels"]))
        else:
            from .melody_vae import from_config

            model = from_config(config)
        model.load_state_dict(state)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        raise ModelError(f"{folder.name} is not a usable {kind} model: {exc}") from exc
    model.eval().to(device)
    if kind == "harmonize":
        model.to(memory_format=torch.channels_last)
    return model


def melody_of(request: Request, inputs: Inputs, index: int = 0) -> MidiContent:
    """The MIDI a request reads (its ``index``-th parent), as notes."""
    parent = request.parents[index]
    midis = [a for a in inputs.get(parent, []) if a.mime in ("audio/midi", "audio/x-midi")]
    if not midis:
        raise BadInput("The chosen item has no MIDI to read.")
    content = read_notes(midis[0].data, midis[0].name or "The MIDI file")
    bars = max(n.start + n.duration for n in content.notes) / bar_length(content.time_signature)
    if bars > MAX_MELODY_BARS + 1e-6:
        raise BadInput(f"{midis[0].name or 'The MIDI'} is {bars:.0f} bars long: choose at most "
                       f"{MAX_MELODY_BARS} bars to rework.")
    return content


def top_line(notes: list[Note]) -> list[Note]:
    """The melody of notes that may be chords: the highest note of each onset."""
    by_start: dict[float, Note] = {}
    for note in notes:
        if note.start not in by_start or note.pitch > by_start[note.start].pitch:
            by_start[note.start] = note
    return [by_start[k] for k in sorted(by_start)]


def _recipe(request: Request, identity: ModelIdentity) -> str:
    return json.dumps({"task": request.task, "seed": request.seed, "params": request.params,
                       "model": identity.ref}, ensure_ascii=True)


def _draw_voices(model, device: str, request: Request, progress, content: MidiContent,
                 melody: list[Note], soprano: np.ndarray, bars: int, voices: int,
                 start: np.ndarray | None = None, free: np.ndarray | None = None):
    """The key (found or set), the chords asked for, and the lower voices drawn under
    ``soprano`` (harmonize.py; ``start``/``free``: only some cells): (tonic, mode, chords,
    (4, T) rolls)."""
    import torch

    from .harmonize import harmonize as draw

    p = request.params
    tonic, mode = key_of(p, melody, content.key)
    key = {(tonic + step) % 12 for step in SCALES[mode]}
    scale = key if p["strict_key"] else None  # masked; else weighed against (harmonize.py)
    played = chords.requested(p.get("chords", ""), content, content.time_signature, bars)
    steps = [chords.at(played, step / 4) for step in range(len(soprano))] if played else None
    bf16 = device == "cpu" and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        rolls = draw(model, soprano, temperature=max(p["temperature"], 0.05),
                     iterations=p["iterations"], seed=request.seed, voices=voices,
                     scale=scale, key=key, progress=progress,
                     chords=None if steps is None else
                     [(c.tones, c.bass) if c else None for c in steps],
                     start=start, free=free)
    return tonic, mode, played, rolls


def harmonize(model, identity: ModelIdentity, device: str, request: Request, progress,
              inputs: Inputs) -> Result:
    from .harmonize import soprano_roll

    p = request.params
    started = time.perf_counter()
    content = melody_of(request, inputs)
    melody = top_line(content.notes)
    soprano = soprano_roll(melody)
    meter = content.time_signature
    bars = -(-(len(soprano) / 4) // bar_length(meter))
    tonic, mode, played, rolls = _draw_voices(model, device, request, progress, content,
                                              melody, soprano, int(bars), p["voices"])
    programs = (p["program"], p["alto_program"], p["tenor_program"], p["bass_program"])
    parts = [Part(melody, programs[0], VOICE_NAMES[0])]
    for voice in range(1, p["voices"]):
        parts.append(Part(_notes_of_row(rolls[voice], voice), programs[voice],
                          VOICE_NAMES[voice]))
    return _voices_result(request, identity, device, content, parts, rolls, p["voices"],
                          (tonic, mode), played, int(bars), started, "harmonized.mid",
                          f"Harmonized in {p['voices']} parts: {int(bars)} bars, "
                          f"{key_name(tonic, mode)}")


def _voices_result(request: Request, identity: ModelIdentity, device: str,
                   content: MidiContent, parts: list[Part], rolls: np.ndarray, voices: int,
                   key: tuple[int, str], played: list, bars: int, started: float,
                   file_name: str, title: str, extra: dict | None = None) -> Result:
    """A harmonization's MIDI (the parts, the chords asked for or the MIDI's own) and its
    figures (key, parallels, ranges, chord tones)."""
    from .harmonize import in_ranges, parallels

    p = request.params
    tonic, mode = key
    meter = content.time_signature
    tempo = float(p.get("tempo") or content.tempo)
    # the chords asked for, else the MIDI's own chord track and symbols go along
    marks = [(c.start, c.symbol) for c in played] if played else content.marks
    data = write_parts(parts, tempo, meter, (tonic, mode), _recipe(request, identity),
                       name=f"{key_name(tonic, mode)} chorale harmonization",
                       length=bars * bar_length(meter), marks=marks,
                       chord_notes=chords.track(played) if played else content.chord_notes)
    lower = [n for part in parts[1:voices] for n in part.notes]
    count, moves = parallels(rolls[:voices])
    metadata = {"voices": voices, "key": key_name(tonic, mode), "tonic": tonic,
                "mode": mode, "bars": bars, "notes": len(lower),
                "in_key": round(in_key_share(lower, tonic, mode), 4),
                "parallels_per_100_moves": round(100 * count / moves, 2) if moves else 0.0,
                "in_ranges": round(in_ranges(rolls[:voices]), 4),
                "time_signature": f"{meter[0]}/{meter[1]}", "tempo": tempo,
                **(extra or {}), "seconds": round(time.perf_counter() - started, 3)}
    if played:
        metadata["chords"] = chords.text(played, meter)
        metadata["lower_chord_tones"] = round(sum(
            n.pitch % 12 in getattr(chords.at(played, n.start), "tones", ())
            for n in lower) / max(1, len(lower)), 4)
    return Result([Asset("midi", "audio/midi", data, file_name)], identity, device,
                  metadata=metadata, title=title)


REVOICE = {"atb": (1, 2, 3), "a": (1,), "t": (2,), "b": (3,), "at": (1, 2), "tb": (2, 3),
           "ab": (1, 3)}  # Regenerate voices: which lower voices


def revoice(model, identity: ModelIdentity, device: str, request: Request, progress,
            inputs: Inputs) -> Result:
    """Regenerate voices: the chosen lower voices of a harmonization (a track per voice,
    soprano first), in the chosen bars, drawn anew around everything else — every other
    note, of every voice, stays as it was."""
    from .harmonize import soprano_roll

    p = request.params
    started = time.perf_counter()
    content = melody_of(request, inputs)
    tracks = sorted({n.voice for n in content.notes})
    if len(tracks) < 3:
        raise BadInput(f"Regenerate voices works on a harmonization: a MIDI with a track per "
                       f"voice, soprano first (Harmonize makes one); this one has "
                       f"{len(tracks)} track{'s' if len(tracks) != 1 else ''}.")
    voices = min(4, len(tracks))
    by_voice = [[replace(n, voice=i) for n in content.notes if n.voice == track]
                for i, track in enumerate(tracks[:voices])]
    meter = content.time_signature
    bar = bar_length(meter)
    bars = bars_of(content.notes, meter)
    first, last = int(p["from_bar"]), int(p["to_bar"])
    check_selection(first, last, bars)
    chosen = [v for v in REVOICE[p["which_voices"]] if v < voices]
    if not chosen:
        raise BadInput("This harmonization has no bass to regenerate (3 voices).")
    steps = round(bars * bar * 4)
    rolls = np.full((4, steps), -1, dtype=np.int16)
    for voice, notes in enumerate(by_voice):
        roll = soprano_roll(notes)[:steps]
        rolls[voice, :len(roll)] = roll
    lo, hi = (first - 1) * bar, last * bar
    free = np.zeros((4, steps), dtype=bool)
    free[chosen, round(lo * 4):round(hi * 4)] = True
    melody = top_line(by_voice[0])
    tonic, mode, played, drawn = _draw_voices(model, device, request, progress, content,
                                              melody, rolls[0], bars, voices, rolls, free)
    programs = (p["program"], p["alto_program"], p["tenor_program"], p["bass_program"])
    parts = []
    for voice, notes in enumerate(by_voice):
        if voice in chosen:
            kept = [replace(n, duration=min(n.duration, lo - n.start)) if n.start < lo
                    else n for n in notes if n.start < lo - 1e-9 or n.start >= hi - 1e-9]
            inside = np.where(free[voice], drawn[voice], -1).astype(np.int16)
            notes = sorted(kept + _notes_of_row(inside, voice), key=lambda n: n.start)
        parts.append(Part(notes, programs[voice], VOICE_NAMES[voice]))
    names = " and ".join(VOICE_NAMES[v].lower() for v in chosen)
    span = f"bar {first}" if first == last else f"bars {first}–{last}"
    new = sum(1 for v in chosen for n in parts[v].notes if lo - 1e-9 <= n.start < hi)
    return _voices_result(request, identity, device, content, parts, drawn, voices,
                          (tonic, mode), played, bars, started, "revoiced.mid",
                          f"Regenerated {names}, {span}: {key_name(tonic, mode)}",
                          {"from_bar": first, "to_bar": last, "regenerated": names,
                           "new_notes": new})


def _notes_of_row(row: np.ndarray, voice: int) -> list[Note]:
    """A voice's roll → notes: equal pitches on consecutive sixteenths make one note."""
    notes, start = [], None
    for step, pitch in enumerate(list(row) + [-1]):
        if start is not None and pitch != row[start]:
            notes.append(Note(start / 4, (step - start) / 4, int(row[start]), 80, voice))
            start = None
        if start is None and pitch >= 0 and step < len(row):
            start = step
    return notes


def _events(notes: list[Note], tonic: int, windows: int):
    """A melody moved to tonic C → (windows, STEPS) VAE events (padded with rests)."""
    from .melody_vae import REST, STEPS, melody_events
    from .tokens import tonic_shift

    events = melody_events(top_line(notes), tonic_shift(tonic))
    out = np.full(windows * STEPS, REST, dtype=np.int64)
    out[:min(len(events), len(out))] = events[:len(out)]
    return out.reshape(windows, STEPS)


def rework(model, identity: ModelIdentity, device: str, request: Request, progress,
           inputs: Inputs) -> Result:
    """interpolate (two parents → the melodies between) or vary (one parent → a variation)."""
    import torch

    from .melody_vae import STEPS, events_to_notes
    from .tokens import tonic_shift

    p = request.params
    started = time.perf_counter()
    melodies = [melody_of(request, inputs, i) for i in range(len(request.parents))]
    first = melodies[0]
    meter = first.time_signature
    spans = [max(n.start + n.duration for n in m.notes) for m in melodies]
    windows = max(1, int(-(-max(spans) * 4 // STEPS)))
    keys = [detect_key(top_line(m.notes), m.key) for m in melodies]
    if len(keys) > 1 and in_key_share(top_line(melodies[1].notes), *keys[0]) >= SAME_KEY:
        # the second fits the first's key: read it so (key finding alone may call a C-major
        # tune E minor, and moving it to C by that would move it a third)
        keys[1] = keys[0]
    tonic, mode = keys[0]
    generator = torch.Generator().manual_seed(int(request.seed))
    sections = _decode_sections(model, request, melodies, keys, windows, generator, progress)
    back = -tonic_shift(tonic)  # the model writes in C: back to the first melody's key
    section = windows * STEPS / 4  # quarter notes per section
    notes: list[Note] = []
    layout = [("first", first.notes)] if request.task == "interpolate" else []
    layout += [(f"step {i + 1}", [Note(s, d, pitch + back, 85)
                                  for s, d, pitch in events_to_notes(events)])
               for i, events in enumerate(sections)]
    if request.task == "interpolate":  # both ends as the user gave them
        layout.append(("second", melodies[1].notes))
    for index, (_, part) in enumerate(layout):
        notes += [Note(n.start + index * section, n.duration, n.pitch, n.velocity, index)
                  for n in part if n.start < section]
    tempo = float(p.get("tempo") or first.tempo)
    data = write_parts([Part(notes, p["program"], "Melody")], tempo, meter, (tonic, mode),
                       _recipe(request, identity),
                       name=f"{key_name(tonic, mode)} {request.task}",
                       length=section * len(layout))
    made = [n for n in notes if layout[n.voice][0].startswith("step")]
    metadata = {"sections": [name for name, _ in layout], "section_quarters": section,
                "key": key_name(tonic, mode), "tonic": tonic, "mode": mode,
                "in_key": round(in_key_share(made, tonic, mode), 4) if made else 0.0,
                "notes": len(made), "time_signature": f"{meter[0]}/{meter[1]}",
                "out_of_key": "masked" if p.get("strict_key") else OUT_OF_KEY,
                "tempo": tempo, "seconds": round(time.perf_counter() - started, 3)}
    title = (f"Interpolated: {p['steps']} steps, {key_name(tonic, mode)}"
             if request.task == "interpolate" else f"Variation, spread {p['spread']:g}")
    return Result([Asset("midi", "audio/midi", data, f"{request.task}.mid")], identity,
                  device, metadata=metadata, title=title)


OUT_OF_KEY = 6.0  # nats off a note-on outside the first melody's key (strict_key: masked)
SAME_KEY = 0.9  # share of the second melody's notes in the first's key: read in that key


def steps_key(row, mode: str, weight: float = OUT_OF_KEY):
    """The VAE's logits bias for the steps, which are written in the first melody's key
    (its event rows moved to C, and its mode): notes of its scale and the notes it has
    itself are free; others lose ``weight`` nats. Latents between two melodies mix their
    pitches: unweighed, a third of the steps' notes fall outside the key (bench/README.md).
    The second melody counts only through its latent: each melody is moved to C by the key
    found in it, so a relative minor (B minor beside D major) sits in C minor there."""
    from .melody_vae import LOW, key_bias

    allowed = set(SCALES.get(mode, SCALES["major"]))
    allowed |= {(int(e) - 2 + LOW) % 12 for e in np.asarray(row).reshape(-1) if e >= 2}
    return key_bias(allowed, weight)


def _decode_sections(model, request: Request, melodies, keys, windows: int, generator,
                     progress) -> list:
    """The event rows of each step (interpolate) or of the variation (vary)."""
    import torch

    from .melody_vae import STEPS, slerp

    p = request.params
    rows = [_events(m.notes, k[0], windows) for m, k in zip(melodies, keys, strict=True)]
    bias = steps_key(rows[0], keys[0][1],
                     float("inf") if p.get("strict_key") else OUT_OF_KEY)
    with torch.inference_mode():
        latents = [model.encode(torch.from_numpy(row))[0] for row in rows]
        if request.task == "interpolate":
            count = p["steps"]
            zs = [slerp_rows(latents[0], latents[1], (i + 1) / (count + 1), slerp)
                  for i in range(count)]
        else:
            noise = torch.randn(latents[0].shape, generator=generator)
            zs = [latents[0] + p["spread"] * noise]
        sections = []
        for index, z in enumerate(zs):
            decoded = model.decode(z, STEPS, p["sampling"], generator, bias)
            sections.append(decoded.reshape(-1).numpy())
            progress.update((index + 1) / len(zs))
            progress.check()
    return sections


def slerp_rows(a, b, t: float, slerp):
    """slerp of each row (one 4-bar window each) of two latent batches."""
    import torch

    return torch.stack([slerp(a[i], b[i], t) for i in range(a.shape[0])])
