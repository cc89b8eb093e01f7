"""Writes tests/data/projects/v3: a project folder saved by the code that wrote format version 3.

Run with that code first on the path (a checkout of commit 5e6f4b4, e.g. `git worktree add
/tmp/old 5e6f4b4`), from this repository's root:

    PYTHONPATH=/tmp/old:/tmp/old/tests python tests/data/projects/make_v3.py

It saves the tests' full_project() (an image, a box and a track region: format 3 kept a track as
its boxes only) and a fourth stem made from the user's own sound (kept in references/).
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from foley_core import audio_io, project
from test_project import SR, full_project, tone

assert project.FORMAT_VERSION == 3, "run this with the code that wrote format version 3"
out = Path(__file__).resolve().parent / "v3"
if out.exists():
    sys.exit(f"{out} exists; remove it first")
p = full_project()
with tempfile.TemporaryDirectory() as tmp:
    sound = audio_io.write_wav(Path(tmp) / "my knock.wav", tone(0.2, 300.0, seed=3), SR)
    ref = project.Reference(f"upload/{sound.name}", str(sound), "my knock", "",
                            f"your sound '{sound.name}'", strength=0.6, fit="oneshot")
    p.add_stem(project.Stem(tone(0.4, 660.0, seed=4), SR, name="my knock", settings=project.GenerationRequest(
        caption="a knock on wood", seed=7, source="library", start_s=0.3, duration_s=0.4,
        reference=ref, strength=0.6, reference_fit="oneshot", model=project.ModelSpec("embedded", "")),
        metrics={"peak_db": -6.0}))
    project.save_project(p, out)
print("wrote", out, [s.name for s in p.stems], np.__version__)
