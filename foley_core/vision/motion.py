"""Offline motion fallback: regions of sustained motion become candidate masks and tracks.

No weights are needed. The still scene is the per-pixel temporal median of the clip (in colour);
what differs from it, cleaned with morphology and split into connected components per frame, is a
moving region if it also changes from frame to frame. Regions are linked into tracks like
detections (`tracks.link_detections`), pieces of one mover are merged (`merge_fragments`), and
tracks are ranked by impact evidence (the contacts in their paths: the object a Foley artist
picks), then by motion energy summed over their life. Assumes a mostly still camera: a panning
shot moves everything and gives big, short-lived regions.
"""

from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

from foley_core.vision.tracks import Detection, Track, link_detections, mask_to_rle, rank_tracks

MOTION_SOURCE = "motion"
MOTION_LABEL = "moving region"
ANALYSIS_MAX_SIDE = 320      # motion maps are computed at most this many pixels on the long side
_MAX_REGIONS_PER_FRAME = 24  # strongest components kept per frame (a shaky shot makes hundreds)


def _analysis_size(h: int, w: int, max_side: int) -> tuple[float, tuple[int, int]]:
    scale = min(1.0, max_side / max(h, w))
    return scale, (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (T, H, W, 3); got {frames.shape}")
    return frames


def to_gray(frames: np.ndarray, *, max_side: int = ANALYSIS_MAX_SIDE) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, h, w) float32 grey, downscaled to `max_side`, lightly blurred."""
    frames = _check_frames(frames)
    t, h, w, _ = frames.shape
    scale, size = _analysis_size(h, w, max_side)
    out = np.empty((t, size[1], size[0]), dtype=np.float32)
    for i in range(t):
        g = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
        out[i] = cv2.GaussianBlur(g, (3, 3), 0)
    return out


def to_small(frames: np.ndarray, *, max_side: int = ANALYSIS_MAX_SIDE) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB -> (T, h, w, 3) uint8 colour on the same grid as `to_gray`."""
    frames = _check_frames(frames)
    t, h, w, _ = frames.shape
    scale, size = _analysis_size(h, w, max_side)
    out = np.empty((t, size[1], size[0], 3), dtype=np.uint8)
    for i in range(t):
        f = cv2.resize(frames[i], size, interpolation=cv2.INTER_AREA) if scale < 1.0 else frames[i]
        out[i] = cv2.GaussianBlur(f, (3, 3), 0)
    return out


def difference_maps(gray: np.ndarray) -> np.ndarray:
    """|g[t] - g[t-1]| per frame (T, h, w) float32; frame 0 has no predecessor and is 0."""
    out = np.empty(gray.shape, dtype=np.float32)
    if len(gray):
        out[0] = 0.0
    for i in range(1, len(gray)):
        cv2.absdiff(gray[i], gray[i - 1], dst=out[i])
    return out


def background(images: np.ndarray, times_s: np.ndarray, *, window_s: float = 10.0,
               max_samples: int = 25) -> np.ndarray:
    """Still background per frame of (T, h, w) grey or (T, h, w, 3) colour images: the
    temporal median (of at most `max_samples` frames) over windows of `window_s` seconds.

    The whole clip is at hand, so the median sees past and future: anything that does not sit
    in one place for most of a window disappears from it, at any speed (unlike a running model,
    which absorbs slow objects and leaves ghosts where objects started).
    """
    times_s = np.asarray(times_s, dtype=np.float64)
    out = np.empty_like(images)
    if len(images) == 0:
        return out
    n_windows = max(1, int(np.ceil((times_s[-1] - times_s[0] + 1e-9) / window_s)))
    edges = np.linspace(times_s[0], times_s[-1] + 1e-9, n_windows + 1)
    for a, b in zip(edges[:-1], edges[1:]):
        idx = np.flatnonzero((times_s >= a) & (times_s < b))
        if idx.size == 0:
            continue
        sample = idx[np.linspace(0, idx.size - 1, min(idx.size, max_samples)).round().astype(int)]
        k = len(sample) // 2                         # partition keeps the dtype; median would not
        out[idx] = np.partition(images[sample], k, axis=0)[k]
    return out


def foreground_maps(images: np.ndarray, times_s: np.ndarray) -> np.ndarray:
    """(T, h, w) float32 difference from the still background: whole objects wherever they
    differ from the still scene. Colour images use the largest channel difference, so a red
    ball on a grey floor of the same brightness still stands out."""
    bg = background(images, times_s)
    out = np.empty(images.shape[:3], dtype=np.float32)
    for i in range(len(images)):
        diff = cv2.absdiff(images[i], bg[i])
        if diff.ndim == 3:                           # cv2.max: numpy's max over a 3-wide axis is slow
            r, g, b = cv2.split(diff)
            diff = cv2.max(cv2.max(r, g), b)
        out[i] = diff
    return out


def _noise_threshold(diff: np.ndarray, floor: float) -> float:
    """Robust per-frame threshold: most pixels are still, so the median difference is noise."""
    sigma = float(np.median(diff[::3, ::3])) / 0.6745
    return max(floor, 4.0 * sigma)


def motion_regions(
    foreground: np.ndarray, motion: np.ndarray, *, threshold: float = 10.0,
    min_area_frac: float = 3e-4, min_changing: float = 0.1,
) -> list[list[tuple[np.ndarray, np.ndarray, float]]]:
    """Connected moving regions per frame.

    foreground: differences from the still background (whole objects); motion: frame-to-frame
    differences |g[t] - g[t-1]| (what changes now), both (T, h, w). A region is a connected
    foreground component of at least `min_area_frac` of the frame in which at least
    `min_changing` of the pixels change from the previous or to the next frame. That drops
    "ghosts" (where the background median still holds an object that rests there part of the
    time, nothing changes) and things that arrived and stay, yet keeps a slow object whole (its
    edges change even when its inside does not). Returns, per frame, (box [x0, y0, x1, y1] in
    map pixels, bool mask (h, w), energy = summed motion inside / map pixels). `threshold` is
    the minimum grey-level difference (0..255) that counts; it rises with the frame's noise.
    """
    t, h, w = foreground.shape
    min_area = max(6, int(min_area_frac * h * w))
    k_open = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    k_close = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    k_group = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    regions = []
    for i in range(t):
        f = foreground[i]
        change = motion[i] if i + 1 >= t else np.maximum(motion[i], motion[i + 1])
        changing = change > _noise_threshold(change, threshold)
        binary = (f > _noise_threshold(f, threshold)).astype(np.uint8)
        binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, k_open)
        binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, k_close)
        # pieces a few pixels apart are one object split where it matches the background
        n, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(binary, k_group),
                                                               connectivity=8)
        frame_regions = []
        for j in range(1, n):
            x, y, bw, bh, _ = stats[j]
            comp = (labels[y:y + bh, x:x + bw] == j) & (binary[y:y + bh, x:x + bw] > 0)
            if comp.sum() < min_area:
                continue
            ys, xs = np.nonzero(comp)                 # tight box of the object's own pixels
            comp = comp[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
            x, y, bw, bh = x + xs.min(), y + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
            if changing[y:y + bh, x:x + bw][comp].mean() < min_changing:
                continue
            moving = motion[i, y:y + bh, x:x + bw][comp]
            full = np.zeros((h, w), dtype=bool)
            full[y:y + bh, x:x + bw] = comp
            frame_regions.append((np.array([x, y, x + bw, y + bh], np.float64), full,
                                  float(moving.sum()) / (h * w)))
        regions.append(frame_regions)
    return regions


@dataclasses.dataclass
class ClipMotion:
    """The motion analysis of one clip, shared by tracks, curves and contacts.

    gray: (T, h, w) float32 grey on the analysis grid; diff: |gray[t] - gray[t-1]| (frame 0
    copies frame 1, so it is not a false still); regions: per frame, the moving regions of
    `motion_regions` (computed on first use).
    """

    frames: np.ndarray
    times_s: np.ndarray
    gray: np.ndarray
    diff: np.ndarray
    threshold: float = 10.0
    min_area_frac: float = 3e-4

    @functools.cached_property
    def regions(self) -> list[list[tuple[np.ndarray, np.ndarray, float]]]:
        foreground = foreground_maps(to_small(self.frames), self.times_s)
        return motion_regions(foreground, self.diff, threshold=self.threshold,
                              min_area_frac=self.min_area_frac)

    @functools.cached_property
    def moving(self) -> np.ndarray:
        """(T, h, w) float32: 1 on the pixels of moving regions."""
        out = np.zeros(self.gray.shape, np.float32)
        for i, frame_regions in enumerate(self.regions):
            for _, comp, _ in frame_regions:
                out[i][comp] = 1.0
        return out


def analyse_clip(frames: np.ndarray, times_s: np.ndarray, *, threshold: float = 10.0,
                 min_area_frac: float = 3e-4) -> ClipMotion:
    """Grey frames and differences of a clip at the analysis size (regions come on demand).

    threshold: minimum grey-level change (0..255) that counts as motion (it rises with noise);
    min_area_frac: smallest moving region, as a fraction of the frame.
    """
    frames = _check_frames(frames)
    times_s = np.asarray(times_s, dtype=np.float64)
    if len(frames) != len(times_s):
        raise ValueError(f"{len(frames)} frames for {len(times_s)} times")
    gray = to_gray(frames)
    diff = difference_maps(gray)
    if len(diff) > 1:
        diff[0] = diff[1]
    return ClipMotion(frames=frames, times_s=times_s, gray=gray, diff=diff,
                      threshold=threshold, min_area_frac=min_area_frac)


def motion_tracks(
    frames: np.ndarray,
    times_s: np.ndarray,
    *,
    width: int,
    height: int,
    min_duration_s: float = 0.2,
    max_tracks: int = 10,
    with_masks: bool = True,
    clip: ClipMotion | None = None,
) -> list[Track]:
    """Tracks of sustained motion in `frames` (at `times_s`), boxes in (width, height) video pixels.

    Tracks shorter than `min_duration_s` are dropped; fragments of one object that chain in
    space and time are merged (`merge_fragments`); the rest are ranked by their impact
    evidence (`impact_evidence`), then by summed motion energy, named t0, t1, ... and at most
    `max_tracks` are kept. `score` is the track's energy relative to the strongest kept track
    (0..1]. With `with_masks`, each frame keeps the moving
    component as an RLE mask on the analysis grid (at most 320 px on the long side).
    clip: `analyse_clip(frames, times_s)` if already computed (shared with the curves).
    """
    clip = analyse_clip(frames, times_s) if clip is None else clip
    times_s = clip.times_s
    h, w = clip.gray.shape[1:]
    sx, sy = width / w, height / h
    per_frame = []
    for frame_regions in clip.regions:
        frame_regions = sorted(frame_regions, key=lambda r: -r[2])[:_MAX_REGIONS_PER_FRAME]
        per_frame.append([
            Detection(box=box * np.array([sx, sy, sx, sy]), score=1.0, label=MOTION_LABEL,
                      mask=comp if with_masks else None, energy=energy)
            for box, comp, energy in frame_regions
        ])
    spacing = float(np.median(np.diff(times_s))) if len(times_s) > 1 else 1.0
    min_frames = max(2, int(np.ceil(min_duration_s / max(spacing, 1e-6))))
    tracks = link_detections(per_frame, times_s, width=width, height=height, source=MOTION_SOURCE,
                             iou_min=0.1, max_center_dist=2.5, max_gap=2, min_frames=min_frames)
    tracks = merge_fragments(tracks, spacing_s=spacing)
    for track in tracks:
        track.impacts = impact_evidence(track, spacing_s=spacing)
    # the object a Foley artist picks is the one whose motion has impacts, not the biggest
    # mover (a person walking through the shot): impacts first, energy breaks ties
    tracks = rank_tracks(tracks, key="impacts")[:max_tracks]
    top = max((t.energy for t in tracks), default=0.0) or 1e-12
    for track in tracks:
        track.score = float(track.energy / top)
        for frame in track.frames:
            if isinstance(frame.mask, np.ndarray):
                frame.mask = mask_to_rle(frame.mask)
    return tracks


def merge_fragments(tracks: list[Track], *, spacing_s: float, max_gap_s: float = 0.3,
                    reach: float = 1.5) -> list[Track]:
    """Join tracks that are pieces of one object: one ends and the next starts within
    `max_gap_s` (or overlaps by at most a frame), and the next's first box lies within `reach`
    of the larger box diagonal (plus the first's speed over the gap) of the first's last box.
    A mover is split when it stops for a moment, passes a similar-looking patch or is briefly
    hidden; its contacts are only seen whole on one track. Energies add up."""
    pending = sorted(tracks, key=lambda t: t.start_s)
    merged: list[Track] = []
    for track in pending:
        best = None
        for cand in merged:
            gap = track.start_s - cand.end_s
            if not -spacing_s * 1.01 <= gap <= max_gap_s:
                continue
            last, first = cand.boxes[-1], track.boxes[0]
            size = max(np.hypot(*(last[2:] - last[:2])), np.hypot(*(first[2:] - first[:2])))
            b = cand.boxes
            speed = (np.hypot(*((b[-1, :2] + b[-1, 2:]) - (b[-2, :2] + b[-2, 2:])) / 2)
                     / max(cand.times_s[-1] - cand.times_s[-2], 1e-6)) if len(b) > 1 else 0.0
            dist = float(np.hypot(*((first[:2] + first[2:]) - (last[:2] + last[2:])) / 2))
            if dist <= reach * size + speed * max(gap, 0.0) and (best is None or dist < best[0]):
                best = (dist, cand)
        if best is None:
            merged.append(track)
            continue
        cand = best[1]
        cand.frames = cand.frames + [f for f in track.frames if f.time_s > cand.end_s + 1e-9]
        cand.energy += track.energy
    return merged


def impact_evidence(track: Track, *, spacing_s: float) -> float:
    """Summed confidence of the contacts in a track's centre path (frames on the analysis grid,
    missing frames left as gaps): how much the track's motion looks like hits."""
    from foley_core.vision.contacts import contact_events

    if len(track.frames) < 4:
        return 0.0
    t = track.times_s
    n = int(round((t[-1] - t[0]) / spacing_s)) + 1
    grid = t[0] + np.arange(n) * spacing_s
    centres = np.full((n, 2), np.nan)
    idx = np.clip(np.round((t - t[0]) / spacing_s).astype(int), 0, n - 1)
    centres[idx] = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
    return float(sum(c.confidence for c in contact_events(centres, grid)))
