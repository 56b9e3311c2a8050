"""The distributed preflight under real torchrun on CPU (gloo): standalone, two agents on 127.0.0.1,
a node with a different dataset named, a missing node failing within a short timeout."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from helpers import free_port_pair

pytestmark = pytest.mark.slow


def _train(data, stage_dir, *flags):
    cmd = [sys.executable, "-m", "yololake", "train", "--data", data, "--stage-dir", str(stage_dir),
           "--device", "cpu", "--preflight-only", *flags]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def _finish(proc, timeout=180):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.fixture(scope="module")
def two_datasets(demo_dataset, tmp_path_factory):
    """The demo dataset, and a copy whose version differs (another build): what two nodes could see."""
    out = demo_dataset[0]
    other = str(tmp_path_factory.mktemp("other") / "out")
    shutil.copytree(out, other, symlinks=True)
    with open(os.path.join(other, "_SUCCESS"), encoding="utf-8") as f:
        success = json.load(f)
    with open(os.path.join(other, "_SUCCESS"), "w", encoding="utf-8") as f:
        json.dump({**success, "run_id": "another-build"}, f)
    return out, other


def test_two_processes_standalone(two_datasets, tmp_path):
    code, out, err = _finish(_train(two_datasets[0], tmp_path, "--nproc-per-node", "2", "--batch-size", "4"))
    assert code == 0, err
    assert "gloo collective ok across 2 ranks" in out and "preflight passed" in out


def test_two_agents_with_c10d_rendezvous_on_loopback(two_datasets, tmp_path):
    flags = ("--nnodes", "2", "--nproc-per-node", "1", "--batch-size", "2", "--preflight-timeout", "60",
             "--rdzv-endpoint", f"127.0.0.1:{free_port_pair()}")
    nodes = [_train(two_datasets[0], tmp_path / f"node{i}", *flags) for i in range(2)]
    results = [_finish(p) for p in nodes]
    for code, out, err in results:
        assert code == 0, err
        assert "gloo collective ok across 2 ranks" in out
    assert {r[1].split("node rank ")[1][0] for r in results} == {"0", "1"}  # two nodes, not one twice


def test_a_node_with_a_different_dataset_fails_naming_its_rank(two_datasets, tmp_path):
    same, other = two_datasets
    port = free_port_pair()
    common = ("--nnodes", "2", "--nproc-per-node", "1", "--batch-size", "2", "--preflight-timeout", "60",
              "--master-addr", "127.0.0.1", "--master-port", str(port))
    nodes = [_train(same, tmp_path / "node0", *common, "--node-rank", "0"),
             _train(other, tmp_path / "node1", *common, "--node-rank", "1")]
    results = [_finish(p) for p in nodes]
    for code, out, err in results:
        assert code == 2, (out, err)
        assert err.startswith("yololake train: error: distributed check: dataset mismatch: rank 1 (node ")
        assert "node rank 1, local rank 0) sees dataset" in err and f"at {other}, but rank 0" in err
        assert f"at {same}" in err and "stage the same dataset version on every node" in err
        assert "Traceback" not in err


def test_a_missing_node_fails_within_the_rendezvous_timeout(two_datasets, tmp_path):
    started = time.monotonic()
    code, _, err = _finish(_train(two_datasets[0], tmp_path, "--nnodes", "2", "--nproc-per-node", "1",
                                    "--batch-size", "2", "--preflight-timeout", "5",
                                    "--rdzv-endpoint", f"127.0.0.1:{free_port_pair()}"))
    elapsed = time.monotonic() - started
    assert code == 2
    assert "not all 2 node(s) joined within --preflight-timeout 5s" in err, err
    assert elapsed < 60, elapsed  # a bound on a hang (the default rendezvous waits 600 s), not a speed target
