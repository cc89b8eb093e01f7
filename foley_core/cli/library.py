"""`launch.py library`: search the sound library (the bundled clips and your own folders).

    python launch.py library search TEXT [--k N] [--category C] [--ucs-category U]
        [--min-s S] [--max-s S] [--kind one-shot|sustained] [--folder DIR ...] [--no-bundled] [--json]
    python launch.py library more-like-this FILE|ID [the same filters] [--folder DIR ...] [--json]
    python launch.py library info ID [--folder DIR ...] [--json]
    python launch.py library index DIR [DIR ...] [--json]

`search` ranks clips by words and meaning (keywords + sentence embeddings), `more-like-this` by
how they sound. `--folder` adds your folders (recursive; wav, flac, aiff, mp3, ogg ...; captions
from a captions.csv or the file names). `index` builds or updates the on-disk index of folders
(only new or changed files are read) and prints what it read. Files that cannot be read are
skipped and counted, never fatal. Results print as a table, or with --json as one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
from typing import Iterator

_KINDS = ("one-shot", "oneshot", "sustained")
_CAPTION_WIDTH = 44


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--category", help="only this category (e.g. door, impact, user for your sounds)")
    p.add_argument("--ucs-category", metavar="U", help="only this UCS category, subcategory or CatID")
    p.add_argument("--min-s", type=float, metavar="S", help="only clips at least S seconds long")
    p.add_argument("--max-s", type=float, metavar="S", help="only clips at most S seconds long")
    p.add_argument("--kind", choices=_KINDS,
                   help="one-shot (a hit that dies away) or sustained (a sound that can be looped)")
    _folders(p)


def _folders(p: argparse.ArgumentParser) -> None:
    p.add_argument("--folder", action="extend", nargs="+", default=[], metavar="DIR",
                   help="also search your own sound folder(s) (repeatable)")
    p.add_argument("--no-bundled", action="store_true", help="leave out the bundled library")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="library_command", metavar="ACTION", required=True)
    p = sub.add_parser("search", help="find clips by words and meaning", description="find clips by words and meaning")
    p.add_argument("text", metavar="TEXT", help="what you look for, e.g. 'ball bounce'")
    _filters(p)
    p = sub.add_parser("more-like-this", help="find clips that sound like a clip or a file",
                       description="find clips that sound like a clip or a file")
    p.add_argument("clip", metavar="FILE|ID", help="a sound file or a library clip id")
    _filters(p)
    p = sub.add_parser("info", help="a clip's licence, attribution, file, rate and channels",
                       description="a clip's licence, attribution, file, rate and channels")
    p.add_argument("clip_id", metavar="ID", help="a library clip id (from search)")
    _folders(p)
    p = sub.add_parser("index", help="build or update the on-disk index of your sound folders",
                       description="build or update the on-disk index of your sound folders")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="sound folder(s), searched recursively")
    p.add_argument("--json", action="store_true", help="print one JSON object")


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _collected_warnings() -> Iterator[list[str]]:
    """The library's warnings (skipped files) collected, not logged: stdout is the result and
    stderr says how many were skipped in one line."""
    collector = _Collect()
    root = logging.getLogger("foley_core")
    root.addHandler(collector)
    propagate, root.propagate = root.propagate, False
    try:
        yield collector.messages
    finally:
        root.removeHandler(collector)
        root.propagate = propagate


def _check_numbers(args: argparse.Namespace) -> None:
    from foley_core.errors import FoleyError

    if args.k < 1:
        raise FoleyError(f"--k must be at least 1, got {args.k}")
    for option, value in (("--min-s", args.min_s), ("--max-s", args.max_s)):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise FoleyError(f"{option} must be a number of seconds of at least 0, got {value:g}")


def _library(args: argparse.Namespace):
    from foley_core.errors import FoleyError, MediaError
    from foley_core.library import SoundLibrary
    from foley_core.library.folders import library_with_folders

    if not args.no_bundled:
        return library_with_folders(args.folder, option="--folder")
    if not args.folder:
        raise FoleyError("--no-bundled leaves nothing to search: add --folder DIR")
    lib = SoundLibrary(bundled=False)
    for folder in args.folder:
        try:
            lib.add_folder(folder)
        except MediaError as err:
            raise type(err)(f"--folder: {err}") from None
    return lib


def _source(entry) -> str:
    if entry.is_user_sound:
        return f"yours ({entry.licence})" if entry.licence else "yours"
    return " · ".join(p for p in (entry.licence or "licence not recorded", entry.source_package) if p)


def _hit_json(rank: int, hit, kind: str | None) -> dict:
    e = hit.entry
    return {"rank": rank, "id": e.id, "caption": e.caption, "category": e.category,
            "seconds": round(e.seconds, 3) if math.isfinite(e.seconds) else None, "kind": kind,
            "score": round(hit.score, 4), "keyword": round(hit.keyword, 4), "semantic": round(hit.semantic, 4),
            "licence": e.licence, "attribution": e.attribution_text, "path": str(e.path),
            "ucs": [v for v in (e.ucs_category, e.ucs_subcategory, e.cat_id) if v]}


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _table(rows: list[dict]) -> str:
    head = ("#", "id", "caption", "category", "length", "kind", "source / licence")
    lines = [(str(r["rank"]), r["id"], _short(r["caption"], _CAPTION_WIDTH), r["category"],
              "?" if r["seconds"] is None else f"{r['seconds']:.2f} s", (r["kind"] or "?").replace("oneshot", "one-shot"),
              r["source"]) for r in rows]
    widths = [max(len(c) for c in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def _print_hits(args: argparse.Namespace, lib, hits, header: dict, warnings: list[str]) -> None:
    kinds = [lib.kind_of(h.entry) for h in hits]
    rows = [_hit_json(i + 1, h, k) for i, (h, k) in enumerate(zip(hits, kinds))]
    if args.json:
        print(json.dumps({**header, "results": rows, "warnings": warnings}))
        return
    if not rows:
        print("No clips match; try other words, another category, kind or length.")
    else:
        for r, h in zip(rows, hits):
            r["source"] = _source(h.entry)
        print(_table(rows))
    _note_skipped(warnings)


def _note_skipped(warnings: list[str]) -> None:
    if warnings:
        print(f"note: {len(warnings)} file(s) skipped (cannot be used); `launch.py library index DIR` "
              "lists them", file=sys.stderr)


def _filter_kwargs(args: argparse.Namespace) -> dict:
    return {"category": args.category, "ucs_category": args.ucs_category, "min_s": args.min_s,
            "max_s": args.max_s, "kind": args.kind}


def _search(args: argparse.Namespace) -> None:
    text = " ".join(args.text.split())
    _check_numbers(args)
    with _collected_warnings() as warnings:
        lib = _library(args)
        hits = lib.search(text, k=args.k, **_filter_kwargs(args))
        _print_hits(args, lib, hits, {"query": text, "library_clips": len(lib)}, warnings)


def _more_like_this(args: argparse.Namespace) -> None:
    _check_numbers(args)
    with _collected_warnings() as warnings:
        lib = _library(args)
        hits = lib.more_like_this(args.clip, k=args.k, **_filter_kwargs(args))
        _print_hits(args, lib, hits, {"like": args.clip, "library_clips": len(lib)}, warnings)


def _rate_channels(entry) -> tuple[int | None, int | None]:
    """The stored file's rate and channels: from the index when it records them, else the file."""
    if entry.sr and entry.channels:
        return entry.sr, entry.channels
    from foley_core.audio_io import read_audio
    from foley_core.errors import MediaError

    try:
        audio, sr = read_audio(entry.path, mono=False)
    except MediaError:
        return None, None
    return int(sr), 1 if audio.ndim == 1 else int(audio.shape[1])


def _info(args: argparse.Namespace) -> None:
    with _collected_warnings() as warnings:
        lib = _library(args)
        entry = lib.get(args.clip_id)
        sr, channels = _rate_channels(entry)
        info = {"id": entry.id, "caption": entry.caption, "category": entry.category,
                "seconds": round(entry.seconds, 3) if math.isfinite(entry.seconds) else None,
                "kind": lib.kind_of(entry), "path": str(entry.path), "sr": sr, "channels": channels,
                "licence": entry.licence, "licence_terms": entry.licence_text, "attribution": entry.credit,
                "attribution_text": entry.attribution_text,
                "ucs": [v for v in (entry.ucs_category, entry.ucs_subcategory, entry.cat_id) if v]}
    if args.json:
        print(json.dumps({**info, "warnings": warnings}))
        return
    labels = {"id": "id", "caption": "caption", "category": "category", "seconds": "length (s)",
              "kind": "kind", "path": "file", "sr": "rate (Hz)", "channels": "channels",
              "licence_terms": "licence", "attribution": "attribution", "ucs": "UCS"}
    for key, label in labels.items():
        value = info[key]
        if isinstance(value, list):
            value = " / ".join(value) or "-"
        print(f"{label + ':':13} {'?' if value is None else value}")
    _note_skipped(warnings)


def _index(args: argparse.Namespace) -> None:
    from foley_core.library import SoundLibrary

    with _collected_warnings():
        lib = SoundLibrary(bundled=False)
        scans = [lib.index_folder(folder) for folder in args.dirs]     # errors name the folder
        lib.warm_up()            # the captions' sentence embeddings, cached on disk for searches
    rows = [{"folder": str(s.folder), "files": s.files, "new": s.new, "updated": s.updated,
             "unchanged": s.unchanged, "unreadable": s.unreadable, "removed": s.removed,
             "skipped": list(s.skipped)} for s in scans]
    if args.json:
        print(json.dumps({"folders": rows, "cache": str(lib.cache_dir)}))
        return
    for r in rows:
        print(f"{r['folder']}: {r['files']} audio file(s): {r['new']} new, {r['updated']} updated, "
              f"{r['unchanged']} unchanged, {r['unreadable']} unreadable (skipped), {r['removed']} removed")
        for message in r["skipped"][:20]:
            print(f"  {message}")
        if len(r["skipped"]) > 20:
            print(f"  ... and {len(r['skipped']) - 20} more")
    print(f"index cached in {lib.cache_dir}")


def run(args: argparse.Namespace) -> int:
    {"search": _search, "more-like-this": _more_like_this, "info": _info, "index": _index}[args.library_command](args)
    return 0
