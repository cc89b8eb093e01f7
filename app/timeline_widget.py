"""The timeline: a gr.HTML widget with the transport, the video lane and one lane per stem, and
its JSON value.

Like the onsets lane (onsets_widget), the timeline is a `gr.HTML` whose `js_on_load`
(static/timeline.js, after the vendored wavesurfer.js and its regions plugin) draws the lanes and
plays the stems with Web Audio in the page, started against the page's video player, so mute,
solo, gain and pan are heard at once. Its value is a JSON string:

    {"duration_s": D,                    the timeline's length (video or stems, whichever ends last)
     "video_duration_s": V | null, "fps": F,   the video (a nudge moves a stem by one frame)
     "selection": [start_s, end_s] | null,     the selection (looped by "Loop selection")
     "ceiling_dbtp": C,                  meters turn red above it (the export's true-peak ceiling)
     "selected": stem id | null,
     "stems": [{"id", "name", "url", "source_duration_s", "colour",
                "gain_db", "pan", "offset_s", "trim_start_s", "trim_end_s",
                "fade_in_s", "fade_out_s", "mute", "solo"}, ...],
     "edit": null | {"stem_id": ID, "changes": {field: value, ...}} | {"stem_id": ID, "delete": true},
     "select": null | stem id,           one request without a nonce (applied as it comes)
     "page": P, "ops": [{"nonce": N, "edit": ..., "select": ...}, ...],   the page's requests
     "ack": null | {"page": P, "nonce": N}}   the last of page P's requests the server handled

Each finished edit in the page (a drag, a trim, a fade, a nudge, a mute) or a click's selection
is an op with the next nonce of that page (P, a random id per page load). The page sends every
op the server has not yet acknowledged, each time, because gradio runs one change event at a
time and reads the value only when it starts it: an edit sent while the reply to the one before
is in flight is read from the value that reply wrote. The server handles each op once, in nonce
order (a refused one counts as handled, so it is not sent forever), and echoes the last nonce
handled in "ack"; the page lays the ops it still has above the ack on top of the server's value
and sends them again.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Iterable

from app.curve_widget import STATIC_DIR
from app.widget_value import read_json_value
from foley_core import constants
from foley_core.errors import MixError
from foley_core.project import ExportSettings

VENDOR_DIR = STATIC_DIR / "vendor" / "wavesurfer"
VENDOR_FILES = ("wavesurfer.min.js", "regions.min.js")
# What a lane may change on a stem: the mix settings Session.update_stem takes.
EDIT_FIELDS = ("gain_db", "pan", "offset_s", "trim_start_s", "trim_end_s", "fade_in_s",
               "fade_out_s", "mute", "solo")
_FLAGS = ("mute", "solo")
STEM_COLOURS = ("#f97316", "#2563eb", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04")
DEFAULT_FPS = 25.0

_TEMPLATE = """
<div class="tw-root" tabindex="0" aria-label="timeline: space plays or pauses, arrows nudge the
  selected stem by a frame, Delete removes it">
  <div class="tw-bar">
    <button type="button" id="transport-play" class="tw-btn tw-play"
      title="Play / pause (space)">Play</button>
    <button type="button" id="transport-loop" class="tw-btn tw-loop"
      title="Loop the selection">Loop selection</button>
    <span class="tw-time">0.000 s</span>
    <span class="tw-master"><span class="tw-mlabel">master</span>
      <span class="tw-meter tw-meter-master"><i></i></span><span class="tw-mtext"></span></span>
    <span class="tw-status"></span>
  </div>
  <div class="tw-body">
    <div class="tw-row tw-ruler-row"><div class="tw-head"></div>
      <div class="tw-ruler" title="click to move the playhead there"></div></div>
    <div class="tw-row tw-video-row"><div class="tw-head">video</div>
      <div class="tw-lane tw-video"><div class="tw-sel"></div></div></div>
    <div class="tw-stems"></div>
    <div class="tw-playhead"></div>
  </div>
  <div class="tw-empty">No stems yet: generate a sound and keep it.</div>
</div>
"""

_CSS = """
.tw-root { width: 100%; user-select: none; outline: none; font-size: 12px; --tw-head: 190px; }
.tw-root:focus-visible { box-shadow: 0 0 0 2px #f97316; border-radius: 6px; }
.tw-bar { display: flex; gap: 10px; align-items: center; flex-wrap: wrap; margin-bottom: 4px; }
.tw-btn { padding: 3px 12px; border-radius: 4px; border: 1px solid var(--border-color-primary);
  background: var(--button-secondary-background-fill); color: var(--body-text-color); }
.tw-play { min-width: 70px; font-weight: 600; }
.tw-btn.tw-on { background: #f97316; color: white; }
.tw-time { font-variant-numeric: tabular-nums; min-width: 80px; }
.tw-status { margin-left: auto; color: var(--body-text-color-subdued); }
.tw-master { display: flex; align-items: center; gap: 6px; }
.tw-meter { position: relative; display: inline-block; width: 120px; height: 8px; border-radius: 3px;
  background: var(--background-fill-secondary); overflow: hidden; vertical-align: middle; }
.tw-meter i { position: absolute; left: 0; top: 0; bottom: 0; width: 0; background: #16a34a; }
.tw-meter.tw-over i { background: #dc2626; }
.tw-mtext { font-variant-numeric: tabular-nums; min-width: 150px; }
.tw-mtext.tw-over { color: #dc2626; font-weight: 600; }
.tw-body { position: relative; }
.tw-row { display: flex; align-items: stretch; margin-top: 3px; }
.tw-head { flex: 0 0 var(--tw-head); width: var(--tw-head); box-sizing: border-box; padding-right: 6px;
  display: flex; flex-wrap: wrap; gap: 2px 4px; align-items: center; overflow: hidden; }
.tw-ruler { position: relative; flex: 1; height: 18px; cursor: pointer;
  border-bottom: 1px solid var(--border-color-primary); }
.tw-ruler span { position: absolute; top: 0; transform: translateX(-50%); white-space: nowrap;
  color: var(--body-text-color-subdued); pointer-events: none; }
.tw-root .tw-lane, .tw-root .tl-lane { position: relative; flex: 1; height: 46px; margin: 0;
  background: var(--background-fill-secondary); border-radius: 4px; overflow: hidden; }
.tw-video { height: 18px !important; background: #94a3b8 !important; }
.tw-sel { position: absolute; top: 0; bottom: 0; background: rgba(249, 115, 22, .3);
  border-left: 2px solid #f97316; border-right: 2px solid #f97316; pointer-events: none; }
.tw-name { flex: 1 1 100%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.tw-stem-row.tw-selected .tw-name { font-weight: 700; }
.tw-stem-row.tw-selected .tl-lane { outline: 2px solid var(--body-text-color); }
.tw-ms { padding: 0 5px; border-radius: 3px; border: 1px solid var(--border-color-primary);
  background: var(--button-secondary-background-fill); color: var(--body-text-color); font-size: 11px; }
.tw-ms.tw-on { background: #f59e0b; color: black; }
.tw-num { width: 38px; font-size: 11px; padding: 0 2px; border: 1px solid var(--border-color-primary);
  border-radius: 3px; background: var(--input-background-fill); color: var(--body-text-color); }
.tw-head .tw-meter { width: 46px; }
.tw-clip { position: absolute; top: 0; bottom: 0; cursor: grab; touch-action: none; }
.tw-clip.tw-dragging { cursor: grabbing; opacity: .85; }
.tw-wave { position: absolute; inset: 0; }
.tw-silent .tw-wave { opacity: .3; }
.tw-cut { position: absolute; top: 0; bottom: 0; background: rgba(0, 0, 0, .35); pointer-events: none; }
.tw-fades { position: absolute; inset: 0; pointer-events: none; overflow: visible; }
.tw-fade { position: absolute; top: 0; width: 10px; height: 10px; margin-left: -5px; border-radius: 2px;
  background: white; border: 1px solid #111; cursor: ew-resize; pointer-events: auto; z-index: 5; }
.tw-playhead { position: absolute; top: 0; bottom: 0; width: 0; border-left: 2px solid #2563eb;
  pointer-events: none; left: var(--tw-head); z-index: 6; }
.tw-empty { margin: 6px 0 0 var(--tw-head); color: var(--body-text-color-subdued); display: none; }
.tw-root.tw-no-stems .tw-empty { display: block; }
/* a phone: the lanes' heads (name, M/S, gain, meter) wrap in a narrow column so the lanes keep
   most of the width */
@media (max-width: 640px) { .tw-root { --tw-head: 96px; } }
"""


def _num(value: Any, ndigits: int = 4) -> float:
    return round(float(value), ndigits)


def stem_entries(stems: Iterable[Any], url_for: Callable[[Any], str]) -> list[dict]:
    """The lanes of `stems` (foley_core.project.Stem), each with the URL `url_for(stem)` the page
    fetches its audio from (the stem's own audio, untrimmed, at its own rate)."""
    out = []
    for i, s in enumerate(stems):
        m = s.mix
        out.append({"id": s.id, "index": i + 1, "name": s.name, "url": url_for(s),
                    "source_duration_s": _num(s.source_duration_s, 6),
                    "colour": STEM_COLOURS[i % len(STEM_COLOURS)],
                    "gain_db": _num(m.gain_db, 3), "pan": _num(m.pan, 3),
                    "offset_s": _num(m.offset_s), "trim_start_s": _num(m.trim_start_s),
                    "trim_end_s": None if m.trim_end_s is None else _num(m.trim_end_s),
                    "fade_in_s": _num(m.fade_in_s), "fade_out_s": _num(m.fade_out_s),
                    "mute": bool(m.mute), "solo": bool(m.solo)})
    return out


def timeline_value(*, stems: list[dict], video_duration_s: float | None, fps: float | None,
                   selection: tuple[float, float] | None, selected_id: str | None,
                   ceiling_dbtp: float, ack: tuple[str, int] | None = None) -> str:
    """The widget's JSON value. `stems` as stem_entries gives them; the timeline is as long as
    the video or the last stem's end, whichever is later (at least 1 s). `ack` is (page, nonce):
    the last op of that page the server handled."""
    ends = []
    for s in stems:
        kept_end = s["trim_end_s"] if s["trim_end_s"] is not None else s["source_duration_s"]
        ends.append(s["offset_s"] + kept_end - s["trim_start_s"])
    duration_s = max([float(video_duration_s or 0.0), *ends, 1.0])
    good_fps = fps is not None and math.isfinite(float(fps)) and float(fps) > 0
    sel = None
    if selection is not None and selection[1] > selection[0]:
        sel = [_num(selection[0]), _num(selection[1])]
    ids = {s["id"] for s in stems}
    return json.dumps({
        "duration_s": _num(duration_s),
        "video_duration_s": None if not video_duration_s else _num(video_duration_s),
        "fps": float(fps) if good_fps else DEFAULT_FPS,
        "selection": sel, "ceiling_dbtp": _num(ceiling_dbtp, 2),
        "selected": selected_id if selected_id in ids else None,
        "stems": stems, "edit": None, "select": None, "ops": [],
        "ack": None if not ack or not ack[0] else {"page": ack[0], "nonce": int(ack[1])}})


def parse_timeline_value(value: str | dict | None) -> dict:
    """What the page asks for: {"edit": None | {"stem_id", "changes"} | {"stem_id", "delete":
    True}, "select": None | stem id}. The changes hold only mix fields (EDIT_FIELDS), numbers
    finite, mute/solo booleans; their ranges are checked by the session (MixSettings.edited).
    MixError for a value that is not the timeline's."""
    nothing = {"edit": None, "select": None}
    if value is None or (isinstance(value, str) and not value.strip()):
        return nothing
    data = read_json_value(value, MixError, "The timeline's edit",
                           "reload the page and make the edit again.")
    select = data.get("select")
    if select is not None and (not isinstance(select, str) or not select):
        raise MixError("The timeline asked to select something that is not a stem; click the "
                       "stem's lane again.")
    edit = data.get("edit")
    if edit is None:
        return {"edit": None, "select": select}
    if not isinstance(edit, dict) or not isinstance(edit.get("stem_id"), str) or not edit["stem_id"]:
        raise MixError("The timeline's edit names no stem; click the stem's lane and make the "
                       "edit again.")
    if edit.get("delete") is True:
        return {"edit": {"stem_id": edit["stem_id"], "delete": True}, "select": select}
    changes = edit.get("changes")
    if not isinstance(changes, dict) or not changes:
        raise MixError("The timeline's edit changes nothing it can change; make the edit again.")
    unknown = sorted(set(changes) - set(EDIT_FIELDS))
    if unknown:
        raise MixError(f"The timeline cannot change a stem's {', '.join(unknown)}; it changes "
                       f"only {', '.join(EDIT_FIELDS)}.")
    checked: dict[str, Any] = {}
    for key, v in changes.items():
        if key in _FLAGS:
            if not isinstance(v, bool):
                raise MixError(f"The timeline's {key} must be on or off; got {v!r}.")
            checked[key] = v
        elif key == "trim_end_s" and v is None:
            checked[key] = None
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            label = constants.MIX_LIMITS[key][0]
            raise MixError(f"The timeline's {label} must be a number; got {v!r}.")
        else:
            checked[key] = float(v)
    return {"edit": {"stem_id": edit["stem_id"], "changes": checked}, "select": select}


def parse_timeline_ops(value: str | dict | None) -> tuple[str, list[dict]]:
    """The page's id and its ops in nonce order: each {"nonce": N | None, "edit": ..., "select":
    ..., "error": None | message}, as parse_timeline_value reads one; an op it refuses carries
    the message in "error" (its nonce is still handled). A request outside "ops" (no nonce)
    comes last. MixError for a value that is not the timeline's."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return "", []
    data = read_json_value(value, MixError, "The timeline's edit",
                           "reload the page and make the edit again.")
    page = data.get("page") if isinstance(data.get("page"), str) else ""
    raw_ops = data.get("ops") if isinstance(data.get("ops"), list) else []
    ops = []
    for raw in raw_ops:
        nonce = raw.get("nonce") if isinstance(raw, dict) else None
        if not page or isinstance(nonce, bool) or not isinstance(nonce, int) or nonce < 1:
            raise MixError("The timeline's edits are not numbered; reload the page and make the "
                           "edit again.")
        ops.append({"nonce": nonce, **_parse_op(raw)})
    ops.sort(key=lambda op: op["nonce"])
    single = _parse_op(data)
    if single["edit"] is not None or single["select"] is not None or single["error"]:
        ops.append({"nonce": None, **single})
    return page, ops


def _parse_op(raw: dict) -> dict:
    try:
        return {**parse_timeline_value(raw), "error": None}
    except MixError as err:
        return {"edit": None, "select": None, "error": str(err)}


def claim(ack: tuple[str, int], page: str, nonce: int | None) -> tuple[tuple[str, int], bool]:
    """(the new ack, whether to handle the op): an op of `page` with `nonce` is handled once,
    only if it is after the last one handled (`ack`); an op without a nonce always. A new page
    (a reload) starts its own count."""
    if nonce is None:
        return ack, True
    last = ack[1] if ack[0] == page else 0
    if nonce <= last:
        return ack, False
    return (page, nonce), True


def page_script() -> str:
    """The widget's js_on_load: the vendored wavesurfer.js and its regions plugin (they define
    the global WaveSurfer), then static/timeline.js."""
    parts = [(VENDOR_DIR / name).read_text(encoding="utf-8") for name in VENDOR_FILES]
    parts.append((STATIC_DIR / "timeline.js").read_text(encoding="utf-8"))
    return ";\n".join(parts)


def Timeline(value: str | None = None, *, elem_id: str = "timeline", **kwargs):
    """The timeline component (a gr.HTML)."""
    import gradio as gr

    empty = timeline_value(stems=[], video_duration_s=None, fps=None, selection=None,
                           selected_id=None, ceiling_dbtp=ExportSettings().ceiling_dbtp)
    return gr.HTML(value=value if value is not None else empty, html_template=_TEMPLATE,
                   css_template=_CSS, js_on_load=page_script(), apply_default_css=False,
                   elem_id=elem_id, **kwargs)
