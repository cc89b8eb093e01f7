"""Vocoders: the trained Vocos vocoder (shape, save/load, missing weights, training loss) and
Griffin-Lim's old config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from repo_modules import load_repo_module
from foley_core.errors import ModelUnavailableError
from foley_core.model.mel import MelSpectrogram
from foley_core.model.vocoder import (GriffinLimVocoder, VocosModel, VocosVocoder, save_vocoder,
                                      vocoder_from_config)

SHARED = Path(__file__).resolve().parents[2] / "shared"
REPO = Path(__file__).resolve().parents[1]
TINY = {"dim": 32, "intermediate_dim": 64, "num_layers": 2}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _load_train_script():
    return load_repo_module("scripts/train_vocoder.py")


def _tiny_vocoder(seed: int = 0) -> VocosVocoder:
    torch.manual_seed(seed)
    return VocosVocoder(VocosModel(**TINY), MelSpectrogram())


def _tone(n: int, sr: int = 16000) -> np.ndarray:
    t = np.arange(n) / sr
    return (0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t)).astype(np.float32)


@pytest.mark.parametrize("n_samples", [16000, 12345, 161, 1599])
def test_vocos_output_shape_dtype_length(n_samples):
    vocoder = _tiny_vocoder()
    # the mel of a longer clip cut to n // hop frames (the front end needs >= n_fft / 2 samples)
    mel = vocoder.mel(torch.from_numpy(_tone(16000)))[..., : n_samples // 160].repeat(2, 1, 1)
    assert mel.shape == (2, 64, n_samples // 160)
    audio = vocoder(mel, n_samples, seeds=[0, 1])
    assert isinstance(audio, np.ndarray) and audio.dtype == np.float32
    assert audio.shape == (2, n_samples)
    assert np.all(np.isfinite(audio))
    np.testing.assert_array_equal(audio[0], audio[1])     # deterministic: seeds do not matter


def test_vocos_is_local_in_time():
    # samples depend on nearby mel frames only (width-7 convolutions: +-9 frames for 2 blocks)
    vocoder = _tiny_vocoder()
    mel = vocoder.mel(torch.from_numpy(_tone(16000)))
    changed = mel.clone()
    changed[..., -5:] = -1.0
    a, b = vocoder(mel, 16000), vocoder(changed, 16000)
    assert np.abs(a[0, :4000] - b[0, :4000]).max() < 1e-6
    assert np.abs(a[0, -800:] - b[0, -800:]).max() > 1e-6


def test_save_load_round_trip_identical(tmp_path):
    vocoder = _tiny_vocoder(seed=3)
    save_vocoder(vocoder, tmp_path / "vocoder")
    config = json.loads((tmp_path / "vocoder" / "config.json").read_text())
    assert config["class"] == "VocosVocoder" and config["dim"] == TINY["dim"]
    loaded = vocoder_from_config(config, MelSpectrogram(), tmp_path / "vocoder")
    assert isinstance(loaded, VocosVocoder) and loaded.config == vocoder.config
    mel = vocoder.mel(torch.from_numpy(_tone(9999)))
    np.testing.assert_array_equal(vocoder(mel, 9999), loaded(mel, 9999))
    # a second save replaces the folder's files whole
    save_vocoder(_tiny_vocoder(seed=4), tmp_path / "vocoder")
    again = vocoder_from_config(config, MelSpectrogram(), tmp_path / "vocoder")
    assert not np.array_equal(again(mel, 9999), loaded(mel, 9999))
    assert sorted(p.name for p in (tmp_path / "vocoder").iterdir()) == ["config.json", "model.safetensors"]


def test_missing_or_bad_weights_raise_model_unavailable(tmp_path):
    config = _tiny_vocoder().config
    with pytest.raises(ModelUnavailableError, match="model.safetensors"):
        vocoder_from_config(config, MelSpectrogram(), tmp_path)
    with pytest.raises(ModelUnavailableError, match="no folder"):
        vocoder_from_config(config, MelSpectrogram())
    save_vocoder(_tiny_vocoder(), tmp_path / "other")
    wider = {**config, "dim": 48}
    with pytest.raises(ModelUnavailableError, match="another vocoder config"):
        vocoder_from_config(wider, MelSpectrogram(), tmp_path / "other")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelUnavailableError, match="damaged"):
        vocoder_from_config(config, MelSpectrogram(), tmp_path / "broken")
    with pytest.raises(ModelUnavailableError, match="bins"):
        VocosVocoder(VocosModel(**TINY, n_mels=80), MelSpectrogram())


def test_griffin_lim_loads_from_old_config_and_saves_config_only(tmp_path):
    shipped = json.loads((REPO / "assets" / "embedded" / "vocoder" / "config.json").read_text())
    mel = MelSpectrogram()
    for config in (shipped, {"class": "GriffinLimVocoder", "n_iter": 4, "momentum": 0.99,
                             "engine": "torch"}, {}):
        vocoder = vocoder_from_config(config, mel)
        assert isinstance(vocoder, GriffinLimVocoder)
    vocoder = vocoder_from_config(shipped, mel)
    assert vocoder.config == shipped
    save_vocoder(vocoder, tmp_path / "gl")
    assert sorted(p.name for p in (tmp_path / "gl").iterdir()) == ["config.json"]
    assert isinstance(vocoder_from_config(json.loads((tmp_path / "gl" / "config.json").read_text()),
                                          mel, tmp_path / "gl"), GriffinLimVocoder)
    audio = vocoder_from_config({"class": "GriffinLimVocoder", "n_iter": 2}, mel)(
        mel(torch.from_numpy(_tone(4321))), 4321)
    assert audio.shape == (1, 4321) and audio.dtype == np.float32
    with pytest.raises(ValueError, match="unknown vocoder class"):
        vocoder_from_config({"class": "WaveNet"}, mel)


def test_training_loss_on_a_real_clip_decreases():
    if not (SHARED / "sfx" / "manifest.csv").is_file():
        pytest.skip("shared sound library ../shared/sfx is absent")
    from foley_lab.data.sfx import SfxLibrary

    train = _load_train_script()
    library = SfxLibrary(SHARED / "sfx")
    clip = next(c for c in library.clips(split="train") if 1.0 <= c.seconds <= 4.0)
    audio = library.load(clip)
    sampler = train.CropSampler([audio], crop_s=0.5, sr=16000, seed=0)
    batch = sampler.batch(2)
    assert batch.shape == (2, 8000) and float(batch.abs().max()) <= 0.99 + 1e-6
    torch.manual_seed(0)
    model = VocosModel(**TINY)
    mel = MelSpectrogram()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    first, parts = train.vocoder_loss(model, mel, batch)
    assert set(parts) == {"stft", "mel_l1"}
    for _ in range(15):
        loss, _ = train.vocoder_loss(model, mel, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last, _ = train.vocoder_loss(model, mel, batch)
    assert last.item() < 0.85 * first.item()


def test_multi_resolution_stft_loss_is_zero_for_identical_audio_and_grows_with_noise():
    train = _load_train_script()
    clean = torch.from_numpy(_tone(8000))[None]
    assert float(train.multi_resolution_stft_loss(clean, clean)) == pytest.approx(0.0, abs=1e-6)
    noisy_a = clean + 0.01 * torch.randn_like(clean)
    noisy_b = clean + 0.1 * torch.randn_like(clean)
    assert 0 < float(train.multi_resolution_stft_loss(noisy_a, clean)) < float(
        train.multi_resolution_stft_loss(noisy_b, clean))


def test_crop_sampler_skips_silent_crops_and_rejects_all_silent_clips():
    train = _load_train_script()
    from foley_core.errors import FoleyError

    # a 10 s clip whose only sound is at 9-9.2 s: almost every random crop is silent
    audio = np.zeros(160000, dtype=np.float32)
    audio[144000:147200] = _tone(3200)
    sampler = train.CropSampler([audio], crop_s=1.0, sr=16000, seed=1)
    for crop in sampler.batch(8):
        assert float(crop.abs().max()) > 1e-3
    with pytest.raises(FoleyError, match="silent"):
        train.CropSampler([np.zeros(16000, dtype=np.float32)], crop_s=1.0, sr=16000, seed=0)


def _tiny_library(root: Path) -> Path:
    """A two-clip library in the shared library's format (manifest.csv + 16 kHz FLAC)."""
    import soundfile as sf

    (root / "audio" / "tone").mkdir(parents=True)
    rows = ["id,file,caption,category,split,seconds"]
    for i, seconds in enumerate((0.7, 1.6)):
        audio = _tone(int(seconds * 16000)) * (i + 1) / 2
        sf.write(root / "audio" / "tone" / f"t{i}.flac", audio, 16000, subtype="PCM_16")
        rows.append(f"t{i},audio/tone/t{i}.flac,a tone,tone,train,{seconds}")
    rows.append("v0,audio/tone/t0.flac,a tone,tone,val,0.7")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root


def test_train_script_checkpoints_and_resumes(tmp_path, capsys):
    train = _load_train_script()
    sfx = _tiny_library(tmp_path / "sfx")
    out = tmp_path / "run"
    common = ["--out", str(out), "--sfx", str(sfx), "--batch-size", "2", "--crop-s", "0.5",
              "--dim", "16", "--intermediate-dim", "32", "--num-layers", "1", "--log-every", "1"]
    assert train.main(common + ["--max-steps", "3"]) == 0
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 3 and {"model", "ema", "optimizer", "rng"} <= set(state)
    first = vocoder_from_config(json.loads((out / "model" / "config.json").read_text()),
                                MelSpectrogram(), out / "model")
    assert first.config["dim"] == 16
    # the rerun resumes at step 3 (a different --dim is ignored: the checkpoint's config wins)
    assert train.main(common[:-6] + ["--dim", "24", "--log-every", "1", "--max-steps", "5"]) == 0
    lines = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4, 5]
    assert all(np.isfinite(r["loss"]) and r["s_per_step"] > 0 for r in lines)
    assert '"resumed": true' in capsys.readouterr().out
    resumed = vocoder_from_config(json.loads((out / "model" / "config.json").read_text()),
                                  MelSpectrogram(), out / "model")
    assert resumed.config["dim"] == 16
    assert torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=False)["step"] == 5


def test_a_pipeline_with_a_trained_vocoder_saves_and_loads_it(tmp_path):
    from foley_core.model.configs import tiny_config
    from foley_core.pipeline import FoleyPipeline

    pipe = FoleyPipeline.from_config(tiny_config())
    pipe.vocoder = _tiny_vocoder(seed=3)
    pipe.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "vocoder" / "model.safetensors").is_file()
    loaded = FoleyPipeline.from_pretrained(tmp_path / "model")
    assert isinstance(loaded.vocoder, VocosVocoder)
    kw = dict(duration_s=0.8, caption="a knock", seeds=[1], num_inference_steps=2)
    np.testing.assert_array_equal(pipe(**kw).audios, loaded(**kw).audios)


def _noise_and_tone(n: int, seed: int = 0, sr: int = 16000) -> np.ndarray:
    t = np.arange(n) / sr
    noise = 0.05 * np.random.default_rng(seed).standard_normal(n)
    return (noise + 0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)


def test_smooth_inverse_keeps_the_mel_with_less_curvature_than_the_pseudo_inverse():
    mel = MelSpectrogram()
    m = mel(torch.from_numpy(_noise_and_tone(16000)))
    band_sums = torch.exp(mel.denormalize(m))
    smooth = GriffinLimVocoder(mel, inversion="smooth").magnitude(m)
    pinv = GriffinLimVocoder(mel).magnitude(m)
    # the band sums fitted as well as the pseudo-inverse fits them (both exact but for the
    # clamp at 0 beside the tone's band) ...
    def fit_error(s):
        return float((torch.matmul(mel.mel_basis, s) - band_sums).abs().sum() / band_sums.sum())
    assert fit_error(smooth) <= fit_error(pinv)
    noise_mel = mel(torch.from_numpy(np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1))
    noise_sums = torch.exp(mel.denormalize(noise_mel))
    smooth_noise = GriffinLimVocoder(mel, inversion="smooth").magnitude(noise_mel)
    assert float((torch.matmul(mel.mel_basis, smooth_noise) - noise_sums).abs().sum() / noise_sums.sum()) < 1e-3
    # ... by a spectrum that bends less across frequency (the bins the filters cover)
    def curvature(s):
        s = s[..., 1:-1, :]
        return float((s[..., 2:, :] - 2 * s[..., 1:-1, :] + s[..., :-2, :]).pow(2).sum())
    assert curvature(smooth) < curvature(pinv)
    assert curvature(smooth_noise) < curvature(GriffinLimVocoder(mel).magnitude(noise_mel))
    assert float(smooth[..., 0, :].abs().max()) == 0.0            # DC: no filter covers it


def test_reference_guide_keeps_the_reference_fine_spectrum_at_the_mel_level():
    from foley_lab.evaluation.metrics import tonal_line_share

    mel = MelSpectrogram()
    reference = _noise_and_tone(16000)
    target = 0.5 * reference                       # what the model made of it: 6 dB down
    m = mel(torch.from_numpy(target))
    guided = GriffinLimVocoder(mel, guide="reference")
    out = guided(m, 16000, reference=reference)[0]
    plain = GriffinLimVocoder(mel)(m, 16000)[0]

    def spectral_error(x):
        s, t = (torch.stft(torch.from_numpy(a), 1024, 160, window=torch.hann_window(1024),
                           return_complex=True).abs() for a in (x, target))
        return float((s.clamp_min(1e-5).log() - t.clamp_min(1e-5).log()).abs().mean())
    assert spectral_error(out) < 0.5 * spectral_error(plain)
    assert float((mel(torch.from_numpy(out)) - m).abs().mean()) < float((mel(torch.from_numpy(plain)) - m).abs().mean())
    assert abs(tonal_line_share(out, 16000) - tonal_line_share(target, 16000)) < 0.05
    # without a reference it is the plain vocoder; with one, the same call gives the same audio
    np.testing.assert_array_equal(guided(m, 16000)[0], plain)
    np.testing.assert_array_equal(guided(m, 16000, reference=reference)[0], out)


def test_griffin_lim_config_round_trip_and_old_configs():
    mel = MelSpectrogram()
    config = {"class": "GriffinLimVocoder", "n_iter": 8, "momentum": 0.99, "engine": "torch",
              "inversion": "smooth", "guide": "reference"}
    vocoder = vocoder_from_config(config, mel)
    assert vocoder.config == config and vocoder.uses_reference
    old = vocoder_from_config({"class": "GriffinLimVocoder", "n_iter": 8, "momentum": 0.99,
                               "engine": "torch"}, mel)
    assert (old.inversion, old.guide, old.uses_reference) == ("pinv", "none", False)
    for bad in ({"inversion": "nnls"}, {"guide": "video"}, {"guide": "reference", "engine": "librosa"}):
        with pytest.raises(ValueError):
            GriffinLimVocoder(mel, **bad)
