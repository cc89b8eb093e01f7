"""Batch rendering of a shot list on Ray: many shots, each with one or more stems, in parallel.

A shot list (JSON or CSV) names, per shot, a video, a selection and one or more stem requests.
A stem request is the `settings` object the studio saves for a stem in project.json (caption,
seed, steps, scales, model, mask, curve, reference, onsets ...; see `project._stem_to_json`),
optionally with the stem's `mix`; fields left out take the studio's defaults, and a request
without a reference takes the product default (generate() retrieves library clips for the
caption). A stored track region's `track_masks` file (a followed painted mask's per-frame
shape) is read beside the list like its other paths and hashed by content into the request.
The whole list is validated before Ray starts, so a typo costs nothing.
`library_folders` (a JSON list's top level: {"library_folders": [...], "shots": [...]}, paths
beside the list; and `launch.py batch --library-folder DIR`) adds the user's sound folders to
the clips a caption picks from, and lets a stem's reference name one of their clips by id.

Each shot is rendered by a Ray actor (`ShotRenderer`) that loads the model once and then renders
shot after shot: generate() per stem, then the project code saves the shot as a studio project
(stems as WAVs), and `export` writes the mastered mix and the MP4. Per shot, `request.json`
beside the outputs holds the SHA-256 of the canonical request; a re-run skips a shot whose
outputs exist for the same request. A failing shot is reported and the rest go on; an actor
whose process dies is restarted by Ray and the shot retried (`max_restarts`/`max_task_retries`).

Outputs, per shot under OUT/<shot id>/: project/ (project.json + stems/*.wav: open it in the
studio), mix.wav (48 kHz / 24-bit, mastered), <shot id>.mp4, request.json; OUT/report.jsonl
holds one line per shot (status, time, node, worker, model, seeds, error).

On a cluster, every node must see the videos, reference files and OUT at the same paths (a
shared filesystem), and have this project importable (the same code and requirements).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import math
import os
import re
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from foley_core import constants
from foley_core.errors import FoleyError

REQUEST_FILE = "request.json"
REPORT_FILE = "report.jsonl"
PROJECT_DIR = "project"
MIX_FILE = "mix.wav"
REQUEST_VERSION = 1
MAX_RESTARTS = 1            # a worker process that dies is restarted once ...
MAX_TASK_RETRIES = 1        # ... and the shot it was rendering is tried once more on it
# Test hook: "SHOT_ID:MARKER_PATH" makes the worker rendering SHOT_ID exit hard the first time
# (while MARKER_PATH does not exist), as a worker killed by the OS would. Used by the tests only.
CRASH_ONCE_ENV = "FOLEY_BATCH_CRASH_ONCE"

_SHOT_KEYS = {"id", "video", "selection", "start_s", "duration_s", "stems", "lufs", "ceiling_dbtp"}
_STEM_KEYS = {"caption", "negative_caption", "seed", "steps", "text_scale", "video_scale", "curve_scale",
              "conform_strength", "video_onsets", "onsets_s", "model", "mask", "curve", "reference",
              "start_s", "duration_s", "mix", "name", "source"}
# Ray replaces a node address of 127.0.0.1 by the machine's network address; another loopback
# address is kept, so that every connection between the local Ray's processes stays on the
# loopback interface (Linux answers on all of 127/8; other systems only on 127.0.0.1). Ray 2.60's
# servers still listen on all interfaces: firewall the machine if that matters.
LOCAL_NODE_IP = "127.0.0.2" if sys.platform.startswith("linux") else "127.0.0.1"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ShotListError(FoleyError):
    """The shot list is malformed (a missing or bad field, a missing file, a bad selection)."""


# ----------------------------------------------------------------------------- the shot list

@dataclass
class Shot:
    """One validated shot: `request` is its canonical request (what is hashed and rendered)."""

    id: str
    video: Path
    start_s: float
    duration_s: float
    video_duration_s: float
    request: dict
    inputs: list[Path] = field(default_factory=list)   # files it reads (never to be overwritten)

    @property
    def request_sha256(self) -> str:
        return request_hash(self.request)


def request_hash(request: dict) -> str:
    """SHA-256 of the canonical JSON of a request (sorted keys, no spaces)."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fail(where: str, message: str) -> None:
    raise ShotListError(f"{where}: {message}")


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, {"str": str, "bool": bool, "list": list, "dict": dict}[kind])


_KIND = {"number": "a finite number", "int": "a whole number", "str": "text", "bool": "true or false",
         "list": "a list", "dict": "an object"}


def _get(data: dict, key: str, kind: str, where: str, default: Any = ...) -> Any:
    if key not in data or (data[key] is None and default is None):
        if default is ...:
            _fail(where, f"'{key}' is missing")
        return default
    value = data[key]
    if not _type_ok(value, kind):
        _fail(where, f"'{key}' should be {_KIND[kind]}, got {json.dumps(value)[:40]}")
    return float(value) if kind == "number" else value


def _numbers(data: dict, key: str, where: str, length: int | None = None, default: Any = ...) -> list | None:
    values = _get(data, key, "list", where, default)
    if values is None:
        return None
    if not all(_type_ok(v, "number") for v in values) or (length is not None and len(values) != length):
        count = f"{length} " if length else ""
        _fail(where, f"'{key}' should be a list of {count}numbers, got {json.dumps(values)[:40]}")
    return [float(v) for v in values]


def _input_file(text: str, base: Path, where: str, what: str) -> Path:
    path = Path(text).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        _fail(where, f"{what} '{text}' not found (relative paths are read from '{base}')")
    return Path(os.path.abspath(path))


def _stem_backend(raw: dict, where: str, default_backend: str) -> str:
    """A stem request's model backend name, checked against the registry."""
    from foley_core import backends

    model = raw.get("model", {"backend": default_backend})
    if isinstance(model, str):
        model = {"backend": model}
    if not isinstance(model, dict):
        _fail(where, "'model' should be a backend name or {\"backend\": NAME}")
    backend = _get(model, "backend", "str", f"{where} model", default_backend)
    if backend not in backends.available_backends():
        _fail(where, f"unknown model '{backend}'; choose one of {', '.join(backends.available_backends())}")
    return backend


def _stem_mask(raw: dict, where: str, base: Path, inputs: list[Path]) -> dict:
    """A stem request's region, checked (an image file is added to `inputs`)."""
    mask_raw = _get(raw, "mask", "dict", where, None) or {"kind": "none"}
    mwhere = f"{where} mask"
    kind = _get(mask_raw, "kind", "str", mwhere, "none")
    mask: dict = {"kind": kind}
    if kind == "box":
        mask["box"] = _numbers(mask_raw, "box", mwhere, 4)
    elif kind == "image":
        image = _input_file(_get(mask_raw, "image", "str", mwhere), base, mwhere, "mask image")
        inputs.append(image)
        mask["image"] = str(image)
    elif kind == "track":
        rows = _get(mask_raw, "track_boxes", "list", mwhere)
        for k, row in enumerate(rows):
            if not isinstance(row, list) or len(row) != 5 or not all(_type_ok(v, "number") for v in row):
                _fail(mwhere, f"track_boxes[{k}] should be 5 numbers (time_s, x0, y0, x1, y1)")
        mask["track_id"] = str(mask_raw.get("track_id") or "t0")
        mask["track_boxes"] = [[float(v) for v in row] for row in rows]
        masks_text = _get(mask_raw, "track_masks", "str", mwhere, None)
        if masks_text is not None:
            # only then: a list of boxes alone keeps the request (and hash) it had before
            mask.update(_track_masks_file(masks_text, mask, mask_raw, base, mwhere))
            inputs.append(Path(mask["track_masks"]["path"]))
    elif kind != "none":
        _fail(mwhere, f"unknown kind '{kind}'; use none, box, image or track")
    return mask


def _track_masks_file(text: str, mask: dict, mask_raw: dict, base: Path, where: str) -> dict:
    """A track's masks file (`region.track_masks` of a stored stem) checked now, so a missing or
    damaged one stops the batch before it starts: {"track_masks": {"path", "sha256"}} with the
    track's `track_source` (a followed object's contacts are timed from its centre)."""
    path = _input_file(text, base, where, "track masks file")
    try:
        data = _masks_bytes(path)
    except OSError as err:
        _fail(where, f"track masks file '{text}' cannot be read ({err.strerror or err})")
    source = _get(mask_raw, "track_source", "str", where, None)
    try:
        _track_region(mask, _masks_of(data), source)
    except FoleyError as err:
        _fail(where, f"track masks file '{text}' is damaged ({err})")
    return {"track_masks": {"path": str(path), "sha256": hashlib.sha256(data).hexdigest()},
            "track_source": source}


def _masks_bytes(path: Path) -> bytes:
    """A masks file's bytes; none (so never a match) for a missing file or one larger than any
    track's masks, which is not read into memory."""
    from foley_core.region_spec import MAX_TRACK_MASKS_BYTES

    if not path.is_file() or path.stat().st_size > MAX_TRACK_MASKS_BYTES:
        return b""
    return path.read_bytes()


def _masks_of(data: bytes) -> tuple[dict, ...]:
    """The run-length masks of a masks file's bytes (MaskError when they are not one)."""
    import io

    from foley_core.errors import MaskError
    from foley_core.region_spec import read_track_masks

    if not data:
        raise MaskError("it is empty or larger than any track's masks")
    return read_track_masks(io.BytesIO(data))


def _track_region(mask: dict, masks: tuple[dict, ...] | None, source: str | None):
    """The Region of a canonical track mask with its per-frame `masks` (MaskError when they do
    not go with its boxes)."""
    from foley_core.request import Region

    return Region(track_id=mask["track_id"], track_boxes=tuple(map(tuple, mask["track_boxes"])),
                  track_masks=masks, track_source=source)


def _stem_reference(raw: dict, where: str, base: Path, inputs: list[Path],
                    library: Callable[[], Any]) -> dict | None:
    """A stem request's reference sound: a library clip id or a file (added to `inputs`)."""
    reference = None
    ref_raw = raw.get("reference")
    if isinstance(ref_raw, str):
        ref_raw = {"clip_id": ref_raw}
    if ref_raw is not None:
        rwhere = f"{where} reference"
        if not isinstance(ref_raw, dict):
            _fail(where, "'reference' should be a library clip id, a file, or an object with clip_id/path")
        clip_id = _get(ref_raw, "clip_id", "str", rwhere, "")
        path_text = _get(ref_raw, "path", "str", rwhere, "")
        file_text = _get(ref_raw, "file", "str", rwhere, None) or ""   # the studio's copy, if any
        strength = _get(ref_raw, "strength", "number", rwhere, None)
        if strength is not None and not 0.0 <= strength <= 1.0:
            _fail(rwhere, f"'strength' should be from 0 to 1, got {strength:g}")
        fit = _get(ref_raw, "fit", "str", rwhere, "auto")
        if fit not in ("auto", "loop", "oneshot"):
            _fail(rwhere, f"'fit' should be auto, loop or oneshot, got '{fit}'")
        found = None
        for text in (path_text, file_text, clip_id):
            p = Path(text).expanduser()
            p = p if p.is_absolute() else base / p
            if text and p.is_file():
                found = Path(os.path.abspath(p))
                break
        # The studio saves a library clip with its path inside the library (relative) and the
        # user's own sound with an absolute path: a known clip id wins unless the path is absolute.
        if clip_id and not Path(path_text).is_absolute() and clip_id in library():
            reference = {"clip_id": clip_id}
        elif found is not None:
            inputs.append(found)
            reference = {"file": str(found)}
        else:
            _fail(rwhere, f"no library clip '{clip_id}' and no file '{path_text or file_text or clip_id}'")
        reference.update(strength=strength, fit=fit)
    return reference


def _shot_list_names(raw: Any) -> Any:
    """A stem's settings as project.json stores them since format 3 (the GenerationRequest's
    field names) in the shot list's names, so a saved stem goes into a shot list as it is."""
    if not isinstance(raw, dict) or not {"region", "conform", "reference_fit"} & raw.keys():
        return raw
    out = dict(raw)
    for stored, name in (("region", "mask"), ("conform", "conform_strength")):
        value = out.pop(stored, None)
        if value is not None:
            out[name] = value
    # the reference record beside them holds the same strength and fit
    out.pop("strength", None)
    out.pop("reference_fit", None)
    for key in ("negative_caption", "duration_s"):
        if out.get(key) is None:
            out.pop(key, None)
    return out


def _canonical_stem(raw: Any, where: str, base: Path, shot_start_s: float, shot_duration_s: float,
                    library: Callable[[], Any]) -> tuple[dict, list[Path]]:
    """A stem request with every field present and checked, in the shot list's form (the names
    project.json used up to format version 2); `generation_request` makes its GenerationRequest."""
    from foley_core import backends, captions
    from foley_core.project import MixSettings
    from foley_core.request import GenerationRequest

    raw = _shot_list_names(raw)
    if not isinstance(raw, dict):
        _fail(where, "a stem request should be an object (the stem settings the studio saves)")
    unknown = sorted(set(raw) - _STEM_KEYS)
    if unknown:
        _fail(where, f"unknown field '{unknown[0]}' (a stem request takes {', '.join(sorted(_STEM_KEYS))})")
    d = GenerationRequest()
    inputs: list[Path] = []
    try:
        caption = captions.validate_caption(_get(raw, "caption", "str", where))
    except ShotListError:
        raise
    except FoleyError as err:
        _fail(where, f"'caption': {err}")
    seed = _get(raw, "seed", "int", where, d.seed)
    steps = _get(raw, "steps", "int", where, d.steps)
    if not 0 <= seed <= constants.MAX_SEED:
        _fail(where, f"'seed' should be from 0 to {constants.MAX_SEED}, got {seed}")
    if not 1 <= steps <= constants.MAX_STEPS:
        _fail(where, f"'steps' should be from 1 to {constants.MAX_STEPS}, got {steps}")
    for key in ("start_s", "duration_s"):
        value = _get(raw, key, "number", where, None)
        own = shot_start_s if key == "start_s" else shot_duration_s
        if value is not None and abs(value - own) > 1e-6:
            _fail(where, f"'{key}' is {value:g} but the shot's selection gives {own:g}; a stem is made for "
                         "its shot's selection (leave it out)")
    backend = _stem_backend(raw, where, d.model)
    mask = _stem_mask(raw, where, base, inputs)
    curve = None
    curve_raw = _get(raw, "curve", "dict", where, None)
    if curve_raw is not None:
        curve = {"times_s": _numbers(curve_raw, "times_s", f"{where} curve"),
                 "values": _numbers(curve_raw, "values", f"{where} curve")}

    reference = _stem_reference(raw, where, base, inputs, library)
    onsets = _numbers(raw, "onsets_s", where, default=None)
    mix_raw = _get(raw, "mix", "dict", where, None) or {}
    try:
        settings = GenerationRequest(
            caption=caption, seed=seed, steps=steps,
            curve_scale=_get(raw, "curve_scale", "number", where, None), onsets_s=onsets,
            video_onsets=_get(raw, "video_onsets", "bool", where, d.video_onsets),
            source=_get(raw, "source", "str", where, d.source))
        mix = MixSettings(**{**dataclasses.asdict(MixSettings(offset_s=shot_start_s)),
                             **{k: v for k, v in mix_raw.items()}})
    except TypeError as err:
        _fail(where, f"'mix': {err}")
    except FoleyError as err:
        _fail(where, str(err))
    request = {
        "name": _get(raw, "name", "str", where, "") or caption[:40],
        "caption": caption,
        "negative_caption": _get(raw, "negative_caption", "str", where, ""),
        "seed": seed, "steps": steps,
        "text_scale": _get(raw, "text_scale", "number", where, d.text_scale),
        "video_scale": _get(raw, "video_scale", "number", where, d.video_scale),
        "curve_scale": settings.curve_scale,
        # with a curve, conform to it fully unless told (the request's default)
        "conform_strength": _get(raw, "conform_strength", "number", where, 1.0),
        "video_onsets": settings.video_onsets, "onsets_s": settings.onsets_s, "source": settings.source,
        "model": {"backend": backend, "options": {k: v for k, v in backends.default_options(backend).items()}},
        "mask": mask, "curve": curve, "reference": reference,
        "mix": {k: (v if isinstance(v, bool) or v is None else float(v)) for k, v in dataclasses.asdict(mix).items()},
    }
    return request, inputs


def _selection(raw: dict, where: str) -> tuple[float, float | None]:
    sel = raw.get("selection")
    if sel is not None:
        if isinstance(sel, dict):
            start = _get(sel, "start_s", "number", f"{where} selection", 0.0)
            if "end_s" in sel:
                return start, _get(sel, "end_s", "number", f"{where} selection") - start
            return start, _get(sel, "duration_s", "number", f"{where} selection", None)
        if isinstance(sel, list) and len(sel) == 2 and all(_type_ok(v, "number") for v in sel):
            return float(sel[0]), float(sel[1]) - float(sel[0])
        _fail(where, "'selection' should be [start_s, end_s] or {\"start_s\": S, \"duration_s\": D}")
    return _get(raw, "start_s", "number", where, 0.0), _get(raw, "duration_s", "number", where, None)


def _csv_rows(path: Path) -> list[dict]:
    """CSV: one row per stem request; rows with the same `shot` id form one shot (in order).

    Columns: shot, video, start_s, duration_s (or end_s), caption, and optionally seed, steps,
    text_scale, video_scale, curve_scale, conform_strength, negative_caption, model, box
    ("x0 y0 x1 y1"), reference (clip id or file), strength, fit, onsets_s ("0.4 1.25"),
    video_onsets, gain_db, pan. Curves, image masks and tracks need the JSON form.
    """
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ShotListError(f"cannot read the shot list '{path}': {err}") from None
    shots: dict[str, dict] = {}
    ints, floats = {"seed", "steps"}, {"text_scale", "video_scale", "curve_scale", "conform_strength"}
    for n, row in enumerate(rows, start=2):
        where = f"shot list line {n}"
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        shot_id = row.get("shot") or f"shot-{len(shots) + 1:03d}"

        def num(key: str, kind=float):
            try:
                return kind(row[key])
            except ValueError:
                _fail(where, f"'{key}' should be {'a whole number' if kind is int else 'a number'}, got '{row[key]}'")

        def nums(key: str) -> list[float]:
            try:
                return [float(v) for v in row[key].replace(",", " ").split()]
            except ValueError:
                _fail(where, f"'{key}' should be numbers separated by spaces, got '{row[key]}'")

        shot = shots.setdefault(shot_id, {"id": shot_id, "video": row.get("video", ""), "stems": []})
        for key in ("start_s", "duration_s", "end_s"):
            if row.get(key):
                value = num(key)
                if key in shot and shot[key] != value:
                    _fail(where, f"shot '{shot_id}': '{key}' differs from its earlier row")
                shot[key] = value
        if "end_s" in shot:
            shot["selection"] = {"start_s": shot.get("start_s", 0.0), "end_s": shot["end_s"]}
        stem: dict = {}
        for key, value in row.items():
            if not value or key in ("shot", "video", "start_s", "duration_s", "end_s"):
                continue
            if key in ints:
                stem[key] = num(key, int)
            elif key in floats:
                stem[key] = num(key)
            elif key in ("caption", "negative_caption", "model", "name"):
                stem[key] = value
            elif key == "box":
                stem["mask"] = {"kind": "box", "box": nums(key)}
            elif key == "reference":
                # a library clip id or a file: resolved (and checked) with the JSON form's rules
                stem.setdefault("reference", {}).update(clip_id=value, path=value)
            elif key in ("strength",):
                stem.setdefault("reference", {})[key] = num(key)
            elif key == "fit":
                stem.setdefault("reference", {})[key] = value
            elif key == "onsets_s":
                stem[key] = nums(key)
            elif key == "video_onsets":
                stem[key] = value.lower() in ("1", "true", "yes")
            elif key in ("gain_db", "pan"):
                stem.setdefault("mix", {})[key] = num(key)
            else:
                _fail(where, f"unknown column '{key}'")
        if "reference" in stem and not (stem["reference"].get("clip_id") or stem["reference"].get("path")):
            _fail(where, "'strength'/'fit' need a 'reference'")
        shot["stems"].append(stem)
    for shot in shots.values():
        shot.pop("end_s", None)
        if "selection" in shot:
            shot.pop("start_s", None)
    return list(shots.values())


def _library_folders(data: Any, base: Path, extra: list) -> list[str]:
    """The shot list's `library_folders` (beside the list when relative) and `extra` (the
    command's --library-folder), as absolute paths, each checked to hold usable sounds."""
    raw = data.get("library_folders", []) if isinstance(data, dict) else []
    if not isinstance(raw, list) or not all(isinstance(f, str) and f.strip() for f in raw):
        raise ShotListError("'library_folders' should be a list of folder paths")
    folders = [str((base / Path(f).expanduser()).resolve()) for f in raw]
    folders += [str(Path(f).expanduser().resolve()) for f in extra]
    return list(dict.fromkeys(folders))


def _read_shot_list(path: Path) -> tuple[list, Any]:
    """(the raw shots, the JSON document or None for a CSV) of the shot list at `path`."""
    if not path.is_file():
        raise ShotListError(f"shot list not found: {path}")
    data = None
    if path.suffix.lower() == ".csv":
        raw_shots = _csv_rows(path)
    else:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ShotListError(f"cannot read the shot list '{path}' as JSON: {err}") from None
        raw_shots = data.get("shots") if isinstance(data, dict) else data
        if not isinstance(raw_shots, list):
            raise ShotListError(f"the shot list '{path}' should be a list of shots or {{\"shots\": [...]}}")
    if not raw_shots:
        raise ShotListError(f"the shot list '{path}' holds no shots")
    return raw_shots, data


def load_shot_list(path: str | os.PathLike, *, library_folders: list | tuple = ()) -> list[Shot]:
    """Read and validate a shot list (JSON: {"shots": [...]} or [...]; or CSV); raise ShotListError.
    `library_folders`: the user's sound folders to pick from besides the list's own."""
    from foley_core import media
    from foley_core.library.folders import library_with_folders

    path = Path(path).expanduser()
    raw_shots, data = _read_shot_list(path)
    base = path.parent.absolute()
    folders = _library_folders(data, base, list(library_folders))
    lib_cache: list = []

    def library():
        if not lib_cache:
            try:
                lib_cache.append(library_with_folders(folders))
            except FoleyError as err:
                raise ShotListError(f"library_folders: {err}") from None
        return lib_cache[0]

    if folders:
        library()          # a missing or empty folder is refused before any shot is read

    shots: list[Shot] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_shots):
        where = f"shot {i + 1}"
        if not isinstance(raw, dict):
            _fail(where, "a shot should be an object with video, selection and stems")
        shot_id = raw.get("id", f"shot-{i + 1:03d}")
        if not isinstance(shot_id, str) or not _ID_RE.match(shot_id) or shot_id in (".", ".."):
            _fail(where, f"'id' should be 1-64 letters, digits, '.', '_' or '-' (it names a folder), "
                         f"got {json.dumps(shot_id)[:40]}")
        where = f"shot '{shot_id}'"
        if shot_id in seen:
            _fail(where, "the id is used by an earlier shot; give each shot its own id")
        seen.add(shot_id)
        unknown = sorted(set(raw) - _SHOT_KEYS)
        if unknown:
            _fail(where, f"unknown field '{unknown[0]}' (a shot takes {', '.join(sorted(_SHOT_KEYS))})")
        video = _input_file(_get(raw, "video", "str", where), base, where, "video")
        try:
            video_duration_s = media.video_duration_s(video)
        except FoleyError as err:
            _fail(where, f"video '{video.name}': {err}")
        start_s, duration_s = _selection(raw, where)
        if duration_s is None:
            duration_s = video_duration_s - start_s
        if start_s < 0 or duration_s <= 0 or start_s + duration_s > video_duration_s + 1e-3:
            _fail(where, f"the selection {start_s:g}..{start_s + duration_s:g} s is not inside the video "
                         f"(0..{video_duration_s:.3f} s)")
        stems_raw = _get(raw, "stems", "list", where)
        if not stems_raw:
            _fail(where, "'stems' is empty; give at least one stem request")
        lufs = raw.get("lufs", -23.0)
        if lufs is not None and not _type_ok(lufs, "number"):
            _fail(where, f"'lufs' should be a loudness such as -23 or null, got {json.dumps(lufs)[:40]}")
        ceiling = _get(raw, "ceiling_dbtp", "number", where, -1.0)
        stems, inputs = [], [video]
        for k, stem_raw in enumerate(stems_raw):
            request, files = _canonical_stem(stem_raw, f"{where} stems[{k}]", base, start_s, duration_s, library)
            stems.append(request)
            inputs += files
        st = video.stat()
        request = {
            "version": REQUEST_VERSION, "id": shot_id,
            "video": {"path": str(video), "size": st.st_size, "mtime_ns": st.st_mtime_ns},
            # a reference sound or mask image replaced under the same name is a new request
            "files": {str(p): [p.stat().st_size, p.stat().st_mtime_ns] for p in inputs[1:]},
            "start_s": round(start_s, 6), "duration_s": round(duration_s, 6),
            "lufs": None if lufs is None else float(lufs), "ceiling_dbtp": ceiling,
            "stems": stems,
        }
        if folders:       # only then: the requests (and hashes) of lists without folders stay as they were
            request["library_folders"] = folders
        shots.append(Shot(shot_id, video, start_s, duration_s, video_duration_s, request, inputs))
    return shots


# ----------------------------------------------------------------------------- outputs

def shot_outputs(out_dir: Path, shot_id: str) -> dict[str, Path]:
    folder = out_dir / shot_id
    return {"project": folder / PROJECT_DIR / "project.json", "mix": folder / MIX_FILE,
            "mp4": folder / f"{shot_id}.mp4", "request": folder / REQUEST_FILE}


def prepare_outputs(shots: list[Shot], out_dir: str | os.PathLike, shot_list: str | os.PathLike) -> Path:
    """Create OUT and the shot folders and check every output against every input (before Ray)."""
    from foley_core.outputs import check_outputs

    out_dir = Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise ShotListError(f"--out '{out_dir}' is a file; give a folder")
    if not out_dir.parent.is_dir():
        raise ShotListError(f"--out '{out_dir}': the folder '{out_dir.parent}' does not exist")
    out_dir.mkdir(exist_ok=True)
    outputs: dict[str, Path] = {"the report": out_dir / REPORT_FILE}
    inputs: dict[str, Any] = {"the shot list": Path(shot_list)}
    for shot in shots:
        (out_dir / shot.id / PROJECT_DIR).mkdir(parents=True, exist_ok=True)
        for key, p in shot_outputs(out_dir, shot.id).items():
            outputs[f"shot '{shot.id}' {key}"] = p
        inputs[f"shot '{shot.id}' input"] = shot.inputs
    check_outputs(outputs, inputs)
    return out_dir.absolute()


def is_done(out_dir: Path, shot: Shot) -> bool:
    """The shot's outputs exist and were made from this very request."""
    paths = shot_outputs(out_dir, shot.id)
    try:
        stored = json.loads(paths["request"].read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return (isinstance(stored, dict) and stored.get("request_sha256") == shot.request_sha256
            and all(p.is_file() for p in paths.values()))


# ----------------------------------------------------------------------------- rendering (worker side)

def _region(m: dict):
    """The region a canonical stem request's mask names (its image read from the PNG, a track's
    masks from its file, refused if that is no longer the file the list was checked with)."""
    from foley_core.request import Region

    if m["kind"] == "box":
        return Region(box=tuple(m["box"]))
    if m["kind"] == "track":
        stored = m.get("track_masks")
        if stored is None:
            return _track_region(m, None, None)
        try:
            data = _masks_bytes(Path(stored["path"]))
        except OSError as err:
            raise ShotListError(f"the track masks file '{stored['path']}' cannot be read "
                                f"({err.strerror or err})") from None
        if hashlib.sha256(data).hexdigest() != stored["sha256"]:
            raise ShotListError(f"the track masks file '{stored['path']}' changed or went missing after the "
                                "shot list was checked; run the batch again")
        return _track_region(m, _masks_of(data), m.get("track_source"))
    if m["kind"] == "image":
        import numpy as np
        from PIL import Image

        with Image.open(m["image"]) as img:
            return Region(image=np.asarray(img.convert("L"), np.float32) / np.float32(255.0))
    return Region()


def generation_request(stem: dict, video: str, start_s: float, duration_s: float, library=None):
    """The GenerationRequest of one canonical stem request (as the studio builds it); a clip id
    of `library` (a SoundLibrary with the user's folders) becomes that clip."""
    from foley_core.request import GenerationRequest

    curve = None if stem["curve"] is None else (stem["curve"]["times_s"], stem["curve"]["values"])
    ref = stem["reference"]
    sound = None if ref is None else ref.get("file") or ref["clip_id"]
    if sound is not None and not ref.get("file") and library is not None and sound in library:
        sound = library.get(sound)
    reference = {} if ref is None else dict(reference=sound, strength=ref["strength"], reference_fit=ref["fit"])
    return GenerationRequest(
        caption=stem["caption"], negative_caption=stem["negative_caption"] or None, video=video,
        start_s=start_s, duration_s=duration_s, region=_region(stem["mask"]), curve=curve,
        seed=stem["seed"], candidates=1, steps=stem["steps"], text_scale=stem["text_scale"],
        video_scale=stem["video_scale"], curve_scale=stem["curve_scale"],
        conform=stem["conform_strength"] if curve is not None else None,
        video_onsets=stem["video_onsets"], onsets_s=stem["onsets_s"], model=stem["model"]["backend"],
        source="auto" if ref is not None else stem["source"], **reference)


def render_shot(request: dict, out_dir: str | os.PathLike, *, device: str = "cpu",
                worker: str = "") -> dict:
    """Render one shot (its stems, project, mix, MP4, request.json); return its report line.

    Never raises for a failing shot: the error is in the line (`status` "failed").
    """
    from foley_core import export
    from foley_core.atomic import write_text_atomic
    from foley_core.project import ExportSettings, MixSettings, Project, Stem, save_project

    shot_id = request["id"]
    paths = shot_outputs(Path(out_dir), shot_id)
    t0 = time.monotonic()
    line: dict = {"shot": shot_id, "status": "failed", "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                  "node": socket.gethostname(), "worker": worker or f"pid {os.getpid()}", "device": device,
                  "models": [], "seeds": [], "error": None, "request_sha256": request_hash(request)}
    crash = os.environ.get(CRASH_ONCE_ENV, "")
    if crash.partition(":")[0] == shot_id and not Path(crash.partition(":")[2]).exists():
        Path(crash.partition(":")[2]).touch()
        os._exit(1)   # as a worker killed by the OS (OOM killer, a lost node) would end
    try:
        from foley_core.generate import generate

        video, start_s, duration_s = request["video"]["path"], request["start_s"], request["duration_s"]
        project = Project(name=shot_id, video_path=Path(video), selection=(start_s, duration_s),
                          export=ExportSettings(target_lufs=request["lufs"], ceiling_dbtp=request["ceiling_dbtp"]))
        from foley_core import media

        project.video_duration_s = media.video_duration_s(video)
        timings = []
        library = _worker_library(tuple(request.get("library_folders") or ()))
        for stem in request["stems"]:
            t = time.monotonic()
            stem_request = generation_request(stem, video, start_s, duration_s, library)
            result = generate(stem_request, device=device, library=library)
            timings.append(round(time.monotonic() - t, 3))
            project.add_stem(Stem.new(result.audios[0], result.sr, stem_request.for_stem(result.report),
                                      mix=MixSettings(**stem["mix"]), name=stem["name"]))
            line["models"].append(str(result.report.model))
            line["seeds"].append(int(result.report.seeds[0]))
        save_project(project, paths["project"].parent)
        mastered = export.master_project(project)
        export.export_mix_wav(project, paths["mix"], mastered=mastered)
        export.export_mp4(project, paths["mp4"], mastered=mastered)
        line.update(status="ok", generate_s=timings, lufs=mastered.report["lufs_after"],
                    outputs={k: str(p) for k, p in paths.items()})
    except FoleyError as err:
        line["error"] = str(err)
    except Exception as err:  # a bug, not the user's: report it and let the other shots go on
        line["error"] = f"internal error: {type(err).__name__}: {err}"
    line["seconds"] = round(time.monotonic() - t0, 3)
    if line["status"] == "ok":
        # written last: its presence (with this hash) is what makes a re-run skip the shot
        write_text_atomic(paths["request"], json.dumps({"request_sha256": line["request_sha256"],
                                                        "request": request, "report": line}, indent=2) + "\n")
    return line


@functools.lru_cache(maxsize=4)
def _worker_library(folders: tuple[str, ...]):
    """The bundled library plus the shot's folders (None: the bundled one), built once per worker
    for the same folders; their index is read from the on-disk cache the driver's check wrote."""
    if not folders:
        return None
    from foley_core.library.folders import library_with_folders

    return library_with_folders(folders)


class ShotRendererBase:
    """A worker: loads the model(s) once, then renders shot after shot (a Ray actor)."""

    def __init__(self, threads: int, preload: list[str], env: dict[str, str]):
        os.environ.update(env)
        from foley_core import offline

        offline.configure()
        import torch

        torch.set_num_threads(max(1, threads))
        self.device = "cuda" if torch.cuda.is_available() and _gpu_assigned() else "cpu"
        t0 = time.monotonic()
        from foley_core.backends import get_backend

        for name in preload:
            get_backend(name, device=self.device)
        self.load_s = round(time.monotonic() - t0, 3)
        self.name = f"{socket.gethostname()} pid {os.getpid()}"

    def info(self) -> dict:
        return {"worker": self.name, "device": self.device, "load_s": self.load_s}

    def render(self, request: dict, out_dir: str) -> dict:
        line = render_shot(request, out_dir, device=self.device, worker=self.name)
        line["model_load_s"] = self.load_s
        return line


def _gpu_assigned() -> bool:
    try:
        import ray

        return bool(ray.get_gpu_ids())
    except Exception:
        return False


# ----------------------------------------------------------------------------- driver

@dataclass
class BatchOptions:
    out_dir: str
    address: str | None = None        # None: a local Ray on this machine; else ray://host:port or "auto"
    workers: int = 2
    threads: int | None = None        # CPU threads per worker (None: this machine's cores / workers)
    gpus_per_worker: float | None = None   # None: 1 when CUDA is available here, else 0
    dashboard: bool = False
    library_folders: list[str] = field(default_factory=list)   # the user's sound folders to pick from


def _env_for_workers() -> dict[str, str]:
    keep = ("FOLEY_", "HF_", "TRANSFORMERS_", "RAY_USAGE_STATS_ENABLED", "DO_NOT_TRACK", "YOLO_", "TOKENIZERS_")
    return {k: v for k, v in os.environ.items() if k.startswith(keep)}


def _write_report(out_dir: Path, lines: list[dict]) -> None:
    from foley_core.atomic import write_text_atomic

    write_text_atomic(out_dir / REPORT_FILE, "".join(json.dumps(line) + "\n" for line in lines))


def _fmt_s(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def run_batch(shot_list: str | os.PathLike, options: BatchOptions,
              log: Callable[[str], None] = lambda s: print(s, file=sys.stderr, flush=True)) -> dict:
    """Validate the list, skip finished shots, render the rest on Ray; return a summary.

    Uses an already initialised Ray (and leaves it running); otherwise starts one (a local
    cluster, or joins `options.address`) and shuts it down at the end.
    """
    from foley_core import offline

    offline.configure()
    if options.workers < 1:
        raise FoleyError(f"--workers must be at least 1, got {options.workers}")
    if options.threads is not None and options.threads < 1:
        raise FoleyError(f"--threads must be at least 1, got {options.threads}")
    shots = load_shot_list(shot_list, library_folders=options.library_folders)
    out_dir = prepare_outputs(shots, options.out_dir, shot_list)
    lines: list[dict] = []
    todo: list[Shot] = []
    for shot in shots:
        if is_done(out_dir, shot):
            lines.append({"shot": shot.id, "status": "skipped", "request_sha256": shot.request_sha256,
                          "error": None, "reason": "outputs exist for the same request"})
        else:
            todo.append(shot)
    total = len(shots)
    log(f"batch: {total} shots, {total - len(todo)} already rendered (same request), {len(todo)} to render")
    summary = {"out": str(out_dir), "shots": total, "skipped": total - len(todo), "ok": 0, "failed": 0,
               "report": str(out_dir / REPORT_FILE), "dashboard_url": None, "seconds": 0.0}
    t0 = time.monotonic()
    if todo:
        summary.update(_render_on_ray(todo, out_dir, options, lines, log, total))
    _write_report(out_dir, lines)
    summary["ok"] = sum(line["status"] == "ok" for line in lines)
    summary["failed"] = sum(line["status"] == "failed" for line in lines)
    summary["seconds"] = round(time.monotonic() - t0, 3)
    return summary


def _render_on_ray(todo: list[Shot], out_dir: Path, options: BatchOptions, lines: list[dict],
                   log: Callable[[str], None], total: int) -> dict:
    try:
        import ray
    except ImportError:
        raise FoleyError("batch rendering needs Ray: pip install -r requirements.txt (ray)") from None

    started_here = not ray.is_initialized()
    threads, gpus = _worker_resources(options)
    env = _env_for_workers()
    if options.address is None:
        # so that local workers import this checkout's foley_core
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    extra = _start_ray(ray, options, threads, gpus, env, log) if started_here else {}
    try:
        _render_with_actors(ray, todo, out_dir, options, lines, log, total, threads, gpus, env)
    finally:
        if started_here:
            ray.shutdown()
    return extra


def _worker_resources(options: BatchOptions) -> tuple[int, float]:
    """(CPU threads, GPUs) of each worker: as asked, else the CPUs shared out and a GPU if any."""
    threads = options.threads or max(1, (os.cpu_count() or 1) // options.workers)
    gpus = options.gpus_per_worker
    if gpus is None:
        try:
            import torch

            gpus = 1 if torch.cuda.is_available() else 0
        except ImportError:
            gpus = 0
    return threads, gpus


def _start_ray(ray, options: BatchOptions, threads: int, gpus: float, env: dict,
               log: Callable[[str], None]) -> dict:
    """Start a local Ray sized for the workers, or join the cluster at `options.address`;
    {"dashboard_url": ...} when Ray serves one."""
    extra: dict = {}
    local = options.address is None
    init_kwargs: dict = dict(include_dashboard=options.dashboard, log_to_driver=False,
                             runtime_env={"env_vars": env}, configure_logging=False)
    if local:
        init_kwargs.update(num_cpus=options.workers * threads, num_gpus=gpus * options.workers,
                           _node_ip_address=LOCAL_NODE_IP)
        if options.dashboard:
            init_kwargs["dashboard_host"] = "127.0.0.1"
    else:
        init_kwargs["address"] = options.address
    try:
        context = ray.init(**init_kwargs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {options.address}" if options.address else "a local Ray"
        raise FoleyError(f"cannot start or join {where}: {str(err).splitlines()[0][:200]}") from None
    url = getattr(context, "dashboard_url", None)
    if url:
        extra["dashboard_url"] = url if "://" in url else f"http://{url}"
        log(f"batch: Ray dashboard at {extra['dashboard_url']}")
    return extra


def _render_with_actors(ray, todo: list[Shot], out_dir: Path, options: BatchOptions, lines: list[dict],
                        log: Callable[[str], None], total: int, threads: int, gpus: float, env: dict) -> None:
    """Render `todo` on worker actors (one model load each), a shot at a time per actor; a
    dead worker is replaced. Each shot's line goes into `lines` and the report as it ends."""
    actor_cls = ray.remote(num_cpus=threads, num_gpus=gpus, max_restarts=MAX_RESTARTS,
                           max_task_retries=MAX_TASK_RETRIES)(ShotRendererBase)
    preload = sorted({stem["model"]["backend"] for shot in todo for stem in shot.request["stems"]})
    n_workers = min(options.workers, len(todo))

    def new_actor():
        return actor_cls.options(runtime_env={"env_vars": env}).remote(threads, preload, env)

    actors = [new_actor() for _ in range(n_workers)]
    log(f"batch: {n_workers} workers x {threads} CPU threads{f' + {gpus:g} GPU' if gpus else ''}; "
        f"loading the model once per worker")
    queue = list(todo)
    inflight: dict = {}

    def submit(actor) -> None:
        if queue:
            shot = queue.pop(0)
            inflight[actor.render.remote(shot.request, str(out_dir))] = (actor, shot)

    for actor in actors:
        submit(actor)
    t0 = time.monotonic()
    done = 0
    while inflight:
        ready, _ = ray.wait(list(inflight), num_returns=1)
        ref = ready[0]
        actor, shot = inflight.pop(ref)
        try:
            line = ray.get(ref)
        except ray.exceptions.RayActorError as err:
            line = {"shot": shot.id, "status": "failed", "request_sha256": shot.request_sha256,
                    "error": f"the worker died while rendering it, also on retry ({type(err).__name__})"}
            ray.kill(actor, no_restart=True)
            actor = new_actor()
        except ray.exceptions.RayError as err:
            line = {"shot": shot.id, "status": "failed", "request_sha256": shot.request_sha256,
                    "error": f"Ray error: {str(err).splitlines()[0][:200]}"}
        lines.append(line)
        _write_report(out_dir, lines)
        done += 1
        left = len(todo) - done
        # from the shots' own render times: the first results also carry the model loading
        shot_s = [x["seconds"] for x in lines[-done:] if "seconds" in x] or [time.monotonic() - t0]
        eta_s = sum(shot_s) / len(shot_s) * math.ceil(left / max(1, len(actors)))
        eta = f", ETA {_fmt_s(eta_s)}" if left else ""
        where = f" on {line['worker']}" if line.get("worker") else ""
        what = f"ok in {line.get('seconds', 0):.1f} s" if line["status"] == "ok" else f"FAILED: {line['error']}"
        log(f"batch: {total - len(todo) + done}/{total} shots done{eta} - '{shot.id}' {what}{where}")
        submit(actor)
