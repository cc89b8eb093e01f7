"""Give a model the VAE decoder fine-tuned by a `--stage decoder` run.

    python scripts/swap_decoder.py DECODER_MODEL_DIR MODEL_DIR OUT_DIR

OUT_DIR is MODEL_DIR (its LDM, MAM, TLM, configs) with DECODER_MODEL_DIR's VAE. Refused unless
both VAEs have the same encoder weights and latent scaling factor: only then are MODEL_DIR's
latents the ones the new decoder was trained to decode. OUT_DIR is written whole or not at all.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core.pipeline import FoleyPipeline  # noqa: E402
from foley_lab.training.trainer import encoder_parts  # noqa: E402


def _encoder_state(pipe: FoleyPipeline) -> dict[str, torch.Tensor]:
    return {f"{i}.{k}": v for i, part in enumerate(encoder_parts(pipe.vae))
            for k, v in part.state_dict().items()}


def swap_decoder(decoder_dir: Path, model_dir: Path, out_dir: Path) -> dict:
    """Write OUT_DIR; return what was swapped. SystemExit with the reason when refused."""
    if out_dir.exists():
        raise SystemExit(f"error: {out_dir} exists; give a new folder")
    source, target = FoleyPipeline.from_pretrained(decoder_dir), FoleyPipeline.from_pretrained(model_dir)
    if source.vae.config.scaling_factor != target.vae.config.scaling_factor:
        raise SystemExit(f"error: the latent scale differs ({source.vae.config.scaling_factor} vs "
                         f"{target.vae.config.scaling_factor}): not the same VAE")
    a, b = _encoder_state(source), _encoder_state(target)
    if a.keys() != b.keys() or any(not torch.equal(a[k], b[k]) for k in a):
        raise SystemExit(f"error: {decoder_dir} and {model_dir} have different VAE encoders; the "
                         "decoder only fits the latents of the encoder it was trained with")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    shutil.copytree(model_dir, tmp, ignore=shutil.ignore_patterns("training_state.pt"))
    shutil.rmtree(tmp / "vae")
    shutil.copytree(decoder_dir / "vae", tmp / "vae")
    if (decoder_dir / "training.json").exists():      # provenance of the decoder's steps
        shutil.copy2(decoder_dir / "training.json", tmp / "decoder_training.json")
    tmp.rename(out_dir)
    return {"out": str(out_dir), "vae_from": str(decoder_dir), "rest_from": str(model_dir)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("decoder_dir", type=Path)
    ap.add_argument("model_dir", type=Path)
    ap.add_argument("out_dir", type=Path)
    args = ap.parse_args(argv)
    print(json.dumps(swap_decoder(args.decoder_dir, args.model_dir, args.out_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
