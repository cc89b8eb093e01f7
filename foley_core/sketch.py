"""Vocal sketch: a voice imitation ("tk tk tsssh") as a stem's loudness curve and onsets.

Sound designers perform timing faster than they draw it (Sketch2Sound, Adobe's Super Sonic):
the voice's loudness over time becomes the curve (the paper's curve space,
`loudness.relative_loudness`: 0..1 at CURVE_FPS points per second) and the starts of its
syllables (plosives, the start of a hiss) become the onsets the model places hits at.

Voice differs from Foley in what the onset detector must ignore: a vowel's pitch glide and the
formant changes inside one syllable move spectral flux too. So the voice is high-passed (the
fundamental carries no timing; plosive bursts and hisses are broadband), the detector's peak
threshold is raised and its minimum gap is 80 ms (people rarely articulate faster than about 12
syllables per second); see `SKETCH_DELTA`, `SKETCH_MIN_GAP_S`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.signal import butter, sosfilt

from foley_core.audio_io import mono_float
from foley_core.constants import MODEL_SR
from foley_core.errors import CurveError
from foley_core.events import detect_onsets
from foley_core.loudness import relative_loudness

SKETCH_DELTA = 0.3            # onset peak threshold on the normalised flux envelope
SKETCH_MIN_GAP_S = 0.08
SKETCH_HIGHPASS_HZ = 300.0


def sketch_conditions(audio: Any, sr: int, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(curve, onsets_s) of a voice imitation for a stem of `duration_s` seconds.

    audio: (n,) or (n, ch) float samples at `sr` Hz; it is cut or padded with silence to
    duration_s, so a sketch maps onto the selection from its first sample. curve: float32
    relative loudness 0..1 at CURVE_FPS points per second; onsets_s: float64 sorted times (s).
    Raises CurveError for a silent sketch or a non-positive duration, MediaError for bad audio.
    """
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise CurveError(f"A sketch needs a positive duration; got {duration_s!r} s.")
    x = mono_float(audio).astype(np.float64)
    if not (isinstance(sr, (int, np.integer)) and sr > 0):
        raise ValueError(f"sr must be a positive integer (Hz), got {sr!r}")
    if sr != MODEL_SR:
        import soxr

        x = soxr.resample(x, sr, MODEL_SR)
    n = int(round(duration_s * MODEL_SR))
    x = np.pad(x[:n], (0, max(0, n - x.size)))
    if float(np.max(np.abs(x), initial=0.0)) < 1e-4:
        raise CurveError("The vocal sketch is silent: record it again, closer to the microphone.")
    curve = relative_loudness(x.astype(np.float32), MODEL_SR).astype(np.float32)
    sos = butter(4, SKETCH_HIGHPASS_HZ, btype="highpass", fs=MODEL_SR, output="sos")
    high = sosfilt(sos, x).astype(np.float32)
    onsets = detect_onsets(high, MODEL_SR, delta=SKETCH_DELTA, min_gap_s=SKETCH_MIN_GAP_S)
    return curve, onsets[onsets < duration_s]
