"""Print speed figures of the training-data path: scene rendering, decoding, onsets, items.

    python benchmarks/bench_data.py [--repeats 30]

- simulate_sounds: ms per scene of 1 s (and 4 s) at 64 px / 20 fps, 96 px / 20 fps and
  224 px / 4 fps, with 0 and 2 distractors (onsets given, as in training: they are cached).
- sound library: FLAC decode vs int16 npz cache per clip, onset detection per second of audio.
- SimSceneDataset: ms per training item (train split, cache warmed, mixes at 10 %).
Single-threaded numpy/OpenCV; figures are medians of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402

from foley_lab.data.simulate import SoundSpec, simulate_sounds  # noqa: E402
from foley_core.events import detect_onsets  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)

    print("simulate_sounds (ms per scene, median)")
    for size, fps in ((64, 20.0), (96, 20.0), (224, 4.0)):
        for duration in (1.0, 4.0):
            for n_d in (0, 2):
                onsets = np.sort(rng.uniform(0, duration, size=int(3 * duration)))
                seeds = iter(range(10_000))
                ms = median_ms(lambda: simulate_sounds([SoundSpec(onsets)], duration,
                                                       seed=next(seeds), fps=fps, size=size,
                                                       n_distractors=n_d), args.repeats)
                print(f"  {size:3d} px {fps:4.0f} fps {duration:3.0f} s, {n_d} distractors: "
                      f"{ms:6.1f} ms")

    if not (SHARED / "sfx" / "manifest.csv").is_file():
        print("no ../shared/sfx: library figures skipped")
        return
    from foley_lab.data.dataset import SimSceneDataset
    from foley_lab.data.sfx import SfxLibrary

    with tempfile.TemporaryDirectory() as cache:
        lib = SfxLibrary(SHARED / "sfx", cache_dir=cache)
        plain = SfxLibrary(SHARED / "sfx")
        clips = lib.clips("train")[:: max(1, len(lib.clips("train")) // 60)]
        t0 = time.perf_counter()
        lib.precompute(clips=clips)
        t_pre = time.perf_counter() - t0
        seconds = sum(c.seconds for c in clips)
        decode = median_ms(lambda: [plain.load(c) for c in clips], 3) / len(clips)
        cached = median_ms(lambda: [lib.load(c) for c in clips], 3) / len(clips)
        audio = [plain.load(c) for c in clips]
        t0 = time.perf_counter()
        for a in audio:
            detect_onsets(a)
        onset_ms_per_s = 1000 * (time.perf_counter() - t0) / seconds
        print(f"library ({len(clips)} train clips, {seconds:.0f} s of audio)")
        print(f"  FLAC decode {decode:.2f} ms/clip, npz cache {cached:.2f} ms/clip "
              f"({decode / cached:.1f}x); precompute incl. onsets {t_pre:.1f} s")
        print(f"  detect_onsets {onset_ms_per_s:.1f} ms per second of audio")

        ds = SimSceneDataset(lib, clips=clips, seed=0)
        ms = median_ms(lambda: [ds[i] for i in range(len(clips))], 3) / len(clips)
        print(f"  SimSceneDataset item (64 px, 20 fps, 1-8 s buckets): {ms:.1f} ms")


if __name__ == "__main__":
    main()
