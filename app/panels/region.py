"""2 · Region: what makes the sound (a painted mask, or an object proposed from motion or a
detection), and the overlay that shows it at the scrub time."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import gradio as gr
import numpy as np

from app.panels.common import need, user_errors
from app.session import Session


def build(c: SimpleNamespace) -> None:
    gr.Markdown("What makes the sound: paint it, or propose it from motion or a detection.",
                elem_classes=["notice"])
    c.mask_editor = gr.ImageEditor(
        label="Paint over the sounding object on this frame", type="numpy",
        elem_id="mask-editor", sources=(), transforms=(), layers=False,
        brush=gr.Brush(colors=["#ff3c28"], default_size=18, color_mode="fixed"),
        eraser=gr.Eraser(default_size=18), height=320, canvas_size=(640, 360))
    with gr.Row():
        c.mask_apply = gr.Button("Use painted mask", variant="primary",
                                 elem_id="mask-apply-btn", size="sm")
        c.mask_follow = gr.Button("Follow painted object", elem_id="mask-follow-btn", size="sm")
        c.propose_motion = gr.Button("Propose from motion", elem_id="seed-motion-btn", size="sm")
        c.propose_detect = gr.Button("Propose from detection", elem_id="seed-detect-btn", size="sm")
        c.mask_undo = gr.Button("Undo", elem_id="mask-undo-btn", size="sm")
        c.mask_clear = gr.Button("Clear", elem_id="mask-clear-btn", size="sm")
    with gr.Row():
        c.vocab = gr.Textbox(label="Objects to detect (comma separated; the "
                             "caption's nouns are added)", elem_id="detect-vocab", scale=2)
        c.track_pick = gr.Dropdown([], label="Proposed object", elem_id="track-select", scale=1)
    c.overlay = gr.Image(label="Region overlay at the scrub time (red = listened to)",
                         interactive=False, elem_id="mask-overlay", height=240)
    c.region_md = gr.Markdown("Region: the whole frame.", elem_id="region-info")


def frame_outputs(c: SimpleNamespace) -> list:
    return [c.overlay, c.region_md, c.mask_editor]


def frame_updates(c: SimpleNamespace, sess: Session, time_s: float, *, editor: bool = True) -> dict:
    """The overlay and region line at `time_s`; with `editor`, the frame to paint on too."""
    out = {c.overlay: sess.overlay(time_s), c.region_md: "Region: " + sess.region.describe()}
    if editor:
        frame = sess.frame(time_s)
        layers = []
        if sess.region.kind == "image" and sess.region.mask is not None:
            layers = [_mask_layer(sess.region.mask, frame.shape[:2])]
        out[c.mask_editor] = {"background": frame, "layers": layers, "composite": None}
    return out


def _mask_layer(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A drawn mask as an RGBA brush layer at the editor's frame size."""
    h, w = shape
    m = cv2.resize(np.asarray(mask, np.float32), (w, h), interpolation=cv2.INTER_NEAREST) > 0.5
    layer = np.zeros((h, w, 4), np.uint8)
    layer[m] = (255, 60, 40, 255)
    return layer


def wire(c: SimpleNamespace) -> None:
    S = c.state

    @user_errors
    def on_mask_apply(sess: Session, editor: dict | None, t: float):
        sess = need(sess)
        sess.require_video()
        sess.set_drawn_mask((editor or {}).get("layers"))
        return {**frame_updates(c, sess, float(t or 0.0), editor=False),
                c.track_pick: gr.Dropdown(value=None)}

    c.mask_apply.click(on_mask_apply, [S, c.mask_editor, c.frame],
                       [c.overlay, c.region_md, c.track_pick])

    @user_errors
    def on_mask_follow(sess: Session, editor: dict | None, t: float, progress=gr.Progress()):
        sess = need(sess)
        sess.require_video()
        progress(0.1, desc="following the painted object")
        sess.follow_drawn_mask((editor or {}).get("layers"), float(t or 0.0))
        return {**frame_updates(c, sess, float(t or 0.0), editor=False),
                c.track_pick: gr.Dropdown(value=None), c.curve: sess.curve_json,
                c.onset_lane: sess.onsets_json}

    c.mask_follow.click(on_mask_follow, [S, c.mask_editor, c.frame],
                        [c.overlay, c.region_md, c.track_pick, c.curve, c.onset_lane],
                        concurrency_id="analysis", concurrency_limit=1)

    proposal_outs = [c.overlay, c.region_md, c.track_pick, c.curve, c.suggest]
    for method, btn in (("motion", c.propose_motion), ("detection", c.propose_detect)):
        btn.click(_proposer(c, method), [S, c.vocab, c.caption, c.frame], proposal_outs,
                  concurrency_id="analysis", concurrency_limit=1)

    @user_errors
    def on_track(sess: Session, track_id: str | None, t: float):
        sess = need(sess)
        if not track_id:
            return gr.skip()
        sess.select_track(track_id)
        return {**frame_updates(c, sess, float(t or 0.0), editor=False), c.curve: sess.curve_json}

    c.track_pick.input(on_track, [S, c.track_pick, c.frame], [c.overlay, c.region_md, c.curve])

    def region_op(op: str):
        @user_errors
        def handler(sess: Session, t: float):
            sess = need(sess)
            sess.require_video()
            getattr(sess, op)()
            return {**frame_updates(c, sess, float(t or 0.0)), c.curve: sess.curve_json}

        return handler

    c.mask_clear.click(region_op("clear_region"), [S, c.frame], [*frame_outputs(c), c.curve])
    c.mask_undo.click(region_op("undo_region"), [S, c.frame], [*frame_outputs(c), c.curve])


def _proposer(c: SimpleNamespace, method: str):
    """The handler of a proposal button: 'motion' or 'detection'."""

    @user_errors
    def on_propose(sess: Session, vocab: str, caption: str, t: float, progress=gr.Progress()):
        sess = need(sess)
        progress(0.1, desc="looking for moving objects" if method == "motion"
                 else "detecting objects")
        tracks = sess.propose_region(method, vocabulary=vocab, caption=caption)
        labels = sorted({t_.label for t_ in tracks if t_.source != "motion"})
        return {**frame_updates(c, sess, float(t or 0.0), editor=False),
                c.track_pick: gr.Dropdown(
                    choices=[(f"{t_.id}: {t_.label} ({t_.start_s:.1f}–{t_.end_s:.1f} s)",
                              t_.id) for t_ in tracks], value=tracks[0].id),
                c.curve: sess.curve_json,
                c.suggest: gr.Radio(choices=labels, value=None, visible=bool(labels))}

    return on_propose
