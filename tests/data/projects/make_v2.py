"""Writes tests/data/projects/v2: a project folder saved by the code that wrote format version 2.

Run with that code first on the path (a checkout of commit 03af609, e.g. `git worktree add
/tmp/old 03af609`), from this repository's root:

    PYTHONPATH=/tmp/old:/tmp/old/tests python tests/data/projects/make_v2.py

It saves the old tests' full_project() and a fourth stem made from the user's own sound (kept
in references/) with the source "library" and a conform strength but no curve.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from foley_core import audio_io, project
from test_project import SR, full_project, tone

assert project.FORMAT_VERSION == 2, "run this with the code that wrote format version 2"
out = Path(__file__).resolve().parent / "v2"
if out.exists():
    sys.exit(f"{out} exists; remove it first")
p = full_project()
with tempfile.TemporaryDirectory() as tmp:
    sound = audio_io.write_wav(Path(tmp) / "my knock.wav", tone(0.2, 300.0, seed=3), SR)
    p.add_stem(project.Stem(tone(0.4, 660.0, seed=4), SR, name="my knock", settings=project.GenerationSettings(
        caption="a knock on wood", seed=7, conform_strength=0.5, source="library", start_s=0.3, duration_s=0.4,
        reference=project.Reference(f"upload/{sound.name}", str(sound), "my knock", "",
                                    f"your sound '{sound.name}'", strength=0.6, fit="oneshot")),
        metrics={"peak_db": -6.0}))
    project.save_project(p, out)
print("wrote", out, [s.name for s in p.stems], np.__version__)
