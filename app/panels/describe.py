"""4 · Describe the sound: caption, negative caption, seed, candidates, the guidance settings
and the model. Also puts a stem's settings back into these controls."""

from __future__ import annotations

import random
from types import SimpleNamespace

import gradio as gr

from app import views
from app.panels import reference, region
from app.panels.common import selection_text, shown_curve_scale, timeline, user_errors
from app.session import CURVE_SCALE_RANGE, DEFAULTS, Session, model_curve_scale
from foley_core import backends

MAX_SEED = 2**31 - 1


def random_seed() -> int:
    return random.randint(0, MAX_SEED)


def build(c: SimpleNamespace) -> None:
    c.caption = gr.Textbox(label="Caption", placeholder="e.g. a rubber ball "
                           "bounces on a wooden floor", elem_id="caption")
    c.suggest = gr.Radio([], label="Suggestions from detections (click to add)",
                         elem_id="caption-suggestions", visible=False)


def build_settings(c: SimpleNamespace) -> None:
    """Everything but the caption (the page puts the Generate button between them)."""
    c.negative = gr.Textbox(label="Negative caption (what to avoid)",
                            placeholder="e.g. speech, music", elem_id="negative-caption")
    with gr.Row():
        c.seed = gr.Number(DEFAULTS["seed"], label="Seed", precision=0, elem_id="seed", minimum=0)
        c.dice = gr.Button("Random seed", elem_id="dice-btn", size="sm")
        c.n_cand = gr.Slider(1, 4, value=DEFAULTS["candidates"], step=1,
                             label="Candidates", elem_id="candidates")
    with gr.Accordion("More settings", open=False):
        _build_settings(c)
    c.source = gr.Radio(views.SOURCE_CHOICES, value=DEFAULTS["source"], label="Source",
                        elem_id="source")
    c.model = gr.Dropdown(backends.available_backends(), value=DEFAULTS["model"],
                          label="Model", elem_id="model")
    c.model_md = gr.Markdown(views.model_notice(DEFAULTS["model"]),
                             elem_id="model-notice", elem_classes=["notice"])


def _build_settings(c: SimpleNamespace) -> None:
    c.steps = gr.Slider(5, 100, value=DEFAULTS["steps"], step=1, label="Steps", elem_id="steps")
    c.text_scale = gr.Slider(0, 10, value=DEFAULTS["text_scale"], step=0.1,
                             label="Text guidance", elem_id="text-scale")
    c.video_scale = gr.Slider(0, 10, value=DEFAULTS["video_scale"], step=0.1,
                              label="Video guidance", elem_id="video-scale")
    # curve guidance: the model's own value unless the box is unticked
    curve_default = model_curve_scale(DEFAULTS["model"])
    c.curve_scale = gr.Slider(*CURVE_SCALE_RANGE, step=0.5,
                              value=shown_curve_scale(curve_default),
                              label="Curve guidance", info=views.CURVE_SCALE_INFO,
                              interactive=False, elem_id="curve-scale")
    c.curve_auto = gr.Checkbox(
        True, label=views.curve_scale_default_label(curve_default),
        interactive=curve_default is not None, elem_id="curve-scale-default")
    c.conform = gr.Slider(0, 1, value=DEFAULTS["conform"], step=0.05,
                          label="Conform to the curve (0 = off, 1 = full)", elem_id="conform")
    c.video_onsets = gr.Checkbox(
        True, label="Start sounds at the region's contacts in the video",
        info=views.VIDEO_ONSETS_INFO, elem_id="video-onsets")


def generation_inputs(c: SimpleNamespace) -> list:
    """What Generate reads, in the order of the takes panel's on_generate arguments."""
    return [c.state, c.caption, c.negative, c.seed, c.steps, c.text_scale, c.video_scale,
            c.curve_auto, c.curve_scale, c.conform, c.n_cand, c.model, c.ref_strength,
            c.video_onsets, c.source]


def curve_scale_updates(c: SimpleNamespace, model: str, use_default: bool,
                        value: float | None = None) -> dict:
    """The curve guidance controls for `model`: the model's own value (slider greyed out
    showing it), or `value` to edit (None: leave the slider's value); both disabled for a
    model without curve guidance."""
    default = model_curve_scale(model)
    label = views.curve_scale_default_label(default)
    if default is None:
        return {c.curve_auto: gr.Checkbox(value=True, interactive=False, label=label),
                c.curve_scale: gr.Slider(value=1.0, interactive=False)}
    if use_default:
        slider = gr.Slider(value=shown_curve_scale(default), interactive=False)
    elif value is None:
        slider = gr.Slider(interactive=True)
    else:
        slider = gr.Slider(value=shown_curve_scale(value), interactive=True)
    return {c.curve_auto: gr.Checkbox(value=bool(use_default), interactive=True, label=label),
            c.curve_scale: slider}


def settings_outputs(c: SimpleNamespace) -> list:
    """Every control a stem's settings are loaded back into."""
    return [c.caption, c.negative, c.seed, c.steps, c.text_scale, c.video_scale,
            c.curve_auto, c.curve_scale, c.conform, c.model, c.sel_start, c.sel_end,
            c.sel_md, c.curve, c.timeline, *reference.outputs(c), c.ref_strength, c.video_onsets,
            c.source, c.onset_lane, c.overlay, c.region_md]


def settings_updates(c: SimpleNamespace, sess: Session, st: dict) -> dict:
    """The editor showing a stem's settings `st` (Session.load_stem_settings)."""
    if st.get("reference_missing"):
        gr.Warning(st["reference_missing"])
    if st.get("region_missing"):
        gr.Warning(st["region_missing"])
    cs = st.get("curve_scale")
    if cs is not None and shown_curve_scale(cs) != cs:
        gr.Warning(f"The stem was made with curve guidance {cs:g}, outside the slider's "
                   f"{CURVE_SCALE_RANGE[0]:g}–{CURVE_SCALE_RANGE[1]:g}: the slider shows "
                   f"{shown_curve_scale(cs):g}, which the next Generate uses "
                   "('Regenerate with a new seed' keeps the stem's own value).")
    # the stem's region came back with its settings: show it (with its shape, if it moved)
    shown = {} if sess.video is None else region.frame_updates(c, sess, sess.frame_time_s, editor=False)
    return {**shown, **reference.reference_updates(c, sess), c.ref_strength: st["strength"],
            **curve_scale_updates(c, st["model"], cs is None, cs),
            c.caption: st["caption"], c.negative: st["negative_caption"], c.seed: st["seed"],
            c.steps: st["steps"], c.text_scale: st["text_scale"],
            c.video_scale: st["video_scale"], c.conform: st["conform"],
            c.video_onsets: st["video_onsets"], c.source: st["source"],
            c.model: st["model"], c.sel_start: sess.selection[0],
            c.sel_end: sess.selection[1], c.sel_md: selection_text(sess),
            c.curve: sess.curve_json, c.onset_lane: sess.onsets_json,
            c.timeline: timeline(c, sess)}


def wire(c: SimpleNamespace) -> None:
    c.suggest.input(lambda cap, word: (f"{cap.rstrip()} {word}".strip() if word else cap),
                    [c.caption, c.suggest], c.caption)
    c.dice.click(random_seed, None, c.seed, queue=False)
    c.model.change(lambda m: views.model_notice(m), c.model, c.model_md, queue=False)

    @user_errors
    def on_curve_controls(model: str, use_default: bool):
        # a model change (or the box): the slider is editable only when the box is unticked
        return curve_scale_updates(c, model, use_default)

    curve_controls = [c.curve_auto, c.curve_scale]
    c.model.change(on_curve_controls, [c.model, c.curve_auto], curve_controls, queue=False,
                   show_progress="hidden")
    c.curve_auto.input(on_curve_controls, [c.model, c.curve_auto], curve_controls, queue=False,
                       show_progress="hidden")
