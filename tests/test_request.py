"""The generation request, its region and its report (foley_core.request): one home for limits and defaults."""

from __future__ import annotations

import json

import numpy as np
import pytest

from foley_core import constants
from foley_core.backends import Capabilities, WindowOutput
from foley_core.errors import FoleyError, MaskError, TimeRangeError
from foley_core.generate import generate
from foley_core.request import GenerationReport, GenerationRequest, Region
from stub_backends import StubBackend

SR = 16_000


class NoiseBackend(StubBackend):
    """A model stand-in: seeded noise per candidate, records what each window was asked."""

    name = "noise"
    obeys = frozenset({"text"})
    ignores = frozenset({"negative", "video", "mask", "curve"})
    description = "noise (stand-in)"

    def __init__(self):
        self.asked: list[dict] = []

    def generate_window(self, *, duration_s, seeds, **kw):
        self.asked.append({"duration_s": duration_s, "seeds": list(seeds), **kw})
        n = round(duration_s * SR)
        audios = np.stack([np.random.default_rng(s).standard_normal(n) * 0.1 for s in seeds])
        return WindowOutput(audios=audios.astype(np.float32), sr=SR)


def test_defaults_are_the_shared_constants():
    request = GenerationRequest(caption="rain", duration_s=1.0)
    assert (request.steps, request.text_scale, request.video_scale) == (
        constants.DEFAULT_STEPS, constants.DEFAULT_TEXT_SCALE, constants.DEFAULT_VIDEO_SCALE)
    assert request.selection == (0.0, 1.0)
    # a reference-capable source and a caption: the shared default strength
    assert request.strength is None and request.resolved_strength == constants.DEFAULT_REFERENCE_STRENGTH
    assert GenerationRequest(caption="rain", duration_s=1.0, source="model").resolved_strength is None


@pytest.mark.parametrize("seed", [-1, constants.MAX_SEED + 1, 2**62])
def test_seeds_outside_what_users_see_are_refused(seed):
    with pytest.raises(FoleyError, match="seed"):
        GenerationRequest(caption="rain", duration_s=1.0, seed=seed)
    assert GenerationRequest(caption="rain", duration_s=1.0, seed=constants.MAX_SEED).seed == constants.MAX_SEED


def test_selection_shorter_than_the_shared_minimum_is_refused():
    with pytest.raises(TimeRangeError, match=f"at least {constants.MIN_SELECTION_S:g} s"):
        generate(caption="tick", duration_s=0.15, model=NoiseBackend(), source="model")
    result = generate(caption="tick", duration_s=constants.MIN_SELECTION_S, model=NoiseBackend(), source="model")
    assert result.report.duration_s == constants.MIN_SELECTION_S


def test_request_is_frozen_and_checked_again_on_replace():
    request = GenerationRequest(caption="  rain   on  glass ", duration_s=1.0, source="model")
    assert request.caption == "rain on glass"
    with pytest.raises(AttributeError):
        request.seed = 3
    with pytest.raises(FoleyError, match="candidates"):
        request.replace(candidates=0)


def test_region_takes_exactly_one_place():
    assert Region().kind == "none"
    assert Region(box=(1, 2, 30, 40)).kind == "box" and Region(box=(1, 2, 30, 40)).box == (1.0, 2.0, 30.0, 40.0)
    assert Region(image="mask.png").kind == "image"
    rows = ((0.0, 1, 2, 30, 40), (0.5, 3, 2, 33, 40))
    region = Region(track_id=7, track_boxes=rows)
    assert region.kind == "track" and region.track_id == "7"
    assert region.track_spec() == {"id": "7", "times_s": [0.0, 0.5],
                                   "boxes": [[1.0, 2.0, 30.0, 40.0], [3.0, 2.0, 33.0, 40.0]]}
    with pytest.raises(MaskError, match="exactly one"):
        Region(box=(0, 0, 1, 1), track={"times_s": [0.0], "boxes": [[0, 0, 1, 1]]})
    with pytest.raises(MaskError, match="needs the mask image"):
        Region(kind="image", box=(0, 0, 1, 1))
    # a whole-frame region is no region: the request holds None
    assert GenerationRequest(caption="x", video="v.mp4", region=Region()).region is None


def test_request_and_keyword_forms_make_the_same_take():
    kw = dict(caption="rain", duration_s=3.1, seed=4, candidates=2, steps=3, source="model")
    by_request = generate(GenerationRequest(**kw, model=NoiseBackend()))
    by_keywords = generate(**kw, model=NoiseBackend())
    for a, b in zip(by_request.audios, by_keywords.audios):
        np.testing.assert_array_equal(a, b)
    assert by_request.metadata == {**by_keywords.metadata, "timings_s": by_request.metadata["timings_s"]}
    with pytest.raises(FoleyError, match="not both"):
        generate(GenerationRequest(**kw), seed=5)


def test_report_is_typed_and_its_json_has_the_cli_keys():
    backend = NoiseBackend()
    result = generate(caption="rain", duration_s=2.6, seed=9, candidates=2, steps=2, source="model",
                      curve=np.linspace(0.2, 1.0, 26), model=backend)
    report = result.report
    assert isinstance(report, GenerationReport)
    assert report.seeds == [9, 10] and report.model_name == "noise" and report.reference is None
    assert [(w["start_s"], w["duration_s"]) for w in report.windows] == [(0.0, 2.0), (1.0, 1.6)]
    assert report.instructions.given == ["text", "curve"]
    assert report.instructions.enforced_after == ["curve (conform)"]
    data = report.to_json()
    json.dumps(data)                                            # plain JSON
    assert data["instructions"]["obeyed_by_model"] == ["text"] and data["reference"] is None
    assert result.metadata == data
    # each window was asked with the request's scales and steps
    assert {(a["steps"], a["text_scale"], a["video_scale"]) for a in backend.asked} == {
        (2, constants.DEFAULT_TEXT_SCALE, constants.DEFAULT_VIDEO_SCALE)}


def test_generate_passes_what_the_backend_declares_it_takes():
    plain = NoiseBackend()
    with pytest.raises(FoleyError, match="cannot place sounds at given onsets"):
        generate(caption="knock", duration_s=1.0, onsets_s=[0.2], source="model", model=plain)
    hits = NoiseBackend()
    hits.capabilities = Capabilities(onsets=True, curve_guidance=True, default_curve_scale=3.0)
    result = generate(caption="knock", duration_s=1.0, onsets_s=[0.2, 0.6], source="model",
                      curve=np.linspace(0.2, 1.0, 10), model=hits)
    assert hits.asked[0]["onsets_s"] == [0.2, 0.6] and "curve_scale" not in hits.asked[0]
    assert result.report.curve_scale == 3.0             # the declared default, reported
    with pytest.raises(FoleyError, match="reference-guided generation is not supported"):
        generate(caption="knock", duration_s=1.0, reference=(np.ones(SR, np.float32) * 0.1, SR),
                 strength=0.5, model=plain)


def test_the_embedded_backend_declares_its_weights_capabilities(tiny_model):
    from foley_core.backends import get_backend

    backend = get_backend("embedded")
    assert backend.capabilities == Capabilities(
        reference=True, onsets=backend.supports_onsets, curve_guidance=True,
        default_curve_scale=backend.curve_scale, reference_detail=backend.reference_detail,
        inpaint=True)


def test_every_backend_class_declares_what_it_offers_and_instances_stay_within_it(tiny_model):
    """A front end describes a model from its class (no weights loaded): `offers` is declared,
    and what loaded weights take (`capabilities`) never goes beyond it."""
    import dataclasses

    from foley_core.backends import available_backends, backend_class, get_backend

    for name in available_backends():
        assert isinstance(backend_class(name).offers, Capabilities), name
    offers, loaded = backend_class("embedded").offers, get_backend("embedded").capabilities
    for f in dataclasses.fields(Capabilities):
        if f.type in (bool, "bool"):
            assert getattr(offers, f.name) or not getattr(loaded, f.name), f.name


def test_a_stems_stored_request_runs_again_to_the_same_take():
    """What a project keeps for a stem (`for_stem`: a CurveSpec, a ModelSpec, the seed used) is
    a request generate() runs as it is, once given back its video and model instance."""
    from foley_core.request import CurveSpec, ModelSpec

    backend = NoiseBackend()
    first = generate(GenerationRequest(caption="rain", duration_s=1.5, seed=3, candidates=2, source="model",
                                       curve=([0.0, 0.7, 1.5], [0.2, 1.0, 0.3]), model=backend))
    kept = GenerationRequest(caption="rain", duration_s=1.5, seed=3, candidates=2, source="model",
                             curve=([0.0, 0.7, 1.5], [0.2, 1.0, 0.3]), model=backend).for_stem(first.report, 1)
    assert isinstance(kept.curve, CurveSpec) and kept.model == ModelSpec("noise", "noise (stand-in)")
    assert (kept.seed, kept.candidates, kept.video) == (4, 1, None) and kept.stored() is kept
    again = generate(kept.replace(model=backend))
    np.testing.assert_array_equal(again.audios[0], first.audios[1])
