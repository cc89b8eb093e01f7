"""Model windows: a long selection as overlapping windows, and the windows joined back.

A backend makes at most `window_s` seconds at once. `plan_windows` covers a selection with
windows on a 0.2 s grid, `slice_curve` gives each its part of the loudness curve, and
`join_windows` joins their audio with level-matched equal-power crossfades.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from foley_core import constants, loudness

WINDOW_OVERLAP_S = 1.0
# Window starts are multiples of 0.2 s: a whole number of curve points (10/s), latent frames
# (25/s) and video frames (20/s), so every window's slices line up exactly with the full ones.
WINDOW_GRID_S = 0.2
_MAX_LEVEL_MATCH_DB = 24.0    # the most a window is gained to meet the audio before it


def slice_curve(curve: np.ndarray, offset_s: float, length_s: float) -> np.ndarray:
    """The part of a full-selection curve under a window, on the window's own curve grid."""
    fps = constants.CURVE_FPS
    full_t = (np.arange(curve.size) + 0.5) / fps
    n = loudness.n_curve_points(length_s)
    window_t = offset_s + (np.arange(n) + 0.5) / fps
    return np.interp(window_t, full_t, curve).astype(np.float32)


def plan_windows(duration_s: float, window_s: float, *, overlap_s: float = WINDOW_OVERLAP_S,
                 grid_s: float = WINDOW_GRID_S) -> list[tuple[float, float]]:
    """(offset_s, length_s) of the model windows covering [0, duration_s).

    One window if it fits; else windows of `window_s` whose starts are `grid_s` multiples,
    consecutive windows overlapping by at least `overlap_s`; the last one ends at duration_s.
    """
    if duration_s <= window_s + 1e-9:
        return [(0.0, duration_s)]
    hop = math.floor((window_s - overlap_s) / grid_s + 1e-9) * grid_s
    windows = []
    offset = 0.0
    while offset + window_s < duration_s - 1e-9:
        windows.append((round(offset, 6), window_s))
        offset += hop
    last_start = round(offset, 6)
    windows.append((last_start, round(duration_s - last_start, 6)))
    return windows


def join_windows(parts: Sequence[tuple[int, np.ndarray]], n_samples: int, sr: int) -> tuple[np.ndarray, list]:
    """Join windows (start sample, audio (K, n)) into (K, n_samples).

    Each window is first level-matched to what is already joined over their overlap (RMS ratio,
    bounded to +-24 dB), then crossfaded with an equal-power (cos/sin) fade over the whole
    overlap, so uncorrelated material keeps a constant level through the join. Returns the
    audio and the gains applied per window and candidate (dB).
    """
    n_cand = parts[0][1].shape[0]
    out = np.zeros((n_cand, n_samples), dtype=np.float64)
    gains_db: list[list[float]] = []
    end = 0
    for start, audio in parts:
        audio = audio.astype(np.float64)
        length = min(audio.shape[1], n_samples - start)
        audio = audio[:, :length]
        overlap = max(0, min(end - start, length))
        window_gains = []
        if overlap > 0:
            prev = out[:, start:start + overlap]
            new = audio[:, :overlap]
            for k in range(n_cand):
                rms_prev = np.sqrt(np.mean(prev[k] ** 2))
                rms_new = np.sqrt(np.mean(new[k] ** 2))
                gain_db = 0.0
                if rms_prev > 1e-8 and rms_new > 1e-8:
                    gain_db = float(np.clip(20 * np.log10(rms_prev / rms_new),
                                            -_MAX_LEVEL_MATCH_DB, _MAX_LEVEL_MATCH_DB))
                audio[k] *= 10 ** (gain_db / 20)
                window_gains.append(gain_db)
            theta = (np.arange(overlap) + 0.5) / overlap * (np.pi / 2)
            out[:, start:start + overlap] = prev * np.cos(theta) + audio[:, :overlap] * np.sin(theta)
            out[:, start + overlap:start + length] = audio[:, overlap:]
        else:
            out[:, start:start + length] = audio
            window_gains = [0.0] * n_cand
        gains_db.append(window_gains)
        end = max(end, start + length)
    return out.astype(np.float32), gains_db
