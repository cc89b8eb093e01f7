"""Motion-derived timing: a proposed loudness curve and likely contact times for a region.

A region is a drawn mask ((H, W) or (T, H, W)), a box [x0, y0, x1, y1], or a `Track`. Its motion
energy is the mean grey-level change inside it from one frame to the next, above the sensor noise;
normalised and put on
the curve grid (relative 0..1 at CURVE_FPS points per second) it proposes the loudness curve. Contact
times are where the region's moving centre changes velocity suddenly: a bounce reverses it, a
landing stops it. Those are the moments an impact sounds, which motion energy alone misses (energy
peaks while the object flies, not when it lands).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d

from foley_core.constants import CURVE_FPS
from foley_core.errors import MaskError, TimeRangeError
from foley_core.events import visual_contact_times
from foley_core.loudness import curve_times, n_curve_points, normalize_curve, resample_curve
from foley_core.vision.motion import ClipMotion, analyse_clip
from foley_core.vision.tracks import (
    Track, box_mask, interpolate_boxes, track_masks, validate_box,
)


@dataclasses.dataclass
class MotionProposal:
    """What motion proposes for one region: a curve and event times (video seconds)."""

    curve_times_s: np.ndarray          # (N,) curve grid, absolute video times
    curve: np.ndarray                  # (N,) float32 relative 0..1
    events_s: np.ndarray               # (E,) likely contact times, absolute video times
    energy: np.ndarray                 # (T,) motion energy per analysed frame
    times_s: np.ndarray                # (T,) analysed frame times


# --------------------------------------------------------------------------- energy and curve

def _resize_masks(masks: np.ndarray, n_frames: int, h: int, w: int) -> np.ndarray:
    masks = np.asarray(masks, dtype=np.float32)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[0] not in (1, n_frames):
        raise MaskError(
            f"A mask must be (H, W) or (T, H, W) with T = {n_frames} frames; got shape {masks.shape}."
        )
    if not np.all(np.isfinite(masks)):
        raise MaskError("The mask contains NaN or infinite values; draw it again.")
    if masks.shape[1:] != (h, w):
        masks = np.stack([cv2.resize(m, (w, h), interpolation=cv2.INTER_AREA) for m in masks])
    return np.clip(masks, 0.0, 1.0)


def motion_energy(frames: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """Mean absolute grey-level change (0..255, above the noise floor) inside `masks` per
    frame, (T,) float32.

    masks: (H, W) fixed or (T, H, W) moving, in [0, 1], any resolution (resized to the analysis
    grid); None means the whole frame. Frame 0 compares with frame 1 so it is not a false zero.
    An empty mask gives zero energy.
    """
    diff = _above_noise(analyse_clip(frames, np.arange(len(frames), dtype=np.float64)).diff)
    t, h, w = diff.shape
    if masks is None:
        return diff.reshape(t, -1).mean(axis=1).astype(np.float32)
    return _energy(diff, _resize_masks(masks, t, h, w))


def _above_noise(diff: np.ndarray) -> np.ndarray:
    """Frame differences above the sensor noise, so still regions have no energy at all."""
    # most pixels are still: twice a frame's median difference is the noise floor
    noise = 2.0 * np.median(diff[:, ::3, ::3].reshape(len(diff), -1), axis=1)
    return np.maximum(diff - noise[:, None, None], 0.0)


def _energy(diff: np.ndarray, masks: np.ndarray) -> np.ndarray:
    t = diff.shape[0]
    m = np.broadcast_to(masks, diff.shape)
    area = m.reshape(t, -1).sum(axis=1)
    total = (diff * m).reshape(t, -1).sum(axis=1)
    return np.where(area > 0, total / np.maximum(area, 1e-6), 0.0).astype(np.float32)


def energy_curve(
    energy: np.ndarray, times_s: np.ndarray, *, start_s: float, duration_s: float,
    fps: float = CURVE_FPS,
) -> tuple[np.ndarray, np.ndarray]:
    """Motion energy as a relative curve on the curve grid of [start_s, start_s + duration_s).

    Returns (absolute grid times (s), float32 values 0..1 with 1 = the strongest motion). The
    energy is averaged over each curve frame's width first, so fast frame rates do not alias.
    """
    energy = np.asarray(energy, dtype=np.float64)
    times_s = np.asarray(times_s, dtype=np.float64)
    grid = curve_times(n_curve_points(duration_s, fps), fps)
    if energy.size == 0:
        return grid + start_s, np.zeros(grid.size, np.float32)
    spacing = float(np.median(np.diff(times_s))) if times_s.size > 1 else 1.0 / fps
    width = max(1, int(round((1.0 / fps) / max(spacing, 1e-6))))
    smooth = uniform_filter1d(energy, size=width, mode="nearest")
    rel_t = times_s - start_s
    keep = (rel_t >= -0.5 / fps) & (rel_t <= duration_s + 0.5 / fps)
    if not np.any(keep):
        return grid + start_s, np.zeros(grid.size, np.float32)
    values = normalize_curve(smooth[keep])
    curve = resample_curve(rel_t[keep], values, duration_s=duration_s, fps=fps)
    return grid + start_s, normalize_curve(curve)      # 1 = the strongest point on the grid


# --------------------------------------------------------------------------- contact times

def contact_times(positions: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """Likely contact times (absolute s, float32) of a centre path sampled at uniform `times_s`.

    NaN positions (nothing seen) are allowed. The detector is `events.visual_contact_times`:
    an impulse (velocity change beyond the smooth acceleration around it) that opposes the
    incoming motion, so a bounce or a stop counts and a gravity arc's apex does not.
    """
    t = np.asarray(times_s, dtype=np.float64).ravel()
    if t.size < 3:
        return np.zeros(0, np.float32)
    fps = 1.0 / float(np.median(np.diff(t)))
    return (visual_contact_times(np.asarray(positions, np.float64), fps) + t[0]).astype(np.float32)


def _mask_centres(moving: np.ndarray, masks: np.ndarray, min_pixels: int = 6) -> np.ndarray:
    """Centre (map pixels) of the moving regions inside the mask, per frame; NaN where fewer
    than `min_pixels` of its pixels move."""
    t, h, w = moving.shape
    weight = moving * masks
    total = weight.reshape(t, -1).sum(axis=1)
    ys, xs = np.mgrid[0:h, 0:w]
    cx = (weight * xs).reshape(t, -1).sum(axis=1) / np.maximum(total, 1e-9)
    cy = (weight * ys).reshape(t, -1).sum(axis=1) / np.maximum(total, 1e-9)
    return np.where((total >= min_pixels)[:, None], np.stack([cx, cy], axis=1), np.nan)


def _hold(centres: np.ndarray, *, keep_trailing_gap: bool = False) -> np.ndarray:
    """Fill unknown (NaN) positions with the last known one (the first, before it): a region
    that stops moving stays where it stopped, so a landing is a stop, not a disappearance.
    With `keep_trailing_gap`, NaNs after the last known position stay (the object left)."""
    c = np.array(centres, dtype=np.float64)
    known = np.isfinite(c[:, 0])
    if not known.any():
        return c
    last = np.flatnonzero(known)[-1]
    idx = np.maximum.accumulate(np.where(known, np.arange(len(c)), 0))
    filled = c[idx]
    filled[:np.argmax(known)] = c[np.argmax(known)]
    if keep_trailing_gap:
        filled[last + 1:] = np.nan
    return filled


# --------------------------------------------------------------------------- regions

def _region_masks(region, n_frames: int, grid: tuple[int, int], times_s: np.ndarray,
                  width: int, height: int) -> tuple[np.ndarray, Track | None]:
    """A region as (T or 1, h, w) float masks on the analysis grid (w, h), plus its track."""
    w, h = grid
    if isinstance(region, Track):
        return track_masks(region, times_s, w, h), region
    arr = region if isinstance(region, np.ndarray) else np.asarray(region, dtype=np.float64)
    if arr.ndim == 1 and arr.size == 4:
        box = validate_box(arr, width, height) * np.array([w / width, h / height] * 2)
        return box_mask(box, w, h)[None], None
    if arr.ndim in (2, 3):
        masks = _resize_masks(arr, n_frames, h, w)
        if masks.max() <= 0:
            raise MaskError("The mask is empty: paint the region that makes the sound.")
        return masks, None
    raise MaskError(
        "A region must be a mask (H, W) or (T, H, W), a box [x0, y0, x1, y1] or a track; "
        f"got an array of shape {arr.shape}."
    )


def _check_clip(frames: np.ndarray, times_s: np.ndarray) -> None:
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) != len(times_s) or len(frames) == 0:
        raise MaskError(f"Need frames (T, H, W, 3) with one time each; got {frames.shape} "
                        f"and {len(times_s)} times.")


def _default_span(times_s: np.ndarray, start_s: float | None,
                  duration_s: float | None) -> tuple[float, float]:
    spacing = float(np.median(np.diff(times_s))) if len(times_s) > 1 else 1.0 / CURVE_FPS
    start_s = float(times_s[0]) if start_s is None else float(start_s)
    if duration_s is None:
        duration_s = float(times_s[-1] - start_s) + spacing
    return start_s, float(duration_s)


def _proposal(clip: ClipMotion, region, *, width: int, height: int, start_s: float,
          duration_s: float) -> MotionProposal:
    t, h, w = clip.gray.shape
    times_s = clip.times_s
    masks, track = _region_masks(region, t, (w, h), times_s, width, height)
    energy = _energy(_above_noise(clip.diff), masks)
    curve_t, curve = energy_curve(energy, times_s, start_s=start_s, duration_s=duration_s)
    if track is not None:
        boxes, present = interpolate_boxes(track, times_s)
        centres = np.where(present[:, None], (boxes[:, :2] + boxes[:, 2:]) / 2, np.nan)
        # a track ends where its object stops moving (a landing), unless it left the picture
        last = track.boxes[-1]
        left = last[0] <= 2 or last[1] <= 2 or last[2] >= track.width - 2 or last[3] >= track.height - 2
        centres = _hold(centres, keep_trailing_gap=left)
    else:
        centres = _hold(_mask_centres(clip.moving, np.broadcast_to(masks, clip.moving.shape)))
        centres *= np.array([width / w, height / h])
    events = contact_times(centres, times_s)
    return MotionProposal(curve_times_s=curve_t, curve=curve, events_s=events,
                      energy=energy, times_s=times_s)


def region_motion(
    frames: np.ndarray,
    times_s: np.ndarray,
    region,
    *,
    width: int | None = None,
    height: int | None = None,
    start_s: float | None = None,
    duration_s: float | None = None,
    clip: ClipMotion | None = None,
) -> MotionProposal:
    """Proposed motion curve and contact times for a region of the clip `frames` at `times_s`.

    region: a drawn mask (H, W) / (T, H, W) in [0, 1], a box [x0, y0, x1, y1] in video pixels,
    or a `Track`. width/height: the video's pixel size that boxes refer to (default: the frames'
    size). The curve covers [start_s, start_s + duration_s), by default the frames' own span.
    Contacts come from the track's box centres, or, for a drawn region, from the centre of the
    moving regions inside it (`motion.motion_regions`); a region that stops moving is held where
    it stopped, so a landing counts as a contact. clip: `motion.analyse_clip(frames, times_s)`
    if already computed.
    """
    frames = np.asarray(frames)
    times_s = np.asarray(times_s, dtype=np.float64)
    _check_clip(frames, times_s)
    start_s, duration_s = _default_span(times_s, start_s, duration_s)
    clip = analyse_clip(frames, times_s) if clip is None else clip
    return _proposal(clip, region, width=width or frames.shape[2], height=height or frames.shape[1],
                 start_s=start_s, duration_s=duration_s)


def annotate_tracks(tracks: Sequence[Track], frames: np.ndarray, times_s: np.ndarray, *,
                    start_s: float | None = None, duration_s: float | None = None,
                    clip: ClipMotion | None = None) -> None:
    """Fill each track's `curve_times_s`, `curve` and `events_s` from the clip's motion.

    clip: `motion.analyse_clip(frames, times_s)` if already computed."""
    frames = np.asarray(frames)
    times_s = np.asarray(times_s, dtype=np.float64)
    _check_clip(frames, times_s)
    start_s, duration_s = _default_span(times_s, start_s, duration_s)
    clip = analyse_clip(frames, times_s) if clip is None else clip
    for track in tracks:
        proposal = _proposal(clip, track, width=track.width, height=track.height,
                     start_s=start_s, duration_s=duration_s)
        track.curve_times_s, track.curve, track.events_s = proposal.curve_times_s, proposal.curve, proposal.events_s


# --------------------------------------------------------------------------- curve presets

# How fast a real impact falls: the median time from the loudest 10 ms of a one-shot impact to
# 20 dB below it, over the starter library's 66 one-shot `impact` clips (quartiles 0.073 and
# 0.355 s; their attack, 20 dB up to the peak, has a median of 0.03 s: within one curve frame).
# `PYTHONPATH=. python scripts/measure_impact_decay.py` measures it again.
IMPACT_FALL_20DB_S = 0.19
# The exponential's time constant that falls 20 dB (a factor 10 in level) in that time.
IMPACT_DECAY_S = IMPACT_FALL_20DB_S / math.log(10.0)


def hits_curve(events_s: Sequence[float], *, duration_s: float, fps: float = CURVE_FPS,
               decay_s: float = IMPACT_DECAY_S, floor: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """The 'hits at contacts' curve, an impact envelope at each contact: full level from the
    grid frame holding it (the attack is within a frame), then falling exponentially with time
    constant `decay_s` (by default as a real impact falls: IMPACT_FALL_20DB_S to -20 dB),
    `floor` elsewhere.

    events_s: contact times in seconds from the start of the curve (those outside
    0..duration_s only contribute their tail). Returns (times_s, values): the curve grid's
    frame centres (`fps` points per second) and relative loudness 0..1 (float64).
    """
    if not (np.isfinite(duration_s) and duration_s > 0):
        raise TimeRangeError(f"A hits curve needs a positive duration; got {duration_s!r} s.")
    if not (np.isfinite(decay_s) and decay_s > 0):
        raise ValueError(f"decay_s must be positive; got {decay_s!r}")
    events = np.asarray(list(events_s), dtype=np.float64).ravel()
    times = curve_times(n_curve_points(duration_s, fps), fps)
    half = 0.5 / float(fps)
    values = np.full(times.shape, float(floor))
    for e in events[np.isfinite(events)]:
        # a frame counts as hit once its end passes the contact; the decay runs from its start
        since = np.clip(times - half - e, 0.0, None)
        env = np.where(times + half > e, np.exp(-since / decay_s), 0.0)
        values = np.maximum(values, env)
    return times, np.clip(values, 0.0, 1.0)
