"""MIDI files in and out, and audio rendering (no Qt; symusic/pretty_midi/mido imported lazily).

- ``read_notes``: a user's MIDI file → pitched notes in quarter notes, with clear messages for
  what is not usable (not a MIDI file, type 2, empty, drums only, too large).
- ``write_midi``: notes → a type-1 MIDI file (a conductor track with tempo, meter, key and
  the recipe in a text meta event; a named instrument track), ending on the bar line.
- ``with_recipe``: replace the recipe text event of a MIDI file (export).
- ``render_wav``: MIDI → 16-bit WAV with FluidSynth and a General MIDI SoundFont, or
  pretty_midi's sine synthesis when FluidSynth or the SoundFont is missing.
"""

from __future__ import annotations

import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import BadInput

MAX_MIDI_BYTES = 8 * 1024 * 1024
MAX_NOTES = 200_000
MAX_BEATS = 100_000  # a note later or longer than this is a damaged file
MIN_TEMPO, MAX_TEMPO = 20.0, 300.0  # BPM, as the Music panel's tempo (plugin.toml)
RECIPE_PREFIX = "creative-studio recipe: "
SOUNDFONTS = ("/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2",
              "/usr/share/sounds/sf2/default-GM.sf2", "/usr/share/soundfonts/default.sf2")


@dataclass(frozen=True)
class Note:
    start: float  # quarter notes from the beginning
    duration: float  # quarter notes
    pitch: int
    velocity: int = 90
    voice: int = 0  # which pitched track of the file it came from (0 = the first)


@dataclass
class MidiContent:
    notes: list[Note]
    time_signature: tuple[int, int]
    tempo: float  # quarter notes per minute
    # the file's first key signature as (tonic pitch class, "major" | "minor"); None without
    key: tuple[int, str] | None = None
    # marker texts at their times (quarter notes): chord symbols where a lead sheet has them
    marks: list[tuple[float, str]] = field(default_factory=list)
    # the notes of a track named "Chords" (CHORD_TRACK): the harmony, kept out of ``notes``
    chord_notes: list[Note] = field(default_factory=list)
    # (name, General MIDI program) of each voice's track, by Note.voice
    tracks: list[tuple[str, int]] = field(default_factory=list)


def check_size(size: int, name: str) -> None:
    """BadInput for a MIDI file larger than the studio reads (checked before reading it)."""
    if size > MAX_MIDI_BYTES:
        raise BadInput(f"{name} is {size / 2**20:.0f} MB: larger than the "
                       f"{MAX_MIDI_BYTES // 2**20} MB of MIDI the studio reads.")


def read_notes(data: bytes, name: str = "The file") -> MidiContent:
    """The pitched notes of a MIDI file (all non-drum tracks merged), or BadInput."""
    check_size(len(data), name)
    if len(data) < 14 or data[:4] != b"MThd":
        raise BadInput(f"{name} is not a MIDI file.")
    midi_format = int.from_bytes(data[8:10], "big")
    if midi_format == 2:
        raise BadInput(f"{name} is a type-2 MIDI file (independent patterns), which the "
                       "studio cannot continue: save it as type 0 or 1 in your DAW.")
    if midi_format not in (0, 1):
        raise BadInput(f"{name} is not a MIDI file the studio can read (format {midi_format}).")
    from symusic import Score

    try:
        score = Score.from_midi(data)
    except Exception as exc:  # symusic raises RuntimeError/ValueError on damaged files
        logging.getLogger(__name__).info("%s: MIDI reader: %s", name, exc)  # details: log
        raise BadInput(f"{name} is damaged or truncated: it cannot be read as MIDI.") from exc
    tpq = score.ticks_per_quarter or 480
    notes, chord_notes, tracks, drums, voice = [], [], [], 0, -1
    for track in score.tracks:
        if track.is_drum:
            drums += len(track.notes)
            continue
        harmony = track.name.strip().lower() == CHORD_TRACK.lower()
        if len(track.notes) and not harmony:
            voice += 1
            tracks.append((str(track.name)[:64], int(track.program) % 128))
        for note in track.notes:
            if note.duration <= 0:
                continue
            if not 0 <= note.time <= MAX_BEATS * tpq or note.duration > MAX_BEATS * tpq:
                raise BadInput(f"{name} has notes at impossible times (beyond "
                               f"{MAX_BEATS:,} beats): it is damaged or not a song.")
            (chord_notes if harmony else notes).append(
                Note(note.time / tpq, note.duration / tpq, int(note.pitch),
                     int(note.velocity) or 90, 0 if harmony else voice))
            if len(notes) + len(chord_notes) > MAX_NOTES:
                raise BadInput(f"{name} has more than {MAX_NOTES:,} notes: too large to "
                               "continue.")
    if not notes:
        if drums:
            raise BadInput(f"{name} has only drums: the studio continues melodies and "
                           "harmony (pitched tracks).")
        raise BadInput(f"{name} has no notes.")
    notes.sort(key=lambda n: (n.start, n.pitch))
    meter = (4, 4)
    if len(score.time_signatures):
        first = score.time_signatures[0]
        if 1 <= int(first.numerator) <= 32 and int(first.denominator) in (1, 2, 4, 8, 16, 32):
            meter = (int(first.numerator), int(first.denominator))
    tempo = 120.0
    if len(score.tempos):
        qpm = float(score.tempos[0].qpm)
        if math.isfinite(qpm) and qpm > 0:  # a tempo of 0 or infinity says nothing usable
            tempo = min(MAX_TEMPO, max(MIN_TEMPO, qpm))
    key = None
    if len(score.key_signatures):
        first_key = score.key_signatures[0]
        sharps, minor = int(first_key.key), int(first_key.tonality)
        if -7 <= sharps <= 7 and minor in (0, 1):
            major_tonic = sharps * 7 % 12  # a sharp more: a fifth up
            key = ((major_tonic + 9) % 12, "minor") if minor else (major_tonic, "major")
    marks = [(marker.time / tpq, str(marker.text)[:64]) for marker in score.markers[:MAX_MARKS]
             if 0 <= marker.time <= MAX_BEATS * tpq]
    chord_notes.sort(key=lambda n: (n.start, n.pitch))
    return MidiContent(notes, meter, tempo, key, marks, chord_notes, tracks)


TICKS = 480  # per quarter note
CHORD_TRACK = "Chords"  # the name of the track that holds a piece's harmony
MAX_MARKS = 4096  # markers read from one file
# semitones from a mode's tonic down to the major key with the same notes (its signature)
MODE_TO_MAJOR = {"major": 0, "minor": -9, "dorian": -2, "mixolydian": -7}
SHARPS_OF_MAJOR = {0: 0, 7: 1, 2: 2, 9: 3, 4: 4, 11: 5, 6: 6, 5: -1, 10: -2, 3: -3, 8: -4,
                   1: -5}
MAJOR_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MINOR_NAMES = ("Cm", "C#m", "Dm", "Ebm", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "Bbm", "Bm")


def key_signature_name(tonic: int, mode: str) -> str:
    """The MIDI key signature of a key: minor as minor; other modes as the major key with the
    same notes (D dorian → C: no sharps, as a score writes it)."""
    if mode == "minor":
        return MINOR_NAMES[tonic % 12]
    return MAJOR_NAMES[(tonic + MODE_TO_MAJOR.get(mode, 0)) % 12]


@dataclass
class Part:
    """One instrument track of a file to write: its name, General MIDI program and notes."""

    notes: list[Note]
    program: int = 0
    name: str = ""


def _latin1(text: str) -> str:
    """A name MIDI meta events can hold (mido writes them as latin-1): flats and sharps
    spelled as a score would, anything else left out."""
    text = text.replace("♭", "b").replace("♯", "#")
    return text.encode("latin-1", errors="ignore").decode("latin-1")[:120]


def write_midi(notes: list[Note], tempo: float, time_signature: tuple[int, int],
               program: int = 0, key: tuple[int, str] | None = None, recipe: str = "",
               name: str = "Creative Studio", length: float | None = None,
               instrument: str = "") -> bytes:
    """A type-1 MIDI file of one instrument track (see write_parts)."""
    return write_parts([Part(notes, program, instrument)], tempo, time_signature, key, recipe,
                       name, length)


def write_parts(parts: list[Part], tempo: float, time_signature: tuple[int, int],
                key: tuple[int, str] | None = None, recipe: str = "",
                name: str = "Creative Studio", length: float | None = None,
                marks: list[tuple[float, str]] = (), chord_notes: list[Note] = ()) -> bytes:
    """A type-1 MIDI file: a conductor track (name, tempo, meter, key, recipe, ``marks``:
    marker events such as chord symbols, at times in quarter notes) and one named track per
    part on its own channel (a DAW opens them as separate tracks), ``chord_notes`` last as
    the CHORD_TRACK that read_notes keeps apart. ``length`` (quarter notes,
    e.g. bars × bar length) puts the end of every track on that bar line and cuts notes that
    would ring past it, so 8 bars read as 8 bars in any meter."""
    import mido

    if chord_notes:
        parts = [*parts, Part(list(chord_notes), 0, CHORD_TRACK)]
    tempo = float(tempo)
    end = None if length is None else round(length * TICKS)
    conductor = [mido.MetaMessage("track_name", name=_latin1(name), time=0),
                 mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0),
                 mido.MetaMessage("time_signature", numerator=int(time_signature[0]),
                                  denominator=int(time_signature[1]), time=0)]
    if key is not None:
        conductor.append(mido.MetaMessage("key_signature",
                                          key=key_signature_name(key[0], key[1]), time=0))
    if recipe:
        conductor.append(mido.MetaMessage("text", text=RECIPE_PREFIX + recipe, time=0))
    marked = 0  # the conductor's last event
    for tick, text in sorted((max(0, round(t * TICKS)), x) for t, x in marks):
        if end is None or tick < end:
            conductor.append(mido.MetaMessage("marker", text=_latin1(text),
                                              time=tick - marked))
            marked = tick
    tracks, last = [], max(end or 0, marked)
    channels = [c for c in range(16) if c != 9]  # channel 10 is the drums
    for index, part in enumerate(parts):
        channel = channels[index % len(channels)]
        events = []  # (tick, order, message): note-offs before note-ons at the same tick
        for note in part.notes:
            on = max(0, round(note.start * TICKS))
            off = round((note.start + max(note.duration, 1 / 16)) * TICKS)
            if end is not None:
                if on >= end:
                    continue
                off = min(off, end)
            if off <= on:
                continue
            pitch, velocity = max(0, min(127, note.pitch)), max(1, min(127, note.velocity))
            events.append((on, 1, mido.Message("note_on", channel=channel, note=pitch,
                                               velocity=velocity)))
            events.append((off, 0, mido.Message("note_off", channel=channel, note=pitch,
                                                velocity=0)))
        events.sort(key=lambda e: (e[0], e[1]))
        label = part.name or _program_name(part.program)
        track = [mido.MetaMessage("track_name", name=_latin1(label), time=0),
                 mido.MetaMessage("instrument_name", name=_latin1(label), time=0),
                 mido.Message("program_change", channel=channel,
                              program=int(part.program) % 128, time=0)]
        now = 0
        for tick, _, message in events:
            track.append(message.copy(time=tick - now))
            now = tick
        tracks.append((track, now))
        last = max(last, now)
    midi = mido.MidiFile(type=1, ticks_per_beat=TICKS)
    conductor.append(mido.MetaMessage("end_of_track", time=last - marked))
    midi.tracks.append(mido.MidiTrack(conductor))
    for track, now in tracks:
        track.append(mido.MetaMessage("end_of_track", time=last - now))
        midi.tracks.append(mido.MidiTrack(track))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _program_name(program: int) -> str:
    """General MIDI's name of a program (pretty_midi has the table)."""
    try:
        import pretty_midi

        return pretty_midi.program_to_instrument_name(int(program) % 128)
    except (ImportError, ValueError):
        return f"Program {program}"


def length_seconds(data: bytes) -> float:
    """How long a MIDI file lasts, to its end-of-track (tempo changes included)."""
    import mido

    return float(mido.MidiFile(file=io.BytesIO(data)).length)


def recipe_of(data: bytes) -> str:
    """The recipe text a MIDI file carries ('' when none)."""
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    for track in midi.tracks:
        for message in track:
            if message.type == "text" and message.text.startswith(RECIPE_PREFIX):
                return message.text[len(RECIPE_PREFIX):]
    return ""


def with_recipe(data: bytes, recipe: str) -> bytes:
    """The same MIDI file with its recipe text event replaced by ``recipe``."""
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    for track in midi.tracks:
        kept, carry = [], 0
        for message in track:
            if message.type == "text" and message.text.startswith(RECIPE_PREFIX):
                carry += message.time  # keep the timing of what follows
                continue
            kept.append(message.copy(time=message.time + carry))
            carry = 0
        track[:] = kept
    midi.tracks[0].insert(0, mido.MetaMessage("text", text=RECIPE_PREFIX + recipe, time=0))
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def soundfont() -> Path | None:
    override = os.environ.get("CREATIVE_STUDIO_SOUNDFONT")
    for candidate in ([override] if override else []) + list(SOUNDFONTS):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def render(data: bytes, rate: int = 44100):
    """(float32 mono samples, rate, engine) for a MIDI file; engine says what played it."""
    import numpy as np
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(io.BytesIO(data))
    font = soundfont()
    samples, engine = None, "sine (FluidSynth or a SoundFont is missing)"
    if font is not None:
        try:
            import fluidsynth  # noqa: F401  (pyfluidsynth; needs Debian's libfluidsynth)

            samples = midi.fluidsynth(fs=rate, synthesizer=str(font))
            engine = f"FluidSynth, {font.name}"
        except Exception:  # ImportError/OSError when libfluidsynth is absent
            samples = None
    if samples is None:
        samples = midi.synthesize(fs=rate)
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    if peak > 0:
        samples = samples / peak * 0.8
    return samples.astype(np.float32), rate, engine


RELEASE = 1.0  # seconds of sound after the MIDI's end (the last notes' release)


def render_wav(data: bytes, rate: int = 44100) -> tuple[bytes, str]:
    """(WAV bytes, engine) for a MIDI file: exactly as long as the MIDI plus RELEASE seconds
    (cut with a short fade, or padded with silence), so it lines up with the bars in a DAW."""
    import numpy as np
    import soundfile

    samples, rate, engine = render(data, rate)
    frames = round((length_seconds(data) + RELEASE) * rate)
    if len(samples) > frames:
        samples = samples[:frames].copy()
        fade = min(len(samples), rate // 20)
        samples[len(samples) - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    else:
        samples = np.pad(samples, (0, frames - len(samples)))
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue(), engine
