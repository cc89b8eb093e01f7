"""Full-band takes: the model's band below the crossover, the reference's band above it.

The embedded model works at 16 kHz (8 kHz of bandwidth). A take made from a 44.1/48 kHz
reference would lose everything above 8 kHz if it stayed at the model's rate. Here the take is
rebuilt at the reference's rate (`output_rate`):

- low band: the model output, upsampled (soxr VHQ) and low-passed at the crossover;
- high band: the fitted reference (the SAME fit the model started from, so placement at onsets,
  trims and loops line up sample for sample), high-passed at the crossover and multiplied by a
  smooth gain envelope: per 20 ms frame, the model output's level in the shared upper band
  (`ENVELOPE_BAND_HZ`) over the reference's level in that band. Whatever the model did to the
  level there (the curve, onsets, silenced or added events, the window joins' level match) the
  high band does too, and the two bands meet at the same level across the crossover.

The crossover is zero-phase (FFT masks) and power-complementary (cos/sin): the model's phase
(Griffin-Lim) is unrelated to the reference's, so the two bands add as powers across the
crossover and a power-complementary pair keeps that sum flat (an amplitude-complementary pair
dips 3 dB in the middle). Its band lies below the upsampler's roll-off near 8 kHz.
"""

from __future__ import annotations

import numpy as np

from foley_core.audio_io import resample

MAX_OUTPUT_SR = 48_000
CROSSOVER_HZ = (6_800.0, 7_400.0)      # the low band fades out and the high band in across this
ENVELOPE_BAND_HZ = (4_000.0, 7_000.0)  # shared band whose level ratio drives the high band
ENVELOPE_FRAME_S = 0.02
ENVELOPE_HOP_S = 0.01
ENVELOPE_SMOOTH_FRAMES = 3             # 30 ms: follows attacks, not single-frame noise
GAIN_RANGE_DB = (-40.0, 12.0)          # a silent reference band must not amplify its noise floor
_FLOOR_REL = 1e-3                      # band energy floor, relative to the reference's mean

__all__ = ["output_rate", "to_model_rate", "crossover_masks", "high_band_gain", "compose_full_band",
           "describe_high_band", "CROSSOVER_HZ", "ENVELOPE_BAND_HZ", "MAX_OUTPUT_SR"]


def output_rate(model_sr: int, reference_srs) -> int:
    """The take's rate: the highest reference rate, capped at 48 kHz, never below the model's."""
    rates = [int(r) for r in reference_srs]
    if not rates:
        return int(model_sr)
    return max(int(model_sr), min(MAX_OUTPUT_SR, max(rates)))


def _to_length(x: np.ndarray, n: int) -> np.ndarray:
    if x.shape[-1] >= n:
        return x[..., :n]
    pad = [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]
    return np.pad(x, pad)


def to_model_rate(audio: np.ndarray, sr: int, model_sr: int, n_samples: int) -> np.ndarray:
    """`audio` (n,) at `sr` resampled to `model_sr`, exactly `n_samples` long (float32)."""
    if sr == model_sr:
        return _to_length(np.asarray(audio, np.float32), n_samples)
    return _to_length(resample(np.asarray(audio, np.float32), sr, model_sr), n_samples).astype(np.float32)


def crossover_masks(n_fft: int, sr: int, band_hz=CROSSOVER_HZ) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) rfft gains with low**2 + high**2 == 1 (power-complementary, zero phase)."""
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    lo_hz, hi_hz = band_hz
    t = np.clip((f - lo_hz) / (hi_hz - lo_hz), 0.0, 1.0)
    theta = 0.5 * np.pi * t
    # exact zeros outside the crossover (cos(pi/2) is 6e-17, not 0)
    return np.where(t >= 1.0, 0.0, np.cos(theta)), np.where(t <= 0.0, 0.0, np.sin(theta))


def _band_energy(x: np.ndarray, sr: int, band_hz) -> np.ndarray:
    """Energy per `ENVELOPE_FRAME_S` Hann frame (hop `ENVELOPE_HOP_S`, centred) in `band_hz`."""
    n_fft = int(round(ENVELOPE_FRAME_S * sr))
    hop = int(round(ENVELOPE_HOP_S * sr))
    padded = np.pad(x.astype(np.float64), (n_fft // 2, n_fft // 2))
    n_frames = 1 + max(0, (padded.shape[0] - n_fft)) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(padded[idx] * np.hanning(n_fft)[None, :], axis=1)
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    sel = (f >= band_hz[0]) & (f < band_hz[1])
    return np.sum(np.abs(spec[:, sel]) ** 2, axis=1)


def high_band_gain(model_audio: np.ndarray, reference_model_rate: np.ndarray, model_sr: int,
                   n_out: int, out_sr: int) -> np.ndarray:
    """Per-sample gain (n_out,) at `out_sr` for the reference's high band: the model output's
    level over the reference's in `ENVELOPE_BAND_HZ`, per frame, smoothed and bounded."""
    e_model = _band_energy(model_audio, model_sr, ENVELOPE_BAND_HZ)
    e_ref = _band_energy(reference_model_rate, model_sr, ENVELOPE_BAND_HZ)
    floor = _FLOOR_REL * max(float(np.mean(e_ref)), float(np.mean(e_model)), 1e-20)
    gain_db = 10.0 * np.log10((e_model + floor) / (e_ref + floor))
    k = ENVELOPE_SMOOTH_FRAMES
    if k > 1 and gain_db.size > k:
        gain_db = np.convolve(np.pad(gain_db, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, mode="valid")
    gain_db = np.clip(gain_db, *GAIN_RANGE_DB)
    frame_t = np.arange(gain_db.size) * ENVELOPE_HOP_S
    sample_t = np.arange(n_out) / out_sr
    return (10.0 ** (np.interp(sample_t, frame_t, gain_db) / 20.0)).astype(np.float64)


def compose_full_band(model_audio: np.ndarray, model_sr: int, reference: np.ndarray, out_sr: int,
                      reference_model_rate: np.ndarray | None = None) -> np.ndarray:
    """The full-band take (n_out,) float32 at `out_sr`, n_out = len(reference).

    model_audio: the model's output (n,) at `model_sr`; reference: the fitted reference at
    `out_sr` the model started from; reference_model_rate: that reference at `model_sr` as the
    model saw it (derived from `reference` if None).
    """
    reference = np.asarray(reference, np.float64)
    n_out = reference.shape[0]
    n_model = np.asarray(model_audio).shape[0]
    if reference_model_rate is None:
        reference_model_rate = to_model_rate(reference.astype(np.float32), out_sr, model_sr, n_model)
    # FFT filtering is circular: pad so the ends do not wrap into each other
    pad = int(round(0.05 * out_sr))
    n_fft = n_out + 2 * pad
    low_mask, high_mask = crossover_masks(n_fft, out_sr)
    up = _to_length(resample(np.asarray(model_audio, np.float32), model_sr, out_sr), n_out).astype(np.float64)
    low = np.fft.irfft(np.fft.rfft(np.pad(up, pad)) * low_mask, n=n_fft)[pad:pad + n_out]
    high = np.fft.irfft(np.fft.rfft(np.pad(reference, pad)) * high_mask, n=n_fft)[pad:pad + n_out]
    gain = high_band_gain(np.asarray(model_audio, np.float64), np.asarray(reference_model_rate, np.float64),
                          model_sr, n_out, out_sr)
    return (low + high * gain).astype(np.float32)


def describe_high_band() -> str:
    """How the high band is made, for the take's metadata."""
    return (f"the fitted reference above {CROSSOVER_HZ[0] / 1000:g}-{CROSSOVER_HZ[1] / 1000:g} kHz "
            f"(zero-phase power-complementary crossover), gained per {ENVELOPE_FRAME_S * 1000:g} ms frame "
            f"by the model output's level over the reference's in {ENVELOPE_BAND_HZ[0] / 1000:g}-"
            f"{ENVELOPE_BAND_HZ[1] / 1000:g} kHz")

