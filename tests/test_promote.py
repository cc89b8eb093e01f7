"""`obeys` comes from measurements: instruction_evidence's rule and scripts/promote_model.py."""

import json
import subprocess
import sys
from pathlib import Path

from foley_lab.evaluation.harness import OBEYS_RULE, instruction_evidence, weights_digest

REPO = Path(__file__).resolve().parents[1]


def _results(*, r=0.7, f1=0.8, gap=0.3, lo=0.05, hi=0.2, given=0.9, digest=None):
    s = lambda v: {"mean": v, "median": v, "n": 4}  # noqa: E731
    return {
        "created": "2026-11-22T10:00:00", "config": {"n_val": 8, "n_scenes": 4, "n_selectivity": 2,
                                                     "steps": 10, "seed": 0},
        "model": {"weights_digest": digest},
        "rows": {"model_tlm": {"loudness_r": s(r), "onset_f1": s(f1), "selectivity_gap": s(gap)},
                 "model_onsets_given": {"onset_f1": s(given)},
                 "retrieved": {"onset_f1": s(0.2)}},
        "val": {"accuracy_vs_noise": {"model_tlm": {"lo": lo, "hi": hi}}},
    }


def test_rule_obeyed_and_not():
    ev = instruction_evidence(_results())
    assert {k: v["obeyed"] for k, v in ev.items()} == {
        "curve": True, "video": True, "mask": True, "onsets": True, "text": True, "negative": True}
    ev = instruction_evidence(_results(r=0.49, f1=0.49, gap=0.1, lo=-0.01, given=0.49))
    assert not any(v["obeyed"] for v in ev.values())
    assert ev["video"]["threshold"] == 0.5 and ev["curve"]["threshold"] == 0.5
    assert set(ev) == set(OBEYS_RULE) and all(v["rule"] == OBEYS_RULE[k] for k, v in ev.items())


def test_rule_says_not_measured():
    res = _results()
    del res["rows"]["model_tlm"]["selectivity_gap"]
    res["val"] = {}
    del res["rows"]["model_onsets_given"]          # a model without an onset module
    ev = instruction_evidence(res)
    assert ev["mask"]["obeyed"] is None and ev["text"]["obeyed"] is None
    assert ev["onsets"]["obeyed"] is None
    assert ev["curve"]["obeyed"] is True


def _model_dir(tmp_path: Path, byte: bytes = b"\x00") -> Path:
    d = tmp_path / "ckpt"
    (d / "unet").mkdir(parents=True)
    (d / "unet" / "model.safetensors").write_bytes(byte * 64)
    (d / "training_state.pt").write_bytes(b"optimizer")
    (d / "model_index.json").write_text(json.dumps({"pipeline": {"name": "embedded", "trained": True}}))
    return d


def _promote(*args):
    return subprocess.run([sys.executable, str(REPO / "scripts" / "promote_model.py"), *map(str, args)],
                          capture_output=True, text=True)


def test_promote_writes_obeys_and_keeps_card(tmp_path):
    ckpt = _model_dir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "MODEL_CARD.md").write_text("card")
    res = _results(gap=0.0, digest=weights_digest(ckpt))
    (tmp_path / "eval.json").write_text(json.dumps(res))
    proc = _promote("--checkpoint", ckpt, "--eval", tmp_path / "eval.json", "--out", out)
    assert proc.returncode == 0, proc.stderr
    index = json.loads((out / "model_index.json").read_text())["pipeline"]
    assert index["trained"] is True
    assert index["obeys"] == ["curve", "negative", "onsets", "text", "video"]   # mask gap 0.0 < 0.2
    assert index["evaluated"]["weights_digest"] == weights_digest(ckpt) == weights_digest(out)
    assert (out / "MODEL_CARD.md").read_text() == "card"
    assert not (out / "training_state.pt").exists()


def test_promote_refuses_other_weights(tmp_path):
    ckpt = _model_dir(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "config.json").write_text("{}")
    res = _results(digest=weights_digest(ckpt))
    (ckpt / "unet" / "model.safetensors").write_bytes(b"\x01" * 64)   # training moved on
    (tmp_path / "eval.json").write_text(json.dumps(res))
    proc = _promote("--checkpoint", ckpt, "--eval", tmp_path / "eval.json", "--out", out)
    assert proc.returncode != 0 and "measured other weights" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]      # untouched
