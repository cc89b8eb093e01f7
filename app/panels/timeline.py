"""The timeline under the video: the transport (play/pause, loop the selection), the video lane
and one lane per stem with its waveform, heard in the page (Web Audio) in step with the video.

Every finished edit in a lane (move, trim, fade, nudge, mute, solo, gain, pan, delete) comes back
as the widget's value and is applied through the session's own stem methods (update_stem,
delete_stem), so it is saved, autosaved and undone like an edit in the mix controls.
"""

from __future__ import annotations

import hashlib
import weakref
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np

from app import timeline_widget
from app.panels import stems_mix
from app.panels import common
from app.panels.common import need, user_errors
from app.session import Session
from foley_core import audio_io
from foley_core.errors import FoleyError, MixError

# (id(block), id(stem audio)) -> (a weak reference to the array, the served file): a stem's
# audio is read-only, so the same array is the same sound and its file is written once per app.
_served: dict[tuple[int, int], tuple[weakref.ref, str]] = {}


def build(c: SimpleNamespace) -> None:
    c.timeline = timeline_widget.Timeline()


def value(c: SimpleNamespace, sess: Session, selected_id: str | None = None) -> str:
    """The timeline's value for the session's project, video and selection."""
    info = sess.video
    stems = timeline_widget.stem_entries(sess.project.stems,
                                         lambda s: _audio_url(c.timeline, sess, s))
    return timeline_widget.timeline_value(
        stems=stems, video_duration_s=info.duration_s if info else None,
        fps=info.fps if info else None, selection=sess.selection if info else None,
        selected_id=selected_id, ceiling_dbtp=sess.ceiling_dbtp, ack=sess.timeline_ack)


def _audio_url(block, sess: Session, stem) -> str:
    """A URL the page can fetch the stem's audio from: a WAV in the session's folder (float, at
    the stem's rate, so Web Audio hears what render_stem renders), moved into gradio's cache for
    this block so that gradio serves it."""
    audio = stem.audio
    key = (id(block), id(audio))
    hit = _served.get(key)
    if hit is not None and hit[0]() is audio and Path(hit[1]).is_file():
        return "gradio_api/file=" + hit[1]
    digest = hashlib.sha1(np.ascontiguousarray(audio)).hexdigest()[:16]
    path = sess.work_dir / "timeline" / f"{stem.id}-{digest}.wav"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        audio_io.write_wav(path, audio, stem.sr, subtype="FLOAT")
    served = block.move_resource_to_block_cache(path)
    for gone in [k for k, (ref, _) in _served.items() if ref() is None]:
        del _served[gone]
    _served[key] = (weakref.ref(audio), served)
    return "gradio_api/file=" + served


def apply_ops(sess: Session, page: str, ops: list[dict]) -> dict:
    """Handle the page's ops that are new (timeline_widget.claim), each once and in order, a
    refused one too (it is acknowledged, not tried again): {"edited": an edit was applied,
    "stem": the stem to show (the last selected or edited), "refused": messages}."""
    done = {"edited": False, "stem": None, "refused": [], "handled": 0}
    for op in ops:
        with sess.lock:
            sess.timeline_ack, fresh = timeline_widget.claim(sess.timeline_ack, page, op["nonce"])
        if not fresh:
            continue
        done["handled"] += 1
        edit, select = op["edit"], op["select"]
        try:
            if op["error"]:
                raise MixError(op["error"])
            if edit is not None and edit.get("delete"):
                sess.delete_stem(edit["stem_id"])
                done["edited"] = True
            elif edit is not None:
                sess.update_stem(edit["stem_id"], **edit["changes"])
                done["edited"], done["stem"] = True, edit["stem_id"]
            if select is not None:
                sess.stem(select)           # a stem deleted meanwhile says so
                done["stem"] = select
        except FoleyError as err:
            done["refused"].append(str(err))
    return done


def wire(c: SimpleNamespace) -> None:
    S = c.state
    edited_outs = [*stems_mix.project_outputs(c), *stems_mix.mix_outputs(c)]

    def in_use(sess, *_):
        # a refused edit: the lanes show the project as it is again
        return {c.timeline: value(c, sess)} if sess is not None else None

    @user_errors(shown=in_use)
    def on_timeline(sess: Session, raw: str, target: str, loop: bool):
        sess = need(sess)
        done = apply_ops(sess, *timeline_widget.parse_timeline_ops(raw))
        if not done["handled"]:
            # the server's own value coming back, or ops already handled: nothing new asked
            return gr.skip()
        if done["refused"]:
            common.notify("warning", " ".join(done["refused"]))
        stem_id = done["stem"] if done["stem"] in {s.id for s in sess.project.stems} else None
        if done["edited"]:
            return {**stems_mix.project_updates(c, sess, selected=stem_id),
                    **stems_mix.mix_updates(c, sess, target, loop)}
        if stem_id is None:
            # all refused: the lanes show the project as it is, and the ack stops the resends
            return {c.timeline: value(c, sess)}
        return {**stems_mix.stem_editor_updates(c, sess, stem_id),
                c.stem_pick: stem_id, c.timeline: value(c, sess, stem_id)}

    c.timeline.change(on_timeline, [S, c.timeline, c.target, c.loop_sel], edited_outs,
                      show_progress="hidden")
