"""Held-out evaluation scenes from the val split, written to a folder with a manifest.

    python -m foley_lab.data.evalset OUT_DIR [--scenes 24] [--selectivity 8] [--seed 0]
                                      [--fps 20] [--size 96] [--sfx ../shared/sfx]

Per scene `scenes/<id>/`: `video.mp4` (silent H.264, what the real pipeline reads: video ->
frames -> MAM), `target.wav` (the reference sound, 16 kHz), `masks.npz` (`target` (T, H, W) and
`distractors` (n, T, H, W), uint8 0..255 = mask * 255). Per selectivity scene `selectivity/<id>/`:
`video.mp4`, `a.wav`, `b.wav`, `mixture.wav`, `masks.npz` (`a`, `b`). `manifest.json` lists every
scene with its clip(s), caption(s), category, licence and attribution, seed, fps, size, event
times, and file names. Seeds are fixed, so a rebuild gives the same scenes. Every file is written
atomically and the manifest last, so a manifest always describes complete scenes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from foley_core.atomic import atomic_path, write_text_atomic
from foley_core.constants import MODEL_SR
from foley_lab.data.augment import bucket_for, random_place
from foley_lab.data.dataset import placed_onsets
from foley_lab.data.sfx import SfxClip, SfxLibrary
from foley_lab.data.simulate import (SimulationError, is_sustained, make_selectivity_scene,
                                      render_scene_video, simulate_sounds, SoundSpec)
from foley_core.errors import FoleyError

__all__ = ["build_eval_set", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.json"
_DISCRETE_FOR_SELECTIVITY = ("impact", "footsteps", "tool", "weapon", "door", "ui", "glass")


def _write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    from foley_core.audio_io import write_wav

    write_wav(path, audio, sr)


def _write_masks(path: Path, **masks: np.ndarray) -> None:
    arrays = {k: np.round(np.clip(v, 0, 1) * 255).astype(np.uint8) for k, v in masks.items()}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def _clip_record(clip: SfxClip) -> dict[str, Any]:
    return {"clip_id": clip.id, "caption": clip.caption, "category": clip.category,
            "licence": clip.licence, "attribution": clip.attribution}


def _floats(x: Any) -> list[float]:
    return [round(float(v), 6) for v in np.asarray(x).reshape(-1)]


def build_eval_set(out_dir: str | os.PathLike, *, library: SfxLibrary | None = None,
                   n_scenes: int = 24, n_selectivity: int = 8, split: str = "val",
                   seed: int = 0, fps: float = 20.0, size: int = 96,
                   max_seconds: float = 4.0) -> dict[str, Any]:
    """Build `n_scenes` single-target scenes and `n_selectivity` two-object scenes from
    `split` clips (at most `max_seconds` long windows) into `out_dir`; returns the manifest."""
    library = library or SfxLibrary()
    out = Path(out_dir)
    clips = library.clips(split)
    rng = np.random.default_rng([seed, 2024])
    manifest: dict[str, Any] = {
        "version": 1, "split": split, "seed": seed, "fps": fps, "size": size, "sr": MODEL_SR,
        "library": str(library.root), "scenes": [], "selectivity": [],
    }
    order = rng.permutation(len(clips))
    for i in range(n_scenes):
        clip = clips[int(order[i % len(clips)])]
        audio = library.load(clip)
        window_s = min(bucket_for(clip.seconds + 0.5), max_seconds)
        placed, offset = random_place(audio, int(round(window_s * MODEL_SR)), rng)
        onsets = placed_onsets(library.onsets(clip), offset / MODEL_SR, window_s)
        from foley_core.loudness import relative_loudness

        spec = SoundSpec(onsets, is_sustained(clip.category, clip.seconds, onsets),
                         relative_loudness(placed, MODEL_SR))
        scene_seed = seed * 100_000 + i
        scene = simulate_sounds([spec], window_s, seed=scene_seed, fps=fps, size=size)
        sid = f"scene_{i:03d}"
        folder = out / "scenes" / sid
        render_scene_video(scene, folder / "video.mp4")
        _write_wav(folder / "target.wav", placed, MODEL_SR)
        _write_masks(folder / "masks.npz", target=scene.masks,
                     distractors=scene.distractor_masks)
        manifest["scenes"].append({
            "id": sid, **_clip_record(clip), "seed": scene_seed, "mode": scene.mode,
            "duration_s": window_s, "offset_s": offset / MODEL_SR, "n_frames": scene.n_frames,
            "target_events_s": _floats(scene.target_events_s),
            "audio_onsets_s": _floats(scene.audio_onsets_s),
            "distractor_events_s": [_floats(d) for d in scene.distractor_events_s],
            "files": {"video": f"scenes/{sid}/video.mp4", "audio": f"scenes/{sid}/target.wav",
                      "masks": f"scenes/{sid}/masks.npz"},
        })

    pool = [c for c in clips if c.category in _DISCRETE_FOR_SELECTIVITY and c.seconds <= 1.5
            and library.onsets(c).size > 0]
    made, attempts = 0, 0
    while made < n_selectivity:
        attempts += 1
        if attempts > 20 * max(1, n_selectivity) or len(pool) < 2:
            raise FoleyError(f"Could only build {made} of {n_selectivity} selectivity scenes "
                             f"from {len(pool)} short discrete clips of split {split!r}.")
        ia, ib = rng.choice(len(pool), size=2, replace=False)
        ca, cb = pool[int(ia)], pool[int(ib)]
        scene_seed = seed * 100_000 + 50_000 + made
        try:
            sel = make_selectivity_scene(
                library.load(ca), library.load(cb), MODEL_SR, seed=scene_seed, fps=fps,
                size=size, duration_s=2.0, onsets_a_s=library.onsets(ca),
                onsets_b_s=library.onsets(cb))
        except SimulationError:
            continue                 # events of this pair cannot be separated: draw another
        sid = f"sel_{made:03d}"
        folder = out / "selectivity" / sid
        render_scene_video(sel, folder / "video.mp4")
        _write_wav(folder / "a.wav", sel.audio_a, MODEL_SR)
        _write_wav(folder / "b.wav", sel.audio_b, MODEL_SR)
        _write_wav(folder / "mixture.wav", sel.mixture, MODEL_SR)
        _write_masks(folder / "masks.npz", a=sel.masks_a, b=sel.masks_b)
        manifest["selectivity"].append({
            "id": sid, "a": _clip_record(ca), "b": _clip_record(cb), "seed": scene_seed,
            "duration_s": 2.0, "offset_a_s": sel.offset_a_s, "offset_b_s": sel.offset_b_s,
            "events_a_s": _floats(sel.events_a_s), "events_b_s": _floats(sel.events_b_s),
            "onsets_a_s": _floats(sel.onsets_a_s), "onsets_b_s": _floats(sel.onsets_b_s),
            "files": {k: f"selectivity/{sid}/{v}" for k, v in (
                ("video", "video.mp4"), ("a", "a.wav"), ("b", "b.wav"),
                ("mixture", "mixture.wav"), ("masks", "masks.npz"))},
        })
        made += 1
    write_text_atomic(out / MANIFEST_NAME, json.dumps(manifest, indent=1))
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m foley_lab.data.evalset",
                                 description="Build the held-out simulated evaluation set.")
    ap.add_argument("out_dir")
    ap.add_argument("--scenes", type=int, default=24)
    ap.add_argument("--selectivity", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fps", type=float, default=20.0)
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--split", default="val")
    ap.add_argument("--sfx", default=None, help="sound library folder (default ../shared/sfx)")
    args = ap.parse_args(argv)
    try:
        m = build_eval_set(args.out_dir, library=SfxLibrary(args.sfx), n_scenes=args.scenes,
                           n_selectivity=args.selectivity, split=args.split, seed=args.seed,
                           fps=args.fps, size=args.size)
    except FoleyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(m['scenes'])} scenes and {len(m['selectivity'])} selectivity scenes "
          f"to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
