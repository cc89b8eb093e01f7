"""`python -m foley_lab train`: train the embedded model (VAE, then the LDM with MAM and TLM).

    python -m foley_lab train --out runs/embedded --stage all --vae-steps 2000 --steps 20000 \\
        [--data sim|sfx|toy] [--sfx-root ../shared/sfx] [--config assets/embedded/config.json] \\
        [--init MODEL_DIR] [--batch-size 16] [--lr 2e-4] [--minutes M] [--checkpoint-every 10] \\
        [--device cpu|cuda] [--export assets/embedded]

Stage "decoder" fine-tunes the VAE's decoder of an --init model with its encoder frozen (the
latents, and so the LDM trained on them, stay valid); it takes --vae-steps and its own --out.

On several processes (CPU or GPUs, one machine or several), start it with accelerate:
    accelerate launch --multi_gpu --num_processes 2 -m foley_lab train --device cpu ...
--batch-size is then the global batch, split evenly over the processes (README, "Training on
several processes").

Data: "sim" = the sound library with simulated audio-visual scenes (foley_lab.data), "sfx" =
library audio only (no video condition), "toy" = synthetic beeps and bursts (smoke runs).
Training resumes from OUT/checkpoint when it exists. Prints one JSON line per log step and a
final JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run folder (checkpoints go to OUT/checkpoint)")
    parser.add_argument("--stage", choices=("vae", "decoder", "ldm", "all"), default="all")
    parser.add_argument("--data", choices=("sim", "sfx", "toy"), default="sim")
    parser.add_argument("--sfx-root", help="sound library folder (default ../shared/sfx); a built "
                        "library's folder (index.csv) also works: its clips that share an id or "
                        "source file with the shared library's val split are left out")
    parser.add_argument("--cache-dir", help="keep decoded 16 kHz copies of the clips (and their "
                        "onsets) here, so epochs after the first skip decoding and resampling")
    parser.add_argument("--config", help="model config JSON for a fresh model (default assets/embedded/config.json)")
    parser.add_argument("--init", help="start from a saved model folder instead of a fresh one")
    parser.add_argument("--steps", type=int, default=20000, help="LDM optimizer steps")
    parser.add_argument("--vae-steps", type=int, default=2000, help="VAE optimizer steps (stages vae, decoder, all)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-batch-seconds", type=float, default=32.0,
                        help="cap batch size x crop length (default 32: 16 x 2 s, 8 x 4 s, 4 x 8 s)")
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--minutes", type=float, help="stop each stage after this many minutes")
    parser.add_argument("--checkpoint-every", type=float, default=10.0, help="minutes between checkpoints")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: accelerate's choice)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint in OUT")
    parser.add_argument("--export", help="also save the final model to this folder (e.g. assets/embedded)")


def _dataset(args, pipe):
    from foley_core.errors import FoleyError
    from foley_lab.training.data import AudioOnlyDataset, ToyClipDataset

    if args.data == "toy":
        return ToyClipDataset(256, duration_s=[1.0, 2.0], frame_size=pipe.frame_size[0], fps=pipe.video_fps)
    from foley_lab.data.sfx import SfxLibrary

    library = SfxLibrary(args.sfx_root, cache_dir=args.cache_dir)
    clips = _train_clips(library)
    if args.data == "sfx":
        from foley_lab.data.augment import SfxAudioDataset

        return AudioOnlyDataset(SfxAudioDataset(library, "train", seed=args.seed, clips=clips))
    from foley_lab.data.dataset import SimSceneDataset

    if pipe.frame_size[0] != pipe.frame_size[1]:
        raise FoleyError("simulated scenes are square; the model's frame size is not")
    return SimSceneDataset(library, "train", seed=args.seed, fps=pipe.video_fps, size=pipe.frame_size[0],
                           clips=clips)


def _train_clips(library):
    """The library's train clips; for a built library (index.csv, no split of its own) without
    any clip of the shared library's val split, which must never be trained on."""
    from foley_core.errors import FoleyError
    from foley_lab.data.sfx import SfxLibrary, default_sfx_root, without_split

    clips = library.clips("train")
    if (library.root / "manifest.csv").is_file():
        return clips
    shared = default_sfx_root()
    if not (shared / "manifest.csv").is_file():
        raise FoleyError(f"'{library.root}' has no split of its own; training on it needs the "
                         f"shared library's manifest ({shared}) to leave its val split out")
    clips, dropped = without_split(clips, SfxLibrary(shared), "val")
    if not clips:
        raise FoleyError(f"'{library.root}' has no clips outside the shared val split")
    _print_row({"library": str(library.root), "train_clips": len(clips),
                "left_out_as_val": len(dropped)})
    return clips


def _print_row(row: dict) -> None:
    # One write per line: with several processes on one pipe, print()'s separate writes of the
    # text and its newline interleave; a single write under PIPE_BUF bytes is atomic.
    sys.stdout.write(json.dumps(row) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace) -> int:
    import torch

    from foley_core.errors import FoleyError
    from foley_core.model.configs import EMBEDDED_CONFIG_PATH
    from foley_core.pipeline import FoleyPipeline
    from foley_lab.training import TrainConfig, find_checkpoint, train

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps < 1 or args.vae_steps < 1 or args.batch_size < 1:
        raise FoleyError("--steps, --vae-steps and --batch-size must be at least 1")
    if args.stage == "decoder" and not args.init and (args.no_resume or find_checkpoint(args.out) is None):
        raise FoleyError("--stage decoder fine-tunes the decoder of a trained model: give it with "
                         "--init MODEL_DIR (or resume a decoder run in --out)")
    if args.init:
        pipe = FoleyPipeline.from_pretrained(args.init)
    else:
        config = Path(args.config) if args.config else EMBEDDED_CONFIG_PATH
        if not config.is_file():
            raise FoleyError(f"model config not found: {config}")
        pipe = FoleyPipeline.from_config(config)
    dataset = _dataset(args, pipe)
    stages = ["vae", "ldm"] if args.stage == "all" else [args.stage]
    summary = {"out": args.out, "stages": {}}
    for stage in stages:
        cfg = TrainConfig(stage=stage, out_dir=args.out, batch_size=args.batch_size, learning_rate=args.lr,
                          max_batch_seconds=args.max_batch_seconds,
                          max_steps=args.steps if stage == "ldm" else args.vae_steps, seed=args.seed,
                          checkpoint_every_min=args.checkpoint_every, max_minutes=args.minutes,
                          num_workers=args.workers, device=args.device, resume=not args.no_resume)
        result = train(pipe, dataset, cfg, on_log=_print_row)
        summary["stages"][stage] = {"steps": result.step, "seconds": round(result.seconds, 1),
                                    "last_loss": result.losses[-1] if result.losses else None,
                                    "checkpoint": result.checkpoint}
    if args.export:
        pipe.save_pretrained(args.export)
        summary["export"] = args.export
    print(json.dumps(summary))
    return 0
