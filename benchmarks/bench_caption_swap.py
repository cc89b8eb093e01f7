"""Does the caption move the model-only output? Swap captions at generation and tag the results.

Val items as in the harness (round-robin selection, the item length, the curve of a clip of
another category, conform off, `source="model"`); each item is generated with its own caption
and with its swap partner's caption (same seed, same curve), at the guidance settings given.
Reported per setting (text scale, timing scale):

  - balanced accuracy of the own-caption outputs against the item's category (the harness's
    measure) and of the swapped-caption outputs against the PARTNER's category: if the label
    follows the caption, both are high; if it follows the curve or nothing, both sit near chance;
  - changed: fraction of items whose predicted category differs between the two captions;
  - mel_change_caption / mel_change_seed: mean |log-mel difference| between the two captions'
    outputs, over the same between two seeds with the own caption (below 1: swapping the
    caption moves the sound less than drawing new noise does).

    python benchmarks/bench_caption_swap.py --weights assets/embedded --n 24 \\
        --settings 3.5:15,3.5:1,7:15 --out results/caption_swap_shipped.json
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
from foley_lab.evaluation import metrics  # noqa: E402
from foley_lab.evaluation.harness import (EvalConfig, _generate, item_duration_s, load_backend,  # noqa: E402
                                          select_val_clips, swapped_curves)
from foley_lab.evaluation.references import fit_length  # noqa: E402
from foley_lab.evaluation.tagger import DEFAULT_TAGGER_DIR, load_tagger  # noqa: E402
from foley_lab.data.sfx import SfxLibrary  # noqa: E402


def log_mel(pipe, audio: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return pipe.mel(torch.from_numpy(np.asarray(audio, np.float32))[None])[0].numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--sfx", help="sound library folder (default ../shared/sfx)")
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--max-seconds", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--settings", default="3.5:15", help="comma-separated TEXT_SCALE:TIMING_SCALE")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    library = SfxLibrary(args.sfx)
    tagger = load_tagger(DEFAULT_TAGGER_DIR)
    backend = load_backend("embedded", args.weights)
    pipe = backend.pipeline
    clips = select_val_clips(library.clips("val"), args.n, args.seed)
    durations = [item_duration_s(c.seconds, 1.0, args.max_seconds) for c in clips]
    audios = [fit_length(library.load(c), int(round(d * MODEL_SR))) for c, d in zip(clips, durations)]
    partners, curves = swapped_curves(audios, [c.category for c in clips], durations, args.seed)
    own_cat = [c.category for c in clips]
    partner_cat = [clips[j].category for j in partners]
    results = {"weights": args.weights, "n": len(clips), "max_seconds": args.max_seconds,
               "steps": args.steps, "settings": {}}
    for setting in args.settings.split(","):
        text_scale, timing_scale = (float(x) for x in setting.split(":"))
        cfg = EvalConfig(steps=args.steps, text_scale=text_scale)
        outs: dict[str, list[np.ndarray]] = {"own": [], "swap": [], "own_seed2": []}
        for i, (clip, d, curve) in enumerate(zip(clips, durations, curves)):
            print(f"{setting}: item {i + 1}/{len(clips)}", file=sys.stderr, flush=True)
            for name, caption, seed in (("own", clip.caption, args.seed + i),
                                        ("swap", clips[partners[i]].caption, args.seed + i),
                                        ("own_seed2", clip.caption, args.seed + 10_000 + i)):
                audio, _ = _generate(backend, cfg, caption=caption, duration_s=d, curve=curve,
                                     conform=0.0, seed=seed, curve_scale=timing_scale)
                outs[name].append(audio)
        pred = {k: tagger.analyse(v, MODEL_SR)[1] for k, v in outs.items()}
        row = {"balanced_own": metrics.balanced_accuracy(pred["own"], own_cat),
               "balanced_swap_vs_partner": metrics.balanced_accuracy(pred["swap"], partner_cat),
               "balanced_swap_vs_own": metrics.balanced_accuracy(pred["swap"], own_cat),
               "balanced_own_seed2": metrics.balanced_accuracy(pred["own_seed2"], own_cat),
               "changed": float(np.mean([a != b for a, b in zip(pred["own"], pred["swap"])])),
               "changed_seed": float(np.mean([a != b for a, b in zip(pred["own"], pred["own_seed2"])])),
               "loudness_r_own": float(np.mean([metrics.curve_fit(a, MODEL_SR, c)["r"]
                                                for a, c in zip(outs["own"], curves)]))}
        if pipe is not None:
            cap = [np.mean(np.abs(log_mel(pipe, a) - log_mel(pipe, b)))
                   for a, b in zip(outs["own"], outs["swap"])]
            seed = [np.mean(np.abs(log_mel(pipe, a) - log_mel(pipe, b)))
                    for a, b in zip(outs["own"], outs["own_seed2"])]
            row["mel_change_caption"] = float(np.mean(cap))
            row["mel_change_seed"] = float(np.mean(seed))
            row["caption_over_seed"] = float(np.mean(cap) / max(np.mean(seed), 1e-9))
        row["predicted"] = pred
        results["settings"][setting] = row
        print(json.dumps({setting: {k: v for k, v in row.items() if k != "predicted"}}), flush=True)
    write_text_atomic(Path(args.out), json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
