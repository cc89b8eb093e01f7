#!/usr/bin/env python
"""Curve following of the default path on a DEV set (never the val set the benchmarks report).

    PYTHONPATH=. python benchmarks/bench_default_dev.py --n 48 [--threads 1] [--variant NAME ...]
        [--json results/default_curve_dev.json]
    PYTHONPATH=. python benchmarks/bench_default_dev.py --split val --n 152 --json results/default_curve_val.json

The dev set: train-split clips of the sfx corpus whose source file is NOT in the bundled
retrieval library (so no item can retrieve itself), chosen round-robin over categories as the
harness chooses val items (`select_val_clips`, seed 0). Each item is set up as the reference
sweep's "default" row sets up a val item: its own caption, the loudness curve of a clip of
another category stretched to its length, conform off, no video; `generate(source="library")`
at the default strength. Per item it records the curve r (`loudness.curve_correlation`, the
sweep's measure) of the fitted reference the model started from, of the model's output (before
the full-band recombination) and of the take (full band, resampled to 16 kHz as the sweep reads
it); the tagger's accuracy on the takes is printed (flattering here: the tagger learned from
train clips; only differences between variants mean anything). r is summarised over items whose
curve spans at least `MIN_CURVE_RANGE` of its peak, as in the sweep.

`--timing` (with `--split val`) instead measures onset F1 the sweep's way for its default row:
each val item's caption on a held-out discrete simulated scene of another clip, the target's
mask, no curve (scenes built or reused under `results/eval_scenes/`).

`--split val` runs the reference sweep's own semantic items instead (val clips, silent ones left
out, the same curves and seeds as its "default" row), for the one final report of a variant chosen
on dev; it is the sweep's default row without its strength rows and timing scenes.

Variants (research switches, set by patching module state; the product has none of them):
  shipped         the default path as it is
  no-shape        the retrieved clip is NOT fitted to the curve before the model
  boost-24        the curve fit may raise quiet stretches by 24 dB (shipped: 12)
  curve-scale-N   curve guidance N instead of the model folder's value (e.g. curve-scale-25)
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from foley_core import offline  # noqa: E402

offline.configure()


def dev_clips(sfx, library_index: Path, manifest: Path) -> list:
    """Train clips whose source file is not in the retrieval library (by id or source path)."""
    rows = list(csv.DictReader(open(library_index, newline="")))
    ids = {r["id"] for r in rows}
    sources = {r["source_path"].split("#")[0] for r in rows}
    source_of = {r["id"]: r["source_path"].split("#")[0] for r in csv.DictReader(open(manifest, newline=""))}
    return [c for c in sfx.clips("train") if c.id not in ids and source_of.get(c.id) not in sources]


def run_variant(name: str, items: list, backend, cfg, library, tagger) -> dict:
    import numpy as np

    from foley_core import fullband, loudness
    from foley_core import generate as generate_module
    from foley_core.constants import MODEL_SR
    from foley_core.library import fit
    from foley_lab.evaluation import metrics
    from foley_lab.evaluation.harness import MIN_CURVE_RANGE, eval_request

    extra: dict = {}
    shape = fit.shape_to_curve
    if name == "no-shape":
        generate_module.shape_to_curve = lambda audio, sr, audio_model, model_sr, curve, **kw: (audio, audio_model)
    elif name.startswith("boost-"):
        generate_module.shape_to_curve = functools.partial(shape, max_boost_db=float(name.split("-", 1)[1]))
    elif name.startswith("curve-scale-"):
        extra["curve_scale"] = float(name.rsplit("-", 1)[1])
    elif name != "shipped":
        raise SystemExit(f"unknown variant {name!r}")
    captured: list = []
    compose = fullband.compose_full_band

    def spy(model_audio, *args, **kw):
        captured.append(np.array(model_audio))
        return compose(model_audio, *args, **kw)

    generate_module.fullband.compose_full_band = spy
    rows, takes = [], []
    t0 = time.perf_counter()
    try:
        for i, (clip, duration_s, curve) in enumerate(items):
            captured.clear()
            result = generate_module.generate(
                eval_request(backend, cfg, seed=i, conform=0.0, source="library", caption=clip.caption,
                             duration_s=duration_s, curve=curve, **extra), library=library)
            n = int(round(duration_s * MODEL_SR))
            take = fullband.to_model_rate(result.audios[0], result.sr, MODEL_SR, n)
            started = fullband.to_model_rate(result.reference_audios[0], result.sr, MODEL_SR, n)
            model = captured[0] if captured else take

            def r(audio):
                return loudness.curve_correlation(audio, MODEL_SR, curve) if np.any(audio) else 0.0

            rows.append({"clip_id": clip.id, "category": clip.category, "duration_s": duration_s,
                         "curve_span": round(float(np.ptp(curve) / max(float(curve.max()), 1e-9)), 4),
                         "reference": result.report.reference.id, "kind": result.report.references[0].kind,
                         "r_reference": round(r(started), 4), "r_model": round(r(model), 4),
                         "r_take": round(r(take), 4)})
            takes.append(take)
            print(f"{name} {i + 1}/{len(items)} {clip.category:10s} {duration_s:4.1f} s "
                  f"{rows[-1]['reference']}: r reference {rows[-1]['r_reference']:.2f}, "
                  f"model {rows[-1]['r_model']:.2f}, take {rows[-1]['r_take']:.2f}", flush=True)
    finally:
        generate_module.shape_to_curve = shape
        generate_module.fullband.compose_full_band = compose
    expected = [c.category for c, _, _ in items]
    predicted = tagger.predict(takes, MODEL_SR)
    counted = [x for x in rows if x["curve_span"] >= MIN_CURVE_RANGE]
    summary = {"variant": name, "n": len(rows), "n_r": len(counted), "seconds": round(time.perf_counter() - t0, 1),
               "tagger_accuracy": metrics.accuracy(predicted, expected),
               "tagger_balanced_accuracy": metrics.balanced_accuracy(predicted, expected)}
    for key in ("r_reference", "r_model", "r_take"):
        values = np.array([x[key] for x in counted])
        summary[key] = {"median": round(float(np.median(values)), 4), "mean": round(float(values.mean()), 4)}
    for row, p in zip(rows, predicted):
        row["predicted"] = p
    print(json.dumps(summary), flush=True)
    return {"summary": summary, "items": rows}


def run_timing(clips: list, backend, library, args) -> dict:
    """Onset F1 of the default path on the reference sweep's timing items (see `--timing`)."""
    import numpy as np

    from foley_core.constants import MODEL_SR
    from foley_lab.data.sfx import SfxLibrary
    from foley_lab.evaluation import metrics
    from foley_lab.evaluation.harness import ensure_scenes, load_masks, scene_dir
    from foley_lab.evaluation.reference_sweep import SweepConfig, _generate_default, _pair_scenes

    cfg = SweepConfig(n_val=args.n, strengths=(0.4,))
    folder = scene_dir(cfg, REPO / "results" / "timing.json")
    manifest = ensure_scenes(cfg, SfxLibrary(None), folder, lambda msg: print(msg, flush=True))
    discrete = [s for s in manifest["scenes"] if s["mode"] == "discrete" and len(s["target_events_s"]) > 0]
    items, t0 = [], time.perf_counter()
    for i, k in enumerate(_pair_scenes([c.id for c in clips], discrete)):
        if k is None:
            continue
        scene, clip = discrete[k], clips[i]
        masks = load_masks(folder, scene["files"]["masks"], "target")
        audio, _, report = _generate_default(backend, cfg, library, seed=cfg.seed + 1000 + i, caption=clip.caption,
                                             video=str(folder / scene["files"]["video"]), mask=masks)
        f1 = metrics.timing_scores(audio, MODEL_SR, np.asarray(scene["target_events_s"], np.float64))["f1"]
        items.append({"clip_id": clip.id, "scene": scene["id"], "reference": report.reference.id, "f1": round(f1, 4)})
        print(f"timing {i + 1}/{len(clips)} {clip.id} on {scene['id']}: F1 {f1:.3f}", flush=True)
    summary = metrics.summarize([x["f1"] for x in items])
    print(json.dumps(summary), flush=True)
    return {"kind": "default_path_timing_val", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "threads": args.threads, "load_avg_end": list(os.getloadavg()),
            "seconds": round(time.perf_counter() - t0, 1), "onset_f1": summary, "items": items}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variant", nargs="+", default=["shipped"])
    parser.add_argument("--weights", default=str(REPO / "assets" / "embedded"))
    parser.add_argument("--split", choices=("dev", "val"), default="dev")
    parser.add_argument("--first", type=int, default=None,
                        help="generate only the first K items (curves are still paired over all --n)")
    parser.add_argument("--timing", action="store_true", help="onset F1 on the sweep's timing scenes (val)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from foley_core.constants import MODEL_SR
    from foley_core.library import default_library
    from foley_lab.data.sfx import SfxLibrary
    from foley_lab.evaluation.harness import (EvalConfig, item_duration_s, load_backend, select_val_clips,
                                              swapped_curves)
    from foley_lab.evaluation.reference_sweep import _is_silent
    from foley_lab.evaluation.references import fit_length
    from foley_lab.evaluation.tagger import DEFAULT_TAGGER_DIR, load_tagger

    sfx = SfxLibrary(None)
    if args.split == "dev":
        pool = dev_clips(sfx, REPO / "assets" / "library" / "index.csv", sfx.root / "manifest.csv")
    else:
        pool = sfx.clips("val")
    clips = select_val_clips(pool, args.n, 0)
    sources = [sfx.load(c) for c in clips]
    durations = [item_duration_s(c.seconds, 1.0, 8.0) for c in clips]
    reals = [fit_length(a, int(round(d * MODEL_SR))) for a, d in zip(sources, durations)]
    # as the sweep: a silent clip is no reference and lends no curve
    keep = [i for i, (a, r) in enumerate(zip(sources, reals)) if not _is_silent(a) and np.any(r)]
    clips, durations, reals = ([x[i] for i in keep] for x in (clips, durations, reals))
    _, curves = swapped_curves(reals, [c.category for c in clips], durations, 0)
    items = list(zip(clips, durations, curves))[: args.first]
    cfg = EvalConfig(n_val=args.n)
    backend = load_backend("embedded", args.weights)
    library, tagger = default_library(), load_tagger(DEFAULT_TAGGER_DIR)
    from foley_lab.evaluation import metrics

    expected = [c.category for c, _, _ in items]
    real_predicted = tagger.predict(reals[: len(items)], MODEL_SR)
    if args.timing:
        results = run_timing(clips[: len(items)], backend, library, args)
        if args.json:
            from foley_core.atomic import write_text_atomic

            write_text_atomic(Path(args.json), json.dumps(results, indent=1) + "\n")
        return 0
    results = {"kind": f"default_path_{args.split}", "split": args.split, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "n": len(items), "threads": args.threads,
               "real_tagger_accuracy": metrics.accuracy(real_predicted, expected),
               "real_tagger_balanced_accuracy": metrics.balanced_accuracy(real_predicted, expected), "load_avg_start": list(os.getloadavg()),
               "variants": {v: run_variant(v, items, backend, cfg, library, tagger) for v in args.variant}}
    results["load_avg_end"] = list(os.getloadavg())
    if args.json:
        from foley_core.atomic import write_text_atomic

        write_text_atomic(Path(args.json), json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
