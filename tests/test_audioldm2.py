"""AudioLDM2 backend: tiny random components built offline (never the hub), adapters, dual CFG."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from foley_core.backends import Backend, VideoCondition, clear_backends, get_backend
from foley_core.backends.adapters import AudioLDM2Adapters, cross_attention_layers
from foley_core.backends.audioldm2 import (ADAPTERS_ENV, PATH_ENV, AudioLDM2Backend, dual_guidance,
                                           generate_language_model, tiny_random_pipeline)
from foley_core.errors import (CurveError, GenerationCancelled, MaskError, MediaError,
                               ModelUnavailableError, TimeRangeError)

SHARED = Path(__file__).resolve().parents[2] / "shared"
CAPTION = "a hammer hits a wooden plank"
STEPS = 3


@pytest.fixture(autouse=True)
def _one_thread_and_no_adapter_env(monkeypatch):
    monkeypatch.delenv(ADAPTERS_ENV, raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def window(backend: AudioLDM2Backend, **overrides) -> np.ndarray:
    kwargs = dict(caption=CAPTION, negative_caption=None, duration_s=1.0, video=None, curve=None,
                  seeds=[3], steps=STEPS, text_scale=3.5, video_scale=4.5)
    kwargs.update(overrides)
    out = backend.generate_window(**kwargs)
    assert out.sr == 16000
    return out.audios


def moving_square_video(n_frames: int = 20, *, size: int = 64, seed: int = 0) -> np.ndarray:
    """uint8 (T, size, size, 3): a bright square moving right over a noisy dark background."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 40, (n_frames, size, size, 3), dtype=np.uint8)
    for t in range(n_frames):
        x = 4 + 2 * t
        frames[t, 20:36, x:x + 16] = 230
    return frames


def box_masks(n_frames: int, box: tuple[int, int, int, int], size: int = 64) -> np.ndarray:
    y0, y1, x0, x1 = box
    masks = np.zeros((n_frames, size, size), np.float32)
    masks[:, y0:y1, x0:x1] = 1.0
    return masks


def perturb(module: torch.nn.Module, seed: int, scale: float = 0.5) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)


@pytest.fixture
def plain() -> AudioLDM2Backend:
    return AudioLDM2Backend.from_pipeline(tiny_random_pipeline())


@pytest.fixture
def adapted() -> AudioLDM2Backend:
    return AudioLDM2Backend.from_pipeline(tiny_random_pipeline(), new_adapters=True)


def trained_like(seed: int = 1) -> AudioLDM2Backend:
    """Backend whose adapter output layers are non-zero (as after training)."""
    backend = AudioLDM2Backend.from_pipeline(tiny_random_pipeline(), new_adapters=True)
    for branch in backend.adapters.visual_attn.values():
        perturb(branch.to_out, seed)
    perturb(backend.adapters.tlm.out, seed + 1)
    assert not backend.adapters.is_identity()
    return backend


# -- registry, shapes, description ------------------------------------------------------------

def test_registry_builds_tiny_backend_with_protocol_shapes():
    clear_backends()
    backend = get_backend("audioldm2", source="tiny-random")
    try:
        assert isinstance(backend, Backend)
        assert backend.name == "audioldm2" and backend.sr == 16000 and not backend.trained
        assert backend.obeys == {"text", "negative"}
        assert backend.ignores == {"video", "mask", "curve"}
        assert "text only" in backend.description and "untrained" in backend.description
        # AudioLDM2's latent: (8 channels, 25 frames/s, 16 mel bins); frames rounded up for the UNet
        assert backend.latent_shape(2.0) == (8, 50, 16)
        assert backend.latent_shape(0.3)[1] * 4 >= 30
        out = backend.generate_window(caption=CAPTION, negative_caption=None, duration_s=1.3, video=None,
                                      curve=None, seeds=[1, 2], steps=2, text_scale=3.5, video_scale=4.5)
        assert out.audios.shape == (2, 20800) and out.audios.dtype == np.float32
        assert np.all(np.isfinite(out.audios)) and np.abs(out.audios).max() > 0
        assert not np.allclose(out.audios[0], out.audios[1])
        assert {"encode_text", "denoise", "decode"} <= set(out.timings_s)
    finally:
        clear_backends()


def test_video_spec_and_obeys_follow_the_adapters(adapted):
    assert adapted.video_fps == 20.0 and adapted.frame_size == (64, 64)
    assert adapted.obeys == {"text", "negative"}          # zero adapters change nothing
    perturb(next(iter(adapted.adapters.visual_attn.values())).to_out, 0)
    assert adapted.obeys == {"text", "negative", "video", "mask", "curve"} and not adapted.ignores
    assert "MAM/TLM adapters" in adapted.description


# -- adapters: identity, effect, reach ----------------------------------------------------------

def test_untrained_adapters_leave_unet_output_exactly_unchanged():
    pipe = tiny_random_pipeline()
    unet = pipe.unet
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 8, 8, 16, generator=gen)
    hidden = torch.randn(2, 5, 16, generator=gen)
    hidden_1 = torch.randn(2, 7, 32, generator=gen)
    with torch.no_grad():
        before = unet(sample, 10, encoder_hidden_states=hidden, encoder_hidden_states_1=hidden_1).sample
        adapters = AudioLDM2Adapters.for_unet(unet, visual_dim=24)
        adapters.install(unet)
        tokens = torch.randn(2, 6, 24, generator=gen)
        with adapters.visual_tokens(tokens):
            with_tokens = unet(sample, 10, encoder_hidden_states=hidden, encoder_hidden_states_1=hidden_1).sample
        curve = torch.rand(1, 10, generator=gen)
        tau = adapters.tlm(curve, sample.shape[2])
        shifted = adapters.tlm.add_to_latent(sample, tau.expand(2, -1, -1), time_dim=2)
        perturb(next(iter(adapters.visual_attn.values())).to_out, 3)
        with adapters.visual_tokens(tokens):
            changed = unet(sample, 10, encoder_hidden_states=hidden, encoder_hidden_states_1=hidden_1).sample
        adapters.uninstall(unet)
        after = unet(sample, 10, encoder_hidden_states=hidden, encoder_hidden_states_1=hidden_1).sample
    assert torch.equal(with_tokens, before)
    assert torch.equal(shifted, sample)
    assert not torch.allclose(changed, before)
    assert torch.equal(after, before)
    # one visual branch per true cross-attention layer (GPT2 and T5 ones; 2 per resnet in the one
    # cross-attention down block, the mid block and 2 resnets of the up block), none on self-attention
    layers = cross_attention_layers(unet)
    assert len(adapters.visual_attn) == len(layers) == 8
    assert all(name.endswith("attn2.processor") for name in layers)


def test_untrained_adapters_leave_generated_audio_exactly_unchanged(plain, adapted):
    frames = moving_square_video()
    video = VideoCondition(frames=frames, masks=box_masks(20, (16, 40, 0, 64)), fps=20.0)
    curve = np.linspace(0.0, 1.0, 10, dtype=np.float32)
    base = window(plain, video=video, curve=curve, seeds=[5, 6])
    with_adapters = window(adapted, video=video, curve=curve, seeds=[5, 6])
    np.testing.assert_array_equal(with_adapters, base)


def test_nonzero_adapters_change_the_output_and_follow_video_mask_and_curve(plain):
    backend = trained_like()
    frames = moving_square_video()
    on_square = VideoCondition(frames=frames, masks=box_masks(20, (20, 36, 0, 64)), fps=20.0)
    off_square = VideoCondition(frames=frames, masks=box_masks(20, (44, 60, 0, 64)), fps=20.0)
    ramp_up = np.linspace(0.0, 1.0, 10, dtype=np.float32)
    ramp_down = ramp_up[::-1].copy()

    base = window(plain)
    outs = {
        "no video": window(backend, curve=ramp_up),
        "on square": window(backend, video=on_square, curve=ramp_up),
        "off square": window(backend, video=off_square, curve=ramp_up),
        "curve down": window(backend, video=on_square, curve=ramp_down),
    }

    def differ(a, b):
        return np.abs(a - b).max() > 1e-3 * np.abs(b).max()

    assert differ(outs["no video"], base)
    assert differ(outs["on square"], outs["no video"])
    assert differ(outs["on square"], outs["off square"])
    assert differ(outs["on square"], outs["curve down"])


def test_curve_and_mask_reach_the_unet():
    backend = trained_like(seed=4)
    unet = backend.pipe.unet
    seen: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def record(module, args, kwargs):
        seen.append((args[0].clone(), backend.adapters.context.tokens))

    handle = unet.register_forward_pre_hook(record, with_kwargs=True)
    frames = moving_square_video()
    masks_a = box_masks(20, (20, 36, 0, 64))
    masks_b = box_masks(20, (44, 60, 0, 64))
    curves = {"up": np.linspace(0.0, 1.0, 10, dtype=np.float32),
              "down": np.linspace(1.0, 0.0, 10, dtype=np.float32)}
    try:
        for name, masks in (("a", masks_a), ("b", masks_b)):
            for curve in curves.values():
                window(backend, video=VideoCondition(frames=frames, masks=masks, fps=20.0), curve=curve,
                       steps=1, seeds=[0])
    finally:
        handle.remove()
    (in_a_up, tok_a), (in_a_down, _), (in_b_up, tok_b), _ = seen
    # 3 branches (uncond, text, text+video) x 1 candidate; the latent input shifts by tau_signal,
    # which varies along time and is constant over the 16 mel bins
    assert in_a_up.shape == (3, 8, 26, 16)      # 1 s = 100 mel frames, rounded up to 104
    shift = in_a_up - in_a_down
    assert shift.abs().max() > 0
    tlm = backend.adapters.tlm
    with torch.no_grad():
        expected = tlm(torch.as_tensor(curves["up"])[None], 26) - tlm(torch.as_tensor(curves["down"])[None], 26)
    assert expected[0].std(dim=-1).max() > 0          # varies along time
    for row in shift:
        assert torch.allclose(row, expected[0][..., None].expand_as(row), atol=1e-5)
    assert torch.equal(in_a_up, in_b_up)             # the mask does not touch the latent
    # visual tokens: null rows for the no-video branches, MAM tokens (20 frames) for the video row
    null = backend.adapters.mam.null_embedding
    assert tok_a.shape == (3, 20, backend.adapters.visual_dim)
    assert torch.equal(tok_a[0], null.expand(20, -1)) and torch.equal(tok_a[1], null.expand(20, -1))
    assert not torch.allclose(tok_a[2], tok_b[2])     # the mask changes what the UNet attends to


def test_video_features_are_cached_by_key(adapted, monkeypatch):
    calls = []
    encoder = adapted.adapters.mam.visual_encoder
    original = encoder.forward
    monkeypatch.setattr(encoder, "forward", lambda x: calls.append(1) or original(x))
    frames = moving_square_video()
    video = VideoCondition(frames=frames, masks=box_masks(20, (20, 36, 0, 64)), fps=20.0, cache_key=("v", 1))
    first = adapted.encode_video(video)
    second = adapted.encode_video(video)
    assert torch.equal(first, second) and len(calls) == 2    # F_visual + F_mask, once


# -- guidance -------------------------------------------------------------------------------

class BranchProbeUNet(torch.nn.Module):
    """Returns per-row constants: 1 for the negative text, 10 for the caption, +100 with video."""

    def __init__(self, backend: AudioLDM2Backend, text):
        super().__init__()
        self.backend, self.text, self.batches = backend, text, []

    def forward(self, sample, t, *, encoder_hidden_states, encoder_hidden_states_1, encoder_attention_mask_1,
                return_dict=False):
        self.batches.append(sample.shape[0])
        out = torch.empty_like(sample)
        tokens = self.backend.adapters.context.tokens if self.backend.adapters is not None else None
        null = None if tokens is None else self.backend.adapters.mam.null_embedding
        for i in range(sample.shape[0]):
            is_negative = torch.equal(encoder_hidden_states[i], self.text.negative_generated[0])
            assert is_negative != torch.equal(encoder_hidden_states[i], self.text.generated[0])
            assert torch.equal(encoder_hidden_states_1[i], (self.text.negative_t5 if is_negative else self.text.t5)[0])
            value = 1.0 if is_negative else 10.0
            if tokens is not None and not torch.equal(tokens[i], null.expand_as(tokens[i])):
                value += 100.0
            out[i] = value
        return (out,)


def test_dual_cfg_branch_math_with_a_probe_unet(monkeypatch):
    backend = trained_like()
    text = backend.encode_text(CAPTION, "crackling fire")
    probe = BranchProbeUNet(backend, text)
    monkeypatch.setattr(backend.pipe, "unet", probe)
    latents = torch.zeros(2, 8, 25, 16)
    t = torch.tensor(999)
    video = backend.encode_video(VideoCondition(frames=moving_square_video(), masks=None, fps=20.0))

    eps = backend.predict_noise(latents, t, text, text_scale=3.5, video_scale=4.5, tau_visual=video)
    assert probe.batches[-1] == 6
    assert torch.allclose(eps, torch.full_like(eps, 1 + 3.5 * (10 - 1) + 4.5 * (110 - 10)))

    eps = backend.predict_noise(latents, t, text, text_scale=2.0, video_scale=4.5)
    assert probe.batches[-1] == 4
    assert torch.allclose(eps, torch.full_like(eps, 1 + 2.0 * (10 - 1)))

    eps = backend.predict_noise(latents, t, text, text_scale=1.0, video_scale=0.5, tau_visual=video)
    assert probe.batches[-1] == 4                      # no unconditional branch at text_scale 1
    assert torch.allclose(eps, torch.full_like(eps, 10 + 0.5 * (110 - 10)))


def test_dual_guidance_formula():
    gen = torch.Generator().manual_seed(0)
    e00, et0, etv = (torch.randn(2, 3, generator=gen) for _ in range(3))
    got = dual_guidance(e00, et0, etv, text_scale=3.5, video_scale=4.5)
    assert torch.allclose(got, e00 + 3.5 * (et0 - e00) + 4.5 * (etv - et0))
    assert torch.allclose(dual_guidance(e00, et0, None, text_scale=3.5, video_scale=4.5), e00 + 3.5 * (et0 - e00))
    with pytest.raises(ValueError):
        dual_guidance(None, et0, None, text_scale=2.0, video_scale=1.0)


# -- text -----------------------------------------------------------------------------------

def test_negative_caption_replaces_the_empty_unconditional_text(plain):
    default = plain.encode_text(CAPTION, None)
    negative = plain.encode_text(CAPTION, "crackling fire")
    assert torch.equal(default.generated, negative.generated) and torch.equal(default.t5, negative.t5)
    assert not torch.allclose(default.negative_generated, negative.negative_generated)
    # the empty negative is AudioLDM2's own unconditional encoding
    t5, mask, generated = plain.pipe.encode_prompt(CAPTION, plain.device, 1, True, negative_prompt="")
    assert torch.equal(generated[:1], default.negative_generated) and torch.equal(t5[:1], default.negative_t5)
    a = window(plain, negative_caption=None)
    np.testing.assert_array_equal(window(plain, negative_caption=""), a)
    assert not np.allclose(window(plain, negative_caption="crackling fire"), a, rtol=0, atol=1e-3 * np.abs(a).max())


def test_language_model_kv_cache_matches_full_recompute(plain):
    lm = plain.pipe.language_model
    gen = torch.Generator().manual_seed(0)
    embeds = torch.randn(2, 6, 16, generator=gen)
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, 4:] = 0
    with torch.no_grad():
        cached = generate_language_model(lm, embeds, mask, 5)
        seq, m = embeds, mask
        for _ in range(5):
            out = lm(inputs_embeds=seq, attention_mask=m, output_hidden_states=True).hidden_states[-1]
            seq = torch.cat([seq, out[:, -1:]], 1)
            m = torch.cat([m, torch.ones(2, 1, dtype=torch.long)], 1)
    assert cached.shape == (2, 5, 16)
    assert torch.allclose(cached, seq[:, -5:], atol=1e-5)


# -- determinism, progress, cancel, bad inputs ---------------------------------------------

def test_seeds_are_deterministic_and_candidates_equal_solo_runs(plain):
    """What is promised: the same call twice is bit-identical (same kernels, same order); a
    candidate batched with others equals its solo run up to float32 rounding only, because a
    batch of 2 may run other BLAS kernels (another summation order) than a batch of 1, and the
    few-ulp differences grow through the UNet and the vocoder (measured: 1.2e-6 of the peak on
    one 2-core machine, 0 on another). 1e-4 of the peak is far above that and far below the
    difference between two seeds (of the order of the peak itself, asserted last)."""
    both = window(plain, seeds=[11, 12])
    np.testing.assert_array_equal(window(plain, seeds=[11, 12]), both)
    np.testing.assert_allclose(window(plain, seeds=[12])[0], both[1], rtol=0, atol=1e-4 * np.abs(both).max())
    assert np.abs(both[0] - both[1]).max() > 0.1 * np.abs(both).max()


def test_progress_and_cancel(plain):
    calls = []
    window(plain, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, STEPS) for i in range(1, STEPS + 1)]
    seen = []
    with pytest.raises(GenerationCancelled):
        window(plain, progress=lambda done, total: seen.append(done), cancel=lambda: len(seen) >= 1)
    assert seen == [1]


def test_bad_inputs_raise_user_errors(adapted):
    frames = moving_square_video()
    with pytest.raises(TimeRangeError):
        window(adapted, duration_s=0.0)
    with pytest.raises(TimeRangeError):
        window(adapted, duration_s=adapted.window_s + 1)
    with pytest.raises(CurveError, match="NaN"):
        window(adapted, curve=np.array([0.1, np.nan], np.float32))
    with pytest.raises(CurveError, match="negative"):
        window(adapted, curve=np.array([0.1, -0.5], np.float32))
    with pytest.raises(MaskError):
        window(adapted, video=VideoCondition(frames=frames, masks=np.ones((19, 64, 64), np.float32), fps=20.0))
    with pytest.raises(MediaError, match="32x32"):
        window(adapted, video=VideoCondition(frames=frames[:, :32, :32], masks=None, fps=20.0))
    with pytest.raises(MediaError, match="fps"):
        window(adapted, video=VideoCondition(frames=frames, masks=None, fps=4.0))


# -- adapter weights ------------------------------------------------------------------------

def test_adapter_weights_save_load_round_trip(tmp_path, monkeypatch):
    source = trained_like(seed=7)
    path = source.save_adapters(tmp_path / "adapters.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapters.safetensors"]   # no temp files left

    monkeypatch.setenv(ADAPTERS_ENV, str(path))
    loaded = AudioLDM2Backend()
    assert loaded.adapter_path == path
    assert loaded.obeys == {"text", "negative", "video", "mask", "curve"}      # before loading weights
    assert loaded.video_fps == 20.0 and loaded.frame_size == (64, 64)
    loaded._attach(tiny_random_pipeline(), device="cpu", trained=False)
    for key, value in source.adapters.state_dict().items():
        assert torch.equal(loaded.adapters.state_dict()[key], value), key
    video = VideoCondition(frames=moving_square_video(), masks=box_masks(20, (20, 36, 0, 64)), fps=20.0)
    curve = np.linspace(1.0, 0.2, 10, dtype=np.float32)
    np.testing.assert_array_equal(window(loaded, video=video, curve=curve), window(source, video=video, curve=curve))


def test_adapter_files_that_do_not_fit_are_refused(tmp_path):
    with pytest.raises(ModelUnavailableError, match="not found"):
        AudioLDM2Backend(adapter_path=tmp_path / "missing.safetensors")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelUnavailableError, match="not an AudioLDM2 adapter file"):
        AudioLDM2Backend(adapter_path=garbage)
    # adapters made for a UNet with other widths
    pipe = tiny_random_pipeline()
    adapters = AudioLDM2Adapters.for_unet(pipe.unet, visual_dim=32)
    adapters.save(tmp_path / "other.safetensors")
    fresh = AudioLDM2Adapters.for_unet(pipe.unet, visual_dim=768)
    with pytest.raises(ModelUnavailableError, match="visual_dim"):
        fresh.load(tmp_path / "other.safetensors")


# -- loading and the offline path -----------------------------------------------------------

def test_offline_hub_load_raises_model_unavailable_without_network(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("FOLEY_ALLOW_DOWNLOADS", raising=False)
    monkeypatch.delenv(PATH_ENV, raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("the offline path tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    backend = AudioLDM2Backend(cache_dir=tmp_path / "hub-cache")
    assert backend.source == "cvssp/audioldm2"
    with pytest.raises(ModelUnavailableError) as err:
        backend.load("cpu")
    message = str(err.value)
    assert "cvssp/audioldm2" in message and "--allow-downloads" in message and PATH_ENV in message

    monkeypatch.setenv(PATH_ENV, str(tmp_path / "no-such-folder"))
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        AudioLDM2Backend().load("cpu")


def test_loads_a_local_model_folder_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "audioldm2-tiny"
    tiny_random_pipeline().save_pretrained(folder)
    monkeypatch.setenv(PATH_ENV, str(folder))
    backend = AudioLDM2Backend()
    backend.load("cpu")
    assert backend.trained and backend.obeys == {"text", "negative"}
    audio = window(backend, seeds=[4])
    assert audio.shape == (1, 16000) and np.all(np.isfinite(audio))
    (folder / "unet" / "config.json").unlink()
    with pytest.raises(ModelUnavailableError, match="cannot be loaded"):
        AudioLDM2Backend(folder).load("cpu")


# -- real media -----------------------------------------------------------------------------

def test_real_clip_frames_and_mask_steer_the_adapted_model():
    clip = SHARED / "videos" / "mecavideo_balle1.mp4"
    if not clip.exists():
        pytest.skip("shared test media not present")
    av = pytest.importorskip("av")
    cv2 = pytest.importorskip("cv2")
    frames = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= len(frames) / 20.0:
                frames.append(cv2.resize(frame.to_ndarray(format="rgb24"), (64, 64), interpolation=cv2.INTER_AREA))
            if len(frames) == 30:
                break
    frames = np.stack(frames)
    assert frames.shape == (30, 64, 64, 3)
    backend = trained_like(seed=9)
    left = VideoCondition(frames=frames, masks=box_masks(30, (0, 64, 0, 32)), fps=20.0)
    right = VideoCondition(frames=frames, masks=box_masks(30, (0, 64, 32, 64)), fps=20.0)
    a = window(backend, video=left, duration_s=1.5)
    b = window(backend, video=right, duration_s=1.5)
    assert a.shape == b.shape == (1, 24000)
    assert np.abs(a - b).max() > 1e-3 * np.abs(a).max()
