"""`python launch.py render PROJECT_DIR --out MIX.wav [--stems STEMS.zip] [--mp4 OUT.mp4]`.

Re-renders a saved project headless. All outputs or none: every output is rendered to a
temporary file beside its target first and moved into place only when all of them succeeded.
Prints a one-line JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
from pathlib import Path

from foley_core.atomic import atomic_path
from foley_core.errors import ExportError


def _lufs(text: str) -> float | str:
    if text.strip().lower() in ("none", "off"):
        return "none"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a loudness in LUFS such as -23, or 'none'; got {text!r}")
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite loudness in LUFS; got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT_DIR", help="a saved project folder (holding project.json)")
    parser.add_argument("--out", metavar="MIX.wav", help="write the mastered mix (48 kHz, 24-bit, stereo WAV)")
    parser.add_argument("--stems", metavar="STEMS.zip", help="write a zip of the stems, the mix, README and attribution")
    parser.add_argument("--mp4", metavar="OUT.mp4", help="write the video with the mastered mix as its sound")
    parser.add_argument("--lufs", type=_lufs, default=None, metavar="LUFS|none",
                        help="loudness target: -23 (EBU R128), -16 / -14 (web), or 'none' "
                             "(default: the project's setting)")
    parser.add_argument("--ceiling", type=float, default=None, metavar="DBTP",
                        help="true-peak ceiling in dBTP (default: the project's setting, usually -1)")
    parser.add_argument("--original-audio", choices=("drop", "track", "mix"), default="drop",
                        help="MP4 only: drop the video's own sound, keep it as a second track, or mix it under")
    parser.add_argument("--original-gain-db", type=float, default=-12.0,
                        help="MP4 with --original-audio mix: level of the original sound (dB)")


_SUFFIX = {"mix": ".wav", "stems": ".zip", "mp4": ".mp4"}
_OPTION = {"mix": "--out", "stems": "--stems", "mp4": "--mp4"}


def _check_target(path_text: str, key: str) -> Path:
    path = Path(path_text).expanduser()
    parent = path.parent
    option, suffix = _OPTION[key], _SUFFIX[key]
    if path.suffix.lower() != suffix:
        raise ExportError(f"{option} needs a file name ending in {suffix}; got '{path.name}'")
    if path.is_dir():
        raise ExportError(f"{option} '{path}' is a folder; give a file name")
    if not parent.exists():
        raise ExportError(f"cannot write {option} '{path}': the folder '{parent}' does not exist")
    if not parent.is_dir():
        raise ExportError(f"cannot write {option} '{path}': '{parent}' is not a folder")
    return path


def run(args: argparse.Namespace) -> int:
    # imported here: scipy and pyloudnorm would otherwise load for every command's --help
    from foley_core import export
    from foley_core.project import load_project

    targets = {key: value for key, value in (("mix", args.out), ("stems", args.stems), ("mp4", args.mp4))
               if value is not None}
    if not targets:
        raise ExportError("nothing to render: give --out MIX.wav, --stems STEMS.zip and/or --mp4 OUT.mp4")
    paths = {key: _check_target(value, key) for key, value in targets.items()}

    project = load_project(args.project)
    target_lufs = export.FROM_PROJECT if args.lufs is None else (None if args.lufs == "none" else args.lufs)
    ceiling = export.FROM_PROJECT if args.ceiling is None else args.ceiling
    if "mp4" in paths and project.video_path is None:
        raise ExportError(f"--mp4: project {project.name!r} has no video; render the WAV only")
    mastered = export.master_project(project, target_lufs=target_lufs, ceiling_dbtp=ceiling)

    summary: dict = {}
    try:
        # Each atomic_path moves its file into place only when the whole block succeeded.
        with contextlib.ExitStack() as stack:
            tmp = {key: stack.enter_context(atomic_path(p)) for key, p in paths.items()}
            if "mix" in tmp:
                export.export_mix_wav(project, tmp["mix"], mastered=mastered)
            if "stems" in tmp:
                stems_report = export.export_stems_zip(project, tmp["stems"], mastered=mastered)
                summary["stems_files"] = stems_report["files"]
                summary["excluded_stems"] = stems_report["excluded_stems"]
                summary["clipped_stems"] = stems_report["clipped_stems"]
            if "mp4" in tmp:
                export.export_mp4(project, tmp["mp4"], mastered=mastered, original_audio=args.original_audio,
                                  original_gain_db=args.original_gain_db)
    except OSError as err:
        raise ExportError(f"cannot write the outputs: {err.strerror or err}; choose a writable folder") from None

    r = mastered.report
    line = {
        "outputs": {key: str(p) for key, p in paths.items()},
        "lufs": r["lufs_after"],
        "true_peak_dbtp": r["true_peak_dbtp_after"],
        "duration_s": round(r["duration_s"], 6),
        "target_lufs": r["target_lufs"],
        "ceiling_dbtp": r["ceiling_dbtp"],
        "target_reached": r["target_reached"],
        "limited": r["limited"],
        "gain_db": round(r["gain_db"], 3),
        "n_stems": len(project.stems),
        **summary,
    }
    print(json.dumps(line))
    return 0
