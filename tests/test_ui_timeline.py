"""The timeline widget's value (built from a project, read back from the page) and its handler:
a lane's edit changes the stem through the session (one undo step), a bad value is refused in
words. The page side (playing, monitoring, dragging) is tests/test_timeline_browser.py."""

from __future__ import annotations

import json
import urllib.parse

import gradio as gr
import numpy as np
import pytest

from app import timeline_widget
from app.timeline_widget import parse_timeline_value, stem_entries, timeline_value
from foley_core import audio_io
from foley_core import project as fproject
from foley_core.errors import MixError
from foley_core.request import GenerationRequest
from test_ui_studio import _handler, _keep_a_take, demo, demo_components, loaded, told  # noqa: F401

TARGET = "streaming (-14 LUFS)"


def _stem(seconds=2.0, sr=16000, **mix):
    audio = np.full(int(seconds * sr), 0.1, np.float32)
    stem = fproject.Stem.new(audio, sr, GenerationRequest(caption="a knock"),
                             name="knock")
    for key, value in mix.items():
        setattr(stem.mix, key, value)
    return stem


def _edit(value: str, stem_id: str, **changes) -> str:
    data = json.loads(value)
    data["edit"] = {"stem_id": stem_id, "changes": changes}
    return json.dumps(data)


def test_the_value_places_each_stem_and_spans_video_and_stems():
    stems = [_stem(offset_s=1.0), _stem(seconds=3.0, offset_s=8.5, trim_start_s=0.5,
                                        trim_end_s=2.0, fade_in_s=0.1, mute=True)]
    entries = stem_entries(stems, lambda s: f"audio/{s.id}.wav")
    value = json.loads(timeline_value(stems=entries, video_duration_s=6.0, fps=24.0,
                                      selection=(1.0, 3.0), selected_id=stems[1].id,
                                      ceiling_dbtp=-1.0))
    # the second stem keeps 0.5-2.0 s of its audio from 8.5 s: the timeline ends at 10 s
    assert value["duration_s"] == pytest.approx(10.0)
    assert value["video_duration_s"] == 6.0 and value["fps"] == 24.0
    assert value["selection"] == [1.0, 3.0] and value["selected"] == stems[1].id
    assert value["ceiling_dbtp"] == -1.0 and value["edit"] is None and value["select"] is None
    a, b = value["stems"]
    assert a["url"] == f"audio/{stems[0].id}.wav" and a["source_duration_s"] == 2.0
    assert (b["offset_s"], b["trim_start_s"], b["trim_end_s"], b["fade_in_s"], b["mute"]) == \
        (8.5, 0.5, 2.0, 0.1, True)
    assert a["colour"] != b["colour"]
    # no video: as long as the stems (at least 1 s), the default frame rate for nudges
    bare = json.loads(timeline_value(stems=[], video_duration_s=None, fps=None, selection=None,
                                     selected_id="gone", ceiling_dbtp=-2.0))
    assert bare["duration_s"] == 1.0 and bare["fps"] == timeline_widget.DEFAULT_FPS
    assert bare["selected"] is None and bare["video_duration_s"] is None


def test_reading_the_page_s_edits():
    assert parse_timeline_value(None) == {"edit": None, "select": None}
    assert parse_timeline_value('{"stems": [], "edit": null}') == {"edit": None, "select": None}
    got = parse_timeline_value({"edit": {"stem_id": "a1", "changes": {
        "offset_s": 2, "trim_end_s": None, "mute": True}}})
    assert got["edit"] == {"stem_id": "a1", "changes": {"offset_s": 2.0, "trim_end_s": None,
                                                         "mute": True}}
    assert parse_timeline_value({"edit": {"stem_id": "a1", "delete": True}})["edit"] == \
        {"stem_id": "a1", "delete": True}
    assert parse_timeline_value({"select": "b2"}) == {"edit": None, "select": "b2"}


@pytest.mark.parametrize("value, words", [
    ("{not json", "could not be read"),
    ("[1, 2]", "could not be read"),
    ({"select": 3}, "not a stem"),
    ({"edit": {"changes": {"offset_s": 1}}}, "names no stem"),
    ({"edit": {"stem_id": "a", "changes": {}}}, "changes nothing"),
    ({"edit": {"stem_id": "a", "changes": {"caption": "x"}}}, "cannot change a stem's caption"),
    ({"edit": {"stem_id": "a", "changes": {"offset_s": "2"}}}, "offset (s) must be a number"),
    ({"edit": {"stem_id": "a", "changes": {"offset_s": float("nan")}}}, "must be a number"),
    ({"edit": {"stem_id": "a", "changes": {"gain_db": True}}}, "gain (dB) must be a number"),
    ({"edit": {"stem_id": "a", "changes": {"mute": 1}}}, "mute must be on or off"),
])
def test_a_value_that_is_not_the_timeline_s_is_refused_in_words(value, words):
    with pytest.raises(MixError) as err:
        parse_timeline_value(value)
    assert words in str(err.value)


def test_a_lane_edit_goes_through_the_session_and_can_be_undone(demo, loaded, told,
                                                                monkeypatch):
    c = demo_components(demo)
    stem = _keep_a_take(loaded, monkeypatch)
    on_timeline = _handler(demo, "on_timeline")
    shown = c.timeline.value
    # the server's own value coming back (no edit in it) does nothing
    assert on_timeline(loaded, shown, TARGET, False) == gr.skip()
    steps = len(loaded.history)
    out = on_timeline(loaded, _edit(shown, stem.id, offset_s=2.25, fade_in_s=0.2),
                      TARGET, False)
    mix = loaded.stem(stem.id).mix
    assert (mix.offset_s, mix.fade_in_s) == (2.25, 0.2)
    assert len(loaded.history) == steps + 1                   # one edit, one undo step
    assert out[c.offset] == 2.25 and out[c.mix_audio] is not None
    lane = json.loads(out[c.timeline])
    assert lane["edit"] is None and lane["stems"][0]["offset_s"] == 2.25
    assert lane["selected"] == stem.id
    loaded.undo()
    assert loaded.stem(stem.id).mix.offset_s == pytest.approx(1.0)     # the selection start
    # out of range: refused in words, the lanes show the stem as it is
    out = on_timeline(loaded, _edit(shown, stem.id, gain_db=99), TARGET, False)
    assert told[-1] == ("warning", "Gain (dB) must be between -60 and 24; got 99.")
    assert json.loads(out[c.timeline])["stems"][0]["gain_db"] == 0.0
    # a click selects the stem in the mix controls
    out = on_timeline(loaded, json.dumps({"select": stem.id}), TARGET, False)
    assert out[c.stem_pick] == stem.id and json.loads(out[c.timeline])["selected"] == stem.id
    # Delete removes it (the session's own delete: undoable)
    out = on_timeline(loaded, json.dumps({"edit": {"stem_id": stem.id, "delete": True}}),
                      TARGET, False)
    assert loaded.project.stems == [] and json.loads(out[c.timeline])["stems"] == []
    loaded.undo()
    assert [s.id for s in loaded.project.stems] == [stem.id]


def test_the_lane_s_audio_is_the_stem_s_own_and_gradio_serves_it(demo, loaded, monkeypatch):
    from app.panels import timeline as timeline_panel

    c = demo_components(demo)
    stem = _keep_a_take(loaded, monkeypatch)
    value = json.loads(timeline_panel.value(c, loaded))
    url = value["stems"][0]["url"]
    assert url.startswith("gradio_api/file=")
    path = urllib.parse.unquote(url.split("=", 1)[1])
    # served from gradio's cache, registered with this app's blocks
    assert any(path in files for files in demo.temp_file_sets)
    audio, sr = audio_io.read_audio(path)
    assert sr == stem.sr and np.array_equal(audio.reshape(-1), stem.audio)
    # the same audio is not written again on the next update
    assert json.loads(timeline_panel.value(c, loaded))["stems"][0]["url"] == url


def test_the_widget_carries_its_transport_and_the_vendored_library(demo):
    c = demo_components(demo)
    assert c.timeline.elem_id == "timeline"
    assert 'id="transport-play"' in c.timeline.html_template
    script = c.timeline.js_on_load
    assert "WaveSurfer" in script and "foleyTransport" in script
    for name in timeline_widget.VENDOR_FILES + ("LICENSE", "VERSION.md"):
        assert (timeline_widget.VENDOR_DIR / name).is_file(), name


def _ops(value: str, page: str, *ops: dict) -> str:
    data = json.loads(value)
    data.update(page=page, ops=[{"edit": None, "select": None, **op} for op in ops])
    return json.dumps(data)


def test_reading_the_page_s_numbered_ops():
    page, ops = timeline_widget.parse_timeline_ops({"page": "p1", "ops": [
        {"nonce": 2, "select": "b2"},
        {"nonce": 1, "edit": {"stem_id": "a1", "changes": {"mute": True}}},
        {"nonce": 3, "edit": {"stem_id": "a1", "changes": {"mute": 1}}}]})
    assert page == "p1" and [op["nonce"] for op in ops] == [1, 2, 3]
    assert ops[0]["edit"] == {"stem_id": "a1", "changes": {"mute": True}} and ops[0]["error"] is None
    assert ops[1]["select"] == "b2"
    # a bad op is kept with its message: it is refused, and its nonce counts as handled
    assert ops[2]["edit"] is None and "mute must be on or off" in ops[2]["error"]
    # a request outside "ops" has no nonce
    assert timeline_widget.parse_timeline_ops({"select": "b2"})[1] == \
        [{"nonce": None, "edit": None, "select": "b2", "error": None}]
    for bad in ({"page": "p1", "ops": [{"select": "b2"}]},
                {"ops": [{"nonce": 1, "select": "b2"}]},
                {"page": "p1", "ops": [{"nonce": True, "select": "b2"}]}):
        with pytest.raises(MixError, match="not numbered"):
            timeline_widget.parse_timeline_ops(bad)


def test_an_op_is_claimed_once_per_page():
    ack = ("", 0)
    ack, fresh = timeline_widget.claim(ack, "p1", 1)
    assert fresh and ack == ("p1", 1)
    assert timeline_widget.claim(ack, "p1", 1) == (("p1", 1), False)       # sent again
    assert timeline_widget.claim(ack, "p1", 3) == (("p1", 3), True)        # a later one
    assert timeline_widget.claim(ack, "p2", 1) == (("p2", 1), True)        # a reloaded page
    assert timeline_widget.claim(ack, "p1", None) == (ack, True)           # not numbered


def test_ops_sent_again_are_applied_once_and_a_refused_one_is_acknowledged(demo, loaded, told,
                                                                           monkeypatch):
    c = demo_components(demo)
    stem = _keep_a_take(loaded, monkeypatch)
    on_timeline = _handler(demo, "on_timeline")
    shown = c.timeline.value
    steps = len(loaded.history)
    first = {"nonce": 1, "edit": {"stem_id": stem.id, "changes": {"gain_db": -6.0}}}
    out = on_timeline(loaded, _ops(shown, "p1", first), TARGET, False)
    lane = json.loads(out[c.timeline])
    assert lane["ack"] == {"page": "p1", "nonce": 1} and lane["stems"][0]["gain_db"] == -6.0
    # the page had not seen that reply: it sends the first again with a second
    second = {"nonce": 2, "edit": {"stem_id": stem.id, "changes": {"mute": True}}}
    out = on_timeline(loaded, _ops(shown, "p1", first, second), TARGET, False)
    assert len(loaded.history) == steps + 2                  # two edits, each applied once
    lane = json.loads(out[c.timeline])
    assert lane["ack"] == {"page": "p1", "nonce": 2} and lane["stems"][0]["mute"] is True
    loaded.undo()
    assert loaded.stem(stem.id).mix.mute is False          # the undo step was the second edit
    assert loaded.stem(stem.id).mix.gain_db == -6.0
    # both again, nothing new: nothing done, no reply
    assert on_timeline(loaded, _ops(shown, "p1", first, second), TARGET, False) == gr.skip()
    assert loaded.stem(stem.id).mix.mute is False
    # refused: said once, acknowledged (the page stops sending it), the lanes show the project
    bad = {"nonce": 3, "edit": {"stem_id": stem.id, "changes": {"gain_db": 99}}}
    out = on_timeline(loaded, _ops(shown, "p1", bad), TARGET, False)
    assert told[-1] == ("warning", "Gain (dB) must be between -60 and 24; got 99.")
    lane = json.loads(out[c.timeline])
    assert lane["ack"] == {"page": "p1", "nonce": 3} and lane["stems"][0]["gain_db"] == -6.0
    assert on_timeline(loaded, _ops(shown, "p1", bad), TARGET, False) == gr.skip()
    # after a refused op, the ones after it still apply; a select shows that stem
    good = {"nonce": 5, "edit": {"stem_id": stem.id, "changes": {"pan": 0.5}}}
    out = on_timeline(loaded, _ops(shown, "p1", {**bad, "nonce": 4}, good,
                                   {"nonce": 6, "select": stem.id}), TARGET, False)
    assert loaded.stem(stem.id).mix.pan == 0.5 and out[c.pan] == 0.5
    assert json.loads(out[c.timeline])["ack"]["nonce"] == 6
    # every value the server sends carries the ack (here: the stem choice's)
    from app.panels import timeline as timeline_panel
    assert json.loads(timeline_panel.value(c, loaded))["ack"] == {"page": "p1", "nonce": 6}
