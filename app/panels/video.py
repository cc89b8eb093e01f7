"""1 · Video: the clip (upload or demo), its info line, the scrub slider and the selection."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from app import views
from app.panels import common, region, stems_mix
from app.panels.common import MAX_RESTORE_DIRS, need, selection_text, timeline, user_errors
from app.session import Session, demo_clips
from foley_core import constants


def build(c: SimpleNamespace) -> None:
    c.video = gr.Video(label=f"Video (upload, {views.UPLOAD_LIMIT_TEXT}, or pick a "
                             "demo clip)",
                       sources=["upload"], elem_id="video-input", height=250)
    c.video_md = gr.Markdown("No video loaded.", elem_id="video-info")
    with gr.Row(elem_id="video-controls"):
        c.demo_pick = gr.Dropdown(list(demo_clips()), label="Demo clip", value=None,
                                  elem_id="demo-picker", scale=3, min_width=160)
        c.demo_btn = gr.Button("Load demo", elem_id="demo-load-btn", scale=1, size="sm",
                               min_width=80)
        c.sel_start = gr.Number(0.0, label="Selection start (s)", precision=2,
                                elem_id="sel-start", minimum=0, scale=1, min_width=90)
        c.sel_end = gr.Number(0.0, label="Selection end (s)", precision=2,
                              elem_id="sel-end", minimum=0, scale=1, min_width=90)
        c.sel_all = gr.Button("Whole clip", elem_id="sel-all-btn", size="sm", scale=1,
                              min_width=80)
    c.frame = gr.Slider(0, 1, value=0, step=0.04, label="Scrub (s): the frame at this "
                        "time is shown with the region, and can be painted",
                        elem_id="frame-slider")
    c.sel_md = gr.Markdown("", elem_id="selection-info")


def outputs(c: SimpleNamespace) -> list:
    """Every component a newly loaded video changes."""
    return [c.video_md, c.frame, c.sel_start, c.sel_end, c.sel_md, *region.frame_outputs(c),
            c.curve, c.track_pick, c.suggest, c.project_name, *stems_mix.project_outputs(c)]


def video_updates(c: SimpleNamespace, sess: Session) -> dict:
    """Everything that depends on the loaded video."""
    info = sess.video
    if info is None:
        return {c.video_md: "No video loaded."}
    start, end = sess.selection
    audio = "with a soundtrack" if info.has_audio else "silent"
    return {
        c.video_md: (f"**{Path(info.path).name}**: {info.duration_s:.2f} s, {info.width}×"
                     f"{info.height}, {info.fps:.3g} fps, {audio}."),
        c.frame: gr.Slider(minimum=0, maximum=round(info.duration_s, 3), value=0,
                           step=scrub_step_s(info.duration_s)),
        c.sel_start: start, c.sel_end: end,
        c.sel_md: selection_text(sess),
        **region.frame_updates(c, sess, 0.0),
        c.curve: sess.curve_json,
        c.track_pick: gr.Dropdown(choices=[], value=None),
        c.suggest: gr.Radio(choices=[], value=None, visible=False),
        c.project_name: sess.project.name,      # a new video may start a new project
        **stems_mix.project_updates(c, sess),
    }


def scrub_step_s(duration_s: float) -> float:
    """The scrub slider's step: fine enough to reach every frame, and whole milliseconds, so
    the times it shows have at most three decimals."""
    return max(0.001, round(min(0.04, duration_s / 50), 3))


def opened_updates(c: SimpleNamespace, sess: Session, target: str, loop: bool) -> dict:
    """The whole page after a project was opened or restored (with its video, if it has one)."""
    out = video_updates(c, sess) if sess.video is not None else stems_mix.project_updates(c, sess)
    out.update(stems_mix.mix_updates(c, sess, target, loop))
    out[c.project_name] = sess.project.name
    if sess.video is not None:
        out[c.video] = str(sess.video.path)
    return out


def wire(c: SimpleNamespace) -> None:
    _wire_loading(c)
    _wire_selection(c)


def _wire_loading(c: SimpleNamespace) -> None:
    S = c.state
    loaded_outs = [*outputs(c), c.video, c.browser]

    # video: a file that does not load leaves everything as it was, the player included
    # (it would otherwise show the refused file beside the old video's info line).
    def previous_video(sess: Session | None, *_):
        return {c.video: str(sess.video.path) if sess is not None and sess.video else None}

    def video_loaded(sess: Session, browser: dict | None) -> dict:
        out = video_updates(c, sess)
        aside = sess.set_aside
        if aside is not None:
            # common.notify, looked up now: tests replace it to see the messages
            common.notify("info", f"The {aside['stems']} stem(s) were made for {aside['video']}, "
                          f"so {Path(sess.video.path).name} starts a new project. The previous "
                          "one is kept: reopen this page to restore it.", title="New project")
            tokens = [t for t in (browser or {}).get("autosaves", []) if isinstance(t, str)]
            out[c.browser] = {"autosaves": [sess.autosave_token, aside["token"],
                                            *[t for t in tokens if t != aside["token"]]]
                              [:MAX_RESTORE_DIRS]}
        return out

    @user_errors(shown=previous_video)
    def on_video(sess: Session, path: str | None, browser: dict | None = None):
        sess = need(sess)
        if not path:
            return gr.skip()
        sess.load_video(path)
        return video_loaded(sess, browser)

    c.video.upload(on_video, [S, c.video, c.browser], loaded_outs)

    @user_errors(shown=previous_video)
    def on_demo(sess: Session, name: str | None, browser: dict | None = None):
        sess = need(sess)
        clips = demo_clips()
        if not name or name not in clips:
            raise gr.Error("Pick a demo clip from the list first.")
        sess.load_video(clips[name])
        return {**video_loaded(sess, browser), c.video: str(clips[name])}

    c.demo_btn.click(on_demo, [S, c.demo_pick, c.browser], loaded_outs)
    # 'select', not 'input': a dropdown fires 'input' twice per pick (on the option and on
    # blur), which loaded the clip twice.
    c.demo_pick.select(on_demo, [S, c.demo_pick, c.browser], loaded_outs, trigger_mode="once")

    # The scrub box: a typed time shows its frame as it is typed (input), and once the box is
    # left (release: the slider's end of a drag, or the box losing focus) it shows the time
    # used, to the millisecond and within the video.
    @user_errors
    def on_scrub_live(sess: Session, t: float):
        sess = need(sess)
        if sess.video is None:
            return gr.skip()
        return region.frame_updates(c, sess, float(t or 0.0))

    c.frame.input(on_scrub_live, [S, c.frame], region.frame_outputs(c), trigger_mode="always_last",
                  show_progress="hidden")

    @user_errors
    def on_scrub(sess: Session, t: float):
        sess = need(sess)
        if sess.video is None:
            return gr.skip()
        out = region.frame_updates(c, sess, float(t or 0.0))
        used = round(min(max(0.0, float(t or 0.0)), sess.video.duration_s), 3)
        if t is None or used != t:
            out[c.frame] = used
        return out

    c.frame.release(on_scrub, [S, c.frame], [*region.frame_outputs(c), c.frame])


def _wire_selection(c: SimpleNamespace) -> None:
    S = c.state

    def selection_in_use(sess: Session | None, *_):
        if sess is None or sess.video is None:
            return None
        return {c.sel_start: sess.selection[0], c.sel_end: sess.selection[1]}

    # A selection that cannot be used is refused as typed (never silently "corrected"): the
    # message says why and the boxes go back to the selection in use.
    @user_errors(shown=selection_in_use)
    def on_selection(sess: Session, start: float, end: float):
        sess = need(sess)
        sess.require_video()
        start, end = float(start or 0.0), float(end or 0.0)
        if end <= start:
            raise gr.Error(f"The selection end ({end:.2f} s) must come after its start "
                           f"({start:.2f} s); the selection stays "
                           f"{sess.selection[0]:.2f}–{sess.selection[1]:.2f} s.")
        sess.set_selection(start, end)
        return {c.sel_md: selection_text(sess), c.curve: sess.curve_json,
                # only touch the boxes when the value used differs (the user may be typing)
                c.sel_start: gr.skip() if sess.selection[0] == start else sess.selection[0],
                c.sel_end: gr.skip() if sess.selection[1] == end else sess.selection[1],
                c.timeline: timeline(c, sess), c.onset_lane: sess.onsets_json}

    # Each box sends its own value only and keeps the other end as the session has it: typing
    # a start and tabbing to the end sends the start's blur and then the end's submit as two
    # requests that may reach the server in either order; with both boxes' values in each, the
    # one carrying the old end could land last and put the old selection back.
    @user_errors(shown=selection_in_use)
    def on_sel_start(sess: Session, start: float):
        sess = need(sess)
        return on_selection(sess, start, sess.selection[1])

    @user_errors(shown=selection_in_use)
    def on_sel_end(sess: Session, end: float):
        sess = need(sess)
        return on_selection(sess, sess.selection[0], end)

    sel_outs = [c.sel_md, c.curve, c.timeline, c.onset_lane, c.sel_start, c.sel_end]
    in_order = {"concurrency_id": "selection", "concurrency_limit": 1}
    for box, handler in ((c.sel_start, on_sel_start), (c.sel_end, on_sel_end)):
        box.submit(handler, [S, box], sel_outs, **in_order)
        box.blur(handler, [S, box], sel_outs, **in_order)

    @user_errors
    def on_sel_all(sess: Session):
        sess = need(sess)
        info = sess.require_video()
        sess.set_selection(0.0, min(info.duration_s, constants.MAX_GENERATION_SECONDS))
        return {**on_selection(sess, *sess.selection), c.sel_start: sess.selection[0],
                c.sel_end: sess.selection[1]}

    c.sel_all.click(on_sel_all, S, sel_outs, **in_order)
