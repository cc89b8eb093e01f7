#!/usr/bin/env python
"""Write assets/embedded/TRAINING_DATA.md: who made the sounds the embedded model learned from.

The embedded weights are derived from the train split of ../shared/sfx; its licences (CC BY-SA
3.0, CC BY 3.0, GPL-2(+), CC0) ask for attribution, and share-alike/copyleft terms carry over.
    python scripts/write_training_attribution.py [--sfx ../shared/sfx] [--out assets/embedded/TRAINING_DATA.md]
"""

from __future__ import annotations

import argparse
import collections
import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sfx", default=str(ROOT.parent / "shared" / "sfx"))
    parser.add_argument("--out", default=str(ROOT / "assets" / "embedded" / "TRAINING_DATA.md"))
    args = parser.parse_args()
    with open(Path(args.sfx) / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == "train"]
    by_licence = collections.Counter(r["license"] for r in rows)
    groups = collections.Counter((r["source_package"], r["license"], r["attribution"]) for r in rows)
    lines = [
        "# Training data of the embedded model: attribution and licences",
        "",
        f"The embedded weights were trained on the train split of the project's sound library "
        f"({len(rows)} clips, {sum(float(r['seconds']) for r in rows) / 60:.1f} min), real recordings "
        "packaged in Debian. We treat the weights as derived from these sounds: they are distributed "
        "with this attribution, and under the share-alike / copyleft terms of the material "
        "(CC BY-SA 3.0; GPL-2 for the GPL clips). The val split was never used for training.",
        "",
        "| licence | clips |", "|---|---:|",
        *[f"| {lic} | {n} |" for lic, n in by_licence.most_common()],
        "",
        "## Sources (package, licence, attribution, clips)",
        "",
    ]
    for (package, licence, attribution), n in sorted(groups.items()):
        lines.append(f"- **{package}**, {licence}, {n} clip{'s' if n > 1 else ''}: {attribution}")
    lines += ["", "The full copyright files of each source package are in the sound library's "
              "`licenses/` folder (and, for the bundled starter sounds, in `assets/library/licenses/`).", ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {out} ({len(groups)} source groups)")


if __name__ == "__main__":
    main()
