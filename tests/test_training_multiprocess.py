"""Training on several processes: `accelerate launch --num_processes 2` on CPU (gloo).

What "match" means here: both runs see the same global batches (ShardedBatchSampler gives each
process a contiguous half of every global batch), every item draws its noise, timestep and
condition dropout from its own generator seeded by (seed, step, position in the global batch),
and DDP averages the two halves' gradients. The mean of two equal halves' mean losses is the
mean loss of the whole batch, so one 2-process step is the 1-process step on the concatenated
batch; only the float32 summation order differs (two half-batch reductions plus an all-reduce
instead of one reduction). Adam then divides each gradient by its own running scale, so a
rounding difference in a tiny gradient can change that weight's step by a fraction of the
learning rate: weights are compared relative to what the steps can move them (lr per step),
not relative to their size. Measured (3 steps, lr 2e-4, tiny model): loss relative 1.1e-7;
weights max 1.03e-6 = 0.17 % of 3 x lr, and the L2 norm of the difference of the updates is
9.8e-6 of the update's; the EMA (warming up) the same. TOLERANCES keep about 5-10x margin.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from foley_lab.training.data import BucketBatchSampler, ShardedBatchSampler, ToyClipDataset

REPO = Path(__file__).resolve().parents[1]
STEPS, BATCH, LR = 3, 4, 2e-4
# loss: relative; weights (raw and EMA): max |difference| as a fraction of steps x lr (the most
# Adam can move a weight), and the L2 norm of the difference relative to the update's norm
TOLERANCES = {"loss_rel": 1e-5, "weight_of_steps_lr": 0.01, "update_rel_l2": 1e-4}


def test_shards_are_disjoint_halves_of_every_global_batch():
    dataset = ToyClipDataset(40, duration_s=[1.0, 2.0])
    sampler = BucketBatchSampler(dataset, 5, seed=3)
    halves = [ShardedBatchSampler(sampler, 2, rank).shares() for rank in (0, 1)]
    kept = [b[: len(b) - len(b) % 2] for b in sampler._batches() if len(b) >= 2]
    assert len(halves[0]) == len(halves[1]) == len(kept)
    for a, b, whole in zip(*halves, kept):
        assert a + b == whole and len(a) == len(b) and not set(a) & set(b)
    with pytest.raises(ValueError):
        ShardedBatchSampler(sampler, 2, 2)


@pytest.mark.parametrize("stage", ["ldm", "vae"])
def test_per_item_seeds_make_the_halves_average_to_the_whole_batch(stage):
    """The property the 2-process run rests on, in one process: with per-item generators the
    mean of the two halves' losses is the whole batch's loss (a shared generator gives the
    second half other noise than it gets in the whole batch)."""
    from foley_core.model.configs import tiny_config
    from foley_core.pipeline import FoleyPipeline
    from foley_lab.training.data import ClipCollator
    from foley_lab.training.trainer import _item_generators, _noise_scheduler, ldm_loss, vae_loss

    pipe = FoleyPipeline.from_config(tiny_config())
    ds = ToyClipDataset(4, duration_s=1.0, video=True, frame_size=32)
    collate = ClipCollator(video_fps=20, frame_size=(32, 32))
    whole, halves = collate([ds[i] for i in range(4)]), [collate([ds[i] for i in r]) for r in ((0, 1), (2, 3))]
    ns = _noise_scheduler(pipe)
    p_drop = {"text": 0.3, "video": 0.3, "curve": 0.3, "onsets": 0.3}

    def loss(batch, generator):
        if stage == "vae":
            return vae_loss(pipe, batch["audio"], kl_weight=1e-3, generator=generator)[0].item()
        return ldm_loss(pipe, batch, noise_scheduler=ns, p_drop=p_drop, generator=generator).item()

    with torch.no_grad():
        full = loss(whole, _item_generators(0, 7, 0, 4))
        split = [loss(h, _item_generators(0, 7, 2 * k, 2)) for k, h in enumerate(halves)]
        shared = [loss(h, torch.Generator().manual_seed(0)) for h in halves]
    assert (split[0] + split[1]) / 2 == pytest.approx(full, rel=TOLERANCES["loss_rel"])
    assert (shared[0] + shared[1]) / 2 != pytest.approx(full, rel=1e-3)


def _train_args(config: Path, out: Path, steps: int) -> list[str]:
    return ["train", "--data", "toy", "--stage", "ldm", "--config", str(config), "--out", str(out),
            "--steps", str(steps), "--batch-size", str(BATCH), "--lr", str(LR), "--threads", "1",
            "--checkpoint-every", "1000", "--device", "cpu"]


def _run(cmd: list[str], tmp_path: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _state(run: Path) -> dict:
    from foley_lab.training.trainer import find_checkpoint, load_training_state

    return load_training_state(find_checkpoint(run))


def test_two_processes_match_one_and_resume_on_one(tmp_path):
    if shutil.which("accelerate") is None:
        pytest.skip("the accelerate launcher is not installed")
    from foley_core.model.configs import write_tiny_model_dir

    config = write_tiny_model_dir(tmp_path / "tiny") / "config.json"
    lab = ["-m", "foley_lab"]
    # accelerate's --cpu flag runs ONE process unless MPI is set up; --multi_gpu starts torchrun,
    # and --device cpu makes each process's Accelerator a CPU (gloo) one
    two = _run(["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no", *lab,
                *_train_args(config, tmp_path / "two", STEPS)], tmp_path)
    one = _run([sys.executable, *lab, *_train_args(config, tmp_path / "one", STEPS)], tmp_path)

    # each process saw its own half of the first global batch
    first = [row for row in two if row.get("step") == 1]
    assert sorted(row["process"] for row in first) == [0, 1]
    one_first = next(row for row in one if row.get("step") == 1)
    assert all(row["processes"] == 2 for row in first)
    assert sum(row["items"] for row in first) == min(BATCH, int(32 // one_first["duration_s"]))
    assert all(row["loss"] == first[0]["loss"] for row in first)       # the global batch's loss

    s2, s1 = _state(tmp_path / "two"), _state(tmp_path / "one")
    assert s2["step"] == s1["step"] == STEPS
    for a, b in zip(s2["losses"], s1["losses"]):
        assert a == pytest.approx(b, rel=TOLERANCES["loss_rel"])
    from foley_core.pipeline import FoleyPipeline

    fresh = FoleyPipeline.from_config(config)
    init = {f"{part}.{k}": v for part in ("unet", "mam", "tlm") for k, v in getattr(fresh, part).state_dict().items()}
    names = [k for k, v in s1["raw_model"].items() if v.dtype.is_floating_point]
    max_move = STEPS * LR
    ema1, ema2 = s1["ema"]["shadow_params"], s2["ema"]["shadow_params"]
    assert len(ema1) == len(ema2) > 0
    for weights1, weights2 in ((s1["raw_model"], s2["raw_model"]), (dict(enumerate(ema1)), dict(enumerate(ema2)))):
        worst = max((weights2[k] - weights1[k]).abs().max().item() for k in weights1)
        assert worst <= TOLERANCES["weight_of_steps_lr"] * max_move, worst
    diff_sq = sum((s2["raw_model"][k] - s1["raw_model"][k]).pow(2).sum().item() for k in names)
    update_sq = sum((s1["raw_model"][k] - init[k]).pow(2).sum().item() for k in names)
    assert update_sq > 0 and (diff_sq / update_sq) ** 0.5 <= TOLERANCES["update_rel_l2"]
    # not vacuous: the steps moved some weights by about lr per step
    assert max((s1["raw_model"][k] - init[k]).abs().max().item() for k in names) > 0.5 * max_move

    # the 2-process checkpoint resumes on one process
    resumed = _run([sys.executable, *lab, *_train_args(config, tmp_path / "two", STEPS + 2)], tmp_path)
    s3 = _state(tmp_path / "two")
    assert resumed[-1]["stages"]["ldm"]["steps"] == STEPS + 2 == s3["step"]
    assert s3["losses"][:STEPS] == s2["losses"] and len(s3["losses"]) == STEPS + 2
    assert torch.isfinite(torch.tensor(s3["losses"])).all()
