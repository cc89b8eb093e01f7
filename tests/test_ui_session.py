"""Unit tests of the studio's session logic and UI helpers (no browser).

Generation is replaced by a fake engine with known output (so mixing/export/undo checks are
exact) except in one test that runs the real embedded backend for a few steps.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import types
import zipfile

import numpy as np
import pytest
import soundfile as sf

from app import curve_widget, views
from app.session import DEFAULTS, Session, demo_clips, describe_autosave, sound_library
from foley_core import constants, media
from foley_core.vision.curves import hits_curve
from foley_core.errors import (CurveError, FoleyError, MaskError, MediaError, ProjectError,
                               TimeRangeError)


class FakeResult:
    def __init__(self, audios, sr, metadata, reference_audios=None, reference_report=None):
        self.audios, self.sr, self.metadata = audios, sr, metadata
        self.reference_audios = reference_audios
        # the typed report the session reads: the same values as `metadata`
        self.report = types.SimpleNamespace(
            seeds=metadata["seeds"], model=metadata["model"], curve_r_before=metadata["curve_r_before"],
            curve_r_after=metadata["curve_r_after"], onsets_s=metadata["onsets_s"],
            reference=reference_report, to_json=lambda: dict(metadata))


def request_call(request) -> dict:
    """A GenerationRequest as the keyword call it replaces (`mask` is its region)."""
    call = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
    call["mask"] = call.pop("region")
    return call


@pytest.fixture
def fake_engine(monkeypatch):
    """generate() stand-in: a 1 kHz tone of the selection's length, amplitude 0.5 x (1 + k/10)
    for candidate k; records the calls."""
    calls = []

    def fake_generate(request, **run_kw):
        kw = {**request_call(request), **run_kw}
        calls.append(kw)
        n = int(round(kw["duration_s"] * constants.MODEL_SR))
        t = np.arange(n) / constants.MODEL_SR
        audios = [(0.5 * (1 + k / 10) * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
                  for k in range(kw["candidates"])]
        if kw.get("progress"):
            for i in range(kw["steps"]):
                kw["progress"](i + 1, kw["steps"])
        ref_meta = ref_audios = ref_report = None
        if kw.get("reference") is not None:
            # what the engine reports about a reference (its own metadata helper)
            from foley_core.generate import _reference_report
            from foley_core.library.references import CandidateReference

            ref = kw["reference"]
            ref_report = _reference_report(CandidateReference(ref.audio, ref.sr, ref.entry, "loop"),
                                           strength=kw["strength"], steps_run=1, fit="auto",
                                           detail_restored=False, placed=False, full_band=False)
            ref_meta = ref_report.to_json()
            ref_audios = [np.full(n, 0.25, np.float32) for _ in audios]
        return FakeResult(audios, constants.MODEL_SR, {"reference": ref_meta,
            "seeds": [kw["seed"] + k for k in range(kw["candidates"])], "model": "fake",
            "duration_s": kw["duration_s"], "sr": constants.MODEL_SR,
            "curve_r_before": None, "curve_r_after": None,
            # what the engine reports about onsets: the video's contacts unless turned off
            "onsets_s": [0.25] if kw.get("video_onsets", True) and kw.get("video") else None,
            "onsets_source": "video" if kw.get("video_onsets", True) and kw.get("video") else None,
            "instructions": {"given": ["text"], "obeyed_by_model": [], "ignored_by_model": ["text"],
                             "enforced_after": []}}, ref_audios, ref_report)

    import foley_core.generate

    monkeypatch.setattr(foley_core.generate, "generate", fake_generate)
    return calls


@pytest.fixture
def sess(tmp_path):
    s = Session(work_root=tmp_path / "work", autosave_root=tmp_path / "autosave")
    yield s
    s.close()


@pytest.fixture
def square_video(media_factory):
    # 4 s, a white square moving and reversing at 1.0 and 2.5 s (contacts), with clicks there.
    return media_factory("make_video", "square.mp4", seconds=4.0, fps=25, size=(160, 120),
                         audio_events_s=[1.0, 2.5])


# ---------------------------------------------------------------------- curve widget value
def test_curve_value_round_trip():
    v = curve_widget.curve_value([0, 0.5, 1.0], [0.0, 1.0, 0.25], duration_s=1.0, start_s=2.0,
                                 motion=[0.1, np.nan, 0.3], events_s=[0.4])
    data = json.loads(v)
    assert data["duration_s"] == 1.0 and data["start_s"] == 2.0
    assert data["background"]["motion"] == [0.1, 0.3]      # non-finite dropped
    t, vals = curve_widget.curve_points(v)
    np.testing.assert_allclose(t, [0, 0.5, 1.0])
    np.testing.assert_allclose(vals, [0.0, 1.0, 0.25])
    cleared = curve_widget.with_curve(v, None, None)
    assert curve_widget.curve_points(cleared) is None
    assert json.loads(cleared)["events_s"] == [0.4]


@pytest.mark.parametrize("bad", ["{not json", '{"times_s": [0, 1], "values": [1]}', "[1, 2]",
                                 '{"times_s": ["a", "b"], "values": [0, 1]}'])
def test_curve_value_garbage_is_a_curve_error(bad):
    with pytest.raises(CurveError):
        curve_widget.curve_points(bad)


def test_hits_curve_peaks_at_contacts():
    times, values = hits_curve([0.5, 1.5], duration_s=2.0, decay_s=0.25)
    assert len(times) == 20 and values.max() <= 1.0 and values.min() >= 0.0
    peaks = times[np.argsort(values)[-2:]]
    assert sorted(np.round(peaks, 2)) == [0.55, 1.55]     # the grid point at each contact
    assert values[times < 0.5].max() < 0.1                  # quiet before the first hit
    # decays over decay_s: one decay time after the hit frame's start it is down to 1/e
    i = int(np.argmin(np.abs(times - 0.75)))
    assert values[i] == pytest.approx(np.exp(-(0.75 - 0.05 - 0.5) / 0.25), abs=1e-9)
    # another grid rate, no contacts (the floor), and a contact before the curve (its tail)
    t20, v20 = hits_curve([], duration_s=1.0, fps=20, floor=0.1)
    assert len(t20) == 20 and t20[0] == pytest.approx(0.025) and np.all(v20 == 0.1)
    _, tail = hits_curve([-0.1], duration_s=1.0, decay_s=0.25)
    assert 0.5 < tail[0] < 1.0 and np.all(np.diff(tail[tail > 0.05]) < 0)
    with pytest.raises(TimeRangeError):
        hits_curve([0.5], duration_s=0.0)


# ---------------------------------------------------------------------- video, selection, frames
def test_load_demo_video_sets_selection_and_loudness_trace(sess, shared_dir):
    clips = demo_clips()
    assert set(clips) >= {"mecavideo balle1", "mecavideo balle jbart"}
    info = sess.load_video(clips["mecavideo balle1"])
    assert sess.selection == (0.0, pytest.approx(info.duration_s))
    data = json.loads(sess.curve_json)
    assert data["duration_s"] == pytest.approx(info.duration_s, abs=1e-3)
    # the clip has a soundtrack: its loudness is drawn behind the curve, 10 points per second
    assert len(data["background"]["loudness"]) == pytest.approx(info.duration_s * 10, abs=1)
    frame = sess.frame(0.8)
    assert frame.shape == (info.height, info.width, 3) and frame.dtype == np.uint8


def test_bad_video_and_ranges(sess, tmp_path, square_video):
    bad = tmp_path / "not_video.mp4"
    bad.write_text("hello")
    with pytest.raises(MediaError):
        sess.load_video(bad)
    with pytest.raises(MediaError, match="Load a video first"):
        sess.frame(0.0)
    sess.load_video(square_video)
    with pytest.raises(TimeRangeError, match="outside the video"):
        sess.set_selection(1.0, 9.0)
    with pytest.raises(TimeRangeError, match="too short"):
        sess.set_selection(1.0, 1.1)
    assert sess.set_selection(1.0, 3.0) == (1.0, 3.0)


def test_selection_change_keeps_curve_in_video_time(sess, square_video):
    sess.load_video(square_video)
    sess.set_curve(curve_widget.with_curve(sess.curve_json, [0.0, 2.0, 4.0], [0.0, 1.0, 0.0]))
    sess.set_selection(1.0, 3.0)
    t, v = curve_widget.curve_points(sess.curve_json)
    # the point drawn at 2.0 s of the video is now at 1.0 s of the selection
    assert 1.0 in list(np.round(t, 3)) and v[list(np.round(t, 3)).index(1.0)] == 1.0


# ---------------------------------------------------------------------- region
def test_painted_mask_becomes_video_size_binary_mask(sess, square_video):
    info = sess.load_video(square_video)
    layer = np.zeros((60, 80, 4), np.uint8)          # the editor at half size
    layer[10:20, 30:50, 3] = 255
    region = sess.set_drawn_mask([layer])
    assert region.kind == "image" and region.mask.shape == (info.height, info.width)
    assert set(np.unique(region.mask)) == {0.0, 1.0}
    assert region.mask[20:40, 60:100].all() and region.mask.sum() == 20 * 40
    overlay = sess.overlay(1.0)
    plain = sess.frame(1.0)
    changed = np.any(overlay != plain, axis=-1)
    assert changed[25, 80] and not changed[100, 10]   # tinted inside the mask only
    with pytest.raises(MaskError, match="empty"):
        sess.set_drawn_mask([np.zeros((60, 80, 4), np.uint8)])
    sess.clear_region()
    assert sess.region.kind == "none"
    sess.undo_region()
    assert sess.region.kind == "image"


def test_seed_from_motion_follows_the_square(sess, square_video):
    import media_fixtures

    info = sess.load_video(square_video)
    tracks = sess.propose_region("motion")
    assert tracks and sess.region.kind == "track"
    # the track's mask at 2.0 s covers the square's centre at that time
    frame = media.frame_at(square_video, 2.0)
    cx = media_fixtures.square_center_x(frame) * info.width      # a fraction of the width
    mask = sess.region_mask_at(2.0)
    assert mask.shape == (info.height, info.width)
    assert mask[:, int(round(cx))].any()
    assert abs(np.argwhere(mask)[:, 1].mean() - cx) < 10
    # contacts from the motion make the 'hits' preset
    assert sess.events_s, "no contacts found from the square's motion"
    assert min(abs(e - 1.0) for e in sess.events_s) < 0.15
    t, v = curve_widget.curve_points(sess.curve_preset("hits"))
    assert v.max() == pytest.approx(1.0) and len(t) == 40
    with pytest.raises(MaskError, match="no track"):
        sess.select_track("nope")


def test_curve_presets_and_validation(sess, square_video):
    sess.load_video(square_video)
    t, v = curve_widget.curve_points(sess.curve_preset("fade in"))
    assert v[0] == 0.0 and v[-1] == 1.0 and t[-1] == pytest.approx(4.0, abs=0.05)
    assert sess.curve_preset("none") and curve_widget.curve_points(sess.curve_json) is None
    with pytest.raises(MaskError, match="No contacts"):
        sess.curve_preset("hits")                      # no region proposed yet
    with pytest.raises(CurveError):                     # values are relative 0..1
        sess.set_curve(curve_widget.with_curve(sess.curve_json, [0, 1], [0.5, 1.7]))


# ---------------------------------------------------------------------- generate, stems, undo
def test_generate_keep_mix_and_undo(sess, square_video, fake_engine):
    sess.load_video(square_video)
    sess.set_selection(0.5, 1.5)
    sess.curve_preset("fade out")
    fracs = []
    cands = sess.generate(caption="  a ball   hits a wall ", seed=7, steps=4, candidates=2,
                          progress=lambda f, d: fracs.append((f, d)))
    call = fake_engine[-1]
    assert call["caption"] == "a ball hits a wall" and call["start_s"] == 0.5
    assert call["duration_s"] == pytest.approx(1.0) and call["curve"] is not None
    assert call["video"] == str(sess.video.path) and call["conform"] == 1.0
    assert len(cands) == 2 and [c.seed for c in cands] == [7, 8]
    assert fracs[-1][0] == 1.0 and "step 4/4" in fracs[-1][1] and "left" in fracs[0][1]

    assert call["video_onsets"] is True                 # sounds start at the video's contacts
    stem = sess.keep_candidate(1)
    assert stem.mix.offset_s == 0.5 and stem.settings.seed == 8 and stem.settings.curve is not None
    assert stem.settings.video_onsets is True and stem.settings.onsets_s == [0.25]
    sess.set_selection(2.5, 3.5)
    sess.generate(caption="a door slams", seed=1, steps=2, video_onsets=False)
    assert fake_engine[-1]["video_onsets"] is False
    stem2 = sess.keep_candidate(0)
    assert stem2.settings.video_onsets is False and stem2.settings.onsets_s is None
    assert sess.stem_settings(stem2.id)["video_onsets"] is False
    assert [s.mix.offset_s for s in sess.project.stems] == [0.5, 2.5]

    mix = sess.mix()
    sr = constants.EXPORT_SR
    rms = lambda a, b: float(np.sqrt(np.mean(mix[int(a * sr):int(b * sr)] ** 2)))  # noqa: E731
    assert rms(0.6, 1.4) > 0.1 and rms(2.6, 3.4) > 0.1 and rms(1.6, 2.4) < 1e-4

    sess.update_stem(stem2.id, gain_db=-6.0, mute=True)
    assert sess.project.stems[1].mix.mute and sess.project.stems[1].mix.gain_db == -6.0
    assert rms_of(sess.mix(), 2.6, 3.4) < 1e-4
    sess.undo()
    assert not sess.project.stems[1].mix.mute
    sess.delete_stem(stem.id)
    assert [s.id for s in sess.project.stems] == [stem2.id]
    sess.undo()
    assert [s.id for s in sess.project.stems] == [stem.id, stem2.id]

    # load settings back into the editor
    st = sess.load_stem_settings(stem.id)
    assert st["caption"] == "a ball hits a wall" and st["seed"] == 8
    assert sess.selection == (0.5, 1.5)
    assert curve_widget.curve_points(sess.curve_json) is not None

    # replace keeps the mix settings of the replaced stem
    sess.update_stem(stem.id, pan=-0.5)
    sess.generate(caption="another take", seed=3, steps=2)
    new = sess.keep_candidate(0, replace_id=stem.id)
    assert sess.project.stems[0].id == new.id and new.mix.pan == -0.5


def rms_of(mix, a, b, sr=constants.EXPORT_SR):
    return float(np.sqrt(np.mean(mix[int(a * sr):int(b * sr)] ** 2)))


def test_bad_stem_edits_and_inputs(sess, square_video, fake_engine):
    sess.load_video(square_video)
    with pytest.raises(FoleyError, match="Nothing generated"):
        sess.keep_candidate(0)
    with pytest.raises(FoleyError, match="[Cc]aption"):
        sess.generate(caption="   ")
    with pytest.raises(FoleyError, match="steps"):
        sess.generate(caption="x", steps=0)
    sess.generate(caption="tick", steps=1)
    stem = sess.keep_candidate(0)
    with pytest.raises(FoleyError, match="Pan must be between"):
        sess.update_stem(stem.id, pan=3)
    with pytest.raises(FoleyError, match="Gain"):
        sess.update_stem(stem.id, gain_db="loud")
    with pytest.raises(FoleyError, match="trim end"):
        sess.update_stem(stem.id, trim_start_s=1.0, trim_end_s=0.5)
    with pytest.raises(ProjectError, match="no longer exists"):
        sess.delete_stem("deadbeef")
    with pytest.raises(ProjectError, match="Nothing to undo"):
        Session(work_root=sess.work_dir.parent).undo()


def test_exports_and_project_round_trip(sess, square_video, fake_engine, tmp_path):
    sess.load_video(square_video)
    with pytest.raises(ProjectError, match="no stems"):
        sess.export_wav(-23.0)
    sess.set_selection(1.0, 2.0)
    sess.generate(caption="a click", seed=5, steps=2)
    sess.keep_candidate(0)
    wav, report = sess.export_wav(-23.0)
    info = sf.info(wav)
    assert (info.samplerate, info.channels, info.subtype) == (48000, 2, "PCM_24")
    assert info.duration == pytest.approx(4.0, abs=0.01)
    assert report["lufs_after"] == pytest.approx(-23.0, abs=0.5)
    mp4 = sess.export_mp4(-23.0)
    assert media.probe_video(mp4).has_audio
    assert media.probe_video(mp4).duration_s == pytest.approx(4.0, abs=0.1)
    with zipfile.ZipFile(sess.export_stems()) as zf:
        assert "README.txt" in zf.namelist() and "mix.wav" in zf.namelist()

    saved = sess.save_project_zip()
    other = Session(work_root=tmp_path / "w2", autosave_root=tmp_path / "a2")
    other.load_project_file(saved)
    assert len(other.project.stems) == 1
    a, b = sess.project.stems[0], other.project.stems[0]
    assert a.settings.caption == b.settings.caption and a.mix.offset_s == b.mix.offset_s
    np.testing.assert_allclose(a.audio, b.audio, atol=1e-4)
    assert other.video is not None and other.selection == pytest.approx((1.0, 2.0))

    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ProjectError, match="not a studio project"):
        other.load_project_file(junk)
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(ProjectError, match="no project.json"):
        other.load_project_file(empty)


def test_autosave_and_restore(sess, square_video, fake_engine, tmp_path):
    sess.load_video(square_video)
    assert describe_autosave(sess.autosave_dir) is None       # a video but no stems yet
    sess.generate(caption="a bell", steps=1)
    sess.keep_candidate(0)
    text = describe_autosave(sess.autosave_dir)
    assert text and text.startswith("1 stem(s) on square.mp4")
    fresh = Session(work_root=tmp_path / "w3", autosave_root=tmp_path / "a3")
    fresh.restore(sess.autosave_dir)
    assert [s.settings.caption for s in fresh.project.stems] == ["a bell"]
    assert fresh.video is not None
    assert describe_autosave(tmp_path / "nowhere") is None


# ---------------------------------------------------------------------- views
def test_views_stem_rows_and_meter(sess, square_video, fake_engine):
    sess.load_video(square_video)
    sess.set_selection(1.0, 2.0)
    sess.generate(caption="a <b>bold</b> knock", steps=1)
    sess.keep_candidate(0)
    rows = views.stems_rows(sess.project)
    assert rows[0][:6] == [1, "a <b>bold</b> knock", 0.0, 0.0, 1.0, 1.0]
    meter = sess.meter(-23.0)
    text = views.meter_markdown(meter, "EBU R128 broadcast (-23 LUFS)")
    assert "LUFS" in text and "dBTP" in text and "-23.0 LUFS" in text
    img = views.spectrogram_png(sess.candidates[0].audio, 16000,
                                curve=(np.array([0, 1.0]), np.array([1.0, 0.0])), duration_s=1.0,
                                start_s=1.0)
    assert img.ndim == 3 and img.shape[2] == 3 and img.std() > 10


def test_model_notice_says_what_is_ignored():
    text = views.model_notice("audioldm2")
    assert "Ignores" in text and "mask" in text and "16 kHz" in text
    assert "not available" in views.model_notice("no-such-model")


def test_model_notice_points_to_what_works(monkeypatch):
    from types import SimpleNamespace

    from foley_core import backends

    def stub(obeys):
        return SimpleNamespace(obeys=frozenset(obeys), description="embedded",
                               ignores=frozenset(backends.INSTRUCTIONS) - frozenset(obeys),
                               capabilities=backends.Capabilities())

    monkeypatch.setattr(backends, "get_backend", lambda name: stub({"curve"}))
    text = views.model_notice("embedded")
    assert "Follows: loudness curve" in text and "reference sound" in text and "draw the curve" in text
    monkeypatch.setattr(backends, "get_backend", lambda name: stub(set(backends.INSTRUCTIONS)))
    text = views.model_notice("embedded")
    assert "Ignores" not in text and "reference sound" not in text and "draw the curve" not in text


# ---------------------------------------------------------------------- one real generation
def test_real_embedded_generation(sess, square_video):
    import torch

    torch.set_num_threads(1)
    sess.load_video(square_video)
    sess.set_selection(0.5, 2.0)
    sess.curve_preset("fade in")
    cands = sess.generate(caption="a ball bounces", seed=3, steps=2, candidates=1)
    assert cands[0].sr == 16000 and len(cands[0].audio) == pytest.approx(1.5 * 16000, abs=160)
    assert np.isfinite(cands[0].audio).all() and np.abs(cands[0].audio).max() > 0
    m = cands[0].metrics                                      # conform moved it towards the curve
    assert m["curve_r_after"] > m["curve_r_before"]
    from foley_core.backends import get_backend

    # The label the user sees is the backend's own: "untrained" exactly when no trained weights.
    backend = get_backend("embedded")
    assert sess.generation_meta["model"] == backend.description
    assert ("untrained" in backend.description) == (not backend.trained)


def test_source_setting_picks_library_sounds_or_the_model_alone(sess, square_video):
    import torch

    torch.set_num_threads(1)
    sess.load_video(square_video)
    sess.set_selection(0.5, 1.5)
    assert DEFAULTS["source"] == "auto" and DEFAULTS["source"] in constants.SOURCES
    sess.generate(caption="a door slams", steps=2)
    assert sess.generation_meta["source"] == "library" and sess.candidate_settings["source"] == "auto"
    sess.generate(caption="a door slams", steps=2, source="model")
    assert sess.generation_meta["source"] == "model" and sess.generation_meta["references"] is None
    assert sess.candidate_settings["source"] == "model"
    with pytest.raises(FoleyError, match="source"):
        sess.generate(caption="a door slams", steps=2, source="scratch")
    sess.choose_reference(sound_library().search("door", k=1)[0].entry.id)
    with pytest.raises(FoleyError, match="No reference"):
        sess.generate(caption="a door slams", steps=2, source="model")


def test_notices_say_what_the_default_does():
    from types import SimpleNamespace

    from foley_core import backends

    # a model that starts from sounds but does not understand text: the caption still picks the sound
    backend = SimpleNamespace(obeys=frozenset({"curve", "video"}),
                              capabilities=backends.Capabilities(reference=True),
                              ignores=frozenset(backends.INSTRUCTIONS) - {"curve", "video"})
    text = views.source_notice(backend)
    assert "caption picks the sound" in text and "library clip" in text
    assert "From scratch" in text and "not what the caption names" in text
    assert "the loudness curve" in text and "the video" in text
    no_ref = views.source_notice(SimpleNamespace(obeys=frozenset({"text"}), ignores=frozenset(),
                                                 capabilities=backends.Capabilities()))
    assert "cannot start from a sound" in no_ref and "not what the caption names" not in no_ref
    # the first screen's model notice no longer lists the caption among what is ignored
    notice = views.model_notice("embedded")
    assert "caption picks the sound" in notice
    ignores = re.search(r"\*\*Ignores:\*\* ([^.]*)\.", notice)
    assert ignores is None or "caption" not in ignores[1].replace("negative caption", "")
    assert "generated from the caption" not in views.reference_markdown(None, 0.4)
    assert "caption picks library sounds" in views.reference_markdown(None, 0.4)
    # a take's notice: which clips the caption picked, and "ignored: text" only from scratch
    cands = [SimpleNamespace(metrics={})]
    instr = {"given": ["text", "video"], "obeyed_by_model": ["video"], "ignored_by_model": ["text"]}
    library_take = views.result_markdown({"source": "library", "instructions": instr,
                                          "references": [{"caption": "a wooden door closes", "id": "d1"}]}, cands)
    assert 'the caption picked the library sound(s) "a wooden door closes"' in library_take
    assert "ignored" not in library_take
    scratch_take = views.result_markdown({"source": "model", "instructions": instr}, cands)
    assert "from scratch" in scratch_take and "the model ignored: text" in scratch_take


def test_cancel_stops_a_running_generation(sess, square_video):
    from foley_core.errors import GenerationCancelled

    sess.load_video(square_video)
    seen = []

    def progress(frac, desc):
        seen.append(frac)
        sess.cancel()                  # what the Cancel button does, from another thread

    with pytest.raises(GenerationCancelled):
        sess.generate(caption="a long rumble", steps=20, progress=progress)
    assert len(seen) < 20 and not sess.candidates
    sess.cancel_event.clear()


def test_detection_offline_says_what_is_missing(sess, square_video):
    from foley_core.errors import ModelUnavailableError

    sess.load_video(square_video)
    with pytest.raises(ModelUnavailableError, match="YOLO-World"):
        sess.propose_region("detection", vocabulary="square")
    assert sess.region.kind == "none"           # nothing changed


# ---------------------------------------------------------------------- reference sounds
def _tone_file(path, seconds=1.0, sr=22050):
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), sr)
    return path


def test_reference_search_pick_generate_keep_and_load_back(sess, square_video, fake_engine):
    from foley_core.generate import DEFAULT_REFERENCE_STRENGTH

    sess.load_video(square_video)
    assert sess.reference is None and sess.reference_strength == DEFAULT_REFERENCE_STRENGTH
    hits = sess.search_references("footsteps")
    assert 1 <= len(hits) <= 10 and hits[0].entry.category == "footsteps"
    only = sess.search_references("footsteps", category="impact")
    assert only and {h.entry.category for h in only} == {"impact"}
    browse = sess.search_references("", category="footsteps")
    assert browse and {h.entry.category for h in browse} == {"footsteps"}
    with pytest.raises(FoleyError, match="category"):
        sess.search_references("steps", category="no such category")
    labels = views.reference_choices(hits)
    assert labels[0][1] == hits[0].entry.id and "footsteps" in labels[0][0] and " s · " in labels[0][0]

    # no reference: nothing about references reaches the engine
    sess.set_selection(1.0, 2.0)
    sess.generate(caption="steps", steps=2, strength=0.3)
    assert fake_engine[-1]["reference"] is None and fake_engine[-1]["strength"] is None
    plain = sess.keep_candidate(0)
    assert plain.settings.reference is None

    clip = hits[0].entry
    choice = sess.choose_reference(clip.id)
    assert choice.from_library and choice.entry.id == clip.id
    preview = sess.reference_preview_wav()
    assert sf.info(preview).duration == pytest.approx(clip.seconds, abs=0.01)
    assert clip.id in sess.reference_attribution() and "Licence" in sess.reference_attribution()
    assert "strength 0.5" in views.reference_markdown(sess.reference, 0.5)

    sess.generate(caption="footsteps on gravel", steps=2, strength=0.5, candidates=2)
    call = fake_engine[-1]
    assert call["reference"].entry.id == clip.id and call["strength"] == 0.5
    assert sess.candidate_reference_wav(1) is not None
    stem = sess.keep_candidate(1)
    ref = stem.settings.reference
    assert (ref.clip_id, ref.strength, ref.caption) == (clip.id, 0.5, clip.caption)
    assert ref.licence and ref.attribution
    rows = views.stems_rows(sess.project)
    assert rows[0][-1] == "" and rows[1][-1].startswith(f"library: {clip.caption}")
    assert "strength 0.5" in rows[1][-1]
    with zipfile.ZipFile(sess.export_stems()) as zf:
        text = zf.read("ATTRIBUTION.txt").decode()
    assert clip.id in text and clip.caption in text

    # loading settings back restores the reference and its strength (and 'none' for a plain stem)
    sess.clear_reference()
    sess.set_reference_strength(0.9)
    st = sess.load_stem_settings(stem.id)
    assert st["reference_missing"] is None and st["strength"] == 0.5
    assert sess.reference.entry.id == clip.id and sess.reference_strength == 0.5
    st = sess.load_stem_settings(plain.id)
    assert st["reference"] is None and sess.reference is None
    assert st["strength"] == DEFAULT_REFERENCE_STRENGTH

    # the project keeps the reference through save and open
    other = Session(work_root=sess.work_dir.parent / "other", autosave_root=sess.work_dir.parent / "oa")
    other.load_project_file(sess.save_project_zip())
    assert other.project.stems[1].settings.reference.clip_id == clip.id
    other.close()


def test_an_empty_search_looks_for_the_caption(sess):
    from foley_core.errors import CaptionError

    by_caption = sess.search_references("", caption="glass shatters")
    assert by_caption and by_caption[0].entry.category == "glass"
    ids = [h.entry.id for h in by_caption]
    assert [h.entry.id for h in sess.search_references("glass shatters")] == ids
    assert [h.entry.id for h in sess.search_references("  ", caption=" glass  shatters ")] == ids
    # a typed query wins over the caption; a category narrows the caption's search
    assert sess.search_references("footsteps", caption="glass shatters")[0].entry.category == "footsteps"
    narrowed = sess.search_references("", category="impact", caption="glass shatters")
    assert narrowed and {h.entry.category for h in narrowed} == {"impact"}
    # neither query nor caption: a category lists its clips, no category is a clear message
    assert {h.entry.category for h in sess.search_references("", category="door", caption="")} == {"door"}
    with pytest.raises(CaptionError, match="or a caption"):
        sess.search_references("", caption="   ")


def test_reference_upload_and_bad_files(sess, square_video, fake_engine, tmp_path):
    sess.load_video(square_video)
    own = sess.upload_reference(_tone_file(tmp_path / "my knock.wav", seconds=0.8))
    assert not own.from_library and own.entry.seconds == pytest.approx(0.8, abs=0.01)
    assert "your file" in views.reference_markdown(own, 0.6)
    bad = tmp_path / "broken.wav"
    bad.write_text("this is not audio")
    with pytest.raises(MediaError):
        sess.upload_reference(bad)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(8000, np.float32), 16000)
    with pytest.raises(MediaError):
        sess.upload_reference(silent)
    with pytest.raises(MediaError, match="No sound file"):
        sess.upload_reference("")
    assert sess.reference is own                       # a bad upload leaves the choice alone
    with pytest.raises(FoleyError, match="strength"):
        sess.set_reference_strength(1.5)
    with pytest.raises(FoleyError, match="strength"):
        sess.generate(caption="a knock", steps=1, strength="lots")
    with pytest.raises(FoleyError, match="No library clip"):
        sess.choose_reference("no-such-clip")

    sess.generate(caption="a knock", steps=1, strength=0.0)
    stem = sess.keep_candidate(0)
    assert views.stems_rows(sess.project)[0][-1].startswith("own file: my knock")
    # the upload going away (it is a temporary file) loses nothing: the session keeps a copy
    (tmp_path / "my knock.wav").unlink()
    sess.clear_reference()
    st = sess.load_stem_settings(stem.id)
    assert st["reference_missing"] is None and sess.reference.entry.path.name == "my knock.wav"
    # a project folder that lost its copy of the sound: the user is told, nothing is chosen
    shutil.rmtree(sess.autosave_dir / "references")
    other = Session(work_root=tmp_path / "w-other", autosave_root=tmp_path / "a-other")
    other.restore(sess.autosave_dir)
    other.set_reference_strength(0.9)
    st = other.load_stem_settings(stem.id)
    assert "my knock" in st["reference_missing"] and other.reference is None
    assert st["strength"] == 0.0 and other.reference_strength == 0.0
    other.close()


def test_track_region_is_stored_with_its_track_id(sess, square_video, fake_engine, tmp_path):
    from foley_core import project as fproject

    sess.load_video(square_video)
    tracks = sess.propose_region("motion")
    sess.generate(caption="a square", steps=1)
    stem = sess.keep_candidate(0)
    assert stem.settings.region.kind == "track" and stem.settings.region.track_id == tracks[0].id
    assert isinstance(tracks[0].id, str) and not tracks[0].id.isdigit()
    folder = tmp_path / "proj"
    fproject.save_project(sess.project, folder)
    assert fproject.load_project(folder).stems[0].settings.region.track_id == tracks[0].id
    # projects written when the id was a number still open (the number becomes text)
    data = json.loads((folder / "project.json").read_text())
    data["stems"][0]["settings"]["region"]["track_id"] = 3
    (folder / "project.json").write_text(json.dumps(data))
    assert fproject.load_project(folder).stems[0].settings.region.track_id == "3"
    data["stems"][0]["settings"]["region"]["track_id"] = 3.5
    (folder / "project.json").write_text(json.dumps(data))
    with pytest.raises(ProjectError, match="track_id"):
        fproject.load_project(folder)


def test_trim_in_the_stem_editor(sess, square_video, fake_engine):
    sess.load_video(square_video)
    sess.set_selection(1.0, 3.0)
    sess.generate(caption="a hum", steps=1)
    stem = sess.keep_candidate(0)
    sess.update_stem(stem.id, trim_start_s=0.5, trim_end_s=1.5)
    m = sess.project.stems[0].mix
    assert (m.trim_start_s, m.trim_end_s) == (0.5, 1.5)
    assert views.trim_text(m) == "0.5–1.5" and views.stems_rows(sess.project)[0][5] == 1.0
    mix = sess.mix()
    # trimming plays source 0.5-1.5 s from the stem's offset (1.0 s): sound in 1.0-2.0 only
    assert rms_of(mix, 1.1, 1.9) > 0.1 and rms_of(mix, 2.1, 2.9) < 1e-4
    sess.update_stem(stem.id, trim_start_s=0.0, trim_end_s=None)
    assert views.trim_text(sess.project.stems[0].mix) == ""
    with pytest.raises(FoleyError, match="past the end"):
        sess.update_stem(stem.id, trim_start_s=5.0)


def test_stem_edits_obey_the_project_mix_limits(sess, square_video, fake_engine, monkeypatch):
    """The studio refuses what constants.MIX_LIMITS refuses (the limits project.json and render
    obey), not a copy of them: every edge is accepted, just past it is refused in plain words."""
    from foley_core import constants

    sess.load_video(square_video)
    sess.generate(caption="tick", steps=1)
    stem = sess.keep_candidate(0)
    for key, (label, lo, hi) in constants.MIX_LIMITS.items():
        if key.startswith("trim"):
            continue                          # checked against the stem's length as well
        for edge in (lo, hi):
            sess.update_stem(stem.id, **{key: edge})
            assert getattr(sess.stem(stem.id).mix, key) == edge
        with pytest.raises(FoleyError, match=rf"(?i)^{re.escape(label)} must be between"):
            sess.update_stem(stem.id, **{key: hi + 1})
        sess.update_stem(stem.id, **{key: 0.0})
    tighter = {**constants.MIX_LIMITS, "gain_db": ("gain (dB)", -12.0, 6.0)}
    monkeypatch.setattr(constants, "MIX_LIMITS", tighter)
    with pytest.raises(FoleyError, match=r"Gain \(dB\) must be between -12 and 6; got 10\."):
        sess.update_stem(stem.id, gain_db=10)


def test_a_48k_reference_makes_a_48k_stem_through_the_session(sess, square_video, tmp_path):
    """The real engine at strength 0 (no model): the candidate, the kept stem, the session's mix,
    its autosave and a restored session all keep the 48 kHz take and its band above 8 kHz."""
    sr = 48_000
    noise = np.random.default_rng(0).standard_normal(2 * sr)
    sf.write(tmp_path / "hiss.wav", (0.3 * noise / np.abs(noise).max()).astype(np.float32), sr)
    sess.load_video(square_video)
    sess.upload_reference(tmp_path / "hiss.wav")
    cands = sess.generate(caption="a hiss", steps=1, strength=0.0)
    assert cands[0].sr == sr and cands[0].reference_audio.shape == cands[0].audio.shape
    stem = sess.keep_candidate(0)
    assert stem.sr == sr and np.array_equal(stem.audio, cands[0].audio)

    def share_above_9k(x, rate):
        spec = np.abs(np.fft.rfft(np.asarray(x, np.float64))) ** 2
        f = np.fft.rfftfreq(len(x), 1 / rate)
        return spec[f >= 9_000].sum() / spec.sum()

    mix = sess.mix(sr=constants.EXPORT_SR)[:, 0]
    assert share_above_9k(mix, constants.EXPORT_SR) > 0.5          # white: 62 % of it lies above 9 kHz
    other = Session(work_root=tmp_path / "w-other", autosave_root=tmp_path / "a-other")
    other.restore(sess.autosave_dir)
    assert other.project.stems[0].sr == sr
    assert np.array_equal(other.project.stems[0].audio, stem.audio)
    other.close()
