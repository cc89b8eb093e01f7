"""The loudness-curve editor: a gr.HTML canvas widget, and its JSON value.

Gradio has no curve widget, so the editor is a `gr.HTML` whose `js_on_load` (static/curve.js)
draws on a canvas with pointer events. Its value is a JSON string holding the drawn curve in the
relative 0..1 space (generation takes its highest point as the stem's loudest moment: see
loudness.conform), with times in seconds from the start of the selection, plus what the canvas draws behind it (motion / original loudness traces, contacts).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from app.widget_value import read_json_value
from foley_core.errors import CurveError

STATIC_DIR = Path(__file__).resolve().parent / "static"

_TEMPLATE = """
<div class="lc-root">
  <canvas class="lc-canvas" aria-label="loudness curve: drag to draw"></canvas>
  <div class="lc-bar">
    <span class="lc-legend"><i class="lc-sw lc-sw-curve"></i>your curve
      <i class="lc-sw lc-sw-motion"></i>motion in the video
      <i class="lc-sw lc-sw-loud"></i>original audio
      <i class="lc-sw lc-sw-event"></i>contacts</span>
    <span class="lc-status"></span>
    <button type="button" class="lc-clear">Clear curve</button>
  </div>
</div>
"""

_CSS = """
.lc-root { width: 100%; user-select: none; }
.lc-canvas { display: block; width: 100%; height: 170px; touch-action: none; cursor: crosshair;
  border: 1px solid var(--border-color-primary); border-radius: 6px; }
.lc-bar { display: flex; gap: 12px; align-items: center; font-size: 12px; margin-top: 4px;
  color: var(--body-text-color-subdued); flex-wrap: wrap; }
.lc-status { margin-left: auto; }
.lc-sw { display: inline-block; width: 14px; height: 3px; margin: 0 4px 3px 8px;
  vertical-align: middle; }
.lc-sw-curve { background: #f97316; } .lc-sw-motion { background: rgba(70,140,220,.6); }
.lc-sw-loud { background: rgba(120,120,120,.7); } .lc-sw-event { background: rgba(220,80,60,.8); }
.lc-clear { padding: 2px 10px; border-radius: 4px; border: 1px solid var(--border-color-primary);
  background: var(--button-secondary-background-fill); color: var(--body-text-color); }
"""


def curve_value(
    times_s: Sequence[float] | np.ndarray | None = None,
    values: Sequence[float] | np.ndarray | None = None,
    *,
    duration_s: float,
    start_s: float = 0.0,
    background_fps: float = 10.0,
    motion: Sequence[float] | np.ndarray | None = None,
    loudness: Sequence[float] | np.ndarray | None = None,
    events_s: Sequence[float] | np.ndarray | None = None,
) -> str:
    """The widget's JSON value: a curve (times in s from the selection start, values 0..1)
    over a selection of `duration_s` seconds starting at `start_s` in the video, with optional
    faint background traces (0..1 at `background_fps`) and contact times (selection time)."""

    def _list(x: Any, ndigits: int = 4) -> list[float]:
        if x is None:
            return []
        return [round(float(v), ndigits) for v in np.asarray(x, dtype=np.float64).ravel()
                if math.isfinite(float(v))]

    return json.dumps({
        "times_s": _list(times_s),
        "values": _list(values),
        "duration_s": round(float(duration_s), 4),
        "start_s": round(float(start_s), 4),
        "background": {"fps": float(background_fps), "motion": _list(motion, 3),
                       "loudness": _list(loudness, 3)},
        "events_s": _list(events_s),
    })


def parse_curve_value(value: str | dict | None) -> dict:
    """Decode the widget's value; raises CurveError for a value that is not ours."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return {"times_s": [], "values": [], "duration_s": 0.0, "start_s": 0.0,
                "background": {}, "events_s": []}
    data = read_json_value(value, CurveError, "The loudness curve", "clear it and draw it again.")
    times, vals = data.get("times_s") or [], data.get("values") or []
    if not isinstance(times, list) or not isinstance(vals, list) or len(times) != len(vals):
        raise CurveError(f"The loudness curve has {len(times)} times but {len(vals)} values; "
                         "clear it and draw it again.")
    data["times_s"], data["values"] = times, vals
    return data


def curve_points(value: str | dict | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The drawn curve as (times_s, values) float arrays, or None when nothing is drawn."""
    data = parse_curve_value(value)
    if not data["times_s"]:
        return None
    try:
        times = np.asarray(data["times_s"], dtype=np.float64)
        vals = np.asarray(data["values"], dtype=np.float64)
    except (TypeError, ValueError):
        raise CurveError("The loudness curve holds non-numbers; clear it and draw it again.") from None
    return times, vals


def with_curve(value: str | dict | None, times_s, values, **changes: Any) -> str:
    """`value` with its curve replaced (None/None clears it), other fields kept or changed."""
    data = parse_curve_value(value)
    data["times_s"] = [] if times_s is None else [round(float(t), 4) for t in times_s]
    data["values"] = [] if values is None else [round(float(v), 4) for v in values]
    data.update(changes)
    return json.dumps(data)


def LoudnessCurve(value: str | None = None, *, elem_id: str = "loudness-curve", **kwargs):
    """The curve editor component (a gr.HTML with a canvas)."""
    import gradio as gr

    js = (STATIC_DIR / "curve.js").read_text(encoding="utf-8")
    return gr.HTML(
        value=value if value is not None else curve_value(duration_s=0.0),
        html_template=_TEMPLATE,
        css_template=_CSS,
        js_on_load=js,
        apply_default_css=False,
        elem_id=elem_id,
        **kwargs,
    )
