"""The studio page: layout and event wiring (Gradio 6). Each browser session gets its own
`Session`; every handler turns a FoleyError into a message (gr.Error), never a traceback."""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import gradio as gr
import numpy as np

from app import curve_widget, views
from app.session import (ALL_CATEGORIES, CURVE_SCALE_RANGE, DEFAULTS, Session,
                         default_reference_strength, demo_clips, describe_autosave,
                         model_curve_scale, search_query, sound_library)
from foley_core import constants
from foley_core import project as _project  # noqa: F401  (imported now: Session() must be quick)
from foley_core.errors import FoleyError, GenerationCancelled

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
                "Noto Sans", "Liberation Sans", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]
BROWSER_KEY = "foley-studio"
MAX_RESTORE_DIRS = 5


def theme() -> gr.themes.Base:
    """The default theme with system fonts only (no font downloads: the page works offline)."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS, primary_hue="orange")


NOTICE_S = 8      # how long a message stays: long enough to read, gone before the next one


def notify(level: str, message: str, *, title: str | None = None) -> None:
    """A toast (not an error state on the outputs). Tests replace it to see the messages."""
    kind = gr.Info if level == "info" else gr.Warning
    kind(message, duration=NOTICE_S, **({"title": title} if title else {}))


def user_errors(fn: Callable | None = None, *, shown: Callable | None = None) -> Callable:
    """Show FoleyErrors (and gr.Errors raised here) as messages and leave every output as it was
    (gr.skip()): raising gr.Error would mark every output as errored and wipe what they showed.
    A cancelled generation is not an error: it says so and keeps the last takes. `shown(*args)`
    may return updates that put the values actually in use back into the boxes a refused input
    came from. Anything else is a bug: logged with its traceback, shown as a short message."""
    if fn is None:
        return functools.partial(user_errors, shown=shown)

    def refused(message: str, args, kwargs, *, level: str = "warning", title=None):
        notify(level, message, title=title)
        if shown is not None:
            try:
                updates = shown(*args, **kwargs)
            except (FoleyError, gr.Error):
                updates = None
            if updates:
                return updates
        return gr.skip()

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except GenerationCancelled:
            return refused("Generation cancelled: the previous takes are kept.", args, kwargs,
                           level="info", title="Cancelled")
        except gr.Error as err:
            return refused(str(err.message), args, kwargs)
        except FoleyError as err:
            return refused(str(err), args, kwargs)
        except Exception as err:  # noqa: BLE001 - a bug: keep the traceback in the log only
            log.exception("unexpected error in %s", fn.__name__)
            return refused(f"Something went wrong ({type(err).__name__}: {err}). The details are "
                           "in the server log; please report it.", args, kwargs)
        finally:
            log.debug("%s took %.2f s", fn.__name__, time.perf_counter() - t0)

    return wrapper


def _need(sess: Session | None) -> Session:
    if sess is None:
        raise gr.Error("This page lost its session (the server restarted?): reload the page.")
    log.debug("session %s", sess.id)
    return sess


def _choices_for_stems(sess: Session) -> list[tuple[str, str]]:
    return [(views.stem_label(i, s), s.id) for i, s in enumerate(sess.project.stems)]


class Studio:
    """Builds the Blocks and keeps its components in `self.c`."""

    def __init__(self, *, work_root: str | Path | None = None):
        self.work_root = work_root
        self.c = SimpleNamespace()

    # ------------------------------------------------------------------ layout
    def build(self) -> gr.Blocks:
        c = self.c
        demos = demo_clips()
        from foley_core import backends, mixing

        library = sound_library()

        with gr.Blocks(title="Foley studio") as demo:
            c.state = gr.State(self._new_session, delete_callback=_close_session)
            c.browser = gr.BrowserState({"autosaves": []}, storage_key=BROWSER_KEY,
                                        secret=_browser_secret())
            gr.Markdown("# Foley studio\nLoad a silent video, mark what makes the sound, draw how "
                        "loud it is over time, describe it, and generate a synchronised sound. "
                        "Keep the takes you like as stems, mix them, and export.",
                        elem_id="studio-title")
            with gr.Group(visible=False, elem_id="restore-banner") as c.restore_group:
                c.restore_md = gr.Markdown()
                with gr.Row():
                    c.restore_btn = gr.Button("Restore it", variant="primary", elem_id="restore-btn")
                    c.restore_dismiss = gr.Button("Start fresh", elem_id="restore-dismiss")
            c.restore_token = gr.State(None)
            c.ref_auto = gr.State("")               # the query the search box took from the caption

            # ---------------------------------------------------------- 1. video + region
            with gr.Row(equal_height=False):
                with gr.Column(scale=1):
                    gr.Markdown("### 1 · Video")
                    c.video = gr.Video(label=f"Video (upload, {views.UPLOAD_LIMIT_TEXT}, or pick a "
                                             "demo clip below)",
                                       sources=["upload"], elem_id="video-input", height=300)
                    with gr.Row():
                        c.demo_pick = gr.Dropdown(list(demos), label="Demo clip", value=None,
                                                  elem_id="demo-picker", scale=3)
                        c.demo_btn = gr.Button("Load demo", elem_id="demo-load-btn", scale=1)
                    c.video_md = gr.Markdown("No video loaded.", elem_id="video-info")
                    c.frame = gr.Slider(0, 1, value=0, step=0.04, label="Scrub (s): the frame at this "
                                        "time is shown with the region, and can be painted",
                                        elem_id="frame-slider")
                    with gr.Row():
                        c.sel_start = gr.Number(0.0, label="Selection start (s)", precision=2,
                                                elem_id="sel-start", minimum=0)
                        c.sel_end = gr.Number(0.0, label="Selection end (s)", precision=2,
                                              elem_id="sel-end", minimum=0)
                        c.sel_all = gr.Button("Whole clip", elem_id="sel-all-btn", size="sm")
                    c.sel_md = gr.Markdown("", elem_id="selection-info")
                with gr.Column(scale=1):
                    gr.Markdown("### 2 · Region: what makes the sound")
                    c.mask_editor = gr.ImageEditor(
                        label="Paint over the sounding object on this frame", type="numpy",
                        elem_id="mask-editor", sources=(), transforms=(), layers=False,
                        brush=gr.Brush(colors=["#ff3c28"], default_size=18, color_mode="fixed"),
                        eraser=gr.Eraser(default_size=18), height=320, canvas_size=(640, 360))
                    with gr.Row():
                        c.mask_apply = gr.Button("Use painted mask", variant="primary",
                                                 elem_id="mask-apply-btn", size="sm")
                        c.seed_motion = gr.Button("Seed from motion", elem_id="seed-motion-btn",
                                                  size="sm")
                        c.seed_detect = gr.Button("Seed from detection", elem_id="seed-detect-btn",
                                                  size="sm")
                        c.mask_undo = gr.Button("Undo", elem_id="mask-undo-btn", size="sm")
                        c.mask_clear = gr.Button("Clear", elem_id="mask-clear-btn", size="sm")
                    with gr.Row():
                        c.vocab = gr.Textbox(label="Objects to detect (comma separated; the "
                                             "caption's nouns are added)", elem_id="detect-vocab",
                                             scale=2)
                        c.track_pick = gr.Dropdown([], label="Seeded object", elem_id="track-select",
                                                   scale=1)
                    c.overlay = gr.Image(label="Region overlay at the scrub time (red = listened to)",
                                         interactive=False, elem_id="mask-overlay", height=240)
                    c.region_md = gr.Markdown("Region: the whole frame.", elem_id="region-info")

            # ---------------------------------------------------------- 2. curve
            gr.Markdown("### 3 · Loudness over time: draw it (drag across), or pick a preset")
            c.curve = curve_widget.LoudnessCurve()
            with gr.Row():
                c.preset_btns = {}
                for name, label in (("flat", "Flat"), ("fade in", "Fade in"),
                                    ("fade out", "Fade out"), ("hits", "Hits at contacts"),
                                    ("motion", "Follow motion"), ("none", "No curve")):
                    c.preset_btns[name] = gr.Button(label, size="sm",
                                                    elem_id=f"preset-{name.replace(' ', '-')}")

            # ---------------------------------------------------------- 3. caption + settings
            gr.Markdown("### 4 · Describe the sound, and (optionally) start from a real one")
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    c.caption = gr.Textbox(label="Caption", placeholder="e.g. a rubber ball "
                                           "bounces on a wooden floor", elem_id="caption")
                    c.suggest = gr.Radio([], label="Suggestions from detections (click to add)",
                                         elem_id="caption-suggestions", visible=False)
                    c.negative = gr.Textbox(label="Negative caption (what to avoid)",
                                            placeholder="e.g. speech, music",
                                            elem_id="negative-caption")
                    with gr.Row():
                        c.seed = gr.Number(DEFAULTS["seed"], label="Seed", precision=0,
                                           elem_id="seed", minimum=0)
                        c.dice = gr.Button("Random seed", elem_id="dice-btn", size="sm")
                        c.n_cand = gr.Slider(1, 4, value=DEFAULTS["candidates"], step=1,
                                             label="Candidates", elem_id="candidates")
                    with gr.Accordion("More settings", open=False):
                        c.steps = gr.Slider(5, 100, value=DEFAULTS["steps"], step=1, label="Steps",
                                            elem_id="steps")
                        c.text_scale = gr.Slider(0, 10, value=DEFAULTS["text_scale"], step=0.1,
                                                 label="Text guidance", elem_id="text-scale")
                        c.video_scale = gr.Slider(0, 10, value=DEFAULTS["video_scale"], step=0.1,
                                                  label="Video guidance", elem_id="video-scale")
                        # curve guidance: the model's own value unless the box is unticked
                        curve_default = model_curve_scale(DEFAULTS["model"])
                        c.curve_scale = gr.Slider(*CURVE_SCALE_RANGE, step=0.5,
                                                  value=_shown_curve_scale(curve_default),
                                                  label="Curve guidance", info=views.CURVE_SCALE_INFO,
                                                  interactive=False, elem_id="curve-scale")
                        c.curve_auto = gr.Checkbox(
                            True, label=views.curve_scale_default_label(curve_default),
                            interactive=curve_default is not None, elem_id="curve-scale-default")
                        c.conform = gr.Slider(0, 1, value=DEFAULTS["conform"], step=0.05,
                                              label="Conform to the curve (0 = off, 1 = full)",
                                              elem_id="conform")
                        c.video_onsets = gr.Checkbox(
                            True, label="Start sounds at the region's contacts in the video",
                            info=views.VIDEO_ONSETS_INFO, elem_id="video-onsets")
                    c.source = gr.Radio(views.SOURCE_CHOICES, value=DEFAULTS["source"], label="Source",
                                        elem_id="source")
                    c.model = gr.Dropdown(backends.available_backends(), value=DEFAULTS["model"],
                                          label="Model", elem_id="model")
                    c.model_md = gr.Markdown(views.model_notice(DEFAULTS["model"]),
                                             elem_id="model-notice", elem_classes=["notice"])
                with gr.Column(scale=4, elem_id="reference-picker"):
                    gr.Markdown("**Reference sound** (optional): start every take from this sound "
                                "(library or your own file) instead of the clips the caption picks; "
                                "the model reshapes it to your video and curve.")
                    with gr.Row():
                        c.ref_query = gr.Textbox(label="Search the library (defaults to the caption)",
                                                 elem_id="reference-search", scale=3)
                        c.ref_category = gr.Dropdown([ALL_CATEGORIES, *library.categories()],
                                                     value=ALL_CATEGORIES, label="Category",
                                                     elem_id="reference-category", scale=2)
                    with gr.Row():
                        c.ref_search_btn = gr.Button("Search", elem_id="reference-search-btn",
                                                     size="sm")
                        c.ref_none = gr.Button("No reference", elem_id="reference-none-btn",
                                               size="sm")
                    c.ref_results = gr.Radio([], label="Results: caption · category · length · "
                                             "licence (click one to use it)",
                                             elem_id="reference-results")
                    with gr.Row(equal_height=False):
                        c.ref_upload = gr.File(label=f"…or upload your own sound (any audio file, "
                                               f"{views.UPLOAD_LIMIT_TEXT})",
                                               file_types=["audio", "video"], type="filepath",
                                               elem_id="reference-upload", height=120, scale=1)
                        c.ref_audio = gr.Audio(label="Reference preview", interactive=False,
                                               type="filepath", elem_id="reference-preview",
                                               scale=1)
                    c.ref_strength = gr.Slider(0, 1, value=default_reference_strength(), step=0.05,
                                               label="Reference strength",
                                               info="0 = the reference as it is, 1 = ignore it "
                                               "(plain generation); in between keeps its character",
                                               elem_id="reference-strength")
                    c.ref_md = gr.Markdown(views.reference_markdown(None, default_reference_strength()),
                                           elem_id="reference-info")
            with gr.Row():
                c.generate = gr.Button("Generate", variant="primary", elem_id="generate-btn", scale=3)
                c.cancel = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", scale=1)

            # ---------------------------------------------------------- 4. result
            gr.Markdown("### 5 · Listen, keep a take")
            with gr.Row():
                with gr.Column(scale=1):
                    c.cand_pick = gr.Radio([], label="Candidate", elem_id="candidate-select")
                    c.cand_audio = gr.Audio(label="Candidate (16 kHz)", interactive=False,
                                            elem_id="candidate-audio", type="filepath")
                    c.cand_ref_audio = gr.Audio(label="The fitted reference this take started from",
                                                interactive=False, type="filepath",
                                                elem_id="candidate-reference-audio", visible=False)
                    c.result_md = gr.Markdown("", elem_id="result-info")
                    with gr.Row():
                        c.keep = gr.Button("Keep as stem", variant="primary", elem_id="add-stem-btn")
                        c.replace = gr.Button("Replace selected stem", elem_id="replace-stem-btn")
                with gr.Column(scale=2):
                    c.spectro = gr.Image(label="Spectrogram: achieved loudness (white) vs your "
                                         "curve (orange)", interactive=False,
                                         elem_id="candidate-spectrogram")

            # ---------------------------------------------------------- 5. stems + mix
            gr.Markdown("### 6 · Stems and mix")
            c.timeline = gr.HTML(views.timeline_html(_EmptyProject(), video_duration_s=None,
                                                     selection=None), elem_id="timeline")
            c.stems = gr.Dataframe(headers=views.STEM_COLUMNS, value=[], interactive=False,
                                   elem_id="stems-table", wrap=True)
            with gr.Row():
                c.stem_pick = gr.Dropdown([], label="Selected stem", elem_id="stem-select", scale=3)
                c.stem_undo = gr.Button("Undo last stem edit", elem_id="stem-undo-btn", scale=1)
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
                with gr.Column():
                    c.mix_audio = gr.Audio(label="Mix (48 kHz)", interactive=False,
                                           elem_id="mix-audio", type="filepath", loop=False)
                    c.loop_sel = gr.Checkbox(label="Loop the selection only", elem_id="loop-selection")
                    c.meter_md = gr.Markdown(views.meter_markdown({"empty": True}, ""),
                                             elem_id="loudness-meter")
                    c.target = gr.Dropdown(list(mixing.LOUDNESS_PRESETS),
                                           value=list(mixing.LOUDNESS_PRESETS)[0],
                                           label="Export loudness target", elem_id="export-target")
                with gr.Column():
                    c.mix_video = gr.Video(label="Video with the mix", interactive=False,
                                           elem_id="mix-video", loop=True, height=260)
                    c.mix_video_btn = gr.Button("Render video preview", elem_id="mix-video-btn")

            # ---------------------------------------------------------- 6. export + project
            gr.Markdown("### 7 · Export and project")
            with gr.Row():
                c.export_wav = gr.Button("Export mix WAV (48 kHz / 24-bit)", elem_id="export-wav-btn")
                c.export_stems = gr.Button("Export stems zip", elem_id="export-stems-btn")
                c.export_mp4 = gr.Button("Export MP4", elem_id="export-mp4-btn")
                c.orig_audio = gr.Radio([("drop the original sound", "drop"),
                                         ("keep it as a 2nd track", "track"),
                                         ("mix it underneath", "mix")], value="drop",
                                        label="Original soundtrack in the MP4",
                                        elem_id="export-original-audio")
            c.export_file = gr.File(label="Exported file", interactive=False, elem_id="export-file")
            c.export_md = gr.Markdown("", elem_id="export-info")
            with gr.Row():
                c.project_save = gr.Button("Save project (.zip)", elem_id="project-save-btn")
                c.project_load = gr.File(label=f"Open a project (.zip saved here, "
                                             f"{views.UPLOAD_LIMIT_TEXT})",
                                         file_types=[".zip"], elem_id="project-load", type="filepath")
            gr.Markdown("The project autosaves after every change; reopening this page offers to "
                        "restore it.", elem_classes=["notice"])
            self._wire(demo)
        return demo

    def _new_session(self) -> Session:
        return Session(work_root=self.work_root)

    # ------------------------------------------------------------------ updates
    def _video_updates(self, sess: Session) -> dict:
        """Everything that depends on the loaded video."""
        c = self.c
        info = sess.video
        if info is None:
            return {c.video_md: "No video loaded."}
        start, end = sess.selection
        audio = "with a soundtrack" if info.has_audio else "silent"
        return {
            c.video_md: (f"**{Path(info.path).name}**: {info.duration_s:.2f} s, {info.width}×"
                         f"{info.height}, {info.fps:.3g} fps, {audio}."),
            c.frame: gr.Slider(minimum=0, maximum=round(info.duration_s, 2), value=0,
                               step=min(0.04, info.duration_s / 50)),
            c.sel_start: start, c.sel_end: end,
            c.sel_md: self._selection_text(sess),
            **self._frame_updates(sess, 0.0),
            c.curve: sess.curve_json,
            c.track_pick: gr.Dropdown(choices=[], value=None),
            c.suggest: gr.Radio(choices=[], value=None, visible=False),
            **self._project_updates(sess),
        }

    def _selection_text(self, sess: Session) -> str:
        start, end = sess.selection
        limit = constants.MAX_GENERATION_SECONDS
        return (f"Selection {start:.2f}–{end:.2f} s ({end - start:.2f} s): the new sound is made "
                f"for this range (at most {limit:.0f} s at a time).")

    def _frame_updates(self, sess: Session, time_s: float, *, editor: bool = True) -> dict:
        c = self.c
        out = {c.overlay: sess.overlay(time_s), c.region_md: "Region: " + sess.region.describe()}
        if editor:
            frame = sess.frame(time_s)
            layers = []
            if sess.region.kind == "image" and sess.region.mask is not None:
                layers = [_mask_layer(sess.region.mask, frame.shape[:2])]
            out[c.mask_editor] = {"background": frame, "layers": layers, "composite": None}
        return out

    def _project_updates(self, sess: Session, *, selected: str | None = None) -> dict:
        c = self.c
        choices = _choices_for_stems(sess)
        ids = [i for _, i in choices]
        if selected not in ids:
            selected = ids[-1] if ids else None
        info = sess.video
        out = {
            c.stems: views.stems_rows(sess.project),
            c.stem_pick: gr.Dropdown(choices=choices, value=selected),
            c.timeline: views.timeline_html(sess.project, video_duration_s=info.duration_s if info
                                            else None, selection=sess.selection,
                                            selected_id=selected),
            **self._stem_editor_updates(sess, selected),
        }
        return out

    def _stem_editor_updates(self, sess: Session, stem_id: str | None) -> dict:
        c = self.c
        if stem_id is None:
            # {} and not gr.skip(): callers merge this into a {component: value} dict, and
            # gradio refuses a dict whose keys are not all components (gr.skip() is
            # {"__type__": "update"}): the whole event failed, every output marked as errored.
            # Outputs left out of the dict are skipped anyway.
            return {}
        m = sess.stem(stem_id).mix
        return {c.gain: m.gain_db, c.pan: m.pan, c.offset: m.offset_s,
                c.trim_start: m.trim_start_s, c.trim_end: m.trim_end_s, c.fade_in: m.fade_in_s,
                c.fade_out: m.fade_out_s, c.mute: m.mute, c.solo: m.solo}

    def _mix_updates(self, sess: Session, target_label: str, loop_selection: bool) -> dict:
        from foley_core import mixing

        c = self.c
        if not sess.project.stems:
            return {c.mix_audio: None, c.meter_md: views.meter_markdown({"empty": True}, "")}
        meter = sess.meter(mixing.LOUDNESS_PRESETS.get(target_label, -23.0))
        return {c.mix_audio: gr.Audio(value=str(sess.preview_wav(selection_only=loop_selection)),
                                      loop=bool(loop_selection)),
                c.meter_md: views.meter_markdown(meter, target_label)}

    # ------------------------------------------------------------------ wiring
    def _wire(self, demo: gr.Blocks) -> None:
        c = self.c
        S = c.state
        project_outs = [c.stems, c.stem_pick, c.timeline, c.gain, c.pan, c.offset, c.trim_start,
                        c.trim_end, c.fade_in, c.fade_out, c.mute, c.solo]
        mix_outs = [c.mix_audio, c.meter_md]
        frame_outs = [c.overlay, c.region_md, c.mask_editor]
        video_outs = [c.video_md, c.frame, c.sel_start, c.sel_end, c.sel_md, *frame_outs, c.curve,
                      c.track_pick, c.suggest, *project_outs]

        # page load: offer to restore the autosave this browser made last. The browser holds
        # signed tokens only (Session.autosave_token); anything else it sends is ignored.
        @user_errors
        def on_load(sess: Session, browser: dict):
            _need(sess)
            stored = (browser or {}).get("autosaves", []) if isinstance(browser, dict) else []
            tokens = [t for t in stored if isinstance(t, str)][:MAX_RESTORE_DIRS] \
                if isinstance(stored, list) else []
            offer = None
            for token in tokens:
                folder = sess.autosave_folder(token)
                text = describe_autosave(folder) if folder is not None else None
                log.debug("autosave token %s...: %s", token[:8],
                          text or "nothing to restore" if folder else "not signed here: ignored")
                if text:
                    offer = (token, text)
                    break
            mine = sess.autosave_token
            kept = [t for t in tokens if t != mine and sess.autosave_folder(t) is not None]
            browser = {"autosaves": [mine, *kept][:MAX_RESTORE_DIRS]}
            ready = "No video loaded: upload one, or pick a demo clip and press Load demo."
            # Return the session too: gradio does not keep a state first made in a load event,
            # and later events would otherwise get another Session (with another autosave dir).
            if offer is None:
                return {S: sess, c.browser: browser, c.restore_group: gr.Group(visible=False),
                        c.restore_token: None, c.video_md: ready}
            return {S: sess, c.browser: browser, c.restore_group: gr.Group(visible=True),
                    c.restore_md: f"**An autosaved project was found:** {offer[1]}. Restore it?",
                    c.restore_token: offer[0], c.video_md: ready}

        demo.load(on_load, [S, c.browser],
                  [S, c.browser, c.restore_group, c.restore_md, c.restore_token, c.video_md])

        @user_errors
        def on_restore(sess: Session, token: str | None, target: str, loop: bool):
            sess = _need(sess)
            if not token:
                raise gr.Error("Nothing to restore.")
            sess.restore_autosave(token)
            out = self._video_updates(sess) if sess.video is not None else self._project_updates(sess)
            out.update(self._mix_updates(sess, target, loop))
            out[c.restore_group] = gr.Group(visible=False)
            if sess.video is not None:
                out[c.video] = str(sess.video.path)
            gr.Info(f"Restored {len(sess.project.stems)} stem(s).")
            return out

        c.restore_btn.click(on_restore, [S, c.restore_token, c.target, c.loop_sel],
                            [*video_outs, *mix_outs, c.restore_group, c.video])
        c.restore_dismiss.click(lambda: gr.Group(visible=False), None, c.restore_group)

        # video: a file that does not load leaves everything as it was, the player included
        # (it would otherwise show the refused file beside the old video's info line).
        def previous_video(sess: Session | None, *_):
            return {c.video: str(sess.video.path) if sess is not None and sess.video else None}

        def video_loaded(sess: Session, browser: dict | None) -> dict:
            out = self._video_updates(sess)
            aside = sess.set_aside
            if aside is not None:
                notify("info", f"The {aside['stems']} stem(s) were made for {aside['video']}, so "
                       f"{Path(sess.video.path).name} starts a new project. The previous one is "
                       "kept: reopen this page to restore it.", title="New project")
                tokens = [t for t in (browser or {}).get("autosaves", []) if isinstance(t, str)]
                out[c.browser] = {"autosaves": [sess.autosave_token, aside["token"],
                                                *[t for t in tokens if t != aside["token"]]]
                                  [:MAX_RESTORE_DIRS]}
            return out

        @user_errors(shown=previous_video)
        def on_video(sess: Session, path: str | None, browser: dict | None = None):
            sess = _need(sess)
            if not path:
                return gr.skip()
            sess.load_video(path)
            return video_loaded(sess, browser)

        c.video.upload(on_video, [S, c.video, c.browser], [*video_outs, c.video, c.browser])

        @user_errors(shown=previous_video)
        def on_demo(sess: Session, name: str | None, browser: dict | None = None):
            sess = _need(sess)
            clips = demo_clips()
            if not name or name not in clips:
                raise gr.Error("Pick a demo clip from the list first.")
            sess.load_video(clips[name])
            return {**video_loaded(sess, browser), c.video: str(clips[name])}

        c.demo_btn.click(on_demo, [S, c.demo_pick, c.browser], [*video_outs, c.video, c.browser])
        # 'select', not 'input': a dropdown fires 'input' twice per pick (on the option and on
        # blur), which loaded the clip twice.
        c.demo_pick.select(on_demo, [S, c.demo_pick, c.browser], [*video_outs, c.video, c.browser],
                           trigger_mode="once")

        @user_errors
        def on_scrub(sess: Session, t: float):
            sess = _need(sess)
            if sess.video is None:
                return gr.skip()
            return self._frame_updates(sess, float(t or 0.0))

        c.frame.release(on_scrub, [S, c.frame], frame_outs)

        def selection_in_use(sess: Session | None, *_):
            if sess is None or sess.video is None:
                return None
            return {c.sel_start: sess.selection[0], c.sel_end: sess.selection[1]}

        # A selection that cannot be used is refused as typed (never silently "corrected"): the
        # message says why and the boxes go back to the selection in use.
        @user_errors(shown=selection_in_use)
        def on_selection(sess: Session, start: float, end: float):
            sess = _need(sess)
            sess.require_video()
            start, end = float(start or 0.0), float(end or 0.0)
            if end <= start:
                raise gr.Error(f"The selection end ({end:.2f} s) must come after its start "
                               f"({start:.2f} s); the selection stays "
                               f"{sess.selection[0]:.2f}–{sess.selection[1]:.2f} s.")
            sess.set_selection(start, end)
            return {c.sel_md: self._selection_text(sess), c.curve: sess.curve_json,
                    # only touch the boxes when the value used differs (the user may be typing)
                    c.sel_start: gr.skip() if sess.selection[0] == start else sess.selection[0],
                    c.sel_end: gr.skip() if sess.selection[1] == end else sess.selection[1],
                    c.timeline: views.timeline_html(sess.project,
                                                    video_duration_s=sess.video.duration_s,
                                                    selection=sess.selection)}

        sel_outs = [c.sel_md, c.curve, c.timeline, c.sel_start, c.sel_end]
        for box in (c.sel_start, c.sel_end):
            box.submit(on_selection, [S, c.sel_start, c.sel_end], sel_outs)
            box.blur(on_selection, [S, c.sel_start, c.sel_end], sel_outs)

        @user_errors
        def on_sel_all(sess: Session):
            sess = _need(sess)
            info = sess.require_video()
            sess.set_selection(0.0, min(info.duration_s, constants.MAX_GENERATION_SECONDS))
            return {**on_selection(sess, *sess.selection), c.sel_start: sess.selection[0],
                    c.sel_end: sess.selection[1]}

        c.sel_all.click(on_sel_all, S, sel_outs)

        # region
        @user_errors
        def on_mask_apply(sess: Session, editor: dict | None, t: float):
            sess = _need(sess)
            sess.require_video()
            sess.set_drawn_mask((editor or {}).get("layers"))
            return {**self._frame_updates(sess, float(t or 0.0), editor=False),
                    c.track_pick: gr.Dropdown(value=None)}

        c.mask_apply.click(on_mask_apply, [S, c.mask_editor, c.frame],
                           [c.overlay, c.region_md, c.track_pick])

        def seeded(method: str):
            @user_errors
            def on_seed(sess: Session, vocab: str, caption: str, t: float, progress=gr.Progress()):
                sess = _need(sess)
                progress(0.1, desc="looking for moving objects" if method == "motion"
                         else "detecting objects")
                tracks = sess.seed_region(method, vocabulary=vocab, caption=caption)
                labels = sorted({t_.label for t_ in tracks if t_.source != "motion"})
                return {**self._frame_updates(sess, float(t or 0.0), editor=False),
                        c.track_pick: gr.Dropdown(
                            choices=[(f"{t_.id}: {t_.label} ({t_.start_s:.1f}–{t_.end_s:.1f} s)",
                                      t_.id) for t_ in tracks], value=tracks[0].id),
                        c.curve: sess.curve_json,
                        c.suggest: gr.Radio(choices=labels, value=None, visible=bool(labels))}

            return on_seed

        seed_outs = [c.overlay, c.region_md, c.track_pick, c.curve, c.suggest]
        c.seed_motion.click(seeded("motion"), [S, c.vocab, c.caption, c.frame], seed_outs,
                            concurrency_id="analysis", concurrency_limit=1)
        c.seed_detect.click(seeded("detection"), [S, c.vocab, c.caption, c.frame], seed_outs,
                            concurrency_id="analysis", concurrency_limit=1)

        @user_errors
        def on_track(sess: Session, track_id: str | None, t: float):
            sess = _need(sess)
            if not track_id:
                return gr.skip()
            sess.select_track(track_id)
            return {**self._frame_updates(sess, float(t or 0.0), editor=False), c.curve: sess.curve_json}

        c.track_pick.input(on_track, [S, c.track_pick, c.frame], [c.overlay, c.region_md, c.curve])

        def region_op(op: str):
            @user_errors
            def handler(sess: Session, t: float):
                sess = _need(sess)
                sess.require_video()
                getattr(sess, op)()
                return {**self._frame_updates(sess, float(t or 0.0)), c.curve: sess.curve_json}

            return handler

        c.mask_clear.click(region_op("clear_region"), [S, c.frame], [*frame_outs, c.curve])
        c.mask_undo.click(region_op("undo_region"), [S, c.frame], [*frame_outs, c.curve])

        # curve
        @user_errors
        def on_curve(sess: Session, value: str):
            _need(sess).set_curve(value)

        c.curve.change(on_curve, [S, c.curve], None, queue=False, show_progress="hidden")

        def preset(name: str):
            @user_errors
            def handler(sess: Session):
                return _need(sess).curve_preset(name)

            return handler

        for name, btn in c.preset_btns.items():
            btn.click(preset(name), S, c.curve)

        # caption and settings
        c.suggest.input(lambda cap, word: (f"{cap.rstrip()} {word}".strip() if word else cap),
                        [c.caption, c.suggest], c.caption)
        c.dice.click(lambda: random.randint(0, 2**31 - 1), None, c.seed, queue=False)
        c.model.change(lambda m: views.model_notice(m), c.model, c.model_md, queue=False)

        @user_errors
        def on_curve_controls(model: str, use_default: bool):
            # a model change (or the box): the slider is editable only when the box is unticked
            return self._curve_scale_updates(model, use_default)

        curve_controls = [c.curve_auto, c.curve_scale]
        c.model.change(on_curve_controls, [c.model, c.curve_auto], curve_controls, queue=False,
                       show_progress="hidden")
        c.curve_auto.input(on_curve_controls, [c.model, c.curve_auto], curve_controls, queue=False,
                           show_progress="hidden")

        # reference sound
        ref_outs = [c.ref_results, c.ref_audio, c.ref_md]

        def sync_query(caption: str, query: str, last_auto: str):
            # the search box follows the caption until the user types their own query
            if (query or "") == (last_auto or ""):
                return caption, caption
            return gr.skip(), last_auto

        c.caption.change(sync_query, [c.caption, c.ref_query, c.ref_auto], [c.ref_query, c.ref_auto],
                         queue=False, show_progress="hidden")

        @user_errors
        def on_ref_search(sess: Session, query: str, caption: str, category: str):
            sess = _need(sess)
            # an empty search box searches by the caption (the sound being described)
            text = search_query(query, caption)
            hits = sess.search_references(query, category, caption=caption)
            if not hits:
                gr.Info("No library clips match; try other words or another category.")
            chosen = sess.reference.entry.id if sess.reference is not None else None
            choices = views.reference_choices(hits)
            return {c.ref_results: gr.Radio(
                        choices=choices, value=chosen if chosen in [i for _, i in choices] else None,
                        label=f"{len(hits)} result(s) for \"{text or category}\": caption · category "
                              "· length · licence (click one to use it)"),
                    c.ref_query: text,
                    # searched by the caption: the box follows the caption again
                    c.ref_auto: text if not search_query(query) else gr.skip()}

        search_inputs = [S, c.ref_query, c.caption, c.ref_category]
        search_outs = [c.ref_results, c.ref_query, c.ref_auto]
        c.ref_search_btn.click(on_ref_search, search_inputs, search_outs,
                               concurrency_id="search", concurrency_limit=2)
        c.ref_query.submit(on_ref_search, search_inputs, search_outs,
                           concurrency_id="search", concurrency_limit=2)
        c.ref_category.input(on_ref_search, search_inputs, search_outs,
                             concurrency_id="search", concurrency_limit=2)

        @user_errors
        def on_ref_pick(sess: Session, clip_id: str | None, strength: float):
            sess = _need(sess)
            if not clip_id:
                return gr.skip()
            sess.choose_reference(clip_id)
            sess.set_reference_strength(strength)
            return self._reference_updates(sess, results=False)

        c.ref_results.input(on_ref_pick, [S, c.ref_results, c.ref_strength], ref_outs)

        @user_errors
        def on_ref_upload(sess: Session, path: str | None, strength: float):
            sess = _need(sess)
            if not path:
                return gr.skip()
            sess.upload_reference(path)
            sess.set_reference_strength(strength)
            return {**self._reference_updates(sess), c.ref_results: gr.Radio(value=None)}

        c.ref_upload.upload(on_ref_upload, [S, c.ref_upload, c.ref_strength], ref_outs)

        @user_errors
        def on_ref_none(sess: Session, strength: float):
            sess = _need(sess)
            sess.clear_reference()
            return {**self._reference_updates(sess), c.ref_upload: None}

        c.ref_none.click(on_ref_none, [S, c.ref_strength], [*ref_outs, c.ref_upload])

        @user_errors
        def on_ref_strength(sess: Session, strength: float):
            sess = _need(sess)
            sess.set_reference_strength(strength)
            return {c.ref_md: views.reference_markdown(sess.reference, sess.reference_strength)}

        c.ref_strength.release(on_ref_strength, [S, c.ref_strength], c.ref_md, queue=False)

        # generation
        gen_inputs = [S, c.caption, c.negative, c.seed, c.steps, c.text_scale, c.video_scale,
                      c.curve_auto, c.curve_scale, c.conform, c.n_cand, c.model, c.ref_strength,
                      c.video_onsets, c.source]
        gen_outs = [c.cand_pick, c.cand_audio, c.cand_ref_audio, c.spectro, c.result_md]

        @user_errors
        def on_generate(sess, caption, negative, seed, steps, ts, vs, curve_auto, cs, conform, n,
                        model, strength, video_onsets, source="auto", progress=gr.Progress()):
            sess = _need(sess)
            progress(0.0, desc="preparing")
            cands = sess.generate(caption=caption, negative_caption=negative, seed=seed,
                                  steps=steps, text_scale=ts, video_scale=vs,
                                  curve_scale=None if curve_auto else cs, conform=conform,
                                  candidates=n, model=model,
                                  strength=strength if sess.reference is not None else None,
                                  video_onsets=video_onsets, source=source,
                                  progress=lambda frac, desc: progress(frac, desc=desc))
            return self._candidate_updates(sess, 0, len(cands))

        c.generate.click(on_generate, gen_inputs, gen_outs, concurrency_id="generate",
                         concurrency_limit=1)
        c.caption.submit(on_generate, gen_inputs, gen_outs, concurrency_id="generate",
                         concurrency_limit=1)
        c.cancel.click(lambda sess: sess.cancel() if sess else None, S, None, queue=False)

        @user_errors
        def on_candidate(sess: Session, choice: str | None):
            sess = _need(sess)
            if not choice:
                return gr.skip()
            return self._candidate_updates(sess, int(choice.split()[-1]) - 1, len(sess.candidates))

        c.cand_pick.input(on_candidate, [S, c.cand_pick], gen_outs)

        @user_errors
        def on_keep(sess: Session, choice: str | None, target: str, loop: bool, replace_id=None):
            sess = _need(sess)
            index = int(choice.split()[-1]) - 1 if choice else 0
            stem = sess.keep_candidate(index, replace_id=replace_id)
            gr.Info(f"Kept '{stem.name}' as stem {sess.project.index(stem.id) + 1}.")
            return {**self._project_updates(sess, selected=stem.id),
                    **self._mix_updates(sess, target, loop)}

        c.keep.click(on_keep, [S, c.cand_pick, c.target, c.loop_sel], [*project_outs, *mix_outs])

        @user_errors
        def on_replace(sess: Session, choice: str | None, target: str, loop: bool, stem_id: str | None):
            if not stem_id:
                raise gr.Error("Select the stem to replace in 'Selected stem' first.")
            return on_keep(sess, choice, target, loop, replace_id=stem_id)

        c.replace.click(on_replace, [S, c.cand_pick, c.target, c.loop_sel, c.stem_pick],
                        [*project_outs, *mix_outs])

        # stems
        @user_errors
        def on_stem_pick(sess: Session, stem_id: str | None):
            sess = _need(sess)
            if not stem_id:
                return gr.skip()
            info = sess.video
            return {**self._stem_editor_updates(sess, stem_id),
                    c.timeline: views.timeline_html(sess.project, video_duration_s=info.duration_s
                                                    if info else None, selection=sess.selection,
                                                    selected_id=stem_id)}

        c.stem_pick.input(on_stem_pick, [S, c.stem_pick],
                          [c.gain, c.pan, c.offset, c.trim_start, c.trim_end, c.fade_in,
                           c.fade_out, c.mute, c.solo, c.timeline])

        def stem_in_use(sess, stem_id=None, *_):
            # a refused edit: the boxes show the stem's values actually in use again
            return self._stem_editor_updates(sess, stem_id) if sess is not None and stem_id else None

        @user_errors(shown=stem_in_use)
        def on_stem_apply(sess, stem_id, gain, pan, offset, trim_start, trim_end, fade_in,
                          fade_out, mute, solo, target, loop):
            sess = _need(sess)
            if not stem_id:
                raise gr.Error("No stem selected: keep a take as a stem first.")
            sess.update_stem(stem_id, gain_db=gain, pan=pan, offset_s=offset,
                             trim_start_s=trim_start or 0.0,
                             trim_end_s=None if trim_end in (None, "") else trim_end,
                             fade_in_s=fade_in, fade_out_s=fade_out, mute=mute, solo=solo)
            return {**self._project_updates(sess, selected=stem_id),
                    **self._mix_updates(sess, target, loop)}

        stem_inputs = [S, c.stem_pick, c.gain, c.pan, c.offset, c.trim_start, c.trim_end,
                       c.fade_in, c.fade_out, c.mute, c.solo, c.target, c.loop_sel]
        c.stem_apply.click(on_stem_apply, stem_inputs, [*project_outs, *mix_outs])
        c.mute.input(on_stem_apply, stem_inputs, [*project_outs, *mix_outs])
        c.solo.input(on_stem_apply, stem_inputs, [*project_outs, *mix_outs])

        @user_errors
        def on_stem_delete(sess, stem_id, target, loop):
            sess = _need(sess)
            if not stem_id:
                raise gr.Error("No stem selected.")
            sess.delete_stem(stem_id)
            return {**self._project_updates(sess), **self._mix_updates(sess, target, loop)}

        c.stem_delete.click(on_stem_delete, [S, c.stem_pick, c.target, c.loop_sel],
                            [*project_outs, *mix_outs])

        @user_errors
        def on_undo(sess, stem_id, target, loop):
            sess = _need(sess)
            sess.undo()
            return {**self._project_updates(sess, selected=stem_id),
                    **self._mix_updates(sess, target, loop)}

        c.stem_undo.click(on_undo, [S, c.stem_pick, c.target, c.loop_sel], [*project_outs, *mix_outs])

        settings_outs = [c.caption, c.negative, c.seed, c.steps, c.text_scale, c.video_scale,
                         c.curve_auto, c.curve_scale, c.conform, c.model, c.sel_start, c.sel_end,
                         c.sel_md, c.curve, c.timeline,
                         *ref_outs, c.ref_strength, c.video_onsets]

        def settings_updates(sess: Session, st: dict) -> dict:
            if st.get("reference_missing"):
                gr.Warning(st["reference_missing"])
            cs = st.get("curve_scale")
            if cs is not None and _shown_curve_scale(cs) != cs:
                gr.Warning(f"The stem was made with curve guidance {cs:g}, outside the slider's "
                           f"{CURVE_SCALE_RANGE[0]:g}–{CURVE_SCALE_RANGE[1]:g}: the slider shows "
                           f"{_shown_curve_scale(cs):g}, which the next Generate uses "
                           "('Regenerate with a new seed' keeps the stem's own value).")
            return {**self._reference_updates(sess), c.ref_strength: st["strength"],
                    **self._curve_scale_updates(st["model"], cs is None, cs),
                    c.caption: st["caption"], c.negative: st["negative_caption"], c.seed: st["seed"],
                    c.steps: st["steps"], c.text_scale: st["text_scale"],
                    c.video_scale: st["video_scale"], c.conform: st["conform"],
                    c.video_onsets: st["video_onsets"],
                    c.model: st["model"], c.sel_start: sess.selection[0],
                    c.sel_end: sess.selection[1], c.sel_md: self._selection_text(sess),
                    c.curve: sess.curve_json,
                    c.timeline: views.timeline_html(
                        sess.project, video_duration_s=sess.video.duration_s if sess.video else None,
                        selection=sess.selection)}

        @user_errors
        def on_stem_load(sess, stem_id):
            sess = _need(sess)
            if not stem_id:
                raise gr.Error("No stem selected.")
            return settings_updates(sess, sess.load_stem_settings(stem_id))

        c.stem_load.click(on_stem_load, [S, c.stem_pick], settings_outs)

        @user_errors
        def on_regen(sess, stem_id, n, progress=gr.Progress()):
            sess = _need(sess)
            if not stem_id:
                raise gr.Error("No stem selected.")
            st = sess.load_stem_settings(stem_id)
            st["seed"] = random.randint(0, 2**31 - 1)
            progress(0.0, desc="preparing")
            cands = sess.generate(caption=st["caption"], negative_caption=st["negative_caption"],
                                  seed=st["seed"], steps=st["steps"], text_scale=st["text_scale"],
                                  video_scale=st["video_scale"], curve_scale=st["curve_scale"],
                                  conform=st["conform"], video_onsets=st["video_onsets"],
                                  candidates=n, model=st["model"],
                                  strength=st["strength"] if sess.reference is not None else None,
                                  progress=lambda frac, desc: progress(frac, desc=desc))
            out = settings_updates(sess, st)
            out.update(self._candidate_updates(sess, 0, len(cands)))
            gr.Info("New takes are ready: listen, then 'Replace selected stem' or 'Keep as stem'.")
            return out

        c.stem_regen.click(on_regen, [S, c.stem_pick, c.n_cand], [*settings_outs, *gen_outs],
                           concurrency_id="generate", concurrency_limit=1)

        # mix
        @user_errors
        def on_mix(sess, target, loop):
            return self._mix_updates(_need(sess), target, loop)

        c.target.change(on_mix, [S, c.target, c.loop_sel], mix_outs)
        c.loop_sel.input(on_mix, [S, c.target, c.loop_sel], mix_outs)

        @user_errors
        def on_mix_video(sess, target, progress=gr.Progress()):
            from foley_core import mixing

            sess = _need(sess)
            progress(0.2, desc="muxing the mix into the video")
            path = sess.export_mp4(mixing.LOUDNESS_PRESETS.get(target, -23.0))
            return str(path)

        c.mix_video_btn.click(on_mix_video, [S, c.target], c.mix_video, concurrency_id="export",
                              concurrency_limit=2)

        # export
        def exporter(kind: str):
            @user_errors
            def handler(sess, target, original, progress=gr.Progress()):
                from foley_core import mixing

                sess = _need(sess)
                lufs = mixing.LOUDNESS_PRESETS.get(target, -23.0)
                progress(0.2, desc=f"exporting {kind}")
                if kind == "wav":
                    path, rep = sess.export_wav(lufs)
                    lufs_after = rep.get("lufs_after")
                    text = (f"Mix WAV: 48 kHz, 24-bit stereo, {rep['duration_s']:.2f} s, "
                            + (f"{lufs_after:.1f} LUFS" if lufs_after is not None else "silent")
                            + (f", true peak {rep['true_peak_dbtp_after']:.1f} dBTP"
                               if rep.get("true_peak_dbtp_after") is not None else "") + ".")
                elif kind == "stems":
                    path = sess.export_stems()
                    text = ("Stems zip: every stem bounced full length from 0 s (48 kHz, 24-bit), "
                            "plus the mix and a README.")
                elif kind == "mp4":
                    path = sess.export_mp4(lufs, original)
                    text = f"MP4: the video with the mastered mix (AAC 48 kHz stereo), original sound: {original}."
                else:
                    path = sess.save_project_zip()
                    text = "Project zip: project.json, the stems' audio and the video. Open it here with 'Open a project'."
                return {c.export_file: str(path), c.export_md: text}

            return handler

        exp_inputs = [S, c.target, c.orig_audio]
        exp_outs = [c.export_file, c.export_md]
        c.export_wav.click(exporter("wav"), exp_inputs, exp_outs, concurrency_id="export",
                           concurrency_limit=2)
        c.export_stems.click(exporter("stems"), exp_inputs, exp_outs, concurrency_id="export",
                             concurrency_limit=2)
        c.export_mp4.click(exporter("mp4"), exp_inputs, exp_outs, concurrency_id="export",
                           concurrency_limit=2)
        c.project_save.click(exporter("project"), exp_inputs, exp_outs, concurrency_id="export",
                             concurrency_limit=2)

        @user_errors
        def on_project_load(sess, path, target, loop):
            sess = _need(sess)
            if not path:
                return gr.skip()
            sess.load_project_file(path)
            out = self._video_updates(sess) if sess.video is not None else self._project_updates(sess)
            out.update(self._mix_updates(sess, target, loop))
            if sess.video is not None:
                out[c.video] = str(sess.video.path)
            gr.Info(f"Opened '{sess.project.name}' with {len(sess.project.stems)} stem(s).")
            return out

        c.project_load.upload(on_project_load, [S, c.project_load, c.target, c.loop_sel],
                              [*video_outs, *mix_outs, c.video])

    def _reference_updates(self, sess: Session, *, results: bool = True) -> dict:
        """The picker showing the session's reference (its clip selected in the results)."""
        c = self.c
        ref = sess.reference
        preview = sess.reference_preview_wav()
        out = {c.ref_audio: None if preview is None else str(preview),
               c.ref_md: views.reference_markdown(ref, sess.reference_strength)}
        if results:
            if ref is not None and ref.from_library:
                from foley_core.library import SearchHit

                out[c.ref_results] = gr.Radio(
                    choices=views.reference_choices([SearchHit(ref.entry, 1.0)]), value=ref.entry.id,
                    label="The stem's reference clip (search to see others)")
            else:
                out[c.ref_results] = gr.Radio(value=None)
        return out

    def _curve_scale_updates(self, model: str, use_default: bool, value: float | None = None) -> dict:
        """The curve guidance controls for `model`: the model's own value (slider greyed out
        showing it), or `value` to edit (None: leave the slider's value); both disabled for a
        model without curve guidance."""
        c = self.c
        default = model_curve_scale(model)
        label = views.curve_scale_default_label(default)
        if default is None:
            return {c.curve_auto: gr.Checkbox(value=True, interactive=False, label=label),
                    c.curve_scale: gr.Slider(value=1.0, interactive=False)}
        if use_default:
            slider = gr.Slider(value=_shown_curve_scale(default), interactive=False)
        elif value is None:
            slider = gr.Slider(interactive=True)
        else:
            slider = gr.Slider(value=_shown_curve_scale(value), interactive=True)
        return {c.curve_auto: gr.Checkbox(value=bool(use_default), interactive=True, label=label),
                c.curve_scale: slider}

    def _candidate_updates(self, sess: Session, index: int, n: int) -> dict:
        c = self.c
        cand = sess.candidate(index)
        s = sess.candidate_settings or {}
        labels = [f"Candidate {i + 1}" for i in range(n)]
        ref_wav = sess.candidate_reference_wav(index)
        return {
            c.cand_pick: gr.Radio(choices=labels, value=labels[index]),
            c.cand_audio: str(sess.candidate_wav(index)),
            c.cand_ref_audio: gr.Audio(value=None if ref_wav is None else str(ref_wav),
                                       visible=ref_wav is not None),
            c.spectro: views.spectrogram_png(cand.audio, cand.sr, curve=s.get("curve"),
                                             duration_s=s.get("duration_s"),
                                             start_s=s.get("start_s", 0.0)),
            c.result_md: views.result_markdown(sess.generation_meta, sess.candidates,
                                               curve=s.get("curve")),
        }


def _shown_curve_scale(value: float | None) -> float:
    """A curve guidance value as the slider can show it (within its range; 1 for none)."""
    lo, hi = CURVE_SCALE_RANGE
    return 1.0 if value is None else float(min(hi, max(lo, float(value))))


class _EmptyProject:
    stems: list = []


def _close_session(sess: Session | None) -> None:
    if sess is not None:
        sess.close()


def _mask_layer(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A drawn mask as an RGBA brush layer at the editor's frame size."""
    import cv2

    h, w = shape
    m = cv2.resize(np.asarray(mask, np.float32), (w, h), interpolation=cv2.INTER_NEAREST) > 0.5
    layer = np.zeros((h, w, 4), np.uint8)
    layer[m] = (255, 60, 40, 255)
    return layer


def _browser_secret() -> str:
    """A stable key for the browser's small localStorage record, so that a restarted server can
    still read it. Gradio hands this key to the page, so it protects nothing: the record holds
    only server-signed autosave tokens (foley_core.autosave_tokens), checked on every use."""
    from foley_core import project as fproject

    return hashlib.sha256(str(fproject.autosave_root()).encode()).hexdigest()[:32]


def warm_up_library() -> threading.Thread:
    """Load the library's caption embeddings and sentence encoder in the background, so that the
    first reference search answers at once."""

    def run() -> None:
        t0 = time.perf_counter()
        try:
            sound_library().warm_up()
        except FoleyError as err:
            log.warning("the sound library search is unavailable: %s", err)
            return
        log.info("sound library ready for search (%.1f s)", time.perf_counter() - t0)

    thread = threading.Thread(target=run, name="library-warm-up", daemon=True)
    thread.start()
    return thread


def build_app(*, work_root: str | Path | None = None) -> gr.Blocks:
    """The studio Blocks (not launched)."""
    return Studio(work_root=work_root).build()


def launch_kwargs() -> dict:
    """Arguments for `Blocks.launch` that keep the page offline and styled, and bound what a
    browser may upload (constants.MAX_UPLOAD_BYTES per file)."""
    from starlette.middleware import Middleware

    limit = int(constants.MAX_UPLOAD_BYTES)
    return {"theme": theme(), "css_paths": [STATIC_DIR / "studio.css"],
            # gradio counts the bytes as they stream in and drops the temp file past the limit
            "max_file_size": limit,
            # ... and this refuses a request that announces more before a byte is written
            "app_kwargs": {"middleware": [Middleware(RequestSizeLimit, max_body_bytes=limit
                                                     + _MULTIPART_OVERHEAD_BYTES)]}}


# Room for the multipart headers and boundaries around one file (and gradio's small JSON calls).
_MULTIPART_OVERHEAD_BYTES = 1024 * 1024


class RequestSizeLimit:
    """ASGI middleware: answer 413 to any request whose Content-Length exceeds the limit, before
    its body is read. A request without a length (chunked) is left to gradio's own count."""

    def __init__(self, app, *, max_body_bytes: int):
        self.app, self.max_body_bytes = app, int(max_body_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            for name, value in scope.get("headers") or ():
                if name == b"content-length":
                    try:
                        size = int(value)
                    except ValueError:
                        size = -1
                    if size < 0 or size > self.max_body_bytes:
                        body = (f"The upload is larger than the studio accepts "
                                f"({views.UPLOAD_LIMIT_TEXT}).").encode()
                        await send({"type": "http.response.start", "status": 413,
                                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                                (b"content-length", str(len(body)).encode()),
                                                (b"connection", b"close")]})
                        await send({"type": "http.response.body", "body": body})
                        return
                    break
        await self.app(scope, receive, send)
