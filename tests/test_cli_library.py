"""`launch.py library`: search with filters over the bundled library and the user's folders, the
incremental folder index, more-like-this, a clip's info, and one-line errors. Runs in-process (the
same parser and dispatch as launch.py) so MiniLM loads once; one subprocess checks the command is
registered in launch.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from foley_core.cli import build_parser, run_command

REPO = Path(__file__).resolve().parents[1]
SR = 16_000


def _burst(seconds: float, seed: int, decay: float) -> np.ndarray:
    """Noise dying away at `decay` per second: a hit for a fast decay, a steady sound for ~0."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = rng.standard_normal(t.shape[0]) * np.exp(-t * decay)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture()
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FOLEY_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def pack(tmp_path, cache) -> Path:
    """A designer's folder: WAV and FLAC files whose names are their captions, one damaged file."""
    folder = tmp_path / "pack"
    (folder / "hits").mkdir(parents=True)
    sf.write(folder / "Zorblat_Whirr_Loop.wav", _burst(2.5, 1, 0.0), SR)                  # sustained
    sf.write(folder / "hits" / "Zorblat_Knock_01.flac", _burst(0.4, 2, 40.0), SR)         # one-shot
    sf.write(folder / "hits" / "glass_tinkle_short.wav", _burst(0.5, 3, 30.0), SR)
    stereo = np.stack([_burst(3.0, 4, 0.0), _burst(3.0, 5, 0.0)], axis=1)
    sf.write(folder / "rain_on_tin_roof.flac", stereo, 44_100)
    (folder / "hits" / "broken_take.wav").write_bytes(b"RIFF not really a wav file")
    return folder


def cli(*argv: str, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = run_command(build_parser().parse_args(["library", *argv]))
    out = capsys.readouterr()
    return rc, out.out, out.err


def search_json(capsys, *argv: str) -> list[dict]:
    rc, out, err = cli("search", *argv, "--json", capsys=capsys)
    assert rc == 0, err
    return json.loads(out)["results"]


def test_search_finds_the_users_clips_by_their_file_names(pack, capsys):
    rc, out, err = cli("search", "zorblat", "--folder", str(pack), "--k", "3", capsys=capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["#", "id", "caption"] and "source / licence" in lines[0]
    # only the two zorblat files have the word: they rank first, shown as the user's own
    first_two = " ".join(lines[2:4])
    assert "zorblat whirr loop" in first_two and "zorblat knock" in first_two and "yours" in first_two
    assert len(lines) == 2 + 3
    # the damaged file is skipped and counted on stderr, not fatal
    assert "1 file(s) skipped" in err
    rows = search_json(capsys, "zorblat", "--folder", str(pack), "--k", "2")
    assert {r["id"] for r in rows} == {"user/pack/Zorblat_Whirr_Loop.wav", "user/pack/hits/Zorblat_Knock_01.flac"}
    assert [r["rank"] for r in rows] == [1, 2] and all(r["category"] == "user" for r in rows)


def test_search_filters_category_duration_kind_and_ucs(pack, capsys):
    user = search_json(capsys, "sound", "--folder", str(pack), "--category", "user", "--k", "10")
    assert len(user) == 4 and all(r["category"] == "user" for r in user)
    doors = search_json(capsys, "zorblat", "--folder", str(pack), "--category", "door", "--k", "5")
    assert doors and all(r["category"] == "door" for r in doors)
    long_ = search_json(capsys, "zorblat", "--folder", str(pack), "--no-bundled", "--min-s", "1")
    assert {r["id"] for r in long_} == {"user/pack/Zorblat_Whirr_Loop.wav", "user/pack/rain_on_tin_roof.flac"}
    short = search_json(capsys, "zorblat", "--folder", str(pack), "--no-bundled", "--max-s", "0.45")
    assert [r["id"] for r in short] == ["user/pack/hits/Zorblat_Knock_01.flac"]
    hits = search_json(capsys, "zorblat", "--folder", str(pack), "--no-bundled", "--kind", "one-shot")
    assert {r["id"] for r in hits} == {"user/pack/hits/Zorblat_Knock_01.flac", "user/pack/hits/glass_tinkle_short.wav"}
    assert all(r["kind"] == "oneshot" for r in hits)
    steady = search_json(capsys, "zorblat", "--folder", str(pack), "--no-bundled", "--kind", "sustained", "--k", "1")
    assert [r["id"] for r in steady] == ["user/pack/Zorblat_Whirr_Loop.wav"]
    # the kind filter also applies to the bundled clips: every result is of that kind
    bundled = search_json(capsys, "a door slams", "--kind", "sustained", "--k", "4")
    assert len(bundled) == 4 and all(r["kind"] == "sustained" for r in bundled)
    ucs = search_json(capsys, "door", "--ucs-category", "DOORS", "--k", "5")
    assert ucs and all("DOORS" in r["ucs"] for r in ucs)


def test_index_is_incremental_and_counts_unreadable_files(pack, capsys):
    rc, out, err = cli("index", str(pack), "--json", capsys=capsys)
    assert rc == 0, err
    scan = json.loads(out)["folders"][0]
    assert (scan["files"], scan["new"], scan["updated"], scan["unchanged"], scan["unreadable"]) == (5, 5, 0, 0, 1)
    assert "broken_take.wav" in scan["skipped"][0]
    rc, out, _ = cli("index", str(pack), "--json", capsys=capsys)
    scan = json.loads(out)["folders"][0]
    assert (scan["new"], scan["updated"], scan["unchanged"]) == (0, 0, 5)
    touched = pack / "hits" / "glass_tinkle_short.wav"
    st = touched.stat()
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    rc, out, _ = cli("index", str(pack), capsys=capsys)
    assert rc == 0
    assert "5 audio file(s): 0 new, 1 updated, 4 unchanged, 1 unreadable (skipped), 0 removed" in out
    assert "broken_take.wav" in out


def test_info_and_more_like_this(pack, capsys):
    rc, out, err = cli("info", "user/pack/rain_on_tin_roof.flac", "--folder", str(pack), "--json", capsys=capsys)
    assert rc == 0, err
    info = json.loads(out)
    assert (info["sr"], info["channels"], info["category"]) == (44_100, 2, "user")
    assert info["path"] == str(pack / "rain_on_tin_roof.flac") and "licence not recorded" in info["licence_terms"]
    rc, out, err = cli("info", "supertux_sounds_door", capsys=capsys)
    assert rc == 0, err
    assert "GNU GPL" in out and "supertux-data" in out and "rate (Hz):" in out
    rc, out, err = cli("more-like-this", "user/pack/hits/Zorblat_Knock_01.flac", "--folder", str(pack),
                       "--no-bundled", "--k", "3", "--json", capsys=capsys)
    assert rc == 0, err
    ids = [r["id"] for r in json.loads(out)["results"]]
    # the other short hit sounds most like the knock; the knock itself is not its own result
    assert ids[0] == "user/pack/hits/glass_tinkle_short.wav" and "user/pack/hits/Zorblat_Knock_01.flac" not in ids


@pytest.mark.parametrize("case", ["missing", "file", "no_audio", "only_unreadable", "unknown_id", "bad_k"])
def test_errors_are_one_line(tmp_path, pack, capsys, case):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a sound")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.wav").write_bytes(b"garbage")
    (bad / "b.flac").write_bytes(b"")
    argv, expected = {
        "missing": (["search", "x", "--folder", str(tmp_path / "nowhere")], "Sound folder not found"),
        "file": (["index", str(pack / "Zorblat_Whirr_Loop.wav")], "is a file, not a folder"),
        "no_audio": (["search", "x", "--folder", str(empty)], "No audio files in"),
        "only_unreadable": (["index", str(bad)], "None of the 2 audio files"),
        "unknown_id": (["info", "no_such_clip"], "No library clip with id"),
        "bad_k": (["search", "x", "--k", "0"], "--k must be at least 1"),
    }[case]
    rc, out, err = cli(*argv, capsys=capsys)
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and expected in err and len(err.strip().splitlines()) == 1


def test_launch_py_has_the_library_command(pack, cache):
    proc = subprocess.run([sys.executable, str(REPO / "launch.py"), "library", "search", "zorblat knock",
                           "--folder", str(pack), "--no-bundled", "--k", "1", "--json"],
                          cwd=REPO, env={**os.environ, "FOLEY_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["id"] == "user/pack/hits/Zorblat_Knock_01.flac"


@pytest.mark.parametrize("argv, message", [
    (["library"], "required: ACTION"),
    (["library", "search"], "required: TEXT"),
    (["library", "search", "x", "--kind", "loud"], "invalid choice: 'loud'"),
    (["library", "index"], "required: DIR"),
])
def test_usage_errors_are_one_line_with_a_help_hint(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1
    assert message in err and "--help" in err, err
