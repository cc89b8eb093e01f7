"""Stem rendering (trim, fades, gain, pan, offset), mixing, BS.1770 loudness, true peak, mastering.

Conventions:
- Output is always stereo `(n, 2)` float32 on a timeline that starts at time 0.
- Fades are raised-cosine (half a Hann window) in amplitude: smooth at both ends, no click, and
  -6 dB at the fade's midpoint. (Equal-power curves are meant for crossfades between two
  overlapping sounds; a single stem fading in or out sounds more natural with a raised cosine.)
- Pan is the constant-power sine/cosine law with -3 dB in each channel at the centre, so a mono
  stem keeps the same BS.1770 loudness wherever it is panned.
- Loudness is measured with pyloudnorm (ITU-R BS.1770-4: K-weighting, 400 ms blocks with 75 %
  overlap, -70 LUFS absolute and -10 LU relative gates). True peak is the 4x oversampled peak of
  BS.1770-4 Annex 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyloudnorm
from scipy import ndimage, signal

from foley_core import audio_io
from foley_core.constants import EXPORT_SR
from foley_core.errors import MixError, TimeRangeError

# Loudness presets (LUFS) for `master(target_lufs=...)`; None means "no normalisation".
LOUDNESS_PRESETS: dict[str, float | None] = {
    "EBU R128 broadcast (-23 LUFS)": -23.0,
    "Web / podcast (-16 LUFS)": -16.0,
    "Streaming (-14 LUFS)": -14.0,
    "No normalisation": None,
}

GATE_BLOCK_S = 0.4          # BS.1770 gating block
TRUE_PEAK_OVERSAMPLING = 4  # BS.1770-4 Annex 2 for 48 kHz material
_TP_CHUNK = 1 << 18         # samples per chunk when oversampling (bounds memory on long mixes)
_TP_PAD = 64                # context on each side of a chunk: longer than the interpolator's half length
_LIMITER_MARGIN_DB = 0.1    # aim the limiter a little under the ceiling (24-bit quantisation, filter error)


def _as_float_audio(audio: np.ndarray, what: str = "audio") -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim not in (1, 2) or (audio.ndim == 2 and audio.shape[1] not in (1, 2)):
        raise MixError(f"{what} must be mono (n,) or stereo (n, 2); got shape {audio.shape}")
    if not np.issubdtype(audio.dtype, np.floating):
        raise MixError(f"{what} must be floating point in [-1, 1]; got dtype {audio.dtype}")
    if audio.ndim == 2 and audio.shape[1] == 1:
        audio = audio[:, 0]
    if not np.all(np.isfinite(audio)):
        raise MixError(f"{what} contains NaN or infinite samples; regenerate or remove the stem")
    return audio


def _check_sr(sr: int, what: str = "sample rate") -> int:
    if not isinstance(sr, (int, np.integer)) or isinstance(sr, bool) or sr <= 0:
        raise MixError(f"{what} must be a positive whole number of Hz; got {sr!r}")
    return int(sr)


def db_to_gain(gain_db: float) -> float:
    """Amplitude factor for a gain in dB."""
    return float(10.0 ** (gain_db / 20.0))


def gain_to_db(gain: float) -> float:
    """Gain in dB of an amplitude factor (-inf for 0)."""
    return float(20.0 * np.log10(gain)) if gain > 0 else -math.inf


def pan_gains(pan: float) -> tuple[float, float]:
    """(left, right) amplitude factors of the constant-power pan law for a mono source.

    `pan` is in [-1, 1] (-1 hard left, 0 centre, 1 hard right); at the centre both are
    cos(pi/4) = 0.7071 (-3 dB), and left**2 + right**2 == 1 everywhere.
    """
    if not (-1.0 <= pan <= 1.0) or not math.isfinite(pan):
        raise MixError(f"pan must be between -1 (left) and 1 (right); got {pan}")
    theta = (pan + 1.0) * math.pi / 4.0
    return math.cos(theta), math.sin(theta)


def fade_curve(n_samples: int, *, fade_in: bool = True) -> np.ndarray:
    """Raised-cosine fade of `n_samples` samples (0 -> 1 for a fade-in, 1 -> 0 for a fade-out).

    The first sample of a fade-in is exactly 0 and full level comes on the sample after the
    fade; a fade-out is its mirror image, so the stem's last sample is exactly 0.
    """
    if n_samples <= 0:
        return np.ones(0, dtype=np.float32)
    phase = np.arange(n_samples, dtype=np.float64) / n_samples
    curve = (0.5 - 0.5 * np.cos(np.pi * phase)).astype(np.float32)
    return curve if fade_in else curve[::-1].copy()


def render_stem(
    audio: np.ndarray,
    sr: int,
    *,
    gain_db: float = 0.0,
    pan: float = 0.0,
    offset_s: float = 0.0,
    trim_start_s: float = 0.0,
    trim_end_s: float | None = None,
    fade_in_s: float = 0.0,
    fade_out_s: float = 0.0,
    out_sr: int = EXPORT_SR,
    total_s: float | None = None,
) -> np.ndarray:
    """Render one stem onto a stereo timeline that starts at time 0.

    The stem is resampled to `out_sr` first (so trims, fades and placement are sample-accurate
    at the output rate and the resampler never sees a hard cut), then trimmed to the part
    `[trim_start_s, trim_end_s)` of its own audio (`trim_end_s=None`: to its end), faded
    (raised cosine; a fade longer than the trimmed sound simply never reaches full level), given
    `gain_db`, panned (constant power, -3 dB centre; a stereo source is balanced instead: the far
    side is attenuated, the centre is unity), and placed so that its first kept sample sounds at
    `offset_s` (a negative offset cuts the head). The timeline is `total_s` seconds long, or
    ends with the stem when `total_s` is None.

    Returns float32 `(n, 2)` at `out_sr`.
    """
    audio = _as_float_audio(audio, "stem audio")
    sr = _check_sr(sr, "stem sample rate")
    out_sr = _check_sr(out_sr, "output sample rate")
    end_s, left, right = _checked_settings(audio.shape[0] / sr, gain_db=gain_db, pan=pan, offset_s=offset_s,
                                           trim_start_s=trim_start_s, trim_end_s=trim_end_s,
                                           fade_in_s=fade_in_s, fade_out_s=fade_out_s, total_s=total_s)

    if audio.ndim == 1:
        channels = [audio]
    else:
        channels = [audio[:, 0], audio[:, 1]]
    if sr != out_sr:
        channels = [np.asarray(audio_io.resample(c, sr, out_sr), dtype=np.float32) for c in channels]
    n_src = channels[0].shape[0]

    i0 = int(round(trim_start_s * out_sr))
    i1 = min(n_src, int(round(end_s * out_sr)))
    segment = np.stack(channels, axis=1)[i0:i1].astype(np.float32, copy=True)
    n_seg = segment.shape[0]
    segment *= _gain_envelope(n_seg, gain_db, fade_in_s, fade_out_s, out_sr)[:, None]

    if segment.shape[1] == 1:
        stereo = np.empty((n_seg, 2), dtype=np.float32)
        stereo[:, 0] = segment[:, 0] * left
        stereo[:, 1] = segment[:, 0] * right
    else:
        stereo = segment
        stereo[:, 0] *= min(1.0, math.sqrt(2.0) * left)
        stereo[:, 1] *= min(1.0, math.sqrt(2.0) * right)
    return _place_on_timeline(stereo, offset_s, total_s, out_sr)


def _checked_settings(duration_s: float, *, gain_db: float, pan: float, offset_s: float, trim_start_s: float,
                      trim_end_s: float | None, fade_in_s: float, fade_out_s: float,
                      total_s: float | None) -> tuple[float, float, float]:
    """render_stem's settings checked against a stem of `duration_s`: (the trim's end in s,
    left gain, right gain)."""
    for name, value in (("gain_db", gain_db), ("offset_s", offset_s), ("trim_start_s", trim_start_s),
                        ("fade_in_s", fade_in_s), ("fade_out_s", fade_out_s)):
        if not math.isfinite(value):
            raise MixError(f"{name} must be a finite number; got {value}")
    if fade_in_s < 0 or fade_out_s < 0:
        raise MixError(f"fades must be 0 s or longer; got fade in {fade_in_s} s, fade out {fade_out_s} s")
    if total_s is not None and (not math.isfinite(total_s) or total_s < 0):
        raise TimeRangeError(f"the timeline length must be 0 s or more; got {total_s} s")
    left, right = pan_gains(pan)
    end_s = duration_s if trim_end_s is None else float(trim_end_s)
    # A thousandth of a second of slack absorbs rounding in UI sliders; more is a real mistake.
    if trim_start_s < 0 or end_s > duration_s + 1e-3 or end_s <= trim_start_s:
        raise TimeRangeError(
            f"the trim {trim_start_s:.3f}-{end_s:.3f} s is not inside the stem's "
            f"{duration_s:.3f} s of audio; choose a start before the end, within 0-{duration_s:.3f} s"
        )
    return end_s, left, right


def _gain_envelope(n_seg: int, gain_db: float, fade_in_s: float, fade_out_s: float, sr: int) -> np.ndarray:
    """The gain over a trimmed stem of `n_seg` samples: `gain_db` with its raised-cosine fades."""
    envelope = np.full(n_seg, db_to_gain(gain_db), dtype=np.float32)
    n_in = int(round(fade_in_s * sr))
    if n_in:
        envelope[: min(n_in, n_seg)] *= fade_curve(n_in, fade_in=True)[:n_seg]
    n_out = int(round(fade_out_s * sr))
    if n_out:
        curve = fade_curve(n_out, fade_in=False)
        envelope[max(0, n_seg - n_out):] *= curve[max(0, n_out - n_seg):]
    return envelope


def _place_on_timeline(stereo: np.ndarray, offset_s: float, total_s: float | None, sr: int) -> np.ndarray:
    """`stereo` starting at `offset_s` on a timeline from 0 of `total_s` (None: to its end)."""
    n_seg = stereo.shape[0]
    start = int(round(offset_s * sr))
    n_total = start + n_seg if total_s is None else int(round(total_s * sr))
    n_total = max(0, n_total)
    out = np.zeros((n_total, 2), dtype=np.float32)
    src0 = max(0, -start)
    dst0 = max(0, start)
    n_copy = min(n_seg - src0, n_total - dst0)
    if n_copy > 0:
        out[dst0:dst0 + n_copy] = stereo[src0:src0 + n_copy]
    return out


@dataclass
class RenderedStem:
    """A stem already rendered to the timeline, with its mute/solo switches."""

    audio: np.ndarray          # (n, 2) float32
    mute: bool = False
    solo: bool = False
    name: str = ""


def audible(stems: Sequence[RenderedStem]) -> list[bool]:
    """Which stems play: muted never play; if any stem is soloed, only soloed (unmuted) ones do."""
    any_solo = any(s.solo for s in stems)
    return [(not s.mute) and (s.solo or not any_solo) for s in stems]


def mix_stems(stems: Sequence[RenderedStem | np.ndarray], *, n_samples: int | None = None) -> np.ndarray:
    """Sum rendered stems (RenderedStem or plain `(n, 2)` arrays) with mute/solo semantics.

    Shorter stems are padded with silence; the result has `n_samples` samples, or the longest
    stem's length when None. Returns float32 `(n, 2)` (the sum may exceed full scale: `master`
    brings it back under the ceiling).
    """
    items = [s if isinstance(s, RenderedStem) else RenderedStem(np.asarray(s)) for s in stems]
    for k, s in enumerate(items):
        if s.audio.ndim != 2 or s.audio.shape[1] != 2:
            raise MixError(f"stem {k + 1} ({s.name or 'unnamed'}) must be stereo (n, 2); got {s.audio.shape}")
    if n_samples is None:
        n_samples = max((s.audio.shape[0] for s in items), default=0)
    out = np.zeros((n_samples, 2), dtype=np.float32)
    for s, plays in zip(items, audible(items)):
        if plays:
            n = min(n_samples, s.audio.shape[0])
            out[:n] += s.audio[:n]
    return out


# --- loudness -----------------------------------------------------------------------------


def integrated_lufs(audio: np.ndarray, sr: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770-4 via pyloudnorm); -inf for silence.

    Mono `(n,)` is measured as one channel, so a mono sound panned centre (-3 dB per side) reads
    the same as the mono original. A clip shorter than the 400 ms gating block is measured as a
    single block spanning the whole clip (the mean-square K-weighted power, gated only by the
    -70 LUFS absolute threshold): the ungated loudness of what is there, instead of padding it
    with silence (which would read too quiet) or refusing it.
    """
    audio = _as_float_audio(audio).astype(np.float64)
    sr = _check_sr(sr)
    n = audio.shape[0]
    if n == 0 or not np.any(audio):
        return -math.inf
    block_s = GATE_BLOCK_S if n >= GATE_BLOCK_S * sr else n / sr
    meter = pyloudnorm.Meter(sr, block_size=block_s)
    return float(meter.integrated_loudness(audio))


def _interpolator(factor: int) -> np.ndarray:
    # The same Kaiser-windowed sinc as scipy.signal.resample_poly(x, factor, 1), designed once.
    half_len = 10 * factor
    taps = signal.firwin(2 * half_len + 1, 1.0 / factor, window=("kaiser", 5.0)) * factor
    return taps.astype(np.float32)


_TP_TAPS = _interpolator(TRUE_PEAK_OVERSAMPLING)


def _oversample(x: np.ndarray, factor: int = TRUE_PEAK_OVERSAMPLING) -> np.ndarray:
    """Polyphase `factor`x interpolation of a 1-D signal (float32), in chunks (bounded memory).

    Output sample `factor * i + p` is the signal at input time `i + p / factor`.
    """
    taps = _TP_TAPS if factor == TRUE_PEAK_OVERSAMPLING else _interpolator(factor)
    delay = (taps.shape[0] - 1) // 2
    n = x.shape[0]
    out = np.empty(n * factor, dtype=np.float32)
    for start in range(0, n, _TP_CHUNK):
        stop = min(n, start + _TP_CHUNK)
        a = max(0, start - _TP_PAD)
        b = min(n, stop + _TP_PAD)
        y = signal.upfirdn(taps, x[a:b].astype(np.float32), factor)
        lead = (start - a) * factor + delay
        out[start * factor: stop * factor] = y[lead: lead + (stop - start) * factor]
    return out


def _true_peak_envelope(audio: np.ndarray) -> np.ndarray:
    """Per input sample, the largest |oversampled value| among its phases, over all channels."""
    audio = audio if audio.ndim == 2 else audio[:, None]
    n = audio.shape[0]
    env = np.zeros(n, dtype=np.float64)
    for ch in range(audio.shape[1]):
        up = np.abs(_oversample(audio[:, ch], TRUE_PEAK_OVERSAMPLING)).reshape(n, TRUE_PEAK_OVERSAMPLING)
        np.maximum(env, up.max(axis=1), out=env)
    np.maximum(env, np.abs(audio).max(axis=1), out=env)
    return env


def true_peak_dbtp(audio: np.ndarray, sr: int) -> float:
    """True peak in dBTP: the peak of the 4x oversampled signal (BS.1770-4 Annex 2); -inf for silence.

    The interpolator is scipy's polyphase filter (Kaiser-windowed sinc), which is flatter than
    the 48-tap example filter of the Annex, so it reads inter-sample peaks at least as well.
    """
    audio = _as_float_audio(audio)
    _check_sr(sr)
    if audio.shape[0] == 0:
        return -math.inf
    peak = float(_true_peak_envelope(audio).max())
    return gain_to_db(peak)


def limit_true_peak(
    audio: np.ndarray,
    sr: int,
    *,
    ceiling_dbtp: float = -1.0,
    lookahead_s: float = 0.005,
    hold_s: float = 0.01,
    release_db_per_s: float = 100.0,
) -> tuple[np.ndarray, float]:
    """Look-ahead peak limiter on the true-peak envelope (offline, so without latency).

    The gain needed to keep every oversampled peak under the ceiling is held for `hold_s`,
    recovers at `release_db_per_s`, and is smoothed by a `lookahead_s` moving average that starts
    early enough for the gain to be fully down when the peak arrives: no clipping, no
    instantaneous gain steps. Both channels share one gain (the stereo image stays put).
    Returns the limited audio (float32) and the largest gain reduction in dB (0 if untouched).
    """
    audio = _as_float_audio(audio)
    sr = _check_sr(sr)
    stereo = audio if audio.ndim == 2 else audio[:, None]
    if stereo.shape[0] == 0:
        return audio.astype(np.float32), 0.0
    gain, reduction_db = _limiter_gain(_true_peak_envelope(stereo), sr, ceiling_dbtp=ceiling_dbtp,
                                       lookahead_s=lookahead_s, hold_s=hold_s, release_db_per_s=release_db_per_s)
    limited = (stereo * gain[:, None]).astype(np.float32)
    return (limited[:, 0] if audio.ndim == 1 else limited), reduction_db


def _limiter_gain(env: np.ndarray, sr: int, *, ceiling_dbtp: float, lookahead_s: float = 0.005,
                  hold_s: float = 0.01, release_db_per_s: float = 100.0) -> tuple[np.ndarray, float]:
    """Per-sample limiter gain (float32) for a true-peak envelope `env`, and its deepest cut in dB."""
    n = env.shape[0]
    ceiling = db_to_gain(ceiling_dbtp - _LIMITER_MARGIN_DB)
    need_db = np.minimum(0.0, 20.0 * np.log10(ceiling / np.maximum(env, 1e-12)))
    if need_db.min() >= 0.0:
        return np.ones(n, dtype=np.float32), 0.0
    n_look = max(1, int(round(lookahead_s * sr)))
    n_hold = max(0, int(round(hold_s * sr)))
    # Minimum over [i - hold, i + lookahead - 1]: the gain is down for the whole look-ahead
    # window before a peak and stays down `hold` samples after it.
    size = n_look + n_hold
    held = ndimage.minimum_filter1d(need_db, size=size, mode="nearest", origin=n_hold - size // 2)
    # Release: g[i] = min_j (held[j] + r (i - j)), j <= i, i.e. a linear-in-dB recovery; with
    # c[i] = held[i] - r i it is r i + cumulative-min(c)[i], fully vectorised.
    rate = release_db_per_s / sr
    idx = np.arange(n, dtype=np.float64)
    released = np.minimum(0.0, rate * idx + np.minimum.accumulate(held - rate * idx))
    # Moving average over the past `n_look` samples of a signal that was already at its minimum
    # across the next `n_look` samples: the result never exceeds the gain needed at any sample.
    padded = np.concatenate([np.full(n_look - 1, released[0]), released])
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    smooth_db = (csum[n_look:] - csum[:-n_look]) / n_look
    return (10.0 ** (smooth_db / 20.0)).astype(np.float32), float(-smooth_db.min())


def master(
    mix: np.ndarray,
    sr: int,
    *,
    target_lufs: float | None = -23.0,
    ceiling_dbtp: float = -1.0,
    max_limiting_db: float = 12.0,
) -> tuple[np.ndarray, dict]:
    """Normalise a mix to `target_lufs` and keep its true peak under `ceiling_dbtp`.

    Presets: -23 (EBU R128 broadcast), -16 / -14 (web / streaming), None (no normalisation).
    Loudness is set by a static gain when the peaks allow it (the usual case at -23 LUFS). When
    the gain would push the true peak over the ceiling, the look-ahead limiter
    (`limit_true_peak`) takes the peaks down and the gain into it is searched (secant steps,
    at most 6 passes) so that the limited mix still reaches the target; the limiter is never
    asked for more than `max_limiting_db` of peak reduction: a mix too peaky for the target is
    left quieter and `target_reached` is False (with a `note`), rather than crushed. A last
    static trim, if ever needed, guarantees the ceiling. Master at the export rate (48 kHz): the
    ceiling then holds in the exported 24-bit file (0.1 dB of margin covers quantisation).

    Returns (float32 stereo audio, report) where the report holds `lufs_before`, `lufs_after`
    (None for silence), `true_peak_dbtp_before`/`_after` (None for silence), `gain_db` (into the
    limiter), `limited`, `limiter_reduction_db`, `target_lufs`, `ceiling_dbtp`,
    `target_reached`, `silent`, `duration_s`, `note`. A silent mix is returned unchanged; a mono
    mix is spread to both channels at -3 dB each (the centre of the pan law, same loudness).
    """
    mix = _as_float_audio(mix, "mix")
    sr = _check_sr(sr)
    if mix.ndim == 1:
        mix = np.repeat(mix[:, None], 2, axis=1) * np.float32(math.sqrt(0.5))
    _check_master_targets(target_lufs, ceiling_dbtp)

    lufs_before = integrated_lufs(mix, sr)
    # The true-peak envelope of a scaled mix is the scaled envelope: measure it once.
    env = _true_peak_envelope(mix) if mix.shape[0] else np.zeros(0)
    tp_before = gain_to_db(float(env.max())) if env.size else -math.inf
    report = {
        "target_lufs": target_lufs,
        "ceiling_dbtp": ceiling_dbtp,
        "lufs_before": _finite_or_none(lufs_before),
        "true_peak_dbtp_before": _finite_or_none(tp_before),
        "gain_db": 0.0,
        "limited": False,
        "limiter_reduction_db": 0.0,
        "duration_s": mix.shape[0] / sr,
        "note": "",
    }
    if not math.isfinite(lufs_before):
        report.update(lufs_after=None, true_peak_dbtp_after=None, silent=True, target_reached=target_lufs is None,
                      note="the mix is silent: there is no loudness to normalise")
        return mix.astype(np.float32), report
    report["silent"] = False

    # Gains (dB) up to `g_free` need no limiting; beyond `g_max` the limiter would take the
    # peaks down by more than `max_limiting_db`.
    g_free = ceiling_dbtp - _LIMITER_MARGIN_DB / 2 - tp_before
    g_max = g_free + max_limiting_db

    def attempt(gain_db: float) -> tuple[np.ndarray, float, float]:
        """(audio, limiter reduction dB, loudness) for `gain_db` into the limiter."""
        g = db_to_gain(gain_db)
        if gain_db <= g_free:
            # A static gain moves loudness by exactly its dB (BS.1770 is a power measure).
            return (mix.astype(np.float64) * g).astype(np.float32), 0.0, lufs_before + gain_db
        gain, reduction = _limiter_gain(env * g, sr, ceiling_dbtp=ceiling_dbtp)
        limited = (mix * (gain * np.float32(g))[:, None]).astype(np.float32)
        return limited, reduction, integrated_lufs(limited, sr)

    if target_lufs is None:
        gain_db = 0.0
        out, reduction_db, lufs_after = attempt(gain_db)
    else:
        gain_db, out, reduction_db, lufs_after = _search_master_gain(attempt, target_lufs, lufs_before,
                                                                     g_free, g_max)

    # Without limiting the peak moved by exactly the gain; after the limiter, measure it.
    tp_after = true_peak_dbtp(out, sr) if reduction_db > 0 else tp_before + gain_db
    if tp_after > ceiling_dbtp - 0.01:
        out, gain_db, tp_after, lufs_after = _trim_to_ceiling(out, sr, gain_db, tp_after, ceiling_dbtp)
    reached = target_lufs is None or abs(lufs_after - target_lufs) <= 0.5
    if not reached:
        report["note"] = (f"the mix is too peaky to reach {target_lufs:g} LUFS under a {ceiling_dbtp:g} dBTP "
                          f"ceiling with at most {max_limiting_db:g} dB of limiting; it reads {lufs_after:.1f} LUFS")
    report.update(
        gain_db=float(gain_db),
        limited=reduction_db > 0.0,
        limiter_reduction_db=float(reduction_db),
        lufs_after=_finite_or_none(lufs_after),
        true_peak_dbtp_after=_finite_or_none(tp_after),
        target_reached=reached,
    )
    return out, report


def _check_master_targets(target_lufs: float | None, ceiling_dbtp: float) -> None:
    if target_lufs is not None and (not math.isfinite(target_lufs) or not -70.0 < target_lufs <= 0.0):
        raise MixError(f"the loudness target must be between -70 and 0 LUFS (or none); got {target_lufs}")
    if not math.isfinite(ceiling_dbtp) or not -20.0 <= ceiling_dbtp <= 0.0:
        raise MixError(f"the true-peak ceiling must be between -20 and 0 dBTP; got {ceiling_dbtp}")


def _search_master_gain(attempt: Callable[[float], tuple[np.ndarray, float, float]], target_lufs: float,
                        lufs_before: float, g_free: float, g_max: float
                        ) -> tuple[float, np.ndarray, float, float]:
    """(gain dB, audio, limiter reduction dB, loudness) of the gain into the limiter that
    comes closest to `target_lufs` within [g_free, g_max]: a secant search on loudness(gain)
    (at most 6 passes of `attempt`)."""
    gain_db = min(target_lufs - lufs_before, g_max)
    out, reduction_db, lufs_after = attempt(gain_db)
    # seeded with the last gain that needs no limiting (where loudness = lufs_before + gain exactly)
    prev = (g_free, lufs_before + g_free)
    best = (abs(lufs_after - target_lufs), gain_db, out, reduction_db, lufs_after)
    for _ in range(5):
        if reduction_db == 0.0 or abs(lufs_after - target_lufs) <= 0.1:
            break
        slope = (lufs_after - prev[1]) / (gain_db - prev[0]) if gain_db != prev[0] else 1.0
        slope = min(1.0, max(0.05, slope))
        step = min(g_max, max(g_free, gain_db + (target_lufs - lufs_after) / slope))
        if abs(step - gain_db) < 0.01:
            break
        prev = (gain_db, lufs_after)
        gain_db = step
        out, reduction_db, lufs_after = attempt(gain_db)
        if abs(lufs_after - target_lufs) < best[0]:
            best = (abs(lufs_after - target_lufs), gain_db, out, reduction_db, lufs_after)
    _, gain_db, out, reduction_db, lufs_after = best
    return gain_db, out, reduction_db, lufs_after


def _trim_to_ceiling(out: np.ndarray, sr: int, gain_db: float, tp_after: float, ceiling_dbtp: float
                     ) -> tuple[np.ndarray, float, float, float]:
    """The limiter's gain moves within the interpolation kernel, which can leave a peak a hair
    over the ceiling; a static trim settles it. (audio, gain dB, true peak, loudness) after it."""
    trim = db_to_gain(ceiling_dbtp - _LIMITER_MARGIN_DB - tp_after)
    out = (out * np.float32(trim)).astype(np.float32)
    gain_db += gain_to_db(trim)
    return out, gain_db, true_peak_dbtp(out, sr), integrated_lufs(out, sr)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
