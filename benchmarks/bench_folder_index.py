"""Figures for the user's sound folders and the one-shot/sustained filter (prints; never a test).

    PYTHONPATH=. python benchmarks/bench_folder_index.py [--files 500] [--threads 1]

- indexing a folder of N generated WAV/FLAC files (0.3-3 s, 44.1 kHz): the first scan (every file
  read), a rescan with nothing changed (from the on-disk index), a rescan after touching one file;
- a search of the bundled library plus that folder, warm, without and with `kind` (cold: the
  bundled clips' kinds not yet cached; warm: cached).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

WORDS = ("door", "glass", "metal", "wood", "paper", "cloth", "water", "step", "knock", "whoosh", "rattle", "hum")


def make_folder(root: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    sr = 44_100
    for i in range(n):
        seconds = float(rng.uniform(0.3, 3.0))
        t = np.arange(int(seconds * sr)) / sr
        decay = float(rng.choice([0.0, 20.0]))
        audio = (0.3 * rng.standard_normal(t.shape[0]) * np.exp(-t * decay)).astype(np.float32)
        name = "_".join(rng.choice(WORDS, size=2)) + f"_{i:04d}"
        sub = root / f"set{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        sf.write(sub / f"{name}.{'flac' if i % 2 else 'wav'}", audio, sr)
    return root


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp())
    os.environ["FOLEY_CACHE_DIR"] = str(work / "cache")
    from foley_core.library import SoundLibrary

    folder = make_folder(work / "sfx", args.files)
    scan, first_s = timed(lambda: SoundLibrary(bundled=False).index_folder(folder))
    again, rescan_s = timed(lambda: SoundLibrary(bundled=False).index_folder(folder))
    touched = next(folder.rglob("*.wav"))
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    one, touched_s = timed(lambda: SoundLibrary(bundled=False).index_folder(folder))
    print(f"{args.files} files: first index {first_s:.1f} s ({first_s / args.files * 1000:.0f} ms a file; "
          f"new {scan.new}), rescan unchanged {rescan_s:.2f} s (unchanged {again.unchanged}), "
          f"one touched {touched_s:.2f} s (updated {one.updated})")
    lib = SoundLibrary(folders=[folder])
    lib.warm_up()
    queries = ["a door slams", "footsteps on gravel", "glass breaks", "rain on a roof", "a metal rattle"]
    plain = [timed(lambda q=q: lib.search(q, k=10))[1] for q in queries]
    cold = [timed(lambda q=q: lib.search(q, k=10, kind="sustained"))[1] for q in queries]
    warm = [timed(lambda q=q: lib.search(q, k=10, kind="sustained"))[1] for q in queries]
    fresh = SoundLibrary(folders=[folder])          # a new process: kinds from the disk cache
    fresh.warm_up()
    disk = [timed(lambda q=q: fresh.search(q, k=10, kind="oneshot"))[1] for q in queries]
    ms = lambda xs: f"median {np.median(xs) * 1000:.0f} ms"  # noqa: E731
    print(f"search of {len(lib)} clips, k=10: no kind {ms(plain)}; kind=sustained first time {ms(cold)}, "
          f"again {ms(warm)}; kind=oneshot in a new library (kinds from disk) {ms(disk)}")


if __name__ == "__main__":
    main()
