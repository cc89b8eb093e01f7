"""The onsets lane: a gr.HTML widget holding the hits generation will use, and its JSON value.

Like the curve editor (curve_widget), the lane is a `gr.HTML` whose `js_on_load`
(static/onsets.js) draws markers the user adds (click), moves (drag) and deletes (double-click,
or select and Delete), and that records taps while the selection plays ("Tap along"). Its value
is a JSON string, times in seconds from the selection start:

    {"start_s": S, "duration_s": D,       the selection (video time of its start, its length)
     "contacts_s": [...],                 contacts found in the video (drawn faintly; snapping)
     "onsets_s": [...] | null,            the user's hits; null = untouched: use the contacts
     "tapped": bool, "snap": bool}        taps just recorded, to snap to the contacts (server)

An untouched lane (onsets_s null) leaves the onsets to the video's contacts as before; a lane
the user emptied ([]) means "no hits".
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

from app.curve_widget import STATIC_DIR
from app.widget_value import read_json_value
from foley_core.errors import OnsetError

_TEMPLATE = """
<div class="ol-root">
  <div class="ol-track" tabindex="0" aria-label="onsets: click to add a hit, drag to move,
    double-click (or select and press Delete) to remove"></div>
  <div class="ol-axis"></div>
  <div class="ol-bar">
    <button type="button" id="tap-btn" class="ol-btn ol-tap">Tap along</button>
    <label>speed <select id="tap-speed" class="ol-speed">
      <option value="1">1x</option><option value="0.5">0.5x</option></select></label>
    <label><input type="checkbox" id="tap-snap" class="ol-snap"> snap taps to contacts
      (80 ms)</label>
    <button type="button" class="ol-btn ol-video">Use video contacts</button>
    <button type="button" class="ol-btn ol-clear">No hits</button>
    <span class="ol-status"></span>
  </div>
</div>
"""

_CSS = """
.ol-root { width: 100%; user-select: none; }
.ol-track { position: relative; height: 46px; border: 1px solid var(--border-color-primary);
  border-radius: 6px; background: var(--background-fill-secondary); cursor: copy;
  margin: 0 10px 0 34px; outline: none; }
.ol-track:focus { border-color: #f97316; }
.ol-track.ol-tapping { background: rgba(249, 115, 22, .08); }
.ol-contact { position: absolute; top: 0; bottom: 0; width: 0;
  border-left: 1px dashed rgba(220, 80, 60, .6); pointer-events: none; }
.ol-marker { position: absolute; top: 2px; bottom: 2px; width: 11px; margin-left: -6px;
  cursor: ew-resize; touch-action: none; }
.ol-marker::before { content: ""; position: absolute; left: 5px; top: 0; bottom: 0; width: 2px;
  background: #f97316; }
.ol-marker::after { content: ""; position: absolute; left: 1px; top: 0; width: 9px; height: 9px;
  border-radius: 50%; background: #f97316; }
.ol-marker.ol-from-video::before, .ol-marker.ol-from-video::after { background: rgba(220,80,60,.75); }
.ol-marker.ol-selected::after { box-shadow: 0 0 0 2px var(--body-text-color); }
.ol-playhead { position: absolute; top: 0; bottom: 0; width: 0; border-left: 2px solid #2563eb;
  pointer-events: none; }
.ol-axis { position: relative; height: 16px; margin: 0 10px 0 34px; font-size: 11px;
  color: var(--body-text-color-subdued); }
.ol-axis span { position: absolute; transform: translateX(-50%); }
.ol-bar { display: flex; gap: 10px; align-items: center; font-size: 12px; margin-top: 2px;
  flex-wrap: wrap; color: var(--body-text-color-subdued); }
.ol-btn { padding: 2px 10px; border-radius: 4px; border: 1px solid var(--border-color-primary);
  background: var(--button-secondary-background-fill); color: var(--body-text-color); }
.ol-tap.ol-on { background: #f97316; color: white; }
.ol-status { margin-left: auto; }
"""


def _times(x: Any) -> list[float]:
    return [round(float(v), 4) for v in (x or []) if math.isfinite(float(v))]


def lane_value(*, start_s: float, duration_s: float, contacts_s: Sequence[float] = (),
               onsets_s: Sequence[float] | None = None) -> str:
    """The lane's JSON value for a selection (times in selection seconds)."""
    return json.dumps({"start_s": round(float(start_s), 4),
                       "duration_s": round(float(duration_s), 4),
                       "contacts_s": _times(contacts_s),
                       "onsets_s": None if onsets_s is None else sorted(_times(onsets_s)),
                       "tapped": False, "snap": False})


def parse_lane_value(value: str | dict | None, duration_s: float) -> dict:
    """The lane's value as a dict with `onsets_s` (sorted selection seconds, or None when the
    lane is untouched) checked against a selection of `duration_s` seconds. OnsetError for a
    value that is not the lane's or holds times outside the selection."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {"onsets_s": None, "tapped": False, "snap": False}
    data = read_json_value(value, OnsetError, "The onsets lane",
                           "press 'Use video contacts' and place the hits again.")
    onsets = data.get("onsets_s")
    if onsets is not None:
        if not isinstance(onsets, list) or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t)
                for t in onsets):
            raise OnsetError("The onsets lane holds something other than times in seconds; "
                             "press 'Use video contacts' and place the hits again.")
        outside = [t for t in onsets if not 0.0 <= t < duration_s]
        if outside:
            raise OnsetError(f"The hit at {outside[0]:.3f} s lies outside the {duration_s:.2f} s "
                             "selection (hits count from the selection start); nothing changed.")
        onsets = sorted(float(t) for t in onsets)
    return {"onsets_s": onsets, "tapped": bool(data.get("tapped")), "snap": bool(data.get("snap"))}


def OnsetsLane(value: str | None = None, *, elem_id: str = "onset-lane", **kwargs):
    """The onsets lane component (a gr.HTML)."""
    import gradio as gr

    js = (STATIC_DIR / "onsets.js").read_text(encoding="utf-8")
    return gr.HTML(
        value=value if value is not None else lane_value(start_s=0.0, duration_s=0.0),
        html_template=_TEMPLATE, css_template=_CSS, js_on_load=js,
        apply_default_css=False, elem_id=elem_id, **kwargs)
