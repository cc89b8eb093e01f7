"""foley_core.outputs: an output never names an input or another output; its folder is checked first."""

from __future__ import annotations

import os

import pytest

from foley_core.errors import ExportError
from foley_core.outputs import OutputClashError, check_outputs, same_file


def test_output_equal_to_an_input_is_refused(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video")
    with pytest.raises(OutputClashError, match="--out .* same file as --video"):
        check_outputs({"--out": video}, {"--video": video})
    assert video.read_bytes() == b"video"


def test_symlink_and_hard_link_to_an_input_are_refused(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"video")
    (tmp_path / "link.mp4").symlink_to(video)
    os.link(video, tmp_path / "hard.mp4")
    for name in ("link.mp4", "hard.mp4"):
        with pytest.raises(OutputClashError):
            check_outputs({"--mp4": tmp_path / name}, {"--video": video}, suffixes={"--mp4": ".mp4"})


def test_two_outputs_may_not_be_one_file(tmp_path):
    with pytest.raises(OutputClashError, match="--out and --mp4 are the same file"):
        check_outputs({"--out": tmp_path / "x.mp4", "--mp4": tmp_path / "x.mp4"})


def test_input_lists_are_checked(tmp_path):
    stems = [tmp_path / "a.wav", tmp_path / "b.wav"]
    for s in stems:
        s.write_bytes(b"x")
    with pytest.raises(OutputClashError, match="the project's files"):
        check_outputs({"--out": stems[1]}, {"the project's files": stems})


def test_suffix_must_match_what_is_written(tmp_path):
    with pytest.raises(ExportError, match="ending in .wav"):
        check_outputs({"--out": tmp_path / "o.mp4"}, suffixes={"--out": ".wav"})
    assert check_outputs({"--out": tmp_path / "o.WAV"}, suffixes={"--out": ".wav"})["--out"].name == "o.WAV"


def test_missing_folder_and_folder_target_are_refused(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        check_outputs({"--out": tmp_path / "nope" / "o.wav"})
    with pytest.raises(ExportError, match="is a folder"):
        check_outputs({"--out": tmp_path})
    assert not (tmp_path / "nope").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc (a read-only folder for root)")
def test_unwritable_folder_is_refused_before_any_work():
    # /proc refuses new files even for root, where a chmod'ed folder would not.
    with pytest.raises(ExportError, match="not writable"):
        check_outputs({"--out": "/proc/self/o.wav"})


def test_same_file_is_false_for_distinct_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("1")
    assert not same_file(a, b)
    assert same_file(a, tmp_path / "." / "a")
