"""Follow a picked object, time its contacts, and turn a vocal sketch into curve + onsets."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from foley_core.errors import CurveError, MaskError
from foley_core.events import onset_f1
from foley_core.vision.contacts import contact_events
from foley_core.vision.follow import click_box, follow, moving_blob_box, track_centres
from foley_lab.synthetic import bouncing_square, like_footage


@pytest.fixture(scope="module")
def scene():
    return bouncing_square(duration_s=2.4, fps=25.0, seed=3)


def _true_centres(scene):
    return (scene.boxes[:, :2] + scene.boxes[:, 2:]) / 2


def test_follow_from_a_click_in_the_middle_frame_goes_both_ways(scene):
    k = len(scene.frames) // 2
    track = follow(scene.frames, scene.times_s, frame_index=k, point=_true_centres(scene)[k])
    got = track_centres(track, scene.times_s)
    assert np.isfinite(got).all(), "the square is on screen in every frame"
    err = np.linalg.norm(got - _true_centres(scene), axis=1)
    assert err[:k].max() < 1.5 and err[k:].max() < 1.5      # backwards and forwards
    assert track.width == scene.frames.shape[2] and len(track.frames) == len(scene.frames)


@pytest.mark.xfail(strict=True, reason="known limitation: on this blurred, compressed scene the "
                   "square resting on the floor is lost to the floor (see docs/BENCHMARKS.md)")
def test_follow_survives_footage_like_degradation(scene):
    frames = like_footage(scene.frames, seed=1, hand=False)
    k = len(frames) // 2
    track = follow(frames, scene.times_s, frame_index=k, point=_true_centres(scene)[k])
    err = np.linalg.norm(track_centres(track, scene.times_s) - _true_centres(scene), axis=1)
    assert np.nanmedian(err) < 2.5


def test_click_box_covers_the_blob_and_rejects_outside_clicks(scene):
    k = 10
    box = click_box(scene.frames[k], _true_centres(scene)[k])
    true = scene.boxes[k]
    assert np.all(np.abs(box - true) < 3.0)
    with pytest.raises(MaskError):
        click_box(scene.frames[k], (-5, 10))
    with pytest.raises(MaskError):
        follow(scene.frames, scene.times_s, frame_index=k)


def test_contacts_of_the_followed_square_within_one_frame(scene):
    k = len(scene.frames) // 2
    track = follow(scene.frames, scene.times_s, frame_index=k, point=_true_centres(scene)[k])
    events = contact_events(track_centres(track, scene.times_s), scene.times_s)
    truth = scene.contacts_s[(scene.contacts_s > 0.1) & (scene.contacts_s < 2.3)]
    assert len(truth) >= 3
    assert onset_f1([e.time_s for e in events], truth, tol_s=1 / 25)["f1"] == 1.0


def test_contact_timing_is_sub_frame_on_an_exact_path(scene):
    events = contact_events(_true_centres(scene), scene.times_s)
    truth = scene.contacts_s[(scene.contacts_s > 0.1) & (scene.contacts_s < 2.3)]
    errs = [np.min(np.abs(truth - e.time_s)) for e in events]
    assert len(events) == len(truth) and max(errs) < 0.5 / 25   # within half a frame


def test_contact_across_an_unseen_gap():
    # a ball bouncing below the picture's edge: 4 frames unseen around the contact at 0.5 s
    fps = 100.0
    t = np.arange(100) / fps
    y = np.where(t < 0.5, 200 - 0.5 * 800 * (0.5 - t) ** 2 * 0 + 800 * (t - 0.5) ** 2 * 0, 0)
    v_in = 300.0
    y = np.where(t < 0.5, 200 - v_in * (0.5 - t), 200 - 0.7 * v_in * (t - 0.5))
    pos = np.stack([np.full_like(t, 50.0), y], axis=1)
    pos[np.abs(t - 0.5) < 0.025] = np.nan
    events = contact_events(pos, t)
    assert len(events) == 1 and abs(events[0].time_s - 0.5) < 0.005


def test_confidence_threshold_filters_and_jitter_is_not_a_contact(scene):
    rng = np.random.default_rng(0)
    t = np.arange(75) / 25.0
    still = np.stack([40 + rng.normal(0, 0.3, t.size), 60 + rng.normal(0, 0.3, t.size)], axis=1)
    assert contact_events(still, t) == []
    everything = contact_events(_true_centres(scene), scene.times_s, threshold=0.0)
    strict = contact_events(_true_centres(scene), scene.times_s, threshold=0.9)
    assert all(e.confidence >= 0.9 for e in strict)
    assert len(strict) < len(everything)
    assert {round(e.time_s, 6) for e in strict} <= {round(e.time_s, 6) for e in everything}


# ------------------------------------------------------------------------- vocal sketch

SR = 16_000


def _burst(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A voice-like syllable: 'tk' = a 5 ms broadband click then a short voiced tail,
    'tsh' = a hiss rising in 20 ms and holding 300 ms."""
    if kind == "tk":
        n = int(0.12 * SR)
        tt = np.arange(n) / SR
        click = rng.normal(0, 1, n) * np.exp(-tt / 0.004)
        voiced = 0.3 * np.sin(2 * np.pi * 140 * tt) * np.exp(-tt / 0.05) * (tt > 0.01)
        return 0.5 * (click + voiced)
    n = int(0.32 * SR)
    tt = np.arange(n) / SR
    env = np.minimum(tt / 0.02, 1.0) * np.exp(-np.maximum(tt - 0.25, 0) / 0.02)
    return 0.3 * rng.normal(0, 1, n) * env


def test_sketch_onsets_and_curve_from_voice_like_bursts():
    from foley_core.sketch import sketch_conditions

    rng = np.random.default_rng(0)
    duration_s = 4.0
    audio = rng.normal(0, 1e-3, int(duration_s * SR))       # room noise
    truth = [0.3, 0.62, 1.1, 1.9, 2.6, 3.3]
    kinds = ["tk", "tk", "tsh", "tk", "tk", "tsh"]
    for t0, kind in zip(truth, kinds):
        b = _burst(kind, rng)
        i = int(t0 * SR)
        audio[i:i + b.size] += b[:audio.size - i]
    curve, onsets = sketch_conditions(audio.astype(np.float32), SR, duration_s)
    assert onset_f1(onsets, truth, tol_s=0.05)["f1"] >= 0.8
    from foley_core.loudness import relative_loudness

    assert curve.shape == relative_loudness(audio.astype(np.float32), SR).shape
    # the curve is the bursts' own loudness: room noise does not bend it
    clean = np.zeros(int(duration_s * SR))
    rng = np.random.default_rng(0)
    rng.normal(0, 1e-3, clean.size)
    for t0, kind in zip(truth, kinds):
        b = _burst(kind, rng)
        i = int(t0 * SR)
        clean[i:i + b.size] += b[:clean.size - i]
    assert np.corrcoef(curve, relative_loudness(clean.astype(np.float32), SR))[0, 1] >= 0.8


def test_sketch_is_cut_to_the_duration_and_refuses_silence():
    from foley_core.sketch import sketch_conditions

    rng = np.random.default_rng(1)
    audio = np.zeros(SR * 3, np.float32)
    for t0 in (0.5, 2.5):
        b = _burst("tk", rng)
        audio[int(t0 * SR):int(t0 * SR) + b.size] += b
    curve, onsets = sketch_conditions(audio, SR, 2.0)
    assert curve.size == 20 and np.all(onsets < 2.0)
    assert np.min(np.abs(onsets - 0.5)) < 0.02
    with pytest.raises(CurveError):
        sketch_conditions(np.zeros(SR, np.float32), SR, 1.0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_sketch_of_spoken_syllables(tmp_path):
    from foley_core.audio_io import read_audio
    from foley_core.sketch import sketch_conditions

    wav = tmp_path / "ta.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "ta"], check=True, capture_output=True)
    syllable, sr = read_audio(wav, sr=SR)
    # its own start: the first sample within 30 dB of its peak
    start = int(np.flatnonzero(np.abs(syllable) > np.abs(syllable).max() * 0.03)[0])
    syllable = syllable[start:start + int(0.3 * SR)]
    times = [0.2, 0.7, 1.3, 1.8]
    audio = np.zeros(int(2.5 * SR), np.float32)
    for t0 in times:
        i = int(t0 * SR)
        audio[i:i + syllable.size] += syllable
    curve, onsets = sketch_conditions(audio, SR, 2.5)
    assert onset_f1(onsets, times, tol_s=0.05)["f1"] >= 0.8


def test_generate_times_a_followed_track_from_its_centres(scene):
    from types import SimpleNamespace

    from foley_core.generate import video_contact_onsets
    from foley_core.request import Region

    k = len(scene.frames) // 2
    track = follow(scene.frames, scene.times_s, frame_index=k, point=_true_centres(scene)[k])
    info = SimpleNamespace(fps=25.0, width=scene.frames.shape[2], height=scene.frames.shape[1])
    # no video is read for a followed track: its own centres give the onsets
    onsets = video_contact_onsets("/nonexistent.mp4", info, Region(track=track),
                                  start_s=0.5, duration_s=1.7)
    truth = scene.contacts_s[(scene.contacts_s >= 0.5) & (scene.contacts_s < 2.2)] - 0.5
    assert onset_f1(onsets, truth, tol_s=1 / 25)["f1"] == 1.0


def _mover_frames(path_xy, *, size_px=20, checker_px=5, width=160, height=120, seed=0):
    """A checkered square (two unrelated colours) moving along `path_xy` (top-left corners)
    over a plain grey background with sensor noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size_px, 0:size_px]
    cells = ((yy // checker_px + xx // checker_px) % 2).astype(bool)
    sprite = np.where(cells[..., None], [230, 60, 40], [40, 90, 220]).astype(np.float32)
    frames = np.empty((len(path_xy), height, width, 3), np.uint8)
    for i, (x, y) in enumerate(path_xy):
        img = np.full((height, width, 3), 120.0, np.float32)
        img[int(y):int(y) + size_px, int(x):int(x) + size_px] = sprite
        img += rng.normal(0.0, 2.0, img.shape)
        frames[i] = np.clip(img, 0, 255).astype(np.uint8)
    return frames


def test_a_click_on_one_cell_of_a_textured_object_follows_the_whole_object():
    # a colour fill from the click finds one checker cell; its template matches every cell, so
    # the centre used to jump by a cell. The moving blob gives the whole square.
    n = 30
    path = np.stack([20 + 3.0 * np.arange(n), np.full(n, 50.0)], axis=1)
    frames = _mover_frames(path)
    times = np.arange(n) / 25.0
    k = 15
    click = path[k] + 2.5                                  # inside the top-left cell
    cell = click_box(frames[k], click)
    assert (cell[2] - cell[0]) * (cell[3] - cell[1]) < 0.25 * 20 * 20
    blob = moving_blob_box(frames, k, click)
    assert blob is not None and np.all(np.abs(blob - [*path[k], *(path[k] + 20)]) <= 1.5)
    track = follow(frames, times, frame_index=k, point=click)
    err = np.linalg.norm(track_centres(track, times) - (path + 10.0), axis=1)
    assert np.isfinite(err).all() and err.max() < 1.5


def test_a_sudden_start_from_rest_is_followed_without_a_gap():
    # at rest for 12 frames, then 28 px per frame at once (a push): the window sized by the
    # zero velocity at rest used to lose it until it stopped
    xs = np.concatenate([np.full(12, 10.0), 10.0 + 28.0 * np.arange(1, 5), np.full(12, 122.0)])
    path = np.stack([xs, np.full(xs.size, 50.0)], axis=1)
    frames = _mover_frames(path, checker_px=20)            # one colour: the fill finds it all
    times = np.arange(len(xs)) / 25.0
    track = follow(frames, times, frame_index=5, point=path[5] + 10.0)
    err = np.linalg.norm(track_centres(track, times) - (path + 10.0), axis=1)
    assert np.isfinite(err).all() and err.max() < 2.0


def test_the_followed_object_never_jumps_to_a_lookalike_faster_than_things_move():
    # the object leaves the picture; a lookalike is on screen 110 px away during the next
    # 75 ms at 200 fps: reaching it would take 7 picture diagonals per second, so the track
    # stays a gap
    n = 35
    fps = 200.0
    xs = np.concatenate([60.0 + 2.0 * np.arange(20), np.full(15, np.nan)])
    frames = []
    for i in range(n):
        x = xs[i] if np.isfinite(xs[i]) else None
        f = _mover_frames([(x if x is not None else 0.0, 50.0)], checker_px=20, seed=i)[0]
        if x is None:
            f[50:70, 0:20] = 120                          # the object is gone
            f[5:25, 0:20] = [40, 90, 220]                 # a lookalike far away
        frames.append(f)
    frames = np.stack(frames)
    times = np.arange(n) / fps
    track = follow(frames, times, frame_index=10, point=(xs[10] + 10.0, 60.0))
    got = track_centres(track, times)
    assert np.isfinite(got[:20]).all() and np.isnan(got[20:]).all()


def test_of_two_lookalikes_in_the_window_the_one_on_the_predicted_path_is_kept():
    # a still twin sits inside the search window, earlier in raster order than the moving
    # object: with equal scores the first maximum used to win, and the track jumped to it
    n = 30
    path = np.stack([30 + 3.0 * np.arange(n), np.full(n, 60.0)], axis=1)
    frames = _mover_frames(path, checker_px=20)
    frames[:, 30:50, 50:70] = _mover_frames([(50, 30)], checker_px=20, seed=99)[0, 30:50, 50:70]
    times = np.arange(n) / 25.0
    track = follow(frames, times, frame_index=0, point=path[0] + 10.0)
    err = np.linalg.norm(track_centres(track, times) - (path + 10.0), axis=1)
    assert np.isfinite(err).all() and err.max() < 2.0

