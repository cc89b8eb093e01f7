"""Full-band takes (foley_core.fullband): a take made from a 44.1/48 kHz reference keeps the band
above the model's 8 kHz, placed and gained as the model placed and gained its own band."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from foley_core import constants, export, fullband
from foley_core.backends import Capabilities, WindowOutput, reference_steps
from foley_core.generate import generate
from foley_core.library import fit_reference
from foley_core.project import GenerationRequest, Project, Stem, load_project, save_project
from stub_backends import StubBackend

SR = constants.MODEL_SR
LIMIT = 10 ** (constants.TAKE_PEAK_DBFS / 20)


def knock(sr: int, seconds: float = 0.25, seed: int = 0, amplitude: float = 1.0) -> np.ndarray:
    """A broadband hit: white noise with a 40 ms decay (energy up to the rate's Nyquist)."""
    t = np.arange(int(round(seconds * sr))) / sr
    x = np.random.default_rng(seed).standard_normal(t.size) * np.exp(-t / 0.04)
    return (amplitude * x / np.abs(x).max()).astype(np.float32)


def rustle(sr: int, seconds: float = 2.5, seed: int = 1) -> np.ndarray:
    """A steady broadband sound (sustained: it is looped or trimmed, never placed)."""
    x = np.random.default_rng(seed).standard_normal(int(round(seconds * sr)))
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def band_energy(x: np.ndarray, sr: int, lo_hz: float, hi_hz: float) -> float:
    spec = np.abs(np.fft.rfft(np.asarray(x, np.float64))) ** 2
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    return float(spec[(f >= lo_hz) & (f < hi_hz)].sum())


def band_filter(x: np.ndarray, sr: int, lo_hz: float, hi_hz: float) -> np.ndarray:
    spec = np.fft.rfft(np.asarray(x, np.float64))
    f = np.fft.rfftfreq(len(x), 1.0 / sr)
    spec[(f < lo_hz) | (f >= hi_hz)] = 0
    return np.fft.irfft(spec, n=len(x))


class GainSpy(StubBackend):
    """A model that returns the reference it was given (at 16 kHz) times a known gain over the
    window (`gain_fn(t_s)`, t from the window start): the "model's edit" is exactly known."""

    name = "gain-spy"
    window_s = 8.0
    description = "gain-spy"
    capabilities = Capabilities(reference=True)

    def __init__(self, gain_fn=lambda t: np.ones_like(t)):
        self.gain_fn = gain_fn
        self.references = []

    def generate_window(self, *, duration_s, seeds, steps, reference=None, strength=1.0, progress=None, **kw):
        n = round(duration_s * SR)
        self.references.append(None if reference is None else reference.copy())
        if reference is None:
            audio = 0.1 * np.random.default_rng(seeds[0]).standard_normal((len(seeds), n))
        else:
            audio = np.broadcast_to(reference, (len(seeds), n)) * self.gain_fn(np.arange(n) / SR)[None]
        for i in range(reference_steps(steps, strength if reference is not None else 1.0)[1]):
            if progress is not None:
                progress(i + 1, 1)
        return WindowOutput(audios=np.asarray(audio, np.float32), sr=SR)


# ------------------------------------------------------------------------------ strength 0

@pytest.mark.parametrize("ref_sr", [44_100, 48_000])
def test_strength_zero_is_the_fitted_reference_at_its_own_rate(ref_sr):
    spy = GainSpy()
    audio = rustle(ref_sr)                              # peak 0.5: below the take's peak limit
    result = generate(caption="a rustle", duration_s=1.7, reference=(audio, ref_sr), strength=0.0,
                      seed=3, model=spy)
    fitted = fit_reference(audio, ref_sr, duration_s=1.7, target_sr=ref_sr, seed=3)
    assert result.sr == ref_sr and spy.references == []           # no model, no vocoder
    np.testing.assert_array_equal(result.reference_audios[0], fitted)
    np.testing.assert_array_equal(result.audios[0], fitted)      # bit-exact: nothing else touched it
    meta = result.metadata
    assert meta["sr"] == ref_sr and meta["model_sr"] == SR and meta["full_band"] is True
    assert "itself" in meta["high_band"] and meta["reference"]["full_band"] is True
    # a loud one is the fitted reference scaled to the take's peak limit, nothing else
    loud = knock(ref_sr, seconds=1.0)
    result = generate(caption="a knock", duration_s=1.2, reference=(loud, ref_sr), strength=0.0, model=spy)
    fitted = fit_reference(loud, ref_sr, duration_s=1.2, target_sr=ref_sr)
    np.testing.assert_array_equal(result.reference_audios[0], fitted)
    np.testing.assert_allclose(result.audios[0], fitted * (LIMIT / np.abs(fitted).max()), rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------------ rates

def test_a_44k_reference_gives_a_44k_take_with_energy_above_8k():
    """The shipped model reshapes a 44.1 kHz sound: the take is 44.1 kHz, with the reference's band
    above 8 kHz at about the reference's level (it is absent from the model's 16 kHz output)."""
    ref = rustle(44_100, seconds=2.0)
    result = generate(caption="a rustle", duration_s=1.5, reference=(ref, 44_100), strength=0.4, steps=5,
                      seed=1)
    take = result.audios[0]
    assert result.sr == 44_100 and take.shape == (round(1.5 * 44_100),)
    assert result.metadata["full_band"] is True and "kHz" in result.metadata["high_band"]
    assert np.abs(take).max() <= LIMIT + 1e-6
    fitted = result.reference_audios[0]
    hf_db = 10 * np.log10(band_energy(take, 44_100, 9_000, 20_000) / band_energy(fitted, 44_100, 9_000, 20_000))
    assert -12.0 < hf_db < 6.0
    share = band_energy(take, 44_100, 9_000, 22_050) / band_energy(take, 44_100, 0, 22_050)
    assert share > 0.2                                 # white noise: more than half is above 9 kHz


@pytest.mark.parametrize("ref_sr", [16_000, 11_025])
def test_a_reference_at_or_below_the_models_rate_and_no_reference_keep_16k(ref_sr):
    spy = GainSpy()
    result = generate(caption="a knock", duration_s=1.0, reference=(rustle(ref_sr), ref_sr), strength=0.5,
                      model=spy)
    assert result.sr == SR and result.audios[0].shape == (SR,) and result.reference_audios[0].shape == (SR,)
    assert result.metadata["full_band"] is False and result.metadata["high_band"] is None
    plain = generate(caption="a knock", duration_s=1.0, source="model", model=spy)
    assert plain.sr == SR and plain.metadata["full_band"] is False and plain.metadata["sr"] == SR


def test_output_rate_is_the_highest_reference_rate_capped_at_48k():
    assert fullband.output_rate(SR, []) == SR
    assert fullband.output_rate(SR, [8_000]) == SR
    assert fullband.output_rate(SR, [22_050, 44_100]) == 44_100
    assert fullband.output_rate(SR, [96_000]) == 48_000


def test_the_crossover_is_power_complementary_and_outside_the_models_band_edge():
    low, high = fullband.crossover_masks(4096, 48_000)
    np.testing.assert_allclose(low ** 2 + high ** 2, 1.0, atol=1e-12)
    f = np.fft.rfftfreq(4096, 1 / 48_000)
    assert np.all(low[f >= 7_500] == 0) and np.all(high[f <= 6_700] == 0)


# ------------------------------------------------------------------------------ the high band follows the model

def test_the_high_band_follows_the_models_gain_edits():
    """The model here turns the reference down and up (a known 0.25 Hz swing over 30 dB): the high
    band, which the model never sees, must make the same swing."""
    def swing(t):
        return 10 ** (-15 * (1 - np.cos(2 * np.pi * t / 2.0)) / 20)     # 0 .. -30 dB, period 2 s

    ref_sr = 48_000
    result = generate(caption="a rustle", duration_s=3.0, reference=(rustle(ref_sr, 4.0), ref_sr),
                      strength=0.5, model=GainSpy(swing))
    take, fitted = result.audios[0], result.reference_audios[0]
    hop = ref_sr // 10
    frames = np.arange(2, 28)                                     # away from the ends' filter edges
    hi_take = band_filter(take, ref_sr, 9_000, 24_000)
    hi_ref = band_filter(fitted, ref_sr, 9_000, 24_000)
    ratio_db = np.array([10 * np.log10(np.mean(hi_take[k * hop:(k + 1) * hop] ** 2)
                                       / np.mean(hi_ref[k * hop:(k + 1) * hop] ** 2)) for k in frames])
    want_db = 20 * np.log10(swing((frames + 0.5) * 0.1))
    assert np.corrcoef(ratio_db, want_db)[0, 1] > 0.98
    # and at the model's level (the take's peak limit scales both bands alike)
    scale_db = result.metadata["peak_scaled_db"][0]
    assert np.median(np.abs(ratio_db - want_db - scale_db)) < 2.0


def test_onsets_are_placed_identically_in_both_bands():
    ref_sr = 48_000
    onsets = [0.3, 0.9, 1.45]
    spy = GainSpy()
    result = generate(caption="a knock", duration_s=2.0, reference=(knock(ref_sr), ref_sr), onsets_s=onsets,
                      strength=0.5, model=spy)
    assert result.metadata["reference"]["placed_at_onsets"]
    # the model started from the very same fit, at its own rate
    fitted = result.reference_audios[0]
    np.testing.assert_array_equal(spy.references[0][0], fullband.to_model_rate(fitted, ref_sr, SR, 2 * SR))
    take = result.audios[0]
    low = np.abs(band_filter(take, ref_sr, 200, 5_000))
    high = np.abs(band_filter(take, ref_sr, 10_000, 24_000))
    for t in onsets:
        i0, i1 = int((t - 0.05) * ref_sr), int((t + 0.05) * ref_sr)
        attack = [i0 + int(np.argmax(band[i0:i1] > 0.3 * band[i0:i1].max())) for band in (low, high)]
        assert abs(attack[0] - attack[1]) <= ref_sr // 1000               # within 1 ms
        assert abs(attack[0] / ref_sr - t) < 0.003


# ------------------------------------------------------------------------------ stems, projects, exports

def test_a_48k_stem_saves_reloads_and_exports_full_band(tmp_path):
    ref_sr = 48_000
    result = generate(caption="a rustle", duration_s=1.0, reference=(rustle(ref_sr), ref_sr), strength=0.5,
                      model=GainSpy())
    project = Project(name="Full band")
    project.add_stem(Stem(result.audios[0], result.sr, settings=GenerationRequest(caption="a rustle")))
    save_project(project, tmp_path / "proj")
    again = load_project(tmp_path / "proj")
    stem = again.stems[0]
    assert stem.sr == ref_sr and np.array_equal(stem.audio, result.audios[0])
    report = export.export_mix_wav(again, tmp_path / "mix.wav", target_lufs=None)
    mix, sr = sf.read(tmp_path / "mix.wav", dtype="float64")
    assert sr == constants.EXPORT_SR == report["sr"] and mix.shape == (ref_sr, 2)
    # the mix keeps what the stem has above 8 kHz: most of a white rustle's energy
    share = band_energy(mix[:, 0], sr, 9_000, 24_000) / band_energy(mix[:, 0], sr, 0, 24_000)
    stem_share = band_energy(stem.audio, ref_sr, 9_000, 24_000) / band_energy(stem.audio, ref_sr, 0, 24_000)
    assert share > 0.5 and share == pytest.approx(stem_share, rel=0.05)
    export.export_stems_zip(again, tmp_path / "stems.zip", target_lufs=None)
    import zipfile

    with zipfile.ZipFile(tmp_path / "stems.zip") as zf:
        readme = zf.read("README.txt").decode()
    assert "48000 Hz" in readme and "keep its bandwidth" in readme and "no content above" not in readme
