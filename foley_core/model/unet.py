"""The embedded denoiser: a conditional UNet along time only (latent channels as features).

FACTS.md: a 2-D UNet over the mel image is far too slow on CPU, a time-only one is not; over the
VAE latent (25 frames/s) it is cheaper still. Built from diffusers blocks: `Timesteps`,
`TimestepEmbedding` and `BasicTransformerBlock` (self-attention, cross-attention to
[text tokens ; tau_visual tokens], feed-forward).

Conditioning enters in three places:
- cross-attention keys/values: projected text tokens + MAM's visual tokens (with a key mask, so
  captions of any length and absent conditions batch together);
- the timestep embedding: plus the projected pooled caption embedding (global "what");
- the input: TLM's tau_signal is added to z by the caller (`TimeLoudnessModule.add_to_latent`).
A learned time position embedding (same sin/cos-of-seconds basis as MAM's) is added to the
hidden states before every transformer block, so queries at latent time t can find visual
tokens at time t.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from foley_core.model.conditioning import TimePositionEmbedding
from foley_core.model.vae import ResBlock1D, _groups


@dataclass
class UNetOutput:
    sample: torch.Tensor


class TransformerStage(nn.Module):
    """Time position embedding + `BasicTransformerBlock`s over a (B, C, T) feature map."""

    def __init__(self, channels: int, head_dim: int, cross_attention_dim: int, n_layers: int,
                 n_time_features: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.pos = TimePositionEmbedding(channels, n_features=n_time_features)
        heads = max(1, channels // head_dim)
        self.blocks = nn.ModuleList(
            BasicTransformerBlock(channels, heads, channels // heads,
                                  cross_attention_dim=cross_attention_dim)
            for _ in range(n_layers))

    def forward(self, x: torch.Tensor, times_s: torch.Tensor, context: torch.Tensor,
                context_bias: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(x).transpose(1, 2)
        h = h + self.pos(times_s)[None].to(h.dtype)
        for block in self.blocks:
            h = block(h, encoder_hidden_states=context, encoder_attention_mask=context_bias)
        return x + h.transpose(1, 2)


class FoleyUNet1DConditionModel(ModelMixin, ConfigMixin):
    """eps(z_t, t, text, visual) over latents (B, in_channels, T), T any length.

    Args:
        block_out_channels: widths per level; each level after the first halves time.
        attention_levels: which levels (and the middle, always) get transformer blocks.
        text_embed_dim: width of the frozen text encoder's tokens (MiniLM: 384).
        latent_fps: latent frames per second (positions are in seconds).
    """

    @register_to_config
    def __init__(self, in_channels: int = 8, out_channels: int = 8,
                 block_out_channels: tuple[int, ...] = (128, 192, 256),
                 attention_levels: tuple[bool, ...] = (True, True, True),
                 layers_per_block: int = 1, transformer_layers: int = 1,
                 cross_attention_dim: int = 192, attention_head_dim: int = 32,
                 text_embed_dim: int = 384, latent_fps: float = 25.0, n_time_features: int = 64):
        super().__init__()
        chans = list(block_out_channels)
        if len(attention_levels) != len(chans):
            raise ValueError("attention_levels needs one flag per level")
        emb_dim = chans[0] * 4
        self.time_proj = Timesteps(chans[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(chans[0], emb_dim)
        self.pooled_text_proj = nn.Linear(text_embed_dim, emb_dim)
        self.text_proj = nn.Linear(text_embed_dim, cross_attention_dim)
        self.null_text_token = nn.Parameter(torch.randn(cross_attention_dim) * 0.02)
        self.null_text_pooled = nn.Parameter(torch.zeros(text_embed_dim))

        def stage(ch: int) -> TransformerStage:
            return TransformerStage(ch, attention_head_dim, cross_attention_dim, transformer_layers,
                                    n_time_features)

        self.conv_in = nn.Conv1d(in_channels, chans[0], 3, padding=1)
        self.down_res = nn.ModuleList()
        self.down_attn = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        prev = chans[0]
        for level, ch in enumerate(chans):
            self.down_res.append(nn.ModuleList(
                ResBlock1D(prev if i == 0 else ch, ch, emb_dim=emb_dim) for i in range(layers_per_block)))
            self.down_attn.append(stage(ch) if attention_levels[level] else nn.Identity())
            self.downsamplers.append(nn.Conv1d(ch, ch, 3, stride=2, padding=1)
                                     if level < len(chans) - 1 else nn.Identity())
            prev = ch
        self.mid_res1 = ResBlock1D(chans[-1], chans[-1], emb_dim=emb_dim)
        self.mid_attn = stage(chans[-1])
        self.mid_res2 = ResBlock1D(chans[-1], chans[-1], emb_dim=emb_dim)
        self.up_res = nn.ModuleList()
        self.up_attn = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for level in reversed(range(len(chans))):
            ch = chans[level]
            self.up_res.append(nn.ModuleList(
                ResBlock1D((prev if i == 0 else ch) + ch, ch, emb_dim=emb_dim)
                for i in range(layers_per_block)))
            self.up_attn.append(stage(ch) if attention_levels[level] else nn.Identity())
            self.upsamplers.append(nn.Conv1d(ch, chans[level - 1], 3, padding=1)
                                   if level > 0 else nn.Identity())
            prev = chans[level - 1] if level > 0 else ch
        self.norm_out = nn.GroupNorm(_groups(chans[0]), chans[0])
        self.conv_out = nn.Conv1d(chans[0], out_channels, 3, padding=1)

    @property
    def time_multiple(self) -> int:
        """Latent lengths are padded internally to a multiple of this."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def encode_context(self, text_embeds: torch.Tensor | None, text_mask: torch.Tensor | None,
                       text_pooled: torch.Tensor | None, text_present: torch.Tensor | None,
                       visual_tokens: torch.Tensor | None, visual_mask: torch.Tensor | None,
                       batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(context (B, L, D), additive key bias (B, 1, L), pooled text (B, text_embed_dim)).

        Rows with `text_present` False get the learned null text (one token, rest masked).
        `visual_tokens` None means no video for every row (MAM's null token is then missing,
        so a zero-length visual part is replaced by nothing: callers pass MAM's null tokens to
        be consistent with training).
        """
        dtype = self.text_proj.weight.dtype
        device = self.text_proj.weight.device
        if text_embeds is None:
            tokens = self.null_text_token.expand(batch_size, 1, -1)
            t_mask = torch.ones(batch_size, 1, dtype=torch.bool, device=device)
            pooled = self.null_text_pooled.expand(batch_size, -1)
        else:
            tokens = self.text_proj(text_embeds.to(dtype))
            t_mask = (torch.ones(tokens.shape[:2], dtype=torch.bool, device=device)
                      if text_mask is None else text_mask.to(device=device, dtype=torch.bool))
            pooled = text_embeds.mean(1) if text_pooled is None else text_pooled.to(dtype)
            if text_present is not None:
                keep = text_present.to(device=device, dtype=torch.bool)
                null_row = torch.zeros_like(t_mask)
                null_row[:, 0] = True
                tokens = torch.where(keep[:, None, None], tokens,
                                     self.null_text_token.to(dtype).expand_as(tokens))
                t_mask = torch.where(keep[:, None], t_mask, null_row)
                pooled = torch.where(keep[:, None], pooled, self.null_text_pooled.to(dtype).expand_as(pooled))
        parts, masks = [tokens], [t_mask]
        if visual_tokens is not None:
            parts.append(visual_tokens.to(dtype))
            masks.append(torch.ones(visual_tokens.shape[:2], dtype=torch.bool, device=device)
                         if visual_mask is None else visual_mask.to(device=device, dtype=torch.bool))
        context = torch.cat(parts, dim=1)
        mask = torch.cat(masks, dim=1)
        bias = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(~mask, -1e4)[:, None]
        return context, bias, pooled

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float, *,
                text_embeds: torch.Tensor | None = None, text_mask: torch.Tensor | None = None,
                text_pooled: torch.Tensor | None = None, text_present: torch.Tensor | None = None,
                visual_tokens: torch.Tensor | None = None, visual_mask: torch.Tensor | None = None,
                return_dict: bool = True) -> UNetOutput | tuple:
        """Noise prediction for `sample` (B, in_channels, T).

        text_embeds (B, L, text_embed_dim) with text_mask (B, L) bool; text_pooled (B, text_embed_dim);
        text_present (B,) bool; visual_tokens (B, Tv, cross_attention_dim) from MAM with
        visual_mask (B, Tv) bool (see `null_visual_mask`).
        """
        batch, _, length = sample.shape
        pad = (-length) % self.time_multiple
        x = F.pad(sample, (0, pad), mode="replicate") if pad else sample
        t = torch.as_tensor(timestep, device=x.device)
        if t.ndim == 0:
            t = t[None]
        t = t.expand(batch)
        context, bias, pooled = self.encode_context(text_embeds, text_mask, text_pooled, text_present,
                                                    visual_tokens, visual_mask, batch)
        emb = self.time_embedding(self.time_proj(t).to(x.dtype)) + self.pooled_text_proj(pooled)
        frame_s = 1.0 / self.config.latent_fps

        h = self.conv_in(x)
        skips = []
        times = []
        for level in range(len(self.down_res)):
            # frame j of level l covers latent frames [j 2^l, (j+1) 2^l): its centre in seconds
            lvl_times = (torch.arange(h.shape[-1], device=x.device, dtype=torch.float32) + 0.5) \
                * (2 ** level) * frame_s
            for block in self.down_res[level]:
                h = block(h, emb)
            if isinstance(self.down_attn[level], TransformerStage):
                h = self.down_attn[level](h, lvl_times, context, bias)
            skips.append(h)
            times.append(lvl_times)
            h = self.downsamplers[level](h)
        h = self.mid_res1(h, emb)
        h = self.mid_attn(h, times[-1], context, bias)
        h = self.mid_res2(h, emb)
        for i, level in enumerate(reversed(range(len(self.down_res)))):
            skip = skips[level]
            for block in self.up_res[i]:
                h = block(torch.cat([h, skip], dim=1), emb)
            if isinstance(self.up_attn[i], TransformerStage):
                h = self.up_attn[i](h, times[level], context, bias)
            if level > 0:
                h = F.interpolate(h, size=skips[level - 1].shape[-1], mode="nearest")
                h = self.upsamplers[i](h)
        out = self.conv_out(F.silu(self.norm_out(h)))
        if pad:
            out = out[..., :length]
        return UNetOutput(sample=out) if return_dict else (out,)


def null_visual_mask(present: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Key mask (B, n_tokens) for MAM tokens: all True for rows with video, first only otherwise.

    Absent video is ONE null token (the others masked), whatever the clip length, so training
    (condition dropout) and sampling (no video, or the unconditional branch) agree.
    """
    mask = present.to(torch.bool)[:, None].expand(-1, n_tokens).clone()
    mask[:, 0] = True
    return mask
