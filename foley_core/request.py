"""A generation request and its report: the one typed home of what makes a stem.

`GenerationRequest` holds every instruction (caption, selection, region, curve, onsets,
reference, seeds, steps, guidance scales, model). Its construction is the one place limits
and defaults are checked: the studio, the CLI, batch and the evaluation harness build one and
`generate.generate` runs it; checks that need the video or the model (a box inside the frame,
a backend that can start from a sound) happen in generate's first stage.

`GenerationReport` is what generate() says it did (rates, seeds, windows, timings, which
instructions the model obeyed, the references it started from). `to_json()` is the form the
CLI's report, batch and the studio's metadata show.

`Region` is where the sounding object is, in video pixels: exactly one of a box, an image
(a file path, or a (H, W) array in 0..1) or a moving box (a track), or none (the whole frame).

A project stores each stem's request as it made the stem (`Stem.settings`): `to_json` /
`from_json` are its form in project.json, with the request's own field names. A stored
request has no video (the project's video is the one it was made from), one candidate, its
curve as a `CurveSpec`, its reference as the `Reference` record of the sound used and its
model as a `ModelSpec` (name and weights).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from foley_core import constants
from foley_core.errors import CurveError, FoleyError, MaskError, TimeRangeError

REGION_KINDS = ("none", "box", "image", "track")


# ------------------------------------------------------------------------------ array-aware equality

def readonly(array: np.ndarray, dtype=np.float32) -> np.ndarray:
    """A read-only C-contiguous copy (or the array itself if it already is one)."""
    if isinstance(array, np.ndarray) and array.dtype == dtype and not array.flags.writeable \
            and array.flags.c_contiguous:
        return array
    out = np.array(array, dtype=dtype, copy=True, order="C")
    out.flags.writeable = False
    return out


def values_equal(a: Any, b: Any) -> bool:
    """Equality that compares numpy arrays by value (dtype and shape included)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.array_equal(a, b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    return a == b


class ArrayEq:
    """Dataclass mixin: field-by-field equality with numpy arrays compared by value."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(values_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    __hash__ = None  # holds arrays


# ------------------------------------------------------------------------------ number checks

def check_number(value: Any, label: str, lo: float, hi: float, error: type = FoleyError, unit: str = "") -> float:
    """`value` as a float within [lo, hi]; else `error` naming the setting as the user knows it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise error(f"{label} must be a number; got {value!r:.40}")
    number = float(value)
    if not math.isfinite(number):
        raise error(f"{label} must be a finite number; got {number!r}")
    if not lo <= number <= hi:
        raise error(f"{label} must be between {lo:g} and {hi:g}{unit}; got {number:g}")
    return number


def check_whole(value: Any, label: str, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise FoleyError(f"{label} must be a whole number; got {value!r:.40}")
    if not lo <= int(value) <= hi:
        raise FoleyError(f"{label} must be a whole number from {lo} to {hi}; got {int(value)}")
    return int(value)


def check_selection_length(duration_s: Any) -> float:
    """A selection length in seconds within MIN_SELECTION_S..MAX_GENERATION_SECONDS."""
    duration_s = check_selection_limit(duration_s)
    if duration_s < constants.MIN_SELECTION_S:
        raise TimeRangeError(f"the selection is {duration_s:.3f} s long; select at least "
                             f"{constants.MIN_SELECTION_S:g} s")
    return duration_s


def check_selection_limit(duration_s: Any) -> float:
    """A selection length in seconds from 0 to MAX_GENERATION_SECONDS (a request checks this
    much when built; a stored one may have recorded a selection shorter than a new one needs)."""
    duration_s = check_number(duration_s, "the selection length", 0.0, math.inf, TimeRangeError, " s")
    if duration_s > constants.MAX_GENERATION_SECONDS:
        raise TimeRangeError(f"the selection is {duration_s:.1f} s long; it must be at most "
                             f"{constants.MAX_GENERATION_SECONDS:g} s, the limit per generation")
    return duration_s


def check_box(box: Iterable[float], what: str) -> tuple[float, float, float, float]:
    """Four finite numbers x0 < x1, y0 < y1 (video pixels); the frame is checked later."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise MaskError(f"{what} must be four numbers (x0, y0, x1, y1); got {box!r}") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)) or x1 <= x0 or y1 <= y0:
        raise MaskError(f"{what} ({x0}, {y0}, {x1}, {y1}) is empty or inverted; x1 > x0 and y1 > y0 are needed")
    return x0, y0, x1, y1


# ------------------------------------------------------------------------------ region

@dataclass(frozen=True, eq=False)
class Region(ArrayEq):
    """Where the sounding object is, in video pixels: give at most one of box, image, track.

    box: (x0, y0, x1, y1), the same on every frame.
    image: a white-on-black image at the video's frame size, as a file path or a float (H, W)
        array in 0..1 (the project stores it as an 8-bit PNG: it comes back quantised to 1/255).
    track: a moving box, either as the project stores it: `track_boxes` = ((time_s, x0, y0,
        x1, y1), ...) with `track_id`, optionally `track_masks` (one run-length mask per box,
        {"size": [h, w], "counts": [...]} as `vision.tracks` encodes them, all on one grid,
        that the box places on each frame: the shape of a followed painted mask) and
        `track_source` (what found it: a followed object's contacts are timed from its
        centre); or `track` as given by a caller: a
        `vision.tracks.Track`, {"times_s": [...], "boxes": [[x0, y0, x1, y1], ...]}, or a track
        of `launch.py detect`'s JSON ({"frames": [{"time_s": t, "box": [...]}, ...]}). Frames
        outside the track's span get an empty mask.
    None of them (kind "none"): the whole frame. `kind` follows from what is given.
    """

    kind: str = ""
    box: tuple[float, float, float, float] | None = None
    image: str | os.PathLike | np.ndarray | None = None
    track: Any = None
    track_id: str | None = None
    track_boxes: tuple[tuple[float, float, float, float, float], ...] | None = None
    track_masks: tuple[dict, ...] | None = None
    track_source: str | None = None

    def __post_init__(self) -> None:
        given = [name for name, value in (("box", self.box), ("image", self.image),
                                          ("track", self.track if self.track is not None else self.track_boxes))
                 if value is not None]
        if self.kind and self.kind not in REGION_KINDS:
            raise MaskError(f"unknown mask kind {self.kind!r}; use one of {', '.join(REGION_KINDS)}")
        if len(given) > 1:
            raise MaskError(f"a region needs exactly one of box, image or track; got {', '.join(given)}")
        if self.track is not None and (self.track_boxes is not None or self.track_masks is not None
                                       or self.track_source is not None):
            raise MaskError("a track region takes a track or its boxes (and masks), not both")
        kind = self.kind or (given[0] if given else "none")
        if self.kind == "box" and self.box is None:
            raise MaskError("a 'box' mask needs box coordinates (x0, y0, x1, y1)")
        if self.kind == "image" and self.image is None:
            raise MaskError("an 'image' mask needs the mask image")
        if self.kind == "track" and self.track is None and (not self.track_id or not self.track_boxes):
            raise MaskError("a 'track' mask needs a track id and at least one per-frame box")
        if given and kind != given[0]:
            raise MaskError(f"a '{kind}' region was given a {given[0]}")
        set_ = object.__setattr__
        set_(self, "kind", kind)
        if self.box is not None:
            set_(self, "box", check_box(self.box, "the mask box"))
        if isinstance(self.image, np.ndarray) or (self.image is not None
                                                  and not isinstance(self.image, (str, os.PathLike))):
            image = np.asarray(self.image)
            if image.ndim != 2 or image.size == 0:
                raise MaskError(f"a mask image must be a 2-D (height, width) array; got shape {image.shape}")
            image = image.astype(np.float32)
            if not np.all(np.isfinite(image)) or image.min() < 0 or image.max() > 1:
                raise MaskError("a mask image must hold values between 0 and 1")
            set_(self, "image", readonly(image))
        if self.track_boxes is not None:
            rows = []
            for k, row in enumerate(self.track_boxes):
                if len(row) != 5:
                    raise MaskError(f"track box {k} must be (time_s, x0, y0, x1, y1); got {row!r}")
                rows.append((float(row[0]), *check_box(row[1:], f"track box {k}")))
            set_(self, "track_boxes", tuple(rows))
        if self.track_masks is not None:
            set_(self, "track_masks", _check_track_masks(self.track_masks, self.track_boxes))
        if self.track_source is not None:
            if self.track_boxes is None or not isinstance(self.track_source, str) or not self.track_source:
                raise MaskError(f"a track's source is a name such as 'motion' and goes with its boxes; "
                                f"got {self.track_source!r:.40}")
        if self.track_id is not None:
            if isinstance(self.track_id, bool) or not isinstance(self.track_id, (str, int, np.integer)):
                raise MaskError(f"a track id must be text such as 't0'; got {self.track_id!r}")
            # projects saved before track ids were text stored the number alone
            set_(self, "track_id", str(self.track_id))

    @property
    def whole_frame(self) -> bool:
        return self.kind == "none"

    def track_spec(self) -> Any:
        """The track in a form `vision.regions.track_from_spec` reads (None if not a track)."""
        if self.track is not None:
            return self.track
        if self.track_boxes is None:
            return None
        spec = {"id": self.track_id or "track", "times_s": [r[0] for r in self.track_boxes],
                "boxes": [list(r[1:]) for r in self.track_boxes]}
        if self.track_masks is not None:
            spec["masks"] = list(self.track_masks)
        if self.track_source is not None:
            spec["source"] = self.track_source
        return spec


def _check_track_masks(masks: Any, boxes: tuple | None) -> tuple[dict, ...]:
    """`masks` as one run-length mask per track box, all on one grid (MaskError naming the
    first bad one): each {"size": [h, w], "counts": [...]} with runs covering h x w exactly."""
    if boxes is None:
        raise MaskError("a track's masks go with its per-frame boxes (track_boxes)")
    masks = tuple(masks)
    if len(masks) != len(boxes):
        raise MaskError(f"a track has {len(boxes)} boxes but {len(masks)} masks; it needs one mask per box")
    out, grid = [], None
    for k, rle in enumerate(masks):
        try:
            h, w = (int(v) for v in rle["size"])
            counts = [int(c) for c in rle["counts"]]
        except (KeyError, TypeError, ValueError):
            raise MaskError(f"track mask {k} must be a run-length mask {{'size': [h, w], 'counts': [...]}}") from None
        if h < 1 or w < 1 or min(counts, default=0) < 0 or sum(counts) != h * w:
            raise MaskError(f"track mask {k} has runs that do not cover its {w}x{h} grid")
        if grid is not None and (h, w) != grid:
            raise MaskError(f"track mask {k} is {w}x{h} but the first is {grid[1]}x{grid[0]}; "
                            "a track's masks share one grid")
        grid = (h, w)
        out.append({"size": [h, w], "counts": counts})
    return tuple(out)


# ------------------------------------------------------------------------------ stored conditions

@dataclass(eq=False)
class CurveSpec(ArrayEq):
    """A drawn loudness curve: `values` (relative, 0..1) at `times_s` (increasing, seconds)."""

    times_s: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        times = np.asarray(self.times_s, dtype=np.float32)
        values = np.asarray(self.values, dtype=np.float32)
        if times.ndim != 1 or values.shape != times.shape or times.size < 2:
            raise CurveError(f"a loudness curve needs matching 1-D times and values with 2 or more points; "
                             f"got shapes {times.shape} and {values.shape}")
        if not (np.all(np.isfinite(times)) and np.all(np.isfinite(values))):
            raise CurveError("the loudness curve contains NaN or infinite values; redraw it")
        if np.any(np.diff(times) <= 0):
            raise CurveError("the loudness curve's times must increase strictly")
        if values.min() < 0 or values.max() > 1:
            raise CurveError(f"loudness curve values must be between 0 and 1; got {values.min():.3g}..{values.max():.3g}")
        self.times_s = readonly(times)
        self.values = readonly(values)

    @classmethod
    def from_values(cls, values: np.ndarray, fps: float = constants.CURVE_FPS, start_s: float = 0.0) -> "CurveSpec":
        """A curve sampled at `fps` points per second (the TLM's CURVE_FPS by default)."""
        values = np.asarray(values, dtype=np.float32)
        return cls(times_s=start_s + np.arange(values.shape[0], dtype=np.float32) / fps, values=values)


@dataclass(eq=False)
class Reference(ArrayEq):
    """The sound a stem was made from (audio-to-audio), with its licence and attribution.

    `path` is the clip's path inside its library for a library clip, and an absolute file path for
    the user's own sound (saving a project copies that file into the project folder).
    """

    clip_id: str
    path: str = ""
    caption: str = ""
    licence: str = ""
    attribution: str = ""
    strength: float | None = None   # SDEdit strength it was generated with (0 = the reference itself)
    fit: str = "auto"               # how it was fitted to the window: auto | loop | oneshot

    def __post_init__(self) -> None:
        if self.strength is not None:
            self.strength = check_number(self.strength, "the reference strength", 0.0, 1.0)


@dataclass(eq=False)
class ModelSpec(ArrayEq):
    """Which model made a stem: backend name ('embedded', 'audioldm2', ...) and weights id."""

    backend: str = "embedded"
    weights_id: str = ""


def check_onsets(onsets_s: Any, duration_s: float) -> list[float]:
    """Onset times (hits) in selection seconds within [0, duration_s), in the order given;
    CurveError naming the first one outside."""
    try:
        values = np.asarray(list(onsets_s), dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CurveError("onsets must be a list of times in seconds") from None
    if not np.all(np.isfinite(values)):
        raise CurveError("the onsets have NaN or infinite times")
    outside = values[(values < 0) | (values >= duration_s)]
    if outside.size:
        raise CurveError(f"the onset at {outside[0]:g} s is outside the {duration_s:g} s selection; "
                         "onsets count from the start of the selection")
    return [float(v) for v in values]


# ------------------------------------------------------------------------------ request

@dataclass(frozen=True, eq=False)
class GenerationRequest(ArrayEq):
    """Everything that makes a stem. Built once, checked once (see the module docstring).

    caption: what the sound is (None: no text instruction). An empty caption is an error.
    negative_caption: what to avoid (replaces the null text in the unguided branch).
    video: the video's path; None generates from text and curve alone (then generate() needs
        `duration_s` and no region). A stem's stored request has None: the project's video.
    start_s, duration_s: the selection in video seconds; duration None = to the video's end.
    region: the sounding object: a `Region`, or an (H, W) / (T, H, W) mask array at the
        video's size (values 0..1 or 0..255; a (T, H, W) one spans the selection evenly).
    curve: relative loudness 0..1 at 10 points/s over the selection, or (times_s, values)
        drawn points in selection seconds, or a `CurveSpec` of them.
    onsets_s: where sounds start (hits), in selection seconds; [] = no attack anywhere.
    video_onsets: with a video, a region and no `onsets_s`, place the onsets at the contacts
        the region's motion shows.
    reference: a sound to start from (library clip id, audio file, LoadedReference /
        LibraryEntry, or an (audio, sr) pair); `strength` 0..1 how far from it to go (None:
        DEFAULT_REFERENCE_STRENGTH, see `resolved_strength`); `reference_fit`:
        auto, loop or oneshot.
    source: without a reference, where the sound comes from (constants.SOURCES).
    seed: candidate i uses seed + i (0..MAX_SEED). candidates, steps, text_scale,
        video_scale: number of stems, denoising steps, dual guidance scales.
    curve_scale: curve guidance (None = the model's own value; 1 = none).
    conform: strength 0..1 of the post-hoc loudness conform; None = 1 with a curve, else 0.
    model: a backend name ("embedded", "audioldm2") or a Backend instance.
    take, regenerate_span_s: regenerate only a span of an existing take. `take` is the
        (audio, sr) pair to keep (mono float, any rate; it covers the selection, so
        `duration_s` defaults to its length); `regenerate_span_s` = (start_s, end_s) in
        selection seconds, at least MIN_SPAN_S long. Give both or neither.
    """

    caption: str | None = None
    negative_caption: str | None = None
    video: str | os.PathLike | None = None
    start_s: float = 0.0
    duration_s: float | None = None
    region: Region | np.ndarray | None = None
    curve: Any = None
    onsets_s: Sequence[float] | None = None
    video_onsets: bool = True
    reference: Any = None
    strength: float | None = None
    reference_fit: str = "auto"
    source: str = "auto"
    seed: int = 0
    candidates: int = 1
    steps: int = constants.DEFAULT_STEPS
    text_scale: float = constants.DEFAULT_TEXT_SCALE
    video_scale: float = constants.DEFAULT_VIDEO_SCALE
    curve_scale: float | None = None
    conform: float | None = None
    model: Any = "embedded"
    take: tuple[np.ndarray, int] | None = None
    regenerate_span_s: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        from foley_core.captions import validate_caption

        set_ = object.__setattr__
        if self.caption is not None:
            set_(self, "caption", validate_caption(self.caption))
        if self.negative_caption is not None:
            negative = " ".join(str(self.negative_caption).split()) or None
            set_(self, "negative_caption", None if negative is None else validate_caption(negative))
        self._check_numbers()
        set_(self, "video_onsets", bool(self.video_onsets))
        if isinstance(self.region, Region) and self.region.whole_frame:
            set_(self, "region", None)
        if self.take is not None or self.regenerate_span_s is not None:
            self._check_span()
        if self.onsets_s is not None:
            set_(self, "onsets_s", check_onsets(self.onsets_s, self.duration_s or constants.MAX_GENERATION_SECONDS))
        if self.reference_fit not in constants.REFERENCE_FITS:
            raise FoleyError(f"unknown reference fit mode {self.reference_fit!r}; use one of "
                             f"{', '.join(constants.REFERENCE_FITS)}")
        self._check_source()

    def _check_numbers(self) -> None:
        """Every number within the limits the studio, the CLI and a project file share."""
        set_ = object.__setattr__
        set_(self, "seed", check_whole(self.seed, "the seed", 0, constants.MAX_SEED))
        set_(self, "candidates", check_whole(self.candidates, "the number of candidates", 1,
                                             constants.MAX_CANDIDATES))
        set_(self, "steps", check_whole(self.steps, "the number of steps", 1, constants.MAX_STEPS))
        hi = constants.MAX_GUIDANCE_SCALE
        set_(self, "text_scale", check_number(self.text_scale, "the text guidance", 0.0, hi))
        set_(self, "video_scale", check_number(self.video_scale, "the video guidance", 0.0, hi))
        if self.curve_scale is not None:
            set_(self, "curve_scale", _curve_scale(self.curve_scale))
        if self.conform is not None:
            set_(self, "conform", check_number(self.conform, "the conform strength", 0.0, 1.0))
        set_(self, "start_s", check_number(self.start_s, "the selection start", 0.0, constants.MAX_VIDEO_SECONDS,
                                           TimeRangeError, " s"))
        if self.duration_s is not None:
            set_(self, "duration_s", check_selection_limit(self.duration_s))

    def _check_span(self) -> None:
        """The take as (read-only float32 mono, sr), the span inside it; the selection's length
        defaults to the take's and must match it."""
        from foley_core.audio_io import MAX_SR, mono_float

        if self.take is None:
            raise FoleyError("regenerating a span needs the take to keep: give take=(audio, sr)")
        if self.regenerate_span_s is None:
            raise FoleyError("a take is only used to regenerate a span of it: give regenerate_span_s "
                             "(start_s, end_s) too")
        try:
            audio, sr = self.take
        except (TypeError, ValueError):
            raise FoleyError("the take must be a pair (audio, sr)") from None
        audio = readonly(mono_float(audio, "the take", require_samples=True))
        sr = check_whole(sr, "the take's sample rate", 1, MAX_SR)
        take_s = audio.size / sr
        try:
            start_s, end_s = (float(v) for v in self.regenerate_span_s)
        except (TypeError, ValueError):
            raise TimeRangeError(f"the span must be two times (start_s, end_s); got {self.regenerate_span_s!r:.40}") from None
        if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0 or end_s > take_s + 0.5 / sr:
            raise TimeRangeError(f"the span {start_s:g}-{end_s:g} s is outside the {take_s:.3f} s take; "
                                 "span times count from the selection start")
        if end_s - start_s < constants.MIN_SPAN_S:
            raise TimeRangeError(f"the span {start_s:g}-{end_s:g} s is {max(0.0, end_s - start_s):.3f} s long; "
                                 f"select at least {constants.MIN_SPAN_S:g} s to regenerate")
        set_ = object.__setattr__
        set_(self, "take", (audio, sr))
        set_(self, "regenerate_span_s", (start_s, min(end_s, take_s)))
        if self.duration_s is None:
            set_(self, "duration_s", take_s)
        elif abs(round(float(self.duration_s) * sr) - audio.size) > 1:
            raise TimeRangeError(f"the take is {take_s:.3f} s long but the selection is "
                                 f"{float(self.duration_s):.3f} s; the take must cover the selection")

    def _check_source(self) -> None:
        if self.source not in constants.SOURCES:
            raise FoleyError(f"source must be one of {', '.join(constants.SOURCES)}, got {self.source!r}")
        if self.reference is not None and self.source == "model":
            raise FoleyError("a reference sound and 'from scratch' (source 'model') contradict each other; "
                             "leave one out")
        if self.source == "library" and self.reference is None and self.caption is None:
            raise FoleyError("picking library sounds needs a caption to search for")
        if self.reference is None and (self.source == "model" or self.caption is None):
            if self.strength is not None:
                raise FoleyError("strength sets how far to move from a reference sound: give a reference "
                                 "(a library clip id or an audio file) too, or leave strength out")
            return
        if self.strength is None:
            return
        try:
            strength = float(self.strength)
        except (TypeError, ValueError):
            strength = float("nan")
        if not (math.isfinite(strength) and 0.0 <= strength <= 1.0):
            raise FoleyError(f"the reference strength must be between 0 (keep the reference) and 1 "
                             f"(ignore it), got {strength if math.isfinite(strength) else 'not a number'}")
        object.__setattr__(self, "strength", strength)

    @property
    def resolved_strength(self) -> float | None:
        """The strength a reference or retrieved clip is used at: as asked, else the default
        (DEFAULT_REFERENCE_STRENGTH); None when nothing can be started from."""
        if self.reference is None and (self.source == "model" or self.caption is None):
            return None
        return constants.DEFAULT_REFERENCE_STRENGTH if self.strength is None else self.strength

    @property
    def selection(self) -> tuple[float, float | None]:
        """(start_s, duration_s) in video seconds (duration None: to the video's end)."""
        return self.start_s, self.duration_s

    def replace(self, **changes: Any) -> "GenerationRequest":
        """A copy with `changes`, checked again."""
        return dataclasses.replace(self, **changes)

    # -------------------------------------------------------------- the form a project stores

    def stored(self) -> "GenerationRequest":
        """This request as a stem stores it: no video (the project's), one candidate, no take;
        the curve as a CurveSpec, the region as a Region, the model as a ModelSpec. The
        reference must already be the `Reference` record of the sound that was used."""
        if self.reference is not None and not isinstance(self.reference, Reference):
            raise FoleyError("a stem stores its reference as the record of the sound used (a Reference), "
                             f"not a {type(self.reference).__name__}")
        curve = self.curve
        if isinstance(curve, tuple):
            curve = CurveSpec(times_s=curve[0], values=curve[1])
        elif curve is not None and not isinstance(curve, CurveSpec):
            curve = CurveSpec.from_values(curve)
        model = self.model
        if not isinstance(model, ModelSpec):
            model = ModelSpec(backend=model if isinstance(model, str) else str(getattr(model, "name", model)))
        changes = {"video": None, "candidates": 1, "take": None, "regenerate_span_s": None,
                   "curve": curve, "region": _stored_region(self.region), "model": model}
        if all(values_equal(getattr(self, k), v) for k, v in changes.items()):
            return self
        return dataclasses.replace(self, **changes)

    def for_stem(self, report: "GenerationReport", index: int = 0) -> "GenerationRequest":
        """The request a stem made by candidate `index` of this request's `report` keeps (see
        `stored`): that candidate's seed, the record of the sound the take started from (the
        first candidate's, with the strength and fit it was used at), the model with the weights
        that ran, the onsets used."""
        ref = report.reference
        record = None if ref is None or not ref.fields else Reference(**ref.fields)
        name = self.model.backend if isinstance(self.model, ModelSpec) else (
            self.model if isinstance(self.model, str) else report.model_name)
        return self.replace(
            seed=report.seeds[index], reference=record, strength=None if record is None else record.strength,
            model=ModelSpec(backend=name, weights_id=str(report.model or "")), onsets_s=report.onsets_s,
            video=None, candidates=1, take=None, regenerate_span_s=None).stored()

    def to_json(self, *, image_file: str | None = None, masks_file: str | None = None,
                reference_file: str | None = None, reference_path: str | None = None) -> dict:
        """The stored request (see `stored`) as plain JSON with its own field names.

        `image_file`: where the region's image is kept (project-relative); `masks_file`: where
        a track region's per-frame masks are kept (project-relative); `reference_file`:
        the project's copy of the user's reference sound (project-relative) and
        `reference_path` the path stored beside it (default: the reference's own)."""
        st = self.stored()
        region, ref, curve = st.region, st.reference, st.curve
        return {
            "caption": st.caption, "negative_caption": st.negative_caption,
            "start_s": st.start_s, "duration_s": st.duration_s,
            "region": None if region is None else {
                "kind": region.kind, "box": None if region.box is None else list(region.box),
                "image": image_file, "track_id": region.track_id,
                "track_boxes": None if region.track_boxes is None else [list(r) for r in region.track_boxes],
                "track_masks": masks_file, "track_source": region.track_source},
            "curve": None if curve is None else {"times_s": [float(v) for v in curve.times_s],
                                                 "values": [float(v) for v in curve.values]},
            "onsets_s": None if st.onsets_s is None else list(st.onsets_s),
            "video_onsets": st.video_onsets,
            "reference": None if ref is None else {
                "clip_id": ref.clip_id, "path": ref.path if reference_path is None else reference_path,
                "file": reference_file, "caption": ref.caption, "licence": ref.licence,
                "attribution": ref.attribution, "strength": ref.strength, "fit": ref.fit},
            "strength": st.strength, "reference_fit": st.reference_fit, "source": st.source,
            "seed": st.seed, "steps": st.steps, "text_scale": st.text_scale, "video_scale": st.video_scale,
            "curve_scale": st.curve_scale, "conform": st.conform,
            "model": {"backend": st.model.backend, "weights_id": st.model.weights_id},
        }

    @classmethod
    def from_json(cls, doc: Any, *, read_image: Callable[[str], np.ndarray],
                  reference_file: Callable[[str], str],
                  read_masks: Callable[[str], tuple[dict, ...]] | None = None) -> "GenerationRequest":
        """The stored request in `doc`, a typed reader of its JSON object (`project`'s: its
        get/sub/numbers/fail name the bad field). `read_image(rel)` reads the region image kept
        at project-relative `rel`, `read_masks(rel)` a track region's per-frame masks kept there
        (None: a request that names such a file is refused); `reference_file(rel)` gives the absolute path of the project's
        copy of a reference sound. Fields absent from files older than a field get its default."""
        def nullable(key: str, kind: str) -> Any:
            return doc.get(key, kind, None) if key in doc.data else doc.get(key, kind)

        curve_doc, model_doc = doc.sub("curve", optional=True), doc.sub("model")
        return cls(
            caption=nullable("caption", "str"), negative_caption=nullable("negative_caption", "str"),
            start_s=doc.get("start_s", "number"), duration_s=nullable("duration_s", "number"),
            region=_region_from_json(doc.sub("region", optional=True), read_image, read_masks),
            curve=None if curve_doc is None else CurveSpec(times_s=np.array(curve_doc.numbers("times_s")),
                                                           values=np.array(curve_doc.numbers("values"))),
            onsets_s=doc.numbers("onsets_s", default=None),
            video_onsets=doc.get("video_onsets", "bool", True),
            reference=_reference_from_json(doc.sub("reference", optional=True), reference_file),
            strength=doc.get("strength", "number", None), reference_fit=doc.get("reference_fit", "str", "auto"),
            source=doc.get("source", "str"), seed=doc.get("seed", "int"), steps=doc.get("steps", "int"),
            text_scale=doc.get("text_scale", "number"), video_scale=doc.get("video_scale", "number"),
            curve_scale=doc.get("curve_scale", "number", None), conform=nullable("conform", "number"),
            model=ModelSpec(backend=model_doc.get("backend", "str"), weights_id=model_doc.get("weights_id", "str")),
        )


def _stored_region(region: Any) -> Region | None:
    """A request's region as a Region (an image file or array becomes a 0..1 image)."""
    if region is None or isinstance(region, Region) and region.kind != "image":
        return region
    image = region.image if isinstance(region, Region) else region
    if isinstance(image, (str, os.PathLike)):
        from foley_core.images import read_mask_image

        image = read_mask_image(image)
    image = np.asarray(image)
    if image.ndim != 2:
        raise MaskError(f"a stem keeps one mask image (height, width); got shape {image.shape}")
    if image.dtype == np.uint8 or image.max(initial=0) > 1:
        image = image.astype(np.float32) / 255.0       # the 0..255 form a request also takes
    return region if isinstance(region, Region) and isinstance(region.image, np.ndarray) else Region(image=image)


def _region_from_json(m: Any, read_image: Callable[[str], np.ndarray],
                      read_masks: Callable[[str], tuple[dict, ...]] | None) -> Region | None:
    if m is None:
        return None
    image_rel = m.get("image", "str", None)
    masks_rel = m.get("track_masks", "str", None)      # absent before format 4
    if masks_rel is not None and read_masks is None:
        m.fail(f"{m.where}.track_masks names a file, but this request is not read from a project folder")
    track_boxes = m.get("track_boxes", "list", None)
    if track_boxes is not None:
        for k, row in enumerate(track_boxes):
            if not isinstance(row, list) or len(row) != 5 or \
                    not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row):
                m.fail(f"{m.where}.track_boxes[{k}] should be 5 numbers (time_s, x0, y0, x1, y1)")
        track_boxes = tuple(tuple(float(v) for v in row) for row in track_boxes)
    box = m.numbers("box", 4, None)
    track_id = m.data.get("track_id")
    if not (isinstance(track_id, int) and not isinstance(track_id, bool)):   # older files: a number
        track_id = m.get("track_id", "str", None)
    return Region(kind=m.get("kind", "str"), box=None if box is None else tuple(box),
                  image=None if image_rel is None else read_image(image_rel),
                  track_id=track_id, track_boxes=track_boxes,
                  track_masks=None if masks_rel is None else read_masks(masks_rel),
                  track_source=m.get("track_source", "str", None))


def _reference_from_json(ref: Any, reference_file: Callable[[str], str]) -> Reference | None:
    if ref is None:
        return None
    path = ref.get("path", "str")
    kept = ref.get("file", "str", None)
    if kept is not None:
        # the copy inside the project, wherever the folder is now; when it is missing the
        # editor says so if the stem's settings are loaded back
        path = reference_file(kept)
    return Reference(clip_id=ref.get("clip_id", "str"), path=path, caption=ref.get("caption", "str"),
                     licence=ref.get("licence", "str"), attribution=ref.get("attribution", "str"),
                     strength=ref.get("strength", "number", None), fit=ref.get("fit", "str", "auto"))


def _curve_scale(value: Any) -> float:
    hi = constants.MAX_GUIDANCE_SCALE
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)) \
            or not math.isfinite(value) or not 0.0 <= value <= hi:
        raise FoleyError(f"the curve guidance (curve_scale) must be left empty for the model's own value; "
                         f"a curve guidance scale must be a finite number between 0 and {hi:g} (1 = off); "
                         f"got {value!r}")
    return float(value)      # UI widgets may hand back numpy scalars


# ------------------------------------------------------------------------------ report

@dataclass
class ReferenceReport:
    """The sound one candidate started from and how it was used."""

    id: str | None
    path: str | None
    caption: str | None
    library_clip: bool
    attribution: str | None
    licence: str | None
    fields: dict | None            # the keyword arguments of `project.Reference` (None: an (audio, sr) pair)
    strength: float | None
    steps_run: int
    fit: str
    detail_restored: bool          # the model added back the reference's detail its VAE loses
    source_duration_s: float
    source_sr: int
    kind: str                      # how it was fitted: "oneshot" or "loop"
    placed_at_onsets: bool
    full_band: bool
    rank: int | None = None        # retrieved clips: search rank and score
    score: float | None = None

    def to_json(self) -> dict:
        out = dataclasses.asdict(self)
        if self.rank is None:
            del out["rank"], out["score"]
        return out


@dataclass
class InstructionsReport:
    """Which instructions were given, which the model obeys, and what was enforced after it."""

    given: list[str] = field(default_factory=list)
    obeyed_by_model: list[str] = field(default_factory=list)
    ignored_by_model: list[str] = field(default_factory=list)
    enforced_after: list[str] = field(default_factory=list)


@dataclass
class GenerationReport:
    """What generate() did. `to_json()` gives the dict the CLI report and batch write."""

    duration_s: float
    sr: int                        # the take's rate
    model_sr: int
    full_band: bool                # content above the model's band, from a reference
    high_band: str | None          # how that band was made
    seed: int
    seeds: list[int]
    candidates: int
    model: str                     # the backend's description (name and weights)
    model_name: str
    trained: bool
    steps: int
    steps_run: int
    strength: float | None
    references: list[ReferenceReport]
    source: str                    # "reference", "library" or "model": what the take was made from
    text_scale: float
    video_scale: float
    curve_scale: float | None
    caption: str | None
    negative_caption: str | None
    video: str | None
    start_s: float
    windows: list[dict]
    window_join_gains_db: list[list[float]]
    peak_scaled_db: list[float]
    conform: float
    curve_r_before: list[float | None] | None
    curve_r_after: list[float | None] | None
    onsets_s: list[float] | None
    onsets_source: str | None
    instructions: InstructionsReport
    timings_s: dict[str, float]
    regenerated_span_s: list[float] | None = None   # the span regenerated in a given take
    span_gain_db: list[float] | None = None         # per candidate: the new span's level match

    @property
    def reference(self) -> ReferenceReport | None:
        """The first candidate's reference (None without one)."""
        return self.references[0] if self.references else None

    def to_json(self) -> dict:
        references = [r.to_json() for r in self.references]
        return {
            "duration_s": self.duration_s, "sr": self.sr, "model_sr": self.model_sr,
            "full_band": self.full_band, "high_band": self.high_band, "seed": self.seed,
            "seeds": list(self.seeds), "candidates": self.candidates, "model": self.model,
            "model_name": self.model_name, "trained": self.trained, "steps": self.steps,
            "steps_run": self.steps_run, "strength": self.strength,
            "reference": references[0] if references else None,
            "references": references or None, "source": self.source,
            "text_scale": self.text_scale, "video_scale": self.video_scale,
            "curve_scale": self.curve_scale, "caption": self.caption,
            "negative_caption": self.negative_caption, "video": self.video, "start_s": self.start_s,
            "windows": [dict(w) for w in self.windows],
            "window_join_gains_db": [list(g) for g in self.window_join_gains_db],
            "peak_scaled_db": list(self.peak_scaled_db), "conform": self.conform,
            "curve_r_before": self.curve_r_before, "curve_r_after": self.curve_r_after,
            "onsets_s": self.onsets_s, "onsets_source": self.onsets_source,
            "instructions": dataclasses.asdict(self.instructions),
            "timings_s": dict(self.timings_s),
            **({} if self.regenerated_span_s is None else {
                "regenerated_span_s": list(self.regenerated_span_s),
                "span_gain_db": None if self.span_gain_db is None else list(self.span_gain_db)}),
        }
