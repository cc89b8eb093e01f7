"""Regenerating a span of a take vs regenerating the whole take: time, what is kept, the seam.

A take is made from scratch by the shipped embedded model (caption "knocks on a wooden door",
from-scratch source so no library clip is involved); then a 1 s span in its middle is regenerated
with another seed (`generate(take=..., regenerate_span_s=...)`), and the whole take is generated
again with that seed for comparison. Takes of 8 s (one 8 s model window) and 24 s (four windows,
of which the span touches one or two) are measured.

Figures per take length:
  - whole_s / span_s: seconds for the whole take and for the span (same steps, same machine),
  - windows: model windows run for the span,
  - kept_bit_exact: the output equals the take outside the span, sample for sample,
  - span_gain_db: the level match the splice applied (near 0: the inpainted span already meets
    the take's level at its edges),
  - edge_jump_ratio: the largest |sample difference| around the span's edges over the take's own
    99.9th-percentile |difference| (a hard cut of new audio gives the ratio `naive_jump_ratio`).

    PYTHONPATH=. python benchmarks/bench_span.py [--steps 10] [--span 1.0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from foley_core.generate import generate

CAPTION = "knocks on a wooden door"


def edge_ratio(out: np.ndarray, take: np.ndarray, sr: int, i0: int, i1: int) -> float:
    ref = np.percentile(np.abs(np.diff(np.r_[take[:i0], take[i1:]])), 99.9)
    near = [np.abs(np.diff(out[max(0, i - 480):i + 480])).max() for i in (i0, i1)]
    return float(max(near) / ref)


def measure(duration_s: float, steps: int, span_len_s: float) -> dict:
    common = dict(caption=CAPTION, duration_s=duration_s, source="model", steps=steps)
    take_result = generate(seed=1, **common)
    take, sr = take_result.audios[0], take_result.sr
    frame = sr // 20
    rms = np.sqrt(np.mean(take[:take.size // frame * frame].reshape(-1, frame) ** 2, axis=1))
    loudest_s = (np.argmax(rms) + 0.5) / 20
    start_s = round(float(np.clip(loudest_s - span_len_s / 2, 0.05, duration_s - span_len_s - 0.05)), 3)
    span = (start_s, start_s + span_len_s)
    t0 = time.perf_counter()
    whole = generate(seed=7, **common)
    whole_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = generate(seed=7, take=(take, sr), regenerate_span_s=span, **common)
    span_s = time.perf_counter() - t0
    out = result.audios[0]
    i0, i1 = round(span[0] * sr), round(span[1] * sr)
    naive = take.copy()
    naive[i0:i1] = whole.audios[0][i0:i1]
    return {"take_s": duration_s, "span": list(span), "steps": steps, "whole_s": round(whole_s, 2),
            "span_s": round(span_s, 2), "windows": len(result.report.windows),
            "kept_bit_exact": bool(np.array_equal(out[:i0], take[:i0]) and np.array_equal(out[i1:], take[i1:])),
            "span_gain_db": result.report.span_gain_db[0],
            "edge_jump_ratio": round(edge_ratio(out, take, sr, i0, i1), 3),
            "naive_jump_ratio": round(edge_ratio(naive, take, sr, i0, i1), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--span", type=float, default=1.0, help="span length in seconds")
    parser.add_argument("--lengths", default="8,24", help="take lengths in seconds")
    args = parser.parse_args()
    for length in (float(v) for v in args.lengths.split(",")):
        print(json.dumps(measure(length, args.steps, args.span)), flush=True)


if __name__ == "__main__":
    main()
