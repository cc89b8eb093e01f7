"""The shipped default model: trained weights, evaluated, and honest about what it obeys."""

from __future__ import annotations

import json
from pathlib import Path

from foley_core.backends import INSTRUCTIONS
from foley_core.backends.embedded import DEFAULT_DIR, EmbeddedBackend
from foley_lab.evaluation.harness import OBEYS_RULE, weights_digest

REPO = Path(__file__).resolve().parents[1]


def test_default_model_is_trained_and_its_obeys_list_is_the_evaluations():
    index = json.loads((DEFAULT_DIR / "model_index.json").read_text())["pipeline"]
    assert index["trained"] is True
    # the evaluation that set `obeys` measured exactly these weights
    assert index["evaluated"]["weights_digest"] == weights_digest(DEFAULT_DIR)
    assert set(index["obeys"]) <= set(INSTRUCTIONS)
    assert index["obeys"] == sorted(k for k, ev in index["evidence"].items() if ev["obeyed"])
    assert {k: ev["rule"] for k, ev in index["evidence"].items()} == OBEYS_RULE
    for name, ev in index["evidence"].items():
        if ev["threshold"] is not None and not isinstance(ev["value"], list):
            assert ev["obeyed"] == (ev["value"] >= ev["threshold"]), name


def test_backend_reports_the_trained_model():
    backend = EmbeddedBackend(DEFAULT_DIR)
    backend.load("cpu")
    index = json.loads((DEFAULT_DIR / "model_index.json").read_text())["pipeline"]
    assert backend.trained and backend.description == "embedded"
    assert backend.obeys == frozenset(index["obeys"])
    assert backend.curve_scale == index.get("curve_scale", 1.0)


def test_assets_fit_the_size_budget():
    weights = sum(p.stat().st_size for p in DEFAULT_DIR.rglob("*") if p.is_file())
    assert weights <= 60 * 2**20
    assert (DEFAULT_DIR / "MODEL_CARD.md").is_file() and (DEFAULT_DIR / "TRAINING_DATA.md").is_file()
    assert not list(DEFAULT_DIR.rglob("training_state.pt"))         # optimizer state is not shipped
