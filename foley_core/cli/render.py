"""`python launch.py render PROJECT_DIR --out MIX.wav [--stems STEMS.zip] [--mp4 OUT.mp4] [--daw DIR]`.

Re-renders a saved project headless. All outputs or none: every output is rendered to a
temporary file beside its target first and moved into place only when all of them succeeded.
No output may be an input: every file the project uses is compared (links resolved) before any
work. SIGTERM removes every temporary file and stops ffmpeg; after a SIGKILL the next render
removes what was left. Prints a one-line JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math

from foley_core import atomic
from foley_core.atomic import atomic_path
from foley_core.errors import ExportError
from foley_core.outputs import check_output_folder, check_outputs


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
    parser.add_argument("--daw", metavar="DIR|DAW.zip",
                        help="write a DAW session: a Reaper .rpp with one track per stem at its offset, the "
                             "same tracks as an AAF (stems embedded) and a CMX3600 EDL, the stems as "
                             "Broadcast WAVs and the video, into a new folder (or a .zip)")
    parser.add_argument("--lufs", type=_lufs, default=None, metavar="LUFS|none",
                        help="loudness target: -23 (EBU R128), -16 / -14 (web), or 'none' "
                             "(default: the project's setting)")
    parser.add_argument("--ceiling", type=float, default=None, metavar="DBTP",
                        help="true-peak ceiling in dBTP (default: the project's setting, usually -1)")
    parser.add_argument("--original-audio", choices=("drop", "track", "mix"), default="drop",
                        help="MP4 only: drop the video's own sound, keep it as a second track, or mix it under")
    parser.add_argument("--original-gain-db", type=float, default=-12.0,
                        help="MP4 with --original-audio mix: level of the original sound (dB)")


# output key -> (argparse attribute, option, suffix of what is written)
_OUTPUTS = {"mix": ("out", "--out", ".wav"), "stems": ("stems", "--stems", ".zip"), "mp4": ("mp4", "--mp4", ".mp4")}


def run(args: argparse.Namespace) -> int:
    with atomic.terminate_raises():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    # imported here: scipy and pyloudnorm would otherwise load for every command's --help
    from foley_core import export
    from foley_core.project import load_project, project_files

    outputs = {option: getattr(args, attr) for attr, option, _ in _OUTPUTS.values() if getattr(args, attr) is not None}
    # a DAW session is a zip (checked as a file) or a new folder (checked as one)
    daw_folder = args.daw if args.daw is not None and not str(args.daw).lower().endswith(".zip") else None
    if args.daw is not None and daw_folder is None:
        outputs["--daw"] = args.daw
    if not outputs and daw_folder is None:
        raise ExportError("nothing to render: give --out MIX.wav, --stems STEMS.zip, --mp4 OUT.mp4 and/or "
                          "--daw DIR")
    suffixes = {option: suffix for _, option, suffix in _OUTPUTS.values()} | {"--daw": ".zip"}
    check_outputs(outputs, suffixes=suffixes)          # a typo costs nothing: before the project is read
    if daw_folder is not None:
        daw_folder = check_output_folder("--daw", daw_folder, outputs)
    project = load_project(args.project)
    # No output may be a file the project uses (its stems, masks, references, video, project.json).
    checked = check_outputs(outputs, project_files(args.project, project), suffixes=suffixes)
    paths = {key: checked[option] for key, (_, option, _) in _OUTPUTS.items() if option in checked}
    if "--daw" in checked:
        paths["daw"] = checked["--daw"]
    # what a killed earlier render left beside these outputs and in the temp folder
    for folder in {p.parent for p in paths.values()} | ({daw_folder.parent} if daw_folder else set()):
        atomic.sweep_stale_temps(folder)
    atomic.sweep_stale_work_dirs()
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
            if daw_folder is not None:
                tmp["daw"] = stack.enter_context(atomic.atomic_dir(daw_folder))
            if "mix" in tmp:
                export.export_mix_wav(project, tmp["mix"], mastered=mastered)
            if "stems" in tmp:
                stems_report = export.export_stems_zip(project, tmp["stems"], mastered=mastered)
                summary["stems_files"] = stems_report["files"]
                summary["excluded_stems"] = stems_report["excluded_stems"]
                summary["clipped_stems"] = stems_report["clipped_stems"]
            if "daw" in tmp:
                daw_report = export.export_daw_session(project, tmp["daw"])
                summary["daw_rpp"] = daw_report["rpp"]
                summary["daw_edl"], summary["daw_aaf"] = daw_report["edl"], daw_report["aaf"]
                summary["daw_tracks"] = [t["name"] for t in daw_report["tracks"]]
            if "mp4" in tmp:
                export.export_mp4(project, tmp["mp4"], mastered=mastered, original_audio=args.original_audio,
                                  original_gain_db=args.original_gain_db)
    except OSError as err:
        raise ExportError(f"cannot write the outputs: {err.strerror or err}; choose a writable folder") from None

    r = mastered.report
    line = {
        "outputs": {key: str(p) for key, p in paths.items()}
        | ({"daw": str(daw_folder)} if daw_folder else {}),
        "lufs": r["lufs_after"],
        "true_peak_dbtp": r["true_peak_dbtp_after"],
        "duration_s": round(r["duration_s"], 6),
        "target_lufs": r["target_lufs"],
        "ceiling_dbtp": r["ceiling_dbtp"],
        "target_reached": r["target_reached"],
        "limited": r["limited"],
        "gain_db": round(r["gain_db"], 3),
        "n_stems": len(project.stems),
        # placed wholly before 0 or after the video's end: they render as silence
        "stems_outside_timeline": [s.name for s in project.stems
                                   if s.end_s <= 0 or s.mix.offset_s >= project.duration_s],
        **summary,
    }
    print(json.dumps(line))
    return 0
