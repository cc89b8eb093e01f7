"""Deliverables: the mastered mix as WAV, a stems zip, a DAW session, and the MP4 with the new sound.

All WAVs are Broadcast WAVs (RIFF WAV with a `bext` chunk), 48 kHz, 24-bit PCM, stereo. The mix
and the stems zip's files start at the video's time 0 and last the whole video (or, without a
video, until the last stem ends), so they line up in any DAW. The DAW session (a Reaper `.rpp`
with one track per stem, and the same tracks as an AAF and a CMX3600 EDL: daw_interchange) holds
each stem only where it sounds, placed at its offset; its `bext` time reference says the same
for other DAWs. Every output is written atomically: a failure
leaves no partial file and keeps an older one.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from foley_core import audio_io, bwf, daw_interchange, media, mixing
from foley_core.atomic import atomic_dir, atomic_path, work_dir
from foley_core.constants import EXPORT_SR, MODEL_SR
from foley_core.errors import ExportError
from foley_core.library.catalog import UPLOAD_CATEGORY
from foley_core.project import Project, Stem

FROM_PROJECT = "project"   # default for target_lufs / ceiling_dbtp: use the project's export settings
MIX_NAME = "mix.wav"


@dataclass
class MasteredMix:
    """The project's mix after `mixing.master`: float32 `(n, 2)` at `sr`, and the master report."""

    audio: np.ndarray
    sr: int
    report: dict


def _settings(project: Project, target_lufs: Any, ceiling_dbtp: Any) -> tuple[float | None, float]:
    target = project.export.target_lufs if target_lufs == FROM_PROJECT else target_lufs
    ceiling = project.export.ceiling_dbtp if ceiling_dbtp == FROM_PROJECT else ceiling_dbtp
    return target, float(ceiling)


def master_project(project: Project, *, target_lufs: float | None | str = FROM_PROJECT,
                   ceiling_dbtp: float | str = FROM_PROJECT) -> MasteredMix:
    """Mix the whole project at 48 kHz from time 0 and master it (loudness target, true-peak ceiling)."""
    target, ceiling = _settings(project, target_lufs, ceiling_dbtp)
    if project.duration_s <= 0:
        raise ExportError(f"nothing to export: project {project.name!r} has no video and no stems")
    mix = project.mix(EXPORT_SR)
    audio, report = mixing.master(mix, EXPORT_SR, target_lufs=target, ceiling_dbtp=ceiling)
    return MasteredMix(audio, EXPORT_SR, report)


def _check_suffix(path: Path, suffix: str, what: str) -> Path:
    if path.suffix.lower() != suffix:
        raise ExportError(f"the {what} is written as {suffix[1:].upper()}; give a file name ending in "
                          f"{suffix} (got '{path.name}')")
    if path.is_dir():
        raise ExportError(f"cannot write the {what} to '{path}': it is a folder; give a file name")
    return path


def _os_error(path: Path, err: OSError) -> ExportError:
    return ExportError(f"cannot write '{path}': {err.strerror or err}; choose a writable folder")


def export_mix_wav(project: Project, path: str | os.PathLike, *,
                   target_lufs: float | None | str = FROM_PROJECT, ceiling_dbtp: float | str = FROM_PROJECT,
                   mastered: MasteredMix | None = None) -> dict:
    """Write the mastered mix (48 kHz, 24-bit, stereo, full length from 0); return the master report.

    `target_lufs` / `ceiling_dbtp` default to the project's export settings; pass `mastered`
    (from `master_project`) to reuse a mix already rendered for another output.
    """
    path = _check_suffix(Path(path), ".wav", "mix")
    mastered = mastered or master_project(project, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
    try:
        with atomic_path(path) as tmp:
            audio_io.write_export_wav(tmp, mastered.audio, mastered.sr, **_bwf(project, "mix", 0))
    except OSError as err:
        raise _os_error(path, err) from None
    return {**mastered.report, "path": str(path), "sr": EXPORT_SR, "bits": 24, "channels": 2}


# EBU R 98 coding history of every file we write: linear PCM, 48 kHz, 24-bit, stereo
_CODING_HISTORY = f"A=PCM,F={EXPORT_SR},W=24,M=stereo,T={bwf.ORIGINATOR}\r\n"


def _bwf(project: Project, what: str, time_reference: int) -> dict:
    """The `bext` and iXML chunks of an exported WAV (keyword arguments of write_export_wav)."""
    bext = bwf.Bext(description=f"{what} - {project.name}", time_reference=time_reference,
                    coding_history=_CODING_HISTORY)
    return {"bext": bext, "ixml": bwf.ixml(project.name, what)}


def slugify(text: str, max_len: int = 40) -> str:
    """A file-name-safe ASCII slug: 'Door slam, heavy!' -> 'door_slam_heavy' ('stem' if empty)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:max_len].rstrip("_")
    return slug or "stem"


def stem_file_names(stems: list[Stem]) -> list[str]:
    """`01_<slug of the stem's name>.wav`, numbered in project order.

    A stem's name is its caption's first words unless the user renamed it. The number keeps the
    names unique and the slug keeps them safe: ASCII letters, digits and '_' only, so no path
    separator, no dot file and no name Windows reserves (CON, NUL, ...) can come out.
    """
    width = max(2, len(str(len(stems))))
    return [f"{k + 1:0{width}d}_{slugify(s.name)}.wav" for k, s in enumerate(stems)]


def _fmt_pan(pan: float) -> str:
    if abs(pan) < 1e-6:
        return "centre"
    return f"{abs(pan) * 100:.0f}% {'left' if pan < 0 else 'right'}"


def _fmt_db(value: float | None, unit: str) -> str:
    return "n/a (silence)" if value is None else f"{value:.1f} {unit}"


def _readme(project: Project, entries: list[tuple[str, Stem, float]], excluded: list[Stem],
            mastered: MasteredMix, n_samples: int) -> str:
    r = mastered.report
    duration_s = n_samples / EXPORT_SR
    lines = [
        f"Foley studio export: {project.name}",
        f"Exported {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"Every WAV in this archive is {EXPORT_SR} Hz, 24-bit PCM, stereo. Each one starts at 0:00 of the "
        f"{'video' if project.video_path else 'timeline'}",
        f"and lasts {duration_s:.3f} s ({n_samples} samples), so they line up when placed at the start of a "
        "DAW session.",
        "",
        "Files:",
    ]
    if r.get("target_lufs") is None:
        loud = "no loudness normalisation"
    else:
        loud = f"loudness normalised to {r['target_lufs']:g} LUFS"
    limiter = (f"the true-peak limiter reduced peaks by up to {r['limiter_reduction_db']:.1f} dB"
               if r.get("limited") else "no limiting was needed")
    lines += [
        f"  {MIX_NAME}: the mix of the stems below, mastered: {loud} (measured "
        f"{_fmt_db(r.get('lufs_after'), 'LUFS')} integrated, ITU-R BS.1770-4), true peak "
        f"{_fmt_db(r.get('true_peak_dbtp_after'), 'dBTP')} (ceiling {r['ceiling_dbtp']:g} dBTP); {limiter}.",
    ]
    for name, stem, peak_db in entries:
        m, st = stem.mix, stem.settings
        trim_end = "end" if m.trim_end_s is None else f"{m.trim_end_s:.3f} s"
        lines.append(
            f"  {name}: stem \"{stem.name}\" (caption: \"{stem.caption}\"), starts at {m.offset_s:.3f} s, "
            f"gain {m.gain_db:+.1f} dB, pan {_fmt_pan(m.pan)}, fade in {m.fade_in_s:.3f} s / out "
            f"{m.fade_out_s:.3f} s, source trimmed to {m.trim_start_s:.3f} s - {trim_end}; made by "
            f"{st.model.backend}{f' ({st.model.weights_id})' if st.model.weights_id else ''}, seed {st.seed}, "
            f"{st.steps} steps.")
        if peak_db > 0.0:
            lines.append(f"      WARNING: this stem peaks at {peak_db:+.1f} dBFS with its gain and was clipped "
                         "to full scale in the 24-bit file; lower its gain and export again.")
    if excluded:
        lines += ["", "Not included (muted, or not soloed while other stems are):"]
        lines += [f"  \"{s.name}\" (caption: \"{s.caption}\")" for s in excluded]
    gain = r.get("gain_db", 0.0)
    lines += [
        "",
        "The stems are not mastered: each carries its own gain, pan, fades, trim and placement, but",
        f"not the mix's loudness gain ({gain:+.1f} dB) or limiter. Their sum is the mix before mastering.",
        "",
        "Sample rate and bandwidth:",
    ]
    rates = sorted({s.sr for _, s, _ in entries})
    if not rates:
        lines.append("  There are no stems in this export.")
    else:
        rate_text = ", ".join(f"{sr} Hz" for sr in rates)
        lines.append(f"  The session and these files run at {EXPORT_SR} Hz; the stems' audio was made at {rate_text}.")
        if min(rates) < EXPORT_SR:
            lines.append(f"  Stems below {EXPORT_SR // 1000} kHz were upsampled for delivery; upsampling adds no "
                         "detail above their own bandwidth.")
        lines.append(f"  The model's native rate is {MODEL_SR} Hz (at most {MODEL_SR // 2000} kHz of bandwidth); "
                     "stems made from a reference")
        lines.append("  sound at a higher rate keep its bandwidth (its band above about 7 kHz, following the "
                     "model's level).")
        if max(rates) < EXPORT_SR:
            lines.append(f"  There is no content above {max(rates) / 2000:g} kHz: upsampling adds no "
                         "detail; this is expected, not a fault of the export.")
    if any(s.settings.reference is not None for _, s, _ in entries):
        lines += ["", "Some stems were made from library sounds: see ATTRIBUTION.txt for their licences."]
    return "\n".join(lines) + "\n"


def _attribution(entries: list[tuple[str, Stem, float]]) -> str | None:
    refs = [(name, s) for name, s, _ in entries if s.settings.reference is not None]
    if not refs:
        return None
    lines = ["Reference sounds used in this export", ""]
    for name, s in refs:
        ref = s.settings.reference
        caption = f" (\"{ref.caption}\")" if ref.caption else ""
        if ref.clip_id.startswith(f"{UPLOAD_CATEGORY}/"):
            # the user's own file: its licence is theirs to know; a local path means nothing to
            # whoever receives the stems, so only the file name is given
            lines += [f"{name} was made from your own sound '{Path(ref.path).name or ref.clip_id}'"
                      f"{caption}:",
                      f"  Licence: {ref.licence or 'not recorded: make sure you have the right to use this sound'}"]
            if ref.attribution:
                lines.append(f"  Attribution: {ref.attribution}")
        else:
            lines += [f"{name} was made from library clip '{ref.clip_id}'{caption}:",
                      f"  Licence: {ref.licence or 'not recorded'}",
                      f"  Attribution: {ref.attribution or 'not recorded'}"]
            if ref.path:
                lines.append(f"  Source: {ref.path}")
        lines.append("")
    return "\n".join(lines)


def export_stems_zip(project: Project, path: str | os.PathLike, *,
                     target_lufs: float | None | str = FROM_PROJECT, ceiling_dbtp: float | str = FROM_PROJECT,
                     mastered: MasteredMix | None = None) -> dict:
    """Write a zip of the audible stems, the mastered mix, README.txt and (if needed) ATTRIBUTION.txt.

    Each stem is bounced full length from time 0 with its offset, gain, pan, fades and trim
    (48 kHz, 24-bit, stereo; all files the same length). Returns a report: file names, the
    master report, excluded (muted / not soloed) stems, clipped stems.
    """
    path = _check_suffix(Path(path), ".zip", "stems archive")
    mastered = mastered or master_project(project, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
    n_samples = mastered.audio.shape[0]
    rendered = project.render_stems(EXPORT_SR)
    plays = mixing.audible(rendered)
    included = [s for s, p in zip(project.stems, plays) if p]
    excluded = [s for s, p in zip(project.stems, plays) if not p]
    names = stem_file_names(included)
    entries: list[tuple[str, Stem, float]] = []
    try:
        with work_dir("stems-") as work, atomic_path(path) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                mix_file = Path(work) / MIX_NAME
                audio_io.write_export_wav(mix_file, mastered.audio, mastered.sr, **_bwf(project, "mix", 0))
                zf.write(mix_file, MIX_NAME)
                mix_file.unlink()
                bounces = [r for r, p in zip(rendered, plays) if p]
                for name, stem, bounce in zip(names, included, bounces):
                    audio = bounce.audio
                    if audio.shape[0] != n_samples:  # same timeline as the mix, by construction
                        raise ExportError(f"internal length mismatch for stem '{stem.name}'")
                    peak = float(np.abs(audio).max()) if audio.size else 0.0
                    peak_db = mixing.gain_to_db(peak) if peak > 0 else -np.inf
                    entries.append((name, stem, peak_db))
                    f = Path(work) / name
                    # full length from the project's time 0, so the time reference is 0
                    audio_io.write_export_wav(f, audio, EXPORT_SR, **_bwf(project, stem.name, 0))
                    zf.write(f, name)
                    f.unlink()
                zf.writestr("README.txt", _readme(project, entries, excluded, mastered, n_samples))
                attribution = _attribution(entries)
                if attribution is not None:
                    zf.writestr("ATTRIBUTION.txt", attribution)
    except OSError as err:
        raise _os_error(path, err) from None
    return {
        "path": str(path),
        "files": [MIX_NAME, *names, "README.txt", *(["ATTRIBUTION.txt"] if attribution else [])],
        "excluded_stems": [s.name for s in excluded],
        "clipped_stems": [name for name, _, peak_db in entries if peak_db > 0.0],
        "master": mastered.report,
    }


def export_mp4(project: Project, path: str | os.PathLike, *, original_audio: str = "drop",
               original_gain_db: float = -12.0, target_lufs: float | None | str = FROM_PROJECT,
               ceiling_dbtp: float | str = FROM_PROJECT, mastered: MasteredMix | None = None) -> dict:
    """Mux the mastered mix into a copy of the project's video (AAC stereo 48 kHz) via media.mux_mp4.

    `original_audio`: 'drop', 'track' (kept as a second track) or 'mix' (under the new sound at
    `original_gain_db`; the loudness target applies to the new sound only, so mixing the
    original in makes the result louder). AAC encoding can move true peaks by a fraction of a dB.
    """
    path = _check_suffix(Path(path), ".mp4", "video")
    if project.video_path is None:
        raise ExportError(f"project {project.name!r} has no video, so there is nothing to make an MP4 of; "
                          "export the mix as WAV instead")
    if not project.video_path.is_file():
        raise ExportError(f"the project's video '{project.video_path}' is missing; put it back or relink the "
                          "video, then export again")
    mastered = mastered or master_project(project, target_lufs=target_lufs, ceiling_dbtp=ceiling_dbtp)
    try:
        with atomic_path(path) as tmp:
            media.mux_mp4(project.video_path, mastered.audio, mastered.sr, tmp,
                          original_audio=original_audio, original_gain_db=original_gain_db)
    except OSError as err:
        raise _os_error(path, err) from None
    return {**mastered.report, "path": str(path), "original_audio": original_audio}


# --- DAW session --------------------------------------------------------------------------------

SESSION_AUDIO_DIR = "audio"
SESSION_VIDEO_DIR = "video"


@dataclass
class SessionTrack:
    """One stem of a DAW session: its file (relative to the session folder) and where it sits."""

    name: str
    file: str
    position_s: float
    length_s: float
    gain_db: float
    mute: bool
    solo: bool
    guid: str


def _stem_region(stem: Stem, duration_s: float) -> tuple[int, np.ndarray] | None:
    """(first sample on the timeline, audio) of the part of `stem` inside [0, duration_s) at 48 kHz,
    with its trim, fades and pan but not its gain (the DAW track's volume carries that); None
    when none of it is inside."""
    m = stem.mix
    # a negative offset cuts the head, as in the mix; a positive one is the file's position
    audio = mixing.render_stem(stem.audio, stem.sr, gain_db=0.0, pan=m.pan, offset_s=min(0.0, m.offset_s),
                               trim_start_s=m.trim_start_s, trim_end_s=m.trim_end_s, fade_in_s=m.fade_in_s,
                               fade_out_s=m.fade_out_s, out_sr=EXPORT_SR)
    start = max(0, int(round(m.offset_s * EXPORT_SR)))
    audio = audio[:max(0, int(round(duration_s * EXPORT_SR)) - start)]
    return (start, audio) if audio.shape[0] else None


def _guid(seed: str) -> str:
    # stable per stem, so a session exported twice names its tracks the same way
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"foley-studio:{seed}")).upper() + "}"


def rpp_string(text: str) -> str:
    """A string as Reaper's .rpp writes it: quoted with ", ' or ` (whichever it does not hold)."""
    text = " ".join(str(text).split())          # one line: .rpp is line-based
    for quote in ('"', "'", "`"):
        if quote not in text:
            return f"{quote}{text}{quote}"
    return "`" + text.replace("`", "'") + "`"


def _seconds(value: float) -> str:
    return format(float(value), ".12g")


def reaper_project(project: Project, tracks: list[SessionTrack], *, video: tuple[str, float] | None,
                   notes: str) -> str:
    """The text of a Reaper project: the video (if any) on a track of its own, then one track per
    stem with its name, volume (gain), mute/solo and one item at its position."""
    lines = [f'<REAPER_PROJECT 0.1 "6.0" {int(datetime.now(timezone.utc).timestamp())}',
             "  RIPPLE 0", f"  SAMPLERATE {EXPORT_SR} 0 0", "  TEMPO 120 4 4",
             "  PANLAW 1",         # 0 dB at the centre: the stem files already hold their pan
             "  <NOTES 0 2", *[f"    |{line}" for line in notes.splitlines()], "  >"]

    def track(name: str, guid: str, volume: float, mute: bool, solo: bool, item: list[str]) -> None:
        lines.extend([f"  <TRACK {guid}", f"    NAME {rpp_string(name)}",
                      f"    VOLPAN {_seconds(volume)} 0 -1 -1 1",
                      f"    MUTESOLO {int(mute)} {2 if solo else 0} 0", "    NCHAN 2", *item, "  >"])

    def item(name: str, file: str, kind: str, position_s: float, length_s: float, guid: str) -> list[str]:
        return ["    <ITEM", f"      POSITION {_seconds(position_s)}", f"      LENGTH {_seconds(length_s)}",
                "      SOFFS 0", f"      NAME {rpp_string(name)}", f"      IGUID {guid}",
                f"      <SOURCE {kind}", f"        FILE {rpp_string(file)}", "      >", "    >"]

    if video is not None:
        file, length_s = video
        # the picture to work against; its own sound starts silent (volume 0), raise it to hear it
        guid = _guid(f"{project.created_at}:video")
        track("Video", guid, 0.0, False, False, item(Path(file).name, file, "VIDEO", 0.0, length_s, guid))
    for t in tracks:
        track(t.name, t.guid, mixing.db_to_gain(t.gain_db), t.mute, t.solo,
              item(t.name, t.file, "WAVE", t.position_s, t.length_s, _guid(t.guid)))
    lines.append(">")
    return "\n".join(lines) + "\n"


def _session_notes(project: Project, tracks: list[SessionTrack], outside: list[Stem]) -> str:
    lines = [f"Foley studio session: {project.name}",
             f"Exported {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.",
             "",
             f"One track per stem; each file ({EXPORT_SR} Hz, 24-bit, stereo Broadcast WAV) holds the stem "
             "where it sounds,",
             "with its trim, fades and pan, at unity gain; the track's volume is the stem's gain and its "
             "mute/solo are the studio's.",
             "The bext time reference of each file is its position in samples from the project's time 0, so "
             "'spot to original time' in other DAWs places it the same way.",
             "The tracks together, with mute and solo as set here, are the studio's mix before mastering.",
             "The .aaf (audio embedded) and the .edl (CMX3600, audio events) place the same files on the same "
             "tracks, for DAWs that do not read .rpp."]
    if outside:
        lines += ["", "Left out (placed wholly outside the timeline):", *[f"  {s.name}" for s in outside]]
    return "\n".join(lines) + "\n"


def _write_session(project: Project, folder: Path, include_video: bool, copy_video: bool = True) -> dict:
    """Write the session's files into the (empty) `folder`; return the report. Without
    `copy_video` the .rpp names the video's place in the session but the caller puts it there."""
    if project.duration_s <= 0:
        raise ExportError(f"nothing to export: project {project.name!r} has no video and no stems")
    names = stem_file_names(project.stems)
    (folder / SESSION_AUDIO_DIR).mkdir()
    tracks: list[SessionTrack] = []
    outside: list[Stem] = []
    entries: list[tuple[str, Stem, float]] = []
    for name, stem in zip(names, project.stems):
        region = _stem_region(stem, project.duration_s)
        if region is None:
            outside.append(stem)
            continue
        start, audio = region
        rel = f"{SESSION_AUDIO_DIR}/{name}"
        audio_io.write_export_wav(folder / rel, audio, EXPORT_SR, **_bwf(project, stem.name, start))
        tracks.append(SessionTrack(stem.name, rel, start / EXPORT_SR, audio.shape[0] / EXPORT_SR,
                                   stem.mix.gain_db, stem.mix.mute, stem.mix.solo, _guid(stem.id)))
        entries.append((rel, stem, 0.0))
    video = None
    if include_video and project.video_path is not None and project.video_path.is_file():
        rel_video = f"{SESSION_VIDEO_DIR}/{project.video_path.name}"
        if copy_video:
            (folder / SESSION_VIDEO_DIR).mkdir()
            with atomic_path(folder / rel_video) as tmp:
                shutil.copyfile(project.video_path, tmp)
        video = (rel_video, project.duration_s)
    base = slugify(project.name, 60)
    rpp_name = f"{base}.rpp"
    notes = _session_notes(project, tracks, outside)
    with atomic_path(folder / rpp_name) as tmp:
        tmp.write_text(reaper_project(project, tracks, video=video, notes=notes), encoding="utf-8")
    interchange = _write_interchange(project, folder, base, tracks)
    with atomic_path(folder / "README.txt") as tmp:
        tmp.write_text(notes, encoding="utf-8")
    attribution = _attribution(entries)
    if attribution is not None:
        with atomic_path(folder / "ATTRIBUTION.txt") as tmp:
            tmp.write_text(attribution, encoding="utf-8")
    return {"rpp": rpp_name, **interchange, "tracks": [t.__dict__.copy() for t in tracks],
            "video": video[0] if video else None, "outside_timeline": [s.name for s in outside]}


def _write_interchange(project: Project, folder: Path, base: str, tracks: list[SessionTrack]) -> dict:
    """The EDL and the AAF beside the .rpp (same stems, same places): {"edl": name, "aaf": name,
    "fps": the frame rate they use}."""
    fps = None
    if project.video_path is not None and project.video_path.is_file():
        fps = media.probe_video(project.video_path).fps
    fps = daw_interchange.frame_rate(fps)
    events = [daw_interchange.SpotEvent(t.name, t.file, int(round(t.position_s * EXPORT_SR)),
                                        int(round(t.length_s * EXPORT_SR)), EXPORT_SR) for t in tracks]
    edl_name, aaf_name = f"{base}.edl", f"{base}.aaf"
    daw_interchange.write_edl(folder / edl_name, project.name, events, fps)
    daw_interchange.write_aaf(folder / aaf_name, folder, project.name, events, fps)
    return {"edl": edl_name, "aaf": aaf_name, "fps": fps}


def export_daw_session(project: Project, path: str | os.PathLike, *, include_video: bool = True) -> dict:
    """Write a DAW session: a Reaper .rpp, an AAF and an EDL of the same tracks, one Broadcast WAV
    per stem at its offset, the video.

    `path` ending in `.zip`: a zip holding one folder named after the project; otherwise a
    folder, which must not exist yet (or be empty). Every stem gets a track (muted ones muted),
    except stems placed wholly outside the timeline (listed in the report). Returns a report:
    path, the .rpp's, .edl's and .aaf's and every file's path inside the session, the frame rate
    of the EDL and the AAF's timecode (the video's, else 25), the tracks.
    """
    path = Path(path)
    if path.suffix.lower() != ".zip":
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise ExportError(f"cannot write the DAW session into '{path}': it exists and is not an empty "
                              "folder; give a new folder name (or a name ending in .zip)")
        if not path.parent.is_dir():
            raise ExportError(f"cannot write the DAW session '{path}': the folder '{path.parent}' "
                              "does not exist")
    try:
        if path.suffix.lower() == ".zip":
            top = slugify(project.name, 60)
            with work_dir("daw-") as work, atomic_path(path) as tmp:
                # the video (up to hundreds of MB) goes into the zip from where it is, not via a copy
                report = _write_session(project, work, include_video, copy_video=False)
                sources = {p.relative_to(work).as_posix(): p for p in work.rglob("*") if p.is_file()}
                if report["video"] is not None:
                    sources[report["video"]] = project.video_path
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
                    for rel in sorted(sources):
                        zf.write(sources[rel], f"{top}/{rel}")
            files = [f"{top}/{rel}" for rel in sorted(sources)]
        else:
            with atomic_dir(path) as tmp:
                report = _write_session(project, tmp, include_video)
                files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
    except OSError as err:
        raise _os_error(path, err) from None
    return {"path": str(path), "files": files, **report}
