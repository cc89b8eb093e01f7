"""The embedded latent diffusion model: conditioning (MAM, TLM, E_v), VAE, denoiser, text, vocoder."""

from foley_core.model.conditioning import (
    MaskAttentionModule,
    MotionFrameEncoder,
    TimeLoudnessModule,
    VisualEncoder,
)

__all__ = ["MaskAttentionModule", "MotionFrameEncoder", "TimeLoudnessModule", "VisualEncoder"]
