"""Give a model trained without them the newer zero-initialised modules: MAM's sync module and
TLM's onset module, for further training.

    python scripts/attach_modules.py SRC_MODEL_DIR DST_MODEL_DIR

The output generates exactly what the input does (each new module's output layer is zero) and its
config records the modules, so `python -m foley_lab train --init DST_MODEL_DIR` trains them from there.
Optimizer state is not carried over (the parameter set changed).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core.pipeline import FoleyPipeline  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--hidden-dim", type=int, default=64)
    args = ap.parse_args(argv)
    pipe = FoleyPipeline.from_pretrained(args.src)
    attached = []
    if pipe.mam.sync is None:
        pipe.mam.attach_sync(latent_channels=pipe.unet.config.in_channels,
                             latent_fps=pipe.unet.config.latent_fps, hidden_dim=args.hidden_dim)
        attached.append("mam.sync")
    if pipe.tlm.onsets is None:
        pipe.tlm.attach_onsets(hidden_dim=args.hidden_dim)
        attached.append("tlm.onsets")
    if not attached:
        raise SystemExit(f"error: {args.src} already has every module")
    pipe.save_pretrained(args.dst)
    if (args.src / "training.json").exists():          # provenance: the steps behind these weights
        shutil.copy2(args.src / "training.json", args.dst / "parent_training.json")
    print(json.dumps({"out": str(args.dst), "attached": attached}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
