"""From a video range to proposed tracks: YOLO-World when it can run, else the motion fallback.

`detect_tracks` is what the `detect` CLI and the UI call: it reads the frames once, finds tracks
(objects named by the vocabulary, or regions of sustained motion), and gives each track a motion
curve proposal and likely contact times. `region_proposal` does the same timing analysis for a
region the user drew.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from foley_core import media
from foley_core.captions import noun_phrases
from foley_core.constants import MAX_GENERATION_SECONDS
from foley_core.errors import CaptionError, ModelUnavailableError, TimeRangeError
from foley_core.vision.curves import MotionProposal, annotate_tracks, region_motion
from foley_core.vision.detect_yolo import (
    YOLO_SOURCE, YoloWorldDetector, refine_detections, resolve_weights,
)
from foley_core.vision.motion import MOTION_SOURCE, analyse_clip, motion_tracks
from foley_core.vision.tracks import TrackSet, link_detections, rank_tracks

METHODS = ("auto", "yolo-world", "motion")
MAX_ANALYSIS_FPS = 30.0      # motion, curves and contacts: the video's own rate, or 1/2, 1/3 ... of it


def analysis_fps_for(video_fps: float, max_fps: float = MAX_ANALYSIS_FPS) -> float:
    """The frame rate to analyse motion at: the video's own, divided by the smallest whole number
    that brings it to `max_fps` or below. Sampling a 25 fps video at 15 or 20 fps repeats some
    frames and skips others, and the jerks read as contacts: a square that bounces twice gave
    10 contacts at 20 fps and exactly 2 at 25 fps (tests/test_vision.py)."""
    if not (np.isfinite(video_fps) and video_fps > 0):
        return max_fps / 2
    return float(video_fps) / max(1, math.ceil(float(video_fps) / max_fps - 1e-9))
DETECT_FPS = 4.0             # YOLO-World runs on this many frames per second
WORK_SIDE = 640              # frames are read at most this many pixels on the long side
MAX_DETECT_SECONDS = MAX_GENERATION_SECONDS


def vocabulary(vocab: str | Sequence[str] | None = None, caption: str | None = None) -> list[str]:
    """Detector classes: the user's (comma-separated string or list) then the caption's noun
    phrases, lowercase, without duplicates."""
    if isinstance(vocab, str):
        vocab = vocab.split(",")
    words = [v.strip().lower() for v in (vocab or []) if v and v.strip()]
    if caption is not None and caption.strip():
        words += noun_phrases(caption)
    return list(dict.fromkeys(words))


def work_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(2, int(round(width * scale))), max(2, int(round(height * scale)))


def _check_range(info, start_s: float, duration_s: float | None) -> tuple[float, float]:
    """Early range checks (before any model loads); read_frames checks the rest."""
    if not (0.0 <= start_s < info.duration_s):
        raise TimeRangeError(
            f"start {start_s:.3f} s is outside the video, which is {info.duration_s:.3f} s long; "
            f"choose a start between 0 and {info.duration_s:.3f} s."
        )
    if duration_s is not None and not duration_s > 0:
        raise TimeRangeError(f"The duration must be positive, got {duration_s} s.")
    if duration_s is None:
        duration_s = info.duration_s - start_s
    if duration_s is not None and duration_s > MAX_DETECT_SECONDS:
        raise TimeRangeError(
            f"Detection runs on at most {MAX_DETECT_SECONDS:.0f} s at a time (the longest stem); "
            f"the range asked is {duration_s:.1f} s: choose --start/--duration within it."
        )
    return float(start_s), float(duration_s)


def detect_tracks(
    video: str | os.PathLike,
    *,
    vocab: str | Sequence[str] | None = None,
    caption: str | None = None,
    start_s: float = 0.0,
    duration_s: float | None = None,
    method: str = "auto",
    weights: str | os.PathLike | None = None,
    detector: YoloWorldDetector | None = None,
    detect_fps: float = DETECT_FPS,
    analysis_fps: float | None = None,
    grabcut: bool = False,
    max_tracks: int = 10,
    conf: float = 0.1,
) -> TrackSet:
    """Tracks of the objects (or moving regions) in [start_s, start_s + duration_s) of `video`.

    method: "yolo-world" (needs weights and a vocabulary: `vocab` and/or the caption's nouns),
    "motion" (no weights), or "auto": YOLO-World when it can run, else motion, with the reason in
    `TrackSet.note` (but a `weights` path that does not exist is an error, not a fallback).
    detector: an already loaded detector (else loaded from `weights`).
    grabcut: tighten each YOLO box to the object with GrabCut. Boxes are in video pixels; every
    track carries its motion curve (absolute times, 0..1) and contact times.
    Raises ModelUnavailableError (YOLO-World asked for but missing), CaptionError (YOLO-World
    with nothing to look for), TimeRangeError / MediaError (bad range or file).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    info = media.probe_video(video)
    start_s, duration_s = _check_range(info, start_s, duration_s)
    words = vocabulary(vocab, caption)

    note = ""
    if weights is not None and detector is None and method != "motion":
        resolve_weights(weights)         # a wrong --weights path is an error, not a fallback
    if method in ("auto", "yolo-world"):
        try:
            if not words:
                raise CaptionError(
                    "YOLO-World needs something to look for: give classes (--vocab 'dog, car door') "
                    "or a caption that names the object."
                )
            if detector is None:
                detector = YoloWorldDetector.from_pretrained(weights, conf=conf)
            if detector.vocabulary != words:
                detector.set_vocabulary(words)
            method = "yolo-world"
        except (ModelUnavailableError, CaptionError) as err:
            if method == "yolo-world":
                raise
            note = f"YOLO-World could not run, so the motion fallback was used. {err}"
            method = "motion"

    max_side = WORK_SIDE if method == "yolo-world" else 320
    size = work_size(info.width, info.height, max_side)
    frames, times_s = media.read_frames(video, fps=analysis_fps or analysis_fps_for(info.fps), size=size,
                                        start_s=start_s, duration_s=duration_s)
    clip = analyse_clip(frames, times_s)
    if method == "yolo-world":
        tracks = _yolo_tracks(detector, frames, times_s, width=info.width, height=info.height,
                              detect_fps=detect_fps, grabcut=grabcut)[:max_tracks]
        note = note or f"YOLO-World looked for: {', '.join(detector.vocabulary)}"
    else:
        tracks = motion_tracks(frames, times_s, width=info.width, height=info.height,
                               max_tracks=max_tracks, clip=clip)
        note = note or "motion fallback, as asked"
    annotate_tracks(tracks, frames, times_s, start_s=start_s, duration_s=duration_s, clip=clip)
    return TrackSet(video=str(video), width=info.width, height=info.height, start_s=start_s,
                    duration_s=duration_s, source=YOLO_SOURCE if method == "yolo-world" else MOTION_SOURCE,
                    tracks=tracks, note=note)


def _yolo_tracks(detector: YoloWorldDetector, frames: np.ndarray, times_s: np.ndarray, *,
                 width: int, height: int, detect_fps: float, grabcut: bool):
    """Detect on about `detect_fps` of the frames, link, rank by mean confidence."""
    if not detect_fps > 0:
        raise ValueError(f"detect_fps must be > 0, got {detect_fps!r}")
    grid = np.arange(times_s[0], times_s[-1] + 1e-9, 1.0 / detect_fps)
    idx = np.unique(np.abs(times_s[None, :] - grid[:, None]).argmin(axis=1))
    h, w = frames.shape[1:3]
    scale = np.array([width / w, height / h] * 2)
    detections = detector.detect(frames[idx])
    for dets in detections:
        for det in dets:
            det.box = det.box * scale
    if grabcut:
        refine_detections(frames[idx], detections, scale=(w / width, h / height))
    tracks = link_detections(detections, times_s[idx], width=width, height=height,
                             source=YOLO_SOURCE, iou_min=0.3, max_center_dist=0.75, max_gap=2,
                             min_frames=1 if len(idx) < 3 else 2)
    return rank_tracks(tracks, key="score")


def region_proposal(
    video: str | os.PathLike,
    region,
    *,
    start_s: float = 0.0,
    duration_s: float | None = None,
    analysis_fps: float | None = None,
) -> MotionProposal:
    """Proposed motion curve and contact times for a drawn region (mask, box in video pixels, or a
    Track) over [start_s, start_s + duration_s) of `video`."""
    info = media.probe_video(video)
    start_s, duration_s = _check_range(info, start_s, duration_s)
    size = work_size(info.width, info.height, 320)
    frames, times_s = media.read_frames(video, fps=analysis_fps or analysis_fps_for(info.fps), size=size,
                                        start_s=start_s, duration_s=duration_s)
    return region_motion(frames, times_s, region, width=info.width, height=info.height,
                         start_s=start_s, duration_s=duration_s)
