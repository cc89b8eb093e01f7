"""Stems and projects: round trip, atomic save under failure, damaged folders, autosave (foley_core.project)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from foley_core import audio_io, constants, project as proj
from foley_core.errors import CurveError, FoleyError, MaskError, ProjectError
from foley_core.project import (Autosaver, CurveSpec, GenerationRequest, Region, MixSettings, ModelSpec,
                                Project, Reference, Stem, autosave_dir, find_autosaves, load_project,
                                save_project)

SR = 16_000
SHARED = Path(__file__).resolve().parents[2] / "shared"
VIDEO = SHARED / "videos" / "mecavideo_balle1.mp4"


def tone(seconds: float, freq_hz: float = 440.0, amplitude: float = 0.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = amplitude * np.sin(2 * np.pi * freq_hz * t) * np.exp(-3 * t) + 0.01 * rng.standard_normal(t.size)
    return x.astype(np.float32)


def full_project(video: Path | None = None) -> Project:
    """A project that uses every setting (all mask kinds, curve, reference, metrics)."""
    p = Project(name="Ball drop", video_path=video, video_duration_s=1.6 if video else None,
                selection=(0.25, 1.0))
    p.export.target_lufs = -16.0
    p.export.ceiling_dbtp = -1.5
    mask_image = np.zeros((12, 16), np.float32)
    mask_image[3:9, 4:10] = 1.0
    mask_image[0, 0] = 128 / 255                   # an 8-bit grey level round-trips exactly
    p.add_stem(Stem(
        tone(1.0), SR, name="knock",
        settings=GenerationRequest(
            caption="a ball hits the floor", negative_caption="music, speech", seed=1234, steps=30,
            text_scale=4.5, video_scale=1.5, curve_scale=6.5, conform=0.8,
            model=ModelSpec("embedded", "foley-ldm-v1"),
            region=Region(kind="image", image=mask_image),
            curve=CurveSpec.from_values(np.array([0.0, 0.2, 1.0, 0.5, 0.1], np.float32), start_s=0.25),
            reference=Reference("0ad_impact_3", "audio/impacts/0ad_impact_3.flac", "wood impact",
                                "CC-BY-SA-3.0", "Wildfire Games", strength=0.35, fit="loop"),
            strength=0.35, reference_fit="loop",
            start_s=0.25, duration_s=1.0, video_onsets=False, onsets_s=[0.1, 0.45]),
        mix=MixSettings(gain_db=-3.5, pan=-0.25, offset_s=0.3, trim_start_s=0.05, trim_end_s=0.9,
                        fade_in_s=0.01, fade_out_s=0.2, mute=False, solo=True),
        metrics={"loudness_r_before": 0.41, "loudness_r_after": 0.93, "notes": ["conformed"]},
    ))
    p.add_stem(Stem(tone(0.5, 880.0, seed=1), SR, settings=GenerationRequest(
        caption="footstep", region=Region(kind="box", box=(10, 20, 110, 90)), start_s=0.5, duration_s=0.5)))
    p.add_stem(Stem(tone(0.7, 220.0, seed=2), SR, settings=GenerationRequest(
        caption="whoosh", region=Region(kind="track", track_id=3,
                                        track_boxes=((0.0, 1, 2, 30, 40), (0.25, 5, 2, 35, 40)))),
        mix=MixSettings(mute=True, offset_s=-0.1)))
    return p


def snapshot(directory: Path) -> dict:
    return {str(p.relative_to(directory)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(directory.rglob("*")) if p.is_file()}


# --- stems and project objects ----------------------------------------------------------------


def test_stem_refuses_bad_audio_and_protects_shared_arrays():
    with pytest.raises(ProjectError, match="mono"):
        Stem(np.zeros((10, 2), np.float32), SR)
    with pytest.raises(ProjectError, match="NaN"):
        Stem(np.array([0.0, np.nan], np.float32), SR)
    with pytest.raises(ProjectError, match="peaks at 1.500"):
        Stem(np.array([0.0, 1.5], np.float32), SR)
    with pytest.raises(ProjectError, match="sample rate"):
        Stem(tone(0.1), 0)
    source = tone(0.1)
    stem = Stem(source, SR)
    assert stem.audio.dtype == np.float32 and not stem.audio.flags.writeable
    source[:] = 0                                   # the caller's array stays the caller's
    assert stem.audio.any()
    with pytest.raises(ValueError):
        stem.audio[0] = 1.0


def test_settings_validation():
    with pytest.raises(MaskError, match="kind"):
        Region(kind="lasso")
    with pytest.raises(MaskError, match="inverted"):
        Region(kind="box", box=(10, 10, 5, 20))
    with pytest.raises(MaskError, match="between 0 and 1"):
        Region(kind="image", image=np.full((4, 4), 2.0))
    with pytest.raises(CurveError, match="increase"):
        CurveSpec(times_s=np.array([0.0, 0.0, 1.0]), values=np.array([0.0, 0.5, 1.0]))
    with pytest.raises(CurveError, match="between 0 and 1"):
        CurveSpec.from_values(np.array([0.0, 1.5]))
    for bad in (-1.0, float("nan"), 51.0, "7", True):
        with pytest.raises(FoleyError, match="curve guidance"):
            GenerationRequest(curve_scale=bad)
    assert GenerationRequest().curve_scale is None                 # the model's own value
    for bad in ([0.2, float("nan")], [-0.5]):
        with pytest.raises(FoleyError, match="onsets"):
            GenerationRequest(onsets_s=bad)
    scale = GenerationRequest(curve_scale=np.float32(7.5)).curve_scale  # a widget's numpy scalar
    assert scale == 7.5 and type(scale) is float


def test_mix_settings_validation():
    from foley_core.mixing import MixError

    with pytest.raises(MixError, match="pan"):
        MixSettings(pan=-1.2)
    with pytest.raises(MixError, match="fade"):
        MixSettings(fade_out_s=-0.1)
    with pytest.raises(MixError, match="after the trim start"):
        MixSettings(trim_start_s=1.0, trim_end_s=0.5)
    with pytest.raises(MixError, match="finite"):
        MixSettings(gain_db=float("inf"))


def test_add_remove_move_and_duration():
    p = Project(name="t")
    a, b, c = (Stem(tone(s), SR) for s in (0.5, 1.0, 0.25))
    for s in (a, b, c):
        p.add_stem(s)
    with pytest.raises(ProjectError, match="already has"):
        p.add_stem(a)
    p.move_stem(c.id, 0)
    assert [s.id for s in p.stems] == [c.id, a.id, b.id]
    p.move_stem(c.id, 99)
    assert [s.id for s in p.stems] == [a.id, b.id, c.id]
    assert p.remove_stem(b.id) is b and len(p.stems) == 2
    with pytest.raises(ProjectError, match="no stem"):
        p.remove_stem(b.id)
    c.mix.offset_s = 2.0
    c.mix.trim_start_s = 0.05
    assert p.duration_s == pytest.approx(2.2)          # no video: the latest stem end
    assert p.mix(48_000).shape == (round(2.2 * 48_000), 2)
    p.video_duration_s = 1.5
    assert p.duration_s == 1.5 and p.mix(48_000).shape == (72_000, 2)
    assert Project().duration_s == 0.0 and Project().mix().shape == (0, 2)


def test_new_stem_is_placed_at_its_selection():
    stem = Stem.new(tone(0.5), SR, GenerationRequest(caption="door", start_s=3.25, duration_s=0.5))
    assert stem.mix.offset_s == 3.25 and stem.name == "door"


def test_copy_shares_audio_but_not_settings():
    p = full_project()
    snap = p.copy()
    assert snap == p
    assert snap.stems[0].audio is p.stems[0].audio
    assert snap.stems[0].settings.region.image is p.stems[0].settings.region.image
    snap.stems[0].mix.gain_db = 6.0
    snap.add_stem(Stem(tone(0.2), SR))
    assert p.stems[0].mix.gain_db == -3.5 and len(p.stems) == 3
    assert snap != p


# --- save / load ------------------------------------------------------------------------------


def test_round_trip_keeps_audio_and_every_setting(tmp_path):
    p = full_project()
    json_path = save_project(p, tmp_path / "proj")
    doc = json.loads(json_path.read_text())
    assert doc["format"] == "foley-studio-project" and doc["version"] == 4
    q = load_project(tmp_path / "proj")
    assert q == p
    for a, b in zip(p.stems, q.stems):
        assert b.audio.dtype == np.float32 and np.array_equal(a.audio, b.audio)
        assert a.settings == b.settings and a.mix == b.mix and a.metrics == b.metrics
    assert q.stems[0].settings.region.image[0, 0] == np.float32(128 / 255)
    assert q.export.target_lufs == -16.0 and q.selection == (0.25, 1.0)
    # curve guidance as asked: a number, or None (the model's own value) stored as null
    assert [s.settings.curve_scale for s in q.stems] == [6.5, None, None]
    assert [s["settings"]["curve_scale"] for s in doc["stems"]] == [6.5, None, None]
    assert [(s.settings.video_onsets, s.settings.onsets_s) for s in q.stems] == \
        [(False, [0.1, 0.45]), (True, None), (True, None)]
    wavs = sorted((tmp_path / "proj" / "stems").glob("*.wav"))
    assert len(wavs) == 3 and len(list((tmp_path / "proj" / "stems").glob("*_mask.png"))) == 1


def test_project_files_from_before_curve_guidance_load_with_the_models_value(tmp_path):
    p = full_project()
    save_project(p, tmp_path / "proj")
    for k in range(len(p.stems)):
        for key in ("curve_scale", "video_onsets", "onsets_s"):
            _edit_json(tmp_path / "proj", _delete(["stems", k, "settings", key]))
    q = load_project(tmp_path / "proj")
    assert [s.settings.curve_scale for s in q.stems] == [None, None, None]
    assert all(s.settings.video_onsets and s.settings.onsets_s is None for s in q.stems)
    assert q.stems[0].settings.text_scale == 4.5 and q.stems[0].audio.shape == p.stems[0].audio.shape
    q.stems[1].settings = q.stems[1].settings.replace(curve_scale=12.0)   # and a value set later is saved and read back
    save_project(q, tmp_path / "proj")
    assert [s.settings.curve_scale for s in load_project(tmp_path / "proj").stems] == [None, 12.0, None]


def test_numpy_scalars_from_widgets_and_metrics_are_stored_as_plain_json(tmp_path):
    p = full_project()
    p.stems[0].mix.gain_db = np.float32(-4.5)
    p.stems[0].mix.mute = np.bool_(True)
    p.stems[0].metrics = {"r": np.float32(0.5), "curve": np.array([0.25, 0.5])}
    save_project(p, tmp_path / "proj")
    q = load_project(tmp_path / "proj")
    assert q.stems[0].mix.gain_db == -4.5 and type(q.stems[0].mix.gain_db) is float
    assert q.stems[0].mix.mute is True
    assert q.stems[0].metrics == {"r": 0.5, "curve": [0.25, 0.5]}


def test_saving_again_rewrites_only_changed_stems_and_removes_orphans(tmp_path, monkeypatch):
    p = full_project()
    save_project(p, tmp_path / "proj")
    writes = []
    real_write = audio_io.write_wav
    monkeypatch.setattr(audio_io, "write_wav", lambda *a, **k: writes.append(a[0]) or real_write(*a, **k))
    before = snapshot(tmp_path / "proj" / "stems")
    p.stems[1].mix.gain_db = -6.0
    save_project(p, tmp_path / "proj")
    assert writes == [] and snapshot(tmp_path / "proj" / "stems") == before
    removed = p.remove_stem(p.stems[2].id)
    p.stems[0] = Stem(tone(1.0, 300.0), SR, id=p.stems[0].id, name="knock v2")   # new audio, same id
    save_project(p, tmp_path / "proj")
    assert len(writes) == 1
    names = [f.name for f in (tmp_path / "proj" / "stems").iterdir()]
    assert not any(n.startswith(removed.id) for n in names)
    assert len([n for n in names if n.endswith(".wav")]) == 2
    assert load_project(tmp_path / "proj") == p


def test_a_failed_save_keeps_the_previous_good_copy(tmp_path, monkeypatch):
    directory = tmp_path / "proj"
    good = full_project()
    save_project(good, directory)
    before = snapshot(directory)

    changed = good.copy()
    changed.name = "changed"
    changed.stems[0] = Stem(tone(1.0, 500.0), SR, id=good.stems[0].id)
    changed.add_stem(Stem(tone(0.3, 600.0), SR))
    changed.add_stem(Stem(tone(0.3, 700.0), SR))
    calls = []
    real_write = audio_io.write_wav

    def flaky_write(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(audio_io, "write_wav", flaky_write)
    with pytest.raises(ProjectError, match="No space left"):
        save_project(changed, directory)
    assert len(calls) == 2
    assert load_project(directory) == good
    assert json.loads((directory / "project.json").read_text())["name"] == "Ball drop"
    assert snapshot(directory).keys() >= before.keys()

    # and a failure while writing project.json itself
    monkeypatch.setattr(audio_io, "write_wav", real_write)

    def broken_json(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(proj, "write_text_atomic", broken_json)
    with pytest.raises(ProjectError, match="Input/output error"):
        save_project(changed, directory)
    assert load_project(directory) == good
    assert changed.modified_at == good.modified_at       # not marked as saved


def test_unserialisable_metrics_are_refused_and_nothing_is_replaced(tmp_path):
    p = full_project()
    save_project(p, tmp_path / "proj")
    before = (tmp_path / "proj" / "project.json").read_bytes()
    p.stems[0].metrics["r"] = float("nan")
    with pytest.raises(ProjectError, match="metric"):
        save_project(p, tmp_path / "proj")
    assert (tmp_path / "proj" / "project.json").read_bytes() == before


def test_refuses_to_overwrite_a_foreign_project_json(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "project.json").write_text('{"name": "someone else\'s"}')
    with pytest.raises(ProjectError, match="not a Foley studio project"):
        save_project(full_project(), tmp_path / "other")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProjectError, match="is a file"):
        save_project(full_project(), tmp_path / "file")


@pytest.mark.skipif(not VIDEO.is_file(), reason="shared videos not present")
def test_video_path_absolute_relative_and_copied(tmp_path):
    # a project folder moved together with its video finds it through the relative path
    (tmp_path / "a" / "footage").mkdir(parents=True)
    video = tmp_path / "a" / "footage" / VIDEO.name
    shutil.copyfile(VIDEO, video)
    p = full_project(video)
    save_project(p, tmp_path / "a" / "proj")
    assert load_project(tmp_path / "a" / "proj").video_path == video
    shutil.move(tmp_path / "a", tmp_path / "b")
    moved = load_project(tmp_path / "b" / "proj")
    assert moved.video_path == tmp_path / "b" / "footage" / VIDEO.name and moved.video_path.is_file()

    # copy_video puts the video inside the project folder and points at it
    p = full_project(VIDEO)
    save_project(p, tmp_path / "c", copy_video=True)
    copied = tmp_path / "c" / "media" / VIDEO.name
    assert copied.read_bytes() == VIDEO.read_bytes()
    assert p.video_path == copied and load_project(tmp_path / "c").video_path == copied


# --- the user's own reference sounds ------------------------------------------------------------


def _user_reference(path: Path) -> Reference:
    """What the studio records for a sound the user uploaded (foley_core.library.load_reference)."""
    return Reference(f"upload/{path.name}", str(path.resolve()), path.stem, "", f"your sound '{path.name}'",
                     strength=0.5)


def _stem_from(reference: Reference, seed: int = 0) -> Stem:
    return Stem(tone(0.3, seed=seed), SR, settings=GenerationRequest(caption="a knock", reference=reference))


def test_user_reference_sounds_are_copied_into_the_project_once(tmp_path):
    uploads = tmp_path / "gradio-tmp"               # where the UI's uploads live, temporarily
    (uploads / "b").mkdir(parents=True)
    knock = audio_io.write_wav(uploads / "my knock.wav", tone(0.4), SR)
    same_name = audio_io.write_wav(uploads / "b" / "my knock.wav", tone(0.4, 880.0), SR)
    sounds = knock.read_bytes(), same_name.read_bytes()
    p = full_project()                              # stem 0 has a library clip
    p.add_stem(_stem_from(_user_reference(knock)))
    p.add_stem(_stem_from(_user_reference(knock), seed=1))       # the same file again
    p.add_stem(_stem_from(_user_reference(same_name), seed=2))   # another sound, same name
    save_project(p, tmp_path / "proj")
    shutil.rmtree(uploads)

    refs = [s["settings"]["reference"] for s in json.loads((tmp_path / "proj" / "project.json").read_text())["stems"]]
    assert refs[0]["path"] == "audio/impacts/0ad_impact_3.flac" and refs[0]["file"] is None   # stored by id
    files = [r["file"] for r in refs[3:]]
    assert files[0] == files[1] != files[2]
    assert all(f.startswith("references/") and f.endswith("/my knock.wav") for f in files)
    assert len([f for f in (tmp_path / "proj" / "references").rglob("*") if f.is_file()]) == 2

    shutil.move(tmp_path / "proj", tmp_path / "moved")          # the copies travel with the folder
    q = load_project(tmp_path / "moved")
    assert q.stems[0].settings.reference == p.stems[0].settings.reference
    paths = [Path(s.settings.reference.path) for s in q.stems[3:]]
    assert all(x.is_absolute() and x.parent.parent == tmp_path / "moved" / "references" for x in paths)
    assert (paths[0].read_bytes(), paths[2].read_bytes()) == sounds
    for a, b in zip(p.stems[3:], q.stems[3:]):                   # only the path changed
        assert b.settings.reference.clip_id == a.settings.reference.clip_id == "upload/my knock.wav"
        assert b.settings.reference.attribution == a.settings.reference.attribution
        assert b.settings.reference.strength == 0.5

    # saving again in place rewrites nothing; stems that no longer use a copy take it away
    before = snapshot(tmp_path / "moved")
    save_project(q, tmp_path / "moved")
    after = snapshot(tmp_path / "moved")
    assert {k: v for k, v in after.items() if k.startswith("references")} == \
        {k: v for k, v in before.items() if k.startswith("references")}
    q.remove_stem(q.stems[4].id)
    save_project(q, tmp_path / "moved")
    assert len(list((tmp_path / "moved" / "references").iterdir())) == 2
    for stem in list(q.stems[3:]):
        q.remove_stem(stem.id)
    save_project(q, tmp_path / "moved")
    assert list((tmp_path / "moved" / "references").iterdir()) == []


def test_reference_sounds_that_are_gone_and_older_project_files(tmp_path, caplog):
    gone = tmp_path / "gone.wav"
    p = Project(name="t")
    p.add_stem(_stem_from(_user_reference(gone)))
    with caplog.at_level("WARNING", logger="foley_core.project"):
        save_project(p, tmp_path / "proj")                 # the stem is saved all the same
    assert str(gone.resolve()) in caplog.text and "no longer exists" in caplog.text
    ref = json.loads((tmp_path / "proj" / "project.json").read_text())["stems"][0]["settings"]["reference"]
    assert ref["file"] is None and ref["path"] == str(gone.resolve())
    assert load_project(tmp_path / "proj") == p

    # a file written before copies were kept (no "file") loads exactly as it was saved
    _edit_json(tmp_path / "proj", _delete(["stems", 0, "settings", "reference", "file"]))
    assert load_project(tmp_path / "proj") == p
    # a copy that went missing from the folder is not fatal: the path says where it should be
    _edit_json(tmp_path / "proj", _set(["stems", 0, "settings", "reference", "file"], "references/ab/gone.wav"))
    assert load_project(tmp_path / "proj").stems[0].settings.reference.path == \
        str(tmp_path / "proj" / "references" / "ab" / "gone.wav")
    for bad in ("../gone.wav", "/etc/passwd"):
        _edit_json(tmp_path / "proj", _set(["stems", 0, "settings", "reference", "file"], bad))
        with pytest.raises(ProjectError, match=r"reference.file points outside the project folder"):
            load_project(tmp_path / "proj")
    _edit_json(tmp_path / "proj", _set(["stems", 0, "settings", "reference", "file"], 3))
    with pytest.raises(ProjectError, match=r"reference.file should be text"):
        load_project(tmp_path / "proj")

    with pytest.raises(ProjectError, match="cannot read the sound .*gone.wav"):
        proj.store_file_by_content(gone, tmp_path / "kept")
    sound = audio_io.write_wav(tmp_path / "a.wav", tone(0.1), SR)
    (tmp_path / "not a folder").write_text("x")
    with pytest.raises(ProjectError, match="cannot keep a copy of the sound 'a.wav' in .*not a folder"):
        proj.store_file_by_content(sound, tmp_path / "not a folder")


# --- damaged projects ----------------------------------------------------------------------------


def _edit_json(directory: Path, edit) -> None:
    path = directory / "project.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _set(path: list, value):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


def _delete(path: list):
    def edit(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return edit


DAMAGE = {
    "garbled json": (lambda d: (d / "project.json").write_text('{"format": "foley-studio-project", "vers'),
                     "not valid JSON"),
    "not utf-8": (lambda d: (d / "project.json").write_bytes(b"\xff\xfe\x00garbage"), "damaged"),
    "foreign json": (lambda d: (d / "project.json").write_text('{"name": "a vscode project"}'),
                     "not a Foley studio project"),
    "json array": (lambda d: (d / "project.json").write_text("[1, 2, 3]"), "not a Foley studio project"),
    "newer version": (lambda d: _edit_json(d, _set(["version"], proj.FORMAT_VERSION + 1)), "newer Foley studio"),
    "version as text": (lambda d: _edit_json(d, _set(["version"], "1")), "whole number"),
    "gain as text": (lambda d: _edit_json(d, _set(["stems", 0, "mix", "gain_db"], "loud")),
                     r"stems\[0\].mix.gain_db should be a number"),
    "mute as number": (lambda d: _edit_json(d, _set(["stems", 1, "mix", "mute"], 1)),
                       r"stems\[1\].mix.mute should be true or false"),
    "stems not a list": (lambda d: _edit_json(d, _set(["stems"], {"a": 1})), "project.stems should be a list"),
    "missing caption": (lambda d: _edit_json(d, _delete(["stems", 0, "settings", "caption"])),
                        r"stems\[0\].settings.caption is missing"),
    "pan out of range": (lambda d: _edit_json(d, _set(["stems", 0, "mix", "pan"], 3.0)), "pan must be between"),
    "curve scale as text": (lambda d: _edit_json(d, _set(["stems", 0, "settings", "curve_scale"], "strict")),
                            r"stems\[0\].settings.curve_scale should be a number"),
    "negative curve scale": (lambda d: _edit_json(d, _set(["stems", 0, "settings", "curve_scale"], -2)),
                             r"damaged: stem 'knock': the curve guidance \(curve_scale\) must be .* got -2"),
    "bad mask kind": (lambda d: _edit_json(d, _set(["stems", 1, "settings", "region", "kind"], "lasso")),
                      "unknown mask kind"),
    "box of 3": (lambda d: _edit_json(d, _set(["stems", 1, "settings", "region", "box"], [1, 2, 3])),
                 "should be 4 numbers"),
    "NaN literal": (lambda d: (d / "project.json").write_text(
        (d / "project.json").read_text().replace('"gain_db": -3.5', '"gain_db": NaN')), "NaN"),
    "path outside": (lambda d: _edit_json(d, _set(["stems", 0, "audio", "file"], "../../etc/passwd")),
                     "outside the project folder"),
    "missing wav": (lambda d: next((d / "stems").glob("*.wav")).unlink(), "missing its audio file"),
    "garbage wav": (lambda d: [f.write_bytes(b"RIFF....WAVEjunk") for f in (d / "stems").glob("*.wav")],
                    "cannot be read"),
    "wrong sample count": (lambda d: _edit_json(d, _set(["stems", 0, "audio", "n_samples"], 5)),
                           "does not match"),
    "missing mask png": (lambda d: next((d / "stems").glob("*_mask.png")).unlink(), "missing its mask image"),
    "garbage mask png": (lambda d: next((d / "stems").glob("*_mask.png")).write_bytes(b"not a png"),
                         "mask image"),
    "duplicate ids": (lambda d: _edit_json(d, lambda doc: doc["stems"][1].update(id=doc["stems"][0]["id"])),
                      "same id"),
    # values the studio's controls cannot make: refused on load, naming the setting
    "huge gain": (lambda d: _edit_json(d, _set(["stems", 0, "mix", "gain_db"], 1e308)),
                  r"stem 'knock': the stem's gain \(dB\) must be between -60 and 24; got 1e\+308"),
    "offset past any video": (lambda d: _edit_json(d, _set(["stems", 1, "mix", "offset_s"], 1e9)),
                              r"stem 'footstep': the stem's offset \(s\) must be between -600 and 600"),
    "fade too long": (lambda d: _edit_json(d, _set(["stems", 0, "mix", "fade_in_s"], 3600)),
                      r"fade in \(s\) must be between 0 and 60"),
    "trim end far away": (lambda d: _edit_json(d, _set(["stems", 0, "mix", "trim_end_s"], 1e12)),
                          r"trim end \(s\) must be between"),
    "steps 0": (lambda d: _edit_json(d, _set(["stems", 0, "settings", "steps"], 0)),
                "the number of steps must be a whole number from 1 to 200"),
    "huge text guidance": (lambda d: _edit_json(d, _set(["stems", 0, "settings", "text_scale"], 1e308)),
                           "the text guidance must be between 0 and 50"),
    "conform above 1": (lambda d: _edit_json(d, _set(["stems", 0, "settings", "conform"], 2)),
                        "the conform strength must be between 0 and 1"),
    "seed beyond 64 bits": (lambda d: _edit_json(d, _set(["stems", 0, "settings", "seed"], 10**30)),
                            "the seed must be a whole number from"),
    "reference strength 5": (lambda d: _edit_json(d, _set(["stems", 0, "settings", "reference", "strength"], 5)),
                             "the reference strength must be between 0 and 1"),
    "selection start negative": (lambda d: _edit_json(d, _set(["stems", 0, "settings", "start_s"], -4)),
                                 "the selection start must be between 0 and 600 s"),
    "ceiling above 0": (lambda d: _edit_json(d, _set(["export", "ceiling_dbtp"], 1e308)),
                        "the true-peak ceiling must be between -20 and 0 dBTP"),
    "video of a billion seconds": (lambda d: _edit_json(d, _set(["video_duration_s"], 1e9)),
                                   "the video duration must be between 0 and 600 s"),
    "stem of ten hours": (lambda d: _edit_json(d, _set(["stems", 0, "audio", "n_samples"], 16_000 * 36_000)),
                          r"stem 'knock': its audio should last up to 600 s"),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_projects_raise_a_clear_error_and_change_nothing(case, tmp_path):
    directory = tmp_path / "proj"
    save_project(full_project(), directory)
    damage, message = DAMAGE[case]
    damage(directory)
    before = snapshot(directory)
    with pytest.raises(ProjectError, match=message):
        load_project(directory)
    assert snapshot(directory) == before


def test_settings_outside_the_studios_limits_are_refused_when_built():
    from foley_core.mixing import MixError

    for field, bad in (("gain_db", 1e308), ("gain_db", 25.0), ("offset_s", 1e9), ("offset_s", -601.0),
                       ("fade_out_s", 61.0), ("trim_start_s", 601.0)):
        with pytest.raises(MixError, match="must be between"):
            MixSettings(**{field: bad})
    for field, bad in (("steps", 0), ("steps", 201), ("steps", 2.5), ("seed", 2**64), ("text_scale", -1.0),
                       ("video_scale", 51.0), ("conform", 1.5), ("duration_s", 121.0),
                       ("start_s", float("nan")), ("onsets_s", [500.0])):
        with pytest.raises(FoleyError, match=r"must be|onsets"):
            GenerationRequest(**{field: bad})
    with pytest.raises(FoleyError, match="reference strength"):
        Reference("c", strength=-0.1)
    with pytest.raises(ProjectError, match="at most 600 s"):
        Stem(np.zeros(601 * 100, np.float32), 100)
    # the limits themselves are allowed, and numpy scalars from widgets become plain numbers
    m = MixSettings(gain_db=np.float32(24.0), pan=-1.0, offset_s=-600.0, fade_in_s=60.0)
    assert (m.gain_db, type(m.gain_db)) == (24.0, float)
    g = GenerationRequest(seed=np.int64(constants.MAX_SEED), steps=200, text_scale=50.0, conform=0.0)
    assert (g.seed, type(g.seed), g.steps) == (constants.MAX_SEED, int, 200)


def _link(link: Path, target: Path) -> None:
    if link.exists() or link.is_symlink():
        shutil.rmtree(link) if link.is_dir() and not link.is_symlink() else link.unlink()
    link.symlink_to(target)


def test_links_inside_a_project_may_not_lead_outside_it(tmp_path):
    """A stem, mask, reference or folder that is a link out of the project is refused on load:
    the check resolves links, it is not only about the text of the path."""
    directory = tmp_path / "proj"
    save_project(full_project(), directory)
    original = snapshot(directory)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = outside / "secret.wav"
    audio_io.write_wav(secret, tone(1.0), SR)

    wav = next(p for p in (directory / "stems").glob("*.wav") if p.name.startswith(
        json.loads((directory / "project.json").read_text())["stems"][0]["id"]))
    saved_wav = wav.read_bytes()
    wav.unlink()
    _link(wav, Path("/etc/passwd"))
    with pytest.raises(ProjectError, match=r"the audio file of stem 'knock' \('stems/.*\.wav'\) is a link that "
                                           r"leads outside the project folder .*/etc/passwd"):
        load_project(directory)
    _link(wav, secret)                              # a real WAV outside is refused all the same
    with pytest.raises(ProjectError, match="leads outside the project folder"):
        load_project(directory)
    wav.unlink()
    wav.write_bytes(saved_wav)

    mask = next((directory / "stems").glob("*_mask.png"))
    mask_bytes = mask.read_bytes()
    (outside / "m.png").write_bytes(mask_bytes)
    mask.unlink()
    _link(mask, outside / "m.png")
    with pytest.raises(ProjectError, match="the mask image of stem 'knock'.* leads outside"):
        load_project(directory)
    mask.unlink()
    mask.write_bytes(mask_bytes)

    # a link that stays inside the folder is fine
    shutil.copyfile(wav, directory / "copy.wav")
    wav.unlink()
    _link(wav, directory / "copy.wav")
    assert load_project(directory) == load_project(directory)
    wav.unlink()
    wav.write_bytes(saved_wav)
    (directory / "copy.wav").unlink()
    assert snapshot(directory).keys() == original.keys()

    # the whole stems/ folder as a link to another folder holding the same files
    shutil.copytree(directory / "stems", outside / "stems")
    shutil.rmtree(directory / "stems")
    _link(directory / "stems", outside / "stems")
    with pytest.raises(ProjectError, match=r"a project folder \('stems'\) is a link that leads outside"):
        load_project(directory)
    # ...and saving into such a folder neither writes there nor deletes the files it holds
    planted = outside / "stems" / "not-a-stem.txt"
    planted.write_text("the user's file")
    with pytest.raises(ProjectError, match="leads outside"):
        save_project(full_project(), directory)
    assert planted.read_text() == "the user's file"

    # project.json itself as a link out of the folder
    other = tmp_path / "other"
    save_project(Project(name="o"), other)
    (directory / "stems").unlink()
    shutil.copytree(outside / "stems", directory / "stems")
    (directory / "project.json").unlink()
    _link(directory / "project.json", other / "project.json")
    with pytest.raises(ProjectError, match=r"the project file \('project.json'\) is a link"):
        load_project(directory)


def test_a_linked_reference_folder_is_neither_read_nor_cleaned(tmp_path):
    directory = tmp_path / "proj"
    sound = audio_io.write_wav(tmp_path / "knock.wav", tone(0.3), SR)
    p = Project(name="t")
    p.add_stem(_stem_from(_user_reference(sound)))
    save_project(p, directory)
    ref_file = json.loads((directory / "project.json").read_text())["stems"][0]["settings"]["reference"]["file"]
    hash_dir = (directory / ref_file).parent
    outside = tmp_path / "music"
    shutil.copytree(hash_dir, outside)
    (outside / "song.flac").write_bytes(b"the user's song")
    shutil.rmtree(hash_dir)
    _link(hash_dir, outside)
    with pytest.raises(ProjectError, match="the reference sound of stem .* leads outside"):
        load_project(directory)
    p.remove_stem(p.stems[0].id)            # the copy is no longer used: a save cleans references/
    save_project(p, directory)
    assert (outside / "song.flac").read_bytes() == b"the user's song"


def test_the_video_may_be_outside_the_folder_but_not_a_link_out_of_media(tmp_path):
    video = tmp_path / "film.mp4"
    video.write_bytes(b"not really a video")       # load does not open the video
    directory = tmp_path / "proj"
    save_project(Project(name="v", video_path=video, video_duration_s=1.0), directory)
    assert load_project(directory).video_path == video          # beside the folder: the user's file
    save_project(load_project(directory), directory, copy_video=True)
    copied = directory / "media" / "film.mp4"
    assert load_project(directory).video_path == copied
    copied.unlink()
    _link(copied, Path("/etc/passwd"))
    with pytest.raises(ProjectError, match=r"the project's video \('media/film.mp4'\) is a link that leads outside"):
        load_project(directory)


def test_missing_or_wrong_folders(tmp_path):
    with pytest.raises(ProjectError, match="no project folder"):
        load_project(tmp_path / "nope")
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(ProjectError, match="is a file"):
        load_project(tmp_path / "file.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProjectError, match="has no project.json"):
        load_project(tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []


# --- autosave ---------------------------------------------------------------------------------


def test_autosave_is_incremental_and_restorable(tmp_path, monkeypatch):
    monkeypatch.setenv("FOLEY_STUDIO_HOME", str(tmp_path / "home"))
    assert autosave_dir().parent == tmp_path / "home" / "autosave"
    assert autosave_dir("abc") == tmp_path / "home" / "autosave" / "abc"
    writes = []
    real_write = audio_io.write_wav
    monkeypatch.setattr(audio_io, "write_wav", lambda *a, **k: writes.append(a[0]) or real_write(*a, **k))

    older = Autosaver(autosave_dir("older-session"))
    older.save(Project(name="yesterday"))
    saver = Autosaver()
    p = full_project()
    modified = p.modified_at
    saver.save(p)
    assert len(writes) == 3
    for gain in (-1.0, -2.0, -3.0):                     # actions that do not touch audio
        p.stems[0].mix.gain_db = gain
        saver.save(p)
    assert len(writes) == 3
    p.add_stem(Stem(tone(0.4, 330.0), SR))
    saver.save(p)
    assert len(writes) == 4
    assert p.modified_at == modified                    # autosave does not mark the project saved

    found = find_autosaves()
    assert [a.name for a in found] == ["Ball drop", "yesterday"]
    assert found[0].directory == saver.directory and found[0].n_stems == 4 and found[0].error is None
    restored = load_project(found[0].directory)
    restored.modified_at = p.modified_at
    assert restored == p and restored.stems[0].mix.gain_db == -3.0

    (found[1].directory / "project.json").write_text("{broken")
    broken = [a for a in find_autosaves() if a.directory == found[1].directory]
    assert len(broken) == 1 and "damaged" in broken[0].error
    saver.discard()
    assert not saver.directory.exists() and [a.name for a in find_autosaves()] == [""]
    assert find_autosaves(tmp_path / "nowhere") == []


def test_a_version_1_project_folder_still_opens_with_every_field(tmp_path):
    # tests/data/projects/v1 was saved by the code that wrote format version 1 (full_project());
    # later formats migrate it when it is read, so every setting, mix and metric survives.
    folder = tmp_path / "v1"
    shutil.copytree(Path(__file__).parent / "data" / "projects" / "v1", folder)
    assert json.loads((folder / "project.json").read_text())["version"] == 1
    loaded, expected = load_project(folder), full_project()
    assert (loaded.name, loaded.selection, loaded.export) == (expected.name, expected.selection, expected.export)
    assert len(loaded.stems) == len(expected.stems) == 3
    for got, want in zip(loaded.stems, expected.stems):
        # version 1 did not store the source: a stem with a reference starts from it again,
        # one without was made by the model alone
        assert got.settings.source == ("auto" if want.settings.reference is not None else "model")
        assert (got.name, got.sr, dataclasses.replace(got.settings, source="auto"), got.mix, got.metrics) == \
            (want.name, want.sr, want.settings, want.mix, want.metrics)
        np.testing.assert_allclose(got.audio, want.audio, atol=1e-4)
    # saved again, it is the current format and keeps the migrated sources
    save_project(loaded, tmp_path / "v2")
    assert json.loads((tmp_path / "v2" / "project.json").read_text())["version"] == proj.FORMAT_VERSION == 4
    assert [s.settings.source for s in load_project(tmp_path / "v2").stems] == ["auto", "model", "model"]


def test_a_version_2_project_folder_opens_with_its_settings_as_the_request(tmp_path):
    # tests/data/projects/v2 was saved by the code that wrote format version 2 (make_v2.py there):
    # full_project() and a stem made from the user's own sound, kept in references/
    folder = tmp_path / "v2"
    shutil.copytree(Path(__file__).parent / "data" / "projects" / "v2", folder)
    assert json.loads((folder / "project.json").read_text())["version"] == 2
    loaded = load_project(folder)
    assert len(loaded.stems) == 4
    expected = full_project()
    assert (loaded.name, loaded.selection, loaded.export) == (expected.name, expected.selection, expected.export)
    for got, want in zip(loaded.stems, expected.stems):
        assert (got.name, got.sr, got.settings, got.mix, got.metrics) == \
            (want.name, want.sr, want.settings, want.mix, want.metrics)
        np.testing.assert_allclose(got.audio, want.audio, atol=1e-4)
    own = loaded.stems[3]
    kept = next((folder / "references").glob("*/my knock.wav"))
    assert own.settings == GenerationRequest(
        caption="a knock on wood", seed=7, source="library", start_s=0.3, duration_s=0.4,
        reference=Reference("upload/my knock.wav", str(kept.absolute()), "my knock", "",
                            "your sound 'my knock.wav'", strength=0.6, fit="oneshot"),
        strength=0.6, reference_fit="oneshot", model=ModelSpec("embedded", ""))
    # version 2 kept a conform strength without a curve; the request has none then
    assert own.settings.conform is None and own.metrics == {"peak_db": -6.0}
    assert [s.settings.region.kind if s.settings.region else None for s in loaded.stems] == \
        ["image", "box", "track", None]
    # saved again, it is the current format with the request's own field names
    save_project(loaded, tmp_path / "v3")
    doc = json.loads((tmp_path / "v3" / "project.json").read_text())
    assert doc["version"] == proj.FORMAT_VERSION == 4
    assert set(doc["stems"][0]["settings"]) == {f.name for f in dataclasses.fields(GenerationRequest)} - {
        "video", "candidates", "take", "regenerate_span_s"}
    again = load_project(tmp_path / "v3")
    assert [s.settings for s in again.stems[:3]] == [s.settings for s in loaded.stems[:3]]
    # the user's sound is now the copy in the new folder; everything else is as it was
    copy = next((tmp_path / "v3" / "references").glob("*/my knock.wav"))
    assert again.stems[3].settings.reference.path == str(copy.absolute())
    assert again.stems[3].settings.replace(reference=own.settings.reference) == own.settings


def test_source_round_trips_and_is_checked(tmp_path):
    p = Project(name="src")
    p.add_stem(Stem(tone(0.2), SR, settings=GenerationRequest(caption="wind", source="library")))
    save_project(p, tmp_path / "p")
    assert load_project(tmp_path / "p").stems[0].settings.source == "library"
    with pytest.raises(FoleyError, match="source"):
        GenerationRequest(caption="wind", source="radio")
