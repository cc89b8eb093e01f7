"""Follow a picked object, time its contacts, and turn a vocal sketch into curve + onsets."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from foley_core.errors import CurveError, MaskError
from foley_core.events import onset_f1
from foley_core.vision.contacts import contact_events
from foley_core.vision.follow import click_box, follow, track_centres
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
