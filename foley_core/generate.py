"""`generate(request)`: the one function the UI, the CLI, batch and the benchmarks call to make a stem.

It runs a `request.GenerationRequest` through named stages: checks it against the video (range,
region, curve), reads the video at the backend's frame rate and size, turns the region into
per-frame masks (`vision.regions`), splits long selections into overlapping model windows
(`windows`; each with its slice of curve, frames and masks), joins the windows with level-matched
equal-power crossfades, optionally conforms the result to the curve, and reports what happened
in a `request.GenerationReport` (`GenerationResult.report`).

With a `reference` sound (a library clip id, an audio file, or an (audio, sr) pair) generation is
audio-to-audio (SDEdit): the reference is fitted to the selection (`library.fit_reference`), each
window starts from its slice of it, noised to `strength`, and is denoised with the stem's caption,
masked video and curve. strength 0 returns the fitted reference itself (conformed to the curve if
asked), strength 1 is plain generation.

Takes made from a reference keep its bandwidth: they run at the reference's rate (capped at
48 kHz; `fullband.output_rate`), the model's 16 kHz band below a crossover near 7 kHz and the
fitted reference above it, gained to follow the model's level (`fullband.compose_full_band`).
Without a reference (or from a 16 kHz one) the take is at the model's rate.

Span regeneration (`request.take` and `request.regenerate_span_s`): only the model windows that
overlap the span run, each with the take's latent held fixed outside the span (the backend's
`inpaint`), under the same conditions as a whole take (caption, curve, onsets, video). The new
audio is then spliced into the take in the waveform domain: outside the span the output IS the
take (the same samples, bit for bit), inside it the new audio, level-matched to the take over
two short equal-power crossfades (SPAN_CROSSFADE_S) placed just inside the span's edges. The
result keeps the take's rate: the new span comes at the model's rate (or its references' rate)
and is resampled to the take's before the splice.
"""

from __future__ import annotations

import collections
import hashlib
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from foley_core import constants, fullband, loudness, media
from foley_core.backends import Backend, VideoCondition, check_device, get_backend, reference_steps
from foley_core.errors import CurveError, FoleyError, GenerationCancelled, MaskError, TimeRangeError
from foley_core.library.fit import fit_kind, fit_reference, shape_to_curve
from foley_core.library.references import CandidateReference, read_reference, retrieve_candidates
from foley_core.library.retrieve import wanted_kind
from foley_core.media import read_frames_cached
from foley_core.request import (CurveSpec, GenerationReport, GenerationRequest, InstructionsReport, ModelSpec,
                                ReferenceReport, Region, check_onsets, check_selection_length)
from foley_core.vision import follow
from foley_core.vision.curves import region_motion
from foley_core.vision.regions import masks_for_frames, track_from_spec, validate_region
from foley_core.vision.proposals import analysis_fps_for, work_size
from foley_core.windows import join_windows, plan_windows, slice_curve

MAX_CANDIDATES = constants.MAX_CANDIDATES
MAX_STEPS = constants.MAX_STEPS
PEAK_LIMIT = 10 ** (constants.TAKE_PEAK_DBFS / 20)
MAX_SPAN_MATCH_DB = 12.0     # the most a regenerated span is gained to meet the take at its edges
DEFAULT_REFERENCE_STRENGTH = constants.DEFAULT_REFERENCE_STRENGTH   # re-exported; defined in constants


@dataclass
class GenerationResult:
    """`audios`: one float32 mono array per candidate at `sr`; `report`: what generate() did.

    `sr` is the take's rate: the model's (16 kHz) without a reference, else the references'
    highest rate capped at 48 kHz (never below the model's).
    `reference_audios`: with a reference, the fitted reference each candidate started from
    (float32 at `sr`, before any conform); None without one.
    """

    audios: list[np.ndarray]
    sr: int
    report: GenerationReport
    reference_audios: list[np.ndarray] | None = None

    @property
    def metadata(self) -> dict:
        """The report as the CLI and batch write it (`GenerationReport.to_json`)."""
        return self.report.to_json()


# ------------------------------------------------------------------------------ helpers: checks

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
    if isinstance(curve, CurveSpec):
        curve = (curve.times_s, curve.values)
    if isinstance(curve, tuple):
        if len(curve) != 2:
            raise CurveError("a drawn curve is a pair (times_s, values)")
        values = loudness.resample_curve(curve[0], curve[1], duration_s=duration_s,
                                         keep_peaks=True)
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
    return sorted(check_onsets(onsets_s, duration_s))


_ONSETS_CACHE: collections.OrderedDict = collections.OrderedDict()
_ONSETS_CACHE_SIZE = 16
_ONSETS_LOCK = threading.Lock()


def video_contact_onsets(video: str, info, mask, *, start_s: float, duration_s: float) -> list[float]:
    """Contact times (selection seconds) that the sounding region's motion shows: the onsets a
    video suggests. The same analysis as the studio's region proposal (`vision.proposals`): frames at the
    video's own rate (or a whole fraction of it) and at most 320 px, the mask (an array or a
    Region) at each frame's time, `vision.curves.region_motion`. The last few results are
    remembered per (file, range, region masks)."""
    followed = None
    if isinstance(mask, Region) and isinstance(mask.track, follow.Track):
        followed = mask.track
    elif isinstance(mask, Region) and mask.track_source == follow.FOLLOW_SOURCE:
        followed = track_from_spec(mask.track_spec(), (info.width, info.height))    # as a project keeps it
    if followed is not None and followed.source == follow.FOLLOW_SOURCE:
        # a followed object has a centre in every frame it was seen: time its contacts from it
        return follow.track_contact_onsets(followed, fps=info.fps, start_s=start_s,
                                           duration_s=duration_s)
    size = work_size(info.width, info.height, 320)
    frames, times_s, frames_key = read_frames_cached(video, fps=analysis_fps_for(info.fps), size=size,
                                                     start_s=start_s, duration_s=duration_s)
    region = masks_for_frames(mask, times_s, video_wh=(info.width, info.height), frame_size=size)
    # the motion analysis is about a quarter of a warm 8 s default take; another seed or curve on the same
    # selection and region (the usual regenerate) has the same contacts
    key = (frames_key, hashlib.sha1(np.ascontiguousarray(region).tobytes()).hexdigest())
    with _ONSETS_LOCK:
        hit = _ONSETS_CACHE.get(key)
        if hit is not None:
            _ONSETS_CACHE.move_to_end(key)
            return list(hit)
    seed = region_motion(frames, times_s, region, start_s=start_s, duration_s=duration_s)
    onsets = [float(t) - start_s for t in seed.events_s if start_s <= t < start_s + duration_s]
    with _ONSETS_LOCK:
        _ONSETS_CACHE[key] = tuple(onsets)
        while len(_ONSETS_CACHE) > _ONSETS_CACHE_SIZE:
            _ONSETS_CACHE.popitem(last=False)
    return onsets


# ------------------------------------------------------------------------------ generate

@dataclass
class _Run:
    """What the stages of one generate() call learn and hand on to the next."""

    request: GenerationRequest
    timings: dict
    cancel_fn: Callable[[], bool] | None
    info: Any = None                      # media.VideoInfo of the video, or None
    duration_s: float = 0.0
    curve: np.ndarray | None = None       # the full-selection curve (prepare_curve)
    onsets_s: list[float] | None = None
    onsets_source: str | None = None
    conform: float = 0.0
    given_ref: tuple | None = None        # (audio, sr, entry) of the request's reference
    backend: Any = None
    sr: int = 0                           # the model's rate
    strength: float | None = None
    retrieving: bool = False
    steps_run: int = 0
    seeds: list[int] = field(default_factory=list)
    refs: list = field(default_factory=list)
    ref_full: np.ndarray | None = None    # the fitted references at the model's rate
    ref_out: np.ndarray | None = None     # the same fits at the take's rate
    ref_placed: bool = False
    out_sr: int = 0
    frames: np.ndarray | None = None
    frames_key: tuple | None = None
    masks: np.ndarray | None = None
    mask_hash: str | None = None
    windows: list = field(default_factory=list)
    parts: list = field(default_factory=list)
    take_model: np.ndarray | None = None  # the take to keep, at the model's rate over the selection
    span_gain_db: list[float] | None = None

    @property
    def use_model(self) -> bool:
        return self.steps_run > 0

    @property
    def model_onsets(self) -> bool:
        return self.use_model and self.backend.capabilities.onsets

    def timed(self, stage: str):
        return _Timer(self.timings, stage)


class _Timer:
    def __init__(self, timings: dict, stage: str):
        self.timings, self.stage = timings, stage

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.stage] += time.perf_counter() - self.t0


def _resolve_backend(model, device: str) -> Backend:
    if isinstance(model, ModelSpec):
        model = model.backend
    if isinstance(model, str):
        return get_backend(model, device=device)
    if isinstance(model, Backend):
        return model
    raise FoleyError(f"model must be a backend name such as 'embedded', got {model!r}")


def _as_request(request: GenerationRequest | None, fields: dict) -> GenerationRequest:
    """The request itself, or one built from generate()'s keyword form (`mask` is the region)."""
    if request is not None:
        if fields:
            raise FoleyError(f"give generate() a request or its fields, not both ({', '.join(fields)})")
        if not isinstance(request, GenerationRequest):
            raise FoleyError(f"generate() takes a GenerationRequest, got {type(request).__name__}")
        return request
    if "mask" in fields:
        fields["region"] = fields.pop("mask")
    return GenerationRequest(**fields)


def generate(request: GenerationRequest | None = None, /, *, device: str = "cpu", library=None,
             progress: Callable[[int, int], None] | None = None, cancel=None,
             **fields) -> GenerationResult:
    """Generate `request.candidates` stems of the request's selection.

    `request`: a GenerationRequest (see its fields); or give its fields as keywords
    (`generate(caption=..., video=..., mask=...)`, `mask` being the region) and one is built.
    device: where a named model runs ("cpu", "cuda", "cuda:N").
    library: the SoundLibrary to retrieve from and to find `request.reference`'s clip id in
        (default: the bundled one; `SoundLibrary(folders=[...])` adds the user's folders, whose
        clips have ids `user/<folder>/<path>`).
    progress: progress(step, total) after each denoising step actually run (total = steps
        run per window x windows).
    cancel: a callable returning True or a threading.Event; raises GenerationCancelled.

    The stages, in order: 1 check the inputs against the video; 2 load the backend and
    prepare the conditions (onsets from the video's contacts, frames and region masks);
    3 prepare the references (the given sound or retrieved library clips, fitted to the
    selection); 4 run the model windows; 5 post-process (join, full band, peak, conform);
    6 report. Returns a GenerationResult whose `report` says what each stage did.
    """
    request = _as_request(request, fields)
    t_total = time.perf_counter()
    run = _check_inputs(request, device, cancel, library)
    _prepare_backend(run, device)
    _prepare_conditions(run)
    _prepare_references(run, library)
    _read_video(run)
    _run_windows(run, progress)
    audio, join_gains, high_band = _join(run)
    peak_scaled_db = _limit_peaks(audio)
    r_before, r_after = _conform(run, audio)
    if request.regenerate_span_s is not None:
        audio = _splice_span(run, audio)
    run.timings["total"] = time.perf_counter() - t_total
    report = _report(run, join_gains, high_band, peak_scaled_db, r_before, r_after)
    return GenerationResult(audios=[a.astype(np.float32) for a in audio], sr=run.out_sr, report=report,
                            reference_audios=None if run.ref_out is None else list(run.ref_out))


# ---- 1. check inputs

def _check_inputs(request: GenerationRequest, device: str, cancel, library=None) -> _Run:
    """What the request alone cannot check: the device, the range and region against the
    video, the curve and onsets against the selection; reads the given reference."""
    if isinstance(request.model, (str, ModelSpec)):
        check_device(device)        # before the video is read, not inside the model load
    run = _Run(request=request, timings=collections.defaultdict(float), cancel_fn=_cancel_fn(cancel))
    start_s, duration_s = request.selection
    if request.video is not None:
        run.info = info = media.probe_video(request.video)
        if start_s >= info.duration_s:
            raise TimeRangeError(f"start {start_s:.3f} s is outside the video ({info.duration_s:.3f} s long)")
        if duration_s is None:
            duration_s = info.duration_s - start_s
        if start_s + duration_s > info.duration_s + 1.0 / max(info.fps, 1.0) + 1e-6:
            raise TimeRangeError(f"the range {start_s:.3f}-{start_s + duration_s:.3f} s goes past the end "
                                 f"of the video ({info.duration_s:.3f} s long)")
    elif duration_s is None:
        raise TimeRangeError("without a video, give the duration of the sound in seconds")
    elif request.region is not None:
        raise MaskError("a mask needs a video: give the video the mask was drawn on")
    run.duration_s = duration_s = check_selection_length(duration_s)
    if request.region is not None:
        validate_region(request.region, (run.info.width, run.info.height))
    run.curve = None if request.curve is None else prepare_curve(request.curve, duration_s)
    if request.onsets_s is not None:
        run.onsets_s = prepare_onsets(request.onsets_s, duration_s)
        run.onsets_source = "given"
    if request.conform is None:
        run.conform = 1.0 if run.curve is not None else 0.0
    elif request.conform > 0 and run.curve is None:
        raise CurveError("conform needs a loudness curve to conform to")
    else:
        run.conform = request.conform
    if request.reference is not None:
        with run.timed("reference"):
            run.given_ref = read_reference(request.reference, library)
    return run


# ---- 2. prepare conditions

def _prepare_backend(run: _Run, device: str) -> None:
    """Load the model and decide what it is asked: from a sound or from noise, how many steps."""
    request = run.request
    with run.timed("load_model"):
        run.backend = backend = _resolve_backend(request.model, device)
    run.sr = int(backend.sr)
    capabilities = backend.capabilities
    run.retrieving = request.reference is None and request.caption is not None and (
        request.source == "library" or (request.source == "auto" and capabilities.reference))
    with_reference = run.given_ref is not None or run.retrieving
    # "auto" on a backend that cannot start from a sound: the model alone
    run.strength = request.resolved_strength if with_reference else None
    run.steps_run = reference_steps(request.steps, run.strength)[1] if with_reference else request.steps
    if run.onsets_s is not None and not capabilities.onsets and not with_reference:
        raise FoleyError(f"the {backend.name} model cannot place sounds at given onsets (hits); "
                         "leave the onsets out, or start from a reference sound, which is placed at them")
    if with_reference and run.steps_run > 0 and not capabilities.reference:
        raise FoleyError(f"reference-guided generation is not supported by the {backend.name} backend yet; "
                         "use the embedded model, or strength 0 to use the reference as it is")
    if request.regenerate_span_s is not None and run.steps_run > 0:
        if not capabilities.inpaint:
            raise FoleyError(f"the {backend.name} model cannot regenerate a span of a take; use the embedded model")
        take, take_sr = request.take
        run.take_model = np.array(fullband.to_model_rate(take, take_sr, run.sr, int(round(run.duration_s * run.sr))))
    run.seeds = [request.seed + i for i in range(request.candidates)]


def _prepare_conditions(run: _Run) -> None:
    """Onsets at the region's contacts when none were given (they serve the model's onset
    module and a one-shot reference, placed at each)."""
    request = run.request
    with_reference = run.given_ref is not None or run.retrieving
    if run.onsets_s is None and request.video_onsets and run.info is not None and request.region is not None \
            and (run.model_onsets or with_reference):
        with run.timed("video_onsets"):
            run.onsets_s = video_contact_onsets(request.video, run.info, request.region,
                                                start_s=request.start_s, duration_s=run.duration_s)
        run.onsets_source = "video"


def _read_video(run: _Run) -> None:
    """The selection's frames at the backend's rate and size, and the region's mask on each."""
    if run.info is None or not run.use_model:
        return
    backend, request = run.backend, run.request
    with run.timed("read_video"):
        run.frames, frame_times, run.frames_key = read_frames_cached(
            request.video, fps=backend.video_fps, size=tuple(backend.frame_size),
            start_s=request.start_s, duration_s=run.duration_s)
    if request.region is not None:
        with run.timed("masks"):
            run.masks = masks_for_frames(request.region, frame_times, video_wh=(run.info.width, run.info.height),
                                         frame_size=tuple(backend.frame_size))
            run.mask_hash = hashlib.sha1(np.ascontiguousarray(run.masks).tobytes()).hexdigest()


# ---- 3. prepare references

def _prepare_references(run: _Run, library) -> None:
    """The given reference for every candidate, or one retrieved clip per candidate, fitted to
    the selection once at the take's rate (the model's input is that fit resampled, so
    placement, trims and loops are the same in both bands)."""
    request = run.request
    wanted = wanted_kind(run.onsets_s, run.curve)
    if run.retrieving:
        with run.timed("retrieve"):
            run.refs = retrieve_candidates(request.caption, request.candidates, library, wanted,
                                           request.reference_fit)
    elif run.given_ref is not None:
        audio_in, sr_in, entry_in = run.given_ref
        # decided once, so the report says what the fit did (and candidates share it)
        kind = fit_kind(audio_in, sr_in, request.reference_fit)
        run.refs = [CandidateReference(audio_in, sr_in, entry_in, kind)] * request.candidates
    # The take keeps its references' bandwidth: it runs at their rate (capped at 48 kHz), the
    # model's band below the crossover and the reference's above it (`fullband`).
    run.out_sr = fullband.output_rate(run.sr, [r.sr for r in run.refs])
    if run.refs:
        n_out = int(round(run.duration_s * run.out_sr))
        with run.timed("reference"):
            run.ref_placed = bool(run.onsets_s) and any(r.kind == "oneshot" for r in run.refs)
            # a sustained request repeats a short one-shot rather than pad it with silence,
            # unless the user asked for padding (reference_fit "oneshot")
            sustain = wanted == "sustained" and request.reference_fit == "auto"
            run.ref_out = np.stack([
                fit_reference(r.audio, r.sr, duration_s=run.duration_s, target_sr=run.out_sr,
                              mode="oneshot" if r.kind == "oneshot" else "loop", seed=s,
                              onsets_s=run.onsets_s, sustain=sustain)
                for r, s in zip(run.refs, run.seeds)])
            if run.ref_out.shape[1] != n_out:       # fit_reference promises round(duration_s * target_sr)
                raise FoleyError(f"the fitted reference has {run.ref_out.shape[1]} samples instead of {n_out}")
            n_samples = int(round(run.duration_s * run.sr))
            run.ref_full = run.ref_out if run.out_sr == run.sr else np.stack(
                [fullband.to_model_rate(r, run.out_sr, run.sr, n_samples) for r in run.ref_out])
            if run.retrieving and run.curve is not None and run.use_model:
                # a retrieved clip's own dynamics are chance, not a choice: it starts the model
                # already following the curve (a reference the user gave keeps its own)
                shaped = [shape_to_curve(r_out, run.out_sr, r_full, run.sr, run.curve)
                          for r_out, r_full in zip(run.ref_out, run.ref_full)]
                run.ref_out = np.stack([s for s, _ in shaped])
                run.ref_full = np.stack([m for _, m in shaped])
    if not (run.model_onsets or run.ref_placed):
        run.onsets_s = run.onsets_source = None                 # nothing used them


# ---- 4. run windows

def _run_windows(run: _Run, progress) -> None:
    """Each model window (none at strength 0: the output is the fitted reference) through the
    backend, with its slice of curve, frames, masks, onsets and reference."""
    if run.cancel_fn is not None and run.cancel_fn():
        raise GenerationCancelled("generation cancelled")
    request, backend, sr = run.request, run.backend, run.sr
    planned = list(enumerate(plan_windows(run.duration_s, float(backend.window_s)))) if run.use_model else []
    if request.regenerate_span_s is not None:
        # only the windows the span touches; each keeps its index, so its seeds are a whole take's
        span0_s, span1_s = request.regenerate_span_s
        planned = [(w, (o, l)) for w, (o, l) in planned if o < span1_s and o + l > span0_s]
    run.windows = [window for _, window in planned]
    total_steps = run.steps_run * len(run.windows)
    for i, (w, (offset_s, length_s)) in enumerate(planned):
        window_seeds = run.seeds if w == 0 else [s + 1_000_003 * w for s in run.seeds]
        window_curve = None
        if run.curve is not None:
            window_curve = loudness.normalize_curve(slice_curve(run.curve, offset_s, length_s))

        def window_progress(step: int, n: int, _w=i) -> None:
            if progress is not None:
                progress(_w * run.steps_run + min(step, run.steps_run), total_steps)

        out = backend.generate_window(
            caption=request.caption, negative_caption=request.negative_caption, duration_s=length_s,
            video=_window_video(run, offset_s, length_s), curve=window_curve, seeds=window_seeds,
            steps=request.steps, text_scale=request.text_scale, video_scale=request.video_scale,
            progress=window_progress, cancel=run.cancel_fn, **_window_kwargs(run, offset_s, length_s))
        if out.sr != sr:
            raise FoleyError(f"the {backend.name} backend returned {out.sr} Hz audio instead of {sr} Hz")
        for stage, seconds in out.timings_s.items():
            run.timings[stage] += seconds
        run.parts.append((int(round(offset_s * sr)), np.asarray(out.audios, dtype=np.float32)))


def _window_video(run: _Run, offset_s: float, length_s: float) -> VideoCondition | None:
    if run.frames is None:
        return None
    fps = float(run.backend.video_fps)
    i0 = int(round(offset_s * fps))
    i1 = min(len(run.frames), int(round((offset_s + length_s) * fps)))
    if i1 <= i0:
        i1 = min(len(run.frames), i0 + 1)
        i0 = i1 - 1
    key = None if run.frames_key is None else (*run.frames_key, offset_s, length_s, run.mask_hash)
    return VideoCondition(frames=run.frames[i0:i1], masks=None if run.masks is None else run.masks[i0:i1],
                          fps=fps, cache_key=key)


def _window_kwargs(run: _Run, offset_s: float, length_s: float) -> dict:
    """The optional window arguments a backend takes: curve guidance, onsets, reference."""
    kwargs = {} if run.request.curve_scale is None else {"curve_scale": run.request.curve_scale}
    if run.onsets_s is not None and run.model_onsets:
        kwargs["onsets_s"] = [t - offset_s for t in run.onsets_s if offset_s <= t < offset_s + length_s]
    if run.ref_full is not None:
        i0 = int(round(offset_s * run.sr))
        n_window = int(round(length_s * run.sr))
        window_ref = run.ref_full[:, i0:i0 + n_window]
        if window_ref.shape[1] < n_window:       # rounding at the selection's end
            window_ref = np.pad(window_ref, ((0, 0), (0, n_window - window_ref.shape[1])))
        kwargs.update(reference=window_ref, strength=run.strength)
    if run.take_model is not None:
        span0_s, span1_s = run.request.regenerate_span_s
        i0 = int(round(offset_s * run.sr))
        window_take = fullband.to_model_rate(run.take_model[i0:], run.sr, run.sr, int(round(length_s * run.sr)))
        kwargs["inpaint"] = (window_take, (max(0.0, span0_s - offset_s), min(length_s, span1_s - offset_s)))
    return kwargs


# ---- 5. post-process

def _join(run: _Run) -> tuple[np.ndarray, list, str | None]:
    """The windows joined (and given the reference's high band), or the fitted reference
    itself when no model ran; with the join gains and how the high band was made."""
    with run.timed("join"):
        if not run.parts:
            high_band = ("the fitted reference itself (strength 0: no model, no vocoder)"
                         if run.out_sr > run.sr else None)
            return run.ref_out.copy(), [], high_band
        audio, join_gains = join_windows(run.parts, int(round(run.duration_s * run.sr)), run.sr)
        if not np.all(np.isfinite(audio)):
            raise FoleyError(f"the {run.backend.name} model produced invalid samples (NaN); try another seed")
        if run.out_sr == run.sr:
            return audio, join_gains, None
    # after the join, so the high band follows the joins' level match too
    with run.timed("full_band"):
        audio = np.stack([fullband.compose_full_band(a, run.sr, r_out, run.out_sr, r_model)
                          for a, r_out, r_model in zip(audio, run.ref_out, run.ref_full)])
    return audio, join_gains, fullband.describe_high_band()


def _limit_peaks(audio: np.ndarray) -> list[float]:
    """Headroom before conform (in place): conform never raises a peak above its input's, so
    the take ends at most at TAKE_PEAK_DBFS. Returns the gain applied per candidate (dB)."""
    scaled_db = []
    for k in range(audio.shape[0]):
        peak = float(np.max(np.abs(audio[k]))) if audio.shape[1] else 0.0
        if peak > PEAK_LIMIT:
            audio[k] *= PEAK_LIMIT / peak
            scaled_db.append(round(20 * math.log10(PEAK_LIMIT / peak), 2))
        else:
            scaled_db.append(0.0)
    return scaled_db


def _conform(run: _Run, audio: np.ndarray) -> tuple[list, list]:
    """Conform each candidate to the curve (in place); its correlation before and after."""
    n = audio.shape[0]
    r_before: list[float | None] = [None] * n
    r_after: list[float | None] = [None] * n
    if run.curve is None:
        return r_before, r_after
    with run.timed("conform"):
        for k in range(n):
            r_before[k] = round(loudness.curve_correlation(audio[k], run.out_sr, run.curve), 4)
            if run.conform > 0:
                audio[k] = loudness.conform(audio[k], run.out_sr, run.curve, strength=run.conform)
            r_after[k] = round(loudness.curve_correlation(audio[k], run.out_sr, run.curve), 4)
    return r_before, r_after


def _splice_span(run: _Run, audio: np.ndarray) -> np.ndarray:
    """Each candidate's new span in the take (K, n_take) at the take's rate: the take's own
    samples outside the span, the new audio inside, joined by equal-power crossfades just inside
    the span's edges (none at an edge that is the take's start or end). The new audio is first
    gained (within +-MAX_SPAN_MATCH_DB) so its level over the crossfades meets the take's there,
    then down if its peak inside the span would pass TAKE_PEAK_DBFS."""
    take, take_sr = run.request.take
    span0_s, span1_s = run.request.regenerate_span_s
    n_take = take.size
    i0, i1 = int(round(span0_s * take_sr)), min(n_take, int(round(span1_s * take_sr)))
    n_fade = min(int(round(constants.SPAN_CROSSFADE_S * take_sr)), (i1 - i0) // 4)
    fade_in = n_fade if i0 > 0 else 0
    fade_out = n_fade if i1 < n_take else 0
    theta = (np.arange(n_fade) + 0.5) / max(n_fade, 1) * (np.pi / 2)
    edges = np.r_[i0:i0 + fade_in, i1 - fade_out:i1]
    out = np.repeat(take[None].astype(np.float32), audio.shape[0], axis=0)
    run.span_gain_db = []
    with run.timed("splice"):
        for k in range(audio.shape[0]):
            new = fullband.to_model_rate(audio[k], run.out_sr, take_sr, n_take).astype(np.float64)
            gain_db = 0.0
            if edges.size:
                rms_take = np.sqrt(np.mean(take[edges].astype(np.float64) ** 2))
                rms_new = np.sqrt(np.mean(new[edges] ** 2))
                if rms_take > 1e-8 and rms_new > 1e-8:
                    gain_db = float(np.clip(20 * np.log10(rms_take / rms_new), -MAX_SPAN_MATCH_DB, MAX_SPAN_MATCH_DB))
            # a loud new span must not clip: it is gained down (the crossfades hide the step)
            peak = float(np.max(np.abs(new[i0:i1]))) * 10 ** (gain_db / 20)
            if peak > PEAK_LIMIT:
                gain_db += 20 * math.log10(PEAK_LIMIT / peak)
            new *= 10 ** (gain_db / 20)
            run.span_gain_db.append(round(gain_db, 2))
            span = new[i0:i1].copy()
            kept = take.astype(np.float64)
            if fade_in:
                span[:fade_in] = kept[i0:i0 + fade_in] * np.cos(theta) + span[:fade_in] * np.sin(theta)
            if fade_out:
                span[-fade_out:] = span[-fade_out:] * np.cos(theta) + kept[i1 - fade_out:i1] * np.sin(theta)
            out[k, i0:i1] = span
    run.out_sr = take_sr
    return out


# ---- 6. report

def _instructions(run: _Run) -> InstructionsReport:
    """Which instructions were given, which the model itself obeys, what was enforced after."""
    request, backend = run.request, run.backend
    named = [("text", request.caption), ("negative", request.negative_caption), ("video", request.video),
             ("mask", request.region), ("curve", run.curve), ("onsets", run.onsets_s),
             ("reference", run.ref_full)]
    given = [name for name, value in named if value is not None]
    # The SDEdit start is the sampler's doing, but only trained weights keep the reference's
    # character through VAE and UNet. At strength 0 no model runs: the reference is the output.
    model_obeys: set[str] = set()
    if run.use_model:
        model_obeys = set(backend.obeys) | ({"reference"} if backend.trained else set())
    enforced = ["curve (conform)"] if run.curve is not None and run.conform > 0 else []
    if run.ref_full is not None and not run.use_model:
        enforced.insert(0, "reference (strength 0: the fitted reference itself)")
    if run.ref_placed:
        enforced.append("onsets (the reference placed at each)")
    ignored = [g for g in given if g not in model_obeys
               and not (g == "reference" and not run.use_model)
               and not (g == "onsets" and run.ref_placed and not run.model_onsets)]
    return InstructionsReport(given=given, obeyed_by_model=[g for g in given if g in model_obeys],
                              ignored_by_model=ignored, enforced_after=enforced)


def _reference_report(ref: CandidateReference, *, strength: float | None, steps_run: int, fit: str,
                      detail_restored: bool, placed: bool, full_band: bool) -> ReferenceReport:
    entry = ref.entry
    return ReferenceReport(
        id=None if entry is None else entry.id, path=None if entry is None else str(entry.path),
        caption=None if entry is None else entry.caption,
        library_clip=entry is not None and not entry.is_user_sound,
        attribution=None if entry is None else entry.attribution_text,
        licence=None if entry is None else entry.licence_text,
        fields=None if entry is None else {**entry.reference_fields(), "strength": strength, "fit": fit},
        strength=strength, steps_run=steps_run, fit=fit, detail_restored=detail_restored,
        source_duration_s=round(ref.audio.shape[0] / ref.sr, 6), source_sr=ref.sr, kind=ref.kind,
        placed_at_onsets=placed, full_band=full_band,
        rank=ref.rank, score=None if ref.rank is None else round(ref.score, 4))


def _report(run: _Run, join_gains, high_band, peak_scaled_db, r_before, r_after) -> GenerationReport:
    request, backend, sr, out_sr = run.request, run.backend, run.sr, run.out_sr
    capabilities = backend.capabilities
    detail_restored = run.steps_run > 0 and capabilities.reference_detail
    references = [
        _reference_report(r, strength=run.strength, steps_run=run.steps_run, fit=request.reference_fit,
                          detail_restored=detail_restored, placed=bool(run.onsets_s) and r.kind == "oneshot",
                          full_band=min(r.sr, out_sr) > sr)
        for r in run.refs]
    with_curve = run.curve is not None
    curve_scale = None
    if request.curve is not None:
        curve_scale = request.curve_scale if request.curve_scale is not None else capabilities.default_curve_scale
    return GenerationReport(
        duration_s=round(run.duration_s, 6), sr=out_sr, model_sr=sr,
        # content above the model's band: from a reference at more than the model's rate
        full_band=out_sr > sr and any(r.sr > sr for r in run.refs), high_band=high_band,
        seed=request.seed, seeds=run.seeds, candidates=request.candidates, model=backend.description,
        model_name=backend.name, trained=bool(backend.trained), steps=request.steps, steps_run=run.steps_run,
        strength=run.strength if run.ref_full is not None else None, references=references,
        source="library" if run.retrieving else "reference" if run.given_ref is not None else "model",
        text_scale=request.text_scale, video_scale=request.video_scale, curve_scale=curve_scale,
        caption=request.caption, negative_caption=request.negative_caption,
        video=None if request.video is None else str(request.video), start_s=request.start_s,
        windows=[{"start_s": round(request.start_s + o, 6), "duration_s": l} for o, l in run.windows],
        window_join_gains_db=[[round(g, 2) for g in w] for w in join_gains[1:]],
        peak_scaled_db=peak_scaled_db, conform=run.conform,
        curve_r_before=r_before if with_curve else None, curve_r_after=r_after if with_curve else None,
        onsets_s=None if run.onsets_s is None else [round(float(t), 4) for t in run.onsets_s],
        onsets_source=run.onsets_source, instructions=_instructions(run),
        timings_s={k: round(v, 4) for k, v in run.timings.items()},
        regenerated_span_s=None if request.regenerate_span_s is None else list(request.regenerate_span_s),
        span_gain_db=run.span_gain_db)
