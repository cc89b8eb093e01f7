"""Loudness curves in the TLM's curve space: measurement, drawn-curve resampling, dB maps, conform.

The "Draw an Audio" time-loudness module is conditioned on a loudness signal: the RMS energy of
the waveform (1024-sample windows every 160 samples at 16 kHz), average-pooled to the curve rate
(10 points per second) and smoothed with a short Gaussian. `loudness_signal` computes exactly
that, in linear RMS units. Users see and draw *relative* curves: 0..1 linear, 1 = the stem's
loudest moment (`normalize_curve`, `relative_loudness`).

Time grid: curve point k stands for the interval [k/fps, (k+1)/fps) and sits at its centre
t_k = (k + 0.5) / fps; a clip of `duration_s` has `n_curve_points(duration_s, fps)` points.
`resample_curve` puts drawn points on this grid and `conform` interpolates gains between these
centres, so measurement, drawing and conforming share one convention.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from foley_core.atomic import atomic_path
from foley_core.constants import CURVE_FPS, HOP_LENGTH, MODEL_SR, N_FFT
from foley_core.errors import CurveError

__all__ = [
    "n_curve_points",
    "curve_times",
    "loudness_signal",
    "normalize_curve",
    "relative_loudness",
    "resample_curve",
    "read_curve_csv",
    "write_curve_csv",
    "db_to_linear",
    "linear_to_db",
    "conform_gain",
    "conform",
    "curve_correlation",
    "curve_mae",
]

CSV_HEADER = ("time_s", "value")
_MAX_AUDIO_CHANNELS = 16      # more "channels" than this means channel-first audio was passed
_VALUE_TOLERANCE = 1e-6       # float round-off allowed above 1.0 in a relative curve
SMOOTH_WIN = 3                # the paper's Gaussian smoothing of the loudness signal (taps)
SMOOTH_SIGMA = 3.5            # its standard deviation (taps)


# ----------------------------------------------------------------------------------------------
# Grid

def n_curve_points(duration_s: float, fps: float = CURVE_FPS) -> int:
    """Number of curve points for `duration_s` seconds: round(duration_s * fps), at least 1.

    Python's `round` (half to even) is used on purpose, so that code elsewhere that writes
    `round(n / sr * fps)` gets the same length.
    """
    return max(1, int(round(float(duration_s) * float(fps))))


def curve_times(n_points: int, fps: float = CURVE_FPS) -> np.ndarray:
    """Centre times (s) of curve points: t_k = (k + 0.5) / fps, float64."""
    return (np.arange(int(n_points), dtype=np.float64) + 0.5) / float(fps)


# ----------------------------------------------------------------------------------------------
# Measurement

def _as_audio(audio: Any, name: str = "audio") -> np.ndarray:
    """Audio as a float array (n,) or (n, ch); torch tensors are accepted."""
    if hasattr(audio, "detach"):  # torch.Tensor without importing torch
        audio = audio.detach().cpu().numpy()
    x = np.asarray(audio)
    if x.dtype.kind not in "fiu":
        raise CurveError(f"{name} must be numeric samples, got dtype {x.dtype}.")
    if x.dtype.kind in "iu":
        raise CurveError(
            f"{name} has integer samples ({x.dtype}); convert it to float in [-1, 1] first "
            "(e.g. with foley_core.audio_io.read_audio)."
        )
    if x.ndim not in (1, 2):
        raise CurveError(
            f"{name} has shape {x.shape}; expected mono (n_samples,) or (n_samples, channels)."
        )
    if x.ndim == 2 and x.shape[1] > _MAX_AUDIO_CHANNELS:
        raise CurveError(
            f"{name} has shape {x.shape}, which looks channel-first; expected "
            "(n_samples, channels): transpose it."
        )
    if x.shape[0] == 0 or x.size == 0:
        raise CurveError(f"{name} is empty (0 samples); there is no loudness to measure.")
    if not np.all(np.isfinite(x)):
        raise CurveError(f"{name} contains NaN or infinite samples; it cannot be measured.")
    return x


def _check_positive_int(name: str, value: int) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _frame_rms(power: np.ndarray, n_win: int, n_hop: int) -> np.ndarray:
    """RMS of windows of `n_win` samples every `n_hop`, zero-padding the tail to cover it."""
    n = power.shape[0]
    n_frames = 1 if n <= n_win else 1 + math.ceil((n - n_win) / n_hop)
    padded_len = (n_frames - 1) * n_hop + n_win
    if padded_len > n:
        power = np.concatenate([power, np.zeros(padded_len - n, dtype=power.dtype)])
    windows = np.lib.stride_tricks.sliding_window_view(power, n_win)[::n_hop]
    return np.sqrt(windows.mean(axis=1, dtype=np.float64))


def _adaptive_avg_pool1d(x: np.ndarray, n_out: int) -> np.ndarray:
    """torch's adaptive_avg_pool1d on a 1-D array: bin i averages [floor(iL/N), ceil((i+1)L/N))."""
    n_in = x.shape[0]
    i = np.arange(n_out)
    starts = (i * n_in) // n_out
    ends = -((-(i + 1) * n_in) // n_out)  # ceil division
    csum = np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])
    return (csum[ends] - csum[starts]) / (ends - starts)


def _gaussian_smooth(x: np.ndarray, smooth_win: int, sigma: float) -> np.ndarray:
    if smooth_win == 1:
        return x
    taps = np.arange(smooth_win, dtype=np.float64) - (smooth_win - 1) / 2
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    # 'nearest' repeats the edge value: a zero pad would pull the curve's ends towards silence,
    # making every clip look like it fades in and out.
    return ndimage.correlate1d(x, kernel, mode="nearest")


def loudness_signal(
    audio: Any,
    sr: int = MODEL_SR,
    n_win: int = N_FFT,
    n_hop: int = HOP_LENGTH,
    fps: float = CURVE_FPS,
    smooth_win: int = SMOOTH_WIN,
    sigma: float = SMOOTH_SIGMA,
) -> np.ndarray:
    """The paper's loudness signal: framed RMS -> adaptive average pool to `fps` -> Gaussian.

    audio: (n,) or (n, ch) samples (numpy or torch); channels are combined by averaging power.
    RMS windows of `n_win` samples start every `n_hop` samples; the tail is zero-padded so the
    last window reaches the last sample. The frames are average-pooled (adaptive_avg_pool1d
    semantics) to n_curve_points(n / sr, fps) points (80 for 8 s at 10 fps) and smoothed with a
    normalised Gaussian of `smooth_win` taps (odd) and std `sigma` taps, edges extended with
    their nearest value. Point k lies at (k + 0.5) / fps s, within n_win / (2 sr) s (32 ms).

    Returns float32 (n_points,) in the audio's linear RMS units (not normalised).
    Raises CurveError for empty, non-finite or mis-shaped audio, ValueError for bad parameters.
    """
    x = _as_audio(audio)
    sr = _check_positive_int("sr", sr)
    n_win = _check_positive_int("n_win", n_win)
    n_hop = _check_positive_int("n_hop", n_hop)
    smooth_win = _check_positive_int("smooth_win", smooth_win)
    if smooth_win % 2 == 0:
        raise ValueError(f"smooth_win must be odd so the kernel is centred, got {smooth_win}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")

    x = x.astype(np.float64, copy=False)
    power = x * x if x.ndim == 1 else np.mean(x * x, axis=1)
    rms = _frame_rms(power, n_win, n_hop)
    pooled = _adaptive_avg_pool1d(rms, n_curve_points(x.shape[0] / sr, fps))
    return _gaussian_smooth(pooled, smooth_win, sigma).astype(np.float32)


def _as_curve(curve: Any, name: str = "curve") -> np.ndarray:
    if hasattr(curve, "detach"):
        curve = curve.detach().cpu().numpy()
    try:
        c = np.asarray(curve, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise CurveError(f"{name} must be a list of numbers ({err}).") from None
    if c.ndim != 1:
        raise CurveError(f"{name} must be one-dimensional, got shape {c.shape}.")
    if c.size == 0:
        raise CurveError(f"{name} is empty; it needs at least one point.")
    if not np.all(np.isfinite(c)):
        bad = int(np.flatnonzero(~np.isfinite(c))[0])
        raise CurveError(f"{name} has a NaN or infinite value at point {bad} ({c[bad]}).")
    return c


def normalize_curve(curve: Any) -> np.ndarray:
    """Relative curve: `curve / max(curve)` as float32 (an all-zero curve stays all zero).

    Raises CurveError for empty, non-finite or negative curves.
    """
    c = _as_curve(curve)
    if np.any(c < 0):
        bad = int(np.flatnonzero(c < 0)[0])
        raise CurveError(f"curve has a negative loudness at point {bad} ({c[bad]:g}).")
    peak = c.max()
    if peak == 0:
        return np.zeros(c.shape, dtype=np.float32)
    return (c / peak).astype(np.float32)


def relative_loudness(audio: Any, sr: int = MODEL_SR, **kw: Any) -> np.ndarray:
    """`normalize_curve(loudness_signal(audio, sr, **kw))`: 0..1, 1 = the loudest moment."""
    return normalize_curve(loudness_signal(audio, sr, **kw))


# ----------------------------------------------------------------------------------------------
# Drawn curves

def _check_relative_values(values: np.ndarray, what: str = "curve") -> None:
    if np.any(values < 0):
        i = int(np.flatnonzero(values < 0)[0])
        raise CurveError(
            f"{what} has a negative value ({values[i]:g}) at point {i}; loudness values are "
            "relative, from 0 (silent) to 1 (the loudest moment)."
        )
    if np.any(values > 1 + _VALUE_TOLERANCE):
        i = int(np.flatnonzero(values > 1 + _VALUE_TOLERANCE)[0])
        raise CurveError(
            f"{what} has the value {values[i]:g} at point {i}, above 1; a drawn curve is "
            "relative, from 0 (silent) to 1 (the loudest moment). Divide by its maximum, "
            "or convert from dB with db_to_linear."
        )


def resample_curve(
    times_s: Any, values: Any, *, duration_s: float, fps: float = CURVE_FPS,
    keep_peaks: bool = False,
) -> np.ndarray:
    """Put a drawn curve on the curve grid: t_k = (k + 0.5) / fps for k < round(duration_s * fps).

    times_s, values: the drawn points (any order; points at the same time are averaged). One
    point means a constant curve. Values are relative loudness 0..1. Between points the curve is
    linear; before the first and after the last point it holds the end value. Times may lie up
    to half a curve frame (0.5 / fps s) outside [0, duration_s].

    `keep_peaks`: a peak of the drawn points (a point above its neighbours) narrower than a
    curve frame falls between the grid's centres, where the line between them passes lower; the
    frame holding the peak takes its value instead, so a drawn 1.0 stays 1.0 (a hand-drawn
    curve has 25 points per second, the grid 10).

    Returns float32 (n_curve_points(duration_s, fps),). Raises CurveError on bad input.
    """
    if not (isinstance(duration_s, (int, float, np.floating, np.integer))
            and math.isfinite(duration_s) and duration_s > 0):
        raise CurveError(f"duration_s must be a positive number of seconds, got {duration_s!r}.")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps!r}")
    t = _as_curve(times_s, "curve times")
    v = _as_curve(values, "curve values")
    if t.shape != v.shape:
        raise CurveError(
            f"the curve has {t.size} times but {v.size} values; give one value per time."
        )
    _check_relative_values(v)
    tolerance_s = 0.5 / fps
    if t.min() < -tolerance_s or t.max() > duration_s + tolerance_s:
        bad = t.min() if t.min() < -tolerance_s else t.max()
        raise CurveError(
            f"the curve has a point at {bad:.3f} s, outside the clip (0 to {duration_s:.3f} s)."
        )

    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    unique_t, inverse = np.unique(t, return_inverse=True)
    unique_v = np.bincount(inverse, weights=v) / np.bincount(inverse)
    grid = curve_times(n_curve_points(duration_s, fps), fps)
    out = np.interp(grid, unique_t, unique_v)
    if keep_peaks and unique_v.size >= 3:
        mid = unique_v[1:-1]
        left, right = unique_v[:-2], unique_v[2:]
        peak = (mid >= left) & (mid >= right) & ((mid > left) | (mid > right))
        # rounded first: a point on a frame boundary given in float32 (0.7 -> 0.69999999)
        # belongs to the same frame as its float64 twin, so a stored curve replays the same
        frames = np.floor(np.round(unique_t[1:-1][peak] * fps, 6)).astype(int)
        frames = np.clip(frames, 0, out.size - 1)
        np.maximum.at(out, frames, mid[peak])
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def read_curve_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a drawn curve from a CSV file with header `time_s,value`.

    Returns (times_s, values) as float64 arrays in file order. Values must be finite and in
    0..1. Raises CurveError naming the line for any malformed content.
    """
    from foley_core.audio_io import check_input_file

    # a FIFO or a device would hang read_text: only regular files are read
    path = check_input_file(path, "curve file", error=CurveError)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise CurveError(f"cannot read curve file {path}: {err}") from None

    rows = [(i, row) for i, row in enumerate(csv.reader(text.splitlines()), start=1)
            if any(cell.strip() for cell in row)]
    if not rows:
        raise CurveError(f"curve file {path} is empty; expected a header 'time_s,value'.")
    line, header = rows[0]
    if tuple(cell.strip().lower() for cell in header) != CSV_HEADER:
        raise CurveError(
            f"curve file {path} line {line}: expected the header 'time_s,value', "
            f"got '{','.join(header)}'."
        )
    times, values = [], []
    for line, row in rows[1:]:
        if len(row) != 2:
            raise CurveError(
                f"curve file {path} line {line}: expected 2 columns (time_s,value), "
                f"got {len(row)}: '{','.join(row)}'."
            )
        pair = []
        for cell, name in zip(row, CSV_HEADER):
            try:
                number = float(cell)
            except ValueError:
                raise CurveError(
                    f"curve file {path} line {line}: {name} '{cell.strip()}' is not a number."
                ) from None
            if not math.isfinite(number):
                raise CurveError(
                    f"curve file {path} line {line}: {name} '{cell.strip()}' is not finite."
                )
            pair.append(number)
        if not 0.0 <= pair[1] <= 1.0 + _VALUE_TOLERANCE:
            raise CurveError(
                f"curve file {path} line {line}: value {pair[1]:g} is outside 0..1; a drawn "
                "curve is relative, from 0 (silent) to 1 (the loudest moment)."
            )
        times.append(pair[0])
        values.append(pair[1])
    if not times:
        raise CurveError(f"curve file {path} has a header but no points.")
    return np.asarray(times, dtype=np.float64), np.asarray(values, dtype=np.float64)


def write_curve_csv(path: str | os.PathLike, times_s: Any, values: Any) -> None:
    """Write a curve as CSV (`time_s,value` header), atomically."""
    t = _as_curve(times_s, "curve times")
    v = _as_curve(values, "curve values")
    if t.shape != v.shape:
        raise CurveError(
            f"the curve has {t.size} times but {v.size} values; give one value per time."
        )
    lines = [",".join(CSV_HEADER)]
    lines += [f"{ti:.9g},{vi:.9g}" for ti, vi in zip(t, v)]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


# ----------------------------------------------------------------------------------------------
# dB maps (amplitude)

def db_to_linear(db: Any) -> Any:
    """Amplitude ratio of `db` decibels: 10 ** (db / 20). Scalars in, float out."""
    out = np.power(10.0, np.asarray(db, dtype=np.float64) / 20.0)
    return float(out) if out.ndim == 0 else out


def linear_to_db(x: Any, floor_db: float = -80.0) -> Any:
    """Amplitude in dB: 20 * log10(|x|), never below `floor_db` (so silence maps to the floor)."""
    floor = 10.0 ** (floor_db / 20.0)
    out = 20.0 * np.log10(np.maximum(np.abs(np.asarray(x, dtype=np.float64)), floor))
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------------------------
# Conform

def _match_length(target: np.ndarray, n_points: int, duration_s: float, fps: float) -> np.ndarray:
    """Target curve of exactly `n_points`; one point off (another rounding of the duration) is
    absorbed by repeating/dropping the last point, anything else is a real mismatch."""
    if target.size == n_points:
        return target
    if abs(target.size - n_points) == 1:
        return np.resize(np.append(target, target[-1]), n_points)
    raise CurveError(
        f"the target curve has {target.size} points but the audio ({duration_s:.2f} s at "
        f"{fps:g} points/s) needs {n_points}; resample it with "
        f"resample_curve(..., duration_s={duration_s:.3f})."
    )


def _gain_db_per_sample(
    gain_db_points: np.ndarray, n_samples: int, sr: int, fps: float, smooth_ms: float
) -> np.ndarray:
    """Gain in dB for every sample: linear in dB between curve point centres, corners rounded by
    a triangular smoothing (two box passes) of `smooth_ms`. Neither step can steepen the slope,
    so it stays below (max - min gain) per point spacing. The smoothing runs on a 1 ms control
    grid, which is then linearly interpolated to samples (16x less work at 16 kHz)."""
    step = max(1, sr // 1000)
    control = np.arange(0, n_samples + step, step, dtype=np.float64)
    centres = curve_times(gain_db_points.size, fps) * sr
    g = np.interp(control, centres, gain_db_points)
    width = int(round(smooth_ms * 1e-3 * sr / step))
    if width > 1:
        g = ndimage.uniform_filter1d(g, width, mode="nearest")
        g = ndimage.uniform_filter1d(g, width, mode="nearest")
    return np.interp(np.arange(n_samples, dtype=np.float64), control, g)


def _apply_gain(x: np.ndarray, gain: np.ndarray) -> np.ndarray:
    return x * gain if x.ndim == 1 else x * gain[:, None]


def conform_gain(
    audio: Any,
    sr: int,
    target_curve: Any,
    *,
    fps: float = CURVE_FPS,
    strength: float = 1.0,
    max_boost_db: float = 12.0,
    max_cut_db: float = 60.0,
    n_iter: int = 6,
    smooth_ms: float = 10.0,
    peak_limit: float = 0.999,
) -> np.ndarray:
    """The per-sample linear gain (float64, (n,)) that `conform` applies; see `conform`."""
    x = _as_audio(audio)
    sr = _check_positive_int("sr", sr)
    target = _as_curve(target_curve, "target curve")
    _check_relative_values(target, "target curve")
    if not 0.0 <= strength <= 1.0:
        raise CurveError(f"strength must be between 0 (unchanged) and 1 (full), got {strength}.")
    if max_boost_db < 0 or max_cut_db < 0:
        raise ValueError(
            f"max_boost_db and max_cut_db must be >= 0, got {max_boost_db}, {max_cut_db}"
        )
    n = x.shape[0]
    duration_s = n / sr
    target = _match_length(target, n_curve_points(duration_s, fps), duration_s, fps)
    if target.max() == 0:
        raise CurveError(
            "the target curve is silent everywhere (all zero); draw where the sound should be "
            "heard, or mute the stem instead."
        )
    if strength == 0:
        return np.ones(n)

    target = target / target.max()
    x64 = x.astype(np.float64, copy=False)

    # The loop steers the pooled RMS before the Gaussian: each point then depends almost only on
    # its own gain, whereas inverting the ~3-point smoothing is ill-conditioned (it over-boosts
    # the loud edges next to a silent gap). The result is judged on the full (smoothed) curve.
    def pooled_rms(gain_db_points: np.ndarray) -> np.ndarray:
        gain = 10.0 ** (_gain_db_per_sample(gain_db_points, n, sr, fps, smooth_ms) / 20.0)
        return loudness_signal(_apply_gain(x64, gain), sr, fps=fps, smooth_win=1).astype(float)

    reference = float(pooled_rms(np.zeros(target.size)).max())
    if reference == 0:
        return np.ones(n)  # digital silence: no gain can give it a shape

    # Levels in dB relative to the input's loudest moment (which target 1.0 stands for), floored
    # at the deepest allowed cut so that silent-where-the-target-is-silent gives 0 dB, not 0/0.
    floor = 10.0 ** (-max_cut_db / 20.0)

    def level_db(curve: np.ndarray) -> np.ndarray:
        return 20.0 * np.log10(np.maximum(curve, floor))

    target_db = level_db(target)
    gain_db = np.zeros_like(target)
    best_gain_db, best_err = gain_db, np.inf
    # One pass of target/actual leaves an error (windows overlap neighbouring points, the gain
    # is interpolated); fixed-point passes correct the measured error, keeping the best pass
    # (the unchanged input included) so that a target the audio cannot follow never makes it worse.
    for i in range(max(0, int(n_iter)) + 1):
        measured = pooled_rms(gain_db) / reference
        err = _mae(normalize_curve(_gaussian_smooth(measured, SMOOTH_WIN, SMOOTH_SIGMA)), target)
        if err < best_err:
            best_gain_db, best_err = gain_db, err
        if i < n_iter:
            gain_db = np.clip(gain_db + target_db - level_db(measured), -max_cut_db, max_boost_db)

    gain = 10.0 ** (strength * _gain_db_per_sample(best_gain_db, n, sr, fps, smooth_ms) / 20.0)
    # Never louder than the input's peak, never clipping; the stem's overall level is the
    # mixer's job, not this function's.
    limit = min(float(np.max(np.abs(x64))), peak_limit)
    out_peak = float(np.max(np.abs(_apply_gain(x64, gain))))
    if out_peak > limit:
        gain *= limit / out_peak
    return gain


def conform(
    audio: Any,
    sr: int,
    target_curve: Any,
    *,
    fps: float = CURVE_FPS,
    strength: float = 1.0,
    max_boost_db: float = 12.0,
    max_cut_db: float = 60.0,
    n_iter: int = 6,
    smooth_ms: float = 10.0,
    peak_limit: float = 0.999,
) -> np.ndarray:
    """Make `audio` follow a relative `target_curve` with a smooth, click-free gain.

    audio: (n,) or (n, ch) at `sr`; target_curve: relative 0..1 at `fps` points/s with
    n_curve_points(n / sr, fps) points (one more or less is tolerated). The gain is found in dB
    per curve point: target / actual (both relative to the input's loudest moment), bounded to
    [-max_cut_db, +max_boost_db] so silence is never raised by more than max_boost_db, refined
    over `n_iter` passes against the measured curve, scaled by `strength` (0 = unchanged,
    1 = full), interpolated linearly in dB between point centres and smoothed over `smooth_ms`
    (its rate of change is bounded, so there are no clicks). The result is scaled down if needed
    so that its peak is at most min(input peak, `peak_limit`): it never clips. Returns float32.

    Where the target wants a moment louder than the audio can give within max_boost_db (a
    fade-in over a clip whose end is 20 dB below its peak), the curve is followed only up to
    that bound; raise max_boost_db to go further. The stem's overall level is left to the mixer.
    """
    x = _as_audio(audio)
    gain = conform_gain(
        x, sr, target_curve, fps=fps, strength=strength, max_boost_db=max_boost_db,
        max_cut_db=max_cut_db, n_iter=n_iter, smooth_ms=smooth_ms, peak_limit=peak_limit,
    )
    if strength == 0:
        return x.astype(np.float32, copy=True)
    return _apply_gain(x.astype(np.float64, copy=False), gain).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Measures of fit

def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def _fit_inputs(audio: Any, sr: int, target: Any, fps: float) -> tuple[np.ndarray, np.ndarray]:
    actual = relative_loudness(audio, sr, fps=fps).astype(np.float64)
    t = _as_curve(target, "target curve")
    n = _as_audio(audio).shape[0]
    t = _match_length(t, actual.size, n / sr, fps)
    return actual, normalize_curve(t).astype(np.float64)


def curve_correlation(audio: Any, sr: int, target: Any, *, fps: float = CURVE_FPS) -> float:
    """Pearson r between relative_loudness(audio) and the (normalised) target curve.

    Returns 0.0 when either curve is constant (r is undefined there).
    """
    actual, t = _fit_inputs(audio, sr, target, fps)
    if actual.size < 2 or np.ptp(actual) == 0 or np.ptp(t) == 0:
        return 0.0
    return float(np.corrcoef(actual, t)[0, 1])


def curve_mae(audio: Any, sr: int, target: Any, *, fps: float = CURVE_FPS) -> float:
    """Mean absolute difference between relative_loudness(audio) and the normalised target."""
    actual, t = _fit_inputs(audio, sr, target, fps)
    return _mae(actual, t)
