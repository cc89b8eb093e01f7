"""The reference picker: start from a real sound (a library clip found by search, or the user's
own file), at a strength."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app import views
from app.panels.common import need, user_errors
from app.session import (ALL_CATEGORIES, Session, default_reference_strength, search_query,
                         sound_library)
from foley_core.library import SearchHit


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
        c.ref_search_btn = gr.Button("Search", elem_id="reference-search-btn", size="sm")
        c.ref_none = gr.Button("No reference", elem_id="reference-none-btn", size="sm")
    c.ref_results = gr.Radio([], label="Results: caption · category · length · "
                             "licence (click one to use it)", elem_id="reference-results")
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
            out[c.ref_results] = gr.Radio(
                choices=views.reference_choices([SearchHit(ref.entry, 1.0)]), value=ref.entry.id,
                label="The stem's reference clip (search to see others)")
        else:
            out[c.ref_results] = gr.Radio(value=None)
    return out


def wire(c: SimpleNamespace) -> None:
    _wire_search(c)
    _wire_choice(c)


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
    def on_ref_search(sess: Session, query: str, caption: str, category: str):
        sess = need(sess)
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
    for event in (c.ref_search_btn.click, c.ref_query.submit, c.ref_category.input):
        event(on_ref_search, search_inputs, search_outs, concurrency_id="search",
              concurrency_limit=2)


def _wire_choice(c: SimpleNamespace) -> None:
    S = c.state
    ref_outs = outputs(c)

    @user_errors
    def on_ref_pick(sess: Session, clip_id: str | None, strength: float):
        sess = need(sess)
        if not clip_id:
            return gr.skip()
        sess.choose_reference(clip_id)
        sess.set_reference_strength(strength)
        return reference_updates(c, sess, results=False)

    c.ref_results.input(on_ref_pick, [S, c.ref_results, c.ref_strength], ref_outs)

    @user_errors
    def on_ref_upload(sess: Session, path: str | None, strength: float):
        sess = need(sess)
        if not path:
            return gr.skip()
        sess.upload_reference(path)
        sess.set_reference_strength(strength)
        return {**reference_updates(c, sess), c.ref_results: gr.Radio(value=None)}

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
