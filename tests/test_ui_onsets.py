"""The onsets lane and tap-along's snapping: what the lane holds is what generation gets.

Builds the studio and calls its handlers (as test_ui_studio does); generation is a stand-in that
records the request (as in test_ui_session)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from app import onsets_widget
from foley_core.errors import FoleyError, OnsetError
from foley_core.events import snap_onsets
from test_ui_studio import _handler, demo, loaded, told  # noqa: F401  (shared fixtures)


@pytest.fixture
def requests(monkeypatch):
    """generate() stand-in: records each request; reports the onsets it was given."""
    import foley_core.generate

    seen = []

    def fake(request, **kw):
        seen.append(request)
        n = int(round(request.duration_s * 16000))
        report = types.SimpleNamespace(
            seeds=[request.seed], model="fake", curve_r_before=None, curve_r_after=None,
            onsets_s=None if request.onsets_s is None else list(request.onsets_s),
            reference=None, to_json=lambda: {"onsets_s": request.onsets_s})
        return types.SimpleNamespace(audios=[np.full(n, 0.1, np.float32)], sr=16000, report=report)

    monkeypatch.setattr(foley_core.generate, "generate", fake)
    return seen


def _lane(sess, onsets, **extra):
    value = json.loads(sess.onsets_json)
    value.update(onsets_s=onsets, **extra)
    return json.dumps(value)


def test_the_lane_is_on_the_page_with_tap_along(demo):
    ids = [getattr(b, "elem_id", None) for b in demo.blocks.values()]
    assert ids.count("onset-lane") == 1 and ids.count("find-contacts-btn") == 1
    lane = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "onset-lane")
    for elem_id in ("tap-btn", "tap-speed", "tap-snap"):
        assert f'id="{elem_id}"' in lane.html_template


def test_generation_uses_exactly_the_hits_in_the_lane(demo, loaded, requests, told):
    _handler(demo, "on_lane")(loaded, _lane(loaded, [0.25, 1.5, 0.8]))
    loaded.generate(caption="a knock", steps=1, video_onsets=True)
    req = requests[-1]
    assert list(req.onsets_s) == [0.25, 0.8, 1.5]
    assert req.video_onsets is False               # the lane's hits, not the video's contacts
    assert loaded.candidate_settings["onsets_s"] == [0.25, 0.8, 1.5]
    assert told == []


def test_the_result_says_the_hits_came_from_the_lane(loaded, requests):
    from app import views

    loaded.set_onsets(_lane(loaded, [0.25, 1.5]))
    loaded.generate(caption="a knock", steps=1)
    meta = {"onsets_s": requests[-1].onsets_s, "onsets_source": "given"}
    assert views.onsets_note(meta) == "sound starts at the onsets lane's hits (s into the selection): 0.25, 1.50"


def test_an_emptied_lane_means_no_hits(demo, loaded, requests):
    loaded.set_onsets(_lane(loaded, []))
    loaded.generate(caption="a knock", steps=1, video_onsets=True)
    assert requests[-1].onsets_s is not None and list(requests[-1].onsets_s) == []
    assert requests[-1].video_onsets is False


def test_an_untouched_lane_keeps_the_video_contacts(demo, loaded, requests):
    assert json.loads(loaded.onsets_json)["onsets_s"] is None
    loaded.generate(caption="a knock", steps=1, video_onsets=True)
    assert requests[-1].onsets_s is None and requests[-1].video_onsets is True
    # and 'Use video contacts' after editing goes back to that
    loaded.set_onsets(_lane(loaded, [0.5]))
    loaded.set_onsets(_lane(loaded, None))
    loaded.generate(caption="a knock", steps=1, video_onsets=True)
    assert requests[-1].onsets_s is None and requests[-1].video_onsets is True


@pytest.mark.parametrize("value, words", [
    ("{not json", "could not be read"),
    ("[1, 2]", "could not be read"),
    (json.dumps({"onsets_s": ["a"]}), "other than times"),
    (json.dumps({"onsets_s": [0.5, 2.5]}), "outside the 2.00 s selection"),
    (json.dumps({"onsets_s": [-0.1]}), "outside"),
])
def test_a_lane_value_that_cannot_be_used_is_refused_and_nothing_changes(
        demo, loaded, requests, told, value, words):
    loaded.set_onsets(_lane(loaded, [0.4]))
    with pytest.raises(OnsetError, match=words):
        loaded.set_onsets(value)
    assert issubclass(OnsetError, FoleyError)
    assert loaded.lane_onsets() == pytest.approx([0.4])
    # through the page: a message, and the lane shows what is kept
    out = _handler(demo, "on_lane")(loaded, value)
    assert told and words in told[-1][1]
    assert json.loads(out)["onsets_s"] == pytest.approx([0.4])


def test_taps_snap_to_contacts_when_asked(demo, loaded):
    loaded.events_s = [1.3, 2.0]                      # contacts in video time: 0.3 and 1.0 s
    out = _handler(demo, "on_lane")(loaded, _lane(loaded, [0.35, 0.7, 1.07], tapped=True, snap=True))
    assert json.loads(out)["onsets_s"] == pytest.approx([0.3, 0.7, 1.0])
    assert loaded.lane_onsets() == pytest.approx([0.3, 0.7, 1.0])
    loaded.set_onsets(_lane(loaded, [0.35], tapped=True, snap=False))
    assert loaded.lane_onsets() == pytest.approx([0.35])


def test_hits_stay_where_they_are_in_the_video_when_the_selection_moves(loaded):
    loaded.set_onsets(_lane(loaded, [0.5, 1.5]))      # video 1.5 and 2.5 s
    loaded.set_selection(2.0, 3.5)
    assert loaded.lane_onsets() == pytest.approx([0.5])
    assert json.loads(loaded.onsets_json)["onsets_s"] == pytest.approx([0.5])


def test_a_stem_keeps_its_hits_and_loading_its_settings_brings_them_back(demo, loaded, requests):
    loaded.set_onsets(_lane(loaded, [0.2, 1.1]))
    loaded.generate(caption="a knock", steps=1)
    stem = loaded.keep_candidate(0)
    assert stem.settings.onsets_s == [0.2, 1.1] and stem.settings.video_onsets is False
    loaded.set_onsets(_lane(loaded, None))
    loaded.set_selection(0.0, 4.0)
    loaded.load_stem_settings(stem.id)
    assert loaded.selection == (1.0, 3.0)
    assert json.loads(loaded.onsets_json)["onsets_s"] == pytest.approx([0.2, 1.1])
    # a stem made from the video's contacts leaves the lane untouched
    loaded.set_onsets(_lane(loaded, None))
    loaded.generate(caption="a thud", steps=1, video_onsets=True)
    other = loaded.keep_candidate(0)
    loaded.set_onsets(_lane(loaded, [0.9]))
    loaded.load_stem_settings(other.id)
    assert json.loads(loaded.onsets_json)["onsets_s"] is None


def test_find_contacts_needs_a_region_then_fills_the_lane(demo, loaded, told, monkeypatch):
    import foley_core.generate

    _handler(demo, "on_find_contacts")(loaded)
    assert told and "Mark the object" in told[-1][1]
    monkeypatch.setattr(loaded, "generation_mask", lambda: np.ones((120, 160), np.float32))
    monkeypatch.setattr(foley_core.generate, "video_contact_onsets",
                        lambda *a, **k: [0.4, 1.2])
    loaded.find_contacts()
    lane = json.loads(loaded.onsets_json)
    assert lane["contacts_s"] == pytest.approx([0.4, 1.2]) and lane["onsets_s"] is None


def test_snap_onsets():
    assert snap_onsets([0.1, 0.52, 0.9], [0.5, 0.95]) == pytest.approx([0.1, 0.5, 0.95])
    # outside the tolerance: kept as tapped
    assert snap_onsets([0.5], [0.59]) == pytest.approx([0.5])
    assert snap_onsets([0.5], [0.579]) == pytest.approx([0.579])
    # two taps near one contact: the closer one takes it, the other stays
    assert snap_onsets([0.48, 0.53], [0.5]) == pytest.approx([0.5, 0.53])
    assert snap_onsets([], [0.5]) == [] and snap_onsets([0.3], []) == pytest.approx([0.3])
    assert snap_onsets([0.3], [0.33], tol_s=0.01) == pytest.approx([0.3])


def test_lane_value_round_trips():
    value = onsets_widget.lane_value(start_s=1.0, duration_s=2.0, contacts_s=[0.5],
                                     onsets_s=[1.5, 0.25])
    assert onsets_widget.parse_lane_value(value, 2.0)["onsets_s"] == [0.25, 1.5]
    assert onsets_widget.parse_lane_value(None, 2.0)["onsets_s"] is None


def _bursts(path, times_s, seconds=2.0, sr=22050):
    import soundfile as sf

    rng = np.random.default_rng(0)
    x = np.zeros(int(seconds * sr), np.float32)
    for t in times_s:                      # a 'tk': a short decaying noise burst
        i = int(t * sr)
        n = int(0.08 * sr)
        x[i:i + n] += (0.6 * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.015 * sr))).astype(np.float32)
    sf.write(path, x, sr)
    return path


def test_a_vocal_sketch_sets_the_curve_and_the_hits_that_generation_gets(demo, loaded, requests, told,
                                                                         tmp_path):
    out = _handler(demo, "on_sketch")(loaded, str(_bursts(tmp_path / "tk.wav", [0.3, 0.9, 1.5])))
    assert set(out) and told == [("info", told[0][1])] and "3 hit(s)" in told[0][1]
    loaded.generate(caption="a knock", steps=1, video_onsets=True)
    req = requests[-1]
    assert len(req.onsets_s) == 3 and np.all(np.abs(np.asarray(req.onsets_s) - [0.3, 0.9, 1.5]) <= 0.03)
    assert req.video_onsets is False and req.curve is not None
    # the curve is the sketch's own (foley_core.sketch), placed from the selection's start
    from foley_core import audio_io
    from foley_core.sketch import sketch_conditions

    expected, _ = sketch_conditions(*audio_io.read_audio(str(tmp_path / "tk.wav")), 2.0)
    times, values = (np.asarray(v, float) for v in req.curve)
    assert values.size == expected.size and np.allclose(values, expected, atol=1e-3)
    assert np.allclose(times, (np.arange(expected.size) + 0.5) / 10, atol=1e-6)


def test_a_silent_sketch_is_refused_and_changes_nothing(demo, loaded, told, tmp_path):
    import soundfile as sf

    before = (loaded.curve_json, loaded.onsets_json)
    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    _handler(demo, "on_sketch")(loaded, str(tmp_path / "silence.wav"))
    assert told and "silent" in told[-1][1]
    assert (loaded.curve_json, loaded.onsets_json) == before


def test_a_span_of_a_stem_is_remade_with_its_settings_and_its_audio_as_the_take(demo, loaded, requests,
                                                                               told):
    loaded.set_onsets(_lane(loaded, [0.4]))
    loaded.generate(caption="a knock", steps=1)
    stem = loaded.keep_candidate(0)
    loaded.set_selection(0.0, 4.0)                 # the editor moved on since
    handler = _handler(demo, "on_span_regen")
    handler(loaded, stem.id, 0.5, 1.2, 1)
    req = requests[-1]
    assert (req.start_s, req.duration_s) == (1.0, 2.0)          # the stem's own selection
    audio, sr = req.take
    assert sr == stem.sr and np.array_equal(audio, stem.audio)
    assert tuple(req.regenerate_span_s) == (0.5, 1.2)
    assert req.caption == "a knock" and list(req.onsets_s) == [0.4]
    n = len(requests)
    handler(loaded, stem.id, 1.5, 2.5, 1)          # past the stem's 2 s
    assert len(requests) == n and "inside the stem" in told[-1][1]
    handler(loaded, stem.id, None, 1.0, 1)
    assert len(requests) == n and "span to remake" in told[-1][1]
