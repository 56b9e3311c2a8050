"""Checks before spending GPU time: world size, GPUs, disk, and a torchrun check across all ranks."""
from __future__ import annotations

import os
import shutil
import subprocess

from yololake.errors import PreflightError
from yololake.train.args import TrainOptions
from yololake.train.dist_check import PREFIX


def check_devices(o: TrainOptions, cuda_count: int | None = None) -> str:
    """The backend the run will use (gloo or nccl), or PreflightError. `cuda_count` is for callers that know."""
    if cuda_count is None:
        import torch

        cuda_count = torch.cuda.device_count()
    if o.device.strip().lower() == "cpu" or (not o.device and cuda_count == 0):
        return "gloo"
    wanted = [d for d in o.device.split(",") if d.strip()] if o.device else []
    need = max(o.nproc_per_node, len(wanted))
    if cuda_count < need:
        raise PreflightError(f"--nproc-per-node {o.nproc_per_node} (--device {o.device or 'all'}) needs {need} "
                             f"GPU(s) on this node but CUDA sees {cuda_count}; lower --nproc-per-node or "
                             "fix CUDA_VISIBLE_DEVICES / the node's GPUs")
    if wanted and len(wanted) != o.nproc_per_node and o.distributed:
        raise PreflightError(f"--device {o.device} lists {len(wanted)} GPU(s) but --nproc-per-node is "
                             f"{o.nproc_per_node}; make them equal or drop --device")
    return "nccl"


def check_trainer_can_run(o: TrainOptions, backend: str) -> None:
    """YOLOv5's own DDP precondition: it asserts torch.cuda.device_count() > LOCAL_RANK (ultralytics, through
    YololakeTrainer, also trains several processes on CPU with gloo)."""
    if o.trainer == "yolov5" and o.distributed and backend != "nccl":
        raise PreflightError(f"YOLOv5 DDP needs CUDA GPUs, and {o.world_size} processes were asked for on CPU "
                             f"(--nnodes {o.nnodes} x --nproc-per-node {o.nproc_per_node}); on CPU train with "
                             "--nproc-per-node 1 --nnodes 1, or use --preflight-only to check the cluster")


def check_disk(path: str, min_free_gb: float) -> None:
    os.makedirs(path, exist_ok=True)
    free = shutil.disk_usage(path).free / 1e9
    if free < min_free_gb:
        raise PreflightError(f"{path}: {free:.2f} GB free, below --min-free-gb {min_free_gb:g}; "
                             "free disk space or write elsewhere (--project / --stage-dir)")


def torchrun_prefix(o: TrainOptions, python: str, preflight: bool = False) -> list[str]:
    """`python -m torch.distributed.run ...` for this node. The preflight check meets on port + 1, so a
    node that starts training early never joins a rendezvous the check still holds."""
    cmd = [python, "-m", "torch.distributed.run", "--nnodes", str(o.nnodes), "--nproc-per-node",
           str(o.nproc_per_node)]
    form = o.rendezvous
    if form == "standalone":
        cmd += ["--standalone"]
    elif form == "c10d":
        host, _, port = o.rdzv_endpoint.rpartition(":")
        port = int(port) + 1 if preflight else int(port)
        cmd += ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"{host}:{port}",
                "--rdzv-id", f"{o.rdzv_id}-preflight" if preflight else o.rdzv_id]
        if preflight:
            cmd += ["--rdzv-conf", f"join_timeout={o.preflight_timeout},read_timeout={o.preflight_timeout}"]
    elif form == "static":
        port = o.master_port + 1 if preflight else o.master_port
        cmd += ["--node-rank", str(o.node_rank), "--master-addr", o.master_addr, "--master-port", str(port)]
        if preflight:
            cmd += ["--rdzv-conf", f"timeout={o.preflight_timeout}"]
    return cmd


def distributed_check(o: TrainOptions, python: str, backend: str, fingerprint: str, root: str,
                      env: dict) -> None:
    """Run dist_check on every rank via torchrun; a failure raises naming the rank or the timeout."""
    cmd = torchrun_prefix(o, python, preflight=True) + ["-m", "yololake.train.dist_check"]
    env = {**env, "YOLOLAKE_DATASET_HASH": fingerprint, "YOLOLAKE_DATASET_ROOT": root,
           "YOLOLAKE_CHECK_BACKEND": backend, "YOLOLAKE_CHECK_TIMEOUT": str(o.preflight_timeout),
           "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1")}
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
                              timeout=o.preflight_timeout * 3 + 60)
    except subprocess.TimeoutExpired:
        raise PreflightError(f"distributed check did not finish within {o.preflight_timeout * 3 + 60}s; "
                             "a node is missing or the network between nodes is blocked") from None
    ours = [line for line in proc.stdout.splitlines() if line.startswith(PREFIX)]
    for line in ours:
        print(line, flush=True)
    if proc.returncode == 0:
        return
    mismatch = [line[len(PREFIX):].strip() for line in ours if "dataset mismatch" in line]
    if mismatch:
        raise PreflightError(f"distributed check: {mismatch[0]}; stage the same dataset version on every node")
    if "RendezvousTimeoutError" in proc.stdout or "timed out" in proc.stdout.lower() or "Timeout" in proc.stdout:
        raise PreflightError(f"distributed check: not all {o.nnodes} node(s) joined within --preflight-timeout "
                             f"{o.preflight_timeout}s ({_endpoint(o)}); start the launcher on every node, and "
                             "check the address and that the port is open")
    tail = " | ".join(proc.stdout.strip().splitlines()[-3:])
    raise PreflightError(f"distributed check failed (torchrun exit {proc.returncode}): {tail}")


def _endpoint(o: TrainOptions) -> str:
    if o.rendezvous == "c10d":
        host, _, port = o.rdzv_endpoint.rpartition(":")
        return f"rendezvous {host}:{int(port) + 1}"
    if o.rendezvous == "static":
        return f"master {o.master_addr}:{o.master_port + 1}"
    return "this node"

