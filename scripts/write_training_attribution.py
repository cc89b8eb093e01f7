#!/usr/bin/env python
"""Write assets/embedded/TRAINING_DATA.md: who made the sounds the embedded model learned from.

The embedded weights are derived from the train split of ../shared/sfx; its licences (CC BY-SA
3.0, CC BY 3.0, GPL-2(+), CC0) ask for attribution, and share-alike/copyleft terms carry over.
    python scripts/write_training_attribution.py [--sfx ../shared/sfx] [--out assets/embedded/TRAINING_DATA.md]
Weights trained on a built sound library (`python -m foley_lab train --sfx-root LIBRARY`) are
derived from the clips the trainer takes from it (every clip outside the shared val split):
    python scripts/write_training_attribution.py --sfx LIBRARY --out RUN/TRAINING_DATA.md
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from foley_core.atomic import write_text_atomic  # noqa: E402

# licences whose terms carry over to derived weights (share-alike / copyleft)
_SHARE_ALIKE = ("CC-BY-SA", "GPL", "LGPL")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sfx", default=str(ROOT.parent / "shared" / "sfx"))
    parser.add_argument("--out", default=str(ROOT / "assets" / "embedded" / "TRAINING_DATA.md"))
    args = parser.parse_args(argv)
    from foley_lab.cli.train import _train_clips
    from foley_lab.data.sfx import SfxLibrary

    # the trainer's own selection, so the attribution lists exactly what the weights saw
    library = SfxLibrary(args.sfx)
    clips = _train_clips(library)
    source = ("the train split of the project's sound library" if (library.root / "manifest.csv").is_file()
              else "the built sound library (scripts/build_sound_library.py; every clip outside the "
                   "shared library's val split)")
    by_licence = collections.Counter(c.licence for c in clips)
    groups = collections.Counter((c.source_package, c.licence, c.attribution) for c in clips)
    carried = sorted(lic for lic in by_licence if lic.startswith(_SHARE_ALIKE))
    lines = [
        "# Training data of the embedded model: attribution and licences",
        "",
        f"The embedded weights were trained on {source} "
        f"({len(clips)} clips, {sum(c.seconds for c in clips) / 60:.1f} min), real recordings "
        "packaged in Debian. We treat the weights as derived from these sounds: they are distributed "
        "with this attribution, and under the share-alike / copyleft terms of the material "
        f"({', '.join(carried) or 'none'}). The val split was never used for training.",
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
    write_text_atomic(out, "\n".join(lines))
    print(f"wrote {out} ({len(groups)} source groups)")


if __name__ == "__main__":
    main()
