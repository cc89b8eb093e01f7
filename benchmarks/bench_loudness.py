"""Print speed of loudness_signal / conform and how well conform follows drawn curves.

    python benchmarks/bench_loudness.py [--clips 40]

Speed: wall time for noise of 8 s, 120 s and 600 s at 16 kHz. Fit: Pearson r and MAE between
the relative loudness and a drawn curve (fade-in, three hits, fade-out), before and after
`conform`, over real clips of ../shared/sfx (those of at least 2 s).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core.loudness import (  # noqa: E402
    conform, curve_correlation, curve_mae, curve_times, loudness_signal, n_curve_points,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
SR = 16_000


def drawn_curves(duration_s: float) -> dict[str, np.ndarray]:
    t = curve_times(n_curve_points(duration_s))
    hits = np.max([np.exp(-0.5 * ((t - c * duration_s) / 0.15) ** 2)
                   for c in (0.2, 0.5, 0.8)], axis=0)
    return {"fade-in": t / duration_s, "three-hits": hits, "fade-out": 1 - t / duration_s}


def bench_speed() -> None:
    rng = np.random.default_rng(0)
    print("speed (s)            loudness_signal   conform")
    for seconds in (8, 120, 600):
        x = (0.1 * rng.standard_normal(seconds * SR)).astype(np.float32)
        t0 = time.perf_counter()
        loudness_signal(x)
        t1 = time.perf_counter()
        conform(x, SR, drawn_curves(seconds)["three-hits"])
        t2 = time.perf_counter()
        print(f"  {seconds:4d} s of audio   {t1 - t0:15.3f}   {t2 - t1:7.3f}")


def bench_fit(n_clips: int) -> None:
    import soundfile as sf

    manifest = SHARED / "sfx" / "manifest.csv"
    if not manifest.exists():
        print("fit: ../shared/sfx not present, skipped")
        return
    rows = [r for r in csv.DictReader(open(manifest)) if float(r["seconds"]) >= 2.0]
    rows = rows[:: max(1, len(rows) // n_clips)][:n_clips]
    stats: dict[str, list[tuple[float, float, float, float]]] = {}
    for row in rows:
        audio, sr = sf.read(SHARED / "sfx" / row["file"], dtype="float32")
        for name, target in drawn_curves(audio.shape[0] / sr).items():
            out = conform(audio, sr, target)
            stats.setdefault(name, []).append((
                curve_correlation(audio, sr, target), curve_correlation(out, sr, target),
                curve_mae(audio, sr, target), curve_mae(out, sr, target),
            ))
    print(f"fit over {len(rows)} real clips (median; r >= 0.95 share after conform)")
    print("  curve        r before  r after  MAE before  MAE after  share r>=0.95")
    for name, values in stats.items():
        a = np.array(values)
        med = np.median(a, axis=0)
        print(f"  {name:11s} {med[0]:9.3f} {med[1]:8.3f} {med[2]:11.3f} {med[3]:10.3f}"
              f" {np.mean(a[:, 1] >= 0.95):14.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40)
    args = parser.parse_args()
    bench_speed()
    bench_fit(args.clips)


if __name__ == "__main__":
    main()
