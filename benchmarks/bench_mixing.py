"""Speed of mixing, mastering, export and project save/load on a synthetic session.

    python benchmarks/bench_mixing.py [--seconds 60] [--stems 8]

Prints one line per operation with wall time (single-threaded numpy/scipy).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from foley_core import export, mixing  # noqa: E402
from foley_core.project import (Autosaver, GenerationRequest, MixSettings, Project, Stem,  # noqa: E402
                                load_project, save_project)


def session(seconds: float, n_stems: int) -> Project:
    rng = np.random.default_rng(0)
    p = Project(name="bench", video_path=None, video_duration_s=seconds)
    for k in range(n_stems):
        length_s = min(seconds, 8.0)
        n = int(length_s * 16_000)
        audio = (0.2 * np.tanh(rng.standard_normal(n)) * np.exp(-np.arange(n) / 8000.0)).astype(np.float32)
        p.add_stem(Stem(audio, 16_000, settings=GenerationRequest(caption=f"sound {k}"),
                        mix=MixSettings(offset_s=(k * seconds / n_stems) % max(seconds - 1, 1), gain_db=-3,
                                        pan=(k % 3 - 1) * 0.5, fade_out_s=0.5)))
    return p


def timed(label: str, fn, *args, **kwargs):
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    print(f"{label:<48s} {time.perf_counter() - t0:7.2f} s")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--stems", type=int, default=8)
    args = parser.parse_args()
    p = session(args.seconds, args.stems)
    print(f"session: {args.seconds:g} s timeline, {args.stems} stems of <= 8 s at 16 kHz, mixed at 48 kHz")
    mix = timed("Project.mix (render + sum, 48 kHz)", p.mix)
    timed("integrated_lufs", mixing.integrated_lufs, mix, 48_000)
    timed("true_peak_dbtp (4x oversampled)", mixing.true_peak_dbtp, mix, 48_000)
    _, r = timed("master -23 LUFS (static gain)", mixing.master, mix, 48_000, target_lufs=-23.0)
    print(f"    limited={r['limited']} lufs_after={r['lufs_after']:.2f} tp_after={r['true_peak_dbtp_after']:.2f}")
    _, r = timed("master -10 LUFS (limiter + search)", mixing.master, mix, 48_000, target_lufs=-10.0)
    print(f"    limited={r['limited']} reduction={r['limiter_reduction_db']:.1f} dB "
          f"lufs_after={r['lufs_after']:.2f} tp_after={r['true_peak_dbtp_after']:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        timed("export_mix_wav (mix + master + 24-bit write)", export.export_mix_wav, p, tmp / "mix.wav")
        timed("export_stems_zip", export.export_stems_zip, p, tmp / "stems.zip")
        timed("save_project (first save)", save_project, p, tmp / "proj")
        timed("load_project", load_project, tmp / "proj")
        saver = Autosaver(tmp / "auto")
        timed("Autosaver.save (first)", saver.save, p)
        p.stems[0].mix.gain_db = -6.0
        timed("Autosaver.save (a mix change only)", saver.save, p)


if __name__ == "__main__":
    main()
