"""Simulated audio-visual scenes (foley_lab.data.simulate) and the held-out eval set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from foley_lab.data.simulate import (DISTRACTOR_SEPARATION_S, MIN_CONTACT_GAP_FRAMES,
                                      SimulationError, SoundSpec, contact_frames, is_sustained,
                                      make_selectivity_scene, mask_centroids,
                                      render_scene_video, simulate_scene, simulate_sounds)
from foley_core.errors import MediaError
from foley_core.events import visual_contact_times

SHARED = Path(__file__).resolve().parents[2] / "shared"
HAS_SFX = (SHARED / "sfx" / "manifest.csv").is_file()
SR = 16_000


def random_events(rng, duration_s):
    return np.sort(rng.uniform(0, duration_s, size=int(rng.integers(1, 7))))


def measured_contacts(masks, fps):
    return visual_contact_times(mask_centroids(masks), fps)


def check_scene_timing(scene, onsets):
    """Target contacts measured from its mask match its events within one frame (and only
    them); distractor contacts match their own events and keep 200 ms from every onset."""
    frame = 1.0 / scene.fps
    events = scene.target_events_s
    k = np.round(events * scene.fps)
    interior = events[(k >= 1) & (k <= scene.n_frames - 2)]
    seen = measured_contacts(scene.masks, scene.fps)
    for t in interior:
        assert np.min(np.abs(seen - t)) <= frame + 1e-9, (t, seen)
    for t in seen:
        assert np.min(np.abs(events - t)) <= frame + 1e-9, (t, events)
    for listed, masks in zip(scene.distractor_events_s, scene.distractor_masks):
        d_seen = measured_contacts(masks, scene.fps)
        np.testing.assert_allclose(d_seen, listed, atol=1e-9)
        for t in d_seen:
            assert np.min(np.abs(np.asarray(onsets) - t)) >= DISTRACTOR_SEPARATION_S - 1e-9
            if events.size:
                assert np.min(np.abs(events - t)) >= DISTRACTOR_SEPARATION_S - 1e-9


# ----------------------------------------------------------------------------------------------
# timing

def test_contacts_match_events_over_many_scenes():
    rng = np.random.default_rng(0)
    n_distractor_contacts = 0
    for seed in range(60):
        duration = float(rng.choice([1.0, 2.0, 4.0]))
        onsets = random_events(rng, duration)
        scene = simulate_sounds([SoundSpec(onsets)], duration, seed=seed, fps=20, size=64)
        assert scene.mode == "discrete" and scene.n_frames == int(duration * 20)
        check_scene_timing(scene, onsets)
        n_distractor_contacts += sum(len(d) for d in scene.distractor_events_s)
        # shown events are onsets, each at its own frame, at least 4 frames apart
        assert set(scene.target_events_s) <= set(onsets)
        assert np.all(np.diff(np.round(scene.target_events_s * 20)) >= MIN_CONTACT_GAP_FRAMES)
    assert n_distractor_contacts > 20          # distractors really do make contacts


def test_contacts_at_4_fps_224_px():
    rng = np.random.default_rng(1)
    for seed in range(6):
        onsets = random_events(rng, 4.0)
        scene = simulate_sounds([SoundSpec(onsets)], 4.0, seed=seed, fps=4, size=224)
        assert scene.frames.shape == (16, 224, 224, 3)
        check_scene_timing(scene, onsets)


def test_two_target_scene_for_a_layered_mix():
    a, b = np.array([0.2, 0.9]), np.array([0.5, 1.4])
    scene = simulate_sounds([SoundSpec(a), SoundSpec(b)], 2.0, seed=3, n_distractors=1)
    assert scene.target_masks_each.shape[0] == 2
    np.testing.assert_array_equal(scene.masks, scene.target_masks_each.max(axis=0))
    for each, events in zip(scene.target_masks_each, (a, b)):
        np.testing.assert_allclose(measured_contacts(each, 20), events, atol=0.05)


def test_contact_frames_rule():
    frames, shown = contact_frames([0.0, 0.06, 0.1, 0.31, 0.52, 2.0], 20, 20)
    np.testing.assert_array_equal(frames, [0, 6, 10])       # 0.06 / 0.1 too close; 2.0 outside
    np.testing.assert_allclose(shown, [0.0, 0.31, 0.52])
    frames, _ = contact_frames([0.0, 0.5, 0.97], 20, 20, first_frame=1, last_frame=18)
    np.testing.assert_array_equal(frames, [10])


# ----------------------------------------------------------------------------------------------
# masks, determinism, appearance

def test_masks_cover_their_object_only():
    rng = np.random.default_rng(2)
    for seed in range(8):
        scene = simulate_sounds([SoundSpec(random_events(rng, 2.0))], 2.0, seed=seed,
                                n_distractors=2, sensor_noise=False)
        assert scene.masks.dtype == np.float32 and scene.masks.max() == pytest.approx(1.0)
        assert scene.distractor_masks.shape == (2, 40, 64, 64)
        # objects never overlap: the target mask shares no pixel with any distractor mask
        assert not np.any((scene.masks > 0) & (scene.distractor_masks.max(axis=0) > 0))
        # every drawn object is under a mask: outside all masks the video is the still
        # background (no sensor noise here)
        union = np.maximum(scene.masks, scene.distractor_masks.max(axis=0)) > 0
        bg_everywhere = ~union.any(axis=0)
        assert bg_everywhere.mean() > 0.3
        assert np.all(scene.frames[:, bg_everywhere] == scene.frames[0, bg_everywhere])
        for k in (0, 20, 39):
            still = ~union[k] & ~union[0]
            assert np.array_equal(scene.frames[k][still], scene.frames[0][still])
        # and under the target's full-coverage mask the picture is the target, which moves
        core = scene.masks > 0.99
        assert core.sum(axis=(1, 2)).min() > 4


def test_determinism_per_seed():
    onsets = np.array([0.3, 0.8, 1.5])
    a = simulate_sounds([SoundSpec(onsets)], 2.0, seed=11)
    b = simulate_sounds([SoundSpec(onsets)], 2.0, seed=11)
    c = simulate_sounds([SoundSpec(onsets)], 2.0, seed=12)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.masks, b.masks)
    np.testing.assert_array_equal(a.distractor_masks, b.distractor_masks)
    assert a.objects == b.objects
    assert not np.array_equal(a.frames, c.frames)


def _object_stats(frame, mask):
    core = mask > 0.99
    return mask.sum(), frame[core].mean(axis=0)


def test_targets_and_distractors_share_one_appearance_distribution():
    """Over 200 scenes, target and distractor sizes, colours and shapes are statistically
    indistinguishable (and the same test does notice a 10 % size bias)."""
    rng = np.random.default_rng(5)
    t_area, d_area, t_rgb, d_rgb, t_shape, d_shape = [], [], [], [], [], []
    for seed in range(200):
        scene = simulate_sounds([SoundSpec(random_events(rng, 1.0))], 1.0, seed=seed,
                                n_distractors=1, sensor_noise=False)
        area, rgb = _object_stats(scene.frames[0], scene.masks[0])
        t_area.append(area)
        t_rgb.append(rgb)
        area, rgb = _object_stats(scene.frames[0], scene.distractor_masks[0, 0])
        d_area.append(area)
        d_rgb.append(rgb)
        t_shape.append(scene.objects[0]["appearance"]["shape"])
        d_shape.append(scene.objects[1]["appearance"]["shape"])
    t_rgb, d_rgb = np.array(t_rgb), np.array(d_rgb)
    assert stats.ks_2samp(t_area, d_area).pvalue > 0.01
    for ch in range(3):
        assert stats.ks_2samp(t_rgb[:, ch], d_rgb[:, ch]).pvalue > 0.01
    shapes = sorted(set(t_shape) | set(d_shape))
    table = [[t_shape.count(s) for s in shapes], [d_shape.count(s) for s in shapes]]
    assert len(shapes) == 4 and stats.chi2_contingency(table).pvalue > 0.01
    # power check: a 10 % larger distractor would be caught
    assert stats.ks_2samp(t_area, np.array(d_area) * 1.1).pvalue < 0.01


def test_backgrounds_and_motions_vary():
    rng = np.random.default_rng(8)
    backgrounds, motions = set(), set()
    for seed in range(40):
        scene = simulate_sounds([SoundSpec(random_events(rng, 1.0))], 1.0, seed=seed)
        backgrounds.add(scene.info["background"])
        motions.update(o["motion"] for o in scene.objects)
    assert backgrounds == {"flat", "gradient", "noise", "stripes"}
    assert {"bounce", "slide", "glide"} <= motions


# ----------------------------------------------------------------------------------------------
# sustained sounds

def test_sustained_motion_follows_the_loudness_curve():
    curve = np.concatenate([np.linspace(0, 1, 20), np.linspace(1, 0.05, 20)])   # 4 s at 10/s
    for seed in range(3):
        scene = simulate_sounds([SoundSpec(np.zeros(0), sustained=True, curve=curve)], 4.0,
                                seed=seed, n_distractors=1)
        assert scene.mode == "sustained" and scene.target_events_s.size == 0
        speed = np.linalg.norm(np.diff(mask_centroids(scene.masks), axis=0), axis=1)
        drive = scene.motion_curve[1:]
        kernel = np.ones(5) / 5
        r = np.corrcoef(np.convolve(speed, kernel, "valid"),
                        np.convolve(drive, kernel, "valid"))[0, 1]
        assert r > 0.6, r
        quiet, loud = speed[:8].mean(), speed[15:25].mean()
        assert loud > 3 * quiet


def test_is_sustained_rules():
    assert is_sustained("rain", 1.0, [0.1])
    assert is_sustained("engine", 3.0, [0.1]) and not is_sustained("engine", 1.0, [0.1])
    assert not is_sustained("impact", 5.0, [0.1])
    assert is_sustained("impact", 0.5, [])


def test_simulate_scene_from_audio_detects_onsets_and_mode():
    y = np.zeros(2 * SR, np.float32)
    for t in (0.3, 0.9, 1.5):
        k = int(t * SR)
        y[k:k + 400] = 0.5 * np.exp(-np.arange(400) / 80)
    scene = simulate_scene(y, SR, seed=0, category="impact")
    np.testing.assert_allclose(scene.target_events_s, [0.3, 0.9, 1.5], atol=0.01)
    check_scene_timing(scene, scene.audio_onsets_s)
    noise = (0.2 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32)
    assert simulate_scene(noise, SR, seed=0, category="wind").mode == "sustained"
    assert simulate_scene(y, SR, seed=0, category="wind", mode="discrete").mode == "discrete"


def test_bad_inputs():
    with pytest.raises(MediaError):
        simulate_scene(np.zeros(0, np.float32), SR, seed=0)
    with pytest.raises(MediaError):
        simulate_scene(np.array([0.0, np.nan], np.float32), SR, seed=0)
    with pytest.raises(MediaError):
        simulate_scene(np.zeros(100, np.int16), SR, seed=0)
    with pytest.raises(SimulationError):
        simulate_sounds([], 1.0, seed=0)
    with pytest.raises(SimulationError):
        simulate_sounds([SoundSpec(np.array([0.1]))], 0.0, seed=0)
    with pytest.raises(ValueError):
        simulate_sounds([SoundSpec(np.array([0.1]))], 1.0, seed=0, size=8)
    with pytest.raises(ValueError):
        simulate_scene(np.ones(SR, np.float32) * 0.1, SR, seed=0, mode="loud")


# ----------------------------------------------------------------------------------------------
# selectivity scenes

def _knocks(times_s, duration_s):
    y = np.zeros(int(duration_s * SR), np.float32)
    for t in times_s:
        k = int(t * SR)
        y[k:k + 400] += 0.6 * np.exp(-np.arange(min(400, len(y) - k)) / 80)
    return y


def test_selectivity_scene():
    a, b = _knocks([0.0, 0.35], 0.6), _knocks([0.0, 0.5, 0.7], 0.9)
    sel = make_selectivity_scene(a, b, SR, seed=4, duration_s=2.0)
    assert sel.frames.shape[0] == 40 and sel.masks_a.shape == sel.masks_b.shape
    assert not np.any((sel.masks_a > 0) & (sel.masks_b > 0))
    gaps = np.abs(sel.onsets_a_s[:, None] - sel.onsets_b_s[None, :])
    assert gaps.min() >= DISTRACTOR_SEPARATION_S
    assert set(sel.events_a_s) <= set(sel.onsets_a_s)
    np.testing.assert_allclose(sel.audio_a + sel.audio_b, sel.mixture)
    np.testing.assert_allclose(sel.events_a_s, np.array([0.0, 0.35]) + sel.offset_a_s,
                               atol=0.01)
    for masks, events in ((sel.masks_a, sel.events_a_s), (sel.masks_b, sel.events_b_s)):
        seen = measured_contacts(masks, 20)
        for t in events:
            assert np.min(np.abs(seen - t)) <= 0.05
    # the sound's placement matches the pictured events
    from foley_core.events import detect_onsets

    np.testing.assert_allclose(detect_onsets(sel.audio_b, SR), sel.events_b_s, atol=0.01)
    again = make_selectivity_scene(a, b, SR, seed=4, duration_s=2.0)
    np.testing.assert_array_equal(again.frames, sel.frames)


def test_selectivity_scene_errors():
    a = _knocks([0.0, 0.35], 0.6)
    with pytest.raises(SimulationError, match="no onsets"):
        make_selectivity_scene(a, np.zeros(SR, np.float32), SR, seed=0)
    dense = _knocks(np.arange(0, 1.0, 0.1), 1.0)
    with pytest.raises(SimulationError, match="Could not place"):
        make_selectivity_scene(dense, dense, SR, seed=0, duration_s=1.0, n_tries=20)


# ----------------------------------------------------------------------------------------------
# video files

def _read_mp4(path):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate)
        has_audio = len(container.streams.audio) > 0
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return frames, rate, has_audio


def test_render_scene_video_round_trip(tmp_path):
    onsets = np.array([0.3, 0.8, 1.4])
    scene = simulate_sounds([SoundSpec(onsets)], 2.0, seed=21, size=96, n_distractors=1,
                            sensor_noise=False)
    path = render_scene_video(scene, tmp_path / "scene.mp4")
    frames, rate, has_audio = _read_mp4(path)
    assert frames.shape == scene.frames.shape and rate == pytest.approx(20.0)
    assert not has_audio
    err = np.abs(frames.astype(float) - scene.frames.astype(float))
    assert err.mean() < 4.0
    # the decoded frames still show the object where its mask is, frame by frame
    for k in range(scene.n_frames):
        inside = scene.masks[k] > 0.99
        obj = scene.frames[k][inside].astype(float).mean(axis=0)
        assert np.abs(frames[k][inside].astype(float).mean(axis=0) - obj).max() < 12
    with_audio = render_scene_video(scene, tmp_path / "with_audio.mp4",
                                    audio=_knocks(onsets, 2.0), sr=SR)
    _, _, has_audio = _read_mp4(with_audio)
    assert has_audio
    assert not list(tmp_path.glob(".*"))                 # no temporary files left


def test_render_scene_video_refuses_odd_sizes_without_leaving_files(tmp_path):
    scene = simulate_sounds([SoundSpec(np.array([0.3]))], 1.0, seed=0, size=(63, 64))
    target = tmp_path / "odd.mp4"
    with pytest.raises(MediaError, match="even"):
        render_scene_video(scene, target)
    assert not target.exists() and not list(tmp_path.iterdir())
    good = simulate_sounds([SoundSpec(np.array([0.3]))], 1.0, seed=0)
    render_scene_video(good, target)
    before = target.read_bytes()
    with pytest.raises(MediaError):
        render_scene_video(scene, target)             # a failed rewrite keeps the good copy
    assert target.read_bytes() == before


@pytest.mark.skipif(not HAS_SFX, reason="no shared sfx library")
def test_real_clip_scene_and_eval_set(tmp_path):
    from foley_lab.data.evalset import MANIFEST_NAME, build_eval_set
    from foley_lab.data.sfx import SfxLibrary

    lib = SfxLibrary(SHARED / "sfx", cache_dir=tmp_path / "cache")
    clip = next(c for c in lib.clips("val", category="footsteps") if 0.3 < c.seconds < 1.0)
    audio = np.concatenate([np.zeros(SR // 4, np.float32), lib.load(clip)])
    scene = simulate_scene(audio, SR, seed=1, category=clip.category)
    assert scene.mode == "discrete" and scene.target_events_s.size >= 1
    check_scene_timing(scene, scene.audio_onsets_s)

    manifest = build_eval_set(tmp_path / "eval", library=lib, n_scenes=2, n_selectivity=1,
                              size=64, seed=0)
    on_disk = json.loads((tmp_path / "eval" / MANIFEST_NAME).read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert len(on_disk["scenes"]) == 2 and len(on_disk["selectivity"]) == 1
    for entry in on_disk["scenes"]:
        assert entry["licence"] and entry["caption"]
        for rel in entry["files"].values():
            assert (tmp_path / "eval" / rel).is_file()
        frames, rate, _ = _read_mp4(tmp_path / "eval" / entry["files"]["video"])
        assert frames.shape[0] == entry["n_frames"] and rate == pytest.approx(20.0)
        with np.load(tmp_path / "eval" / entry["files"]["masks"]) as z:
            assert z["target"].shape == frames.shape[:3] and z["target"].dtype == np.uint8
    sel = on_disk["selectivity"][0]
    assert min(abs(a - b) for a in sel["events_a_s"] for b in sel["events_b_s"]) >= 0.2
    # fixed seeds: a rebuild gives the same scenes
    again = build_eval_set(tmp_path / "eval2", library=lib, n_scenes=2, n_selectivity=1,
                           size=64, seed=0)
    assert again["scenes"] == manifest["scenes"]
