"""MIDI ideas from the studio's own GPT-2 over REMI tokens (no Qt; torch imported lazily).

Tasks (parameters declared in plugin.toml):
- ``generate``: from scratch. Params: ``tonic`` (0–11), ``mode``, ``tempo``, ``time_signature``,
  ``bars``, ``style``, ``temperature``, ``top_p``, ``program`` (GM instrument), ``strict_key``.
- ``continue``: ``parents = [a MIDI item]``; keeps its first ``keep_bars`` bars verbatim and adds
  ``bars`` more. ``tonic``/``mode`` may be ``"auto"`` or left out (found from the prompt's
  notes); ``tempo`` left out keeps the MIDI's.

The model writes with tonic C (its training data were moved there); the requested key is
reached by transposing, the meter is forced by the grammar (grammar.py), the bar count is exact.
"""

from __future__ import annotations

import json
import time

from creative_studio.core.errors import BadInput, ModelError
from creative_studio.core.jobs import Asset, Inputs, ModelIdentity, Request, Result
from creative_studio.core.models import ModelSource
from creative_studio.core.progress import Progress
from creative_studio.core.provenance import weights_sha256
from creative_studio.io.midi import Note, Part, read_notes, write_parts

from . import chords
from .analysis import (
    bar_length,
    bars_of,
    check_selection,
    detect_key,
    in_key_share,
    key_name,
    key_of,
    summary,
)
from .grammar import POSITIONS_PER_BEAT, TIME_SIGNATURES, Grammar, Vocabulary
from .tokens import MODES, STYLES, tonic_shift

CONTEXT = 512  # the training window: positions beyond it were never trained
TASK_MODELS = {"harmonize": "harmonize", "revoice": "harmonize", "interpolate": "vae",
               "vary": "vae"}
MODEL_KINDS = {"gpt2": "GPT-2 music model", "harmonize": "chorale harmonizer",
               "vae": "melody VAE"}
MAX_BARS = 64


class MusicGenerator:
    @staticmethod
    def thread_ceiling(request: Request) -> tuple[int, str] | None:
        """The thread policy's ceiling (creative_studio/core/cpu.py): the melody models
        write one token at a time, each step a few tiny matrix products — latency-bound, one
        thread is their fastest even on an idle machine (8 bars: 0.34 s on one thread, 0.39
        on two; bench/threads.py). Harmonize's passes over the whole piano roll do use two."""
        if request.task in ("harmonize", "revoice"):
            return None
        return 1, "the melody models write one token at a time"

    def __init__(self) -> None:
        self.model = None
        self.tokenizer = None
        self.vocab: Vocabulary | None = None
        self.identity: ModelIdentity | None = None
        self.device = "cpu"
        self.kind = "gpt2"  # or "harmonize", "vae": which network is loaded

    # -- contract ----------------------------------------------------------------------
    @staticmethod
    def validate(request: Request) -> None:
        """Only a continuation finds its key ("auto"); a new idea is told its key. A typed
        progression is read before any model loads."""
        if request.task == "generate" and "auto" in (request.params["tonic"],
                                                     request.params["mode"]):
            raise BadInput("A new idea needs a key: 'auto' finds the key of a MIDI you "
                           "continue.")
        typed = str(request.params.get("chords") or "").strip()
        if typed.lower() == chords.FROM_MIDI:
            if request.task == "generate":
                chords.requested(typed, None, (4, 4), 1)  # says why plainly
        elif typed:
            chords.parse_progression(typed)

    def load(self, source: ModelSource, device: str, progress: Progress) -> None:
        import torch
        from miditok import REMI
        from transformers import AutoModelForCausalLM

        from . import reworks

        progress.say("Loading the music model…")
        self.kind = reworks.kind_of(source.local_path("music model"))
        if self.kind != "gpt2":  # the harmonizer or the melody VAE
            folder = source.folder_with("model.safetensors", f"{self.kind} model")
            self.model = reworks.load(folder, self.kind, device)
            self.device = device
            self.identity = ModelIdentity(source.name, source.ref, weights_sha256(folder),
                                          source.source)
            progress.say("")
            return
        folder = source.folder_with("tokenizer.json", "music model",
                                    "the miditok tokenizer it was trained with; "
                                    "tools/music/train.py --export makes such a folder")
        name = source.name
        try:
            tokenizer = REMI(params=folder / "tokenizer.json")
            vocab = Vocabulary(dict(tokenizer.vocab))
            missing = [t for t in (*(f"Style_{s}" for s in STYLES),
                                   *(f"Mode_{m}" for m in MODES)) if t not in tokenizer.vocab]
            if missing:
                raise ModelError(f"{name}'s tokenizer lacks {', '.join(missing)}: it is not a "
                                 "Creative Studio music model (tools/music/train.py makes one).")
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True,
                                                         dtype=torch.float32)
        except ModelError:
            raise
        except (OSError, ValueError, KeyError) as exc:
            raise ModelError(f"{name} is not a usable music model: {exc}") from exc
        model.eval().to(device)
        self.model, self.tokenizer, self.vocab, self.device = model, tokenizer, vocab, device
        self.identity = ModelIdentity(name, source.ref, weights_sha256(folder), source.source)
        progress.say("")

    def unload(self) -> None:
        self.model = self.tokenizer = self.vocab = None

    # -- generation ------------------------------------------------------------------------
    def generate(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        from . import reworks

        needs = TASK_MODELS.get(request.task, "gpt2")
        if needs != self.kind:
            raise BadInput(f"The {request.task} task needs the {MODEL_KINDS[needs]} "
                           f"({self.identity.name if self.identity else 'this model'} is "
                           f"the {MODEL_KINDS[self.kind]}).")
        if request.task in ("harmonize", "revoice"):
            work = reworks.harmonize if request.task == "harmonize" else reworks.revoice
            return work(self.model, self.identity, self.device, request, progress, inputs)
        if request.task in ("interpolate", "vary"):
            return reworks.rework(self.model, self.identity, self.device, request, progress,
                                  inputs)
        if request.task == "infill":
            return self._infill(request, progress, inputs)
        if request.task == "humanize":
            return self._humanize(request, inputs)
        p = request.params
        started = time.perf_counter()
        style = p["style"]
        bars = p["bars"]
        tempo = p.get("tempo")
        program = p["program"]
        prompt_notes: list[Note] = []
        keep_bars = 0
        content = None
        if request.task == "continue":
            content, time_signature, midi_bars = self._midi_to_write_in(request, inputs)
            meter = content.time_signature
            # never more bars than the MIDI has: no silent gap before the continuation
            keep_bars = max(1, min(p["keep_bars"], midi_bars))
            cut = keep_bars * bar_length(meter)
            prompt_notes = [n for n in content.notes if n.start < cut - 1e-6]
            if not prompt_notes:
                raise BadInput(f"The first {keep_bars} bar(s) of the MIDI have no notes.")
            prompt_notes = [Note(n.start, min(n.duration, cut - n.start), n.pitch, n.velocity)
                            for n in prompt_notes]
            tonic, mode = key_of(p, prompt_notes, content.key)
            if tempo is None:
                tempo = content.tempo
        else:
            time_signature = p["time_signature"]
            meter = tuple(int(x) for x in time_signature.split("/"))
            tonic, mode = p["tonic"], p["mode"]
        shift = tonic_shift(tonic)  # the model writes in C: the prompt goes there, output back
        total = keep_bars + bars
        played = chords.requested(p.get("chords", ""), content if keep_bars else None, meter,
                                  total)
        peak, peak_bar = None, 0
        if prompt_notes and bars >= 2 and p.get("develop", False):  # climb to the theme's range
            peak = max(n.pitch for n in prompt_notes) + shift
            peak_bar = min(keep_bars + max(1, round(bars * 2 / 3)), total - 1)
        prompt_ids = self._prompt_ids(style, mode, prompt_notes, shift, meter, keep_bars)
        grammar = Grammar(self.vocab, time_signature, total, mode,
                          strict_key=p["strict_key"],
                          chords=chords.grammar_tones(played, meter, total, shift,
                                                      POSITIONS_PER_BEAT),
                          cadence=p.get("end_on_tonic", False), peak=peak, peak_bar=peak_bar,
                          stack=style == "chorale")
        grammar.start([prompt_ids])
        ids = sample(self.model, prompt_ids, grammar, p["temperature"], p["top_p"],
                     int(request.seed), progress, keep_bars, self.device)
        generated = self._decode(ids, -shift)
        start_of_new = keep_bars * bar_length(meter)
        new_notes = [n for n in generated if n.start >= start_of_new - 1e-6]
        notes = prompt_notes + new_notes
        if not new_notes:
            raise BadInput("The model wrote only rests this time: try another seed or a "
                           "higher temperature.")
        data = write_parts([Part(notes, program)], tempo, meter, (tonic, mode),
                           self._recipe(request), name=f"{key_name(tonic, mode)} {style} idea",
                           length=total * bar_length(meter),
                           marks=[(c.start, c.symbol) for c in played],
                           chord_notes=chords.track(played))
        figures = summary([Note(n.start - start_of_new, n.duration, n.pitch) for n in new_notes],
                          meter)
        figures["bars"] = bars
        figures["notes_per_bar"] = round(len(new_notes) / bars, 2)
        key = key_name(tonic, mode)
        metadata = {**figures, "key": key, "tonic": tonic, "mode": mode,
                    "in_key": round(in_key_share(new_notes, tonic, mode), 4),
                    "time_signature": time_signature, "tempo": tempo, "program": program,
                    "prompt_bars": keep_bars, "prompt_notes": len(prompt_notes),
                    "tokens": len(ids) - len(prompt_ids),
                    "seconds": round(time.perf_counter() - started, 3)}
        last = max(new_notes, key=lambda n: (n.start, n.pitch))  # the melody's last note
        metadata["ends_on_tonic"] = (last.pitch - tonic) % 12 == 0
        if peak is not None:
            metadata["theme_high"] = max(n.pitch for n in prompt_notes)
            metadata["new_high"] = max(n.pitch for n in new_notes)
        if played:
            share, judged = chords.chord_tone_share(new_notes, played, meter)
            metadata["chords"] = chords.text(played, meter)
            metadata["chord_tones_on_strong_beats"] = round(share, 4)
            metadata["notes_on_strong_beats"] = judged
        verb = "Continued" if request.task == "continue" else "Generated"
        title = f"{verb}: {bars} bars, {key}, {time_signature}, {style}"
        return Result([Asset("midi", "audio/midi", data, "idea.mid")], self.identity,
                      self.device, metadata=metadata, title=title)

    def _infill(self, request: Request, progress: Progress, inputs: Inputs) -> Result:
        """Write the selected bars anew so that they join the bars around them (infill.py);
        every note that starts outside the selection stays as it was."""
        from . import infill

        started = time.perf_counter()
        p = request.params
        special = infill.model_infill_ids(self.model)
        name = self.identity.name if self.identity else "This model"
        if special is None:
            raise BadInput(f"{name} cannot regenerate bars (it was not trained to fill "
                           "them); the embedded Music model can.")
        content, time_signature, midi_bars = self._midi_to_write_in(request, inputs)
        meter = content.time_signature
        first, last = int(p["from_bar"]), int(p["to_bar"])
        length = bar_length(meter)
        check_selection(first, last, midi_bars)
        size = last - first + 1
        if size > infill.MAX_BARS:
            raise BadInput(f"Regenerate at most {infill.MAX_BARS} bars at once "
                           f"({size} selected).")
        tonic, mode = key_of(p, content.notes, content.key)
        shift = tonic_shift(tonic)
        v = self.vocab
        ids = self._prompt_ids(p["style"], mode, content.notes, shift, meter, midi_bars)
        head, bars = ids[:3], infill.split_bars(ids[3:], v.bar)
        room = min(CONTEXT // 2, 64 * size)  # kept free for the bars to write
        budget = CONTEXT - len(head) - 3 - room
        prompt = infill.arrange(head, bars[:first - 1], bars[last:], budget, special, v.eos,
                                ends=True)
        start, end = (first - 1) * length, last * length
        seams = tuple(None if pitch is None else fold(pitch + shift)
                      for pitch in infill.edges(content.notes, start, end))
        grammar = Grammar(v, time_signature, size, mode, strict_key=p["strict_key"],
                          end=special["end"], joins=seams)
        grammar.start([head])
        written = sample(self.model, prompt, grammar, p["temperature"], p["top_p"],
                         int(request.seed), progress, 0, self.device,
                         overflow=f"The {size} selected bars need more room than the model "
                                  "has beside the bars around them: select fewer bars.")
        middle = [t for t in written[len(prompt):] if t != special["end"]]
        new = [Note(n.start + start, n.duration, n.pitch, 90)
               for n in self._decode(head + middle, -shift)]
        notes = infill.merge(content.notes, new, start, end)
        inside = [n for n in notes if start - 1e-6 <= n.start < end - 1e-6]
        if not inside:
            raise BadInput("The model wrote only rests in the selection this time: try "
                           "another seed or a higher temperature.")
        tempo = p.get("tempo") or content.tempo
        key = key_name(tonic, mode)
        # the new notes go to the first track, where the model's merged line belongs
        data = write_voices(notes, tempo, meter, p.get("program"), (tonic, mode),
                            self._recipe(request),
                            f"{key} bars {first}–{last} regenerated", midi_bars * length,
                            content.chord_notes, content.marks, content.tracks)
        metadata = {"key": key, "tonic": tonic, "mode": mode, "from_bar": first,
                    "to_bar": last, "notes": len(inside),
                    "in_key": round(in_key_share(inside, tonic, mode), 4),
                    "joins": infill.joins(notes, start, end),
                    "time_signature": time_signature, "tempo": tempo,
                    "program": p.get("program"), "bars": midi_bars,
                    "tokens": len(middle), "seconds": round(time.perf_counter() - started, 3)}
        bars_text = f"bar {first}" if size == 1 else f"bars {first}–{last}"
        return Result([Asset("midi", "audio/midi", data, "idea.mid")], self.identity,
                      self.device, metadata=metadata,
                      title=f"Regenerated {bars_text}: {key}, {time_signature}")

    def _recipe(self, request: Request) -> str:
        """What a MIDI written by the model carries: task, seed, params, model."""
        return json.dumps({"task": request.task, "seed": request.seed,
                           "params": request.params,
                           "model": self.identity.ref if self.identity else request.model},
                          ensure_ascii=True)

    def _midi_to_write_in(self, request: Request, inputs: Inputs):
        """(the MIDI a task continues or fills, its meter as text, its bars), or BadInput
        for a meter the model does not write."""
        content = self._prompt(request, inputs)
        meter = content.time_signature
        time_signature = f"{meter[0]}/{meter[1]}"
        if time_signature not in TIME_SIGNATURES:
            raise BadInput(f"The MIDI is in {time_signature}; the music model writes in "
                           f"{', '.join(TIME_SIGNATURES)}.")
        return content, time_signature, bars_of(content.notes, meter)

    def _humanize(self, request: Request, inputs: Inputs) -> Result:
        """The MIDI played as a person would (humanize.py): no model, seeded."""
        from .humanize import humanize

        p = request.params
        content = self._prompt(request, inputs)
        meter = content.time_signature
        notes = humanize(content.notes, meter, p["strength"], int(request.seed))
        tonic, mode = detect_key(content.notes, content.key)
        tempo = p.get("tempo") or content.tempo
        recipe = json.dumps({"task": request.task, "seed": request.seed, "params": p},
                            ensure_ascii=True)  # no model plays a part
        length = bar_length(meter)
        bars = bars_of(content.notes, meter)
        data = write_voices(notes, tempo, meter, p.get("program"), (tonic, mode), recipe,
                            "humanized", bars * length, content.chord_notes, content.marks,
                            content.tracks)
        moved = [abs(a.start - b.start) * 60 / tempo * 1000
                 for a, b in zip(content.notes, notes, strict=True)]
        metadata = {"notes": len(notes), "strength": p["strength"], "tempo": tempo,
                    "time_signature": f"{meter[0]}/{meter[1]}", "program": p.get("program"),
                    "key": key_name(tonic, mode), "tonic": tonic, "mode": mode,
                    "largest_shift_ms": round(max(moved), 1),
                    "mean_shift_ms": round(sum(moved) / len(moved), 1)}
        return Result([Asset("midi", "audio/midi", data, "humanized.mid")], self.identity,
                      self.device, metadata=metadata,
                      title=f"Humanized ({p['strength']:.2f}): {len(notes)} notes")

    def _prompt(self, request: Request, inputs):
        (parent,) = request.parents
        midis = [a for a in inputs.get(parent, []) if a.mime in ("audio/midi", "audio/x-midi")]
        if not midis:
            raise BadInput("The chosen item has no MIDI to continue.")
        return read_notes(midis[0].data, midis[0].name or "The MIDI file")

    def _prompt_ids(self, style: str, mode: str, notes: list[Note], shift: int,
                    meter: tuple[int, int], keep_bars: int) -> list[int]:
        v = self.vocab
        head = [v.bos, v.vocab[f"Style_{style}"], v.vocab[f"Mode_{mode}"]]
        if not notes:
            return head
        from symusic import Note as SymNote
        from symusic import Score, TimeSignature, Track

        tpq = 480
        score = Score(tpq)
        score.time_signatures.append(TimeSignature(0, meter[0], meter[1]))
        track = Track("prompt", 0, False)
        for n in notes:
            pitch = fold(n.pitch + shift)
            track.notes.append(SymNote(round(n.start * tpq), max(1, round(n.duration * tpq)),
                                       pitch, 90))
        score.tracks.append(track)
        encoded = self.tokenizer.encode(score)
        seq = encoded[0] if isinstance(encoded, list) else encoded
        body = [i for i in seq.ids if i not in (v.bos, v.eos, v.pad)]
        # miditok leaves out empty bars at the end: the prompt must span exactly keep_bars
        bars = sum(1 for i in body if i == v.bar)
        timesig = v.timesig[f"{meter[0]}/{meter[1]}"]
        body += [v.bar, timesig] * max(0, keep_bars - bars)
        return head + body

    def _decode(self, ids: list[int], shift: int) -> list[Note]:
        from miditok import TokSequence

        v = self.vocab
        body = [i for i in ids[3:] if i not in (v.bos, v.eos, v.pad)]
        if not body:
            return []
        score = self.tokenizer.decode([TokSequence(ids=body)])
        tpq = score.ticks_per_quarter
        notes = []
        for track in score.tracks:
            for n in track.notes:
                notes.append(Note(n.time / tpq, n.duration / tpq, int(n.pitch) + shift, 90))
        notes.sort(key=lambda n: (n.start, n.pitch))
        return notes


def fold(pitch: int) -> int:
    """A pitch moved by octaves into the model's range (36–96)."""
    while pitch < 36:
        pitch += 12
    while pitch > 96:
        pitch -= 12
    return pitch


def write_voices(notes: list[Note], tempo: float, meter: tuple[int, int],
                 program: int | None, key: tuple[int, str], recipe: str, name: str,
                 length: float, chord_notes: list[Note] = (),
                 marks: list[tuple[float, str]] = (),
                 tracks: list[tuple[str, int]] = ()) -> bytes:
    """A MIDI with a track per voice of the notes (a harmonization's four stay four), each
    named and played as ``tracks`` (the MIDI read) has it unless ``program`` is given, and
    the piece's chord track and chord symbols where it has them."""
    def part(voice: int) -> Part:
        own_name, own_program = tracks[voice] if voice < len(tracks) else ("", 0)
        return Part([n for n in notes if n.voice == voice],
                    own_program if program is None else program, own_name)

    parts = [part(voice) for voice in sorted({n.voice for n in notes})]
    return write_parts(parts, tempo, meter, key, recipe, name=name, length=length,
                       marks=marks, chord_notes=chord_notes)


def sample(model, prompt: list[int], grammar: Grammar, temperature: float, top_p: float,
           seed: int, progress, prompt_bars: int = 0, device: str = "cpu",
           max_tokens: int = 4096, overflow: str | None = None) -> list[int]:
    """Grammar-masked nucleus sampling; the window slides past CONTEXT (from a bar line),
    unless ``overflow`` says why it must not (an infill prompt: both sides must stay)."""
    import torch

    from .decoders import decoder_for

    v = grammar.v
    state = grammar.rows[0]
    generator = torch.Generator().manual_seed(seed)
    tokens = list(prompt)
    decoder = decoder_for(model, CONTEXT, device)
    window = _slide(tokens, v.bar) if len(tokens) >= CONTEXT else tokens
    in_context = len(window)
    target = grammar.bars
    with torch.inference_mode():
        logits = decoder.prefill(window)
        for _ in range(max_tokens):
            allowed, bar_to_eos = grammar.mask(state, logits.shape[-1])
            masked = logits.masked_fill(~allowed, float("-inf"))
            if bar_to_eos:  # the model's wish for a new bar ends the piece instead
                end = grammar.end
                masked[end] = torch.logaddexp(logits[v.bar], logits[end])
            token = _pick(masked, temperature, top_p if grammar.nucleus(state) else 1.0,
                          generator)
            tokens.append(token)
            bars_before = state.bars
            grammar.advance(state, token)
            if state.phase == "done":
                break
            if state.bars != bars_before:
                done = (state.bars - 1 - prompt_bars) / max(1, target - prompt_bars)
                progress.update(max(0.0, min(1.0, done)))
            progress.check()
            if in_context + 1 > CONTEXT:  # restart from the head and the latest bars
                if overflow:
                    raise BadInput(overflow)
                window = _slide(tokens, v.bar)
                logits = decoder.prefill(window)
                in_context = len(window)
            else:
                logits = decoder.step(token)
                in_context += 1
        else:
            raise BadInput("The model did not finish the piece; try a lower temperature.")
    progress.update(1.0)
    return tokens


def _slide(tokens: list[int], bar: int) -> list[int]:
    """The head (BOS Style Mode) and the tail from a bar line, about half the context."""
    tail_start = len(tokens) - CONTEXT // 2
    for index in range(max(3, tail_start), len(tokens)):
        if tokens[index] == bar:
            return tokens[:3] + tokens[index:]
    return tokens[:3] + tokens[max(3, tail_start):]


def _pick(logits, temperature: float, top_p: float, generator) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        cumulative = torch.cumsum(sorted_probs, dim=-1)
        keep = cumulative - sorted_probs < top_p  # always keeps the most likely token
        sorted_probs[~keep] = 0
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs, 1, generator=generator))
