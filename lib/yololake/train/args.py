"""`yololake train` arguments: parsed with argparse, checked into one frozen dataclass before any work starts.

Every check fails with one line that names the flag, the value, the rule and the fix.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

STAGE_MODES = ("auto", "always", "never")


class UsageError(ValueError):
    """A bad flag or flag combination; the message is shown to the user as is."""


@dataclass(frozen=True)
class TrainOptions:
    data: str
    """Dataset folder written by build-dataset: a local path or any fsspec URL (s3://, gs://, file://)."""
    model: str = "yolov5s"
    """A YOLOv5 model name (models/<name>.yaml of the YOLOv5 install) or a path to a model YAML."""
    weights: str = ""
    """Initial weights (.pt, a local file: never downloaded); '' trains from scratch."""
    epochs: int = 100
    batch_size: int = 16
    """Total over all processes, as in YOLOv5; must be a multiple of the world size."""
    img: int = 640
    device: str = ""
    """YOLOv5's --device: '' (all visible GPUs, else CPU), 'cpu', or '0,1,...'."""
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str = ""
    """HOST:PORT of a c10d rendezvous (multi-node without fixed node ranks)."""
    rdzv_id: str = "yololake"
    master_addr: str = ""
    master_port: int = 29500
    stage_dir: str = ""
    """Fast local disk for the staged copy and the prepared YAML, lists and caches."""
    stage: str = "auto"
    """auto: stage only when --data is not a local path; always: copy even a local (e.g. NFS) folder; never."""
    stage_workers: int = 16
    yolov5_dir: str = ""
    """A clone of ultralytics/yolov5 (train.py, detect.py, models/); default: the pip package."""
    project: str = "runs/train"
    name: str = "exp"
    upload_to: str = ""
    """Optional fsspec URL: the run folder is copied there after a successful run (by the node holding results.csv)."""
    dry_run: bool = False
    preflight_only: bool = False
    preflight_timeout: int = 60
    """Seconds the distributed check waits for all nodes to join before failing."""
    min_free_gb: float = 1.0
    extra: tuple[str, ...] = ()
    """Arguments after `--`, passed to YOLOv5's train.py unchanged."""

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def rendezvous(self) -> str:
        """standalone | c10d | static (master address/port) | single (one process, no torchrun)."""
        if not self.distributed:
            return "single"
        if self.rdzv_endpoint:
            return "c10d"
        if self.master_addr:
            return "static"
        return "standalone"


def build_parser(prog: str = "yololake train") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Stage a yololake dataset and train YOLOv5 on it "
                                "(torchrun for several processes). Arguments after -- go to YOLOv5's train.py.")
    p.add_argument("--data", required=True, help="dataset folder or URL written by build-dataset")
    p.add_argument("--model", default="yolov5s", help="model name (yolov5n/s/m/l/x) or a model YAML (yolov5s)")
    p.add_argument("--weights", default="", help="initial weights file (.pt); '' (default) trains from scratch")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16, help="total batch size over all processes (16)")
    p.add_argument("--img", "--imgsz", dest="img", type=int, default=640, help="image size in pixels (640)")
    p.add_argument("--device", default="", help="YOLOv5 --device: '', cpu, or 0,1,... ('')")
    g = p.add_argument_group("distributed (torchrun)")
    g.add_argument("--nproc-per-node", type=int, default=1, help="processes (GPUs) per node (1)")
    g.add_argument("--nnodes", type=int, default=1, help="number of nodes (1)")
    g.add_argument("--node-rank", type=int, default=0, help="this node's rank, with --master-addr (0)")
    g.add_argument("--rdzv-endpoint", default="", help="HOST:PORT of the c10d rendezvous (multi-node)")
    g.add_argument("--rdzv-id", default="yololake", help="rendezvous id, the same on every node (yololake)")
    g.add_argument("--master-addr", default="", help="rank-0 node address (multi-node without rendezvous)")
    g.add_argument("--master-port", type=int, default=29500, help="rank-0 node port (29500)")
    g.add_argument("--preflight-timeout", type=int, default=60,
                   help="seconds the distributed preflight check waits for every node (60)")
    s = p.add_argument_group("staging")
    s.add_argument("--stage-dir", default=os.environ.get("YOLOLAKE_STAGE_DIR", ""),
                   help="local folder for staged datasets and prepared files "
                        "($YOLOLAKE_STAGE_DIR, else ~/.cache/yololake/stage)")
    s.add_argument("--stage", choices=STAGE_MODES, default="auto",
                   help="auto: copy only non-local datasets; always: copy local ones too; never (auto)")
    s.add_argument("--stage-workers", type=int, default=16, help="parallel downloads (16)")
    s.add_argument("--min-free-gb", type=float, default=1.0, help="free disk required besides the dataset (1)")
    r = p.add_argument_group("run")
    r.add_argument("--yolov5-dir", default="", help="a clone of ultralytics/yolov5 to run instead of the pip package")
    r.add_argument("--project", default="runs/train", help="parent of the run folder (runs/train)")
    r.add_argument("--name", default="exp", help="run folder name; exp2, exp3... if taken (exp)")
    r.add_argument("--upload-to", default="", help="URL to copy the run folder to after success (optional)")
    r.add_argument("--dry-run", action="store_true", help="print the command of every node and exit")
    r.add_argument("--preflight-only", action="store_true",
                   help="stage, prepare and run the preflight checks (including the distributed one), then exit")
    return p


def split_extra(argv: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], tuple(argv[i + 1:])
    return argv, ()


def _host_port(flag: str, value: str) -> None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{flag} {value!r}: expected HOST:PORT, e.g. head-node:29400")


def check(o: TrainOptions) -> TrainOptions:
    """Rules that need no machine: counts, ranks, the rendezvous form."""
    for flag, value, low in (("--epochs", o.epochs, 1), ("--batch-size", o.batch_size, 1), ("--img", o.img, 32),
                             ("--nproc-per-node", o.nproc_per_node, 1), ("--nnodes", o.nnodes, 1),
                             ("--stage-workers", o.stage_workers, 1), ("--preflight-timeout", o.preflight_timeout, 1)):
        if value < low:
            raise UsageError(f"{flag} {value}: must be at least {low}")
    if o.batch_size % o.world_size:
        fix = (o.batch_size // o.world_size + 1) * o.world_size
        raise UsageError(f"--batch-size {o.batch_size} must be a multiple of the world size {o.world_size} "
                         f"(--nnodes {o.nnodes} x --nproc-per-node {o.nproc_per_node}); use e.g. {fix}")
    if not 0 <= o.node_rank < o.nnodes:
        raise UsageError(f"--node-rank {o.node_rank}: must be in 0..{o.nnodes - 1} for --nnodes {o.nnodes}")
    if o.rdzv_endpoint and o.master_addr:
        raise UsageError("--rdzv-endpoint and --master-addr are two ways to meet; pass only one")
    if o.rdzv_endpoint:
        _host_port("--rdzv-endpoint", o.rdzv_endpoint)
    if o.nnodes > 1 and not (o.rdzv_endpoint or o.master_addr):
        raise UsageError(f"--nnodes {o.nnodes} needs --rdzv-endpoint HOST:PORT (c10d) or --master-addr HOST "
                         "(with --node-rank) so the nodes can find each other")
    if not 0 < o.master_port < 65535:  # the preflight check uses master port + 1
        raise UsageError(f"--master-port {o.master_port}: must be in 1..65534")
    if o.distributed and any(x in o.extra for x in ("--evolve", "--image-weights")):
        raise UsageError("--evolve and --image-weights do not work with several processes in YOLOv5; "
                         "use --nproc-per-node 1 --nnodes 1")
    return o


def parse(argv: Sequence[str]) -> TrainOptions:
    """argv (without the subcommand) -> checked options; argparse exits 2 on syntax errors."""
    own, extra = split_extra(argv)
    ns = build_parser().parse_args(own)
    fields = {f.name for f in dataclasses.fields(TrainOptions)}
    return check(TrainOptions(**{k: v for k, v in vars(ns).items() if k in fields}, extra=extra))
