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
  - tonal_lines_added: `metrics.added_tonal_lines`, the energy share of steady narrow spectral
    lines in the output minus in the original (0 = no lines added; a tone the original holds
    counts on both sides); lower is better,
  - seconds per 8 s of audio on one thread (median of 3 runs after a warm-up), parameters.

Means come with 95% bootstrap CIs over clips, and each metric with a paired bootstrap CI of the
difference (trained - Griffin-Lim): a vocoder "wins" a metric only if that CI excludes 0.
Note that the trained vocoder was optimised for STFT log-magnitudes (at FFT 512/1024/2048) and
mel L1, so those two metrics are close to its training loss; loudness r and the tagger are not.

    python benchmarks/bench_vocoder.py --weights runs/vocoder/model --n-val 60 \
        --out results/vocoder_bench.json

`--variant NAME=key:value,...` adds a Griffin-Lim setting (the shipped config with those keys
changed, e.g. `smooth=inversion:smooth` or `smooth_64=inversion:smooth,n_iter:64`).

`--pipeline N` also runs N val items (the reference sweep's items: the clip's caption, another
clip's curve, conform off) through `generate` twice, from scratch and on the default path
(retrieval + the model at the default strength), once per vocoder with the same seed (the
denoised latents are computed once per item and path). Per take: mel L1 of the vocoder's output
against the mel it was given, loudness-curve r against the requested curve, the tagger on the
take, tonal lines (default path: added against the fitted reference the model started from;
from scratch: the take's own share, beside the real clips'), and on the default path the
MR-STFT distance to that fitted reference. Takes are read at 16 kHz, as the sweep reads them.
The JSON keeps every metric's per-item values (`per_item`, in item order) beside its mean.
"""

from __future__ import annotations

import argparse
import hashlib
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
from foley_lab.evaluation.metrics import added_tonal_lines, tonal_line_share  # noqa: E402

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


def _parse_variant(spec: str) -> tuple[str, dict]:
    """"NAME=key:value,key:value" -> (NAME, {key: value}) with ints and floats parsed."""
    name, _, body = spec.partition("=")
    changes = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition(":")
        for cast in (int, float, str):
            try:
                changes[key] = cast(value)
                break
            except ValueError:
                continue
    return name, changes


def _vocoders(args, mel: MelSpectrogram) -> dict:
    shipped = json.loads(SHIPPED_VOCODER.read_text())
    vocoders = {"griffin_lim": vocoder_from_config(shipped, mel)}
    for n_iter in [int(x) for x in args.gl_iters.split(",") if x.strip()]:
        vocoders[f"griffin_lim_{n_iter}"] = vocoder_from_config({**shipped, "n_iter": n_iter}, mel)
    for name, changes in map(_parse_variant, args.variant):
        vocoders[name] = vocoder_from_config({**shipped, **changes}, mel)
    weights = Path(args.weights)
    if (weights / "config.json").is_file():
        vocoders["vocos"] = vocoder_from_config(json.loads((weights / "config.json").read_text()),
                                                mel, weights)
    else:
        print(f"no trained vocoder at {weights}: comparing Griffin-Lim settings only")
    return vocoders


def run_clips(args, vocoders: dict, mel: MelSpectrogram, library: SfxLibrary, tagger) -> dict:
    """Each val clip's own mel through every vocoder, compared with the clip."""
    clips = select_val_clips(library, args.n_val, args.seed)
    originals = [np.ascontiguousarray(library.load(c)[: int(args.max_s * mel.config.sr)], dtype=np.float32)
                 for c in clips]
    per_clip = {name: {k: [] for k in ("mrstft_logmag", "mrstft_logmag_top80", "mel_l1", "loudness_r",
                                       "tonal_lines_added")} for name in vocoders}
    outputs = {name: [] for name in vocoders}
    for audio in originals:
        with torch.no_grad():
            m = mel(torch.from_numpy(audio))
        for name, vocoder in vocoders.items():
            out = vocoder(m, audio.shape[0])[0]
            outputs[name].append(out)
            row = per_clip[name]
            with torch.no_grad():
                row["mel_l1"].append(float((mel(torch.from_numpy(out)) - m).abs().mean()))
            row["mrstft_logmag"].append(mrstft_logmag_distance(out, audio))
            row["mrstft_logmag_top80"].append(mrstft_logmag_distance(out, audio, top_db=80.0))
            row["loudness_r"].append(loudness_r(out, audio))
            row["tonal_lines_added"].append(added_tonal_lines(out, audio, mel.config.sr))
    truth = np.array([c.category for c in clips])
    predicted = {"original": np.array(tagger.predict(originals))}
    predicted.update({name: np.array(tagger.predict(outputs[name])) for name in vocoders})
    audio_8s = np.concatenate(originals)[: 8 * mel.config.sr]
    audio_8s = np.pad(audio_8s, (0, 8 * mel.config.sr - audio_8s.shape[0]))
    results = {"n_clips": len(clips), "max_s": args.max_s,
               "total_audio_s": round(sum(a.shape[0] for a in originals) / mel.config.sr, 2),
               "fft_sizes": list(FFT_SIZES),
               **_summarize(per_clip, predicted, truth, list(vocoders), np.random.default_rng(args.seed))}
    for name, vocoder in vocoders.items():
        row = results["vocoders"][name]
        row["s_per_8s_audio_1thread"] = _timing(vocoder, mel, audio_8s)
        row["n_parameters"] = int(getattr(vocoder, "n_parameters", 0))
        row["config"] = vocoder.config
    results["speed_winner"] = min(vocoders, key=lambda n: results["vocoders"][n]["s_per_8s_audio_1thread"])
    return results


HIGHER_BETTER = {"loudness_r": True, "mrstft_logmag": False, "mrstft_logmag_top80": False,
                 "mrstft_to_reference": False, "mel_l1": False, "tonal_lines_added": False,
                 "tonal_line_share": False, "curve_r": True, "tagger_balanced_accuracy": True}


def _summarize(per_clip: dict, predicted: dict, truth: np.ndarray, names: list[str],
               rng: np.random.Generator) -> dict:
    """Means with bootstrap CIs per vocoder, and paired differences against `names[0]`."""
    out: dict = {"vocoders": {}, "paired_differences": {}}
    for name in names + [k for k in predicted if k not in names]:
        row = {}
        for metric, values in per_clip.get(name, {}).items():
            v = np.array(values, dtype=np.float64)
            v = v[np.isfinite(v)]
            row[metric] = {"mean": float(v.mean()), "ci95": _bootstrap_ci(v, rng), "n": int(v.size),
                           "per_item": [round(float(x), 5) for x in values]}
        pred = predicted[name]
        row["tagger_balanced_accuracy"] = {
            "mean": _balanced_accuracy(pred, truth),
            "ci95": _bootstrap_ci(np.arange(len(truth)), rng, 1000,
                                  stat=lambda i: _balanced_accuracy(pred[i], truth[i]))}
        out["vocoders"][name] = row
    base = names[0]
    for other in names[1:]:
        diffs = out["paired_differences"][f"{other}_minus_{base}"] = {}
        for metric in list(per_clip[base]) + ["tagger_balanced_accuracy"]:
            higher = HIGHER_BETTER[metric]
            if metric == "tagger_balanced_accuracy":
                a, b = predicted[other], predicted[base]
                diff_mean = _balanced_accuracy(a, truth) - _balanced_accuracy(b, truth)
                ci = _bootstrap_ci(np.arange(len(truth)), rng, 1000, stat=lambda i: _balanced_accuracy(
                    a[i], truth[i]) - _balanced_accuracy(b[i], truth[i]))
            else:
                a, b = np.array(per_clip[other][metric]), np.array(per_clip[base][metric])
                ok = np.isfinite(a) & np.isfinite(b)
                d = a[ok] - b[ok]
                diff_mean, ci = float(d.mean()), _bootstrap_ci(d, rng)
            better_other = ci[0] > 0 if higher else ci[1] < 0
            better_base = ci[1] < 0 if higher else ci[0] > 0
            diffs[metric] = {"difference": diff_mean, "ci95": ci,
                             "winner": other if better_other else base if better_base
                             else "tie (CI spans 0)"}
    return out


class _Recording:
    """A vocoder that remembers what it was given and gave, and how long it took."""

    def __init__(self, inner):
        self.inner, self.sr, self.calls = inner, inner.sr, []
        self.uses_reference = getattr(inner, "uses_reference", False)

    @property
    def config(self) -> dict:
        return self.inner.config

    def __call__(self, mel_norm, n_samples, seeds=None, **guide):
        t0 = time.perf_counter()
        out = self.inner(mel_norm, n_samples, seeds, **guide)
        self.calls.append((mel_norm.clone(), out.copy(), time.perf_counter() - t0))
        return out


def _pipeline_items(n: int, library: SfxLibrary, seed: int) -> list:
    """The reference sweep's val items: (clip, duration_s, another clip's curve)."""
    from foley_core.constants import MODEL_SR
    from foley_lab.evaluation.harness import item_duration_s, select_val_clips as sweep_clips, swapped_curves
    from foley_lab.evaluation.reference_sweep import _is_silent
    from foley_lab.evaluation.references import fit_length

    clips = sweep_clips(library.clips("val"), n, seed)
    sources = [library.load(c) for c in clips]
    durations = [item_duration_s(c.seconds, 1.0, 8.0) for c in clips]
    reals = [fit_length(a, int(round(d * MODEL_SR))) for a, d in zip(sources, durations)]
    keep = [i for i, (a, r) in enumerate(zip(sources, reals)) if not _is_silent(a) and np.any(r)]
    clips, durations, reals = ([x[i] for i in keep] for x in (clips, durations, reals))
    _, curves = swapped_curves(reals, [c.category for c in clips], durations, seed)
    return list(zip(clips, durations, curves, reals))


def _cache_denoise(pipe) -> dict:
    """Make `pipe._denoise` return the stored result for latents it has already denoised (the
    same item, path and seed under another vocoder); clear the returned dict per item."""
    cache: dict = {}
    denoise = pipe._denoise

    def cached(scheduler, timesteps, latents, *args, **kwargs):
        key = hashlib.sha1(latents.cpu().numpy().tobytes() + timesteps.cpu().numpy().tobytes()).hexdigest()
        if key not in cache:
            cache[key] = denoise(scheduler, timesteps, latents, *args, **kwargs)
        return cache[key].clone()

    pipe._denoise = cached
    return cache


def run_pipeline(n: int, vocoders: dict, library: SfxLibrary, tagger, seed: int) -> dict:
    """Takes from scratch and on the default path, one per vocoder, on `n` val items."""
    from foley_core import fullband, loudness, offline
    from foley_core.constants import MODEL_SR
    from foley_core.generate import generate
    from foley_core.library import default_library
    from foley_lab.evaluation.harness import EvalConfig, eval_request, load_backend

    offline.configure()
    items = _pipeline_items(n, library, seed)
    backend, cfg, retrieval = load_backend("embedded", str(REPO / "assets" / "embedded")), EvalConfig(), default_library()
    pipe = backend.pipeline
    cache = _cache_denoise(pipe)
    keys = {"scratch": ("mel_l1", "curve_r", "tonal_line_share"),
            "default": ("mel_l1", "curve_r", "tonal_lines_added", "mrstft_to_reference")}
    per = {p: {name: {k: [] for k in ks} for name in vocoders} for p, ks in keys.items()}
    takes = {p: {name: [] for name in vocoders} for p in keys}
    voc_s = {p: {name: 0.0 for name in vocoders} for p in keys}
    for i, (clip, duration_s, curve, _) in enumerate(items):
        cache.clear()
        n_samples = int(round(duration_s * MODEL_SR))
        for path, source in (("scratch", "model"), ("default", "library")):
            for name, vocoder in vocoders.items():
                pipe.vocoder = rec = _Recording(vocoder)
                result = generate(eval_request(backend, cfg, seed=seed + i, conform=0.0, source=source,
                                               caption=clip.caption, duration_s=duration_s, curve=curve),
                                  library=retrieval)
                take = fullband.to_model_rate(result.audios[0], result.sr, MODEL_SR, n_samples)
                row = per[path][name]
                with torch.no_grad():
                    row["mel_l1"].append(float(np.mean([
                        (pipe.mel(torch.from_numpy(o[0]))[..., :m.shape[-1]] - m[0]).abs().mean()
                        for m, o, _ in rec.calls])))
                row["curve_r"].append(loudness.curve_correlation(take, MODEL_SR, curve))
                if path == "default":
                    ref = fullband.to_model_rate(result.reference_audios[0], result.sr, MODEL_SR, n_samples)
                    row["tonal_lines_added"].append(added_tonal_lines(take, ref, MODEL_SR))
                    row["mrstft_to_reference"].append(mrstft_logmag_distance(take, ref))
                else:
                    row["tonal_line_share"].append(tonal_line_share(take, MODEL_SR))
                takes[path][name].append(take)
                voc_s[path][name] += sum(s for _, _, s in rec.calls)
        print(f"pipeline item {i + 1}/{len(items)} {clip.category} {duration_s:g} s", flush=True)
    truth = np.array([c.category for c, _, _, _ in items])
    total_s = sum(d for _, d, _, _ in items)
    out = {}
    for path in keys:
        predicted = {name: np.array(tagger.predict(takes[path][name], MODEL_SR)) for name in vocoders}
        out[path] = {"n_clips": len(items), "max_s": 8.0, "total_audio_s": round(total_s, 2),
                     **_summarize(per[path], predicted, truth, list(vocoders), np.random.default_rng(seed))}
        for name in vocoders:
            out[path]["vocoders"][name]["s_per_8s_audio_1thread"] = voc_s[path][name] / total_s * 8.0
    out["scratch"]["real_clips_tonal_line_share"] = float(np.mean(
        [tonal_line_share(a, MODEL_SR) for _, _, _, a in items]))
    return out


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
    ap.add_argument("--variant", action="append", default=[],
                    help="NAME=key:value,... a Griffin-Lim setting to compare (repeatable)")
    ap.add_argument("--pipeline", type=int, default=0,
                    help="also compare the vocoders through generate on this many val items")
    ap.add_argument("--no-clips", action="store_true", help="skip the clip round trip")
    ap.add_argument("--out", default="results/vocoder_bench.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    from foley_lab.evaluation.tagger import load_tagger

    mel = MelSpectrogram()
    vocoders = _vocoders(args, mel)
    library, tagger = SfxLibrary(args.sfx), load_tagger()
    results: dict = {"weights": args.weights}
    if not args.no_clips:
        results["clips"] = run_clips(args, vocoders, mel, library, tagger)
        _print_table(results["clips"])
    if args.pipeline:
        results["pipeline"] = run_pipeline(args.pipeline, vocoders, library, tagger, args.seed)
        for path, part in results["pipeline"].items():
            print(f"\n{path}:")
            _print_table(part)
    write_text_atomic(args.out, json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")
    return 0


def _fmt(entry: dict | None) -> str:
    if entry is None:
        return "-"
    lo, hi = entry["ci95"]
    return f"{entry['mean']:.3f} [{lo:.3f}, {hi:.3f}]"


def _print_table(results: dict) -> None:
    print(f"{results['n_clips']} val items ({results['total_audio_s']} s of audio, each <= "
          f"{results['max_s']} s); mean [95% bootstrap CI]")
    rows = [("MR-STFT log-mag dist (lower)", "mrstft_logmag"),
            ("  same, floor -80 dB re max", "mrstft_logmag_top80"),
            ("MR-STFT to fitted ref (lower)", "mrstft_to_reference"),
            ("mel L1 consistency (lower)", "mel_l1"),
            ("loudness-curve r (higher)", "loudness_r"), ("r to requested curve (higher)", "curve_r"),
            ("tonal lines added (lower)", "tonal_lines_added"),
            ("tonal line share (lower)", "tonal_line_share"),
            ("tagger balanced acc (higher)", "tagger_balanced_accuracy")]
    names = list(results["vocoders"])
    print(f"{'metric':32s}" + "".join(f"{n:>26s}" for n in names))
    for label, key in rows:
        cells = [_fmt(results["vocoders"][n].get(key)) for n in names]
        if any(c != "-" for c in cells):
            print(f"{label:32s}" + "".join(f"{c:>26s}" for c in cells))
    timed = [n for n in names if "s_per_8s_audio_1thread" in results["vocoders"][n]]
    print(f"{'s per 8 s audio, 1 thread':32s}"
          + "".join(f"{results['vocoders'][n]['s_per_8s_audio_1thread']:>26.3f}" for n in timed))
    print("\nwinner per metric against the shipped griffin_lim (paired bootstrap CI excludes 0):")
    for pair, diffs in results["paired_differences"].items():
        print(f"  {pair}:\n    " + "\n    ".join(
            f"{k}: {v['difference']:+.4f} [{v['ci95'][0]:+.4f}, {v['ci95'][1]:+.4f}] {v['winner']}"
            for k, v in diffs.items()))
    print("vocos (when present) was trained on STFT log-magnitude + mel L1, so those two rows are "
          "close to its own loss")


if __name__ == "__main__":
    sys.exit(main())
