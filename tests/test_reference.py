"""Reference-guided (audio-to-audio, SDEdit) generation: fitting, strength, steps, metadata, errors."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import soundfile as sf
import torch

from foley_core import loudness
from foley_core import generate as gen
from foley_core.backends import Capabilities, WindowOutput, get_backend, reference_steps
from foley_core.errors import FoleyError, GenerationCancelled, MediaError
from foley_core.request import Region
from foley_core.generate import generate
from foley_core.fullband import to_model_rate
from foley_core.library import default_library, fit_reference
from foley_core.model.configs import tiny_config
from foley_core.project import Reference
from stub_backends import StubBackend

torch.set_num_threads(1)
SR = 16000
LIBRARY_CLIP = "0ad_footsteps_footstep_gravel_walking"


# the embedded backend on a tiny random model for every test here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("tiny_model")


def bursts(seconds: float, sr: int, *, times_s=(0.1, 0.45), peak: float = 0.5, channels: int = 1,
           seed: int = 0) -> np.ndarray:
    """Decaying noise bursts (known events) at `times_s`, peak `peak`."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    env = np.zeros(n)
    for t in times_s:
        i = int(t * sr)
        env[i:] += np.exp(-np.arange(n - i) / (0.04 * sr))
    x = rng.standard_normal(n) * env
    x = (peak * x / np.max(np.abs(x))).astype(np.float32)
    return np.repeat(x[:, None], channels, axis=1) if channels > 1 else x


@pytest.fixture(scope="module")
def ref_files(tmp_path_factory):
    """Reference files of odd formats, rates, channel counts and lengths."""
    folder = tmp_path_factory.mktemp("refs")
    files = {}
    files["stereo_44k.wav"] = (bursts(0.37, 44100, times_s=(0.05, 0.2), channels=2), 44100)
    hum_t = np.arange(int(0.7 * 22050)) / 22050
    files["hum_22k.flac"] = ((0.3 * np.sin(2 * np.pi * 220 * hum_t) * (1 + 0.2 * np.sin(9 * hum_t)))
                             .astype(np.float32), 22050)
    files["long_8k.ogg"] = (bursts(5.3, 8000, times_s=(0.3, 1.7, 2.9, 4.4)), 8000)
    paths = {}
    for name, (audio, sr) in files.items():
        sf.write(folder / name, audio, sr)
        paths[name] = folder / name
    return paths


class SpyBackend(StubBackend):
    """Records the reference slices and strengths each window receives; returns quiet noise."""

    name = "spy"
    description = "spy"
    supports_reference = True
    reference_detail = False       # a test switches it on for one instance

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(reference=self.supports_reference, reference_detail=self.reference_detail)

    def __init__(self):
        self.calls = []

    def generate_window(self, *, duration_s, seeds, steps, reference=None, strength=1.0, progress=None, **kw):
        self.calls.append({"duration_s": duration_s, "reference": None if reference is None else reference.copy(),
                           "strength": strength, "steps": steps})
        n_run = reference_steps(steps, strength if reference is not None else 1.0)[1]
        for i in range(n_run):
            if progress is not None:
                progress(i + 1, n_run)
        n = round(duration_s * SR)
        rng = np.random.default_rng(seeds[0])
        return WindowOutput(audios=(0.1 * rng.standard_normal((len(seeds), n))).astype(np.float32), sr=SR)


class NoReferenceBackend(SpyBackend):
    name = "plain-only"
    supports_reference = False


def read_mono(path):
    from foley_core.audio_io import read_audio

    return read_audio(path)


# ------------------------------------------------------------------------------ the step rule

def test_reference_steps_rule():
    assert reference_steps(25, 1.0) == (0, 25)            # plain generation
    assert reference_steps(25, 0.0) == (25, 0)            # the reference itself
    assert reference_steps(25, 0.6) == (10, 15)
    assert reference_steps(10, 0.2) == (8, 2)
    assert reference_steps(25, 0.01) == (24, 1)           # any strength above 0 runs a step
    assert reference_steps(25, 0.99) == (0, 25)
    with pytest.raises(ValueError):
        reference_steps(25, 1.5)


# ------------------------------------------------------------------------------ fitting, lengths

@pytest.mark.parametrize("name", ["stereo_44k.wav", "hum_22k.flac", "long_8k.ogg"])
def test_odd_rates_and_lengths_reach_each_window_at_the_right_length(ref_files, name):
    spy = SpyBackend()
    calls = []
    result = generate(caption="a knock", duration_s=3.3, reference=str(ref_files[name]), strength=0.5,
                      seed=4, candidates=2, steps=4, model=spy, progress=lambda s, n: calls.append((s, n)))
    # the fitted reference of candidate i is fit_reference with seed + i, at the take's rate (the
    # reference's, never below the model's); the model sees that same fit at its own rate
    audio, sr = read_mono(ref_files[name])
    assert sr != SR
    out_sr = max(sr, SR)
    assert result.sr == out_sr
    fitted_out = [fit_reference(audio, sr, duration_s=3.3, target_sr=out_sr, seed=s) for s in (4, 5)]
    fitted = [to_model_rate(f, out_sr, SR, round(3.3 * SR)) for f in fitted_out]
    assert len(result.reference_audios) == 2
    for got, want in zip(result.reference_audios, fitted_out):
        assert got.shape == (round(3.3 * out_sr),)
        np.testing.assert_array_equal(got, want)
    assert all(a.shape == (round(3.3 * out_sr),) for a in result.audios)
    # windows (0, 2), (1, 2), (2, 1.3) each get their own slice, one row per candidate
    assert [c["duration_s"] for c in spy.calls] == [2.0, 2.0, pytest.approx(1.3)]
    for call, start_s in zip(spy.calls, (0.0, 1.0, 2.0)):
        n = round(call["duration_s"] * SR)
        i0 = round(start_s * SR)
        assert call["reference"].shape == (2, n)
        assert call["strength"] == 0.5
        np.testing.assert_array_equal(call["reference"][1], fitted[1][i0:i0 + n])
    # 2 of 4 steps per window, 3 windows: progress counts the 6 steps run
    assert calls == [(i, 6) for i in range(1, 7)]
    assert result.metadata["steps"] == 4 and result.metadata["steps_run"] == 2


def test_the_reference_reaches_the_embedded_vae_at_the_window_length(monkeypatch):
    pipe = get_backend("embedded").pipeline
    seen = []
    original = pipe.encode_audio

    def spy(audio, duration_s):
        latents = original(audio, duration_s)
        seen.append((np.shape(audio), duration_s, tuple(latents.shape)))
        return latents

    monkeypatch.setattr(pipe, "encode_audio", spy)
    ref = (bursts(0.83, 11025), 11025)                  # odd rate and length
    result = generate(caption="a knock", duration_s=2.3, reference=ref, strength=0.5, steps=2)
    assert result.audios[0].shape == (round(2.3 * SR),)
    assert [(shape, d) for shape, d, _ in seen] == [((1, 32000), 2.0), ((1, 20800), pytest.approx(1.3))]
    channels = pipe.unet.config.in_channels
    assert [lat for *_, lat in seen] == [(1, channels, pipe.latent_length(2.0)),
                                         (1, channels, pipe.latent_length(1.3))]


# ------------------------------------------------------------------------------ strength 0 and 1

def test_strength_zero_is_the_fitted_reference(ref_files):
    spy = SpyBackend()
    calls = []
    steady = np.random.default_rng(1).standard_normal(int(2.7 * 22050))
    ref = ((0.5 * steady / np.abs(steady).max()).astype(np.float32), 22050)
    result = generate(caption="a knock", duration_s=2.5, reference=ref, strength=0.0, candidates=2, steps=5,
                      model=spy, progress=lambda s, n: calls.append(s))
    # the fitted reference at the reference's own rate (22.05 kHz), not through the model's 16 kHz
    fitted = fit_reference(ref[0], ref[1], duration_s=2.5, target_sr=22050, seed=0)
    assert result.sr == 22050
    np.testing.assert_array_equal(result.audios[0], fitted)
    assert spy.calls == [] and calls == []               # no model ran
    meta = result.metadata
    assert meta["steps_run"] == 0 and meta["windows"] == [] and meta["strength"] == 0.0
    assert meta["instructions"]["enforced_after"][0].startswith("reference")
    assert "reference" not in meta["instructions"]["ignored_by_model"]

    # conformed to the curve when a curve is given (conform defaults to 1 with a curve)
    curve = np.concatenate([np.full(12, 0.1), np.ones(6), np.full(7, 0.3)]).astype(np.float32)
    shaped = generate(caption="a knock", duration_s=2.5, reference=ref, strength=0.0, curve=curve, model=spy)
    expected = loudness.conform(fitted, 22050, gen.prepare_curve(curve, 2.5), strength=1.0)
    np.testing.assert_array_equal(shaped.audios[0], expected)
    assert shaped.metadata["curve_r_after"][0] > max(0.9, shaped.metadata["curve_r_before"][0])
    off = generate(caption="a knock", duration_s=2.5, reference=ref, strength=0.0, curve=curve, conform=0.0,
                   model=spy)
    np.testing.assert_array_equal(off.audios[0], fitted)


def test_default_strength_and_video_with_a_reference(shared_dir):
    spy = SpyBackend()
    meta = generate(caption="x", duration_s=1.0, reference=(bursts(1.0, SR), SR), model=spy).metadata
    assert meta["strength"] == gen.DEFAULT_REFERENCE_STRENGTH == spy.calls[0]["strength"]
    video = str(shared_dir / "videos" / "mecavideo_balle1.mp4")
    kw = dict(caption="a ball knocks on the floor", video=video, start_s=0.2, duration_s=1.2,
              mask=Region(box=(100, 20, 220, 200)), reference=LIBRARY_CLIP, steps=2)
    result = generate(strength=0.5, **kw)
    assert result.audios[0].shape == (round(1.2 * SR),)
    onsets = ["onsets"] if result.metadata["onsets_source"] == "video" else []   # models with onsets
    assert result.metadata["instructions"]["given"] == ["text", "video", "mask", *onsets, "reference"]
    assert "read_video" in result.metadata["timings_s"]
    only_ref = generate(strength=0.0, **kw)                   # no model: no frames read for it
    assert "read_video" not in only_ref.metadata["timings_s"]
    assert only_ref.metadata["instructions"]["ignored_by_model"] == ["text", "video", "mask"]


def test_strength_zero_works_with_a_backend_without_reference_support():
    result = generate(caption="x", duration_s=1.0, reference=(bursts(1.0, SR), SR), strength=0.0,
                      model=NoReferenceBackend())
    assert result.metadata["steps_run"] == 0
    with pytest.raises(FoleyError, match="not supported by the plain-only backend"):
        generate(caption="x", duration_s=1.0, reference=(bursts(1.0, SR), SR), strength=0.5,
                 model=NoReferenceBackend())


def test_strength_one_is_plain_generation():
    kw = dict(caption="footsteps on gravel", duration_s=2.5, seed=3, candidates=2, steps=4,
              curve=np.linspace(0.2, 1.0, 25))
    plain = generate(**kw, source="model")
    guided = generate(**kw, reference=LIBRARY_CLIP, strength=1.0)
    for a, b in zip(plain.audios, guided.audios):
        np.testing.assert_array_equal(a, b)
    assert guided.metadata["steps_run"] == 4 and guided.metadata["reference"]["strength"] == 1.0
    assert plain.metadata["reference"] is None and plain.metadata["strength"] is None
    assert plain.metadata["steps_run"] == 4


# ------------------------------------------------------------------------------ intermediate strengths

def test_intermediate_strength_runs_fewer_steps_on_the_embedded_model():
    ref = (bursts(2.0, SR), SR)
    calls = []
    result = generate(caption="a knock", duration_s=3.3, reference=ref, strength=0.5, steps=6,
                      progress=lambda s, n: calls.append((s, n)))
    assert calls == [(i, 9) for i in range(1, 10)]       # 3 of 6 steps x 3 windows
    assert "reference_encode" in result.metadata["timings_s"]
    plain = generate(caption="a knock", duration_s=3.3, steps=6)
    assert not np.allclose(result.audios[0], plain.audios[0])


def corr(a: np.ndarray, b: np.ndarray) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    return float(a @ b / np.sqrt((a @ a) * (b @ b)))


def test_low_strength_keeps_the_reference_structure():
    """On the tiny RANDOM model the VAE decoder scrambles any mel (even the reference's own
    round trip correlates ~0 with its mel), so the comparison is made where the sampler acts:
    the output latent against the reference latent, and the output mel against the model's
    reconstruction of the reference mel (strength 0 through the pipeline). Measured (10 steps,
    3 library clips): r ~0.35-0.4 at strength 0.2 against ~0.0 (latent) / ~0.16 (mel) at 1.0."""
    from foley_core.pipeline import FoleyPipeline

    pipe = FoleyPipeline.from_config(tiny_config(window_s=2.0))
    ref = fit_reference(default_library().load(LIBRARY_CLIP), SR, duration_s=2.0)
    ref_latent = pipe.encode_audio(ref, 2.0)[0].numpy()
    kw = dict(duration_s=2.0, caption="footsteps on gravel", reference=ref, num_inference_steps=10)
    ref_mel = pipe(strength=0.0, seeds=[0], **kw).mels[0].numpy()
    scores = {}
    for strength in (0.2, 1.0):
        outs = [pipe(strength=strength, seeds=[seed], **kw) for seed in range(3)]
        scores[strength] = (np.mean([corr(o.latents[0].numpy(), ref_latent) for o in outs]),
                            np.mean([corr(o.mels[0].numpy(), ref_mel) for o in outs]))
    assert scores[0.2][0] > scores[1.0][0] + 0.2, scores
    assert scores[0.2][1] > scores[1.0][1] + 0.1, scores


def test_reference_detail_restores_what_the_vae_loses():
    """With reference_detail the decoded mel gets mel - D(E(mel)) of the reference: at strength 0
    (no step run) the pipeline's mel is then the reference's own mel, not the VAE's
    reconstruction of it; without a reference, or at strength 1, the flag changes nothing."""
    from foley_core.pipeline import FoleyPipeline

    pipe = FoleyPipeline.from_config(tiny_config(window_s=2.0))
    ref = fit_reference(default_library().load(LIBRARY_CLIP), SR, duration_s=1.5)
    n_mel = pipe.mel.n_frames(ref.size)
    own_mel = pipe.mel(torch.from_numpy(ref)[None])[..., :n_mel].clamp(-1, 1)
    kw = dict(duration_s=1.5, caption="footsteps on gravel", reference=ref, num_inference_steps=4,
              seeds=[0])
    restored = pipe(strength=0.0, reference_detail=True, **kw).mels
    reconstructed = pipe(strength=0.0, reference_detail=False, **kw).mels
    torch.testing.assert_close(restored, own_mel, rtol=0, atol=1e-5)
    assert (reconstructed - own_mel).abs().mean() > 0.05       # the random VAE scrambles it
    detail = pipe.reference_detail(ref, 1.5)
    assert detail.shape == (1, pipe.mel.config.n_mels, pipe.latent_length(1.5) * pipe.vae.time_downsample)
    # at 0.5 the detail is added to what the sampler made (same seed, same latents)
    half = [pipe(strength=0.5, reference_detail=flag, **kw) for flag in (True, False)]
    torch.testing.assert_close(half[0].latents, half[1].latents, rtol=0, atol=0)
    decoded = pipe.vae.decode(half[1].latents / pipe.vae.config.scaling_factor)[..., :n_mel]
    torch.testing.assert_close(half[0].mels, (decoded + detail[..., :n_mel]).clamp(-1, 1),
                               rtol=0, atol=1e-5)
    plain = dict(kw, reference=None)
    torch.testing.assert_close(pipe(reference_detail=True, **plain).mels,
                               pipe(reference_detail=False, **plain).mels, rtol=0, atol=0)
    # the model folder's config sets the default, and the embedded backend reports it
    pipe.config = {**pipe.config, "reference_detail": True}
    torch.testing.assert_close(pipe(strength=0.0, **kw).mels, restored, rtol=0, atol=0)
    backend = get_backend("embedded")
    assert backend.reference_detail is False
    backend.pipeline.config = {**backend.pipeline.config, "reference_detail": True}
    try:
        assert backend.reference_detail is True
    finally:
        backend.pipeline.config = {**backend.pipeline.config, "reference_detail": False}


def test_candidates_with_a_looped_reference_equal_solo_runs(ref_files):
    kw = dict(caption="a hum", duration_s=1.8, reference=str(ref_files["hum_22k.flac"]), strength=0.5, steps=2)
    both = generate(seed=5, candidates=2, **kw)
    solo = generate(seed=6, **kw)
    np.testing.assert_array_equal(both.audios[1], solo.audios[0])
    np.testing.assert_array_equal(both.reference_audios[1], solo.reference_audios[0])
    # the 0.7 s hum is looped to 1.8 s, in a different segment order per candidate seed
    assert not np.array_equal(both.reference_audios[0], both.reference_audios[1])


def test_cancel_with_a_reference():
    seen = []
    with pytest.raises(GenerationCancelled):
        generate(caption="a knock", duration_s=1.0, reference=(bursts(1.0, SR), SR), strength=0.8, steps=5,
                 progress=lambda s, n: seen.append(s), cancel=lambda: len(seen) >= 1)
    assert seen == [1]
    event = threading.Event()
    event.set()
    with pytest.raises(GenerationCancelled):        # nothing to denoise, still cancelled
        generate(caption="a knock", duration_s=1.0, reference=(bursts(1.0, SR), SR), strength=0.0, cancel=event)


# ------------------------------------------------------------------------------ metadata

def test_metadata_carries_the_attribution_and_project_reference_fields(ref_files):
    spy = SpyBackend()
    result = generate(caption="gravel steps", duration_s=1.0, reference=LIBRARY_CLIP, strength=0.3, model=spy)
    meta = result.metadata
    json.dumps(meta)
    ref = meta["reference"]
    entry = default_library().get(LIBRARY_CLIP)
    assert ref["id"] == LIBRARY_CLIP and ref["library_clip"] is True
    assert ref["path"] == str(entry.path) and ref["caption"] == entry.caption
    assert "Wildfire Games" in ref["attribution"] and "CC BY-SA 3.0" in ref["licence"]
    assert ref["strength"] == 0.3 and meta["strength"] == 0.3
    assert ref["steps_run"] == meta["steps_run"] == reference_steps(25, 0.3)[1]
    assert ref["source_sr"] == SR and ref["source_duration_s"] == pytest.approx(entry.seconds, abs=0.01)
    stored = Reference(**ref["fields"])                          # what the UI stores on the Stem
    assert stored.clip_id == LIBRARY_CLIP and "Wildfire Games" in stored.attribution
    assert stored.strength == 0.3 and stored.fit == "auto"      # enough to regenerate identically
    assert meta["instructions"]["given"] == ["text", "reference"]
    assert ref["detail_restored"] is False          # a backend that does not say it does
    spy.reference_detail = True
    assert generate(caption="x", duration_s=1.0, reference=LIBRARY_CLIP, strength=0.3,
                    model=spy).metadata["reference"]["detail_restored"] is True
    # strength 0 runs no model: the fitted reference is returned as it is
    assert generate(caption="x", duration_s=1.0, reference=LIBRARY_CLIP, strength=0.0,
                    model=spy).metadata["reference"]["detail_restored"] is False
    del spy.reference_detail

    upload = generate(caption="x", duration_s=1.0, reference=ref_files["stereo_44k.wav"], strength=0.3,
                      model=spy).metadata["reference"]
    assert upload["id"] == "upload/stereo_44k.wav" and upload["library_clip"] is False
    assert upload["source_sr"] == 44100 and upload["fields"]["clip_id"] == "upload/stereo_44k.wav"
    assert "your sound" in upload["attribution"]

    array = generate(caption="x", duration_s=1.0, reference=(bursts(0.5, 8000), 8000), strength=0.3,
                     model=spy).metadata["reference"]
    assert array["id"] is None and array["fields"] is None and array["attribution"] is None


# ------------------------------------------------------------------------------ bad inputs

@pytest.fixture(scope="module")
def bad_refs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad_refs")
    (folder / "notes.wav").write_text("this is not audio\n")
    sf.write(folder / "silent.wav", np.zeros(8000, np.float32), 16000)
    nan = bursts(0.5, 16000)
    nan[100:200] = np.nan
    sf.write(folder / "nan.wav", nan, 16000, subtype="FLOAT")
    return folder


@pytest.mark.parametrize("reference,match", [
    ("missing.wav", "No library clip"),
    ("notes.wav", None),
    ("silent.wav", "silent"),
    ("nan.wav", "NaN"),
    ("no_such_clip_id", "No library clip"),
])
def test_bad_reference_files_are_media_errors(bad_refs, reference, match):
    path = bad_refs / reference if reference != "no_such_clip_id" else reference
    with pytest.raises(MediaError, match=match):
        generate(caption="x", duration_s=1.0, reference=str(path), strength=0.5, model=SpyBackend())


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(strength=1.5), FoleyError, "between 0"),
    (dict(strength=-0.1), FoleyError, "between 0"),
    (dict(strength=float("nan")), FoleyError, "between 0"),
    (dict(strength="loud"), FoleyError, "between 0"),
    (dict(reference=None, strength=0.5, source="model"), FoleyError, "give a reference"),
    (dict(reference=(np.zeros(100, np.float32), 16000)), MediaError, "silent"),
    (dict(reference=(np.ones(100, np.float32), 16000.5)), MediaError, "sample rate"),
    (dict(reference=[0.1, 0.2]), MediaError, "library clip id"),
    (dict(reference="  "), MediaError, "empty"),
    (dict(reference_fit="stretch"), FoleyError, "fit mode"),
])
def test_bad_reference_arguments(kwargs, error, match):
    kwargs = {"reference": (bursts(0.5, 16000), 16000), "strength": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        generate(caption="x", duration_s=1.0, model=SpyBackend(), **kwargs)


# ------------------------------------------------------------------------------ AudioLDM2 backend

def test_audioldm2_backend_reference_path():
    from foley_core.backends.audioldm2 import AudioLDM2Backend, tiny_random_pipeline

    backend = AudioLDM2Backend.from_pipeline(tiny_random_pipeline())
    ref = fit_reference(bursts(0.9, 44100), 44100, duration_s=1.3)
    latents = backend.encode_reference(ref, 1.3)
    assert tuple(latents.shape) == (1, *backend.latent_shape(1.3))
    kw = dict(caption="a knock", duration_s=1.3, steps=4, seed=2)
    plain = generate(model=backend, source="model", **kw)
    same = generate(model=backend, reference=(ref, SR), strength=1.0, **kw)
    np.testing.assert_array_equal(plain.audios[0], same.audios[0])
    calls = []
    half = generate(model=backend, reference=(ref, SR), strength=0.5, progress=lambda s, n: calls.append((s, n)),
                    **kw)
    assert calls == [(1, 2), (2, 2)]
    assert half.audios[0].shape == (round(1.3 * SR),) and np.all(np.isfinite(half.audios[0]))
    assert not np.allclose(half.audios[0], plain.audios[0])
    again = generate(model=backend, source="model", **kw)   # the shared scheduler is left as it was
    np.testing.assert_array_equal(plain.audios[0], again.audios[0])
