"""Broadcast WAV (EBU Tech 3285): the `bext` chunk, an iXML chunk, and a reader for both.

libsndfile can write `bext` but python-soundfile does not expose it, so the WAV is written by
soundfile as usual and `add_chunks` then rewrites it with the chunks placed after `fmt ` and
before `data` (where Tech 3285 and every DAW expect them). The audio bytes are copied unchanged.

`bext.TimeReference` is the number of samples from the project's time 0 to the file's first
sample, at the file's rate: a DAW's "spot to original time" (Pro Tools, Nuendo, Reaper) places
the file there.
"""

from __future__ import annotations

import os
import struct
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree as ET

from foley_core.atomic import atomic_path
from foley_core.errors import MediaError

ORIGINATOR = "Foley studio"
BEXT_VERSION = 1          # v1: with a UMID (here all zeros); the v2 loudness fields stay reserved
_BEXT_FIXED = struct.Struct("<256s32s32s10s8sIIH64s190s")   # 602 bytes before CodingHistory
_COPY_BLOCK = 1 << 20


@dataclass
class Bext:
    """The fields of a `bext` chunk that we write; strings are ASCII (Tech 3285 text fields)."""

    description: str = ""
    originator: str = ORIGINATOR
    originator_reference: str = ""
    origination_date: str = ""          # yyyy-mm-dd; '' = now
    origination_time: str = ""          # hh:mm:ss; '' = now
    time_reference: int = 0             # samples since the project's time 0, at the file's rate
    coding_history: str = ""

    def to_bytes(self) -> bytes:
        if not 0 <= int(self.time_reference) < 1 << 64:
            raise MediaError(f"a BWF time reference must be 0 or more samples; got {self.time_reference}")
        now = datetime.now()
        date = self.origination_date or now.strftime("%Y-%m-%d")
        time = self.origination_time or now.strftime("%H:%M:%S")
        ref = int(self.time_reference)
        fixed = _BEXT_FIXED.pack(_ascii(self.description, 256), _ascii(self.originator, 32),
                                 _ascii(self.originator_reference, 32), _ascii(date, 10), _ascii(time, 8),
                                 ref & 0xFFFFFFFF, ref >> 32, BEXT_VERSION, bytes(64), bytes(190))
        return fixed + _ascii(self.coding_history, 1 << 16)


def _ascii(text: str, size: int) -> bytes:
    # Tech 3285 text is ASCII: accents are folded ('é' -> 'e'), anything else dropped; struct
    # pads with NULs and the slice keeps a long caption from spilling into the next field.
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore")
    return bytes(c for c in folded if c >= 0x20 or c in (0x0A, 0x0D))[:size]


def ixml(project: str, name: str, note: str = "") -> bytes:
    """A small iXML document (PROJECT, TAPE = the session, NOTE) naming the project and the stem."""
    root = ET.Element("BWFXML")
    for tag, value in (("IXML_VERSION", "1.61"), ("PROJECT", project), ("TAPE", project),
                       ("NOTE", note or name), ("FILE_UID", "")):
        ET.SubElement(root, tag).text = value
    tracks = ET.SubElement(root, "TRACK_LIST")
    ET.SubElement(tracks, "TRACK_COUNT").text = "2"
    for k, side in enumerate(("L", "R"), start=1):
        track = ET.SubElement(tracks, "TRACK")
        ET.SubElement(track, "CHANNEL_INDEX").text = str(k)
        ET.SubElement(track, "INTERLEAVE_INDEX").text = str(k)
        ET.SubElement(track, "NAME").text = f"{name} {side}"
    return b'<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="utf-8")


def _walk(f, file_size: int) -> list[tuple[bytes, int, int]]:
    """(id, body offset, body size) of each top-level chunk of a RIFF WAVE file."""
    f.seek(0)
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise MediaError("not a RIFF WAVE file (an RF64 file over 4 GiB cannot carry these chunks here)")
    chunks = []
    pos = 12
    while pos + 8 <= file_size:
        f.seek(pos)
        cid, size = struct.unpack("<4sI", f.read(8))
        chunks.append((cid, pos + 8, size))
        pos += 8 + size + (size & 1)
    return chunks


def add_chunks(path: str | os.PathLike, chunks: dict[bytes, bytes]) -> None:
    """Rewrite the WAV at `path` (atomically) with `chunks` right after `fmt ` (replacing any
    chunk of the same id); every other chunk, the audio included, is copied byte for byte."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as src, atomic_path(path) as tmp, open(tmp, "wb") as dst:
        layout = _walk(src, size)
        if not any(cid == b"data" for cid, _, _ in layout):
            raise MediaError(f"'{path.name}' has no audio data chunk")
        dst.write(b"RIFF\0\0\0\0WAVE")
        for cid, offset, body_size in layout:
            if cid in chunks:
                continue
            dst.write(struct.pack("<4sI", cid, body_size))
            src.seek(offset)
            _copy(src, dst, body_size + (body_size & 1))
            if cid == b"fmt ":
                for new_id, body in chunks.items():
                    dst.write(struct.pack("<4sI", new_id, len(body)) + body + b"\0" * (len(body) & 1))
        riff_size = dst.tell() - 8
        if riff_size > 0xFFFFFFFF:
            raise MediaError(f"'{path.name}' would exceed the 4 GiB of a WAV file")
        dst.seek(4)
        dst.write(struct.pack("<I", riff_size))


def _copy(src, dst, n: int) -> None:
    while n > 0:
        block = src.read(min(n, _COPY_BLOCK))
        if not block:
            raise MediaError("the WAV file ends inside a chunk")
        dst.write(block)
        n -= len(block)


def read_chunks(path: str | os.PathLike) -> list[tuple[bytes, bytes | None]]:
    """The chunk ids of a WAV in file order, with the bodies of `bext` and `iXML` (others None)."""
    path = Path(path)
    with open(path, "rb") as f:
        out = []
        for cid, offset, size in _walk(f, path.stat().st_size):
            body = None
            if cid in (b"bext", b"iXML"):
                f.seek(offset)
                body = f.read(size)
            out.append((cid, body))
    return out


def read_bext(path: str | os.PathLike) -> dict | None:
    """The `bext` fields of a WAV as a dict (None if it has none)."""
    for cid, body in read_chunks(path):
        if cid == b"bext" and body is not None and len(body) >= _BEXT_FIXED.size:
            (desc, orig, orig_ref, date, time, ref_lo, ref_hi, version, umid,
             _reserved) = _BEXT_FIXED.unpack(body[:_BEXT_FIXED.size])

            def text(b: bytes) -> str:
                return b.split(b"\0", 1)[0].decode("ascii", "replace")

            return {"description": text(desc), "originator": text(orig), "originator_reference": text(orig_ref),
                    "origination_date": text(date), "origination_time": text(time),
                    "time_reference": ref_lo | (ref_hi << 32), "version": version, "umid": umid,
                    "coding_history": text(body[_BEXT_FIXED.size:])}
    return None
