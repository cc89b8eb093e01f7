"""The reference picker: start from a real sound (a library clip found by search, or the user's
own file), at a strength.

The search results are a `gr.HTML` list (static/reference_results.js): each hit shows its
waveform thumbnail and plays in the page on a click (the clip file is served as it is), and only
its "Use" button makes it the stem's reference. The widget's value is the chosen clip's id ('' for
none), as a Radio's would be; the hits travel in its `hits` prop (`result_items`).
"""

from __future__ import annotations

import functools
import math
import urllib.parse
from pathlib import Path
from types import SimpleNamespace

import gradio as gr

from app import audition, views
from app.audition import BROWSER_AUDIO
from app.curve_widget import STATIC_DIR
from app.panels import common
from app.panels.common import need, user_errors
from app.session import (ALL_CATEGORIES, ANY_KIND, KIND_CHOICES, Session, default_reference_strength,
                         saved_library_folders, search_query, sound_library)
from foley_core.errors import FoleyError
from foley_core.library import SearchHit
from foley_core.library.catalog import USER_CATEGORY

RESULTS_TEMPLATE = '<div class="rr-root"><div class="rr-heading"></div><div class="rr-list"></div></div>'


@functools.cache
def _library_root() -> Path | None:
    """The studio library's folder, served as static files so that a result plays from its own
    file at once (public clips; nothing is copied). None for a library without one."""
    root = sound_library().root
    if root is None:
        return None
    root = root.resolve()
    gr.set_static_paths([root])
    return root


def _audition_url(entry) -> str:
    """The page-relative URL that plays `entry`, or '' when it cannot play here: a library clip
    as a static file, a sound of the user's folders through the audition route (served only while
    the studio listens on loopback alone)."""
    if entry.category == USER_CATEGORY:
        return audition.audition_url(entry.id) if audition.user_files_served() else ""
    root = _library_root()
    path = Path(entry.path).resolve()
    if root is None or root not in path.parents or path.suffix.lower() not in BROWSER_AUDIO:
        return ""
    return "gradio_api/file=" + urllib.parse.quote(str(path), safe="/")


def _silent_reason(entry) -> str:
    """Why a result has no play button ('' when it has one)."""
    if entry.category == USER_CATEGORY and not audition.user_files_served():
        return audition.NOT_SERVED_REASON
    return "" if _audition_url(entry) else "This file does not play in the browser."


def result_items(hits, peaks) -> list[dict]:
    """The results list's `hits` prop: per hit its id, label (caption · category · length ·
    licence), attribution, audition URL (or why it has none) and thumbnail peaks (0..1, or None
    if unreadable)."""
    items = []
    for (label, clip_id), hit, levels in zip(views.reference_choices(hits), hits, peaks):
        e = hit.entry
        items.append({"id": clip_id, "label": label, "caption": e.caption,
                      "seconds": e.seconds if math.isfinite(e.seconds) else None,
                      "licence": e.licence, "attribution": e.attribution_text,
                      "url": _audition_url(e), "why_silent": _silent_reason(e),
                      "peaks": None if levels is None else [round(float(v), 4) for v in levels]})
    return items


def result_choices(update) -> list[tuple[str, str]]:
    """(label, clip id) of each result an update of the results list shows."""
    return [(h["label"], h["id"]) for h in (update.props.get("hits") or [])]


def _results(sess: Session, hits, *, chosen: str | None, heading: str) -> gr.HTML:
    if not audition.user_files_served() and any(h.entry.category == USER_CATEGORY for h in hits):
        heading = f"{heading}. {audition.NOT_SERVED_REASON}"
    return gr.HTML(value=chosen or "", hits=result_items(hits, sess.reference_thumbnails(hits)),
                   heading=heading)


def ResultsList(**kwargs) -> gr.HTML:
    """The results list component (a gr.HTML; see the module docstring)."""
    return gr.HTML(value="", html_template=RESULTS_TEMPLATE,
                   css_template=(STATIC_DIR / "reference_results.css").read_text(encoding="utf-8"),
                   js_on_load=(STATIC_DIR / "reference_results.js").read_text(encoding="utf-8"),
                   apply_default_css=False, hits=[],
                   heading="Search to list library clips: click one to listen, Use to start from it.",
                   **kwargs)


def build(c: SimpleNamespace) -> None:
    c.ref_auto = gr.State("")               # the query the search box took from the caption
    gr.Markdown("**Reference sound** (optional): start every take from this sound "
                "(library or your own file) instead of the clips the caption picks; "
                "the model reshapes it to your video and curve.")
    with gr.Row():
        c.ref_query = gr.Textbox(label="Search the library (defaults to the caption)",
                                 elem_id="reference-search", scale=3)
        c.ref_category = gr.Dropdown([ALL_CATEGORIES, *sound_library().categories()],
                                     value=ALL_CATEGORIES, label="Category",
                                     elem_id="reference-category", scale=2)
    with gr.Row():
        c.ref_kind = gr.Dropdown(list(KIND_CHOICES), value=ANY_KIND, label="Kind",
                                 info="one-shot: a hit that dies away; sustained: can be looped",
                                 elem_id="reference-kind", scale=2)
        c.ref_min_s = gr.Number(None, label="Shortest (s, empty or 0 = any)", minimum=0, step=0.5,
                                placeholder="any", elem_id="reference-min-s", scale=1)
        c.ref_max_s = gr.Number(None, label="Longest (s, empty or 0 = any)", minimum=0, step=0.5,
                                placeholder="any", elem_id="reference-max-s", scale=1)
    with gr.Row():
        c.ref_search_btn = gr.Button("Search", elem_id="reference-search-btn", size="sm")
        c.ref_none = gr.Button("No reference", elem_id="reference-none-btn", size="sm")
    c.ref_results = ResultsList(elem_id="reference-results")
    with gr.Row(equal_height=False):
        c.ref_upload = gr.File(label=f"…or upload your own sound (any audio file, "
                               f"{views.UPLOAD_LIMIT_TEXT})",
                               file_types=["audio", "video"], type="filepath",
                               elem_id="reference-upload", height=120, scale=1)
        c.ref_audio = gr.Audio(label="Reference preview", interactive=False,
                               type="filepath", elem_id="reference-preview", scale=1)
    c.ref_strength = gr.Slider(0, 1, value=default_reference_strength(), step=0.05,
                               label="Reference strength",
                               info="0 = the reference as it is, 1 = ignore it "
                               "(plain generation); in between keeps its character",
                               elem_id="reference-strength")
    c.ref_md = gr.Markdown(views.reference_markdown(None, default_reference_strength()),
                           elem_id="reference-info")
    _build_folders(c)


def _build_folders(c: SimpleNamespace) -> None:
    gr.Markdown("**Your sound folders**: add a folder on this machine (searched with its "
                "sub-folders; captions from a captions.csv or the file names). Its sounds join "
                "the search above and the clips the caption picks; the folders are kept for "
                "every project.")
    with gr.Row():
        c.lib_folder_path = gr.Textbox(label="Folder path", placeholder="~/Sounds/Foley",
                                       elem_id="library-folder-path", scale=3)
        c.lib_folder_add = gr.Button("Add folder", elem_id="library-folder-add", size="sm", scale=1)
    # a callable value is read at every page load: the folders saved since the app started
    c.lib_folders_md = gr.Markdown(lambda: folders_markdown(saved_library_folders()),
                                   elem_id="library-folders")
    with gr.Row():
        c.lib_folder_pick = gr.Dropdown(_folder_choices(saved_library_folders()), value=None,
                                        label="Saved folder", elem_id="library-folder-choice", scale=3)
        c.lib_folder_remove = gr.Button("Remove folder", elem_id="library-folder-remove", size="sm", scale=1)


def folders_markdown(rows: list[tuple[str, str]]) -> str:
    """The saved folders, one a line with what each holds (or why it is not searched)."""
    if not rows:
        return "No folder added: the search and the caption use the bundled library."
    return "\n".join(f"- `{folder}`: {status}" for folder, status in rows)


def _folder_choices(rows: list[tuple[str, str]]) -> list[str]:
    return [folder for folder, _ in rows]


def scan_message(scan) -> str:
    """What adding a folder read, in words."""
    skipped = (f"; {scan.unreadable} file(s) could not be read and were skipped, e.g. {scan.skipped[0]}"
               if scan.unreadable else "")
    return (f"Added '{scan.folder}': {scan.usable} sound(s) from {scan.files} audio file(s) "
            f"({scan.new + scan.updated} read now, {scan.unchanged} from the index){skipped}")


def outputs(c: SimpleNamespace) -> list:
    return [c.ref_results, c.ref_audio, c.ref_md]


def reference_updates(c: SimpleNamespace, sess: Session, *, results: bool = True) -> dict:
    """The picker showing the session's reference (its clip selected in the results)."""
    ref = sess.reference
    preview = sess.reference_preview_wav()
    out = {c.ref_audio: None if preview is None else str(preview),
           c.ref_md: views.reference_markdown(ref, sess.reference_strength)}
    if results:
        if ref is not None and ref.from_library:
            out[c.ref_results] = _results(sess, [SearchHit(ref.entry, 1.0)], chosen=ref.entry.id,
                                          heading="The stem's reference clip (search to see others)")
        else:
            out[c.ref_results] = gr.HTML(value="")
    return out


def wire(c: SimpleNamespace) -> None:
    _wire_search(c)
    _wire_choice(c)
    _wire_folders(c)


def _folder_updates(c: SimpleNamespace, sess: Session) -> dict:
    rows = sess.library_folders()
    return {c.lib_folders_md: folders_markdown(rows),
            c.lib_folder_pick: gr.Dropdown(choices=_folder_choices(rows), value=None),
            c.ref_category: gr.Dropdown(choices=[ALL_CATEGORIES, *sound_library().categories()])}


def _wire_folders(c: SimpleNamespace) -> None:
    S = c.state
    outs = [c.lib_folders_md, c.lib_folder_pick, c.ref_category, c.lib_folder_path]

    @user_errors
    def on_library_folder_add(sess: Session, path: str):
        sess = need(sess)
        scan = sess.add_library_folder(path)
        common.notify("info", scan_message(scan))
        return {**_folder_updates(c, sess), c.lib_folder_path: ""}

    for event in (c.lib_folder_add.click, c.lib_folder_path.submit):
        event(on_library_folder_add, [S, c.lib_folder_path], outs, concurrency_id="search",
              concurrency_limit=2)

    @user_errors
    def on_library_folder_remove(sess: Session, folder: str | None):
        sess = need(sess)
        if not folder:
            raise FoleyError("Pick a saved folder to remove.")
        sess.remove_library_folder(folder)
        return _folder_updates(c, sess)

    c.lib_folder_remove.click(on_library_folder_remove, [S, c.lib_folder_pick], outs[:3])

    def on_library_choices():
        # a page loaded before a folder was added (or removed) in another tab lists it on focus
        rows = saved_library_folders()
        return {c.lib_folder_pick: gr.Dropdown(choices=_folder_choices(rows)),
                c.ref_category: gr.Dropdown(choices=[ALL_CATEGORIES, *sound_library().categories()])}

    for dropdown in (c.lib_folder_pick, c.ref_category):
        dropdown.focus(on_library_choices, None, [c.lib_folder_pick, c.ref_category], queue=False,
                       show_progress="hidden")


def _wire_search(c: SimpleNamespace) -> None:
    S = c.state

    def sync_query(caption: str, query: str, last_auto: str):
        # the search box follows the caption until the user types their own query
        if (query or "") == (last_auto or ""):
            return caption, caption
        return gr.skip(), last_auto

    c.caption.change(sync_query, [c.caption, c.ref_query, c.ref_auto], [c.ref_query, c.ref_auto],
                     queue=False, show_progress="hidden")

    @user_errors
    def on_ref_search(sess: Session, query: str, caption: str, category: str,
                      min_s: float | None = None, max_s: float | None = None, kind: str | None = None):
        sess = need(sess)
        # an empty box arrives as 0, and no clip lasts 0 s: 0 means "no bound" on either side
        min_s, max_s = (v if v else None for v in (min_s, max_s))
        # an empty search box searches by the caption (the sound being described)
        text = search_query(query, caption)
        hits = sess.search_references(query, category, caption=caption, min_s=min_s, max_s=max_s, kind=kind)
        if not hits:
            gr.Info("No library clips match; try other words, another category, kind or other lengths.")
        chosen = sess.reference.entry.id if sess.reference is not None else None
        lengths = _lengths_text(min_s, max_s)
        return {c.ref_results: _results(
                    sess, hits, chosen=chosen if chosen in [h.entry.id for h in hits] else None,
                    heading=f"{len(hits)} result(s) for \"{text or category}\"{lengths}: click "
                            "one to listen, Use to start from it"),
                c.ref_query: text,
                # searched by the caption: the box follows the caption again
                c.ref_auto: text if not search_query(query) else gr.skip()}

    search_inputs = [S, c.ref_query, c.caption, c.ref_category, c.ref_min_s, c.ref_max_s, c.ref_kind]
    search_outs = [c.ref_results, c.ref_query, c.ref_auto]
    for event in (c.ref_search_btn.click, c.ref_query.submit, c.ref_category.input, c.ref_kind.input,
                  c.ref_min_s.submit, c.ref_max_s.submit):
        event(on_ref_search, search_inputs, search_outs, concurrency_id="search",
              concurrency_limit=2)


def _lengths_text(min_s: float | None, max_s: float | None) -> str:
    if min_s is None and max_s is None:
        return ""
    if max_s is None:
        return f", at least {min_s:g} s long"
    if min_s is None:
        return f", at most {max_s:g} s long"
    return f", {min_s:g}–{max_s:g} s long"


def _wire_choice(c: SimpleNamespace) -> None:
    S = c.state
    ref_outs = outputs(c)

    def in_use(sess: Session | None, *_):
        # a refused "Use" (e.g. a damaged clip) checks the clip in use again, not the refused one
        ref = sess.reference if sess is not None else None
        return {c.ref_results: gr.HTML(value=ref.entry.id if ref is not None and ref.from_library else "")}

    @user_errors(shown=in_use)
    def on_ref_pick(sess: Session, clip_id: str | None, strength: float):
        sess = need(sess)
        if not clip_id:
            return gr.skip()
        sess.choose_reference(clip_id)
        sess.set_reference_strength(strength)
        return {**reference_updates(c, sess, results=False), c.ref_results: gr.HTML(value=clip_id)}

    c.ref_results.input(on_ref_pick, [S, c.ref_results, c.ref_strength], ref_outs)

    @user_errors
    def on_ref_upload(sess: Session, path: str | None, strength: float):
        sess = need(sess)
        if not path:
            return gr.skip()
        sess.upload_reference(path)
        sess.set_reference_strength(strength)
        return {**reference_updates(c, sess), c.ref_results: gr.HTML(value="")}

    c.ref_upload.upload(on_ref_upload, [S, c.ref_upload, c.ref_strength], ref_outs)

    @user_errors
    def on_ref_none(sess: Session, strength: float):
        sess = need(sess)
        sess.clear_reference()
        return {**reference_updates(c, sess), c.ref_upload: None}

    c.ref_none.click(on_ref_none, [S, c.ref_strength], [*ref_outs, c.ref_upload])

    @user_errors
    def on_ref_strength(sess: Session, strength: float):
        sess = need(sess)
        sess.set_reference_strength(strength)
        return {c.ref_md: views.reference_markdown(sess.reference, sess.reference_strength)}

    c.ref_strength.release(on_ref_strength, [S, c.ref_strength], c.ref_md, queue=False)
