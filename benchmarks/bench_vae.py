"""What the autoencoder keeps of a sound: VAE reconstructions of VAL clips (never train).

Each val clip (the reference sweep's selection: round-robin over categories, cut to the sweep's
item length) goes audio -> mel -> [VAE encode (posterior mean) -> decode] -> Griffin-Lim -> audio
for every model folder given, and also audio -> mel -> Griffin-Lim with no VAE (the vocoder's own
loss). Reference-guided generation at a low strength cannot keep more of a reference's identity
than this round trip does, so this is the ceiling of issue 7's identity measure.

  - mel_l1: L1 between the clip's normalised log-mel and the VAE's reconstruction (normalised
    units; the mel's range is [-1, 1]); lower is better,
  - tagger balanced accuracy of the round-tripped clips against their categories (the original
    clips' is the ceiling), with a paired bootstrap CI of each model minus the original clips,
  - loudness r: Pearson r of `relative_loudness` curves of the output and the clip,
  - FD: Frechet distance of the tagger's embeddings to every real val clip (fit as in the
    harness), with a bootstrap interval: the floor that any output through this decoder and
    vocoder starts from on the harness's FD.

    python benchmarks/bench_vae.py --weights assets/embedded runs/candidates/NEW --n-val 96 \
        --out results/vae_bench.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core.atomic import write_text_atomic  # noqa: E402
from foley_core.constants import MODEL_SR  # noqa: E402
from foley_lab.data.sfx import SfxLibrary  # noqa: E402
from foley_lab.evaluation import metrics  # noqa: E402
from foley_lab.evaluation.harness import item_duration_s, select_val_clips  # noqa: E402
from foley_lab.evaluation.references import fit_length  # noqa: E402
from foley_lab.evaluation.tagger import DEFAULT_TAGGER_DIR, load_tagger  # noqa: E402
from foley_core.loudness import curve_correlation, relative_loudness  # noqa: E402
from foley_core.pipeline import FoleyPipeline  # noqa: E402


@torch.no_grad()
def round_trip(pipe: FoleyPipeline, audio: np.ndarray, *, through_vae: bool = True
               ) -> tuple[np.ndarray, float]:
    """(audio after mel -> [VAE] -> vocoder, mel L1 of the VAE's reconstruction (0 without))."""
    n_mel = pipe.mel.n_frames(audio.size)
    mel = pipe.mel(torch.from_numpy(audio)[None])[..., :n_mel]
    l1 = 0.0
    if through_vae:
        # D(E(mel)) = mel - what the VAE loses of it
        lost = pipe.reference_detail(audio, audio.size / pipe.sr)[..., :n_mel]
        recon = (mel - lost).clamp(-1.0, 1.0)
        l1 = float((recon - mel).abs().mean())
        mel = recon
    return pipe.vocoder(mel.clamp(-1.0, 1.0), audio.size, [0])[0], l1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", nargs="+", required=True, help="model folders to compare")
    ap.add_argument("--n-val", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sfx-root", help="sound library folder (default ../shared/sfx)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    library = SfxLibrary(args.sfx_root)
    clips = select_val_clips(library.clips("val"), args.n_val, args.seed)
    reals = [fit_length(library.load(c), int(round(item_duration_s(c.seconds, 1.0, 8.0) * MODEL_SR)))
             .astype(np.float32) for c in clips]
    keep = [i for i, x in enumerate(reals) if np.any(x)]
    clips, reals = [clips[i] for i in keep], [reals[i] for i in keep]
    expected = [c.category for c in clips]
    tagger = load_tagger(DEFAULT_TAGGER_DIR)
    real_pred = tagger.predict(reals, MODEL_SR)
    # the harness's FD reference: every val clip, fit to its item length
    ref_emb = tagger.embed([fit_length(library.load(c), int(round(
        item_duration_s(c.seconds, 1.0, 8.0) * MODEL_SR))) for c in library.clips("val")], MODEL_SR)

    def row(outs: list[np.ndarray], l1s: list[float] | None, baseline: list[str] | None = None
            ) -> tuple[dict, list[str]]:
        """The row's figures (`baseline`: predictions to compare with, paired) and predictions."""
        pred = tagger.predict(outs, MODEL_SR)
        r = [curve_correlation(o, MODEL_SR, relative_loudness(x, MODEL_SR)) for o, x in zip(outs, reals)]
        return {"tagger_balanced_accuracy": metrics.balanced_accuracy(pred, expected),
                "tagger_accuracy": metrics.accuracy(pred, expected),
                "minus_real": metrics.paired_bootstrap_diff(pred, real_pred, expected,
                                                            n_boot=1000, seed=args.seed),
                "loudness_r": metrics.summarize(r),
                "mel_l1": metrics.summarize(l1s) if l1s is not None else None,
                "fd": metrics.bootstrap_frechet(tagger.embed(outs, MODEL_SR), ref_emb, seed=args.seed),
                "minus_first_vae": None if baseline is None else metrics.paired_bootstrap_diff(
                    pred, baseline, expected, n_boot=1000, seed=args.seed)}, pred

    results = {"n_clips": len(clips), "seed": args.seed,
               "real": {"tagger_balanced_accuracy": metrics.balanced_accuracy(real_pred, expected),
                        "tagger_accuracy": metrics.accuracy(real_pred, expected),
                        "fd": metrics.bootstrap_frechet(tagger.embed(reals, MODEL_SR), ref_emb,
                                                        seed=args.seed)},
               "rows": {}}
    first = FoleyPipeline.from_pretrained(args.weights[0])
    results["rows"]["mel + vocoder (no VAE)"] = row(
        [round_trip(first, x, through_vae=False)[0] for x in reals], None)[0]
    first_vae, first_pred = f"VAE {args.weights[0]}", None
    for weights in args.weights:
        pipe = first if weights == args.weights[0] else FoleyPipeline.from_pretrained(weights)
        outs, l1s = zip(*(round_trip(pipe, x) for x in reals))
        # each further decoder against the first model's (paired: the same clips)
        results["rows"][f"VAE {weights}"], pred = row(list(outs), list(l1s), first_pred)
        first_pred = first_pred or pred

    real = results["real"]
    print(f"{len(clips)} val clips; real clips: tagger balanced {real['tagger_balanced_accuracy']:.3f}, "
          f"FD {real['fd']['fd']:.2f}")
    print(f"{'round trip':<44} {'mel L1':>7} {'bal. acc':>8}  {'minus real [95% CI]':<24} {'loud r':>6} "
          f"{'FD [95%]':>20}")
    for name, r in results["rows"].items():
        d = r["minus_real"]
        l1 = "–" if r["mel_l1"] is None else f"{r['mel_l1']['mean']:.4f}"
        ci = f"{d['diff']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}]"
        print(f"{name:<44} {l1:>7} {r['tagger_balanced_accuracy']:>8.3f}  {ci:<24} "
              f"{r['loudness_r']['median']:>6.3f} {r['fd']['fd']:>6.2f} [{r['fd']['lo']:.1f}, {r['fd']['hi']:.1f}]")
        if r["minus_first_vae"]:
            d = r["minus_first_vae"]
            print(f"{'':<44} balanced acc. minus {first_vae}'s: {d['diff']:+.3f} "
                  f"[{d['lo']:+.3f}, {d['hi']:+.3f}]")
    if args.out:
        write_text_atomic(Path(args.out), json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
