"""`yololake train` flags and --dry-run command lines (1 node x 8 GPUs, 4 nodes x 8 GPUs); no Spark, no GPU."""
from __future__ import annotations

import os

import pytest
from helpers import dry_run
from yololake.errors import PreflightError, UsageError
from yololake.train import main as train_main
from yololake.train.args import parse
from yololake.train.preflight import check_devices, check_trainer_can_run


def _dry(capsys, dataset, stage_dir, *flags):
    return dry_run(capsys, ["--data", dataset, "--stage-dir", stage_dir, "--model", "yolov5s"], flags)


def _after(cmd, flag):
    return cmd[cmd.index(flag) + 1]


def test_dry_run_one_node_eight_gpus(capsys, tiny_dataset, tmp_path):
    code, cmds, _ = _dry(capsys, tiny_dataset, str(tmp_path / "stage"), "--nproc-per-node", "8",
                         "--batch-size", "128", "--epochs", "3", "--", "--workers", "6", "--cos-lr")
    assert code == 0 and len(cmds) == 1
    cmd = cmds[0]
    assert cmd[1:12] == ["-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "8", "--standalone",
                         "-m", "yololake.train.safe_load", "yolov5", "-m"]  # the allowlist first, in the trainer
    assert cmd[12] == "yolov5.train"
    yaml_path = _after(cmd, "--data")
    assert yaml_path.startswith(str(tmp_path / "stage")) and yaml_path.endswith("yololake_data.yaml")
    assert (_after(cmd, "--batch-size"), _after(cmd, "--epochs"), _after(cmd, "--weights")) == ("128", "3", "")
    assert _after(cmd, "--cfg").endswith(os.path.join("models", "yolov5s.yaml"))
    assert cmd[-3:] == ["--workers", "6", "--cos-lr"]  # extras pass through, last


def test_dry_run_four_nodes_rendezvous_is_one_command_for_every_node(capsys, tiny_dataset, tmp_path):
    code, cmds, out = _dry(capsys, tiny_dataset, str(tmp_path / "stage"), "--nproc-per-node", "8", "--nnodes", "4",
                           "--rdzv-endpoint", "head:29400", "--rdzv-id", "job42", "--batch-size", "256")
    assert code == 0 and len(cmds) == 1 and "every node (4)" in out and "32 process(es)" in out
    cmd = cmds[0]
    assert cmd[3:13] == ["--nnodes", "4", "--nproc-per-node", "8", "--rdzv-backend", "c10d",
                         "--rdzv-endpoint", "head:29400", "--rdzv-id", "job42"]
    assert "--node-rank" not in cmd and "--standalone" not in cmd


def test_dry_run_four_nodes_master_address_prints_each_node(capsys, tiny_dataset, tmp_path):
    code, cmds, _ = _dry(capsys, tiny_dataset, str(tmp_path / "stage"), "--nproc-per-node", "8", "--nnodes", "4",
                         "--master-addr", "10.0.0.1", "--master-port", "29600", "--batch-size", "256")
    assert code == 0 and len(cmds) == 4
    for rank, cmd in enumerate(cmds):
        assert cmd[3:18] == ["--nnodes", "4", "--nproc-per-node", "8", "--node-rank", str(rank),
                             "--master-addr", "10.0.0.1", "--master-port", "29600", "-m", "yololake.train.safe_load",
                             "yolov5", "-m", "yolov5.train"]


def test_dry_run_single_process_runs_train_without_torchrun(capsys, tiny_dataset, tmp_path):
    code, cmds, _ = _dry(capsys, tiny_dataset, str(tmp_path / "stage"), "--device", "cpu")
    assert code == 0 and _after(cmds[0], "--device") == "cpu"
    assert cmds[0][1:6] == ["-m", "yololake.train.safe_load", "yolov5", "-m", "yolov5.train"]


@pytest.mark.parametrize("flags, message", [
    (["--nproc-per-node", "8", "--batch-size", "30"],
     "--batch-size 30 must be a multiple of the world size 8 (--nnodes 1 x --nproc-per-node 8); use e.g. 32"),
    (["--nnodes", "2", "--batch-size", "32"], "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
    (["--nnodes", "2", "--node-rank", "2", "--master-addr", "h"], "--node-rank 2: must be in 0..1"),
    (["--rdzv-endpoint", "head", "--nnodes", "2"], "--rdzv-endpoint 'head': expected HOST:PORT"),
    (["--rdzv-endpoint", "h:1", "--master-addr", "h", "--nnodes", "2"], "pass only one"),
    (["--nproc-per-node", "2", "--", "--evolve"], "--evolve and --image-weights do not work"),
])
def test_flag_rules_fail_with_one_line_naming_the_flag(flags, message):
    with pytest.raises(UsageError) as err:
        parse(["--data", "d", *flags])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_errors_print_one_line_and_exit_2(capsys, tiny_dataset, tmp_path):
    assert train_main.main(["--data", str(tmp_path / "missing"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such dataset folder" in err
    os.remove(os.path.join(tiny_dataset, "_SUCCESS"))
    assert train_main.main(["--data", tiny_dataset, "--dry-run"]) == 2
    assert "no _SUCCESS marker" in capsys.readouterr().err
    assert train_main.main(["--data", tiny_dataset, "--weights", str(tmp_path / "yolov5s.pt"), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"--weights {tmp_path / 'yolov5s.pt'}: file not found" in err and "never downloads" in err


def test_device_checks_name_the_gpu_shortfall_and_cpu_ddp():
    o = parse(["--data", "d", "--nproc-per-node", "8", "--batch-size", "64"])
    with pytest.raises(PreflightError, match="needs 8 GPU\\(s\\) on this node but CUDA sees 2"):
        check_devices(o, cuda_count=2)
    assert check_devices(o, cuda_count=8) == "nccl"
    cpu = parse(["--data", "d", "--nproc-per-node", "2", "--device", "cpu"])
    assert check_devices(cpu, cuda_count=8) == "gloo"
    with pytest.raises(PreflightError, match="YOLOv5 DDP needs CUDA GPUs"):
        check_trainer_can_run(cpu, "gloo")
    check_trainer_can_run(parse(["--data", "d", "--device", "cpu"]), "gloo")  # one process on CPU is fine


def test_dry_run_with_a_yolov5_clone_runs_its_train_py(capsys, tiny_dataset, tmp_path):
    clone = tmp_path / "yolov5"
    (clone / "models").mkdir(parents=True)
    (clone / "train.py").write_text("")
    (clone / "models" / "yolov5s.yaml").write_text("")
    code, cmds, _ = _dry(capsys, tiny_dataset, str(tmp_path / "stage"), "--yolov5-dir", str(clone),
                         "--nproc-per-node", "2", "--batch-size", "32")
    assert code == 0
    assert cmds[0][7:12] == ["--standalone", "-m", "yololake.train.safe_load", "yolov5", str(clone / "train.py")]
    assert _after(cmds[0], "--cfg") == str(clone / "models" / "yolov5s.yaml")
    assert train_main.main(["--data", tiny_dataset, "--yolov5-dir", str(tmp_path), "--dry-run"]) == 2
    assert "no train.py there" in capsys.readouterr().err
