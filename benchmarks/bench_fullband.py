"""Full-band takes: what the band above 8 kHz of a reference-guided take looks like, and what it costs.

For N real recordings at 44.1/48 kHz (default: sound files of Debian game packages extracted under
/work/cache/extract; pass --src), each is given to `generate` as the reference (shipped model,
default strength, conform off) with another recording's loudness curve as the requested curve.
The model's own 16 kHz output is captured (`fullband.compose_full_band` is wrapped), so three
takes of the same run are compared against the fitted reference at the take's rate:

  16k        the model's output upsampled (what every take was before: nothing above 8 kHz)
  full       the product's take: model band + the reference's high band gained by the model's
             4-7 kHz level (fullband.compose_full_band), before headroom
  full_flat  the same without the gain envelope (the reference's high band as it is)

Figures per take (median and quartiles over clips):
  hf_db         energy above 8 kHz relative to the fitted reference's (dB)
  lsd_hf_db     log-spectral distance to the fitted reference above 8 kHz (2048-point frames,
                frames where the reference's high band is within 40 dB of its loudest)
  curve_r       Pearson r of the take's loudness curve with the requested curve (conform off)
  hi_follow_r   r of the high band's (> 8 kHz) loudness curve with the model output's
  xover_db      crossover check: the take/reference level ratio (dB) in 6.8-7.4 kHz minus the
                mean of the ratio in 6.0-6.8 and 7.4-8.2 kHz (0 = no notch or bump)
  cont_7_9_db   the ratio in 8-9 kHz minus the ratio in 6-7 kHz (0 = the model band and the
                high band meet at the same level)

    PYTHONPATH=. python benchmarks/bench_fullband.py --n 40 [--src DIR] [--json results/fullband.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core import constants, fullband, loudness  # noqa: E402
from foley_core.audio_io import read_audio, resample  # noqa: E402
from foley_core.library import fit_reference  # noqa: E402

SKIP_PACKAGES = {"ktuberling-data"}      # spoken words, not Foley


def pick_references(src: Path, n: int, duration_s: float) -> list[tuple[Path, np.ndarray, int]]:
    """n recordings at >= 44.1 kHz with real content above 8 kHz (not upsampled narrow-band
    audio), round-robin over packages in a fixed pseudo-random order."""
    by_package: dict[str, list[Path]] = {}
    for p in sorted(src.rglob("*")):
        if p.suffix.lower() not in (".ogg", ".wav", ".flac") or p.relative_to(src).parts[0] in SKIP_PACKAGES:
            continue
        try:
            info = sf.info(p)
        except Exception:        # noqa: BLE001 - a file soundfile cannot read is simply not used
            continue
        if info.samplerate >= 44_100 and 0.3 <= info.duration <= 30:
            by_package.setdefault(p.relative_to(src).parts[0], []).append(p)
    for paths in by_package.values():
        paths.sort(key=lambda q: hashlib.sha1(str(q).encode()).hexdigest())
    picked = []
    queues = [list(v) for _, v in sorted(by_package.items())]
    while len(picked) < n and any(queues):
        for q in queues:
            while q and len(picked) < n:
                p = q.pop(0)
                audio, sr = read_audio(p)
                audio = audio[: int(4 * duration_s * sr)]
                spec = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
                f = np.fft.rfftfreq(audio.size, 1 / sr)
                total = spec.sum()
                if total <= 0 or np.abs(audio).max() < 1e-3:
                    continue
                # at least 1 % of the energy above 8 kHz and some above 12 kHz (true wide band)
                if spec[f >= 8_000].sum() / total < 0.01 or spec[f >= 12_000].sum() / total < 1e-4:
                    continue
                picked.append((p, audio, sr))
                break
    return picked


def caption_of(path: Path) -> str:
    words = re.sub(r"[^a-zA-Z]+", " ", path.stem).strip().lower()
    return words or "a sound"


def band_db(x: np.ndarray, sr: int, lo_hz: float, hi_hz: float) -> float:
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return 10 * np.log10(spec[(f >= lo_hz) & (f < hi_hz)].sum() + 1e-20)


def lsd_hf(x: np.ndarray, ref: np.ndarray, sr: int, lo_hz: float = 8_000, hi_hz: float = 20_000) -> float:
    n_fft, hop = 2048, 512
    win = np.hanning(n_fft)

    def power(y):
        n = 1 + max(0, y.size - n_fft) // hop
        idx = np.arange(n_fft)[None] + hop * np.arange(n)[:, None]
        return np.abs(np.fft.rfft(np.pad(y, (0, n_fft))[idx] * win, axis=1)) ** 2

    f = np.fft.rfftfreq(n_fft, 1 / sr)
    sel = (f >= lo_hz) & (f < min(hi_hz, sr / 2))
    px, pr = power(x.astype(np.float64))[:, sel], power(ref.astype(np.float64))[:, sel]
    frame_e = pr.sum(1)
    keep = frame_e > frame_e.max() * 1e-4
    floor = pr[keep].mean() * 1e-6
    d = 10 * np.log10(px[keep] + floor) - 10 * np.log10(pr[keep] + floor)
    return float(np.mean(np.sqrt(np.mean(d ** 2, axis=1))))


def highpass(x: np.ndarray, sr: int, lo_hz: float) -> np.ndarray:
    spec = np.fft.rfft(x.astype(np.float64))
    spec[np.fft.rfftfreq(x.size, 1 / sr) < lo_hz] = 0
    return np.fft.irfft(spec, n=x.size)


def ratio_db(x, ref, sr, lo, hi):
    return band_db(x, sr, lo, hi) - band_db(ref, sr, lo, hi)


def figures(take: np.ndarray, ref: np.ndarray, sr: int, curve: np.ndarray, model16: np.ndarray) -> dict:
    out = {
        "hf_db": ratio_db(take, ref, sr, 8_000, sr / 2),
        "lsd_hf_db": lsd_hf(take, ref, sr),
        "curve_r": loudness.curve_correlation(take, sr, curve),
    }
    hi = highpass(take, sr, 8_000)
    if np.abs(hi).max() > 1e-6:
        out["hi_follow_r"] = float(np.corrcoef(loudness.relative_loudness(hi, sr),
                                               loudness.relative_loudness(model16, constants.MODEL_SR))[0, 1])
        mid = ratio_db(take, ref, sr, 6_800, 7_400)
        side = 0.5 * (ratio_db(take, ref, sr, 6_000, 6_800) + ratio_db(take, ref, sr, 7_400, 8_200))
        out["xover_db"] = mid - side
        out["cont_7_9_db"] = ratio_db(take, ref, sr, 8_000, 9_000) - ratio_db(take, ref, sr, 6_000, 7_000)
    return out


def summary(values: list[float]) -> str:
    v = np.asarray([x for x in values if np.isfinite(x)])
    if v.size == 0:
        return "n/a"
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return f"{med:+7.2f} [{q1:+.2f}, {q3:+.2f}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="/work/cache/extract")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--duration-s", type=float, default=3.0)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--strength", type=float, default=constants.DEFAULT_REFERENCE_STRENGTH)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    from foley_core.generate import generate

    refs = pick_references(Path(args.src), args.n, args.duration_s)
    print(f"{len(refs)} references from {args.src}: rates "
          f"{sorted({sr for *_, sr in refs})}; {args.duration_s:g} s takes, strength {args.strength}, "
          f"{args.steps} steps, conform off, shipped model")
    captured = {}
    original = fullband.compose_full_band

    def spy(model_audio, model_sr, reference, out_sr, reference_model_rate=None):
        y = original(model_audio, model_sr, reference, out_sr, reference_model_rate)
        captured.update(model=np.array(model_audio), ref_out=np.array(reference),
                        ref16=np.array(reference_model_rate), take=y.copy())
        return y

    fullband.compose_full_band = spy
    rows: dict[str, list[dict]] = {"16k": [], "full": [], "full_flat": []}
    times = {"generate_s": [], "compose_s": []}
    items = []
    for i, (path, audio, sr) in enumerate(refs):
        # the requested curve: another recording's loudness over the take
        other_audio, other_sr = refs[(i + 1) % len(refs)][1:]
        other = fit_reference(other_audio, other_sr, duration_s=args.duration_s, target_sr=constants.MODEL_SR)
        curve = loudness.relative_loudness(other, constants.MODEL_SR)
        if curve.max() <= 0:
            continue
        captured.clear()
        t0 = time.perf_counter()
        result = generate(caption=caption_of(path), duration_s=args.duration_s, reference=(audio, sr),
                          strength=args.strength, steps=args.steps, curve=curve, conform=0.0, seed=i)
        times["generate_s"].append(time.perf_counter() - t0)
        times["compose_s"].append(result.metadata["timings_s"].get("full_band", 0.0))
        out_sr = result.sr
        model16, ref_out = captured["model"], captured["ref_out"]
        up = resample(model16.astype(np.float32), constants.MODEL_SR, out_sr)[: ref_out.size]
        up = np.pad(up, (0, ref_out.size - up.size))
        low, high = fullband.crossover_masks(ref_out.size, out_sr)
        flat = (np.fft.irfft(np.fft.rfft(up.astype(np.float64)) * low, n=up.size)
                + np.fft.irfft(np.fft.rfft(ref_out.astype(np.float64)) * high, n=up.size))
        for name, take in (("16k", up), ("full", captured["take"]), ("full_flat", flat)):
            rows[name].append(figures(np.asarray(take, np.float64), ref_out, out_sr, curve, model16))
        items.append({"file": str(path), "sr": sr, "out_sr": out_sr, "caption": caption_of(path),
                      **{f"{k}_{m}": round(v, 4) for k in rows for m, v in rows[k][-1].items()}})

    print(f"\n{len(items)} clips; median [quartiles] over clips")
    metrics = ["hf_db", "lsd_hf_db", "curve_r", "hi_follow_r", "xover_db", "cont_7_9_db"]
    print(f"{'take':10s} " + " ".join(f"{m:>24s}" for m in metrics))
    for name, rs in rows.items():
        print(f"{name:10s} " + " ".join(f"{summary([r.get(m, np.nan) for r in rs]):>24s}" for m in metrics))
    r16 = np.array([r["curve_r"] for r in rows["16k"]])
    rfull = np.array([r["curve_r"] for r in rows["full"]])
    diff = rfull - r16
    print(f"\ncurve r, full minus 16k: median {np.median(diff):+.4f}, mean {np.mean(diff):+.4f}, "
          f"worst {diff.min():+.4f}")
    print(f"generate (warm after the first): median {np.median(times['generate_s'][1:]):.2f} s per "
          f"{args.duration_s:g} s take; full-band composition median {np.median(times['compose_s']):.3f} s")
    if args.json:
        from foley_core.atomic import atomic_path

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.json) as tmp:
            Path(tmp).write_text(json.dumps({"args": vars(args), "items": items}, indent=1))


if __name__ == "__main__":
    main()
