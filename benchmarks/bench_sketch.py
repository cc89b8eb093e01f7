"""Vocal sketch -> stem: do the generated hits land on the performed ones, and does the stem's
loudness follow the voice's?

Sketches are speech, not simulation: syllables ("tuk", "ta", "ka", "pa", "dum", and a hiss
"shh") spoken by espeak-ng (`apt-get install espeak-ng`) at several speeds and voices, placed at
known times on 4-6 s of quiet room noise. A syllable's known hit is where its sound starts (the
first sample above 5 % of its peak, after espeak's lead-in silence). Each sketch goes through the
product path (`sketch.sketch_conditions` -> `generate(curve=..., onsets_s=...)`), with a caption
that suits hits, on the default source (library retrieval + LDM) and from scratch (the model
alone), each with the conform at its default (1.0 with a curve) and off (0: what the model and
the fitted reference give by themselves).

Figures per row, over the sketches:
  - sketch_f1: the sketch's detected onsets against the known hits (+-50 ms): the voice analysis,
  - f1_100 / f1_50: the generated stem's onsets (`events.detect_onsets`) against the known hits,
  - curve_r: Pearson r of the stem's loudness curve (`loudness.relative_loudness`) and the sketch's
    curve (`sketch_conditions`), median over sketches.
Targets: generated F1 >= 0.8 (+-100 ms) and curve r >= 0.8.

    PYTHONPATH=. python benchmarks/bench_sketch.py [--n 12] [--steps 25] [--out results/sketch_bench.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core import audio_io  # noqa: E402
from foley_core.atomic import write_text_atomic  # noqa: E402
from foley_core.constants import MODEL_SR  # noqa: E402
from foley_core.events import detect_onsets, onset_f1  # noqa: E402
from foley_core.loudness import relative_loudness  # noqa: E402
from foley_core.sketch import sketch_conditions  # noqa: E402

PLOSIVES = ("tuk", "ta", "ka", "pa", "dum")
HISS = "shh"
VOICES = ("en", "en+m3", "en+f2", "en-us")
CAPTIONS = ("knocks on a wooden door", "footsteps on a wooden floor", "hammer hits on metal")
ROOM_NOISE_DBFS = -60.0
START_FRACTION = 0.05          # a syllable starts where it first reaches 5 % of its peak


def speak(text: str, voice: str, speed_wpm: int, folder: Path) -> tuple[np.ndarray, float]:
    """(audio at MODEL_SR with espeak's lead-in cut, 0.0 = where the sound starts)."""
    path = folder / f"{text}_{voice}_{speed_wpm}.wav"
    if not path.exists():
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-w", str(path), text],
                       check=True, capture_output=True)
    audio, sr = audio_io.read_audio(path)
    audio = audio_io.resample(audio_io.mono_float(audio), sr, MODEL_SR)
    peak = float(np.max(np.abs(audio)))
    start = int(np.argmax(np.abs(audio) >= START_FRACTION * peak))
    end = len(audio) - int(np.argmax(np.abs(audio[::-1]) >= 0.01 * peak))
    return audio[start:end].astype(np.float32), 0.0


def make_sketch(rng: np.random.Generator, folder: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """(sketch audio, known hit times s, duration s): 3-7 syllables, 0.35-1.0 s apart."""
    duration_s = float(rng.uniform(4.0, 6.0))
    n = int(rng.integers(3, 8))
    voice = str(rng.choice(VOICES))
    speed = int(rng.integers(150, 230))
    audio = rng.normal(0, 10 ** (ROOM_NOISE_DBFS / 20), int(duration_s * MODEL_SR)).astype(np.float32)
    t, hits = float(rng.uniform(0.2, 0.6)), []
    for i in range(n):
        text = HISS if (i == n - 1 and rng.random() < 0.4) else str(rng.choice(PLOSIVES))
        syllable, _ = speak(text, voice, speed, folder)
        i0 = int(t * MODEL_SR)
        if i0 + len(syllable) > len(audio) - int(0.2 * MODEL_SR):
            break
        audio[i0:i0 + len(syllable)] += syllable * float(rng.uniform(0.4, 0.9))
        hits.append(i0 / MODEL_SR)
        t = (i0 + len(syllable)) / MODEL_SR + float(rng.uniform(0.15, 0.6))
    return audio, np.asarray(hits), duration_s


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    a, b = np.asarray(a[:n], float), np.asarray(b[:n], float)
    if n < 5 or a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=12, help="number of sketches")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--paths", default="default,from_scratch",
                    help="which paths to run: default (retrieval + LDM), from_scratch (model only)")
    ap.add_argument("--out", default="results/sketch_bench.json")
    args = ap.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is missing: apt-get install espeak-ng", file=sys.stderr)
        return 2
    import torch

    from foley_core.generate import generate

    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if not paths or set(paths) - {"default", "from_scratch"}:
        print(f"--paths takes default and/or from_scratch; got {args.paths!r}", file=sys.stderr)
        return 2
    rows = {f"{source}_conform_{c}": {"f1_100": [], "f1_50": [], "curve_r": []}
            for source in paths for c in ("default", "off")}
    sketch_f1, per_sketch = [], []
    with tempfile.TemporaryDirectory(prefix="foley-sketch-") as tmp:
        for k in range(args.n):
            audio, hits, duration_s = make_sketch(rng, Path(tmp))
            curve, onsets = sketch_conditions(audio, MODEL_SR, duration_s)
            sketch_f1.append(onset_f1(onsets, hits, tol_s=0.05)["f1"])
            caption = CAPTIONS[k % len(CAPTIONS)]
            entry = {"caption": caption, "duration_s": duration_s, "hits_s": hits.tolist(),
                     "sketch_onsets_s": onsets.tolist(), "rows": {}}
            for source in paths:
                for conform_name, conform in (("default", None), ("off", 0.0)):
                    result = generate(caption=caption, duration_s=duration_s, curve=curve,
                                      onsets_s=onsets, seed=args.seed + k, steps=args.steps,
                                      conform=conform,
                                      source="auto" if source == "default" else "model")
                    take = audio_io.resample(result.audios[0], result.sr, MODEL_SR)
                    got = detect_onsets(take, MODEL_SR)
                    row = rows[f"{source}_conform_{conform_name}"]
                    f100, f50 = onset_f1(got, hits, tol_s=0.1)["f1"], onset_f1(got, hits, tol_s=0.05)["f1"]
                    r = pearson(relative_loudness(take, MODEL_SR), curve)
                    row["f1_100"].append(f100)
                    row["f1_50"].append(f50)
                    row["curve_r"].append(r)
                    entry["rows"][f"{source}_conform_{conform_name}"] = {
                        "onsets_s": got.tolist(), "f1_100": f100, "f1_50": f50, "curve_r": r}
            per_sketch.append(entry)
            print(f"sketch {k + 1}/{args.n}: {len(hits)} hits, sketch F1 {sketch_f1[-1]:.2f}, "
                  + ", ".join(f"{name} F1 {v['f1_100']:.2f} r {v['curve_r']:.2f}"
                              for name, v in entry["rows"].items()), flush=True)

    summary = {"n_sketches": args.n, "steps": args.steps,
               "sketch_onsets_f1_50ms_mean": float(np.mean(sketch_f1)), "rows": {}}
    print(f"\n{args.n} spoken sketches; the voice analysis finds the known hits with F1 "
          f"{np.mean(sketch_f1):.3f} (+-50 ms)")
    print(f"{'row':28s}{'F1 +-100 ms':>14s}{'F1 +-50 ms':>14s}{'curve r (median)':>18s}")
    for name, row in rows.items():
        r = np.array(row["curve_r"])
        summary["rows"][name] = {"f1_100_mean": float(np.mean(row["f1_100"])),
                                 "f1_50_mean": float(np.mean(row["f1_50"])),
                                 "curve_r_median": float(np.nanmedian(r)), "n_curve_r": int(np.isfinite(r).sum())}
        s = summary["rows"][name]
        print(f"{name:28s}{s['f1_100_mean']:>14.3f}{s['f1_50_mean']:>14.3f}{s['curve_r_median']:>18.3f}")
    summary["per_sketch"] = per_sketch
    write_text_atomic(args.out, json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
