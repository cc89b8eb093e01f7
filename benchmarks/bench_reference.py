#!/usr/bin/env python
"""Reference-guided (audio-to-audio) generation on the shipped embedded config (random weights:
speed does not depend on training; closeness to the reference does).

    python benchmarks/bench_reference.py [--threads 1] [--seconds 8] [--steps 25] [--clip ID]

Prints, for one window of `--seconds` with a library clip as the reference and a caption:
  - the time to load + fit the reference and to encode it (mel + VAE), per call;
  - for strengths 1.0 (plain), 0.8, 0.6, 0.4, 0.2 and 0: steps run, total and denoising wall time,
    and (mean over 3 seeds) the correlation of the output latent with the reference latent and
    of the output mel with the model's reconstruction of the reference mel (strength 0 through
    the pipeline). With random weights these say how much of the reference the SDEdit start
    keeps, not whether the result sounds like it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from foley_core import offline  # noqa: E402

offline.configure()


def corr(a, b) -> float:
    a = a.ravel() - a.mean()
    b = b.ravel() - b.mean()
    return float(a @ b / (a @ a * (b @ b)) ** 0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--clip", default="0ad_footsteps_footstep_gravel_walking")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from foley_core.backends import clear_backends, get_backend, reference_steps
    from foley_core.generate import generate
    from foley_core.library.references import read_reference
    from foley_core.library import fit_reference

    os.environ.pop("FOLEY_EMBEDDED_DIR", None)
    clear_backends()
    pipe = get_backend("embedded").pipeline
    sr = pipe.sr
    print(f"embedded config, random weights; {args.seconds:g} s window, {args.steps} steps, "
          f"{args.threads} thread(s); reference {args.clip}")

    t0 = time.perf_counter()
    audio, ref_sr, _ = read_reference(args.clip)
    ref = fit_reference(audio, ref_sr, duration_s=args.seconds, target_sr=sr)
    print(f"read + fit reference: {time.perf_counter() - t0:.3f} s")
    pipe.encode_audio(ref, args.seconds)
    t0 = time.perf_counter()
    ref_latent = pipe.encode_audio(ref, args.seconds)[0].numpy()
    print(f"encode reference (mel + VAE): {time.perf_counter() - t0:.3f} s")

    kw = dict(duration_s=args.seconds, caption="footsteps on gravel", reference=ref,
              num_inference_steps=args.steps)
    ref_mel = pipe(strength=0.0, seeds=[0], **kw).mels[0].numpy()
    print(f"{'strength':>8} {'steps run':>9} {'total s':>8} {'denoise s':>9} {'r latent':>8} {'r mel':>6}")
    for strength in (1.0, 0.8, 0.6, 0.4, 0.2, 0.0):
        r_lat, r_mel, totals, denoise = [], [], [], []
        for seed in range(3):
            t0 = time.perf_counter()
            out = pipe(strength=strength, seeds=[seed], **kw)
            totals.append(time.perf_counter() - t0)
            denoise.append(out.timings_s.get("denoise", 0.0))
            r_lat.append(corr(out.latents[0].numpy(), ref_latent))
            r_mel.append(corr(out.mels[0].numpy(), ref_mel))
        print(f"{strength:>8.1f} {reference_steps(args.steps, strength)[1]:>9d} {np.median(totals):>8.2f} "
              f"{np.median(denoise):>9.2f} {np.mean(r_lat):>8.3f} {np.mean(r_mel):>6.3f}")

    t0 = time.perf_counter()
    generate(caption="footsteps on gravel", duration_s=args.seconds, reference=args.clip, strength=0.6,
             steps=args.steps)
    print(f"generate(..., reference=clip id, strength=0.6) end to end: {time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
