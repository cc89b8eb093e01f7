#!/usr/bin/env python
"""Speed and memory of the shipped embedded model on this machine.

    python benchmarks/bench_generate.py [--threads 2] [--seconds 8] [--steps 25] [--warm 3]
        [--no-train] [--no-branches] [--json results/bench_generate.json]

Prints (and with --json writes), for an 8 s selection of a real video with caption, box mask and
loudness curve, 25 DPM-Solver++ steps and dual CFG:
  - wall time per stage (retrieval, reference fit, text encode, video read/encode, denoise,
    decode, vocoder, full-band join, conform), real-time factor and peak RSS, for the DEFAULT
    PATH (the caption retrieves library clips, which are fitted to the onsets and the curve and
    reshaped by the model at the default strength; retrieval is inside the timed call) cold,
    then warm (`--warm` runs, new seeds, cached encodings), then from scratch (the model alone);
    the machine's load average before and after each run (the figure assumes an idle machine);
  - the denoising time with the three CFG branches batched in one UNet call vs three calls;
  - training seconds per step at batch 16 on 1, 2 and 4 s crops on ONE thread.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from foley_core import offline  # noqa: E402

offline.configure()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--video", default=str(REPO.parent / "shared" / "videos" / "renpy_oa4_launch.mp4"))
    parser.add_argument("--repeats", type=int, default=2, help="runs per branch mode")
    parser.add_argument("--warm", type=int, default=1, help="warm default-path runs after the cold one")
    parser.add_argument("--no-train", action="store_true", help="skip the training step timing")
    parser.add_argument("--no-branches", action="store_true", help="skip the batched vs sequential CFG timing")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from foley_core.backends import clear_backends, get_backend
    from foley_core.generate import generate
    from foley_core.request import Region

    os.environ.pop("FOLEY_EMBEDDED_DIR", None)
    clear_backends()
    t0 = time.perf_counter()
    backend = get_backend("embedded")
    load_s = time.perf_counter() - t0
    pipe = backend.pipeline
    n_params = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) / 1e6
                for name in ("vae", "unet", "mam", "tlm")}
    print(f"model: {backend.description}; params (M): " + ", ".join(f"{k} {v:.2f}" for k, v in n_params.items()))
    print(f"threads: {torch.get_num_threads()}, model load: {load_s:.2f} s, "
          f"machine load average (1/5/15 min): {os.getloadavg()}")

    video = args.video if Path(args.video).is_file() else None
    duration = args.seconds
    curve = (0.2 + 0.8 * np.abs(np.sin(np.linspace(0, 3 * np.pi, round(duration * 10))))).astype(np.float32)
    kw = dict(caption="a rocket engine roars", negative_caption="speech", curve=curve, steps=args.steps,
              duration_s=duration)
    if video:
        kw.update(video=video, start_s=0.0, mask=Region(box=(100, 40, 300, 200)))
    else:
        print("(shared video not found: text + curve only)")

    runs = [("first run, default path: retrieval + model (cold caches)", 0, "auto")]
    runs += [(f"warm run {k + 1}, default path (cached encodings, new seed)", 1 + k, "auto")
             for k in range(max(1, args.warm))]
    runs.append(("from scratch: the model alone (cached encodings)", 1 + max(1, args.warm), "model"))
    stages = ["load_model", "retrieve", "reference", "video_onsets", "read_video", "masks", "text_encode",
              "video_encode", "reference_encode", "denoise", "decode", "vocoder", "join", "conform"]
    records = []
    for label, seed, source in runs:
        load_before = os.getloadavg()
        t0, c0 = time.perf_counter(), time.process_time()
        result = generate(seed=seed, source=source, **kw)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        timings = result.metadata["timings_s"]
        reference = result.report.reference
        print(f"\n{label}: {wall:.2f} s wall ({cpu:.2f} s CPU over all threads) for {duration:g} s "
              f"-> real-time factor {wall / duration:.3f}; load average before {load_before[0]:.2f}")
        if reference is not None:
            print(f"  from library clip {reference.id} ({result.sr} Hz take, strength {result.report.strength:g})")
        for stage in stages:
            if stage in timings:
                print(f"  {stage:16s} {timings[stage]:7.3f} s")
        print(f"  curve r before/after conform: {result.metadata['curve_r_before']} / "
              f"{result.metadata['curve_r_after']}")
        print(f"  peak RSS so far: {peak_rss_mb():.0f} MB")
        records.append({"label": label, "source": source, "seed": seed, "wall_s": round(wall, 3),
                        "cpu_s": round(cpu, 3), "timings_s": {k: round(float(v), 4) for k, v in timings.items()},
                        "reference": None if reference is None else reference.id, "sr": int(result.sr),
                        "load_avg_before": list(load_before), "load_avg_after": list(os.getloadavg())})
    warm = [r["wall_s"] for r in records if r["label"].startswith("warm")]
    print(f"\ndefault path, warm, retrieval included: median {float(np.median(warm)):.2f} s, "
          f"min {min(warm):.2f} s over {len(warm)} runs ({duration:g} s stem, {args.threads} threads)")
    summary = {"what": "one stem from generate(): the default path (retrieval + reference fit + model "
                       "at the default strength + full band) cold and warm, then from scratch",
               "seconds": duration, "steps": args.steps, "threads": args.threads, "video": video,
               "default_warm_median_s": round(float(np.median(warm)), 3), "default_warm_min_s": min(warm),
               "runs": records}

    # batched 3-branch CFG step vs three calls, same inputs, same process
    frames = masks = None
    if video and not args.no_branches:
        from foley_core import media

        frames, _ = media.read_frames(video, fps=pipe.video_fps, size=pipe.frame_size, duration_s=duration)
        masks = np.zeros(frames.shape[:3], np.float32)
        masks[:, 10:50, 20:60] = 1
    times = {}
    for mode in () if args.no_branches else ("batched", "sequential", "batched", "sequential")[: 2 * args.repeats]:
        out = pipe(duration_s=duration, caption="a rocket engine roars", frames=frames, masks=masks,
                   video_cache_key=("bench",), curve=curve, seeds=[0], num_inference_steps=args.steps,
                   branch_mode=mode)
        times.setdefault(mode, []).append(out.timings_s["denoise"])
    if times:
        batched, sequential = min(times["batched"]), min(times["sequential"])
        n_branches = 3 if video else 2
        print(f"\ndenoise {args.steps} steps x {n_branches} CFG branches: batched {batched:.2f} s "
              f"({batched / args.steps * 1000:.0f} ms/step), three calls {sequential:.2f} s "
              f"({sequential / args.steps * 1000:.0f} ms/step); speed ratio three-calls/batched = "
              f"{sequential / batched:.2f} (default: {pipe.config['branch_mode']})")
        summary.update(batched_denoise_s=batched, sequential_denoise_s=sequential)

    if not args.no_train:
        from foley_lab.training import ClipCollator, ToyClipDataset, ldm_loss
        from foley_lab.training.trainer import _noise_scheduler

        torch.set_num_threads(1)
        ns = _noise_scheduler(pipe)
        params = [p for m in (pipe.unet, pipe.mam, pipe.tlm) for p in m.parameters()]
        opt = torch.optim.AdamW(params, lr=1e-4)
        collate = ClipCollator(video_fps=pipe.video_fps, frame_size=pipe.frame_size)
        print("\ntraining step (LDM + MAM + TLM, video, ONE thread):")
        for crop_s, batch_size in ((1.0, 16), (2.0, 16), (4.0, 16), (4.0, 8), (8.0, 4)):
            ds = ToyClipDataset(batch_size, duration_s=crop_s, frame_size=pipe.frame_size[0], fps=pipe.video_fps)
            batch = collate([ds[i] for i in range(batch_size)])
            step_times, cpu_times = [], []
            for _ in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                loss = ldm_loss(pipe, batch, noise_scheduler=ns, p_drop={"text": 0.15, "video": 0.15, "curve": 0.15})
                loss.backward()
                opt.step()
                opt.zero_grad()
                step_times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
            print(f"  batch {batch_size:2d} x {crop_s:g} s crops: {min(step_times[1:]):.2f} s/step wall, "
                  f"{min(cpu_times[1:]):.2f} s CPU")
        opt.zero_grad(set_to_none=True)
    print(f"\npeak RSS: {peak_rss_mb():.0f} MB")
    summary.update(peak_rss_mb=round(peak_rss_mb()), model=backend.description)
    if args.json:
        from foley_core.atomic import write_text_atomic

        write_text_atomic(Path(args.json), json.dumps(summary, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
