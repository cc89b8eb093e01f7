"""Stems and mix: the stems table, the inspector of the selected stem (name and mix
settings), the mix player with its loudness meter, and the video preview with the mix (the
timeline is app/panels/timeline.py)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app import views
from app.panels import describe
from app.panels.common import need, timeline, user_errors
from app.session import Session
from foley_core import constants, mixing
from foley_core import project as fproject

TARGETS = list(mixing.LOUDNESS_PRESETS)
# the stems table under the video: the caption and the reference take what the numbers leave
STEM_COLUMN_WIDTHS = ["3%", "20%", "6%", "5%", "6%", "6%", "6%", "6%", "6%", "5%", "5%", "6%",
                      "20%"]


def target_lufs(label: str) -> float:
    """The export loudness target a preset's label names (EBU R128's -23 LUFS if unknown)."""
    return mixing.LOUDNESS_PRESETS.get(label, -23.0)


def build(c: SimpleNamespace) -> None:
    """The stems' table (the page puts the inspector with the stem choice, build_inspector,
    beside them and the mix player, build_mix, in a tab)."""
    c.stems = gr.Dataframe(headers=views.STEM_COLUMNS, value=[], interactive=False,
                           elem_id="stems-table", wrap=True, max_height=160,
                           column_widths=STEM_COLUMN_WIDTHS)


def build_inspector(c: SimpleNamespace) -> None:
    """The selected stem: its name, mix settings and actions."""
    with gr.Row():
        c.stem_pick = gr.Dropdown([], label="Selected stem", elem_id="stem-select", scale=3)
        c.stem_undo = gr.Button("Undo last edit", elem_id="stem-undo-btn", scale=1, size="sm")
    _build_stem_editor(c)


def build_mix(c: SimpleNamespace) -> None:
    """The mix player, its loudness meter, the export target and the video preview."""
    with gr.Row():
        with gr.Column():
            c.mix_audio = gr.Audio(label="Mix (48 kHz)", interactive=False,
                                   elem_id="mix-audio", type="filepath", loop=False)
            c.loop_sel = gr.Checkbox(label="Loop the selection only", elem_id="loop-selection")
            c.meter_md = gr.Markdown(views.meter_markdown({"empty": True}, ""),
                                     elem_id="loudness-meter")
            c.target = gr.Dropdown(TARGETS, value=TARGETS[0],
                                   label="Export loudness target", elem_id="export-target")
        with gr.Column():
            c.mix_video = gr.Video(label="Video with the mix", interactive=False,
                                   elem_id="mix-video", loop=True, height=260)
            c.mix_video_btn = gr.Button("Render video preview", elem_id="mix-video-btn")


def _build_stem_editor(c: SimpleNamespace) -> None:
    c.stem_name = gr.Textbox("", label=f"Stem name (names its exported files and DAW track; "
                             f"up to {fproject.MAX_NAME_CHARS} characters)",
                             elem_id="stem-name", max_lines=1)
    with gr.Row():
        # Numbers, not sliders: a slider clamps a typed 1000 to its end while its box
        # still shows 1000; the session refuses an out-of-range value with a message.
        _, gain_lo, gain_hi = constants.MIX_LIMITS["gain_db"]
        _, pan_lo, pan_hi = constants.MIX_LIMITS["pan"]
        c.gain = gr.Number(0.0, label=f"Gain (dB, {gain_lo:g} … {gain_hi:+g})".replace(
                               "-", "−"), precision=1, elem_id="stem-gain")
        c.pan = gr.Number(0.0, label=f"Pan (L{pan_lo:g} … R{pan_hi:+g})".replace("-", "−"),
                          precision=2, elem_id="stem-pan")
        c.offset = gr.Number(0.0, label="Offset: starts at (s)", precision=2,
                             elem_id="stem-offset")
        c.mute = gr.Checkbox(label="Mute", elem_id="stem-mute")
        c.solo = gr.Checkbox(label="Solo", elem_id="stem-solo")
    with gr.Row():
        c.trim_start = gr.Number(0.0, label="Trim: play from (s into the stem)",
                                 precision=2, minimum=0, elem_id="stem-trim-start")
        c.trim_end = gr.Number(None, label="Trim: up to (s into the stem; empty = its end)",
                               precision=2, minimum=0, elem_id="stem-trim-end")
        c.fade_in = gr.Number(0.0, label="Fade in (s)", precision=2, minimum=0,
                              elem_id="stem-fade-in")
        c.fade_out = gr.Number(0.0, label="Fade out (s)", precision=2, minimum=0,
                               elem_id="stem-fade-out")
    with gr.Row():
        c.stem_apply = gr.Button("Apply to stem", variant="primary", elem_id="stem-apply-btn")
        c.stem_load = gr.Button("Load its settings into the editor", elem_id="stem-load-btn")
        c.stem_regen = gr.Button("Regenerate with a new seed", elem_id="stem-regen-btn")
        c.stem_delete = gr.Button("Delete stem", variant="stop", elem_id="stem-delete-btn")
    with gr.Row():
        c.span_start = gr.Number(None, label="Remake a span of the stem: from (s into the stem)",
                                 precision=2, minimum=0, elem_id="span-start")
        c.span_end = gr.Number(None, label="to (s)", precision=2, minimum=0, elem_id="span-end")
        c.span_regen = gr.Button("Regenerate only this span", elem_id="span-regen-btn")


def mix_controls(c: SimpleNamespace) -> list:
    """The selected stem's mix controls (in on_stem_apply's order)."""
    return [c.gain, c.pan, c.offset, c.trim_start, c.trim_end, c.fade_in, c.fade_out, c.mute,
            c.solo]


def editor_outputs(c: SimpleNamespace) -> list:
    """The selected stem's inspector: its name and mix controls."""
    return [*mix_controls(c), c.stem_name]


def project_outputs(c: SimpleNamespace) -> list:
    return [c.stems, c.stem_pick, c.timeline, *editor_outputs(c)]


def mix_outputs(c: SimpleNamespace) -> list:
    return [c.mix_audio, c.meter_md]


def project_updates(c: SimpleNamespace, sess: Session, *, selected: str | None = None) -> dict:
    """The stems table, the stem choice (`selected`, else the last stem), the timeline and the
    selected stem's mix controls."""
    choices = [(views.stem_label(i, s), s.id) for i, s in enumerate(sess.project.stems)]
    ids = [i for _, i in choices]
    if selected not in ids:
        selected = ids[-1] if ids else None
    return {
        c.stems: views.stems_rows(sess.project),
        c.stem_pick: gr.Dropdown(choices=choices, value=selected),
        c.timeline: timeline(c, sess, selected),
        **stem_editor_updates(c, sess, selected),
    }


def stem_editor_updates(c: SimpleNamespace, sess: Session, stem_id: str | None) -> dict:
    if stem_id is None:
        # {} and not gr.skip(): callers merge this into a {component: value} dict, and
        # gradio refuses a dict whose keys are not all components (gr.skip() is
        # {"__type__": "update"}): the whole event failed, every output marked as errored.
        # Outputs left out of the dict are skipped anyway.
        return {}
    stem = sess.stem(stem_id)
    m = stem.mix
    return {c.stem_name: stem.name, c.gain: m.gain_db, c.pan: m.pan, c.offset: m.offset_s,
            c.trim_start: m.trim_start_s, c.trim_end: m.trim_end_s, c.fade_in: m.fade_in_s,
            c.fade_out: m.fade_out_s, c.mute: m.mute, c.solo: m.solo}


def mix_updates(c: SimpleNamespace, sess: Session, target_label: str, loop_selection: bool) -> dict:
    if not sess.project.stems:
        return {c.mix_audio: None, c.meter_md: views.meter_markdown({"empty": True}, "")}
    meter = sess.meter(target_lufs(target_label))
    return {c.mix_audio: gr.Audio(value=str(sess.preview_wav(selection_only=loop_selection)),
                                  loop=bool(loop_selection)),
            c.meter_md: views.meter_markdown(meter, target_label)}


def wire(c: SimpleNamespace) -> None:
    _wire_stem_edits(c)
    _wire_stem_actions(c)
    _wire_mix(c)


def _wire_stem_edits(c: SimpleNamespace) -> None:
    S = c.state
    edited_outs = [*project_outputs(c), *mix_outputs(c)]

    @user_errors
    def on_stem_pick(sess: Session, stem_id: str | None):
        sess = need(sess)
        if not stem_id:
            return gr.skip()
        return {**stem_editor_updates(c, sess, stem_id), c.timeline: timeline(c, sess, stem_id)}

    c.stem_pick.input(on_stem_pick, [S, c.stem_pick], [*editor_outputs(c), c.timeline])

    def stem_in_use(sess, stem_id=None, *_):
        # a refused edit: the boxes show the stem's values actually in use again
        return stem_editor_updates(c, sess, stem_id) if sess is not None and stem_id else None

    @user_errors(shown=stem_in_use)
    def on_stem_apply(sess, stem_id, gain, pan, offset, trim_start, trim_end, fade_in,
                      fade_out, mute, solo, target, loop):
        sess = need(sess)
        if not stem_id:
            raise gr.Error("No stem selected: keep a take as a stem first.")
        sess.update_stem(stem_id, gain_db=gain, pan=pan, offset_s=offset,
                         trim_start_s=trim_start or 0.0,
                         trim_end_s=None if trim_end in (None, "") else trim_end,
                         fade_in_s=fade_in, fade_out_s=fade_out, mute=mute, solo=solo)
        return {**project_updates(c, sess, selected=stem_id), **mix_updates(c, sess, target, loop)}

    stem_inputs = [S, c.stem_pick, *mix_controls(c), c.target, c.loop_sel]
    for event in (c.stem_apply.click, c.mute.input, c.solo.input):
        event(on_stem_apply, stem_inputs, edited_outs)
    # Settings that need no partner apply as soon as they are entered (Enter, or leaving the
    # box); the trim's two ends still go together with 'Apply to stem'.
    @user_errors(shown=stem_in_use)
    def on_stem_name(sess, stem_id, name):
        sess = need(sess)
        if not stem_id:
            return gr.skip()
        if sess.stem(stem_id).name == name:
            return gr.skip()                # the box was left unchanged
        sess.rename_stem(stem_id, name)
        return project_updates(c, sess, selected=stem_id)

    for event in (c.stem_name.submit, c.stem_name.blur):
        event(on_stem_name, [S, c.stem_pick, c.stem_name], project_outputs(c))
    for control, field in ((c.gain, "gain_db"), (c.pan, "pan"), (c.offset, "offset_s"),
                           (c.fade_in, "fade_in_s"), (c.fade_out, "fade_out_s")):
        handler = _applied_at_once(c, field, stem_in_use)
        for event in (control.submit, control.blur):
            event(handler, [S, c.stem_pick, control, c.target, c.loop_sel], edited_outs)


def _applied_at_once(c: SimpleNamespace, field: str, shown):
    """The handler that applies one mix setting of the selected stem (named on_<field>)."""

    def apply(sess, stem_id, value, target, loop):
        sess = need(sess)
        if not stem_id:
            return gr.skip()                # no stem yet: nothing to apply to
        before = sess.stem(stem_id).mix
        if sess.update_stem(stem_id, **{field: value}).mix == before:
            return gr.skip()                # the box was left unchanged
        return {**project_updates(c, sess, selected=stem_id), **mix_updates(c, sess, target, loop)}

    apply.__name__ = apply.__qualname__ = f"on_{field}"
    return user_errors(shown=shown)(apply)


def _wire_stem_actions(c: SimpleNamespace) -> None:
    S = c.state
    edited_outs = [*project_outputs(c), *mix_outputs(c)]

    @user_errors
    def on_stem_delete(sess, stem_id, target, loop):
        sess = need(sess)
        if not stem_id:
            raise gr.Error("No stem selected.")
        sess.delete_stem(stem_id)
        return {**project_updates(c, sess), **mix_updates(c, sess, target, loop)}

    c.stem_delete.click(on_stem_delete, [S, c.stem_pick, c.target, c.loop_sel], edited_outs)

    @user_errors
    def on_stem_load(sess, stem_id):
        sess = need(sess)
        if not stem_id:
            raise gr.Error("No stem selected.")
        return describe.settings_updates(c, sess, sess.load_stem_settings(stem_id))

    c.stem_load.click(on_stem_load, [S, c.stem_pick], describe.settings_outputs(c))


def _wire_mix(c: SimpleNamespace) -> None:
    S = c.state

    @user_errors
    def on_mix(sess, target, loop):
        return mix_updates(c, need(sess), target, loop)

    c.target.change(on_mix, [S, c.target, c.loop_sel], mix_outputs(c))
    c.loop_sel.input(on_mix, [S, c.target, c.loop_sel], mix_outputs(c))

    @user_errors
    def on_mix_video(sess, target, progress=gr.Progress()):
        sess = need(sess)
        progress(0.2, desc="muxing the mix into the video")
        return str(sess.export_mp4(target_lufs(target)))

    c.mix_video_btn.click(on_mix_video, [S, c.target], c.mix_video, concurrency_id="export",
                          concurrency_limit=2)
