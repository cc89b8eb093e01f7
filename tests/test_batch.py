"""`launch.py batch`: a shot list rendered on a local Ray (2 workers, tiny random model).

One Ray run renders 4 shots: 3 good ones (one of them on the product's default path, library
retrieval) and one whose reference cannot be decoded (it fails, the rest go on); the worker
rendering one good shot is killed once (Ray restarts it and retries the shot). Then a re-run
of the finished shots starts no Ray at all (every shot skipped), and the shot list is validated
before Ray starts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from foley_core import batch
from foley_core.batch import BatchOptions, ShotListError, load_shot_list, request_hash, run_batch
from foley_core.outputs import OutputClashError

pytestmark = pytest.mark.usefixtures("tiny_model")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, media_factory) -> Path:
    import media_fixtures

    folder = tmp_path_factory.mktemp("batch_inputs")
    shutil.copy(media_factory("make_video", "clip.mp4", seconds=3.0), folder / "clip.mp4")
    media_fixtures.make_audio(folder / "knock.wav", seconds=1.0, events_s=[0.2])
    (folder / "broken.wav").write_text("this is not audio\n")
    return folder


def _shots() -> dict:
    return {"shots": [
        {"id": "a", "video": "clip.mp4", "selection": [0.0, 1.0],
         "stems": [{"caption": "a ball bounces", "seed": 11, "steps": 2, "mask": {"kind": "box", "box": [10, 10, 80, 80]},
                    "reference": {"path": "knock.wav", "strength": 0.5}},
                   {"caption": "a soft thud", "seed": 12, "steps": 2, "reference": "knock.wav",
                    "mix": {"gain_db": -6.0, "pan": 0.5}}]},
        {"id": "b", "video": "clip.mp4", "selection": {"start_s": 1.0, "duration_s": 1.5},
         "stems": [{"caption": "a door knocks", "seed": 21, "steps": 2, "reference": "knock.wav",
                    "curve": {"times_s": [0.0, 0.5, 1.5], "values": [0.2, 1.0, 0.1]}}]},
        {"id": "c", "video": "clip.mp4", "start_s": 0.5, "duration_s": 1.0,
         "stems": [{"caption": "footsteps on wood", "seed": 31, "steps": 2}]},     # default: retrieval
        {"id": "bad", "video": "clip.mp4", "selection": [0.0, 1.0],
         "stems": [{"caption": "glass breaks", "steps": 2, "reference": "broken.wav"}]},
    ]}


def test_batch_renders_on_ray_reports_retries_and_skips_on_rerun(inputs, tmp_path, monkeypatch):
    from foley_core import media
    from foley_core.audio_io import read_audio
    from foley_core.project import load_project

    shot_list = inputs / "shots.json"
    shot_list.write_text(json.dumps(_shots()))
    out = tmp_path / "out"
    crash_marker = tmp_path / "crashed-once"
    monkeypatch.setenv(batch.CRASH_ONCE_ENV, f"c:{crash_marker}")
    logs: list[str] = []
    summary = run_batch(shot_list, BatchOptions(out_dir=str(out), workers=2, threads=1), log=logs.append)

    assert (summary["shots"], summary["ok"], summary["failed"], summary["skipped"]) == (4, 3, 1, 0)
    lines = {line["shot"]: line for line in map(json.loads, (out / "report.jsonl").read_text().splitlines())}
    assert set(lines) == {"a", "b", "c", "bad"}
    assert "broken.wav" in lines["bad"]["error"] and lines["bad"]["status"] == "failed"
    assert crash_marker.exists()          # the worker rendering 'c' did die once ...
    assert lines["c"]["status"] == "ok"   # ... and Ray retried the shot on the restarted worker
    # the first two shots went to the two workers, each loading the model once (not per shot)
    assert len({lines[s]["worker"] for s in ("a", "b")}) == 2
    assert all(lines[s]["model_load_s"] > 0 for s in ("a", "b", "c"))
    assert any("4/4 shots done" in m for m in logs) and any("ETA" in m for m in logs)

    shots = {s.id: s for s in load_shot_list(shot_list)}
    for shot_id, seeds in (("a", [11, 12]), ("b", [21]), ("c", [31])):
        line, shot = lines[shot_id], shots[shot_id]
        folder = out / shot_id
        assert line["seeds"] == seeds and len(line["models"]) == len(seeds) and line["error"] is None
        assert all("embedded" in m for m in line["models"]) and line["node"] and line["seconds"] > 0
        stored = json.loads((folder / "request.json").read_text())
        assert stored["request_sha256"] == request_hash(shot.request) == line["request_sha256"]
        project = load_project(folder / "project")
        assert [s.settings.seed for s in project.stems] == seeds
        assert all(s.mix.offset_s == pytest.approx(shot.start_s) for s in project.stems)
        assert all(s.settings.duration_s == pytest.approx(shot.duration_s) for s in project.stems)
        assert all(s.source_duration_s == pytest.approx(shot.duration_s, abs=0.02) for s in project.stems)
        assert all(np.abs(s.audio).max() > 0 for s in project.stems)
        mix, sr = read_audio(folder / "mix.wav", mono=False)
        assert sr == 48000 and mix.shape[1] == 2
        assert mix.shape[0] / sr == pytest.approx(shot.video_duration_s, abs=0.05)   # the whole video
        outside = np.concatenate([mix[: max(0, int((shot.start_s - 0.05) * sr))],
                                  mix[int((shot.start_s + shot.duration_s + 0.05) * sr):]])
        assert np.abs(mix).max() > 1e-3 and (outside.size == 0 or np.abs(outside).max() < 1e-6)
        info = media.probe_video(folder / f"{shot_id}.mp4")
        assert info.duration_s == pytest.approx(shot.video_duration_s, abs=0.1)
    a_stems = load_project(out / "a" / "project").stems
    assert (a_stems[1].mix.gain_db, a_stems[1].mix.pan) == (-6.0, 0.5)
    assert a_stems[0].settings.region.box == (10.0, 10.0, 80.0, 80.0)
    assert load_project(out / "b" / "project").stems[0].settings.curve is not None
    assert not (out / "bad" / "request.json").exists() and not (out / "bad" / "mix.wav").exists()

    # Re-run without the failing shot: everything is rendered for the same request, so no Ray
    ok_list = inputs / "shots-ok.json"
    ok_list.write_text(json.dumps({"shots": _shots()["shots"][:3]}))
    import ray

    def no_ray(*args, **kwargs):
        raise AssertionError("a re-run of finished shots must not start Ray")

    monkeypatch.setattr(ray, "init", no_ray)
    mtime = (out / "a" / "mix.wav").stat().st_mtime_ns
    again = run_batch(ok_list, BatchOptions(out_dir=str(out)), log=logs.append)
    assert (again["skipped"], again["ok"], again["failed"]) == (3, 0, 0)
    assert (out / "a" / "mix.wav").stat().st_mtime_ns == mtime
    assert [json.loads(x)["status"] for x in (out / "report.jsonl").read_text().splitlines()] == ["skipped"] * 3
    # ... and a changed request (another seed) is not "done"
    changed = _shots()
    changed["shots"][0]["stems"][0]["seed"] = 99
    ok_list.write_text(json.dumps(changed))
    shot_a = load_shot_list(ok_list)[0]
    assert shot_a.request_sha256 != shots["a"].request_sha256
    assert not batch.is_done(out, shot_a) and batch.is_done(out, shots["a"])


@pytest.mark.parametrize("edit, expected", [
    (lambda s: s["shots"][1]["stems"][0].pop("caption"), "shot 'b' stems[0]: 'caption' is missing"),
    (lambda s: s["shots"][0]["stems"][1].update(seed="x"), "shot 'a' stems[1]: 'seed' should be a whole number"),
    (lambda s: s["shots"][2].update(duration_s=9.0), "shot 'c': the selection 0.5..9.5 s is not inside the video"),
    (lambda s: s["shots"][0].update(video="missing.mp4"), "shot 'a': video 'missing.mp4' not found"),
    (lambda s: s["shots"][3]["stems"][0].update(captoin="x"), "shot 'bad' stems[0]: unknown field 'captoin'"),
    (lambda s: s["shots"][1].update(id="a"), "shot 'a': the id is used by an earlier shot"),
    (lambda s: s["shots"][0]["stems"][0].update(reference="no_such_clip"),
     "shot 'a' stems[0] reference: no library clip 'no_such_clip'"),
    (lambda s: s["shots"][0]["stems"][0].update(mask={"kind": "box", "box": [1, 2]}),
     "shot 'a' stems[0] mask: 'box' should be a list of 4 numbers"),
    (lambda s: s["shots"][0]["stems"][0].update(mix={"pan": 3}), "shot 'a' stems[0]: the stem's pan must be between"),
])
def test_shot_list_is_validated_before_ray(inputs, tmp_path, edit, expected, monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started before the list was valid"))
    shots = _shots()
    edit(shots)
    path = inputs / f"{tmp_path.name}.json"     # relative paths are read beside the list
    path.write_text(json.dumps(shots))
    with pytest.raises(ShotListError) as err:
        run_batch(path, BatchOptions(out_dir=str(tmp_path / "o")))
    assert expected in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert not (tmp_path / "o").exists()      # nothing made before the list is valid


def test_batch_command_prints_one_line_errors(inputs, tmp_path):
    shots = _shots()
    shots["shots"][2]["stems"][0]["steps"] = 0
    path = inputs / f"{tmp_path.name}.json"
    path.write_text(json.dumps(shots))
    proc = subprocess.run([sys.executable, str(REPO / "launch.py"), "batch", str(path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "error: shot 'c' stems[0]: 'steps' should be from 1 to 200, got 0"


def test_an_output_that_is_an_input_is_refused(inputs, tmp_path):
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    video = out / "a" / "a.mp4"                 # the shot's MP4 output would overwrite its own video
    shutil.copy(inputs / "clip.mp4", video)
    shots = {"shots": [{"id": "a", "video": str(video), "stems": [{"caption": "a knock", "steps": 2}]}]}
    path = tmp_path / "list.json"
    path.write_text(json.dumps(shots))
    with pytest.raises(OutputClashError, match="same file as shot 'a' input"):
        run_batch(path, BatchOptions(out_dir=str(out)))
    assert video.stat().st_size == (inputs / "clip.mp4").stat().st_size


def test_csv_shot_list_equals_its_json_form(inputs):
    (inputs / "shots.csv").write_text(
        "shot,video,start_s,end_s,caption,seed,steps,box,reference,strength,gain_db\n"
        "a,clip.mp4,0,1,a ball bounces,11,2,10 10 80 80,knock.wav,0.5,\n"
        "a,clip.mp4,0,1,a soft thud,12,2,,knock.wav,,-6\n")
    as_json = {"shots": [{"id": "a", "video": "clip.mp4", "selection": [0, 1], "stems": [
        {"caption": "a ball bounces", "seed": 11, "steps": 2, "mask": {"kind": "box", "box": [10, 10, 80, 80]},
         "reference": {"path": "knock.wav", "strength": 0.5}},
        {"caption": "a soft thud", "seed": 12, "steps": 2, "reference": "knock.wav", "mix": {"gain_db": -6}}]}]}
    (inputs / "same.json").write_text(json.dumps(as_json))
    from_csv, from_json = load_shot_list(inputs / "shots.csv"), load_shot_list(inputs / "same.json")
    assert [s.request_sha256 for s in from_csv] == [s.request_sha256 for s in from_json]
    assert from_csv[0].request["stems"][1]["mix"]["gain_db"] == -6.0


def test_a_studio_saved_stem_is_a_valid_request(inputs, tmp_path):
    """The settings object of a saved project's stem goes into a shot list as it is."""
    from foley_core import project as fp

    settings = fp.GenerationRequest(caption="a ball bounces", seed=5, steps=3,
                                     region=fp.Region(kind="box", box=(1, 2, 30, 40)),
                                     curve=fp.CurveSpec.from_values(np.array([0.1, 1.0, 0.5])),
                                     reference=fp.Reference(clip_id="mine", path=str(inputs / "knock.wav"),
                                                            strength=0.3),
                                     start_s=0.0, duration_s=1.0)
    proj = fp.Project(video_path=inputs / "clip.mp4", stems=[fp.Stem.new(np.zeros(16000, np.float32) + 0.1,
                                                                           16000, settings)])
    fp.save_project(proj, tmp_path / "proj")
    saved = json.loads((tmp_path / "proj" / "project.json").read_text())["stems"][0]
    shots = {"shots": [{"id": "s", "video": str(inputs / "clip.mp4"), "selection": [0, 1],
                        "stems": [{**saved["settings"], "mix": saved["mix"]}]}]}
    (tmp_path / "list.json").write_text(json.dumps(shots))
    stem = load_shot_list(tmp_path / "list.json")[0].request["stems"][0]
    assert (stem["seed"], stem["steps"], stem["mask"]["box"]) == (5, 3, [1.0, 2.0, 30.0, 40.0])
    assert stem["reference"]["strength"] == 0.3 and Path(stem["reference"]["file"]).is_file()
    assert stem["curve"]["values"] == pytest.approx([0.1, 1.0, 0.5])


def test_a_replaced_reference_file_is_a_new_request(inputs, tmp_path):
    shutil.copy(inputs / "clip.mp4", tmp_path / "clip.mp4")
    shutil.copy(inputs / "knock.wav", tmp_path / "ref.wav")
    (tmp_path / "list.json").write_text(json.dumps({"shots": [{"id": "a", "video": "clip.mp4", "stems": [
        {"caption": "a knock", "reference": "ref.wav"}]}]}))
    before = load_shot_list(tmp_path / "list.json")[0].request_sha256
    assert load_shot_list(tmp_path / "list.json")[0].request_sha256 == before      # stable
    shutil.copy(inputs / "broken.wav", tmp_path / "ref.wav")                       # same name, new sound
    assert load_shot_list(tmp_path / "list.json")[0].request_sha256 != before


def _user_folder(root: Path) -> Path:
    import soundfile as sf

    folder = root / "my sfx"
    folder.mkdir()
    n = 22050
    rng = np.random.default_rng(5)
    sf.write(folder / "Zorblat_Whirr_01.wav", (0.3 * rng.standard_normal(n) * np.exp(-np.arange(n) / 4000)
                                               ).astype(np.float32), 22050)
    sf.write(folder / "paper_crumple.wav", (0.2 * rng.standard_normal(n)).astype(np.float32), 22050)
    return folder


def test_library_folders_of_a_shot_list_feed_retrieval_and_references(inputs, tmp_path, monkeypatch):
    """A list's `library_folders` (beside the list) and the command's folders reach the worker:
    a caption only the user's clip matches picks it, and a reference names a clip of theirs by id.
    Rendered in-process (the worker's own function), so no Ray is needed."""
    from foley_core.project import load_project

    monkeypatch.setenv("FOLEY_CACHE_DIR", str(tmp_path / "cache"))
    folder = _user_folder(tmp_path)
    shutil.copy(inputs / "clip.mp4", tmp_path / "clip.mp4")
    shots = {"library_folders": ["my sfx"], "shots": [
        {"id": "z", "video": "clip.mp4", "selection": [0.0, 1.0],
         "stems": [{"caption": "a zorblat whirr", "seed": 1, "steps": 1},
                   {"caption": "paper", "steps": 1, "reference": "user/my sfx/paper_crumple.wav"}]}]}
    path = tmp_path / "list.json"
    path.write_text(json.dumps(shots))
    shot = load_shot_list(path)[0]
    assert shot.request["library_folders"] == [str(folder.resolve())]
    # the same folder given to the command instead: the same request
    (tmp_path / "plain.json").write_text(json.dumps({"shots": shots["shots"]}))
    given = load_shot_list(tmp_path / "plain.json", library_folders=[str(folder)])[0]
    assert given.request_sha256 == shot.request_sha256
    out = batch.prepare_outputs([shot], tmp_path / "out", path)
    line = batch.render_shot(shot.request, out)
    assert line["status"] == "ok", line["error"]
    stems = load_project(out / "z" / "project").stems
    assert stems[0].settings.reference.clip_id == "user/my sfx/Zorblat_Whirr_01.wav"
    assert stems[1].settings.reference.clip_id == "user/my sfx/paper_crumple.wav"
    assert "your sound" in stems[0].settings.reference.attribution


@pytest.mark.parametrize("folders, expected", [(["nowhere"], "library_folders: Sound folder not found"),
                                               (["clip.mp4"], "is a file, not a folder"),
                                               ("my sfx", "'library_folders' should be a list")])
def test_bad_library_folders_are_refused_before_ray(inputs, tmp_path, folders, expected, monkeypatch):
    import ray

    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started before the list was valid"))
    shots = {"library_folders": folders, "shots": _shots()["shots"][2:3]}
    path = inputs / f"{tmp_path.name}.json"
    path.write_text(json.dumps(shots))
    with pytest.raises(ShotListError) as err:
        run_batch(path, BatchOptions(out_dir=str(tmp_path / "o")))
    assert expected in str(err.value) and "\n" not in str(err.value), str(err.value)
