"""What the studio shows: the stems table, the timeline, the spectrogram picture, the meter, and
the model notice. Plain functions from session data to HTML / images / table rows."""

from __future__ import annotations

import html
import io
import math

import numpy as np

from foley_core import constants
from foley_core.errors import FoleyError

# What the upload fields say about the server's limit (constants.MAX_UPLOAD_BYTES; MiB as MB).
UPLOAD_LIMIT_TEXT = f"up to {constants.MAX_UPLOAD_BYTES // 1024**2} MB"

STEM_COLUMNS = ["#", "caption", "gain dB", "pan", "offset s", "length s", "trim s", "fade in s",
                "fade out s", "mute", "solo", "seed", "reference"]
_STEM_COLOURS = ["#f97316", "#3b82f6", "#10b981", "#a855f7", "#ef4444", "#eab308", "#14b8a6",
                 "#ec4899"]


def stem_label(index: int, stem) -> str:
    """'2: its name' for a stem the user renamed, else '2: its caption' (whole)."""
    renamed = stem.name != stem.default_name()
    return f"{index + 1}: {stem.name if renamed else stem.settings.caption or stem.name}"


def stem_length_s(stem) -> float:
    """Seconds the stem plays after trimming."""
    return stem.end_s - stem.mix.offset_s


def stems_rows(project) -> list[list]:
    rows = []
    for i, s in enumerate(project.stems):
        m = s.mix
        rows.append([i + 1, s.settings.caption or s.name, round(m.gain_db, 1), round(m.pan, 2),
                     round(m.offset_s, 2), round(stem_length_s(s), 2), trim_text(m),
                     round(m.fade_in_s, 2), round(m.fade_out_s, 2), "yes" if m.mute else "",
                     "yes" if m.solo else "", s.settings.seed, reference_text(s.settings.reference)])
    return rows


def trim_text(mix) -> str:
    """The part of the stem's audio that plays, e.g. '0.5–2' ('' when untrimmed)."""
    if mix.trim_start_s == 0 and mix.trim_end_s is None:
        return ""
    end = "end" if mix.trim_end_s is None else f"{mix.trim_end_s:g}"
    return f"{mix.trim_start_s:g}–{end}"


def is_library_reference(ref) -> bool:
    from foley_core.library.catalog import UPLOAD_CATEGORY, USER_CATEGORY

    return ref is not None and not str(ref.clip_id).startswith((f"{UPLOAD_CATEGORY}/",
                                                                 f"{USER_CATEGORY}/"))


def reference_text(ref) -> str:
    """Where a stem's reference sound came from, for the stems table ('' for none)."""
    if ref is None:
        return ""
    strength = "" if ref.strength is None else f", strength {ref.strength:g}"
    where = "library" if is_library_reference(ref) else "own file"
    return f"{where}: {ref.caption or ref.clip_id}{strength}"


def reference_choices(hits) -> list[tuple[str, str]]:
    """Search hits as (label, clip id) choices: caption · category · seconds · licence."""
    out = []
    for h in hits:
        e = h.entry
        secs = f"{e.seconds:.1f} s" if math.isfinite(e.seconds) else "? s"
        out.append((f"{e.caption} · {e.category} · {secs} · {e.licence or 'licence not recorded'}",
                    e.id))
    return out


def reference_markdown(choice, strength: float) -> str:
    """What the next generation starts from, with the clip's attribution."""
    if choice is None:
        return ("**Reference:** none chosen: with Source Auto, the caption picks library sounds for "
                "each take (shown after generating); from scratch, the model makes it alone.")
    e = choice.entry
    kind = "library clip" if choice.from_library else "your file"
    return (f"**Reference:** {kind} \"{html.escape(e.caption, quote=False)}\" ({e.seconds:.2f} s), "
            f"strength {strength:g}.  \n*{html.escape(e.attribution_text, quote=False)}*")


def meter_markdown(meter: dict, target_label: str) -> str:
    if meter.get("empty"):
        return "**Loudness meter:** no stems in the mix yet."
    lufs = meter["lufs"]
    tp = meter["true_peak_dbtp"]
    rep = meter["master"]
    fmt = (lambda x, unit: "silent" if x is None else f"{x:.1f} {unit}")
    peak = f"true peak {fmt(tp, 'dBTP')}"
    ceiling = rep.get("ceiling_dbtp")
    if tp is not None and ceiling is not None and tp > ceiling:
        # red, and said in words too: a mix over the ceiling clips in players that do not limit
        peak = (f'<span class="meter-over">{peak}, over the {ceiling:.1f} dBTP ceiling</span>')
    lines = [f"**Mix now:** {fmt(lufs, 'LUFS')} integrated, {peak}"]
    if rep.get("target_lufs") is None:
        lines.append(f"**Export ({html.escape(target_label)}):** no loudness normalisation; "
                     f"true peak kept under {rep['ceiling_dbtp']:.1f} dBTP")
    else:
        after = rep.get("lufs_after")
        line = (f"**Export at {html.escape(target_label)}:** {fmt(after, 'LUFS')}, true peak "
                f"{fmt(rep.get('true_peak_dbtp_after'), 'dBTP')} (gain {rep['gain_db']:+.1f} dB"
                f"{', limited' if rep.get('limited') else ''})")
        if not rep.get("target_reached", True):
            line += " — the target can't be reached under the peak ceiling without crushing the sound"
        lines.append(line)
    return "  \n".join(lines)


def model_notice(name: str) -> str:
    """What the selected model obeys, in words, and the 16 kHz caveat."""
    from foley_core import backends

    words = {"text": "caption", "negative": "negative caption", "video": "video",
             "mask": "mask (region)", "curve": "loudness curve"}
    try:
        # The embedded model is small and generation needs it loaded anyway; other backends
        # describe themselves without loading their (large, maybe unavailable) weights.
        backend = (backends.get_backend(name) if name == "embedded"
                   else backends.backend_class(name)())
    except FoleyError as err:
        return f"**{html.escape(name, quote=False)}:** not available: {html.escape(str(err), quote=False)}"
    obeys = sorted(backend.obeys)
    ignores = sorted(backend.ignores)
    desc = backend.description
    parts = [f"**Model:** {html.escape(str(desc))}."]
    if not obeys:
        parts.append("**It follows none of your instructions yet** (untrained weights): the "
                     "sound is shaped only by the loudness curve, through conform.")
    if obeys:
        parts.append("Follows: " + ", ".join(words.get(o, o) for o in obeys) + ".")
    # with a backend that starts from sounds, the caption is not ignored: it picks them (by default)
    shown_ignores = [o for o in ignores if not (o == "text" and backend.capabilities.reference)]
    if shown_ignores:
        parts.append("**Ignores:** " + ", ".join(words.get(o, o) for o in shown_ignores) + ".")
    if obeys and "curve" not in obeys:
        parts.append("A drawn curve is still applied afterwards by conforming the audio's loudness.")
    parts.append(source_notice(backend))
    if "text" in ignores:
        parts.append("For one sound in particular, choose a reference sound (library search or "
                     "your own file) and the model reshapes it instead.")
    if "video" in ignores and "curve" in obeys:
        parts.append("To time the sound to the picture, draw the curve (or propose it from motion).")
    parts.append(f"The model makes {constants.MODEL_SR // 1000} kHz mono audio (8 kHz bandwidth); a take started "
                 "from a 44.1 or 48 kHz sound keeps that sound's band above 8 kHz; "
                 f"exports are {constants.EXPORT_SR // 1000} kHz.")
    return " ".join(parts)


SOURCE_CHOICES = [("Auto: library sounds, shaped by the model", "auto"),
                  ("Library sounds", "library"), ("From scratch (model only)", "model")]


def source_notice(backend) -> str:
    """What the Source choices do with this backend: what picks the sound, and what the model
    alone (from scratch) obeys."""
    words = {"text": "the caption", "negative": "the negative caption", "video": "the video",
             "mask": "the region", "curve": "the loudness curve", "onsets": "the hits (onsets)"}
    obeys = [words.get(o, o) for o in sorted(backend.obeys)]
    alone = ("it follows " + ", ".join(obeys) if obeys else "it follows none of your instructions yet")
    if "text" not in backend.obeys:
        alone += ", not what the caption names"
    if backend.capabilities.reference:
        default = ("**The caption picks the sound:** by default (Source: Auto) each take starts from "
                   "a library clip that matches the caption; the clip is placed at the region's "
                   "contacts and the model reshapes it, following what it follows (above).")
    else:
        default = ("This model cannot start from a sound, so Source: Auto runs it alone; "
                   "Source: Library sounds is not available with it.")
    return f"{default} From scratch runs the model alone: {alone}."


CURVE_SCALE_INFO = ("How strictly the model follows your drawn curve and the sound starts before "
                    "conform; higher = stricter, may sound harsher; 1 = off.")


VIDEO_ONSETS_INFO = ("Finds where the region's motion shows a contact (a bounce, a landing) and "
                     "asks the model to start a sound there; untick for sounds that do not "
                     "follow the picture. Hits placed in the onsets lane replace these.")


def onsets_note(meta: dict) -> str:
    """Where the generation placed sound starts, and why (empty when it placed none)."""
    onsets = meta.get("onsets_s")
    if onsets is None:
        return ""
    source = {"video": "at the video's contacts",
              "given": "at the onsets lane's hits"}.get(meta.get("onsets_source"), "")
    if not onsets:
        return f"sound starts {source}: none found in the selection".replace("  ", " ")
    shown = ", ".join(f"{float(t):.2f}" for t in onsets[:12]) + (" …" if len(onsets) > 12 else "")
    return f"sound starts {source} (s into the selection): {shown}"


def curve_scale_default_label(default: float | None) -> str:
    """The label of the 'use the model's value' box, naming that value (None: no guidance)."""
    if default is None:
        return ("Use the model's value: this model has no curve guidance (conform still makes "
                "the sound follow your curve)")
    return f"Use the model's value ({default:g}{' = off' if default == 1 else ''})"


def curve_scale_note(curve_scale) -> str:
    """How a generation was curve-guided, for the result line ('' when there was no curve)."""
    if curve_scale is None:
        return ""
    x = float(curve_scale)
    return f"curve guidance {x:g}" + (" (off)" if x == 1 else "")


def result_curves(audio: np.ndarray, sr: int, *, curve: tuple | None, duration_s: float | None = None,
                  start_s: float = 0.0) -> dict:
    """The result plot's traces on one scale, the curve editor's, times in video seconds:
    "drawn" (the points as drawn and stored), "followed" (the curve generation followed: on the
    10 points/s grid, its drawn peaks kept) and "achieved" (the candidate's loudness). Generation
    takes the drawn curve's highest point as the stem's loudest moment (loudness.conform), so the
    achieved loudness is drawn with its loudest moment at that height; without a curve at 1.
    Each is (times_s, values) or None."""
    from foley_core import loudness

    achieved = loudness.relative_loudness(np.asarray(audio, np.float32), sr).astype(np.float64)
    out = {"drawn": None, "followed": None}
    peak = 1.0
    if curve is not None:
        times, values = (np.asarray(x, np.float64) for x in curve)
        order = np.argsort(times, kind="stable")
        out["drawn"] = (start_s + times[order], values[order])
        followed = loudness.resample_curve(times, values, keep_peaks=True,
                                           duration_s=duration_s or audio.size / sr)
        out["followed"] = (start_s + loudness.curve_times(followed.size), followed.astype(np.float64))
        peak = float(followed.max())
    out["achieved"] = (start_s + loudness.curve_times(achieved.size), achieved * peak)
    return out


def spectrogram_png(audio: np.ndarray, sr: int, *, curve: tuple[np.ndarray, np.ndarray] | None,
                    duration_s: float | None = None, start_s: float = 0.0) -> np.ndarray:
    """A spectrogram of a candidate with, on one scale (result_curves), its achieved loudness
    (white), the curve it followed (orange, dashed) and the curve as drawn (thin orange); returns
    an RGB image array."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    audio = np.asarray(audio, np.float32)
    traces = result_curves(audio, sr, curve=curve, duration_s=duration_s, start_s=start_s)
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=100)
    try:
        n_fft = 512
        if audio.size > n_fft:
            ax.specgram(audio + 1e-9, NFFT=n_fft, Fs=sr, noverlap=n_fft - 128, cmap="magma",
                        xextent=(start_s, start_s + audio.size / sr), vmin=-130, vmax=-20)
        ax.set_ylim(0, sr / 2)
        ax.set_ylabel("Hz")
        ax.set_xlabel("time in the video (s)")
        ax2 = ax.twinx()
        ax2.plot(*traces["achieved"], color="white", lw=2, label="achieved loudness")
        if traces["followed"] is not None:
            ax2.plot(*traces["followed"], color="#f97316", lw=2, ls="--", label="curve followed")
            ax2.plot(*traces["drawn"], color="#fdba74", lw=1, label="your curve as drawn")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("loudness (curve editor scale)", fontsize=8)
        ax2.legend(loc="upper right", fontsize=8, framealpha=0.6)
        ax.set_xlim(start_s, start_s + max(audio.size / sr, 1e-3))
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def result_markdown(meta: dict, candidates, curve=None) -> str:
    """A short account of the last generation (model, timing, curve fit)."""
    if not candidates:
        return ""
    bits = [f"**{len(candidates)} candidate(s)** from {html.escape(str(meta.get('model', '?')))}"]
    if meta.get("duration_s") is not None:
        bits.append(f"{float(meta['duration_s']):.2f} s at {meta.get('sr', constants.MODEL_SR)} Hz")
    total = (meta.get("timings_s") or {}).get("total")
    if total is not None:
        bits.append(f"made in {float(total):.1f} s")
    instr = meta.get("instructions") or {}
    if instr.get("obeyed_by_model"):
        bits.append("the model followed: " + ", ".join(map(str, instr["obeyed_by_model"])))
    ignored = [str(g) for g in instr.get("ignored_by_model") or []]
    refs = meta.get("references") or []
    if meta.get("source") == "library" and refs:
        # the caption was obeyed, by the search that picked the clips, not by the model
        names = ", ".join(f'"{html.escape(str(r.get("caption") or r.get("id")), quote=False)}"' for r in refs)
        bits.append(f"the caption picked the library sound(s) {names}; the model placed and shaped them")
        ignored = [g for g in ignored if g != "text"]
    elif meta.get("source") == "model":
        bits.append("from scratch (the model alone)")
    if ignored:
        bits.append("**the model ignored: " + ", ".join(ignored) + "**")
    if instr.get("enforced_after"):
        bits.append("applied afterwards: " + ", ".join(map(str, instr["enforced_after"])))
    if onsets_note(meta):
        bits.append(onsets_note(meta))
    if curve_scale_note(meta.get("curve_scale")):
        bits.append(curve_scale_note(meta.get("curve_scale")))
    fits = []
    if curve is not None and float(np.ptp(np.asarray(curve[1], np.float64))) < 1e-6:
        bits.append("curve fit: not measurable for a flat curve (correlation needs some change)")
        candidates = []
    for i, c in enumerate(candidates):
        r0, r1 = c.metrics.get("curve_r_before"), c.metrics.get("curve_r_after")
        if r1 is not None and math.isfinite(float(r1)):
            fits.append(f"#{i + 1}: r {float(r0):.2f} → {float(r1):.2f}" if r0 is not None
                        else f"#{i + 1}: r {float(r1):.2f}")
    if fits:
        bits.append("curve fit " + "; ".join(fits))
    return " · ".join(bits)
