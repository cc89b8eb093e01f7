"""Does the caption reach the denoiser? Measurements on the embedded model, no generation needed.

For clips of a split (val by default: the harness's round-robin selection, cut to the harness's
item length), each clip's latent is noised at fixed timesteps with fixed noise and the UNet
predicts the noise under three captions: the clip's own, the caption of a clip of ANOTHER
category (the harness's swap partner), and none (the learned null). Reported per timestep band:

  - mse_own, and gain_swap = mse_swap / mse_own - 1, gain_null = mse_null / mse_own - 1: how much
    worse the prediction gets without the right caption. Near 0 = the caption carries no
    information the denoiser uses; the diffusion loss can only teach the caption through this.
  - with the timing instructions (the clip's own curve and onsets, as in training and in the
    model-only path) and without them ("text alone"): if the curve explains what the caption
    would, the gain collapses when the curve is given.
  - cross-attention of the caption pass, per transformer stage: the share of attention mass on
    caption tokens (the rest goes to MAM's tokens; without video that is ONE learned null token,
    an attention sink if it takes most of the mass) and the entropy over the caption tokens
    divided by log(tokens) (1 = spread evenly, i.e. no token picked out).
  - the pooled caption's share of the UNet's global embedding: |W p_own - W p_swap| / |time
    embedding| (how much swapping captions moves the global conditioning).

    python benchmarks/bench_text_conditioning.py --weights assets/embedded --n 48 \\
        --out results/text_conditioning_shipped.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core.atomic import write_text_atomic  # noqa: E402
from foley_core.constants import MODEL_SR  # noqa: E402
from foley_core.events import detect_onsets  # noqa: E402
from foley_core.loudness import relative_loudness  # noqa: E402
from foley_core.pipeline import FoleyPipeline  # noqa: E402
from foley_lab.data.sfx import SfxLibrary  # noqa: E402
from foley_lab.evaluation.harness import item_duration_s, select_val_clips, swap_partners  # noqa: E402
from foley_lab.evaluation.references import fit_length  # noqa: E402

TIMESTEPS = (50, 200, 400, 600, 800, 950)


class AttentionRecorder:
    """A diffusers attention processor for the cross-attention (attn2) that computes what the
    default one does and, while `active`, keeps the caption share and entropy of its weights."""

    def __init__(self, name: str, n_text: list[int]):
        self.name, self.n_text, self.active = name, n_text, False
        self.text_mass: list[float] = []
        self.text_entropy: list[float] = []

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 temb=None, **kwargs):
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        batch = hidden_states.shape[0]
        mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(context))
        v = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(q, k, mask)           # (B * heads, queries, keys)
        if self.active:
            heads = attn.heads
            p = probs.view(batch, heads, probs.shape[1], probs.shape[2])
            for b in range(batch):
                n = self.n_text[b]
                text = p[b, :, :, :n]
                mass = text.sum(-1)                                 # (heads, queries)
                self.text_mass.append(float(mass.mean()))
                if n > 1:
                    q_text = text / mass.clamp_min(1e-12)[..., None]
                    ent = -(q_text * q_text.clamp_min(1e-12).log()).sum(-1) / math.log(n)
                    self.text_entropy.append(float(ent.mean()))
        out = attn.batch_to_head_dim(torch.bmm(probs, v))
        return attn.to_out[1](attn.to_out[0](out))


def _band(t: int) -> str:
    return "t<300" if t < 300 else ("300<=t<700" if t < 700 else "t>=700")


@torch.no_grad()
def measure(pipe: FoleyPipeline, clips, audios, partners, *, seed: int, progress=print) -> dict:
    from foley_lab.training.trainer import _noise_scheduler

    sched = _noise_scheduler(pipe)
    recorders = {}
    stages = [("down", i, s) for i, s in enumerate(pipe.unet.down_attn)] + \
        [("mid", 0, pipe.unet.mid_attn)] + [("up", i, s) for i, s in enumerate(pipe.unet.up_attn)]
    n_text_holder: list[int] = []
    for kind, i, stage in stages:
        if not hasattr(stage, "blocks"):
            continue
        for j, block in enumerate(stage.blocks):
            rec = AttentionRecorder(f"{kind}{i}.{j}", n_text_holder)
            block.attn2.set_processor(rec)
            recorders[rec.name] = rec
    scale = float(pipe.vae.config.scaling_factor)
    mse: dict[str, dict[str, dict[str, list[float]]]] = {}
    pooled_share = []
    n_t = len(TIMESTEPS)
    for i, (clip, audio) in enumerate(zip(clips, audios)):
        if i % 8 == 0:
            progress(f"item {i + 1}/{len(clips)}")
        x = torch.from_numpy(audio)[None]
        mel = pipe.mel(x)
        length = pipe.latent_length(audio.size / pipe.sr) * pipe.vae.time_downsample
        mel = F.pad(mel, (0, length - mel.shape[-1]), value=-1.0)
        z0 = pipe.vae.encode(mel).mode() * scale
        g = torch.Generator().manual_seed(seed * 100_003 + i)
        noise = torch.randn(z0.shape, generator=g)
        t = torch.tensor(TIMESTEPS)
        z_t = sched.add_noise(z0.expand(n_t, -1, -1), noise.expand(n_t, -1, -1), t)
        captions = {"own": clip.caption, "swap": clips[partners[i]].caption, "null": None}
        curve = torch.from_numpy(relative_loudness(audio, MODEL_SR))[None].float()
        onsets = [detect_onsets(audio, MODEL_SR)]
        for timing in ("with_timing", "text_alone"):
            on = torch.tensor([timing == "with_timing"])
            tau = pipe.tlm(curve, z0.shape[-1], present=on, onsets_s=onsets if pipe.tlm.onsets is not None else None,
                           onsets_present=on)
            z_in = pipe.tlm.add_to_latent(z_t, tau.expand(n_t, -1, -1))
            for name, caption in captions.items():
                text = pipe.text_encoder.encode_batch([caption] * n_t)
                n_text_holder[:] = [int(text["text_mask"][b].sum()) if caption else 1 for b in range(n_t)]
                record = name == "own" and timing == "with_timing"
                for rec in recorders.values():
                    rec.active = record
                tokens = pipe.mam.null_tokens(n_t, 1)
                pred = pipe.unet(z_in, t, visual_tokens=tokens, visual_mask=None, **text).sample
                target = sched.get_velocity(z0.expand(n_t, -1, -1), noise.expand(n_t, -1, -1), t) \
                    if sched.config.prediction_type == "v_prediction" else noise.expand(n_t, -1, -1)
                err = ((pred - target) ** 2).mean(dim=(1, 2))
                for tk, e in zip(TIMESTEPS, err.tolist()):
                    mse.setdefault(timing, {}).setdefault(_band(tk), {}).setdefault(name, []).append(e)
        for rec in recorders.values():
            rec.active = False
        # the pooled caption's pull on the global embedding (timestep 500)
        emb_t = pipe.unet.time_embedding(pipe.unet.time_proj(torch.tensor([500])))
        own = pipe.text_encoder.encode_batch([clip.caption])["text_pooled"]
        other = pipe.text_encoder.encode_batch([clips[partners[i]].caption])["text_pooled"]
        diff = pipe.unet.pooled_text_proj(own) - pipe.unet.pooled_text_proj(other)
        pooled_share.append(float(diff.norm() / emb_t.norm()))
    out: dict = {"timesteps": list(TIMESTEPS), "loss": {}}
    for timing, bands in mse.items():
        out["loss"][timing] = {}
        for band, by in bands.items():
            own = np.array(by["own"])
            out["loss"][timing][band] = {
                "mse_own": float(own.mean()),
                "gain_swap": float(np.mean(by["swap"]) / own.mean() - 1),
                "gain_null": float(np.mean(by["null"]) / own.mean() - 1),
                # per-item paired: fraction of items where the own caption predicts better
                "own_better_than_swap": float(np.mean(own < np.array(by["swap"]))),
                "n": int(own.size)}
    out["cross_attention"] = {name: {"text_mass": float(np.mean(r.text_mass)),
                                     "text_entropy": float(np.mean(r.text_entropy)) if r.text_entropy else None}
                              for name, r in recorders.items()}
    out["pooled_share_of_time_embedding"] = {"mean": float(np.mean(pooled_share)),
                                             "median": float(np.median(pooled_share))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", nargs="+", required=True, help="model folders to compare")
    ap.add_argument("--sfx", help="sound library folder (default ../shared/sfx)")
    ap.add_argument("--split", default="val", choices=("train", "val"))
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--max-seconds", type=float, default=4.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    library = SfxLibrary(args.sfx)
    clips = select_val_clips(library.clips(args.split), args.n, args.seed)
    durations = [item_duration_s(c.seconds, 1.0, args.max_seconds) for c in clips]
    audios = [fit_length(library.load(c), int(round(d * MODEL_SR))) for c, d in zip(clips, durations)]
    partners = swap_partners([c.category for c in clips], args.seed)
    results = {"split": args.split, "n": len(clips), "max_seconds": args.max_seconds,
               "seed": args.seed, "models": {}}
    for weights in args.weights:
        print(f"== {weights}", file=sys.stderr)
        pipe = FoleyPipeline.from_pretrained(weights)
        pipe.unet.eval()
        results["models"][weights] = measure(pipe, clips, audios, partners, seed=args.seed,
                                             progress=lambda m: print(m, file=sys.stderr))
    write_text_atomic(Path(args.out), json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
