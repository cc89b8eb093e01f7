"""Conditioning modules of "Draw an Audio" (Yang et al., 2024): MAM, TLM and the embedded E_v.

- `MaskAttentionModule` (MAM): masked video -> visual tokens `tau_visual` for cross-attention,
  and optionally (`VisualSyncModule`) a frame-aligned signal added to the latent.
- `TimeLoudnessModule` (TLM): relative loudness curve -> `tau_signal`, added to the latent z.
- `MotionFrameEncoder`: the embedded model's visual encoder E_v, a small CNN over 64x64 frames at
  20 fps that sees each frame together with its difference to the previous one.

All three are backend-agnostic: the AudioLDM2 backend plugs its own latent shape and E_v in.
Conventions: frames are float tensors in [0, 1] shaped (B, T, 3, H, W), frame t on screen at
t / fps; masks (B, T, 1, H, W) in [0, 1]; curves (B, N) relative loudness 0..1 at `CURVE_FPS`
points per second, point k at (k + 0.5) / CURVE_FPS (foley_core.loudness's grid).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from foley_core.constants import CURVE_FPS


@runtime_checkable
class VisualEncoder(Protocol):
    """What MAM needs from E_v: frames (B, T, 3, H, W) in [0, 1] -> features (B, T, feature_dim)."""

    feature_dim: int
    fps: float
    frame_size: int | tuple[int, int]

    def __call__(self, frames: torch.Tensor) -> torch.Tensor: ...


def sinusoidal_time_features(times_s: torch.Tensor, dim: int, *, min_period_s: float = 0.02,
                             max_period_s: float = 64.0) -> torch.Tensor:
    """Sin/cos features of times in seconds, geometric periods from `min_period_s` to `max_period_s`.

    Shared by MAM (visual token times) and the denoiser (latent frame times) so that a dot product
    between their learned projections can depend on the time difference alone: that is what lets
    cross-attention align a visual event to the latent frame at the same moment.
    """
    half = dim // 2
    periods = torch.exp(torch.linspace(math.log(min_period_s), math.log(max_period_s), half,
                                       device=times_s.device, dtype=torch.float32))
    angles = 2 * math.pi * times_s.float()[..., None] / periods
    feats = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)
    if dim % 2:
        feats = F.pad(feats, (0, 1))
    return feats


class TimePositionEmbedding(nn.Module):
    """Learned projection of sinusoidal time features: times (B, T) in seconds -> (B, T, dim)."""

    def __init__(self, dim: int, *, n_features: int = 64):
        super().__init__()
        self.n_features = n_features
        self.proj = nn.Linear(n_features, dim)

    def forward(self, times_s: torch.Tensor) -> torch.Tensor:
        feats = sinusoidal_time_features(times_s, self.n_features)
        return self.proj(feats.to(self.proj.weight.dtype))


def interpolate_curve(curve: torch.Tensor, n_frames: int, *, frame_rate: float,
                      curve_fps: float = CURVE_FPS) -> torch.Tensor:
    """Linear interpolation of curves (B, N) at `curve_fps` to `n_frames` frames at `frame_rate`.

    Both grids are centred (foley_core.loudness's convention): curve point k stands for
    [k / curve_fps, (k + 1) / curve_fps) and sits at (k + 0.5) / curve_fps; frame j at
    (j + 0.5) / frame_rate. Beyond the first and last points the end values are held.
    """
    batch, n_points = curve.shape
    centres_s = (torch.arange(n_frames, device=curve.device, dtype=torch.float32) + 0.5) / frame_rate
    pos = (centres_s * curve_fps - 0.5).clamp(0, n_points - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n_points - 1)
    frac = (pos - lo.float()).to(curve.dtype)
    return curve[:, lo] * (1 - frac) + curve[:, hi] * frac


def resample_frames(values: torch.Tensor, n_frames: int, *, frame_rate: float, source_fps: float) -> torch.Tensor:
    """Linear resampling along time of (B, T, D) values at `source_fps` (value t shown at
    t / source_fps, as video frames are) to (B, n_frames, D) at `frame_rate` (frame j centred at
    (j + 0.5) / frame_rate, the latent's convention). Beyond the ends the end values are held."""
    n_src = values.shape[1]
    centres_s = (torch.arange(n_frames, device=values.device, dtype=torch.float32) + 0.5) / frame_rate
    pos = (centres_s * source_fps).clamp(0, n_src - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n_src - 1)
    frac = (pos - lo.float()).to(values.dtype)[None, :, None]
    return values[:, lo] * (1 - frac) + values[:, hi] * frac


class VisualSyncModule(nn.Module):
    """Frame-aligned visual conditioning ADDED to the latent, next to MAM's cross-attention.

    Cross-attention has to learn to align a visual event with the latent frame at the same time
    from position embeddings, which a CPU-sized model trained for a few hours barely does (onset
    F1 at chance after 3,300 steps). MMAudio adds frame-aligned synchronisation features to its
    audio latent for the same reason. Here (F_mask, F_visual) per frame -> MLP -> resampled to
    the latent frame rate -> a short temporal convolution -> `latent_channels`, added to z like
    TLM's tau_signal. Both F_mask (the drawn object) and F_visual (everything) go in, so the
    module can tell the masked object's motion from the rest. The output layer starts at zero:
    attaching it to a trained model changes nothing until it is trained.
    """

    def __init__(self, feature_dim: int, latent_channels: int, latent_fps: float, fps: float, *,
                 hidden_dim: int = 64):
        super().__init__()
        self.feature_dim, self.latent_channels = feature_dim, latent_channels
        self.latent_fps, self.fps, self.hidden_dim = latent_fps, fps, hidden_dim
        self.frame_net = nn.Sequential(nn.LayerNorm(2 * feature_dim), nn.Linear(2 * feature_dim, hidden_dim),
                                       nn.SiLU())
        self.temporal = nn.Sequential(nn.Conv1d(hidden_dim, hidden_dim, 5, padding=2, padding_mode="replicate"),
                                      nn.SiLU())
        self.out = nn.Conv1d(hidden_dim, latent_channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def config(self) -> dict:
        return {"latent_channels": self.latent_channels, "latent_fps": self.latent_fps,
                "hidden_dim": self.hidden_dim}

    def forward(self, f_visual: torch.Tensor, f_mask: torch.Tensor, n_latent_frames: int) -> torch.Tensor:
        """(B, T, feature_dim) each -> (B, latent_channels, n_latent_frames)."""
        h = self.frame_net(torch.cat([f_mask, f_visual], dim=-1))
        h = resample_frames(h, n_latent_frames, frame_rate=self.latent_fps, source_fps=self.fps)
        return self.out(self.temporal(h.transpose(1, 2)))


class MaskAttentionModule(nn.Module):
    """MAM: visual tokens from a video and a per-frame mask of the sounding object.

    F_visual = E_v(x_v), F_mask = E_v(M * x_v),
    tau_visual = F_mask * (GAP_t(F_mask) @ W) + F_visual          (Draw an Audio, sec. 3.2)
    then a projection to `cross_attention_dim` plus a learned time position embedding at each
    frame's time, so cross-attention can align visual tokens with latent frames.
    A learned null token stands for "no video" (classifier-free guidance and absent video).

    Args:
        visual_encoder: E_v, or None if only precomputed features will be passed to `forward`.
        cross_attention_dim: width of the tokens the denoiser attends to.
        feature_dim: E_v's output width (read from `visual_encoder.feature_dim` when given).
        fps: frame rate of the tokens (read from `visual_encoder.fps` when given).
        sync: keyword arguments of a `VisualSyncModule` (latent_channels, latent_fps,
            hidden_dim), or None for cross-attention only (the paper's MAM).
    """

    def __init__(self, visual_encoder: nn.Module | None, cross_attention_dim: int, *,
                 feature_dim: int | None = None, fps: float | None = None,
                 n_time_features: int = 64, sync: dict | None = None):
        super().__init__()
        if visual_encoder is not None:
            feature_dim = int(visual_encoder.feature_dim)
            fps = float(visual_encoder.fps)
        if feature_dim is None or fps is None:
            raise ValueError("MaskAttentionModule needs a visual_encoder or feature_dim and fps")
        self.visual_encoder = visual_encoder
        self.feature_dim = feature_dim
        self.fps = fps
        self.cross_attention_dim = cross_attention_dim
        self.gate = nn.Linear(feature_dim, feature_dim, bias=False)   # W of the MAM equation
        self.proj = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, cross_attention_dim))
        self.time_embedding = TimePositionEmbedding(cross_attention_dim, n_features=n_time_features)
        self.null_embedding = nn.Parameter(torch.randn(cross_attention_dim) * 0.02)
        self.sync = None
        if sync is not None:
            self.attach_sync(**sync)

    def attach_sync(self, latent_channels: int, latent_fps: float, hidden_dim: int = 64) -> None:
        """Add a zero-initialised `VisualSyncModule` (upgrading a model trained without one)."""
        self.sync = VisualSyncModule(self.feature_dim, int(latent_channels), float(latent_fps), self.fps,
                                     hidden_dim=int(hidden_dim))

    def sync_signal(self, features: tuple[torch.Tensor, torch.Tensor], n_latent_frames: int, *,
                    present: torch.Tensor | None = None) -> torch.Tensor | None:
        """The sync module's (B, C, n_latent_frames) for cached (F_visual, F_mask), zero on rows
        where `present` is False ("no video" adds nothing); None without a sync module."""
        if self.sync is None:
            return None
        f_visual, f_mask = features
        out = self.sync(f_visual, f_mask, n_latent_frames)
        if present is not None:
            out = out * present.to(device=out.device, dtype=out.dtype).reshape(-1, 1, 1)
        return out

    @property
    def config(self) -> dict:
        cfg = {"cross_attention_dim": self.cross_attention_dim, "feature_dim": self.feature_dim,
               "fps": self.fps, "n_time_features": self.time_embedding.n_features}
        if self.sync is not None:
            cfg["sync"] = self.sync.config
        return cfg

    def encode_features(self, frames: torch.Tensor,
                        masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """E_v outputs (F_visual, F_mask), each (B, T, feature_dim): what the pipeline caches.

        `masks` (B, T, 1, H, W) or (B, T, H, W) in [0, 1]; None means the whole frame (F_mask =
        F_visual).
        """
        if self.visual_encoder is None:
            raise RuntimeError("this MaskAttentionModule has no visual encoder; pass features")
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        f_visual = self.visual_encoder(frames)
        if masks is None:
            return f_visual, f_visual
        if masks.ndim == 4:
            masks = masks[:, :, None]
        f_mask = self.visual_encoder(frames * masks.to(frames.dtype))
        return f_visual, f_mask

    def null_tokens(self, batch_size: int, n_tokens: int = 1) -> torch.Tensor:
        """(B, n_tokens, cross_attention_dim) of the learned "no video" token."""
        return self.null_embedding.expand(batch_size, n_tokens, -1)

    def forward(self, frames: torch.Tensor | None = None, masks: torch.Tensor | None = None, *,
                features: tuple[torch.Tensor, torch.Tensor] | None = None,
                present: torch.Tensor | None = None,
                start_s: float | torch.Tensor = 0.0) -> torch.Tensor:
        """tau_visual (B, T, cross_attention_dim) from frames+masks or cached (F_visual, F_mask).

        `present` (B,) bool: rows where it is False get the null token at every position (used
        for condition dropout in training and for the unconditional CFG branch). `start_s` is
        the time of frame 0 within the generated window (token t sits at start_s + t / fps).
        """
        if features is None:
            if frames is None:
                raise ValueError("pass frames (and masks) or precomputed features")
            features = self.encode_features(frames, masks)
        f_visual, f_mask = features
        if f_visual.shape != f_mask.shape:
            raise ValueError(f"F_visual {tuple(f_visual.shape)} and F_mask {tuple(f_mask.shape)} differ")
        gap = f_mask.mean(dim=1, keepdim=True)
        tau = f_mask * self.gate(gap) + f_visual
        tau = self.proj(tau)
        batch, n_frames = tau.shape[:2]
        start = torch.as_tensor(start_s, dtype=torch.float32, device=tau.device).reshape(-1, 1)
        times = start + torch.arange(n_frames, device=tau.device, dtype=torch.float32)[None] / self.fps
        tau = tau + self.time_embedding(times.expand(batch, -1))
        if present is not None:
            keep = present.to(device=tau.device, dtype=torch.bool).reshape(batch, 1, 1)
            tau = torch.where(keep, tau, self.null_embedding.to(tau.dtype).expand_as(tau))
        return tau


def onset_track(onsets_s: torch.Tensor | list, n_frames: int, *, frame_rate: float, sigma_s: float,
                decay_s: float) -> torch.Tensor:
    """Onset times (s, from the window start) -> (2, n_frames) track at `frame_rate`.

    Channel 0 is a Gaussian bump (std `sigma_s`) at each onset, evaluated at frame centres
    ((j + 0.5) / frame_rate), so an onset between two frames shows in their relative heights;
    channel 1 decays as exp(-(t - last onset) / decay_s) after each onset (0 before the first),
    which tells each frame how long ago the last attack was.
    """
    centres = (torch.arange(n_frames, dtype=torch.float32) + 0.5) / frame_rate
    onsets = torch.as_tensor(onsets_s, dtype=torch.float32).reshape(-1)
    if onsets.numel() == 0:
        return torch.zeros(2, n_frames)
    delta = centres[:, None] - onsets[None, :]                       # (T, E)
    bumps = torch.exp(-0.5 * (delta / sigma_s) ** 2).sum(dim=1).clamp(max=1.0)
    since = torch.where(delta >= 0, delta, torch.full_like(delta, float("inf"))).min(dim=1).values
    decay = torch.exp(-since / decay_s)
    return torch.stack([bumps, decay])


class OnsetModule(nn.Module):
    """Onset times -> a frame-aligned signal ADDED to the latent, next to TLM's tau_signal.

    The loudness curve has 10 points/s and is smoothed, so its rises are ~200 ms wide: with the
    true loudness of a clip as the curve, generated onsets hit +-100 ms in only 40 % of cases
    (measured on the evaluation scenes). Onsets (a detector's on the training audio; contact
    times from the video, or the user's hits, at generation) give the attacks the latent frame's
    precision (40 ms), as SyncFusion's onset track does. The output layer starts at zero and
    "no onsets given" is a learned null, like the TLM's.
    """

    def __init__(self, latent_channels: int, latent_fps: float, *, hidden_dim: int = 64,
                 sigma_s: float = 0.02, decay_s: float = 0.15):
        super().__init__()
        self.latent_channels, self.latent_fps, self.hidden_dim = latent_channels, latent_fps, hidden_dim
        self.sigma_s, self.decay_s = sigma_s, decay_s
        self.encoder = nn.Sequential(
            nn.Conv1d(2, hidden_dim, 5, padding=2, padding_mode="replicate"), nn.SiLU(),
            nn.Conv1d(hidden_dim, hidden_dim, 1), nn.SiLU())
        self.out = nn.Conv1d(hidden_dim, latent_channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.null_embedding = nn.Parameter(torch.zeros(latent_channels))

    @property
    def config(self) -> dict:
        return {"hidden_dim": self.hidden_dim, "sigma_s": self.sigma_s, "decay_s": self.decay_s}

    def forward(self, onsets_s: list | None, n_latent_frames: int, *,
                present: torch.Tensor | None = None, batch_size: int | None = None) -> torch.Tensor:
        """(B, latent_channels, n_latent_frames) for a list of B onset-time lists (seconds from
        the window start), or None for "no onsets" (then give `batch_size`). An empty list means
        "no attack in this window", which is not the same as no instruction. `present` (B,) bool:
        rows where it is False get the learned null."""
        if onsets_s is None:
            if batch_size is None:
                raise ValueError("batch_size is needed when onsets_s is None")
            return self.null_embedding[None, :, None].expand(batch_size, -1, n_latent_frames)
        dtype, device = self.out.weight.dtype, self.out.weight.device
        x = torch.stack([onset_track(o, n_latent_frames, frame_rate=self.latent_fps,
                                     sigma_s=self.sigma_s, decay_s=self.decay_s) for o in onsets_s])
        tau = self.out(self.encoder(x.to(device=device, dtype=dtype)))
        if present is not None:
            keep = present.to(device=tau.device, dtype=torch.bool).reshape(-1, 1, 1)
            tau = torch.where(keep, tau, self.null_embedding[None, :, None].to(tau.dtype).expand_as(tau))
        return tau


class TimeLoudnessModule(nn.Module):
    """TLM: relative loudness curve (B, N) at 10 points/s -> tau_signal to ADD to the latent z.

    The curve is interpolated to the latent frame rate, then a small signal encoder (an MLP over
    a short window of neighbouring points, written as 1-D convolutions) maps it to
    `latent_channels` values per latent frame. The output layer and the null embedding start at
    zero, so an untrained TLM leaves z unchanged.

    Args:
        latent_channels: channels C of the latent z the output is added to.
        latent_fps: latent frames per second (embedded model: 25; AudioLDM2: 25).
        hidden_dim: width of the signal encoder.
        context_frames: window of latent frames each output sees (odd).
    """

    def __init__(self, latent_channels: int, latent_fps: float, *, hidden_dim: int = 64,
                 context_frames: int = 5, curve_fps: float = CURVE_FPS, onsets: dict | None = None):
        super().__init__()
        if context_frames % 2 != 1:
            raise ValueError("context_frames must be odd")
        self.latent_channels = latent_channels
        self.latent_fps = latent_fps
        self.curve_fps = curve_fps
        self.hidden_dim = hidden_dim
        self.context_frames = context_frames
        self.encoder = nn.Sequential(
            nn.Conv1d(2, hidden_dim, context_frames, padding=context_frames // 2,
                      padding_mode="replicate"),   # no edge artefacts at window ends
            nn.SiLU(),
            nn.Conv1d(hidden_dim, hidden_dim, 1),
            nn.SiLU(),
        )
        self.out = nn.Conv1d(hidden_dim, latent_channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.null_embedding = nn.Parameter(torch.zeros(latent_channels))
        self.onsets = None
        if onsets is not None:
            self.attach_onsets(**onsets)

    def attach_onsets(self, hidden_dim: int = 64, sigma_s: float = 0.02, decay_s: float = 0.15) -> None:
        """Add a zero-initialised `OnsetModule` (upgrading a model trained without one)."""
        self.onsets = OnsetModule(self.latent_channels, self.latent_fps, hidden_dim=int(hidden_dim),
                                  sigma_s=float(sigma_s), decay_s=float(decay_s))

    @property
    def config(self) -> dict:
        cfg = {"latent_channels": self.latent_channels, "latent_fps": self.latent_fps,
               "hidden_dim": self.hidden_dim, "context_frames": self.context_frames,
               "curve_fps": self.curve_fps}
        if self.onsets is not None:
            cfg["onsets"] = self.onsets.config
        return cfg

    def forward(self, curve: torch.Tensor | None, n_latent_frames: int, *,
                present: torch.Tensor | None = None, batch_size: int | None = None,
                onsets_s: list | None = None, onsets_present: torch.Tensor | None = None) -> torch.Tensor:
        """tau_signal (B, latent_channels, n_latent_frames): the curve's, plus the onset module's
        when the TLM has one.

        `curve` (B, N) relative loudness at `curve_fps`, or None for "no curve" (then give
        `batch_size`). `present` (B,) bool: rows where it is False get the learned null.
        `onsets_s`: B lists of onset times (s from the window start), or None for "no onsets"
        (the module's learned null); `onsets_present` drops rows as `present` does.
        """
        if onsets_s is not None and self.onsets is None:
            raise ValueError("this model has no onset module: it cannot follow onsets_s")
        tau = self._curve_signal(curve, n_latent_frames, present=present, batch_size=batch_size)
        if self.onsets is not None:
            tau = tau + self.onsets(onsets_s, n_latent_frames, present=onsets_present,
                                    batch_size=tau.shape[0])
        return tau

    def _curve_signal(self, curve: torch.Tensor | None, n_latent_frames: int, *,
                      present: torch.Tensor | None, batch_size: int | None) -> torch.Tensor:
        if curve is None:
            if batch_size is None:
                raise ValueError("batch_size is needed when curve is None")
            return self.null_embedding[None, :, None].expand(batch_size, -1, n_latent_frames)
        if curve.ndim != 2:
            raise ValueError(f"curve must be (B, N), got {tuple(curve.shape)}")
        dtype = self.out.weight.dtype
        values = interpolate_curve(curve.to(dtype), n_latent_frames, frame_rate=self.latent_fps,
                                   curve_fps=self.curve_fps)
        # The second channel is a slope in dB-like units, so quiet passages are not all "zero".
        log_values = torch.log10(values.clamp_min(1e-3)) / 3.0 + 1.0
        x = torch.stack([values, log_values], dim=1)
        tau = self.out(self.encoder(x))
        if present is not None:
            keep = present.to(device=tau.device, dtype=torch.bool).reshape(-1, 1, 1)
            tau = torch.where(keep, tau, self.null_embedding[None, :, None].to(tau.dtype).expand_as(tau))
        return tau

    @staticmethod
    def add_to_latent(z: torch.Tensor, tau_signal: torch.Tensor, *, time_dim: int = -1) -> torch.Tensor:
        """z + tau_signal, broadcasting tau (B, C, T) over every other axis of z.

        `time_dim` is z's time axis: -1 for the embedded latent (B, C, T); 2 for AudioLDM2's
        (B, C, T, F) latent (broadcast over the frequency axis).
        """
        time_dim = time_dim % z.ndim
        if z.shape[0] != tau_signal.shape[0] or z.shape[1] != tau_signal.shape[1] \
                or z.shape[time_dim] != tau_signal.shape[2]:
            raise ValueError(f"tau_signal {tuple(tau_signal.shape)} does not fit z {tuple(z.shape)} "
                             f"with time on axis {time_dim}")
        shape = [z.shape[0], z.shape[1]] + [1] * (z.ndim - 2)
        shape[time_dim] = tau_signal.shape[2]
        view = tau_signal.reshape(shape)      # only singleton axes are inserted: order is kept
        return z + view.to(z.dtype)


class MotionFrameEncoder(nn.Module):
    """The embedded E_v: a small CNN over each frame and its difference to the previous frame.

    The paper feeds 4 fps frames (250 ms apart) to a large image encoder; the product needs timing
    to +-100 ms, so this encoder takes 20 fps, 64x64 frames. Motion is explicit: each frame is
    stacked with (frame - previous frame). Because MAM calls E_v on M * x_v, the mask multiplies
    the frames before the difference, so F_mask sees only the masked object's motion. A temporal
    convolution then mixes neighbouring frames (contact = a change of motion).

    Cost: E_v runs twice per clip (F_visual, F_mask) on 20 frames per second, inside training's
    backward pass; a patchify stem (a `patch_size`-strided first convolution) and no
    normalisation on the large early maps made it ~3x cheaper than a plain stride-2 CNN.

    frames (B, T, 3, H, W) in [0, 1] -> features (B, T, feature_dim).
    """

    def __init__(self, *, fps: float = 20.0, frame_size: int = 64, feature_dim: int = 128,
                 channels: tuple[int, ...] = (32, 64, 96), patch_size: int = 4, temporal_kernel: int = 5):
        super().__init__()
        self.fps = float(fps)
        self.frame_size = int(frame_size)
        self.feature_dim = int(feature_dim)
        self.channels = tuple(int(c) for c in channels)
        self.patch_size = int(patch_size)
        self.temporal_kernel = int(temporal_kernel)
        layers: list[nn.Module] = [nn.Conv2d(6, self.channels[0], self.patch_size, stride=self.patch_size),
                                   nn.SiLU()]
        in_ch = self.channels[0]
        for ch in self.channels[1:]:
            layers += [nn.Conv2d(in_ch, ch, 3, stride=2, padding=1), nn.SiLU()]
            in_ch = ch
        self.cnn = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(2)          # keep coarse position (2x2), not only content
        self.frame_proj = nn.Linear(in_ch * 4, self.feature_dim)
        self.temporal = nn.Conv1d(self.feature_dim, self.feature_dim, self.temporal_kernel,
                                  padding=self.temporal_kernel // 2, padding_mode="replicate")
        self.norm = nn.LayerNorm(self.feature_dim)

    @property
    def config(self) -> dict:
        return {"fps": self.fps, "frame_size": self.frame_size, "feature_dim": self.feature_dim,
                "channels": list(self.channels), "patch_size": self.patch_size,
                "temporal_kernel": self.temporal_kernel}

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"frames must be (B, T, 3, H, W), got {tuple(frames.shape)}")
        batch, n_frames = frames.shape[:2]
        frames = frames.to(self.frame_proj.weight.dtype)
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
        x = torch.cat([frames, (frames - previous) * 4.0], dim=2)   # x4: differences are small
        x = x.flatten(0, 1)
        h = self.pool(self.cnn(x)).flatten(1)
        h = self.frame_proj(h).reshape(batch, n_frames, self.feature_dim)
        h = h + self.temporal(h.transpose(1, 2)).transpose(1, 2)
        return self.norm(h)


def frames_to_tensor(frames_uint8, masks=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """numpy frames (T, H, W, 3) uint8 [+ masks (T, H, W)] -> (1, T, 3, H, W) [+ (1, T, 1, H, W)]."""
    x = torch.as_tensor(frames_uint8).permute(0, 3, 1, 2).float().div_(255.0)[None]
    m = None
    if masks is not None:
        m = torch.as_tensor(masks, dtype=torch.float32)[None, :, None]
    return x, m
