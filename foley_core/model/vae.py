"""A 1-D VAE over the log-mel: mel bins as channels, time compressed by `2 ** len(down)`.

diffusers' `AutoencoderKL` is 2-D (too slow over 64 x 800 on CPU) and `AutoencoderOobleck`
ties its latent width to its hidden width; this small model keeps diffusers' ModelMixin /
ConfigMixin (save_pretrained / from_pretrained). The posterior mirrors diffusers'
`DiagonalGaussianDistribution` (importing that module pulls in every diffusers autoencoder,
~4 s of CPU at each start).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def _groups(channels: int) -> int:
    for g in (8, 4, 2, 1):
        if channels % g == 0:
            return g
    return 1


class ResBlock1D(nn.Module):
    """GroupNorm-SiLU-Conv1d twice with a skip; `emb` (B, E) optionally shifts the features."""

    def __init__(self, in_ch: int, out_ch: int, *, emb_dim: int | None = None, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.norm1 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv1 = nn.Conv1d(in_ch, out_ch, kernel_size, padding=pad)
        self.emb = nn.Linear(emb_dim, out_ch) if emb_dim else None
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch)
        self.conv2 = nn.Conv1d(out_ch, out_ch, kernel_size, padding=pad)
        self.skip = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))
        if self.emb is not None and emb is not None:
            h = h + self.emb(self.act(emb))[:, :, None]
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)


def batch_randn(shape, generator: torch.Generator | list[torch.Generator] | None = None,
                dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normal noise of `shape`; with a list of generators, item i of the batch (dim 0) is drawn
    from generator i alone, so an item's noise does not depend on which other items share its
    batch (training split over several processes then draws what one process would)."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {shape[0]}")
        return torch.stack([torch.randn(tuple(shape[1:]), generator=g, dtype=dtype) for g in generator])
    return torch.randn(tuple(shape), generator=generator, dtype=dtype)


class DiagonalGaussianDistribution:
    """Gaussian posterior from (B, 2C, T) moments: mean and log-variance halves."""

    def __init__(self, parameters: torch.Tensor):
        self.parameters = parameters
        self.mean, self.logvar = torch.chunk(parameters, 2, dim=1)
        self.logvar = torch.clamp(self.logvar, -30.0, 20.0)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    def sample(self, generator: torch.Generator | list[torch.Generator] | None = None) -> torch.Tensor:
        """A posterior sample; `generator` may be one per batch item (see `batch_randn`)."""
        noise = batch_randn(self.mean.shape, generator, dtype=self.mean.dtype).to(self.mean.device)
        return self.mean + self.std * noise

    def mode(self) -> torch.Tensor:
        return self.mean


@dataclass
class MelVAEOutput:
    sample: torch.Tensor
    posterior: DiagonalGaussianDistribution


class MelVAE(ModelMixin, ConfigMixin):
    """Normalised log-mel (B, n_mels, T) <-> latent (B, latent_channels, T / time_downsample).

    `scaling_factor` brings latents to about unit variance for the diffusion model; training
    sets it from data (1 / std of latent means).
    """

    @register_to_config
    def __init__(self, n_mels: int = 64, latent_channels: int = 8,
                 block_out_channels: tuple[int, ...] = (96, 128, 160), layers_per_block: int = 1,
                 scaling_factor: float = 1.0):
        super().__init__()
        chans = list(block_out_channels)
        self.conv_in = nn.Conv1d(n_mels, chans[0], 3, padding=1)
        enc: list[nn.Module] = []
        for i, ch in enumerate(chans):
            prev = chans[max(i - 1, 0)]
            for j in range(layers_per_block):
                enc.append(ResBlock1D(prev if j == 0 else ch, ch))
            if i < len(chans) - 1:
                enc.append(nn.Conv1d(ch, ch, 4, stride=2, padding=1))
        self.encoder = nn.ModuleList(enc)
        self.enc_out = nn.Sequential(nn.GroupNorm(_groups(chans[-1]), chans[-1]), nn.SiLU(),
                                     nn.Conv1d(chans[-1], 2 * latent_channels, 3, padding=1))
        self.dec_in = nn.Conv1d(latent_channels, chans[-1], 3, padding=1)
        dec: list[nn.Module] = []
        rev = chans[::-1]
        for i, ch in enumerate(rev):
            prev = rev[max(i - 1, 0)]
            for j in range(layers_per_block):
                dec.append(ResBlock1D(prev if j == 0 else ch, ch))
            if i < len(rev) - 1:
                dec.append(nn.ConvTranspose1d(ch, ch, 4, stride=2, padding=1))
        self.decoder = nn.ModuleList(dec)
        self.dec_out = nn.Sequential(nn.GroupNorm(_groups(rev[-1]), rev[-1]), nn.SiLU(),
                                     nn.Conv1d(rev[-1], n_mels, 3, padding=1))

    @property
    def time_downsample(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def encode(self, mel: torch.Tensor) -> DiagonalGaussianDistribution:
        """mel (B, n_mels, T), T a multiple of `time_downsample` -> posterior over latents."""
        if mel.shape[-1] % self.time_downsample:
            raise ValueError(f"mel length {mel.shape[-1]} is not a multiple of {self.time_downsample}")
        h = self.conv_in(mel)
        for layer in self.encoder:
            h = layer(h)
        moments = self.enc_out(h)
        return DiagonalGaussianDistribution(moments)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latent (B, latent_channels, T') -> normalised log-mel (B, n_mels, T' * time_downsample)."""
        h = self.dec_in(z)
        for layer in self.decoder:
            h = layer(h)
        return self.dec_out(h)

    def forward(self, mel: torch.Tensor, *, sample_posterior: bool = True,
                generator: torch.Generator | None = None) -> MelVAEOutput:
        posterior = self.encode(mel)
        z = posterior.sample(generator=generator) if sample_posterior else posterior.mode()
        return MelVAEOutput(sample=self.decode(z), posterior=posterior)

    @staticmethod
    def kl(posterior: DiagonalGaussianDistribution) -> torch.Tensor:
        """KL to N(0, 1) per item, averaged over latent elements."""
        return 0.5 * (posterior.mean.pow(2) + posterior.var - 1.0 - posterior.logvar).mean(dim=(1, 2))
