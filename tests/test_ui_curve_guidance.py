"""Curve guidance in the studio: the session passes what the designer asked (None = the model's own
value) to generate() and records it on the stem, load-back and regenerate reproduce it, and the
gradio controls (elem_id "curve-scale") follow the model. A tiny random model; one real generation."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import torch

from app import studio as studio_module, views
from app.session import Session, has_curve_guidance, model_curve_scale
from foley_core import constants
from foley_core.errors import FoleyError

torch.set_num_threads(1)

# the embedded backend on a tiny random model for every test here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("tiny_model")


class _Result:
    def __init__(self, audios, sr, metadata):
        self.audios, self.sr, self.metadata = audios, sr, metadata
        self.reference_audios = None
        # the typed report the session reads: the same values as `metadata`
        self.report = types.SimpleNamespace(seeds=metadata["seeds"], model=metadata["model"],
                                            curve_r_before=None, curve_r_after=None, onsets_s=None,
                                            reference=None, to_json=lambda: dict(metadata))


@pytest.fixture
def spy(monkeypatch):
    """generate() stand-in recording its keyword arguments (a quiet tone per candidate)."""
    calls = []

    def fake_generate(request, **run_kw):
        # the request as the keyword call it replaces (`mask` is its region)
        kw = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
        kw["mask"] = kw.pop("region")
        calls.append({**kw, **run_kw})
        n = int(round(kw["duration_s"] * constants.MODEL_SR))
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / constants.MODEL_SR)).astype(np.float32)
        return _Result([tone] * kw["candidates"], constants.MODEL_SR,
                       {"seeds": [kw["seed"] + k for k in range(kw["candidates"])], "model": "fake",
                        "curve_scale": kw["curve_scale"] if kw["curve"] is not None else None})

    import foley_core.generate

    monkeypatch.setattr(foley_core.generate, "generate", fake_generate)
    return calls


@pytest.fixture
def video(media_factory):
    return media_factory("make_video", "square.mp4", seconds=3.0, fps=25, size=(160, 120),
                         audio_events_s=[1.0, 2.0])


@pytest.fixture
def sess(tmp_path, video):
    s = Session(work_root=tmp_path / "work", autosave_root=tmp_path / "autosave")
    s.load_video(video)
    s.set_selection(0.5, 1.5)
    s.curve_preset("fade in")
    yield s
    s.close()


def test_curve_scale_reaches_generate_and_is_recorded_on_the_stem(sess, spy, tmp_path):
    sess.generate(caption="a ball bounces", steps=2, curve_scale=6.5)
    assert spy[-1]["curve_scale"] == 6.5
    guided = sess.keep_candidate(0)
    assert guided.settings.curve_scale == 6.5
    sess.generate(caption="a ball bounces", steps=2)                  # the model's own value
    assert spy[-1]["curve_scale"] is None
    default = sess.keep_candidate(0)
    assert default.settings.curve_scale is None
    sess.generate(caption="a ball bounces", steps=2, curve_scale=np.float64(1))  # a widget's number
    assert spy[-1]["curve_scale"] == 1.0 and type(spy[-1]["curve_scale"]) is float

    # loading back puts the value in the editor's settings; regenerate passes it on unchanged
    st = sess.load_stem_settings(guided.id)
    assert st["curve_scale"] == 6.5
    sess.generate(caption=st["caption"], seed=st["seed"] + 1, steps=st["steps"],
                  text_scale=st["text_scale"], video_scale=st["video_scale"],
                  curve_scale=st["curve_scale"], conform=st["conform"], model=st["model"])
    assert spy[-1]["curve_scale"] == 6.5 and sess.keep_candidate(0).settings.curve_scale == 6.5
    assert sess.load_stem_settings(default.id)["curve_scale"] is None

    # and the project keeps both through save and open
    other = Session(work_root=tmp_path / "other", autosave_root=tmp_path / "other-autosave")
    other.load_project_file(sess.save_project_zip())
    assert [s.settings.curve_scale for s in other.project.stems] == [6.5, None, 6.5]
    assert other.load_stem_settings(guided.id)["curve_scale"] == 6.5
    other.close()


def test_bad_curve_scales_and_models_without_curve_guidance(sess, spy):
    for bad in ("strict", -1, 51, float("nan"), True):
        with pytest.raises(FoleyError, match="curve guidance must be a number"):
            sess.generate(caption="a ball bounces", steps=2, curve_scale=bad)
    # audioldm2 has no curve guidance: said before its (large) weights are loaded
    with pytest.raises(FoleyError, match="audioldm2 model has no curve guidance"):
        sess.generate(caption="a ball bounces", steps=2, curve_scale=5.0, model="audioldm2")
    assert spy == []
    for fine in (None, 1.0):                       # its own value, or off, are fine
        sess.generate(caption="a ball bounces", steps=2, curve_scale=fine, model="audioldm2")
        assert spy[-1]["curve_scale"] == fine and spy[-1]["model"] == "audioldm2"

    from foley_core.backends import get_backend

    assert has_curve_guidance("embedded") and not has_curve_guidance("audioldm2")
    assert model_curve_scale("embedded") == get_backend("embedded").curve_scale
    assert model_curve_scale("audioldm2") is None and model_curve_scale("no-such-model") is None


def test_real_generation_reports_the_curve_guidance_it_used(sess):
    sess.generate(caption="a ball bounces", steps=1, curve_scale=3.0)
    assert sess.generation_meta["curve_scale"] == 3.0
    assert "curve guidance 3" in views.result_markdown(sess.generation_meta, sess.candidates)
    assert sess.keep_candidate(0).settings.curve_scale == 3.0
    sess.generate(caption="a ball bounces", steps=1)
    from foley_core.backends import get_backend

    assert sess.generation_meta["curve_scale"] == get_backend("embedded").curve_scale
    assert sess.candidate_settings["curve_scale"] is None      # what was asked, not the value used


# ---------------------------------------------------------------------- the gradio controls
@pytest.fixture(scope="module")
def built(tiny_model):
    st = studio_module.Studio()
    demo = st.build()
    handlers = {}
    for f in demo.fns.values():
        handlers.setdefault(f.name, f.fn)
    return st, demo, handlers


def _by_id(demo):
    return {getattr(b, "elem_id", None): b for b in demo.blocks.values()}


def test_the_control_and_its_default(built):
    st, demo, _ = built
    slider, auto = _by_id(demo)["curve-scale"], _by_id(demo)["curve-scale-default"]
    assert st.c.curve_scale is slider and st.c.curve_auto is auto
    assert (slider.minimum, slider.maximum, slider.step) == (1, 15, 0.5)
    assert slider.label == "Curve guidance" and "before conform" in slider.info
    assert "higher = stricter" in slider.info and "1 = off" in slider.info
    default = model_curve_scale("embedded")
    assert auto.value is True and slider.interactive is False     # the model's own value at first
    assert f"({default:g}" in auto.label
    # the text/video guidance sliders and the curve guidance sit together
    ids = [getattr(b, "elem_id", None) for b in demo.blocks.values()]
    assert ids.index("video-scale") < ids.index("curve-scale") < ids.index("conform")
    assert views.curve_scale_default_label(1.0) == "Use the model's value (1 = off)"
    assert views.curve_scale_default_label(8.0) == "Use the model's value (8)"


def test_the_controls_follow_the_model_and_the_box(built):
    st, _, handlers = built
    c = st.c
    on_controls = handlers["on_curve_controls"]
    out = on_controls("audioldm2", False)
    assert out[c.curve_auto].value is True and out[c.curve_auto].interactive is False
    assert "no curve guidance" in out[c.curve_auto].label and out[c.curve_scale].interactive is False
    out = on_controls("embedded", False)                # unticked: the slider is the designer's
    assert out[c.curve_auto].interactive is True and out[c.curve_scale].interactive is True
    out = on_controls("embedded", True)                 # ticked: it shows the model's value
    assert out[c.curve_scale].interactive is False
    assert out[c.curve_scale].value == min(15.0, max(1.0, model_curve_scale("embedded")))


def test_generate_button_and_load_back_use_the_controls(built, sess, spy):
    st, _, handlers = built
    c = st.c
    on_generate, on_stem_load = handlers["on_generate"], handlers["on_stem_load"]
    quiet = lambda *a, **k: None                        # noqa: E731 (no gradio progress here)
    args = dict(caption="a ball bounces", negative="", seed=0, steps=2, ts=3.5, vs=4.5, conform=1.0,
                n=1, model="embedded", strength=0.5, video_onsets=True, progress=quiet)
    on_generate(sess, curve_auto=True, cs=9.0, **args)
    assert spy[-1]["curve_scale"] is None               # ticked: the model's value, whatever the slider
    default = sess.keep_candidate(0)
    on_generate(sess, curve_auto=False, cs=9.0, **args)
    assert spy[-1]["curve_scale"] == 9.0 and spy[-1]["video_onsets"] is True
    args["video_onsets"] = False
    on_generate(sess, curve_auto=False, cs=9.0, **args)
    assert spy[-1]["video_onsets"] is False                # the checkbox reaches generate()
    assert spy[-1]["source"] == "auto"
    on_generate(sess, curve_auto=False, cs=9.0, source="model", **args)
    assert spy[-1]["source"] == "model"                    # the Source radio reaches generate()
    guided = sess.keep_candidate(0)

    out = on_stem_load(sess, guided.id)
    assert out[c.curve_auto].value is False and out[c.curve_scale].value == 9.0
    assert out[c.video_onsets] is False                     # loaded back with the stem
    assert out[c.curve_scale].interactive is True
    out = on_stem_load(sess, default.id)
    assert out[c.curve_auto].value is True and out[c.curve_scale].interactive is False

    handlers["on_regen"](sess, guided.id, 1, progress=quiet)
    assert spy[-1]["curve_scale"] == 9.0 and spy[-1]["seed"] != guided.settings.seed
    assert spy[-1]["video_onsets"] is False


def test_search_button_with_an_empty_box_searches_by_the_caption(built, sess):
    # (not curve guidance, but the same gradio layer: the picker's Search handler)
    from app.panels.reference import result_choices

    st, _, handlers = built
    c = st.c
    out = handlers["on_ref_search"](sess, "", "glass shatters", "all categories")
    assert out[c.ref_query] == "glass shatters" and out[c.ref_auto] == "glass shatters"
    assert result_choices(out[c.ref_results]) and " · glass · " in result_choices(out[c.ref_results])[0][0]
    out = handlers["on_ref_search"](sess, "footsteps", "glass shatters", "all categories")
    assert " · footsteps · " in result_choices(out[c.ref_results])[0][0] and out[c.ref_query] == "footsteps"
    import gradio as gr

    from app.panels import common

    told = []
    mp = pytest.MonkeyPatch()
    mp.setattr(common, "notify", lambda level, msg, **kw: told.append((level, msg)))
    try:
        # refused with a message, every output left as it was (the studio's error rule)
        assert handlers["on_ref_search"](sess, " ", "", "all categories") == gr.skip()
    finally:
        mp.undo()
    assert told and told[-1][0] == "warning" and "or a caption" in told[-1][1]
