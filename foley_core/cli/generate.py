"""`launch.py generate`: make a sound stem for a video selection (or from text and a curve alone).

    python launch.py generate --video V.mp4 --caption "TEXT" [--negative "TEXT"]
        [--mask MASK.png | --box x0,y0,x1,y1 | --tracks TRACKS.json --track ID | --point X,Y@T]
        [--loudness CURVE.csv] [--onsets T1,T2,...] [--sketch VOICE.wav] [--no-video-onsets]
        [--start S] [--duration D] [--seed N] [--candidates K]
        [--steps K] [--text-scale A] [--video-scale B] [--curve-scale G] [--conform C]
        [--reference REF.wav|LIBRARY_ID | --from-scratch] [--strength S] [--reference-fit auto|loop|oneshot]
        [--library-folder DIR ...]
        [--model embedded|audioldm2] [--device cpu|cuda] [--take TAKE.wav --span START,END]
        --out OUT.wav [--mp4 OUT.mp4]

A stem is made from a sound (audio-to-audio): by default the library clips that best match the
caption (one per candidate), or --reference. The sound is fitted to the selection and the model
starts from it, moving away from it by --strength (0 = the sound itself, 1 = ignore it). The
JSON report carries each candidate's clip (`references`: id, licence, attribution, search rank).
--library-folder DIR (repeatable) adds your own sound folders to the clips the caption picks
from (and lets --reference name one of their clips by id). --from-scratch runs the model alone,
from noise.

Onsets (hits) say where sounds start. By default, with a video and a region (--mask, --box,
--track or --point), they are the contacts that the region's motion shows (reported as
`onsets_s` with `onsets_source: "video"`); --point follows the clicked object through the
selection and times its contacts from its path (YOLO-World's boxes of the clicked object's
class re-anchor it when its weights are on the machine; the report's `follow` says which:
`{"detector": "yolo-world" | null, "label": ...}`). --onsets gives them by hand (seconds from the
selection start), --sketch from a voice imitation (with its loudness as the curve), and
--no-video-onsets turns the video's off. Models without an onset module ignore the video's and
refuse --onsets.

--take TAKE.wav --span START,END regenerates only that span of an existing take (seconds from
the selection start; the take covers the selection, so --duration defaults to its length): the
rest of the take is written back unchanged, the span is new and crossfaded in, at the take's rate.
The take is an input: --out must name another file.

Prints ONE JSON object on stdout. On a terminal, stderr also shows a denoising progress bar and a
line per written take (its clip and licence); piped or redirected, stderr carries errors only.
Every output is first written to a temporary file and all are moved into place only when
everything succeeded, so an error leaves no output behind. Before any
work, every input file must be a regular file, and every output (OUT-1 .. OUT-K included) must end
in .wav (--mp4: .mp4), lie in an existing writable folder and be no input and no other output.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path

from foley_core import constants


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", help="the video (mp4, mov, webm, mkv, avi); omit for text + curve only")
    parser.add_argument("--caption", required=True, help="what the sound is, e.g. 'a door slams'")
    parser.add_argument("--negative", help="what to avoid, e.g. 'music, speech'")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--mask", help="white-on-black PNG at the video's frame size: the sounding object")
    where.add_argument("--box", help="x0,y0,x1,y1 in video pixels: the sounding object")
    where.add_argument("--tracks", help="tracks JSON from `launch.py detect` (use with --track)")
    where.add_argument("--point", metavar="X,Y@T",
                       help="click on the sounding object: x,y in video pixels on the frame at T "
                            "seconds (e.g. 320,240@1.5); it is followed through the selection and "
                            "its contacts time the hits")
    parser.add_argument("--track", help="id of the track in --tracks to follow")
    parser.add_argument("--loudness", help="CSV with header time_s,value: relative loudness 0..1, times in "
                                           "seconds from the selection start (--start)")
    parser.add_argument("--onsets", metavar="T1,T2,...",
                        help="where sounds start, in seconds from the selection start, e.g. 0.4,1.25 "
                             "(default with a video and a region: the contacts its motion shows)")
    parser.add_argument("--no-video-onsets", action="store_true",
                        help="do not place onsets at the video's contacts")
    parser.add_argument("--sketch", metavar="VOICE.wav",
                        help="a vocal sketch (a voice imitation such as 'tk tk tsssh', from the "
                             "selection start): its loudness becomes the curve and its syllable "
                             "starts the onsets (replaces --loudness and --onsets)")
    parser.add_argument("--start", type=float, default=0.0, help="selection start in seconds (default 0)")
    parser.add_argument("--duration", type=float, help="selection length in seconds (default: to the end)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", type=int, default=1, help="number of stems (OUT-1.wav .. OUT-K.wav)")
    parser.add_argument("--steps", type=int, default=constants.DEFAULT_STEPS,
                        help=f"denoising steps (default {constants.DEFAULT_STEPS})")
    parser.add_argument("--text-scale", type=float, default=constants.DEFAULT_TEXT_SCALE,
                        help=f"text guidance scale (default {constants.DEFAULT_TEXT_SCALE:g})")
    parser.add_argument("--video-scale", type=float, default=constants.DEFAULT_VIDEO_SCALE,
                        help=f"video guidance scale (default {constants.DEFAULT_VIDEO_SCALE:g})")
    parser.add_argument("--curve-scale", type=float, metavar="G",
                        help="curve guidance: how strictly the model itself follows --loudness "
                             "(default: the model's measured value; 1 = none)")
    parser.add_argument("--conform", type=float, help="loudness conform strength 0..1 (default 1 with a curve)")
    parser.add_argument("--reference", help="a sound to start from: an audio file (wav, flac, mp3, ogg, ...; "
                                            "any rate) or a library clip id (default: the library "
                                            "clips that best match --caption, one per candidate)")
    parser.add_argument("--strength", type=float,
                        help="how far to move from the reference (given or picked from the library): "
                             f"0 keeps it, 1 ignores it (default {constants.DEFAULT_REFERENCE_STRENGTH:g})")
    parser.add_argument("--from-scratch", action="store_true",
                        help="no library sound: the model alone makes the sound from noise (it follows "
                             "the curve, onsets and video, but not yet what the caption names)")
    parser.add_argument("--library-folder", action="append", default=[], metavar="DIR",
                        help="also pick from your own sound folder (recursive; repeatable): the caption "
                             "searches its clips beside the bundled library")
    parser.add_argument("--reference-fit", default="auto",
                        help="fitting a shorter reference: auto (default), loop or oneshot (pad with silence)")
    parser.add_argument("--model", default="embedded", help="embedded (default) or audioldm2")
    parser.add_argument("--model-dir", help="embedded model folder (default: assets/embedded or $FOLEY_EMBEDDED_DIR)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--take", metavar="TAKE.wav",
                        help="an existing take of the selection: regenerate only --span of it")
    parser.add_argument("--span", metavar="START,END",
                        help="with --take: the span to regenerate, in seconds from the selection start")
    parser.add_argument("--out", required=True, help="output WAV (16 kHz mono; with --take, the take's rate)")
    parser.add_argument("--mp4", help="also write the video with the (first) stem as its soundtrack")


class _Collect(logging.Handler):
    """Keeps warnings for the JSON report (stderr is reserved for the one-line error)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _parse_box(text: str):
    from foley_core.errors import MaskError

    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise MaskError(f"--box must be four numbers x0,y0,x1,y1 in video pixels, got '{text}'")
    return values


def _parse_onsets(text: str) -> list[float]:
    from foley_core.errors import CurveError

    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        return [float(p) for p in parts]
    except ValueError:
        raise CurveError(f"--onsets must be times in seconds separated by commas, e.g. 0.4,1.25; "
                         f"got '{text}'") from None


def _parse_point(text: str) -> tuple[tuple[float, float], float]:
    """'x,y@t' -> ((x, y), t): a click in video pixels on the frame at t seconds."""
    import math

    from foley_core.errors import MaskError

    try:
        where, when = text.split("@")
        x, y = (float(v) for v in where.split(","))
        t = float(when)
    except ValueError:
        raise MaskError(f"--point must be x,y@t: a click in video pixels on the frame at t seconds, "
                        f"e.g. 320,240@1.5; got '{text}'") from None
    if not all(math.isfinite(v) for v in (x, y, t)):
        raise MaskError(f"--point must be finite numbers, got '{text}'")
    return (x, y), t


def _read_sketch(args: argparse.Namespace, take=None):
    """(curve, onsets_s) of the --sketch recording over the selection (--duration, the --take's
    length, or the video's rest)."""
    from foley_core.audio_io import read_audio
    from foley_core.sketch import sketch_conditions

    duration_s = args.duration
    if duration_s is None and take is not None:        # the take covers the selection
        audio, sr = take
        duration_s = audio.shape[0] / sr
    if duration_s is None:
        from foley_core.media import probe_video

        duration_s = probe_video(args.video).duration_s - args.start
    audio, sr = read_audio(args.sketch)
    curve, onsets = sketch_conditions(audio, sr, duration_s)
    return curve, [float(t) for t in onsets]


def _parse_span(text: str) -> tuple[float, float]:
    from foley_core.errors import TimeRangeError

    try:
        start_s, end_s = (float(v) for v in text.split(","))
    except ValueError:
        raise TimeRangeError(f"--span must be START,END in seconds from the selection start, e.g. 1.2,1.6; "
                             f"got '{text}'") from None
    return start_s, end_s


def _output_paths(out: str, candidates: int) -> dict[str, Path]:
    """The files --out names, by a label for messages: OUT itself, or OUT-1 .. OUT-K."""
    path = Path(out)
    if candidates == 1:
        return {"--out": path}
    return {f"--out's candidate {i}": path.with_name(f"{path.stem}-{i}{path.suffix}")
            for i in range(1, candidates + 1)}


# option -> what it names, for "not found" / "not a regular file" messages
_INPUT_FILES = {"--video": "video file", "--mask": "mask image", "--loudness": "curve file",
                "--tracks": "tracks file", "--sketch": "sketch recording", "--take": "take"}


def _check_input_files(args: argparse.Namespace) -> dict[str, str]:
    """Every file named on the command line must be a readable regular file (a FIFO would hang
    the read, a folder or a device is a mistake); returns them by option, --reference included
    when it names a file rather than a library clip."""
    from foley_core.audio_io import check_input_file
    from foley_core.errors import FoleyError, MediaError

    inputs = {}
    for option, kind in _INPUT_FILES.items():
        value = getattr(args, option[2:])
        if value is None:
            continue
        try:
            check_input_file(value, kind)
        except MediaError as err:
            raise type(err)(f"{option}: {err}") from None
        inputs[option] = value
    if args.reference is not None and os.path.lexists(args.reference):
        try:
            check_input_file(args.reference, "sound file")
        except FoleyError as err:
            raise type(err)(f"--reference: {err}") from None
        inputs["--reference"] = args.reference
    return inputs


def _check_numbers(args: argparse.Namespace) -> None:
    """Numeric options, in the options' own names, before anything is read."""
    import math

    from foley_core.errors import FoleyError, TimeRangeError
    from foley_core.constants import MAX_CANDIDATES, MAX_SEED, MAX_STEPS

    for option, value in (("--start", args.start), ("--duration", args.duration),
                          ("--text-scale", args.text_scale), ("--video-scale", args.video_scale),
                          ("--curve-scale", args.curve_scale), ("--conform", args.conform),
                          ("--strength", args.strength)):
        if value is not None and not math.isfinite(value):
            raise FoleyError(f"{option} must be a finite number, got {value}")
    if args.start < 0:
        raise TimeRangeError(f"--start must be 0 or more seconds, got {args.start:g}")
    if args.duration is not None and args.duration <= 0:
        raise TimeRangeError(f"--duration must be more than 0 seconds, got {args.duration:g}")
    if not 1 <= args.candidates <= MAX_CANDIDATES:
        raise FoleyError(f"--candidates must be between 1 and {MAX_CANDIDATES}, got {args.candidates}")
    if not 1 <= args.steps <= MAX_STEPS:
        raise FoleyError(f"--steps must be between 1 and {MAX_STEPS}, got {args.steps}")
    if not 0 <= args.seed <= MAX_SEED:
        raise FoleyError(f"--seed must be between 0 and {MAX_SEED}, got {args.seed}")


def _check_combinations(args: argparse.Namespace) -> None:
    """Options that need or exclude each other, refused before any work."""
    from foley_core.errors import FoleyError, MaskError, MediaError, TimeRangeError

    if args.video is None:
        if args.duration is None and args.take is None:
            raise TimeRangeError("without --video, give the length of the sound with --duration (or a --take)")
        if args.mask or args.box or args.tracks or args.point:
            raise MaskError("--mask, --box, --tracks and --point need a --video")
        if args.mp4:
            raise MediaError("--mp4 needs a --video to put the sound on")
    if args.track and not args.tracks:
        raise MaskError("--track needs --tracks TRACKS.json")
    if args.from_scratch and args.reference is not None:
        raise FoleyError("--from-scratch and --reference contradict each other; leave one out")
    if args.from_scratch and args.strength is not None:
        raise FoleyError("--strength needs a sound to start from; leave out --from-scratch")
    if args.from_scratch and args.library_folder:
        raise FoleyError("--library-folder gives clips to start from, and --from-scratch uses none; "
                         "leave one out")
    if args.sketch and (args.loudness or args.onsets is not None):
        raise FoleyError("--sketch gives the curve and the onsets; leave out --loudness and --onsets")
    if (args.take is None) != (args.span is None):
        raise FoleyError("--span needs --take (the take to regenerate a span of)" if args.take is None
                         else "--take needs --span START,END (the span to regenerate)")


def _checked_outputs(args: argparse.Namespace, inputs) -> list[Path]:
    """The WAV outputs, after checking every output against the inputs and each other: none
    may overwrite an input or another output, each is named for what is written there, and
    each folder exists and is writable."""
    from foley_core.outputs import check_outputs

    labelled = _output_paths(args.out, args.candidates)
    suffixes = {label: ".wav" for label in labelled}
    if args.mp4:
        labelled["--mp4"] = Path(args.mp4)
        suffixes["--mp4"] = ".mp4"
    check_outputs(labelled, inputs, suffixes=suffixes)
    return [path for label, path in labelled.items() if label != "--mp4"]


def _timing(args: argparse.Namespace, take=None):
    """(curve, onsets_s) from --loudness / --onsets / --sketch (over the --take's length, if any)."""
    from foley_core.errors import FoleyError

    curve = None
    if args.loudness:
        from foley_core.loudness import read_curve_csv

        curve = read_curve_csv(args.loudness)
    onsets_s = None if args.onsets is None else _parse_onsets(args.onsets)
    if args.sketch:
        curve, onsets_s = _read_sketch(args, take)
    if args.onsets is not None and args.no_video_onsets:
        raise FoleyError("--onsets already replaces the video's onsets; leave out --no-video-onsets")
    return curve, onsets_s


def _region(args: argparse.Namespace, point):
    """The sounding region from --mask / --box / --tracks + --track / --point (None: the whole
    frame), and for --point how the object was followed (for the report), else None."""
    from foley_core.errors import MaskError
    from foley_core.request import Region

    mask = None
    if args.mask:
        mask = Region(image=args.mask)
    elif args.box:
        mask = Region(box=_parse_box(args.box))
    elif args.tracks:
        if not args.track:
            raise MaskError("--tracks needs --track ID (the id of the track to follow)")
        from foley_core.vision.tracks import load_tracks

        mask = Region(track=load_tracks(args.tracks)[args.track])
    if point is not None:
        from foley_core.captions import noun_phrases
        from foley_core.vision.detect_yolo import follow_detector
        from foley_core.vision.follow import follow_in_video

        (x, y), t = point
        # YOLO-World's boxes of the clicked object's class re-anchor the tracker when its
        # weights are on this machine; otherwise the tracker follows alone
        detector = follow_detector(noun_phrases(args.caption or ""))
        track = follow_in_video(args.video, time_s=t, point=(x, y), start_s=args.start,
                                duration_s=args.duration, detector=detector)
        # the label is the detected class only when YOLO-World's boxes re-anchored the tracker
        return Region(track=track), {"detector": None if detector is None else "yolo-world",
                                     "label": track.label}
    return mask, None


def _library(args: argparse.Namespace):
    """(the library the caption picks from, the reference to start from): the bundled library
    plus --library-folder's folders (None: the bundled one), and --reference as a clip of theirs
    when it names one by id."""
    from foley_core.errors import MediaError
    from foley_core.library.catalog import USER_CATEGORY
    from foley_core.library.folders import library_with_folders

    library = library_with_folders(args.library_folder, option="--library-folder") if args.library_folder else None
    reference = args.reference
    if reference is not None and not os.path.lexists(reference):
        if library is not None and reference in library:
            reference = library.get(reference)
        elif reference.startswith(f"{USER_CATEGORY}/"):
            # said here in the command's words (generate() itself would name its Python argument)
            raise MediaError(f"--reference '{reference}' is a clip of your own sound folders; add "
                             "--library-folder with the folder it is in")
    return library, reference


def _write(args: argparse.Namespace, outputs: list[Path], result) -> None:
    """Every take (and the --mp4 preview) written atomically, all or none."""
    from foley_core.atomic import atomic_path
    from foley_core.audio_io import write_wav

    with contextlib.ExitStack() as stack:
        for path, audio in zip(outputs, result.audios):
            tmp = stack.enter_context(atomic_path(path, suffix=".wav"))
            write_wav(tmp, audio, result.sr)
        if args.mp4:
            from foley_core.media import mux_mp4

            tmp = stack.enter_context(atomic_path(args.mp4, suffix=".mp4"))
            mux_mp4(args.video, result.audios[0], result.sr, tmp)


class _Terminal:
    """What a person at a terminal sees on stderr while scripts read stdout: a progress bar over
    the denoising steps and one line per written take. Off when stderr is not a terminal, so a
    pipe or a log keeps stderr for errors."""

    def __init__(self, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.on = bool(getattr(self.stream, "isatty", lambda: False)())
        self._bar = None

    def progress(self, step: int, total: int) -> None:
        if not self.on:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc="generating", unit="step", file=self.stream,
                             leave=False, dynamic_ncols=True)
        self._bar.total = total
        self._bar.update(step - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def summary(self, report: dict) -> None:
        if not self.on:
            return
        refs = report.get("references") or []
        for i, path in enumerate(report.get("outputs") or []):
            line = f"wrote {path}: {report['duration_s']:g} s at {report['sr']} Hz"
            ref = refs[i] if i < len(refs) else (report.get("reference") if i == 0 else None)
            if report.get("source") == "model" or ref is None:
                line += ", from scratch (the model alone)"
            else:
                name = f"library clip {ref['id']}" if ref.get("library_clip") else f"your sound {ref.get('path')}"
                licence = str(ref.get("licence") or "").split(" (", 1)[0]
                line += f", from {name} \"{ref.get('caption', '')}\"" + (f" ({licence})" if licence else "")
            print(line, file=self.stream)
        for message in report.get("warnings") or []:
            print(f"note: {message}", file=self.stream)


def _report_json(args: argparse.Namespace, done, outputs: list[Path], *, curve, onsets_s, span_s,
                 warnings: list[str]) -> dict:
    """The one-line JSON report printed after the takes are written."""
    meta = done.to_json()        # the JSON form of the report's nested parts
    report = {
        "duration_s": done.duration_s,
        "sr": done.sr,
        "seed": done.seed,
        "seeds": done.seeds,
        "model": done.model,
        "trained": done.trained,
        "steps": done.steps,
        "steps_run": done.steps_run,
        "text_scale": done.text_scale,
        "video_scale": done.video_scale,
        "curve_scale": done.curve_scale,
        "timings_s": done.timings_s,
        "outputs": [str(p) for p in outputs],
        "mp4": args.mp4,
        "instructions": meta["instructions"],
        "windows": done.windows,
        "onsets_s": done.onsets_s,
        "onsets_source": done.onsets_source,
        "source": done.source,
    }
    if done.reference is not None:
        report.update({"strength": done.strength, "reference": meta["reference"],
                       "references": meta["references"]})
    if span_s is not None:
        report.update({"take": args.take, "regenerated_span_s": done.regenerated_span_s,
                       "span_gain_db": done.span_gain_db})
    if args.sketch:
        report["sketch"] = {"file": args.sketch, "onsets_s": [round(float(t), 4) for t in onsets_s]}
    if curve is not None:
        report.update({"conform": done.conform, "curve_r_before": done.curve_r_before,
                       "curve_r_after": done.curve_r_after})
    if warnings:
        report["warnings"] = warnings
    return report


def run(args: argparse.Namespace) -> int:
    from foley_core.backends import check_device
    from foley_core.captions import validate_caption

    caption = validate_caption(args.caption)
    _check_numbers(args)
    check_device(args.device)
    inputs = _check_input_files(args)
    _check_combinations(args)
    span_s = None if args.span is None else _parse_span(args.span)
    point = None if args.point is None else _parse_point(args.point)
    outputs = _checked_outputs(args, inputs)
    take = None
    if args.take:
        from foley_core.audio_io import read_audio

        take = read_audio(args.take)
    curve, onsets_s = _timing(args, take)
    mask, followed = _region(args, point)
    if args.model_dir:
        os.environ["FOLEY_EMBEDDED_DIR"] = args.model_dir

    collector = _Collect()
    root = logging.getLogger("foley_core")
    root.addHandler(collector)
    propagate, root.propagate = root.propagate, False
    try:
        from foley_core.generate import generate
        from foley_core.request import GenerationRequest

        library, reference = _library(args)
        request = GenerationRequest(
            caption=caption, negative_caption=args.negative, video=args.video, start_s=args.start,
            duration_s=args.duration, region=mask, curve=curve, onsets_s=onsets_s,
            video_onsets=not args.no_video_onsets, seed=args.seed, candidates=args.candidates,
            steps=args.steps, text_scale=args.text_scale, video_scale=args.video_scale,
            curve_scale=args.curve_scale, conform=args.conform, reference=reference,
            strength=args.strength, reference_fit=args.reference_fit,
            source="model" if args.from_scratch else "auto", model=args.model,
            take=take, regenerate_span_s=span_s)
        terminal = _Terminal()
        try:
            result = generate(request, device=args.device, library=library, progress=terminal.progress)
        finally:
            terminal.close()
        _write(args, outputs, result)
    finally:
        root.removeHandler(collector)
        root.propagate = propagate
    report = _report_json(args, result.report, outputs, curve=curve, onsets_s=onsets_s,
                          span_s=span_s, warnings=collector.messages)
    if followed is not None:
        report["follow"] = followed
    print(json.dumps(report))
    terminal.summary(report)
    return 0
