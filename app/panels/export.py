"""Export and project: the mix WAV, the stems zip, the MP4, the DAW session, and project files
(save a .zip, open one)."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app import views
from app.panels import stems_mix, video
from app.panels.common import need, user_errors
from app.session import Session

ORIGINAL_AUDIO = [("drop the original sound", "drop"), ("keep it as a 2nd track", "track"),
                  ("mix it underneath", "mix")]


def build_buttons(c: SimpleNamespace) -> None:
    """The export buttons (the page keeps them in its top bar, always in view)."""
    c.export_wav = gr.Button("Mix WAV", elem_id="export-wav-btn", size="sm", min_width=60)
    c.export_stems = gr.Button("Stems zip", elem_id="export-stems-btn", size="sm", min_width=60)
    c.export_mp4 = gr.Button("MP4", elem_id="export-mp4-btn", size="sm", min_width=50)
    c.export_daw = gr.Button("DAW session (Reaper)", elem_id="export-daw-btn", size="sm",
                             min_width=80)


def build_result(c: SimpleNamespace) -> None:
    """What the last export wrote: its file to download and a line about it."""
    c.export_file = gr.File(label="Exported file", interactive=False, elem_id="export-file",
                            height=60)
    c.export_md = gr.Markdown("", elem_id="export-info")


def build(c: SimpleNamespace) -> None:
    """Export options and the project (name, save, open)."""
    gr.Markdown("Exports: the mix as a WAV (48 kHz / 24-bit), every stem in a zip, the video "
                "with the mix (MP4), or a DAW session (Reaper); the buttons are in the top bar.",
                elem_classes=["notice"])
    c.orig_audio = gr.Radio(ORIGINAL_AUDIO, value="drop", label="Original soundtrack in the MP4",
                            elem_id="export-original-audio")
    with gr.Row():
        c.project_name = gr.Textbox("Untitled", label="Project name (names the exported files)",
                                    elem_id="project-name", max_lines=1)
        c.project_save = gr.Button("Save project (.zip)", elem_id="project-save-btn")
        c.project_load = gr.File(label=f"Open a project (.zip saved here, "
                                     f"{views.UPLOAD_LIMIT_TEXT})",
                                 file_types=[".zip"], elem_id="project-load", type="filepath")
    gr.Markdown("The project autosaves after every change; reopening this page offers to "
                "restore it.", elem_classes=["notice"])


def _export(sess: Session, kind: str, lufs: float, original: str):
    """Write one export; returns (its path, the line that describes it)."""
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
    return path, text


def wire(c: SimpleNamespace) -> None:
    S = c.state

    def exporter(kind: str):
        @user_errors
        def handler(sess, target, original, progress=gr.Progress()):
            sess = need(sess)
            progress(0.2, desc=f"exporting {kind}")
            path, text = _export(sess, kind, stems_mix.target_lufs(target), original)
            return {c.export_file: str(path), c.export_md: text}

        return handler

    exp_inputs = [S, c.target, c.orig_audio]
    exp_outs = [c.export_file, c.export_md]
    for kind, btn in (("wav", c.export_wav), ("stems", c.export_stems), ("mp4", c.export_mp4),
                      ("project", c.project_save)):
        btn.click(exporter(kind), exp_inputs, exp_outs, concurrency_id="export",
                  concurrency_limit=2)

    @user_errors
    def on_export_daw(sess, progress=gr.Progress()):
        sess = need(sess)
        progress(0.2, desc="exporting the DAW session")
        path, rep = sess.export_daw()
        left_out = (f" Left out (wholly outside the timeline): {', '.join(rep['outside_timeline'])}."
                    if rep["outside_timeline"] else "")
        text = (f"DAW session zip: open {rep['rpp']} in Reaper; {len(rep['tracks'])} stem track(s) at their "
                "offsets (Broadcast WAVs whose time reference also places them in other DAWs)"
                f"{', and the video' if rep['video'] else ''}. The same tracks as an AAF ({rep['aaf']}: "
                f"Pro Tools, Nuendo, Resolve) and an EDL ({rep['edl']}, {rep['fps']:g} fps).{left_out}")
        return {c.export_file: str(path), c.export_md: text}

    c.export_daw.click(on_export_daw, [S], exp_outs, concurrency_id="export", concurrency_limit=2)

    @user_errors
    def on_project_name(sess: Session, name: str | None):
        kept = need(sess).rename_project(name)
        return gr.skip() if kept == name else kept      # the box shows the name as kept

    for event in (c.project_name.submit, c.project_name.blur):
        event(on_project_name, [S, c.project_name], c.project_name, queue=False,
              show_progress="hidden")

    @user_errors
    def on_project_load(sess, path, target, loop):
        sess = need(sess)
        if not path:
            return gr.skip()
        sess.load_project_file(path)
        out = video.opened_updates(c, sess, target, loop)
        gr.Info(f"Opened '{sess.project.name}' with {len(sess.project.stems)} stem(s).")
        return out

    c.project_load.upload(on_project_load, [S, c.project_load, c.target, c.loop_sel],
                          [*video.outputs(c), *stems_mix.mix_outputs(c), c.video])
