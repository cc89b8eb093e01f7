"""The reference-strength sweep: the default strength is chosen by measurement.

The same val-split references (never train; stratified by category) are used at every strength
with the same seeds. Strength 0 is the fitted reference itself (no model runs), strength 1 is
plain generation without the reference (the "text only" row: same caption, curve and video).
Each reference is the sound the designer asked for, so the stem's caption is its own caption.

- SEMANTICS + LOUDNESS: each reference with the loudness curve of a val reference of ANOTHER
  category (stretched to its duration), conform off, no video. Tagger accuracy (plain and
  balanced) against the reference's category; loudness r / MAE between the given curve and the
  output's loudness signal (r counts curves spanning >= `harness.MIN_CURVE_RANGE` of their peak,
  as in the harness; MAE counts all).
- TIMING: each reference with a held-out discrete simulated scene of ANOTHER clip (the harness's
  scene folder), the scene target's mask, NO curve: onset F1 (+-100 ms) against the target's
  events. The strength 0 row scores what ignoring the video scores.
- DEFAULT PATH ("default" row, unless `default_path` is off): what the product does without a
  reference: the item's caption retrieves a clip from the retrieval library (the bundled starter
  library by default, built from the TRAIN split only, so no val clip can be retrieved), which
  the model reshapes at the default strength; same curves, scenes, masks and seeds as the rows.
- "real references": the reference clips themselves (fit to the item length like the harness's
  real row), the tagger's accuracy on the very sounds the outputs should resemble.

`choose_strength` applies `RULE` to the rows; `run_reference_sweep` returns the results dict and
`write_sweep` writes it as JSON and a markdown table (`sweep_to_markdown`).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from foley_core.atomic import write_text_atomic
from foley_core.constants import MODEL_SR
from foley_core.errors import FoleyError
from foley_lab.evaluation import metrics
from foley_lab.evaluation.harness import (MIN_CURVE_RANGE, EvalConfig, curve_span, eval_request, eval_setup,
                                          item_duration_s, select_val_clips, swapped_curves,
                                          torch_threads)
from foley_lab.evaluation.references import fit_length
from foley_core.request import GenerationReport

__all__ = ["SweepConfig", "DEFAULT_STRENGTHS", "IDENTITY_RATIO", "RULE", "parse_strengths",
           "check_strengths", "choose_strength", "run_reference_sweep", "sweep_to_markdown",
           "write_sweep"]

DEFAULT_STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
IDENTITY_RATIO = 0.8
RULE = (
    "Candidates are the strengths strictly between 0 and 1 (0 returns the reference unchanged, "
    "1 ignores it: neither is reference-guided generation). A candidate keeps the reference's "
    f"identity if its tagger balanced accuracy is at least {IDENTITY_RATIO:g} x the balanced "
    "accuracy on the real references. Among those, the one with the highest mean of (loudness "
    "r, onset F1) is chosen (a metric that was not measured is left out of the mean); ties go "
    "to the lower strength. If no candidate keeps identity, the one with the highest balanced "
    "accuracy is chosen (ties: the lower strength) and the result says 'identity not kept at "
    "any strength'."
)
NOT_KEPT = "identity not kept at any strength"
_TIE = 1e-9

ProgressFn = Callable[[str], None]


# ----------------------------------------------------------------------------------------------
# Configuration

def check_strengths(values: Sequence[float]) -> tuple[float, ...]:
    """The strengths sorted ascending; FoleyError if one is outside [0, 1], repeated, or none
    lies strictly between 0 and 1 (then there is nothing to choose from)."""
    out = []
    for v in values:
        x = float(v)
        if not (math.isfinite(x) and 0.0 <= x <= 1.0):
            raise FoleyError(f"--strengths: {v!r} is not a strength; each must be from 0 (the "
                             "reference itself) to 1 (ignore the reference)")
        out.append(x)
    if len(set(out)) != len(out):
        dup = next(x for x in out if out.count(x) > 1)
        raise FoleyError(f"--strengths: {dup:g} is given twice; list each strength once")
    if not any(0.0 < x < 1.0 for x in out):
        raise FoleyError("--strengths: give at least one strength strictly between 0 and 1 (the "
                         f"default is chosen among those), got {','.join(f'{x:g}' for x in out)}")
    return tuple(sorted(out))


def parse_strengths(text: str) -> tuple[float, ...]:
    """'0,0.2,0.5,1' -> (0.0, 0.2, 0.5, 1.0); FoleyError for anything else (see check_strengths)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise FoleyError("--strengths is empty; give comma-separated values from 0 to 1, "
                         "e.g. 0,0.2,0.4,0.6,0.8,1")
    values = []
    for p in parts:
        try:
            values.append(float(p))
        except ValueError:
            raise FoleyError(f"--strengths: {p!r} is not a number; give comma-separated values "
                             "from 0 to 1, e.g. 0,0.2,0.4,0.6,0.8,1") from None
    return check_strengths(values)


@dataclass
class SweepConfig(EvalConfig):
    """The harness's settings (the same scene set, seeds and checks) plus the strengths.

    n_val counts references (val split, round-robin over categories); of the scenes only the
    discrete ones are used, and n_selectivity only keeps the scene folder the harness's own.
    n_boot is the paired bootstrap of balanced accuracy vs the real references.
    """

    n_val: int | None = 24
    speed: bool = False                 # the sweep times every item; there is no 8 s stem run
    strengths: tuple[float, ...] = DEFAULT_STRENGTHS
    default_path: bool = True           # also measure the default path (retrieval + model)
    retrieval_library: str | None = None    # a library folder with index.csv; None: the bundled one

    QUICK = {**EvalConfig.QUICK, "n_val": 6}

    def check(self) -> None:
        self.strengths = check_strengths(self.strengths)
        super().check()


# ----------------------------------------------------------------------------------------------
# The rule

def _value(row: Mapping[str, Any], key: str) -> float | None:
    """A row's metric as a float: a number or a summary's mean; None if missing or NaN."""
    v = row.get(key)
    if isinstance(v, Mapping):
        v = v.get("mean")
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def choose_strength(rows: Sequence[Mapping[str, Any]], real_accuracy: float) -> dict[str, Any]:
    """Apply `RULE` to sweep rows; return the choice and why.

    rows: one mapping per strength with "strength" and "tagger_balanced_accuracy", "loudness_r",
        "onset_f1" (numbers, summaries with a "mean", or None when not measured).
    real_accuracy: the tagger's balanced accuracy on the real references.
    Returns dict(strength, identity_kept, threshold, kept (strengths keeping identity), score
    (mean of r and F1 of the choice), note). Raises ValueError when no row has a strength
    strictly between 0 and 1, or real_accuracy is not a finite number.
    """
    real = float(real_accuracy) if real_accuracy is not None else float("nan")
    if not math.isfinite(real):
        raise ValueError(f"the accuracy on the real references must be a number, got "
                         f"{real_accuracy!r}")
    threshold = IDENTITY_RATIO * real
    candidates = sorted((r for r in rows if 0.0 < float(r["strength"]) < 1.0),
                        key=lambda r: float(r["strength"]))
    if not candidates:
        raise ValueError("no strength strictly between 0 and 1 to choose from")

    def score(row) -> float | None:
        parts = [v for v in (_value(row, "loudness_r"), _value(row, "onset_f1")) if v is not None]
        return float(np.mean(parts)) if parts else None

    def best(pool, key) -> Mapping[str, Any]:
        # ascending strengths: only a strictly better value replaces, so ties keep the lower one
        chosen, chosen_v = pool[0], key(pool[0])
        for row in pool[1:]:
            v = key(row)
            if v is not None and (chosen_v is None or v > chosen_v + _TIE):
                chosen, chosen_v = row, v
        return chosen

    kept = [r for r in candidates
            if (acc := _value(r, "tagger_balanced_accuracy")) is not None and acc >= threshold]
    if kept:
        row = best(kept, score)
        s = score(row)
        kept_text = ", ".join(_key(float(r["strength"])) for r in kept)
        note = (f"identity kept at {kept_text}; "
                f"{float(row['strength']):g} has the highest mean of loudness r and onset F1 "
                f"({'not measured' if s is None else f'{s:.3f}'})")
    else:
        row = best(candidates, lambda r: _value(r, "tagger_balanced_accuracy"))
        s = score(row)
        acc = _value(row, "tagger_balanced_accuracy")
        note = (f"{NOT_KEPT}: balanced accuracy below {IDENTITY_RATIO:g} x {real:.3f} = "
                f"{threshold:.3f} everywhere; {float(row['strength']):g} has the highest "
                f"({'not measured' if acc is None else f'{acc:.3f}'})")
    return {"strength": float(row["strength"]), "identity_kept": bool(kept),
            "threshold": threshold, "real_accuracy": real,
            "kept": [float(r["strength"]) for r in kept], "score": s, "note": note,
            "rule": RULE}


# ----------------------------------------------------------------------------------------------
# The run

def _key(strength: float) -> str:
    return f"{strength:g}"


def _label(strength: float) -> str:
    if strength <= 0.0:
        return "0 (fitted reference)"
    if strength >= 1.0:
        return "1 (text only: no reference)"
    return _key(strength)


def _generate_at(backend, cfg: SweepConfig, strength: float, reference: tuple[np.ndarray, int],
                 *, seed: int, **kw) -> tuple[np.ndarray, float, GenerationReport]:
    """One stem at `strength` (1 = the same call without the reference); (audio, seconds,
    generate's report)."""
    from foley_core.generate import generate

    # strength 1 is the model alone (from noise), not the product's retrieval default
    ref_kw = {"source": "model"} if strength >= 1.0 else {"reference": reference, "strength": strength}
    t0 = time.perf_counter()
    result = generate(eval_request(backend, cfg, seed=seed, conform=0.0, **ref_kw, **kw), device=cfg.device)
    return result.audios[0], time.perf_counter() - t0, result.report


DEFAULT_KEY = "default"


def _generate_default(backend, cfg: SweepConfig, library, *, seed: int, **kw) -> tuple[np.ndarray, float, GenerationReport]:
    """One stem the product's default way: no reference, the caption retrieves library clips
    (`source="library"`) that the model reshapes at the default strength."""
    from foley_core.generate import generate

    t0 = time.perf_counter()
    result = generate(eval_request(backend, cfg, seed=seed, conform=0.0, source="library", **kw),
                      device=cfg.device, library=library)
    return _at_model_rate(result), time.perf_counter() - t0, result.report


def _at_model_rate(result) -> np.ndarray:
    """The first take at MODEL_SR, the rate every metric here reads: a take from a retrieved clip
    runs at the clip's own rate (up to 48 kHz, full band), so read as 16 kHz it would be a longer,
    lower sound."""
    from foley_core import fullband

    audio = np.asarray(result.audios[0], np.float32)
    if int(result.sr) == MODEL_SR:
        return audio
    n = int(round(audio.shape[0] * MODEL_SR / int(result.sr)))
    return fullband.to_model_rate(audio, int(result.sr), MODEL_SR, n)


def _is_silent(audio: np.ndarray) -> bool:
    from foley_core.library.fit import SILENT_PEAK_DBFS

    return float(np.max(np.abs(audio), initial=0.0)) < 10 ** (SILENT_PEAK_DBFS / 20)


def _pair_scenes(ref_ids: Sequence[str], scenes: Sequence[Mapping[str, Any]]) -> list[int | None]:
    """For reference i, a scene index: scene i mod n, moving on past scenes made of the same clip
    (its events would be the reference's own). None if every scene is that clip."""
    out: list[int | None] = []
    n = len(scenes)
    for i, rid in enumerate(ref_ids):
        out.append(next(((i + k) % n for k in range(n) if scenes[(i + k) % n]["clip_id"] != rid),
                        None))
    return out


def run_reference_sweep(cfg: SweepConfig, *, out_path: str | os.PathLike =
                        "results/reference_sweep.json", backend=None,
                        progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run the sweep of `cfg` and return the results dict (see `write_sweep`).

    backend: a loaded Backend to use instead of `cfg.model` / `cfg.weights`.
    """
    from foley_lab.evaluation.harness import ensure_scenes, json_safe, load_masks, scene_dir

    cfg.check()
    progress = progress or (lambda msg: None)
    t_start = time.perf_counter()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    strengths = cfg.strengths

    setup = eval_setup(cfg, backend=backend, progress=progress)
    library, tagger_dir, tagger, backend = setup.library, setup.tagger_dir, setup.tagger, setup.backend

    # ---- references: val clips, each with the curve of another category's reference
    clips = select_val_clips(library.clips("val"), cfg.n_val, cfg.seed)
    sources = [library.load(c) for c in clips]
    durations = [item_duration_s(c.seconds, cfg.min_val_s, cfg.max_val_s) for c in clips]
    reals = [fit_length(a, int(round(d * MODEL_SR))) for a, d in zip(sources, durations)]
    # a silent clip is no reference (generate refuses it) and lends no curve
    keep = [i for i, (s, r) in enumerate(zip(sources, reals)) if not _is_silent(s) and np.any(r)]
    skipped = [clips[i].id for i in range(len(clips)) if i not in keep]
    clips, sources, durations, reals = ([x[i] for i in keep]
                                        for x in (clips, sources, durations, reals))
    partners, curves = swapped_curves(reals, [c.category for c in clips], durations, cfg.seed)
    ranges = [curve_span(c) for c in curves]

    keys = [_key(s) for s in strengths] + ([DEFAULT_KEY] if cfg.default_path else [])
    retrieval_library = None
    if cfg.default_path:
        from foley_core.library import SoundLibrary, default_library

        retrieval_library = (SoundLibrary(cfg.retrieval_library) if cfg.retrieval_library
                             else default_library())
    retrieved: list[str | None] = []
    sem_out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    gen_s: dict[str, list[float]] = {k: [] for k in keys}
    for i, (clip, d, curve) in enumerate(zip(clips, durations, curves)):
        progress(f"reference {i + 1}/{len(clips)}: '{clip.caption}' ({clip.category}, {d:g} s), "
                 f"curve of {clips[partners[i]].category}")
        for s in strengths:
            audio, sec, _ = _generate_at(backend, cfg, s, (sources[i], MODEL_SR), seed=cfg.seed + i,
                                      caption=clip.caption, duration_s=d, curve=curve)
            sem_out[_key(s)].append(audio)
            gen_s[_key(s)].append(sec)
        if cfg.default_path:
            audio, sec, meta = _generate_default(backend, cfg, retrieval_library, seed=cfg.seed + i,
                                                 caption=clip.caption, duration_s=d, curve=curve)
            sem_out[DEFAULT_KEY].append(audio)
            gen_s[DEFAULT_KEY].append(sec)
            retrieved.append(meta.reference.id)

    # ---- timing: each reference with a discrete held-out scene of another clip
    folder = scene_dir(cfg, Path(out_path))
    timing_items: list[dict[str, Any]] = []
    f1: dict[str, list[float]] = {k: [] for k in keys} | {"real": []}
    ceiling: list[float] = []
    n_discrete = 0
    if cfg.n_scenes:
        from foley_core.audio_io import read_audio

        manifest = ensure_scenes(cfg, library, folder, progress)
        discrete = [s for s in manifest["scenes"] if s["mode"] == "discrete"
                    and len(s["target_events_s"]) > 0]
        n_discrete = len(discrete)
        pairs = _pair_scenes([c.id for c in clips], discrete) if discrete else []
        for i, k in enumerate(pairs):
            if k is None:
                continue
            scene, clip = discrete[k], clips[i]
            progress(f"timing {i + 1}/{len(clips)}: '{clip.caption}' on scene {scene['id']} "
                     f"({scene['duration_s']:g} s)")
            masks = load_masks(folder, scene["files"]["masks"], "target")
            video = str(folder / scene["files"]["video"])
            intended = np.asarray(scene["target_events_s"], dtype=np.float64)
            record: dict[str, Any] = {
                "clip_id": clip.id, "category": clip.category, "scene": scene["id"],
                "scene_clip_id": scene["clip_id"], "scene_category": scene["category"],
                "duration_s": scene["duration_s"], "intended_s": scene["target_events_s"],
                "f1": {}}
            n = None
            for s in strengths:
                audio, sec, meta = _generate_at(backend, cfg, s, (sources[i], MODEL_SR),
                                          seed=cfg.seed + 1000 + i, caption=clip.caption,
                                          video=video, mask=masks)
                gen_s[_key(s)].append(sec)
                n = audio.size
                score = metrics.timing_scores(audio, MODEL_SR, intended)["f1"]
                f1[_key(s)].append(score)
                record["f1"][_key(s)] = round(score, 4)
                if s <= 0.0:
                    from foley_core.events import detect_onsets

                    record["reference_onsets_s"] = [round(float(t), 3)
                                                    for t in detect_onsets(audio, MODEL_SR)]
                    # the video's contacts, where a one-shot reference is placed
                    record["onsets_s"] = meta.onsets_s
            if cfg.default_path:
                audio, sec, meta = _generate_default(backend, cfg, retrieval_library,
                                                     seed=cfg.seed + 1000 + i, caption=clip.caption,
                                                     video=video, mask=masks)
                gen_s[DEFAULT_KEY].append(sec)
                score = metrics.timing_scores(audio, MODEL_SR, intended)["f1"]
                f1[DEFAULT_KEY].append(score)
                record["f1"][DEFAULT_KEY] = round(score, 4)
                record["default_reference"] = meta.reference.id
            real = fit_length(sources[i], n)
            record["f1"]["real"] = round(metrics.timing_scores(real, MODEL_SR, intended)["f1"], 4)
            f1["real"].append(record["f1"]["real"])
            target = read_audio(folder / scene["files"]["audio"], sr=MODEL_SR, mono=True)[0]
            ceiling.append(metrics.timing_scores(fit_length(target, n), MODEL_SR, intended)["f1"])
            timing_items.append(record)

    # ---- semantics and loudness per strength, and the real references
    progress("tagging the outputs and the real references")
    expected = [c.category for c in clips]
    real_pred = tagger.predict(reals, MODEL_SR)

    def loud(outs: Sequence[np.ndarray]) -> tuple[list[float], list[float], list[float]]:
        r_all, r_counted, mae = [], [], []
        for audio, curve, span in zip(outs, curves, ranges):
            fit = metrics.curve_fit(audio, MODEL_SR, curve) if np.any(audio) else {
                "r": 0.0, "mae": float(np.mean(np.abs(curve / max(curve.max(), 1e-9))))}
            r_all.append(fit["r"])
            if span >= MIN_CURVE_RANGE:
                r_counted.append(fit["r"])
            mae.append(fit["mae"])
        return r_all, r_counted, mae

    predictions: dict[str, list[str]] = {"real": real_pred}
    per_item_r: dict[str, list[float]] = {}
    rows: list[dict[str, Any]] = []
    from foley_core.constants import DEFAULT_REFERENCE_STRENGTH

    for s in (*strengths, *([None] if cfg.default_path else [])):
        key = DEFAULT_KEY if s is None else _key(s)
        pred = tagger.predict(sem_out[key], MODEL_SR)
        predictions[key] = pred
        r_all, r_counted, mae = loud(sem_out[key])
        per_item_r[key] = r_all
        rows.append({
            "strength": DEFAULT_REFERENCE_STRENGTH if s is None else s,
            "label": (f"default: retrieval + model (strength {DEFAULT_REFERENCE_STRENGTH:g})"
                      if s is None else _label(s)),
            "default_path": s is None,
            "tagger_accuracy": metrics.accuracy(pred, expected),
            "tagger_balanced_accuracy": metrics.balanced_accuracy(pred, expected),
            "accuracy_minus_real": metrics.paired_bootstrap_diff(
                pred, real_pred, expected, n_boot=cfg.n_boot, seed=cfg.seed),
            "loudness_r": metrics.summarize(r_counted),
            "loudness_mae": metrics.summarize(mae),
            "onset_f1": metrics.summarize(f1[key]) if f1[key] else None,
            "s_per_item": metrics.summarize(gen_s[key]),
        })
    r_all, r_counted, mae = loud(reals)
    per_item_r["real"] = r_all
    real_row = {
        "strength": None, "label": "real references",
        "tagger_accuracy": metrics.accuracy(real_pred, expected),
        "tagger_balanced_accuracy": metrics.balanced_accuracy(real_pred, expected),
        "loudness_r": metrics.summarize(r_counted), "loudness_mae": metrics.summarize(mae),
        "onset_f1": metrics.summarize(f1["real"]) if f1["real"] else None,
    }
    default_row = rows.pop() if cfg.default_path else None
    choice = choose_strength(rows, real_row["tagger_balanced_accuracy"])
    for row in rows + ([default_row] if default_row else []):
        acc = _value(row, "tagger_balanced_accuracy")
        row["identity_kept"] = acc is not None and acc >= choice["threshold"]

    items = [{
        "clip_id": c.id, "caption": c.caption, "category": c.category, "duration_s": d,
        "curve_from": clips[j].id, "curve_category": clips[j].category,
        "curve_range": round(ranges[i], 4),
        "loudness_r": {k: round(v[i], 4) for k, v in per_item_r.items()},
        "predicted": {k: v[i] for k, v in predictions.items()},
        **({"default_reference": retrieved[i]} if retrieved else {}),
    } for i, (c, d, j) in enumerate(zip(clips, durations, partners))]

    results = {
        "version": 1,
        "kind": "reference_sweep",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": asdict(cfg),
        "model": {"name": backend.name, "description": backend.description,
                  "trained": bool(backend.trained),
                  "reference_detail": backend.capabilities.reference_detail},
        "tagger": {"dir": str(tagger_dir), "categories": tagger.categories,
                   **dict(tagger.model.config.get("metrics") or {})},
        "rows": rows,
        "real_references": real_row,
        "default_path": default_row,
        "choice": choice,
        "rule": RULE,
        "semantics_items": items,
        "n_loudness_r": sum(r >= MIN_CURVE_RANGE for r in ranges),
        "skipped_silent": skipped,
        "timing_items": timing_items,
        "timing": {"folder": str(folder), "n_discrete_scenes": n_discrete,
                   "scene_sound_f1": metrics.summarize(ceiling) if ceiling else None},
        "environment": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                        "torch_threads": torch_threads(), "load_avg_start": load_before,
                        "load_avg_end": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "timings_s": {"total": round(time.perf_counter() - t_start, 2)},
    }
    return json_safe(results)


# ----------------------------------------------------------------------------------------------
# Output

def _fmt(v: Any, digits: int = 3) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) \
        else f"{v:.{digits}f}"


def _cells(row: Mapping[str, Any]) -> list[str]:
    lr = row.get("loudness_r") or {}
    sp = row.get("s_per_item")
    return [
        f"{_fmt(row.get('tagger_accuracy'))} / {_fmt(row.get('tagger_balanced_accuracy'))}",
        f"{_fmt(lr.get('mean'))} / {_fmt(lr.get('median'))}",
        _fmt(_value(row, "loudness_mae")),
        _fmt(_value(row, "onset_f1")),
        "–" if not sp else _fmt(sp.get("mean"), 2),
    ]


def sweep_to_markdown(results: Mapping[str, Any]) -> str:
    """The sweep as a markdown table (one row per strength and the real references), the chosen
    strength and the rule, notes, and the two rows for docs/BENCHMARKS.md."""
    model, cfg, choice = results["model"], results["config"], results["choice"]
    untrained = "" if model["trained"] else " [untrained: random weights]"
    real = results["real_references"]
    n_items = len(results["semantics_items"])
    lines = [
        f"Model: **{model['description']}**"
        + ("" if model["trained"] or "untrained" in model["description"]
           else " (untrained: random weights)") + ".",
        f"Settings: {n_items} val-split references, {cfg['steps']} steps, text scale "
        f"{cfg['text_scale']:g}, video scale {cfg['video_scale']:g}, seed {cfg['seed']}, scene "
        f"seed {cfg['scene_seed']}" + (", quick preset" if cfg.get("quick") else "") + "; "
        + ("the reference's detail that the VAE loses is added back (`reference_detail`)."
           if model.get("reference_detail") else "no reference detail restored."),
        "",
        "| strength | tagger acc. (plain / balanced) | loudness r (mean / median) | loudness MAE "
        "| onset F1 | s per item | identity kept |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for row in results["rows"]:
        s = row["strength"]
        kept = "yes" if row.get("identity_kept") else "no"
        if not 0.0 < s < 1.0:
            kept = f"({kept})"
        label = f"**{row['label']}**" if s == choice["strength"] else row["label"]
        lines.append("| " + " | ".join([label, *_cells(row), kept]) + " |")
    default_row = results.get("default_path")
    if default_row:
        kept = "yes" if default_row.get("identity_kept") else "no"
        lines.append("| " + " | ".join([default_row["label"], *_cells(default_row), kept]) + " |")
    lines.append("| " + " | ".join(["real references", *_cells(real), "–"]) + " |")

    timing = results["timing"]
    ceiling = timing.get("scene_sound_f1") or {}
    lines += [
        "",
        f"**Chosen default strength: {choice['strength']:g}** ({choice['note']}).",
        "",
        f"Rule: {results['rule']} (Threshold here: {IDENTITY_RATIO:g} x "
        f"{_fmt(choice['real_accuracy'])} = {_fmt(choice['threshold'])}.)",
        "",
        f"- Semantics and loudness: {n_items} references (val split, round-robin over "
        "categories), caption = the reference's own caption, each given the loudness curve of a "
        "reference of another category (stretched to its length), conform off, no video. Tagger "
        "accuracy against the reference's category (the paired bootstrap interval of balanced "
        "accuracy minus the real references' is in the JSON, `accuracy_minus_real`); r counts "
        f"the {results['n_loudness_r']} items whose curve spans at least {MIN_CURVE_RANGE:.0%} "
        "of its peak, MAE all.",
        f"- Timing: {len(results['timing_items'])} references, each on a discrete held-out "
        f"simulated scene of another clip ({timing['n_discrete_scenes']} discrete scenes, reused "
        "in turn), the target's mask, no curve; onset F1 within +-100 ms of the target's events. "
        "Strength 0 is the reference ignoring the video; the scene's own sound scores "
        f"{_fmt(ceiling.get('mean'))} (the ceiling of this protocol).",
        "- Strength 0 is the fitted reference itself (no model runs); strength 1 is the same "
        "call without the reference (text, curve and video only). Same seeds at every strength. "
        "s per item: seconds per generate() call, both sets. Identity kept in parentheses: "
        "strengths 0 and 1 are not candidates.",
        "",
        "Rows for docs/BENCHMARKS.md:",
        "",
        "| method | tagger acc. (plain / balanced) | loudness r (mean / median) | loudness MAE "
        "| onset F1 | s per item |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by_strength = {row["strength"]: row for row in results["rows"]}
    chosen = by_strength.get(choice["strength"])
    if chosen is not None:
        lines.append("| " + " | ".join([f"reference-guided (strength {choice['strength']:g})"
                                        f"{untrained}", *_cells(chosen)]) + " |")
    if 1.0 in by_strength:
        lines.append("| " + " | ".join([f"text only{untrained}", *_cells(by_strength[1.0])])
                     + " |")
    if default_row:
        lines.append("| " + " | ".join([default_row["label"] + untrained, *_cells(default_row)]) + " |")
    lines.append("| " + " | ".join(["real references", *_cells(real)]) + " |")
    return "\n".join(lines) + "\n"


def write_sweep(results: Mapping[str, Any], out_path: str | os.PathLike) -> tuple[Path, Path]:
    """Write `out_path` (JSON) and the markdown table beside it (`.md`), atomically."""
    out_path = Path(out_path)
    md_path = out_path.with_suffix(".md")
    markdown = sweep_to_markdown(results)       # before writing: a failure leaves neither file
    write_text_atomic(out_path, json.dumps(results, indent=1) + "\n")
    write_text_atomic(md_path, markdown)
    return out_path, md_path
