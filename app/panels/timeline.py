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
from app.panels.common import need, user_errors
from app.session import Session
from foley_core import audio_io

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
        selected_id=selected_id, ceiling_dbtp=sess.ceiling_dbtp)


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


def wire(c: SimpleNamespace) -> None:
    S = c.state
    edited_outs = [*stems_mix.project_outputs(c), *stems_mix.mix_outputs(c)]

    def in_use(sess, *_):
        # a refused edit: the lanes show the project as it is again
        return {c.timeline: value(c, sess)} if sess is not None else None

    @user_errors(shown=in_use)
    def on_timeline(sess: Session, raw: str, target: str, loop: bool):
        sess = need(sess)
        asked = timeline_widget.parse_timeline_value(raw)
        edit, select = asked["edit"], asked["select"]
        if edit is None and select is None:
            return gr.skip()            # the server's own value coming back: nothing asked
        if edit is None:
            sess.stem(select)           # a stem deleted meanwhile says so
            return {**stems_mix.stem_editor_updates(c, sess, select),
                    c.stem_pick: select, c.timeline: value(c, sess, select)}
        if edit.get("delete"):
            sess.delete_stem(edit["stem_id"])
            return {**stems_mix.project_updates(c, sess),
                    **stems_mix.mix_updates(c, sess, target, loop)}
        sess.update_stem(edit["stem_id"], **edit["changes"])
        return {**stems_mix.project_updates(c, sess, selected=edit["stem_id"]),
                **stems_mix.mix_updates(c, sess, target, loop)}

    c.timeline.change(on_timeline, [S, c.timeline, c.target, c.loop_sel], edited_outs,
                      show_progress="hidden")
