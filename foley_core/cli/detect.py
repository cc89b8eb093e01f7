"""`launch.py detect`: propose tracks (boxes, masks, motion curves, contact times) from a video.

    python launch.py detect --video V.mp4 [--vocab "dog, car door"] [--caption "..."]
        [--start S --duration D] [--method auto|yolo-world|motion] [--weights PATH] --out T.json

Writes the tracks JSON that `generate --tracks T.json --track ID` reads (format in
foley_core/vision/tracks.py). Which method ran, and why, is in the JSON ("source", "note") and on
stderr.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from foley_core.errors import FoleyError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", required=True, help="the video file")
    parser.add_argument("--out", required=True, help="where to write the tracks JSON")
    parser.add_argument("--vocab", default=None,
                        help="comma-separated classes to look for, e.g. 'dog, car door'")
    parser.add_argument("--caption", default=None,
                        help="the sound's caption; its nouns join the vocabulary")
    parser.add_argument("--start", type=float, default=0.0, help="range start (s), default 0")
    parser.add_argument("--duration", type=float, default=None,
                        help="range length (s), default to the end of the video")
    parser.add_argument("--method", choices=("auto", "yolo-world", "motion"), default="auto",
                        help="auto: YOLO-World when its weights are available, else motion")
    parser.add_argument("--weights", default=None,
                        help="YOLO-World checkpoint (default $FOLEY_YOLO_WORLD_WEIGHTS)")
    parser.add_argument("--fps", type=float, default=4.0,
                        help="detection frames per second for YOLO-World (default 4)")
    parser.add_argument("--conf", type=float, default=0.1, help="YOLO-World box threshold (0..1)")
    parser.add_argument("--grabcut", action="store_true",
                        help="tighten each detected box to the object (OpenCV GrabCut)")
    parser.add_argument("--max-tracks", type=int, default=10, help="keep at most N tracks")


def _check(args: argparse.Namespace) -> None:
    from foley_core.errors import TimeRangeError

    if not (math.isfinite(args.fps) and args.fps > 0):
        raise FoleyError(f"--fps must be positive, got {args.fps}.")
    if not (0.0 <= args.conf <= 1.0):
        raise FoleyError(f"--conf must be between 0 and 1, got {args.conf}.")
    if args.max_tracks < 1:
        raise FoleyError(f"--max-tracks must be at least 1, got {args.max_tracks}.")
    if args.duration is not None and not args.duration > 0:
        raise TimeRangeError(f"--duration must be positive, got {args.duration}.")
    for option, value in (("--start", args.start), ("--duration", args.duration)):
        if value is not None and not math.isfinite(value):
            raise TimeRangeError(f"{option} must be a finite number of seconds, got {value}.")
    if args.start < 0:
        raise TimeRangeError(f"--start must be 0 or more seconds, got {args.start:g}.")


def _check_files(args: argparse.Namespace) -> None:
    """Inputs are regular files; --out names a new .json in an existing, writable folder and is
    neither the video nor the weights. All before any frame is read."""
    from foley_core.audio_io import check_input_file
    from foley_core.errors import MediaError
    from foley_core.outputs import check_outputs

    try:
        check_input_file(args.video, "video file")
    except MediaError as err:
        raise MediaError(f"--video: {err}") from None
    inputs = {"--video": args.video}
    if args.weights is not None and os.path.lexists(args.weights):
        inputs["--weights"] = args.weights        # a missing one is reported by the detector
    check_outputs({"--out": args.out}, inputs, suffixes={"--out": ".json"})


def run(args: argparse.Namespace) -> int:
    _check(args)
    _check_files(args)
    from foley_core.vision import detect_tracks, save_tracks

    track_set = detect_tracks(
        args.video, vocab=args.vocab, caption=args.caption, start_s=args.start,
        duration_s=args.duration, method=args.method, weights=args.weights,
        detect_fps=args.fps, conf=args.conf, grabcut=args.grabcut, max_tracks=args.max_tracks,
    )
    save_tracks(track_set, args.out)
    print(f"note: method used: {track_set.source}. {track_set.note}", file=sys.stderr)
    print(f"{len(track_set)} track(s) -> {args.out}", file=sys.stderr)
    for track in track_set:
        events = ", ".join(f"{t:.2f}" for t in track.events_s) or "none"
        print(f"  {track.id}: {track.label} ({track.source}, score {track.score:.2f}, "
              f"{track.start_s:.2f}-{track.end_s:.2f} s, contacts at {events})", file=sys.stderr)
    return 0
