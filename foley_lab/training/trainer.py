"""Training loops for the embedded model, through HF `accelerate` (same code on CPU and GPUs).

Stage "vae": the mel VAE (L1 reconstruction + a small KL), then the latent scaling factor.
Stage "decoder": the VAE's decoder alone, encoder frozen (L1 reconstruction of the encoder's
latents). The latent space and its scaling factor do not change, so an LDM trained on this VAE
stays valid with the new decoder: a better decoder without retraining the denoiser (the Stable
Diffusion "ft-MSE" decoder scheme). It needs its own run folder.
Stage "ldm": the denoiser with MAM (and its E_v) and TLM, VAE frozen; each condition (text,
video, curve) is dropped independently with `p_drop_*` (and all at once with `p_drop_all`) so the
learned null embeddings exist for classifier-free guidance and absent instructions.

Checkpoints: `out_dir/checkpoint/` holds the whole pipeline (`FoleyPipeline.save_pretrained`:
config JSON beside safetensors weights) plus `training_state.pt` (stage, step, optimizer, RNG
states). A checkpoint is written into `checkpoint.tmp/` and swapped in whole, so a crash never
leaves a half-written one; it is saved every `checkpoint_every_min` minutes and at the end, and
`resume=True` continues from it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from foley_core.atomic import atomic_path, write_text_atomic
from foley_core.errors import FoleyError
from foley_core.events import detect_onsets
from foley_core.loudness import relative_loudness
from foley_core.model.unet import null_visual_mask
from foley_core.pipeline import FoleyPipeline
from foley_core.model.vae import batch_randn
from foley_lab.training.data import (DEFAULT_BUCKETS_S, BucketBatchSampler, ClipCollator, ClipDataset,
                                      ShardedBatchSampler)

log = logging.getLogger(__name__)
STATE_FILE = "training_state.pt"


@dataclass
class TrainConfig:
    """What and how to train. Times in minutes, rates per optimizer step."""

    stage: str = "ldm"                    # "vae" | "decoder" | "ldm"
    out_dir: str = "runs/embedded"
    max_steps: int = 1000
    batch_size: int = 16
    max_batch_seconds: float | None = None   # cap batch x bucket length (smaller batches for long crops)
    learning_rate: float = 2e-4
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    kl_weight: float = 1e-4               # VAE
    p_drop_text: float = 0.15             # LDM condition dropout (each independently)
    p_drop_video: float = 0.15
    p_drop_curve: float = 0.15
    p_drop_onsets: float = 0.3            # TLM's onset module, when the model has one
    p_drop_all: float = 0.05
    buckets_s: tuple[float, ...] = DEFAULT_BUCKETS_S
    checkpoint_every_min: float = 10.0
    log_every: int = 10
    seed: int = 0
    num_workers: int = 0
    resume: bool = True
    device: str | None = None             # None: accelerate decides (GPU if there is one)
    max_minutes: float | None = None      # stop (and checkpoint) after this long
    ema_decay: float | None = 0.999       # LDM: checkpoints hold the EMA weights (None: no EMA)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    step: int
    losses: list[float] = field(default_factory=list)
    checkpoint: str | None = None
    seconds: float = 0.0


class LDMModules(nn.Module):
    """The trainable parts of the LDM stage as one module for accelerate; `forward` returns the
    loss, so a distributed wrapper (DDP) sees the forward pass it must synchronise."""

    def __init__(self, pipe: FoleyPipeline):
        super().__init__()
        self.unet, self.mam, self.tlm = pipe.unet, pipe.mam, pipe.tlm
        object.__setattr__(self, "pipe", pipe)          # not a submodule: the VAE stays frozen

    def forward(self, batch: dict, noise_scheduler, p_drop: dict[str, float], generator=None) -> torch.Tensor:
        return ldm_loss(self.pipe, batch, noise_scheduler=noise_scheduler, p_drop=p_drop, generator=generator)


class VAEModule(nn.Module):
    """The VAE stage's trainable module (the decoder alone with `decoder_only`: the encoder is
    frozen); `forward` returns the loss."""

    def __init__(self, pipe: FoleyPipeline, kl_weight: float, *, decoder_only: bool = False):
        super().__init__()
        self.vae = pipe.vae
        self.kl_weight = kl_weight
        self.decoder_only = decoder_only
        pipe.vae.requires_grad_(True)       # an LDM stage on this pipeline froze it
        if decoder_only:
            for part in encoder_parts(pipe.vae):
                part.requires_grad_(False)
        object.__setattr__(self, "pipe", pipe)

    def forward(self, audio: torch.Tensor, generator=None) -> torch.Tensor:
        if self.decoder_only:
            return decoder_loss(self.pipe, audio, generator=generator)[0]
        return vae_loss(self.pipe, audio, kl_weight=self.kl_weight, generator=generator)[0]


def encoder_parts(vae) -> tuple[nn.Module, ...]:
    """The modules that map a mel to the latent posterior (what the decoder stage freezes)."""
    return vae.conv_in, vae.encoder, vae.enc_out


# ------------------------------------------------------------------------------ losses

def vae_loss(pipe: FoleyPipeline, audio: torch.Tensor, *, kl_weight: float,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    mel = pipe.mel(audio)
    mel = mel[..., : mel.shape[-1] - mel.shape[-1] % pipe.vae.time_downsample]
    out = pipe.vae(mel, generator=generator)
    recon = F.l1_loss(out.sample, mel)
    kl = pipe.vae.kl(out.posterior).mean()
    return recon + kl_weight * kl, {"recon": recon.item(), "kl": kl.item()}


def decoder_loss(pipe: FoleyPipeline, audio: torch.Tensor, *,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
    """L1 reconstruction through the frozen encoder (a posterior sample, as in the VAE stage, so
    the decoder stays tolerant of the LDM's imperfect latents)."""
    mel = pipe.mel(audio)
    mel = mel[..., : mel.shape[-1] - mel.shape[-1] % pipe.vae.time_downsample]
    with torch.no_grad():
        z = pipe.vae.encode(mel).sample(generator=generator)
    recon = F.l1_loss(pipe.vae.decode(z), mel)
    return recon, {"recon": recon.item()}


def _noise_scheduler(pipe: FoleyPipeline):
    from diffusers import DDPMScheduler

    cfg = pipe.scheduler.config
    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_start=cfg.beta_start,
                         beta_end=cfg.beta_end, beta_schedule=cfg.beta_schedule,
                         prediction_type=cfg.prediction_type)


def curves_for(audio: torch.Tensor, sr: int) -> torch.Tensor:
    """Relative loudness curves (B, N) at 10 points/s of a batch of audio (the TLM's input)."""
    return torch.from_numpy(np.stack([relative_loudness(a.numpy(), sr) for a in audio.cpu()]))


def onsets_for(audio: torch.Tensor, sr: int, known: list | None = None) -> list[np.ndarray]:
    """Onset times (s) of each clip of a batch (the onset module's input): `known[i]` where the
    dataset listed them, else the evaluation's own detector on the clip."""
    known = known or [None] * len(audio)
    return [detect_onsets(a.numpy(), sr) if k is None else np.asarray(k, np.float64)
            for a, k in zip(audio.cpu(), known)]


def ldm_loss(pipe: FoleyPipeline, batch: dict, *, noise_scheduler, p_drop: dict[str, float] | None = None,
             generator: torch.Generator | None = None, curves: torch.Tensor | None = None,
             onsets: list | None = None) -> torch.Tensor:
    """Noise-prediction MSE for one collated batch (conditions dropped with `p_drop`)."""
    device = pipe.unet.device
    p_drop = p_drop or {}
    audio = batch["audio"].to(device)
    bsz = audio.shape[0]
    with torch.no_grad():
        mel = pipe.mel(audio)
        length = pipe.latent_length(audio.shape[-1] / pipe.sr) * pipe.vae.time_downsample
        mel = F.pad(mel, (0, length - mel.shape[-1]), value=-1.0)   # silence up to the latent grid
        z0 = pipe.vae.encode(mel).mode() * float(pipe.vae.config.scaling_factor)
    if curves is None:
        curves = curves_for(batch["audio"], pipe.sr)
    curves = curves.to(device)

    per_item = isinstance(generator, (list, tuple))

    def keep(p: float) -> torch.Tensor:
        if per_item:
            return torch.stack([torch.rand((), generator=g) for g in generator]) >= p
        return torch.rand(bsz, generator=generator) >= p

    drop_all = ~keep(p_drop.get("all", 0.0))
    text_present = keep(p_drop.get("text", 0.0)) & ~drop_all
    video_present = keep(p_drop.get("video", 0.0)) & ~drop_all & batch["has_video"].cpu()
    curve_present = keep(p_drop.get("curve", 0.0)) & ~drop_all
    onsets_present = keep(p_drop.get("onsets", 0.0)) & ~drop_all

    noise = batch_randn(z0.shape, generator).to(device)
    n_train = noise_scheduler.config.num_train_timesteps
    if per_item:
        timesteps = torch.stack([torch.randint(0, n_train, (), generator=g) for g in generator]).to(device)
    else:
        timesteps = torch.randint(0, n_train, (bsz,), generator=generator).to(device)
    z_t = noise_scheduler.add_noise(z0, noise, timesteps)

    captions = [c if (c and p) else None for c, p in zip(batch["captions"], text_present.tolist())]
    text = {k: v.to(device) for k, v in pipe.text_encoder.encode_batch(captions).items()}
    sync = None
    if batch["frames"] is not None:
        feats = pipe.mam.encode_features(batch["frames"].to(device), batch["masks"].to(device))
        tokens = pipe.mam(features=feats, present=video_present.to(device))
        vmask = null_visual_mask(video_present, tokens.shape[1]).to(device)
        sync = pipe.mam.sync_signal(feats, z0.shape[-1], present=video_present.to(device))
    else:
        tokens, vmask = pipe.mam.null_tokens(bsz, 1), None
    if pipe.tlm.onsets is not None and onsets is None:
        onsets = onsets_for(batch["audio"], pipe.sr, batch.get("onsets_s"))
    tau = pipe.tlm(curves, z0.shape[-1], present=curve_present.to(device),
                   onsets_s=onsets,
                   onsets_present=onsets_present.to(device))
    z_in = pipe.tlm.add_to_latent(z_t, tau)
    if sync is not None:
        z_in = z_in + sync
    pred = pipe.unet(z_in, timesteps, visual_tokens=tokens, visual_mask=vmask, **text).sample
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(z0, noise, timesteps)
    else:
        target = noise
    return F.mse_loss(pred, target)


# ------------------------------------------------------------------------------ checkpoints

def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(pipe: FoleyPipeline, out_dir: str | Path, *, stage: str, step: int,
                    optimizer: torch.optim.Optimizer, config: TrainConfig, losses: list[float],
                    extra_state: dict | None = None) -> Path:
    """Write `out_dir/checkpoint/` whole (via checkpoint.tmp/ and a swap); return its path."""
    out_dir = Path(out_dir)
    final, tmp, old = out_dir / "checkpoint", out_dir / "checkpoint.tmp", out_dir / "checkpoint.old"
    if tmp.exists():
        shutil.rmtree(tmp)
    pipe.save_pretrained(tmp)
    state = {"stage": stage, "step": step, "optimizer": optimizer.state_dict(), "rng": _rng_state(),
             "config": config.to_dict(), "losses": losses[-1000:], **(extra_state or {})}
    with atomic_path(tmp / STATE_FILE) as path:
        torch.save(state, path)
    write_text_atomic(tmp / "training.json", json.dumps(
        {"stage": stage, "step": step, "config": config.to_dict(),
         "last_loss": losses[-1] if losses else None}, indent=2) + "\n")
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old)
    return final


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint in `out_dir` (a crash mid-swap leaves checkpoint.old)."""
    for name in ("checkpoint", "checkpoint.old"):
        path = Path(out_dir) / name
        if (path / "model_index.json").is_file() and (path / STATE_FILE).is_file():
            return path
    return None


def load_training_state(checkpoint: str | Path) -> dict:
    return torch.load(Path(checkpoint) / STATE_FILE, map_location="cpu", weights_only=False)


# ------------------------------------------------------------------------------ loop

def _loader(dataset: ClipDataset, pipe: FoleyPipeline, config: TrainConfig, world: int = 1, rank: int = 0):
    sampler = BucketBatchSampler(dataset, config.batch_size, buckets_s=config.buckets_s, seed=config.seed,
                                 max_batch_seconds=config.max_batch_seconds)
    if world > 1:
        sampler = ShardedBatchSampler(sampler, world, rank)
    collate = ClipCollator(sr=pipe.sr, video_fps=pipe.video_fps, frame_size=pipe.frame_size,
                           max_duration_s=pipe.window_s)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate,
                                         num_workers=config.num_workers)
    return loader, sampler


def _item_generators(seed: int, step: int, first: int, n: int) -> list[torch.Generator]:
    """One generator per item of a step's batch, seeded by (seed, step, the item's position in
    the global batch): the noise, timestep and condition dropout an item gets do not depend on
    how the global batch is split over processes."""
    return [torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step, first + i]).generate_state(1)[0]))
            for i in range(n)]


def train(pipe: FoleyPipeline, dataset: ClipDataset, config: TrainConfig, *,
          on_log: Callable[[dict], None] | None = None) -> TrainResult:
    """Train one stage of `pipe` in place on `dataset`; checkpoints go to `config.out_dir`."""
    from accelerate import Accelerator

    if config.stage not in ("vae", "decoder", "ldm"):
        raise ValueError(f"stage must be 'vae', 'decoder' or 'ldm', got {config.stage!r}")
    start_time = time.monotonic()
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    from accelerate.utils import DistributedDataParallelKwargs

    # Some conditioning parameters get no gradient in a step (a dropped condition, clips without
    # video): DDP must not wait for them.
    accelerator = Accelerator(cpu=config.device == "cpu",
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    world, rank = accelerator.num_processes, accelerator.process_index

    if config.stage in ("vae", "decoder"):
        model: nn.Module = VAEModule(pipe, config.kl_weight, decoder_only=config.stage == "decoder")
    else:
        model = LDMModules(pipe)
        pipe.vae.requires_grad_(False).eval()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.learning_rate, weight_decay=config.weight_decay)
    ema = None
    if config.stage == "ldm" and config.ema_decay:
        from diffusers.training_utils import EMAModel

        # Diffusion samples are much cleaner from an exponential moving average of the weights;
        # the pipeline is saved with the EMA weights, the raw ones go in the training state.
        ema = EMAModel(model.parameters(), decay=config.ema_decay, use_ema_warmup=True)

    step, losses = 0, []
    checkpoint = find_checkpoint(config.out_dir) if config.resume else None
    if checkpoint is not None:
        state = load_training_state(checkpoint)
        if config.stage == "decoder" and state["stage"] != "decoder":
            # its checkpoints would replace this run's (and its optimizer state) with the decoder's
            raise FoleyError(f"{checkpoint} holds a {state['stage']} checkpoint; train the decoder "
                             "in a run folder of its own (start it from a model with --init)")
        if state["stage"] == "ldm" and config.stage == "vae":
            # the VAE was trained before this LDM checkpoint: never overwrite it with a new VAE
            _load_weights_from(pipe, checkpoint)
            log.info("%s already holds an LDM checkpoint; the VAE stage is skipped", checkpoint)
            return TrainResult(step=0, checkpoint=str(checkpoint), seconds=time.monotonic() - start_time)
        if state["stage"] == config.stage:
            _load_weights_from(pipe, checkpoint)
            optimizer.load_state_dict(state["optimizer"])
            _set_rng_state(state["rng"])
            step, losses = int(state["step"]), list(state.get("losses", []))
            if ema is not None and "ema" in state and "raw_model" in state:
                ema.load_state_dict(state["ema"])
                model.load_state_dict(state["raw_model"])
            log.info("resumed %s training at step %d from %s", config.stage, step, checkpoint)
        elif state["stage"] == "vae" and config.stage == "ldm":
            _load_weights_from(pipe, checkpoint, names=("vae",))      # start the LDM from the trained VAE

    model, optimizer = accelerator.prepare(model, optimizer)
    pipe.to(accelerator.device)
    # several processes: each takes its share of every global batch (ShardedBatchSampler)
    loader, sampler = _loader(dataset, pipe, config, world, rank)
    noise_scheduler = _noise_scheduler(pipe) if config.stage == "ldm" else None
    p_drop = {"text": config.p_drop_text, "video": config.p_drop_video, "curve": config.p_drop_curve,
              "onsets": config.p_drop_onsets, "all": config.p_drop_all}
    last_checkpoint = time.monotonic()
    ckpt_path = None
    epoch = step // max(1, len(sampler))
    model.train()
    done = step >= config.max_steps
    while not done:
        sampler.set_epoch(epoch)
        for batch in loader:
            t0 = time.perf_counter()
            generators = _item_generators(config.seed, step, rank * len(batch["audio"]), len(batch["audio"]))
            with accelerator.accumulate(model):
                if config.stage in ("vae", "decoder"):
                    loss = model(batch["audio"].to(accelerator.device), generators)
                else:
                    loss = model(batch, noise_scheduler, p_drop, generators)
                accelerator.backward(loss)
                if config.grad_clip:
                    accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                optimizer.zero_grad()
            if ema is not None:
                ema.step(model.parameters())
            step += 1
            # the loss of the whole global batch: the mean of the equal shares' means
            losses.append((accelerator.reduce(loss.detach(), reduction="mean") if world > 1 else loss).item())
            if on_log is not None and (step % config.log_every == 0 or step == 1):
                row = {"stage": config.stage, "step": step, "loss": losses[-1],
                       "seconds_per_step": time.perf_counter() - t0, "duration_s": batch["duration_s"]}
                if world > 1:
                    row.update(process=rank, processes=world, items=len(batch["audio"]))
                on_log(row)
            out_of_time = config.max_minutes is not None and \
                (time.monotonic() - start_time) / 60 >= config.max_minutes
            if step >= config.max_steps or out_of_time:
                done = True
                break
            if (time.monotonic() - last_checkpoint) / 60 >= config.checkpoint_every_min:
                ckpt_path = _save(pipe, accelerator, model, optimizer, config, step, losses, ema)
                last_checkpoint = time.monotonic()
        epoch += 1
    if config.stage == "vae":
        # from the global batches, so that every process (and a one-process run) sets the same scale
        set_latent_scale(pipe, _loader(dataset, pipe, config)[0] if world > 1 else loader)
    model.eval()
    ckpt_path = _save(pipe, accelerator, model, optimizer, config, step, losses, ema)
    if ema is not None:
        ema.copy_to(model.parameters())       # leave `pipe` holding what the checkpoint holds
    return TrainResult(step=step, losses=losses, checkpoint=str(ckpt_path),
                       seconds=time.monotonic() - start_time)


def _load_weights_from(pipe: FoleyPipeline, checkpoint: Path, names=("vae", "unet", "mam", "tlm")) -> None:
    loaded = FoleyPipeline.from_pretrained(checkpoint)
    for name in names:
        getattr(pipe, name).load_state_dict(getattr(loaded, name).state_dict())
    pipe.vae.register_to_config(scaling_factor=float(loaded.vae.config.scaling_factor))
    if "unet" in names:
        pipe.config = {**pipe.config, "trained": bool(loaded.config.get("trained"))}


def _save(pipe, accelerator, model, optimizer, config, step, losses, ema=None) -> Path:
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return Path(config.out_dir) / "checkpoint"
    trained = dict(pipe.config)
    if config.stage == "ldm":
        trained["trained"] = True
    pipe.config = trained
    if ema is None:
        return save_checkpoint(pipe, config.out_dir, stage=config.stage, step=step, optimizer=optimizer,
                               config=config, losses=losses)
    raw = accelerator.unwrap_model(model)
    extra = {"ema": ema.state_dict(), "raw_model": {k: v.detach().clone() for k, v in raw.state_dict().items()}}
    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    try:
        return save_checkpoint(pipe, config.out_dir, stage=config.stage, step=step, optimizer=optimizer,
                               config=config, losses=losses, extra_state=extra)
    finally:
        ema.restore(model.parameters())


@torch.no_grad()
def set_latent_scale(pipe: FoleyPipeline, loader, n_batches: int = 8) -> float:
    """Set the VAE's scaling_factor to 1 / std of latent means over a few batches."""
    values = []
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        mel = pipe.mel(batch["audio"].to(pipe.vae.device))
        mel = mel[..., : mel.shape[-1] - mel.shape[-1] % pipe.vae.time_downsample]
        values.append(pipe.vae.encode(mel).mode().flatten())
    std = float(torch.cat(values).std())
    scale = 1.0 / std if std > 0 and math.isfinite(std) else 1.0
    pipe.vae.register_to_config(scaling_factor=scale)
    return scale
