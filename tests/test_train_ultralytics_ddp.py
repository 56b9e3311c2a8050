"""A real 2-process ultralytics DDP training on CPU (gloo): two torchrun agents, as two nodes, meeting at a c10d
rendezvous on 127.0.0.1, each with its own stage dir and run folder, through YololakeTrainer."""
from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import connects, free_port_pair, guarded_env

pytestmark = pytest.mark.slow


def test_two_agents_train_one_model_with_the_global_rank_and_world_size(demo_dataset, tmp_path):
    port, out = free_port_pair(), demo_dataset[1]["root"]
    agents = []
    for node in ("a", "b"):
        base = tmp_path / node
        base.mkdir()
        env = {**guarded_env(base), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "yololake", "train", "--trainer", "ultralytics", "--data", out, "--model",
               "yolo11n.yaml", "--epochs", "1", "--img", "64", "--device", "cpu", "--batch-size", "16",
               "--nnodes", "2", "--nproc-per-node", "1", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "ddp",
               "--preflight-timeout", "120", "--project", str(base / "runs"), "--", "plots=False"]
        agents.append((base, subprocess.Popen(cmd, cwd=base, env=env, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True)))
    logs = {}
    for base, proc in agents:
        logs[base.name] = proc.communicate(timeout=600)[0]
        assert proc.returncode == 0, logs[base.name][-4000:]
    both = "".join(logs.values())
    assert "gloo collective ok across 2 ranks" in both  # the distributed preflight ran first
    for rank in (0, 1):  # one process per agent, each with its global rank in a world of 2
        assert f"yololake trainer: global rank {rank}, local rank 0, world size 2" in both
    # The total batch of 16 divided by the global world size, and each rank trains on its half of the 79 images.
    assert both.count("trains on 40 of 79 images, batch 8 per process") == 2
    # Global rank 0's agent holds the results (and the checkpoints); the other agent's run folder has none.
    holders = [b for b, _ in agents if (b / "runs" / "exp" / "results.csv").exists()]
    assert len(holders) == 1 and (holders[0] / "runs" / "exp" / "weights" / "best.pt").stat().st_size > 100_000
    assert "final metrics (epoch 1)" in logs[holders[0].name]
    assert all(connects(b) == [] for b, _ in agents)
