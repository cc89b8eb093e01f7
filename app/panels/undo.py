"""Undo and redo of every edit (stems and their mix and names, the curve, the hits, the region):
the two buttons, and ctrl-z / ctrl-shift-z / ctrl-y in the page (static/shortcuts.js)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app.panels import region, stems_mix
from app.panels.common import need, user_errors
from app.session import Session


def build(c: SimpleNamespace) -> None:
    with gr.Row(elem_id="undo-bar"):
        c.undo = gr.Button("↶ Undo", elem_id="undo-btn", size="sm", min_width=70)
        c.redo = gr.Button("↷ Redo", elem_id="redo-btn", size="sm", min_width=70)


def outputs(c: SimpleNamespace) -> list:
    """Everything an undo or redo may change."""
    return [*stems_mix.project_outputs(c), *stems_mix.mix_outputs(c), c.curve, c.onset_lane,
            *region.frame_outputs(c), c.project_name]


def restored_updates(c: SimpleNamespace, sess: Session, stem_id: str | None, target: str,
                     loop: bool) -> dict:
    """The page after the session went back (or forward) to another state."""
    out = {**stems_mix.project_updates(c, sess, selected=stem_id),
           **stems_mix.mix_updates(c, sess, target, loop),
           c.curve: sess.curve_json, c.onset_lane: sess.onsets_json,
           c.project_name: sess.project.name}
    if sess.video is not None:
        out.update(region.frame_updates(c, sess, sess.frame_time_s))
    return out


def wire(c: SimpleNamespace) -> None:
    S = c.state
    inputs = [S, c.stem_pick, c.target, c.loop_sel]

    @user_errors
    def on_undo(sess: Session, stem_id, target, loop):
        sess = need(sess)
        sess.undo()
        return restored_updates(c, sess, stem_id, target, loop)

    @user_errors
    def on_redo(sess: Session, stem_id, target, loop):
        sess = need(sess)
        sess.redo()
        return restored_updates(c, sess, stem_id, target, loop)

    for btn in (c.undo, c.stem_undo):
        btn.click(on_undo, inputs, outputs(c))
    c.redo.click(on_redo, inputs, outputs(c))
