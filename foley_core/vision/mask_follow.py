"""Carry a mask painted on one frame through a clip with the object it covers.

A painted mask says exactly which pixels sound, but only on the frame it was painted on; the
object then moves out from under it. `follow_mask` follows the painted object (a click at
the paint's deepest point is the pick of `follow.follow`) and moves the paint with it to
every frame, so the model's mask attention listens to the object wherever it is.

Two ways to move the paint were measured (`benchmarks/bench_mask_follow.py`, footage-like
simulated scenes whose true object masks are known; docs/BENCHMARKS.md "A painted mask
follows the object"):

- "box": the paint is translated (and scaled) from the followed box on the painted frame to
  the followed box on each frame. Exact for a rigid object, as good as the tracker's centre;
- "flow": the paint is warped frame to frame by dense optical flow (OpenCV DIS). It can bend
  with a deforming object, but every step adds an error and the mask erodes and drifts.

"box" is the default (`MASK_METHOD`), chosen by that measurement. The result is a `Track`
whose frames carry the moved mask (RLE), so `tracks.track_masks` (and the model) sees the
mask, not just the box, and the followed box still times the contacts.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from foley_core.errors import MaskError
from foley_core.vision.follow import FOLLOW_SOURCE, follow, selection_frames, track_centres
from foley_core.vision.tracks import Track, TrackFrame, mask_to_rle

MASK_METHODS = ("box", "flow")
MASK_METHOD = "box"
# a frame of the flow chain counts a pixel as the object above this warped value
_FLOW_KEEP = 0.5


def mask_box(mask: np.ndarray) -> np.ndarray:
    """Bounding box [x0, y0, x1, y1] (pixels) of the painted part (> 0.5) of a (H, W) mask."""
    ys, xs = np.nonzero(np.asarray(mask) > 0.5)
    if xs.size == 0:
        raise MaskError("The mask is empty: paint over the object that makes the sound first.")
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def deepest_point(mask: np.ndarray) -> tuple[float, float]:
    """The painted pixel (x, y) farthest from the paint's edge: inside the object even when
    the paint is concave (a ring, a crescent), where its centroid is not."""
    inside = (np.asarray(mask) > 0.5).astype(np.uint8)
    if not inside.any():
        raise MaskError("The mask is empty: paint over the object that makes the sound first.")
    depth = cv2.distanceTransform(np.pad(inside, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return float(x) + 0.5, float(y) + 0.5


def move_by_box(mask: np.ndarray, src_box: Sequence[float], dst_box: Sequence[float]) -> np.ndarray:
    """`mask` (H, W) moved so that `src_box` lands on `dst_box` (translation and scale per
    axis, sub-pixel, bilinear); float32 in 0..1."""
    mask = np.asarray(mask, np.float32)
    s = np.asarray(src_box, np.float64)
    d = np.asarray(dst_box, np.float64)
    zx = (d[2] - d[0]) / max(s[2] - s[0], 1e-6)
    zy = (d[3] - d[1]) / max(s[3] - s[1], 1e-6)
    # pixel centres: x + 0.5 maps to (x + 0.5 - s0) * z + d0
    affine = np.float32([[zx, 0, d[0] - s[0] * zx + 0.5 * (zx - 1)],
                         [0, zy, d[1] - s[1] * zy + 0.5 * (zy - 1)]])
    h, w = mask.shape
    return cv2.warpAffine(mask, affine, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def propagate_by_flow(frames: np.ndarray, mask: np.ndarray, frame_index: int) -> np.ndarray:
    """(T, H, W) float32: `mask` (painted on frame `frame_index`) warped frame by frame, both
    ways, by DIS optical flow from each frame back to the one before it in the chain."""
    frames = np.asarray(frames)
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    h, w = grey[0].shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((len(frames), h, w), np.float32)
    out[frame_index] = (np.asarray(mask) > 0.5).astype(np.float32)
    for step in (+1, -1):
        k = frame_index + step
        while 0 <= k < len(frames):
            # flow from frame k to its predecessor in the chain: where each pixel of k came from
            flow = dis.calc(grey[k], grey[k - step], None)
            warped = cv2.remap(out[k - step], xs + flow[..., 0], ys + flow[..., 1],
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            out[k] = (warped > _FLOW_KEEP).astype(np.float32)
            k += step
    return out


def propagate_mask(frames: np.ndarray, times_s: Sequence[float], mask: np.ndarray, *,
                   frame_index: int, track: Track, method: str = MASK_METHOD) -> np.ndarray:
    """(T, H, W) float32 masks at the frames' size: `mask` (painted on frame `frame_index`,
    at the frames' size) carried along `track` (boxes in video pixels) by `method`. Frames
    where the track does not see the object get an empty mask."""
    if method not in MASK_METHODS:
        raise MaskError(f"unknown way to move a mask {method!r}; use one of {', '.join(MASK_METHODS)}")
    frames = np.asarray(frames)
    fh, fw = frames.shape[1:3]
    scale = np.array([fw / track.width, fh / track.height] * 2)
    boxes = _boxes_at(track, times_s) * scale
    if not np.all(np.isfinite(boxes[frame_index])):
        raise MaskError("The followed object is not seen on the painted frame; paint on a frame "
                        "where it is in view.")
    seen = np.all(np.isfinite(boxes), axis=1)
    if method == "flow":
        out = propagate_by_flow(frames, mask, frame_index)
    else:
        out = np.zeros((len(frames), fh, fw), np.float32)
        for k in np.flatnonzero(seen):
            out[k] = move_by_box(mask, boxes[frame_index], boxes[k])
    out[~seen] = 0.0
    return out


def _boxes_at(track: Track, times_s: Sequence[float]) -> np.ndarray:
    """(T, 4) boxes of `track` at exactly `times_s`, NaN where it has no frame."""
    centres = track_centres(track, times_s)
    out = np.full((len(centres), 4), np.nan)
    t_track = track.times_s
    for i, t in enumerate(np.asarray(times_s, np.float64)):
        if np.isfinite(centres[i, 0]):
            out[i] = track.frames[int(np.argmin(np.abs(t_track - t)))].box
    return out


def follow_mask(frames: np.ndarray, times_s: Sequence[float], mask: np.ndarray, *,
                frame_index: int, width: int | None = None, height: int | None = None,
                method: str = MASK_METHOD, track: Track | None = None,
                track_id: str = "painted", label: str = "painted object", **follow_kw) -> Track:
    """Follow the object under a mask painted on frame `frame_index` and carry the mask with it.

    frames (T, H, W, 3) uint8 RGB at `times_s`; mask (H, W) at the frames' size (> 0.5 is
    painted). `track`: an object already followed (boxes in (width, height) video pixels);
    None follows the object from a click at the paint's deepest point (`follow.follow`,
    `follow_kw` passed on). Returns
    a Track in video pixels whose frames carry the moved mask (RLE at the frames' grid) and
    whose boxes are the paint's box carried with the followed box (their centre moves with
    the tracker's, so the contacts are timed as for a click; "flow" grows them to hold the
    warped mask).
    """
    frames = np.asarray(frames)
    mask = np.asarray(mask, np.float32)
    if mask.shape != frames.shape[1:3]:
        raise MaskError(f"the mask is {mask.shape[1]}x{mask.shape[0]} pixels but the frames are "
                        f"{frames.shape[2]}x{frames.shape[1]}")
    fh, fw = frames.shape[1:3]
    width, height = int(width or fw), int(height or fh)
    paint_box = mask_box(mask)
    if track is None:
        # a click, not the paint's box: a box around a round or pointed object is half
        # background, and the tracker's colour model would learn the background too (measured:
        # a triangle was lost at its first contact); the click's own fill finds the object
        track = follow(frames, times_s, frame_index=frame_index, point=deepest_point(mask),
                       width=width, height=height, track_id=track_id, label=label, **follow_kw)
    moved = propagate_mask(frames, times_s, mask, frame_index=frame_index, track=track, method=method)
    to_video = np.array([width / fw, height / fh] * 2)
    scale = np.array([fw / track.width, fh / track.height] * 2)
    boxes = _boxes_at(track, times_s) * scale
    # the stored box is the followed box moved the same way as the paint, so it holds the paint
    # (track_masks pastes only what lies inside a frame's box) and its centre is the tracker's
    out_frames = []
    for k, t in enumerate(np.asarray(times_s, np.float64)):
        if not np.all(np.isfinite(boxes[k])) or not np.any(moved[k] > 0.5):
            continue
        b = _carry_box(paint_box, boxes[frame_index], boxes[k])
        if method == "flow":
            # the warped mask need not stay inside the carried box, and track_masks crops to it
            held = mask_box(moved[k])
            b = np.concatenate([np.minimum(b[:2], held[:2]), np.maximum(b[2:], held[2:])])
        b = np.clip(b, [0, 0, 0, 0], [fw, fh, fw, fh]) * to_video
        if b[2] - b[0] <= 0 or b[3] - b[1] <= 0:
            continue
        out_frames.append(TrackFrame(time_s=float(t), box=b, mask=mask_to_rle(moved[k] > 0.5)))
    if not out_frames:
        raise MaskError("The painted object could not be followed on any frame; paint it again "
                        "on a frame where it is clearly in view.")
    return Track(id=track.id, label=track.label, source=FOLLOW_SOURCE, score=track.score,
                 frames=out_frames, width=width, height=height)


def _carry_box(box: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`box` moved by the translation and scale that take `src` onto `dst`."""
    zx = (dst[2] - dst[0]) / max(src[2] - src[0], 1e-6)
    zy = (dst[3] - dst[1]) / max(src[3] - src[1], 1e-6)
    return np.array([dst[0] + (box[0] - src[0]) * zx, dst[1] + (box[1] - src[1]) * zy,
                     dst[0] + (box[2] - src[0]) * zx, dst[1] + (box[3] - src[1]) * zy])


def follow_mask_in_video(video: str, mask: np.ndarray, *, time_s: float, start_s: float = 0.0,
                         duration_s: float | None = None, method: str = MASK_METHOD) -> Track:
    """`follow_mask` on a video: `mask` (H, W) at the video's size, painted on the frame at
    video time `time_s`, carried through the selection [start_s, start_s + duration_s) read
    at the video's own frame rate. The Track (video pixels) is a region: `Region(track=...)`."""
    info, frames, times, k = selection_frames(video, time_s=time_s, start_s=start_s,
                                              duration_s=duration_s)
    mask = np.asarray(mask, np.float32)
    if mask.shape != (info.height, info.width):
        raise MaskError(f"the mask is {mask.shape[-1]}x{mask.shape[0]} pixels but the video is "
                        f"{info.width}x{info.height}; paint it on the video's frame")
    small = cv2.resize((mask > 0.5).astype(np.uint8), (frames.shape[2], frames.shape[1]),
                       interpolation=cv2.INTER_NEAREST).astype(np.float32)
    if not small.any():
        # a stroke thinner than a pixel of the working size: keep its deepest point
        x, y = deepest_point(mask)
        small[int(y * frames.shape[1] / info.height), int(x * frames.shape[2] / info.width)] = 1.0
    return follow_mask(frames, times, small, frame_index=k, width=info.width, height=info.height,
                       method=method)
