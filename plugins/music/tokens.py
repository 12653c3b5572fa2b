"""The Music model's token language: miditok REMI, one merged track, tonic C.

A training sequence is ``BOS Style_<style> Mode_<mode> <REMI tokens…> EOS``. Pieces are
transposed so that their tonic is C; generation reaches the requested key by transposing
the decoded notes back. No torch import here.
"""

from __future__ import annotations

STYLES = ("folk", "chorale")
MODES = ("major", "minor", "dorian", "mixolydian")
PITCH_RANGE = (36, 96)


def make_tokenizer():
    from miditok import REMI, TokenizerConfig

    config = TokenizerConfig(
        special_tokens=["PAD", "BOS", "EOS", *(f"Style_{s}" for s in STYLES),
                        *(f"Mode_{m}" for m in MODES)],
        use_time_signatures=True, use_tempos=False, use_velocities=False,
        use_programs=False, beat_res={(0, 4): 8, (4, 12): 4}, pitch_range=PITCH_RANGE,
        time_signature_range={8: [3, 6, 9, 12], 4: [2, 3, 4, 5, 6], 2: [2, 3, 4]})
    return REMI(config)


def tonic_shift(tonic: int) -> int:
    """Semitones that move a tonic pitch class to C by the smallest interval (-6..+5)."""
    shift = (-tonic) % 12
    return shift - 12 if shift > 5 else shift


def merge_tracks(score):
    """One non-drum track holding every pitched note (symusic Score, same ticks)."""
    from symusic import Score, Track

    merged = Score(score.ticks_per_quarter)
    merged.time_signatures = score.time_signatures
    merged.key_signatures = score.key_signatures
    track = Track("music", 0, False)
    for source in score.tracks:
        if source.is_drum:
            continue
        for note in source.notes:
            track.notes.append(note)
    track.notes.sort(key=lambda n: (n.time, n.pitch))
    merged.tracks.append(track)
    return merged


def encode_piece(tokenizer, score, style: str, mode: str, tonic: int = 0) -> list[int]:
    """Token ids of a piece whose tonic pitch class is ``tonic``, moved to tonic C."""
    score = merge_tracks(score)
    shift = tonic_shift(tonic)
    if shift:
        score = score.shift_pitch(shift)
    sequences = tokenizer.encode(score)
    seq = sequences[0] if isinstance(sequences, list) else sequences
    vocab = tokenizer.vocab
    return [vocab["BOS_None"], vocab[f"Style_{style}"], vocab[f"Mode_{mode}"], *seq.ids,
            vocab["EOS_None"]]
