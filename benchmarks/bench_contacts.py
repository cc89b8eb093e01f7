"""Contacts on real footage and on footage-like simulated scenes: one click -> follow -> contacts.

    python benchmarks/bench_contacts.py --dev        # choose the confidence threshold (DEV scenes)
    python benchmarks/bench_contacts.py              # report: real clips + held-out scenes
    python benchmarks/bench_contacts.py --json results/contacts_bench.json

New path: the object is picked by one click (real clips: the click stored in
benchmarks/data/real_contacts.json; scenes: the target's centre on the middle frame where it is
seen), followed through the clip at the video's own frame rate (`vision.follow.follow`), and
its contacts are `vision.contacts.contact_events` at `CONTACT_THRESHOLD`. Old path: today's
`generate.video_contact_onsets` with a box over the area the object moves through (real clips:
the stored box; scenes: the bounding box of the target's masks, padded by 4 px).

Scenes: `data.simulate.simulate_sounds` (a target with 1-5 contacts in 3 s, 0-2 distractors that
make contacts of their own, 25 fps, 160x120) passed through `foley_lab.synthetic.like_footage`
(camera shake, exposure blur, noise, JPEG, a drifting "hand"), with random strengths. DEV scenes
are seeds 0-139, held-out scenes seeds 1000-1059: the threshold and the tracker's constants
(`vision.follow.WHOLE_FRAC`, `PRIOR_WEIGHT`) are chosen on DEV only. A scene whose target is
never in clear view (under the "hand" in every frame) has no frame to click on and is skipped. Truth and
predictions within 0.1 s of a scene's ends are left out (no method can see a contact without
the path on both sides). F1 is `events.onset_f1` (one-to-one matching) at +-100 and +-40 ms.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from foley_core.atomic import write_text_atomic  # noqa: E402
from foley_lab.data.simulate import SoundSpec, mask_centroids, simulate_sounds  # noqa: E402
from foley_core.events import onset_f1  # noqa: E402
from foley_core.vision.contacts import CONTACT_THRESHOLD, contact_events  # noqa: E402
from foley_core.vision.curves import region_motion  # noqa: E402
from foley_core.vision.follow import follow, track_centres  # noqa: E402
from foley_lab.synthetic import like_footage  # noqa: E402

LABELS = ROOT / "benchmarks" / "data" / "real_contacts.json"
DEV_SEEDS = range(0, 140)
HELD_OUT_SEEDS = range(1000, 1060)
SCENE_S, SCENE_FPS, SCENE_HW = 3.0, 25.0, (120, 160)
EDGE_S = 0.1
TOLS_S = (0.1, 0.04)


def make_scene(seed: int) -> dict | None:
    rng = np.random.default_rng(seed)
    onsets = np.sort(rng.uniform(0.2, SCENE_S - 0.2, size=int(rng.integers(1, 6))))
    scene = simulate_sounds([SoundSpec(onsets)], SCENE_S, seed=seed, fps=SCENE_FPS, size=SCENE_HW)
    frames = like_footage(scene.frames, seed=seed, shake_px=float(rng.uniform(0.5, 2.5)),
                          noise=float(rng.uniform(2, 6)), blur=float(rng.uniform(0.2, 0.6)),
                          jpeg_quality=int(rng.integers(30, 70)), hand=bool(rng.random() < 0.7))
    times = np.arange(scene.n_frames) / scene.fps
    # the click: on the frame nearest the middle where the target is in full view (not under
    # the hand), as a user would pick it
    inside_px = scene.masks > 0.5
    clear = [i for i in range(scene.n_frames) if inside_px[i].sum() >= 4 and np.linalg.norm(
        frames[i][inside_px[i]].mean(axis=0) - scene.frames[i][inside_px[i]].mean(axis=0)) < 30.0]
    if not clear:
        return None          # the target is never in clear view: no frame to click on
    k = int(min(clear, key=lambda i: abs(i - scene.n_frames // 2)))
    click = mask_centroids(scene.masks[k:k + 1])[0]
    ys, xs = np.nonzero(scene.masks.max(axis=0) > 0.5)
    h, w = SCENE_HW
    box = [max(xs.min() - 4, 0), max(ys.min() - 4, 0), min(xs.max() + 5, w), min(ys.max() + 5, h)]
    truth = scene.target_events_s
    truth = truth[(truth >= EDGE_S) & (truth <= SCENE_S - EDGE_S)]
    return {"frames": frames, "times": times, "k": k, "click": click, "box": box, "truth": truth}


def inside(times: np.ndarray, duration_s: float) -> np.ndarray:
    times = np.asarray(times, np.float64)
    return times[(times >= EDGE_S) & (times <= duration_s - EDGE_S)]


def new_path_events(frames, times, k, click) -> list:
    track = follow(frames, times, frame_index=k, point=click)
    return contact_events(track_centres(track, times), times, threshold=0.0)


def scene_rows(seeds) -> list[dict]:
    rows = []
    for seed in seeds:
        sc = make_scene(seed)
        if sc is None:
            continue
        events = new_path_events(sc["frames"], sc["times"], sc["k"], sc["click"])
        old = region_motion(sc["frames"], sc["times"], np.asarray(sc["box"], np.float64)).events_s
        rows.append({"seed": seed, "truth": sc["truth"].tolist(),
                     "events": [(e.time_s, e.confidence) for e in events],
                     "old": inside(old, SCENE_S).tolist()})
    return rows


def pooled_f1(rows: list[dict], key: str, tol_s: float, threshold: float | None = None) -> dict:
    tp = n_pred = n_ref = 0
    for r in rows:
        if key == "events":
            pred = inside([t for t, c in r["events"] if c >= threshold], SCENE_S)
        else:
            pred = np.asarray(r[key])
        f = onset_f1(pred, r["truth"], tol_s=tol_s)
        tp += int(round(f["recall"] * len(r["truth"]))) if len(r["truth"]) else 0
        n_pred += len(pred)
        n_ref += len(r["truth"])
    p = tp / n_pred if n_pred else 0.0
    rc = tp / n_ref if n_ref else 0.0
    return {"precision": p, "recall": rc, "f1": 2 * p * rc / (p + rc) if p + rc else 0.0,
            "n_pred": n_pred, "n_ref": n_ref}


def real_rows(threshold: float) -> list[dict]:
    from foley_core.generate import video_contact_onsets
    from foley_core.request import Region
    from foley_core.media import probe_video, read_frames

    labels = json.loads(LABELS.read_text())
    rows = []
    for clip in labels["clips"]:
        path = (ROOT / clip["file"]).resolve()
        info = probe_video(path)
        t0 = time.perf_counter()
        frames, times = read_frames(path, fps=info.fps, size=None)
        k = int(np.argmin(np.abs(times - clip["click_time_s"])))
        events = new_path_events(frames, times, k, clip["click"])
        elapsed = time.perf_counter() - t0
        pred = [e.time_s for e in events if e.confidence >= threshold]
        old = video_contact_onsets(str(path), info, Region(box=tuple(clip["box"])),
                                   start_s=0.0, duration_s=info.duration_s)
        row = {"clip": clip["clip"], "truth": clip["hits_s"], "pred": pred, "old": old,
               "seconds": elapsed, "n_frames": len(frames)}
        for tol in TOLS_S:
            row[f"new_f1@{int(tol * 1000)}"] = onset_f1(pred, clip["hits_s"], tol_s=tol)["f1"]
            row[f"old_f1@{int(tol * 1000)}"] = onset_f1(old, clip["hits_s"], tol_s=tol)["f1"]
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", action="store_true", help="sweep the threshold on the DEV scenes")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = ap.parse_args()
    if args.dev:
        rows = scene_rows(DEV_SEEDS)
        print(f"DEV scenes (seeds {DEV_SEEDS.start}-{DEV_SEEDS.stop - 1}): threshold -> F1 at +-40 ms / +-100 ms")
        best = max(np.arange(0.05, 0.96, 0.05),
                   key=lambda th: pooled_f1(rows, "events", 0.04, th)["f1"])
        for th in np.arange(0.05, 0.96, 0.05):
            f40 = pooled_f1(rows, "events", 0.04, th)
            f100 = pooled_f1(rows, "events", 0.1, th)
            mark = "  <- best" if abs(th - best) < 1e-9 else ""
            print(f"  {th:.2f}  {f40['f1']:.3f} / {f100['f1']:.3f}  (P {f40['precision']:.2f} "
                  f"R {f40['recall']:.2f}){mark}")
        print(f"best threshold on DEV: {best:.2f} (CONTACT_THRESHOLD is {CONTACT_THRESHOLD})")
        return
    out = {"threshold": CONTACT_THRESHOLD, "real": real_rows(CONTACT_THRESHOLD)}
    print(f"Real clips (one click, threshold {CONTACT_THRESHOLD}):")
    print("| clip | hits | new: found | new F1 +-100 / +-40 ms | old: found | old F1 +-100 / +-40 ms |")
    for r in out["real"]:
        print(f"| {r['clip']} | {len(r['truth'])} | {len(r['pred'])} | {r['new_f1@100']:.2f} / "
              f"{r['new_f1@40']:.2f} | {len(r['old'])} | {r['old_f1@100']:.2f} / {r['old_f1@40']:.2f} |")
        print(f"    labels {r['truth']}  new {[round(t, 3) for t in r['pred']]}  "
              f"old {[round(t, 3) for t in r['old']]}  ({r['n_frames']} frames, {r['seconds']:.1f} s)")
    rows = scene_rows(HELD_OUT_SEEDS)
    out["scenes"] = {}
    print(f"Held-out simulated scenes (seeds 1000-1059, {sum(len(r['truth']) for r in rows)} contacts):")
    for key, name in (("events", "new (click -> follow -> contacts)"), ("old", "old (box -> region motion)")):
        figs = {str(int(tol * 1000)): pooled_f1(rows, key, tol, CONTACT_THRESHOLD) for tol in TOLS_S}
        out["scenes"][key] = figs
        print(f"  {name}: F1 +-100 ms {figs['100']['f1']:.3f} (P {figs['100']['precision']:.2f} "
              f"R {figs['100']['recall']:.2f}), +-40 ms {figs['40']['f1']:.3f}")
    if args.json:
        write_text_atomic(args.json, json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
