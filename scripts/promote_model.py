"""Promote an evaluated training checkpoint to the app's default model folder.

    python scripts/promote_model.py --checkpoint runs/candidates/ldm_4000 \
        --eval results/eval.json --out assets/embedded

The evaluation must have measured exactly these weights (`weights_digest` in its JSON). The
folder gets the weights and configs (not the optimizer state), `trained: true`, and an `obeys`
list derived from the evaluation by `harness.OBEYS_RULE`, with the evidence beside it. Files
already in --out that are not model files (MODEL_CARD.md, TRAINING_DATA.md, config.json) are
kept. The swap is atomic: a failure leaves the previous folder as it was.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_lab.evaluation.harness import instruction_evidence, weights_digest  # noqa: E402

SKIP = {"training_state.pt"}            # optimizer/RNG state: for resuming, not for users
KEEP_FROM_OUT = ("MODEL_CARD.md", "TRAINING_DATA.md", "config.json")


def promote(checkpoint: Path, eval_json: Path, out: Path) -> dict:
    results = json.loads(eval_json.read_text())
    digest = weights_digest(checkpoint)
    measured = (results.get("model") or {}).get("weights_digest")
    if digest is None:
        raise SystemExit(f"error: {checkpoint} holds no safetensors weights")
    if measured != digest:
        raise SystemExit(f"error: {eval_json} measured other weights (digest {measured}) than "
                         f"{checkpoint} ({digest}); evaluate this folder first")
    evidence = results.get("obeys") or instruction_evidence(results)
    obeys = sorted(name for name, ev in evidence.items() if ev.get("obeyed"))

    tmp, old = out.with_name(out.name + ".tmp"), out.with_name(out.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp, ignore=lambda d, names: [n for n in names if n in SKIP])
    for name in KEEP_FROM_OUT:
        if (out / name).exists():
            shutil.copy2(out / name, tmp / name)
    index_path = tmp / "model_index.json"
    index = json.loads(index_path.read_text())
    index["pipeline"].update({
        "trained": True,
        "obeys": obeys,
        "evidence": {name: {k: ev.get(k) for k in ("value", "threshold", "obeyed", "rule")}
                     for name, ev in evidence.items()},
        "evaluated": {"created": results.get("created"), "weights_digest": digest,
                      "settings": {k: results["config"].get(k) for k in
                                   ("n_val", "n_scenes", "n_selectivity", "steps", "seed")}},
    })
    index_path.write_text(json.dumps(index, indent=1) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return {"out": str(out), "obeys": obeys, "weights_digest": digest}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path, required=True, help="evaluated model folder")
    ap.add_argument("--eval", type=Path, required=True, help="results JSON of `python -m foley_lab eval`")
    ap.add_argument("--out", type=Path, default=Path("assets/embedded"))
    args = ap.parse_args(argv)
    print(json.dumps(promote(args.checkpoint, args.eval, args.out), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
