"""Tracks: boxes (and optional masks) of one object over time, linking, rasterising, JSON I/O.

A `Detection` is one box in one frame; `link_detections` joins per-frame detections into `Track`s
(Hungarian assignment on IoU and predicted-centre distance, same label only, short gaps bridged).
`track_masks` rasterises a track at any frame times by interpolating its boxes, so an object's
mask moves with it between detection frames. Boxes are `[x0, y0, x1, y1]` in video pixels.

The tracks file (written by `save_tracks`, read by `load_tracks`, consumed by `generate --tracks`):

    {"format": "foley-tracks", "version": 1, "video": str, "width": int, "height": int,
     "start_s": float, "duration_s": float, "source": "yolo-world" | "motion", "note": str,
     "tracks": [{"id": str, "label": str, "source": str, "score": float,
                 "frames": [{"time_s": float, "box": [x0, y0, x1, y1],
                             "mask": {"size": [h, w], "counts": [...]}}],   # mask optional
                 "curve": {"times_s": [...], "values": [...]}, "events_s": [...]}]}

Masks are run-length encoded over the row-major flattened (h, w) grid, alternating runs of 0
and 1 starting with 0 (so a mask starting with a 1 has a leading 0-length run). The grid covers
the whole frame but may be coarser than the video (motion masks are at most 320 px on the long
side): scale it to (height, width), as `track_masks` does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from foley_core.atomic import write_text_atomic
from foley_core.errors import FoleyError, MaskError

TRACKS_FORMAT = "foley-tracks"
TRACKS_VERSION = 1
_BIG = 1e6


# --------------------------------------------------------------------------- data

@dataclasses.dataclass
class Detection:
    """One box in one frame. `mask` (optional): an RLE dict over the whole frame, or while
    linking a bool (h, w) array that the caller encodes for the tracks it keeps."""

    box: np.ndarray                    # (4,) float [x0, y0, x1, y1] in video pixels
    score: float
    label: str
    mask: dict | np.ndarray | None = None
    energy: float = 0.0                # motion energy inside the region (motion path)


@dataclasses.dataclass
class TrackFrame:
    time_s: float
    box: np.ndarray                    # (4,) float [x0, y0, x1, y1] in video pixels
    mask: dict | None = None           # RLE over the whole frame (any grid), or None = the box


@dataclasses.dataclass
class Track:
    """One object over time. `width`/`height` are the video's pixel size the boxes refer to."""

    id: str
    label: str
    source: str                        # "yolo-world" | "motion" | "user"
    score: float
    frames: list[TrackFrame]
    width: int
    height: int
    curve_times_s: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    curve: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    events_s: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.float32))
    energy: float = 0.0                # summed motion energy (ranking of motion tracks)
    impacts: float = 0.0               # summed contact confidence (ranking of motion tracks)

    @property
    def times_s(self) -> np.ndarray:
        return np.array([f.time_s for f in self.frames], dtype=np.float64)

    @property
    def boxes(self) -> np.ndarray:
        return np.array([f.box for f in self.frames], dtype=np.float64).reshape(-1, 4)

    @property
    def start_s(self) -> float:
        return float(self.frames[0].time_s)

    @property
    def end_s(self) -> float:
        return float(self.frames[-1].time_s)


@dataclasses.dataclass
class TrackSet:
    """All tracks found in one video range, plus how they were found."""

    video: str
    width: int
    height: int
    start_s: float
    duration_s: float
    source: str                        # "yolo-world" | "motion"
    tracks: list[Track]
    note: str = ""

    def __iter__(self) -> Iterator[Track]:
        return iter(self.tracks)

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, track_id: str) -> Track:
        for track in self.tracks:
            if track.id == track_id:
                return track
        ids = ", ".join(t.id for t in self.tracks) or "none"
        raise MaskError(f"No track with id '{track_id}' in {self.video}; available ids: {ids}.")


# --------------------------------------------------------------------------- geometry

def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of [x0, y0, x1, y1] boxes."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def box_centers(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)


def validate_box(box: Sequence[float], width: int, height: int) -> np.ndarray:
    """Check a user box [x0, y0, x1, y1] (video pixels) and clip it to the frame."""
    arr = np.asarray(box, dtype=np.float64).ravel()
    if arr.size != 4 or not np.all(np.isfinite(arr)):
        raise MaskError(f"A box must be 4 finite numbers [x0, y0, x1, y1] in pixels; got {list(box)}.")
    x0, y0, x1, y1 = arr
    if x1 <= x0 or y1 <= y0:
        raise MaskError(f"Box {arr.tolist()} is empty: x1 must exceed x0 and y1 must exceed y0.")
    clipped = np.array([max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)])
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise MaskError(
            f"Box {arr.tolist()} lies outside the {width}x{height} video frame; draw it on the picture."
        )
    return clipped


def box_mask(box: Sequence[float], width: int, height: int) -> np.ndarray:
    """Rasterise a box into a float32 (height, width) mask; fractional edges are area-weighted."""
    x0, y0, x1, y1 = (float(v) for v in box)
    cols = np.clip(np.minimum(np.arange(width) + 1, x1) - np.maximum(np.arange(width), x0), 0, 1)
    rows = np.clip(np.minimum(np.arange(height) + 1, y1) - np.maximum(np.arange(height), y0), 0, 1)
    return np.outer(rows, cols).astype(np.float32)


# --------------------------------------------------------------------------- RLE

def mask_to_rle(mask: np.ndarray) -> dict:
    """Run-length encode a (h, w) mask (> 0.5 is inside); see the module docstring."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise MaskError(f"A mask must be 2-D (height, width); got shape {mask.shape}.")
    flat = (mask.reshape(-1) > 0.5).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def rle_to_mask(rle: dict) -> np.ndarray:
    """Decode an RLE dict into a bool (h, w) mask."""
    try:
        h, w = (int(v) for v in rle["size"])
        counts = np.asarray(rle["counts"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as err:
        raise MaskError(f"A mask in the tracks file is malformed ({err}); re-run detect.") from None
    if counts.sum() != h * w or np.any(counts < 0):
        raise MaskError(
            f"A mask in the tracks file has runs summing to {int(counts.sum())}, not {h}x{w}; "
            "the file is damaged: re-run detect."
        )
    values = np.zeros(counts.size, dtype=bool)
    values[1::2] = True
    return np.repeat(values, counts).reshape(h, w)


# --------------------------------------------------------------------------- linking

@dataclasses.dataclass
class _Open:
    dets: list[tuple[int, Detection]]  # (frame index, detection)
    last_seen: int


def _predicted_box(open_track: _Open, times_s: np.ndarray, frame_index: int) -> np.ndarray:
    """Last box moved at the track's last velocity (constant-velocity prediction)."""
    (i1, d1) = open_track.dets[-1]
    if len(open_track.dets) < 2:
        return d1.box
    (i0, d0) = open_track.dets[-2]
    dt = times_s[i1] - times_s[i0]
    if dt <= 0:
        return d1.box
    velocity = (box_centers(d1.box) - box_centers(d0.box))[0] / dt
    shift = velocity * (times_s[frame_index] - times_s[i1])
    return d1.box + np.array([shift[0], shift[1], shift[0], shift[1]])


def link_detections(
    detections: Sequence[Sequence[Detection]],
    times_s: Sequence[float],
    *,
    width: int,
    height: int,
    source: str,
    iou_min: float = 0.2,
    max_center_dist: float = 1.0,
    max_gap: int = 2,
    min_frames: int = 2,
) -> list[Track]:
    """Join per-frame detections into tracks.

    detections[i] are the detections of the frame at `times_s[i]`. A detection may continue an
    open track of the same label when its IoU with the track's constant-velocity prediction is at
    least `iou_min` or their centres are closer than `max_center_dist` box diagonals (2.5 times
    that for a track seen once, which has no velocity yet); the assignment minimising
    (1 - IoU) + normalised centre distance is found with the Hungarian method. A track survives up to `max_gap` frames without a detection (gaps are bridged by
    interpolation later); tracks with fewer than `min_frames` detections are dropped.
    Track ids are assigned later (`rank_tracks`); score is the mean detection score.
    """
    times = np.asarray(times_s, dtype=np.float64)
    if len(detections) != len(times):
        raise ValueError(f"{len(detections)} detection lists for {len(times)} frame times")
    open_tracks: list[_Open] = []
    closed: list[_Open] = []
    for i, dets in enumerate(detections):
        still_open = []
        for tr in open_tracks:
            (closed if i - tr.last_seen > max_gap + 1 else still_open).append(tr)
        open_tracks = still_open
        dets = list(dets)
        if open_tracks and dets:
            boxes = np.array([d.box for d in dets], dtype=np.float64)
            # An impact reverses or stops the motion, so the last box is as good a guess as the
            # constant-velocity prediction: take whichever fits better.
            iou, ndist = None, None
            for guess in (np.array([_predicted_box(tr, times, i) for tr in open_tracks]),
                          np.array([tr.dets[-1][1].box for tr in open_tracks])):
                g_iou = box_iou(guess, boxes)
                diag = np.hypot(guess[:, 2] - guess[:, 0], guess[:, 3] - guess[:, 1])[:, None]
                diag = (diag + np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])[None, :]) / 2
                dist = np.linalg.norm(box_centers(guess)[:, None, :] - box_centers(boxes)[None, :, :], axis=2)
                g_ndist = dist / np.maximum(diag, 1e-6)
                iou = g_iou if iou is None else np.maximum(iou, g_iou)
                ndist = g_ndist if ndist is None else np.minimum(ndist, g_ndist)
            same = np.array([[tr.dets[-1][1].label == d.label for d in dets] for tr in open_tracks])
            # a track seen once has no velocity yet, so its next position is less certain
            gate = np.array([max_center_dist * (2.5 if len(tr.dets) == 1 else 1.0)
                             for tr in open_tracks])[:, None]
            allowed = same & ((iou >= iou_min) | (ndist <= gate))
            cost = np.where(allowed, (1.0 - iou) + np.minimum(ndist, 2.0), _BIG)
            rows, cols = linear_sum_assignment(cost)
            taken = set()
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    open_tracks[r].dets.append((i, dets[c]))
                    open_tracks[r].last_seen = i
                    taken.add(c)
            dets = [d for j, d in enumerate(dets) if j not in taken]
        open_tracks.extend(_Open(dets=[(i, d)], last_seen=i) for d in dets)
    closed.extend(open_tracks)

    tracks = []
    for tr in closed:
        if len(tr.dets) < min_frames:
            continue
        frames = [TrackFrame(float(times[i]), np.asarray(d.box, np.float64), d.mask) for i, d in tr.dets]
        tracks.append(Track(
            id="", label=tr.dets[0][1].label, source=source,
            score=float(np.mean([d.score for _, d in tr.dets])), frames=frames,
            width=width, height=height, energy=float(sum(d.energy for _, d in tr.dets)),
        ))
    return tracks


def rank_tracks(tracks: Iterable[Track], *, key: str = "score") -> list[Track]:
    """Sort tracks best first (by `score`, ties by duration) and name them t0, t1, ..."""
    # ties (no impacts anywhere) fall back to energy, then duration
    ranked = sorted(tracks, key=lambda t: (getattr(t, key), t.energy, t.end_s - t.start_s),
                    reverse=True)
    for n, track in enumerate(ranked):
        track.id = f"t{n}"
    return ranked


# --------------------------------------------------------------------------- rasterising

def interpolate_boxes(track: Track, times_s: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of `track` at `times_s` (linear between detections) and a bool "present" flag.

    The track is held for half its median detection spacing before its first and after its last
    detection, because the object is there between samples too; elsewhere it is absent.
    """
    times = np.asarray(times_s, dtype=np.float64)
    t = track.times_s
    boxes = track.boxes
    spacing = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    hold = spacing / 2
    present = (times >= t[0] - hold - 1e-9) & (times <= t[-1] + hold + 1e-9)
    out = np.stack([np.interp(times, t, boxes[:, k]) for k in range(4)], axis=1)
    return out, present


def _paste_mask(frame_mask: np.ndarray, src_box: np.ndarray, dst_box: np.ndarray,
                video_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """Move a frame mask's content from `src_box` into `dst_box` (boxes in video pixels).

    `frame_mask` may be on a coarser grid than the video (motion masks are); `out_size` is the
    (width, height) of the result.
    """
    video_w, video_h = video_size
    width, height = out_size
    h_src, w_src = frame_mask.shape
    fx, fy = w_src / video_w, h_src / video_h
    sx0, sy0 = int(math.floor(src_box[0] * fx)), int(math.floor(src_box[1] * fy))
    sx1, sy1 = int(math.ceil(src_box[2] * fx)), int(math.ceil(src_box[3] * fy))
    sx0, sy0, sx1, sy1 = max(sx0, 0), max(sy0, 0), min(sx1, w_src), min(sy1, h_src)
    out = np.zeros((height, width), dtype=np.float32)
    if sx1 <= sx0 or sy1 <= sy0:
        return out
    crop = frame_mask[sy0:sy1, sx0:sx1].astype(np.float32)
    # the crop covers [sx0, sx1) of the mask grid: place that span, not the raw box
    gx, gy = width / video_w, height / video_h
    zoom_x = (dst_box[2] - dst_box[0]) / max(src_box[2] - src_box[0], 1e-6)
    zoom_y = (dst_box[3] - dst_box[1]) / max(src_box[3] - src_box[1], 1e-6)
    span = np.array([sx0 / fx, sy0 / fy, sx1 / fx, sy1 / fy])          # crop span in video px
    moved = np.array([
        dst_box[0] + (span[0] - src_box[0]) * zoom_x, dst_box[1] + (span[1] - src_box[1]) * zoom_y,
        dst_box[0] + (span[2] - src_box[0]) * zoom_x, dst_box[1] + (span[3] - src_box[1]) * zoom_y,
    ])
    dx0, dy0 = int(round(moved[0] * gx)), int(round(moved[1] * gy))
    dx1, dy1 = int(round(moved[2] * gx)), int(round(moved[3] * gy))
    dw, dh = max(dx1 - dx0, 1), max(dy1 - dy0, 1)
    resized = cv2.resize(crop, (dw, dh), interpolation=cv2.INTER_LINEAR)
    x0c, y0c = max(dx0, 0), max(dy0, 0)
    x1c, y1c = min(dx0 + dw, width), min(dy0 + dh, height)
    if x1c > x0c and y1c > y0c:
        out[y0c:y1c, x0c:x1c] = resized[y0c - dy0:y1c - dy0, x0c - dx0:x1c - dx0]
    return out


def track_masks(track: Track, times_s: Sequence[float], width: int, height: int) -> np.ndarray:
    """Float32 (T, height, width) masks of `track` at `times_s`, in [0, 1].

    Boxes are interpolated between detections; when the track carries region masks, the mask of
    the nearest detection frame is moved and resized into the interpolated box. `width`/`height`
    may differ from the video's size (e.g. the model's 224 x 224): boxes are scaled to fit.
    """
    if width <= 0 or height <= 0:
        raise MaskError(f"Mask size must be positive; got {width}x{height}.")
    times = np.asarray(times_s, dtype=np.float64).ravel()
    if not track.frames:
        raise MaskError(f"Track '{track.id}' has no frames; re-run detect or pick another track.")
    out = np.zeros((len(times), height, width), dtype=np.float32)
    boxes, present = interpolate_boxes(track, times)
    scale = np.array([width / track.width, height / track.height] * 2)
    track_t = track.times_s
    decoded: dict[int, np.ndarray] = {}
    for k in np.flatnonzero(present):
        nearest = int(np.argmin(np.abs(track_t - times[k])))
        frame = track.frames[nearest]
        if frame.mask is None:
            out[k] = box_mask(boxes[k] * scale, width, height)
            continue
        if nearest not in decoded:
            decoded[nearest] = rle_to_mask(frame.mask)
        out[k] = _paste_mask(decoded[nearest], frame.box, boxes[k],
                             (track.width, track.height), (width, height))
    return out


# --------------------------------------------------------------------------- JSON

def _floats(values: Iterable[float], ndigits: int = 4) -> list[float]:
    return [round(float(v), ndigits) for v in values]


def track_to_dict(track: Track) -> dict:
    frames = []
    for f in track.frames:
        item = {"time_s": round(float(f.time_s), 4), "box": _floats(f.box, 2)}
        if f.mask is not None:
            item["mask"] = f.mask
        frames.append(item)
    return {
        "id": track.id, "label": track.label, "source": track.source,
        "score": round(float(track.score), 4), "frames": frames,
        "curve": {"times_s": _floats(track.curve_times_s), "values": _floats(track.curve)},
        "events_s": _floats(track.events_s),
    }


def tracks_to_dict(track_set: TrackSet) -> dict:
    return {
        "format": TRACKS_FORMAT, "version": TRACKS_VERSION, "video": track_set.video,
        "width": track_set.width, "height": track_set.height,
        "start_s": round(track_set.start_s, 4), "duration_s": round(track_set.duration_s, 4),
        "source": track_set.source, "note": track_set.note,
        "tracks": [track_to_dict(t) for t in track_set.tracks],
    }


def save_tracks(track_set: TrackSet, path: str | os.PathLike) -> Path:
    """Write the tracks JSON atomically; returns the path."""
    path = Path(path)
    if path.is_dir():
        raise FoleyError(f"Cannot write the tracks to {path}: it is a folder; give a file name "
                         "ending in .json.")
    try:
        write_text_atomic(path, json.dumps(tracks_to_dict(track_set), separators=(",", ":")))
    except OSError as err:
        raise FoleyError(f"Cannot write the tracks to {path}: {err.strerror or err}.") from None
    return path


def _bad(path: Path, what: str) -> MaskError:
    return MaskError(f"{path} is not a usable tracks file ({what}); create one with "
                     "`python launch.py detect --video V.mp4 --out tracks.json`.")


def load_tracks(path: str | os.PathLike) -> TrackSet:
    """Read a tracks JSON written by `save_tracks` (or by hand, in the same format)."""
    from foley_core.audio_io import check_input_file

    if not Path(path).exists():
        raise MaskError(f"Tracks file {path} does not exist; create it with `launch.py detect`.")
    # a FIFO or a device would hang read_text: only regular files are read
    path = check_input_file(path, "tracks file", error=MaskError)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _bad(path, f"cannot be read as JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("tracks"), list):
        raise _bad(path, "no 'tracks' list")
    if data.get("format", TRACKS_FORMAT) != TRACKS_FORMAT:
        raise _bad(path, f"format is {data.get('format')!r}")
    if int(data.get("version", TRACKS_VERSION)) > TRACKS_VERSION:
        raise _bad(path, f"version {data.get('version')} is newer than this program understands")
    try:
        width, height = int(data["width"]), int(data["height"])
    except (KeyError, TypeError, ValueError):
        raise _bad(path, "the video 'width' and 'height' are missing") from None
    if width <= 0 or height <= 0:
        raise _bad(path, f"video size {width}x{height}")
    tracks = []
    for n, item in enumerate(data["tracks"]):
        try:
            frames = [TrackFrame(float(f["time_s"]), np.asarray(f["box"], np.float64).reshape(4),
                                 f.get("mask")) for f in item["frames"]]
            curve = item.get("curve") or {}
            track = Track(
                id=str(item.get("id", f"t{n}")), label=str(item.get("label", "")),
                source=str(item.get("source", data.get("source", ""))),
                score=float(item.get("score", 0.0)), frames=frames, width=width, height=height,
                curve_times_s=np.asarray(curve.get("times_s", []), np.float32),
                curve=np.asarray(curve.get("values", []), np.float32),
                events_s=np.asarray(item.get("events_s", []), np.float32),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise _bad(path, f"track {n} is malformed: {err!r}") from None
        if not frames:
            raise _bad(path, f"track '{track.id}' has no frames")
        if np.any(np.diff(track.times_s) <= 0):
            raise _bad(path, f"track '{track.id}' frame times are not increasing")
        if not np.all(np.isfinite(track.boxes)):
            raise _bad(path, f"track '{track.id}' has non-finite boxes")
        tracks.append(track)
    return TrackSet(
        video=str(data.get("video", "")), width=width, height=height,
        start_s=float(data.get("start_s", 0.0)), duration_s=float(data.get("duration_s", 0.0)),
        source=str(data.get("source", "")), tracks=tracks, note=str(data.get("note", "")),
    )
