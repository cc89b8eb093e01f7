"""3 · Loudness over time: the curve editor and its presets, and the onsets lane below it (the
hits generation uses: the video's contacts, or the ones the user placed or tapped)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app import curve_widget, onsets_widget
from app.panels import common
from app.panels.common import need, user_errors
from app.session import Session

PRESETS = (("flat", "Flat"), ("fade in", "Fade in"), ("fade out", "Fade out"),
           ("hits", "Hits at contacts"), ("motion", "Follow motion"), ("none", "No curve"))


def build(c: SimpleNamespace) -> None:
    gr.Markdown("**Loudness over time**: draw it (drag across), or pick a preset.",
                elem_classes=["notice"])
    c.curve = curve_widget.LoudnessCurve()
    with gr.Row():
        c.preset_btns = {}
        for name, label in PRESETS:
            c.preset_btns[name] = gr.Button(label, size="sm",
                                            elem_id=f"preset-{name.replace(' ', '-')}")
    gr.Markdown("**Hits**: where sounds start. Click the lane to add one, drag to move, "
                "double-click to remove; or tap along while the selection plays.")
    c.onset_lane = onsets_widget.OnsetsLane()
    c.find_contacts = gr.Button("Find contacts", size="sm", elem_id="find-contacts-btn")
    c.sketch = gr.Audio(sources=["microphone", "upload"], type="filepath", elem_id="sketch-audio",
                        label="Vocal sketch: perform it ('tk tk tsssh'); its loudness becomes the "
                              "curve and its attacks the hits")


def wire(c: SimpleNamespace) -> None:
    S = c.state

    @user_errors
    def on_curve(sess: Session, value: str):
        need(sess).set_curve(value)

    c.curve.change(on_curve, [S, c.curve], None, queue=False, show_progress="hidden")

    def preset(name: str):
        @user_errors
        def handler(sess: Session):
            return need(sess).curve_preset(name)

        return handler

    for name, btn in c.preset_btns.items():
        btn.click(preset(name), S, c.curve)

    # The lane follows the curve editor's frame: every change of selection, region, video or
    # contacts reaches the curve editor, and the lane is rebuilt from the session then.
    def lane_frame(sess: Session | None, *_):
        return gr.skip() if sess is None else sess.onsets_json

    c.curve.change(lane_frame, S, c.onset_lane, queue=False, show_progress="hidden")

    @user_errors(shown=lane_frame)
    def on_lane(sess: Session, value: str):
        # taps to snap come back snapped; anything else is already shown as it is kept
        return need(sess).onsets_json if need(sess).set_onsets(value) else gr.skip()

    c.onset_lane.change(on_lane, [S, c.onset_lane], c.onset_lane, queue=False,
                        show_progress="hidden")

    @user_errors
    def on_find_contacts(sess: Session):
        sess = need(sess)
        found = sess.find_contacts()
        gr.Info(f"{len(found)} contact(s) found in the selection." if found else
                "No contacts found in the selection: place the hits by hand or tap along.")
        return {c.curve: sess.curve_json, c.onset_lane: sess.onsets_json}

    c.find_contacts.click(on_find_contacts, S, [c.curve, c.onset_lane])

    @user_errors
    def on_sketch(sess: Session, path: str | None):
        sess = need(sess)
        if not path:
            return gr.skip()
        points, hits = sess.apply_sketch(path)
        common.notify("info", f"The sketch gave the curve ({points} points) and {hits} hit(s): "
                      "generate, or adjust them first.")
        return {c.curve: sess.curve_json, c.onset_lane: sess.onsets_json}

    for event in (c.sketch.stop_recording, c.sketch.upload):
        event(on_sketch, [S, c.sketch], [c.curve, c.onset_lane])
