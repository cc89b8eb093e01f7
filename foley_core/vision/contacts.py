"""Contact events, with sub-frame times and a confidence, from an object's centre path.

A contact (a bounce, a knock, a landing) is a sudden change of velocity that opposes the
incoming motion. At each candidate time the path before and the path after are fitted
separately (a parabola each, over about `window_s`), and the two fits are compared:

- time: where the two fitted curves meet (the object is at the surface), searched between the
  neighbouring frames, so the contact is timed to a fraction of a frame; across a gap (the
  object left the picture, as a ball bouncing below the frame's edge) they are extrapolated
  into the gap;
- strength: the velocity jump between the fits at that time, against how well the fits know
  their velocities (their residuals), and the part of the jump that opposes the incoming
  velocity (a reversal or a stop, not a push from rest or a smooth turn: an apex or a gravity
  arc is the same parabola on both sides, so there is no jump).

confidence = opposing * (1 - exp(-snr / 10)), with snr the jump over its noise (velocity units)
and `opposing` the opposing part of the jump relative to the incoming speed, capped at 1.
`CONTACT_THRESHOLD` was chosen on the DEV scenes of benchmarks/bench_contacts.py (F1 at +-40
ms), never on the held-out scenes or real clips it is reported on.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from foley_core.errors import MaskError

CONTACT_THRESHOLD = 0.30         # chosen on DEV scenes (benchmarks/bench_contacts.py --dev)
_SNR_SCALE = 10.0


@dataclasses.dataclass(frozen=True)
class Contact:
    time_s: float
    confidence: float            # 0..1
    speed_in: float              # incoming speed (position units per second)
    jump: float                  # velocity change at the contact (units per second)


def _fit(t: np.ndarray, p: np.ndarray, t_ref: float) -> tuple[np.ndarray, float, float]:
    """Fit p(t) (N, 2) around t_ref: (coefficients (deg+1, 2) high first, residual std,
    velocity std factor). A parabola with 4+ points, else a line."""
    deg = 2 if t.size >= 4 else 1
    x = t - t_ref
    design = np.vander(x, deg + 1)
    coef, *_ = np.linalg.lstsq(design, p, rcond=None)
    resid = p - design @ coef
    dof = max(t.size - deg - 1, 1)
    sigma = float(np.sqrt((resid ** 2).sum() / (2 * dof))) if t.size > deg + 1 else 0.0
    # std of the fitted slope at x = 0 per unit position noise
    cov = np.linalg.pinv(design.T @ design)
    slope_factor = float(np.sqrt(max(cov[deg - 1, deg - 1], 0.0)))
    return coef, sigma, slope_factor


def _eval(coef: np.ndarray, x: np.ndarray) -> np.ndarray:
    deg = coef.shape[0] - 1
    return np.stack([np.polyval(coef[:, d], x) for d in range(2)], axis=-1) if deg >= 0 else x


def _velocity(coef: np.ndarray, x: float) -> np.ndarray:
    deriv = np.array([np.polyval(np.polyder(coef[:, d]), x) for d in range(2)])
    return deriv


def contact_events(
    positions: np.ndarray,
    times_s: Sequence[float],
    *,
    threshold: float = CONTACT_THRESHOLD,
    window_s: float = 0.2,
    min_gap_s: float = 0.1,
    max_gap_s: float = 0.25,
    position_noise: float = 0.3,
) -> list[Contact]:
    """Contacts of a centre path (T, 2) sampled at uniform `times_s` (NaN = not seen).

    window_s: how much path each side fit sees (at least 3 samples, at most 12); min_gap_s:
    of contacts closer than this, the most confident is kept; max_gap_s: the longest unseen
    stretch a contact may be inferred across; position_noise: the smallest position noise
    assumed (pixels: centres are never better than a fraction of a pixel). Only contacts with
    confidence >= threshold are returned, sorted by time.
    Raises MaskError if positions is not (T, 2) or the times are not increasing.
    """
    pos = np.asarray(positions, dtype=np.float64)
    t = np.asarray(times_s, dtype=np.float64).ravel()
    if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] != t.size:
        raise MaskError(f"positions must be (T, 2) with one time each; got {pos.shape} "
                        f"for {t.size} times.")
    if t.size < 4:
        return []
    dt = float(np.median(np.diff(t)))
    if not dt > 0:
        raise MaskError("Frame times must increase.")
    known = np.isfinite(pos).all(axis=1)
    idx = np.flatnonzero(known)
    if idx.size < 4:
        return []
    half = int(np.clip(round(window_s / dt), 3, 12))
    max_gap = max(1, int(round(max_gap_s / dt)))
    candidates: list[Contact] = []
    for k in range(idx[0] + 1, idx[-1]):
        # last known sample at or before k, first known at or after it (k itself may be unseen)
        j = int(np.searchsorted(idx, k, side="right")) - 1
        a = idx[j]
        b = idx[j] if known[k] else idx[j + 1]
        if b - a > max_gap:
            continue
        pre = idx[max(0, j - half + 1):j + 1]
        jb = int(np.searchsorted(idx, b))
        post = idx[jb:jb + half]
        if pre.size < 3 or post.size < 3:
            continue
        t_ref = float(t[k])
        c_pre, s_pre, f_pre = _fit(t[pre], pos[pre], t_ref)
        c_post, s_post, f_post = _fit(t[post], pos[post], t_ref)
        # meeting time, searched from the frame before the last seen one to the one after
        lo = t[max(a - 1, 0)] - t_ref if known[k] else t[a] - t_ref
        hi = t[min(b + 1, t.size - 1)] - t_ref if known[k] else t[b] - t_ref
        grid = np.linspace(lo, hi, 41)
        gap = np.linalg.norm(_eval(c_pre, grid) - _eval(c_post, grid), axis=1)
        x_c = float(grid[int(np.argmin(gap))])
        v_in = _velocity(c_pre, x_c)
        v_out = _velocity(c_post, x_c)
        jump = v_out - v_in
        speed_in = float(np.linalg.norm(v_in))
        sigma = max(s_pre, s_post, position_noise)
        noise = sigma * np.hypot(f_pre, f_post) + 1e-9
        snr = float(np.linalg.norm(jump)) / noise
        opposing = float(-(jump @ v_in) / max(speed_in, 1e-9) ** 2) if speed_in > 0 else 0.0
        # the incoming speed itself must be above the noise: a resting object has no contacts
        moving = 1.0 - np.exp(-(speed_in / (3.0 * sigma * f_pre + 1e-9)))
        conf = float(np.clip(opposing, 0.0, 1.0) * (1.0 - np.exp(-snr / _SNR_SCALE)) * moving)
        candidates.append(Contact(time_s=t_ref + x_c, confidence=conf, speed_in=speed_in,
                                  jump=float(np.linalg.norm(jump))))
    return _suppress(candidates, min_gap_s=min_gap_s, threshold=threshold)


def _suppress(candidates: list[Contact], *, min_gap_s: float, threshold: float) -> list[Contact]:
    """Strongest first: keep a candidate unless a kept one is within min_gap_s."""
    kept: list[Contact] = []
    for c in sorted(candidates, key=lambda c: -c.confidence):
        if c.confidence < threshold:
            break
        if all(abs(c.time_s - k.time_s) >= min_gap_s for k in kept):
            kept.append(c)
    return sorted(kept, key=lambda c: c.time_s)


def contact_times_s(positions: np.ndarray, times_s: Sequence[float], **kwargs) -> np.ndarray:
    """The times (s, float64) of `contact_events`."""
    return np.array([c.time_s for c in contact_events(positions, times_s, **kwargs)], np.float64)
