"""`FoleyPipeline`: the embedded latent diffusion model, diffusers-style.

Components (each swappable): `vae` (MelVAE), `unet` (FoleyUNet1DConditionModel), `scheduler`
(any diffusers scheduler; DPM-Solver++ by default), `vocoder` (Vocoder; Griffin-Lim baseline),
`text_encoder` (frozen, cached), `mam` (MaskAttentionModule with its visual encoder E_v),
`tlm` (TimeLoudnessModule), plus a `config` dict (mel constants, window length, ...).

One call generates K candidates of one window (<= `config["window_s"]`). Long selections,
masks from boxes/tracks, conform and metadata are `foley_core.generate`'s job.

Reference-guided generation (SDEdit, Meng et al. 2022, as diffusers' img2img and AudioLDM style
transfer): the reference's mel is VAE-encoded (posterior mean x scaling factor, as in training),
the first round(N * (1 - strength)) of the N scheduler timesteps are skipped, the latent is noised
to the first kept timestep with `scheduler.add_noise` and denoised from there with the usual
conditions and guidance. strength 1 is plain generation (the reference is not used).
With `reference_detail` (our addition; the model folder's config records whether its measured
sweep chose it), what the VAE could not reconstruct of the reference's mel, mel - D(E(mel)), is
added to the decoded mel: the denoiser edits the reference through the latent, and the detail the
latent cannot hold comes back from the reference itself instead of being lost.

Span inpainting (RePaint, Lugmayr et al. 2022, as diffusers' inpaint pipelines do it in latent
space): given the take's latent x0 (`encode_audio`) and a per-frame `keep` mask (1 where the take
stays, 0 where it is regenerated, `span_keep_mask`), after every step the kept frames are set to
x0 noised to the next timestep (`scheduler.add_noise`, the same noise as the start) and, after
the last, to x0 itself: the span is denoised in the context of the fixed rest.

Dual classifier-free guidance (Draw an Audio, Yang et al. 2024, arXiv:2409.06135, eq. 12; the
InstructPix2Pix form of Brooks et al. 2023, eq. 3), text first, then video given text:
    eps = e(z, 0, 0) + s_text * (e(z, c_t, 0) - e(z, 0, 0)) + s_video * (e(z, c_t, c_v) - e(z, c_t, 0))
A negative caption replaces the null text in e(z, 0, 0). Branches that coincide (no caption and
no negative; no video) are not evaluated twice. The loudness curve enters every branch alike.
Optional curve guidance (`curve_scale` s_curve != 1, our addition; training drops the curve, so
its null is learned): one more branch without the curve,
    eps += (s_curve - 1) * (e(z, c_t, c_v, c_curve) - e(z, c_t, c_v, 0)),
so s_curve = 1 is exactly the dual-guidance result and costs nothing extra.
"""

from __future__ import annotations

import copy
import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from safetensors.torch import load_file, save_file

from foley_core import constants
from foley_core.atomic import atomic_path, write_text_atomic
from foley_core.errors import GenerationCancelled, ModelUnavailableError
from foley_core.model.conditioning import (
    MaskAttentionModule,
    MotionFrameEncoder,
    TimeLoudnessModule,
    frames_to_tensor,
)
from foley_core.model.mel import MelSpectrogram
from foley_core.model.text import CachedTextEncoder, text_encoder_from_config
from foley_core.model.unet import FoleyUNet1DConditionModel, null_visual_mask
from foley_core.model.vae import MelVAE
from foley_core.model.vocoder import Vocoder, save_vocoder, vocoder_from_config
from foley_core.sdedit import reference_steps

BRANCH_MODES = ("batched", "sequential")
DEFAULT_PIPELINE_CONFIG = {
    "name": "embedded",
    "window_s": 8.0,
    "branch_mode": "batched",     # measured faster than three calls on this CPU (bench_generate.py)
    "curve_scale": 1.0,           # curve guidance; a trained model's folder records its measured best
    "reference_detail": False,    # reference-guided: add back the VAE's loss on the reference (ditto)
    "trained": False,
    "init_seed": 0,
}
# keep-mask ramp at each edge of an inpainted span (latent frames, 40 ms each at 25 frames/s):
# the free frames meet the fixed ones gradually, not at a hard latent edge
INPAINT_RAMP_FRAMES = 3


def _cancel_requested(cancel) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


@dataclass
class FoleyPipelineOutput:
    """audios (K, n) float32 at `sr`; mels (K, n_mels, T) normalised; timings per stage (s)."""

    audios: np.ndarray
    sr: int
    mels: torch.Tensor
    latents: torch.Tensor
    timings_s: dict[str, float] = field(default_factory=dict)


@dataclass
class _Conditions:
    """The encoded instructions of one window: text embeddings (row 0 = negative or null, row 1 =
    caption or null), video tokens (None without video) and their frame-aligned sync signal, the
    timing signal (curve + onsets) and, with curve guidance, its null."""

    text: dict
    has_text_term: bool
    video_tokens: torch.Tensor | None
    sync: torch.Tensor | None
    length: int
    tau_signal: torch.Tensor
    tau_null: torch.Tensor | None
    curve_guided: bool

    @property
    def has_video(self) -> bool:
        return self.video_tokens is not None


def _save_module(module: torch.nn.Module, folder: Path, config: dict,
                 weights_name: str = "diffusion_pytorch_model.safetensors") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    with atomic_path(folder / weights_name) as tmp:
        save_file(state, str(tmp))


def _load_weights(module: torch.nn.Module, path: Path) -> None:
    module.load_state_dict(load_file(str(path)), strict=True)


def _config_dict(model) -> dict:
    return {k: v for k, v in dict(model.config).items() if not k.startswith("_")} | {
        "_class_name": type(model).__name__}


def build_mam(config: dict) -> MaskAttentionModule:
    enc_cfg = dict(config.get("visual_encoder", {}))
    kind = enc_cfg.pop("class", "MotionFrameEncoder")
    if kind != "MotionFrameEncoder":
        raise ValueError(f"unknown visual encoder class {kind!r}")
    encoder = MotionFrameEncoder(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in enc_cfg.items()})
    return MaskAttentionModule(encoder, int(config["cross_attention_dim"]),
                               n_time_features=int(config.get("n_time_features", 64)),
                               sync=config.get("sync"))


def _mam_config(mam: MaskAttentionModule) -> dict:
    cfg = dict(mam.config)
    if mam.visual_encoder is not None:
        cfg["visual_encoder"] = {"class": type(mam.visual_encoder).__name__, **mam.visual_encoder.config}
    return cfg


def _model_args(cfg: dict) -> dict:
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in cfg.items() if not k.startswith("_")}


class FoleyPipeline:
    """The embedded model: (caption, masked video, loudness curve) -> K waveforms of one window."""

    def __init__(self, vae: MelVAE, unet: FoleyUNet1DConditionModel, scheduler: SchedulerMixin,
                 vocoder: Vocoder, text_encoder: CachedTextEncoder, mam: MaskAttentionModule,
                 tlm: TimeLoudnessModule, config: dict | None = None, *, mel: MelSpectrogram | None = None):
        self.vae = vae.eval()
        self.unet = unet.eval()
        self.scheduler = scheduler
        self.vocoder = vocoder
        self.text_encoder = text_encoder
        self.mam = mam.eval()
        self.tlm = tlm.eval()
        self.mel = mel if mel is not None else MelSpectrogram()
        self.config = {**DEFAULT_PIPELINE_CONFIG, **(config or {})}
        self.device = torch.device("cpu")
        self._visual_cache: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._visual_lock = threading.Lock()
        self.n_video_encoded = 0          # E_v runs (cache misses), for tests and benchmarks
        self._check()

    # ------------------------------------------------------------------ construction, I/O

    def _check(self) -> None:
        if self.tlm.latent_channels != self.unet.config.in_channels:
            raise ValueError("TLM latent_channels must equal the UNet's in_channels")
        if self.vae.config.latent_channels != self.unet.config.in_channels:
            raise ValueError("VAE latent_channels must equal the UNet's in_channels")
        if self.mam.cross_attention_dim != self.unet.config.cross_attention_dim:
            raise ValueError("MAM cross_attention_dim must equal the UNet's")
        if self.text_encoder.embed_dim != self.unet.config.text_embed_dim:
            raise ValueError("text encoder width must equal the UNet's text_embed_dim")
        latent_fps = self.mel.frames_per_second / self.vae.time_downsample
        if abs(self.unet.config.latent_fps - latent_fps) > 1e-6 or abs(self.tlm.latent_fps - latent_fps) > 1e-6:
            raise ValueError(f"UNet and TLM latent_fps must be {latent_fps} (mel fps / VAE downsample)")
        if self.config["branch_mode"] not in BRANCH_MODES:
            raise ValueError(f"branch_mode must be one of {BRANCH_MODES}")
        sync = self.mam.sync
        if sync is not None and (sync.latent_channels != self.unet.config.in_channels
                                 or abs(sync.latent_fps - latent_fps) > 1e-6):
            raise ValueError(f"MAM sync must output the UNet's {self.unet.config.in_channels} channels "
                             f"at {latent_fps} latent frames/s")

    @classmethod
    def from_config(cls, config: dict | str | Path, *, device: str = "cpu",
                    vocoder_dir: str | Path | None = None) -> "FoleyPipeline":
        """A RANDOMLY initialised pipeline from a model config (dict or JSON path).

        Initialisation is seeded by `config["pipeline"]["init_seed"]`, so every process builds
        the same untrained model (the CLI and the UI agree). `vocoder_dir`: where a trained
        vocoder's weights are (Griffin-Lim has none).
        """
        if not isinstance(config, dict):
            config = json.loads(Path(config).read_text())
        pipe_cfg = {**DEFAULT_PIPELINE_CONFIG, **config.get("pipeline", {})}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(pipe_cfg["init_seed"]))
            mel = MelSpectrogram(**config.get("mel", {}))
            vae = MelVAE(**_model_args(config.get("vae", {})))
            unet = FoleyUNet1DConditionModel(**_model_args(config.get("unet", {})))
            mam = build_mam({"cross_attention_dim": unet.config.cross_attention_dim, **config.get("mam", {})})
            tlm_cfg = {"latent_channels": unet.config.in_channels, "latent_fps": unet.config.latent_fps,
                       **config.get("tlm", {})}
            tlm = TimeLoudnessModule(**tlm_cfg)
        scheduler = DPMSolverMultistepScheduler.from_config(
            {"algorithm_type": "dpmsolver++", **config.get("scheduler", {})})
        text_encoder = text_encoder_from_config(config.get("text_encoder", {}), device=device)
        vocoder = vocoder_from_config(config.get("vocoder", {}), mel, vocoder_dir)
        return cls(vae, unet, scheduler, vocoder, text_encoder, mam, tlm, pipe_cfg, mel=mel).to(device)

    def to(self, device: str | torch.device) -> "FoleyPipeline":
        self.device = torch.device(device)
        for module in (self.vae, self.unet, self.mam, self.tlm, self.mel):
            module.to(self.device)
        return self

    def model_config(self) -> dict:
        """The full JSON-able config (what `from_config` takes and `save_pretrained` writes)."""
        sched = {k: v for k, v in dict(self.scheduler.config).items() if not k.startswith("_")}
        sched["_class_name"] = type(self.scheduler).__name__
        return {
            "pipeline": dict(self.config),
            "mel": {k: v for k, v in dict(self.mel.config).items() if not k.startswith("_")},
            "vae": _config_dict(self.vae),
            "unet": _config_dict(self.unet),
            "mam": _mam_config(self.mam),
            "tlm": dict(self.tlm.config),
            "scheduler": sched,
            "text_encoder": self.text_encoder.config,
            "vocoder": self.vocoder.config,
        }

    def save_pretrained(self, directory: str | Path) -> None:
        """Write configs (JSON) beside safetensors weights, one folder per component.

        Every file is written atomically; `model_index.json` goes last, so a folder without it
        is an incomplete save.
        """
        directory = Path(directory)
        cfg = self.model_config()
        _save_module(self.vae, directory / "vae", cfg["vae"])
        _save_module(self.unet, directory / "unet", cfg["unet"])
        _save_module(self.mam, directory / "mam", cfg["mam"], "model.safetensors")
        _save_module(self.tlm, directory / "tlm", cfg["tlm"], "model.safetensors")
        save_vocoder(self.vocoder, directory / "vocoder")
        for name in ("scheduler", "text_encoder", "mel"):
            (directory / name).mkdir(parents=True, exist_ok=True)
            write_text_atomic(directory / name / "config.json", json.dumps(cfg[name], indent=2) + "\n")
        write_text_atomic(directory / "model_index.json",
                          json.dumps({"_class_name": "FoleyPipeline", "pipeline": cfg["pipeline"]},
                                     indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, directory: str | Path, *, device: str = "cpu") -> "FoleyPipeline":
        """Load a folder written by `save_pretrained`."""
        directory = Path(directory)
        index = directory / "model_index.json"
        if not index.is_file():
            raise ModelUnavailableError(
                f"no saved model in {directory} (model_index.json is missing): train one with "
                "`python -m foley_lab train` or point to a folder written by save_pretrained")
        config = {"pipeline": json.loads(index.read_text())["pipeline"]}
        for name in ("mel", "vae", "unet", "mam", "tlm", "scheduler", "text_encoder", "vocoder"):
            config[name] = json.loads((directory / name / "config.json").read_text())
        sched_cfg = {k: v for k, v in config["scheduler"].items() if k != "_class_name"}
        pipe = cls.from_config(config, device="cpu", vocoder_dir=directory / "vocoder")
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(sched_cfg)
        _load_weights(pipe.vae, directory / "vae" / "diffusion_pytorch_model.safetensors")
        _load_weights(pipe.unet, directory / "unet" / "diffusion_pytorch_model.safetensors")
        _load_weights(pipe.mam, directory / "mam" / "model.safetensors")
        _load_weights(pipe.tlm, directory / "tlm" / "model.safetensors")
        return pipe.to(device)

    # ------------------------------------------------------------------ properties

    @property
    def sr(self) -> int:
        return int(self.mel.config.sr)

    @property
    def window_s(self) -> float:
        return float(self.config["window_s"])

    @property
    def video_fps(self) -> float:
        return float(self.mam.fps)

    @property
    def frame_size(self) -> tuple[int, int]:
        size = self.mam.visual_encoder.frame_size
        return (size, size) if isinstance(size, int) else tuple(size)

    @property
    def latent_fps(self) -> float:
        return float(self.unet.config.latent_fps)

    def latent_length(self, duration_s: float) -> int:
        """Latent frames generated for `duration_s` (rounded up to what VAE and UNet need)."""
        n_mel = self.mel.n_frames(round(duration_s * self.sr))
        down = self.vae.time_downsample
        length = math.ceil(n_mel / down)
        multiple = self.unet.time_multiple
        return max(multiple, math.ceil(length / multiple) * multiple)

    def span_keep_mask(self, duration_s: float, start_s: float, end_s: float,
                       ramp_frames: int = INPAINT_RAMP_FRAMES) -> np.ndarray:
        """Keep mask (latent_length(duration_s),) float32 for regenerating [start_s, end_s) of a
        window: 1 on the frames outside the span, 0 inside, falling linearly over at most
        `ramp_frames` frames just inside each edge (fewer in a short span, so its middle stays
        free). An edge at the window's start or end has no ramp: nothing is kept beyond it."""
        length = self.latent_length(duration_s)
        centres_s = (np.arange(length) + 0.5) / self.latent_fps
        # a span that reaches the window's end frees the latent grid's padding beyond it too
        end_s = math.inf if end_s >= duration_s - 1e-9 else end_s
        keep = ((centres_s < start_s) | (centres_s >= end_s)).astype(np.float32)
        inside = np.flatnonzero(keep == 0)
        if inside.size == 0:
            raise ValueError(f"the span {start_s:g}-{end_s:g} s holds no latent frame of the window")
        ramp = max(0, min(int(ramp_frames), (inside.size - 1) // 3))
        weights = 1.0 - np.arange(1, ramp + 1, dtype=np.float32) / (ramp + 1)
        first, last = int(inside[0]), int(inside[-1])
        if ramp and first > 0:
            keep[first:first + ramp] = weights
        if ramp and last < length - 1:
            keep[last - ramp + 1:last + 1] = weights[::-1]
        return keep

    # ------------------------------------------------------------------ encoders (cached)

    def encode_video(self, frames: np.ndarray, masks: np.ndarray | None = None,
                     cache_key: tuple | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """E_v features (F_visual, F_mask), each (1, T, D), cached by `cache_key` if given.

        frames uint8 (T, H, W, 3) at `video_fps` and `frame_size`; masks float (T, H, W) or None.
        """
        if cache_key is not None:
            with self._visual_lock:
                hit = self._visual_cache.get(cache_key)
                if hit is not None:
                    self._visual_cache.move_to_end(cache_key)
                    return hit
        frames = np.asarray(frames)
        width, height = self.frame_size
        if frames.ndim != 4 or frames.shape[1:] != (height, width, 3):
            raise ValueError(f"frames must be (T, {height}, {width}, 3), got {frames.shape}")
        if masks is not None and np.asarray(masks).shape != frames.shape[:3]:
            raise ValueError(f"masks {np.asarray(masks).shape} do not match frames {frames.shape[:3]}")
        x, m = frames_to_tensor(frames, masks)
        with torch.no_grad():
            feats = self.mam.encode_features(x.to(self.device), None if m is None else m.to(self.device))
        self.n_video_encoded += 1
        if cache_key is not None:
            with self._visual_lock:
                self._visual_cache[cache_key] = feats
                while len(self._visual_cache) > 64:
                    self._visual_cache.popitem(last=False)
        return feats

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def encode_audio(self, audio: np.ndarray, duration_s: float) -> torch.Tensor:
        """Scaled VAE latents (K, C, latent_length(duration_s)) of audio (K, n) or (n,) at `sr`.

        n must be round(duration_s * sr). The mel is padded with silence up to the latent grid
        (the generated window is rounded up the same way). Each row is encoded alone, so a
        candidate's latent does not depend on the others.
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[None]
        n_samples = round(duration_s * self.sr)
        if audio.ndim != 2 or audio.shape[1] != n_samples:
            raise ValueError(f"reference audio must be (K, {n_samples}) for {duration_s} s at {self.sr} Hz, "
                             f"got {audio.shape}")
        scale = float(self.vae.config.scaling_factor)
        n_mel = self.latent_length(duration_s) * self.vae.time_downsample
        return torch.cat([self.vae.encode(mel).mode() * scale
                          for mel in self._reference_mels(audio, n_mel)])

    def _reference_mels(self, audio: np.ndarray, n_mel: int) -> list[torch.Tensor]:
        """Each row's normalised mel (1, n_mels, n_mel), padded with silence (-1, the log floor)
        up to the latent grid."""
        mels = []
        for row in audio:
            mel = self.mel(torch.from_numpy(row).to(self.device)[None])[..., :n_mel]
            mels.append(torch.nn.functional.pad(mel, (0, n_mel - mel.shape[-1]), value=-1.0))
        return mels

    @torch.no_grad()
    def reference_detail(self, audio: np.ndarray, duration_s: float,
                         latents: torch.Tensor | None = None) -> torch.Tensor:
        """mel - D(E(mel)) of audio (K, n) or (n,): what the VAE loses of it, (K, n_mels, n_mel)
        on the latent grid (normalised log-mel units). `latents`: its `encode_audio`, when
        already computed."""
        audio = np.asarray(audio, dtype=np.float32)
        audio = audio[None] if audio.ndim == 1 else audio
        mels = self._reference_mels(audio, self.latent_length(duration_s) * self.vae.time_downsample)
        if latents is None:
            latents = self.encode_audio(audio, duration_s)
        scale = float(self.vae.config.scaling_factor)
        return torch.cat([mel - self.vae.decode(z[None] / scale) for mel, z in zip(mels, latents)])

    def initial_noise(self, seeds: Sequence[int], length: int) -> torch.Tensor:
        """(K, C, length): candidate i from its own generator seeded `seeds[i]`."""
        channels = self.unet.config.in_channels
        noise = [torch.randn(1, channels, length, generator=torch.Generator().manual_seed(int(s)))
                 for s in seeds]
        return torch.cat(noise).to(self.device)

    @torch.no_grad()
    def __call__(self, *, duration_s: float, caption: str | None = None,
                 negative_caption: str | None = None, frames: np.ndarray | None = None,
                 masks: np.ndarray | None = None, video_cache_key: tuple | None = None,
                 visual_features: tuple[torch.Tensor, torch.Tensor] | None = None,
                 curve: np.ndarray | None = None, onsets_s: Sequence[float] | None = None,
                 seeds: Sequence[int] = (0,),
                 num_inference_steps: int = constants.DEFAULT_STEPS,
                 text_scale: float = constants.DEFAULT_TEXT_SCALE,
                 video_scale: float = constants.DEFAULT_VIDEO_SCALE,
                 reference: np.ndarray | None = None, strength: float = 1.0,
                 reference_detail: bool | None = None,
                 branch_mode: str | None = None, curve_scale: float | None = None,
                 inpaint: tuple[torch.Tensor, np.ndarray] | None = None,
                 callback: Callable[[int, int], None] | None = None,
                 cancel=None) -> FoleyPipelineOutput:
        """Generate len(seeds) candidates of `duration_s` seconds (at most `window_s`).

        Args:
            caption: what the sound is; None = no text instruction (learned null).
            negative_caption: what to steer away from (replaces the null text in e(z, 0, 0)).
            frames, masks: the video window at `video_fps` / `frame_size` (uint8 (T, H, W, 3))
                and the sounding object's mask (float (T, H, W) in [0, 1]); or pass
                `visual_features` (F_visual, F_mask) already computed by `encode_video`.
            video_cache_key: identity of (video, range, mask) so E_v runs once per key.
            curve: relative loudness 0..1 at 10 points/s from the window start; None = no curve.
            onsets_s: times (s from the window start) where a sound starts: contact times seen
                in the video or the user's hits; None = no onset instruction, [] = none here.
                Needs a model with an onset module (`tlm.onsets`); others refuse it.
            seeds: one per candidate; candidate i equals a solo call with seeds[i].
            num_inference_steps: scheduler steps (DPM-Solver++: 25 by default).
            text_scale, video_scale: dual classifier-free guidance scales (s_text, s_video).
            reference: audio float (K, n) or (n,) at `sr`, n = round(duration_s * sr), to start
                from (one row per candidate, or one for all); None = from noise.
            strength: 0..1, how far from the reference to start (see `reference_steps`): the
                first round(N * (1 - strength)) timesteps are skipped; 1 ignores the reference,
                0 runs no step (the VAE + vocoder reconstruction of the reference).
            reference_detail: add the reference's mel detail that the VAE loses, mel - D(E(mel)),
                to the decoded mel (None: the model's `config["reference_detail"]`, False if
                unset); only with a reference and strength < 1.
            branch_mode: "batched" (the CFG branches in one UNet call) or "sequential".
            curve_scale: timing guidance s_curve over the curve and the onsets together (None:
                the model's `config["curve_scale"]`, 1 if unset); 1 = they enter every branch
                alike, no extra branch; used only with a curve or onsets.
            inpaint: (known latents (1 or K, C, L), keep (L,) in 0..1) to regenerate only part
                of the window (RePaint, see the module docstring): `encode_audio` of the take
                and `span_keep_mask`; frames with keep 1 end exactly at the known latent.
                None (default) leaves the sampler untouched.
            callback: called as callback(step, steps_run) after each step actually run
                (steps_run = num_inference_steps without a reference).
            cancel: a callable returning True, or a threading.Event, checked every step;
                raises GenerationCancelled.
        """
        timings: dict[str, float] = {}
        # 1. check inputs
        mode, curve_scale, seeds, (n_skip, n_run), reference = self._check_inputs(
            duration_s=duration_s, num_inference_steps=num_inference_steps, branch_mode=branch_mode,
            curve_scale=curve_scale, seeds=seeds, reference=reference, strength=strength)
        n_cand = len(seeds)
        # 2. encode conditions (text, video, timing) and lay out the guidance branches
        cond = self._encode_conditions(duration_s=duration_s, caption=caption,
                                       negative_caption=negative_caption, frames=frames, masks=masks,
                                       video_cache_key=video_cache_key, visual_features=visual_features,
                                       curve=curve, onsets_s=onsets_s, curve_scale=curve_scale,
                                       timings=timings)
        calls = self._branch_calls(cond, mode)
        # 3. prepare latents: pure noise, or the reference noised to the first kept timestep
        scheduler, timesteps, latents, ref_encoded = self._prepare_latents(
            seeds=seeds, length=cond.length, num_inference_steps=num_inference_steps, n_skip=n_skip,
            n_run=n_run, reference=reference, duration_s=duration_s, timings=timings)
        known = None
        if inpaint is not None:
            known = self._inpaint_inputs(inpaint, seeds=seeds, length=cond.length)
            if n_run > 0:
                latents = self._hold_known(scheduler, latents, known, timesteps[:1])
        # 4. denoise
        t0 = time.perf_counter()
        latents = self._denoise(scheduler, timesteps, latents, cond, calls, n_cand=n_cand,
                                text_scale=text_scale, video_scale=video_scale, curve_scale=curve_scale,
                                n_run=n_run, callback=callback, cancel=cancel, known=known)
        timings["denoise"] = time.perf_counter() - t0
        # 5. decode latents to mels (+ the reference's detail)
        t0 = time.perf_counter()
        n_samples = round(duration_s * self.sr)
        mels = self._decode(latents, n_samples=n_samples, reference=reference,
                            reference_detail=reference_detail, n_skip=n_skip, ref_encoded=ref_encoded,
                            duration_s=duration_s)
        timings["decode"] = time.perf_counter() - t0
        # 6. post-process: vocode each candidate
        t0 = time.perf_counter()
        audios = self._vocode(mels, n_samples, seeds, reference if n_skip > 0 else None)
        timings["vocoder"] = time.perf_counter() - t0
        audios = np.asarray(audios, dtype=np.float32)      # peak handling is generate()'s job
        return FoleyPipelineOutput(audios=audios, sr=self.sr, mels=mels.cpu(), latents=latents.cpu(),
                                   timings_s=timings)

    def _vocode(self, mels: torch.Tensor, n_samples: int, seeds: list[int],
                reference: np.ndarray | None) -> np.ndarray:
        """Each candidate's mel -> audio (K, n_samples). A vocoder that `uses_reference` also
        gets the reference row the candidate started from (a run that skipped no step started
        from noise: no reference then)."""
        out = []
        for k in range(mels.shape[0]):
            guide = {}
            if reference is not None and getattr(self.vocoder, "uses_reference", False):
                guide["reference"] = reference if reference.ndim == 1 else reference[min(k, reference.shape[0] - 1)]
            out.append(self.vocoder(mels[k:k + 1].cpu(), n_samples, seeds[k:k + 1], **guide))
        return np.concatenate(out)

    def _check_inputs(self, *, duration_s: float, num_inference_steps: int, branch_mode: str | None,
                      curve_scale: float | None, seeds: Sequence[int], reference: np.ndarray | None,
                      strength: float) -> tuple[str, float, list[int], tuple[int, int], np.ndarray | None]:
        """(branch mode, curve scale, seeds, (steps skipped, steps run), reference as float32)
        with the model's defaults filled in; ValueError for anything out of range."""
        if duration_s <= 0 or duration_s > self.window_s + 1e-6:
            raise ValueError(f"duration_s must be in (0, {self.window_s}], got {duration_s}")
        if num_inference_steps < 1:
            raise ValueError("num_inference_steps must be >= 1")
        mode = branch_mode or self.config["branch_mode"]
        if mode not in BRANCH_MODES:
            raise ValueError(f"branch_mode must be one of {BRANCH_MODES}, got {mode!r}")
        if curve_scale is None:
            curve_scale = float(self.config.get("curve_scale", 1.0))
        if not (math.isfinite(curve_scale) and curve_scale >= 0):
            raise ValueError(f"curve_scale must be a finite number >= 0, got {curve_scale}")
        seeds = [int(s) for s in seeds]
        n_cand = len(seeds)
        if n_cand < 1:
            raise ValueError("at least one seed is needed")
        steps = reference_steps(num_inference_steps, strength if reference is not None else 1.0)
        if reference is not None:
            reference = np.asarray(reference, dtype=np.float32)
            rows = 1 if reference.ndim == 1 else reference.shape[0]
            if rows not in (1, n_cand):
                raise ValueError(f"reference has {rows} rows for {n_cand} candidates (give 1 or {n_cand})")
        return mode, curve_scale, seeds, steps, reference

    def _encode_conditions(self, *, duration_s: float, caption: str | None, negative_caption: str | None,
                           frames: np.ndarray | None, masks: np.ndarray | None, video_cache_key: tuple | None,
                           visual_features: tuple[torch.Tensor, torch.Tensor] | None,
                           curve: np.ndarray | None, onsets_s: Sequence[float] | None,
                           curve_scale: float, timings: dict[str, float]) -> "_Conditions":
        """The encoded instructions of one window (shared by every candidate and step)."""
        t0 = time.perf_counter()
        caption = caption or None
        negative_caption = negative_caption or None
        text = self.text_encoder.encode_batch([negative_caption, caption])
        timings["text_encode"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        has_video = frames is not None or visual_features is not None
        video_tokens = None
        if has_video:
            if visual_features is None:
                visual_features = self.encode_video(frames, masks, video_cache_key)
            f_visual, f_mask = (f.to(self.device) for f in visual_features)
            video_tokens = self.mam(features=(f_visual, f_mask))              # (1, Tv, D)
        timings["video_encode"] = time.perf_counter() - t0

        length = self.latent_length(duration_s)
        # frame-aligned visual signal added to z in the branches that see the video
        sync = self.mam.sync_signal((f_visual, f_mask), length) if has_video else None
        curve_t = None
        if curve is not None:
            curve_t = torch.as_tensor(np.asarray(curve, dtype=np.float32))[None].to(self.device)
        onsets = None
        if onsets_s is not None:
            times = np.asarray(onsets_s, dtype=np.float64).reshape(-1)
            if not np.all(np.isfinite(times)):
                raise ValueError("onsets_s must be finite times in seconds")
            onsets = [times[(times >= 0) & (times < duration_s)]]
        tau_signal = self.tlm(curve_t, length, batch_size=1, onsets_s=onsets)   # (1, C, length)
        # curve guidance contrasts "the timing instructions" (curve, onsets) with none of them
        curve_guided = (curve_t is not None or onsets is not None) and curve_scale != 1.0
        tau_null = self.tlm(None, length, batch_size=1) if curve_guided else None
        return _Conditions(text=text, has_text_term=caption is not None or negative_caption is not None,
                           video_tokens=video_tokens, sync=sync, length=length, tau_signal=tau_signal,
                           tau_null=tau_null, curve_guided=curve_guided)

    def _branch_calls(self, cond: "_Conditions", mode: str) -> list[tuple[list[tuple[int, bool, bool]], dict]]:
        """The UNet calls of one candidate's step: (branches, their UNet keyword inputs) each.

        A branch is (row of the text batch: 0 = negative or null, 1 = caption or null; video?;
        curve?), in the order `guide` expects, the curve-less one last."""
        branches = [(0, False, True)]                                  # e(z, 0, 0)
        if cond.has_text_term:
            branches.append((1, False, True))                          # e(z, c_t, 0)
        if cond.has_video:
            branches.append((1 if cond.has_text_term else 0, True, True))   # e(z, c_t, c_v)
        if cond.curve_guided:
            branches.append(branches[-1][:2] + (False,))               # ... without the curve

        def branch_inputs(rows: list[tuple[int, bool, bool]], k: int) -> dict:
            idx = torch.tensor([r for r, _, _ in rows]).repeat_interleave(k)
            out = {key: val[idx].to(self.device) for key, val in cond.text.items()}
            if cond.has_video:
                present = torch.tensor([v for _, v, _ in rows]).repeat_interleave(k).to(self.device)
                tokens = cond.video_tokens.expand(len(idx), -1, -1)
                null = self.mam.null_embedding.to(tokens.dtype).expand_as(tokens)
                out["visual_tokens"] = torch.where(present[:, None, None], tokens, null)
                out["visual_mask"] = null_visual_mask(present, tokens.shape[1])
            else:
                out["visual_tokens"] = self.mam.null_tokens(len(idx), 1)
                out["visual_mask"] = None
            return out

        # Candidates go through the UNet one at a time (each call holds that candidate's CFG
        # branches): a batched matmul rounds differently from a solo one, and Griffin-Lim
        # amplifies 1e-6 latent differences to audible ones, so candidate i must see exactly
        # the computation of a solo run with seeds[i].
        if mode == "batched":
            return [(branches, branch_inputs(branches, 1))]
        return [([b], branch_inputs([b], 1)) for b in branches]

    def _prepare_latents(self, *, seeds: list[int], length: int, num_inference_steps: int, n_skip: int,
                         n_run: int, reference: np.ndarray | None, duration_s: float,
                         timings: dict[str, float]):
        """(scheduler, timesteps to run, starting latents (K, C, length), the reference's
        latents or None): a private copy of the scheduler, so concurrent calls do not share state."""
        scheduler = copy.deepcopy(self.scheduler)
        scheduler.set_timesteps(num_inference_steps, device=self.device)
        noise = self.initial_noise(seeds, length)
        timesteps = scheduler.timesteps[n_skip:]
        if n_skip == 0:
            return scheduler, timesteps, noise * scheduler.init_noise_sigma, None
        t0 = time.perf_counter()
        ref_encoded = self.encode_audio(reference, duration_s)      # one row per reference row
        ref_latents = ref_encoded.expand(len(seeds), -1, -1)
        timings["reference_encode"] = time.perf_counter() - t0
        scheduler.set_begin_index(n_skip)
        latents = ref_latents if n_run == 0 else scheduler.add_noise(ref_latents, noise, timesteps[:1])
        return scheduler, timesteps, latents, ref_encoded

    def _denoise(self, scheduler: SchedulerMixin, timesteps: torch.Tensor, latents: torch.Tensor,
                 cond: "_Conditions", calls: list, *, n_cand: int, text_scale: float, video_scale: float,
                 curve_scale: float, n_run: int, callback: Callable[[int, int], None] | None,
                 cancel, known: tuple | None = None) -> torch.Tensor:
        """The sampler loop: every step, each candidate's guided noise prediction, then one
        scheduler step for all; raises GenerationCancelled when `cancel` asks (checked every step).
        `known` (from `_inpaint_inputs`): after each step the kept frames are reset to the known
        latent at the next timestep's noise level (the known latent itself after the last)."""
        for step, t in enumerate(timesteps):
            if _cancel_requested(cancel):
                raise GenerationCancelled("generation cancelled")
            scaled = scheduler.scale_model_input(latents, t)
            # the UNet input of each (video?, curve?) branch: z + tau_signal (or its null) + sync
            inputs_by = {}
            for curve_on in ((True, False) if cond.curve_guided else (True,)):
                z = TimeLoudnessModule.add_to_latent(
                    scaled, (cond.tau_signal if curve_on else cond.tau_null).expand(n_cand, -1, -1))
                inputs_by[(False, curve_on)] = z
                inputs_by[(True, curve_on)] = z + cond.sync if cond.sync is not None else z
            guided = [self._guided_eps(inputs_by, k, t, cond, calls, text_scale=text_scale,
                                       video_scale=video_scale, curve_scale=curve_scale)
                      for k in range(n_cand)]
            latents = scheduler.step(torch.cat(guided), t, latents).prev_sample
            if known is not None:
                latents = self._hold_known(scheduler, latents, known, timesteps[step + 1:step + 2])
            if callback is not None:
                callback(step + 1, n_run)
        if _cancel_requested(cancel):
            raise GenerationCancelled("generation cancelled")
        return latents

    def _inpaint_inputs(self, inpaint, *, seeds: list[int], length: int) -> tuple:
        """(known latents (K, C, L), keep (1, 1, L), the start noise (K, C, L)) of `inpaint`; the
        start noise again, so a kept frame is noised exactly as its candidate's trajectory."""
        try:
            known, keep = inpaint
        except (TypeError, ValueError):
            raise ValueError("inpaint must be a pair (known latents, keep mask)") from None
        known = torch.as_tensor(known, dtype=torch.float32).to(self.device)
        channels = self.unet.config.in_channels
        if known.ndim != 3 or known.shape[0] not in (1, len(seeds)) or known.shape[1:] != (channels, length):
            raise ValueError(f"inpaint latents must be (1 or {len(seeds)}, {channels}, {length}), "
                             f"got {tuple(known.shape)}")
        keep = torch.as_tensor(np.asarray(keep, dtype=np.float32)).to(self.device)
        if keep.shape != (length,) or not bool(torch.all((keep >= 0) & (keep <= 1))):
            raise ValueError(f"the inpaint keep mask must be ({length},) values in 0..1")
        return known.expand(len(seeds), -1, -1), keep[None, None], self.initial_noise(seeds, length)

    @staticmethod
    def _hold_known(scheduler: SchedulerMixin, latents: torch.Tensor, known: tuple,
                    next_t: torch.Tensor) -> torch.Tensor:
        """latents with the kept frames set to the known latent noised to `next_t` (empty: the
        schedule is done, the known latent itself)."""
        x0, keep, noise = known
        target = x0 if len(next_t) == 0 else scheduler.add_noise(x0, noise, next_t.repeat(x0.shape[0]))
        return keep * target + (1.0 - keep) * latents

    def _guided_eps(self, inputs_by: dict, k: int, t: torch.Tensor, cond: "_Conditions", calls: list, *,
                    text_scale: float, video_scale: float, curve_scale: float) -> torch.Tensor:
        """Candidate k's noise prediction at timestep t: its branches through the UNet, combined
        by dual CFG (`guide`) and, if asked, curve guidance."""
        eps_parts = []
        for rows, inputs in calls:
            x = torch.cat([inputs_by[(v, c)][k:k + 1] for _, v, c in rows])
            eps_parts.extend(self.unet(x, t, **inputs).sample.chunk(len(rows)))
        eps = self.guide(eps_parts[:len(eps_parts) - cond.curve_guided], cond.has_text_term, cond.has_video,
                         text_scale, video_scale)
        if cond.curve_guided:
            eps = eps + (curve_scale - 1.0) * (eps_parts[-2] - eps_parts[-1])
        return eps

    def _decode(self, latents: torch.Tensor, *, n_samples: int, reference: np.ndarray | None,
                reference_detail: bool | None, n_skip: int, ref_encoded: torch.Tensor | None,
                duration_s: float) -> torch.Tensor:
        """Normalised mels (K, n_mels, T) of the final latents, one candidate at a time."""
        scale = float(self.vae.config.scaling_factor)
        n_mel = self.mel.n_frames(n_samples)
        mels = torch.cat([self.vae.decode(latents[k:k + 1] / scale)[..., :n_mel]
                          for k in range(latents.shape[0])])
        if reference_detail is None:
            reference_detail = bool(self.config.get("reference_detail", False))
        if reference_detail and n_skip > 0:
            mels = mels + self.reference_detail(reference, duration_s, latents=ref_encoded)[..., :n_mel]
        # the model was trained on mels in [-1, 1]: clamp overshoots (an untrained model's are
        # huge) so the vocoder cannot produce overflowing magnitudes
        return mels.clamp(-1.0, 1.0)

    @staticmethod
    def guide(eps: list[torch.Tensor], has_text_term: bool, has_video: bool, text_scale: float,
              video_scale: float) -> torch.Tensor:
        """Dual-CFG combination of the branch predictions, in the order the branches were built:
        [e(z,0,0)] + [e(z,c_t,0) if has_text_term] + [e(z,c_t,c_v) if has_video]."""
        guided = eps[0]
        i = 1
        if has_text_term:
            guided = guided + text_scale * (eps[i] - eps[0])
            i += 1
        if has_video:
            guided = guided + video_scale * (eps[i] - eps[i - 1])
        return guided
