"""3 · Loudness over time: the curve editor and its presets."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app import curve_widget
from app.panels.common import need, user_errors
from app.session import Session

PRESETS = (("flat", "Flat"), ("fade in", "Fade in"), ("fade out", "Fade out"),
           ("hits", "Hits at contacts"), ("motion", "Follow motion"), ("none", "No curve"))


def build(c: SimpleNamespace) -> None:
    gr.Markdown("### 3 · Loudness over time: draw it (drag across), or pick a preset")
    c.curve = curve_widget.LoudnessCurve()
    with gr.Row():
        c.preset_btns = {}
        for name, label in PRESETS:
            c.preset_btns[name] = gr.Button(label, size="sm",
                                            elem_id=f"preset-{name.replace(' ', '-')}")


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
