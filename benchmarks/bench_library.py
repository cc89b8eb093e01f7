"""Figures for the starter library and reference fitting (prints; never a test).

    python benchmarks/bench_library.py

- start-up: reading the bundled index (no model), first search (MiniLM load + caption
  embeddings), a warm search;
- classify_reference against the category (which categories come out sustained vs one-shot);
- fit_reference on every bundled clip that auto mode loops, extended to 2.5x its length: the
  largest sample-to-sample jump relative to the clip's own, and the largest step of the 50 ms RMS
  relative to the clip's own, plus the time per fit.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from foley_core.library import SoundLibrary, classify_reference, fit_reference  # noqa: E402

SR = 16_000


def rms_db(y: np.ndarray, win: int = 800) -> np.ndarray:
    n = y.shape[0] // win
    return 20 * np.log10(np.sqrt(np.mean(y[: n * win].reshape(n, win).astype(np.float64) ** 2, axis=1)) + 1e-9)


def main() -> None:
    torch.set_num_threads(1)
    t = time.perf_counter()
    lib = SoundLibrary(cache_dir=Path(tempfile.mkdtemp()))
    print(f"read bundled index: {len(lib)} clips in {time.perf_counter() - t:.3f} s (no model loaded)")
    t = time.perf_counter()
    lib.search("rain on a roof", k=3)
    print(f"first search (MiniLM load + {len(lib)} caption embeddings): {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    for q in ("gunshot", "footsteps on gravel", "a door slams", "wind howling", "crackling fire"):
        lib.search(q, k=10)
    print(f"warm search: {(time.perf_counter() - t) / 5 * 1000:.0f} ms per query")

    kinds: dict[str, list[str]] = defaultdict(list)
    jumps, steps, times = [], [], []
    for e in lib:
        x = lib.load(e.id)
        kind = classify_reference(x, SR)
        kinds[e.category].append(kind)
        if kind != "sustained":
            continue
        t = time.perf_counter()
        y = fit_reference(x, SR, duration_s=2.5 * x.shape[0] / SR)
        times.append(time.perf_counter() - t)
        jumps.append(np.abs(np.diff(y)).max() / np.abs(np.diff(x)).max())
        if x.shape[0] >= 4 * 800:
            steps.append((np.abs(np.diff(rms_db(y[:-800]))).max() - np.abs(np.diff(rms_db(x))).max(), e.id))
    print("\nauto mode, sustained clips per category:")
    for category, ks in kinds.items():
        print(f"  {category:10} {ks.count('sustained'):2d}/{len(ks):2d}")
    print(f"\nlooped {len(jumps)} sustained clips to 2.5x their length:")
    print(f"  max jump / clip's own max jump: median {np.median(jumps):.2f}, max {np.max(jumps):.2f}")
    excess = np.array([v for v, _ in steps])
    print(f"  max 50 ms RMS step minus clip's own (dB): median {np.median(excess):+.2f}, "
          f"90th percentile {np.percentile(excess, 90):+.2f}, max {excess.max():+.2f}")
    print("  largest (sparse clips with silent gaps: an onset after a gap can land after a louder or "
          "quieter part):", ", ".join(f"{i} {v:+.1f}" for v, i in sorted(steps, reverse=True)[:3]))
    print(f"  time per fit: median {np.median(times) * 1000:.1f} ms, max {np.max(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
