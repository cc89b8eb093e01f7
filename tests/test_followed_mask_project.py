"""A painted mask carried with its object is stored with its shape: after saving and loading
the project, opening it in the studio ("Load its settings") and regenerating from the stored
request, the region's per-frame masks are exactly the ones the take was made with, not the
boxes around them (project format 4, `Region.track_masks`)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from foley_core import project as proj, region_spec
from foley_core.backends import Capabilities, WindowOutput
from foley_core.errors import ProjectError
from foley_core.generate import generate
from foley_core.project import GenerationRequest, Project, Region, Stem, load_project, save_project
from foley_core.vision.follow import FOLLOW_SOURCE
from foley_core.vision.mask_follow import follow_mask
from foley_core.vision.regions import masks_for_frames
from foley_core.vision.tracks import Track, TrackFrame
from stub_backends import StubBackend
from test_project import full_project

W, H, FPS, SECONDS = 160, 120, 25.0, 2.0
SR = 16_000
V3 = Path(__file__).parent / "data" / "projects" / "v3"


def _ring_scene():
    """A ring (outer radius 16, hole of radius 8) bouncing across a grey frame (floor
    contacts at 2/3 and 4/3 s), its frames, true masks and true boxes. A box around it would
    cover the hole."""
    n = int(SECONDS * FPS)
    times = np.arange(n) / FPS
    xs, ys = np.linspace(30.0, 125.0, n), 84.0 - 60.0 * np.abs(np.sin(np.linspace(0, 3 * np.pi, n)))
    frames = np.full((n, H, W, 3), 110, np.uint8)
    masks = np.zeros((n, H, W), np.uint8)
    for k in range(n):
        centre = (int(round(xs[k])), int(round(ys[k])))
        cv2.circle(masks[k], centre, 16, 1, -1)
        cv2.circle(masks[k], centre, 8, 0, -1)
        frames[k][masks[k] > 0] = (200, 60, 40)
    boxes = np.stack([np.round(xs) - 16, np.round(ys) - 16, np.round(xs) + 17, np.round(ys) + 17], axis=1)
    return frames, times, masks.astype(np.float32), boxes


@pytest.fixture(scope="module")
def followed():
    """The ring painted on the middle frame, carried along its known path (no tracker needed to
    test storage): the live Track and its stored Region."""
    frames, times, masks, boxes = _ring_scene()
    k = len(frames) // 2
    path = Track(id="painted", label="painted object", source=FOLLOW_SOURCE, score=1.0,
                 frames=[TrackFrame(float(t), b) for t, b in zip(times, boxes)], width=W, height=H)
    track = follow_mask(frames, times, masks[k], frame_index=k, track=path)
    stored = region_spec.mask_spec("track", track_id=track.id, times_s=track.times_s, boxes=track.boxes,
                                   masks=[f.mask for f in track.frames], source=track.source)
    return frames, times, track, stored


def _seen(region, times, size=(W, H)) -> np.ndarray:
    return masks_for_frames(region, times, video_wh=(W, H), frame_size=size)


def _ring_project(region: Region) -> Project:
    p = Project(name="ring")
    p.add_stem(Stem(np.full(8000, 0.1, np.float32), SR, name="ring", settings=GenerationRequest(
        caption="a ring rolls", region=region, start_s=0.0, duration_s=SECONDS)))
    return p


def test_a_followed_ring_is_stored_and_reloaded_with_its_hole(followed, tmp_path):
    frames, times, track, stored = followed
    live = _seen(Region(track=track), times)
    assert stored.track_masks is not None and stored.track_source == FOLLOW_SOURCE
    # the stored form already gives exactly what the live track gave
    np.testing.assert_array_equal(_seen(stored, times), live)

    save_project(_ring_project(stored), tmp_path / "p")
    doc = json.loads((tmp_path / "p" / "project.json").read_text())
    region_doc = doc["stems"][0]["settings"]["region"]
    assert doc["version"] == proj.FORMAT_VERSION == 4
    assert region_doc["track_masks"].endswith("_track.npz") and region_doc["track_source"] == FOLLOW_SOURCE
    assert (tmp_path / "p" / region_doc["track_masks"]).is_file()
    assert tmp_path / "p" / region_doc["track_masks"] in \
        sum(proj.project_files(tmp_path / "p").values(), [])      # render may not overwrite it

    reloaded = load_project(tmp_path / "p").stems[0].settings.region
    assert reloaded == stored
    # bit-exact at the video's size and at a model's size
    np.testing.assert_array_equal(_seen(reloaded, times), live)
    np.testing.assert_array_equal(_seen(reloaded, times, (64, 48)), _seen(Region(track=track), times, (64, 48)))

    # what format 3 kept (the boxes) fills the ring's hole on every frame
    boxes_only = _seen(Region(track_id=stored.track_id, track_boxes=stored.track_boxes), times)
    k = len(times) // 2
    cy, cx = np.argwhere(boxes_only[k] > 0.5).mean(axis=0).round().astype(int)
    assert live[k, cy, cx] == 0 and boxes_only[k, cy, cx] == 1
    assert not np.array_equal(boxes_only, live)


def test_saving_again_keeps_the_masks_file_and_undo_copies_share_it(followed, tmp_path, monkeypatch):
    _, _, _, stored = followed
    p = _ring_project(stored)
    save_project(p, tmp_path / "p")
    npz = next((tmp_path / "p" / "stems").glob("*_track.npz"))
    before = npz.stat().st_mtime_ns
    save_project(p, tmp_path / "p")
    assert npz.stat().st_mtime_ns == before          # content-addressed: not written twice
    assert p.copy().stems[0].settings.region.track_masks is stored.track_masks
    # autosave (after every action) hashes a region's masks once, not at every save
    hashed = []
    real = region_spec.track_masks_arrays
    monkeypatch.setattr(region_spec, "track_masks_arrays", lambda m: hashed.append(1) or real(m))
    saver = proj.Autosaver(tmp_path / "autosave")
    saver.save(p)
    first = len(hashed)
    saver.save(p.copy())
    assert first >= 1 and len(hashed) == first
    # a stem whose region is no longer a track leaves no masks file behind
    p.stems[0].settings = p.stems[0].settings.replace(region=None)
    save_project(p, tmp_path / "p")
    assert not list((tmp_path / "p" / "stems").glob("*_track.npz"))


class MaskRecorder(StubBackend):
    """Follows the video and the region at the video's own size; records the masks each
    window was given and answers seeded noise."""

    name = "mask-recorder"
    frame_size = (W, H)
    video_fps = FPS
    obeys = frozenset({"video", "mask"})
    ignores = frozenset({"text", "negative", "curve"})
    description = "mask recorder (stand-in)"
    capabilities = Capabilities(onsets=True)

    def __init__(self):
        self.masks: list[np.ndarray] = []

    def generate_window(self, *, duration_s, seeds, video=None, **kw):
        self.masks.append(np.array(video.masks))
        n = round(duration_s * self.sr)
        return WindowOutput(audios=np.stack([np.random.default_rng(s).standard_normal(n) * 0.1
                                             for s in seeds]).astype(np.float32), sr=self.sr)


def _video(frames, tmp_path: Path) -> Path:
    from foley_core.media import write_frames_mp4

    return write_frames_mp4(frames, tmp_path / "ring.mp4", fps=FPS)


def test_a_stems_stored_request_runs_again_with_the_same_moving_shape(followed, tmp_path):
    frames, times, track, _ = followed
    video = _video(frames, tmp_path)
    backend = MaskRecorder()
    request = GenerationRequest(caption="a ring rolls", video=video, duration_s=SECONDS, seed=5,
                                source="model", region=Region(track=track), model=backend)
    first = generate(request)
    # the studio keeps the region in its stored form (what `Session` does on keep)
    kept = request.replace(region=region_spec.mask_spec(
        "track", track_id=track.id, times_s=track.times_s, boxes=track.boxes,
        masks=[f.mask for f in track.frames], source=track.source)).for_stem(first.report)
    p = Project(name="ring")
    p.add_stem(Stem(first.audios[0], first.sr, settings=kept))
    save_project(p, tmp_path / "p")
    settings = load_project(tmp_path / "p").stems[0].settings
    assert settings == kept

    again = generate(settings.replace(video=video, model=backend))
    assert len(backend.masks) == 2
    np.testing.assert_array_equal(backend.masks[1], backend.masks[0])
    np.testing.assert_array_equal(again.audios[0], first.audios[0])
    # the stored request keeps the onsets used; found again from the reloaded region they are
    # the same, timed from the followed object's centre as the first time
    assert settings.onsets_s == first.report.onsets_s and len(first.report.onsets_s) == 2
    found = generate(settings.replace(video=video, model=backend, onsets_s=None))
    assert found.report.onsets_s == first.report.onsets_s
    np.testing.assert_array_equal(backend.masks[2], backend.masks[0])
    # what format 3 kept (the boxes alone) would not give the model the same masks
    generate(settings.replace(video=video, model=backend, region=Region(
        track_id=kept.region.track_id, track_boxes=kept.region.track_boxes)))
    assert not np.array_equal(backend.masks[3], backend.masks[0])


def test_the_studio_reopens_a_followed_painted_mask_with_its_shape(tmp_path):
    """Follow a painted object in the studio, keep a take, save the project as a zip, open it
    in another session and load the stem's settings: the region is the same moving shape, and
    a new take sees exactly the masks the first one did."""
    from app.session import Session
    from foley_core.media import write_frames_mp4
    from foley_lab.data.simulate import SoundSpec, simulate_sounds

    sc = simulate_sounds([SoundSpec(np.array([0.5, 1.2, 1.9]))], 2.4, seed=7, fps=25.0,
                         size=(120, 160), n_distractors=1)
    video = write_frames_mp4(sc.frames, tmp_path / "scene.mp4", fps=sc.fps)
    backend = MaskRecorder()
    first = Session(work_root=tmp_path / "w1", autosave_root=tmp_path / "a1")
    second = Session(work_root=tmp_path / "w2", autosave_root=tmp_path / "a2")
    try:
        first.load_video(video)
        first.set_selection(0.0, 2.0)
        k = sc.n_frames // 2
        layer = np.zeros((*sc.masks[k].shape, 4), np.uint8)
        layer[sc.masks[k] > 0.5] = (255, 60, 40, 255)
        first.follow_drawn_mask([layer], k / sc.fps)
        first.generate(caption="a thud", steps=1, seed=3, source="model", model=backend)
        stem = first.keep_candidate(0)
        assert stem.settings.region.track_masks is not None
        archive = first.save_project_zip()
        with zipfile.ZipFile(archive) as zf:
            assert any(n.endswith("_track.npz") for n in zf.namelist())

        second.load_project_file(archive)
        assert second.region.kind == "none"
        st = second.load_stem_settings(stem.id)
        assert st["region_missing"] is None and second.region.kind == "track"
        assert second.region.track.source == first.region.track.source
        times = np.arange(50) / sc.fps
        for t in times:
            np.testing.assert_array_equal(second.region_mask_at(t), first.region_mask_at(t))
        second.generate(caption="a thud", steps=1, seed=3, source="model", model=backend)
        np.testing.assert_array_equal(backend.masks[1], backend.masks[0])
        # its contacts are found again as they were: from the followed object's centre
        assert second.find_contacts() == first.find_contacts() != []
        # undo brings back the region the editor had before the settings were loaded
        second.undo()
        assert second.region.kind == "none"
    finally:
        first.close()
        second.close()


def test_a_version_3_project_folder_opens_and_is_saved_as_version_4(tmp_path):
    # tests/data/projects/v3 was saved by the code that wrote format version 3 (make_v3.py
    # there): full_project(), whose track region format 3 kept as boxes, and a stem made from
    # the user's own sound
    folder = tmp_path / "v3"
    shutil.copytree(V3, folder)
    assert json.loads((folder / "project.json").read_text())["version"] == 3
    loaded, expected = load_project(folder), full_project()
    assert len(loaded.stems) == 4
    assert (loaded.name, loaded.selection, loaded.export) == (expected.name, expected.selection, expected.export)
    for got, want in zip(loaded.stems, expected.stems):
        assert (got.name, got.sr, got.settings, got.mix, got.metrics) == \
            (want.name, want.sr, want.settings, want.mix, want.metrics)
        np.testing.assert_allclose(got.audio, want.audio, atol=1e-4)
    track = loaded.stems[2].settings.region
    assert track.kind == "track" and track.track_masks is None and track.track_source is None
    assert track.track_boxes == ((0.0, 1, 2, 30, 40), (0.25, 5, 2, 35, 40))
    kept = next((folder / "references").glob("*/my knock.wav"))
    assert loaded.stems[3].settings.reference.path == str(kept.absolute())

    save_project(loaded, tmp_path / "v4")
    doc = json.loads((tmp_path / "v4" / "project.json").read_text())
    assert doc["version"] == proj.FORMAT_VERSION == 4
    assert doc["stems"][2]["settings"]["region"]["track_masks"] is None
    again = load_project(tmp_path / "v4")
    assert [s.settings for s in again.stems[:3]] == [s.settings for s in loaded.stems[:3]]


def _bad_runs(path: Path) -> None:
    arrays = dict(np.load(path))
    arrays["counts"] = arrays["counts"] + 1
    np.savez_compressed(path, **arrays)


def _one_frame_less(path: Path) -> None:
    arrays = dict(np.load(path))
    arrays["starts"] = arrays["starts"][:-1]
    arrays["counts"] = arrays["counts"][:arrays["starts"][-1]]
    np.savez_compressed(path, **arrays)


MASKS_DAMAGE = {
    "missing": (lambda f: f.unlink(), "is missing its track masks file"),
    "not a zip": (lambda f: f.write_bytes(b"not an npz"), r"is damaged \(not a masks file"),
    "truncated": (lambda f: f.write_bytes(f.read_bytes()[:200]), "is damaged"),
    "runs that do not fill the grid": (_bad_runs, "do not cover"),
    "a frame short": (_one_frame_less, "masks for"),
    "a pickle": (lambda f: np.savez(f.with_suffix(""), size=np.array([object()], object)), "is damaged"),
}


@pytest.mark.parametrize("case", sorted(MASKS_DAMAGE))
def test_a_missing_or_damaged_masks_file_is_named_not_a_traceback(case, followed, tmp_path):
    save_project(_ring_project(followed[3]), tmp_path / "p")
    npz = next((tmp_path / "p" / "stems").glob("*_track.npz"))
    damage, message = MASKS_DAMAGE[case]
    damage(npz)
    with pytest.raises(ProjectError, match=message) as err:
        load_project(tmp_path / "p")
    assert npz.name in str(err.value) and "stem 'ring'" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_masks_file_outside_the_project_is_refused(followed, tmp_path):
    save_project(_ring_project(followed[3]), tmp_path / "p")
    doc = json.loads((tmp_path / "p" / "project.json").read_text())
    npz = tmp_path / "p" / doc["stems"][0]["settings"]["region"]["track_masks"]
    shutil.copyfile(npz, tmp_path / "elsewhere.npz")
    doc["stems"][0]["settings"]["region"]["track_masks"] = "../elsewhere.npz"
    (tmp_path / "p" / "project.json").write_text(json.dumps(doc))
    with pytest.raises(ProjectError, match="outside the project folder"):
        load_project(tmp_path / "p")


def test_render_reads_a_followed_mask_project_and_names_a_damaged_masks_file(followed, tmp_path, capsys):
    from test_cli_render import in_process

    save_project(_ring_project(followed[3]), tmp_path / "p")
    code, out, err = in_process(capsys, tmp_path / "p", "--out", tmp_path / "mix.wav")
    assert code == 0 and (tmp_path / "mix.wav").is_file(), err
    npz = next((tmp_path / "p" / "stems").glob("*_track.npz"))
    npz.write_bytes(b"garbage")
    code, out, err = in_process(capsys, tmp_path / "p", "--out", tmp_path / "mix2.wav")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert npz.name in err and "stem 'ring'" in err and "Traceback" not in err
    assert not (tmp_path / "mix2.wav").exists()
