"""Loudness curves: the paper's loudness signal, drawn curves, CSV, dB maps and conform."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from foley_core.errors import CurveError, FoleyError
from foley_core.loudness import (
    conform,
    conform_gain,
    curve_correlation,
    curve_mae,
    curve_times,
    db_to_linear,
    linear_to_db,
    loudness_signal,
    n_curve_points,
    normalize_curve,
    read_curve_csv,
    relative_loudness,
    resample_curve,
    write_curve_csv,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SR = 16_000


def noise(seconds: float, *, amplitude: float = 0.1, seed: int = 0,
          channels: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (int(round(seconds * SR)),) + ((channels,) if channels else ())
    return (amplitude * rng.standard_normal(shape)).astype(np.float32)


def bursts(seconds: float, events_s: list[float], *, decay_s: float = 0.15,
           seed: int = 1) -> np.ndarray:
    """Silence with a decaying noise burst starting at each event time."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(round(seconds * SR)))
    n = int(0.8 * SR)
    env = np.exp(-np.arange(n) / SR / decay_s)
    for t in events_s:
        i = int(round(t * SR))
        m = min(n, y.size - i)
        y[i:i + m] += 0.3 * rng.standard_normal(m) * env[:m]
    return y.astype(np.float32)


def reference_loudness(audio: np.ndarray, fps: int = 10) -> np.ndarray:
    """The paper's recipe written with torch ops, as an independent reference."""
    x = torch.from_numpy(audio.astype(np.float64))
    n_win, n_hop = 1024, 160
    n_frames = 1 + -(-(x.numel() - n_win) // n_hop) if x.numel() > n_win else 1
    x = torch.nn.functional.pad(x, (0, (n_frames - 1) * n_hop + n_win - x.numel()))
    rms = x.unfold(0, n_win, n_hop).pow(2).mean(dim=1).sqrt()
    n_out = max(1, round(audio.shape[0] / SR * fps))
    pooled = torch.nn.functional.adaptive_avg_pool1d(rms[None, None], n_out)
    taps = torch.arange(3, dtype=torch.float64) - 1
    kernel = torch.exp(-0.5 * (taps / 3.5) ** 2)
    kernel = kernel / kernel.sum()
    padded = torch.nn.functional.pad(pooled, (1, 1), mode="replicate")
    return torch.nn.functional.conv1d(padded, kernel[None, None])[0, 0].numpy()


# --- loudness_signal ---------------------------------------------------------------------------

@pytest.mark.parametrize("seconds", [8.0, 2.55, 0.3, 0.05])
def test_loudness_signal_matches_torch_reference(seconds: float) -> None:
    x = bursts(seconds, [0.0, seconds / 3]) + noise(seconds, amplitude=0.01)
    got = loudness_signal(x)
    assert got.dtype == np.float32
    assert got.shape == (max(1, round(seconds * 10)),)
    np.testing.assert_allclose(got, reference_loudness(x), rtol=1e-5, atol=1e-7)


def test_eight_seconds_gives_80_points_in_linear_rms_units() -> None:
    t = np.arange(8 * SR) / SR
    sine = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    curve = loudness_signal(sine)
    assert curve.shape == (80,)
    # Not normalised: a sine of amplitude 0.5 has RMS 0.5 / sqrt(2), including both ends
    # (the 'nearest' edge handling and full tail windows do not pull the ends down).
    np.testing.assert_allclose(curve, 0.5 / np.sqrt(2), rtol=0.01)


def test_events_land_on_the_right_points() -> None:
    def peaks(curve: np.ndarray) -> list[int]:
        return [k for k in range(1, curve.size - 1) if curve[k] >= curve[k - 1]
                and curve[k] > curve[k + 1] and curve[k] > 0.3 * curve.max()]

    x = bursts(8.0, [1.0, 3.5, 6.0])
    # Point k stands for [k/10, (k+1)/10): before smoothing, a burst starting at t peaks at
    # point floor(t * 10); the 3-tap smoothing may move a decaying burst's peak by one point.
    assert peaks(loudness_signal(x, smooth_win=1)) == [10, 35, 60]
    smoothed = peaks(loudness_signal(x))
    assert len(smoothed) == 3 and all(abs(a - b) <= 1 for a, b in zip(smoothed, [10, 35, 60]))


def test_tail_is_covered() -> None:
    x = np.zeros(SR, dtype=np.float32)
    x[-80:] = 0.5  # the last 5 ms only
    curve = loudness_signal(x)
    assert curve[-1] > 0 and curve[0] == 0


def test_channels_average_power_and_torch_input() -> None:
    left = noise(2.0, seed=3)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    np.testing.assert_allclose(loudness_signal(stereo), loudness_signal(left) / np.sqrt(2),
                               rtol=1e-5)
    np.testing.assert_allclose(loudness_signal(torch.from_numpy(left)), loudness_signal(left))


@pytest.mark.parametrize("audio, match", [
    (np.zeros(0, dtype=np.float32), "empty"),
    (np.zeros((0, 2), dtype=np.float32), "empty"),
    (np.array([0.1, np.nan, 0.2], dtype=np.float32), "NaN"),
    (np.zeros((2, SR), dtype=np.float32), "channel-first"),
    (np.zeros((4, 4, 4), dtype=np.float32), "shape"),
    (np.zeros(100, dtype=np.int16), "integer"),
])
def test_bad_audio_is_a_curve_error(audio: np.ndarray, match: str) -> None:
    with pytest.raises(CurveError, match=match):
        loudness_signal(audio)


def test_bad_parameters_are_value_errors() -> None:
    x = noise(1.0)
    with pytest.raises(ValueError):
        loudness_signal(x, smooth_win=4)
    with pytest.raises(ValueError):
        loudness_signal(x, sigma=0)
    with pytest.raises(ValueError):
        loudness_signal(x, n_hop=0)


def test_normalize_and_relative_loudness() -> None:
    np.testing.assert_allclose(normalize_curve([0.0, 2.0, 4.0]), [0.0, 0.5, 1.0])
    zeros = normalize_curve(np.zeros(5))
    assert zeros.dtype == np.float32 and not zeros.any()
    with pytest.raises(CurveError, match="negative"):
        normalize_curve([0.1, -0.2])
    with pytest.raises(CurveError, match="empty"):
        normalize_curve([])
    rel = relative_loudness(bursts(4.0, [1.0, 2.0]))
    assert rel.max() == pytest.approx(1.0) and rel.min() >= 0
    assert not relative_loudness(np.zeros(SR, dtype=np.float32)).any()


# --- drawn curves ------------------------------------------------------------------------------

def test_resample_grid_is_frame_centres() -> None:
    assert n_curve_points(8.0) == loudness_signal(noise(8.0)).size == 80
    assert n_curve_points(2.55) == loudness_signal(noise(2.55)).size
    np.testing.assert_allclose(curve_times(3), [0.05, 0.15, 0.25])
    out = resample_curve([0.0, 1.0], [0.0, 1.0], duration_s=1.0)
    np.testing.assert_allclose(out, curve_times(10), atol=1e-6)


def test_resample_sorts_averages_duplicates_and_holds_ends() -> None:
    out = resample_curve([2.0, 1.0, 1.0], [1.0, 0.2, 0.6], duration_s=3.0)
    assert out.shape == (30,) and out.dtype == np.float32
    np.testing.assert_allclose(out[:10], 0.4, atol=1e-6)       # before the first point: held
    np.testing.assert_allclose(out[20:], 1.0)                   # after the last point: held
    assert out[15] == pytest.approx(0.4 + 0.6 * 0.55, abs=1e-6)  # linear in between
    np.testing.assert_allclose(resample_curve([0.7], [0.3], duration_s=2.0), 0.3)


@pytest.mark.parametrize("times, values, duration, match", [
    ([0, 1], [0.5, float("nan")], 2.0, "NaN"),
    ([0, float("inf")], [0.5, 0.5], 2.0, "NaN or infinite"),
    ([0, 1], [0.5, -0.1], 2.0, "negative"),
    ([0, 1], [0.5, 3.0], 2.0, "relative, from 0"),
    ([], [], 2.0, "empty"),
    ([0, 1], [0.5], 2.0, "2 times but 1 values"),
    ([0, 2.5], [0.5, 0.5], 2.0, "outside the clip"),
    ([-0.3, 1], [0.5, 0.5], 2.0, "outside the clip"),
    ([0, 1], [0.5, 0.5], 0.0, "positive"),
    ([0, 1], [0.5, 0.5], -1.0, "positive"),
])
def test_resample_rejects_bad_curves(times, values, duration, match) -> None:
    with pytest.raises(CurveError, match=match):
        resample_curve(times, values, duration_s=duration)


def test_resample_tolerates_points_just_past_the_ends() -> None:
    out = resample_curve([-0.02, 2.03], [0.0, 1.0], duration_s=2.0)
    assert out.shape == (20,)


def test_csv_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "curves" / "fade.csv"
    times, values = np.array([0.0, 0.5, 1.25]), np.array([0.0, 0.3333333, 1.0])
    write_curve_csv(path, times, values)
    assert path.read_text().splitlines()[0] == "time_s,value"
    t, v = read_curve_csv(path)
    np.testing.assert_allclose(t, times)
    np.testing.assert_allclose(v, values)


@pytest.mark.parametrize("text, match", [
    ("", "empty"),
    ("time,value\n0,1\n", "header"),
    ("time_s,value\n", "no points"),
    ("time_s,value\n0,0.5\n1\n", "line 3: expected 2 columns"),
    ("time_s,value\n0,0.5\n1,loud\n", "line 3: value 'loud' is not a number"),
    ("time_s,value\nzero,0.5\n", "line 2: time_s 'zero'"),
    ("time_s,value\n0,nan\n", "not finite"),
    ("time_s,value\n0,0.5\n1,2\n", "line 3: value 2 is outside 0..1; a drawn curve is relative"),
    ("time_s,value\n0,-0.5\n", "line 2: value -0.5 is outside"),
])
def test_csv_errors_are_specific(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CurveError, match=match):
        read_curve_csv(path)


def test_csv_missing_file_and_atomic_write(tmp_path: Path) -> None:
    with pytest.raises(CurveError, match="not found"):
        read_curve_csv(tmp_path / "nope.csv")
    path = tmp_path / "keep.csv"
    write_curve_csv(path, [0, 1], [0.2, 0.4])
    before = path.read_bytes()
    with pytest.raises(CurveError):
        write_curve_csv(path, [0, 1], [0.2, float("nan")])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.csv"]  # no temp files left
    # Extra whitespace, a BOM and blank lines are accepted.
    path.write_text("\ufefftime_s, value\n0, 0.1\n\n2 ,1\n", encoding="utf-8")
    t, v = read_curve_csv(path)
    assert list(t) == [0, 2] and list(v) == [0.1, 1]


def test_db_maps() -> None:
    assert db_to_linear(-6.0206) == pytest.approx(0.5, rel=1e-4)
    assert db_to_linear(0.0) == 1.0 and isinstance(db_to_linear(0.0), float)
    assert linear_to_db(0.5) == pytest.approx(-6.0206, abs=1e-4)
    assert linear_to_db(0.0) == -80.0
    assert linear_to_db(1e-9, floor_db=-120.0) == pytest.approx(-120.0)
    x = np.array([1.0, 0.1, 0.01])
    np.testing.assert_allclose(linear_to_db(x), [0.0, -20.0, -40.0])
    np.testing.assert_allclose(db_to_linear(linear_to_db(x)), x)


# --- conform -----------------------------------------------------------------------------------

FADE_IN = np.clip(curve_times(80) / 8.0, 0, 1)
THREE_HITS = np.max([np.exp(-0.5 * ((curve_times(80) - c) / 0.25) ** 2)
                     for c in (1.5, 4.0, 6.5)], axis=0)


@pytest.mark.parametrize("target", [FADE_IN, THREE_HITS], ids=["fade-in", "three-hits"])
def test_conform_makes_flat_noise_follow_the_curve(target: np.ndarray) -> None:
    x = noise(8.0)
    r_before, mae_before = curve_correlation(x, SR, target), curve_mae(x, SR, target)
    y = conform(x, SR, target)
    assert y.shape == x.shape and y.dtype == np.float32
    assert r_before < 0.5
    assert curve_correlation(y, SR, target) >= 0.95
    assert curve_mae(y, SR, target) < 0.25 * mae_before


def test_conform_follows_a_realisable_curve_closely() -> None:
    target = relative_loudness(bursts(8.0, [1.0, 3.5, 6.0]))
    y = conform(noise(8.0, seed=5), SR, target)
    assert curve_correlation(y, SR, target) >= 0.98
    assert curve_mae(y, SR, target) < 0.05


def test_conform_strength_zero_is_identity_and_half_is_between() -> None:
    x = noise(8.0)
    assert np.array_equal(conform(x, SR, THREE_HITS, strength=0.0), x)
    r = [curve_correlation(conform(x, SR, THREE_HITS, strength=s), SR, THREE_HITS)
         for s in (0.0, 0.5, 1.0)]
    assert r[0] < r[1] < r[2]


def test_conform_never_clips_and_never_exceeds_the_input_peak() -> None:
    x = noise(4.0, amplitude=0.3)          # Gaussian peaks well above 1: clipped input
    x[: 2 * SR] *= 0.05                    # a quiet first half that the target wants loud
    y = conform(x, SR, np.ones(40))
    assert np.max(np.abs(y)) <= 0.999
    x = np.clip(noise(4.0, amplitude=0.05), -0.5, 0.5)
    y = conform(x, SR, np.ones(40) * np.linspace(1, 0.2, 40))
    assert np.max(np.abs(y)) <= np.max(np.abs(x)) + 1e-7


def test_conform_gain_is_continuous() -> None:
    x = noise(8.0)
    square = (np.sin(2 * np.pi * 0.5 * curve_times(80)) > 0).astype(float)  # worst case: steps
    gain = conform_gain(x, SR, square)
    gain_db = linear_to_db(gain, floor_db=-200)
    # Linear-in-dB between point centres bounds the slope by the gain range per point spacing.
    bound_db = (12.0 + 60.0) * 10 / SR
    assert np.max(np.abs(np.diff(gain_db))) <= bound_db + 1e-9
    assert np.max(np.abs(np.diff(gain))) < 0.01 * gain.max()
    np.testing.assert_allclose(conform(x, SR, square), (x * gain).astype(np.float32), rtol=1e-6)


def test_conform_does_not_raise_silence_beyond_the_bound() -> None:
    x = noise(6.0)
    x[2 * SR:4 * SR] *= 1e-3                      # a -60 dB gap that a flat target wants loud
    y = conform(x, SR, np.ones(60), max_boost_db=12.0)
    gap = slice(int(2.3 * SR), int(3.7 * SR))
    loud = slice(int(0.2 * SR), int(1.7 * SR))
    gap_gain_db = 20 * np.log10(np.std(y[gap]) / np.std(x[gap]))
    loud_gain_db = 20 * np.log10(np.std(y[loud]) / np.std(x[loud]))
    assert 6.0 < gap_gain_db <= 12.0 + 0.1        # raised, but not beyond the bound
    assert gap_gain_db - loud_gain_db <= 12.0 + 0.1


def test_conform_stereo_uses_one_gain_for_both_channels() -> None:
    x = noise(3.0, channels=2)
    x[:, 1] *= 0.5
    target = np.clip(curve_times(30) / 3.0, 0, 1)
    y = conform(x, SR, target)
    assert y.shape == x.shape
    np.testing.assert_allclose(y[:, 1] / x[:, 1], y[:, 0] / x[:, 0], rtol=1e-4)
    assert curve_correlation(y, SR, target) >= 0.95


def test_conform_input_errors() -> None:
    x = noise(2.0)
    with pytest.raises(CurveError, match="needs 20"):
        conform(x, SR, np.ones(50))
    assert conform(x, SR, np.ones(21)).shape == x.shape      # one point off is tolerated
    with pytest.raises(CurveError, match="all zero"):
        conform(x, SR, np.zeros(20))
    with pytest.raises(CurveError, match="strength"):
        conform(x, SR, np.ones(20), strength=1.5)
    with pytest.raises(CurveError, match="relative"):
        conform(x, SR, np.full(20, 2.0))
    with pytest.raises(FoleyError, match="empty"):
        conform(np.zeros(0, dtype=np.float32), SR, np.ones(1))
    silent = np.zeros(2 * SR, dtype=np.float32)
    assert np.array_equal(conform(silent, SR, FADE_IN[:20]), silent)


# --- real media --------------------------------------------------------------------------------

needs_shared = pytest.mark.skipif(not (SHARED / "sfx" / "manifest.csv").exists(),
                                  reason="shared data (../shared) not present")


@needs_shared
def test_real_rain_clip_conforms_to_drawn_curves() -> None:
    import soundfile as sf

    rows = {r["id"]: r for r in csv.DictReader(open(SHARED / "sfx" / "manifest.csv"))}
    audio, sr = sf.read(SHARED / "sfx" / rows["flightgear_sounds_rain"]["file"], dtype="float32")
    duration_s = audio.shape[0] / sr
    curve = relative_loudness(audio, sr)
    assert curve.size == round(float(rows["flightgear_sounds_rain"]["seconds"]) * 10)
    assert curve.min() > 0.5                                   # steady rain: a flat curve
    for times, values in [([0, duration_s], [0, 1]), ([0, 1, 1.5, 2.5, 3, 4, 4.5, duration_s],
                                                      [0, 0, 1, 0.1, 0.8, 0, 1, 0.3])]:
        target = resample_curve(times, values, duration_s=duration_s)
        out = conform(audio, sr, target)
        assert curve_correlation(out, sr, target) >= 0.95
        assert curve_mae(out, sr, target) < curve_mae(audio, sr, target)
        assert np.max(np.abs(out)) <= min(np.max(np.abs(audio)), 0.999)


@pytest.mark.skipif(not (SHARED / "videos" / "renpy_oa4_launch.mp4").exists(),
                    reason="shared videos not present")
def test_real_video_soundtrack_shows_its_four_voice_bursts() -> None:
    import av
    from scipy.signal import find_peaks

    with av.open(str(SHARED / "videos" / "renpy_oa4_launch.mp4")) as container:
        sr = container.streams.audio[0].rate
        audio = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1).T
    curve = relative_loudness(audio, sr)                       # 48 kHz stereo
    assert curve.size == 80
    peaks, _ = find_peaks(curve, height=0.5, distance=5)
    times = curve_times(80)[peaks]
    # The manifest: three countdown bursts, then the voice again near the end.
    assert len(peaks) == 4
    assert np.all(times[:3] < 3.5) and times[3] > 6.0
