"""Loudness following of a trained model with TLM alone, by curve-guidance scale.

    python benchmarks/bench_curve_guidance.py --weights runs/candidates/ldm_2238 \
        [--scales 1,2,3] [--split train] [--n-val 40] [--steps 25] [--threads 1]

Items are built as the harness builds them (clips, each caption with the curve of a clip of ANOTHER category,
conform off, no video); r counts items whose curve spans >= 25 % of its peak, as the harness
does. Prints, per scale, r mean / median, MAE, the audio tagger's balanced accuracy against the
caption's category (does stricter curve following cost the sound its identity?) and seconds per
item, then the chosen scale (the value to write into the model folder's `pipeline.curve_scale`):
the SMALLEST scale whose MEAN r (the statistic of the issue's goal) is within 0.03 of the best,
because guidance beyond the point of diminishing returns pushes the output towards saturation for
no measurable gain. (Medians of 28 items move by 0.02-0.03 between neighbouring scales: too
noisy to choose by.) The scale is chosen on TRAIN
clips (their curves swapped, so each item is a new caption/curve pairing) and reported on val
by the harness, so the choice is not fitted to the numbers it is judged by.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--scales", default="1,2,3")
    ap.add_argument("--split", default="train", choices=("train", "val"))
    ap.add_argument("--n-val", type=int, default=40, help="items")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from foley_core.constants import MODEL_SR
    from foley_core.data.sfx import SfxLibrary
    from foley_core.evaluation import metrics
    from foley_core.evaluation.harness import (MIN_CURVE_RANGE, curve_span, item_duration_s,
                                               select_val_clips, swapped_curves)
    from foley_core.evaluation.references import fit_length
    from foley_core.evaluation.tagger import load_tagger
    from foley_core.pipeline import FoleyPipeline

    pipe = FoleyPipeline.from_pretrained(args.weights)
    library = SfxLibrary()
    clips = select_val_clips(library.clips(args.split), args.n_val, args.seed)
    durations = [item_duration_s(c.seconds, 1.0, 8.0) for c in clips]
    audios = [fit_length(library.load(c), int(round(d * MODEL_SR))) for c, d in zip(clips, durations)]
    keep = [i for i, a in enumerate(audios) if np.any(a)]
    clips, durations, audios = ([x[i] for i in keep] for x in (clips, durations, audios))
    _, curves = swapped_curves(audios, [c.category for c in clips], durations, args.seed)
    spans = [curve_span(c) for c in curves]

    scales = [float(s) for s in args.scales.split(",")]
    tagger = load_tagger()
    expected = [c.category for c in clips]
    means: dict[float, float] = {}
    print(f"{len(clips)} items ({sum(s >= MIN_CURVE_RANGE for s in spans)} counted for r), "
          f"{args.split} split, {args.steps} steps, weights {args.weights}")
    print("| curve scale | r mean | r median | MAE | tagger balanced acc. | s per item |")
    print("|---:|---:|---:|---:|---:|---:|")
    for scale in scales:
        rs, maes, outs, t0 = [], [], [], time.perf_counter()
        for i, (clip, d, curve, span) in enumerate(zip(clips, durations, curves, spans)):
            out = pipe(caption=clip.caption, duration_s=d, curve=curve, seeds=[args.seed + i],
                       num_inference_steps=args.steps, curve_scale=scale)
            outs.append(out.audios[0])
            fit = metrics.curve_fit(out.audios[0], MODEL_SR, curve)
            maes.append(fit["mae"])
            if span >= MIN_CURVE_RANGE:
                rs.append(fit["r"])
        per_item = (time.perf_counter() - t0) / len(clips)
        med = float(np.median(rs))
        means[scale] = float(np.mean(rs))
        acc = metrics.balanced_accuracy(tagger.predict(outs, MODEL_SR), expected)
        print(f"| {scale:g} | {np.mean(rs):.3f} | {med:.3f} | {np.mean(maes):.3f} | {acc:.3f} | "
              f"{per_item:.2f} |", flush=True)
    best = max(means.values())
    chosen = min(s for s, m in means.items() if m >= best - 0.03)
    print(f"best mean r {best:.3f}; chosen: curve scale {chosen:g} (mean r {means[chosen]:.3f}), "
          "the smallest within 0.03 of the best")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
