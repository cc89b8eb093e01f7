"""The user's own reference sound in the studio session: it outlives its temporary upload, is
saved inside the project, and a reopened project regenerates from it (tiny random model)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from app.session import Session

torch.set_num_threads(1)

# the embedded backend on a tiny random model for every test here (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("tiny_model")


def _knocks(path: Path, sr: int = 22050, seconds: float = 0.8) -> Path:
    """Two decaying noise bursts (at 0.1 and 0.45 s), an odd rate, a name with a space."""
    rng = np.random.default_rng(0)
    n = int(seconds * sr)
    env = np.zeros(n)
    for t in (0.1, 0.45):
        i = int(t * sr)
        env[i:] += np.exp(-np.arange(n - i) / (0.04 * sr))
    sf.write(path, (0.4 * rng.standard_normal(n) * env / env.max()).astype(np.float32), sr)
    return path


@pytest.fixture
def video(media_factory):
    return media_factory("make_video", "square.mp4", seconds=3.0, fps=25, size=(160, 120),
                         audio_events_s=[1.0, 2.0])


def test_an_uploaded_reference_survives_its_temp_file_save_and_reopen(tmp_path, video):
    uploads = tmp_path / "gradio" / "3f9c"
    uploads.mkdir(parents=True)
    upload = _knocks(uploads / "door knock.wav")
    sound = upload.read_bytes()

    sess = Session(work_root=tmp_path / "work", autosave_root=tmp_path / "autosave")
    sess.load_video(video)
    sess.set_selection(1.0, 2.0)
    sess.upload_reference(upload)
    shutil.rmtree(tmp_path / "gradio")             # the temporary upload goes away before anything else
    sess.generate(caption="a knock on a door", steps=2, strength=0.0)
    stem = sess.keep_candidate(0)
    zip_path = tmp_path / "project.zip"
    shutil.copyfile(sess.save_project_zip(), zip_path)
    sess.close()                                    # and so does the session's own copy

    for how in ("zip", "autosave"):
        other = Session(work_root=tmp_path / f"work-{how}", autosave_root=tmp_path / f"autosave-{how}")
        if how == "zip":
            other.load_project_file(zip_path)
        else:
            other.restore(sess.autosave_dir)
        ref = other.project.stems[0].settings.reference
        assert ref.clip_id == "upload/door knock.wav" and ref.strength == 0.0
        stored = Path(ref.path)
        assert stored.name == "door knock.wav" and stored.parent.parent.name == "references"
        assert stored.read_bytes() == sound
        assert other.work_dir in stored.parents if how == "zip" else sess.autosave_dir in stored.parents

        st = other.load_stem_settings(stem.id)
        assert st["reference_missing"] is None
        assert other.reference.entry.caption == "door knock" and other.reference_strength == 0.0
        # strength 0 is the fitted reference itself: the reopened project remakes the stem exactly
        again = other.generate(caption="a knock on a door", steps=2, strength=0.0)
        np.testing.assert_array_equal(again[0].audio, other.project.stems[0].audio)
        np.testing.assert_array_equal(again[0].audio, stem.audio)
        varied = other.generate(caption="a knock on a door", steps=2, strength=0.5)
        assert varied[0].audio.shape == stem.audio.shape and np.isfinite(varied[0].audio).all()
        assert other.generation_meta["reference"]["id"] == "upload/door knock.wav"
        assert other.generation_meta["reference"]["strength"] == 0.5
        kept = other.keep_candidate(0)                  # and the new stem is saved with the sound too
        other.autosave()
        files = sorted(p.name for p in (other.autosave_dir / "references").rglob("*") if p.is_file())
        assert files == ["door knock.wav"] and kept.settings.reference.clip_id == ref.clip_id
        other.close()
