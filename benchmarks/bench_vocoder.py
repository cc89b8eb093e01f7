"""Griffin-Lim against the trained Vocos vocoder on VAL clips of the sound library (never train).

Each val clip (up to `--max-s` seconds) goes audio -> `MelSpectrogram()` -> vocoder -> audio, and
is compared with the original waveform:

  - mrstft_logmag: multi-resolution STFT log-magnitude L1 to the original (FFT 256/512/1024/2048,
    hop n_fft/4, magnitudes floored at 1e-5 like the mel), natural-log units; lower is better,
    and the same with magnitudes floored 80 dB below the original's loudest bin (mrstft_logmag_top80),
  - mel_l1: L1 between the input normalised log-mel and the re-analysed output's (mel
    consistency, normalised units, the mel's range is [-1, 1]); lower is better,
  - loudness_r: Pearson r of `loudness_signal` curves (10 points/s) of output and original, over
    clips with >= 5 curve points and a non-constant curve; higher is better,
  - tagger balanced accuracy of the vocoded clips' predicted categories (the original clips'
    accuracy is the ceiling), higher is better,
  - seconds per 8 s of audio on one thread (median of 3 runs after a warm-up), parameters.

Means come with 95% bootstrap CIs over clips, and each metric with a paired bootstrap CI of the
difference (trained - Griffin-Lim): a vocoder "wins" a metric only if that CI excludes 0.
Note that the trained vocoder was optimised for STFT log-magnitudes (at FFT 512/1024/2048) and
mel L1, so those two metrics are close to its training loss; loudness r and the tagger are not.

    python benchmarks/bench_vocoder.py --weights runs/vocoder/model --n-val 60 \
        --out results/vocoder_bench.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from foley_core.atomic import write_text_atomic  # noqa: E402
from foley_lab.data.sfx import SfxLibrary  # noqa: E402
from foley_core.loudness import loudness_signal  # noqa: E402
from foley_core.model.mel import MelSpectrogram  # noqa: E402
from foley_core.model.vocoder import vocoder_from_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHIPPED_VOCODER = REPO / "assets" / "embedded" / "vocoder" / "config.json"
FFT_SIZES = (256, 512, 1024, 2048)
LOG_FLOOR = 1e-5
MIN_CURVE_POINTS = 5


def mrstft_logmag_distance(pred: np.ndarray, target: np.ndarray, top_db: float | None = None) -> float:
    """Mean over FFT sizes of mean |ln|S_pred| - ln|S_target||, magnitudes floored at 1e-5, or,
    with `top_db`, at `top_db` dB below the original's loudest bin at that FFT size (librosa's
    amplitude_to_db(ref=max, top_db) convention: differences far below the clip's level do not
    count)."""
    p, t = torch.from_numpy(pred)[None], torch.from_numpy(target)[None]
    out = []
    for n_fft in FFT_SIZES:
        w = torch.hann_window(n_fft)
        sp = torch.stft(p, n_fft, n_fft // 4, window=w, return_complex=True).abs()
        st = torch.stft(t, n_fft, n_fft // 4, window=w, return_complex=True).abs()
        floor = LOG_FLOOR if top_db is None else max(LOG_FLOOR, float(st.max()) * 10 ** (-top_db / 20))
        out.append(float((sp.clamp_min(floor).log() - st.clamp_min(floor).log()).abs().mean()))
    return float(np.mean(out))


def loudness_r(pred: np.ndarray, target: np.ndarray) -> float:
    """Pearson r of the loudness curves, NaN if too short or flat to define it."""
    a, b = loudness_signal(pred), loudness_signal(target)
    if a.size < MIN_CURVE_POINTS or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def select_val_clips(library: SfxLibrary, n_val: int, seed: int) -> list:
    """`n_val` val clips, round-robin over categories (shuffled within each), so that every
    category is represented for the tagger's balanced accuracy."""
    rng = np.random.default_rng(seed)
    by_cat = {}
    for clip in library.clips(split="val"):
        by_cat.setdefault(clip.category, []).append(clip)
    queues = {c: [clips[i] for i in rng.permutation(len(clips))] for c, clips in sorted(by_cat.items())}
    chosen = []
    while len(chosen) < n_val and any(queues.values()):
        for cat in sorted(queues):
            if queues[cat] and len(chosen) < n_val:
                chosen.append(queues[cat].pop())
    return chosen


def _bootstrap_ci(values: np.ndarray, rng: np.random.Generator, n_boot: int = 2000,
                  stat=np.mean) -> list[float]:
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    boots = np.array([stat(values[i]) for i in idx]) if stat is not np.mean else values[idx].mean(axis=1)
    return [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))]


def _balanced_accuracy(pred: np.ndarray, true: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[true == c] == c) for c in np.unique(true)]))


def _timing(vocoder, mel: MelSpectrogram, audio_8s: np.ndarray) -> float:
    m = mel(torch.from_numpy(audio_8s))
    vocoder(m, audio_8s.shape[0])
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        vocoder(m, audio_8s.shape[0])
        runs.append(time.perf_counter() - t0)
    return float(np.median(runs))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="runs/vocoder/model", help="trained vocoder folder")
    ap.add_argument("--n-val", type=int, default=60)
    ap.add_argument("--max-s", type=float, default=8.0, help="clips are cut to this length (s)")
    ap.add_argument("--sfx", default=None, help="sound library folder (default ../shared/sfx)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gl-iters", default="64,128",
                    help="more Griffin-Lim iteration counts to compare with the shipped one "
                         "(comma-separated; '' for none)")
    ap.add_argument("--out", default="results/vocoder_bench.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from foley_lab.evaluation.tagger import load_tagger

    mel = MelSpectrogram()
    weights = Path(args.weights)
    shipped = json.loads(SHIPPED_VOCODER.read_text())
    vocoders = {"griffin_lim": vocoder_from_config(shipped, mel)}
    for n_iter in [int(x) for x in args.gl_iters.split(",") if x.strip()]:
        vocoders[f"griffin_lim_{n_iter}"] = vocoder_from_config({**shipped, "n_iter": n_iter}, mel)
    if (weights / "config.json").is_file():
        vocoders["vocos"] = vocoder_from_config(json.loads((weights / "config.json").read_text()),
                                                mel, weights)
    else:
        print(f"no trained vocoder at {weights}: comparing Griffin-Lim settings only")
    library = SfxLibrary(args.sfx)
    clips = select_val_clips(library, args.n_val, args.seed)
    originals = []
    for clip in clips:
        audio = library.load(clip)[: int(args.max_s * mel.config.sr)]
        originals.append(np.ascontiguousarray(audio, dtype=np.float32))

    per_clip = {name: {"mrstft_logmag": [], "mrstft_logmag_top80": [], "mel_l1": [],
                      "loudness_r": []} for name in vocoders}
    outputs = {name: [] for name in vocoders}
    for audio in originals:
        with torch.no_grad():
            m = mel(torch.from_numpy(audio))
        for name, vocoder in vocoders.items():
            out = vocoder(m, audio.shape[0])[0]
            outputs[name].append(out)
            with torch.no_grad():
                per_clip[name]["mel_l1"].append(float((mel(torch.from_numpy(out)) - m).abs().mean()))
            per_clip[name]["mrstft_logmag"].append(mrstft_logmag_distance(out, audio))
            per_clip[name]["mrstft_logmag_top80"].append(mrstft_logmag_distance(out, audio, top_db=80.0))
            per_clip[name]["loudness_r"].append(loudness_r(out, audio))

    tagger = load_tagger()
    truth = np.array([c.category for c in clips])
    correct = {"original": np.array(tagger.predict(originals))}
    for name in vocoders:
        correct[name] = np.array(tagger.predict(outputs[name]))

    rng = np.random.default_rng(args.seed)
    results: dict = {"n_clips": len(clips), "max_s": args.max_s, "weights": str(weights),
                     "total_audio_s": round(sum(a.shape[0] for a in originals) / mel.config.sr, 2),
                     "fft_sizes": list(FFT_SIZES), "vocoders": {}, "paired_differences": {}}
    audio_8s = np.concatenate(originals)[: 8 * mel.config.sr]
    audio_8s = np.pad(audio_8s, (0, 8 * mel.config.sr - audio_8s.shape[0]))
    for name, vocoder in vocoders.items():
        row = {}
        for metric, values in per_clip[name].items():
            v = np.array(values)
            v = v[np.isfinite(v)]
            row[metric] = {"mean": float(v.mean()), "ci95": _bootstrap_ci(v, rng), "n": int(v.size)}
        pred = correct[name]
        row["tagger_balanced_accuracy"] = {
            "mean": _balanced_accuracy(pred, truth),
            "ci95": _bootstrap_ci(np.arange(len(truth)), rng, 1000,
                                  stat=lambda i: _balanced_accuracy(pred[i], truth[i]))}
        row["s_per_8s_audio_1thread"] = _timing(vocoder, mel, audio_8s)
        row["n_parameters"] = int(getattr(vocoder, "n_parameters", 0))
        row["config"] = vocoder.config
        results["vocoders"][name] = row
    results["vocoders"]["original"] = {"tagger_balanced_accuracy": {
        "mean": _balanced_accuracy(correct["original"], truth),
        "ci95": _bootstrap_ci(np.arange(len(truth)), rng, 1000,
                              stat=lambda i: _balanced_accuracy(correct["original"][i], truth[i]))}}

    higher_better = {"loudness_r": True, "mrstft_logmag": False, "mrstft_logmag_top80": False,
                     "mel_l1": False, "tagger_balanced_accuracy": True}
    for other in [n for n in vocoders if n != "griffin_lim"]:
        diffs = results["paired_differences"][f"{other}_minus_griffin_lim"] = {}
        for metric, higher in higher_better.items():
            if metric == "tagger_balanced_accuracy":
                a, b = correct[other], correct["griffin_lim"]
                diff_mean = _balanced_accuracy(a, truth) - _balanced_accuracy(b, truth)
                ci = _bootstrap_ci(np.arange(len(truth)), rng, 1000, stat=lambda i: _balanced_accuracy(
                    a[i], truth[i]) - _balanced_accuracy(b[i], truth[i]))
            else:
                a, b = np.array(per_clip[other][metric]), np.array(per_clip["griffin_lim"][metric])
                ok = np.isfinite(a) & np.isfinite(b)
                d = a[ok] - b[ok]
                diff_mean, ci = float(d.mean()), _bootstrap_ci(d, rng)
            better_other = ci[0] > 0 if higher else ci[1] < 0
            better_gl = ci[1] < 0 if higher else ci[0] > 0
            diffs[metric] = {"difference": diff_mean, "ci95": ci,
                             "winner": other if better_other else "griffin_lim" if better_gl
                             else "tie (CI spans 0)"}
    results["speed_winner"] = min(vocoders, key=lambda n: results["vocoders"][n]["s_per_8s_audio_1thread"])

    _print_table(results)
    write_text_atomic(args.out, json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _fmt(entry: dict | None) -> str:
    if entry is None:
        return "-"
    lo, hi = entry["ci95"]
    return f"{entry['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _print_table(results: dict) -> None:
    print(f"{results['n_clips']} val clips ({results['total_audio_s']} s of audio, each <= "
          f"{results['max_s']} s); mean [95% bootstrap CI]")
    rows = [("MR-STFT log-mag dist (lower)", "mrstft_logmag"),
            ("  same, floor -80 dB re max", "mrstft_logmag_top80"), ("mel L1 consistency (lower)", "mel_l1"),
            ("loudness-curve r (higher)", "loudness_r"),
            ("tagger balanced acc (higher)", "tagger_balanced_accuracy")]
    names = list(results["vocoders"])
    print(f"{'metric':32s}" + "".join(f"{n:>26s}" for n in names))
    for label, key in rows:
        cells = [_fmt(results["vocoders"][n].get(key)) for n in names]
        print(f"{label:32s}" + "".join(f"{c:>26s}" for c in cells))
    timed = [n for n in names if "s_per_8s_audio_1thread" in results["vocoders"][n]]
    print(f"{'s per 8 s audio, 1 thread':32s}"
          + "".join(f"{results['vocoders'][n]['s_per_8s_audio_1thread']:>26.3f}" for n in timed))
    print("\nwinner per metric against the shipped griffin_lim (paired bootstrap CI excludes 0):")
    for pair, diffs in results["paired_differences"].items():
        print(f"  {pair:34s}" + "  ".join(f"{k}: {v['winner']}" for k, v in diffs.items()))
    print("vocos (when present) was trained on STFT log-magnitude + mel L1, so those two rows are "
          "close to its own loss")


if __name__ == "__main__":
    sys.exit(main())
