"""`yololake train --trainer ultralytics`: flags and --dry-run command lines for 1x8 and 4x8; no Spark, no GPU."""
from __future__ import annotations

import pytest
from helpers import dry_run
from yololake.errors import UsageError
from yololake.train import main as train_main
from yololake.train.args import parse


def _dry(capsys, dataset, tmp_path, *flags):
    return dry_run(capsys, ["--data", dataset, "--stage-dir", str(tmp_path / "stage"), "--trainer", "ultralytics",
                            "--model", "yolo11n.yaml"], flags)


def _pairs(cmd):
    start = cmd.index("yololake.train.ultralytics_run")
    assert cmd[start - 1] == "-m" and cmd[start + 1] == "train"
    return dict(a.split("=", 1) for a in cmd[start + 2:])


def test_dry_run_one_node_eight_gpus(capsys, tiny_dataset, tmp_path):
    code, cmds, _ = _dry(capsys, tiny_dataset, tmp_path, "--nproc-per-node", "8", "--batch-size", "128",
                         "--epochs", "3", "--img", "640", "--", "lr0=0.02", "cos_lr=True")
    assert code == 0 and len(cmds) == 1
    cmd = cmds[0]
    assert cmd[1:10] == ["-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "8", "--standalone",
                         "-m", "yololake.train.ultralytics_run"]
    args = _pairs(cmd)
    # The total batch (ultralytics divides it by the global world size); each process takes devices[LOCAL_RANK].
    assert (args["batch"], args["epochs"], args["imgsz"], args["model"]) == ("128", "3", "640", "yolo11n.yaml")
    assert args["device"] == "0,1,2,3,4,5,6,7" and args["exist_ok"] == "True"
    assert args["data"].startswith(str(tmp_path / "stage")) and args["data"].endswith("-inplace-ultralytics/"
                                                                                        "yololake_data.yaml")
    assert cmd[-2:] == ["lr0=0.02", "cos_lr=True"]  # extras pass through, last


def test_dry_run_four_nodes_rendezvous_and_master_address(capsys, tiny_dataset, tmp_path):
    code, cmds, out = _dry(capsys, tiny_dataset, tmp_path, "--nproc-per-node", "8", "--nnodes", "4",
                           "--rdzv-endpoint", "head:29400", "--rdzv-id", "job42", "--batch-size", "256")
    assert code == 0 and len(cmds) == 1 and "every node (4)" in out and "32 process(es)" in out
    assert cmds[0][3:15] == ["--nnodes", "4", "--nproc-per-node", "8", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                             "head:29400", "--rdzv-id", "job42", "-m", "yololake.train.ultralytics_run"]
    assert _pairs(cmds[0])["batch"] == "256" and _pairs(cmds[0])["device"] == "0,1,2,3,4,5,6,7"
    code, cmds, _ = _dry(capsys, tiny_dataset, tmp_path, "--nproc-per-node", "8", "--nnodes", "4",
                         "--master-addr", "10.0.0.1", "--batch-size", "256")
    assert code == 0 and len(cmds) == 4
    for rank, cmd in enumerate(cmds):
        assert cmd[3:13] == ["--nnodes", "4", "--nproc-per-node", "8", "--node-rank", str(rank),
                             "--master-addr", "10.0.0.1", "--master-port", "29500"]


def test_dry_run_single_process_on_cpu(capsys, tiny_dataset, tmp_path):
    code, cmds, _ = _dry(capsys, tiny_dataset, tmp_path, "--device", "cpu", "--model", "yolov8n")
    assert code == 0 and cmds[0][1:4] == ["-m", "yololake.train.ultralytics_run", "train"]
    assert _pairs(cmds[0])["device"] == "cpu" and _pairs(cmds[0])["model"] == "yolov8n.yaml"


def test_ultralytics_flags_fail_with_one_line(capsys, tiny_dataset, tmp_path):
    with pytest.raises(UsageError, match="ultralytics arguments after -- are key=value"):
        parse(["--data", "d", "--trainer", "ultralytics", "--", "--workers", "0"])
    assert parse(["--data", "d", "--trainer", "ultralytics", "--nproc-per-node", "2", "--device", "cpu",
                  "--batch-size", "4"]).distributed
    for model, message in (("nosuchnet.yaml", "not a model YAML that ultralytics ships"),
                           (str(tmp_path / "missing.pt"), "file not found; this launcher never downloads weights")):
        assert train_main.main(["--data", tiny_dataset, "--trainer", "ultralytics", "--model", model,
                                "--dry-run"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"--model {model}: {message}" in err
