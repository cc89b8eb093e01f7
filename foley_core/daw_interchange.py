"""The DAW session's interchange files beside the Reaper .rpp: a CMX3600 EDL and an AAF.

Both place the same Broadcast WAVs the .rpp uses, one stem per track at its position:
- the EDL (plain text, audio only) has one event per stem: the source timecode is the file's own
  (its `bext` time reference: its position from the project's time 0), the record in/out are
  where it sits, at the video's frame rate (non-drop-frame), the channel is the stem's track
  (A, A2, A3, ...). An EDL places whole frames: a stem lands within half a frame of its offset.
- the AAF (via pyaaf2) embeds each stem's audio (24-bit PCM) and has a composition with one
  sound track per stem at 48 kHz edit units, so it sits at its exact sample; a timecode track
  carries the video's frame rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from foley_core.atomic import atomic_path

DEFAULT_FPS = 25.0          # the frame rate of a session without a video (PAL, as the timeline)
MAX_TIMECODE_FPS = 60.0     # SMPTE timecode's frame numbers stop at 59 in the rates DAWs read
EDL_REEL = "AX"             # CMX3600's auxiliary source: a file named in the event's comments
_EDL_REEL_W = 8
_EDL_CHANNEL_W = 4


@dataclass(frozen=True)
class SpotEvent:
    """A stem's file in the session (relative path) and its place on the timeline in samples at `sr`."""

    name: str
    file: str
    start: int
    length: int
    sr: int


def frame_rate(fps: float | None) -> float:
    """The session's frame rate: the video's, or DEFAULT_FPS without one or for high-speed
    footage above MAX_TIMECODE_FPS (no timecode counts its frames)."""
    ok = fps is not None and math.isfinite(fps) and 0 < fps <= MAX_TIMECODE_FPS + 0.5
    return float(fps) if ok else DEFAULT_FPS


def edit_rate(fps: float) -> Fraction:
    """`fps` as a fraction: the NTSC rates (29.97, 23.976, 59.94, however rounded) are n*1000/1001,
    the others as they are (25, 12.5)."""
    whole = round(fps * 1.001)
    if round(fps) != fps and abs(fps * 1.001 - whole) < 1e-3:
        return Fraction(whole * 1000, 1001)
    return Fraction(fps).limit_denominator(1000)


def timecode(frame_count: int, fps: float) -> str:
    """Non-drop-frame timecode HH:MM:SS:FF of `frame_count` frames, counted at the nominal rate
    (29.97 fps counts 30 a second, as NDF does)."""
    base = max(1, round(fps))
    frames = int(frame_count)
    ff, seconds = frames % base, frames // base
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{ff:02d}"


def edl_channel(track: int) -> str:
    """CMX3600's name of audio track `track` (1-based): A, A2, A3, ..."""
    return "A" if track == 1 else f"A{track}"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def edl_text(title: str, events: list[SpotEvent], fps: float) -> str:
    """A CMX3600 EDL: one cut event per stem on its own audio channel; its source timecode is
    the file's time reference, its record in/out where it sits (the same frames)."""
    fps = frame_rate(fps)
    # no blank lines: some readers take them for statements they do not know
    lines = [f"TITLE: {_one_line(title)[:70]}", "FCM: NON-DROP FRAME"]
    for n, ev in enumerate(events, 1):
        first = round(ev.start / ev.sr * fps)
        last = max(first + 1, round((ev.start + ev.length) / ev.sr * fps))
        tc_in, tc_out = timecode(first, fps), timecode(last, fps)
        lines += [f"{n:03d}  {EDL_REEL:<{_EDL_REEL_W}} {edl_channel(n):<{_EDL_CHANNEL_W}}  C        "
                  f"{tc_in} {tc_out} {tc_in} {tc_out}",
                  f"* FROM CLIP NAME: {_one_line(ev.name)}",
                  f"* SOURCE FILE: {ev.file}"]
    return "\n".join(lines) + "\n"


def write_edl(path: Path, title: str, events: list[SpotEvent], fps: float) -> None:
    with atomic_path(path) as tmp:
        # CRLF: the line ending of EDLs from the decks and NLEs that read them
        tmp.write_bytes(edl_text(title, events, fps).replace("\n", "\r\n").encode("ascii", "replace"))


def write_aaf(path: Path, folder: Path, title: str, events: list[SpotEvent], fps: float) -> None:
    """An AAF with each event's WAV (in `folder`) embedded, and a composition `title` with one
    sound track per event at its start (edit units: samples) and a timecode track at `fps`."""
    import aaf2     # imported here: only the DAW export needs it

    fps = frame_rate(fps)
    with atomic_path(path) as tmp, aaf2.open(str(tmp), "w") as f:
        comp = f.create.CompositionMob(title)
        f.content.mobs.append(comp)
        end_s = max([(ev.start + ev.length) / ev.sr for ev in events], default=0.0)
        rate = edit_rate(fps)
        tc_slot = comp.create_timeline_slot(edit_rate=rate)
        tc_slot.name = "TC"
        tc_slot.segment = f.create.Timecode(max(1, round(fps)), drop=False)
        tc_slot.segment.length = max(1, math.ceil(end_s * fps))
        for n, ev in enumerate(events, 1):
            master = f.create.MasterMob(ev.name)
            f.content.mobs.append(master)
            source = master.import_audio_essence(str(folder / ev.file), ev.sr)
            slot = comp.create_sound_slot(edit_rate=ev.sr)
            slot.name = f"A{n} {ev.name}"
            sequence = slot.segment
            if ev.start > 0:
                sequence.components.append(f.create.Filler("sound", ev.start))
            clip = master.create_source_clip(slot_id=source.slot_id, media_kind="sound")
            clip.length = ev.length
            sequence.components.append(clip)
