"""Model components: conditioning (MAM, TLM, E_v), VAE, denoiser, text encoder, vocoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from foley_core.model.conditioning import (
    MaskAttentionModule,
    MotionFrameEncoder,
    TimeLoudnessModule,
    interpolate_curve,
)

torch.set_num_threads(1)


def tiny_encoder() -> MotionFrameEncoder:
    return MotionFrameEncoder(fps=20, frame_size=32, feature_dim=16, channels=(8, 8), patch_size=4)


def moving_square_frames(n_frames: int = 12, size: int = 32, start_x: int = 2) -> torch.Tensor:
    frames = torch.zeros(1, n_frames, 3, size, size)
    for t in range(n_frames):
        x = start_x + t
        frames[0, t, :, 10:16, x:x + 6] = 1.0
    return frames


# ---------------------------------------------------------------- MotionFrameEncoder (E_v)

def test_motion_encoder_shapes_and_attributes():
    enc = tiny_encoder()
    out = enc(torch.rand(2, 7, 3, 32, 32))
    assert out.shape == (2, 7, 16)
    assert enc.feature_dim == 16 and enc.fps == 20 and enc.frame_size == 32
    with pytest.raises(ValueError):
        enc(torch.rand(2, 7, 32, 32, 3))


def test_motion_encoder_sees_motion_not_only_content():
    """A still frame and the same frame while its object moves give different features."""
    torch.manual_seed(0)
    enc = tiny_encoder().eval()
    moving = moving_square_frames()
    still = moving[:, 5:6].expand(-1, 12, -1, -1, -1).clone()
    with torch.no_grad():
        f_moving = enc(moving)[0, 5]
        f_still = enc(still)[0, 5]
    assert not torch.allclose(f_moving, f_still, atol=1e-4)


# ---------------------------------------------------------------- MAM

def test_mam_equation_and_null():
    torch.manual_seed(0)
    mam = MaskAttentionModule(tiny_encoder(), cross_attention_dim=24)
    frames = torch.rand(2, 6, 3, 32, 32)
    masks = torch.zeros(2, 6, 1, 32, 32)
    masks[..., 4:20, 4:20] = 1
    f_visual, f_mask = mam.encode_features(frames, masks)
    assert f_visual.shape == f_mask.shape == (2, 6, 16)
    # the masked features are E_v of the masked frames
    torch.testing.assert_close(f_mask, mam.visual_encoder(frames * masks))
    tau = mam(features=(f_visual, f_mask))
    assert tau.shape == (2, 6, 24)
    # tau_visual = F_mask * (GAP(F_mask) W) + F_visual, then projection + time embedding
    expected = f_mask * mam.gate(f_mask.mean(1, keepdim=True)) + f_visual
    times = torch.arange(6, dtype=torch.float32)[None] / mam.fps
    expected = mam.proj(expected) + mam.time_embedding(times.expand(2, -1))
    torch.testing.assert_close(tau, expected)
    # frames path == precomputed features path
    torch.testing.assert_close(mam(frames, masks), tau)
    # absent rows are the learned null token at every position
    tau2 = mam(features=(f_visual, f_mask), present=torch.tensor([True, False]))
    torch.testing.assert_close(tau2[0], tau[0])
    assert torch.all(tau2[1] == mam.null_embedding)
    assert mam.null_tokens(3, 2).shape == (3, 2, 24)


def test_mam_mask_changes_tokens_and_no_mask_is_full_frame():
    torch.manual_seed(0)
    mam = MaskAttentionModule(tiny_encoder(), cross_attention_dim=8)
    frames = torch.rand(1, 5, 3, 32, 32)
    left = torch.zeros(1, 5, 1, 32, 32)
    left[..., :16] = 1
    right = 1 - left
    with torch.no_grad():
        a, b = mam(frames, left), mam(frames, right)
        full = mam(frames, None)
        ones = mam(frames, torch.ones(1, 5, 1, 32, 32))
    assert not torch.allclose(a, b)
    torch.testing.assert_close(full, ones)


def test_mam_time_offset_moves_position_embedding():
    mam = MaskAttentionModule(None, cross_attention_dim=8, feature_dim=4, fps=20)
    feats = (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4))
    a = mam(features=feats, start_s=0.0)
    b = mam(features=feats, start_s=0.05)
    torch.testing.assert_close(b[:, 0], a[:, 1])
    with pytest.raises(RuntimeError):
        mam.encode_features(torch.rand(1, 3, 3, 8, 8))
    with pytest.raises(ValueError):
        MaskAttentionModule(None, cross_attention_dim=8)


# ---------------------------------------------------------------- TLM

def test_tlm_untrained_is_identity_and_shapes():
    tlm = TimeLoudnessModule(latent_channels=8, latent_fps=25)
    curve = torch.rand(3, 40)                    # 4 s at 10 points/s
    tau = tlm(curve, 100)
    assert tau.shape == (3, 8, 100)
    assert torch.count_nonzero(tau) == 0         # zero-initialised output layer
    z = torch.randn(3, 8, 100)
    torch.testing.assert_close(TimeLoudnessModule.add_to_latent(z, tau), z)
    assert tlm(None, 100, batch_size=3).shape == (3, 8, 100)


def test_tlm_trained_follows_curve_and_null_rows():
    torch.manual_seed(0)
    tlm = TimeLoudnessModule(latent_channels=4, latent_fps=25)
    torch.nn.init.normal_(tlm.out.weight)
    torch.nn.init.normal_(tlm.null_embedding)
    curve = torch.zeros(2, 20)
    curve[:, 10:] = 1.0                          # a step at 1.0 s
    with torch.no_grad():
        tau = tlm(curve, 50, present=torch.tensor([True, False]))
    # the step (between points centred at 0.95 and 1.05 s) shows up around latent frame 25
    change = (tau[0, :, 1:] - tau[0, :, :-1]).abs().sum(0)
    assert 21 <= int(change.argmax()) <= 27
    assert torch.all(tau[1] == tlm.null_embedding[:, None])


def test_tlm_add_to_audioldm2_latent_broadcasts_over_frequency():
    z = torch.zeros(2, 8, 10, 16)                # AudioLDM2 latent (B, C, T, F)
    tau = torch.arange(2 * 8 * 10, dtype=torch.float32).reshape(2, 8, 10)
    out = TimeLoudnessModule.add_to_latent(z, tau, time_dim=2)
    assert out.shape == z.shape
    torch.testing.assert_close(out[..., 3], tau)
    with pytest.raises(ValueError):
        TimeLoudnessModule.add_to_latent(z, tau, time_dim=3)


def test_interpolate_curve_times():
    curve = torch.tensor([[0.0, 1.0, 2.0]])      # centred at 0.05, 0.15, 0.25 s
    out = interpolate_curve(curve, 8, frame_rate=25)   # centres 0.02, 0.06, ..., 0.30 s
    expected = np.clip((np.arange(8) + 0.5) / 25 * 10 - 0.5, 0, 2)
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-6)
    assert float(out[0, -1]) == 2.0


# ---------------------------------------------------------------- mel, VAE, UNet, vocoder, text

from foley_core.model.mel import MelSpectrogram          # noqa: E402
from foley_core.model.text import HashTextEncoder, SentenceEncoder   # noqa: E402
from foley_core.model.unet import FoleyUNet1DConditionModel, null_visual_mask   # noqa: E402
from foley_core.model.vae import MelVAE                  # noqa: E402
from foley_core.model.vocoder import GriffinLimVocoder   # noqa: E402


def chirp(seconds: float = 1.0, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    env = np.minimum(1.0, 4 * t) * np.exp(-2 * t)
    return (0.5 * env * np.sin(2 * np.pi * (300 + 1500 * t) * t)).astype(np.float32)


def test_mel_frames_range_and_peak_bin():
    mel = MelSpectrogram()
    audio = torch.from_numpy(chirp(2.0))
    m = mel(audio)
    assert m.shape == (1, 64, 200)                       # 100 frames per second
    assert -1.0 <= float(m.min()) and float(m.max()) <= 1.0
    tone = torch.sin(2 * torch.pi * 1000 * torch.arange(16000) / 16000) * 0.5
    bins = librosa_mel_bin(1000.0)
    assert abs(int(mel(tone)[0, :, 50].argmax()) - bins) <= 1


def librosa_mel_bin(freq_hz: float) -> int:
    import librosa

    centres = librosa.mel_frequencies(n_mels=66, fmin=0, fmax=8000)[1:-1]
    return int(np.argmin(np.abs(centres - freq_hz)))


def test_griffin_lim_torch_matches_librosa_engine():
    mel = MelSpectrogram()
    audio = chirp(1.0)
    m = mel(torch.from_numpy(audio))
    fast = GriffinLimVocoder(mel, n_iter=16)(m, len(audio))
    ref = GriffinLimVocoder(mel, n_iter=16, engine="librosa")(m, len(audio))
    assert fast.shape == ref.shape == (1, 16000)
    m_fast, m_ref = mel(torch.from_numpy(fast)), mel(torch.from_numpy(ref))
    # both invert the mel about equally well (log-mel error in normalised units)
    err_fast = float((m_fast - m).abs().mean())
    err_ref = float((m_ref - m).abs().mean())
    assert err_fast < 0.08 and err_ref < 0.08 and abs(err_fast - err_ref) < 0.03
    with pytest.raises(ValueError):
        GriffinLimVocoder(mel, engine="fast")


def test_vae_shapes_and_time_compression():
    vae = MelVAE(block_out_channels=(16, 16, 16), latent_channels=4)
    mel = torch.randn(2, 64, 100)
    post = vae.encode(mel)
    assert post.mean.shape == (2, 4, 25) and vae.time_downsample == 4
    assert vae.decode(post.mode()).shape == (2, 64, 100)
    assert vae.kl(post).shape == (2,)
    with pytest.raises(ValueError):
        vae.encode(torch.randn(1, 64, 99))


def tiny_unet() -> FoleyUNet1DConditionModel:
    return FoleyUNet1DConditionModel(in_channels=4, out_channels=4, block_out_channels=(16, 24, 32),
                                     attention_levels=(True, False, True), cross_attention_dim=16,
                                     attention_head_dim=8, text_embed_dim=12, n_time_features=16)


def test_unet_any_length_and_conditions():
    torch.manual_seed(0)
    unet = tiny_unet().eval()
    assert unet.time_multiple == 4
    text = torch.randn(2, 5, 12)
    visual = torch.randn(2, 7, 16)
    for length in (1, 13, 25, 64):
        out = unet(torch.randn(2, 4, length), 10, text_embeds=text, visual_tokens=visual).sample
        assert out.shape == (2, 4, length)
    assert unet(torch.randn(2, 4, 9), torch.tensor([1, 999])).sample.shape == (2, 4, 9)   # no conditions


def test_unet_masked_keys_have_no_effect():
    """Padding a caption with masked tokens (batching) or nulling rows changes nothing else."""
    torch.manual_seed(0)
    unet = tiny_unet().eval()
    z = torch.randn(1, 4, 20)
    text = torch.randn(1, 3, 12)
    visual = torch.randn(1, 6, 16)
    with torch.no_grad():
        plain = unet(z, 5, text_embeds=text, visual_tokens=visual).sample
        padded = unet(z, 5, text_embeds=torch.cat([text, torch.randn(1, 4, 12)], 1),
                      text_mask=torch.tensor([[True] * 3 + [False] * 4]), text_pooled=text.mean(1),
                      visual_tokens=visual).sample
        torch.testing.assert_close(padded, plain, atol=1e-5, rtol=1e-5)
        # an absent video (null_visual_mask) == the null token alone
        null_rows = torch.zeros(1, 6, 16) + 0.3
        masked = unet(z, 5, text_embeds=text, visual_tokens=null_rows,
                      visual_mask=null_visual_mask(torch.tensor([False]), 6)).sample
        single = unet(z, 5, text_embeds=text, visual_tokens=null_rows[:, :1]).sample
        torch.testing.assert_close(masked, single, atol=1e-5, rtol=1e-5)
        # absent text == the learned null text
        absent = unet(z, 5, text_embeds=text, text_present=torch.tensor([False]), visual_tokens=visual).sample
        none = unet(z, 5, visual_tokens=visual).sample
        torch.testing.assert_close(absent, none, atol=1e-5, rtol=1e-5)
    assert null_visual_mask(torch.tensor([True, False]), 3).tolist() == [[True] * 3, [True, False, False]]


def test_hash_text_encoder_batches_and_caches():
    enc = HashTextEncoder(embed_dim=8)
    batch = enc.encode_batch(["a dog barks loudly", None, "rain"])
    assert batch["text_embeds"].shape == (3, 4, 8)
    assert batch["text_mask"].tolist() == [[True] * 4, [True, False, False, False], [True, False, False, False]]
    assert batch["text_present"].tolist() == [True, False, True]
    enc.encode_batch(["rain", "rain"])
    assert enc.n_encoded == 2                      # each caption encoded once


def test_sentence_encoder_offline_minilm():
    enc = SentenceEncoder()
    tokens, pooled = enc.encode("a dog barks")
    assert tokens.shape[1] == 384 and 3 <= tokens.shape[0] <= 8
    assert abs(float(pooled.norm()) - 1.0) < 1e-4
    _, dog = enc.encode("a puppy is barking")
    _, engine = enc.encode("a car engine revs")
    assert float(pooled @ dog) > float(pooled @ engine) + 0.2      # semantics survive
    enc.encode("a dog barks")
    assert enc.n_encoded == 3
