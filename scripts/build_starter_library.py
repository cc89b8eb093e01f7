"""(Superseded for assets/library by scripts/build_sound_library.py.) Build a 16 kHz starter library (assets/library/) from ../shared/sfx, deterministically.

    python scripts/build_starter_library.py [--sfx-root ../shared/sfx] [--out assets/library]

Selection, per category (all 19), from the TRAIN split only (val stays clean for evaluation):
- licences that allow redistribution with a note: CC BY-SA 3.0, CC BY 3.0, CC0, public domain,
  GPL-2+ (GPL-2-only clips are left out: they could not be combined with GPL-3/AGPL material);
- clips of at least 0.15 s;
- a quality weight: 1, halved for clips with >0.1 % full-scale samples (clipped), and lowered
  for clips whose loudness is far from the category's median (too quiet or too hot to be typical);
- greedy facility location over MiniLM caption embeddings: each pick maximises how much closer
  every distinct caption of the category (weighted by sqrt of its clip count) gets to its nearest
  picked caption, times the pick's quality weight, so the picks are representative of the big
  groups AND varied; one clip per source family (windows of one file, numbered variants) until
  the families run out; 2.5 x sqrt(distinct captions) clips, between --min-clips and
  --max-clips, and at most --seconds of audio per category. Ties break by id, so a re-run gives
  the same library (embeddings are computed on one thread).

Writes audio/<category>/<id>.flac (byte copies of the shared FLACs), index.csv, ATTRIBUTION.md
and licenses/ (the Debian copyright and upstream credit files of the packages the picks come
from, plus the GPL-2 text if a GPL clip is picked). Stale files from an earlier build are removed.
Refuses to write more than --max-mb megabytes.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from foley_core.atomic import write_bytes_atomic, write_text_atomic  # noqa: E402
from foley_core.library.catalog import CATEGORIES, INDEX_COLUMNS, LibraryEntry, embed_sentences  # noqa: E402
from foley_core.library.licences import LICENCES, MODIFICATION_NOTE, SOURCE_PACKAGE_VERSIONS  # noqa: E402

ALLOWED_LICENCES = ("CC-BY-SA-3.0", "CC-BY-3.0", "CC0-1.0", "public-domain", "GPL-2+")
GPL_LICENCES = ("GPL-2+", "GPL-2")
MIN_SECONDS = 0.15
CLIPPED_FRACTION = 0.001
LEVEL_SPREAD_DB = 20.0


def family(clip_id: str) -> str:
    """Source family: windows (_w2) and numbered variants (fs_gravel3) of one sound share it."""
    stem = re.sub(r"(_\d+khz)?(_w\d+)?$", "", clip_id)
    return re.sub(r"[\d_]+$", "", stem) or stem


def read_manifest(sfx_root: Path) -> list[dict]:
    with open(sfx_root / "manifest.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def quality(rows: list[dict], sfx_root: Path) -> np.ndarray:
    """Weight in (0, 1]: lowered for clipped clips and for levels far from the category median."""
    lufs = np.array([float(r["lufs"]) for r in rows])
    by_cat: dict[str, list[float]] = defaultdict(list)
    for r, value in zip(rows, lufs):
        by_cat[r["category"]].append(value)
    medians = {c: float(np.median(v)) for c, v in by_cat.items()}
    q = np.ones(len(rows))
    for i, r in enumerate(rows):
        pcm, _ = sf.read(sfx_root / r["file"], dtype="int16")
        if np.mean(np.abs(pcm.astype(np.int32)) >= 32767) > CLIPPED_FRACTION:
            q[i] *= 0.5
        q[i] *= 1.0 - 0.5 * min(1.0, abs(lufs[i] - medians[r["category"]]) / LEVEL_SPREAD_DB)
    return q


def clips_for(n_captions: int, *, lo: int, hi: int) -> int:
    """How many clips a category gets: more for categories with more distinct captions."""
    return int(min(hi, max(lo, round(2.5 * math.sqrt(n_captions)))))


def select_category(rows: list[dict], emb: np.ndarray, q: np.ndarray, *, max_clips: int,
                    max_seconds: float) -> list[int]:
    """Indices (into rows) of the picks for one category: greedy facility location, see module doc.

    Coverage is measured over the distinct captions, each weighted by the square root of how many
    clips share it, so a caption repeated 16 times does not crowd out rarer kinds of sound.
    """
    n = len(rows)
    captions = sorted({r["caption"] for r in rows})
    where = {c: k for k, c in enumerate(captions)}
    col = np.array([where[r["caption"]] for r in rows])
    weight = np.sqrt(np.bincount(col, minlength=len(captions)))
    first = np.array([int(np.flatnonzero(col == k)[0]) for k in range(len(captions))])
    sim = np.clip(emb[first] @ emb.T, 0.0, 1.0)             # (distinct captions, clips)
    covered = np.zeros(len(captions))
    seconds = np.array([float(r["seconds"]) for r in rows])
    families = [family(r["id"]) for r in rows]
    chosen: list[int] = []
    used_families: set[str] = set()
    total = 0.0
    while len(chosen) < max_clips:
        fits = [i for i in range(n) if i not in chosen and total + seconds[i] <= max_seconds]
        if not fits:
            break
        fresh = [i for i in fits if families[i] not in used_families]
        pool = fresh or fits
        gains = np.array([(weight * np.maximum(sim[:, i] - covered, 0.0)).sum() for i in pool])
        # the tiny quality term orders clips that add no new meaning (identical captions)
        score = gains * q[pool] + 1e-6 * q[pool]
        best = pool[int(np.argmax(np.round(score, 9)))]       # rows are sorted by id: ties -> lowest id
        chosen.append(best)
        used_families.add(families[best])
        covered = np.maximum(covered, sim[:, best])
        total += seconds[best]
    return chosen


def licence_files(rows: list[dict], licenses_dir: Path) -> list[Path]:
    """The copyright file of each source package, plus upstream credit files that name a folder on
    a picked clip's source path (e.g. minetest-data__doors_README.txt for mods/doors/...)."""
    needed: set[Path] = set()
    for r in rows:
        pkg = r["source_package"]
        copyright_file = licenses_dir / f"{pkg}.copyright"
        if not copyright_file.is_file():
            raise SystemExit(f"error: {copyright_file} is missing; the clip {r['id']} cannot be attributed")
        needed.add(copyright_file)
        parts = set(re.split(r"[/:#]", r["source_path"]))
        for extra in licenses_dir.glob(f"{pkg}__*"):
            tokens = set(extra.name[len(pkg) + 2:].rsplit(".", 1)[0].split("_"))
            if tokens & parts:
                needed.add(extra)
    return sorted(needed)


def attribution_markdown(entries: list[LibraryEntry], copied: list[str]) -> str:
    counts = Counter(e.licence for e in entries)
    lines = [
        "# Starter sound library: attribution and licences",
        "",
        f"{len(entries)} clips in {len({e.category for e in entries})} categories, chosen by "
        "`scripts/build_starter_library.py` from the train split of the project's captioned SFX library "
        "(recordings from Debian 12 game-data packages). Every clip was "
        f"{MODIFICATION_NOTE}. The machine-readable list is `index.csv`.",
        "",
        "A stem generated from a clip (the studio's audio-to-audio mode) is an adaptation of that clip:",
        "",
        "- **CC BY-SA 3.0** clips are share-alike: credit the author(s) below, name the licence with its "
        "link, say the sound was modified, and release the stem (and any adaptation) under CC BY-SA 3.0 "
        "or a compatible later version.",
        "- **CC BY 3.0** clips: credit the author(s), link the licence, say the sound was modified.",
        "- **GPL** clips: distribute the stem under the GNU GPL (version 2 or later for GPL-2+), with the "
        "licence text (`licenses/GPL-2.txt`) and the copyright notice; the original recording (the "
        "\"source\") is in the named Debian package and version.",
        "- **CC0 / public domain** clips: no conditions; credit is appreciated.",
        "",
        "The studio's exports write an ATTRIBUTION.txt with these details for every stem made from a clip.",
        "",
        "## Licences in this library",
        "",
        "| licence | clips | link |",
        "|---|---:|---|",
    ]
    for code in sorted(counts):
        info = LICENCES[code]
        lines.append(f"| {info.name} | {counts[code]} | {info.url or '-'} |")
    lines += ["", "## Clips", ""]
    for category in CATEGORIES:
        group = [e for e in entries if e.category == category]
        if not group:
            continue
        lines += [f"### {category}", ""]
        for e in group:
            info = LICENCES[e.licence]
            version = SOURCE_PACKAGE_VERSIONS.get(e.source_package, "")
            lines.append(
                f"- `{e.id}` (`{e.file}`, {e.seconds:.2f} s): \"{e.caption}\". "
                f"Licence: {info.name}{f' ({info.url})' if info.url else ''}"
                f"{' - share-alike' if info.share_alike else ''}. Credit: {e.attribution}. "
                f"Source: Debian package {e.source_package} {version}, `{e.source_path}`.")
        lines.append("")
    lines += ["## Licence texts and upstream credits (licenses/)", ""]
    for name in copied:
        what = ("the GNU General Public License version 2 (for the GPL clips)" if name == "GPL-2.txt" else
                "Debian copyright file of the package (licence texts and copyright holders)"
                if name.endswith(".copyright") else "upstream credit / licence file of the package")
        lines.append(f"- `licenses/{name}`: {what}")
    lines.append("")
    return "\n".join(lines)


def write_index(entries: list[LibraryEntry]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(INDEX_COLUMNS)
    for e in entries:
        writer.writerow([e.id, e.file, e.caption, e.category, f"{e.seconds:.3f}", e.licence, e.attribution,
                         e.source_package, e.source_path])
    return buf.getvalue()


def build(sfx_root: Path, out: Path, *, min_clips: int, max_clips: int, max_seconds: float, max_mb: float,
          gpl_text: Path, allow_gpl: bool = True) -> dict:
    allowed = [c for c in ALLOWED_LICENCES if allow_gpl or c not in GPL_LICENCES]
    rows = [r for r in read_manifest(sfx_root)
            if r["split"] == "train" and r["license"] in allowed and float(r["seconds"]) >= MIN_SECONDS]
    rows.sort(key=lambda r: r["id"])
    missing = [c for c in CATEGORIES if not any(r["category"] == c for r in rows)]
    if missing:
        raise SystemExit(f"error: no usable train clips for {', '.join(missing)}")
    q = quality(rows, sfx_root)
    captions = sorted({r["caption"] for r in rows})
    caption_emb = dict(zip(captions, embed_sentences(captions)))
    picks: list[dict] = []
    for category in CATEGORIES:
        idx = [i for i, r in enumerate(rows) if r["category"] == category]
        emb = np.stack([caption_emb[rows[i]["caption"]] for i in idx])
        n_clips = clips_for(len({rows[i]["caption"] for i in idx}), lo=min_clips, hi=max_clips)
        chosen = select_category([rows[i] for i in idx], emb, q[idx], max_clips=n_clips, max_seconds=max_seconds)
        picks += sorted((rows[idx[c]] for c in chosen), key=lambda r: r["id"])

    entries = [LibraryEntry(
        id=r["id"], path=(out / f"audio/{r['category']}/{r['id']}.flac").resolve(), caption=r["caption"],
        category=r["category"], seconds=float(r["seconds"]), licence=r["license"], attribution=r["attribution"],
        source_package=r["source_package"], source_path=r["source_path"],
        file=f"audio/{r['category']}/{r['id']}.flac") for r in picks]
    licences = licence_files(picks, sfx_root / "licenses")
    if any(r["license"] in GPL_LICENCES for r in picks) and not gpl_text.is_file():
        raise SystemExit(f"error: GPL clips were picked but the GPL-2 text {gpl_text} is missing; pass --gpl-text")
    payload = sum((sfx_root / r["file"]).stat().st_size for r in picks) + sum(p.stat().st_size for p in licences)
    if payload > max_mb * 1e6:
        raise SystemExit(f"error: the library would take {payload / 1e6:.1f} MB, over the {max_mb} MB limit; "
                         "lower --max-clips or --seconds")

    keep: set[Path] = set()
    for r, e in zip(picks, entries):
        target = out / e.file
        data = (sfx_root / r["file"]).read_bytes()
        if not target.is_file() or target.read_bytes() != data:
            write_bytes_atomic(target, data)
        keep.add(target.resolve())
    copied = []
    for src in licences:
        write_bytes_atomic(out / "licenses" / src.name, src.read_bytes())
        keep.add((out / "licenses" / src.name).resolve())
        copied.append(src.name)
    if any(r["license"] in GPL_LICENCES for r in picks):
        write_bytes_atomic(out / "licenses" / "GPL-2.txt", gpl_text.read_bytes())
        keep.add((out / "licenses" / "GPL-2.txt").resolve())
        copied.append("GPL-2.txt")
    for folder in (out / "audio", out / "licenses"):
        for stale in sorted(folder.rglob("*"), reverse=True):
            if stale.is_file() and stale.resolve() not in keep:
                stale.unlink()
            elif stale.is_dir() and not any(stale.iterdir()):
                stale.rmdir()
    write_text_atomic(out / "index.csv", write_index(entries))
    write_text_atomic(out / "ATTRIBUTION.md", attribution_markdown(entries, copied))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"clips": len(entries), "seconds": sum(e.seconds for e in entries), "bytes": total,
            "per_category": Counter(e.category for e in entries), "licences": Counter(e.licence for e in entries)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sfx-root", type=Path, default=REPO.parent / "shared" / "sfx")
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "library")
    parser.add_argument("--min-clips", type=int, default=10,
                        help="clips per category (fewer only if the category has fewer or --seconds is reached)")
    parser.add_argument("--max-clips", type=int, default=16,
                        help="at most this many clips per category (2.5 x sqrt(distinct captions) between the two)")
    parser.add_argument("--seconds", type=float, default=60.0, help="at most this much audio per category")
    parser.add_argument("--max-mb", type=float, default=20.0, help="refuse to write a bigger library")
    parser.add_argument("--gpl-text", type=Path, default=Path("/usr/share/common-licenses/GPL-2"),
                        help="the GPL version 2 text, copied in when a GPL clip is picked")
    parser.add_argument("--no-gpl", action="store_true", help="leave out GPL clips (engine gets thin)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)      # the same float sums on every machine, so the same picks
    if not (args.sfx_root / "manifest.csv").is_file():
        print(f"error: no manifest.csv in {args.sfx_root}", file=sys.stderr)
        return 2
    report = build(args.sfx_root, args.out, min_clips=args.min_clips, max_clips=args.max_clips,
                   max_seconds=args.seconds, max_mb=args.max_mb, gpl_text=args.gpl_text,
                   allow_gpl=not args.no_gpl)
    print(f"{report['clips']} clips, {report['seconds']:.1f} s, {report['bytes'] / 1e6:.2f} MB in {args.out}")
    print("per category:", dict(sorted(report["per_category"].items())))
    print("licences:", dict(sorted(report["licences"].items())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
