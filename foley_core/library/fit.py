"""Reference fitting: make a reference sound exactly as long as a stem, without audible seams.

The engine turns a fitted reference into the starting latent of SDEdit (audio-to-audio), so the
reference must already have the stem's length and rate; the LDM then reshapes timing and level.

- Longer references are trimmed to their most active window of the stem's length, nudged to cut
  at quiet points, with short fades only where a cut falls inside the sound.
- Shorter one-shot (impulsive) references are padded with silence: looping a door slam would
  invent extra events. When the stem asks for sound throughout (`sustain`: a curve that stays up,
  a region without contacts), silence would leave most of it empty (the conform cannot make
  silence follow a curve), so the whole one-shot is repeated instead, as a Foley editor fills a
  stretch with copies of one hit.
- Shorter sustained references (engines, rain, crackling fire, a walking sequence) are extended by
  joining segments of the reference in random order, cut at low-energy points and joined with
  equal-power crossfades of 50-200 ms that are corrected for the correlation of the two signals,
  so neither a periodic repeat nor a level dip or bump marks the joins.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np

from foley_core import constants, loudness
from foley_core.audio_io import resample, to_mono
from foley_core.errors import FoleyError, MediaError, TimeRangeError
from foley_core.events import detect_onsets

__all__ = [
    "fit_reference", "fit_kind", "classify_reference", "check_reference_audio", "repeat_times", "FIT_MODES",
    "MAX_REFERENCE_SECONDS", "shape_to_curve", "CURVE_FIT_MAX_BOOST_DB",
]

FIT_MODES = constants.REFERENCE_FITS
MAX_REFERENCE_SECONDS = 600.0          # longer uploads are refused before they exhaust memory
SILENT_PEAK_DBFS = -80.0               # a reference whose peak is below this is silent

_HOP_S = 0.005                         # envelope resolution
_FRAME_S = 0.02
_TRIM_BELOW_DB = 60.0                  # leading/trailing frames this far below the peak are dropped
_KEEP_MARGIN_S = 0.005
_ACTIVE_DB = 20.0                      # "active" frame: within this of the loudest frame
_MIN_GAP_S = 0.05                      # quieter stretches shorter than this do not split an event
_MIN_LOOP_SOURCE_S = 0.25              # shorter sources cannot be looped without a buzz
_SUSTAINED_ACTIVE_FRACTION = 0.5
_SUSTAINED_MIN_EVENTS = 3
_DECAY_DB = 12.0                       # a one-shot's last quarter is this far below its loudest
_XFADE_MIN_S, _XFADE_MAX_S = 0.05, 0.2
_FADE_IN_S, _FADE_OUT_S = 0.01, 0.03   # at trim cuts inside the sound
_MIN_EVENT_S = 0.08            # a second onset sooner than this is the same hit (the onset gap)
_EVENT_CUT_MARGIN_S = 0.005    # cut this much before the next event's attack
_END_FADE_S = 0.01                     # at the end of a padded or extended reference
_ALIGN_S = 0.01                        # a join may move this much to line up with the outgoing sound
_NEAR_BEST = 0.95                      # trim windows this close to the most active one may be chosen
_REPEAT_MIN_S = 0.5                    # a repeated one-shot starts at most every 0.5 s (a walking pace)
CURVE_FIT_MAX_BOOST_DB = 12.0          # a retrieved clip's quiet stretches are raised at most this much


# ------------------------------------------------------------------------------ checks

def check_reference_audio(audio: np.ndarray, sr: int | None = None, *, name: str = "The reference") -> np.ndarray:
    """Return `audio` as float32 `(n,)`/`(n, ch)` if usable as a reference; else MediaError.

    Refuses non-float or badly shaped arrays, empty audio, NaN/infinite values, audio longer than
    `MAX_REFERENCE_SECONDS` (when `sr` is given) and silence (peak below -80 dBFS).
    """
    if sr is not None:
        _check_rate(sr, "sr")
    audio = np.asarray(audio)
    if audio.dtype.kind not in "f":
        raise MediaError(f"{name} must be a float array with values in [-1, 1], got dtype {audio.dtype}.")
    if audio.ndim not in (1, 2) or (audio.ndim == 2 and not 1 <= audio.shape[1] <= 16):
        raise MediaError(f"{name} must have shape (n,) or (n, channels), got {audio.shape}; a "
                         "(channels, n) array must be transposed first.")
    if audio.shape[0] == 0:
        raise MediaError(f"{name} is empty (0 samples). Choose a sound that has audio in it.")
    bad = ~np.isfinite(audio)
    if bad.any():
        raise MediaError(f"{name} contains {int(bad.sum())} NaN/infinite sample values; the file is damaged. "
                         "Re-export it or choose another sound.")
    if sr is not None and audio.shape[0] / sr > MAX_REFERENCE_SECONDS:
        raise MediaError(f"{name} is {audio.shape[0] / sr:.0f} s long; references are limited to "
                         f"{MAX_REFERENCE_SECONDS:.0f} s. Cut the part you want first.")
    peak = float(np.max(np.abs(audio)))
    if peak < 10 ** (SILENT_PEAK_DBFS / 20):
        level = "all zeros" if peak == 0 else f"peak {20 * math.log10(peak):.0f} dBFS"
        raise MediaError(f"{name} is silent ({level}); there is nothing to shape. Choose a sound you can hear.")
    return audio.astype(np.float32, copy=False)


def _check_rate(sr: object, name: str) -> None:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)) or not 0 < int(sr) <= 768_000:
        raise MediaError(f"{name} must be a whole number of Hz between 1 and 768000, got {sr!r}.")


def _check_duration(duration_s: float, target_sr: int) -> int:
    try:
        duration_s = float(duration_s)
    except (TypeError, ValueError):
        raise TimeRangeError(f"duration_s must be a number of seconds, got {duration_s!r}.") from None
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise TimeRangeError(f"The stem duration must be more than 0 s, got {duration_s}.")
    if duration_s > constants.MAX_GENERATION_SECONDS:
        raise TimeRangeError(f"The stem duration {duration_s:.1f} s is longer than the "
                             f"{constants.MAX_GENERATION_SECONDS:.0f} s a stem can have.")
    n_out = int(round(duration_s * target_sr))
    if n_out < 1:
        raise TimeRangeError(f"A stem of {duration_s} s has no samples at {target_sr} Hz.")
    return n_out


# ------------------------------------------------------------------------------ envelope

def _envelope(x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """RMS over `_FRAME_S` frames centred every `hop` samples; returns (rms, hop)."""
    hop = max(1, int(round(_HOP_S * sr)))
    half = max(1, int(round(_FRAME_S * sr)) // 2)
    csum = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    centres = np.arange(0, x.shape[0], hop)
    lo = np.clip(centres - half, 0, x.shape[0])
    hi = np.clip(centres + half, 0, x.shape[0])
    rms = np.sqrt(np.maximum(csum[hi] - csum[lo], 0.0) / np.maximum(hi - lo, 1))
    return rms, hop


def _trim_silence(x: np.ndarray, sr: int) -> np.ndarray:
    """Drop leading/trailing stretches more than 60 dB below the loudest frame (keeping 5 ms)."""
    env, hop = _envelope(x, sr)
    loud = np.flatnonzero(env > env.max() * 10 ** (-_TRIM_BELOW_DB / 20))
    margin = int(round(_KEEP_MARGIN_S * sr))
    start = max(0, int(loud[0]) * hop - margin)
    end = min(x.shape[0], int(loud[-1]) * hop + hop + margin)
    return x[start:end]


def _events(active: np.ndarray, min_gap_frames: int) -> int:
    """Number of runs of active frames, merging runs separated by fewer than `min_gap_frames`."""
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return 0
    return 1 + int(np.sum(np.diff(idx) > min_gap_frames))


def classify_reference(audio: np.ndarray, sr: int) -> Literal["sustained", "oneshot"]:
    """'sustained' if a reference can be looped to extend it, 'oneshot' if it should be padded.

    Sustained: at least 0.25 s long, its last quarter no more than 12 dB below its loudest
    quarter (it does not die away like a hit, a shot or a smash), and either active (within 20 dB
    of its loudest frame) for at least half of its length or a run of at least 3 separate events
    (steps, crackles, bird calls).
    """
    audio = check_reference_audio(audio, sr)
    x = check_reference_audio(to_mono(audio), name="The reference mixed to mono (its channels cancel out)")
    x = _trim_silence(x, sr)
    if x.shape[0] / sr < _MIN_LOOP_SOURCE_S:
        return "oneshot"
    env, hop = _envelope(x, sr)
    quarters = [np.sqrt(np.mean(q ** 2)) for q in np.array_split(env, 4)]
    if 20 * np.log10(max(quarters[3], 1e-12) / max(quarters[:3])) < -_DECAY_DB:
        return "oneshot"
    active = env > env.max() * 10 ** (-_ACTIVE_DB / 20)
    n_events = _events(active, int(round(_MIN_GAP_S * sr / hop)))
    if active.mean() >= _SUSTAINED_ACTIVE_FRACTION or n_events >= _SUSTAINED_MIN_EVENTS:
        return "sustained"
    return "oneshot"


# ------------------------------------------------------------------------------ fitting

def _check_mode(mode: str) -> None:
    if mode not in FIT_MODES:
        raise FoleyError(f"Unknown reference fit mode {mode!r}; use one of {', '.join(FIT_MODES)}.")


def fit_kind(audio: np.ndarray, sr: int, mode: str = "auto") -> Literal["sustained", "oneshot"]:
    """How `fit_reference` treats a reference in `mode`: 'loop' -> sustained, 'oneshot' ->
    oneshot, 'auto' -> `classify_reference`."""
    _check_mode(mode)
    if mode == "auto":
        return classify_reference(audio, sr)
    return "sustained" if mode == "loop" else "oneshot"


def fit_reference(audio: np.ndarray, sr: int, *, duration_s: float, target_sr: int = constants.MODEL_SR,
                  mode: str = "auto", seed: int = 0, onsets_s: Sequence[float] | None = None,
                  sustain: bool = False) -> np.ndarray:
    """Fit a reference sound to a stem: exactly `round(duration_s * target_sr)` mono float32 samples.

    audio: float `(n,)` or `(n, channels)` at `sr` Hz, any length (channels are averaged).
    mode: 'auto' (decide from the envelope, see `classify_reference`), 'loop' (extend by joining
        shuffled segments with crossfades) or 'oneshot' (pad with silence). Only matters when the
        reference is shorter than the stem; a longer one is always trimmed to its most active window.
    seed: the random segment order when looping (same seed, same result).
    onsets_s: where sounds start in the stem (s). A one-shot reference (a hit, a knock) is then
        placed at each onset, each copy cut (with a short fade) where the next one starts: the
        Foley editor's "sync the hit to picture". A clip holding several hits ("knock knock")
        gives only its first at each onset (`first_event`), so every onset is one hit and no
        hit lands where none was asked for. Sustained references ignore them.
    sustain: the stem asks for sound throughout; without onsets, a one-shot shorter than the stem
        is then repeated (a copy every `max(its length, 0.5 s)`) instead of padded with silence.
    Raises MediaError for empty, NaN/infinite or silent audio and TimeRangeError for a bad duration.
    """
    _check_mode(mode)
    audio = check_reference_audio(audio, sr)
    _check_rate(target_sr, "target_sr")
    n_out = _check_duration(duration_s, target_sr)
    x = to_mono(audio)
    if audio.ndim == 2 and audio.shape[1] > 1:
        check_reference_audio(x, name="The reference mixed to mono (its channels cancel out)")
    if sr != target_sr:
        x = resample(x, sr, target_sr)
    x = _trim_silence(x, target_sr)
    onsets = [] if onsets_s is None else sorted(float(t) for t in onsets_s if 0 <= float(t) < n_out / target_sr)
    # the kind matters for onsets and for a reference shorter than the stem
    kind = fit_kind(x, target_sr, mode) if onsets or x.shape[0] < n_out else None
    if onsets and kind == "oneshot":
        y = _place_at_onsets(first_event(x, target_sr), n_out, target_sr, onsets)
    elif x.shape[0] >= n_out:
        y = _trim_to_window(x, n_out, target_sr)
    elif kind == "sustained":
        y = _extend_by_looping(x, n_out, target_sr, np.random.default_rng(seed))
    elif sustain:
        y = _place_at_onsets(x, n_out, target_sr, repeat_times(x.shape[0] / target_sr, n_out / target_sr))
    else:
        y = _pad_with_silence(x, n_out, target_sr)
    peak = float(np.max(np.abs(y)))
    if peak > 1.0:          # crossfades of in-phase material can overshoot a full-scale source
        y = y / peak
    return np.ascontiguousarray(y, dtype=np.float32)


def shape_to_curve(audio: np.ndarray, sr: int, audio_model_rate: np.ndarray, model_sr: int,
                   curve: np.ndarray, *, max_boost_db: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A fitted reference given the drawn curve's shape: (audio, audio_model_rate), both gained by
    one smooth gain envelope, per curve point target over measured level (`loudness.conform_gain`,
    found at the model's rate, where the curve is measured, and interpolated to `sr`).

    Why: SDEdit at a moderate strength keeps much of its starting sound's envelope, so a library
    clip whose own dynamics go elsewhere (a hit at the start against a swell at the end) pulls the
    take off the curve. Shaping the start as a Foley editor rides a fader gives the model a sound
    that already follows the curve where the clip has sound to shape; silence stays silent (the
    boost is bounded), and the model can still move the level. Both rates get the same gain, so
    the take's high band (`fullband`) lines up with its model band.
    audio: (n,) at `sr`; audio_model_rate: the same fit (m,) at `model_sr`; curve: relative 0..1
    at CURVE_FPS over the same duration; max_boost_db: None for `CURVE_FIT_MAX_BOOST_DB`.
    """
    if max_boost_db is None:
        max_boost_db = CURVE_FIT_MAX_BOOST_DB
    x_model = np.asarray(audio_model_rate, np.float64)
    if not np.any(x_model):
        return np.asarray(audio, np.float32), np.asarray(audio_model_rate, np.float32)
    gain_model = loudness.conform_gain(x_model, model_sr, curve, max_boost_db=max_boost_db)
    n = np.asarray(audio).shape[0]
    t_model = (np.arange(x_model.shape[0]) + 0.5) / model_sr
    gain = gain_model if sr == model_sr and n == x_model.shape[0] else \
        np.interp((np.arange(n) + 0.5) / sr, t_model, gain_model)
    shaped = np.asarray(audio, np.float64) * gain
    return shaped.astype(np.float32), (x_model * gain_model).astype(np.float32)


def _ramp(n: int) -> np.ndarray:
    """Raised-cosine 0 -> 1 over n samples (excluding the endpoints)."""
    t = (np.arange(n, dtype=np.float64) + 0.5) / max(n, 1)
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def _trim_to_window(x: np.ndarray, n_out: int, sr: int) -> np.ndarray:
    """The most active `n_out` samples of `x`, cut at quiet points, faded where cut mid-sound."""
    if x.shape[0] == n_out:
        return x.copy()
    env, hop = _envelope(x, sr)
    csum = np.concatenate([[0.0], np.cumsum(env)])
    win = max(1, n_out // hop)
    last_start = x.shape[0] - n_out
    starts = np.unique(np.append(np.arange(0, last_start + 1, hop), last_start))
    first_frame = np.minimum(starts // hop, env.shape[0] - 1)
    score = csum[np.minimum(first_frame + win, env.shape[0])] - csum[first_frame]
    # among windows nearly as active as the best, cut where the sound is quietest
    near = np.flatnonzero(score >= _NEAR_BEST * score.max())
    end_frame = np.minimum((starts[near] + n_out) // hop, env.shape[0] - 1)
    cut_level = np.where(starts[near] > 0, env[first_frame[near]], 0.0) + \
        np.where(starts[near] < last_start, env[end_frame], 0.0)
    start = int(starts[near[int(np.argmin(cut_level))]])
    y = x[start:start + n_out].copy()
    if start > 0:
        n = min(int(round(_FADE_IN_S * sr)), n_out // 4)
        y[:n] *= _ramp(n)
    if start + n_out < x.shape[0]:
        n = min(int(round(_FADE_OUT_S * sr)), n_out // 4)
        y[n_out - n:] *= _ramp(n)[::-1]
    return y


def repeat_times(clip_s: float, duration_s: float) -> list[float]:
    """Where copies of a one-shot of `clip_s` seconds start when it fills `duration_s` seconds:
    back to back, or every 0.5 s for shorter clips (a hit every few milliseconds would buzz)."""
    step_s = max(float(clip_s), _REPEAT_MIN_S)
    return [k * step_s for k in range(int(math.ceil(duration_s / step_s)))]


def _place_at_onsets(x: np.ndarray, n_out: int, sr: int, onsets_s: list[float]) -> np.ndarray:
    """A copy of `x` starting at each onset, cut with a fade where the next one starts."""
    y = np.zeros(n_out, dtype=np.float32)
    starts = [int(round(t * sr)) for t in onsets_s]
    for k, start in enumerate(starts):
        end = min(n_out, starts[k + 1] if k + 1 < len(starts) else n_out, start + x.shape[0])
        seg = x[: end - start].copy()
        if seg.shape[0] < x.shape[0]:
            n = min(int(round(_FADE_OUT_S * sr)), seg.shape[0] // 4)
            if n > 0:
                seg[seg.shape[0] - n:] *= _ramp(n)[::-1]
        y[start:end] = seg
    return y


def first_event(x: np.ndarray, sr: int) -> np.ndarray:
    """`x` up to where its second sound event starts (with a short fade-out), or all of it when it
    holds one event. Events are `events.detect_onsets`' onsets; a second one closer than
    `_MIN_EVENT_S` to the first is part of the same hit (a rattle, a ring)."""
    onsets = detect_onsets(x, sr)
    later = onsets[onsets >= (onsets[0] if onsets.size else 0.0) + _MIN_EVENT_S]
    if later.size == 0:
        return x
    end = max(1, int(round((float(later[0]) - _EVENT_CUT_MARGIN_S) * sr)))
    seg = x[:end].copy()
    n = min(int(round(_FADE_OUT_S * sr)), seg.shape[0] // 4)
    if n > 0:
        seg[seg.shape[0] - n:] *= _ramp(n)[::-1]
    return seg


def _pad_with_silence(x: np.ndarray, n_out: int, sr: int) -> np.ndarray:
    y = np.zeros(n_out, dtype=np.float32)
    y[: x.shape[0]] = x
    n = min(int(round(_END_FADE_S * sr)), x.shape[0] // 4)
    if n > 0:     # the reference may stop abruptly; silence after it must not start with a click
        y[x.shape[0] - n: x.shape[0]] *= _ramp(n)[::-1]
    return y


def _cut_points(x: np.ndarray, sr: int, xfade: int, min_spacing: int) -> np.ndarray:
    """Quiet places to join at (sample positions), at least `min_spacing` apart, away from the ends.

    Local minima of the envelope smoothed over a crossfade (so the whole fade is quiet, not one
    frame), quietest first; evenly spaced points fill in where the envelope has few minima.
    """
    half = xfade // 2
    env, hop = _envelope(x, sr)
    k = max(1, xfade // hop)
    smooth = np.convolve(env, np.ones(k) / k, mode="same")
    n_frames = env.shape[0]
    first, last = -(-half // hop), (x.shape[0] - half) // hop
    is_min = np.ones(n_frames, dtype=bool)
    is_min[1:] &= smooth[1:] <= smooth[:-1]
    is_min[:-1] &= smooth[:-1] <= smooth[1:]
    is_min[: max(first, 0)] = False
    is_min[last + 1:] = False
    minima = np.flatnonzero(is_min)
    evenly = np.round(np.linspace(first, last, max(2, (last - first) * hop // max(min_spacing, 1) + 1)))
    reach = max(1, min_spacing // hop)
    blocked = np.zeros(n_frames + 1, dtype=bool)
    chosen: list[int] = []
    for f in [*minima[np.argsort(smooth[minima], kind="stable")], *evenly.astype(np.int64)]:
        if first <= f <= last and not blocked[f]:
            chosen.append(int(f))
            blocked[max(0, f - reach + 1): f + reach] = True
    return np.array(sorted(chosen), dtype=np.int64) * hop


def _crossfade_gains(prev: np.ndarray, head: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equal-power fade gains (out, in), corrected for the correlation of the two signals."""
    n = prev.shape[0]
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    a, b = np.cos(0.5 * np.pi * t), np.sin(0.5 * np.pi * t)
    denom = math.sqrt(float(np.dot(prev, prev)) * float(np.dot(head, head)))
    r = float(np.dot(prev, head)) / denom if denom > 0 else 0.0
    # sum power = a^2 + b^2 + 2 r a b: equal-power for uncorrelated, equal-gain for identical signals
    norm = np.sqrt(1.0 + 2.0 * min(max(r, -0.5), 1.0) * a * b)
    return (a / norm).astype(np.float32), (b / norm).astype(np.float32)


def _best_alignment(tail: np.ndarray, x: np.ndarray, a: int, b: int, *, max_shift: int) -> int:
    """Shift of the segment x[a:b] (within +-max_shift, staying inside x) whose head best matches `tail`.

    Lining the incoming head up with the outgoing tail (as WSOLA does) keeps a tonal sound from
    cancelling itself in the crossfade.
    """
    n = tail.shape[0]
    lo, hi = max(-max_shift, -a), min(max_shift, x.shape[0] - b)
    if n == 0 or hi <= lo:
        return 0
    region = x[a + lo: a + hi + n].astype(np.float64)
    dots = np.correlate(region, tail.astype(np.float64), mode="valid")
    csum = np.concatenate([[0.0], np.cumsum(region ** 2)])
    energy = np.sqrt(np.maximum(csum[n:] - csum[:-n], 1e-20))
    return lo + int(np.argmax(dots / energy))


def _extend_by_looping(x: np.ndarray, n_out: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Join shuffled segments of `x` (cut at quiet points, crossfaded) until `n_out` samples."""
    n = x.shape[0]
    xfade = int(round(min(max(0.25 * n / sr, _XFADE_MIN_S), _XFADE_MAX_S) * sr))
    xfade = max(2, min(xfade, n // 3))
    half = xfade // 2
    # segment lengths (cut to cut, i.e. the time each segment adds to the output)
    min_len = max(xfade, min(int(0.5 * sr), n // 6))
    max_len = max(min_len, n // 2)
    cuts = _cut_points(x, sr, xfade, min_spacing=max(1, min_len // 2))
    if cuts.shape[0] < 2:
        raise MediaError(f"The reference ({n / sr:.2f} s) is too short to loop; pad it with silence "
                         "(mode 'oneshot') or choose a longer sound.")

    out = np.zeros(n_out + n + xfade, dtype=np.float32)
    # first segment: the reference's own beginning (its natural attack), up to a quiet cut
    ends = cuts[cuts >= min_len] if np.any(cuts >= min_len) else cuts[-1:]
    first_end = int(ends[rng.integers(0, min(len(ends), 3))])
    seg = x[: first_end + half]
    out[: seg.shape[0]] = seg
    pos = seg.shape[0]
    recent: list[int] = []
    while pos - xfade < n_out:
        starts = [i for i in range(len(cuts) - 1) if cuts[-1] - cuts[i] >= min_len and i not in recent]
        if not starts:
            starts = [i for i in range(len(cuts) - 1) if cuts[-1] - cuts[i] >= min_len] or [0]
        i = int(starts[rng.integers(0, len(starts))])
        lengths = cuts[i + 1:] - cuts[i]
        fits = np.flatnonzero((lengths >= min_len) & (lengths <= max_len))
        j = i + 1 + int(fits[rng.integers(0, len(fits))] if fits.size else np.argmax(lengths >= min_len))
        a, b = max(int(cuts[i]) - half, 0), min(int(cuts[j]) + half, n)
        overlap = min(xfade, (b - a) // 2, pos)
        shift = _best_alignment(out[pos - overlap: pos], x, a, b, max_shift=min(half, int(_ALIGN_S * sr)))
        seg = x[a + shift: b + shift]
        g_out, g_in = _crossfade_gains(out[pos - overlap: pos], seg[:overlap])
        out[pos - overlap: pos] = out[pos - overlap: pos] * g_out + seg[:overlap] * g_in
        out[pos: pos + seg.shape[0] - overlap] = seg[overlap:]
        pos += seg.shape[0] - overlap
        recent = (recent + [i])[-max(1, min(3, len(cuts) - 2)):]
    y = out[:n_out].copy()
    m = min(int(round(_END_FADE_S * sr)), n_out // 4)
    if m > 0:
        y[n_out - m:] *= _ramp(m)[::-1]
    return y
