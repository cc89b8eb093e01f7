#!/usr/bin/env python
"""Batch rendering throughput on Ray: shots per minute with 1 and 2 workers, and Ray's overhead.

    python benchmarks/bench_batch.py [--shots 8] [--seconds 2] [--steps 10] [--threads 1]
        [--model-dir assets/embedded]

Renders the same list of N shots (a generated 160x120 video, N different 2 s selections, one
stem each on the product's default path: the caption retrieves a library clip that the model
reshapes) three ways, each into a fresh folder:
  - a plain loop in this process (model loaded once, `batch.render_shot` per shot);
  - `batch.run_batch` on a local Ray with 1 worker, then with 2 workers.
Every worker gets --threads CPU threads (default 1), so the 1 -> 2 worker ratio shows how the
shots spread over the cores. Prints one JSON object: wall time, steady-state shots/min (from the
first finished shot to the last, i.e. without Ray's start and the model load), the start-up
time (Ray + workers + model), and the per-shot overhead Ray adds over the plain loop.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from foley_core import offline  # noqa: E402

offline.configure()

CAPTIONS = ["a ball bounces on wood", "a door knocks", "footsteps on gravel", "a glass clinks",
            "a book drops on a table", "a hammer hits a nail"]


def shot_list(folder: Path, video: Path, n: int, seconds: float, steps: int) -> Path:
    shots = [{"id": f"s{i:02d}", "video": str(video), "selection": [round(0.25 * i, 3), round(0.25 * i + seconds, 3)],
              "stems": [{"caption": CAPTIONS[i % len(CAPTIONS)], "seed": i, "steps": steps,
                         "mask": {"kind": "box", "box": [20, 20, 100, 100]}}]} for i in range(n)]
    path = folder / "shots.json"
    path.write_text(json.dumps({"shots": shots}))
    return path


def steady_rate(lines: list[dict], finished_at: list[float]) -> float | None:
    """Shots per minute between the first and the last finished shot (start-up excluded)."""
    if len(finished_at) < 2:
        return None
    return 60.0 * (len(finished_at) - 1) / (finished_at[-1] - finished_at[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shots", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="selection length per shot")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per worker (and the plain loop)")
    parser.add_argument("--model-dir", help="embedded model folder (default: assets/embedded)")
    args = parser.parse_args()
    if args.model_dir:
        os.environ["FOLEY_EMBEDDED_DIR"] = str(Path(args.model_dir).absolute())

    import media_fixtures
    import torch

    from foley_core import batch
    from foley_core.backends import get_backend

    work = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    video = media_fixtures.make_video(work / "clip.mp4", seconds=0.25 * args.shots + args.seconds + 0.5)
    listing = shot_list(work, video, args.shots, args.seconds, args.steps)
    shots = batch.load_shot_list(listing)
    result: dict = {"shots": args.shots, "selection_s": args.seconds, "steps": args.steps,
                    "threads_per_worker": args.threads, "cpu_count": os.cpu_count(),
                    "loadavg_at_start": [round(x, 2) for x in os.getloadavg()]}

    # plain loop: this process, the model loaded once
    torch.set_num_threads(args.threads)
    out = work / "loop"
    batch.prepare_outputs(shots, out, listing)
    t0 = time.monotonic()
    get_backend("embedded")
    load_s = time.monotonic() - t0
    finished = []
    for shot in shots:
        line = batch.render_shot(shot.request, out)
        assert line["status"] == "ok", line["error"]
        finished.append(time.monotonic())
    loop_wall = time.monotonic() - t0
    # as for Ray below: from the first finished shot to the last (the first also loads the
    # library's caption index for retrieval)
    loop_per_shot = (finished[-1] - finished[0]) / (len(shots) - 1)
    result["plain_loop"] = {"wall_s": round(loop_wall, 2), "model_load_s": round(load_s, 2),
                            "per_shot_s_steady": round(loop_per_shot, 3),
                            "shots_per_min_steady": round(60.0 / loop_per_shot, 2)}

    for workers in (1, 2):
        out = work / f"ray{workers}"
        stamps: list[float] = []

        def log(message: str) -> None:
            if "shots done" in message:
                stamps.append(time.monotonic())

        t0 = time.monotonic()
        summary = batch.run_batch(listing, batch.BatchOptions(out_dir=str(out), workers=workers,
                                                              threads=args.threads), log=log)
        wall = time.monotonic() - t0
        assert summary["ok"] == len(shots), summary
        lines = [json.loads(x) for x in (out / batch.REPORT_FILE).read_text().splitlines()]
        per_shot = [x["seconds"] for x in lines]
        result[f"ray_{workers}_worker{'s' if workers > 1 else ''}"] = {
            "wall_s": round(wall, 2),
            "startup_s": round(stamps[0] - t0 - per_shot[0], 2),   # Ray + workers + model, before shot 1 ran
            "model_load_s_per_worker": sorted({x["model_load_s"] for x in lines}),
            "shots_per_min_steady": round(steady_rate(lines, stamps), 2),
            "shots_per_min_overall": round(60.0 * len(shots) / wall, 2),
            "render_s_mean_in_worker": round(sum(per_shot) / len(per_shot), 3),
            # wall time per shot between results minus the time render_shot itself took: what
            # Ray adds per shot (submission, scheduling, the result's return, ray.wait)
            "ray_overhead_per_shot_s": round((stamps[-1] - stamps[0]) / (len(stamps) - 1) * workers
                                             - sum(per_shot[1:]) / (len(per_shot) - 1), 3),
        }
    r1, r2 = result["ray_1_worker"], result["ray_2_workers"]
    result["ratio_2_over_1_workers_steady"] = round(r2["shots_per_min_steady"] / r1["shots_per_min_steady"], 2)
    result["ratio_2_over_1_workers_overall"] = round(r2["shots_per_min_overall"] / r1["shots_per_min_overall"], 2)
    # with one worker the shots run back to back, as in the loop: the difference per shot is Ray's
    result["ray_1_worker_minus_loop_per_shot_s"] = round(60.0 / r1["shots_per_min_steady"] - loop_per_shot, 3)
    result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
