"""`generate(...)`: the one function the UI, the CLI and the benchmarks call to make a stem.

It validates the instructions (caption, video range, mask, loudness curve), reads the video at the
backend's frame rate and size, turns boxes / images / tracks into per-frame masks, splits long
selections into overlapping model windows (each with its slice of curve, frames and masks), joins
the windows with level-matched equal-power crossfades, optionally conforms the result to the
curve, and reports what happened in `GenerationResult.metadata`.

With a `reference` sound (a library clip id, an audio file, or an (audio, sr) pair) generation is
audio-to-audio (SDEdit): the reference is fitted to the selection (`library.fit_reference`), each
window starts from its slice of it, noised to `strength`, and is denoised with the stem's caption,
masked video and curve. strength 0 returns the fitted reference itself (conformed to the curve if
asked), strength 1 is plain generation.

Takes made from a reference keep its bandwidth: they run at the reference's rate (capped at
48 kHz; `fullband.output_rate`), the model's 16 kHz band below a crossover near 7 kHz and the
fitted reference above it, gained to follow the model's level (`fullband.compose_full_band`).
Without a reference (or from a 16 kHz one) the take is at the model's rate.
"""

from __future__ import annotations

import collections
import hashlib
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from foley_core import constants, fullband, loudness
from foley_core.backends import Backend, VideoCondition, check_device, get_backend, reference_steps
from foley_core.errors import (
    CurveError,
    FoleyError,
    GenerationCancelled,
    MaskError,
    MediaError,
    TimeRangeError,
)

WINDOW_OVERLAP_S = 1.0
# Window starts are multiples of 0.2 s: a whole number of curve points (10/s), latent frames
# (25/s) and video frames (20/s), so every window's slices line up exactly with the full ones.
WINDOW_GRID_S = 0.2
MAX_CANDIDATES = 16
MAX_STEPS = 200
PEAK_LIMIT = 10 ** (constants.TAKE_PEAK_DBFS / 20)
_MAX_LEVEL_MATCH_DB = 24.0
DEFAULT_REFERENCE_STRENGTH = constants.DEFAULT_REFERENCE_STRENGTH   # re-exported; defined in constants


@dataclass(frozen=True)
class MaskSpec:
    """Where the sounding object is, in video pixels (give exactly one of the fields).

    box: (x0, y0, x1, y1), the same on every frame.
    image: path of a white-on-black image at the video's frame size (applied to every frame).
    track: a moving box: {"times_s": [...], "boxes": [[x0, y0, x1, y1], ...]}, or a track as in
        `launch.py detect`'s JSON ({"frames": [{"time_s": t, "box": [...]}, ...]}), or a
        `foley_core.vision.tracks.Track`. Times are video times in seconds; frames outside the
        track's span get an empty mask.
    """

    box: tuple[float, float, float, float] | None = None
    image: str | os.PathLike | None = None
    track: Any = None

    def __post_init__(self):
        given = [name for name in ("box", "image", "track") if getattr(self, name) is not None]
        if len(given) != 1:
            raise MaskError(f"a MaskSpec needs exactly one of box, image or track; got {given or 'none'}")


@dataclass
class GenerationResult:
    """`audios`: one float32 mono array per candidate at `sr`; `metadata`: see `generate`.

    `sr` is the take's rate: the model's (16 kHz) without a reference, else the references'
    highest rate capped at 48 kHz (never below the model's).
    `reference_audios`: with a reference, the fitted reference each candidate started from
    (float32 at `sr`, before any conform); None without one.
    """

    audios: list[np.ndarray]
    sr: int
    metadata: dict = field(default_factory=dict)
    reference_audios: list[np.ndarray] | None = None


# ------------------------------------------------------------------------------ helpers: checks

def _check_number(name: str, value, *, lo: float | None = None, hi: float | None = None) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise FoleyError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(x) or (lo is not None and x < lo) or (hi is not None and x > hi):
        bounds = f" between {lo:g} and {hi:g}" if lo is not None and hi is not None else (
            f" of at least {lo:g}" if lo is not None else "")
        raise FoleyError(f"{name} must be a finite number{bounds}, got {value!r}")
    return x


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FoleyError(f"{name} must be a whole number, got {value!r}")
    if not lo <= int(value) <= hi:
        raise FoleyError(f"{name} must be between {lo} and {hi}, got {value}")
    return int(value)


def _cancel_fn(cancel) -> Callable[[], bool] | None:
    if cancel is None:
        return None
    if hasattr(cancel, "is_set"):
        return cancel.is_set
    if not callable(cancel):
        raise FoleyError("cancel must be a callable or a threading.Event")
    return cancel


# ------------------------------------------------------------------------------ helpers: curve

def prepare_curve(curve, duration_s: float) -> np.ndarray:
    """A relative curve (0..1) on the curve grid of `duration_s` (n_curve_points points).

    `curve`: an array at CURVE_FPS (one point more or less than expected is tolerated), or a
    drawn (times_s, values) pair resampled with `loudness.resample_curve`.
    """
    n_points = loudness.n_curve_points(duration_s)
    if isinstance(curve, tuple):
        if len(curve) != 2:
            raise CurveError("a drawn curve is a pair (times_s, values)")
        values = loudness.resample_curve(curve[0], curve[1], duration_s=duration_s)
    else:
        try:
            values = np.asarray(curve, dtype=np.float64)
        except (TypeError, ValueError):
            raise CurveError("the loudness curve must be a list of numbers") from None
        if values.ndim != 1 or values.size == 0:
            raise CurveError(f"the loudness curve must be one-dimensional and non-empty, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise CurveError("the loudness curve has NaN or infinite values")
        if np.any(values < 0) or np.any(values > 1 + 1e-6):
            bad = float(values[(values < 0) | (values > 1 + 1e-6)][0])
            raise CurveError(f"the loudness curve has the value {bad:g}; values are relative, "
                             "from 0 (silent) to 1 (the loudest moment)")
        if abs(values.size - n_points) > 1:
            raise CurveError(f"the loudness curve has {values.size} points but a {duration_s:g} s selection "
                             f"needs {n_points} (10 per second); resample it or pass (times_s, values)")
        if values.size < n_points:
            values = np.concatenate([values, values[-1:]])
        values = values[:n_points]
    values = np.clip(values, 0.0, 1.0).astype(np.float32)
    if values.max() <= 0:
        raise CurveError("the loudness curve is silent everywhere; draw at least one point above 0")
    return values


def prepare_onsets(onsets_s, duration_s: float) -> list[float]:
    """Onset times (hits) in selection seconds, sorted; CurveError for anything else."""
    try:
        values = np.asarray(list(onsets_s), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CurveError("onsets must be a list of times in seconds") from None
    if not np.all(np.isfinite(values)):
        raise CurveError("the onsets have NaN or infinite times")
    outside = values[(values < 0) | (values >= duration_s)]
    if outside.size:
        raise CurveError(f"the onset at {outside[0]:g} s is outside the {duration_s:g} s selection; "
                         "onset times count from the start of the selection")
    return sorted(float(v) for v in values)


def video_contact_onsets(video: str, info, mask, *, start_s: float, duration_s: float) -> list[float]:
    """Contact times (selection seconds) that the sounding region's motion shows: the onsets a
    video suggests. The same analysis as the studio's region seed (`vision.seed`): frames at the
    video's own rate (or a whole fraction of it) and at most 320 px, the mask (an array or a
    MaskSpec) at each frame's time, `vision.curves.region_motion`."""
    from foley_core.vision.curves import region_motion
    from foley_core.vision.seed import work_size, analysis_fps_for
    from foley_core.vision import follow

    if isinstance(mask, MaskSpec) and isinstance(mask.track, follow.Track) \
            and mask.track.source == follow.FOLLOW_SOURCE:
        # a followed object has a centre in every frame it was seen: time its contacts from it
        return follow.track_contact_onsets(mask.track, fps=info.fps, start_s=start_s,
                                           duration_s=duration_s)
    size = work_size(info.width, info.height, 320)
    frames, times_s, _ = _read_frames_cached(video, info, fps=analysis_fps_for(info.fps), size=size,
                                             start_s=start_s, duration_s=duration_s)
    region = masks_for_frames(mask, times_s, video_wh=(info.width, info.height), frame_size=size)
    seed = region_motion(frames, times_s, region, start_s=start_s, duration_s=duration_s)
    return [float(t) - start_s for t in seed.events_s if start_s <= t < start_s + duration_s]


def slice_curve(curve: np.ndarray, offset_s: float, length_s: float) -> np.ndarray:
    """The part of a full-selection curve under a window, on the window's own curve grid."""
    fps = constants.CURVE_FPS
    full_t = (np.arange(curve.size) + 0.5) / fps
    n = loudness.n_curve_points(length_s)
    window_t = offset_s + (np.arange(n) + 0.5) / fps
    return np.interp(window_t, full_t, curve).astype(np.float32)


# ------------------------------------------------------------------------------ helpers: windows

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


# ------------------------------------------------------------------------------ helpers: masks

def _mask_array_to_model(mask: np.ndarray, n_frames: int, width: int, height: int,
                         video_wh: tuple[int, int]) -> np.ndarray:
    import cv2

    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise MaskError(f"a mask must be (H, W) or (T, H, W), got shape {arr.shape}")
    vw, vh = video_wh
    if arr.shape[-2:] != (vh, vw):
        raise MaskError(f"the mask is {arr.shape[-1]}x{arr.shape[-2]} pixels but the video is {vw}x{vh}; "
                        "draw the mask at the video's frame size")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise MaskError("the mask has NaN or infinite values")
    if arr.max() > 1.0:
        arr = arr / 255.0 if arr.max() <= 255 else arr / arr.max()
    arr = np.clip(arr, 0.0, 1.0)
    if arr.ndim == 2:
        arr = arr[None]
    # a (T, H, W) mask spans the selection evenly: nearest mask per model frame
    idx = np.minimum((np.arange(n_frames) * arr.shape[0]) // max(n_frames, 1), arr.shape[0] - 1)
    small = np.stack([cv2.resize(m, (width, height), interpolation=cv2.INTER_AREA) for m in arr])
    return np.clip(small[idx], 0.0, 1.0).astype(np.float32)


def _read_mask_image(path, video_wh: tuple[int, int] | None = None) -> np.ndarray:
    from foley_core.images import read_mask_image

    return read_mask_image(path, size_wh=video_wh)


def _track_from_spec(track, video_wh: tuple[int, int]):
    from foley_core.vision.tracks import Track, TrackFrame

    if isinstance(track, Track):
        return track
    if not isinstance(track, dict):
        raise MaskError("a track must be a dict {'times_s': [...], 'boxes': [...]} or a detect track")
    try:
        if "frames" in track:
            times = [float(f["time_s"]) for f in track["frames"]]
            boxes = [list(map(float, f["box"])) for f in track["frames"]]
        else:
            times = [float(t) for t in track["times_s"]]
            boxes = [list(map(float, b)) for b in track["boxes"]]
    except (KeyError, TypeError, ValueError) as err:
        raise MaskError(f"the track is malformed ({err}); expected times_s and boxes [x0, y0, x1, y1]") from None
    if not times or len(times) != len(boxes) or any(len(b) != 4 for b in boxes):
        raise MaskError("the track needs one box [x0, y0, x1, y1] per time, and at least one")
    vw, vh = video_wh
    for b in boxes:
        _check_box(b, vw, vh)
    order = np.argsort(times, kind="stable")
    frames = [TrackFrame(times[i], np.asarray(boxes[i], np.float64)) for i in order]
    return Track(id=str(track.get("id", "track")), label=str(track.get("label", "")), source="user",
                 score=1.0, frames=frames, width=vw, height=vh)


def _check_box(box, width: int, height: int) -> np.ndarray:
    try:
        arr = np.asarray([float(v) for v in box], dtype=np.float64)
    except (TypeError, ValueError):
        raise MaskError(f"a box must be 4 numbers x0,y0,x1,y1 in video pixels, got {box!r}") from None
    if arr.size != 4 or not np.all(np.isfinite(arr)):
        raise MaskError(f"a box must be 4 finite numbers x0,y0,x1,y1 in video pixels, got {box!r}")
    x0, y0, x1, y1 = arr
    if x1 <= x0 or y1 <= y0:
        raise MaskError(f"the box {arr.tolist()} is empty: x1 must exceed x0 and y1 must exceed y0")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise MaskError(f"the box {arr.tolist()} lies outside the {width}x{height} video frame")
    return np.array([max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)])


def _box_mask(box: np.ndarray, width: int, height: int) -> np.ndarray:
    x0, y0, x1, y1 = box
    cols = np.clip(np.minimum(np.arange(width) + 1, x1) - np.maximum(np.arange(width), x0), 0, 1)
    rows = np.clip(np.minimum(np.arange(height) + 1, y1) - np.maximum(np.arange(height), y0), 0, 1)
    return np.outer(rows, cols).astype(np.float32)


def validate_mask(mask, video_wh: tuple[int, int]) -> None:
    """Check a mask against the video's size (before any model is loaded); raises MaskError."""
    vw, vh = video_wh
    if isinstance(mask, MaskSpec):
        if mask.box is not None:
            _check_box(mask.box, vw, vh)
        elif mask.image is not None:
            img = _read_mask_image(mask.image, (vw, vh))    # refuses any other size before decoding
            if not np.any(img > 0):
                raise MaskError("the mask image is black everywhere; paint the sounding object in white")
        else:
            _track_from_spec(mask.track, video_wh)
    elif isinstance(mask, np.ndarray):
        if mask.ndim not in (2, 3) or mask.shape[-2:] != (vh, vw):
            raise MaskError(f"the mask has shape {mask.shape} but the video is {vw}x{vh} "
                            "(expected (H, W) or (T, H, W) at the video's frame size)")
        if not np.all(np.isfinite(mask)) or not np.any(mask > 0):
            raise MaskError("the mask is empty (or has NaN values); mark the sounding object")
    else:
        raise MaskError(f"a mask must be an array or a MaskSpec, got {type(mask).__name__}")


def masks_for_frames(mask, times_s: np.ndarray, *, video_wh: tuple[int, int],
                     frame_size: tuple[int, int]) -> np.ndarray:
    """Per-frame masks float32 (T, h, w) at the model's `frame_size` for frames at `times_s`.

    `mask`: an (H, W) / (T, H, W) array at the video's size `video_wh` (width, height), or a
    MaskSpec (box / image / track in video pixels). Frames are stretched to the model size, so
    masks are scaled the same way.
    """
    width, height = frame_size
    vw, vh = video_wh
    n = len(times_s)
    if isinstance(mask, MaskSpec):
        if mask.box is not None:
            box = _check_box(mask.box, vw, vh) * np.array([width / vw, height / vh] * 2)
            return np.repeat(_box_mask(box, width, height)[None], n, axis=0)
        if mask.image is not None:
            return _mask_array_to_model(_read_mask_image(mask.image, video_wh), n, width, height, video_wh)
        from foley_core.vision.tracks import track_masks

        track = _track_from_spec(mask.track, video_wh)
        out = track_masks(track, np.asarray(times_s, dtype=np.float64), width, height)
        if not np.any(out > 0):
            raise MaskError(f"the track '{track.id}' is not visible between {times_s[0]:.2f} s and "
                            f"{times_s[-1]:.2f} s; choose a range where it is on screen")
        return out.astype(np.float32)
    if isinstance(mask, np.ndarray):
        return _mask_array_to_model(mask, n, width, height, video_wh)
    raise MaskError(f"a mask must be an array or a MaskSpec, got {type(mask).__name__}")


# ------------------------------------------------------------------------------ frame cache

_frame_cache: collections.OrderedDict = collections.OrderedDict()
_frame_lock = threading.Lock()


def _read_frames_cached(path: str, info, *, fps: float, size: tuple[int, int], start_s: float,
                        duration_s: float) -> tuple[np.ndarray, np.ndarray, tuple]:
    from foley_core import media

    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, round(start_s, 6),
           round(duration_s, 6), float(fps), tuple(size))
    with _frame_lock:
        hit = _frame_cache.get(key)
        if hit is not None:
            _frame_cache.move_to_end(key)
            return hit[0], hit[1], key
    frames, times = media.read_frames(path, fps=fps, size=size, start_s=start_s, duration_s=duration_s)
    with _frame_lock:
        _frame_cache[key] = (frames, times)
        while len(_frame_cache) > 4:
            _frame_cache.popitem(last=False)
    return frames, times, key


# ------------------------------------------------------------------------------ reference

def read_reference(reference) -> tuple[np.ndarray, int, Any]:
    """(audio, sr, entry) of a reference given to `generate`; entry is a LibraryEntry or None.

    `reference`: a library clip id or an audio file path (any common format and rate), a
    `library.LoadedReference` or `library.LibraryEntry` (e.g. from a SoundLibrary with the
    user's folders), or an (audio, sr) pair. Raises MediaError for a missing, unreadable,
    empty, NaN or silent sound.
    """
    from foley_core.library import LibraryEntry, LoadedReference, check_reference_audio, load_reference

    if isinstance(reference, LoadedReference):
        audio = check_reference_audio(reference.audio, reference.sr, name=f"The reference '{reference.entry.id}'")
        return audio, int(reference.sr), reference.entry
    if isinstance(reference, LibraryEntry):
        from foley_core.audio_io import read_audio

        audio, sr = read_audio(reference.path)
        return check_reference_audio(audio, sr, name=f"The reference '{reference.id}'"), int(sr), reference
    if isinstance(reference, (str, os.PathLike)):
        if isinstance(reference, str) and not reference.strip():
            raise MediaError("the reference is empty: give a library clip id or an audio file")
        loaded = load_reference(reference)
        return loaded.audio, int(loaded.sr), loaded.entry
    if isinstance(reference, tuple) and len(reference) == 2:
        audio, sr = reference
        if isinstance(sr, bool) or not isinstance(sr, (int, np.integer)):
            raise MediaError(f"a reference given as (audio, sr) needs a whole sample rate in Hz, got {sr!r}")
        return check_reference_audio(np.asarray(audio), int(sr)), int(sr), None
    raise MediaError("a reference must be a library clip id, an audio file path, or an (audio, sr) pair; "
                     f"got {type(reference).__name__}")


def _reference_metadata(entry, *, strength: float, steps_run: int, fit: str, source_s: float,
                        source_sr: int, detail_restored: bool) -> dict:
    meta = {
        "id": None, "path": None, "caption": None, "library_clip": False, "attribution": None,
        "licence": None, "fields": None,
        "strength": strength, "steps_run": steps_run, "fit": fit, "detail_restored": detail_restored,
        "source_duration_s": round(source_s, 6), "source_sr": source_sr,
    }
    if entry is not None:
        meta.update({
            "id": entry.id, "path": str(entry.path), "caption": entry.caption,
            "library_clip": not entry.is_user_sound, "attribution": entry.attribution_text,
            "licence": entry.licence_text,
            "fields": {**entry.reference_fields(), "strength": strength, "fit": fit},
        })
    return meta


@dataclass(frozen=True)
class _CandidateReference:
    """The sound one candidate starts from, and how it is fitted (its kind)."""

    audio: np.ndarray
    sr: int
    entry: Any
    kind: str
    rank: int | None = None      # retrieved clips: search rank and score
    score: float = 0.0


def _retrieve(caption: str, n: int, library, prefer, reference_fit: str) -> list[_CandidateReference]:
    """One library clip per candidate for `caption` (library.retrieve_references), of the kind
    the request asks for first (`library.retrieve.wanted_kind`)."""
    from foley_core.library import fit_kind
    from foley_core.library.retrieve import retrieve_references

    picked = retrieve_references(caption, n=n, library=library, prefer=prefer)
    return [_CandidateReference(r.audio, r.sr, r.entry, fit_kind(r.audio, r.sr, reference_fit), r.rank, r.score)
            for r in picked]


# ------------------------------------------------------------------------------ generate

def _resolve_backend(model, device: str) -> Backend:
    if isinstance(model, str):
        return get_backend(model, device=device)
    if isinstance(model, Backend):
        return model
    raise FoleyError(f"model must be a backend name such as 'embedded', got {model!r}")


def generate(*, caption: str | None, negative_caption: str | None = None, video: str | None = None,
             start_s: float = 0.0, duration_s: float | None = None,
             mask: MaskSpec | np.ndarray | None = None,
             curve: np.ndarray | tuple[Sequence[float], Sequence[float]] | None = None,
             onsets_s: Sequence[float] | None = None, video_onsets: bool = True,
             seed: int = 0, candidates: int = 1, steps: int = 25, text_scale: float = 3.5,
             video_scale: float = 4.5, curve_scale: float | None = None, conform: float | None = None,
             reference: Any = None, strength: float | None = None, reference_fit: str = "auto",
             source: str = "auto", library=None,
             model: str | Backend = "embedded", device: str = "cpu",
             progress: Callable[[int, int], None] | None = None, cancel=None) -> GenerationResult:
    """Generate `candidates` stems of the selection [start_s, start_s + duration_s).

    Args:
        caption: what the sound is (None: no text instruction). An empty caption is an error.
        negative_caption: what to avoid (replaces the null text in the unguided branch).
        video: path of the video; None generates from text and curve alone (then `duration_s`
            is required and `mask` must be None).
        start_s, duration_s: the selection in video seconds; duration None = to the video's end.
        mask: the sounding object: an (H, W) / (T, H, W) array at the video's size or a MaskSpec.
        curve: relative loudness 0..1 at 10 points/s over the selection, or (times_s, values)
            drawn points in selection seconds.
        onsets_s: where sounds start (hits), in selection seconds; [] = no attack anywhere.
            Needs a backend with `supports_onsets`.
        video_onsets: with a video, a mask and no `onsets_s`, place the onsets at the contacts
            that the masked region's motion shows (`vision.curves.region_motion`), so the stem's
            attacks land on the picture's hits. Without a mask nothing says whose contacts count
            (a camera pan, a crowd), so none are placed. Ignored (metadata `onsets_s` None) by
            backends without onset support.
        seed: candidate i uses seed + i (and equals a solo run with that seed).
        candidates, steps, text_scale, video_scale: number of stems, denoising steps and the
            dual classifier-free guidance scales.
        curve_scale: curve guidance (how strictly the model itself follows the curve, before any
            conform); None = the model's measured default; 1 = no curve guidance.
        conform: strength 0..1 of the post-hoc loudness conform; None = 1.0 with a curve.
        reference: a sound to start from (audio-to-audio): a library clip id, an audio file (any
            common format and rate), a LoadedReference / LibraryEntry, or an (audio, sr) pair.
            It is fitted to the selection (trimmed, padded or looped; see `reference_fit`), and
            each window starts from its slice of it. Candidate i's fit uses seed + i.
        strength: 0..1, how far from the reference to go (None = DEFAULT_REFERENCE_STRENGTH):
            the first round(steps * (1 - strength)) denoising steps are skipped. 0 returns the
            fitted reference itself (conformed if asked; no model), 1 is plain generation.
        reference_fit: "auto", "loop" or "oneshot" (see `library.fit_reference`).
        source: where the sound comes from without a `reference` (constants.SOURCES): "auto"
            (default) retrieves the library clips that best match the caption, one distinct
            clip per candidate, when the backend can start from a sound (then `strength`
            applies to them), else runs the model alone; "library" insists on retrieval;
            "model" is the model alone ("from scratch"). With onsets to place, one-shot clips
            are preferred among near matches; with a region that shows no contact, sustained
            ones (`library.retrieve_references`).
        library: the SoundLibrary to retrieve from (default: the bundled one).
        model: backend name ("embedded", "audioldm2") or a Backend instance.
        progress: progress(step, total) after each denoising step actually run (total = steps
            run per window x windows).
        cancel: a callable returning True or a threading.Event; raises GenerationCancelled.

    Returns a GenerationResult; `metadata` holds duration_s, sr (the take's rate), model_sr,
    full_band (content above the model's band, from the reference) and high_band (how that band
    was made; None when there is none), seed/seeds, model (name and
    whether its weights are trained), steps and steps_run, scales, windows, timings_s per stage,
    the curve correlation before/after conform per candidate, which instructions were obeyed,
    and `strength` and `reference` (None without one; else id, path, caption, library_clip,
    attribution, licence, strength, steps_run, fit, detail_restored (the model added back the
    reference's detail its VAE loses), source_duration_s, source_sr, placed_at_onsets and
    `fields`, the keyword arguments of `project.Reference` (None for an (audio, sr) pair)),
    `references` (one such dict per candidate, with `kind` and, for retrieved clips, their
    search `rank` and `score`; `reference` is the first's) and `source` ("reference",
    "library" or "model": what the take was made from).
    """
    t_total = time.perf_counter()
    timings: dict[str, float] = collections.defaultdict(float)

    # ---- arguments
    if caption is not None:
        from foley_core.captions import validate_caption
        caption = validate_caption(caption)
    if negative_caption is not None:
        negative_caption = " ".join(str(negative_caption).split()) or None
        if negative_caption is not None:
            from foley_core.captions import validate_caption
            negative_caption = validate_caption(negative_caption)
    seed = _check_int("the seed", seed, -(2**62), 2**62)
    candidates = _check_int("the number of candidates", candidates, 1, MAX_CANDIDATES)
    steps = _check_int("the number of denoising steps", steps, 1, MAX_STEPS)
    text_scale = _check_number("the text guidance scale", text_scale, lo=0.0, hi=50.0)
    video_scale = _check_number("the video guidance scale", video_scale, lo=0.0, hi=50.0)
    if curve_scale is not None:
        curve_scale = _check_number("the curve guidance scale", curve_scale, lo=0.0, hi=50.0)
    if conform is not None:
        conform = _check_number("the conform strength", conform, lo=0.0, hi=1.0)
    start_s = _check_number("the selection start (seconds)", start_s, lo=0.0)
    if isinstance(model, str):
        device = check_device(device)        # before the video is read, not inside the model load
    cancel_fn = _cancel_fn(cancel)
    if source not in constants.SOURCES:
        raise FoleyError(f"source must be one of {', '.join(constants.SOURCES)}, got {source!r}")
    if reference is not None and source == "model":
        raise FoleyError("a reference sound and 'from scratch' (source 'model') contradict each other; "
                         "leave one out")
    if source == "library" and reference is None and caption is None:
        raise FoleyError("picking library sounds needs a caption to search for")
    if reference is None and (source == "model" or caption is None):
        if strength is not None:
            raise FoleyError("strength sets how far to move from a reference sound: give a reference "
                             "(a library clip id or an audio file) too, or leave strength out")
    else:
        if strength is None:
            strength = DEFAULT_REFERENCE_STRENGTH
        try:
            strength = float(strength)
        except (TypeError, ValueError):
            strength = float("nan")
        if not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
            raise FoleyError(f"the reference strength must be between 0 (keep the reference) and 1 "
                             f"(ignore it), got {strength if math.isfinite(strength) else 'not a number'}")

    # ---- range
    info = None
    if video is not None:
        from foley_core import media

        info = media.probe_video(video)
        if start_s >= info.duration_s:
            raise TimeRangeError(f"start {start_s:.3f} s is outside the video ({info.duration_s:.3f} s long)")
        if duration_s is None:
            duration_s = info.duration_s - start_s
        duration_s = _check_number("the selection length (seconds)", duration_s, lo=0.0)
        if start_s + duration_s > info.duration_s + 1.0 / max(info.fps, 1.0) + 1e-6:
            raise TimeRangeError(f"the range {start_s:.3f}-{start_s + duration_s:.3f} s goes past the end "
                                 f"of the video ({info.duration_s:.3f} s long)")
    else:
        if duration_s is None:
            raise TimeRangeError("without a video, give the duration of the sound in seconds")
        if mask is not None:
            raise MaskError("a mask needs a video: give the video the mask was drawn on")
        duration_s = _check_number("the selection length (seconds)", duration_s, lo=0.0)
    if duration_s < 0.1:
        raise TimeRangeError(f"the selection is {duration_s:.3f} s long; select at least 0.1 s")
    if duration_s > constants.MAX_GENERATION_SECONDS:
        raise TimeRangeError(f"the selection is {duration_s:.1f} s long; the limit is "
                             f"{constants.MAX_GENERATION_SECONDS:g} s per generation")

    if mask is not None:
        validate_mask(mask, (info.width, info.height))
    curve_full = None if curve is None else prepare_curve(curve, duration_s)
    if onsets_s is not None:
        onsets_s = prepare_onsets(onsets_s, duration_s)
    if conform is None:
        conform = 1.0 if curve_full is not None else 0.0
    elif conform > 0 and curve_full is None:
        raise CurveError("conform needs a loudness curve to conform to")

    given_ref = None
    if reference is not None:
        t0 = time.perf_counter()
        given_ref = read_reference(reference)
        timings["reference"] += time.perf_counter() - t0

    # ---- backend
    t0 = time.perf_counter()
    backend = _resolve_backend(model, device)
    timings["load_model"] += time.perf_counter() - t0
    sr = int(backend.sr)
    supports_onsets = bool(getattr(backend, "supports_onsets", False))
    retrieving = reference is None and caption is not None and (
        source == "library" or (source == "auto" and bool(getattr(backend, "supports_reference", False))))
    if reference is None and not retrieving:
        strength = None         # "auto" on a backend that cannot start from a sound: the model alone
    with_reference = given_ref is not None or retrieving
    steps_run = reference_steps(steps, strength)[1] if with_reference else steps
    if onsets_s is not None and not supports_onsets and not with_reference:
        raise FoleyError(f"the {backend.name} model cannot place sounds at given onsets (hits); "
                         "leave the onsets out, or start from a reference sound, which is placed at them")
    if with_reference and steps_run > 0 and not getattr(backend, "supports_reference", False):
        raise FoleyError(f"reference-guided generation is not supported by the {backend.name} backend yet; "
                         "use the embedded model, or strength 0 to use the reference as it is")
    seeds = [seed + i for i in range(candidates)]
    n_samples = int(round(duration_s * sr))
    use_model = steps_run > 0
    # onsets serve the model (its onset module) and a one-shot reference (placed at each)
    onsets_source = None if onsets_s is None else "given"
    if onsets_s is None and video_onsets and info is not None and mask is not None \
            and ((use_model and supports_onsets) or with_reference):
        t0 = time.perf_counter()
        onsets_s = video_contact_onsets(video, info, mask, start_s=start_s, duration_s=duration_s)
        onsets_source = "video"
        timings["video_onsets"] += time.perf_counter() - t0
    # ---- references: the given one for every candidate, or one retrieved clip per candidate
    refs: list[_CandidateReference] = []
    from foley_core.library.retrieve import wanted_kind

    wanted = wanted_kind(onsets_s, curve_full)
    if retrieving:
        t0 = time.perf_counter()
        refs = _retrieve(caption, candidates, library, wanted, reference_fit)
        timings["retrieve"] += time.perf_counter() - t0
    elif given_ref is not None:
        from foley_core.library import fit_kind

        audio_in, sr_in, entry_in = given_ref
        # decided once, so the metadata says what the fit did (and candidates share it)
        refs = [_CandidateReference(audio_in, sr_in, entry_in, fit_kind(audio_in, sr_in, reference_fit))] * candidates
    ref_full = None          # the fitted references at the model's rate: what the model starts from
    ref_out = None           # the same fits at the take's rate (out_sr)
    ref_placed = False
    # The take keeps its references' bandwidth: it runs at their rate (capped at 48 kHz), the
    # model's band below the crossover and the reference's above it (`fullband`).
    out_sr = fullband.output_rate(sr, [r.sr for r in refs])
    n_out = int(round(duration_s * out_sr))
    if refs:
        from foley_core.library import fit_reference

        t0 = time.perf_counter()
        ref_placed = bool(onsets_s) and any(r.kind == "oneshot" for r in refs)
        # Fitted once, at the take's rate; the model's input is that fit resampled, so placement,
        # trims and loops are the same in both bands.
        # a sustained request repeats a short one-shot rather than pad it with silence, unless
        # the user asked for padding (reference_fit "oneshot")
        sustain = wanted == "sustained" and reference_fit == "auto"
        ref_out = np.stack([fit_reference(r.audio, r.sr, duration_s=duration_s, target_sr=out_sr,
                                          mode="oneshot" if r.kind == "oneshot" else "loop", seed=s,
                                          onsets_s=onsets_s, sustain=sustain) for r, s in zip(refs, seeds)])
        if ref_out.shape[1] != n_out:       # fit_reference promises round(duration_s * target_sr)
            raise FoleyError(f"the fitted reference has {ref_out.shape[1]} samples instead of {n_out}")
        ref_full = ref_out if out_sr == sr else np.stack(
            [fullband.to_model_rate(r, out_sr, sr, n_samples) for r in ref_out])
        timings["reference"] += time.perf_counter() - t0
    model_onsets = use_model and supports_onsets
    if not (model_onsets or ref_placed):
        onsets_s = onsets_source = None                 # nothing used them

    # ---- video frames and masks for the whole selection
    frames = masks = None
    frames_key = None
    mask_hash = None
    if info is not None and use_model:
        t0 = time.perf_counter()
        frames, frame_times, frames_key = _read_frames_cached(
            video, info, fps=backend.video_fps, size=tuple(backend.frame_size),
            start_s=start_s, duration_s=duration_s)
        timings["read_video"] += time.perf_counter() - t0
        if mask is not None:
            t0 = time.perf_counter()
            masks = masks_for_frames(mask, frame_times, video_wh=(info.width, info.height),
                                     frame_size=tuple(backend.frame_size))
            mask_hash = hashlib.sha1(np.ascontiguousarray(masks).tobytes()).hexdigest()
            timings["masks"] += time.perf_counter() - t0

    # ---- windows (none at strength 0: the output is the fitted reference)
    if cancel_fn is not None and cancel_fn():
        raise GenerationCancelled("generation cancelled")
    windows = plan_windows(duration_s, float(backend.window_s)) if use_model else []
    n_windows = len(windows)
    total_steps = steps_run * n_windows
    parts = []
    for w, (offset_s, length_s) in enumerate(windows):
        window_seeds = seeds if w == 0 else [s + 1_000_003 * w for s in seeds]
        window_curve = None
        if curve_full is not None:
            window_curve = loudness.normalize_curve(slice_curve(curve_full, offset_s, length_s))
        condition = None
        if frames is not None:
            fps = float(backend.video_fps)
            i0 = int(round(offset_s * fps))
            i1 = min(len(frames), int(round((offset_s + length_s) * fps)))
            if i1 <= i0:
                i1 = min(len(frames), i0 + 1)
                i0 = i1 - 1
            key = None if frames_key is None else (*frames_key, offset_s, length_s, mask_hash)
            condition = VideoCondition(frames=frames[i0:i1], masks=None if masks is None else masks[i0:i1],
                                       fps=fps, cache_key=key)

        def window_progress(step: int, n: int, _w=w) -> None:
            if progress is not None:
                progress(_w * steps_run + min(step, steps_run), total_steps)

        window_kwargs = {} if curve_scale is None else {"curve_scale": curve_scale}
        if onsets_s is not None and model_onsets:
            window_kwargs["onsets_s"] = [t - offset_s for t in onsets_s if offset_s <= t < offset_s + length_s]
        if ref_full is not None:
            i0 = int(round(offset_s * sr))
            n_window = int(round(length_s * sr))
            window_ref = ref_full[:, i0:i0 + n_window]
            if window_ref.shape[1] < n_window:       # rounding at the selection's end
                window_ref = np.pad(window_ref, ((0, 0), (0, n_window - window_ref.shape[1])))
            window_kwargs.update(reference=window_ref, strength=strength)
        out = backend.generate_window(
            caption=caption, negative_caption=negative_caption, duration_s=length_s, video=condition,
            curve=window_curve, seeds=window_seeds, steps=steps, text_scale=text_scale,
            video_scale=video_scale, progress=window_progress, cancel=cancel_fn, **window_kwargs)
        if out.sr != sr:
            raise FoleyError(f"the {backend.name} backend returned {out.sr} Hz audio instead of {sr} Hz")
        for stage, seconds in out.timings_s.items():
            timings[stage] += seconds
        parts.append((int(round(offset_s * sr)), np.asarray(out.audios, dtype=np.float32)))

    # ---- join, level, conform
    t0 = time.perf_counter()
    high_band = None
    if parts:
        audio, join_gains = join_windows(parts, n_samples, sr)
        if not np.all(np.isfinite(audio)):
            raise FoleyError(f"the {backend.name} model produced invalid samples (NaN); try another seed")
        if out_sr != sr:
            # after the join, so the high band follows the joins' level match too
            t1 = time.perf_counter()
            audio = np.stack([fullband.compose_full_band(a, sr, r_out, out_sr, r_model)
                              for a, r_out, r_model in zip(audio, ref_out, ref_full)])
            high_band = fullband.describe_high_band()
            timings["full_band"] += time.perf_counter() - t1
    else:
        audio, join_gains = ref_out.copy(), []
        high_band = "the fitted reference itself (strength 0: no model, no vocoder)" if out_sr > sr else None
    # Headroom before conform: conform never raises a peak above its input's, so the take ends
    # at most at TAKE_PEAK_DBFS.
    peak_scaled_db = []
    for k in range(candidates):
        peak = float(np.max(np.abs(audio[k]))) if audio.shape[1] else 0.0
        if peak > PEAK_LIMIT:
            audio[k] *= PEAK_LIMIT / peak
            peak_scaled_db.append(round(20 * math.log10(PEAK_LIMIT / peak), 2))
        else:
            peak_scaled_db.append(0.0)
    timings["join"] += time.perf_counter() - t0

    r_before: list[float | None] = [None] * candidates
    r_after: list[float | None] = [None] * candidates
    if curve_full is not None:
        t0 = time.perf_counter()
        for k in range(candidates):
            r_before[k] = round(loudness.curve_correlation(audio[k], out_sr, curve_full), 4)
            if conform > 0:
                audio[k] = loudness.conform(audio[k], out_sr, curve_full, strength=conform)
            r_after[k] = round(loudness.curve_correlation(audio[k], out_sr, curve_full), 4)
        timings["conform"] += time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_total

    # ---- metadata
    detail_restored = steps_run > 0 and bool(getattr(backend, "reference_detail", False))
    references_meta = [
        {**_reference_metadata(r.entry, strength=strength, steps_run=steps_run, fit=reference_fit,
                               source_s=r.audio.shape[0] / r.sr, source_sr=r.sr, detail_restored=detail_restored),
         "kind": r.kind, "placed_at_onsets": bool(onsets_s) and r.kind == "oneshot",
         "full_band": min(r.sr, out_sr) > sr,
         **({} if r.rank is None else {"rank": r.rank, "score": round(r.score, 4)})}
        for r in refs]
    given = []
    if caption is not None:
        given.append("text")
    if negative_caption is not None:
        given.append("negative")
    if video is not None:
        given.append("video")
    if mask is not None:
        given.append("mask")
    if curve_full is not None:
        given.append("curve")
    if onsets_s is not None:
        given.append("onsets")
    if ref_full is not None:
        given.append("reference")
    # The SDEdit start is the sampler's doing, but only trained weights keep the reference's
    # character through VAE and UNet. At strength 0 no model runs: the reference is the output.
    model_obeys: set[str] = set()
    if use_model:
        model_obeys = set(backend.obeys) | ({"reference"} if backend.trained else set())
    obeyed = [g for g in given if g in model_obeys]
    enforced = ["curve (conform)"] if curve_full is not None and conform > 0 else []
    if ref_full is not None and not use_model:
        enforced.insert(0, "reference (strength 0: the fitted reference itself)")
    if ref_placed:
        enforced.append("onsets (the reference placed at each)")
    metadata = {
        "duration_s": round(duration_s, 6),
        "sr": out_sr,
        "model_sr": sr,
        # content above the model's band: from a reference at more than the model's rate
        "full_band": out_sr > sr and any(r.sr > sr for r in refs),
        "high_band": high_band,
        "seed": seed,
        "seeds": seeds,
        "candidates": candidates,
        "model": backend.description,
        "model_name": backend.name,
        "trained": bool(backend.trained),
        "steps": steps,
        "steps_run": steps_run,
        "strength": strength if ref_full is not None else None,
        "reference": references_meta[0] if references_meta else None,
        "references": references_meta or None,
        "source": "library" if retrieving else "reference" if given_ref is not None else "model",
        "text_scale": text_scale,
        "video_scale": video_scale,
        "curve_scale": (None if curve is None else
                        curve_scale if curve_scale is not None else getattr(backend, "curve_scale", 1.0)),
        "caption": caption,
        "negative_caption": negative_caption,
        "video": None if video is None else str(video),
        "start_s": start_s,
        "windows": [{"start_s": round(start_s + o, 6), "duration_s": l} for o, l in windows],
        "window_join_gains_db": [[round(g, 2) for g in w] for w in join_gains[1:]],
        "peak_scaled_db": peak_scaled_db,
        "conform": conform,
        "curve_r_before": r_before if curve_full is not None else None,
        "curve_r_after": r_after if curve_full is not None else None,
        "onsets_s": None if onsets_s is None else [round(float(t), 4) for t in onsets_s],
        "onsets_source": onsets_source,
        "instructions": {
            "given": given,
            "obeyed_by_model": obeyed,
            "ignored_by_model": [g for g in given if g not in model_obeys
                                 and not (g == "reference" and not use_model)
                                 and not (g == "onsets" and ref_placed and not model_onsets)],
            "enforced_after": enforced,
        },
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }
    return GenerationResult(audios=[a.astype(np.float32) for a in audio], sr=out_sr, metadata=metadata,
                            reference_audios=None if ref_out is None else list(ref_out))
