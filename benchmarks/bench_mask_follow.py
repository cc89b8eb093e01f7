"""A painted mask carried with the object: mean IoU with the true object mask over the frames.

    PYTHONPATH=. python benchmarks/bench_mask_follow.py            # DEV + held-out, all methods
    PYTHONPATH=. python benchmarks/bench_mask_follow.py --json results/mask_follow.json

Scenes are those of benchmarks/bench_contacts.py (`make_scene`: a target with 1-5 contacts in
3 s, 0-2 distractors, 25 fps, 160x120, passed through `foley_lab.synthetic.like_footage`), whose
true target mask is known on every frame. The true masks are shaken exactly as the frames
(`like_footage` with the scene's seed and shake and no other effect). The "painted" mask is the
true mask (> 0.5) on the frame the bench's click is on, dilated by one pixel (a brush is not
exact). It is then
- fixed: kept on that frame's pixels for the whole clip (what the studio did before);
- box: `vision.mask_follow` "box" (moved with the followed box);
- flow: `vision.mask_follow` "flow" (warped frame to frame by DIS optical flow);
- oracle: the paint moved by the true mask's centroid shift (the best any moving of this paint
  can do: what is left is the brush's extra pixel and the sub-pixel edges).
The score of a scene is the mean over frames where the target is visible (true mask > 0.5 on
at least 4 pixels) of IoU(propagated > 0.5, true > 0.5); the table gives the mean over scenes.
The default method is chosen on DEV (seeds 0-139) and reported on held-out (seeds 1000-1059).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_contacts import DEV_SEEDS, HELD_OUT_SEEDS, SCENE_HW, SCENE_S, SCENE_FPS  # noqa: E402
from foley_core.atomic import write_text_atomic  # noqa: E402
from foley_core.vision.mask_follow import MASK_METHODS, follow_mask, move_by_box  # noqa: E402
from foley_core.vision.tracks import track_masks  # noqa: E402
from foley_lab.data.simulate import SoundSpec, mask_centroids, simulate_sounds  # noqa: E402
from foley_lab.synthetic import like_footage  # noqa: E402


def scene_with_masks(seed: int) -> dict | None:
    """bench_contacts.make_scene's scene, with its true masks shaken like its frames."""
    rng = np.random.default_rng(seed)
    onsets = np.sort(rng.uniform(0.2, SCENE_S - 0.2, size=int(rng.integers(1, 6))))
    scene = simulate_sounds([SoundSpec(onsets)], SCENE_S, seed=seed, fps=SCENE_FPS, size=SCENE_HW)
    shake_px, noise, blur = (float(rng.uniform(0.5, 2.5)), float(rng.uniform(2, 6)),
                             float(rng.uniform(0.2, 0.6)))
    jpeg, hand = int(rng.integers(30, 70)), bool(rng.random() < 0.7)
    frames = like_footage(scene.frames, seed=seed, shake_px=shake_px, noise=noise, blur=blur,
                          jpeg_quality=jpeg, hand=hand)
    grey = np.repeat((scene.masks[..., None] * 255).astype(np.uint8), 3, axis=-1)
    truth = like_footage(grey, seed=seed, shake_px=shake_px, noise=0.0, blur=0.0,
                         jpeg_quality=100, hand=False)[..., 0] > 127
    times = np.arange(scene.n_frames) / scene.fps
    inside_px = scene.masks > 0.5
    clear = [i for i in range(scene.n_frames) if inside_px[i].sum() >= 4 and np.linalg.norm(
        frames[i][inside_px[i]].mean(axis=0) - scene.frames[i][inside_px[i]].mean(axis=0)) < 30.0]
    if not clear:
        return None
    k = int(min(clear, key=lambda i: abs(i - scene.n_frames // 2)))
    painted = cv2.dilate(truth[k].astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
    return {"frames": frames, "times": times, "k": k, "truth": truth, "painted": painted}


def mean_iou(pred: np.ndarray, truth: np.ndarray) -> float:
    ious = []
    for p, t in zip(pred > 0.5, truth):
        if t.sum() < 4:
            continue
        ious.append((p & t).sum() / max((p | t).sum(), 1))
    return float(np.mean(ious)) if ious else float("nan")


def scene_scores(sc: dict) -> dict:
    h, w = SCENE_HW
    out = {"fixed": mean_iou(np.repeat(sc["painted"][None], len(sc["frames"]), axis=0), sc["truth"])}
    centres = mask_centroids(sc["truth"].astype(np.float32))
    k = sc["k"]
    src = np.array([0.0, 0.0, 1.0, 1.0])
    oracle = np.zeros(sc["truth"].shape, np.float32)
    for i in np.flatnonzero(np.isfinite(centres[:, 0])):
        oracle[i] = move_by_box(sc["painted"], src, src + np.tile(centres[i] - centres[k], 2))
    out["oracle"] = mean_iou(oracle, sc["truth"])
    for method in MASK_METHODS:
        t0 = time.perf_counter()
        track = follow_mask(sc["frames"], sc["times"], sc["painted"], frame_index=sc["k"], method=method)
        masks = track_masks(track, sc["times"], w, h)
        out[method] = mean_iou(masks, sc["truth"])
        out[f"{method}_s"] = time.perf_counter() - t0
    return out


def run(seeds) -> list[dict]:
    rows = []
    for seed in seeds:
        sc = scene_with_masks(seed)
        if sc is not None:
            rows.append({"seed": seed, **scene_scores(sc)})
    return rows


def summary(rows: list[dict]) -> dict:
    keys = ["fixed", *MASK_METHODS, "oracle"]
    return {"n_scenes": len(rows),
            **{k: float(np.nanmean([r[k] for r in rows])) for k in keys},
            **{f"{k}_below_0.5": int(sum(r[k] < 0.5 for r in rows)) for k in keys},
            **{f"{m}_s_per_scene": float(np.mean([r[f"{m}_s"] for r in rows])) for m in MASK_METHODS}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the per-scene rows and the summary here")
    ap.add_argument("--dev-only", action="store_true")
    args = ap.parse_args()
    report = {"dev": summary(run(DEV_SEEDS))}
    print("DEV", json.dumps(report["dev"], indent=1))
    if not args.dev_only:
        report["held_out"] = summary(run(HELD_OUT_SEEDS))
        print("HELD-OUT", json.dumps(report["held_out"], indent=1))
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
