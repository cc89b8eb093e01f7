"""5 · Listen, keep a take: Generate and Cancel, the candidates with their spectrogram, keeping
one as a stem (or in place of the selected stem), and regenerating a stem with a new seed."""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from app import views
from app.panels import describe, stems_mix
from app.panels.common import need, user_errors
from app.session import Session


def build_generate(c: SimpleNamespace) -> None:
    with gr.Row():
        c.generate = gr.Button("Generate", variant="primary", elem_id="generate-btn", scale=3)
        c.cancel = gr.Button("Cancel", variant="stop", elem_id="cancel-btn", scale=1)


def build(c: SimpleNamespace) -> None:
    """The candidates: listen, see, keep one."""
    gr.Markdown("**Listen, keep a take**")
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
            c.spectro = gr.Image(label="Spectrogram: achieved loudness (white) and the "
                                 "curve followed (orange), on the curve editor's scale",
                                 interactive=False,
                                 elem_id="candidate-spectrogram")


def outputs(c: SimpleNamespace) -> list:
    return [c.cand_pick, c.cand_audio, c.cand_ref_audio, c.spectro, c.result_md]


def candidate_updates(c: SimpleNamespace, sess: Session, index: int, n: int) -> dict:
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


def wire(c: SimpleNamespace) -> None:
    _wire_generation(c)
    _wire_keeping(c)


def _wire_generation(c: SimpleNamespace) -> None:
    S = c.state
    gen_inputs = describe.generation_inputs(c)

    @user_errors
    def on_generate(sess, caption, negative, seed, steps, ts, vs, curve_auto, cs, conform, n,
                    model, strength, video_onsets, source="auto", progress=gr.Progress()):
        sess = need(sess)
        progress(0.0, desc="preparing")
        cands = sess.generate(caption=caption, negative_caption=negative, seed=seed,
                              steps=steps, text_scale=ts, video_scale=vs,
                              curve_scale=None if curve_auto else cs, conform=conform,
                              candidates=n, model=model,
                              strength=strength if sess.reference is not None else None,
                              video_onsets=video_onsets, source=source,
                              progress=lambda frac, desc: progress(frac, desc=desc))
        return candidate_updates(c, sess, 0, len(cands))

    for event in (c.generate.click, c.caption.submit):
        event(on_generate, gen_inputs, outputs(c), concurrency_id="generate", concurrency_limit=1)
    c.cancel.click(lambda sess: sess.cancel() if sess else None, S, None, queue=False)

    @user_errors
    def on_candidate(sess: Session, choice: str | None):
        sess = need(sess)
        if not choice:
            return gr.skip()
        return candidate_updates(c, sess, int(choice.split()[-1]) - 1, len(sess.candidates))

    c.cand_pick.input(on_candidate, [S, c.cand_pick], outputs(c))

    @user_errors
    def on_regen(sess, stem_id, n, progress=gr.Progress()):
        sess = need(sess)
        if not stem_id:
            raise gr.Error("No stem selected.")
        st = sess.load_stem_settings(stem_id)
        st["seed"] = describe.random_seed()
        progress(0.0, desc="preparing")
        cands = sess.generate(caption=st["caption"], negative_caption=st["negative_caption"],
                              seed=st["seed"], steps=st["steps"], text_scale=st["text_scale"],
                              video_scale=st["video_scale"], curve_scale=st["curve_scale"],
                              conform=st["conform"], video_onsets=st["video_onsets"],
                              source=st["source"], candidates=n, model=st["model"],
                              strength=st["strength"] if sess.reference is not None else None,
                              progress=lambda frac, desc: progress(frac, desc=desc))
        out = describe.settings_updates(c, sess, st)
        out.update(candidate_updates(c, sess, 0, len(cands)))
        gr.Info("New takes are ready: listen, then 'Replace selected stem' or 'Keep as stem'.")
        return out

    @user_errors
    def on_span_regen(sess, stem_id, span_start, span_end, n, progress=gr.Progress()):
        sess = need(sess)
        if not stem_id:
            raise gr.Error("No stem selected.")
        if span_start is None or span_end is None:
            raise gr.Error("Give the span to remake: from and to, in seconds into the stem.")
        progress(0.0, desc="preparing")
        cands = sess.regenerate_span(stem_id, span_start, span_end, seed=describe.random_seed(),
                                     candidates=n, progress=lambda frac, desc: progress(frac, desc=desc))
        out = describe.settings_updates(c, sess, sess.stem_settings(stem_id) | {"reference_missing": None})
        out.update(candidate_updates(c, sess, 0, len(cands)))
        gr.Info(f"New takes of {float(span_start):.2f}-{float(span_end):.2f} s (the rest kept as it "
                "was): listen, then 'Replace selected stem'.")
        return out

    c.span_regen.click(on_span_regen, [S, c.stem_pick, c.span_start, c.span_end, c.n_cand],
                       [*describe.settings_outputs(c), *outputs(c)],
                       concurrency_id="generate", concurrency_limit=1)

    c.stem_regen.click(on_regen, [S, c.stem_pick, c.n_cand],
                       [*describe.settings_outputs(c), *outputs(c)],
                       concurrency_id="generate", concurrency_limit=1)


def _wire_keeping(c: SimpleNamespace) -> None:
    S = c.state
    edited_outs = [*stems_mix.project_outputs(c), *stems_mix.mix_outputs(c)]

    @user_errors
    def on_keep(sess: Session, choice: str | None, target: str, loop: bool, replace_id=None):
        sess = need(sess)
        index = int(choice.split()[-1]) - 1 if choice else 0
        stem = sess.keep_candidate(index, replace_id=replace_id)
        gr.Info(f"Kept '{stem.name}' as stem {sess.project.index(stem.id) + 1}.")
        return {**stems_mix.project_updates(c, sess, selected=stem.id),
                **stems_mix.mix_updates(c, sess, target, loop)}

    c.keep.click(on_keep, [S, c.cand_pick, c.target, c.loop_sel], edited_outs)

    @user_errors
    def on_replace(sess: Session, choice: str | None, target: str, loop: bool, stem_id: str | None):
        if not stem_id:
            raise gr.Error("Select the stem to replace in 'Selected stem' first.")
        return on_keep(sess, choice, target, loop, replace_id=stem_id)

    c.replace.click(on_replace, [S, c.cand_pick, c.target, c.loop_sel, c.stem_pick], edited_outs)
