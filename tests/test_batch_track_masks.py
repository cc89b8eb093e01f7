"""A stem's stored followed region pasted into a batch shot list keeps its shape: batch reads
the track's masks file (`region.track_masks`, beside the list like the list's other paths),
checks it before anything renders, and puts its content in the request hash."""

from __future__ import annotations

import json

import numpy as np
import pytest

from foley_core import batch
from foley_core import generate as generate_module
from foley_core.batch import BatchOptions, ShotListError, load_shot_list, run_batch
from foley_core.generate import generate
from foley_core.project import load_project, save_project
from foley_core.request import Region
from test_followed_mask_project import (  # noqa: F401  (followed: a fixture)
    MASKS_DAMAGE, SECONDS, MaskRecorder, _ring_project, _video, followed)


@pytest.fixture
def ring_list(followed, tmp_path):
    """A saved project holding the ring's followed region, and a shot list in its folder whose
    stem is that stem's settings as project.json stores them."""
    frames = followed[0]
    video = _video(frames, tmp_path)
    folder = tmp_path / "p"
    save_project(_ring_project(followed[3]), folder)
    saved = json.loads((folder / "project.json").read_text())["stems"][0]
    shots = {"shots": [{"id": "ring", "video": str(video), "selection": [0.0, SECONDS],
                        "stems": [{**saved["settings"], "mix": saved["mix"]}]}]}
    path = folder / "shots.json"
    path.write_text(json.dumps(shots))
    return path, video, folder / saved["settings"]["region"]["track_masks"]


def test_a_shot_list_renders_a_stored_followed_region_with_its_masks(ring_list, followed, tmp_path,
                                                                   monkeypatch):
    path, video, _ = ring_list
    backend = MaskRecorder()
    monkeypatch.setattr(generate_module, "_resolve_backend", lambda model, device: backend)
    # the project's own regenerate of the stem
    settings = load_project(path.parent).stems[0].settings
    generate(settings.replace(video=video, model=backend, steps=1))
    # the same stem from the shot list, rendered by the worker's own function (no Ray needed)
    shot = load_shot_list(path)[0]
    out = batch.prepare_outputs([shot], tmp_path / "out", path)
    line = batch.render_shot(shot.request, out)
    assert line["status"] == "ok", line["error"]
    assert len(backend.masks) == 2
    np.testing.assert_array_equal(backend.masks[1], backend.masks[0])
    # the ring's hole is in what the model saw, not the box around it
    generate(settings.replace(video=video, model=backend, steps=1, region=Region(
        track_id=settings.region.track_id, track_boxes=settings.region.track_boxes)))
    assert not np.array_equal(backend.masks[2], backend.masks[0])
    # the shot's own project keeps the shape too
    assert load_project(out / "ring" / "project").stems[0].settings.region == settings.region


@pytest.mark.parametrize("case", sorted(MASKS_DAMAGE))
def test_a_missing_or_damaged_masks_file_stops_the_batch_before_ray(case, ring_list, tmp_path, monkeypatch):
    import ray

    path, _, npz = ring_list
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started before the list was valid"))
    MASKS_DAMAGE[case][0](npz)
    with pytest.raises(ShotListError) as err:
        run_batch(path, BatchOptions(out_dir=str(tmp_path / "o")))
    message = str(err.value)
    assert message.startswith("shot 'ring' stems[0] mask: track masks file 'stems/") and "\n" not in message
    assert ("not found" if case == "missing" else "is damaged") in message, message
    assert not (tmp_path / "o").exists()


def test_the_masks_content_is_in_the_request_hash_and_lists_without_it_keep_theirs(ring_list, followed):
    path, _, npz = ring_list
    shots = json.loads(path.read_text())
    first = load_shot_list(path)[0]
    mask = first.request["stems"][0]["mask"]
    assert mask["track_masks"]["path"] == str(npz) and mask["track_source"] == followed[3].track_source
    assert load_shot_list(path)[0].request_sha256 == first.request_sha256        # stable
    # another shape in the same file: a new request
    other = Region(track_id="x", track_boxes=followed[3].track_boxes,
                   track_masks=followed[3].track_masks[::-1])
    from foley_core.region_spec import track_masks_bytes

    npz.write_bytes(track_masks_bytes(other.track_masks))
    changed = load_shot_list(path)[0]
    assert changed.request["stems"][0]["mask"]["track_masks"]["sha256"] != mask["track_masks"]["sha256"]
    assert changed.request_sha256 != first.request_sha256
    # a track given as its boxes alone (no masks file, or null as format 3 stored it) is the
    # request batch always built from it: the same fields, so the same hash as before
    region = shots["shots"][0]["stems"][0]["region"]
    for masks in (None, ...):
        if masks is ...:
            region.pop("track_masks")
            region.pop("track_source")
        else:
            region["track_masks"] = masks
        path.write_text(json.dumps(shots))
        stem = load_shot_list(path)[0].request["stems"][0]
        assert stem["mask"] == {"kind": "track", "track_id": region["track_id"],
                                "track_boxes": [[float(v) for v in row] for row in region["track_boxes"]]}
        assert load_shot_list(path)[0].request["files"] == {}


def test_a_masks_file_changed_after_the_check_fails_its_shot_not_the_worker(ring_list, followed, tmp_path):
    from foley_core.region_spec import track_masks_bytes

    path, _, npz = ring_list
    shot = load_shot_list(path)[0]
    out = batch.prepare_outputs([shot], tmp_path / "out", path)
    npz.write_bytes(track_masks_bytes(followed[3].track_masks[::-1]))
    line = batch.render_shot(shot.request, out)
    assert line["status"] == "failed" and "changed or went missing after the shot list was checked" in line["error"]
