"""Project archives from a browser are checked before a byte is unpacked, and leave nothing
behind when refused (foley_core.project_archive, and the studio session that calls it)."""

from __future__ import annotations

import stat
import zipfile

import pytest

from app.session import Session
from foley_core import constants, project_archive
from foley_core.errors import ProjectError


@pytest.fixture
def sess(tmp_path):
    s = Session(work_root=tmp_path / "work", autosave_root=tmp_path / "autosave")
    yield s
    s.close()


def _zip(path, members, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as zf:
        for name, data in members:          # name: a str or a ZipInfo (its mode bits)
            zf.writestr(name, data)
    return path


def _opened(sess):
    root = sess.work_dir / "opened"
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_a_zip_bomb_is_refused_before_anything_is_unpacked(sess, tmp_path):
    # 64 MB of zeros deflate to ~64 KB: the old code unpacked all of it and kept the folder
    bomb = _zip(tmp_path / "bomb.zip", [("p/project.json", "{}"),
                                        ("p/stems/a.wav", bytes(64 * 1024**2))])
    assert bomb.stat().st_size < 1024**2
    with pytest.raises(ProjectError, match="inflates .* times"):
        sess.load_project_file(bomb)
    assert _opened(sess) == []


def test_too_big_in_total_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(project_archive, "MAX_ARCHIVE_UNPACKED_BYTES", 3 * 1024**2)
    big = _zip(tmp_path / "big.zip", [(f"p/stems/{i}.wav", bytes(1024**2)) for i in range(4)],
               method=zipfile.ZIP_STORED)
    with pytest.raises(ProjectError, match="unpacks to more than 3 MB"):
        project_archive.extract_archive(big, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_too_many_files_are_refused(sess, tmp_path):
    n = constants.MAX_ARCHIVE_FILES + 1
    many = _zip(tmp_path / "many.zip", [(f"p/{i}.txt", "x") for i in range(n)])
    with pytest.raises(ProjectError, match=f"holds {n} files"):
        sess.load_project_file(many)
    assert _opened(sess) == []


@pytest.mark.parametrize("name", ["../evil.txt", "p/../../evil.txt", "/tmp/evil.txt",
                                  "p\\..\\..\\evil.txt", "C:/evil.txt"])
def test_member_paths_must_stay_inside(sess, tmp_path, name):
    archive = _zip(tmp_path / "trav.zip", [("p/project.json", "{}"), (name, "x")])
    with pytest.raises(ProjectError, match="outside its folder"):
        sess.load_project_file(archive)
    assert _opened(sess) == []
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_members_are_refused(sess, tmp_path):
    link = zipfile.ZipInfo("p/stems/a.wav")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = _zip(tmp_path / "link.zip", [("p/project.json", "{}"), (link, "/etc/passwd")])
    with pytest.raises(ProjectError, match="symbolic link"):
        sess.load_project_file(archive)
    assert _opened(sess) == []


def test_an_archive_that_does_not_load_is_removed(sess, tmp_path):
    bad = _zip(tmp_path / "bad.zip", [("p/project.json", "{not json"), ("p/stems/a.wav", "x")])
    with pytest.raises(ProjectError):
        sess.load_project_file(bad)
    assert _opened(sess) == []


def test_saved_archives_store_media_uncompressed(tmp_path):
    from foley_core import project as fproject

    import numpy as np

    project = fproject.Project(name="Quiet one")
    stem = fproject.Stem.new(np.zeros(16000 * 60, np.float32), 16000, fproject.GenerationRequest(
        caption="silence", duration_s=60.0), name="silence")
    project.add_stem(stem)
    out = project_archive.save_archive(project, tmp_path / "p.zip", staging_dir=tmp_path / "s")
    with zipfile.ZipFile(out) as zf:
        wavs = [i for i in zf.infolist() if i.filename.endswith(".wav")]
        assert wavs and all(i.compress_type == zipfile.ZIP_STORED for i in wavs)
    # a silent minute is a legitimate project: it must open (deflated, it would look like a bomb)
    folder = project_archive.extract_archive(out, tmp_path / "o")
    assert len(fproject.load_project(folder).stems) == 1
