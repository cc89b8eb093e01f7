"""FoleyPipeline on a tiny random config: conditions, determinism, guidance, caching, save/load."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
import torch

from foley_core.errors import GenerationCancelled
from foley_core.model.configs import tiny_config
from foley_core.pipeline import FoleyPipeline

from media_fixtures import noise_window

torch.set_num_threads(1)
SR = 16000


@pytest.fixture(scope="module")
def pipe() -> FoleyPipeline:
    return FoleyPipeline.from_config(tiny_config(window_s=4.0))


CURVE = np.concatenate([np.zeros(5), np.ones(5)]).astype(np.float32)   # 1 s, loud second half


@pytest.mark.parametrize("text,video,curve", list(itertools.product([False, True], repeat=3)))
def test_any_combination_of_conditions(pipe, text, video, curve):
    frames, masks = noise_window()
    out = pipe(duration_s=1.0, caption="a dog barks" if text else None,
               frames=frames if video else None, masks=masks if video else None,
               curve=CURVE if curve else None, seeds=[0, 1], num_inference_steps=2)
    assert out.audios.shape == (2, SR)
    assert out.audios.dtype == np.float32
    assert np.all(np.isfinite(out.audios))
    assert out.mels.shape == (2, 64, 100)
    assert set(out.timings_s) >= {"text_encode", "video_encode", "denoise", "decode", "vocoder"}


def test_determinism_seeds_and_candidates_equal_solo(pipe):
    frames, masks = noise_window()
    kw = dict(duration_s=1.0, caption="glass breaks", frames=frames, masks=masks, curve=CURVE,
              num_inference_steps=3)
    a = pipe(seeds=[7], **kw).audios
    b = pipe(seeds=[7], **kw).audios
    np.testing.assert_array_equal(a, b)
    c = pipe(seeds=[8], **kw).audios
    assert not np.allclose(a, c)
    both = pipe(seeds=[7, 8], **kw)
    np.testing.assert_array_equal(both.audios[0], a[0])      # candidates == solo runs, exactly
    np.testing.assert_array_equal(both.audios[1], c[0])


def test_batched_and_sequential_branches_agree(pipe):
    frames, masks = noise_window()
    kw = dict(duration_s=0.8, caption="a door slams", negative_caption="speech", frames=frames[:16],
              masks=masks[:16], seeds=[3], num_inference_steps=3)
    batched = pipe(branch_mode="batched", **kw).latents
    sequential = pipe(branch_mode="sequential", **kw).latents
    np.testing.assert_allclose(batched, sequential, rtol=1e-4, atol=1e-4)   # same math, other rounding


def test_negative_caption_and_scales_change_output(pipe):
    kw = dict(duration_s=0.8, caption="rain on a roof", seeds=[0], num_inference_steps=3)
    base = pipe(**kw).latents
    assert not torch.allclose(base, pipe(negative_caption="thunder", **kw).latents)
    assert not torch.allclose(base, pipe(text_scale=1.0, **kw).latents)


def test_dual_cfg_combination_rule():
    e00, et0, etv = torch.tensor(1.0), torch.tensor(3.0), torch.tensor(10.0)
    # eps = e(0,0) + s_t (e(c_t,0) - e(0,0)) + s_v (e(c_t,c_v) - e(c_t,0))
    assert FoleyPipeline.guide([e00, et0, etv], True, True, 3.5, 4.5) == 1 + 3.5 * 2 + 4.5 * 7
    assert FoleyPipeline.guide([e00, et0], True, False, 3.5, 4.5) == 1 + 3.5 * 2
    assert FoleyPipeline.guide([e00, etv], False, True, 3.5, 4.5) == 1 + 4.5 * 9
    assert FoleyPipeline.guide([e00], False, False, 3.5, 4.5) == 1


def test_branches_reach_the_unet_with_the_right_conditions(pipe, monkeypatch):
    """Three branches: (negative, no video), (caption, no video), (caption, video)."""
    seen = []
    original = pipe.unet.forward

    def spy(sample, timestep, **kw):
        seen.append({"text_present": kw["text_present"].tolist(),
                     "visual_keys": (None if kw["visual_mask"] is None
                                     else kw["visual_mask"].sum(1).tolist()),
                     "text_rows": kw["text_embeds"][:, 0, 0].tolist()})
        return original(sample, timestep, **kw)

    monkeypatch.setattr(pipe.unet, "forward", spy)
    frames, masks = noise_window(n_frames=16)
    pipe(duration_s=0.8, caption="a bell rings", frames=frames, masks=masks, seeds=[0],
         num_inference_steps=1, branch_mode="batched")
    (call,) = seen
    assert call["text_present"] == [False, True, True]        # no negative: null text first
    assert call["visual_keys"] == [1, 1, 16]                   # null video = one key
    seen.clear()
    pipe(duration_s=0.8, caption="a bell rings", negative_caption="music", seeds=[0],
         num_inference_steps=1)
    (call,) = seen
    assert call["text_present"] == [True, True]                # negative replaces the null text
    assert call["visual_keys"] is None                          # no video: the null token only
    assert call["text_rows"][0] != call["text_rows"][1]


def test_progress_and_cancellation(pipe):
    calls = []
    pipe(duration_s=0.5, caption="a click", seeds=[0], num_inference_steps=4,
         callback=lambda step, n: calls.append((step, n)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]

    event = threading.Event()

    def stop_after_two(step, n):
        if step == 2:
            event.set()

    with pytest.raises(GenerationCancelled):
        pipe(duration_s=0.5, seeds=[0], num_inference_steps=6, callback=stop_after_two, cancel=event)
    with pytest.raises(GenerationCancelled):
        pipe(duration_s=0.5, seeds=[0], num_inference_steps=6, cancel=lambda: True)


def test_encodings_are_cached(pipe):
    frames, masks = noise_window()
    pipe.text_encoder.clear_cache()
    n_text, n_video = pipe.text_encoder.n_encoded, pipe.n_video_encoded
    for seed, curve in [(0, None), (1, CURVE), (2, CURVE * 0.5)]:
        pipe(duration_s=1.0, caption="a cat meows", frames=frames, masks=masks, video_cache_key=("v", 1),
             curve=curve, seeds=[seed], num_inference_steps=1)
    assert pipe.text_encoder.n_encoded == n_text + 1
    assert pipe.n_video_encoded == n_video + 1
    pipe(duration_s=1.0, caption="a cat meows", frames=frames, masks=masks * 0.5, video_cache_key=("v", 2),
         seeds=[0], num_inference_steps=1)
    assert pipe.n_video_encoded == n_video + 2


def test_save_load_round_trip_identical(pipe, tmp_path):
    frames, masks = noise_window()
    with torch.no_grad():                      # make the zero-initialised TLM non-trivial
        pipe.tlm.out.weight.normal_(0, 0.1)
    kw = dict(duration_s=1.0, caption="footsteps on gravel", frames=frames, masks=masks, curve=CURVE,
              seeds=[4], num_inference_steps=2)
    expected = pipe(**kw).audios
    pipe.save_pretrained(tmp_path / "model")
    assert (tmp_path / "model" / "model_index.json").is_file()
    assert (tmp_path / "model" / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = FoleyPipeline.from_pretrained(tmp_path / "model")
    np.testing.assert_array_equal(loaded(**kw).audios, expected)
    assert loaded.model_config()["unet"] == pipe.model_config()["unet"]


def test_from_pretrained_missing_folder_is_a_clear_error(tmp_path):
    from foley_core.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="model_index.json"):
        FoleyPipeline.from_pretrained(tmp_path)


def test_random_init_is_the_same_in_every_build():
    a = FoleyPipeline.from_config(tiny_config())
    b = FoleyPipeline.from_config(tiny_config())
    for (name, p), (_, q) in zip(a.unet.state_dict().items(), b.unet.state_dict().items()):
        assert torch.equal(p, q), name


def test_window_limits(pipe):
    with pytest.raises(ValueError):
        pipe(duration_s=5.0, seeds=[0], num_inference_steps=1)    # window is 4 s
    with pytest.raises(ValueError):
        pipe(duration_s=1.0, seeds=[0], num_inference_steps=1, branch_mode="parallel")


@pytest.fixture(scope="module")
def pipe_with_tlm() -> FoleyPipeline:
    """The tiny pipeline with a TLM that is not the zero-initialised identity."""
    p = FoleyPipeline.from_config(tiny_config(window_s=4.0))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        p.tlm.out.weight.copy_(torch.randn(p.tlm.out.weight.shape, generator=g) * 0.5)
        p.tlm.null_embedding.copy_(torch.randn(p.tlm.null_embedding.shape, generator=g) * 0.5)
    return p


def test_curve_scale_one_is_plain_dual_guidance(pipe_with_tlm):
    frames, masks = noise_window()
    kw = dict(duration_s=1.0, caption="a ball bounces", frames=frames, masks=masks, curve=CURVE,
              seeds=[2], num_inference_steps=3)
    np.testing.assert_array_equal(pipe_with_tlm(**kw).latents, pipe_with_tlm(curve_scale=1.0, **kw).latents)
    guided = pipe_with_tlm(curve_scale=3.0, **kw).latents
    assert not torch.allclose(guided, pipe_with_tlm(**kw).latents)
    # without a curve there is nothing to guide by: the scale is ignored
    kw["curve"] = None
    np.testing.assert_array_equal(pipe_with_tlm(**kw).latents, pipe_with_tlm(curve_scale=3.0, **kw).latents)


def test_curve_scale_zero_removes_the_curve(pipe_with_tlm):
    """eps = e(c) + (s - 1)(e(c) - e(0)): at s = 0 exactly the no-curve prediction."""
    kw = dict(duration_s=1.0, seeds=[4], num_inference_steps=3, branch_mode="sequential")
    no_curve = pipe_with_tlm(curve=None, **kw).latents
    zero = pipe_with_tlm(curve=CURVE, curve_scale=0.0, **kw).latents
    np.testing.assert_allclose(zero, no_curve, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(pipe_with_tlm(curve=CURVE, **kw).latents, no_curve, atol=1e-3)


def test_curve_guidance_branch_reaches_the_unet_without_the_curve(pipe_with_tlm, monkeypatch):
    seen = []
    original = pipe_with_tlm.unet.forward

    def spy(sample, timestep, **kw):
        seen.append((sample.clone(), kw["text_present"].tolist(),
                     None if kw["visual_mask"] is None else kw["visual_mask"].sum(1).tolist()))
        return original(sample, timestep, **kw)

    monkeypatch.setattr(pipe_with_tlm.unet, "forward", spy)
    frames, masks = noise_window(n_frames=16)
    pipe_with_tlm(duration_s=0.8, caption="a bell rings", frames=frames, masks=masks, curve=CURVE[:8],
                  seeds=[0], num_inference_steps=1, curve_scale=2.0)
    ((x, text_present, visual),) = seen
    assert text_present == [False, True, True, True] and visual == [1, 1, 16, 16]
    assert torch.equal(x[0], x[2]) and not torch.equal(x[2], x[3])      # last row: the null curve
    with pytest.raises(ValueError, match="curve_scale"):
        pipe_with_tlm(duration_s=0.8, curve=CURVE[:8], curve_scale=float("nan"))


def test_a_reference_guided_vocoder_gets_the_row_each_candidate_started_from(pipe):
    seen = []

    class Guided:
        sr, uses_reference, config = SR, True, {"class": "GriffinLimVocoder"}

        def __call__(self, mel, n_samples, seeds=None, reference=None):
            seen.append(None if reference is None else np.array(reference))
            return np.zeros((1, n_samples), np.float32)

    rows = np.random.default_rng(0).uniform(-0.5, 0.5, (2, SR)).astype(np.float32)
    vocoder, pipe.vocoder = pipe.vocoder, Guided()
    try:
        pipe(duration_s=1.0, caption="a knock", seeds=[0, 1], num_inference_steps=4, reference=rows,
             strength=0.5)
        assert len(seen) == 2
        np.testing.assert_array_equal(seen[0], rows[0])
        np.testing.assert_array_equal(seen[1], rows[1])
        seen.clear()
        # strength 1 starts from noise, and no reference means none: nothing to be guided by
        pipe(duration_s=1.0, seeds=[0], num_inference_steps=4, reference=rows[:1], strength=1.0)
        pipe(duration_s=1.0, seeds=[0], num_inference_steps=4)
        assert seen == [None, None]
    finally:
        pipe.vocoder = vocoder
