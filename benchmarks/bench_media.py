#!/usr/bin/env python
"""Speed of foley_core.media on the real clips in ../shared/videos (prints a table; no asserts).

    python benchmarks/bench_media.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from foley_core import media  # noqa: E402

VIDEOS = ROOT.parent / "shared" / "videos"


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    clips = sorted(VIDEOS.glob("*.mp4"))
    if not clips:
        print(f"no clips in {VIDEOS}")
        return
    print(f"{'clip':26s} {'dur s':>6s} {'probe ms':>9s} {'4fps/224 s':>11s} {'25fps/224 s':>12s} "
          f"{'frame_at ms':>11s} {'sound16k ms':>11s} {'mux copy s':>10s}")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            def probe_uncached():
                media._probe_cached.cache_clear()
                return media.probe_video(clip)
            t_probe, info = timed(probe_uncached)
            t4, _ = timed(lambda: media.read_frames(clip, fps=4))
            t25, _ = timed(lambda: media.read_frames(clip, fps=25))
            t_at, _ = timed(lambda: media.frame_at(clip, info.duration_s * 0.7))
            t_snd = timed(lambda: media.read_soundtrack(clip))[0] if info.has_audio else float("nan")
            audio = np.zeros(int(info.duration_s * 16000), np.float32)
            t_mux, _ = timed(lambda: media.mux_mp4(clip, audio, 16000, Path(tmp) / "out.mp4"), repeat=1)
            print(f"{clip.stem:26s} {info.duration_s:6.2f} {t_probe * 1e3:9.1f} {t4:11.3f} {t25:12.3f} "
                  f"{t_at * 1e3:11.1f} {t_snd * 1e3:11.1f} {t_mux:10.2f}")

        import media_fixtures as mf
        vp8 = mf.make_video(Path(tmp) / "vp8.webm", seconds=10.0, size=(640, 360), codec="vp8")
        audio = np.zeros(160000, np.float32)
        t_enc, _ = timed(lambda: media.mux_mp4(vp8, audio, 16000, Path(tmp) / "re.mp4"), repeat=1)
        print(f"\nmux with re-encode (VP8 640x360, 10 s -> H.264 CRF 18 'medium'): {t_enc:.2f} s")


if __name__ == "__main__":
    main()
