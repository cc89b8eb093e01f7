"""One browser session's studio state and the operations the UI offers (no gradio here).

A `Session` holds the current project, its undo history, the loaded video, the region (a drawn
mask or a proposed track), the curve editor's value, the last generation's candidates, and a
cancel flag. Every operation calls foley_core and raises a `FoleyError` with a user-facing
message on bad input; the gradio layer (app/panels/) turns those into messages. Checks and
conversions that are not about this page live in foley_core (mix limits: MixSettings.edited;
a painted region: region_spec; project zips: project_archive).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from app import curve_widget, onsets_widget
from foley_core import (audio_io, backends, captions, constants, export, loudness, media, mixing,
                        project_archive, region_spec)
from foley_core import project as fproject
from foley_core.autosave_tokens import AutosaveTokens, new_autosave_id
from foley_core.errors import (CaptionError, FoleyError, MaskError, MediaError, ProjectError,
                               TimeRangeError)
from foley_core.history import History
from foley_core.library import SearchHit, load_reference
from foley_core.library.folders import SavedFolders
from foley_core.project import MAX_CURVE_SCALE
from foley_core.request import GenerationRequest, Region

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = REPO_ROOT / "assets" / "demo"
UNDO_DEPTH = 30
PREVIEW_MAX_SIDE = 640          # frames shown in the editor are at most this wide/high
MASK_COLOUR = np.array([255, 60, 40], np.float32)

# Default generation settings shown in the editor (the engine's defaults). curve_scale None:
# the model's own curve guidance (see model_curve_scale).
DEFAULTS = {"steps": constants.DEFAULT_STEPS, "text_scale": constants.DEFAULT_TEXT_SCALE,
            "video_scale": constants.DEFAULT_VIDEO_SCALE, "curve_scale": None,
            "conform": 1.0, "candidates": 1, "seed": 0, "model": "embedded",
            "source": "auto"}
CURVE_SCALE_RANGE = (1.0, 15.0)     # what the editor's slider offers (1 = off)
SNAP_TOLERANCE_S = 0.08             # a tap this close to a detected contact moves onto it


ALL_CATEGORIES = "all categories"
ANY_KIND = "any kind"
KIND_CHOICES = ((ANY_KIND, ANY_KIND), ("one-shot (hits)", "oneshot"), ("sustained (loops)", "sustained"))
REFERENCE_RESULTS = 10


# The user's sound folders: saved in the user's settings, one library for the process (app is local)
SAVED_FOLDERS = SavedFolders()


def sound_library():
    """The studio's sound library: the bundled starter clips plus the sound folders the user
    added (saved in the user's settings), shared by all sessions."""
    return SAVED_FOLDERS.library()


def saved_library_folders() -> list[tuple[str, str]]:
    """(folder, what it holds or why it is not searched) of each of the user's saved folders."""
    return SAVED_FOLDERS.folders()


def default_reference_strength() -> float:
    return float(constants.DEFAULT_REFERENCE_STRENGTH)


def has_curve_guidance(model: str) -> bool:
    """Whether the model's backend offers curve guidance (its declared `offers`); False for an
    unknown or unavailable model too. Does not load any weights."""
    try:
        return backends.backend_class(model).offers.curve_guidance
    except FoleyError:
        return False


def model_curve_scale(model: str) -> float | None:
    """The curve guidance a model uses by default (1 = none), or None when the model has no
    curve guidance (then only None or 1 may be asked of it) or cannot be loaded."""
    if not has_curve_guidance(model):
        return None
    try:
        # Only the embedded model is read here: it is small and generation loads it anyway;
        # another backend's default would mean loading its large, maybe unavailable, weights.
        backend = backends.get_backend(model) if model == "embedded" else None
        return None if backend is None else float(backend.curve_scale)
    except FoleyError as err:
        log.info("no curve guidance default for model %r: %s", model, err)
        return None


def demo_clips() -> dict[str, Path]:
    """Bundled demo clips: label -> path."""
    return {p.stem.replace("_", " "): p for p in sorted(DEMO_DIR.glob("*.mp4"))}


@dataclasses.dataclass
class Candidate:
    audio: np.ndarray           # mono float32 at `sr`
    sr: int
    seed: int
    metrics: dict
    reference_audio: np.ndarray | None = None   # the fitted reference it started from


@dataclasses.dataclass
class ReferenceChoice:
    """The sound generation starts from: a library clip or the user's own file, read once."""

    loaded: Any                 # foley_core.library.LoadedReference

    @property
    def entry(self):
        return self.loaded.entry

    @property
    def from_library(self) -> bool:
        return not self.entry.is_user_sound


@dataclasses.dataclass
class RegionState:
    """What the user marked as the sounding object."""

    kind: str = "none"                  # "none" | "image" | "track"
    mask: np.ndarray | None = None      # (H, W) float32 at video size, for kind "image"
    track: Any = None                   # foley_core.vision.tracks.Track, for kind "track"

    def describe(self) -> str:
        if self.kind == "image" and self.mask is not None:
            return f"drawn mask ({100.0 * float(self.mask.mean()):.1f}% of the frame)"
        if self.kind == "track" and self.track is not None:
            t = self.track
            return (f"track {t.id} ({t.label}, from {t.source}, {t.start_s:.1f}-{t.end_s:.1f} s) "
                    "following the object")
        return "no region: the whole frame"


@dataclasses.dataclass
class EditState:
    """What undo and redo bring back: the project (stems with their names and mix, its name and
    export settings), the curve (with the selection it was drawn over), the onsets lane and the
    region. The region's traces (background, contacts) come back with it."""

    project: Any                        # foley_core.project.Project (a copy)
    curve_json: str
    selection: tuple[float, float]
    user_onsets_video_s: list[float] | None
    region: RegionState
    events_s: list[float]
    background: dict

    def same_edits(self, other: "EditState") -> bool:
        """Whether the two states differ in nothing the user edits (so no undo step is made).
        The curve and the hits are compared in video time and to the precision the widgets
        keep, so a widget sending back what it was given is not an edit."""
        a, b = self.project, other.project
        return (a.name == b.name and a.export == b.export and a.stems == b.stems
                and _same_times(self.user_onsets_video_s, other.user_onsets_video_s, 1e-6)
                and _same_region(self.region, other.region)
                and _same_curve(self, other))


def _edit(method):
    """Session method decorator: the editable state before `method` runs becomes one undo step
    if the method changed it (an edit that fails or changes nothing leaves no step). An edit
    made inside another (propose_region selects a track) is part of the outer one."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self.lock:
            if self._editing:
                return method(self, *args, **kwargs)
            before = self._edit_state()
            self._editing = True
            try:
                result = method(self, *args, **kwargs)
            finally:
                self._editing = False
            if not before.same_edits(self._edit_state(copy=False)):
                self.history.record(before)
            return result

    return wrapper


class Session:
    """The studio state of one browser session."""

    def __init__(self, *, work_root: str | Path | None = None, autosave_root: str | Path | None = None):
        self.id = uuid.uuid4().hex
        self.lock = threading.RLock()
        self.cancel_event = threading.Event()
        base = Path(work_root) if work_root else Path(tempfile.gettempdir()) / "foley-studio"
        self.work_dir = base / self.id
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.project = fproject.Project(name="Untitled")
        self.history: History[EditState] = History(UNDO_DEPTH)
        self._editing = False
        self.video = None                       # media.VideoInfo
        self.selection = (0.0, 0.0)             # (start_s, end_s) in video time
        self.frame_time_s = 0.0
        self.region = RegionState()
        self.region_history: list[RegionState] = []
        self.tracks: dict = {}                  # id -> vision Track, from the last proposal
        self.background: dict = {}              # curve editor traces: fps, motion, loudness
        self.events_s: list[float] = []         # contacts (video time) from the region's motion
        self.curve_json = curve_widget.curve_value(duration_s=0.0)
        # the onsets lane: the user's hits in video time (so they stay where they were in the
        # video when the selection moves), or None = untouched, use the video's contacts
        self.user_onsets_video_s: list[float] | None = None
        self.candidates: list[Candidate] = []
        self.candidate_settings: dict | None = None
        self.candidate_request: GenerationRequest | None = None     # the last takes' request and report
        self.candidate_report = None
        self.generation_meta: dict = {}
        self.reference: ReferenceChoice | None = None
        self.reference_strength = default_reference_strength()
        # The autosave folder's name is its own random id (not the session id, which names the
        # work folder): the browser gets it only inside a signed token (autosave_token).
        self.autosave_root = Path(autosave_root) if autosave_root is not None \
            else Path(fproject.autosave_root())
        self.autosave_dir = self.autosave_root / new_autosave_id()
        self._autosaver = None
        self.set_aside: dict | None = None      # the project the last load_video set aside
        # (page id, nonce): the timeline's last request handled, so that a request sent again
        # (the page resends what it has not seen acknowledged) is applied once
        self.timeline_ack: tuple[str, int] = ("", 0)

    def __deepcopy__(self, memo) -> "Session":
        # Gradio deep-copies a gr.State's value when a browser session starts; the Session is
        # already fresh (made by a factory per session) and holds locks, so it is its own copy.
        return self

    # ------------------------------------------------------------------ video
    def load_video(self, path: str | Path) -> Any:
        """Probe a video and make it the project's; the selection becomes the whole clip (up
        to the engine's limit) and the region and curve are reset."""
        if path is None or not str(path).strip():
            raise MediaError("No video given: upload a video file or pick a demo clip.")
        info = media.probe_video(path)
        with self.lock:
            self.set_aside = None
            old_video = self.project.video_path
            new_video = old_video is None or not _same_path(old_video, info.path)
            if self.project.stems and new_video:
                self.set_aside = self._set_project_aside(old_video)
            if new_video:
                self.history.clear()    # a region or curve of another video cannot come back
            self.video = info
            self.project.video_path = Path(info.path).resolve()
            self.project.video_duration_s = float(info.duration_s)
            end = min(info.duration_s, constants.MAX_GENERATION_SECONDS)
            self.selection = (0.0, float(end))
            self.frame_time_s = 0.0
            self.region = RegionState()
            self.region_history = []
            self.tracks = {}
            self.events_s = []
            self.user_onsets_video_s = None
            self.background = self._soundtrack_background(info)
            self.curve_json = self._curve_frame()
            self.autosave()
        return info

    def _set_project_aside(self, old_video) -> dict:
        """Stems are made for one video: a new video starts a new project, and the current one
        stays in its autosave folder (a fresh folder takes the new project), restorable later.
        Returns what was set aside: its signed autosave token, stem count and video name."""
        self.autosave()                         # the set-aside project is saved as it is now
        aside = {"token": self.autosave_token, "stems": len(self.project.stems),
                 "video": Path(old_video).name if old_video else "no video"}
        self.autosave_dir = self.autosave_root / new_autosave_id()
        self._autosaver = None
        self.project = fproject.Project(name="Untitled")
        self.history.clear()
        self.candidates, self.candidate_settings, self.generation_meta = [], None, {}
        return aside

    def _soundtrack_background(self, info) -> dict:
        """The original audio's relative loudness for the curve editor (whole video, 10/s)."""
        if not info.has_audio:
            return {"fps": constants.CURVE_FPS}
        try:
            audio = media.read_soundtrack(info.path, sr=constants.MODEL_SR)
        except MediaError as err:
            # The curve editor is still usable without the trace; say why it's missing.
            log.warning("no loudness trace for %s: %s", info.path, err)
            return {"fps": constants.CURVE_FPS}
        if audio.size == 0:
            return {"fps": constants.CURVE_FPS}
        return {"fps": constants.CURVE_FPS,
                "loudness": loudness.relative_loudness(audio, constants.MODEL_SR).tolist()}

    def require_video(self):
        if self.video is None:
            raise MediaError("Load a video first: upload one or pick a demo clip.")
        return self.video

    def set_selection(self, start_s: float, end_s: float) -> tuple[float, float]:
        info = self.require_video()
        start_s, end_s = float(start_s or 0.0), float(end_s or 0.0)
        if not (math.isfinite(start_s) and math.isfinite(end_s)):
            raise TimeRangeError("The selection start and end must be numbers of seconds.")
        if start_s < 0 or end_s > info.duration_s + 1e-3:
            raise TimeRangeError(f"The selection {start_s:.2f}-{end_s:.2f} s lies outside the video "
                                 f"(0-{info.duration_s:.2f} s).")
        if end_s - start_s < 0.2:
            raise TimeRangeError(f"The selection {start_s:.2f}-{end_s:.2f} s is too short: select "
                                 "at least 0.2 s.")
        if end_s - start_s > constants.MAX_GENERATION_SECONDS:
            raise TimeRangeError(f"The selection is {end_s - start_s:.1f} s long; the engine makes "
                                 f"at most {constants.MAX_GENERATION_SECONDS:.0f} s at a time.")
        with self.lock:
            old = self.selection
            self.selection = (start_s, min(end_s, info.duration_s))
            if old != self.selection:
                self.curve_json = self._curve_frame(keep_curve=True, old_selection=old)
        return self.selection

    def frame(self, time_s: float | None = None) -> np.ndarray:
        """The video frame at `time_s` (RGB uint8), at most PREVIEW_MAX_SIDE on its long side."""
        info = self.require_video()
        t = self.frame_time_s if time_s is None else float(time_s)
        t = min(max(0.0, t), max(0.0, info.duration_s - 1e-3))
        self.frame_time_s = t
        scale = min(1.0, PREVIEW_MAX_SIDE / max(info.width, info.height))
        size = None if scale >= 1.0 else (round(info.width * scale), round(info.height * scale))
        return media.frame_at(info.path, t, size=size)

    # ------------------------------------------------------------------ region (mask)
    def _push_region(self) -> None:
        self.region_history.append(dataclasses.replace(self.region))
        del self.region_history[:-UNDO_DEPTH]

    @_edit
    def set_drawn_mask(self, layers: list[np.ndarray] | None) -> RegionState:
        """The brush strokes of the mask editor (RGBA layers at the preview size) become a
        binary mask at the video's size."""
        info = self.require_video()
        mask = region_spec.painted_mask(layers, info.width, info.height)
        with self.lock:
            self._push_region()
            self.region = RegionState(kind="image", mask=mask)
            self.events_s = []
        return self.region

    def follow_drawn_mask(self, layers: list[np.ndarray] | None, time_s: float) -> RegionState:
        """The brush strokes, painted on the frame at video time `time_s`, carried through the
        selection with the object they cover: the region becomes that object's followed track
        with the painted shape on every frame; its contacts are the lane's markers."""
        from foley_core.vision.mask_follow import follow_mask_in_video  # scipy: only here

        info = self.require_video()
        mask = region_spec.painted_mask(layers, info.width, info.height)
        start_s, end_s = self.selection
        track = follow_mask_in_video(str(info.path), mask, time_s=float(time_s), start_s=start_s,
                                     duration_s=end_s - start_s)
        with self.lock:
            self._push_region()
            self.region = RegionState(kind="track", track=track)
            self.events_s = []
        self.find_contacts()
        return self.region

    def propose_region(self, method: str = "motion", *, vocabulary: str = "", caption: str = "") -> list:
        """Find candidate objects in the selection: 'motion' (frame differencing, always offline)
        or 'detection' (YOLO-World; needs its weights). Each track gets its motion curve and
        contact times; the first (strongest) track becomes the region."""
        from foley_core import vision  # loads torch (~2 s): only once a region is seeded

        info = self.require_video()
        start_s, end_s = self.selection
        if method not in ("motion", "detection"):
            raise ValueError(f"unknown proposal method {method!r}")
        source = method
        track_set = vision.detect_tracks(
            info.path, vocab=vocabulary or None, caption=(caption or "").strip() or None,
            start_s=start_s, duration_s=end_s - start_s,
            method="motion" if method == "motion" else "yolo-world")
        tracks = list(track_set.tracks)
        if not tracks:
            raise MaskError(f"No {'moving' if source == 'motion' else 'detected'} object found "
                            f"between {start_s:.1f} and {end_s:.1f} s: paint the mask by hand "
                            "instead.")
        with self.lock:
            self.tracks = {t.id: t for t in tracks}
            self._push_region()
            self.select_track(tracks[0].id)
        return tracks

    @_edit
    def select_track(self, track_id: str) -> RegionState:
        if not self.tracks:
            raise MaskError("No tracks yet: press 'Propose from motion' or 'Propose from detection'.")
        if track_id not in self.tracks:
            raise MaskError(f"There is no track {track_id!r}; choose one of "
                            f"{', '.join(self.tracks)}.")
        track = self.tracks[track_id]
        with self.lock:
            self.region = RegionState(kind="track", track=track)
            self.events_s = [float(e) for e in np.asarray(track.events_s).ravel()]
            curve = np.asarray(track.curve, dtype=np.float64).ravel()
            if curve.size:
                times = np.asarray(track.curve_times_s, dtype=np.float64).ravel()
                self.background = {**self.background,
                                   "motion_times_s": times.tolist(), "motion": curve.tolist()}
            self.curve_json = self._curve_frame(keep_curve=True)
        return self.region

    @_edit
    def clear_region(self) -> RegionState:
        with self.lock:
            self._push_region()
            self.region = RegionState()
            self.events_s = []
            self.background.pop("motion", None)
            self.background.pop("motion_times_s", None)
            self.curve_json = self._curve_frame(keep_curve=True)
        return self.region

    def undo_region(self) -> RegionState:
        with self.lock:
            if not self.region_history:
                raise MaskError("Nothing to undo in the mask.")
            self.region = self.region_history.pop()
        return self.region

    def region_mask_at(self, time_s: float) -> np.ndarray | None:
        """The region's mask (H, W) at `time_s` in video pixels (a track's follows the object)."""
        info = self.require_video()
        if self.region.kind == "image":
            return self.region.mask
        if self.region.kind == "track":
            from foley_core.vision import tracks as vtracks  # torch: only with a track

            return vtracks.track_masks(self.region.track, [float(time_s)], info.width, info.height)[0]
        return None

    def overlay(self, time_s: float | None = None) -> np.ndarray:
        """The frame at `time_s` with the region tinted red (what the model will listen to)."""
        frame = self.frame(time_s)
        mask = self.region_mask_at(self.frame_time_s)
        if mask is None:
            return frame
        mask = cv2.resize(np.asarray(mask, np.float32), (frame.shape[1], frame.shape[0]),
                          interpolation=cv2.INTER_NEAREST)
        out = frame.astype(np.float32)
        a = 0.45 * mask[..., None]
        out = out * (1 - a) + MASK_COLOUR * a
        return np.clip(out, 0, 255).astype(np.uint8)

    def generation_mask(self):
        """The region in the form generate() takes."""
        if self.region.kind == "image":
            return self.region.mask
        if self.region.kind == "track":
            return Region(track=self.region.track)
        return None

    # ------------------------------------------------------------------ curve
    def _curve_frame(self, *, keep_curve: bool = False, old_selection=None) -> str:
        """The curve editor value for the current selection (times relative to its start)."""
        start_s, end_s = self.selection
        duration = max(0.0, end_s - start_s)
        times = values = None
        if keep_curve:
            pts = curve_widget.curve_points(self.curve_json)
            if pts is not None:
                # keep the curve where it was in the video: cut (or extend flat) to the new range
                old_start = (old_selection or self.selection)[0]
                order = np.argsort(pts[0], kind="stable")
                t, v = pts[0][order] + old_start - start_s, pts[1][order]
                if t[-1] > 0 and t[0] < duration:
                    inside = (t > 1e-6) & (t < duration - 1e-6)
                    times = np.concatenate([[0.0], t[inside], [duration]])
                    values = np.interp(times, t, v)
        bg = self.background or {}
        fps = float(bg.get("fps", constants.CURVE_FPS))

        def window(seq, seq_times=None):
            if not seq:
                return None
            arr = np.asarray(seq, dtype=np.float64)
            if seq_times is not None:
                ts = np.asarray(seq_times, dtype=np.float64)
                grid = start_s + (np.arange(max(1, round(duration * fps))) + 0.5) / fps
                return np.interp(grid, ts, arr, left=0.0, right=0.0)
            i0, i1 = int(round(start_s * fps)), int(round(end_s * fps))
            return arr[i0:i1]

        motion = window(bg.get("motion"), bg.get("motion_times_s"))
        if motion is not None and motion.size and motion.max() > 0:
            motion = motion / motion.max()
        return curve_widget.curve_value(
            times, values, duration_s=duration, start_s=start_s, background_fps=fps,
            motion=motion, loudness=window(bg.get("loudness")),
            events_s=[e - start_s for e in self.events_s if start_s <= e <= end_s])

    @_edit
    def set_curve(self, value: str | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Store the curve editor's value (validated)."""
        pts = curve_widget.curve_points(value)
        if pts is not None:
            self._validated_curve(pts)
        with self.lock:
            self.curve_json = value or self._curve_frame()
        return pts

    def _validated_curve(self, pts) -> np.ndarray:
        start_s, end_s = self.selection
        return loudness.resample_curve(pts[0], pts[1], duration_s=end_s - start_s,
                                       keep_peaks=True)

    @_edit
    def curve_preset(self, name: str) -> str:
        """A preset curve over the selection: flat, fade in, fade out, hits (at the detected
        contacts), motion (the region's motion energy), or none."""
        start_s, end_s = self.selection
        d = end_s - start_s
        if d <= 0:
            raise TimeRangeError("Load a video (or select a time range) before choosing a curve.")
        if name == "none":
            times = values = None
        elif name == "flat":
            times, values = [0.0, d], [0.8, 0.8]
        elif name == "fade in":
            times, values = [0.0, d], [0.0, 1.0]
        elif name == "fade out":
            times, values = [0.0, d], [1.0, 0.0]
        elif name in ("hits", "motion"):
            times, values = self._derived_curve(name)
        else:
            raise ValueError(f"unknown curve preset {name!r}")
        with self.lock:
            self.curve_json = curve_widget.with_curve(self._curve_frame(), times, values)
        return self.curve_json

    def _derived_curve(self, name: str):
        start_s, end_s = self.selection
        d = end_s - start_s
        if name == "hits":
            events = [e - start_s for e in self.events_s if start_s <= e <= end_s]
            if not events:
                raise MaskError("No contacts detected in the selection: propose the region from "
                                "motion or a detection first (contacts come from its movement).")
            from foley_core.vision.curves import hits_curve  # torch: only with contacts

            return hits_curve(events, duration_s=d)
        bg = curve_widget.parse_curve_value(self._curve_frame())["background"]
        motion = bg.get("motion") or []
        if not motion:
            raise MaskError("No motion trace yet: propose the region from motion or a detection first.")
        values = np.clip(np.asarray(motion, dtype=np.float64), 0, 1)
        times = (np.arange(len(values)) + 0.5) / float(bg.get("fps", constants.CURVE_FPS))
        return times, values

    # ------------------------------------------------------------------ onsets lane
    def lane_onsets(self) -> list[float] | None:
        """The hits the lane shows, in selection seconds (None: untouched, the video's contacts)."""
        if self.user_onsets_video_s is None:
            return None
        start_s, end_s = self.selection
        # rounded to the microsecond: the round trip through video time adds float noise
        return [round(t - start_s, 6) for t in self.user_onsets_video_s if start_s <= t < end_s]

    @property
    def onsets_json(self) -> str:
        """The onsets lane's value for the current selection."""
        start_s, end_s = self.selection
        return onsets_widget.lane_value(
            start_s=start_s, duration_s=max(0.0, end_s - start_s),
            contacts_s=[e - start_s for e in self.events_s if start_s <= e < end_s],
            onsets_s=self.lane_onsets())

    @_edit
    def set_onsets(self, value: str | dict | None) -> bool:
        """Store the lane's value (checked: OnsetError and nothing changed if it cannot be
        used). Taps the user asked to snap are moved onto the contacts within
        SNAP_TOLERANCE_S; returns True when that changed what the lane must show."""
        from foley_core.events import snap_onsets

        start_s, end_s = self.selection
        lane = onsets_widget.parse_lane_value(value, end_s - start_s)
        onsets = lane["onsets_s"]
        snapped = False
        if onsets is not None and lane["tapped"] and lane["snap"]:
            contacts = [e - start_s for e in self.events_s if start_s <= e < end_s]
            onsets, snapped = snap_onsets(onsets, contacts, SNAP_TOLERANCE_S), True
        with self.lock:
            if onsets is None:
                self.user_onsets_video_s = None
            else:
                self._set_lane_hits(onsets)
        return snapped

    def _set_lane_hits(self, onsets_s) -> None:
        """The lane's hits in the selection become `onsets_s` (selection seconds); the user's
        hits outside the selection stay (call with the lock held)."""
        start_s, end_s = self.selection
        kept = [t for t in (self.user_onsets_video_s or []) if not start_s <= t < end_s]
        self.user_onsets_video_s = sorted(kept + [start_s + float(t) for t in onsets_s])

    @_edit
    def apply_sketch(self, path: str | Path) -> tuple[int, int]:
        """A vocal sketch (a voice imitation, recorded or uploaded) becomes the selection's
        loudness curve and its hits (the lane), mapped from the recording's first sample onto
        the selection's start. Returns (curve points, hits). CurveError for a silent sketch,
        MediaError for a file that is not audio; nothing changes then."""
        from foley_core.sketch import sketch_conditions

        start_s, end_s = self.selection
        if end_s - start_s <= 0:
            raise TimeRangeError("Load a video (or select a time range) before using a sketch.")
        audio, sr = audio_io.read_audio(str(path))
        curve, onsets = sketch_conditions(audio, sr, end_s - start_s)
        times = (np.arange(curve.size) + 0.5) / constants.CURVE_FPS
        with self.lock:
            self.curve_json = curve_widget.with_curve(self._curve_frame(), times.tolist(),
                                                      np.asarray(curve, float).tolist())
            self._set_lane_hits(onsets)
        return int(curve.size), int(len(onsets))

    def find_contacts(self) -> list[float]:
        """Contacts of the region's motion over the selection (selection seconds): shown in the
        lane and the curve editor, and what an untouched lane uses."""
        from foley_core.generate import video_contact_onsets

        info = self.require_video()
        region = self.generation_mask()
        if region is None:
            raise MaskError("Mark the object that makes the sound first (paint it or propose a "
                            "region): contacts come from its movement.")
        start_s, end_s = self.selection
        found = video_contact_onsets(str(info.path), info, region, start_s=start_s,
                                     duration_s=end_s - start_s)
        with self.lock:
            self.events_s = sorted([e for e in self.events_s if not start_s <= e < end_s]
                                   + [start_s + float(t) for t in found])
            self.curve_json = self._curve_frame(keep_curve=True)
        return [float(t) for t in found]

    # ------------------------------------------------------------------ reference sound
    def search_references(self, text: str, category: str | None = None,
                          k: int = REFERENCE_RESULTS, *, caption: str = "",
                          min_s: float | None = None, max_s: float | None = None,
                          kind: str | None = None) -> list:
        """Library clips whose captions are nearest in meaning to `text` (best first). An empty
        `text` searches by `caption` (the sound being described); with neither, a category
        lists that category's clips. `min_s`/`max_s` keep clips of that length only (None = no
        bound); `kind` ('oneshot' / 'sustained', or ANY_KIND / None) clips of that kind only.
        Returns [SearchHit]."""
        lib = sound_library()
        category = None if not category or category == ALL_CATEGORIES else str(category)
        kind = None if not kind or kind == ANY_KIND else kind
        query = search_query(text, caption)
        if not query:
            if category is None:
                raise CaptionError("Type what to look for (or a caption), or pick a category.")
            return [SearchHit(e, 0.0) for e in lib.by_category(category, min_s=min_s, max_s=max_s,
                                                                kind=kind, limit=k)]
        return lib.search(query, k=k, category=category, min_s=min_s, max_s=max_s, kind=kind)

    # ------------------------------------------------------------------ the user's sound folders
    def add_library_folder(self, path: str) -> Any:
        """Add a folder of the user's sounds on this machine to the library (searched, and picked
        from by the caption), remembered in the user's settings for every project; returns what
        its scan read (foley_core.library.FolderScan). MediaError for a missing folder, a file,
        or a folder with no usable sound."""
        return SAVED_FOLDERS.add(path)

    def remove_library_folder(self, path: str) -> None:
        """Stop searching a saved folder (its files are untouched)."""
        SAVED_FOLDERS.remove(path)

    def library_folders(self) -> list[tuple[str, str]]:
        """(folder, what it holds or why it is not searched) of each of the user's saved folders."""
        return saved_library_folders()

    def reference_thumbnails(self, hits) -> list:
        """The waveform thumbnail (peak levels, linear full scale; None if unreadable) of each hit."""
        return sound_library().peaks([h.entry for h in hits])

    def choose_reference(self, clip_id: str) -> ReferenceChoice:
        """Start generation from a library clip (read and checked now, so a damaged file is
        reported here rather than at Generate)."""
        lib = sound_library()
        if not clip_id:
            raise FoleyError("Pick a clip from the search results first.")
        lib.get(clip_id)                       # a clear error for an unknown id
        choice = ReferenceChoice(load_reference(clip_id, library=lib))
        with self.lock:
            self.reference = choice
        return choice

    def upload_reference(self, path: str | Path) -> ReferenceChoice:
        """Start generation from the user's own sound file (any common audio format, or a
        video's soundtrack). The session keeps its own copy: an upload is a temporary file that
        may disappear before the project is saved (which copies it into the project)."""
        if path is None or not str(path).strip():
            raise MediaError("No sound file given: choose an audio file to upload.")
        loaded = load_reference(Path(path))
        kept = fproject.store_file_by_content(loaded.entry.path, self.work_dir / "references").absolute()
        entry = dataclasses.replace(loaded.entry, path=kept, file=str(kept))
        choice = ReferenceChoice(dataclasses.replace(loaded, entry=entry))
        with self.lock:
            self.reference = choice
        return choice

    def clear_reference(self) -> None:
        with self.lock:
            self.reference = None

    def set_reference_strength(self, strength: float) -> float:
        self.reference_strength = _strength(strength)
        return self.reference_strength

    def reference_preview_wav(self) -> Path | None:
        """The chosen reference as a WAV to play (None without one)."""
        ref = self.reference
        if ref is None:
            return None
        out = self.work_dir / f"reference-{uuid.uuid4().hex[:8]}.wav"
        audio_io.write_wav(out, np.asarray(ref.loaded.audio, np.float32), int(ref.loaded.sr))
        return out

    def reference_attribution(self) -> str:
        """Who made the chosen clip and its licence, as shown beside the picker."""
        if self.reference is None:
            return ""
        return self.reference.entry.attribution_text

    # ------------------------------------------------------------------ generation
    def generate(self, *, caption: str, negative_caption: str = "", seed: int = 0,
                 steps: int = constants.DEFAULT_STEPS, text_scale: float = constants.DEFAULT_TEXT_SCALE,
                 video_scale: float = constants.DEFAULT_VIDEO_SCALE,
                 curve_scale: float | None = None,
                 conform: float = 1.0, candidates: int = 1, model: str = "embedded",
                 strength: float | None = None, video_onsets: bool = True, source: str = "auto",
                 take: tuple[np.ndarray, int] | None = None,
                 regenerate_span_s: tuple[float, float] | None = None,
                 progress: Callable[[float, str], None] | None = None) -> list[Candidate]:
        """Run the engine over the selection with every instruction the user gave; with a
        chosen reference sound, audio-to-audio from it at `strength` (None = the session's).
        `source` (constants.SOURCES), without a chosen reference: "auto" (library clips the
        caption picks, shaped by the model, where the model can start from a sound), "library"
        or "model" (from scratch).
        `curve_scale`: curve guidance (None = the model's own value, 1 = off).
        `video_onsets`: sounds start where the region's motion shows contacts (generate()
        finds them over the selection; the used ones are in `generation_meta["onsets_s"]`).
        `take` + `regenerate_span_s`: remake only that span (selection seconds) of `take`
        (audio, sr), the rest kept sample for sample (see `regenerate_span`)."""
        # looked up at call time, so a replaced foley_core.generate.generate is the one called
        from foley_core.generate import generate

        info = self.require_video()
        caption = captions.validate_caption(caption or "")
        negative = (negative_caption or "").strip() or None
        start_s, end_s = self.selection
        pts = curve_widget.curve_points(self.curve_json)
        curve = None
        if pts is not None:
            self._validated_curve(pts)
            curve = (pts[0], pts[1])
        seed, steps = _int(seed, "seed", 0, constants.MAX_SEED), _int(steps, "steps", 1, constants.MAX_STEPS)
        candidates = _int(candidates, "candidates", 1, 8)
        curve_scale = _curve_scale(curve_scale)
        if curve_scale not in (None, 1.0) and model in backends.available_backends() \
                and not has_curve_guidance(model):
            raise FoleyError(f"The {model} model has no curve guidance: use the model's value (or 1 = "
                             "off); conform still makes the sound follow your curve.")
        if source not in constants.SOURCES:
            raise FoleyError(f"Choose the source of the sound: one of {', '.join(constants.SOURCES)}.")
        reference = self.reference
        ref_kwargs = {}
        if reference is not None and source == "model":
            raise FoleyError("A reference sound is chosen, so the take cannot be made from scratch: "
                             "press 'No reference' or choose another source.")
        if reference is not None:
            if strength is not None:
                self.set_reference_strength(strength)
            ref_kwargs = {"reference": reference.loaded, "strength": self.reference_strength}
        video_onsets = bool(video_onsets)
        # generation uses exactly what the onsets lane shows: the user's hits (an emptied lane
        # is "no hits"), or, when untouched, the video's contacts as before
        onsets = self.lane_onsets()
        if onsets is not None:
            video_onsets = False
        self.cancel_event.clear()
        on_progress = _step_progress(progress)
        request = GenerationRequest(
            caption=caption, negative_caption=negative, video=info.path, start_s=start_s,
            duration_s=end_s - start_s, region=self.generation_mask(), curve=curve, seed=seed,
            candidates=candidates, steps=steps, text_scale=float(text_scale),
            video_scale=float(video_scale), curve_scale=curve_scale, video_onsets=video_onsets,
            onsets_s=onsets, conform=float(conform) if curve is not None else None, source=source,
            model=model, take=take, regenerate_span_s=regenerate_span_s, **ref_kwargs)
        # the caption picks from the user's folders too (and a chosen clip of theirs is found)
        result = generate(request, progress=on_progress, cancel=self.cancel_event.is_set,
                          library=sound_library())
        report = result.report
        with self.lock:
            self.candidates = _candidates(result, seed)
            self.generation_meta = report.to_json()
            # what a kept take stores: the region and curve as the project keeps them
            self.candidate_request = request.replace(
                region=_mask_spec(self.region), curve=None if curve is None else _curve_spec(*curve))
            self.candidate_report = report
            self.candidate_settings = {
                "caption": caption, "negative_caption": negative or "", "seed": seed,
                "steps": steps, "text_scale": float(text_scale), "video_scale": float(video_scale),
                "curve_scale": curve_scale, "conform_strength": float(conform), "model": model,
                "start_s": start_s, "duration_s": end_s - start_s, "curve": curve,
                "video_onsets": video_onsets, "source": source,
                "onsets_s": report.onsets_s if onsets is None else onsets,
            }
        return self.candidates

    def cancel(self) -> None:
        self.cancel_event.set()

    def candidate(self, index: int) -> Candidate:
        if not self.candidates:
            raise FoleyError("Nothing generated yet: press Generate first.")
        if not 0 <= index < len(self.candidates):
            raise FoleyError(f"There is no candidate {index + 1}; choose 1 to {len(self.candidates)}.")
        return self.candidates[index]

    # ------------------------------------------------------------------ stems
    def regenerate_span(self, stem_id: str, start_s: float, end_s: float, *, seed: int,
                        candidates: int = 1,
                        progress: Callable[[float, str], None] | None = None) -> list[Candidate]:
        """New takes of stem `stem_id` in which only [start_s, end_s) (seconds into the stem)
        is made again, with the stem's own settings (loaded into the editor) and `seed`; outside
        the span each take is the stem's audio sample for sample. Keep one with 'Replace
        selected stem'."""
        stem = self.stem(stem_id)
        st = self.load_stem_settings(stem_id)
        start_s, end_s = _float(start_s, "span start"), _float(end_s, "span end")
        if not 0.0 <= start_s < end_s <= stem.source_duration_s + 1e-6:
            raise TimeRangeError(f"The span must lie inside the stem (0-{stem.source_duration_s:.2f} s) "
                                 f"and end after it starts; got {start_s:g}-{end_s:g} s.")
        return self.generate(caption=st["caption"], negative_caption=st["negative_caption"],
                             seed=seed, steps=st["steps"], text_scale=st["text_scale"],
                             video_scale=st["video_scale"], curve_scale=st["curve_scale"],
                             conform=st["conform"], video_onsets=st["video_onsets"],
                             source=st["source"], candidates=candidates, model=st["model"],
                             strength=st["strength"] if self.reference is not None else None,
                             take=(np.asarray(stem.audio), int(stem.sr)),
                             regenerate_span_s=(start_s, end_s), progress=progress)

    @_edit
    def keep_candidate(self, index: int = 0, *, replace_id: str | None = None):
        """Add a candidate to the project as a stem placed at the selection's start (or put it
        in place of stem `replace_id`, keeping that stem's mix settings)."""
        cand = self.candidate(index)
        settings = self.candidate_request.for_stem(self.candidate_report, index)
        with self.lock:
            if replace_id is not None:
                old = self.stem(replace_id)
                stem = fproject.Stem(audio=cand.audio, sr=cand.sr, settings=settings,
                                     mix=dataclasses.replace(old.mix), name=_short(settings.caption),
                                     metrics=dict(cand.metrics))
                i = self.project.index(replace_id)
                self.project.remove_stem(replace_id)
                self.project.add_stem(stem, index=i)
            else:
                stem = fproject.Stem.new(cand.audio, cand.sr, settings,
                                         name=_short(settings.caption), metrics=dict(cand.metrics))
                self.project.add_stem(stem)
            self.autosave()
        return stem

    def stem(self, stem_id: str):
        for s in self.project.stems:
            if s.id == stem_id:
                return s
        raise ProjectError("That stem no longer exists (it was deleted or undone); pick another.")

    @_edit
    def update_stem(self, stem_id: str, **mix: Any):
        """Change a stem's mix settings: gain_db, pan, offset_s, trim_start_s, trim_end_s,
        fade_in_s, fade_out_s, mute, solo."""
        stem = self.stem(stem_id)
        edited = stem.mix.edited(mix, source_duration_s=stem.source_duration_s)
        if edited == stem.mix:
            return stem                 # nothing changed: no undo step (a box left as it was)
        with self.lock:
            stem = self.stem(stem_id)
            stem.mix = edited
            self.autosave()
        return stem

    @_edit
    def delete_stem(self, stem_id: str) -> None:
        with self.lock:
            self.stem(stem_id)
            self.project.remove_stem(stem_id)
            self.autosave()

    @_edit
    def rename_stem(self, stem_id: str, name: Any) -> str:
        """Name a stem (its exported file names, DAW track and BWF description). ProjectError
        in words for an empty or too long name, or one with characters a file name cannot
        hold; the stem keeps its name then. Returns the name as kept."""
        checked = fproject.checked_name(name, "The stem's name")
        with self.lock:
            kept = self.stem(stem_id).rename(checked)
            self.autosave()
        return kept

    def undo(self) -> None:
        """Go back to the state before the last edit (stems, their mix and names, the curve,
        the hits, the region). NothingToUndo when there is none."""
        with self.lock:
            self._restore_edit_state(self.history.undo(self._edit_state()))
            self.autosave()

    def redo(self) -> None:
        """Make again the edit the last undo took back. NothingToUndo when there is none (a
        new edit after an undo clears what could be redone)."""
        with self.lock:
            self._restore_edit_state(self.history.redo(self._edit_state()))
            self.autosave()

    def _edit_state(self, *, copy: bool = True) -> EditState:
        """The editable state now; `copy=False` shares the live objects (only to compare)."""
        return EditState(
            project=self.project.copy() if copy else self.project, curve_json=self.curve_json,
            selection=tuple(self.selection),
            user_onsets_video_s=(None if self.user_onsets_video_s is None
                                 else list(self.user_onsets_video_s)),
            region=dataclasses.replace(self.region) if copy else self.region,
            events_s=list(self.events_s), background=dict(self.background))

    def _restore_edit_state(self, state: EditState) -> None:
        """Put `state` back (call with the lock held). The curve stays where it was in the
        video if the selection moved since."""
        self.project = state.project
        self.user_onsets_video_s = state.user_onsets_video_s
        self.region, self.events_s, self.background = state.region, state.events_s, state.background
        self.curve_json = state.curve_json
        self.curve_json = self._curve_frame(keep_curve=True, old_selection=state.selection)

    def stem_settings(self, stem_id: str) -> dict:
        """A stem's generation settings as editor values (to load them back)."""
        st = self.stem(stem_id).settings
        curve = None if st.curve is None else {"times_s": st.curve.times_s.tolist(),
                                               "values": st.curve.values.tolist()}
        return {"caption": st.caption or "", "negative_caption": st.negative_caption or "",
                "seed": int(st.seed), "steps": int(st.steps), "text_scale": float(st.text_scale),
                "video_scale": float(st.video_scale),
                "curve_scale": None if st.curve_scale is None else float(st.curve_scale),
                "conform": DEFAULTS["conform"] if st.conform is None else float(st.conform),
                "model": st.model.backend, "start_s": float(st.start_s),
                "duration_s": float(st.duration_s or 0.0), "curve": curve,
                "reference": None if st.reference is None else dataclasses.asdict(st.reference),
                "video_onsets": bool(st.video_onsets), "source": st.source,
                "onsets_s": None if st.onsets_s is None else [float(t) for t in st.onsets_s],
                "strength": (default_reference_strength() if st.reference is None
                             or st.reference.strength is None else float(st.reference.strength))}

    @_edit
    def load_stem_settings(self, stem_id: str) -> dict:
        """Put a stem's selection, region, curve and reference sound back into the editor;
        returns its settings. A reference that can no longer be found is named in
        `settings["reference_missing"]` (and no reference is chosen), a region that does not
        fit the loaded video in `settings["region_missing"]` (and the region stays as it was)."""
        st = self.stem_settings(stem_id)
        st["reference_missing"] = None
        st["region_missing"] = None
        if self.video is not None:
            try:
                self._restore_region(self.stem(stem_id).settings.region)
            except FoleyError as err:
                st["region_missing"] = (f"The stem's region cannot be used on this video ({err}); "
                                        "mark the object again.")
        ref = st["reference"]
        if ref is None:
            self.clear_reference()
        else:
            try:
                self._restore_reference(ref)
            except FoleyError as err:
                self.clear_reference()
                st["reference_missing"] = (f"The stem's reference sound \"{ref.get('caption') or ref['clip_id']}\" "
                                           f"cannot be loaded ({err}); choose it again or pick another.")
            self.set_reference_strength(st["strength"])
        if self.video is not None and st["duration_s"]:
            self.set_selection(st["start_s"], st["start_s"] + st["duration_s"])
        curve = st["curve"]
        with self.lock:
            if curve:
                self.curve_json = curve_widget.with_curve(
                    self._curve_frame(), curve.get("times_s"), curve.get("values"))
            else:
                self.curve_json = self._curve_frame()
            # hits the user placed come back into the lane; a stem made from the video's
            # contacts leaves the lane untouched (its contacts are found again)
            user = st["onsets_s"] is not None and not st["video_onsets"]
            start_s = self.selection[0]
            self.user_onsets_video_s = ([start_s + t for t in st["onsets_s"]] if user else None)
        return st

    def _restore_region(self, region: Region | None) -> RegionState:
        """A stem's stored region as the editor's region: a painted image as it was, a track
        with its boxes and, when it carried them, its per-frame masks (so a followed painted
        shape comes back as it moved), a box as a painted box; None the whole frame."""
        info = self.require_video()
        size = (info.width, info.height)
        if region is None:
            state = RegionState()
        else:
            state = _region_state(region, size)
        with self.lock:
            if not _same_region(state, self.region):
                self._push_region()
                self.region = state
                self.events_s = []
        return self.region

    def _restore_reference(self, ref: dict) -> ReferenceChoice:
        lib = sound_library()
        if ref["clip_id"] in lib:
            return self.choose_reference(ref["clip_id"])
        if ref.get("path") and Path(ref["path"]).is_file():
            return self.upload_reference(ref["path"])
        raise MediaError(f"no library clip '{ref['clip_id']}' and no file '{ref.get('path')}'")

    # ------------------------------------------------------------------ mix, meter, export
    def mix(self, *, sr: int = constants.EXPORT_SR, selection_only: bool = False) -> np.ndarray:
        audio = self.project.mix(sr=sr)
        if selection_only and self.video is not None:
            i0, i1 = (int(round(t * sr)) for t in self.selection)
            audio = audio[i0:i1]
        return audio

    def meter(self, target_lufs: float | None) -> dict:
        """Loudness of the mix as it is, and after mastering to the export target."""
        if not self.project.stems:
            return {"empty": True}
        audio = self.mix()
        sr = constants.EXPORT_SR
        _, report = mixing.master(audio, sr, target_lufs=target_lufs,
                                  ceiling_dbtp=self.ceiling_dbtp)
        return {"empty": False, "lufs": _finite(mixing.integrated_lufs(audio, sr)),
                "true_peak_dbtp": _finite(mixing.true_peak_dbtp(audio, sr)), "master": report}

    @property
    def ceiling_dbtp(self) -> float:
        return float(self.project.export.ceiling_dbtp)

    def preview_wav(self, *, selection_only: bool = False) -> Path:
        out = self.work_dir / f"mix-preview-{uuid.uuid4().hex[:8]}.wav"
        audio_io.write_wav(out, self.mix(sr=constants.EXPORT_SR, selection_only=selection_only),
                           constants.EXPORT_SR)
        return out

    def candidate_reference_wav(self, index: int) -> Path | None:
        """The fitted reference the candidate started from, as a WAV (None without one)."""
        cand = self.candidate(index)
        if cand.reference_audio is None:
            return None
        out = self.work_dir / f"candidate-{index + 1}-reference-{uuid.uuid4().hex[:8]}.wav"
        audio_io.write_wav(out, cand.reference_audio, cand.sr)
        return out

    def candidate_wav(self, index: int) -> Path:
        cand = self.candidate(index)
        out = self.work_dir / f"candidate-{index + 1}-{uuid.uuid4().hex[:8]}.wav"
        audio_io.write_wav(out, cand.audio, cand.sr)
        return out

    def _require_stems(self) -> None:
        if not self.project.stems:
            raise ProjectError("The project has no stems yet: generate a sound and press "
                               "'Keep as stem' first.")

    def export_wav(self, target_lufs: float | None) -> tuple[Path, dict]:
        self._require_stems()
        out = self._export_path("mix.wav")
        report = export.export_mix_wav(self.project, out, target_lufs=target_lufs,
                                       ceiling_dbtp=self.ceiling_dbtp)
        return out, report

    def export_stems(self) -> Path:
        self._require_stems()
        out = self._export_path("stems.zip")
        export.export_stems_zip(self.project, out)
        return out

    def export_daw(self) -> tuple[Path, dict]:
        """The DAW session as a zip: a Reaper .rpp, the stems as BWFs at their offsets, the video."""
        from foley_core import export

        self._require_stems()
        out = self._export_path("daw-session.zip")
        return out, export.export_daw_session(self.project, out)

    def export_mp4(self, target_lufs: float | None, original_audio: str = "drop") -> Path:
        self.require_video()
        self._require_stems()
        out = self._export_path("video-with-foley.mp4")
        export.export_mp4(self.project, out, original_audio=original_audio,
                          target_lufs=target_lufs, ceiling_dbtp=self.ceiling_dbtp)
        return out

    @_edit
    def rename_project(self, name: str | None) -> str:
        """Name the project (its exports' file names and its saved zip); an empty name is
        'Untitled'. Returns the name as kept (Project.rename: one line, no control characters,
        length capped)."""
        with self.lock:
            self.project.rename(str(name or ""))
            self.autosave()
        return self.project.name

    def _export_path(self, name: str) -> Path:
        folder = self.work_dir / "exports" / time.strftime("%Y%m%d-%H%M%S")
        folder.mkdir(parents=True, exist_ok=True)
        stem = project_archive.project_slug(self.project.name or "project")
        return folder / f"{stem}-{name}"

    # ------------------------------------------------------------------ project files
    def save_project_zip(self) -> Path:
        """The project folder (with its video) as a zip to download."""
        return project_archive.save_archive(self.project, self._export_path("project.zip"),
                                            staging_dir=self.work_dir / "save")

    def load_project_file(self, path: str | Path) -> None:
        """Open a project: a zip saved by the studio (checked before it is unpacked, removed
        again if it does not load), or a project.json inside its folder."""
        dest = self.work_dir / "opened" / uuid.uuid4().hex[:8]
        project = project_archive.open_project_file(path, dest)
        try:
            self._adopt(project)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise

    def _adopt(self, project) -> None:
        info = None
        if getattr(project, "video_path", None):
            info = media.probe_video(project.video_path)
        with self.lock:
            self.history.clear()        # undo does not cross projects
            self.project = project
            self.video = info
            self.region = RegionState()
            self.region_history = []
            self.tracks = {}
            self.events_s = []
            self.user_onsets_video_s = None
            self.candidates = []
            if info is not None:
                sel = project.selection      # (start_s, duration_s)
                self.selection = ((float(sel[0]), float(sel[0]) + float(sel[1])) if sel else
                                  (0.0, min(info.duration_s, constants.MAX_GENERATION_SECONDS)))
                self.background = self._soundtrack_background(info)
            else:
                self.selection = (0.0, float(project.duration_s or 0.0))
                self.background = {}
            self.curve_json = self._curve_frame()
            self.autosave()

    # ------------------------------------------------------------------ autosave
    def autosave(self) -> None:
        """Save the project where a reopened page can offer to restore it."""
        if not self.project.stems and self.project.video_path is None:
            return
        if self._autosaver is None:
            self._autosaver = fproject.Autosaver(self.autosave_dir)
            log.debug("session %s autosaves to %s", self.id, self.autosave_dir)
        self.project.selection = (self.selection[0], self.selection[1] - self.selection[0])
        self._autosaver.save(self.project)

    @property
    def autosave_token(self) -> str:
        """What the browser keeps to be offered this session's autosave again (signed id)."""
        return _autosave_tokens(self.autosave_root).token(self.autosave_dir.name)

    def autosave_folder(self, token: object) -> Path | None:
        """The autosave folder a browser's token names, or None if this server did not sign it."""
        return _autosave_tokens(self.autosave_root).folder(token)

    def restore_autosave(self, token: object) -> None:
        """Restore the autosave a browser's token names; never a folder the browser chose."""
        folder = self.autosave_folder(token)
        if folder is None:
            raise ProjectError("That autosave is not one this server made for this browser, or "
                               "it is gone; nothing was restored.")
        self.restore(folder)

    def restore(self, folder: str | Path) -> None:
        self._adopt(fproject.load_project(folder))

    def close(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)


@functools.lru_cache(maxsize=8)
def _autosave_tokens(root: Path) -> AutosaveTokens:
    return AutosaveTokens(root)


def describe_autosave(folder: str | Path) -> str | None:
    """A one-line description of an autosaved project, or None if there is nothing to restore."""
    try:
        project = fproject.load_project(folder)
    except FoleyError as err:
        log.info("autosave %s cannot be restored: %s", folder, err)
        return None
    if not project.stems:
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(Path(folder, "project.json").stat().st_mtime))
    video = Path(project.video_path).name if project.video_path else "no video"
    return f"{len(project.stems)} stem(s) on {video}, saved {when}"


# ---------------------------------------------------------------------- helpers
def _int(value: Any, name: str, lo: int, hi: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FoleyError(f"The {name} must be a whole number; got {value!r}.") from None
    if not math.isfinite(number) or number != int(number) or not lo <= number <= hi:
        raise FoleyError(f"The {name} must be a whole number from {lo} to {hi}; got {value!r}.")
    return int(number)


def _float(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TimeRangeError(f"The {name} must be a number of seconds; got {value!r}.") from None
    if not math.isfinite(number):
        raise TimeRangeError(f"The {name} must be a number of seconds; got {value!r}.")
    return number


def _same_times(a: list[float] | None, b: list[float] | None, tol: float) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))


def _region_state(region: Region, size: tuple[int, int]) -> RegionState:
    """A stored (non-empty) region as the editor's, checked against the video's `size`."""
    from foley_core.vision import tracks as vtracks  # torch: only with a region
    from foley_core.vision.regions import track_from_spec, validate_region

    if region.kind == "track":
        return RegionState(kind="track", track=track_from_spec(region.track_spec(), size))
    image = (vtracks.box_mask(vtracks.validate_box(region.box, *size), *size)
             if region.kind == "box" else np.array(region.image, np.float32))
    validate_region(image, size)
    return RegionState(kind="image", mask=image)


def _same_region(a: RegionState, b: RegionState) -> bool:
    if a.kind != b.kind or a.track is not b.track:
        return False
    if a.mask is None or b.mask is None:
        return a.mask is b.mask
    return a.mask is b.mask or np.array_equal(a.mask, b.mask)


def _same_curve(a: EditState, b: EditState) -> bool:
    """The drawn curves agree in video time (to the widget's 4 decimals)."""
    pa, pb = curve_widget.curve_points(a.curve_json), curve_widget.curve_points(b.curve_json)
    if pa is None or pb is None:
        return pa is None and pb is None
    return (pa[0].shape == pb[0].shape
            and np.allclose(pa[0] + a.selection[0], pb[0] + b.selection[0], atol=1e-4)
            and np.allclose(pa[1], pb[1], atol=1e-4))


def _same_path(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def search_query(text: str | None, caption: str | None = "") -> str:
    """What a library search looks for: the typed query, or else the caption."""
    return " ".join(str(text or "").split()) or " ".join(str(caption or "").split())


def _curve_scale(value: Any) -> float | None:
    """Curve guidance as asked: None (the model's own value) or a number from 0 to 50."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FoleyError(f"The curve guidance must be a number (1 = off); got {value!r}.") from None
    if isinstance(value, bool) or not (math.isfinite(v) and 0.0 <= v <= MAX_CURVE_SCALE):
        raise FoleyError(f"The curve guidance must be a number from 0 to {MAX_CURVE_SCALE:g} "
                         f"(1 = off); got {value!r}.")
    return v


def _strength(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise FoleyError(f"The reference strength must be a number from 0 to 1; got {value!r}.") from None
    if not (math.isfinite(v) and 0.0 <= v <= 1.0):
        raise FoleyError(f"The reference strength must be from 0 (the reference as it is) to 1 "
                         f"(ignore it); got {value!r}.")
    return v


def _step_progress(progress: Callable[[float, str], None] | None) -> Callable[..., None]:
    """generate()'s progress(done, total) as the studio's progress(fraction, "step i/n, about
    N s left"), timed from now."""
    t0 = time.monotonic()

    def on_progress(done, total, *_):
        if progress is None or not total:
            return
        frac = min(1.0, float(done) / float(total))
        elapsed = time.monotonic() - t0
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        left = f", about {eta:.0f} s left" if math.isfinite(eta) else ""
        progress(frac, f"step {int(done)}/{int(total)}{left}")

    return on_progress


def _candidates(result, seed: int) -> list[Candidate]:
    """The takes of a generate() result, with their seeds, curve fit and reference audio."""
    report = result.report
    ref_audios = getattr(result, "reference_audios", None) or [None] * len(result.audios)
    seeds = report.seeds or [seed + i for i in range(len(result.audios))]
    r_before = report.curve_r_before or [None] * len(result.audios)
    r_after = report.curve_r_after or [None] * len(result.audios)
    per_candidate = [{"curve_r_before": b, "curve_r_after": a} if a is not None else {}
                     for b, a in zip(r_before, r_after)]
    return [Candidate(audio=np.asarray(a, np.float32), sr=int(result.sr), seed=int(s), metrics=dict(m),
                      reference_audio=None if r is None else np.asarray(r, np.float32))
            for a, s, m, r in zip(result.audios, seeds, per_candidate, ref_audios)]


def _mask_spec(region: RegionState):
    """The project's record of the region a take was made for."""
    track = region.track if region.kind == "track" else None
    return region_spec.mask_spec(region.kind, mask=region.mask,
                                 track_id=None if track is None else track.id,
                                 times_s=() if track is None else track.times_s,
                                 boxes=() if track is None else track.boxes,
                                 masks=() if track is None else [f.mask for f in track.frames],
                                 source=None if track is None else track.source)


def _curve_spec(times_s, values):
    """A drawn curve as the project stores it (strictly increasing times)."""
    t = np.asarray(times_s, np.float64)
    v = np.asarray(values, np.float64)
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    keep = np.concatenate([[True], np.diff(t) > 1e-6])
    return fproject.CurveSpec(times_s=t[keep], values=np.clip(v[keep], 0.0, 1.0))


def _short(text: str, n: int = 40) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"
