"""Onsets, onset F1, AV-Align and visual contact times (foley_core.events)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from foley_core.errors import MaskError, MediaError
from foley_core.events import (av_align, detect_onsets, match_events, onset_f1,
                               visual_contact_times)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SR = 16_000


def click_train(times_s, *, sr=SR, duration_s=3.0, amplitudes=None, noise_db=None, seed=0):
    """Single-sample clicks (and a 3 ms decaying tail) at known times."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(duration_s * sr), np.float32)
    tail = np.exp(-np.arange(int(0.003 * sr)) / (0.0008 * sr)).astype(np.float32)
    tail *= np.sign(rng.standard_normal(tail.size)).astype(np.float32)
    tail[0] = 1.0
    for i, t in enumerate(times_s):
        a = 0.8 if amplitudes is None else amplitudes[i]
        k = int(round(t * sr))
        y[k:k + tail.size] += a * tail[: len(y) - k]
    if noise_db is not None:
        y += np.float32(10 ** (noise_db / 20)) * rng.standard_normal(y.size).astype(np.float32)
    return y


# ----------------------------------------------------------------------------------------------
# detect_onsets

@pytest.mark.parametrize("noise_db", [None, -60.0, -45.0])
def test_click_train_onsets_within_10_ms(noise_db):
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.08, 0.4, size=12)) + 0.05
    amps = rng.uniform(0.2, 0.9, size=times.size)
    y = click_train(times, duration_s=float(times[-1] + 0.3), amplitudes=amps, noise_db=noise_db)
    onsets = detect_onsets(y, SR)
    assert onsets.size == times.size, (onsets, times)
    assert np.max(np.abs(onsets - times)) <= 0.010


def test_tone_bursts_with_slow_attack_within_10_ms():
    """Decaying 800 Hz bursts with a 5 ms linear attack: the onset is the attack's start."""
    times = np.array([0.2, 0.55, 0.9, 1.4, 1.62])
    y = np.zeros(2 * SR, np.float32)
    n = int(0.25 * SR)
    t = np.arange(n) / SR
    burst = (np.minimum(t / 0.005, 1) * np.exp(-t / 0.05) * np.sin(2 * np.pi * 800 * t))
    for t0 in times:
        k = int(t0 * SR)
        y[k:k + n] += 0.5 * burst[: len(y) - k].astype(np.float32)
    onsets = detect_onsets(y, SR)
    assert onsets.size == times.size
    assert np.max(np.abs(onsets - times)) <= 0.010


def test_onsets_other_rate_stereo_and_min_gap():
    times = [0.1, 0.5, 0.62, 1.0]
    y44 = click_train(times, sr=44_100, duration_s=1.5)
    stereo = np.stack([y44, y44], axis=1)
    np.testing.assert_allclose(detect_onsets(stereo, 44_100), times, atol=0.010)
    merged = detect_onsets(y44, 44_100, min_gap_s=0.2)       # 0.62 is within 200 ms of 0.5
    np.testing.assert_allclose(merged, [0.1, 0.5, 1.0], atol=0.010)


def test_onsets_silence_dither_and_start():
    assert detect_onsets(np.zeros(SR, np.float32), SR).size == 0
    dither = 1e-5 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    assert detect_onsets(dither, SR).size == 0
    assert detect_onsets(np.zeros(10, np.float32), SR).size == 0
    # a sound that is already playing at the first sample has an onset at 0
    y = click_train([0.0, 0.4], duration_s=1.0)
    np.testing.assert_allclose(detect_onsets(y, SR), [0.0, 0.4], atol=0.010)
    # ... but a faint noise floor that is there from the start is not an onset
    rng = np.random.default_rng(1)
    y = click_train([0.3], duration_s=1.0) + 0.003 * rng.standard_normal(SR).astype(np.float32)
    np.testing.assert_allclose(detect_onsets(y, SR), [0.3], atol=0.010)


@pytest.mark.parametrize("bad, match", [
    (np.array([0.0, np.nan, 0.1], np.float32), "NaN"),
    (np.zeros(100, np.int16), "integer"),
    (np.zeros((3, 100, 2), np.float32), "mono"),
    (np.array(["a", "b"]), "numeric"),
])
def test_onsets_bad_audio(bad, match):
    with pytest.raises(MediaError, match=match):
        detect_onsets(bad, SR)


@pytest.mark.skipif(not (SHARED / "sfx" / "manifest.csv").is_file(), reason="no shared sfx")
def test_onsets_of_real_clips_placed_at_known_times():
    from foley_lab.data.sfx import SfxLibrary

    lib = SfxLibrary(SHARED / "sfx")
    clips = [c for c in lib.clips("val") if c.category in ("impact", "footsteps")
             and c.seconds < 0.4][:6]
    assert len(clips) >= 4
    y = np.zeros(4 * SR, np.float32)
    truth = []
    for i, clip in enumerate(clips):
        x = lib.load(clip)
        t = 0.2 + 0.6 * i
        y[int(t * SR):int(t * SR) + len(x)] += x
        env = np.abs(x)
        truth.append(t + np.argmax(env > env.max() * 10 ** (-30 / 20)) / SR)
    onsets = detect_onsets(y, SR)
    scores = onset_f1(onsets, truth, tol_s=0.02)
    assert scores["recall"] >= 5 / 6, (onsets, truth)
    pairs = match_events(onsets, truth, tol_s=0.02)
    errors = [onsets[i] - np.sort(truth)[j] for i, j in pairs]
    assert np.median(np.abs(errors)) <= 0.005


# ----------------------------------------------------------------------------------------------
# onset_f1 / av_align

def test_onset_f1_hand_made_cases():
    ref = [0.5, 1.0, 1.5, 2.0]
    assert onset_f1(ref, ref)["f1"] == 1.0
    shifted = onset_f1(np.array(ref) + 0.15, ref, tol_s=0.1)
    assert shifted["f1"] == 0.0 and shifted["n_matched"] == 0
    partial = onset_f1([0.52, 1.04, 3.0], ref, tol_s=0.1)     # 2 hits, 1 false, 2 missed
    assert partial["precision"] == pytest.approx(2 / 3)
    assert partial["recall"] == pytest.approx(2 / 4)
    assert partial["f1"] == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    # one-to-one: two predictions next to one reference count once
    assert onset_f1([0.98, 1.02], [1.0])["precision"] == 0.5
    # unsorted input is fine
    assert onset_f1([2.0, 0.5, 1.5, 1.0], ref)["f1"] == 1.0


def test_onset_f1_empty_sets():
    assert onset_f1([], []) == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "n_matched": 0.0}
    only_pred = onset_f1([0.5], [])
    assert (only_pred["precision"], only_pred["recall"], only_pred["f1"]) == (0.0, 1.0, 0.0)
    only_ref = onset_f1([], [0.5])
    assert (only_ref["precision"], only_ref["recall"], only_ref["f1"]) == (1.0, 0.0, 0.0)


def test_greedy_matching_is_maximum():
    """The two-pointer matching finds as many pairs as a brute-force maximum matching."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(0)
    for _ in range(300):
        p = rng.uniform(0, 2, size=rng.integers(0, 7))
        r = rng.uniform(0, 2, size=rng.integers(0, 7))
        greedy = len(match_events(p, r, tol_s=0.15))
        if p.size and r.size:
            hit = (np.abs(p[:, None] - r[None, :]) <= 0.15).astype(float)
            rows, cols = linear_sum_assignment(-hit)
            best = int(hit[rows, cols].sum())
        else:
            best = 0
        assert greedy == best


def test_av_align_hand_made_cases():
    a = [0.5, 1.0, 1.5, 2.0]
    assert av_align(a, a) == 1.0
    assert av_align(a, np.array(a) + 0.15, tol_s=0.1) == 0.0
    # 4 audio onsets, 3 visual events, 2 matched: IoU = 2 / (4 + 3 - 2)
    v = [0.55, 1.45, 3.0]
    assert av_align(a, v) == pytest.approx(2 / 5)
    p, r = 2 / 4, 2 / 3
    assert av_align(a, v) == pytest.approx(p * r / (p + r - p * r))
    assert av_align([], []) == 1.0
    assert av_align(a, []) == 0.0 and av_align([], v) == 0.0
    with pytest.raises(ValueError):
        av_align([np.nan], [1.0])


# ----------------------------------------------------------------------------------------------
# visual_contact_times

def bounce_track(contacts, n, fps=20.0, height=30.0, floor=60.0):
    """A ball that falls from rest, bounces (parabolic arcs) and lands at `contacts` frames."""
    d = np.zeros(n)
    c0 = contacts[0]
    d[:c0 + 1] = height * (1 - (np.arange(c0 + 1) / c0) ** 2)
    for a, b in zip(contacts[:-1], contacts[1:]):
        s = (np.arange(a, b + 1) - a) / (b - a)
        d[a:b + 1] = height * ((b - a) / 12) ** 2 * 4 * s * (1 - s)
    x = 10.0 + 0.7 * np.arange(n)                # drifting sideways while bouncing
    return np.stack([x, floor - d], axis=1)


def test_bounces_are_contacts_and_apexes_are_not():
    contacts = [10, 22, 31, 38, 45]
    pos = bounce_track(contacts, 60)
    times = visual_contact_times(pos, 20.0)
    np.testing.assert_allclose(times * 20, contacts)


def test_abrupt_stop_is_a_contact_and_start_from_rest_is_not():
    x = np.concatenate([np.full(10, 5.0), np.linspace(5, 45, 9), np.full(10, 45.0)])
    pos = np.stack([x, np.full_like(x, 20.0)], axis=1)
    np.testing.assert_allclose(visual_contact_times(pos, 20.0) * 20, [18])


def test_smooth_motion_and_jitter_have_no_contacts():
    t = np.arange(80) / 20
    phase = 2 * np.pi * 0.4 * t
    circle = np.stack([30 + 15 * np.cos(phase), 30 + 15 * np.sin(phase)], axis=1)
    assert visual_contact_times(circle, 20.0).size == 0
    rng = np.random.default_rng(0)
    still = 20 + rng.normal(0, 0.4, size=(80, 2))
    assert visual_contact_times(still, 20.0).size == 0
    # a pixel-quantised slow glide steps 0, 1, 0, 1 px: not a series of stops
    glide = np.round(np.stack([10 + 0.45 * np.arange(80), np.full(80, 7.0)], 1))
    assert visual_contact_times(glide, 20.0).size == 0


def test_contacts_under_tracker_noise():
    pos = bounce_track([10, 22, 34, 46], 60, height=40.0)
    rng = np.random.default_rng(1)
    noisy = pos + rng.normal(0, 0.3, size=pos.shape)
    np.testing.assert_allclose(visual_contact_times(noisy, 20.0) * 20, [10, 22, 34, 46])


def test_contact_times_nan_gaps_and_bad_input():
    pos = bounce_track([10, 22], 30)
    pos[20] = np.nan                          # lost for a frame two frames before the landing
    times = visual_contact_times(pos, 20.0) * 20
    assert 10 in times and all(abs(t - 20) > 1 for t in times)
    assert visual_contact_times(np.zeros((2, 2)), 20.0).size == 0
    with pytest.raises(MaskError, match="shape"):
        visual_contact_times(np.zeros((10, 3)), 20.0)
    with pytest.raises(MaskError, match="fps"):
        visual_contact_times(np.zeros((10, 2)), 0)


@pytest.mark.skipif(not (SHARED / "videos" / "mecavideo_balle_jbart.mp4").is_file(),
                    reason="no shared videos")
def test_real_video_wall_bounces_versus_smooth_turns():
    """A real tennis ball (25 fps) swings across a board: it rebounds off the right edge at
    frames 52, 133, 195, 243 (abrupt reversals) and turns smoothly at 90, 163, 220 (apexes)."""
    import av
    import cv2

    with av.open(str(SHARED / "videos" / "mecavideo_balle_jbart.mp4")) as container:
        track = []
        for frame in container.decode(video=0):
            hsv = cv2.cvtColor(frame.to_ndarray(format="rgb24"), cv2.COLOR_RGB2HSV)
            ball = ((hsv[..., 0] > 20) & (hsv[..., 0] < 45) & (hsv[..., 1] > 80)
                    & (hsv[..., 2] > 100))
            ys, xs = np.nonzero(ball)
            track.append((xs.mean(), ys.mean()) if xs.size > 5 else (np.nan, np.nan))
    frames = visual_contact_times(np.array(track), 25.0) * 25
    for rebound in (52, 133, 195, 243):
        assert np.min(np.abs(frames - rebound)) <= 1, frames
    for turn in (90, 163, 220):
        assert np.min(np.abs(frames - turn)) > 5, frames
