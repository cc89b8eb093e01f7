"""The banner that offers to restore the autosave this browser made last (page load)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app.panels import stems_mix, video
from app.panels.common import MAX_RESTORE_DIRS, log, need, user_errors
from app.session import Session, describe_autosave


def build(c: SimpleNamespace) -> None:
    with gr.Group(visible=False, elem_id="restore-banner") as c.restore_group:
        c.restore_md = gr.Markdown()
        with gr.Row():
            c.restore_btn = gr.Button("Restore it", variant="primary", elem_id="restore-btn")
            c.restore_dismiss = gr.Button("Start fresh", elem_id="restore-dismiss")
    c.restore_token = gr.State(None)


def _offer(sess: Session, tokens: list[str]) -> tuple[str, str] | None:
    """(token, description) of the first autosave among `tokens` that can be restored."""
    for token in tokens:
        folder = sess.autosave_folder(token)
        text = describe_autosave(folder) if folder is not None else None
        log.debug("autosave token %s...: %s", token[:8],
                  text or "nothing to restore" if folder else "not signed here: ignored")
        if text:
            return token, text
    return None


def wire(demo: gr.Blocks, c: SimpleNamespace) -> None:
    S = c.state

    # page load: offer to restore the autosave this browser made last. The browser holds
    # signed tokens only (Session.autosave_token); anything else it sends is ignored.
    @user_errors
    def on_load(sess: Session, browser: dict):
        need(sess)
        stored = (browser or {}).get("autosaves", []) if isinstance(browser, dict) else []
        tokens = [t for t in stored if isinstance(t, str)][:MAX_RESTORE_DIRS] \
            if isinstance(stored, list) else []
        offer = _offer(sess, tokens)
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
        sess = need(sess)
        if not token:
            raise gr.Error("Nothing to restore.")
        sess.restore_autosave(token)
        out = video.opened_updates(c, sess, target, loop)
        out[c.restore_group] = gr.Group(visible=False)
        gr.Info(f"Restored {len(sess.project.stems)} stem(s).")
        return out

    c.restore_btn.click(on_restore, [S, c.restore_token, c.target, c.loop_sel],
                        [*video.outputs(c), *stems_mix.mix_outputs(c), c.restore_group, c.video])
    c.restore_dismiss.click(lambda: gr.Group(visible=False), None, c.restore_group)
