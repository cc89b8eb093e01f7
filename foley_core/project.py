"""Stems and projects: the versioned project folder, atomic save, load with clear errors, autosave.

Folder format (version 4):

    PROJECT_DIR/project.json          {"format": "foley-studio-project", "version": 4, ...}
                                      each stem's "settings" is its GenerationRequest.to_json()
    PROJECT_DIR/stems/<id>-<hash>.wav       the model's audio, mono 32-bit float WAV at its own rate
    PROJECT_DIR/stems/<id>-<hash>_mask.png  an image mask (8-bit greyscale), when the stem has one
    PROJECT_DIR/stems/<id>-<hash>_track.npz the per-frame masks of a track region that carries its
                                            shape (a followed painted mask): runs, exact
    PROJECT_DIR/references/<hash>/<name>    a copy of the user's own reference sound (one per content)
    PROJECT_DIR/media/<video file>          only with `save_project(..., copy_video=True)`

A stem made from a library clip stores the clip's id (and its path inside the library). One made
from the user's own sound file stores a copy of that file, so the project does not depend on an
upload that may be a temporary file; project.json keeps the copy's path relative to the folder.

Stem files are content-addressed (`<hash>` is a digest of the samples), so saving never
overwrites a file the previous project.json still needs: the files are written first (each
atomically), project.json is replaced last by an atomic rename (the commit point), and only then
are files no longer referenced removed. A crash at any moment leaves the previous good copy, and
an unchanged stem is never written twice (which is what makes autosave after every action cheap).

Stem audio and mask arrays are made read-only: `Project.copy()` shares them between snapshots.
"""

from __future__ import annotations

import copy as _copy
import functools
import hashlib
import json
import logging
import math
import os
import shutil
import time
import uuid
import weakref
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from foley_core import audio_io, constants
from foley_core.atomic import atomic_path, write_text_atomic
from foley_core.constants import EXPORT_SR, MAX_STEM_SECONDS, MAX_VIDEO_SECONDS, MIX_LIMITS
from foley_core.errors import FoleyError, MaskError, MixError, ProjectError
from foley_core.request import ArrayEq as _ArrayEq
# the parts of a stem's request, importable from here as before
from foley_core.request import CurveSpec, GenerationRequest, ModelSpec, Reference, Region  # noqa: F401
from foley_core.request import check_number as _number, readonly as _readonly

FORMAT = "foley-studio-project"
# 2: each stem's settings say where its sound came from ("source").
# 3: a stem's settings are its GenerationRequest, under the request's own field names.
# 4: a track region may keep its per-frame masks in a file ("track_masks"); a reader of format 3
#    would drop them and give back boxes, so it is told the folder is newer instead.
# Older folders are migrated when read (`MIGRATIONS`).
FORMAT_VERSION = 4
PROJECT_FILE = "project.json"
STEMS_DIR = "stems"
MEDIA_DIR = "media"
REFERENCES_DIR = "references"
MAX_CURVE_SCALE = constants.MAX_GUIDANCE_SCALE   # the range generate() accepts for curve guidance (0..50)
MAX_STEM_SR = audio_io.MAX_SR              # the highest sample rate a stem file may declare
DEFAULT_PROJECT_NAME = "Untitled"
MAX_NAME_CHARS = 80                         # a project's or stem's name (a track name in a DAW)
CAPTION_NAME_CHARS = 40                     # a stem's default name: its caption, cut to this


log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def display_name(text: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """`text` as a one-line name: control characters dropped, spaces collapsed, cut at a word
    boundary to at most `max_chars` characters ('' if nothing is left)."""
    if not isinstance(text, str):
        raise ProjectError(f"a name must be text; got {type(text).__name__}")
    words = "".join(c if c.isprintable() else " " for c in text).split()
    out = ""
    for word in words:
        candidate = f"{out} {word}" if out else word
        if len(candidate) > max_chars:
            return out or word[:max_chars]
        out = candidate
    return out


# Characters a name may not hold: it becomes a file name on every system (exports, DAW session).
FORBIDDEN_NAME_CHARS = '/\\:*?"<>|'


def checked_name(text: Any, what: str = "The name") -> str:
    """A name the user typed, refused in words (ProjectError) when it is empty, longer than
    MAX_NAME_CHARS, or holds a control character or one of FORBIDDEN_NAME_CHARS; returned with
    its spaces collapsed. (display_name, by contrast, quietly cleans names read from files.)"""
    if not isinstance(text, str):
        raise ProjectError(f"{what} must be text.")
    name = " ".join(text.split())
    if not name:
        raise ProjectError(f"{what} is empty: type at least one letter or digit.")
    if len(name) > MAX_NAME_CHARS:
        raise ProjectError(f"{what} is {len(name)} characters long; keep it to {MAX_NAME_CHARS}.")
    bad = sorted({c for c in name if c in FORBIDDEN_NAME_CHARS or not c.isprintable()})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise ProjectError(f"{what} cannot hold {shown}: these characters are not allowed in file "
                           "names.")
    return name


# --- stem description ----------------------------------------------------------------------


@dataclass(eq=False)
class MixSettings(_ArrayEq):
    """How a stem sits in the mix (see mixing.render_stem for the exact meaning of each)."""

    gain_db: float = 0.0
    pan: float = 0.0
    offset_s: float = 0.0
    trim_start_s: float = 0.0
    trim_end_s: float | None = None
    fade_in_s: float = 0.0
    fade_out_s: float = 0.0
    mute: bool = False
    solo: bool = False

    def __post_init__(self) -> None:
        # The studio's controls and render obey the same limits (constants.MIX_LIMITS): a value
        # outside them (a stem placed past any video, a gain that overflows) is refused here,
        # when the settings are built, not found out as silence or a crash at export.
        for name, (label, lo, hi) in MIX_LIMITS.items():
            value = getattr(self, name)
            if name == "trim_end_s" and value is None:
                continue
            setattr(self, name, _number(value, f"the stem's {label}", lo, hi, MixError))
        self.mute, self.solo = bool(self.mute), bool(self.solo)
        if self.trim_end_s is not None and self.trim_end_s <= self.trim_start_s:
            raise MixError(f"the trim end ({self.trim_end_s} s) must come after the trim start "
                           f"({self.trim_start_s} s)")

    def edited(self, changes: dict, *, source_duration_s: float) -> "MixSettings":
        """These settings with a user's edits (any of the fields, as typed: numbers or numeric
        text) applied, each checked against constants.MIX_LIMITS (read now, the limits render
        obeys) and the trim against the stem's length `source_duration_s`. Refusals say the
        control's name and its range in plain words."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown stem settings {sorted(unknown)}")
        checked = {}
        for key, value in changes.items():
            if key in ("mute", "solo"):
                checked[key] = bool(value)
            elif value is None and key == "trim_end_s":
                checked[key] = None
            else:
                checked[key] = _typed_mix_value(key, value)
        trim_start = checked.get("trim_start_s", self.trim_start_s)
        trim_end = checked.get("trim_end_s", self.trim_end_s)
        if trim_end is not None and trim_end <= trim_start:
            raise MixError(f"The trim end ({trim_end:g} s) must come after the trim start "
                           f"({trim_start:g} s).")
        if trim_start >= source_duration_s:
            raise MixError(f"The trim start ({trim_start:g} s) is past the end of the stem "
                           f"({source_duration_s:.2f} s).")
        return replace(self, **checked)


def _typed_mix_value(key: str, value: Any) -> float:
    """A typed mix value as a float within constants.MIX_LIMITS[key] (MixError otherwise)."""
    label, lo, hi = constants.MIX_LIMITS[key]
    label = label[:1].upper() + label[1:]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MixError(f"{label} must be a number; got {value!r}.") from None
    if not math.isfinite(number):
        raise MixError(f"{label} must be a finite number; got {value!r}.")
    if not lo <= number <= hi:
        raise MixError(f"{label} must be between {lo:g} and {hi:g}; got {number:g}.")
    return number


@dataclass(eq=False)
class Stem(_ArrayEq):
    """One generated sound: the model's mono audio, the request that made it (in the form a
    project stores, `GenerationRequest.stored`), and how it is mixed."""

    audio: np.ndarray
    sr: int
    settings: GenerationRequest = field(default_factory=GenerationRequest)
    mix: MixSettings = field(default_factory=MixSettings)
    name: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: str = field(default_factory=_now)
    metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        audio = np.asarray(self.audio)
        if audio.ndim != 1 or audio.shape[0] == 0:
            raise ProjectError(f"a stem's audio must be mono (n,) with at least one sample; got shape {audio.shape}")
        if not np.issubdtype(audio.dtype, np.floating) or not np.all(np.isfinite(audio)):
            raise ProjectError("a stem's audio must be finite floating-point samples (it contains NaN/inf "
                               "or is not float); regenerate it")
        peak = float(np.abs(audio).max())
        if peak > 1.0:
            # Audio files hold [-1, 1]; anything louder would be clipped on save.
            raise ProjectError(f"a stem's audio must stay within [-1, 1] (full scale); this one peaks at "
                               f"{peak:.3f}. Normalise it before adding it to the project")
        if isinstance(self.sr, bool) or not isinstance(self.sr, (int, np.integer)) or not 0 < self.sr <= MAX_STEM_SR:
            raise ProjectError(f"a stem's sample rate must be a whole number of Hz from 1 to {MAX_STEM_SR}; "
                               f"got {self.sr!r}")
        if audio.shape[0] > MAX_STEM_SECONDS * self.sr:
            raise ProjectError(f"a stem's audio may last at most {MAX_STEM_SECONDS:g} s; this one lasts "
                               f"{audio.shape[0] / self.sr:.0f} s")
        if not isinstance(self.id, str) or not self.id or not all(c.isalnum() or c in "-_" for c in self.id):
            raise ProjectError(f"a stem id must be letters, digits, '-' or '_'; got {self.id!r}")
        if not isinstance(self.settings, GenerationRequest):
            raise ProjectError(f"a stem's settings are the GenerationRequest that made it; got "
                               f"{type(self.settings).__name__}")
        self.settings = self.settings.stored()
        self.sr = int(self.sr)
        self.audio = _readonly(audio)
        self.name = display_name(self.name) or self.default_name()

    @classmethod
    def new(cls, audio: np.ndarray, sr: int, settings: GenerationRequest, **kwargs: Any) -> "Stem":
        """A fresh stem placed at the start of the video selection it was made for."""
        mix = kwargs.pop("mix", None) or MixSettings(offset_s=settings.start_s)
        return cls(audio=audio, sr=sr, settings=settings, mix=mix, **kwargs)

    @property
    def caption(self) -> str:
        return self.settings.caption or ""

    def default_name(self) -> str:
        """The name a stem gets from its caption: its first words, up to CAPTION_NAME_CHARS."""
        return display_name(self.caption, CAPTION_NAME_CHARS) or "stem"

    def rename(self, name: str) -> str:
        """Give the stem a name (export file names, DAW track names); '' goes back to the default."""
        self.name = display_name(name) or self.default_name()
        return self.name

    @property
    def source_duration_s(self) -> float:
        """Length of the model's audio (s)."""
        return self.audio.shape[0] / self.sr

    @property
    def end_s(self) -> float:
        """Where the stem ends on the timeline (s), after trim and offset."""
        end = self.source_duration_s if self.mix.trim_end_s is None else min(self.mix.trim_end_s,
                                                                              self.source_duration_s)
        return self.mix.offset_s + max(0.0, end - self.mix.trim_start_s)

    def render(self, sr: int = EXPORT_SR, total_s: float | None = None) -> np.ndarray:
        """This stem on a stereo timeline from time 0 (float32 `(n, 2)` at `sr`)."""
        from foley_core import mixing

        m = self.mix
        return mixing.render_stem(
            self.audio, self.sr, gain_db=m.gain_db, pan=m.pan, offset_s=m.offset_s,
            trim_start_s=m.trim_start_s, trim_end_s=m.trim_end_s, fade_in_s=m.fade_in_s,
            fade_out_s=m.fade_out_s, out_sr=sr, total_s=total_s,
        )


# --- project --------------------------------------------------------------------------------


@dataclass(eq=False)
class ExportSettings(_ArrayEq):
    target_lufs: float | None = -23.0   # None: no loudness normalisation
    ceiling_dbtp: float = -1.0

    def __post_init__(self) -> None:
        # the ranges mixing.master accepts, checked when a project is built or loaded
        if self.target_lufs is not None:
            self.target_lufs = _number(self.target_lufs, "the loudness target", -70.0, 0.0, MixError, " LUFS")
        self.ceiling_dbtp = _number(self.ceiling_dbtp, "the true-peak ceiling", -20.0, 0.0, MixError, " dBTP")


@dataclass(eq=False)
class Project(_ArrayEq):
    """A session: one video (or none), its stems, and export settings.

    `video_path` is absolute in memory; project.json also keeps it relative to the project folder
    so a folder moved together with its video still finds it. `selection` is the current video
    selection as (start_s, duration_s).
    """

    name: str = "Untitled"
    video_path: Path | None = None
    video_duration_s: float | None = None
    selection: tuple[float, float] | None = None
    stems: list[Stem] = field(default_factory=list)
    export: ExportSettings = field(default_factory=ExportSettings)
    created_at: str = field(default_factory=_now)
    modified_at: str = field(default_factory=_now)

    def __post_init__(self) -> None:
        self.name = display_name(self.name) or DEFAULT_PROJECT_NAME
        if self.video_path is not None:
            self.video_path = Path(self.video_path).expanduser().absolute()
        if self.video_duration_s is not None:
            # the video's length sets the length of every render: bounded like the videos we open
            self.video_duration_s = _number(self.video_duration_s, "the video duration", 0.0, MAX_VIDEO_SECONDS,
                                            ProjectError, " s")
            if self.video_duration_s <= 0:
                raise ProjectError(f"the video duration must be a positive number of seconds; "
                                   f"got {self.video_duration_s}")
        if self.selection is not None:
            self.selection = (_number(self.selection[0], "the selection start", 0.0, MAX_VIDEO_SECONDS,
                                      ProjectError, " s"),
                              _number(self.selection[1], "the selection length", 0.0, MAX_VIDEO_SECONDS,
                                      ProjectError, " s"))

    def rename(self, name: str) -> str:
        """Name the project (export folder, DAW session and BWF descriptions); '' = 'Untitled'."""
        self.name = display_name(name) or DEFAULT_PROJECT_NAME
        return self.name

    # stems
    def stem(self, stem_id: str) -> Stem:
        for s in self.stems:
            if s.id == stem_id:
                return s
        raise ProjectError(f"there is no stem with id {stem_id!r} in project {self.name!r}")

    def index(self, stem_id: str) -> int:
        return self.stems.index(self.stem(stem_id))

    def add_stem(self, stem: Stem, index: int | None = None) -> Stem:
        if any(s.id == stem.id for s in self.stems):
            raise ProjectError(f"the project already has a stem with id {stem.id!r}")
        self.stems.insert(len(self.stems) if index is None else index, stem)
        return stem

    def remove_stem(self, stem_id: str) -> Stem:
        stem = self.stem(stem_id)
        self.stems.remove(stem)
        return stem

    def move_stem(self, stem_id: str, index: int) -> None:
        """Move a stem to position `index` (0 = first; clamped to the list)."""
        stem = self.remove_stem(stem_id)
        self.stems.insert(max(0, min(index, len(self.stems))), stem)

    # timeline
    @property
    def duration_s(self) -> float:
        """The timeline length: the video's, or the latest stem end when there is no video."""
        if self.video_duration_s is not None:
            return float(self.video_duration_s)
        return max((s.end_s for s in self.stems), default=0.0)

    def render_stems(self, sr: int = EXPORT_SR) -> list:
        """Every stem on a full-length timeline from 0, as mixing.RenderedStem (mute/solo kept)."""
        from foley_core import mixing

        total_s = self.duration_s
        return [mixing.RenderedStem(s.render(sr, total_s), mute=s.mix.mute, solo=s.mix.solo, name=s.name)
                for s in self.stems]

    def mix(self, sr: int = EXPORT_SR) -> np.ndarray:
        """The unmastered mix, full length from time 0: float32 `(n, 2)` at `sr`."""
        from foley_core import mixing

        n = int(round(self.duration_s * sr))
        return mixing.mix_stems(self.render_stems(sr), n_samples=n)

    def copy(self) -> "Project":
        """A snapshot for undo: settings are copied, audio and mask arrays (read-only) are shared."""
        memo: dict[int, Any] = {}
        for s in self.stems:
            memo[id(s.audio)] = s.audio
            if s.settings.region is not None and s.settings.region.image is not None:
                memo[id(s.settings.region.image)] = s.settings.region.image
            if s.settings.region is not None and s.settings.region.track_masks is not None:
                memo[id(s.settings.region.track_masks)] = s.settings.region.track_masks
        return _copy.deepcopy(self, memo)


# --- serialisation ----------------------------------------------------------------------------


def _audio_digest(audio: np.ndarray, sr: int) -> str:
    h = hashlib.sha1(np.ascontiguousarray(audio).tobytes())
    h.update(f"|{audio.dtype.str}|{audio.shape}|{sr}".encode())
    return h.hexdigest()[:16]


_MASK_DIGESTS_KEPT = 64


class _DigestCache:
    """Digests keyed by array identity (the arrays are read-only, so identity implies content)."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[weakref.ref, str]] = {}
        self._masks: dict[int, tuple[tuple, str]] = {}

    def get(self, array: np.ndarray, extra: int) -> str:
        key = id(array)
        item = self._items.get(key)
        if item is not None and item[0]() is array:
            return item[1]
        digest = _audio_digest(array, extra)
        self._items = {k: v for k, v in self._items.items() if v[0]() is not None}
        self._items[key] = (weakref.ref(array), digest)
        return digest

    def masks(self, masks: tuple[dict, ...]) -> str:
        """The digest of a track region's masks (a Region's tuple, never changed once made;
        held here so its id stays its own). Hashing a long track's runs takes ~20 ms: autosave
        after every action would pay it for every such stem."""
        item = self._masks.get(id(masks))
        if item is not None and item[0] is masks:
            return item[1]
        from foley_core.region_spec import track_masks_arrays

        h = hashlib.sha1()
        for name, array in track_masks_arrays(masks).items():
            h.update(name.encode() + array.tobytes())
        while len(self._masks) >= _MASK_DIGESTS_KEPT:
            del self._masks[next(iter(self._masks))]
        self._masks[id(masks)] = (masks, h.hexdigest()[:16])
        return self._masks[id(masks)][1]


def _mask_png_bytes(image: np.ndarray) -> bytes:
    from io import BytesIO

    from PIL import Image

    buf = BytesIO()
    Image.fromarray(np.round(image * 255.0).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def _stem_to_json(stem: Stem, wav_name: str, mask_name: str | None, masks_name: str | None,
                  reference_file: str | None, directory: Path) -> dict:
    reference_path = None
    if reference_file is not None:
        # absolute as well, for readers that predate "file" (they then find it while the folder stays put)
        reference_path = str(directory.absolute() / reference_file)
    return {
        "id": stem.id,
        "name": stem.name,
        "created_at": stem.created_at,
        "audio": {"file": f"{STEMS_DIR}/{wav_name}", "sr": stem.sr, "n_samples": int(stem.audio.shape[0])},
        "settings": stem.settings.to_json(image_file=f"{STEMS_DIR}/{mask_name}" if mask_name else None,
                                          masks_file=f"{STEMS_DIR}/{masks_name}" if masks_name else None,
                                          reference_file=reference_file, reference_path=reference_path),
        "mix": _mix_to_json(stem.mix),
        "metrics": stem.metrics,
    }


def _mix_to_json(mix: MixSettings) -> dict:
    # UI widgets may hand back numpy scalars: store plain JSON numbers and booleans.
    out: dict[str, Any] = {}
    for f in fields(MixSettings):
        value = getattr(mix, f.name)
        out[f.name] = bool(value) if f.name in ("mute", "solo") else (None if value is None else float(value))
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _project_to_json(project: Project, directory: Path, stems: list[dict], modified_at: str,
                     video_path: Path | None) -> dict:
    video = None
    if video_path is not None:
        try:
            rel = Path(os.path.relpath(video_path, directory.absolute())).as_posix()
        except ValueError:  # another drive (Windows)
            rel = None
        video = {"path": str(video_path), "relative_path": rel}
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": project.name,
        "created_at": project.created_at,
        "modified_at": modified_at,
        "video": video,
        "video_duration_s": project.video_duration_s,
        "selection": list(project.selection) if project.selection is not None else None,
        "export": {"target_lufs": None if project.export.target_lufs is None else float(project.export.target_lufs),
                   "ceiling_dbtp": float(project.export.ceiling_dbtp)},
        "stems": stems,
    }


def save_project(project: Project, directory: str | os.PathLike, *, copy_video: bool = False,
                 _digests: _DigestCache | None = None) -> Path:
    """Save `project` into `directory` atomically as a whole; return the project.json path.

    Stem WAVs (32-bit float, exact), mask PNGs, track masks and copies of the user's own
    reference sounds are written first, each atomically and only if not already there;
    project.json is replaced last; unreferenced files in stems/ and references/ are removed
    after that. With `copy_video` the video is copied into `directory/media/` (once) and the
    project then points at the copy. Sets `project.modified_at` when the save succeeds.
    """
    directory = Path(directory).expanduser()
    if directory.exists() and not directory.is_dir():
        raise ProjectError(f"cannot save the project to '{directory}': it is a file, not a folder")
    json_path = directory / PROJECT_FILE
    if json_path.exists():
        try:
            existing = json.loads(json_path.read_text(encoding="utf-8"))
            foreign = not (isinstance(existing, dict) and existing.get("format") == FORMAT)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            foreign = False  # our own damaged file: replacing it is the point of saving
        if foreign:
            raise ProjectError(f"'{directory}' already holds a project.json that is not a Foley studio project; "
                               "choose an empty folder")
    check_project_folders(directory)     # saving deletes unused files: only ever inside the folder
    digests = _digests or _DigestCache()
    stems_dir = directory / STEMS_DIR
    try:
        stems_dir.mkdir(parents=True, exist_ok=True)
        video_path = project.video_path
        if copy_video and video_path is not None:
            video_path = _copy_video(video_path, directory / MEDIA_DIR)

        keep: set[str] = set()
        keep_references: set[str] = set()
        stem_entries = []
        for stem in project.stems:
            wav_name = f"{stem.id}-{digests.get(stem.audio, stem.sr)}.wav"
            wav_path = stems_dir / wav_name
            if not wav_path.is_file():
                audio_io.write_wav(wav_path, stem.audio, stem.sr, subtype="FLOAT")
            keep.add(wav_name)
            mask_name = None
            image = None if stem.settings.region is None else stem.settings.region.image
            if image is not None:
                mask_name = f"{stem.id}-{digests.get(image, 0)}_mask.png"
                if not (stems_dir / mask_name).is_file():
                    with atomic_path(stems_dir / mask_name) as tmp:
                        tmp.write_bytes(_mask_png_bytes(image))
                keep.add(mask_name)
            masks_name = _save_track_masks(stem, stems_dir, digests)
            if masks_name is not None:
                keep.add(masks_name)
            reference_file = _save_user_reference(stem, directory)
            if reference_file is not None:
                keep_references.add(reference_file)
            stem_entries.append(_stem_to_json(stem, wav_name, mask_name, masks_name, reference_file, directory))

        modified_at = _now()
        doc = _project_to_json(project, directory, stem_entries, modified_at, video_path)
        try:
            text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False, default=_json_default)
        except (TypeError, ValueError) as err:
            raise ProjectError(f"the project cannot be saved: a setting or metric is not a plain finite "
                               f"number/text ({err}); check the stems' metrics") from None
        write_text_atomic(json_path, text + "\n")
    except OSError as err:
        raise ProjectError(f"cannot save the project to '{directory}': {err.strerror or err}; "
                           "check the folder is writable and the disk is not full") from None
    except ProjectError:
        raise
    except FoleyError as err:   # e.g. audio_io's MediaError for a WAV that cannot be written
        raise ProjectError(f"cannot save the project to '{directory}': {err}") from None

    project.modified_at = modified_at
    project.video_path = video_path
    for p in stems_dir.iterdir():
        if p.name not in keep and p.is_file():
            try:
                p.unlink()
            except OSError:
                pass  # a leftover file is harmless; the project is already saved
    _remove_unused_references(directory, keep_references)
    return json_path


def _save_track_masks(stem: Stem, stems_dir: Path, digests: _DigestCache) -> str | None:
    """Write the per-frame masks of the stem's track region (once per content, atomically);
    their file name, or None when the region keeps no masks."""
    from foley_core.region_spec import track_masks_bytes

    masks = None if stem.settings.region is None else stem.settings.region.track_masks
    if masks is None:
        return None
    name = f"{stem.id}-{digests.masks(masks)}_track.npz"
    if not (stems_dir / name).is_file():
        with atomic_path(stems_dir / name) as tmp:
            tmp.write_bytes(track_masks_bytes(masks))
    return name


def _user_sound(reference: Reference | None) -> Path | None:
    """The file of a reference that is the user's own sound (None for a library clip)."""
    if reference is None or not reference.path or not Path(reference.path).is_absolute():
        return None
    return Path(reference.path)


def _save_user_reference(stem: Stem, directory: Path) -> str | None:
    """Copy the stem's user reference sound into the project; its project-relative path, or None
    for a library clip or a file that no longer exists (the stem itself is still saved: the
    editor says the reference is missing when its settings are loaded back)."""
    source = _user_sound(stem.settings.reference)
    if source is None:
        return None
    if not source.is_file():
        log.warning("stem '%s': its reference sound '%s' no longer exists, so the project cannot keep a "
                    "copy of it", stem.name, source)
        return None
    return store_file_by_content(source, directory / REFERENCES_DIR).relative_to(directory).as_posix()


def store_file_by_content(source: str | os.PathLike, folder: str | os.PathLike) -> Path:
    """Copy `source` to `folder/<content hash>/<its name>` (atomically) and return that path.

    A copy already there is reused, so the same file is stored once however often it is saved;
    a different file with the same name gets its own hash folder.
    """
    source = Path(source)
    try:
        stat = source.stat()
        digest = _file_digest(str(source.resolve()), stat.st_mtime_ns, stat.st_size)
    except OSError as err:
        raise ProjectError(f"cannot read the sound '{source}' to keep a copy of it: {err.strerror or err}") from None
    target = Path(folder) / digest / source.name
    if not _is_within(_real(target), _real(Path(folder))):
        raise ProjectError(f"cannot keep a copy of the sound '{source.name}': '{target.parent}' is a link that "
                           f"leads outside '{folder}'")
    if not target.is_file():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        except OSError as err:
            raise ProjectError(f"cannot keep a copy of the sound '{source.name}' in '{folder}': "
                               f"{err.strerror or err}; check the folder is writable and the disk is not full"
                               ) from None
    return target


@functools.lru_cache(maxsize=256)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    # keyed by mtime and size too: autosave after every action then hashes a file only once
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _remove_unused_references(directory: Path, keep: set[str]) -> None:
    folder = directory / REFERENCES_DIR
    if not folder.is_dir():
        return
    # a linked hash folder is not ours to clean (it may lead anywhere): only real folders are
    for p in sorted(folder.glob("*/*")):
        if not p.parent.is_symlink() and p.is_file() and p.relative_to(directory).as_posix() not in keep:
            try:
                p.unlink()
            except OSError:
                pass  # a leftover file is harmless; the project is already saved
    for d in folder.iterdir():
        if d.is_dir() and not d.is_symlink() and not any(d.iterdir()):
            try:
                d.rmdir()
            except OSError:
                pass


def _copy_video(video_path: Path, media_dir: Path) -> Path:
    if not video_path.is_file():
        raise ProjectError(f"cannot copy the video into the project: '{video_path}' does not exist")
    target = media_dir / video_path.name
    if target.resolve() == video_path.resolve():
        return target.absolute()
    size = video_path.stat().st_size
    k = 1
    while target.is_file():
        if target.stat().st_size == size:
            return target.absolute()      # copied by an earlier save
        # Another video under the same name: the saved project.json may still use it.
        k += 1
        target = media_dir / f"{video_path.stem}-{k}{video_path.suffix}"
    with atomic_path(target) as tmp:
        shutil.copyfile(video_path, tmp)
    return target.absolute()


# --- loading ----------------------------------------------------------------------------------

_MISSING = object()


class _Doc:
    """Typed access to one JSON object, raising ProjectError that names the bad field."""

    def __init__(self, data: Any, where: str, json_path: Path):
        self.where = where
        self.json_path = json_path
        if not isinstance(data, dict):
            self.fail(f"{where} should be an object, got {_type_name(data)}")
        self.data = data

    def fail(self, message: str) -> None:
        raise ProjectError(f"the project file '{self.json_path}' is damaged: {message}")

    def get(self, key: str, kind: str, default: Any = _MISSING) -> Any:
        if key not in self.data:
            if default is _MISSING:
                self.fail(f"{self.where}.{key} is missing")
            return default
        value = self.data[key]
        if value is None and default is None:
            return None
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "list": isinstance(value, list),
            "dict": isinstance(value, dict),
        }[kind]
        if not ok:
            shown = f" {value!r:.40}" if isinstance(value, (str, int, float)) else ""
            self.fail(f"{self.where}.{key} should be {_KIND_NAMES[kind]}, got {_type_name(value)}{shown}")
        return float(value) if kind == "number" else value

    def sub(self, key: str, optional: bool = False) -> "_Doc | None":
        value = self.get(key, "dict", None if optional else _MISSING)
        return None if value is None else _Doc(value, f"{self.where}.{key}", self.json_path)

    def numbers(self, key: str, length: int | None = None, default: Any = _MISSING) -> list[float] | None:
        values = self.get(key, "list", default)
        if values is None:
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) or \
                (length is not None and len(values) != length):
            want = f"{length} numbers" if length else "a list of numbers"
            self.fail(f"{self.where}.{key} should be {want}, got {values!r:.60}")
        return [float(v) for v in values]


_KIND_NAMES = {"str": "text", "int": "a whole number", "number": "a number", "bool": "true or false",
               "list": "a list", "dict": "an object"}


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a valid JSON number")


def read_project_json(directory: str | os.PathLike) -> dict:
    """The checked top level of `directory/project.json` (format and version), without audio."""
    directory = Path(directory).expanduser()
    if not directory.exists():
        raise ProjectError(f"there is no project folder at '{directory}'")
    if not directory.is_dir():
        raise ProjectError(f"'{directory}' is a file; a project is a folder holding project.json")
    json_path = directory / PROJECT_FILE
    if not json_path.is_file():
        raise ProjectError(f"'{directory}' has no {PROJECT_FILE}: it is not a Foley studio project folder")
    check_project_folders(directory)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise ProjectError(f"the project file '{json_path}' is damaged (not UTF-8 text)") from None
    except (json.JSONDecodeError, ValueError) as err:
        raise ProjectError(f"the project file '{json_path}' is damaged (not valid JSON: {err})") from None
    except OSError as err:
        raise ProjectError(f"cannot read '{json_path}': {err.strerror or err}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProjectError(f"'{json_path}' is not a Foley studio project (its \"format\" is not {FORMAT!r})")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise ProjectError(f"the project file '{json_path}' is damaged: \"version\" should be a whole number, "
                           f"got {version!r}")
    if version > FORMAT_VERSION:
        raise ProjectError(f"'{directory}' was saved by a newer Foley studio (project format version {version}); "
                           f"this version reads format {FORMAT_VERSION}. Update Foley studio to open it")
    if version < 1:
        raise ProjectError(f"'{json_path}' has an unsupported project format version {version}")
    return data


def _v1_to_v2(data: dict) -> dict:
    """Version 1 stems did not store their source. One made from a reference (given or
    retrieved) stored that reference, and regenerating starts from it whatever the source; one
    without was made by the model alone."""
    stems = data.get("stems")
    for raw in stems if isinstance(stems, list) else []:
        settings = raw.get("settings") if isinstance(raw, dict) else None
        if isinstance(settings, dict) and "source" not in settings:
            settings["source"] = "auto" if settings.get("reference") is not None else "model"
    return data


def _v2_to_v3(data: dict) -> dict:
    """Version 2 stored a stem's settings under names of their own; version 3 stores the
    GenerationRequest with its field names. The region was "mask" (kind "none": the whole
    frame, now null); the conform strength was "conform_strength", kept even without a curve
    (the request has none then); the reference's strength and fit were only in the reference
    record; an empty caption was "", and a selection length never recorded was 0."""
    stems = data.get("stems")
    for raw in stems if isinstance(stems, list) else []:
        settings = raw.get("settings") if isinstance(raw, dict) else None
        if not isinstance(settings, dict):
            continue
        if "mask" in settings:
            mask = settings.pop("mask")
            settings["region"] = None if isinstance(mask, dict) and mask.get("kind") == "none" else mask
        if "conform_strength" in settings:
            conform = settings.pop("conform_strength")
            settings["conform"] = conform if settings.get("curve") is not None else None
        for key in ("caption", "negative_caption"):
            if settings.get(key) == "":
                settings[key] = None
        if settings.get("duration_s") == 0:
            settings["duration_s"] = None
        reference = settings.get("reference")
        if isinstance(reference, dict):
            settings.setdefault("strength", reference.get("strength"))
            settings.setdefault("reference_fit", reference.get("fit", "auto"))
    return data


def _v3_to_v4(data: dict) -> dict:
    """Version 3 kept a track region as its boxes only; version 4 may add a file of its
    per-frame masks ("track_masks"). A version 3 region has none: null, its boxes as they were."""
    stems = data.get("stems")
    for raw in stems if isinstance(stems, list) else []:
        settings = raw.get("settings") if isinstance(raw, dict) else None
        region = settings.get("region") if isinstance(settings, dict) else None
        if isinstance(region, dict):
            region.setdefault("track_masks", None)
    return data


# version -> the function turning a project.json of that version into the next version's
MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}


def migrate_project_json(data: dict) -> dict:
    """`data` (as read_project_json checked it) brought to FORMAT_VERSION, one version at a time."""
    version = data["version"]
    while version < FORMAT_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["version"] = version
    return data


def load_project(directory: str | os.PathLike) -> Project:
    """Load a project folder (of any format version up to FORMAT_VERSION). Raises ProjectError
    naming what is wrong; never writes to disk."""
    directory = Path(directory).expanduser()
    data = migrate_project_json(read_project_json(directory))
    json_path = directory / PROJECT_FILE
    doc = _Doc(data, "project", json_path)

    video_path = None
    video_duration_s = doc.get("video_duration_s", "number", None)
    video = doc.sub("video", optional=True)
    if video is not None:
        # The absolute path first (exactly what was saved); the relative one when the project
        # folder was moved together with its video.
        video_path = Path(video.get("path", "str"))
        rel = video.get("relative_path", "str", None)
        if not video_path.exists() and rel is not None and (directory / rel).exists():
            video_path = Path(os.path.normpath((directory / rel).absolute()))
        # A video beside the folder (or anywhere) is the user's own file and legitimate; one
        # stored inside the folder (media/) must really be there, not a link out of it.
        if _lexically_inside(directory, video_path):
            _confine(directory, video_path, "the project's video")
    selection = doc.numbers("selection", 2, None)
    export = doc.sub("export")
    stems_raw = doc.get("stems", "list")

    stems = [_stem_from_json(_Doc(raw, f"stems[{k}]", json_path), directory) for k, raw in enumerate(stems_raw)]
    try:
        project = Project(
            name=doc.get("name", "str", DEFAULT_PROJECT_NAME),
            video_path=video_path,
            video_duration_s=video_duration_s,
            selection=tuple(selection) if selection is not None else None,
            stems=stems,
            export=ExportSettings(target_lufs=export.get("target_lufs", "number", None),
                                  ceiling_dbtp=export.get("ceiling_dbtp", "number")),
            created_at=doc.get("created_at", "str"),
            modified_at=doc.get("modified_at", "str"),
        )
    except FoleyError as err:
        raise ProjectError(f"the project file '{json_path}' is damaged: {err}") from None
    ids = [s.id for s in stems]
    if len(set(ids)) != len(ids):
        doc.fail("two stems share the same id")
    return project


def project_files(directory: str | os.PathLike, project: Project | None = None) -> dict[str, list[Path]]:
    """Every file a saved project uses, labelled as a user knows it: project.json, each stem's
    audio and mask image, each kept reference sound, and the video (`project`, loaded from
    `directory`, gives the video path as load_project found it). For commands that must not
    overwrite any of them."""
    directory = Path(directory).expanduser()
    data = migrate_project_json(read_project_json(directory))
    files: dict[str, list[Path]] = {"the project file": [directory / PROJECT_FILE]}
    for raw in data.get("stems") or []:
        if not isinstance(raw, dict):
            continue
        settings = raw.get("settings") if isinstance(raw.get("settings"), dict) else {}
        region = settings.get("region") if isinstance(settings.get("region"), dict) else {}
        found = [(raw.get("audio") or {}).get("file"), region.get("image"), region.get("track_masks"),
                 (settings.get("reference") or {}).get("file")]
        paths = [directory / rel for rel in found if isinstance(rel, str)]
        if paths:
            files.setdefault(f"a file of the project's stem '{raw.get('name', '')}'", []).extend(paths)
    video = project.video_path if project is not None else None
    if video is None and isinstance(data.get("video"), dict) and isinstance(data["video"].get("path"), str):
        video = Path(data["video"]["path"])
    if video is not None:
        files["the project's video"] = [video]
    return files


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _is_within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _lexically_inside(directory: Path, path: Path) -> bool:
    path = Path(os.path.normpath(path.absolute()))
    return any(_is_within(path, d) for d in (Path(os.path.normpath(directory.absolute())), _real(directory)))


def _confine(directory: Path, path: Path, what: str) -> Path:
    """`path` with every link resolved; ProjectError when that leads outside `directory`.

    What a project folder holds may come from anyone (an archive, a shared folder): a link
    inside it must not make the studio read, serve or delete a file elsewhere.
    """
    real = _real(path)
    if not _is_within(real, _real(directory)):
        try:
            shown = Path(os.path.normpath(path.absolute())).relative_to(os.path.normpath(directory.absolute()))
        except ValueError:
            shown = path
        raise ProjectError(f"{what} ('{shown}') is a link that leads outside the project folder '{directory}' "
                           f"(to '{real}'); a project may only use its own files")
    return real


def check_project_folders(directory: str | os.PathLike) -> None:
    """Refuse a project folder whose project.json, stems/, references/ or media/ leads outside it.

    Saving removes unused files from stems/ and references/, so a linked folder would make a
    save delete someone else's files; loading would read them.
    """
    directory = Path(directory).expanduser()
    for name in (PROJECT_FILE, STEMS_DIR, REFERENCES_DIR, MEDIA_DIR):
        path = directory / name
        if path.is_symlink() or path.exists():
            _confine(directory, path, "the project file" if name == PROJECT_FILE else "a project folder")


def _inside(directory: Path, rel: str, doc: _Doc, key: str, what: str) -> Path:
    """`directory/rel`, refused when `rel` (or a link on the way) leads outside the folder."""
    path = directory / rel
    if Path(rel).is_absolute() or ".." in Path(rel).parts:
        doc.fail(f"{doc.where}.{key} points outside the project folder ({rel!r})")
    _confine(directory, path, what)
    return path


def _stem_from_json(doc: _Doc, directory: Path) -> Stem:
    # messages name a stem saved without a name by its place; Stem names it from its caption
    name = doc.get("name", "str", "") or doc.where
    audio_doc = doc.sub("audio")
    rel = audio_doc.get("file", "str")
    sr = audio_doc.get("sr", "int")
    n_samples = audio_doc.get("n_samples", "int")
    if not 0 < sr <= MAX_STEM_SR:
        audio_doc.fail(f"stem '{name}': its sample rate should be 1 to {MAX_STEM_SR} Hz, got {sr}")
    if not 0 < n_samples <= MAX_STEM_SECONDS * sr:
        audio_doc.fail(f"stem '{name}': its audio should last up to {MAX_STEM_SECONDS:g} s, got {n_samples} "
                       f"samples at {sr} Hz")
    wav_path = _inside(directory, rel, audio_doc, "file", f"the audio file of stem '{name}'")
    if not wav_path.is_file():
        raise ProjectError(f"stem '{name}' is missing its audio file '{wav_path}'; the project folder is "
                           "incomplete (restore the file or remove the stem)")
    _check_declared_length(wav_path, name, sr, n_samples)
    try:
        audio, file_sr = audio_io.read_audio(_real(wav_path), mono=True)
    except FoleyError as err:
        raise ProjectError(f"stem '{name}': its audio file cannot be read ({err})") from None
    if file_sr != sr or audio.shape[0] != n_samples:
        raise ProjectError(f"stem '{name}': its audio file '{wav_path.name}' does not match the project "
                           f"({audio.shape[0]} samples at {file_sr} Hz instead of {n_samples} at {sr} Hz)")

    s = doc.sub("settings")

    def read_image(rel: str) -> np.ndarray:
        return _mask_image(directory, rel, s.sub("region"), name)

    def read_masks(rel: str) -> tuple[dict, ...]:
        return _track_masks(directory, rel, s.sub("region"), name)

    def reference_file(rel: str) -> str:
        return os.path.normpath(_inside(directory, rel, s.sub("reference"), "file",
                                        f"the reference sound of stem '{name}'").absolute())

    mix_doc = doc.sub("mix")
    try:
        settings = GenerationRequest.from_json(s, read_image=read_image, reference_file=reference_file,
                                               read_masks=read_masks)
        mix = MixSettings(
            gain_db=mix_doc.get("gain_db", "number"), pan=mix_doc.get("pan", "number"),
            offset_s=mix_doc.get("offset_s", "number"), trim_start_s=mix_doc.get("trim_start_s", "number"),
            trim_end_s=mix_doc.get("trim_end_s", "number", None), fade_in_s=mix_doc.get("fade_in_s", "number"),
            fade_out_s=mix_doc.get("fade_out_s", "number"), mute=mix_doc.get("mute", "bool"),
            solo=mix_doc.get("solo", "bool"),
        )
        return Stem(audio=audio, sr=sr, settings=settings, mix=mix, name=doc.get("name", "str", ""),
                    id=doc.get("id", "str"),
                    created_at=doc.get("created_at", "str"), metrics=doc.get("metrics", "dict"))
    except ProjectError:
        raise
    except FoleyError as err:
        raise ProjectError(f"the project file '{doc.json_path}' is damaged: stem '{name}': {err}") from None


def _mask_image(directory: Path, rel: str, region: _Doc, name: str) -> np.ndarray:
    """The region image a stem keeps at project-relative `rel`."""
    image_path = _inside(directory, rel, region, "image", f"the mask image of stem '{name}'")
    if not image_path.is_file():
        raise ProjectError(f"stem '{name}' is missing its mask image '{image_path}'")
    try:
        return _read_mask_png(_real(image_path), name)
    except ProjectError:
        raise
    except FoleyError as err:       # e.g. a MaskError for an image too big to open
        raise ProjectError(f"stem '{name}': its mask image '{image_path.name}' cannot be used ({err})") from None


def _track_masks(directory: Path, rel: str, region: _Doc, name: str) -> tuple[dict, ...]:
    """The per-frame masks of a track region a stem keeps at project-relative `rel`."""
    from foley_core.region_spec import read_track_masks

    path = _inside(directory, rel, region, "track_masks", f"the track masks of stem '{name}'")
    if not path.is_file():
        raise ProjectError(f"stem '{name}' is missing its track masks file '{path}'; the project folder "
                           "is incomplete (restore the file, or set the stem's region again)")
    try:
        masks = read_track_masks(_real(path))
    except FoleyError as err:
        raise ProjectError(f"stem '{name}': its track masks file '{path.name}' is damaged ({err})") from None
    boxes = region.data.get("track_boxes")
    if isinstance(boxes, list) and len(boxes) != len(masks):
        raise ProjectError(f"stem '{name}': its track masks file '{path.name}' is damaged (it holds masks "
                           f"for {len(masks)} frames, the track has {len(boxes)})")
    return masks


def _check_declared_length(path: Path, name: str, sr: int, n_samples: int) -> None:
    """Compare the file's header with project.json before decoding it (a file far longer than
    the project says is refused without being read into memory)."""
    import soundfile as sf

    try:
        info = sf.info(str(_real(path)))
    except (RuntimeError, sf.LibsndfileError):
        return      # not a format soundfile reads: read_audio says what is wrong
    if info.frames != n_samples or info.samplerate != sr:
        raise ProjectError(f"stem '{name}': its audio file '{path.name}' does not match the project "
                           f"({info.frames} samples at {info.samplerate} Hz instead of {n_samples} at {sr} Hz)")


def _read_mask_png(path: Path, stem_name: str) -> np.ndarray:
    from foley_core.images import read_mask_image

    try:
        return read_mask_image(path)
    except MaskError as err:
        raise ProjectError(f"stem '{stem_name}': its mask image '{path.name}' is damaged ({err})") from None


# --- autosave ---------------------------------------------------------------------------------

_SESSION_ID = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


def autosave_root() -> Path:
    """`$FOLEY_STUDIO_HOME/autosave` (default `~/.foley-studio/autosave`)."""
    home = os.environ.get("FOLEY_STUDIO_HOME") or os.path.join("~", ".foley-studio")
    return Path(home).expanduser() / "autosave"


def autosave_dir(session_id: str | None = None) -> Path:
    """The autosave folder of a session (this process's session by default)."""
    return autosave_root() / (session_id or _SESSION_ID)


class Autosaver:
    """Cheap repeated saves of one project into one folder (call it after every action).

    Unchanged stems are recognised by array identity and not even re-hashed; only new or changed
    stem audio is written, then project.json.
    """

    def __init__(self, directory: str | os.PathLike | None = None):
        self.directory = Path(directory) if directory is not None else autosave_dir()
        self._digests = _DigestCache()

    def save(self, project: Project) -> Path:
        # Autosave must not move the user's video or change the project's timestamps.
        snapshot_modified, snapshot_video = project.modified_at, project.video_path
        try:
            return save_project(project, self.directory, _digests=self._digests)
        finally:
            project.modified_at, project.video_path = snapshot_modified, snapshot_video

    def discard(self) -> None:
        """Delete this autosave (after a proper save, or when the user declines to restore it)."""
        if self.directory.exists():
            shutil.rmtree(self.directory)


@dataclass
class AutosaveInfo:
    directory: Path
    session_id: str
    name: str
    modified_at: str
    n_stems: int
    error: str | None = None    # set when the autosave cannot be read (damaged)


def find_autosaves(root: str | os.PathLike | None = None) -> list[AutosaveInfo]:
    """Autosaves under `root` (default `autosave_root()`), newest first; reads only project.json."""
    root = Path(root) if root is not None else autosave_root()
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        if not (d / PROJECT_FILE).is_file():
            continue
        mtime = datetime.fromtimestamp((d / PROJECT_FILE).stat().st_mtime, timezone.utc).isoformat()
        try:
            data = read_project_json(d)
            stems = data.get("stems")
            found.append(AutosaveInfo(d, d.name, str(data.get("name", "")), str(data.get("modified_at", mtime)),
                                      len(stems) if isinstance(stems, list) else 0))
        except ProjectError as err:
            found.append(AutosaveInfo(d, d.name, "", mtime, 0, error=str(err)))
    found.sort(key=lambda a: a.modified_at, reverse=True)
    return found
