"""The evaluation metrics as plain functions over numpy arrays.

- loudness following: `curve_fit` (Pearson r and MAE between a drawn curve and the output's
  `loudness.loudness_signal`, both relative 0..1),
- timing from video: `timing_scores` (onset F1 within +-100 ms of the intended events and
  AV-Align over audio onsets and visual contact times, via `foley_core.events`),
- mask selectivity: `selectivity_gap`,
- semantics: `accuracy`, `balanced_accuracy`, `paired_bootstrap_diff`, `confusion_matrix`,
  `frechet_distance` (+ `gaussian_stats`, `bootstrap_frechet` for a confidence interval),
- vocoder artefacts: `tonal_line_share` (the energy share of steady narrow spectral lines) and
  `added_tonal_lines` (that share in an output minus in the audio it should sound like),
- `summarize` for the mean / median / 95 % interval of a list of per-item scores.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
from scipy import linalg

from foley_core import events, loudness
from foley_core.constants import CURVE_FPS

__all__ = [
    "pearson_r", "curve_fit", "timing_scores", "selectivity_gap", "accuracy",
    "balanced_accuracy", "paired_bootstrap_diff", "confusion_matrix", "gaussian_stats",
    "frechet_distance", "frechet_distance_embeddings", "bootstrap_frechet", "summarize",
    "tonal_line_share", "added_tonal_lines", "DEFAULT_TOL_S",
]

DEFAULT_TOL_S = 0.1       # onset tolerance of the timing goal: +-100 ms


# ----------------------------------------------------------------------------------------------
# Loudness following

def pearson_r(a: Any, b: Any) -> float:
    """Pearson correlation of two equal-length 1-D arrays; 0.0 if either is constant
    (r is undefined there; a flat output cannot be said to follow a curve)."""
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"pearson_r needs equal lengths, got {x.size} and {y.size}")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    return float(np.clip(np.corrcoef(x, y)[0, 1], -1.0, 1.0))


def curve_fit(audio: np.ndarray, sr: int, curve: Any, *, fps: float = CURVE_FPS
              ) -> dict[str, float]:
    """How well `audio` follows a relative loudness `curve` (0..1 at `fps` points/s).

    Both are compared in the TLM's curve space: `loudness.relative_loudness(audio)` against the
    curve divided by its maximum (one point more or less than the audio's curve is tolerated).
    Returns dict(r=Pearson r, mae=mean absolute difference), from `loudness.curve_correlation`
    and `loudness.curve_mae`.
    """
    return {"r": loudness.curve_correlation(audio, sr, curve, fps=fps),
            "mae": loudness.curve_mae(audio, sr, curve, fps=fps)}


# ----------------------------------------------------------------------------------------------
# Timing

def timing_scores(audio: np.ndarray, sr: int, intended_s: Any, *,
                  visual_contacts_s: Any | None = None, tol_s: float = DEFAULT_TOL_S,
                  onsets_s: Any | None = None) -> dict[str, float]:
    """Onset F1 of `audio` against the intended event times and AV-Align against visual contacts.

    Onsets are `events.detect_onsets(audio, sr)` unless `onsets_s` is given. F1 / precision /
    recall use one-to-one matching within `tol_s` (`events.onset_f1`); AV-Align is Sony's
    p*r/(p+r-p*r) (`events.av_align`) over the audio onsets and `visual_contacts_s` (default:
    the intended events). Returns dict(f1, precision, recall, av_align, n_onsets).
    """
    pred = events.detect_onsets(audio, sr) if onsets_s is None else np.asarray(onsets_s, float)
    visual = intended_s if visual_contacts_s is None else visual_contacts_s
    scores = events.onset_f1(pred, intended_s, tol_s=tol_s)
    return {"f1": scores["f1"], "precision": scores["precision"], "recall": scores["recall"],
            "av_align": events.av_align(pred, visual, tol_s=tol_s), "n_onsets": float(len(pred))}


def selectivity_gap(onsets_s: Any, masked_events_s: Any, other_events_s: Any, *,
                    tol_s: float = DEFAULT_TOL_S) -> float:
    """Onset F1 against the masked object's events minus F1 against the other object's.

    +1: the sound follows the masked object only; 0: it cannot tell them apart (e.g. the sound
    of both, or of neither); -1: it follows the wrong object.
    """
    f_masked = events.onset_f1(onsets_s, masked_events_s, tol_s=tol_s)["f1"]
    f_other = events.onset_f1(onsets_s, other_events_s, tol_s=tol_s)["f1"]
    return float(f_masked - f_other)


# ----------------------------------------------------------------------------------------------
# Semantics

def accuracy(predicted: Sequence[Any], expected: Sequence[Any]) -> float:
    """Fraction of positions where `predicted` equals `expected` (NaN for empty inputs)."""
    if len(predicted) != len(expected):
        raise ValueError(f"accuracy needs equal lengths, got {len(predicted)} and {len(expected)}")
    if len(expected) == 0:
        return float("nan")
    return float(np.mean([p == e for p, e in zip(predicted, expected)]))


def confusion_matrix(predicted: Sequence[str], expected: Sequence[str],
                     labels: Sequence[str]) -> np.ndarray:
    """Counts (n_labels, n_labels) int64: row = expected label, column = predicted label."""
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for p, e in zip(predicted, expected):
        if p not in index or e not in index:
            raise ValueError(f"label {p if p not in index else e!r} is not one of {list(labels)}")
        out[index[e], index[p]] += 1
    return out


def balanced_accuracy(predicted: Sequence[Any], expected: Sequence[Any]) -> float:
    """Mean over the expected labels of the fraction of their items predicted right (macro
    recall). Unlike accuracy it does not reward always naming the commonest label: a constant
    prediction scores 1 / n_labels. NaN for empty inputs."""
    if len(predicted) != len(expected):
        raise ValueError(f"balanced_accuracy needs equal lengths, got {len(predicted)} and "
                         f"{len(expected)}")
    if len(expected) == 0:
        return float("nan")
    pred, exp = np.asarray(predicted, dtype=object), np.asarray(expected, dtype=object)
    return float(np.mean([np.mean(pred[exp == label] == label) for label in set(expected)]))


def paired_bootstrap_diff(predicted_a: Sequence[Any], predicted_b: Sequence[Any],
                          expected: Sequence[Any], *, n_boot: int = 1000, seed: int = 0,
                          level: float = 0.95) -> dict[str, float]:
    """Balanced accuracy of A minus that of B on the same items, with a paired bootstrap
    interval (items resampled with replacement, the same draw for A and B).

    Returns dict(diff, lo, hi, p_below_zero = fraction of resamples where A is not better).
    """
    if not len(predicted_a) == len(predicted_b) == len(expected):
        raise ValueError("paired_bootstrap_diff needs three lists of equal length")
    a = np.asarray(predicted_a, dtype=object)
    b = np.asarray(predicted_b, dtype=object)
    e = np.asarray(expected, dtype=object)
    diff = balanced_accuracy(a, e) - balanced_accuracy(b, e)
    rng = np.random.default_rng(seed)
    boots = np.empty(int(n_boot))
    for k in range(boots.size):
        idx = rng.integers(0, e.size, e.size)
        boots[k] = balanced_accuracy(a[idx], e[idx]) - balanced_accuracy(b[idx], e[idx])
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boots, [tail, 100.0 - tail])
    return {"diff": float(diff), "lo": float(lo), "hi": float(hi),
            "p_below_zero": float(np.mean(boots <= 0.0))}


def gaussian_stats(embeddings: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) (unbiased, N-1) of embeddings (N, D), float64."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least 2 embeddings of shape (N, D), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("embeddings contain NaN or infinite values")
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _sqrtm(a: np.ndarray) -> np.ndarray | None:
    """Matrix square root, or None if it is not finite or does not square back to `a`
    (singular input); scipy's warnings are handled here instead of printed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = linalg.sqrtm(a)
    if not np.all(np.isfinite(root)):
        return None
    scale = max(float(np.abs(a).max()), 1e-12)
    if float(np.abs(root @ root - a).max()) > 1e-4 * scale:
        return None
    return root


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, eps: float = 1e-6
                     ) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2):
    |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    As in FID (Heusel et al. 2017; pytorch-fid): if the product's square root is not finite
    (singular covariances, e.g. fewer samples than dimensions), `eps` is added to both
    diagonals; a tiny imaginary part from round-off is dropped. Never negative.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape} / {mu2.shape}, "
                         f"sigma {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(s1 @ s2)
    if covmean is None:
        offset = np.eye(s1.shape[0]) * eps
        covmean = _sqrtm((s1 + offset) @ (s2 + offset))
        if covmean is None:
            raise ValueError("the covariance product has no usable square root")
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    fd = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(fd, 0.0)


def frechet_distance_embeddings(x: Any, y: Any) -> float:
    """Frechet distance between Gaussians fitted to embeddings x (N, D) and y (M, D)."""
    return frechet_distance(*gaussian_stats(x), *gaussian_stats(y))


def bootstrap_frechet(generated: Any, reference: Any, *, n_boot: int = 200, seed: int = 0,
                      level: float = 0.95) -> dict[str, float]:
    """Frechet distance of `generated` (N, D) to `reference` (M, D) with a bootstrap interval.

    The generated set is resampled with replacement `n_boot` times (seeded); each resample is
    compared with the fixed reference statistics. Returns dict(fd = on the full set,
    mean = bootstrap mean, lo / hi = the central `level` percentile interval, n, n_boot).
    """
    gen = np.asarray(generated, dtype=np.float64)
    mu_r, sigma_r = gaussian_stats(reference)
    fd = frechet_distance(*gaussian_stats(gen), mu_r, sigma_r)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, gen.shape[0], gen.shape[0])
        sample = gen[idx]
        if np.all(sample == sample[0]):
            continue            # a degenerate resample (all one item) has no covariance
        boots.append(frechet_distance(*gaussian_stats(sample), mu_r, sigma_r))
    if not boots:
        return {"fd": fd, "mean": fd, "lo": fd, "hi": fd, "n": int(gen.shape[0]), "n_boot": 0}
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(boots, [tail, 100.0 - tail])
    return {"fd": fd, "mean": float(np.mean(boots)), "lo": float(lo), "hi": float(hi),
            "n": int(gen.shape[0]), "n_boot": len(boots)}


# ----------------------------------------------------------------------------------------------
# Steady tonal lines (a vocoder artefact)

LINE_N_FFT = 2048            # 7.8 Hz bins at 16 kHz: a line is one or two bins wide
LINE_HOP = 256
LINE_NEIGHBOURS = 31         # bins (about 240 Hz at 16 kHz) whose median a line stands above
LINE_PROMINENCE_DB = 6.0     # how far above that median a bin must stand in a frame
LINE_PERSISTENCE = 0.5       # in at least this share of active frames: a steady line
LINE_ACTIVE_DB = 40.0        # active frames: within this of the loudest frame's energy
LINE_MIN_ACTIVE_FRAMES = 8   # about 0.13 s: shorter sounds have no steady line to speak of
LINE_MIN_HZ = 20.0           # below this a "line" is DC or rumble, not a tone


def tonal_line_share(audio: np.ndarray, sr: int) -> float:
    """Energy share of steady narrow spectral lines in `audio` (mono), 0..1.

    Per STFT frame (n_fft 2048, hop 256), a bin is a peak when its level stands
    `LINE_PROMINENCE_DB` above the median of its `LINE_NEIGHBOURS` frequency neighbours; a bin
    that is a peak in at least `LINE_PERSISTENCE` of the active frames is a steady line. The
    share is the lines' energy above their neighbours' median, summed over active frames, over
    the active frames' total energy. A tone held for the whole clip scores near its share of
    the energy; broadband noise, clicks and sweeps score near 0. 0 for audio with fewer than
    `LINE_MIN_ACTIVE_FRAMES` active frames.
    """
    from scipy.ndimage import median_filter

    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    if x.size < LINE_N_FFT:
        x = np.pad(x, (0, LINE_N_FFT - x.size))
    pad = np.pad(x, (LINE_N_FFT // 2, LINE_N_FFT // 2))
    n_frames = 1 + (pad.size - LINE_N_FFT) // LINE_HOP
    idx = np.arange(LINE_N_FFT)[None, :] + LINE_HOP * np.arange(n_frames)[:, None]
    power = np.abs(np.fft.rfft(pad[idx] * np.hanning(LINE_N_FFT)[None, :], axis=1)) ** 2   # (T, F)
    frame_energy = power.sum(axis=1)
    if frame_energy.max() <= 0.0:
        return 0.0
    active = frame_energy >= frame_energy.max() * 10.0 ** (-LINE_ACTIVE_DB / 10.0)
    if int(active.sum()) < LINE_MIN_ACTIVE_FRAMES:
        return 0.0
    p = power[active]
    floor = p.max() * 1e-12
    level_db = 10.0 * np.log10(p + floor)
    median_db = median_filter(level_db, size=(1, LINE_NEIGHBOURS), mode="nearest")
    steady = ((level_db - median_db) >= LINE_PROMINENCE_DB).mean(axis=0) >= LINE_PERSISTENCE
    steady &= np.fft.rfftfreq(LINE_N_FFT, 1.0 / sr) >= LINE_MIN_HZ
    excess = np.clip(p - 10.0 ** (median_db / 10.0), 0.0, None)[:, steady]
    return float(excess.sum() / p.sum())


def added_tonal_lines(output: np.ndarray, original: np.ndarray, sr: int) -> float:
    """`tonal_line_share` of `output` minus that of `original` (the audio it should sound like):
    > 0 when the output has steady lines the original has not; a tone the original holds
    counts on both sides."""
    return tonal_line_share(output, sr) - tonal_line_share(original, sr)


# ----------------------------------------------------------------------------------------------
# Aggregation

def summarize(values: Sequence[float]) -> dict[str, float]:
    """mean, median, std and n of per-item scores (NaN-free); NaN statistics when empty."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        nan = float("nan")
        return {"mean": nan, "median": nan, "std": nan, "n": 0}
    return {"mean": float(x.mean()), "median": float(np.median(x)), "std": float(x.std()),
            "n": int(x.size)}

