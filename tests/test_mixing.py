"""Stem rendering, mute/solo, BS.1770 loudness, true peak and mastering (foley_core.mixing)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from foley_core import audio_io, mixing
from foley_core.errors import FoleyError, TimeRangeError

SR = 48_000
SHARED = Path(__file__).resolve().parents[2] / "shared"


def sine(freq_hz: float, seconds: float, sr: int = SR, amplitude: float = 1.0, phase: float = 0.0) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t + phase)).astype(np.float32)


def foley_like(seconds: float = 6.0, sr: int = SR, seed: int = 0, bed: float = 0.05,
               hit: float = 0.15) -> np.ndarray:
    """A noise bed with ten decaying noise hits: a plausible Foley mix (about -18.5 LUFS, -3.5 dBTP)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = bed * rng.standard_normal((n, 2))
    hit_n = int(0.25 * sr)
    decay = np.exp(-np.arange(hit_n) / (0.05 * sr))
    for start in np.linspace(0.2, seconds - 0.5, 10):
        i = int(start * sr)
        out[i:i + hit_n] += hit * rng.standard_normal((hit_n, 2)) * decay[:, None]
    return out.astype(np.float32)


# --- render_stem -----------------------------------------------------------------------------


def test_pan_law_is_constant_power_with_minus_3_db_centre():
    ones = np.ones(100, dtype=np.float32)
    centre = mixing.render_stem(ones, SR, pan=0.0, out_sr=SR)
    assert centre.shape == (100, 2) and centre.dtype == np.float32
    assert np.allclose(centre, math.sqrt(0.5), atol=1e-6)
    assert 20 * math.log10(centre[0, 0]) == pytest.approx(-3.01, abs=0.01)
    left = mixing.render_stem(ones, SR, pan=-1.0, out_sr=SR)
    right = mixing.render_stem(ones, SR, pan=1.0, out_sr=SR)
    assert np.allclose(left[:, 0], 1.0) and np.allclose(left[:, 1], 0.0, atol=1e-7)
    assert np.allclose(right[:, 0], 0.0, atol=1e-7) and np.allclose(right[:, 1], 1.0)
    previous_left = 2.0
    for pan in np.linspace(-1, 1, 9):
        out = mixing.render_stem(ones, SR, pan=float(pan), out_sr=SR)
        assert out[0, 0] ** 2 + out[0, 1] ** 2 == pytest.approx(1.0, abs=1e-5)
        assert out[0, 0] < previous_left
        previous_left = out[0, 0]
    with pytest.raises(FoleyError, match="pan"):
        mixing.render_stem(ones, SR, pan=1.5, out_sr=SR)


def test_panning_keeps_bs1770_loudness_of_a_mono_stem():
    mono = foley_like(3.0)[:, 0]
    reference = mixing.integrated_lufs(mono, SR)
    for pan in (-0.8, 0.0, 0.3):
        stereo = mixing.render_stem(mono, SR, pan=pan, out_sr=SR)
        assert mixing.integrated_lufs(stereo, SR) == pytest.approx(reference, abs=0.05)


def test_stereo_source_is_balanced_unity_at_centre():
    src = np.stack([np.full(10, 0.5), np.full(10, 0.25)], axis=1).astype(np.float32)
    assert np.allclose(mixing.render_stem(src, SR, out_sr=SR), src)
    hard_left = mixing.render_stem(src, SR, pan=-1.0, out_sr=SR)
    assert np.allclose(hard_left[:, 0], 0.5) and np.allclose(hard_left[:, 1], 0.0, atol=1e-7)


def test_fades_are_raised_cosine():
    ones = np.ones(SR, dtype=np.float32)
    out = mixing.render_stem(ones, SR, pan=-1.0, fade_in_s=0.1, fade_out_s=0.2, out_sr=SR)[:, 0]
    n_in, n_out = 4800, 9600
    k = np.arange(n_in)
    assert np.allclose(out[:n_in], 0.5 - 0.5 * np.cos(np.pi * k / n_in), atol=1e-6)
    assert out[0] == 0.0 and out[n_in // 2] == pytest.approx(0.5, abs=1e-6)   # -6 dB midpoint
    assert np.all(np.diff(out[:n_in]) > 0)
    assert np.all(out[n_in:SR - n_out] == 1.0)
    assert np.allclose(out[SR - n_out:], (0.5 - 0.5 * np.cos(np.pi * np.arange(n_out) / n_out))[::-1], atol=1e-6)
    assert out[-1] == 0.0 and np.all(np.diff(out[SR - n_out:]) < 0)


def test_fade_longer_than_the_sound_never_reaches_full_level():
    out = mixing.render_stem(np.ones(480, np.float32), SR, pan=-1.0, fade_in_s=0.02, out_sr=SR)[:, 0]
    assert out.max() < 0.6 and out[0] == 0.0


def test_offset_places_the_first_sample_exactly():
    impulse = np.zeros(1000, dtype=np.float32)
    impulse[0] = 1.0
    out = mixing.render_stem(impulse, SR, pan=-1.0, offset_s=1.2345, out_sr=SR, total_s=2.0)
    assert out.shape == (96_000, 2)
    assert np.flatnonzero(out[:, 0]).tolist() == [round(1.2345 * SR)]


def test_negative_offset_cuts_the_head():
    impulse = np.zeros(2000, dtype=np.float32)
    impulse[1000] = 1.0
    out = mixing.render_stem(impulse, SR, pan=-1.0, offset_s=-0.01, out_sr=SR)
    assert out.shape[0] == 2000 - 480
    assert np.flatnonzero(out[:, 0]).tolist() == [520]
    gone = mixing.render_stem(impulse, SR, offset_s=-1.0, out_sr=SR, total_s=1.0)
    assert gone.shape == (SR, 2) and not gone.any()


def test_trim_gain_and_timeline_length():
    ramp = np.linspace(0, 0.5, SR, dtype=np.float32)
    out = mixing.render_stem(ramp, SR, pan=-1.0, gain_db=6.0, trim_start_s=0.1, trim_end_s=0.2,
                             offset_s=0.5, out_sr=SR, total_s=0.55)
    assert out.shape == (26_400, 2)
    assert not out[:24_000].any()
    expected = ramp[4800:4800 + 2400] * 10 ** (6 / 20)
    assert np.allclose(out[24_000:, 0], expected, atol=1e-6)


@pytest.mark.parametrize("kwargs", [dict(trim_end_s=1.5), dict(trim_start_s=0.5, trim_end_s=0.4),
                                    dict(trim_start_s=-0.1)])
def test_bad_trims_are_refused(kwargs):
    with pytest.raises(TimeRangeError, match="trim"):
        mixing.render_stem(np.ones(SR, np.float32), SR, out_sr=SR, **kwargs)


def test_resampled_from_model_rate_keeps_pitch_level_and_window():
    tone = sine(1000.0, 0.5, sr=16_000, amplitude=0.5)
    out = mixing.render_stem(tone, 16_000, pan=-1.0, offset_s=0.25, out_sr=SR, total_s=1.0)
    assert out.shape == (SR, 2)
    left = out[:, 0]
    assert not left[:12_000].any() and not left[36_000:].any()   # silent exactly outside its window
    body = left[14_000:34_000]
    spectrum = np.abs(np.fft.rfft(body * np.hanning(body.size)))
    assert np.fft.rfftfreq(body.size, 1 / SR)[spectrum.argmax()] == pytest.approx(1000.0, abs=3.0)
    assert np.sqrt(np.mean(body ** 2)) == pytest.approx(0.5 / math.sqrt(2), rel=0.01)


def test_bad_audio_is_refused():
    with pytest.raises(FoleyError, match="NaN"):
        mixing.render_stem(np.array([0.0, np.nan], np.float32), SR, out_sr=SR)
    with pytest.raises(FoleyError, match="mono"):
        mixing.render_stem(np.zeros((10, 3), np.float32), SR, out_sr=SR)


# --- mix_stems -------------------------------------------------------------------------------


def _const(value: float, n: int = 4) -> np.ndarray:
    return np.full((n, 2), value, dtype=np.float32)


@pytest.mark.parametrize("switches, expected", [
    ([(False, False), (False, False), (False, False)], 7.0),
    ([(False, False), (True, False), (False, False)], 5.0),      # muted never plays
    ([(False, True), (False, False), (False, False)], 1.0),      # solo: only soloed play
    ([(False, True), (False, False), (False, True)], 5.0),
    ([(False, True), (False, False), (True, True)], 1.0),        # muted beats solo
    ([(True, False), (True, False), (True, False)], 0.0),
])
def test_mute_and_solo(switches, expected):
    stems = [mixing.RenderedStem(_const(v), mute=m, solo=s) for v, (m, s) in zip((1.0, 2.0, 4.0), switches)]
    out = mixing.mix_stems(stems)
    assert out.shape == (4, 2) and out.dtype == np.float32
    assert np.all(out == expected)


def test_mix_pads_shorter_stems_and_accepts_plain_arrays():
    out = mixing.mix_stems([_const(1.0, 3), _const(2.0, 5)], n_samples=6)
    assert out[:, 0].tolist() == [3, 3, 3, 2, 2, 0]
    assert mixing.mix_stems([]).shape == (0, 2)
    with pytest.raises(FoleyError, match="stereo"):
        mixing.mix_stems([np.zeros(5, np.float32)])


# --- loudness meter and true peak -------------------------------------------------------------


def test_meter_matches_ebu_tech_3341_and_the_sine_reference():
    # EBU Tech 3341 case 1: stereo 1 kHz sine at -23 dBFS in both channels reads -23.0 LUFS
    s = sine(1000.0, 5.0, amplitude=10 ** (-23 / 20))
    assert mixing.integrated_lufs(np.stack([s, s], 1), SR) == pytest.approx(-23.0, abs=0.1)
    # a 1 kHz sine peaking at -20 dBFS: -23.0 LUFS as one (mono) channel, -20.0 LUFS in both channels
    s = sine(1000.0, 5.0, amplitude=0.1)
    assert mixing.integrated_lufs(s, SR) == pytest.approx(-23.0, abs=0.1)
    assert mixing.integrated_lufs(np.stack([s, s], 1), SR) == pytest.approx(-20.0, abs=0.1)
    # and it is pyloudnorm's BS.1770-4 meter, gating included
    x = foley_like(4.0)
    assert mixing.integrated_lufs(x, SR) == pytest.approx(pyloudnorm.Meter(SR).integrated_loudness(
        x.astype(np.float64)), abs=1e-6)


def test_short_clips_and_silence():
    long = sine(1000.0, 2.0, amplitude=0.1)
    assert mixing.integrated_lufs(long[: int(0.2 * SR)], SR) == pytest.approx(
        mixing.integrated_lufs(long, SR), abs=0.2)   # one block over the clip, not padded with silence
    assert mixing.integrated_lufs(np.zeros((SR, 2), np.float32), SR) == -math.inf
    assert mixing.integrated_lufs(np.zeros((0, 2), np.float32), SR) == -math.inf
    assert mixing.true_peak_dbtp(np.zeros((SR, 2), np.float32), SR) == -math.inf


def test_true_peak_finds_inter_sample_peaks():
    # fs/4 sine at 45 degrees: every sample sits at 0.707 of the real peak (-3 dB hidden)
    x = sine(SR / 4, 1.0, amplitude=0.5, phase=math.pi / 4)
    assert 20 * math.log10(np.abs(x).max()) == pytest.approx(-9.03, abs=0.01)
    assert mixing.true_peak_dbtp(x, SR) == pytest.approx(-6.02, abs=0.15)
    assert mixing.true_peak_dbtp(np.stack([x * 0.5, x], 1), SR) == pytest.approx(-6.02, abs=0.15)


# --- master -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [-23.0, -16.0, -14.0])
def test_master_reaches_target_and_ceiling_survives_24_bit_export(target, tmp_path):
    mix = foley_like(6.0)
    out, report = mixing.master(mix, SR, target_lufs=target, ceiling_dbtp=-1.0)
    assert out.shape == mix.shape and out.dtype == np.float32
    assert report["lufs_after"] == pytest.approx(target, abs=0.5)
    assert report["target_reached"]
    assert report["true_peak_dbtp_after"] <= -1.0
    assert report["lufs_before"] == pytest.approx(mixing.integrated_lufs(mix, SR))
    if target == -23.0:
        assert not report["limited"]        # a static gain was enough
    wav = tmp_path / "mix.wav"
    audio_io.write_export_wav(wav, out, SR)
    info = sf.info(str(wav))
    assert (info.samplerate, info.channels, info.subtype) == (48_000, 2, "PCM_24")
    back, _ = sf.read(str(wav), dtype="float64")
    assert mixing.true_peak_dbtp(back, SR) <= -1.0
    assert mixing.integrated_lufs(back, SR) == pytest.approx(target, abs=0.5)


def test_limiter_engages_only_when_needed_and_is_smooth():
    mix = foley_like(6.0, seed=3)
    out, report = mixing.master(mix, SR, target_lufs=-12.0, ceiling_dbtp=-1.0)
    assert report["limited"] and report["limiter_reduction_db"] > 0.5
    assert report["true_peak_dbtp_after"] <= -1.0
    assert report["lufs_after"] == pytest.approx(-12.0, abs=0.5)
    gain = np.abs(out[:, 0].astype(np.float64)) / np.maximum(np.abs(mix[:, 0]), 1e-9)
    loud = np.abs(mix[:, 0]) > 0.05
    ratio = gain[loud]
    # the applied gain moves slowly: neighbouring loud samples see almost the same gain
    idx = np.flatnonzero(loud)
    close = np.diff(idx) == 1
    assert np.max(np.abs(np.diff(ratio)[close])) < 0.01


def test_master_says_so_when_a_peaky_mix_cannot_reach_the_target():
    peaky = foley_like(6.0, bed=0.002, hit=0.4)      # loud hits in near silence
    out, report = mixing.master(peaky, SR, target_lufs=-14.0, ceiling_dbtp=-1.0, max_limiting_db=6.0)
    assert not report["target_reached"] and "too peaky" in report["note"]
    assert report["limiter_reduction_db"] <= 6.0 + 0.2
    assert report["true_peak_dbtp_after"] <= -1.0 and mixing.true_peak_dbtp(out, SR) <= -1.0


def test_master_without_normalisation_keeps_level_unless_it_peaks():
    mix = foley_like(3.0) * np.float32(0.5)
    out, report = mixing.master(mix, SR, target_lufs=None, ceiling_dbtp=-1.0)
    assert report["gain_db"] == 0.0 and not report["limited"]
    assert np.array_equal(out, mix)
    loud = foley_like(3.0) * np.float32(3.0)
    out, report = mixing.master(loud, SR, target_lufs=None, ceiling_dbtp=-1.0)
    assert report["limited"] and report["true_peak_dbtp_after"] <= -1.0


def test_master_of_silence_is_silence_with_a_report():
    out, report = mixing.master(np.zeros((SR, 2), np.float32), SR, target_lufs=-23.0)
    assert not out.any() and out.shape == (SR, 2)
    assert report["silent"] and report["lufs_after"] is None and report["true_peak_dbtp_after"] is None
    assert report["gain_db"] == 0.0 and not report["target_reached"]


@pytest.mark.parametrize("kwargs", [dict(target_lufs=5.0), dict(target_lufs=float("nan")), dict(ceiling_dbtp=3.0)])
def test_master_refuses_bad_settings(kwargs):
    with pytest.raises(FoleyError):
        mixing.master(foley_like(1.0), SR, **kwargs)


@pytest.mark.skipif(not (SHARED / "sfx" / "manifest.csv").is_file(), reason="shared sfx library not present")
def test_master_on_a_real_library_clip(tmp_path):
    import csv

    with open(SHARED / "sfx" / "manifest.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if float(r["seconds"]) >= 2.0)
    audio, sr = audio_io.read_audio(SHARED / "sfx" / row["file"])
    # the manifest's loudness was measured on the 16 kHz file: our meter agrees
    assert mixing.integrated_lufs(audio, sr) == pytest.approx(float(row["lufs"]), abs=0.5)
    stem = mixing.render_stem(audio, sr, out_sr=SR)
    out, report = mixing.master(stem, SR, target_lufs=-16.0)
    assert report["lufs_after"] == pytest.approx(-16.0, abs=0.5)
    assert mixing.true_peak_dbtp(out, SR) <= -1.0
