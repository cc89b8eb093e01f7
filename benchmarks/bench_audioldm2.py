#!/usr/bin/env python
"""AudioLDM2 backend cost on this machine: sampler overhead and MAM/TLM adapter overhead.

    python benchmarks/bench_audioldm2.py [--window-s 2] [--steps 25] [--threads 1] [--full]

1. The tiny random pipeline (what the tests use): one generate_window, text-only (2 UNet
   branches) and with adapters and a video (3 branches), split into encode / denoise / decode.
2. With --full: ONE UNet call of an AudioLDM2-sized UNet (random weights; channels
   128/256/384/640, 2 layers per block, GPT2 768 + T5 1024 cross-attention, as in cvssp/audioldm2
   to the best of our knowledge, not read from the hub) at batch 2 (CFG) and batch 3 with
   adapters, so the per-step CPU cost and the adapters' share can be read off. Multiply by the
   step count for a window; a GPU is expected for real use.
No weights are downloaded.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core.backends import VideoCondition  # noqa: E402
from foley_core.backends.adapters import AudioLDM2Adapters  # noqa: E402
from foley_core.backends.audioldm2 import AudioLDM2Backend, tiny_random_pipeline  # noqa: E402


def bench_tiny(window_s: float, steps: int) -> None:
    rng = np.random.default_rng(0)
    n_frames = int(round(window_s * 20))
    video = VideoCondition(frames=rng.integers(0, 255, (n_frames, 64, 64, 3), dtype=np.uint8),
                           masks=np.ones((n_frames, 64, 64), np.float32), fps=20.0)
    curve = np.linspace(0, 1, int(round(window_s * 10)), dtype=np.float32)
    print(f"tiny random pipeline, {window_s:g} s window, {steps} DPM-Solver++ steps, 1 candidate")
    for label, kwargs, video_arg in (("text only (2 branches)", {}, None),
                                     ("adapters + video (3 branches)", {"new_adapters": True}, video)):
        backend = AudioLDM2Backend.from_pipeline(tiny_random_pipeline(), **kwargs)
        backend.generate_window(caption="warm-up", negative_caption=None, duration_s=window_s, video=video_arg,
                                curve=curve, seeds=[0], steps=2, text_scale=3.5, video_scale=4.5)
        start = time.process_time()
        out = backend.generate_window(caption="a hammer hits a plank", negative_caption="noise",
                                      duration_s=window_s, video=video_arg, curve=curve, seeds=[0], steps=steps,
                                      text_scale=3.5, video_scale=4.5)
        total = time.process_time() - start
        stages = ", ".join(f"{k} {v:.3f}" for k, v in out.timings_s.items())
        print(f"  {label:32s} CPU {total:.3f} s  (wall per stage: {stages})")


def audioldm2_sized_unet():
    from diffusers import AudioLDM2UNet2DConditionModel

    return AudioLDM2UNet2DConditionModel(
        sample_size=256, in_channels=8, out_channels=8, block_out_channels=(128, 256, 384, 640),
        layers_per_block=2, attention_head_dim=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=([None, 768, 1024],) * 4)


def bench_full(window_s: float, repeats: int = 2) -> None:
    unet = audioldm2_sized_unet().eval()
    n_params = sum(p.numel() for p in unet.parameters())
    n_latent = int(np.ceil(window_s * 100 / 32)) * 32 // 4
    print(f"\nAudioLDM2-sized UNet ({n_params / 1e6:.0f} M parameters), latent (8, {n_latent}, 16) "
          f"for {window_s:g} s, CPU seconds per call (best of {repeats})")
    gen = torch.Generator().manual_seed(0)

    def call(batch: int, tokens: torch.Tensor | None, adapters: AudioLDM2Adapters | None) -> float:
        """Best CPU seconds of `repeats` calls (CPU time: the machine is shared, wall time is noisy)."""
        sample = torch.randn(batch, 8, n_latent, 16, generator=gen)
        gpt2 = torch.randn(batch, 8, 768, generator=gen)
        t5 = torch.randn(batch, 20, 1024, generator=gen)
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            with torch.no_grad():
                if adapters is not None:
                    with adapters.visual_tokens(tokens):
                        unet(sample, 500, encoder_hidden_states=gpt2, encoder_hidden_states_1=t5)
                else:
                    unet(sample, 500, encoder_hidden_states=gpt2, encoder_hidden_states_1=t5)
            best = min(best, time.process_time() - start)
        return best

    call(1, None, None)   # warm-up
    base = call(2, None, None)
    adapters = AudioLDM2Adapters.for_unet(unet, latent_fps=25.0)
    n_adapter = sum(p.numel() for p in adapters.parameters())
    adapters.install(unet)
    tokens = torch.randn(3, int(window_s * 20), 768, generator=gen)
    with_adapters = call(3, tokens, adapters)
    same_batch = call(2, tokens[:2], adapters)
    print(f"  adapters: {n_adapter / 1e6:.1f} M parameters ({len(adapters.visual_attn)} visual attention branches)")
    print(f"  batch 2, no adapters (text CFG):          {base:.2f} s per step")
    print(f"  batch 2, adapters installed:              {same_batch:.2f} s per step "
          f"({100 * (same_batch / base - 1):+.0f} %)")
    print(f"  batch 3, adapters + video (dual CFG):     {with_adapters:.2f} s per step")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-s", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--full", action="store_true", help="also time an AudioLDM2-sized UNet call")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bench_tiny(args.window_s, args.steps)
    if args.full:
        bench_full(args.window_s)


if __name__ == "__main__":
    main()
