"""`python -m foley_lab eval`: run the evaluation harness and write JSON + a markdown table.

    python -m foley_lab eval [--model embedded] [--weights DIR] [--n-val N] [--n-scenes N]
        [--n-selectivity N] [--steps K] [--quick] --out results/eval.json

    python -m foley_lab eval --reference-sweep [--strengths 0,0.2,0.4,0.6,0.8,1] [--n-val N]
        [--quick] [--weights DIR] [--threads N] --out results/reference_sweep.json

Writes OUT (JSON: config, rows x metrics, per-item details, goals, environment) and OUT with
`.md` (the table) atomically, prints the table on stdout and progress on stderr (unless
--quiet). See foley_lab/evaluation/harness.py for what each row and column means, and
foley_lab/evaluation/reference_sweep.py for the reference-strength sweep (one row per
strength, the chosen default and the rule).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from foley_core import constants


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="embedded",
                        help="backend to evaluate (default embedded)")
    parser.add_argument("--weights", help="embedded: model folder (default assets/embedded); "
                                          "audioldm2: its source")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-val", type=int,
                        help="val clips for loudness + semantics (default all)")
    parser.add_argument("--n-scenes", type=int, help="simulated timing scenes (default 24)")
    parser.add_argument("--n-selectivity", type=int, help="two-object scenes (default 8)")
    parser.add_argument("--steps", type=int, help=f"denoising steps (default {constants.DEFAULT_STEPS})")
    parser.add_argument("--text-scale", type=float, help=f"text guidance scale (default {constants.DEFAULT_TEXT_SCALE:g})")
    parser.add_argument("--video-scale", type=float, help=f"video guidance scale (default {constants.DEFAULT_VIDEO_SCALE:g})")
    parser.add_argument("--seed", type=int, help="generation / selection seed (default 0)")
    parser.add_argument("--scene-seed", type=int, help="seed of the held-out scenes (default 0)")
    parser.add_argument("--bootstrap", type=int, dest="n_boot",
                        help="bootstrap resamples for the FD interval (default 200)")
    parser.add_argument("--max-seconds", type=float, dest="max_val_s",
                        help="longest val item in seconds (default 8)")
    parser.add_argument("--no-speed", action="store_true", help="skip the 8 s speed measurement")
    parser.add_argument("--tagger", help="audio tagger folder (default assets/tagger)")
    parser.add_argument("--sfx", help="sound library folder (default ../shared/sfx)")
    parser.add_argument("--scenes-dir", help="where evaluation scenes are built and reused "
                                             "(default: eval_scenes/ beside --out)")
    parser.add_argument("--quick", action="store_true",
                        help="small preset: 8 val clips, 4 scenes, 2 selectivity scenes, 10 steps")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads (default: torch's choice; 1 is faster on a busy "
                             "machine)")
    parser.add_argument("--reference-sweep", action="store_true",
                        help="instead of the harness: sweep the reference strength on val-split "
                             "references and choose the default (default --n-val 24)")
    parser.add_argument("--strengths",
                        help="with --reference-sweep: comma-separated strengths from 0 (the "
                             "reference itself) to 1 (text only) (default 0,0.2,0.4,0.6,0.8,1)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--out", required=True, help="results JSON (the .md table goes beside it)")


def run(args: argparse.Namespace) -> int:
    from foley_core.errors import FoleyError
    from foley_lab.evaluation.harness import (EvalConfig, results_to_markdown, run_evaluation,
                                               write_results)

    out = Path(args.out)
    if out.suffix.lower() != ".json":
        raise FoleyError(f"--out must name a .json file (the table goes beside it as .md), "
                         f"got '{args.out}'")
    if out.exists() and out.is_dir():
        raise FoleyError(f"--out '{args.out}' is a folder; give a file name such as "
                         "results/eval.json")
    if args.threads is not None and args.threads < 1:
        raise FoleyError(f"--threads must be at least 1, got {args.threads}")
    if args.strengths is not None and not args.reference_sweep:
        raise FoleyError("--strengths belongs to the reference sweep: add --reference-sweep")
    if args.reference_sweep and args.no_speed:
        raise FoleyError("--no-speed does not apply to --reference-sweep (it measures no speed "
                         "stage); leave it out")
    overrides = {k: getattr(args, k) for k in (
        "n_val", "n_scenes", "n_selectivity", "steps", "text_scale", "video_scale", "seed",
        "scene_seed", "n_boot", "max_val_s")}
    common = {"model": args.model, "weights": args.weights, "device": args.device,
              "speed": not args.no_speed, "tagger_dir": args.tagger, "sfx_root": args.sfx,
              "scenes_dir": args.scenes_dir}
    if args.reference_sweep:
        from foley_lab.evaluation.reference_sweep import (SweepConfig, parse_strengths,
                                                           run_reference_sweep, sweep_to_markdown,
                                                           write_sweep)

        if args.strengths is not None:
            overrides["strengths"] = parse_strengths(args.strengths)
        common.pop("speed")
        if args.quick:
            cfg = SweepConfig.quick_preset(**common, **overrides)
        else:
            cfg = SweepConfig(**common, **{k: v for k, v in overrides.items() if v is not None})
        run_fn, write_fn, markdown_fn = run_reference_sweep, write_sweep, sweep_to_markdown
    else:
        if args.quick:
            cfg = EvalConfig.quick_preset(**common, **overrides)
        else:
            cfg = EvalConfig(**common, **{k: v for k, v in overrides.items() if v is not None})
        run_fn, write_fn, markdown_fn = run_evaluation, write_results, results_to_markdown
    cfg.check()            # bad settings fail before the model and the tagger load

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"[eval] {message}", file=sys.stderr, flush=True)

    import torch

    threads_before = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        results = run_fn(cfg, out_path=out, progress=progress)
    finally:
        torch.set_num_threads(threads_before)
    json_path, md_path = write_fn(results, out)
    print(markdown_fn(results), end="")
    progress(f"wrote {json_path} and {md_path}")
    return 0
