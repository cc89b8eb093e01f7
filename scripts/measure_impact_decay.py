"""How fast a real impact falls: the figure behind the 'Hits' curve preset's decay.

For every one-shot clip of the starter library's `impact` category (one-shot as the reference
fitting classifies it: library.fit.classify_reference), the level is measured in 10 ms steps
(RMS over 20 ms windows, in dB); the attack is the time from 20 dB below the loudest step up to
it, the fall the time from it down to 20 dB below it. Prints the medians and quartiles
(JSON with --json).

    PYTHONPATH=. python scripts/measure_impact_decay.py
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from foley_core import audio_io
from foley_core.library.fit import classify_reference

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "assets" / "library"
HOP_S, WIN_S = 0.010, 0.020
DROP_DB = 20.0


def level_db(audio: np.ndarray, sr: int) -> np.ndarray:
    hop, win = int(round(HOP_S * sr)), int(round(WIN_S * sr))
    padded = np.concatenate([audio.astype(np.float64), np.zeros(win)])
    frames = np.lib.stride_tricks.sliding_window_view(padded, win)[::hop][: max(1, len(audio) // hop)]
    return 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)


def attack_and_fall_s(audio: np.ndarray, sr: int) -> tuple[float, float] | None:
    """(attack, fall) in seconds, or None when the clip never falls DROP_DB below its peak."""
    db = level_db(audio, sr)
    k = int(np.argmax(db))
    below = db < db[k] - DROP_DB
    after = np.flatnonzero(below[k:])
    if after.size == 0:
        return None
    before = np.flatnonzero(below[:k])
    attack = (k - before[-1]) * HOP_S if before.size else k * HOP_S
    return attack, float(after[0] * HOP_S)


def measure(category: str = "impact") -> dict:
    attacks, falls, skipped = [], [], []
    with open(LIBRARY / "index.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["category"] == category]
    for row in rows:
        audio, sr = audio_io.read_audio(str(LIBRARY / row["file"]), mono=True)
        if classify_reference(audio, sr) != "oneshot":
            skipped.append(row["id"])
            continue
        got = attack_and_fall_s(audio, sr)
        if got is None:
            skipped.append(row["id"])
            continue
        attacks.append(got[0])
        falls.append(got[1])
    q = (lambda xs: [round(float(v), 3) for v in np.percentile(xs, [25, 50, 75])])
    return {"category": category, "clips": len(rows), "measured": len(falls),
            "skipped": len(skipped), "attack_s_q25_median_q75": q(attacks),
            f"fall_{DROP_DB:g}db_s_q25_median_q75": q(falls)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--category", default="impact")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = measure(args.category)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
