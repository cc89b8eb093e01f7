"""Check simulated-scene timing over many scenes and print violation counts per frame rate.

    python benchmarks/bench_sim_timing.py [--scenes 300]

For random onsets (1-6 in 1, 2, 4 or 8 s) at 4, 10, 20 and 25 fps it measures contacts back from
the masks (mask centroid -> events.visual_contact_times) and counts scenes where a shown target
onset has no measured contact within one frame, a measured target contact has no onset within
one frame, a distractor's measured contacts differ from its listed events, or a distractor
contact is closer than 200 ms to a target onset. Prints also how many contacts were measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_lab.data.simulate import (DISTRACTOR_SEPARATION_S, SoundSpec,  # noqa: E402
                                      mask_centroids, simulate_sounds)
from foley_core.events import visual_contact_times  # noqa: E402


def violations(scene, onsets) -> list[str]:
    frame = 1.0 / scene.fps + 1e-9
    events = scene.target_events_s
    k = np.round(events * scene.fps)
    interior = events[(k >= 1) & (k <= scene.n_frames - 2)]
    seen = visual_contact_times(mask_centroids(scene.masks), scene.fps)
    out = []
    if any(seen.size == 0 or np.min(np.abs(seen - t)) > frame for t in interior):
        out.append("missed target contact")
    if any(events.size == 0 or np.min(np.abs(events - t)) > frame for t in seen):
        out.append("extra target contact")
    for listed, masks in zip(scene.distractor_events_s, scene.distractor_masks):
        d_seen = visual_contact_times(mask_centroids(masks), scene.fps)
        if d_seen.shape != listed.shape or not np.allclose(d_seen, listed):
            out.append("distractor contacts differ from its events")
        if d_seen.size and np.min(np.abs(d_seen[:, None] - onsets[None, :])) < \
                DISTRACTOR_SEPARATION_S - 1e-9:
            out.append("distractor contact near a target onset")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=300)
    args = ap.parse_args()
    rng = np.random.default_rng(123)
    for fps, size in ((4, 96), (10, 64), (20, 64), (25, 96)):
        bad, shown, measured = 0, 0, 0
        kinds: dict[str, int] = {}
        for seed in range(args.scenes):
            duration = float(rng.choice([1.0, 2.0, 4.0, 8.0]))
            onsets = np.sort(rng.uniform(0, duration, size=int(rng.integers(1, 7))))
            scene = simulate_sounds([SoundSpec(onsets)], duration, seed=seed, fps=fps,
                                    size=size)
            found = violations(scene, onsets)
            bad += bool(found)
            for f in found:
                kinds[f] = kinds.get(f, 0) + 1
            shown += scene.target_events_s.size
            measured += sum(d.size for d in scene.distractor_events_s)
        print(f"{fps:2d} fps {size:3d} px: {args.scenes} scenes, {shown} target contacts shown, "
              f"{measured} distractor contacts, scenes with violations: {bad} {kinds or ''}")


if __name__ == "__main__":
    main()
