"""MAM and TLM adapters for a pretrained diffusers UNet (the AudioLDM2 backend).

- Visual tokens (MAM's tau_visual) enter as EXTRA cross-attention beside the text, decoupled as
  in IP-Adapter: each cross-attention layer keeps its text path untouched and adds
  `to_out_v(attention(query, K_v(tau), V_v(tau)))`, with `to_out_v` initialised to zero.
- The loudness curve (TLM's tau_signal) is added to the UNet's latent input along time.

Every new output layer starts at zero, so installing untrained adapters leaves the base model's
output exactly unchanged. The adapter weights live in `AudioLDM2Adapters` (not in the UNet's
state dict) and are saved to / loaded from one safetensors file whose metadata records the
shapes, so a file made for another UNet is refused with a clear message.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from foley_core.atomic import atomic_path
from foley_core.errors import ModelUnavailableError
from foley_core.model.conditioning import MaskAttentionModule, MotionFrameEncoder, TimeLoudnessModule

ADAPTER_FORMAT = "foley-audioldm2-adapters"
ADAPTER_FORMAT_VERSION = 1
_METADATA_KEY = "foley_adapter_config"


class VisualContext:
    """The visual tokens of the current UNet call, shared by every visual attention processor.

    AudioLDM2's UNet blocks do not forward `cross_attention_kwargs` to their attention layers,
    so the tokens cannot travel with the call; the sampler sets them here around each call.
    """

    def __init__(self) -> None:
        self.tokens: torch.Tensor | None = None


class VisualCrossAttention(nn.Module):
    """The decoupled visual branch of one cross-attention layer: K_v, V_v and a zero output.

    The query is the layer's own (frozen) `to_q`, so visual tokens are read by the same queries
    that read the text.
    """

    def __init__(self, query_dim: int, inner_dim: int, heads: int, visual_dim: int):
        super().__init__()
        if inner_dim % heads:
            raise ValueError(f"inner_dim {inner_dim} is not divisible by heads {heads}")
        self.query_dim, self.inner_dim, self.heads, self.visual_dim = query_dim, inner_dim, heads, visual_dim
        self.to_k = nn.Linear(visual_dim, inner_dim, bias=False)
        self.to_v = nn.Linear(visual_dim, inner_dim, bias=False)
        self.to_out = nn.Linear(inner_dim, query_dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, attn: nn.Module, hidden_states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """hidden_states (B, L, query_dim), tokens (B, N, visual_dim) -> (B, L, query_dim)."""
        batch, length, _ = hidden_states.shape
        if tokens.shape[0] != batch:
            raise ValueError(f"visual tokens have batch {tokens.shape[0]}, the UNet call has {batch}")
        head_dim = self.inner_dim // self.heads
        tokens = tokens.to(device=hidden_states.device, dtype=self.to_k.weight.dtype)
        query = attn.to_q(hidden_states).view(batch, length, self.heads, head_dim).transpose(1, 2)
        key = self.to_k(tokens).view(batch, -1, self.heads, head_dim).transpose(1, 2)
        value = self.to_v(tokens).view(batch, -1, self.heads, head_dim).transpose(1, 2)
        out = F.scaled_dot_product_attention(query, key.to(query.dtype), value.to(query.dtype))
        out = out.transpose(1, 2).reshape(batch, length, self.inner_dim)
        return self.to_out(out.to(self.to_out.weight.dtype)).to(hidden_states.dtype)


class DecoupledVisualAttnProcessor:
    """Attention processor: the layer's original processor, plus the visual branch if tokens are set."""

    def __init__(self, base: Any, branch: VisualCrossAttention, context: VisualContext):
        self.base = base
        self.branch = branch
        self.context = context

    def __call__(self, attn: nn.Module, hidden_states: torch.Tensor,
                 encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 **kwargs: Any) -> torch.Tensor:
        out = self.base(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                        attention_mask=attention_mask, temb=temb, **kwargs)
        tokens = self.context.tokens
        if tokens is None:
            return out
        return out + self.branch(attn, hidden_states, tokens) / attn.rescale_output_factor


def cross_attention_layers(unet: nn.Module) -> dict[str, tuple[int, int, int]]:
    """Processor name -> (query_dim, inner_dim, heads) of every true cross-attention layer."""
    from diffusers.models.attention_processor import Attention

    layers: dict[str, tuple[int, int, int]] = {}
    for name, module in unet.named_modules():
        if isinstance(module, Attention) and module.is_cross_attention:
            if module.group_norm is not None or module.spatial_norm is not None:
                raise ValueError(f"{name}: cross-attention with group/spatial norm is not supported")
            layers[f"{name}.processor"] = (module.to_q.in_features, module.to_q.out_features, module.heads)
    if not layers:
        raise ValueError("this UNet has no cross-attention layers to attach visual adapters to")
    return layers


def _module_key(processor_name: str) -> str:
    return processor_name.removesuffix(".processor").replace(".", "__")


class AudioLDM2Adapters(nn.Module):
    """MAM (with its visual encoder E_v), TLM, and one visual branch per cross-attention layer.

    Args:
        attn_layers: processor name -> (query_dim, inner_dim, heads), from `cross_attention_layers`.
        latent_channels: channels of the UNet's latent (AudioLDM2: 8).
        latent_fps: latent frames per second (AudioLDM2: 100 mel frames/s / VAE factor 4 = 25).
        visual_dim: width of the visual tokens tau_visual.
        visual_encoder: E_v; default the embedded model's `MotionFrameEncoder`, whose weights are
            then part of the adapter file.
        tlm_hidden_dim: width of TLM's signal encoder.
    """

    def __init__(self, attn_layers: dict[str, tuple[int, int, int]], *, latent_channels: int = 8,
                 latent_fps: float = 25.0, visual_dim: int = 768,
                 visual_encoder: nn.Module | None = None, tlm_hidden_dim: int = 64):
        super().__init__()
        self.attn_layers = {name: tuple(int(v) for v in dims) for name, dims in attn_layers.items()}
        self.latent_channels = int(latent_channels)
        self.latent_fps = float(latent_fps)
        self.visual_dim = int(visual_dim)
        self.tlm = TimeLoudnessModule(self.latent_channels, self.latent_fps, hidden_dim=tlm_hidden_dim)
        self.mam = MaskAttentionModule(visual_encoder if visual_encoder is not None else MotionFrameEncoder(),
                                       self.visual_dim)
        self.visual_attn = nn.ModuleDict({
            _module_key(name): VisualCrossAttention(q, inner, heads, self.visual_dim)
            for name, (q, inner, heads) in self.attn_layers.items()
        })
        self.context = VisualContext()
        self._installed: dict[int, dict[str, Any]] = {}

    @classmethod
    def for_unet(cls, unet: nn.Module, **kwargs: Any) -> "AudioLDM2Adapters":
        """Adapters shaped for `unet` (zero-initialised outputs: the UNet's output is unchanged)."""
        kwargs.setdefault("latent_channels", int(unet.config.in_channels))
        return cls(cross_attention_layers(unet), **kwargs)

    @property
    def config(self) -> dict:
        encoder = self.mam.visual_encoder
        return {
            "format": ADAPTER_FORMAT, "version": ADAPTER_FORMAT_VERSION,
            "attn_layers": {k: list(v) for k, v in self.attn_layers.items()},
            "latent_channels": self.latent_channels, "latent_fps": self.latent_fps,
            "visual_dim": self.visual_dim, "tlm_hidden_dim": self.tlm.hidden_dim,
            "visual_encoder": {"class": type(encoder).__name__, "config": getattr(encoder, "config", {})},
        }

    # -- installing into a UNet ---------------------------------------------------------------

    def install(self, unet: nn.Module) -> None:
        """Wrap the cross-attention processors of `unet` (which must match `attn_layers`)."""
        if id(unet) in self._installed:
            return
        found = cross_attention_layers(unet)
        if found != self.attn_layers:
            raise ValueError("these adapters were made for a UNet with different cross-attention "
                             "layers than this one")
        original = dict(unet.attn_processors)
        processors = dict(original)
        for name in self.attn_layers:
            processors[name] = DecoupledVisualAttnProcessor(
                original[name], self.visual_attn[_module_key(name)], self.context)
        unet.set_attn_processor(processors)
        self._installed[id(unet)] = original

    def uninstall(self, unet: nn.Module) -> None:
        """Restore the processors `unet` had before `install`."""
        original = self._installed.pop(id(unet), None)
        if original is not None:
            unet.set_attn_processor(original)

    @contextlib.contextmanager
    def visual_tokens(self, tokens: torch.Tensor | None) -> Iterator[None]:
        """Let the installed processors attend to `tokens` (B, N, visual_dim) inside the block."""
        previous = self.context.tokens
        self.context.tokens = tokens
        try:
            yield
        finally:
            self.context.tokens = previous

    # -- weights ------------------------------------------------------------------------------

    def is_identity(self) -> bool:
        """True while every output layer is still zero (untrained adapters change nothing)."""
        zero_params = [self.tlm.out.weight, self.tlm.out.bias, self.tlm.null_embedding]
        for branch in self.visual_attn.values():
            zero_params += [branch.to_out.weight, branch.to_out.bias]
        return all(not torch.any(p) for p in zero_params)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the adapter weights and config to a safetensors file (atomically)."""
        from safetensors.torch import save_file

        path = Path(path)
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={_METADATA_KEY: json.dumps(self.config)})
        return path

    @staticmethod
    def read_config(path: str | os.PathLike) -> dict:
        """The config stored in an adapter file; `ModelUnavailableError` if it is not one."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise ModelUnavailableError(
                f"AudioLDM2 adapter weights not found at '{path}': check the path, or run without "
                "adapter weights (the backend then ignores mask and video).")
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
            config = json.loads(metadata[_METADATA_KEY])
        except Exception as err:  # safetensors raises several types for a damaged or foreign file
            raise ModelUnavailableError(
                f"'{path}' is not an AudioLDM2 adapter file of this studio ({err}); "
                "pass a .safetensors file written by AudioLDM2Adapters.save.") from err
        if config.get("format") != ADAPTER_FORMAT or config.get("version") != ADAPTER_FORMAT_VERSION:
            raise ModelUnavailableError(
                f"'{path}' has adapter format {config.get('format')!r} version {config.get('version')!r}; "
                f"this studio reads {ADAPTER_FORMAT!r} version {ADAPTER_FORMAT_VERSION}.")
        return config

    def load(self, path: str | os.PathLike) -> None:
        """Load weights saved by `save`; refuses a file made for another UNet or encoder."""
        from safetensors.torch import load_file

        config = self.read_config(path)
        mine = self.config
        for key in ("attn_layers", "latent_channels", "visual_dim", "tlm_hidden_dim", "visual_encoder"):
            if json.dumps(config.get(key), sort_keys=True) != json.dumps(mine[key], sort_keys=True):
                raise ModelUnavailableError(
                    f"adapter file '{path}' does not fit this model: its '{key}' differs "
                    "(it was trained for another AudioLDM2 checkpoint or visual encoder).")
        state = load_file(str(path))
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ModelUnavailableError(
                f"adapter file '{path}' is incomplete or foreign: missing {sorted(missing)[:3]}, "
                f"unexpected {sorted(unexpected)[:3]}.")

    @classmethod
    def from_file(cls, path: str | os.PathLike, unet: nn.Module,
                  visual_encoder: nn.Module | None = None) -> "AudioLDM2Adapters":
        """Build adapters for `unet` with the sizes stored in `path`, then load the weights."""
        config = cls.read_config(path)
        if visual_encoder is None:
            spec = config.get("visual_encoder", {})
            if spec.get("class") != MotionFrameEncoder.__name__:
                raise ModelUnavailableError(
                    f"adapter file '{path}' needs the visual encoder {spec.get('class')!r}: "
                    "pass it as visual_encoder.")
            encoder_config = dict(spec.get("config", {}))
            if "channels" in encoder_config:
                encoder_config["channels"] = tuple(encoder_config["channels"])
            visual_encoder = MotionFrameEncoder(**encoder_config)
        adapters = cls.for_unet(unet, latent_channels=config["latent_channels"],
                                latent_fps=config["latent_fps"], visual_dim=config["visual_dim"],
                                visual_encoder=visual_encoder, tlm_hidden_dim=config["tlm_hidden_dim"])
        adapters.load(path)
        return adapters
