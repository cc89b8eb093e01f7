"""The studio page (Gradio 6): a composition of its panels (app/panels/, one module each, with
its components and its events), and how it is launched. Each browser session gets its own
`Session`; every handler turns a FoleyError into a message, never a traceback
(app.panels.common.user_errors)."""

from __future__ import annotations

import hashlib
import html
import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
from starlette.middleware import Middleware

from app import audition, views
from app.panels import (curve, describe, export, reference, region, restore, stems_mix, takes,
                        timeline, undo, video)
from app.panels.common import NOTICE_S
from app.session import Session, sound_library
from foley_core import constants
from foley_core import project as fproject
from foley_core.errors import FoleyError

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial",
                "Noto Sans", "Liberation Sans", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "monospace"]
BROWSER_KEY = "foley-studio"
# Wired in this order once every panel is built (a handler may update another panel's parts);
# the restore banner is wired first, with the page's load event.
PANELS = (video, timeline, region, curve, describe, reference, takes, stems_mix, export, undo)


# The side tabs: (the elem_id of the tab's column, its label). static/studio.css shows the one
# static/tabs.js opened (the first until then).
SIDE_TABS = (("tab-sound", "Sound"), ("tab-region", "Region"), ("tab-curve", "Curve & hits"),
             ("reference-picker", "Library"), ("tab-mix", "Mix"), ("tab-project", "Project"))


def tab_strip(tabs) -> str:
    """The side tabs' buttons (static/tabs.js opens the tab a button names)."""
    buttons = "".join(
        f'<button type="button" role="tab" class="side-tab-btn" data-tab="{tab_id}" '
        f'aria-controls="{tab_id}" aria-selected="{"true" if i == 0 else "false"}">'
        f'{html.escape(label)}</button>' for i, (tab_id, label) in enumerate(tabs))
    return f'<div role="tablist" class="side-tab-list">{buttons}</div>'


def _side_tab(elem_id: str) -> gr.Column:
    return gr.Column(elem_id=elem_id, elem_classes=["side-tab"])


def theme() -> gr.themes.Base:
    """The default theme with system fonts only (no font downloads: the page works offline)."""
    return gr.themes.Default(font=SYSTEM_FONTS, font_mono=MONO_FONTS, primary_hue="orange")


class Studio:
    """Builds the Blocks and keeps every panel's components in `self.c`."""

    def __init__(self, *, work_root: str | Path | None = None):
        self.work_root = work_root
        self.c = SimpleNamespace()

    def build(self) -> gr.Blocks:
        c = self.c
        with gr.Blocks(title="Foley studio") as demo:
            c.state = gr.State(self._new_session, delete_callback=_close_session)
            c.browser = gr.BrowserState({"autosaves": []}, storage_key=BROWSER_KEY,
                                        secret=_browser_secret())
            with gr.Row(elem_id="top-bar", equal_height=True):
                gr.Markdown("## Foley studio", elem_id="studio-title")
                undo.build(c)
                with gr.Row(elem_id="export-bar"):
                    export.build_buttons(c)
            restore.build(c)
            # The main loop on one screen: picture on top and the stems' timeline under it, the
            # other steps in tabs beside the picture, the selected stem's inspector beside the
            # timeline (the tabs' height is capped in studio.css so the timeline stays in view).
            with gr.Row(equal_height=False, elem_id="picture-row"):
                with gr.Column(scale=3, min_width=520, elem_id="picture-column"):
                    video.build(c)
                with gr.Column(scale=2, min_width=320, elem_id="side-column"):
                    # Tabs of our own (static/tabs.js): every tab's parts stay in the page,
                    # hidden, so their scripts (the curve editor, the onsets lane) and change
                    # events keep up while closed; gradio's Tabs mount a tab only when opened.
                    gr.HTML(tab_strip(SIDE_TABS), elem_id="side-tab-strip", padding=False)
                    with _side_tab("tab-sound"):
                        describe.build(c)
                        takes.build_generate(c)
                        describe.build_settings(c)
                        takes.build(c)
                    with _side_tab("tab-region"):
                        region.build(c)
                    with _side_tab("tab-curve"):
                        curve.build(c)
                    with _side_tab("reference-picker"):
                        reference.build(c)
                    with _side_tab("tab-mix"):
                        stems_mix.build_mix(c)
                    with _side_tab("tab-project"):
                        export.build(c)
            with gr.Row(equal_height=False, elem_id="timeline-row"):
                # the timeline under the video, the stems' table under it
                with gr.Column(scale=3, min_width=520, elem_id="timeline-slot"):
                    timeline.build(c)
                    stems_mix.build(c)
                    export.build_result(c)
                with gr.Column(scale=2, min_width=320, elem_id="inspector"):
                    stems_mix.build_inspector(c)
            restore.wire(demo, c)
            for panel in PANELS:
                panel.wire(c)
        return demo

    def _new_session(self) -> Session:
        return Session(work_root=self.work_root)


def _close_session(sess: Session | None) -> None:
    if sess is not None:
        sess.close()


def _browser_secret() -> str:
    """A stable key for the browser's small localStorage record, so that a restarted server can
    still read it. Gradio hands this key to the page, so it protects nothing: the record holds
    only server-signed autosave tokens (foley_core.autosave_tokens), checked on every use."""
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


def notices_js() -> str:
    """The page script that shows one message at a time for NOTICE_S (see static/notices.js)."""
    js = (STATIC_DIR / "notices.js").read_text(encoding="utf-8")
    return js.replace("__NOTICE_MS__", str(int(NOTICE_S * 1000)))


def page_js() -> str:
    """The page's own scripts, run once on load: the messages (notices.js), the undo/redo keys
    (shortcuts.js) and the side tabs (tabs.js)."""
    scripts = [notices_js()] + [(STATIC_DIR / name).read_text(encoding="utf-8")
                                for name in ("shortcuts.js", "tabs.js")]
    return "() => { " + " ".join(f"({js})();" for js in scripts) + " }"


def launch_kwargs() -> dict:
    """Arguments for `Blocks.launch` that keep the page offline and styled, and bound what a
    browser may upload (constants.MAX_UPLOAD_BYTES per file)."""
    limit = int(constants.MAX_UPLOAD_BYTES)
    return {"theme": theme(), "css_paths": [STATIC_DIR / "studio.css"], "js": page_js(),
            # gradio counts the bytes as they stream in and drops the temp file past the limit
            "max_file_size": limit,
            # ... and this refuses a request that announces more before a byte is written
            "app_kwargs": {"middleware": [Middleware(RequestSizeLimit, max_body_bytes=limit
                                                     + _MULTIPART_OVERHEAD_BYTES)],
                           # the user's own sounds play by clip id (app/audition.py), never by path
                           "routes": audition.routes()}}


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
