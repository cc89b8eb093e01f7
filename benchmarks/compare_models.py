"""Model-only path of two or more embedded model folders on the same fixed val subset.

Each folder goes through the evaluation harness (`run_evaluation`) with one config (the same val
items, swapped curves, seeds and held-out scenes; no speed run); its full results are written
beside --out as `<out stem>.<k>_<folder name>.json` (+ .md) and reused when a later call asks for the
same config on the same weights (digest). The summary in --out holds, per folder, the figures of
the model-only path (the harness's "TLM only" row): tagger balanced accuracy, FD, loudness r,
onset F1 and selectivity, and for every folder after the first its paired bootstrap difference
in balanced accuracy against the first (same items), and whether it beats the first on all of
tagger, FD, loudness r and onset F1 while keeping the issue's goals (r >= 0.85, F1 >= 0.8).

    python benchmarks/compare_models.py --weights assets/embedded /work/runs/model7/eval_step1234 \\
        --n-val 48 --n-scenes 12 --n-selectivity 4 --threads 1 --out results/model7_vs_shipped.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core.atomic import write_text_atomic  # noqa: E402
from foley_lab.evaluation import metrics  # noqa: E402
from foley_lab.evaluation.harness import (GOALS, EvalConfig, run_evaluation, weights_digest,  # noqa: E402
                                          write_results)

ROW = "model_tlm"


def _mean(row: dict, key: str):
    value = row.get(key)
    return value.get("mean") if isinstance(value, dict) else value


def summary_of(results: dict) -> dict:
    row = results["rows"][ROW]
    fd = row.get("tagger_fd") or {}
    return {"weights": results["config"]["weights"],
            "weights_digest": results["model"]["weights_digest"],
            "tagger_balanced_accuracy": row.get("tagger_balanced_accuracy"),
            "tagger_accuracy": row.get("tagger_accuracy"),
            "fd": fd.get("fd"), "fd_bootstrap_mean": fd.get("mean"),
            "fd_interval": [fd.get("lo"), fd.get("hi")],
            "loudness_r_mean": _mean(row, "loudness_r"),
            "loudness_r_median": (row.get("loudness_r") or {}).get("median"),
            "onset_f1": _mean(row, "onset_f1"),
            "selectivity_gap": _mean(row, "selectivity_gap"),
            "real_balanced_accuracy": results["rows"]["real"].get("tagger_balanced_accuracy")}


def beats(new: dict, old: dict) -> dict:
    """Per measure: is `new` better than `old` (and the timing goals kept)?"""
    checks = {
        "tagger_balanced_accuracy": new["tagger_balanced_accuracy"] > old["tagger_balanced_accuracy"],
        "fd": new["fd"] < old["fd"],
        "loudness_r": (new["loudness_r_mean"] >= old["loudness_r_mean"]
                       and new["loudness_r_mean"] >= GOALS["loudness_r_tlm"]),
        "onset_f1": new["onset_f1"] >= old["onset_f1"] and new["onset_f1"] >= GOALS["onset_f1"],
    }
    return {**checks, "all": all(checks.values())}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", nargs="+", required=True, help="model folders; the first is the baseline")
    ap.add_argument("--n-val", type=int, default=48)
    ap.add_argument("--n-scenes", type=int, default=12)
    ap.add_argument("--n-selectivity", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=8.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scenes-dir", help="where held-out scenes are cached (default beside --out)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    summaries, per_model = [], []
    for k, weights in enumerate(args.weights):
        cfg = EvalConfig(weights=weights, n_val=args.n_val, n_scenes=args.n_scenes,
                         n_selectivity=args.n_selectivity, max_val_s=args.max_seconds,
                         seed=args.seed, speed=False, scenes_dir=args.scenes_dir)
        path = out.with_name(f"{out.stem}.{k}_{Path(weights).name}.json")
        results = None
        if path.is_file():
            old = json.loads(path.read_text())
            if old.get("config") == json.loads(json.dumps(asdict(cfg))) and \
                    old["model"]["weights_digest"] == weights_digest(weights):
                results = old
                print(f"{weights}: reusing {path}", file=sys.stderr)
        if results is None:
            results = run_evaluation(cfg, out_path=path,
                                     progress=lambda m: print(f"[{Path(weights).name}] {m}",
                                                              file=sys.stderr, flush=True))
            write_results(results, path)
        per_model.append(results)
        summaries.append(summary_of(results) | {"results": str(path)})
    base = per_model[0]
    expected = [item["category"] for item in base["val"]["items"]]
    base_pred = [item["predicted"][ROW] for item in base["val"]["items"]]
    for s, results in zip(summaries[1:], per_model[1:]):
        items = results["val"]["items"]
        if [i["clip_id"] for i in items] != [i["clip_id"] for i in base["val"]["items"]]:
            raise SystemExit("the val items differ between the runs; compare equal configs")
        pred = [item["predicted"][ROW] for item in items]
        s["balanced_minus_first"] = metrics.paired_bootstrap_diff(pred, base_pred, expected,
                                                                  n_boot=1000, seed=args.seed)
        s["beats_first"] = beats(s, summaries[0])
    summary = {"row": ROW, "n_val": len(expected), "n_scenes": args.n_scenes,
               "n_selectivity": args.n_selectivity, "models": summaries}
    write_text_atomic(out, json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
