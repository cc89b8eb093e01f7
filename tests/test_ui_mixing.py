"""The studio's mixing and transport controls on the server side: mix settings that apply as
soon as they are entered, the meter's warning above the ceiling, a typed scrub time, and the
project's name."""

from __future__ import annotations

import gradio as gr

from app import views
from app.panels import video
from test_ui_studio import _handler, _keep_a_take, demo, demo_components, loaded, told  # noqa: F401

TARGET = "streaming (-14 LUFS)"


def _triggers(demo, component) -> set[str]:
    return {event for f in demo.fns.values() for block_id, event in f.targets
            if block_id == component._id}


def test_gain_and_pan_apply_when_entered(demo, loaded, told, monkeypatch):
    c = demo_components(demo)
    stem = _keep_a_take(loaded, monkeypatch)
    for control in (c.gain, c.pan, c.offset, c.fade_in, c.fade_out):
        assert {"submit", "blur"} <= _triggers(demo, control)
    out = _handler(demo, "on_gain_db")(loaded, stem.id, -6, TARGET, False)
    assert loaded.stem(stem.id).mix.gain_db == -6.0 and out[c.gain] == -6.0
    assert out[c.mix_audio] is not None and "LUFS" in out[c.meter_md]
    out = _handler(demo, "on_pan")(loaded, stem.id, 0.5, TARGET, False)
    assert loaded.stem(stem.id).mix.pan == 0.5 and loaded.stem(stem.id).mix.gain_db == -6.0
    # leaving a box unchanged is not an edit: nothing re-rendered, no undo step
    steps = len(loaded.history)
    assert _handler(demo, "on_pan")(loaded, stem.id, 0.5, TARGET, False) == gr.skip()
    assert len(loaded.history) == steps
    # out of range: refused in words, the box shows the value in use again
    out = _handler(demo, "on_gain_db")(loaded, stem.id, 99, TARGET, False)
    assert loaded.stem(stem.id).mix.gain_db == -6.0 and out[c.gain] == -6.0
    assert told[-1] == ("warning", "Gain (dB) must be between -60 and 24; got 99.")
    # no stem selected yet: typing in the editor does nothing (and says nothing)
    assert _handler(demo, "on_pan")(loaded, None, 0.3, TARGET, False) == gr.skip()
    assert len(told) == 1


def test_the_meter_is_red_above_the_ceiling(demo, loaded, told, monkeypatch):
    c = demo_components(demo)
    stem = _keep_a_take(loaded, monkeypatch)                     # 0.1 full scale: about -20 dBTP
    quiet = _handler(demo, "on_gain_db")(loaded, stem.id, -6, TARGET, False)[c.meter_md]
    assert "meter-over" not in quiet and "ceiling" not in quiet.split("**Export")[0]
    loud = _handler(demo, "on_gain_db")(loaded, stem.id, 24, TARGET, False)[c.meter_md]
    now = loud.split("  \n")[0]
    assert '<span class="meter-over">' in now and "over the -1.0 dBTP ceiling" in now
    report = {"ceiling_dbtp": -1.0, "target_lufs": None}
    at_ceiling = {"empty": False, "lufs": -10.0, "true_peak_dbtp": -1.0, "master": report}
    assert "meter-over" not in views.meter_markdown(at_ceiling, "no normalisation")


def test_a_typed_scrub_time_shows_its_frame_to_the_millisecond(demo, loaded, told):
    c = demo_components(demo)
    assert {"input", "release"} <= _triggers(demo, c.frame)
    live = _handler(demo, "on_scrub_live")(loaded, 2.5)
    assert live[c.overlay] is not None and c.frame not in live    # never rewrites while typing
    out = _handler(demo, "on_scrub")(loaded, 0.8967168)
    assert out[c.frame] == 0.897 and abs(loaded.frame_time_s - 0.8967168) < 1e-9
    assert _handler(demo, "on_scrub")(loaded, 99.0)[c.frame] == 4.0      # within the video
    assert c.frame not in _handler(demo, "on_scrub")(loaded, 1.5)         # already as typed
    for duration_s in (4.0, 1.23456, 0.3, 0.01):
        step = video.scrub_step_s(duration_s)
        assert step > 0 and abs(step * 1000 - round(step * 1000)) < 1e-9
    slider = video.video_updates(c, loaded)[c.frame]
    assert slider.step == video.scrub_step_s(4.0)


def test_the_project_name_is_editable_and_comes_back_with_the_project(demo, loaded, told,
                                                                       monkeypatch, tmp_path):
    from app.session import Session

    c = demo_components(demo)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    assert by_id["project-name"] is c.project_name and c.project_name.value == "Untitled"
    _keep_a_take(loaded, monkeypatch)
    on_name = _handler(demo, "on_project_name")
    assert on_name(loaded, "  Harbour   scene\t2 ") == "Harbour scene 2"   # shown as kept
    assert loaded.project.name == "Harbour scene 2"
    assert on_name(loaded, "Harbour scene 2") == gr.skip()
    saved = loaded.save_project_zip()
    assert saved.name.startswith("harbour-scene-2-")
    other = Session(work_root=tmp_path / "w2", autosave_root=tmp_path / "a2")
    try:
        out = _handler(demo, "on_project_load")(other, str(saved), TARGET, False)
        assert out[c.project_name] == "Harbour scene 2"
    finally:
        other.close()
    assert on_name(loaded, "   ") == "Untitled" and loaded.project.name == "Untitled"
